//! Follows: a member follows another. Each follow is two records (the follower's "following"
//! edge and the followee's "followers" edge) and two counts, all changed in one transaction.
//!
//! Store layout: `FOLLOWING#<member> / <followee>` and `FOLLOWERS#<followee> / <member>`, each
//! listed newest first through `gsi1pk` = its pk, `gsi1sk` = a time-ordered ULID.

use serde_json::{json, Value};

use super::members::{self, member_key, now_rfc3339, Member};
use crate::error::Error;
use crate::ids::UserId;
use crate::store::schema::GSI1;
use crate::store::{Condition, DynStore, Item, Key, PageCursor, Query, StoreError, Write};

fn following(member: &UserId) -> String {
    format!("FOLLOWING#{member}")
}

fn followers(member: &UserId) -> String {
    format!("FOLLOWERS#{member}")
}

fn edge(partition: String, other: &UserId, now: &str) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), partition.clone().into());
    item.insert("sk".into(), other.as_str().into());
    item.insert("gsi1pk".into(), partition.into());
    item.insert("gsi1sk".into(), crate::ids::time_order().into());
    item.insert("user_id".into(), json!(other));
    item.insert("created_at".into(), now.into());
    item
}

/// `PUT /v1/me/following/{user_id}`: idempotent; nobody follows themselves.
pub async fn follow(store: &DynStore, member: &UserId, target: &UserId) -> Result<(), Error> {
    if member == target {
        return Err(Error::invalid("user_id", "you cannot follow yourself"));
    }
    let now = now_rfc3339();
    let result = store
        .transact(vec![
            Write::put_if(
                edge(following(member), target, &now),
                Condition::Absent,
                "not_following",
            ),
            Write::put(edge(followers(target), member, &now)),
            Write::update(member_key(member))
                .add("following_count", 1)
                .condition(Condition::Present, "follower_exists")
                .build(),
            Write::update(member_key(target))
                .add("followers_count", 1)
                .condition(Condition::Present, "followee_exists")
                .build(),
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
                Key::new(following(member), target.as_str()),
                Condition::Present,
                "following",
            ),
            Write::delete(Key::new(followers(target), member.as_str())),
            Write::update(member_key(member))
                .add("following_count", -1)
                .condition(
                    Condition::AtLeast("following_count".into(), 1),
                    "following_count",
                )
                .build(),
            Write::update(member_key(target))
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
        Direction::Followers => followers(member),
        Direction::Following => following(member),
    };
    let query = Query::partition(partition)
        .index(GSI1)
        .descending()
        .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let keys = page
        .items
        .iter()
        .map(|i| super::id_attr(i, "user_id", UserId::parse).map(|id| member_key(&id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let profiles = if keys.is_empty() {
        Vec::new()
    } else {
        store.get_many(&keys).await?
    };
    let items = page
        .items
        .iter()
        .zip(profiles)
        .filter_map(|(edge, profile)| {
            // A member who deleted their account drops out of others' lists.
            let member: Member = serde_json::from_value(Value::Object(profile?)).ok()?;
            let mut view = member.public_view();
            view["followed_at"] = edge.get("created_at").cloned().unwrap_or(Value::Null);
            Some(view)
        })
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}
