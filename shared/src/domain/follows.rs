//! Follows: a member follows another. Each follow is two records (the follower's "following"
//! edge and the followee's "followers" edge) and two counts, all changed in one transaction.
//!
//! Store layout: `FOLLOWING#<member> / <followee>` and `FOLLOWERS#<followee> / <member>`
//! ([`keys::following_edge`], [`keys::follower_edge`]), each listed newest first through
//! `gsi1pk` = its pk, `gsi1sk` = a time-ordered ULID ([`keys::edge_listed`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::blocks;
use super::members::{self, now_rfc3339, Member};
use crate::error::Error;
use crate::ids::UserId;
use crate::store::schema::GSI1;
use crate::store::{
    keys, Condition, DynStore, Item, Key, PageCursor, Query, Record, Records, StoreError, Write,
};

/// One edge of a follow: the other member, and since when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// The followee on the follower's edge, the follower on the followee's.
    pub user_id: UserId,
    pub created_at: String,
}

impl Record for Edge {
    const KIND: &'static str = "follow edge";
}

/// The edge stored at `key`, naming `other`, listed newest first.
fn edge(key: Key, other: &UserId, now: &str) -> Result<Item, Error> {
    let listed = keys::edge_listed(&key, &crate::ids::time_order());
    Edge {
        user_id: other.clone(),
        created_at: now.to_owned(),
    }
    .to_item(key, Some(listed))
}

/// `PUT /v1/me/following/{user_id}`: idempotent; nobody follows themselves, nor a member who
/// blocks them (403 `blocked`).
pub async fn follow(store: &DynStore, member: &UserId, target: &UserId) -> Result<(), Error> {
    if member == target {
        return Err(Error::invalid("user_id", "you cannot follow yourself"));
    }
    let now = now_rfc3339();
    let result = store
        // The members' conditions first: a failed transaction names its first failed condition,
        // so following someone being deleted is 404 even when the follow is already there.
        .transact(vec![
            Write::update(keys::member(member))
                .add("following_count", 1)
                .condition(members::not_deleted(), "follower_exists")
                .build(),
            Write::update(keys::member(target))
                .add("followers_count", 1)
                .condition(members::not_deleted(), "followee_exists")
                .build(),
            // A block lands before the follow or fails on it (blocks.rs): never both.
            blocks::not_blocked(target, member),
            Write::put_if(
                edge(keys::following_edge(member, target), target, &now)?,
                Condition::Absent,
                "not_following",
            ),
            Write::put(edge(keys::follower_edge(target, member), member, &now)?),
        ])
        .await;
    match result {
        Ok(())
        | Err(StoreError::ConditionFailed {
            label: "not_following",
        }) => Ok(()),
        Err(StoreError::ConditionFailed {
            label: "follower_exists",
        }) => Err(Error::Unauthorized("member no longer exists")),
        Err(StoreError::ConditionFailed {
            label: "followee_exists",
        }) => Err(Error::NotFound("member")),
        Err(StoreError::ConditionFailed {
            label: blocks::BLOCKED_LABEL,
        }) => Err(Error::Blocked),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /v1/me/following/{user_id}`: idempotent; 422 on oneself, as `PUT` answers (both
/// counters would be one profile: a transaction may not touch an item twice).
pub async fn unfollow(store: &DynStore, member: &UserId, target: &UserId) -> Result<(), Error> {
    if member == target {
        return Err(Error::invalid("user_id", "you cannot follow yourself"));
    }
    let result = store
        .transact(vec![
            Write::delete_if(
                keys::following_edge(member, target),
                Condition::Present,
                "following",
            ),
            Write::delete(keys::follower_edge(target, member)),
            Write::update(keys::member(member))
                .add("following_count", -1)
                .condition(
                    Condition::AtLeast("following_count".into(), 1),
                    "following_count",
                )
                .build(),
            Write::update(keys::member(target))
                .add("followers_count", -1)
                .condition(
                    Condition::AtLeast("followers_count".into(), 1),
                    "followers_count",
                )
                .build(),
        ])
        .await;
    match result {
        Ok(()) | Err(StoreError::ConditionFailed { label: "following" }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Direction {
    Followers,
    Following,
}

/// `GET /v1/users/{id}/followers` and `…/following`: public profiles, newest first.
pub async fn list(
    store: &DynStore,
    member: &UserId,
    direction: Direction,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    if members::get(store, member).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    let partition = match direction {
        Direction::Followers => keys::followers(member),
        Direction::Following => keys::following(member),
    };
    let query = Query::partition(partition)
        .index(GSI1)
        .descending()
        .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let edges = page
        .items
        .into_iter()
        .map(Edge::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let profile_keys: Vec<Key> = edges.iter().map(|e| keys::member(&e.user_id)).collect();
    let profiles: Vec<Option<Member>> = store.get_records(&profile_keys).await?;
    let items = edges
        .into_iter()
        .zip(profiles)
        // A member who deleted their account drops out of others' lists.
        .filter_map(|(edge, profile)| {
            let mut view = profile?.public_view();
            view["followed_at"] = Value::String(edge.created_at);
            Some(view)
        })
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}
