//! An image check's result, applied to its upload exactly once, and an upload's final state
//! carried to the bucket and to every entity that uses it.
//!
//! WeChat answers `mediaCheckAsync` with a trace id and pushes the result later (within 30
//! minutes, to `POST /v1/wechat/events`); the push may even come before the job has stored the
//! trace id. So both write one item per trace id ([`keys::media_check`], [`MediaCheck`]): the job
//! its upload (`owner`, `media`), the push its [`Verdict`] — each with a conditional write, and
//! whichever comes second applies the result ([`settle`]). Applying is one transaction: the
//! upload's change, conditioned on it still waiting for this very check, and the check marked
//! applied (conditioned on not being so yet). A second push of the same trace id changes nothing.
//!
//! The upload's final state (`passed`, `risky`, `rejected`) leaves it listed in `DUE#media`, due
//! at once; [`fan_out`] makes the object public (passed) and updates the holds of every entity in
//! `used_by`, then unlists it. If any of that fails, the media job does it again a minute later
//! (every step is idempotent).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{holds, Hold, MediaRecord, MediaStatus};
use crate::app::App;
use crate::domain::members::rfc3339;
use crate::error::Error;
use crate::ids::{MediaId, UserId};
use crate::store::record::json_text;
use crate::store::{keys, Condition, Record, StoreError, UpdateBuilder, Write};

/// How long a check's item is kept (a late duplicate push still finds it).
pub const CHECK_KEEP_SECS: i64 = 30 * 86_400;
/// How many times an image WeChat could not download is checked again before staff look at it.
pub const MAX_DOWNLOAD_ATTEMPTS: u32 = 3;

/// What an image check said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Never public; the owner is told [`risky_reason`] of the label.
    Risky {
        label: String,
    },
    /// WeChat is unsure: staff decide.
    Review {
        label: String,
    },
    /// errcode -1008: WeChat could not download the image (check again later).
    DownloadFailed,
    /// Another errcode: staff decide.
    Failed {
        errcode: i64,
    },
}

/// One pushed result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub trace_id: String,
    pub verdict: Verdict,
}

/// An image check as stored ([`keys::media_check`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaCheck {
    pub trace_id: String,
    /// The upload (written by the job once WeChat gave the trace id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaId>,
    /// The pushed result (JSON text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "json_text_option"
    )]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<String>,
    /// When the result was applied to the upload (or found stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    pub ttl: i64,
}

impl Record for MediaCheck {
    const KIND: &'static str = "image check";
}

mod json_text_option {
    use super::{json_text, Verdict};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Verdict>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => json_text::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Verdict>, D::Error> {
        json_text::deserialize::<Verdict, D>(d).map(Some)
    }
}

/// What the checks keep on an upload beside its [`MediaRecord`]: attributes of the same item,
/// written by updates only (so a record written whole elsewhere never has to name them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct CheckState {
    /// Image checks asked that gave no answer (WeChat errors, failed downloads): the backoff.
    #[serde(default)]
    pub attempts: u32,
    /// When the pending image check was asked (RFC 3339).
    #[serde(default)]
    pub check_asked_at: Option<String>,
    /// Why it waits for a staff decision (`video`, `timeout`, `review`, `not_recently_active`,
    /// `download_failed`, `check_failed`, `check_refused`, `no_openid`): it is then in the
    /// staff's media queue.
    #[serde(default)]
    pub review: Option<String>,
}

impl CheckState {
    /// The state an upload's item holds (none: the defaults).
    pub fn of(item: &crate::store::Item) -> Self {
        serde_json::from_value(Value::Object(item.clone())).unwrap_or_default()
    }
}

/// A WeChat trace id fit for a key: 1–128 of letters, digits, `-` and `_`.
pub fn valid_trace_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A number WeChat sent as a number or as text.
fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A label WeChat sent as a number or as text.
fn label(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().chars().take(32).collect()),
        _ => None,
    }
}

/// A `wxa_media_check` push (decrypted), read defensively: `errcode` and `label` as numbers or
/// text; a v1-shaped push (`isrisky`, `status_code` 4294966288 = -1008, values as text). 400
/// without a usable `trace_id`; a verdict that cannot be read goes to staff (`review`).
pub fn parse_push(msg: &Value) -> Result<CheckResult, Error> {
    let trace_id = msg
        .get("trace_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| valid_trace_id(t))
        .ok_or_else(|| Error::invalid("trace_id", "is missing or malformed"))?
        .to_owned();
    let errcode = number(msg.get("errcode"))
        .or_else(|| number(msg.get("status_code")))
        .unwrap_or(0);
    // v1 carries the errcode as an unsigned 32-bit number.
    let errcode = if errcode > i64::from(i32::MAX) && errcode <= i64::from(u32::MAX) {
        errcode - (1i64 << 32)
    } else {
        errcode
    };
    let verdict = match errcode {
        0 => {
            let result = msg.get("result");
            let suggest = result
                .and_then(|r| r.get("suggest"))
                .and_then(Value::as_str)
                .map(|s| s.trim().to_ascii_lowercase());
            let label = label(result.and_then(|r| r.get("label")));
            match (suggest.as_deref(), number(msg.get("isrisky"))) {
                (Some("pass"), _) => Verdict::Pass,
                (Some("risky"), _) => Verdict::Risky {
                    label: label.unwrap_or_else(|| "risky".into()),
                },
                (Some("review"), _) => Verdict::Review {
                    label: label.unwrap_or_else(|| "review".into()),
                },
                (None, Some(0)) => Verdict::Pass,
                (None, Some(_)) => Verdict::Risky {
                    label: label.unwrap_or_else(|| "risky".into()),
                },
                _ => Verdict::Review {
                    label: "unreadable".into(),
                },
            }
        }
        -1008 => Verdict::DownloadFailed,
        other => Verdict::Failed { errcode: other },
    };
    Ok(CheckResult { trace_id, verdict })
}

/// The reason a risky image's owner is shown: a readable code for WeChat's label (100 normal,
/// 20001 politics, 20002 pornography, 20006 illegal, 21000 other).
pub fn risky_reason(label: &str) -> String {
    match label {
        "20001" => "risky_politics",
        "20002" => "risky_pornography",
        "20006" => "risky_illegal",
        _ => "risky_other",
    }
    .to_owned()
}

/// What became of a pushed result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Applied to its upload now.
    Applied,
    /// This trace id's result came before: nothing changed.
    Duplicate,
    /// Stored; applied when the job records the trace id.
    Early,
    /// Its upload no longer waits for this check (staff decided, another check was asked).
    Stale,
}

/// A pushed result: stored once per trace id, applied when its upload is known.
pub async fn apply_push(
    app: &App,
    result: &CheckResult,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    let text =
        serde_json::to_string(&result.verdict).map_err(|e| Error::Internal(e.to_string()))?;
    let write = Write::update(keys::media_check(&result.trace_id))
        .set("trace_id", result.trace_id.as_str())
        .set("verdict", text)
        .set("pushed_at", rfc3339(now))
        .set("ttl", now.unix_timestamp() + CHECK_KEEP_SECS)
        .condition(Condition::Lacks("verdict".into()), "check_pushed")
        .build();
    let item = match app.store.write(write).await {
        Ok(Some(item)) => item,
        Ok(None) => return Err(Error::Internal("an update left no item".into())),
        Err(StoreError::ConditionFailed { .. }) => return Ok(Applied::Duplicate),
        Err(e) => return Err(e.into()),
    };
    let check = MediaCheck::from_item(item)?;
    match (&check.owner, &check.media) {
        (Some(owner), Some(media)) => {
            settle(app, &result.trace_id, owner, media, &result.verdict, now).await
        }
        _ => Ok(Applied::Early),
    }
}

/// The job's side: `trace_id` is the check of this upload (already on the record); applies a
/// result that was pushed before.
pub async fn link(
    app: &App,
    trace_id: &str,
    owner: &UserId,
    media: &MediaId,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    let write = Write::update(keys::media_check(trace_id))
        .set("trace_id", trace_id)
        .set("owner", owner.as_str())
        .set("media", media.as_str())
        .set("ttl", now.unix_timestamp() + CHECK_KEEP_SECS)
        .condition(Condition::Lacks("owner".into()), "check_linked")
        .build();
    let item = match app.store.write(write).await {
        Ok(Some(item)) => item,
        Ok(None) => return Err(Error::Internal("an update left no item".into())),
        Err(StoreError::ConditionFailed { .. }) => return Ok(Applied::Duplicate),
        Err(e) => return Err(e.into()),
    };
    match MediaCheck::from_item(item)?.verdict {
        Some(verdict) => settle(app, trace_id, owner, media, &verdict, now).await,
        None => Ok(Applied::Early),
    }
}

/// Applies `verdict` of check `trace_id` to its upload, once.
async fn settle(
    app: &App,
    trace_id: &str,
    owner: &UserId,
    media: &MediaId,
    verdict: &Verdict,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    let check_key = keys::media_check(trace_id);
    let mark_applied = Write::update(check_key)
        .set("applied_at", rfc3339(now))
        .condition(Condition::Lacks("applied_at".into()), "check_applied")
        .build();
    let item = app.store.get(&keys::media(owner, media)).await?;
    let attempts = item.as_ref().map_or(0, |i| CheckState::of(i).attempts);
    let record = item.map(MediaRecord::from_item).transpose()?;
    let waiting = record
        .as_ref()
        .filter(|r| r.status == MediaStatus::Checking && r.trace_id.as_deref() == Some(trace_id));
    let Some(record) = waiting else {
        return match app.store.write(mark_applied).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => Ok(Applied::Stale),
            Err(e) => Err(e.into()),
        };
    };
    let change = verdict_change(record, attempts, verdict, now)
        .condition(
            Condition::All(vec![
                Condition::Equals("status".into(), json!(MediaStatus::Checking)),
                Condition::Equals("trace_id".into(), json!(trace_id)),
            ]),
            "media_awaits_check",
        )
        .build();
    match app.store.transact(vec![change, mark_applied]).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed {
            label: "check_applied",
        }) => return Ok(Applied::Duplicate),
        Err(StoreError::ConditionFailed { .. }) => return Ok(Applied::Stale),
        Err(e) => return Err(e.into()),
    }
    // Listed in DUE#media at once: the media job (granted the bucket's tags and the entities
    // that use uploads) makes it public or not and updates those entities; the push route only
    // records the verdict and answers WeChat at once.
    tracing::info!(media = %media, ?verdict, "image check applied");
    Ok(Applied::Applied)
}

/// The record's change for a verdict (the caller adds the condition).
fn verdict_change(
    record: &MediaRecord,
    attempts: u32,
    verdict: &Verdict,
    now: OffsetDateTime,
) -> UpdateBuilder {
    let update = Write::update(keys::media(&record.owner, &record.id));
    match verdict {
        Verdict::Pass => finish(update, record, MediaStatus::Passed, None, now),
        Verdict::Risky { label } => finish(
            update,
            record,
            MediaStatus::Risky,
            Some(&risky_reason(label)),
            now,
        ),
        Verdict::Review { .. } => to_staff(update, record, "review", now),
        Verdict::Failed { .. } => to_staff(update, record, "check_failed", now),
        Verdict::DownloadFailed if attempts + 1 >= MAX_DOWNLOAD_ATTEMPTS => {
            to_staff(update, record, "download_failed", now)
        }
        Verdict::DownloadFailed => retry_later(update, record, attempts, now),
    }
}

/// The upload's final state, listed in `DUE#media` at once for [`fan_out`].
pub(crate) fn finish(
    update: UpdateBuilder,
    record: &MediaRecord,
    status: MediaStatus,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> UpdateBuilder {
    let listed = keys::media_listed(now.unix_timestamp(), &record.owner, &record.id);
    let update = update
        .set("status", json!(status))
        .set("updated_at", rfc3339(now))
        .set("gsi1pk", listed.pk)
        .set("gsi1sk", listed.sk)
        .remove("review");
    match reason {
        Some(reason) => update.set("reason", reason),
        None => update.remove("reason"),
    }
}

/// Into the staff's media queue (out of the job's list), with why.
pub(crate) fn to_staff(
    update: UpdateBuilder,
    record: &MediaRecord,
    why: &str,
    now: OffsetDateTime,
) -> UpdateBuilder {
    let queued = keys::media_queued(&record.id);
    update
        .set("review", why)
        .set("updated_at", rfc3339(now))
        .set("gsi1pk", queued.pk)
        .set("gsi1sk", queued.sk)
}

/// When an image whose check gave no answer is asked again: 1, 2, 4 … minutes, at most an hour.
pub fn backoff_secs(attempts: u32) -> i64 {
    60i64.saturating_mul(1 << attempts.min(6)).min(3_600)
}

/// Check again later (`attempts`: those before this one): the trace id forgotten, due after the
/// backoff.
pub(crate) fn retry_later(
    update: UpdateBuilder,
    record: &MediaRecord,
    attempts: u32,
    now: OffsetDateTime,
) -> UpdateBuilder {
    let attempts = attempts + 1;
    let listed = keys::media_listed(
        now.unix_timestamp() + backoff_secs(attempts),
        &record.owner,
        &record.id,
    );
    update
        .set("attempts", attempts)
        .set("updated_at", rfc3339(now))
        .set("gsi1pk", listed.pk)
        .set("gsi1sk", listed.sk)
        .remove("trace_id")
        .remove("check_asked_at")
}

/// Carries an upload's final state out: passed → the object public and its holds cleared;
/// risky or rejected → each entity's hold `removed` with the reason (the object never was
/// public). Then unlists it from `DUE#media`. Nothing to do for an upload not final.
pub async fn fan_out(
    app: &App,
    owner: &UserId,
    media: &MediaId,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let _ = now;
    let key = keys::media(owner, media);
    let Some(item) = app.store.get(&key).await? else {
        return Ok(());
    };
    let listed = item.get("gsi1sk").cloned();
    let listed_in = item
        .get("gsi1pk")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let record = MediaRecord::from_item(item)?;
    let url = record.url(&app.config.media.base_url);
    let hold = match record.status {
        MediaStatus::Passed => {
            app.media_bucket()?.set_public(&record.key, true).await?;
            None
        }
        MediaStatus::Risky | MediaStatus::Rejected => Some(Hold::Removed {
            reason: record.reason.clone().unwrap_or_else(|| "removed".into()),
        }),
        MediaStatus::Issued | MediaStatus::Checking => return Ok(()),
    };
    for subject in &record.used_by {
        holds::update(app, subject, &url, hold.clone()).await?;
    }
    if listed_in.as_deref() == Some(keys::due_partition("media").as_str()) {
        let unlist = Write::update(key)
            .remove("gsi1pk")
            .remove("gsi1sk")
            .condition(
                Condition::All(vec![
                    Condition::Equals("gsi1sk".into(), listed.unwrap_or(Value::Null)),
                    Condition::Equals("status".into(), json!(record.status)),
                ]),
                "media_fanned_out",
            )
            .build();
        match app.store.write(unlist).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Verdict {
        parse_push(&v).unwrap().verdict
    }

    #[test]
    fn pushes_are_read_defensively() {
        let base = json!({"Event": "wxa_media_check", "trace_id": "t-1", "version": 2});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            parse(with(
                json!({"errcode": 0, "result": {"suggest": "pass", "label": 100}})
            )),
            Verdict::Pass
        );
        // The label as text, as live pushes send it.
        assert_eq!(
            parse(with(
                json!({"errcode": "0", "result": {"suggest": "risky", "label": "20002"}})
            )),
            Verdict::Risky {
                label: "20002".into()
            }
        );
        assert_eq!(
            parse(with(
                json!({"errcode": 0, "result": {"suggest": "review", "label": 21000}})
            )),
            Verdict::Review {
                label: "21000".into()
            }
        );
        assert_eq!(
            parse(with(json!({"errcode": -1008, "errmsg": "download fail"}))),
            Verdict::DownloadFailed
        );
        assert_eq!(
            parse(with(json!({"errcode": "-1008"}))),
            Verdict::DownloadFailed
        );
        // v1-shaped: isrisky and status_code as text, 4294966288 = -1008.
        assert_eq!(
            parse(with(json!({"isrisky": "0", "status_code": "0"}))),
            Verdict::Pass
        );
        assert_eq!(
            parse(with(json!({"isrisky": 1, "extra_info_json": "{}"}))),
            Verdict::Risky {
                label: "risky".into()
            }
        );
        assert_eq!(
            parse(with(json!({"isrisky": 0, "status_code": 4294966288u64}))),
            Verdict::DownloadFailed
        );
        assert_eq!(
            parse(with(json!({"errcode": 87014}))),
            Verdict::Failed { errcode: 87014 }
        );
        // Nothing readable: staff decide.
        assert_eq!(
            parse(with(json!({"errcode": 0}))),
            Verdict::Review {
                label: "unreadable".into()
            }
        );
        for bad in [
            json!({"errcode": 0}),
            json!({"trace_id": ""}),
            json!({"trace_id": "a#b"}),
            json!({"trace_id": 7}),
        ] {
            assert!(parse_push(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_check_round_trips_with_its_verdict_as_text() {
        let check = MediaCheck {
            trace_id: "t".into(),
            owner: None,
            media: None,
            verdict: Some(Verdict::Risky {
                label: "20002".into(),
            }),
            pushed_at: None,
            applied_at: None,
            ttl: 1,
        };
        let item = check.to_item(keys::media_check("t"), None).unwrap();
        assert!(item["verdict"].is_string());
        assert_eq!(MediaCheck::from_item(item).unwrap(), check);
        assert_eq!(risky_reason("20002"), "risky_pornography");
        assert_eq!(risky_reason("x"), "risky_other");
        assert_eq!(backoff_secs(1), 120);
        assert_eq!(backoff_secs(30), 3_600);
    }
}
