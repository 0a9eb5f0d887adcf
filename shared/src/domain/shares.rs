//! Shares: a share of a listing is recorded (channel, time) in the member's history, and the
//! listing's share count moves in the same transaction. A member's shares of one listing to one
//! channel count once per UTC day: a repeat that day answers the day's first record and writes
//! nothing, so the count cannot be pumped by sharing again.
//!
//! Store layout: `SHARES#<member> / <time-ordered ULID>`, newest first; and the day's marker
//! `SHARED#<member> / <yyyy-mm-dd>#<listing>#<channel>`, holding the first share's id and time,
//! written only if absent in the share's transaction (`ttl` removes it two days on).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::favorites::unavailable;
use super::listings::{self, listing_key};
use super::members::now_rfc3339;
use crate::error::Error;
use crate::ids::{ListingId, UserId};
use crate::store::{Condition, DynStore, Item, Key, PageCursor, Query, StoreError, Write};

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

/// The key of the marker of `member`'s share of `listing` to `channel` on `day` (UTC).
pub fn day_key(member: &UserId, listing: &ListingId, channel: Channel, day: &str) -> Key {
    let channel = json!(channel);
    Key::new(
        format!("SHARED#{member}"),
        format!("{day}#{listing}#{}", channel.as_str().unwrap_or_default()),
    )
}

/// A recorded share: the first of its day (`new`), or that first one again.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub share: Value,
    pub new: bool,
}

const DAY_SECS: i64 = 24 * 3600;

/// Records a share of a published listing, once per member, listing and channel per UTC day.
pub async fn record(
    store: &DynStore,
    member: &UserId,
    listing: &ListingId,
    share: NewShare,
) -> Result<Recorded, Error> {
    let now = now_rfc3339();
    let today = OffsetDateTime::now_utc();
    let day = today
        .date()
        .format(format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let order = crate::ids::time_order();
    let id = format!("s_{order}");
    let shown = json!({
        "id": id, "listing_id": listing, "channel": share.channel, "created_at": now,
    });
    let mut item = Item::new();
    item.insert("pk".into(), partition(member).into());
    item.insert("sk".into(), order.into());
    item.insert("id".into(), id.clone().into());
    item.insert("listing_id".into(), json!(listing));
    item.insert("channel".into(), json!(share.channel));
    item.insert("created_at".into(), now.clone().into());
    let marker_key = day_key(member, listing, share.channel, &day);
    let mut marker = Item::new();
    marker.insert("pk".into(), marker_key.pk.clone().into());
    marker.insert("sk".into(), marker_key.sk.clone().into());
    marker.insert("share".into(), shown.clone());
    marker.insert(
        crate::store::schema::TABLE.ttl_attribute.into(),
        json!(today.unix_timestamp() + 2 * DAY_SECS),
    );
    // The listing's condition comes first: when it no longer holds, that is the answer (409
    // listing_unavailable), whether or not the member shared it earlier today.
    let result = store
        .transact(vec![
            Write::update(listing_key(listing))
                .add("shares_count", 1)
                .condition(
                    Condition::Equals("status".into(), json!("published")),
                    "listing_published",
                )
                .build(),
            Write::put_if(marker, Condition::Absent, "shared_today"),
            Write::put_if(item, Condition::Absent, "share_new"),
        ])
        .await;
    match result {
        Ok(()) => Ok(Recorded {
            share: shown,
            new: true,
        }),
        Err(StoreError::ConditionFailed {
            label: "listing_published",
        }) => Err(unavailable(store, listing).await),
        Err(StoreError::ConditionFailed {
            label: "shared_today",
        }) => {
            let first = store
                .get(&marker_key)
                .await?
                .and_then(|mut m| m.remove("share"))
                .ok_or_else(|| Error::Internal("share marker without its share".into()))?;
            Ok(Recorded {
                share: first,
                new: false,
            })
        }
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
