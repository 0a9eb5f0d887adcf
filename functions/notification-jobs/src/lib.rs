//! The `notification-jobs` function, run by a schedule (every minute): sends the subscribe
//! messages order and ticket changes wrote to the outbox, one grant spent per message
//! (`renji_shared::domain::subscriptions::run`). The local server runs the same job on a timer.

use renji_shared::domain::subscriptions::{self, Budget};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

/// One run at the current time: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    run_at(app, OffsetDateTime::now_utc()).await
}

/// One run at `now` (the local server's moved clock: the order jobs write notifications due at
/// it).
pub async fn run_at(app: &App, now: OffsetDateTime) -> Result<Value, Error> {
    let report = subscriptions::run(app, now, Budget::default()).await?;
    tracing::info!(?report, "notification jobs ran");
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
