//! The `export-jobs` function, run by a schedule (every minute): builds the pending data
//! exports (`renji_shared::domain::exports::jobs`), streaming each document into the export
//! bucket. The local server runs the same job on a timer.

use renji_shared::domain::exports::jobs::{self, Budget};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

/// One run at the current time: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    let report = jobs::run(app, OffsetDateTime::now_utc(), Budget::default()).await?;
    tracing::info!(?report, "export jobs ran");
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
