//! Blocks (拉黑): a member blocks another, who then cannot follow them, order their services or
//! review them. The block is one record in the blocker's partition ([`keys::block`]); every
//! follow, order and review checks its absence in its own transaction ([`not_blocked`]), so a
//! block that lands first always wins a race.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::members::{self, Member};
use super::orders::rfc3339;
use super::orders::view::public_card;
use crate::error::Error;
use crate::ids::UserId;
use crate::store::schema::GSI1;
use crate::store::{
    keys, Condition, DynStore, Key, PageCursor, Query, Record, Records, StoreError, Write,
};

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

/// A block built on edges another request changed meanwhile is built again this often.
const ATTEMPTS: usize = 5;

/// The label of the block's own write: a block already there (idempotent).
const NEW_BLOCK: &str = "not_blocked_yet";
/// The labels of the edge conditions: an edge changed since it was read.
const EDGE_LABELS: [&str; 2] = ["follow_by_blocked", "follow_by_blocker"];
const BLOCKER_LABEL: &str = "blocker_exists";
const BLOCKED_MEMBER_LABEL: &str = "blocked_exists";

fn not_yourself(blocker: &UserId, blocked: &UserId) -> Result<(), Error> {
    if blocker == blocked {
        return Err(Error::invalid("user_id", "you cannot block yourself"));
    }
    Ok(())
}

/// The condition and counter moves on one member's profile: `decrements` are the counts that
/// lose an edge; with none, only its presence is checked.
/// Either member being deleted fails it too (a block naming them would outlive the deletion).
fn profile_write(member: &UserId, decrements: &[&str], label: &'static str) -> Write {
    if decrements.is_empty() {
        return Write::check(keys::member(member), members::not_deleted(), label);
    }
    let mut update = Write::update(keys::member(member));
    for count in decrements {
        update = update.add(count, -1);
    }
    let mut floors: Vec<Condition> = decrements
        .iter()
        .map(|count| Condition::AtLeast((*count).into(), 1))
        .collect();
    floors.push(members::not_deleted());
    update.condition(Condition::All(floors), label).build()
}

/// `PUT /v1/me/blocks/{user_id}`: idempotent; 422 on oneself, 404 for an unknown member. The
/// block record and the end of both follows are one transaction.
///
/// A block ends the follows between the two members, both ways: the blocked member may not
/// follow the blocker any more, and the blocker following someone they block would keep them in
/// a feed they chose to leave. Each edge is removed and its two counts moved exactly as an
/// unfollow does ([`follows::unfollow`](super::follows::unfollow)). Unblocking restores none of
/// them; the block restricts the blocked member only, so the blocker may follow them again.
///
/// The edges are read first, then the transaction is conditioned on what was read (each edge
/// removed must be present, each left must be absent); a follow committed in between fails the
/// condition and the block is built again. So a block never lands beside a follow by the blocked
/// member, and a follow after it fails its own check ([`not_blocked`]).
pub async fn block(
    store: &DynStore,
    blocker: &UserId,
    blocked: &UserId,
    now: OffsetDateTime,
) -> Result<(), Error> {
    not_yourself(blocker, blocked)?;
    let at = rfc3339(now);
    for _ in 0..ATTEMPTS {
        // Edges: [the blocked member following the blocker, the blocker following them].
        let edges = [
            (
                keys::following_edge(blocked, blocker),
                keys::follower_edge(blocker, blocked),
            ),
            (
                keys::following_edge(blocker, blocked),
                keys::follower_edge(blocked, blocker),
            ),
        ];
        let found = store
            .get_many(&[edges[0].0.clone(), edges[1].0.clone()])
            .await?;
        let item = Block {
            user_id: blocked.clone(),
            created_at: at.clone(),
        }
        .to_item(
            keys::block(blocker, blocked),
            Some(keys::block_listed(blocker, &crate::ids::time_order())),
        )?;
        // The reverse entry (`BLOCKED#<blocked>`), so the blocked member's account deletion
        // finds the block.
        let reverse = Block {
            user_id: blocker.clone(),
            created_at: at.clone(),
        }
        .to_item(keys::block_reverse(blocked, blocker), None)?;
        let mut writes = vec![
            Write::put_if(item, Condition::Absent, NEW_BLOCK),
            Write::put(reverse),
        ];
        let (mut blocker_counts, mut blocked_counts) = (Vec::new(), Vec::new());
        for (((following, follower), present), label) in
            edges.into_iter().zip(&found).zip(EDGE_LABELS)
        {
            if present.is_none() {
                writes.push(Write::check(following, Condition::Absent, label));
                continue;
            }
            writes.push(Write::delete_if(following, Condition::Present, label));
            writes.push(Write::delete(follower));
            if label == EDGE_LABELS[0] {
                blocked_counts.push("following_count");
                blocker_counts.push("followers_count");
            } else {
                blocker_counts.push("following_count");
                blocked_counts.push("followers_count");
            }
        }
        writes.push(profile_write(blocker, &blocker_counts, BLOCKER_LABEL));
        writes.push(profile_write(
            blocked,
            &blocked_counts,
            BLOCKED_MEMBER_LABEL,
        ));
        match store.transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed { label: NEW_BLOCK }) => return Ok(()),
            Err(StoreError::ConditionFailed { label }) if EDGE_LABELS.contains(&label) => continue,
            Err(StoreError::ConditionFailed {
                label: BLOCKER_LABEL,
            }) => return Err(Error::Unauthorized("member no longer exists")),
            Err(StoreError::ConditionFailed {
                label: BLOCKED_MEMBER_LABEL,
            }) => return Err(Error::NotFound("member")),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// `DELETE /v1/me/blocks/{user_id}`: idempotent; 422 on oneself, as `PUT` answers. The follows
/// the block ended stay ended.
pub async fn unblock(store: &DynStore, blocker: &UserId, blocked: &UserId) -> Result<(), Error> {
    not_yourself(blocker, blocked)?;
    match store
        .transact(vec![
            Write::delete_if(keys::block(blocker, blocked), Condition::Present, "blocked"),
            Write::delete(keys::block_reverse(blocked, blocker)),
        ])
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed { label: "blocked" }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/me/blocks`: whom the member blocks, newest first, each by their public card and
/// `blocked_at`. A member who deleted their account shows as the id alone (the block stays
/// until it is lifted).
pub async fn list(
    store: &DynStore,
    blocker: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(keys::blocks(blocker))
        .index(GSI1)
        .descending()
        .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let blocks = page
        .items
        .into_iter()
        .map(Block::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let profile_keys: Vec<Key> = blocks.iter().map(|b| keys::member(&b.user_id)).collect();
    let profiles: Vec<Option<Member>> = store.get_records(&profile_keys).await?;
    let items = blocks
        .into_iter()
        .zip(profiles)
        .map(|(block, profile)| {
            let mut view = public_card(&block.user_id, profile.as_ref());
            view["blocked_at"] = Value::String(block.created_at);
            view
        })
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}
