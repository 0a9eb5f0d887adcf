//! Every key format of the one table, and only here: the README's "Data layout" table is this
//! file read top to bottom (each item kind's key function names its record type), and
//! `tests/drift.rs` checks that the table's partitions are these.
//!
//! An item is found by `pk` (its partition) and `sk` (its place in the partition); items listed
//! through the `gsi1` index also carry `gsi1pk`/`gsi1sk`, whose values are the [`Key`]s named
//! `…_listed` here. Each family of items has its own partition prefix, a word ending in `#`, and
//! no prefix begins another ([`PARTITIONS`]), so two families never share a partition; the kinds
//! that share a member's partition (`USER#<id>`) have sort keys no other kind there can take.
//! Ids in keys are checked newtypes (`u_…`, `l_…`), never raw request text.

use super::Key;
use crate::geo::PARTITION_PRECISION;
use crate::ids::{ListingId, MediaId, OrderId, ReviewId, StaffId, TicketId, UserId};

/// A member's partition: their profile, sessions, verification and idempotency records.
pub const USER: &str = "USER#";
/// The claim of a WeChat openid by one member.
pub const OPENID: &str = "OPENID#";
/// A listing.
pub const LISTING: &str = "LISTING#";
/// A member's own listings, in every status.
pub const MINE: &str = "MINE#";
/// The browse feeds, one per combination of kind, category and city.
pub const FEED: &str = "FEED#";
/// Nearby: published listings by geohash cell.
pub const GEO: &str = "GEO#";
/// Keyword search: published listings by title term.
pub const TERM: &str = "TERM#";
/// A member's favourites.
pub const FAVS: &str = "FAVS#";
/// Whom a member follows.
pub const FOLLOWING: &str = "FOLLOWING#";
/// Who follows a member.
pub const FOLLOWERS: &str = "FOLLOWERS#";
/// A member's share history.
pub const SHARES: &str = "SHARES#";
/// A member's shares of the day, one marker per listing and channel.
pub const SHARED: &str = "SHARED#";
/// Rate-limit counters.
pub const RATE: &str = "RATE#";
/// How many accounts an identity verifies.
pub const IDCLAIM: &str = "IDCLAIM#";
/// An order: the order, its payments at the providers, and the log of what they said.
pub const ORDER: &str = "ORDER#";
/// A member's orders as buyer or seller, in every status and by status.
pub const ORDERS: &str = "ORDERS#";
/// Notifications that named no order we know, by UTC day.
pub const NOTICES: &str = "NOTICES#";
/// Whom a member blocks.
pub const BLOCKS: &str = "BLOCKS#";
/// Who blocks a member: the reverse of `BLOCKS#`, so an account deletion finds the blocks that
/// name the member.
pub const BLOCKED: &str = "BLOCKED#";
/// A review.
pub const REVIEW: &str = "REVIEW#";
/// Reviews by listing, by the seller reviewed and by their author.
pub const REVIEWS: &str = "REVIEWS#";
/// A customer-service ticket and its messages.
pub const TICKET: &str = "TICKET#";
/// A member's tickets (written, or about an order of theirs).
pub const TICKETS: &str = "TICKETS#";
/// The staff's ticket queues, by status (and kind), by due time.
pub const QUEUE: &str = "QUEUE#";
/// A staff member's partition: their console sessions.
pub const STAFF: &str = "STAFF#";
/// The audit trail of staff actions: all, by actor, by target.
pub const AUDIT: &str = "AUDIT#";
/// The app's WeChat access token, shared by every function.
pub const WXTOKEN: &str = "WXTOKEN#";
/// One WeChat image check (`mediaCheckAsync`) by its trace id: which upload it is for, and its
/// result once pushed.
pub const MEDIACHECK: &str = "MEDIACHECK#";
/// The daily reconciliation of a provider's splits against the ledger.
pub const RECON: &str = "RECON#";
/// Which member holds a payout account (one member per receiver at the provider).
pub const PAYOUTCLAIM: &str = "PAYOUTCLAIM#";

/// Every partition prefix of the table.
pub const PARTITIONS: [&str; 30] = [
    USER,
    OPENID,
    LISTING,
    MINE,
    FEED,
    GEO,
    TERM,
    FAVS,
    FOLLOWING,
    FOLLOWERS,
    SHARES,
    SHARED,
    RATE,
    IDCLAIM,
    ORDER,
    ORDERS,
    NOTICES,
    BLOCKS,
    BLOCKED,
    REVIEW,
    REVIEWS,
    TICKET,
    TICKETS,
    QUEUE,
    STAFF,
    AUDIT,
    WXTOKEN,
    MEDIACHECK,
    RECON,
    PAYOUTCLAIM,
];

/// `gsi1` only: a member's published listings.
pub const OWNER: &str = "OWNER#";
/// `gsi1` only: pending verifications.
pub const VERIFY: &str = "VERIFY#";

/// `gsi1` only: orders and payments the order jobs must act on, by kind and due time.
pub const DUE: &str = "DUE#";

/// Every partition prefix of `gsi1` (favourites and follows are listed under their own pk; the
/// staff's media queue is `QUEUE#media`).
pub const GSI1_PARTITIONS: [&str; 9] = [
    OWNER, MINE, FAVS, FOLLOWING, FOLLOWERS, VERIFY, DUE, BLOCKS, QUEUE,
];

const PROFILE: &str = "PROFILE";
/// The sort-key prefix of a member's sessions (all of them are revoked by one prefix query).
pub const SESSION_PREFIX: &str = "SESSION#";
const VERIFICATION: &str = "VERIFICATION";
const VERIFICATION_DAY_PREFIX: &str = "VERIFICATION_DAY#";
const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";
/// The sort-key prefix of a member's consent records (the export reads them by this prefix).
pub const CONSENT_PREFIX: &str = "CONSENT#";
const LOCATION: &str = "LOCATION";
const GUARDIAN_CONSENT: &str = "GUARDIAN_CONSENT";
const EXPORT_SK: &str = "EXPORT";
/// The sort-key prefix of a member's uploads (the export and the deletion read them by it).
pub const MEDIA_PREFIX: &str = "MEDIA#";
const EXPORT_DAY_PREFIX: &str = "EXPORT_DAY#";
/// The sort-key prefix of a member's subscribe-message grants.
pub const SUBSCRIBE_PREFIX: &str = "SUBSCRIBE#";
/// The sort-key prefix of a member's subscribe messages (outbox and record of attempts).
pub const NOTIFY_PREFIX: &str = "NOTIFY#";
/// The sort-key prefix of the markers of WeChat's subscription pushes already counted.
pub const SUBPUSH_PREFIX: &str = "SUBPUSH#";
const UPLOAD_DAY_PREFIX: &str = "UPLOAD_DAY#";
/// A member's text held for staff (`domain::moderation`).
pub const TEXTCHECK_PREFIX: &str = "TEXTCHECK#";
/// The sort-key prefix of a member's payout accounts, one per channel (`domain::payouts`).
pub const PAYOUT_PREFIX: &str = "PAYOUT#";

/// `<time>#<id>`: the sort key of lists ordered by a time (RFC 3339 sorts as text), the id
/// breaking ties.
pub fn by_time(time: &str, id: &ListingId) -> String {
    format!("{time}#{id}")
}

// A member's partition.

/// `USER#<id>`: the partition of everything that is one member's alone.
pub fn user(id: &UserId) -> String {
    format!("{USER}{id}")
}

/// The member whose partition `pk` is, if it is one.
pub fn user_of(pk: &str) -> Option<UserId> {
    UserId::parse(pk.strip_prefix(USER)?)
}

/// Member: `USER#<id> / PROFILE` — [`Member`](crate::domain::members::Member): profile and
/// counts.
pub fn member(id: &UserId) -> Key {
    Key::new(user(id), PROFILE)
}

/// Session: `USER#<id> / SESSION#<session id>` —
/// [`SessionRecord`](crate::session::SessionRecord), with its login's device facts: deleted on
/// logout or revocation; `ttl` (the session's expiry) expires it.
pub fn session(user_id: &UserId, session_id: &str) -> Key {
    Key::new(user(user_id), format!("{SESSION_PREFIX}{session_id}"))
}

/// Verification: `USER#<id> / VERIFICATION` —
/// [`Verification`](crate::domain::verification::Verification): the member's latest attempt.
pub fn verification(member: &UserId) -> Key {
    Key::new(user(member), VERIFICATION)
}

/// Consent: `USER#<id> / CONSENT#<time-ordered id>` —
/// [`ConsentRecord`](crate::domain::consents::ConsentRecord): one per acceptance of a policy
/// document and per grant or withdrawal of an optional scope (the proof of consent); kept with
/// the member.
pub fn consent(member: &UserId, order: &str) -> Key {
    Key::new(user(member), format!("{CONSENT_PREFIX}{order}"))
}

/// Stored position: `USER#<id> / LOCATION` —
/// [`StoredPosition`](crate::domain::consents::StoredPosition): the member's coarse last position
/// (a 5-character geohash) while the `location` scope is granted; deleted with its withdrawal;
/// `ttl` 30 days.
pub fn member_location(member: &UserId) -> Key {
    Key::new(user(member), LOCATION)
}

/// Payout account: `USER#<id> / PAYOUT#<channel>` —
/// [`PayoutAccount`](crate::domain::payouts::PayoutAccount): where the member is paid through
/// `channel` (`wechat`, `alipay`), the receiver registered at that provider; account and name
/// sealed beside their masked forms.
pub fn payout_account(member: &UserId, channel: &str) -> Key {
    Key::new(user(member), format!("{PAYOUT_PREFIX}{channel}"))
}

/// Guardian consent: `USER#<id> / GUARDIAN_CONSENT` —
/// [`GuardianConsent`](crate::domain::consents::GuardianConsent): a minor's guardian's name and
/// relationship, sealed, and when it was recorded.
pub fn guardian_consent(member: &UserId) -> Key {
    Key::new(user(member), GUARDIAN_CONSENT)
}

/// `VERIFY#pending`: the `gsi1` partition of pending verifications, by when each is due.
pub const PENDING_VERIFICATIONS: &str = "VERIFY#pending";

/// A time as a `gsi1` sort key: epoch seconds, 12 digits, so the text sorts as the number.
pub fn due(at: i64) -> String {
    format!("{:012}", at.max(0))
}

/// A pending verification in `gsi1`: `VERIFY#pending / <due, 12 digits>#<member>` — the job
/// reads them in order of due time.
pub fn verification_listed(due_at: i64, member: &UserId) -> Key {
    Key::new(PENDING_VERIFICATIONS, format!("{}#{member}", due(due_at)))
}

/// Verification count: `USER#<id> / VERIFICATION_DAY#<yyyy-mm-dd>` — `n`, that UTC day's
/// submissions, a capped counter (updated, never put); `ttl` removes it.
pub fn verification_day(member: &UserId, day: &str) -> Key {
    Key::new(user(member), format!("{VERIFICATION_DAY_PREFIX}{day}"))
}

/// Idempotency record: `USER#<id> / IDEMPOTENCY#<method> <path>#<key>` — `IdempotencyRecord`
/// (`domain/idempotency.rs`): one per member, route and client key; `ttl` 24 hours.
pub fn idempotency(member: &UserId, route: &str, key: &str) -> Key {
    Key::new(user(member), format!("{IDEMPOTENCY_PREFIX}{route}#{key}"))
}

/// Export: `USER#<id> / EXPORT` — [`ExportRecord`](crate::domain::exports::ExportRecord): the
/// member's latest data export (requested, building, ready or failed) and where its document
/// is; while pending or building, `gsi1` [`export_listed`]; `ttl` ends a finished one.
pub fn export(member: &UserId) -> Key {
    Key::new(user(member), EXPORT_SK)
}

/// Upload: `USER#<id> / MEDIA#<media id>` — [`MediaRecord`](crate::domain::media::MediaRecord):
/// one file the member was given an upload policy for, its purpose, object key, check state
/// and where it is used.
pub fn media(member: &UserId, id: &MediaId) -> Key {
    Key::new(user(member), format!("{MEDIA_PREFIX}{id}"))
}

/// Held text: `USER#<author> / TEXTCHECK#<ulid>` —
/// [`HeldText`](crate::domain::moderation::HeldText): a text WeChat's check sent to staff (or
/// could not judge, 61010), what it belongs to, and staff's decision once made.
pub fn held_text(author: &UserId, ulid: &str) -> Key {
    Key::new(user(author), format!("{TEXTCHECK_PREFIX}{ulid}"))
}

/// A held text waiting for staff, in `gsi1`: `DUE#texts / <held at, 12 digits>#<author>#<ulid>`
/// — the staff text queue, oldest first; removed by the decision.
pub fn held_text_listed(at: i64, author: &UserId, ulid: &str) -> Key {
    Key::new(
        due_partition("texts"),
        format!("{}#{author}#{ulid}", due(at)),
    )
}

/// `DUE#texts`: the staff text queue's `gsi1` partition.
pub fn held_texts() -> String {
    due_partition("texts")
}

/// Export count: `USER#<id> / EXPORT_DAY#<yyyy-mm-dd>` — `n`, that UTC day's export requests, a
/// capped counter (updated, never put); `ttl` removes it.
pub fn export_day(member: &UserId, day: &str) -> Key {
    Key::new(user(member), format!("{EXPORT_DAY_PREFIX}{day}"))
}

/// Upload count: `USER#<id> / UPLOAD_DAY#<yyyy-mm-dd>` — `n`, that UTC day's upload forms
/// (`POST /v1/uploads`), a capped counter (updated, never put); `ttl` removes it.
pub fn upload_day(member: &UserId, day: &str) -> Key {
    Key::new(user(member), format!("{UPLOAD_DAY_PREFIX}{day}"))
}

/// A pending (or building) export in `gsi1`: `DUE#export / <due, 12 digits>#<member>` — the
/// export job reads them in order of due time (a build in progress is due again when its lease
/// ends, so a crashed build is redone).
pub fn export_listed(due_at: i64, member: &UserId) -> Key {
    Key::new(due_partition("export"), format!("{}#{member}", due(due_at)))
}

/// WeChat access token: `WXTOKEN#<appid> / ACCESS_TOKEN` —
/// [`StoredToken`](crate::wechat::token::StoredToken): the token every function uses, its expiry,
/// version and the refresher's lease.
pub fn wechat_token(appid: &str) -> Key {
    Key::new(format!("{WXTOKEN}{appid}"), "ACCESS_TOKEN")
}

/// An upload the media job must look at, in `gsi1`: `DUE#media / <due, 12 digits>#<owner>#<id>`
/// — an issued upload (is the object there yet?), a check that has not answered (time out to
/// staff), in order of due time.
pub fn media_listed(due_at: i64, owner: &UserId, id: &MediaId) -> Key {
    Key::new(
        due_partition("media"),
        format!("{}#{owner}#{id}", due(due_at)),
    )
}

/// Subscription grant: `USER#<id> / SUBSCRIBE#<template id>` —
/// [`Grant`](crate::domain::subscriptions::Grant): the member's acceptances of one
/// subscribe-message template (hinted by the client, confirmed by WeChat's push) and the
/// messages that spent them.
pub fn subscription_grant(member: &UserId, template_id: &str) -> Key {
    Key::new(user(member), format!("{SUBSCRIBE_PREFIX}{template_id}"))
}

/// Subscription push marker: `USER#<id> / SUBPUSH#<CreateTime>#<template id>` — no record, only
/// `ttl` (7 days): WeChat's `subscribe_msg_popup_event` for this template was counted.
pub fn subscription_push(member: &UserId, create_time: i64, template_id: &str) -> Key {
    Key::new(
        user(member),
        format!("{SUBPUSH_PREFIX}{create_time}#{template_id}"),
    )
}

/// Notification: `USER#<id> / NOTIFY#<notification id>` —
/// [`Notification`](crate::domain::subscriptions::Notification): one subscribe message owed to
/// the member (written with the order or ticket change), and every attempt at it; while it must
/// be sent, `gsi1` [`notification_listed`].
pub fn notification(member: &UserId, id: &str) -> Key {
    Key::new(user(member), format!("{NOTIFY_PREFIX}{id}"))
}

/// A notification the job must send, in `gsi1`: `DUE#notify / <due, 12 digits>#<member>#<id>` —
/// in order of due time (a claimed one is due again when its lease ends).
pub fn notification_listed(due_at: i64, member: &UserId, id: &str) -> Key {
    Key::new(
        due_partition("notify"),
        format!("{}#{member}#{id}", due(due_at)),
    )
}

/// The staff's media queue in `gsi1`: `QUEUE#media / <media id>` — an upload waiting for a staff
/// decision (a video, an image whose check never came back or was inconclusive), oldest upload
/// first (media ids are time-ordered); the record carries it instead of [`media_listed`].
pub fn media_queued(id: &MediaId) -> Key {
    Key::new(MEDIA_QUEUE, id.as_str())
}

/// `QUEUE#media`: the `gsi1` partition of the staff's media queue.
pub const MEDIA_QUEUE: &str = "QUEUE#media";

/// Image check: `MEDIACHECK#<trace id> / CHECK` —
/// [`MediaCheck`](crate::domain::media::results::MediaCheck): the upload a `mediaCheckAsync` trace
/// id is for and, once pushed, its result; written by whichever of the job (the id) and the push
/// (the result) comes first, so a result is applied once; `ttl` ends it.
pub fn media_check(trace_id: &str) -> Key {
    Key::new(format!("{MEDIACHECK}{trace_id}"), "CHECK")
}

/// The sort keys of the member's partition that are not exported as records of their own
/// (`domain/exports`): idempotency records (replays of answers), the export's own records and
/// the markers of subscription pushes counted (the grants hold what they counted) and the daily
/// upload counts.
pub fn unexported_in_user(sk: &str) -> bool {
    sk.starts_with(IDEMPOTENCY_PREFIX)
        || sk == EXPORT_SK
        || sk.starts_with(EXPORT_DAY_PREFIX)
        || sk.starts_with(SUBPUSH_PREFIX)
        || sk.starts_with(UPLOAD_DAY_PREFIX)
}

/// Payout-account claim: `PAYOUTCLAIM#<tag> / PAYOUTCLAIM` — `member_id`, the one member whose
/// payout account is the receiver whose kind and account's keyed hash is `tag` (a receiver is
/// one at the provider: a second member binding it, then unbinding, would remove it for the
/// first); never the account.
pub fn payout_claim(tag: &str) -> Key {
    Key::new(format!("{PAYOUTCLAIM}{tag}"), "PAYOUTCLAIM")
}

/// Identity claim: `IDCLAIM#<tag> / IDCLAIM` — `n`, how many accounts the identity whose
/// number's HMAC is `tag` verifies (a capped counter); never the number.
pub fn identity_claim(tag: &str) -> Key {
    Key::new(format!("{IDCLAIM}{tag}"), "IDCLAIM")
}

/// Openid claim: `OPENID#<openid> / OPENID` —
/// [`OpenidClaim`](crate::domain::members::OpenidClaim): written with the member, on absence: one
/// member per openid.
pub fn openid(openid: &str) -> Key {
    Key::new(format!("{OPENID}{openid}"), "OPENID")
}

// Listings.

/// Listing: `LISTING#<id> / LISTING` — [`Listing`](crate::domain::listings::Listing).
pub fn listing(id: &ListingId) -> Key {
    Key::new(format!("{LISTING}{id}"), "LISTING")
}

/// A published listing in `gsi1`: `OWNER#<owner> / <published_at>#<id>` — a member's published
/// listings, newest first.
pub fn listing_listed(owner: &UserId, published_at: &str, id: &ListingId) -> Key {
    Key::new(owner_listings(owner), by_time(published_at, id))
}

/// `OWNER#<owner>`: the `gsi1` partition of a member's published listings.
pub fn owner_listings(owner: &UserId) -> String {
    format!("{OWNER}{owner}")
}

/// `MINE#<owner>`: the owner's listings in every status, newest created first.
pub fn mine(owner: &UserId) -> String {
    format!("{MINE}{owner}")
}

/// `MINE#<owner>#<status>`: the `gsi1` partition of the owner's listings in one status.
pub fn mine_status(owner: &UserId, status: &str) -> String {
    format!("{MINE}{owner}#{status}")
}

/// Owner's entry: `MINE#<owner> / <created_at>#<id>` —
/// [`MineEntry`](crate::domain::listings::MineEntry): one per listing, in every status.
pub fn mine_entry(owner: &UserId, created_at: &str, id: &ListingId) -> Key {
    Key::new(mine(owner), by_time(created_at, id))
}

/// An owner's entry in `gsi1`: `MINE#<owner>#<status> / <created_at>#<id>`.
pub fn mine_entry_listed(owner: &UserId, status: &str, created_at: &str, id: &ListingId) -> Key {
    Key::new(mine_status(owner, status), by_time(created_at, id))
}

/// A feed partition: `FEED#all`, or `FEED` followed by `#k=<kind>`, `#cat=<category>` and
/// `#c=<city>` for the filters given, in that order — one partition per combination.
pub fn feed(kind: Option<&str>, category: Option<&str>, city: Option<&str>) -> String {
    let mut partition = String::from("FEED");
    for (tag, value) in [("#k=", kind), ("#cat=", category), ("#c=", city)] {
        if let Some(value) = value {
            partition.push_str(tag);
            partition.push_str(value);
        }
    }
    if partition == "FEED" {
        partition.push_str("#all");
    }
    partition
}

/// Feed entry: `<feed partition> / <published_at>#<id>` —
/// [`Summary`](crate::domain::listings::Summary), newest first.
pub fn feed_entry(partition: String, published_at: &str, id: &ListingId) -> Key {
    Key::new(partition, by_time(published_at, id))
}

/// `GEO#<geohash prefix>`: the geo partition of a cell (its first [`PARTITION_PRECISION`]
/// characters).
pub fn geo(cell: &str) -> String {
    let end = cell
        .char_indices()
        .nth(PARTITION_PRECISION)
        .map_or(cell.len(), |(i, _)| i);
    format!("{GEO}{}", &cell[..end])
}

/// Geo entry: `GEO#<geohash prefix> / <geohash>#<id>` —
/// [`Summary`](crate::domain::listings::Summary), by cell, so a cell is a sort-key prefix.
pub fn geo_entry(cell: &str, id: &ListingId) -> Key {
    Key::new(geo(cell), format!("{cell}#{id}"))
}

/// `TERM#<term>`: the partition of a title term.
pub fn term(term: &str) -> String {
    format!("{TERM}{term}")
}

/// Term entry: `TERM#<term> / <published_at>#<id>` —
/// [`TermEntry`](crate::domain::listings::index::TermEntry), newest first.
pub fn term_entry(term_text: &str, published_at: &str, id: &ListingId) -> Key {
    Key::new(term(term_text), by_time(published_at, id))
}

// Favourites, follows, shares.

/// `FAVS#<member>`: a member's favourites, in the table by listing and in `gsi1` by time.
pub fn favourites(member: &UserId) -> String {
    format!("{FAVS}{member}")
}

/// Favourite: `FAVS#<member> / <listing id>` —
/// [`Favourite`](crate::domain::favorites::Favourite): at most one per member and listing.
pub fn favourite(member: &UserId, listing: &ListingId) -> Key {
    Key::new(favourites(member), listing.as_str())
}

/// A favourite in `gsi1`: `FAVS#<member> / <time-ordered ULID>` — newest first.
pub fn favourite_listed(member: &UserId, order: &str) -> Key {
    Key::new(favourites(member), order)
}

/// `FOLLOWING#<member>`: whom a member follows.
pub fn following(member: &UserId) -> String {
    format!("{FOLLOWING}{member}")
}

/// `FOLLOWERS#<member>`: who follows a member.
pub fn followers(member: &UserId) -> String {
    format!("{FOLLOWERS}{member}")
}

/// Follow, the follower's edge: `FOLLOWING#<member> / <followee>` —
/// [`Edge`](crate::domain::follows::Edge).
pub fn following_edge(member: &UserId, followee: &UserId) -> Key {
    Key::new(following(member), followee.as_str())
}

/// Follow, the followee's edge: `FOLLOWERS#<followee> / <member>` —
/// [`Edge`](crate::domain::follows::Edge).
pub fn follower_edge(followee: &UserId, member: &UserId) -> Key {
    Key::new(followers(followee), member.as_str())
}

/// An edge in `gsi1`: `<its pk> / <time-ordered ULID>` — newest first.
pub fn edge_listed(edge: &Key, order: &str) -> Key {
    Key::new(edge.pk.clone(), order)
}

/// `SHARES#<member>`: a member's share history.
pub fn shares(member: &UserId) -> String {
    format!("{SHARES}{member}")
}

/// Share: `SHARES#<member> / <time-ordered ULID>` — [`Share`](crate::domain::shares::Share),
/// newest first.
pub fn share(member: &UserId, order: &str) -> Key {
    Key::new(shares(member), order)
}

/// Share marker: `SHARED#<member> / <yyyy-mm-dd>#<listing>#<channel>` —
/// [`ShareMarker`](crate::domain::shares::ShareMarker): the day's first share of a listing to a
/// channel; `ttl` removes it.
pub fn share_day(member: &UserId, listing: &ListingId, channel: &str, day: &str) -> Key {
    Key::new(
        format!("{SHARED}{member}"),
        format!("{day}#{listing}#{channel}"),
    )
}

// Rate limits.

/// Rate-limit counter: `RATE#<class>#<subject> / <window start, epoch seconds>` — `n` calls in
/// the window, a capped counter (`ratelimit.rs`); `ttl` removes it after the window.
pub fn rate_counter(class: &str, subject: &str, window_start: i64) -> Key {
    Key::new(format!("{RATE}{class}#{subject}"), window_start.to_string())
}

// Orders.

const ORDER_SK: &str = "ORDER";
/// The sort-key prefix of an order's payment records (the provider follows it).
pub const PAYMENT_SK_PREFIX: &str = "PAYMENT#";
const EVENT_PREFIX: &str = "EVENT#";

/// `ORDER#<order id>`: an order's partition.
pub fn order_partition(id: &OrderId) -> String {
    format!("{ORDER}{id}")
}

/// Order: `ORDER#<order id> / ORDER` — [`Order`](crate::domain::orders::Order): the order,
/// its timeline and refunds; every transition is one conditional write of it.
pub fn order(id: &OrderId) -> Key {
    Key::new(order_partition(id), ORDER_SK)
}

/// Payment: `ORDER#<order id> / PAYMENT#<provider>` —
/// [`PaymentRecord`](crate::domain::orders::payments::PaymentRecord): one per provider the buyer
/// started paying with (Alipay's app and web channels pay one trade): prepay id, state at the
/// provider, a late payment's refund.
pub fn payment(id: &OrderId, provider: &str) -> Key {
    Key::new(
        order_partition(id),
        format!("{PAYMENT_SK_PREFIX}{provider}"),
    )
}

/// The sort key of an order's shipping record.
pub const SHIPPING_SK: &str = "SHIPPING";

/// Shipping record: `ORDER#<order id> / SHIPPING` —
/// [`ShippingRecord`](crate::domain::orders::shipping::ShippingRecord): the WeChat
/// mini-program shipping info a WeChat-paid order owes once accepted (written in the accept's
/// transaction), listed in `gsi1` under `DUE#shipping` until WeChat took it.
pub fn order_shipping(id: &OrderId) -> Key {
    Key::new(order_partition(id), SHIPPING_SK)
}

/// Provider event: `ORDER#<order id> / EVENT#<time-ordered ULID>` —
/// [`ProviderEvent`](crate::domain::orders::events::ProviderEvent): each notification and
/// provider answer about the order, verified or not (never keys or bodies).
pub fn order_event(id: &OrderId, order: &str) -> Key {
    Key::new(order_partition(id), format!("{EVENT_PREFIX}{order}"))
}

/// The sort-key prefix of an order's events (its history is one prefix query).
pub const EVENT_SK_PREFIX: &str = EVENT_PREFIX;

/// The sort-key prefix of an order's ledger entries.
pub const LEDGER_SK_PREFIX: &str = "LEDGER#";

/// Ledger entry: `ORDER#<order id> / LEDGER#<kind>:<ref>` —
/// [`LedgerEntry`](crate::domain::settlement::LedgerEntry): one movement of the order's money,
/// written once (its `ref` names the event) and never changed.
pub fn ledger_entry(id: &OrderId, reference: &str) -> Key {
    Key::new(
        order_partition(id),
        format!("{LEDGER_SK_PREFIX}{reference}"),
    )
}

/// The sort key of an order's settlement watch.
pub const SETTLE_WATCH_SK: &str = "SETTLE_WATCH";

/// Settlement watch: `ORDER#<order id> / SETTLE_WATCH` —
/// [`SettleWatch`](crate::domain::settlement::watch::SettleWatch): a paid order not yet settled,
/// written with the payment and removed when its split is final; listed in `gsi1` by its split
/// deadline under `DUE#settle_watch` (staff's alarm within 3 days of it; the job expires it past
/// it) or, once expired, `DUE#settle_expired` (for staff to decide).
pub fn settle_watch(id: &OrderId) -> Key {
    Key::new(order_partition(id), SETTLE_WATCH_SK)
}

/// `ORDERS#<member>#<role>` or `ORDERS#<member>#<role>#<status>`: a member's orders as `buyer`
/// or `seller`, all of them or in one status.
pub fn orders_of(member: &UserId, role: &str, status: Option<&str>) -> String {
    match status {
        None => format!("{ORDERS}{member}#{role}"),
        Some(status) => format!("{ORDERS}{member}#{role}#{status}"),
    }
}

/// Order entry: `ORDERS#<member>#<role>[#<status>] / <order id>` —
/// [`OrderEntry`](crate::domain::orders::OrderEntry), newest first (order ids sort by time); the
/// status entries move in each transition's write.
pub fn order_entry(member: &UserId, role: &str, status: Option<&str>, id: &OrderId) -> Key {
    Key::new(orders_of(member, role, status), id.as_str())
}

/// `DUE#<kind>`: the `gsi1` partition of orders (or payments) a job must act on.
pub fn due_partition(kind: &str) -> String {
    format!("{DUE}{kind}")
}

/// A member being deleted in `gsi1`: `DUE#deletion / <requested, 12 digits>#<member>` — the
/// member record while its deletion runs; the deletion job reads them oldest first.
pub fn deletion_listed(at: i64, member: &UserId) -> Key {
    Key::new(due_partition("deletion"), format!("{}#{member}", due(at)))
}

/// An order or payment in `gsi1`: `DUE#<kind> / <due, 12 digits>#<order id>[#<provider>]` —
/// the order jobs read each kind in order of due time.
pub fn due_listed(kind: &str, at: i64, id: &OrderId, provider: Option<&str>) -> Key {
    let sk = match provider {
        None => format!("{}#{id}", due(at)),
        Some(provider) => format!("{}#{id}#{provider}", due(at)),
    };
    Key::new(due_partition(kind), sk)
}

/// A seller_paid ledger entry in `gsi1`: `DUE#seller_paid / <at, 12 digits>#<order id>#<ref>` —
/// the daily reconciliation reads a day's entries (never removed: the ledger is append-only).
pub fn seller_paid_listed(at: i64, id: &OrderId, reference: &str) -> Key {
    due_listed("seller_paid", at, id, Some(reference))
}

/// Reconciliation: `RECON#<provider>#<yyyy-mm-dd> / RUN` —
/// [`Marker`](crate::domain::settlement::reconcile::Marker): that day's reconciliation of the
/// provider's splits (claimed, then done with its counts), so it runs once.
pub fn reconciliation(provider: &str, day: &str) -> Key {
    Key::new(format!("{RECON}{provider}#{day}"), "RUN")
}

/// Fee reconciliation: `RECON#<provider>#<yyyy-mm-dd> / FEES` —
/// [`Marker`](crate::domain::settlement::reconcile::Marker): that day's reconciliation of the
/// provider's fee against its trade bill, beside the splits' (each runs, and is retried, on its
/// own).
pub fn fee_reconciliation(provider: &str, day: &str) -> Key {
    Key::new(format!("{RECON}{provider}#{day}"), "FEES")
}

/// Notice: `NOTICES#<yyyy-mm-dd> / <time-ordered ULID>` —
/// [`ProviderEvent`](crate::domain::orders::events::ProviderEvent): a notification that named
/// no order of ours (or could not be read far enough to name one); `ttl` removes it.
pub fn unmatched_notice(day: &str, order: &str) -> Key {
    Key::new(format!("{NOTICES}{day}"), order)
}

/// The `gsi1` sort key of a ticket due at `at`: `<due, 12 digits>#<ticket id>`.
fn ticket_due(at: i64, id: &TicketId) -> String {
    format!("{}#{id}", due(at))
}

/// An open privacy request in `gsi1`: `DUE#privacy / <due, 12 digits>#<ticket id>` — the
/// scheduled job flags it to staff once due (§八: 15 days).
pub fn privacy_due_listed(at: i64, id: &TicketId) -> Key {
    Key::new(due_partition("privacy"), ticket_due(at, id))
}

// Blocks.

/// `BLOCKS#<member>`: whom a member blocks, in the table by member and in `gsi1` by time.
pub fn blocks(member: &UserId) -> String {
    format!("{BLOCKS}{member}")
}

/// Block: `BLOCKS#<blocker> / <blocked>` — [`Block`](crate::domain::blocks::Block): at most one
/// per pair; a follow, an order or a review by the blocked member of the blocker checks its
/// absence in the same transaction.
pub fn block(blocker: &UserId, blocked: &UserId) -> Key {
    Key::new(blocks(blocker), blocked.as_str())
}

/// A block in `gsi1`: `BLOCKS#<blocker> / <time-ordered ULID>` — newest first.
pub fn block_listed(blocker: &UserId, order: &str) -> Key {
    Key::new(blocks(blocker), order)
}

/// `BLOCKED#<blocked>`: who blocks a member.
pub fn blocked_by(blocked: &UserId) -> String {
    format!("{BLOCKED}{blocked}")
}

/// Block, the reverse entry: `BLOCKED#<blocked> / <blocker>` —
/// [`Block`](crate::domain::blocks::Block) naming the blocker: written and deleted in the
/// block's and unblock's transactions (blocks made before it existed have none: see
/// `domain/deletion.rs`).
pub fn block_reverse(blocked: &UserId, blocker: &UserId) -> Key {
    Key::new(blocked_by(blocked), blocker.as_str())
}

// Reviews.

const REVIEW_SK: &str = "REVIEW";

/// Review: `REVIEW#<review id> / REVIEW` — [`Review`](crate::domain::reviews::Review): rating,
/// text, images, the seller's reply, hidden by staff or not.
pub fn review(id: &ReviewId) -> Key {
    Key::new(format!("{REVIEW}{id}"), REVIEW_SK)
}

/// Review marker: `ORDER#<order id> / REVIEW` —
/// [`ReviewMarker`](crate::domain::reviews::ReviewMarker): the order's one review, written only
/// if absent in the review's transaction.
pub fn order_review(order: &OrderId) -> Key {
    Key::new(order_partition(order), REVIEW_SK)
}

/// `REVIEWS#listing#<id>`, `REVIEWS#seller#<id>`, `REVIEWS#author#<id>`: a review list.
pub fn reviews_of(list: &str, id: &str) -> String {
    format!("{REVIEWS}{list}#{id}")
}

/// Review entry: `REVIEWS#<listing|seller|author>#<id> / <review id>` —
/// [`ReviewEntry`](crate::domain::reviews::ReviewEntry): newest first (review ids sort by time);
/// a hidden review's public entries are removed with it.
pub fn review_entry(list: &str, id: &str, review: &ReviewId) -> Key {
    Key::new(reviews_of(list, id), review.as_str())
}

// Tickets.

const TICKET_SK: &str = "TICKET";
/// The sort-key prefix of a ticket's messages (its history is one prefix query).
pub const MESSAGE_SK_PREFIX: &str = "MSG#";

/// `TICKET#<ticket id>`: a ticket's partition.
pub fn ticket_partition(id: &TicketId) -> String {
    format!("{TICKET}{id}")
}

/// Ticket: `TICKET#<ticket id> / TICKET` — [`Ticket`](crate::domain::tickets::Ticket): kind,
/// subject, author, the order/listing/review/member it is about, status, `due_at`, `version`;
/// while an open privacy request: `gsi1` [`privacy_due_listed`].
pub fn ticket(id: &TicketId) -> Key {
    Key::new(ticket_partition(id), TICKET_SK)
}

/// Ticket message: `TICKET#<ticket id> / MSG#<time-ordered ULID>` —
/// [`TicketMessage`](crate::domain::tickets::TicketMessage): the whole history, oldest first.
pub fn ticket_message(id: &TicketId, order: &str) -> Key {
    Key::new(ticket_partition(id), format!("{MESSAGE_SK_PREFIX}{order}"))
}

/// `TICKETS#<member>`: the tickets a member sees.
pub fn tickets_of(member: &UserId) -> String {
    format!("{TICKETS}{member}")
}

/// Ticket entry: `TICKETS#<member> / <ticket id>` —
/// [`TicketEntry`](crate::domain::tickets::TicketEntry): its author's, and the other party's of an
/// order or dispute ticket; newest first.
pub fn ticket_entry(member: &UserId, id: &TicketId) -> Key {
    Key::new(tickets_of(member), id.as_str())
}

/// `QUEUE#<status>` or `QUEUE#<status>#<kind>`: the staff's queue of tickets in a status, all
/// kinds or one.
pub fn queue(status: &str, kind: Option<&str>) -> String {
    match kind {
        None => format!("{QUEUE}{status}"),
        Some(kind) => format!("{QUEUE}{status}#{kind}"),
    }
}

/// Queue entry: `QUEUE#<status>[#<kind>] / <due, 12 digits>#<ticket id>` —
/// [`QueueEntry`](crate::domain::tickets::QueueEntry): two per ticket (all kinds, its kind),
/// earliest due (so overdue) first; moved in the transaction that changes the ticket's status.
pub fn queue_entry(status: &str, kind: Option<&str>, due_at: i64, id: &TicketId) -> Key {
    Key::new(queue(status, kind), ticket_due(due_at, id))
}

// Staff.

/// `STAFF#<WeCom userid>`: a staff member's partition.
pub fn staff(id: &StaffId) -> String {
    format!("{STAFF}{id}")
}

/// Staff session: `STAFF#<WeCom userid> / SESSION#<sid>` —
/// [`StaffSession`](crate::staff::StaffSession): the role it was granted at sign-in; deleted on
/// sign-out or revocation; `ttl` expires it.
pub fn staff_session(id: &StaffId, session_id: &str) -> Key {
    Key::new(staff(id), format!("{SESSION_PREFIX}{session_id}"))
}

/// `AUDIT#all`, `AUDIT#actor#<staff id>`, `AUDIT#target#<kind>:<id>`: an audit list.
pub fn audit_trail(list: &str, id: Option<&str>) -> String {
    match id {
        None => format!("{AUDIT}{list}"),
        Some(id) => format!("{AUDIT}{list}#{id}"),
    }
}

/// Audit record: `AUDIT#all`, `AUDIT#actor#<staff id>`, `AUDIT#target#<target>` /
/// `<time-ordered ULID>` — [`AuditRecord`](crate::domain::audit::AuditRecord): three copies of
/// each staff action (who, role, action, target, reason, outcome), written in one transaction;
/// newest first.
pub fn audit_record(list: &str, id: Option<&str>, order: &str) -> Key {
    Key::new(audit_trail(list, id), order)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn user_id(n: u32) -> UserId {
        UserId::parse(&format!("u_{n:026}")).unwrap()
    }

    fn listing_id(n: u32) -> ListingId {
        ListingId::parse(&format!("l_{n:026}")).unwrap()
    }

    #[test]
    fn each_format_is_as_the_readme_says() {
        let (u, v, l) = (user_id(1), user_id(2), listing_id(3));
        let (u, v, l) = (u.as_str(), v.as_str(), l.as_str());
        let key = |k: Key| (k.pk, k.sk);
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let t = "2026-01-02T03:04:05Z";
        assert_eq!(key(member(&user_id(1))), s(&format!("USER#{u}"), "PROFILE"));
        assert_eq!(
            key(held_text(&user_id(1), "01h")),
            s(&format!("USER#{u}"), "TEXTCHECK#01h")
        );
        assert_eq!(
            key(held_text_listed(7, &user_id(1), "01h")),
            s("DUE#texts", &format!("000000000007#{u}#01h"))
        );
        assert_eq!(
            key(session(&user_id(1), "abc")),
            s(&format!("USER#{u}"), "SESSION#abc")
        );
        assert_eq!(
            key(verification(&user_id(1))),
            s(&format!("USER#{u}"), "VERIFICATION")
        );
        assert_eq!(
            key(verification_day(&user_id(1), "2026-01-02")),
            s(&format!("USER#{u}"), "VERIFICATION_DAY#2026-01-02")
        );
        assert_eq!(
            key(idempotency(&user_id(1), "POST /v1/orders", "k#1")),
            s(&format!("USER#{u}"), "IDEMPOTENCY#POST /v1/orders#k#1")
        );
        assert_eq!(
            key(consent(&user_id(1), "01abc")),
            s(&format!("USER#{u}"), "CONSENT#01abc")
        );
        assert_eq!(
            key(member_location(&user_id(1))),
            s(&format!("USER#{u}"), "LOCATION")
        );
        assert_eq!(
            key(guardian_consent(&user_id(1))),
            s(&format!("USER#{u}"), "GUARDIAN_CONSENT")
        );
        assert_eq!(key(openid("o-x")), s("OPENID#o-x", "OPENID"));
        assert_eq!(key(export(&user_id(1))), s(&format!("USER#{u}"), "EXPORT"));
        let m = MediaId::generate();
        assert_eq!(
            key(media(&user_id(1), &m)),
            s(&format!("USER#{u}"), &format!("MEDIA#{m}"))
        );
        assert_eq!(
            key(upload_day(&user_id(1), "2026-01-02")),
            s(&format!("USER#{u}"), "UPLOAD_DAY#2026-01-02")
        );
        assert_eq!(
            key(export_day(&user_id(1), "2026-01-02")),
            s(&format!("USER#{u}"), "EXPORT_DAY#2026-01-02")
        );
        assert_eq!(key(wechat_token("wx1")), s("WXTOKEN#wx1", "ACCESS_TOKEN"));
        assert_eq!(
            key(media_listed(7, &user_id(1), &m)),
            s("DUE#media", &format!("000000000007#{u}#{m}"))
        );
        assert_eq!(
            key(subscription_grant(&user_id(1), "T-1")),
            s(&format!("USER#{u}"), "SUBSCRIBE#T-1")
        );
        assert_eq!(
            key(subscription_push(&user_id(1), 17, "T-1")),
            s(&format!("USER#{u}"), "SUBPUSH#17#T-1")
        );
        assert_eq!(
            key(notification(&user_id(1), "ABC.3.order_paid")),
            s(&format!("USER#{u}"), "NOTIFY#ABC.3.order_paid")
        );
        assert_eq!(
            key(notification_listed(7, &user_id(1), "n")),
            s("DUE#notify", &format!("000000000007#{u}#n"))
        );
        assert_eq!(key(media_queued(&m)), s("QUEUE#media", m.as_str()));
        assert_eq!(key(media_check("t-1")), s("MEDIACHECK#t-1", "CHECK"));
        assert_eq!(
            key(export_listed(7, &user_id(1))),
            s("DUE#export", &format!("000000000007#{u}"))
        );
        assert_eq!(
            key(block_reverse(&user_id(2), &user_id(1))),
            s(&format!("BLOCKED#{v}"), u)
        );
        assert_eq!(
            key(deletion_listed(7, &user_id(1))),
            s("DUE#deletion", &format!("000000000007#{u}"))
        );
        let o = OrderId::parse("01JD3ZK8M4N5P6Q7R8S9T0V1").unwrap();
        assert_eq!(key(order(&o)), s(&format!("ORDER#{o}"), "ORDER"));
        assert_eq!(
            key(payment(&o, "wechat")),
            s(&format!("ORDER#{o}"), "PAYMENT#wechat")
        );
        assert_eq!(
            key(order_event(&o, "01abc")),
            s(&format!("ORDER#{o}"), "EVENT#01abc")
        );
        assert_eq!(
            key(order_entry(&user_id(1), "buyer", None, &o)),
            s(&format!("ORDERS#{u}#buyer"), o.as_str())
        );
        assert_eq!(
            key(order_entry(&user_id(1), "seller", Some("paid"), &o)),
            s(&format!("ORDERS#{u}#seller#paid"), o.as_str())
        );
        assert_eq!(
            key(due_listed("expire", 1_700_000_000, &o, None)),
            s("DUE#expire", &format!("001700000000#{o}"))
        );
        assert_eq!(
            key(due_listed("payment", 7, &o, Some("alipay"))),
            s("DUE#payment", &format!("000000000007#{o}#alipay"))
        );
        assert_eq!(
            key(unmatched_notice("2026-01-02", "01abc")),
            s("NOTICES#2026-01-02", "01abc")
        );
        assert_eq!(
            key(listing(&listing_id(3))),
            s(&format!("LISTING#{l}"), "LISTING")
        );
        assert_eq!(
            key(listing_listed(&user_id(1), t, &listing_id(3))),
            s(&format!("OWNER#{u}"), &format!("{t}#{l}"))
        );
        assert_eq!(
            key(mine_entry(&user_id(1), t, &listing_id(3))),
            s(&format!("MINE#{u}"), &format!("{t}#{l}"))
        );
        assert_eq!(
            key(mine_entry_listed(&user_id(1), "draft", t, &listing_id(3))),
            s(&format!("MINE#{u}#draft"), &format!("{t}#{l}"))
        );
        assert_eq!(feed(None, None, None), "FEED#all");
        assert_eq!(feed(Some("service"), None, None), "FEED#k=service");
        assert_eq!(feed(None, None, Some("北京")), "FEED#c=北京");
        assert_eq!(
            feed(Some("service"), Some("photography"), Some("北京")),
            "FEED#k=service#cat=photography#c=北京"
        );
        assert_eq!(
            key(feed_entry(feed(None, Some("x"), None), t, &listing_id(3))),
            s("FEED#cat=x", &format!("{t}#{l}"))
        );
        assert_eq!(PARTITION_PRECISION, 3, "the README's geo partitions");
        assert_eq!(geo("wx4g0ec1"), "GEO#wx4");
        assert_eq!(geo("wx"), "GEO#wx");
        assert_eq!(
            key(geo_entry("wx4g0ec19", &listing_id(3))),
            s("GEO#wx4", &format!("wx4g0ec19#{l}"))
        );
        assert_eq!(
            key(term_entry("摄影", t, &listing_id(3))),
            s("TERM#摄影", &format!("{t}#{l}"))
        );
        assert_eq!(
            key(favourite(&user_id(1), &listing_id(3))),
            s(&format!("FAVS#{u}"), l)
        );
        assert_eq!(
            key(favourite_listed(&user_id(1), "01j")),
            s(&format!("FAVS#{u}"), "01j")
        );
        assert_eq!(
            key(following_edge(&user_id(1), &user_id(2))),
            s(&format!("FOLLOWING#{u}"), v)
        );
        assert_eq!(
            key(follower_edge(&user_id(2), &user_id(1))),
            s(&format!("FOLLOWERS#{v}"), u)
        );
        assert_eq!(
            key(edge_listed(
                &following_edge(&user_id(1), &user_id(2)),
                "01j"
            )),
            s(&format!("FOLLOWING#{u}"), "01j")
        );
        assert_eq!(
            key(share(&user_id(1), "01j")),
            s(&format!("SHARES#{u}"), "01j")
        );
        assert_eq!(
            key(share_day(&user_id(1), &listing_id(3), "qq", "2026-01-02")),
            s(&format!("SHARED#{u}"), &format!("2026-01-02#{l}#qq"))
        );
        assert_eq!(
            key(rate_counter("login", "203.0.113.7", 1_700_000_000)),
            s("RATE#login#203.0.113.7", "1700000000")
        );
        assert_eq!(key(identity_claim("t0")), s("IDCLAIM#t0", "IDCLAIM"));
        assert_eq!(
            key(verification_listed(1_700_000_000, &user_id(1))),
            s("VERIFY#pending", &format!("001700000000#{u}"))
        );
        assert_eq!(due(-5), "000000000000");
        let (r, t) = (
            ReviewId::parse("r_0000000000000000000000000a").unwrap(),
            TicketId::parse("t_0000000000000000000000000b").unwrap(),
        );
        assert_eq!(key(review(&r)), s(&format!("REVIEW#{r}"), "REVIEW"));
        assert_eq!(key(order_review(&o)), s(&format!("ORDER#{o}"), "REVIEW"));
        assert_eq!(
            key(review_entry("seller", u, &r)),
            s(&format!("REVIEWS#seller#{u}"), r.as_str())
        );
        assert_eq!(key(ticket(&t)), s(&format!("TICKET#{t}"), "TICKET"));
        assert_eq!(
            key(ticket_message(&t, "01j")),
            s(&format!("TICKET#{t}"), "MSG#01j")
        );
        assert_eq!(
            key(ticket_entry(&user_id(1), &t)),
            s(&format!("TICKETS#{u}"), t.as_str())
        );
        assert_eq!(
            key(queue_entry("open", Some("privacy"), 7, &t)),
            s("QUEUE#open#privacy", &format!("000000000007#{t}"))
        );
        assert_eq!(
            key(privacy_due_listed(7, &t)),
            s("DUE#privacy", &format!("000000000007#{t}"))
        );
        assert_eq!(
            key(block(&user_id(1), &user_id(2))),
            s(&format!("BLOCKS#{u}"), v)
        );
        let staff_id = StaffId::parse("zhangsan").unwrap();
        assert_eq!(
            key(staff_session(&staff_id, "abc")),
            s("STAFF#zhangsan", "SESSION#abc")
        );
        assert_eq!(
            key(audit_record("actor", Some("zhangsan"), "01j")),
            s("AUDIT#actor#zhangsan", "01j")
        );
        assert_eq!(key(audit_record("all", None, "01j")), s("AUDIT#all", "01j"));
        assert_eq!(user_of(&user(&user_id(1))), Some(user_id(1)));
        assert_eq!(user_of(&format!("OWNER#{u}")), None);
        assert_eq!(user_of("USER#x"), None);
    }

    #[test]
    fn no_partition_prefix_begins_another() {
        for set in [&PARTITIONS[..], &GSI1_PARTITIONS[..]] {
            for (i, a) in set.iter().enumerate() {
                assert!(a.ends_with('#') && a.len() > 1, "{a}");
                for (j, b) in set.iter().enumerate() {
                    assert!(i == j || !b.starts_with(a), "{a} begins {b}");
                }
            }
        }
    }

    /// Every table key each kind can make, from ids and from free text chosen to look like other
    /// kinds' keys: no key belongs to two kinds, and each starts with its family's prefix.
    #[test]
    fn no_two_item_kinds_make_the_same_key() {
        let users: Vec<UserId> = (0..3).map(user_id).collect();
        let listings: Vec<ListingId> = (0..3).map(listing_id).collect();
        let texts = [
            "",
            "#",
            "PROFILE",
            "OPENID",
            "LISTING",
            "SESSION#x",
            "VERIFICATION",
            "all",
            "k=service",
            "c=北京",
            "wx4g",
            "wx4g0ec19",
            "2026-01-02T03:04:05Z",
            users[0].as_str(),
            listings[0].as_str(),
        ];
        let mut kinds: HashMap<Key, &str> = HashMap::new();
        let mut add = |kind: &'static str, prefix: &'static str, key: Key| {
            assert!(key.pk.starts_with(prefix), "{kind}: {key:?}");
            if let Some(other) = kinds.insert(key.clone(), kind) {
                assert_eq!(other, kind, "{key:?} is both {other} and {kind}");
            }
        };
        for u in &users {
            add("member", USER, member(u));
            for text in texts {
                add("session", USER, session(u, text));
                add("verification day", USER, verification_day(u, text));
                add("idempotency", USER, idempotency(u, text, text));
                add("export day", USER, export_day(u, text));
                add("upload day", USER, upload_day(u, text));
                add("share", SHARES, share(u, text));
                for l in &listings {
                    add("share marker", SHARED, share_day(u, l, text, text));
                }
            }
            add("verification", USER, verification(u));
            for text in texts {
                add("payout account", USER, payout_account(u, text));
            }
            add("export", USER, export(u));
            add("upload", USER, media(u, &MediaId::generate()));
            for text in texts {
                add("subscription grant", USER, subscription_grant(u, text));
                add("notification", USER, notification(u, text));
                add("subscription push", USER, subscription_push(u, 1, text));
            }
            for l in &listings {
                add("favourite", FAVS, favourite(u, l));
                for text in texts {
                    add("owner's entry", MINE, mine_entry(u, text, l));
                }
            }
            for v in &users {
                add("following edge", FOLLOWING, following_edge(u, v));
                add("follower edge", FOLLOWERS, follower_edge(u, v));
            }
        }
        for l in &listings {
            add("listing", LISTING, listing(l));
            for text in texts {
                for kind in [None, Some(text)] {
                    for category in [None, Some(text)] {
                        for city in [None, Some(text)] {
                            let partition = feed(kind, category, city);
                            add("feed entry", FEED, feed_entry(partition, text, l));
                        }
                    }
                }
                add("geo entry", GEO, geo_entry(text, l));
                add("term entry", TERM, term_entry(text, text, l));
            }
        }
        let orders = [
            OrderId::parse("01JD3ZK8M4N5P6Q7R8S9T0V1").unwrap(),
            OrderId::parse("01JD3ZK8M4N5P6Q7R8S9T0V2").unwrap(),
        ];
        for o in &orders {
            add("order", ORDER, order(o));
            for text in texts {
                add("payment", ORDER, payment(o, text));
                add("order event", ORDER, order_event(o, text));
                for u in &users {
                    for status in [None, Some(text)] {
                        add("order entry", ORDERS, order_entry(u, text, status, o));
                    }
                }
            }
        }
        let reviews = [ReviewId::generate(), ReviewId::generate()];
        let tickets = [TicketId::generate(), TicketId::generate()];
        for o in &orders {
            add("review marker", ORDER, order_review(o));
        }
        for r in &reviews {
            add("review", REVIEW, review(r));
            for text in texts {
                add("review entry", REVIEWS, review_entry(text, text, r));
            }
        }
        for t in &tickets {
            add("ticket", TICKET, ticket(t));
            for text in texts {
                add("ticket message", TICKET, ticket_message(t, text));
                for kind in [None, Some(text)] {
                    add("queue entry", QUEUE, queue_entry(text, kind, 7, t));
                }
            }
            for u in &users {
                add("ticket entry", TICKETS, ticket_entry(u, t));
            }
        }
        for u in &users {
            for v in &users {
                add("block", BLOCKS, block(u, v));
            }
        }
        for text in texts.iter().filter(|t| !t.is_empty() && !t.contains('#')) {
            let staff_id = StaffId::parse(text)
                .or_else(|| StaffId::parse("s1"))
                .unwrap();
            add("staff session", STAFF, staff_session(&staff_id, text));
        }
        for text in texts {
            for id in [None, Some(text)] {
                add("audit record", AUDIT, audit_record(text, id, text));
            }
        }
        for text in texts {
            add("unmatched notice", NOTICES, unmatched_notice(text, text));
            add("image check", MEDIACHECK, media_check(text));
            add("reconciliation", RECON, reconciliation(text, text));
            add("openid claim", OPENID, openid(text));
            add("identity claim", IDCLAIM, identity_claim(text));
            for subject in texts {
                add("rate counter", RATE, rate_counter(text, subject, 60));
            }
        }
    }
}
