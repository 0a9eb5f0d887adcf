//! Blocks (拉黑): a member blocks another, who then cannot follow them, order their services or
//! review them. The block is one record in the blocker's partition ([`keys::block`]); every
//! follow, order and review checks its absence in its own transaction ([`not_blocked`]), so a
//! block that lands first always wins a race.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::store::{keys, Condition, Record, Write};

/// The label of the check that the actor is not blocked (a failed one is [`Error::Blocked`]).
///
/// [`Error::Blocked`]: crate::error::Error::Blocked
pub const BLOCKED_LABEL: &str = "blocked";

/// `blocker` blocks `blocked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub user_id: UserId,
    pub created_at: String,
}

impl Record for Block {
    const KIND: &'static str = "block";
}

/// The check, for a transaction of `actor`'s acting on `owner` (following, ordering from,
/// reviewing): `owner` has not blocked `actor`. Fails with [`BLOCKED_LABEL`].
pub fn not_blocked(owner: &UserId, actor: &UserId) -> Write {
    Write::check(keys::block(owner, actor), Condition::Absent, BLOCKED_LABEL)
}
