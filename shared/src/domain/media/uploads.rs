//! `POST /v1/uploads`: an upload form for one file (a presigned S3 POST for exactly its key,
//! content type and size range) and the `issued` [`MediaRecord`] the media job then follows.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

use super::{extension, object_key, MediaRecord, MediaStatus, Purpose};
use crate::app::App;
use crate::error::Error;
use crate::ids::{MediaId, UserId};
use crate::media_bucket::UploadPolicy;
use crate::store::{keys, Condition, Record, StoreError, Write};

/// The body of `POST /v1/uploads`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub purpose: Purpose,
    pub content_type: String,
    /// The file's size in bytes (1 to the purpose's limit): the policy allows at most this.
    pub size: u64,
}

/// The answer: where and how to POST the file, and the URL it will have.
#[derive(Clone, Debug, Serialize)]
pub struct UploadForm {
    pub media_id: MediaId,
    /// The form's target (S3's bucket URL; the local server's upload endpoint).
    pub url: String,
    /// The form fields, sent before the file (`file`, last).
    pub fields: BTreeMap<String, String>,
    /// The object's URL once public (`RENJI_MEDIA_BASE_URL` + `/` + key): what a listing,
    /// profile, review or ticket is given.
    pub media_url: String,
    /// When the form stops working (RFC 3339).
    pub expires_at: String,
}

const DAILY_LABEL: &str = "uploads_per_day";
const NEW_LABEL: &str = "new_upload";
const DAY_SECS: i64 = 86_400;

/// The content types `purpose` takes.
pub fn allowed_types(purpose: Purpose) -> &'static [&'static str] {
    match purpose.is_video() {
        true => &["video/mp4"],
        false => &["image/jpeg", "image/png", "image/gif", "image/bmp"],
    }
}

/// The largest file `purpose` takes.
pub fn max_bytes(app: &App, purpose: Purpose) -> u64 {
    match purpose.is_video() {
        true => app.config.media.video_max_bytes,
        false => app.config.media.image_max_bytes,
    }
}

/// Checks the request (422 naming the field), before anything is counted or written.
pub fn validate(app: &App, request: &UploadRequest) -> Result<&'static str, Error> {
    let allowed = allowed_types(request.purpose);
    let ext = match allowed.contains(&request.content_type.as_str()) {
        true => extension(&request.content_type),
        false => None,
    };
    let ext = ext.ok_or_else(|| {
        Error::invalid(
            "content_type",
            format!("{} takes {}", request.purpose.as_str(), allowed.join(", ")),
        )
    })?;
    let max = max_bytes(app, request.purpose);
    if request.size == 0 || request.size > max {
        return Err(Error::invalid(
            "size",
            format!(
                "is the file's size in bytes, from 1 to {max} for {}",
                request.purpose.as_str()
            ),
        ));
    }
    Ok(ext)
}

fn day_text(now: OffsetDateTime) -> String {
    let date = now.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn rfc3339(at: OffsetDateTime) -> String {
    crate::domain::members::rfc3339(at)
}

/// `POST /v1/uploads`: validates, counts the day's forms (429 past `RENJI_UPLOADS_PER_DAY`),
/// signs the form and records the upload `issued`, listed for the media job from now.
pub async fn issue(
    app: &App,
    member: &UserId,
    request: &UploadRequest,
    now: OffsetDateTime,
) -> Result<UploadForm, Error> {
    let ext = validate(app, request)?;
    let bucket = app.media_bucket()?;
    let id = MediaId::generate();
    let key = object_key(member, request.purpose, &id, ext);
    let form = bucket
        .post_form(&UploadPolicy {
            key: key.clone(),
            content_type: request.content_type.clone(),
            max_bytes: request.size,
            expires_in: app.config.media.policy,
        })
        .await?;
    let at = now.unix_timestamp();
    let record = MediaRecord {
        id: id.clone(),
        owner: member.clone(),
        purpose: request.purpose,
        key: key.clone(),
        content_type: request.content_type.clone(),
        size: request.size,
        status: MediaStatus::Issued,
        upload_expires_at: rfc3339(form.expires_at),
        trace_id: None,
        reason: None,
        cover: None,
        approved_by_staff: None,
        used_by: Vec::new(),
        created_at: rfc3339(now),
        updated_at: rfc3339(now),
    };
    let count = Write::update(keys::upload_day(member, &day_text(now)))
        .add("n", 1)
        .set("ttl", at + 2 * DAY_SECS)
        .condition(
            Condition::Under("n".into(), i64::from(app.config.media.per_day)),
            DAILY_LABEL,
        )
        .build();
    let put = Write::put_if(
        record.to_item(
            keys::media(member, &id),
            Some(keys::media_listed(at, member, &id)),
        )?,
        Condition::Absent,
        NEW_LABEL,
    );
    match app.store.transact(vec![count, put]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { label: DAILY_LABEL }) => {
            return Err(Error::TooManyRequests {
                retry_after_secs: (DAY_SECS - at.rem_euclid(DAY_SECS)).unsigned_abs(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    Ok(UploadForm {
        media_id: id,
        url: form.url,
        fields: form.fields,
        media_url: format!("{}/{key}", app.config.media.base_url),
        expires_at: rfc3339(form.expires_at),
    })
}

/// An upload as its owner's data export shows it: the record and the URL it has (or will have)
/// once public; never a signed link.
pub fn export_view(record: &MediaRecord, base_url: &str) -> Result<serde_json::Value, Error> {
    let mut view =
        serde_json::to_value(record).map_err(|e| Error::Internal(format!("upload: {e}")))?;
    if let Some(map) = view.as_object_mut() {
        map.insert(
            "media_url".into(),
            serde_json::Value::String(format!("{base_url}/{}", record.key)),
        );
    }
    Ok(view)
}
