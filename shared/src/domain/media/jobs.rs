//! The media job (the `media-jobs` function, every minute; the local server's timer): works the
//! uploads listed in `gsi1` `DUE#media` up to now, oldest due first, in bounded batches.
//!
//! - `issued`: HEAD the object. Absent: due again (every minute) until the policy's expiry plus
//!   [`UPLOAD_GRACE_SECS`], then the record is dropped (an entity that used it shows it
//!   `removed`, `not_uploaded`). Present: its size (at most the announced size, not empty) and
//!   type must be the policy's, else the object is deleted and the upload `rejected`
//!   (`not_as_announced`); then `checking` — a video goes to the staff queue, an image is asked.
//! - `checking` image without a trace id: ask WeChat's `mediaCheckAsync` with a signed GET link
//!   ([`CHECK_LINK_SECS`]); the trace id is stored and the upload is due again after
//!   [`CHECK_TIMEOUT_SECS`]. WeChat unavailable → due again with backoff; 61010, a refusal or a
//!   member without an openid → staff queue.
//! - `checking` image with a trace id, due: no push came in time → staff queue (`timeout`).
//! - `checking` video staff approved: public once its cover has passed (polled every
//!   [`COVER_POLL_SECS`]).
//! - final (`passed`, `risky`, `rejected`) and still listed: its fan-out did not finish — again.
//!
//! Every change is conditioned on the `gsi1sk` the run read; asking WeChat is preceded by a claim
//! (the upload moved to a lease), so of concurrent runs one asks.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::results::{self, finish, retry_later, to_staff};
use super::{holds, Hold, MediaRecord, MediaStatus, Purpose};
use crate::app::App;
use crate::domain::members::{rfc3339, Member};
use crate::error::Error;
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, Query, Record, Records, SortKey, StoreError, Write};
use crate::wechat::api::{ImageCheck, PlatformError, Scene};

/// How long after its policy expired an upload never seen is dropped.
pub const UPLOAD_GRACE_SECS: i64 = 600;
/// A claim's lease: a run that crashed after claiming is retried after this.
pub const LEASE_SECS: i64 = 300;
/// How long WeChat has to push a result before staff look at the image (its documented 30 min).
pub const CHECK_TIMEOUT_SECS: i64 = 1_800;
/// How long the signed GET link handed to WeChat lives: longer than the 30-minute window.
pub const CHECK_LINK_SECS: u64 = 7_200;
/// How often a staff-approved video's cover is looked at again.
pub const COVER_POLL_SECS: i64 = 60;

/// How much one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub per_run: usize,
    pub time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_run: 50,
            time: Duration::from_secs(40),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub examined: u32,
    /// Uploads still not there (due again).
    pub waiting: u32,
    /// Records of uploads that never came, dropped.
    pub dropped: u32,
    /// Objects not as announced: deleted, upload rejected.
    pub rejected: u32,
    /// Image checks asked.
    pub asked: u32,
    /// Image checks that WeChat did not take (due again later).
    pub retried: u32,
    /// Put in the staff queue.
    pub queued: u32,
    /// Final states carried out (public, holds).
    pub fanned_out: u32,
    /// Taken by another run, or changed since read.
    pub skipped: u32,
    pub failed: u32,
    /// Work was left for the next run.
    pub more: bool,
}

/// What one upload's step did.
enum Step {
    Waiting,
    Dropped,
    Rejected,
    Asked,
    Retried,
    Queued,
    FannedOut,
    Skipped,
}

/// One run at `now`.
pub async fn run(app: &App, now: OffsetDateTime, budget: Budget) -> Result<Report, Error> {
    let started = Instant::now();
    let mut report = Report::default();
    let page = app
        .store
        .query(
            Query::partition(keys::due_partition("media"))
                .index(GSI1)
                .sort(SortKey::Below(keys::due(now.unix_timestamp() + 1)))
                .limit(budget.per_run),
        )
        .await?;
    report.more = page.next.is_some();
    for item in page.items {
        if started.elapsed() >= budget.time {
            report.more = true;
            break;
        }
        report.examined += 1;
        let listed = item
            .get("gsi1sk")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let attempts = results::CheckState::of(&item).attempts;
        let step = match MediaRecord::from_item(item) {
            Ok(record) => step(app, record, attempts, &listed, now).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(Step::Waiting) => report.waiting += 1,
            Ok(Step::Dropped) => report.dropped += 1,
            Ok(Step::Rejected) => report.rejected += 1,
            Ok(Step::Asked) => report.asked += 1,
            Ok(Step::Retried) => report.retried += 1,
            Ok(Step::Queued) => report.queued += 1,
            Ok(Step::FannedOut) => report.fanned_out += 1,
            Ok(Step::Skipped) => report.skipped += 1,
            Err(e) => {
                tracing::warn!(error = %e, "media job step failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// The condition every change of this run makes: the upload is still where the run read it.
fn still_listed(listed: &str) -> Condition {
    Condition::Equals("gsi1sk".into(), json!(listed))
}

/// Runs a conditional write: `false` when another run changed the upload first.
async fn try_write(app: &App, write: Write) -> Result<bool, Error> {
    match app.store.write(write).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn step(
    app: &App,
    record: MediaRecord,
    attempts: u32,
    listed: &str,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    match record.status {
        MediaStatus::Issued => confirm(app, record, listed, now).await,
        MediaStatus::Checking if record.purpose.is_video() => video(app, record, listed, now).await,
        MediaStatus::Checking if record.trace_id.is_none() => {
            ask(app, record, attempts, listed, now).await
        }
        MediaStatus::Checking => {
            // Due while waiting for a push: WeChat did not answer in time.
            let update = Write::update(keys::media(&record.owner, &record.id));
            let write = to_staff(update, &record, "timeout", now)
                .condition(still_listed(listed), "media_listed")
                .build();
            Ok(match try_write(app, write).await? {
                true => Step::Queued,
                false => Step::Skipped,
            })
        }
        MediaStatus::Passed | MediaStatus::Risky | MediaStatus::Rejected => {
            results::fan_out(app, &record.owner, &record.id, now).await?;
            Ok(Step::FannedOut)
        }
    }
}

/// An issued upload: is the object there, and as announced?
async fn confirm(
    app: &App,
    record: MediaRecord,
    listed: &str,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    let bucket = app.media_bucket()?;
    let key = keys::media(&record.owner, &record.id);
    let at = now.unix_timestamp();
    let expires = OffsetDateTime::parse(&record.upload_expires_at, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .unwrap_or(at);
    if at < expires {
        // The form still works: bytes checked now could be replaced by another POST with it
        // after WeChat fetched them, and a pass would publish what nobody saw. Look once it
        // has expired (the object cannot change after that).
        let again = keys::media_listed(expires, &record.owner, &record.id);
        let write = Write::update(key)
            .set("gsi1sk", again.sk)
            .condition(still_listed(listed), "media_listed")
            .build();
        return Ok(match try_write(app, write).await? {
            true => Step::Waiting,
            false => Step::Skipped,
        });
    }
    let Some(head) = bucket.head(&record.key).await? else {
        let give_up = expires + UPLOAD_GRACE_SECS;
        if at < give_up {
            let again = keys::media_listed((at + 60).min(give_up), &record.owner, &record.id);
            let write = Write::update(key)
                .set("gsi1sk", again.sk)
                .condition(still_listed(listed), "media_listed")
                .build();
            return Ok(match try_write(app, write).await? {
                true => Step::Waiting,
                false => Step::Skipped,
            });
        }
        // Never uploaded: whatever used it shows it removed, then the record goes.
        let url = record.url(&app.config.media.base_url);
        let hold = Hold::Removed {
            reason: "not_uploaded".into(),
        };
        for subject in &record.used_by {
            holds::update(app, subject, &url, Some(hold.clone())).await?;
        }
        let write = Write::delete_if(
            key,
            Condition::All(vec![
                still_listed(listed),
                Condition::Equals("status".into(), json!(MediaStatus::Issued)),
            ]),
            "media_listed",
        );
        return Ok(match try_write(app, write).await? {
            true => Step::Dropped,
            false => Step::Skipped,
        });
    };
    let as_announced =
        head.size > 0 && head.size <= record.size && head.content_type == record.content_type;
    if !as_announced {
        bucket.delete(&record.key).await?;
        let write = finish(
            Write::update(key),
            &record,
            MediaStatus::Rejected,
            Some("not_as_announced"),
            now,
        )
        .condition(still_listed(listed), "media_listed")
        .build();
        if !try_write(app, write).await? {
            return Ok(Step::Skipped);
        }
        results::fan_out(app, &record.owner, &record.id, now).await?;
        return Ok(Step::Rejected);
    }
    if record.purpose.is_video() {
        let write = to_staff(Write::update(key), &record, "video", now)
            .set("status", json!(MediaStatus::Checking))
            .condition(still_listed(listed), "media_listed")
            .build();
        return Ok(match try_write(app, write).await? {
            true => Step::Queued,
            false => Step::Skipped,
        });
    }
    // An image: checking, and this run holds the claim to ask.
    let lease = keys::media_listed(at + LEASE_SECS, &record.owner, &record.id);
    let write = Write::update(key)
        .set("status", json!(MediaStatus::Checking))
        .set("updated_at", rfc3339(now))
        .set("gsi1sk", lease.sk.clone())
        .condition(still_listed(listed), "media_listed")
        .build();
    if !try_write(app, write).await? {
        return Ok(Step::Skipped);
    }
    let mut record = record;
    record.status = MediaStatus::Checking;
    ask_claimed(app, record, 0, &lease.sk, now).await
}

/// An image to check: claim it, then ask.
async fn ask(
    app: &App,
    record: MediaRecord,
    attempts: u32,
    listed: &str,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    let lease = keys::media_listed(now.unix_timestamp() + LEASE_SECS, &record.owner, &record.id);
    let claim = Write::update(keys::media(&record.owner, &record.id))
        .set("gsi1sk", lease.sk.clone())
        .condition(
            Condition::All(vec![
                still_listed(listed),
                Condition::Equals("status".into(), json!(MediaStatus::Checking)),
                Condition::Lacks("trace_id".into()),
            ]),
            "media_claimed",
        )
        .build();
    if !try_write(app, claim).await? {
        return Ok(Step::Skipped);
    }
    ask_claimed(app, record, attempts, &lease.sk, now).await
}

/// The check's scene by what the image is for.
fn scene(purpose: Purpose) -> Scene {
    match purpose {
        Purpose::Avatar => Scene::Profile,
        Purpose::ReviewImage | Purpose::TicketImage => Scene::Comment,
        Purpose::ListingImage | Purpose::ListingVideo | Purpose::VideoCover => Scene::Forum,
    }
}

/// Asks WeChat to check a claimed image (`lease`: its `gsi1sk` while claimed).
async fn ask_claimed(
    app: &App,
    record: MediaRecord,
    attempts: u32,
    lease: &str,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    let key = keys::media(&record.owner, &record.id);
    let owner: Option<Member> = app.store.get_record(&keys::member(&record.owner)).await?;
    let openid = owner.map(|m| m.openid).unwrap_or_default();
    let queue = |why: &str| {
        to_staff(Write::update(key.clone()), &record, why, now)
            .condition(still_listed(lease), "media_claimed")
            .build()
    };
    if openid.is_empty() {
        return Ok(match try_write(app, queue("no_openid")).await? {
            true => Step::Queued,
            false => Step::Skipped,
        });
    }
    let link = app
        .media_bucket()?
        .link(&record.key, Duration::from_secs(CHECK_LINK_SECS))
        .await?
        .url;
    let asked = app
        .wechat_api()?
        .check_image(&ImageCheck {
            openid: &openid,
            scene: scene(record.purpose),
            media_url: &link,
        })
        .await;
    let trace_id = match asked {
        Ok(trace_id) if results::valid_trace_id(&trace_id) => trace_id,
        Ok(other) => {
            tracing::warn!(trace_id = %other, "mediaCheckAsync answered an unusable trace id");
            return Ok(match try_write(app, queue("check_refused")).await? {
                true => Step::Queued,
                false => Step::Skipped,
            });
        }
        Err(PlatformError::NotRecentlyActive) => {
            return Ok(match try_write(app, queue("not_recently_active")).await? {
                true => Step::Queued,
                false => Step::Skipped,
            })
        }
        Err(PlatformError::Refused(errcode)) => {
            tracing::warn!(errcode, media = %record.id, "mediaCheckAsync refused the image");
            return Ok(match try_write(app, queue("check_refused")).await? {
                true => Step::Queued,
                false => Step::Skipped,
            });
        }
        Err(e) => {
            if let PlatformError::Misconfigured(errcode) = e {
                tracing::error!(
                    errcode,
                    "mediaCheckAsync: WeChat refused this app's configuration"
                );
            } else {
                tracing::warn!(error = ?e, "mediaCheckAsync unavailable; asked again later");
            }
            let write = retry_later(Write::update(key), &record, attempts, now)
                .condition(still_listed(lease), "media_claimed")
                .build();
            return Ok(match try_write(app, write).await? {
                true => Step::Retried,
                false => Step::Skipped,
            });
        }
    };
    let timeout = keys::media_listed(
        now.unix_timestamp() + CHECK_TIMEOUT_SECS,
        &record.owner,
        &record.id,
    );
    let write = Write::update(key)
        .set("trace_id", trace_id.as_str())
        .set("check_asked_at", rfc3339(now))
        .set("updated_at", rfc3339(now))
        .set("gsi1sk", timeout.sk)
        .condition(still_listed(lease), "media_claimed")
        .build();
    if !try_write(app, write).await? {
        tracing::warn!(media = %record.id, "image check asked after its claim ended");
        return Ok(Step::Skipped);
    }
    // A result pushed before the trace id was stored is applied now.
    results::link(app, &trace_id, &record.owner, &record.id, now).await?;
    Ok(Step::Asked)
}

/// A video staff approved (else it belongs in the staff queue): public once its cover passed.
async fn video(
    app: &App,
    record: MediaRecord,
    listed: &str,
    now: OffsetDateTime,
) -> Result<Step, Error> {
    let key = keys::media(&record.owner, &record.id);
    if record.approved_by_staff != Some(true) {
        let write = to_staff(Write::update(key), &record, "video", now)
            .condition(still_listed(listed), "media_listed")
            .build();
        return Ok(match try_write(app, write).await? {
            true => Step::Queued,
            false => Step::Skipped,
        });
    }
    if cover_passed(app, &record).await? {
        let write = finish(Write::update(key), &record, MediaStatus::Passed, None, now)
            .condition(still_listed(listed), "media_listed")
            .build();
        if !try_write(app, write).await? {
            return Ok(Step::Skipped);
        }
        results::fan_out(app, &record.owner, &record.id, now).await?;
        return Ok(Step::FannedOut);
    }
    let again = keys::media_listed(
        now.unix_timestamp() + COVER_POLL_SECS,
        &record.owner,
        &record.id,
    );
    let write = Write::update(key)
        .set("gsi1sk", again.sk)
        .condition(still_listed(listed), "media_listed")
        .build();
    Ok(match try_write(app, write).await? {
        true => Step::Waiting,
        false => Step::Skipped,
    })
}

/// Whether a video's cover (an upload of the same member, purpose `video_cover`) has passed.
pub(crate) async fn cover_passed(app: &App, video: &MediaRecord) -> Result<bool, Error> {
    let Some(cover) = &video.cover else {
        return Ok(false);
    };
    let cover: Option<MediaRecord> = app
        .store
        .get_record(&keys::media(&video.owner, cover))
        .await?;
    Ok(cover.is_some_and(|c| c.purpose == Purpose::VideoCover && c.status == MediaStatus::Passed))
}
