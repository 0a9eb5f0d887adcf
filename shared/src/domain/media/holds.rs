//! PROVISIONAL (checks' stand-in until `attach` lands the real one; dropped on rebase).

use super::{Hold, Subject};
use crate::app::App;
use crate::error::Error;

/// Sets (or clears, `None`) the hold of `url` on `subject`.
pub async fn update(
    _app: &App,
    _subject: &Subject,
    _url: &str,
    _hold: Option<Hold>,
) -> Result<(), Error> {
    Ok(())
}
