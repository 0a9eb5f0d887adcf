//! Reviews (评价): the buyer of a completed order rates it once (1–5, text, images) within
//! `RENJI_REVIEW_DAYS` of completion; the seller answers once; staff may hide a review.
//!
//! Ratings are two integers on the listing and on the seller's member record, `rating_sum` and
//! `rating_count`, moved in the same transaction as the review (and back when staff hide it), so
//! they always equal the visible reviews and are never recomputed by reading them. Listing edits
//! and profile changes never write these attributes (see `listings::COUNTERS`; a profile change
//! sets only its own fields), so neither can undo a count.
//!
//! Store layout ([`keys`]):
//! - `REVIEW#<id> / REVIEW`: the [`Review`], with a `version` every change is conditioned on.
//! - `ORDER#<order> / REVIEW`: the [`ReviewMarker`], written only if absent in the review's
//!   transaction: a second review of the order, even one racing the first, is 409.
//! - `REVIEWS#listing#<id>`, `REVIEWS#seller#<id>`, `REVIEWS#author#<id>` / `<review id>`:
//!   [`ReviewEntry`] pointers, newest first (review ids sort by time). Hiding a review deletes
//!   its listing and seller entries; the author's stays (their own history).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::blocks;
use super::listings::{self, fields};
use super::media::attach::{self, Wanted};
use super::media::{public_urls, Hold, Holds, Purpose, Subject as MediaSubject};
use super::members::{self, Member};
use super::moderation::texts::{self, Decision, Subject};
use super::moderation::{self as moderation, TextHold};
use super::orders::{self, view::public_card, OrderStatus, Role};
use super::profile::bounded_text;
use crate::error::Error;
use crate::ids::{ListingId, OrderId, ReviewId, UserId};
use crate::store::{keys, Condition, DynStore, Key, PageCursor, Query, Record, Records};
use crate::store::{StoreError, Write};
use crate::wechat::api::{Scene, WechatApi};

/// Longest review text, after trimming.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest reply of the seller, after trimming.
pub const MAX_REPLY_CHARS: usize = 500;
/// Longest reason staff give for hiding a review.
pub const MAX_HIDE_REASON_CHARS: usize = 200;
/// The label of the one-review-per-order condition.
pub const MARKER_LABEL: &str = "order_not_reviewed";
/// The label every change of a stored review is conditioned on.
const VERSION_LABEL: &str = "review_version";
/// A change that lost a race reads the review again this often.
const ATTEMPTS: usize = 4;

/// The lists a review is entered in.
const LISTING: &str = "listing";
const SELLER: &str = "seller";
const AUTHOR: &str = "author";

/// The seller's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewReply {
    pub text: String,
    pub at: String,
    /// Held for staff (`domain::moderation`): only the seller sees the reply until approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_review: Option<TextHold>,
}

/// Staff's hiding of a review: it leaves the public lists and the ratings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hidden {
    pub reason: String,
    pub at: String,
}

/// A review as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub order_id: OrderId,
    pub listing_id: ListingId,
    /// The listing's title when it was ordered (the order's snapshot).
    pub listing_title: String,
    pub seller_id: UserId,
    pub author_id: UserId,
    pub rating: i64,
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
    /// The images others may not see yet, or any more (`domain::media`): absent, all shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: Holds,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReviewReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Hidden>,
    /// Its text is held for staff (`domain::moderation`): others see the rating without the
    /// text (`null`) until approved; the author sees it with its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_review: Option<TextHold>,
    /// Grows with every change; each change is conditioned on the version it read.
    pub version: i64,
}

impl Record for Review {
    const KIND: &'static str = "review";
}

/// The order's one review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMarker {
    pub review_id: ReviewId,
}

impl Record for ReviewMarker {
    const KIND: &'static str = "review marker";
}

/// A pointer in a review list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEntry {
    pub review_id: ReviewId,
}

impl Record for ReviewEntry {
    const KIND: &'static str = "review entry";
}

/// `POST /v1/orders/{id}/reviews`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    pub rating: i64,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub images: Vec<String>,
}

/// A review's fields, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedReview {
    pub rating: i64,
    pub text: String,
    pub images: Vec<String>,
}

impl NewReview {
    /// Rating 1–5; text trimmed, at most [`MAX_TEXT_CHARS`] (may be empty); at most 9 https
    /// image URLs (as a listing's). 422 naming the field.
    pub fn check(&self) -> Result<CheckedReview, Error> {
        if !(1..=5).contains(&self.rating) {
            return Err(Error::invalid(
                "rating",
                "must be a whole number from 1 to 5",
            ));
        }
        let text = if self.text.trim().is_empty() {
            String::new()
        } else {
            bounded_text("text", &self.text, MAX_TEXT_CHARS)?
        };
        Ok(CheckedReview {
            rating: self.rating,
            text,
            images: fields::images(&self.images)?,
        })
    }
}

/// `POST /v1/reviews/{id}/reply`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub text: String,
}

impl ReplyBody {
    /// 1 to [`MAX_REPLY_CHARS`] characters after trimming (422 naming `text`).
    pub fn text(&self) -> Result<String, Error> {
        bounded_text("text", &self.text, MAX_REPLY_CHARS)
    }
}

impl Review {
    /// What `viewer` sees: the listing reviewed, the rating, text, images and the seller's
    /// reply, with the author's public card (`author`). The order stays private. A text held for
    /// staff is `null` to all but its writer, who sees it with its `text_review` state.
    pub fn view(&self, author: Option<&Member>, viewer: Option<&UserId>) -> Value {
        let is_author = viewer == Some(&self.author_id);
        let is_seller = viewer == Some(&self.seller_id);
        let text = match (&self.text_review, is_author) {
            (Some(_), false) => Value::Null,
            _ => json!(self.text),
        };
        let reply = match &self.reply {
            Some(r) if r.text_review.is_some() && !is_seller => Value::Null,
            Some(r) => {
                let mut reply = json!({"text": r.text, "at": r.at});
                if is_seller {
                    reply["text_review"] = json!(r.text_review.as_ref().map(TextHold::owner_view));
                }
                reply
            }
            None => Value::Null,
        };
        let mut view = json!({
            "id": self.id,
            "listing": {"id": self.listing_id, "title": self.listing_title},
            "seller_id": self.seller_id,
            "author": public_card(&self.author_id, author),
            "rating": self.rating,
            "text": text,
            "images": public_urls(&self.images, &self.holds),
            "created_at": self.created_at,
            "reply": reply,
        });
        if is_author {
            view["text_review"] = json!(self.text_review.as_ref().map(TextHold::owner_view));
        }
        view
    }

    /// What its author sees: every image, and `media_states` for those others do not see.
    pub fn author_view(&self, author: Option<&Member>) -> Value {
        let mut view = self.view(author, Some(&self.author_id));
        view["images"] = json!(self.images);
        view["media_states"] = attach::states(&self.holds);
        view
    }

    /// What staff see: everything, the order and the hiding included.
    pub fn staff_view(&self) -> Value {
        json!({
            "id": self.id,
            "order_id": self.order_id,
            "listing_id": self.listing_id,
            "listing_title": self.listing_title,
            "seller_id": self.seller_id,
            "author_id": self.author_id,
            "rating": self.rating,
            "text": self.text,
            "images": self.images,
            "media_states": attach::states(&self.holds),
            "created_at": self.created_at,
            "reply": self.reply,
            "hidden": self.hidden,
            "text_review": self.text_review,
        })
    }

    fn item(&self) -> Result<crate::store::Item, Error> {
        self.to_item(keys::review(&self.id), None)
    }

    fn entry(&self, list: &str, id: &str) -> Result<crate::store::Item, Error> {
        ReviewEntry {
            review_id: self.id.clone(),
        }
        .to_item(keys::review_entry(list, id, &self.id), None)
    }
}

/// The review `id`, hidden or not.
pub async fn get(store: &DynStore, id: &ReviewId) -> Result<Option<Review>, Error> {
    store.get_record(&keys::review(id)).await
}

/// The review of order `id`, if it has one.
pub async fn of_order(store: &DynStore, id: &OrderId) -> Result<Option<Review>, Error> {
    let marker: Option<ReviewMarker> = store.get_record(&keys::order_review(id)).await?;
    match marker {
        Some(m) => get(store, &m.review_id).await,
        None => Ok(None),
    }
}

fn conflict(code: &'static str, message: &str) -> Error {
    Error::Conflict {
        code,
        message: message.into(),
    }
}

/// `POST /v1/orders/{id}/reviews`: `member` reviews order `id` at `now`. 404 for anyone but the
/// order's parties (its existence is private), 403 for its seller, 409 `order_not_completed`,
/// `review_window_closed` (`window` after completion), `already_reviewed`; 403 `blocked` when
/// the seller has blocked the buyer. One transaction: the review, the order's marker (only if
/// absent), its three entries, both ratings, and the checks that the order is still completed
/// and the buyer not blocked.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    store: &DynStore,
    api: &dyn WechatApi,
    media_base: &str,
    window: std::time::Duration,
    id: &OrderId,
    member: &UserId,
    body: &NewReview,
    now: OffsetDateTime,
) -> Result<Review, Error> {
    let checked = body.check()?;
    let order = orders::get(store, id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    match order.role_of(member) {
        None => return Err(Error::NotFound("order")),
        Some(Role::Seller) => {
            return Err(Error::Forbidden(
                "only the order's buyer may review it".into(),
            ))
        }
        Some(Role::Buyer) => {}
    }
    if order.status != OrderStatus::Completed {
        return Err(conflict(
            "order_not_completed",
            "only a completed order can be reviewed",
        ));
    }
    let completed = order
        .completed_at
        .as_deref()
        .map(orders::epoch)
        .ok_or_else(|| Error::Internal("a completed order has no completed_at".into()))?;
    let window_secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 4);
    if now.unix_timestamp() >= completed.saturating_add(window_secs) {
        return Err(conflict(
            "review_window_closed",
            "the time to review this order has passed",
        ));
    }
    let mut review = Review {
        id: ReviewId::generate(),
        order_id: order.id.clone(),
        listing_id: order.listing.id.clone(),
        listing_title: order.listing.title.clone(),
        seller_id: order.seller_id.clone(),
        author_id: order.buyer_id.clone(),
        rating: checked.rating,
        text: checked.text,
        images: checked.images,
        holds: Holds::new(),
        created_at: orders::rfc3339(now),
        reply: None,
        hidden: None,
        text_review: None,
        version: 1,
    };
    let author = members::get(store, member)
        .await?
        .ok_or(Error::Unauthorized("member no longer exists"))?;
    let verdict = moderation::check(
        api,
        &author.openid,
        Scene::Comment,
        None,
        &[("text", &review.text)],
    )
    .await?;
    let (hold, held) = texts::next_hold(
        member,
        Subject::Review {
            review_id: review.id.clone(),
        },
        Scene::Comment,
        None,
        &["text"],
        verdict,
        &[("text", &review.text)],
        now,
    )?;
    review.text_review = hold;
    let wanted: Vec<Wanted> = (review.images.iter().enumerate())
        .map(|(i, url)| Wanted::new(format!("images[{i}]"), url, Purpose::ReviewImage))
        .collect();
    let subject = MediaSubject::Review {
        id: review.id.clone(),
    };
    let mut result = Err(StoreError::Conflict);
    for _ in 0..ATTEMPTS {
        let attached = match wanted.is_empty() {
            true => attach::Checked::none(),
            false => attach::check(store, media_base, member, &wanted).await?,
        };
        review.holds = attached.holds_after(&review.images, &Holds::new());
        result = store
            .transact(review_writes(&review, attached.writes(&subject), &held)?)
            .await;
        // On DynamoDB a transaction racing another on the same items may be cancelled as a
        // conflict: try again, so the loser of a race reads the marker and answers 409; an
        // upload whose check ended meanwhile is read again.
        if !matches!(
            result,
            Err(StoreError::Conflict
                | StoreError::ConditionFailed {
                    label: attach::ATTACH_LABEL
                })
        ) {
            break;
        }
    }
    match result {
        Ok(()) => Ok(review),
        Err(StoreError::ConditionFailed {
            label: MARKER_LABEL,
        }) => Err(conflict(
            "already_reviewed",
            "this order has been reviewed already",
        )),
        Err(StoreError::ConditionFailed {
            label: "order_completed",
        }) => Err(conflict(
            "order_not_completed",
            "only a completed order can be reviewed",
        )),
        Err(StoreError::ConditionFailed {
            label: blocks::BLOCKED_LABEL,
        }) => Err(Error::Blocked),
        Err(StoreError::ConditionFailed {
            label: "listing_exists",
        }) => Err(Error::NotFound("listing")),
        Err(StoreError::ConditionFailed {
            label: "seller_exists",
        }) => Err(Error::NotFound("member")),
        Err(StoreError::ConditionFailed {
            label: attach::ATTACH_LABEL,
        }) => Err(conflict(
            "write_conflict",
            "an image's upload kept changing; retry",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Writes the new `review` makes: review, marker, entries, ratings, checks; and `attached` (its
/// uploads' `used_by`) and `held` (its held text's entry for staff).
fn review_writes(
    review: &Review,
    attached: Vec<Write>,
    held: &[Write],
) -> Result<Vec<Write>, Error> {
    let marker = ReviewMarker {
        review_id: review.id.clone(),
    }
    .to_item(keys::order_review(&review.order_id), None)?;
    // The order of the writes is the order of the answers when several conditions fail.
    let mut writes = vec![
        Write::put_if(marker, Condition::Absent, MARKER_LABEL),
        Write::check(
            keys::order(&review.order_id),
            Condition::Equals("status".into(), json!(OrderStatus::Completed.as_str())),
            "order_completed",
        ),
        blocks::not_blocked(&review.seller_id, &review.author_id),
        Write::put_if(review.item()?, Condition::Absent, "review_new"),
        Write::put(review.entry(LISTING, review.listing_id.as_str())?),
        Write::put(review.entry(SELLER, review.seller_id.as_str())?),
        Write::put(review.entry(AUTHOR, review.author_id.as_str())?),
        Write::update(keys::listing(&review.listing_id))
            .add("rating_sum", review.rating)
            .add("rating_count", 1)
            .condition(Condition::Present, "listing_exists")
            .build(),
        Write::update(keys::member(&review.seller_id))
            .add("rating_sum", review.rating)
            .add("rating_count", 1)
            .condition(Condition::Present, "seller_exists")
            .build(),
    ];
    writes.extend(attached);
    writes.extend(held.iter().cloned());
    Ok(writes)
}

/// The update of a stored review conditioned on the version read, the version bumped.
fn change(review: &Review) -> crate::store::UpdateBuilder {
    Write::update(keys::review(&review.id))
        .add("version", 1)
        .condition(
            Condition::Equals("version".into(), json!(review.version)),
            VERSION_LABEL,
        )
}

/// A change of a stored review, read again while another change wins the race (its version
/// condition fails, or DynamoDB cancels a racing transaction), `attempts` times; then 409
/// `write_conflict`. Each attempt reads the review, decides and writes: its answer, or `None`
/// for a lost race ([`raced`]).
async fn retrying<T, F, Fut>(attempts: usize, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, Error>>,
{
    for _ in 0..attempts {
        if let Some(answer) = attempt().await? {
            return Ok(answer);
        }
    }
    Err(conflict(
        "write_conflict",
        "the review kept changing; retry",
    ))
}

/// An attempt's write: `answer` once written, `None` when another change got there first.
fn raced<T>(written: Result<(), StoreError>, answer: T) -> Result<Option<T>, Error> {
    match written {
        Ok(()) => Ok(Some(answer)),
        Err(
            StoreError::ConditionFailed {
                label: VERSION_LABEL,
            }
            | StoreError::Conflict,
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets or clears the hold of image `url` of review `id` (`domain::media::holds`), conditioned on
/// the version read; a review gone or without `url`: nothing to do.
pub async fn set_hold(
    store: &DynStore,
    id: &ReviewId,
    url: &str,
    hold: Option<Hold>,
) -> Result<(), Error> {
    let hold = &hold;
    retrying(ATTEMPTS * 2, move || async move {
        let Some(review) = get(store, id).await? else {
            return Ok(Some(()));
        };
        if !review.images.iter().any(|u| u == url) || review.holds.get(url) == hold.as_ref() {
            return Ok(Some(()));
        }
        let mut holds = review.holds.clone();
        match hold.clone() {
            Some(h) => holds.insert(url.to_owned(), h),
            None => holds.remove(url),
        };
        let write = match holds.is_empty() {
            true => change(&review).remove("holds"),
            false => change(&review).set("holds", json!(holds)),
        };
        raced(store.write(write.build()).await.map(|_| ()), ())
    })
    .await
}

/// `POST /v1/reviews/{id}/reply`: the reviewed seller answers once. 404 for an unknown or
/// hidden review, 403 for anyone but its seller, 409 `already_replied`.
pub async fn reply(
    store: &DynStore,
    api: &dyn WechatApi,
    id: &ReviewId,
    member: &UserId,
    body: &ReplyBody,
    now: OffsetDateTime,
) -> Result<Review, Error> {
    let text = &body.text()?;
    retrying(ATTEMPTS, move || async move {
        let mut review = get(store, id)
            .await?
            .filter(|r| r.hidden.is_none())
            .ok_or(Error::NotFound("review"))?;
        if &review.seller_id != member {
            return Err(Error::Forbidden(
                "only the reviewed seller may answer a review".into(),
            ));
        }
        if review.reply.is_some() {
            return Err(conflict(
                "already_replied",
                "this review has been answered already",
            ));
        }
        let seller = members::get(store, member)
            .await?
            .ok_or(Error::Unauthorized("member no longer exists"))?;
        let verdict =
            moderation::check(api, &seller.openid, Scene::Comment, None, &[("text", text)]).await?;
        let (hold, held) = texts::next_hold(
            member,
            Subject::Reply {
                review_id: review.id.clone(),
            },
            Scene::Comment,
            None,
            &["text"],
            verdict,
            &[("text", text)],
            now,
        )?;
        let answer = ReviewReply {
            text: text.clone(),
            at: orders::rfc3339(now),
            text_review: hold,
        };
        let mut writes = vec![change(&review).set("reply", json!(answer)).build()];
        writes.extend(held);
        // Another change (a reply, a hiding) got there first: read it again and decide.
        let written = store.transact(writes).await;
        review.reply = Some(answer);
        review.version += 1;
        raced(written, review)
    })
    .await
}

/// Staff hide review `id` for `reason` (for the staff console): it leaves the listing's and the
/// seller's lists and their ratings, in one transaction conditioned on the version read (so on
/// its not being hidden yet). Hiding a hidden review changes nothing and answers it.
pub async fn hide(
    store: &DynStore,
    id: &ReviewId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Review, Error> {
    let reason = &bounded_text("reason", reason, MAX_HIDE_REASON_CHARS)?;
    retrying(ATTEMPTS, move || async move {
        let mut review = get(store, id).await?.ok_or(Error::NotFound("review"))?;
        if review.hidden.is_some() {
            return Ok(Some(review));
        }
        let hidden = Hidden {
            reason: reason.clone(),
            at: orders::rfc3339(now),
        };
        let mut writes = vec![
            change(&review).set("hidden", json!(hidden)).build(),
            Write::delete(keys::review_entry(
                LISTING,
                review.listing_id.as_str(),
                &review.id,
            )),
            Write::delete(keys::review_entry(
                SELLER,
                review.seller_id.as_str(),
                &review.id,
            )),
        ];
        // A listing or member gone since (an erased account) has no rating left to move.
        let holders = [
            keys::listing(&review.listing_id),
            keys::member(&review.seller_id),
        ];
        let present = store.get_many(&holders).await?;
        for (key, item) in holders.into_iter().zip(present) {
            if item.is_some() {
                writes.push(
                    Write::update(key)
                        .add("rating_sum", -review.rating)
                        .add("rating_count", -1)
                        .condition(
                            Condition::AtLeast("rating_count".into(), 1),
                            "rating_counted",
                        )
                        .build(),
                );
            }
        }
        let written = store.transact(writes).await;
        review.hidden = Some(hidden);
        review.version += 1;
        raced(written, review)
    })
    .await
}

/// `GET /v1/listings/{id}/reviews`: the visible reviews of a listing anyone may see, newest
/// first; 404 for an unknown or private listing.
pub async fn of_listing(
    store: &DynStore,
    viewer: Option<&UserId>,
    id: &ListingId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    listings::get_visible(store, id, None).await?;
    page(
        store,
        viewer,
        keys::reviews_of(LISTING, id.as_str()),
        limit,
        cursor,
    )
    .await
}

/// `GET /v1/users/{id}/reviews`: the visible reviews a member received as a seller, newest
/// first; 404 for an unknown member.
pub async fn of_seller(
    store: &DynStore,
    viewer: Option<&UserId>,
    id: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    if members::get(store, id).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    page(
        store,
        viewer,
        keys::reviews_of(SELLER, id.as_str()),
        limit,
        cursor,
    )
    .await
}

/// One page of a review list: one query of the entries, one batch read of the reviews, one of
/// their authors' profiles.
async fn page(
    store: &DynStore,
    viewer: Option<&UserId>,
    partition: String,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = Query::partition(partition).descending().limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let review_keys = page
        .items
        .into_iter()
        .map(|entry| ReviewEntry::from_item(entry).map(|e| keys::review(&e.review_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Review>> = store.get_records(&review_keys).await?;
    // An entry read just before its review was hidden: the review itself decides.
    let reviews: Vec<Review> = found
        .into_iter()
        .flatten()
        .filter(|r| r.hidden.is_none())
        .collect();
    let mut authors: Vec<&UserId> = reviews.iter().map(|r| &r.author_id).collect();
    authors.sort();
    authors.dedup();
    let author_keys: Vec<Key> = authors.iter().map(|id| keys::member(id)).collect();
    let profiles: Vec<Option<Member>> = store.get_records(&author_keys).await?;
    let by_id: BTreeMap<&UserId, Member> = authors
        .into_iter()
        .zip(profiles)
        .filter_map(|(id, m)| m.map(|m| (id, m)))
        .collect();
    let items = reviews
        .iter()
        .map(|r| r.view(by_id.get(&r.author_id), viewer))
        .collect();
    Ok((items, page.next.map(PageCursor::from)))
}

/// The answer to a new review or a reply: the review with its author's card (one read), as
/// `viewer` sees it (its author: every image with `media_states`, and its `text_review` state).
pub async fn view(store: &DynStore, review: &Review, viewer: &UserId) -> Result<Value, Error> {
    let author: Option<Member> = members::get(store, &review.author_id).await?;
    Ok(match viewer == &review.author_id {
        true => review.author_view(author.as_ref()),
        false => review.view(author.as_ref(), Some(viewer)),
    })
}

/// Staff's decision on a review's held text (`reply`: the seller's reply's): the review's
/// write, conditioned on the version read; `None` when it no longer holds `check_id`.
pub async fn text_decision(
    store: &DynStore,
    id: &ReviewId,
    reply: bool,
    check_id: &str,
    decision: Decision,
    reason: &str,
) -> Result<Option<Vec<Write>>, Error> {
    let Some(review) = get(store, id).await? else {
        return Ok(None);
    };
    let held = match reply {
        false => review.text_review.as_ref(),
        true => review.reply.as_ref().and_then(|r| r.text_review.as_ref()),
    };
    let Some(hold) = held.filter(|h| h.check_id == check_id) else {
        return Ok(None);
    };
    let next = texts::decided_hold(hold, decision, reason);
    let write = match (reply, &review.reply) {
        (true, Some(r)) => {
            let answer = ReviewReply {
                text_review: next,
                ..r.clone()
            };
            change(&review).set("reply", json!(answer))
        }
        _ => match next {
            None => change(&review).remove("text_review"),
            Some(next) => change(&review).set("text_review", json!(next)),
        },
    };
    Ok(Some(vec![write.build()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rating: i64, text: &str, images: &[&str]) -> NewReview {
        NewReview {
            rating,
            text: text.into(),
            images: images.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_review_is_checked_field_by_field() {
        let ok = body(5, "  很专业 ", &["https://img.renji.world/r/1.jpg"])
            .check()
            .unwrap();
        assert_eq!((ok.rating, ok.text.as_str()), (5, "很专业"));
        assert_eq!(body(1, "   ", &[]).check().unwrap().text, "");
        let field = |b: NewReview| match b.check() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(body(0, "", &[])), "rating");
        assert_eq!(field(body(6, "", &[])), "rating");
        assert_eq!(field(body(3, &"好".repeat(501), &[])), "text");
        assert!(body(3, &"好".repeat(500), &[]).check().is_ok());
        let ten = ["https://img.renji.world/r/1.jpg"; 10];
        assert_eq!(field(body(3, "", &ten)), "images");
        assert_eq!(
            field(body(3, "", &["http://img.renji.world/r/1.jpg"])),
            "images[0]"
        );
        let reply = |t: &str| ReplyBody { text: t.into() }.text();
        assert!(reply(" 谢谢 ").is_ok_and(|t| t == "谢谢"));
        assert!(reply("  ").is_err());
        assert!(reply(&"谢".repeat(501)).is_err());
    }
}
