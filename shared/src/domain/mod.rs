//! Business rules, written once against the storage port.

pub mod audit;
pub mod blocks;
pub mod consents;
pub mod deletion;
pub mod exports;
pub mod favorites;
pub mod follows;
pub mod idempotency;
pub mod identity;
pub mod listings;
pub mod login;
pub mod lookup;
pub mod media;
pub mod members;
pub mod moderation;
pub mod orders;
pub mod payouts;
pub mod profile;
pub mod reviews;
pub mod settlement;
pub mod shares;
pub mod subscriptions;
pub mod suspension;
pub mod tickets;
pub mod verification;

use crate::error::Error;
use crate::store::schema::TABLE;
use crate::store::{Cursor, PageCursor, Query};

/// Reads a page cursor (its seal already checked at the edge) for `query`: 422 naming `cursor`
/// when it is not one of this query's pages (another list's, or one with empty key parts).
pub fn cursor_for(query: &Query, cursor: Option<&PageCursor>) -> Result<Option<Cursor>, Error> {
    cursor
        .map(|c| {
            Cursor::from_bytes(c.as_bytes(), query, &TABLE)
                .ok_or_else(|| Error::invalid("cursor", "is not a cursor of this list"))
        })
        .transpose()
}
