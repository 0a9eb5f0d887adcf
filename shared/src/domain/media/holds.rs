//! Setting one URL's hold on an entity that uses it: how a check's result (or a staff decision)
//! reaches every [`Subject`] in the upload's `used_by`.

use super::{Hold, Subject};
use crate::app::App;
use crate::error::Error;

/// Sets (`Some`) or clears (`None`) the hold of `url` on `subject`:
/// - a listing is re-saved through its own save (its feed and geo entries' summary, whose
///   `cover_url` is the first public image, follow), conditioned on the version read and read
///   again after a lost race;
/// - an avatar: the member's holds, conditioned on `avatar_url` still being `url`;
/// - a review: conditioned on the version read;
/// - a ticket: each of its messages showing `url`, conditioned on the holds read.
///
/// An entity that no longer exists or no longer uses `url`: nothing to do (`Ok`), so a stale
/// `used_by` entry is harmless. Setting the hold it already has writes nothing.
pub async fn update(
    app: &App,
    subject: &Subject,
    url: &str,
    hold: Option<Hold>,
) -> Result<(), Error> {
    let store = &app.store;
    match subject {
        Subject::Listing { id } => crate::domain::listings::set_hold(store, id, url, hold).await,
        Subject::Avatar { member } => {
            crate::domain::members::set_avatar_hold(store, member, url, hold).await
        }
        Subject::Review { id } => crate::domain::reviews::set_hold(store, id, url, hold).await,
        Subject::Ticket { id } => crate::domain::tickets::set_hold(store, id, url, hold).await,
    }
}
