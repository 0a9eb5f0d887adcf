//! The `media-jobs` function, run by a schedule (every minute): works the uploads listed in
//! `DUE#media` (`renji_shared::domain::media::jobs`) — confirms each uploaded object, asks
//! WeChat to check images, sends videos and unanswered checks to the staff queue, and carries
//! final results out. The local server runs the same job on a timer.

use renji_shared::domain::media::jobs::{self, Budget};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

/// One run at the current time: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    let report = jobs::run(app, OffsetDateTime::now_utc(), Budget::default()).await?;
    tracing::info!(?report, "media jobs ran");
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
