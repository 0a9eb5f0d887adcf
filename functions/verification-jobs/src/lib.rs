//! The `verification-jobs` function, run by a schedule (every minute): pending verifications
//! whose time has come are put to the verifier again, with backoff
//! (`renji_shared::domain::verification::recheck_due`). The local server runs the same job on a
//! timer.

use renji_shared::domain::verification::{self, RunBudget};
use renji_shared::{App, Error};
use serde_json::Value;

/// One run: what it did, as the invocation's result (and a log line).
pub async fn run(app: &App) -> Result<Value, Error> {
    let report = verification::recheck_due(app, RunBudget::default()).await?;
    serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))
}
