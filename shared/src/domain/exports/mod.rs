//! A copy of my data (privacy policy §五(一)3, product capability 12): `POST /v1/me/export`
//! asks for one, `GET /v1/me/export` answers how it is going and, once it is built, a short-lived
//! link to it; the `export-jobs` function builds it.
//!
//! - The member's latest export is one record, `USER#<id> / EXPORT` ([`keys::export`]). A request
//!   puts it `pending`, listed in `gsi1` under `DUE#export` ([`keys::export_listed`]), in one
//!   transaction with the day's count (`EXPORT_DAY#<day>`, at most `RENJI_EXPORTS_PER_DAY`: 429
//!   with `Retry-After` beyond) and the `export.request` audit record. While one is pending or
//!   building, another request is 409 `export_in_progress` (the record's `active` is 1 then; the
//!   put is conditioned on it being under 1).
//! - The job ([`jobs`]) takes the due ones in order: it claims one (`building`, due again when a
//!   lease ends — so a build that crashed is redone by a later run), streams the document into a
//!   multipart upload ([`document`]), then marks it `ready` with the `export.ready` audit record
//!   (actor: the system) in one transaction and deletes the member's previous document. A
//!   build that fails [`MAX_ATTEMPTS`] times is `failed`.
//! - `GET` answers the record; when `ready`, `url` is a link to the document valid
//!   `RENJI_EXPORT_LINK_SECS` (never beyond the document's own end), `expires_at` its end. A
//!   document is kept `RENJI_EXPORT_KEEP_DAYS` (the record's `ttl` and the bucket's lifecycle
//!   rule); after that `GET` is 404 again, as for a member who never asked.

pub mod coverage;
pub mod document;
pub mod jobs;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::audit::{self, Actor, AuditRecord, Target};
use crate::domain::members::rfc3339;
use crate::error::Error;
use crate::ids::UserId;
use crate::store::{keys, Condition, Record, Records, StoreError, Write};

/// Builds tried before an export is `failed`.
pub const MAX_ATTEMPTS: u32 = 3;

/// The audit actions.
pub const REQUEST_ACTION: &str = "export.request";
pub const READY_ACTION: &str = "export.ready";

const DAILY_LABEL: &str = "export_daily_limit";
const IN_PROGRESS_LABEL: &str = "export_in_progress";
const DAY_SECS: i64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Pending,
    Building,
    Ready,
    Failed,
}

/// The member's latest export, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// A ULID: the document's name.
    pub id: String,
    pub member_id: UserId,
    pub status: ExportStatus,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When a ready document is deleted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The document's object key: `exports/<member>/<id>.json`.
    pub object: String,
    /// The document's size, once built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Builds started.
    #[serde(default)]
    pub attempts: u32,
    /// 1 while pending or building, else 0: a new request is conditioned on it being under 1.
    #[serde(default)]
    pub active: i64,
    /// The member's previous document, deleted once this one is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Epoch seconds: the table's TTL ends a finished export with its document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl Record for ExportRecord {
    const KIND: &'static str = "export";
}

impl ExportRecord {
    /// What `GET`/`POST /v1/me/export` answer (without the link).
    pub fn view(&self) -> Value {
        let mut view = json!({
            "id": self.id,
            "status": self.status,
            "requested_at": self.requested_at,
        });
        for (name, value) in [
            ("started_at", &self.started_at),
            ("finished_at", &self.finished_at),
            ("available_until", &self.expires_at),
        ] {
            if let Some(value) = value {
                view[name] = json!(value);
            }
        }
        if let Some(bytes) = self.bytes {
            view["bytes"] = json!(bytes);
        }
        view
    }
}

/// The object key of export `id` of `member`: per member, and unguessable (a ULID's 80 random
/// bits; the link is signed anyway).
pub fn object_key(member: &UserId, id: &str) -> String {
    format!("exports/{member}/{id}.json")
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

fn secs_to_midnight(now: i64) -> u64 {
    (DAY_SECS - now.rem_euclid(DAY_SECS)).unsigned_abs()
}

/// `POST /v1/me/export`: records the request (202 pending), or 429 over the day's count, or 409
/// while one is pending or building.
pub async fn request(
    app: &App,
    member: &UserId,
    now: OffsetDateTime,
) -> Result<ExportRecord, Error> {
    let store = &app.store;
    let previous: Option<ExportRecord> = store.get_record(&keys::export(member)).await?;
    if previous.as_ref().is_some_and(|p| p.active > 0) {
        return Err(in_progress());
    }
    let id = ulid::Ulid::new().to_string();
    let at = now.unix_timestamp();
    let record = ExportRecord {
        object: object_key(member, &id),
        id,
        member_id: member.clone(),
        status: ExportStatus::Pending,
        requested_at: rfc3339(now),
        started_at: None,
        finished_at: None,
        expires_at: None,
        bytes: None,
        attempts: 0,
        active: 1,
        // A document not yet expired is deleted once the new one is ready.
        previous: previous
            .filter(|p| p.status == ExportStatus::Ready)
            .map(|p| p.object),
        ttl: None,
    };
    let per_day = i64::from(app.config.exports.per_day);
    let count = Write::update(keys::export_day(member, &day_text(now)))
        .add("n", 1)
        .set("ttl", at + 2 * DAY_SECS)
        .condition(Condition::Under("n".into(), per_day), DAILY_LABEL)
        .build();
    let put = Write::put_if(
        record.to_item(keys::export(member), Some(keys::export_listed(at, member)))?,
        Condition::Under("active".into(), 1),
        IN_PROGRESS_LABEL,
    );
    let audit_record = AuditRecord::by(
        Actor::Member(member.clone()),
        now,
        REQUEST_ACTION,
        Target::member(member),
        None,
        "ok",
    );
    let mut writes = vec![count, put];
    writes.extend(audit::writes(&audit_record, app.config.audit_keep)?);
    match store.transact(writes).await {
        Ok(()) => Ok(record),
        Err(StoreError::ConditionFailed { label: DAILY_LABEL }) => Err(Error::TooManyRequests {
            retry_after_secs: secs_to_midnight(at),
        }),
        Err(StoreError::ConditionFailed {
            label: IN_PROGRESS_LABEL,
        }) => Err(in_progress()),
        Err(e) => Err(e.into()),
    }
}

fn in_progress() -> Error {
    Error::Conflict {
        code: "export_in_progress",
        message: "an export is already being prepared; GET /v1/me/export says when it is ready"
            .into(),
    }
}

fn parse_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// `GET /v1/me/export`: the latest export; when ready, with `url` and `expires_at` (the link's
/// end). 404 when the member never asked, or their last export has been deleted.
pub async fn status(app: &App, member: &UserId, now: OffsetDateTime) -> Result<Value, Error> {
    let record: ExportRecord = app
        .store
        .get_record(&keys::export(member))
        .await?
        .ok_or(Error::NotFound("export"))?;
    let at = now.unix_timestamp();
    let ends = record.expires_at.as_deref().and_then(parse_time);
    let mut view = record.view();
    if record.status == ExportStatus::Ready {
        let ends = ends.ok_or_else(|| Error::Internal("a ready export without its end".into()))?;
        if ends <= at {
            // Deleted by the lifecycle rule (the record's TTL follows within a day or two).
            return Err(Error::NotFound("export"));
        }
        let link_secs = i64::try_from(app.config.exports.link.as_secs()).unwrap_or(900);
        let secs = link_secs.min(ends - at).max(1);
        let url = app
            .archive()?
            .link(
                &record.object,
                std::time::Duration::from_secs(secs.unsigned_abs()),
            )
            .await?;
        view["url"] = json!(url);
        view["expires_at"] = json!(rfc3339(now + time::Duration::seconds(secs)));
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_waits_are_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(day_text(t), "2023-11-14");
        assert_eq!(
            secs_to_midnight(1_700_000_000),
            86_400 - 1_700_000_000 % 86_400
        );
        assert_eq!(secs_to_midnight(0), 86_400);
        let member = UserId::generate();
        let key = object_key(&member, "01J");
        assert_eq!(key, format!("exports/{member}/01J.json"));
    }
}
