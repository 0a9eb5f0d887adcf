//! The staff's media queue: videos (WeChat checks no video) and images whose check never came
//! back or was inconclusive, oldest upload first (`gsi1` `QUEUE#media`). A decision applies as a
//! check result would: approve → public (a video once its cover has passed too); reject →
//! never public, every entity using it shows it `removed` with the reason. The staff request edge
//! audits each call with the stated reason.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::jobs::cover_passed;
use super::results::{fan_out, finish};
use super::{MediaRecord, MediaStatus};
use crate::app::App;
use crate::domain::audit::MAX_REASON_CHARS;
use crate::domain::members::rfc3339;
use crate::error::Error;
use crate::ids::MediaId;
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, PageCursor, Query, Record, SortKey, StoreError, Write};

/// How long a queue item's preview link lives.
pub const PREVIEW_SECS: u64 = 600;

/// `POST /admin/v1/moderation/media/{id}/decision`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl DecisionBody {
    /// The decision and its reason (required, ≤ 200 characters): 422 naming the field.
    pub fn check(self) -> Result<(Decision, String), Error> {
        let decision = match self.decision.as_deref() {
            Some("approve") => Decision::Approve,
            Some("reject") => Decision::Reject,
            _ => return Err(Error::invalid("decision", "is approve or reject")),
        };
        let reason = self.reason.as_deref().map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(Error::invalid("reason", "is required"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::invalid(
                "reason",
                format!("is at most {MAX_REASON_CHARS} characters"),
            ));
        }
        Ok((decision, reason.to_owned()))
    }
}

/// One queued upload as staff see it: who, what for, why it waits, a short-lived preview link,
/// where it is used.
async fn item_view(app: &App, record: &MediaRecord, why: Option<String>) -> Result<Value, Error> {
    let preview = app
        .media_bucket()?
        .link(&record.key, Duration::from_secs(PREVIEW_SECS))
        .await?
        .url;
    Ok(json!({
        "id": record.id,
        "owner_id": record.owner,
        "purpose": record.purpose,
        "content_type": record.content_type,
        "size": record.size,
        "status": record.status,
        "waiting_for": why,
        "media_url": record.url(&app.config.media.base_url),
        "preview_url": preview,
        "cover_id": record.cover,
        "approved_by_staff": record.approved_by_staff.unwrap_or(false),
        "used_by": record.used_by,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }))
}

/// `GET /admin/v1/moderation/media`: the queue, oldest upload first.
pub async fn queue(
    app: &App,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::MEDIA_QUEUE).index(GSI1).limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = app.store.query(query.after(cursor)).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for item in page.items {
        let why = super::results::CheckState::of(&item).review;
        let record = MediaRecord::from_item(item)?;
        if record.status == MediaStatus::Checking {
            items.push(item_view(app, &record, why).await?);
        }
    }
    Ok((items, page.next.map(PageCursor::from)))
}

/// `POST /admin/v1/moderation/media/{id}/decision`: 404 unless the upload is in the queue.
pub async fn decide(
    app: &App,
    id: &MediaId,
    decision: Decision,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Value, Error> {
    let queued = keys::media_queued(id);
    let page = app
        .store
        .query(
            Query::partition(queued.pk.clone())
                .index(GSI1)
                .sort(SortKey::Between(queued.sk.clone(), queued.sk.clone()))
                .limit(1),
        )
        .await?;
    let item = page
        .items
        .into_iter()
        .next()
        .ok_or(Error::NotFound("media awaiting a decision"))?;
    let record = MediaRecord::from_item(item)?;
    if record.status != MediaStatus::Checking {
        return Err(Error::NotFound("media awaiting a decision"));
    }
    let key = keys::media(&record.owner, &record.id);
    let update = Write::update(key.clone());
    let update = match decision {
        Decision::Reject => finish(update, &record, MediaStatus::Rejected, Some(reason), now),
        Decision::Approve if !record.purpose.is_video() => {
            finish(update, &record, MediaStatus::Passed, None, now)
        }
        Decision::Approve => {
            let update = update.set("approved_by_staff", true);
            match cover_passed(app, &record).await? {
                true => finish(update, &record, MediaStatus::Passed, None, now),
                // Waits for its cover: the job looks at it again.
                false => {
                    let listed =
                        keys::media_listed(now.unix_timestamp(), &record.owner, &record.id);
                    update
                        .set("updated_at", rfc3339(now))
                        .set("gsi1pk", listed.pk)
                        .set("gsi1sk", listed.sk)
                        .remove("review")
                }
            }
        }
    };
    let write = update
        .condition(
            Condition::All(vec![
                Condition::Equals("gsi1pk".into(), json!(queued.pk)),
                Condition::Equals("status".into(), json!(MediaStatus::Checking)),
            ]),
            "media_queued",
        )
        .build();
    match app.store.write(write).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed { .. }) => {
            return Err(Error::Conflict {
                code: "media_decided",
                message: "this upload was decided or checked meanwhile".into(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = fan_out(app, &record.owner, &record.id, now).await {
        tracing::warn!(error = %e, media = %record.id, "fan-out left to the media job");
    }
    let after: MediaRecord = crate::store::Records::get_record(&app.store, &key)
        .await?
        .ok_or(Error::NotFound("media"))?;
    Ok(json!({
        "id": after.id,
        "owner_id": after.owner,
        "purpose": after.purpose,
        "status": after.status,
        "reason": after.reason,
        "approved_by_staff": after.approved_by_staff.unwrap_or(false),
        "used_by": after.used_by,
        "updated_at": after.updated_at,
    }))
}
