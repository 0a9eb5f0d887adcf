//! The `order-jobs` function, run by a schedule (every minute): expiry, reconciliation with the
//! providers, accept deadlines, auto-completion, automatic refunds and refund follow-up
//! (`renji_shared::domain::orders::jobs`). The local server runs the same job on a timer.

use renji_shared::domain::orders::jobs::{self, Budget};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

/// One run at the current time: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    let report = jobs::run(app, OffsetDateTime::now_utc(), Budget::default()).await?;
    tracing::info!(?report, "order jobs ran");
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
