//! Shares: a share of a listing is recorded (channel, time) in the member's history, and the
//! listing's share count moves in the same transaction. A member's shares of one listing to one
//! channel count once per UTC day: a repeat that day answers the day's first record and writes
//! nothing, so the count cannot be pumped by sharing again.
//!
//! Store layout: `SHARES#<member> / <time-ordered ULID>` ([`keys::share`]), newest first; and the
//! day's marker `SHARED#<member> / <yyyy-mm-dd>#<listing>#<channel>` ([`keys::share_day`]),
//! holding the first share, written only if absent in the share's transaction (`ttl` removes it
//! two days on).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::favorites::unavailable;
use super::listings;
use super::members::now_rfc3339;
use crate::error::Error;
use crate::ids::{ListingId, UserId};
use crate::store::{keys, Condition, DynStore, PageCursor, Query, Record, Records};
use crate::store::{StoreError, Write};

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

impl Channel {
    /// The channel's name, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WechatSession => "wechat_session",
            Channel::WechatTimeline => "wechat_timeline",
            Channel::Qq => "qq",
            Channel::Weibo => "weibo",
            Channel::Link => "link",
            Channel::Poster => "poster",
        }
    }
}

/// `POST /v1/listings/{id}/shares` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    pub channel: Channel,
}

/// One share as stored in the member's history, and as answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// `s_` and the share's time-ordered ULID (its sort key).
    pub id: String,
    pub listing_id: ListingId,
    pub channel: Channel,
    pub created_at: String,
}

impl Record for Share {
    const KIND: &'static str = "share";
}

impl listings::NamesListing for Share {
    fn listing_id(&self) -> &ListingId {
        &self.listing_id
    }
}

/// The day's marker of a member's share of a listing to a channel: that day's first share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareMarker {
    pub share: Share,
    /// Epoch seconds: two days on.
    pub ttl: i64,
}

impl Record for ShareMarker {
    const KIND: &'static str = "share marker";
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
    let record = Share {
        id: format!("s_{order}"),
        listing_id: listing.clone(),
        channel: share.channel,
        created_at: now,
    };
    let item = record.to_item(keys::share(member, &order), None)?;
    let marker_key = keys::share_day(member, listing, share.channel.as_str(), &day);
    let marker = ShareMarker {
        share: record.clone(),
        ttl: today.unix_timestamp() + 2 * DAY_SECS,
    }
    .to_item(marker_key.clone(), None)?;
    // The listing's condition comes first: when it no longer holds, that is the answer (409
    // listing_unavailable), whether or not the member shared it earlier today.
    let result = store
        .transact(vec![
            Write::update(keys::listing(listing))
                .add("shares_count", 1)
                // Published, its text not held for staff (`domain::moderation`): as listed.
                .condition(
                    Condition::All(vec![
                        Condition::Equals("status".into(), json!("published")),
                        Condition::Lacks("text_review".into()),
                    ]),
                    "listing_published",
                )
                .build(),
            Write::put_if(marker, Condition::Absent, "shared_today"),
            Write::put_if(item, Condition::Absent, "share_new"),
        ])
        .await;
    match result {
        Ok(()) => Ok(Recorded {
            share: json!(record),
            new: true,
        }),
        Err(StoreError::ConditionFailed {
            label: "listing_published",
        }) => Err(unavailable(store, listing).await),
        Err(StoreError::ConditionFailed {
            label: "shared_today",
        }) => {
            let first: ShareMarker = store
                .get_record(&marker_key)
                .await?
                .ok_or_else(|| Error::Internal("share marker gone within its day".into()))?;
            Ok(Recorded {
                share: json!(first.share),
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
    let query = Query::partition(keys::shares(member))
        .descending()
        .limit(limit);
    let (page, next) = listings::page_with_listings(store, query, cursor).await?;
    let items = page
        .into_iter()
        .map(|(share, listing): (Share, _)| {
            json!({
                "id": share.id,
                "channel": share.channel,
                "created_at": share.created_at,
                "listing": listing,
            })
        })
        .collect();
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_named_in_keys_as_json_names_it() {
        for channel in [
            Channel::WechatSession,
            Channel::WechatTimeline,
            Channel::Qq,
            Channel::Weibo,
            Channel::Link,
            Channel::Poster,
        ] {
            assert_eq!(json!(channel), json!(channel.as_str()));
        }
    }
}
