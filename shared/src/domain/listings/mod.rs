//! Listings: services (with a price) and recruitments. Their lifecycle, who may see and change
//! them, and how every change is written — the listing, its index entries and the owner's
//! published-listings count in one transaction.
//!
//! Store layout ([`keys::listing`], [`keys::listing_listed`]): `LISTING#<id> / LISTING`; while
//! published it also carries `gsi1pk = OWNER#<owner>` and `gsi1sk = <published_at>#<id>` (a
//! member's published listings, newest first), and the index entries of [`index`]. In every
//! status it has an owner's entry ([`MineEntry`]) for the owner's own list, `GET /v1/me/listings`.

pub mod browse;
pub mod fields;
pub mod index;
pub mod nearby;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::fields::{Kind, ListingPatch, NewListing, RequestedStatus};
use super::members::{self, now_rfc3339, Member};
use super::moderation::texts::{self, Decision, Subject};
use super::moderation::{self as moderation, HoldState, TextHold};
use crate::config::Config;
use crate::domain::media::attach::{self, Checked, Wanted};
use crate::domain::media::{public_urls, Hold, Holds, Purpose, Subject as MediaSubject};
use crate::error::Error;
use crate::geo::{GeoBounds, Location};
use crate::ids::{ListingId, UserId};
use crate::money::Fen;
use crate::store::{keys, Condition, DynStore, Item, Key, PageCursor, Query, Record, Records};
use crate::store::{StoreError, Write, PK, SK};
use crate::wechat::api::{Scene, WechatApi};

/// Optimistic writes retry this often when another edit got there first.
const MAX_ATTEMPTS: usize = 3;

/// A removal or take-down tries this often. After its first try loses a race it fences the
/// listing (see [`retire`]), so only another removal or take-down can make a later try lose.
const RETIRE_ATTEMPTS: u32 = 10;

/// Waits before try `attempt` (1-based) of a write that lost a race: up to 2^min(attempt, 6) ms,
/// chosen at random so the racers fall out of step.
async fn backoff(attempt: u32) {
    use ring::rand::SecureRandom;
    let mut byte = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut byte);
    let ceiling = 1u64 << attempt.min(6);
    let millis = u64::from(byte[0]) % (ceiling + 1);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// What a listing's fields are checked against (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub categories: &'a [String],
    pub bounds: GeoBounds,
    /// `RENJI_MEDIA_BASE_URL`: media URLs must be uploads under it.
    pub media_base: &'a str,
}

impl<'a> Rules<'a> {
    pub fn of(config: &'a Config) -> Self {
        Rules {
            categories: &config.categories,
            bounds: config.geo_bounds,
            media_base: &config.media.base_url,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Draft,
    Published,
    Closed,
    /// Removed by its owner; kept for the orders that refer to it.
    Removed,
    /// Taken down by staff; the owner sees why.
    TakenDown,
}

impl ListingStatus {
    /// The client-driven transitions: draft → published → closed → published.
    fn can_become(self, to: RequestedStatus) -> bool {
        use ListingStatus as S;
        use RequestedStatus as R;
        matches!(
            (self, to),
            (S::Draft, R::Draft | R::Published)
                | (S::Published, R::Published | R::Closed)
                | (S::Closed, R::Closed | R::Published)
        )
    }

    /// Others see published and closed listings; drafts and removed ones are the owner's alone.
    fn is_public(self) -> bool {
        matches!(self, ListingStatus::Published | ListingStatus::Closed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListingStatus::Draft => "draft",
            ListingStatus::Published => "published",
            ListingStatus::Closed => "closed",
            ListingStatus::Removed => "removed",
            ListingStatus::TakenDown => "taken_down",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ListingStatus::Draft,
            ListingStatus::Published,
            ListingStatus::Closed,
            ListingStatus::Removed,
            ListingStatus::TakenDown,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl From<RequestedStatus> for ListingStatus {
    fn from(s: RequestedStatus) -> Self {
        match s {
            RequestedStatus::Draft => ListingStatus::Draft,
            RequestedStatus::Published => ListingStatus::Published,
            RequestedStatus::Closed => ListingStatus::Closed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub id: ListingId,
    pub owner_id: UserId,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub category: String,
    /// The city's canonical name (`cities.rs`); free text for listings stored before cities had
    /// codes, until their next edit.
    pub city: String,
    /// The city's adcode; `None` only for those older listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_code: Option<String>,
    /// The exact point, as its owner gave it; others see [`Location::coarse`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    /// The video's cover image (an upload for `video_cover`): a video needs one; listings stored
    /// before uploads existed may have a video without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_cover_url: Option<String>,
    /// The media URLs others may not see yet, or any more (`domain::media`): absent, all shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: Holds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_fen: Option<Fen>,
    pub status: ListingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takedown_reason: Option<String>,
    /// While taken down: the status it was taken down from, which a restore gives back. Never
    /// shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_down_from: Option<ListingStatus>,
    /// Taken down by its owner's suspension (`domain::suspension`), not by a take-down of its
    /// own: restoring the member restores exactly these. A take-down of the listing itself
    /// clears it. Never shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_by_suspension: bool,
    #[serde(default)]
    pub favorites_count: i64,
    #[serde(default)]
    pub shares_count: i64,
    /// The sum of the visible reviews' ratings and their number (`domain::reviews` moves both
    /// in each review's transaction; clients divide).
    #[serde(default)]
    pub rating_sum: i64,
    #[serde(default)]
    pub rating_count: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// Set by a removal or take-down that lost a race to an edit: no edit applies any more, so
    /// the retirement's next try cannot lose to one. Cleared by the retirement's own write;
    /// never shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retiring: bool,
    /// Its title or description is held for staff (`domain::moderation`): not public — no index
    /// entries, not readable by others — until approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_review: Option<TextHold>,
}

impl Record for Listing {
    const KIND: &'static str = "listing";
}

/// What browsing shows of a listing, and what its feed and geo entries hold: the location
/// coarsened (privacy policy §二(八)三). Every field is written, `null` when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: ListingId,
    pub kind: Kind,
    pub title: String,
    pub category: String,
    pub city: String,
    /// `None` for listings stored before cities had codes.
    #[serde(default)]
    pub city_code: Option<String>,
    pub price_fen: Option<Fen>,
    pub cover_url: Option<String>,
    pub location: Option<Location>,
    pub owner_id: UserId,
    pub published_at: Option<String>,
}

impl Record for Summary {
    const KIND: &'static str = "listing index entry";
}

/// The owner's entry of a listing: `MINE#<owner>` / `<created_at>#<id>`, and through gsi1
/// `MINE#<owner>#<status>` / `<created_at>#<id>` ([`keys::mine_entry`]). It holds only the id and
/// status (the page reads the listings themselves, whose counts other transactions move), so it
/// is written when the listing is created and when its status changes, never on other edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MineEntry {
    pub listing_id: ListingId,
    pub status: ListingStatus,
}

impl Record for MineEntry {
    const KIND: &'static str = "owner's listing entry";
}

impl MineEntry {
    fn item(listing: &Listing) -> Result<Item, Error> {
        let (owner, created, id) = (&listing.owner_id, &listing.created_at, &listing.id);
        MineEntry {
            listing_id: id.clone(),
            status: listing.status,
        }
        .to_item(
            keys::mine_entry(owner, created, id),
            Some(keys::mine_entry_listed(
                owner,
                listing.status.as_str(),
                created,
                id,
            )),
        )
    }
}

/// A record that names a listing (a favourite, a share), listed with that listing's summary.
pub trait NamesListing: Record {
    fn listing_id(&self) -> &ListingId;
}

/// Attributes the counters' writers own: an edit never writes them, so it cannot undo a count.
const COUNTERS: [&str; 4] = [
    "favorites_count",
    "shares_count",
    "rating_sum",
    "rating_count",
];

impl Listing {
    pub fn is_published(&self) -> bool {
        self.status == ListingStatus::Published
    }

    /// Published and its text not held: in the feeds, nearby, search and its owner's public list.
    pub fn is_listed(&self) -> bool {
        self.is_published() && self.text_review.is_none()
    }

    /// Others may see it: published or closed, its text not held.
    fn is_public(&self) -> bool {
        self.status.is_public() && self.text_review.is_none()
    }

    /// What the city feeds are keyed by: the adcode (or the old free text).
    pub fn city_key(&self) -> &str {
        self.city_code.as_deref().unwrap_or(&self.city)
    }

    /// The stored item: the listing, its key and, while published, its owner-index keys.
    fn item(&self) -> Result<Item, Error> {
        let listed = self.is_listed().then(|| {
            let published_at = self.published_at.as_deref().unwrap_or_default();
            keys::listing_listed(&self.owner_id, published_at, &self.id)
        });
        self.to_item(keys::listing(&self.id), listed)
    }

    /// The images others may see, in order.
    pub fn public_images(&self) -> Vec<String> {
        public_urls(&self.images, &self.holds)
    }

    /// The video and its cover as others may see them: both, only while neither is held.
    pub fn public_video(&self) -> (Option<&String>, Option<&String>) {
        let held = |url: &Option<String>| url.as_ref().is_some_and(|u| self.holds.contains_key(u));
        match held(&self.video_url) || held(&self.video_cover_url) {
            true => (None, None),
            false => (self.video_url.as_ref(), self.video_cover_url.as_ref()),
        }
    }

    /// Every media URL the listing uses: images, video, its cover.
    pub fn media_urls(&self) -> Vec<&String> {
        let mut urls: Vec<&String> = self.images.iter().collect();
        urls.extend(self.video_url.iter());
        urls.extend(self.video_cover_url.iter());
        urls
    }

    /// What browsing shows of a listing: the location coarsened (privacy policy §二(八)三).
    pub fn summary_record(&self) -> Summary {
        Summary {
            id: self.id.clone(),
            kind: self.kind,
            title: self.title.clone(),
            category: self.category.clone(),
            city: self.city.clone(),
            city_code: self.city_code.clone(),
            price_fen: self.price_fen,
            cover_url: self.public_images().into_iter().next(),
            location: self.location.map(|l| l.coarse()),
            owner_id: self.owner_id.clone(),
            published_at: self.published_at.clone(),
        }
    }

    /// [`Listing::summary_record`] as JSON.
    pub fn summary(&self) -> Value {
        json!(self.summary_record())
    }

    /// The whole listing as anyone may see it, the location coarsened, held media left out.
    pub fn public_view(&self) -> Value {
        let (video_url, video_cover_url) = self.public_video();
        json!({
            "id": self.id,
            "owner_id": self.owner_id,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "city": self.city,
            "city_code": self.city_code,
            "location": self.location.map(|l| l.coarse()),
            "images": self.public_images(),
            "video_url": video_url,
            "video_cover_url": video_cover_url,
            "price_fen": self.price_fen,
            "status": self.status,
            "favorites_count": self.favorites_count,
            "shares_count": self.shares_count,
            "rating_sum": self.rating_sum,
            "rating_count": self.rating_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "published_at": self.published_at,
        })
    }

    /// The owner also sees the exact location and why staff took it down (privacy policy
    /// §三(四)2).
    pub fn owner_view(&self) -> Value {
        let mut view = self.all_media_view();
        view["location"] = json!(self.location);
        view["takedown_reason"] = json!(self.takedown_reason);
        view["text_review"] = json!(self.text_review.as_ref().map(TextHold::owner_view));
        view
    }

    /// The public view with every media URL, and `media_states`: the held ones' state
    /// (`pending`, or `removed` with its reason).
    fn all_media_view(&self) -> Value {
        let mut view = self.public_view();
        view["images"] = json!(self.images);
        view["video_url"] = json!(self.video_url);
        view["video_cover_url"] = json!(self.video_cover_url);
        view["media_states"] = attach::states(&self.holds);
        view
    }

    /// What staff see: the public view (location coarsened: staff have no need of the exact
    /// point), in every status, with the take-down reason.
    pub fn staff_view(&self) -> Value {
        let mut view = self.all_media_view();
        view["takedown_reason"] = json!(self.takedown_reason);
        view["text_review"] = json!(self.text_review.as_ref().map(TextHold::owner_view));
        view
    }

    /// The view for `viewer`, or `None` when the listing is not theirs to see.
    pub fn view_for(&self, viewer: Option<&UserId>) -> Option<Value> {
        if viewer == Some(&self.owner_id) {
            Some(self.owner_view())
        } else if self.is_public() {
            Some(self.public_view())
        } else {
            None
        }
    }
}

pub async fn get(store: &DynStore, id: &ListingId) -> Result<Option<Listing>, Error> {
    store.get_record(&keys::listing(id)).await
}

/// The listing if `viewer` may see it; otherwise 404, so drafts stay private.
pub async fn get_visible(
    store: &DynStore,
    id: &ListingId,
    viewer: Option<&UserId>,
) -> Result<Value, Error> {
    get(store, id)
        .await?
        .and_then(|l| l.view_for(viewer))
        .ok_or(Error::NotFound("listing"))
}

/// Only a verified member may create or publish listings (privacy policy §二(一)2), and a minor
/// may publish only with a guardian's consent recorded (§七; a draft is not published): both read
/// from the one member record.
async fn require_verified(
    store: &DynStore,
    member: &UserId,
    publishing: bool,
) -> Result<Member, Error> {
    let member = members::get(store, member)
        .await?
        .ok_or(Error::Unauthorized("member no longer exists"))?;
    if member.suspension.is_some() {
        return Err(members::account_suspended());
    }
    if member.verified.is_none() {
        return Err(Error::Forbidden(
            "real-name verification is required to publish; see POST /v1/me/verification".into(),
        ));
    }
    if publishing {
        crate::domain::consents::require_guardian(&member)?;
    }
    Ok(member)
}

/// Writes `new` (replacing `old`), its index entries and the owner's count in one transaction.
/// Fails with `ConditionFailed { label: "listing_version" }` when another write changed the
/// listing first, and with `"owner_exists"` when a listing is published for a member who is gone.
async fn save(store: &DynStore, old: Option<&Listing>, new: &Listing) -> Result<(), StoreError> {
    save_with(store, old, new, Vec::new()).await
}

/// The label [`save_with`] fails with when the listing's writes and the uploads it attaches
/// would be more than one transaction holds.
const TOO_MANY_LABEL: &str = "listing_too_many_writes";

/// [`save`], with `extra` writes in the same transaction (a held text's record, the uploads a
/// change attaches).
async fn save_with(
    store: &DynStore,
    old: Option<&Listing>,
    new: &Listing,
    extra: Vec<Write>,
) -> Result<(), StoreError> {
    let writes = save_writes(old, new, extra)?;
    if writes.len() > crate::store::MAX_TRANSACTION_WRITES {
        return Err(StoreError::ConditionFailed {
            label: TOO_MANY_LABEL,
        });
    }
    store.transact(writes).await
}

/// The writes of [`save`], with `extra` (a held text's record, uploads' `used_by`) in the same
/// transaction.
fn save_writes(
    old: Option<&Listing>,
    new: &Listing,
    extra: Vec<Write>,
) -> Result<Vec<Write>, StoreError> {
    let invalid = |e: Error| StoreError::Invalid(e.to_string());
    let key = keys::listing(&new.id);
    let item = new.item().map_err(invalid)?;
    let mut writes = vec![match old {
        None => Write::put_if(item, Condition::Absent, "listing_new"),
        Some(old) => {
            // Set every field but the counters (other transactions own those), remove what the
            // new version no longer has, and bump the version the condition checks.
            let old_item = old.item().map_err(invalid)?;
            let editable =
                |name: &str| ![PK, SK, "version"].contains(&name) && !COUNTERS.contains(&name);
            let mut update = Write::update(key.clone()).add("version", 1).condition(
                Condition::Equals("version".into(), json!(old.version)),
                "listing_version",
            );
            for (name, value) in &item {
                if editable(name) {
                    update = update.set(name, value.clone());
                }
            }
            for name in old_item.keys() {
                if editable(name) && !item.contains_key(name) {
                    update = update.remove(name);
                }
            }
            update.build()
        }
    }];
    // Only the entries that change: stale keys deleted, new or changed entries put (see
    // `index` for the worst case, within DynamoDB's 100 writes).
    let new_entries = index::entries(new).map_err(invalid)?;
    let old_entries = match old {
        Some(old) => index::entries(old).map_err(invalid)?,
        None => Default::default(),
    };
    let mut stale: Vec<&Key> = old_entries
        .keys()
        .filter(|k| !new_entries.contains_key(*k))
        .collect();
    stale.sort();
    writes.extend(stale.into_iter().map(|k| Write::delete(k.clone())));
    let mut changed: Vec<(Key, Item)> = new_entries
        .into_iter()
        .filter(|(k, item)| old_entries.get(k) != Some(item))
        .collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    writes.extend(changed.into_iter().map(|(_, item)| Write::put(item)));
    if old.is_none_or(|old| old.status != new.status) {
        writes.push(Write::put(MineEntry::item(new).map_err(invalid)?));
    }
    // The profile's count is of the listings others find in the owner's list: published and
    // not held for staff (a held text counts once approved, never if rejected).
    let was_listed = old.is_some_and(Listing::is_listed);
    if was_listed != new.is_listed() {
        let owner = keys::member(&new.owner_id);
        writes.push(if new.is_listed() {
            Write::update(owner)
                .add("listings_count", 1)
                .condition(Condition::Present, "owner_exists")
                .build()
        } else {
            Write::update(owner)
                .add("listings_count", -1)
                .condition(
                    Condition::AtLeast("listings_count".into(), 1),
                    "listings_count",
                )
                .build()
        });
    }
    writes.extend(extra);
    Ok(writes)
}

/// Checks the listing texts `changed` (of `new`) with WeChat (scene forum, the title as
/// context): the hold `new` gets and the writes that go with it (`domain::moderation`).
async fn check_texts(
    api: &dyn WechatApi,
    author: &Member,
    old: Option<&TextHold>,
    new: &Listing,
    changed: &[&str],
) -> Result<(Option<TextHold>, Vec<Write>), Error> {
    let current = [
        ("title", new.title.as_str()),
        ("description", new.description.as_str()),
    ];
    // A held field is checked again with any edit: WeChat's verdict was on the texts checked
    // together, so a passing edit of one must be able to clear the hold of both. A staff
    // rejection stays until its own text changes.
    let mut changed: Vec<&str> = changed.to_vec();
    if let Some(held) = old.filter(|h| !changed.is_empty() && h.state == HoldState::UnderReview) {
        for (field, _) in current {
            if held.fields.iter().any(|f| f == field) && !changed.contains(&field) {
                changed.push(field);
            }
        }
    }
    let changed = changed.as_slice();
    let to_check: Vec<(&str, &str)> = current
        .iter()
        .filter(|(f, _)| changed.contains(f))
        .copied()
        .collect();
    let verdict = moderation::check(
        api,
        &author.openid,
        Scene::Forum,
        Some(&new.title),
        &to_check,
    )
    .await?;
    texts::next_hold(
        &new.owner_id,
        Subject::Listing {
            listing_id: new.id.clone(),
        },
        Scene::Forum,
        old,
        changed,
        verdict,
        &current,
        time::OffsetDateTime::now_utc(),
    )
}

/// Staff's decision on a listing's held text: the listing's writes (approval writes its index
/// entries), conditioned on the version read; `None` when the listing no longer holds `check_id`.
pub async fn text_decision(
    store: &DynStore,
    id: &ListingId,
    check_id: &str,
    decision: Decision,
    reason: &str,
) -> Result<Option<Vec<Write>>, Error> {
    let Some(old) = get(store, id).await? else {
        return Ok(None);
    };
    let Some(hold) = old.text_review.as_ref().filter(|h| h.check_id == check_id) else {
        return Ok(None);
    };
    let mut new = old.clone();
    new.text_review = texts::decided_hold(hold, decision, reason);
    new.version = old.version + 1;
    new.updated_at = now_rfc3339();
    Ok(Some(save_writes(Some(&old), &new, Vec::new())?))
}

/// The media URLs `new` brings that `old` does not use in the same field, with the field and
/// purpose each is checked for.
fn new_media(old: Option<&Listing>, new: &Listing) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    for (i, url) in new.images.iter().enumerate() {
        if old.is_none_or(|o| !o.images.contains(url)) {
            wanted.push(Wanted::new(
                format!("images[{i}]"),
                url,
                Purpose::ListingImage,
            ));
        }
    }
    let pairs = [
        (
            "video_url",
            &new.video_url,
            old.and_then(|o| o.video_url.as_ref()),
            Purpose::ListingVideo,
        ),
        (
            "video_cover_url",
            &new.video_cover_url,
            old.and_then(|o| o.video_cover_url.as_ref()),
            Purpose::VideoCover,
        ),
    ];
    // A video and its cover go together: when either is new, both are attached, so the video's
    // upload names its cover (the media job makes a video public once its cover has passed).
    let pair_changed = pairs
        .iter()
        .any(|(_, url, before, _)| url.is_some() && *before != url.as_ref());
    let pair_complete = pairs.iter().all(|(_, url, _, _)| url.is_some());
    for (field, url, before, purpose) in pairs {
        if let Some(url) = url {
            if before != Some(url) || (pair_changed && pair_complete) {
                wanted.push(Wanted::new(field, url, purpose));
            }
        }
    }
    wanted
}

/// A video needs its cover, and a cover goes with a video (a video stored before covers existed
/// stays as it is until it is changed).
fn check_video_pair(old: Option<&Listing>, new: &Listing) -> Result<(), Error> {
    let video_changed = old.is_none_or(|o| o.video_url != new.video_url);
    match (&new.video_url, &new.video_cover_url) {
        (Some(_), None) if video_changed => Err(Error::invalid(
            "video_cover_url",
            "a video needs its cover: an upload for video_cover",
        )),
        (None, Some(_)) => Err(Error::invalid(
            "video_cover_url",
            "a cover goes with a video_url",
        )),
        _ => Ok(()),
    }
}

/// Checks the media `new` brings (one batch read) and sets its holds: `Err` (422 naming the
/// field) before anything is written.
async fn attach_media(
    store: &DynStore,
    rules: &Rules<'_>,
    old: Option<&Listing>,
    new: &mut Listing,
) -> Result<Checked, Error> {
    check_video_pair(old, new)?;
    let wanted = new_media(old, new);
    let checked = match wanted.is_empty() {
        true => Checked::none(),
        false => attach::check(store, rules.media_base, &new.owner_id, &wanted).await?,
    };
    let old_holds = old.map(|o| o.holds.clone()).unwrap_or_default();
    new.holds = checked.holds_after(new.media_urls(), &old_holds);
    Ok(checked)
}

fn too_many_writes() -> Error {
    Error::invalid(
        "images",
        "too many changes at once: change the images and video in an edit of their own",
    )
}

/// Sets or clears the hold of `url` on listing `id` ([`crate::domain::media::holds::update`]):
/// re-saved through [`save`] so its index entries (the summary's cover) follow, conditioned on
/// the version read, read again after a lost race. A listing gone, or no longer using `url`:
/// nothing to do.
pub async fn set_hold(
    store: &DynStore,
    id: &ListingId,
    url: &str,
    hold: Option<Hold>,
) -> Result<(), Error> {
    for attempt in 0..RETIRE_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let Some(old) = get(store, id).await? else {
            return Ok(());
        };
        if !old.media_urls().into_iter().any(|u| u == url) || old.holds.get(url) == hold.as_ref() {
            return Ok(());
        }
        let mut new = old.clone();
        match &hold {
            Some(h) => new.holds.insert(url.to_owned(), h.clone()),
            None => new.holds.remove(url),
        };
        new.version = old.version + 1;
        match save(store, Some(&old), &new).await {
            Ok(()) => return Ok(()),
            Err(
                StoreError::ConditionFailed {
                    label: "listing_version",
                }
                | StoreError::Conflict,
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable(format!(
        "listing {id} kept changing during {RETIRE_ATTEMPTS} tries to set a media hold"
    )))
}

/// `POST /v1/listings`: a verified member creates a draft or publishes at once.
pub async fn create(
    store: &DynStore,
    api: &dyn WechatApi,
    rules: &Rules<'_>,
    owner: &UserId,
    body: NewListing,
) -> Result<Listing, Error> {
    let images = fields::images(&body.images)?;
    let status: ListingStatus = body.status.unwrap_or(RequestedStatus::Draft).into();
    if status == ListingStatus::Closed {
        return Err(Error::invalid(
            "status",
            "a new listing is a draft or published",
        ));
    }
    let now = now_rfc3339();
    let city = fields::city(&body.city)?;
    let mut listing = Listing {
        id: ListingId::generate(),
        owner_id: owner.clone(),
        kind: body.kind,
        title: fields::title(&body.title)?,
        description: fields::description(&body.description)?,
        category: fields::category(&body.category, rules.categories)?,
        city: city.name.to_owned(),
        city_code: Some(city.adcode.to_owned()),
        location: body
            .location
            .map(|l| fields::location(l, &rules.bounds))
            .transpose()?,
        images,
        video_url: body
            .video_url
            .as_deref()
            .map(fields::video_url)
            .transpose()?,
        video_cover_url: body
            .video_cover_url
            .as_deref()
            .map(fields::video_cover_url)
            .transpose()?,
        holds: Holds::new(),
        price_fen: fields::price(body.kind, body.price_fen)?,
        status,
        takedown_reason: None,
        taken_down_from: None,
        hidden_by_suspension: false,
        favorites_count: 0,
        shares_count: 0,
        rating_sum: 0,
        rating_count: 0,
        version: 1,
        created_at: now.clone(),
        updated_at: now.clone(),
        published_at: (status == ListingStatus::Published).then_some(now),
        retiring: false,
        text_review: None,
    };
    let member = require_verified(store, owner, status == ListingStatus::Published).await?;
    if status == ListingStatus::Published && listing.price_fen.is_some() {
        crate::domain::payouts::require_any(store, owner).await?;
    }
    let (hold, held) = Box::pin(check_texts(
        api,
        &member,
        None,
        &listing,
        &["title", "description"],
    ))
    .await?;
    listing.text_review = hold;
    let subject = MediaSubject::Listing {
        id: listing.id.clone(),
    };
    for _ in 0..MAX_ATTEMPTS {
        let checked = attach_media(store, rules, None, &mut listing).await?;
        let mut extra = held.clone();
        extra.extend(checked.writes(&subject));
        match save_with(store, None, &listing, extra).await {
            Ok(()) => return Ok(listing),
            Err(StoreError::ConditionFailed {
                label: "owner_exists",
            }) => return Err(Error::Unauthorized("member no longer exists")),
            Err(StoreError::ConditionFailed {
                label: TOO_MANY_LABEL,
            }) => return Err(too_many_writes()),
            // An upload changed since it was read (its check ended): read it again.
            Err(
                StoreError::ConditionFailed {
                    label: attach::ATTACH_LABEL,
                }
                | StoreError::Conflict,
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict {
        code: "edit_conflict",
        message: "the uploads changed while the listing was saved; retry".into(),
    })
}

/// Loads a listing for a change by `actor`: 404 when they may not see it, 403 when they may see
/// it but it is not theirs.
async fn load_own(store: &DynStore, id: &ListingId, actor: &UserId) -> Result<Listing, Error> {
    let listing = get(store, id).await?.ok_or(Error::NotFound("listing"))?;
    if &listing.owner_id != actor {
        return Err(if listing.is_public() {
            Error::Forbidden("only the listing's owner may change it".into())
        } else {
            Error::NotFound("listing")
        });
    }
    Ok(listing)
}

/// Applies a validated patch; `Err` before anything is written when a field is bad.
fn apply_patch(old: &Listing, patch: &ListingPatch, rules: &Rules<'_>) -> Result<Listing, Error> {
    if old.retiring
        || matches!(
            old.status,
            ListingStatus::Removed | ListingStatus::TakenDown
        )
    {
        return Err(Error::Conflict {
            code: "listing_not_editable",
            message: "a removed or taken-down listing cannot be edited".into(),
        });
    }
    let mut new = old.clone();
    if let Some(title) = &patch.title {
        new.title = fields::title(title)?;
    }
    if let Some(description) = &patch.description {
        new.description = fields::description(description)?;
    }
    if let Some(category) = &patch.category {
        new.category = fields::category(category, rules.categories)?;
    }
    // A city given is checked; a listing stored with free text gets its code on any edit when
    // the text names a known city (it then moves to that city's feeds).
    let city = match (&patch.city, &old.city_code) {
        (Some(text), _) => Some(fields::city(text)?),
        (None, None) => crate::cities::lookup(&old.city),
        (None, Some(_)) => None,
    };
    if let Some(city) = city {
        new.city = city.name.to_owned();
        new.city_code = Some(city.adcode.to_owned());
    }
    if let Some(location) = patch.location {
        new.location = location
            .map(|l| fields::location(l, &rules.bounds))
            .transpose()?;
    }
    if let Some(images) = &patch.images {
        new.images = fields::images(images)?;
    }
    if let Some(video) = &patch.video_url {
        new.video_url = video.as_deref().map(fields::video_url).transpose()?;
        // Clearing the video clears its cover too, unless the patch says otherwise.
        if new.video_url.is_none() && patch.video_cover_url.is_none() {
            new.video_cover_url = None;
        }
    }
    if let Some(cover) = &patch.video_cover_url {
        new.video_cover_url = cover.as_deref().map(fields::video_cover_url).transpose()?;
    }
    if let Some(price) = patch.price_fen {
        new.price_fen = fields::price(new.kind, Some(price))?;
    }
    if let Some(status) = patch.status {
        if !old.status.can_become(status) {
            return Err(Error::Conflict {
                code: "invalid_transition",
                message: format!(
                    "{} listing cannot become {}",
                    crate::english::with_article(json!(old.status).as_str().unwrap_or_default()),
                    json!(status).as_str().unwrap_or_default()
                ),
            });
        }
        new.status = status.into();
    }
    // The first publication's time stays: feeds and a member's listings order by it, so closing
    // and re-publishing cannot move a listing back to the top.
    let now = now_rfc3339();
    if new.is_published() && new.published_at.is_none() {
        new.published_at = Some(now.clone());
    }
    new.updated_at = now;
    new.version = old.version + 1;
    Ok(new)
}

/// Whether an edit changes nothing but its bookkeeping (version, `updated_at`).
fn unchanged(old: &Listing, new: &Listing) -> bool {
    let bookkeeping_as_old = Listing {
        version: old.version,
        updated_at: old.updated_at.clone(),
        ..new.clone()
    };
    &bookkeeping_as_old == old
}

/// `PATCH /v1/listings/{id}` by its owner.
pub async fn update(
    store: &DynStore,
    api: &dyn WechatApi,
    rules: &Rules<'_>,
    actor: &UserId,
    id: &ListingId,
    patch: ListingPatch,
) -> Result<Listing, Error> {
    let subject = MediaSubject::Listing { id: id.clone() };
    for _ in 0..MAX_ATTEMPTS {
        let old = load_own(store, id, actor).await?;
        let mut new = apply_patch(&old, &patch, rules)?;
        let checked = attach_media(store, rules, Some(&old), &mut new).await?;
        if unchanged(&old, &new) {
            // Nothing to change: no write, no new version, no new `updated_at`.
            return Ok(old);
        }
        let publishing = new.is_published() && !old.is_published();
        let changed: Vec<&str> = [
            ("title", old.title != new.title),
            ("description", old.description != new.description),
        ]
        .into_iter()
        .filter_map(|(f, c)| c.then_some(f))
        .collect();
        let mut extra = Vec::new();
        if publishing || !changed.is_empty() {
            let member = require_verified(store, actor, publishing).await?;
            // A priced listing is published only by a seller who can be paid.
            if publishing && new.price_fen.is_some() {
                crate::domain::payouts::require_any(store, actor).await?;
            }
            if !changed.is_empty() {
                let (hold, writes) = Box::pin(check_texts(
                    api,
                    &member,
                    old.text_review.as_ref(),
                    &new,
                    &changed,
                ))
                .await?;
                new.text_review = hold;
                extra = writes;
            }
        }
        extra.extend(checked.writes(&subject));
        match save_with(store, Some(&old), &new, extra).await {
            Ok(()) => return Ok(new),
            // Another write got there first (or, on DynamoDB, ran at the same time), or an
            // upload's check ended meanwhile: read again.
            Err(
                StoreError::ConditionFailed {
                    label: "listing_version" | attach::ATTACH_LABEL,
                }
                | StoreError::Conflict,
            ) => continue,
            Err(StoreError::ConditionFailed {
                label: TOO_MANY_LABEL,
            }) => return Err(too_many_writes()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict {
        code: "edit_conflict",
        message: "the listing changed while you edited it; retry".into(),
    })
}

/// Moves a listing to `removed` or `taken_down`, dropping it from every index, in one
/// transaction conditioned on the version it read (the index entries to drop are that version's).
///
/// A removal must win against its owner editing in a loop, not answer a conflict: when its first
/// try loses to an edit, it fences the listing — one update, conditioned on nothing but its
/// existence, that sets `retiring` and bumps the version. Edits in flight then fail their version
/// condition and, reading again, are refused; so the next tries can lose only to another
/// retirement (or, on DynamoDB, a transaction running at the same moment), and one of those wins
/// each round. A fence left by a call that stopped halfway only blocks edits; the owner's
/// repeated DELETE (or staff's take-down) completes it.
async fn retire(
    store: &DynStore,
    id: &ListingId,
    actor: Option<&UserId>,
    status: ListingStatus,
    reason: Option<String>,
    suspension: bool,
) -> Result<Listing, Error> {
    for attempt in 0..RETIRE_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let old = match actor {
            Some(actor) => load_own(store, id, actor).await?,
            None => get(store, id).await?.ok_or(Error::NotFound("listing"))?,
        };
        if old.status == status
            && old.takedown_reason == reason
            && old.hidden_by_suspension == suspension
            && !old.retiring
        {
            return Ok(old);
        }
        // A suspension hides what others see (published or closed), nothing else.
        if suspension && !old.status.is_public() {
            return Ok(old);
        }
        if status == ListingStatus::Removed && old.status == ListingStatus::TakenDown {
            // The take-down and its reason are the moderation record the owner is shown.
            return Err(Error::Conflict {
                code: "listing_taken_down",
                message: "a listing taken down by staff stays as it is, with the reason shown \
                          to you; it cannot be removed"
                    .into(),
            });
        }
        if attempt == 1 && !old.retiring {
            fence(store, id).await?;
            continue;
        }
        let mut new = old.clone();
        new.status = status;
        new.takedown_reason = reason.clone();
        // A second take-down (a new reason) keeps what the first one took it down from.
        if status == ListingStatus::TakenDown && old.status != ListingStatus::TakenDown {
            new.taken_down_from = Some(old.status);
        }
        new.hidden_by_suspension = suspension;
        new.retiring = false;
        new.updated_at = now_rfc3339();
        new.version = old.version + 1;
        // A removed listing's held text leaves the staff queue with it.
        let mut extra = Vec::new();
        if status == ListingStatus::Removed {
            if let Some(held) = new.text_review.take() {
                if let Some((author, ulid)) = texts::parse_id(&held.check_id) {
                    extra.push(Write::delete(keys::held_text(&author, &ulid)));
                }
            }
        }
        match save_with(store, Some(&old), &new, extra).await {
            Ok(()) => return Ok(new),
            Err(
                StoreError::ConditionFailed {
                    label: "listing_version",
                }
                | StoreError::Conflict,
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Only many retirements of one listing at once get here.
    Err(Error::Unavailable(format!(
        "listing {id} kept changing during {RETIRE_ATTEMPTS} tries to retire it"
    )))
}

/// Stops every edit of a listing (see [`retire`]).
async fn fence(store: &DynStore, id: &ListingId) -> Result<(), Error> {
    let write = Write::update(keys::listing(id))
        .set("retiring", true)
        .add("version", 1)
        .condition(Condition::Present, "listing_exists")
        .build();
    let mut attempt = 0;
    loop {
        match store.write(write.clone()).await {
            Ok(_) => return Ok(()),
            Err(StoreError::ConditionFailed { .. }) => return Err(Error::NotFound("listing")),
            // On DynamoDB a single write can meet a transaction on the same item.
            Err(StoreError::Conflict) if attempt < 5 => {
                attempt += 1;
                backoff(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `DELETE /v1/listings/{id}`: the owner removes it; the record stays for existing orders. A
/// listing staff took down stays taken down (409 `listing_taken_down`).
pub async fn remove(store: &DynStore, actor: &UserId, id: &ListingId) -> Result<(), Error> {
    retire(store, id, Some(actor), ListingStatus::Removed, None, false)
        .await
        .map(|_| ())
}

/// Account deletion (`domain::deletion`): the listing itself, every index entry it has (feeds,
/// search terms, nearby; its `OWNER#` listing goes with the record) and its owner's entry
/// `entry` (`MINE#<owner> / …`), in one transaction conditioned on the version read — an edit
/// landing in between makes it read again. The owner's count is not moved: their record becomes
/// a tombstone. Idempotent: a listing already gone leaves only its entry to delete.
pub async fn erase(store: &DynStore, id: &ListingId, entry: &Key) -> Result<(), Error> {
    for attempt in 0..RETIRE_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let Some(listing) = get(store, id).await? else {
            store.write(Write::delete(entry.clone())).await?;
            return Ok(());
        };
        let mut writes = vec![Write::delete_if(
            keys::listing(id),
            Condition::Equals("version".into(), json!(listing.version)),
            "listing_version",
        )];
        let mut stale: Vec<Key> = index::entries(&listing)?.into_keys().collect();
        stale.sort();
        writes.extend(stale.into_iter().map(Write::delete));
        let mine = keys::mine_entry(&listing.owner_id, &listing.created_at, id);
        if &mine != entry {
            writes.push(Write::delete(entry.clone()));
        }
        writes.push(Write::delete(mine));
        match store.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(
                StoreError::ConditionFailed {
                    label: "listing_version",
                }
                | StoreError::Conflict,
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Unavailable(format!(
        "listing {id} kept changing during {RETIRE_ATTEMPTS} tries to erase it"
    )))
}

/// Staff take a listing down (`POST /admin/v1/listings/{id}/takedown`); its owner sees the
/// reason. Answers the listing as it is now.
pub async fn take_down(store: &DynStore, id: &ListingId, reason: &str) -> Result<Listing, Error> {
    let reason = crate::domain::profile::bounded_text("reason", reason, 200)?;
    retire(
        store,
        id,
        None,
        ListingStatus::TakenDown,
        Some(reason),
        false,
    )
    .await
}

/// Its owner's suspension (`domain::suspension`): a published or closed listing is taken down
/// with the suspension's reason and marked [`Listing::hidden_by_suspension`]; any other (a
/// draft, one staff took down already) is left as it is. Idempotent.
pub async fn hide_for_suspension(
    store: &DynStore,
    id: &ListingId,
    reason: &str,
) -> Result<Listing, Error> {
    let reason = Some(reason.to_owned());
    retire(store, id, None, ListingStatus::TakenDown, reason, true).await
}

/// The end of its owner's suspension: a listing the suspension hid is restored as
/// [`restore`] does; any other is left as it is (`None`). Idempotent.
pub async fn unhide_after_suspension(
    store: &DynStore,
    id: &ListingId,
) -> Result<Option<Listing>, Error> {
    restore_as(store, id, true).await
}

/// Staff restore a listing they took down: it returns to the status it was taken down from —
/// `published` with every index entry (feeds, search, nearby, the owner's published list and
/// count) written back in the same transaction, or `closed`, `draft`… as it was — and the reason
/// is cleared from the owner's view. A listing taken down before that status was kept returns to
/// `closed` when it had been published (its owner re-publishes it, a choice staff should not make
/// for them), else to `draft`. 409 `listing_not_taken_down` for any other listing.
///
/// A listing hidden by its owner's suspension comes back only with its owner (409
/// `owner_suspended`: restore the member).
pub async fn restore(store: &DynStore, id: &ListingId) -> Result<Listing, Error> {
    restore_as(store, id, false)
        .await?
        .ok_or_else(|| Error::Internal("a listing restore restored nothing".into()))
}

/// [`restore`]; `suspension`: only a listing the suspension hid, any other answered `None`.
async fn restore_as(
    store: &DynStore,
    id: &ListingId,
    suspension: bool,
) -> Result<Option<Listing>, Error> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt as u32).await;
        }
        let old = get(store, id).await?.ok_or(Error::NotFound("listing"))?;
        if suspension && !(old.status == ListingStatus::TakenDown && old.hidden_by_suspension) {
            return Ok(None);
        }
        if !suspension && old.hidden_by_suspension && old.status == ListingStatus::TakenDown {
            return Err(Error::Conflict {
                code: "owner_suspended",
                message: "the listing is hidden by its owner's suspension; restore the member"
                    .into(),
            });
        }
        if old.status != ListingStatus::TakenDown {
            return Err(Error::Conflict {
                code: "listing_not_taken_down",
                message: format!("the listing is {}, not taken down", old.status.as_str()),
            });
        }
        let mut new = old.clone();
        new.status = old.taken_down_from.unwrap_or(match old.published_at {
            Some(_) => ListingStatus::Closed,
            None => ListingStatus::Draft,
        });
        new.takedown_reason = None;
        new.taken_down_from = None;
        new.hidden_by_suspension = false;
        new.retiring = false;
        new.updated_at = now_rfc3339();
        new.version = old.version + 1;
        match save(store, Some(&old), &new).await {
            Ok(()) => return Ok(Some(new)),
            Err(
                StoreError::ConditionFailed {
                    label: "listing_version",
                }
                | StoreError::Conflict,
            ) => continue,
            // Its owner's account is gone: it cannot be published again.
            Err(StoreError::ConditionFailed {
                label: "owner_exists",
            }) => {
                return Err(Error::Conflict {
                    code: "owner_gone",
                    message: "the listing's owner no longer exists".into(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict {
        code: "edit_conflict",
        message: "the listing changed meanwhile; retry".into(),
    })
}

/// `GET /v1/users/{id}/listings`: a member's published listings, newest first; 404 for an
/// unknown member, as the other member lists answer.
pub async fn by_owner(
    store: &DynStore,
    owner: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    if members::get(store, owner).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    let query = Query::partition(keys::owner_listings(owner))
        .index(crate::store::schema::GSI1)
        .descending()
        .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let items = page
        .items
        .into_iter()
        .map(|item| Listing::from_item(item).map(|l| l.summary()))
        .collect::<Result<_, _>>()?;
    Ok((items, page.next.map(PageCursor::from)))
}

/// `GET /v1/me/listings`: the member's own listings in every status (or in `status`), newest
/// first, as their owner sees them. One query of the owner's entries and one batch read of the
/// listings (whose counts the entries do not copy).
pub async fn mine(
    store: &DynStore,
    owner: &UserId,
    status: Option<ListingStatus>,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    owned(store, owner, status, limit, cursor, Listing::owner_view).await
}

/// A member's listings in every status, newest first, as staff see them
/// ([`Listing::staff_view`]): the member look-up of the staff console.
pub async fn for_staff(
    store: &DynStore,
    owner: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    owned(store, owner, None, limit, cursor, Listing::staff_view).await
}

/// One page of `owner`'s entries (in `status`, when given), each listing shown by `view`.
async fn owned(
    store: &DynStore,
    owner: &UserId,
    status: Option<ListingStatus>,
    limit: usize,
    cursor: Option<&PageCursor>,
    view: fn(&Listing) -> Value,
) -> Result<(Vec<Value>, Option<PageCursor>), Error> {
    let query = match status {
        None => Query::partition(keys::mine(owner)),
        Some(status) => Query::partition(keys::mine_status(owner, status.as_str()))
            .index(crate::store::schema::GSI1),
    }
    .descending()
    .limit(limit);
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let listing_keys = page
        .items
        .into_iter()
        .map(|entry| MineEntry::from_item(entry).map(|e| keys::listing(&e.listing_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Listing>> = store.get_records(&listing_keys).await?;
    let mut items = Vec::with_capacity(found.len());
    for listing in found.into_iter().flatten() {
        // The status index is eventually consistent on DynamoDB: a listing whose status has
        // just changed may still be under its old one there; the listing itself decides.
        if &listing.owner_id == owner && status.is_none_or(|s| s == listing.status) {
            items.push(view(&listing));
        }
    }
    Ok((items, page.next.map(PageCursor::from)))
}

/// One page of records that name a listing (favourites, shares), each with that listing's summary.
pub async fn page_with_listings<R: NamesListing>(
    store: &DynStore,
    query: Query,
    cursor: Option<&PageCursor>,
) -> Result<(Vec<(R, Value)>, Option<PageCursor>), Error> {
    let cursor = super::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let records = page
        .items
        .into_iter()
        .map(R::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<ListingId> = records.iter().map(|r| r.listing_id().clone()).collect();
    let summaries = summaries(store, &ids).await?;
    let next = page.next.map(PageCursor::from);
    Ok((records.into_iter().zip(summaries).collect(), next))
}

/// Summaries of the listings `ids`, in order; one that is no longer public shows as unavailable
/// rather than as an error.
pub async fn summaries(store: &DynStore, ids: &[ListingId]) -> Result<Vec<Value>, Error> {
    let listing_keys: Vec<Key> = ids.iter().map(keys::listing).collect();
    let found: Vec<Option<Listing>> = store.get_records(&listing_keys).await?;
    ids.iter()
        .zip(found)
        .map(|(id, listing)| {
            Ok(match listing {
                Some(l) if l.is_public() => {
                    let mut summary = l.summary();
                    summary["available"] = json!(l.is_published());
                    summary["status"] = json!(l.status);
                    summary
                }
                _ => json!({ "id": id, "available": false }),
            })
        })
        .collect()
}
