//! The export job (the `export-jobs` function, every minute; the local server's timer): builds
//! the pending exports, oldest first, from `gsi1` `DUE#export` up to now. The clock is an
//! argument, so tests move time instead of sleeping.
//!
//! - Claiming is a write conditioned on the due entry the run read (`gsi1sk`): of two runs, one
//!   builds. The claim moves the entry to when the lease ends ([`LEASE_SECS`]), so a build that
//!   crashed (the function timed out, the process died) is taken again by a later run; the
//!   half-written upload is aborted, or ended by the bucket's lifecycle rule.
//! - Finishing is one transaction: the record `ready` (out of `gsi1`, `ttl` = its end) and the
//!   `export.ready` audit record. Building the same export twice writes the same object key
//!   twice: idempotent.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::document::{self, PartWriter};
use super::{ExportRecord, ExportStatus, MAX_ATTEMPTS, READY_ACTION};
use crate::app::App;
use crate::domain::audit::{self, Actor, AuditRecord, Target};
use crate::domain::members::rfc3339;
use crate::error::Error;
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, Query, Record, SortKey, StoreError, Write};

/// How long a claimed build may take before another run takes it again (the function's timeout
/// is shorter).
pub const LEASE_SECS: i64 = 900;

/// How much one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Exports read per run.
    pub per_run: usize,
    /// Stop starting new builds after this.
    pub time: Duration,
    /// The part size; `None`: the archive's least (S3: 5 MiB).
    pub part_bytes: Option<usize>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_run: 10,
            time: Duration::from_secs(120),
            part_bytes: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub examined: u32,
    pub built: u32,
    /// Claimed by another run, or changed since read.
    pub skipped: u32,
    /// Builds that failed (tried again later, or `failed` after the last attempt).
    pub failed: u32,
    /// The most bytes a build held at once (one part).
    pub most_held: usize,
    /// Work was left for the next run.
    pub more: bool,
}

const CLAIM_LABEL: &str = "export_claimed";
const SAME_LABEL: &str = "export_same";

/// One run at `now`.
pub async fn run(app: &App, now: OffsetDateTime, budget: Budget) -> Result<Report, Error> {
    let started = Instant::now();
    let mut report = Report::default();
    let at = now.unix_timestamp();
    let page = app
        .store
        .query(
            Query::partition(keys::due_partition("export"))
                .index(GSI1)
                .sort(SortKey::Below(keys::due(at.saturating_add(1))))
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
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let record = ExportRecord::from_item(item)?;
        if !matches!(
            record.status,
            ExportStatus::Pending | ExportStatus::Building
        ) {
            report.skipped += 1;
            continue;
        }
        match build(app, record, &listed, now, budget).await {
            Ok(Some(held)) => {
                report.built += 1;
                report.most_held = report.most_held.max(held);
            }
            Ok(None) => report.skipped += 1,
            Err(e) => {
                tracing::warn!(error = %e, "export build failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Claims, builds and finishes one export; `None` when another run has it.
async fn build(
    app: &App,
    record: ExportRecord,
    listed: &str,
    now: OffsetDateTime,
    budget: Budget,
) -> Result<Option<usize>, Error> {
    let store = &app.store;
    // Without an archive nothing can be built: the export stays pending, no attempt spent.
    let archive = app.archive()?;
    let member = record.member_id.clone();
    let key = keys::export(&member);
    let at = now.unix_timestamp();
    let attempts = record.attempts + 1;
    let lease = keys::export_listed(at + LEASE_SECS, &member);
    let claim = Write::update(key.clone())
        .set("status", json!(ExportStatus::Building))
        .set("started_at", rfc3339(now))
        .set("attempts", attempts)
        .set("gsi1sk", lease.sk)
        .condition(
            Condition::All(vec![
                Condition::Equals("id".into(), json!(record.id)),
                Condition::Equals("gsi1sk".into(), json!(listed)),
            ]),
            CLAIM_LABEL,
        )
        .build();
    match store.write(claim).await {
        Ok(_) => {}
        Err(StoreError::ConditionFailed { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let part_bytes = budget
        .part_bytes
        .unwrap_or_else(|| archive.min_part_bytes());
    let written = async {
        let mut out = PartWriter::begin(archive.as_ref(), &record.object, part_bytes).await?;
        let versions = &app.config.policy_versions;
        match document::write(
            &mut out,
            store,
            versions,
            &app.config.media.base_url,
            &member,
            &record.id,
            &rfc3339(now),
        )
        .await
        {
            Ok(()) => out.finish().await,
            Err(e) => {
                out.abort().await;
                Err(e)
            }
        }
    }
    .await;
    let same = Condition::Equals("id".into(), json!(record.id));
    let (bytes, held) = match written {
        Ok(done) => done,
        Err(e) => {
            if attempts >= MAX_ATTEMPTS {
                let failed = Write::update(key)
                    .set("status", json!(ExportStatus::Failed))
                    .set("finished_at", rfc3339(now))
                    .set("active", 0)
                    .set("ttl", at + keep_secs(app))
                    .remove("gsi1pk")
                    .remove("gsi1sk")
                    .condition(same, SAME_LABEL)
                    .build();
                if let Err(e) = store.write(failed).await {
                    tracing::warn!(error = %e, "export not marked failed");
                }
            }
            return Err(e);
        }
    };
    let ends = at + keep_secs(app);
    let ready = Write::update(key)
        .set("status", json!(ExportStatus::Ready))
        .set("finished_at", rfc3339(now))
        .set(
            "expires_at",
            rfc3339(OffsetDateTime::from_unix_timestamp(ends).unwrap_or(now)),
        )
        .set("bytes", bytes)
        .set("active", 0)
        .set("ttl", ends)
        .remove("gsi1pk")
        .remove("gsi1sk")
        .remove("previous")
        .condition(same, SAME_LABEL)
        .build();
    let audit_record = AuditRecord::by(
        Actor::System,
        now,
        READY_ACTION,
        Target::member(&member),
        None,
        "ok",
    );
    let mut writes = vec![ready];
    writes.extend(audit::writes(&audit_record, app.config.audit_keep)?);
    match store.transact(writes).await {
        Ok(()) => {}
        // A new request replaced the record while this one was built: its own build follows.
        Err(StoreError::ConditionFailed { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if let Some(previous) = record.previous.filter(|p| *p != record.object) {
        if let Err(e) = archive.delete(&previous).await {
            tracing::warn!(error = %e, "previous export not deleted; the lifecycle rule ends it");
        }
    }
    Ok(Some(held))
}

fn keep_secs(app: &App) -> i64 {
    i64::try_from(app.config.exports.keep.as_secs()).unwrap_or(7 * 86_400)
}
