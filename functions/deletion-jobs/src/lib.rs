//! The `deletion-jobs` function, run by a schedule (every minute): completes the account
//! deletions started by `DELETE /v1/me` and staff (`renji_shared::domain::deletion::run`), in
//! bounded batches within a time budget, resumable after a crash at any point; the member's
//! Tencent IM account is deleted through IM's REST API (`App::im_accounts`). The local server
//! runs the same job on a timer.

use renji_shared::domain::deletion::{self, Budget, NoImAccounts};
use renji_shared::{App, Error};
use serde_json::Value;
use time::OffsetDateTime;

/// One run at the current time: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    let now = OffsetDateTime::now_utc();
    // Without the IM application configured there is no IM account to delete.
    let report = match app.im_accounts() {
        Ok(im) => deletion::run(app, im, now, Budget::default()).await?,
        Err(_) => deletion::run(app, &NoImAccounts, now, Budget::default()).await?,
    };
    tracing::info!(?report, "deletion jobs ran");
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
