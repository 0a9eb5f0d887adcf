//! Shares: every share of a listing is recorded (channel, time) in the member's history, and the
//! listing's share count moves in the same transaction.
//!
//! Store layout: `SHARES#<member> / <time-ordered ULID>`, newest first.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::favorites::unavailable;
use super::listings::{self, listing_key};
use super::members::now_rfc3339;
use crate::error::Error;
use crate::ids::{ListingId, UserId};
use crate::store::{Condition, DynStore, Item, PageCursor, Query, StoreError, Write};

/// Where a listing was shared to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A WeChat chat (会话).
    WechatSession,
    /// WeChat Moments (朋友圈).
    WechatTimeline,
    Qq,
    Weibo,
    /// A copied link.
    Link,
    /// A generated poster image.
    Poster,
}

/// `POST /v1/listings/{id}/shares` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    pub channel: Channel,
}

fn partition(member: &UserId) -> String {
    format!("SHARES#{member}")
}

/// Records one share of a published listing.
pub async fn record(
    store: &DynStore,
    member: &UserId,
    listing: &ListingId,
    share: NewShare,
) -> Result<Value, Error> {
    let now = now_rfc3339();
    let order = crate::ids::time_order();
    let id = format!("s_{order}");
    let mut item = Item::new();
    item.insert("pk".into(), partition(member).into());
    item.insert("sk".into(), order.into());
    item.insert("id".into(), id.clone().into());
    item.insert("listing_id".into(), json!(listing));
    item.insert("channel".into(), json!(share.channel));
    item.insert("created_at".into(), now.clone().into());
    let result = store
        .transact(vec![
            Write::put_if(item, Condition::Absent, "share_new"),
            Write::update(listing_key(listing))
                .add("shares_count", 1)
                .condition(
                    Condition::Equals("status".into(), json!("published")),
                    "listing_published",
                )
                .build(),
        ])
        .await;
    match result {
        Ok(()) => Ok(json!({
            "id": id, "listing_id": listing, "channel": share.channel, "created_at": now,
        })),
        Err(StoreError::ConditionFailed {
            label: "listing_published",
        }) => Err(unavailable(store, listing).await),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/me/shares`: the member's share history, newest first, with listing summaries.
pub async fn history(
    store: &DynStore,
    member: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(partition(member))
        .descending()
        .limit(limit);
    let (page, next) = listings::page_with_listings(store, query, cursor).await?;
    let items = page
        .into_iter()
        .map(|(share, listing)| {
            json!({
                "id": share.get("id"),
                "channel": share.get("channel"),
                "created_at": share.get("created_at"),
                "listing": listing,
            })
        })
        .collect();
    Ok((items, next))
}
