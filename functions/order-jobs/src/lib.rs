//! The `order-jobs` function, run by a schedule (every minute): expiry, reconciliation with the
//! providers, accept deadlines, auto-completion, automatic refunds and refund follow-up, WeChat
//! shipping records not yet taken (`renji_shared::domain::orders::jobs`, the sellers' splits
//! among them), the split deadlines (`renji_shared::domain::settlement::watch`), then the flag on
//! privacy requests past their 15 days (`renji_shared::domain::tickets::jobs`). The local server
//! runs the same job on a timer (at its own clock: [`run_at`]).

use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::domain::settlement::watch;
use renji_shared::domain::tickets;
use renji_shared::{App, Error};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Privacy requests looked at per run (each one is two requests).
const PRIVACY_PER_RUN: usize = 50;
/// Settlement watches past their deadline looked at per run.
const WATCHES_PER_RUN: usize = 50;

/// One run at the current time: what it did, as the invocation's result (and a log line): the
/// order jobs' report, with the privacy flag's under `privacy_overdue`.
pub async fn run(app: &App) -> Result<Value, Error> {
    run_at(app, OffsetDateTime::now_utc()).await
}

/// One run at `now` (the local server's moved clock: `POST /sandbox/clock`); the settlement
/// watches' report under `settle_watch`.
pub async fn run_at(app: &App, now: OffsetDateTime) -> Result<Value, Error> {
    let report = jobs::run(app, now, Budget::default()).await?;
    tracing::info!(?report, "order jobs ran");
    let overdue = tickets::jobs::flag_overdue(&app.store, now, PRIVACY_PER_RUN).await?;
    tracing::info!(?overdue, "privacy requests checked");
    let mut value = serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))?;
    value["privacy_overdue"] = json!(overdue);
    let watched = watch::run(app, now, WATCHES_PER_RUN).await?;
    if watched.expired > 0 {
        tracing::error!(?watched, "orders passed their split deadline unsplit");
    }
    value["settle_watch"] = json!(watched);
    Ok(value)
}
