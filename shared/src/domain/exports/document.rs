//! The export document: one JSON object, written as it is read, page by page, into a multipart
//! upload — never whole in memory. Its shape is the README's "A copy of my data" and
//! `openapi.yaml`'s `ExportDocument`:
//!
//! ```text
//! { "format": "renji.export", "version": 1, "export_id", "member_id", "generated_at",
//!   "profile", "verification", "consents", "consent_history": […], "location",
//!   "guardian_consent", "payout_accounts": […], "sessions": […], "uploads": […], "other_records": […],
//!   "listings": […], "favourites": […], "following": […], "followers": […], "blocks": […],
//!   "shares": […], "orders_as_buyer": […], "orders_as_seller": […], "earnings": […],
//!   "reviews_written": […], "reviews_received": […], "tickets": […],
//!   "audit_by_member": […], "audit_about_member": […], "counts": {<section>: n} }
//! ```
//!
//! Each section is the member's own view of the records, as the routes show them; another
//! member appears only by their public card (id, nickname, avatar). Never in it: openid and
//! unionid (internal WeChat identifiers), sealed identity data (the verification shows the
//! number masked, a guardian's consent shows when it was recorded, its details staying sealed,
//! a payout account shows its account and name masked, as `GET /v1/me/payout-accounts` does),
//! secrets, idempotency records (stored replays of answers).
//!
//! Items of the member's partition of a kind this module does not know (added by later work)
//! are still exported, generically, in `other_records`: `{"kind": <the sort key up to its first
//! `#`>, "key": <sort key>, "attributes": {…}}`, every attribute but the key attributes and any
//! whose name speaks of secrets ([`withheld`]).
//!
//! Staff appear in it as `staff`, never by name (a WeCom userid often is one): besides the
//! sections that show staff so already (tickets' `from`, the audit records' `actor`), every value
//! written passes [`mask_staff`], so an attribute naming a staff member anywhere — a held text's
//! `decided.staff_id` in `other_records`, a ticket's `closed_by`, kinds added later — holds
//! `"staff"`.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use crate::archive::{Archive, Part};
use crate::domain::audit::AuditRecord;
use crate::domain::blocks::Block;
use crate::domain::consents::{
    self, ConsentRecord, GuardianConsent, PolicyVersions, StoredPosition,
};
use crate::domain::favorites::Favourite;
use crate::domain::follows::Edge;
use crate::domain::listings::{self, Listing, MineEntry};
use crate::domain::members::Member;
use crate::domain::orders::{view as order_view, Order, OrderEntry, Role};
use crate::domain::reviews::{Review, ReviewEntry, ReviewMarker};
use crate::domain::shares::Share;
use crate::domain::tickets::{self, Ticket, TicketEntry};
use crate::domain::verification::Verification;
use crate::error::Error;
use crate::ids::{ListingId, UserId};
use crate::session::SessionRecord;
use crate::store::{keys, DynStore, Item, Key, Query, Record, Records, SortKey};

/// Items read per page (and batch read with them).
pub const PAGE: usize = 100;

/// Writes bytes into a multipart upload, one part at a time: it holds at most `part_size` bytes.
pub struct PartWriter<'a> {
    archive: &'a dyn Archive,
    key: String,
    upload: String,
    part_size: usize,
    buffer: Vec<u8>,
    parts: Vec<Part>,
    written: u64,
    /// The most bytes the writer held at once (tests check it never exceeds a part).
    pub most_held: usize,
}

impl<'a> PartWriter<'a> {
    pub async fn begin(
        archive: &'a dyn Archive,
        key: &str,
        part_size: usize,
    ) -> Result<Self, Error> {
        let upload = archive.begin(key).await?;
        Ok(PartWriter {
            archive,
            key: key.to_owned(),
            upload,
            part_size: part_size.max(1),
            buffer: Vec::new(),
            parts: Vec::new(),
            written: 0,
            most_held: 0,
        })
    }

    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let take = (self.part_size - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.most_held = self.most_held.max(self.buffer.len());
            if self.buffer.len() == self.part_size {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let part = std::mem::take(&mut self.buffer);
        self.written += part.len() as u64;
        let number = u32::try_from(self.parts.len() + 1)
            .map_err(|_| Error::Internal("too many parts".into()))?;
        let part = self
            .archive
            .put_part(&self.key, &self.upload, number, part)
            .await?;
        self.parts.push(part);
        Ok(())
    }

    /// Uploads the last part and completes the upload; answers the document's size and the
    /// most bytes held at once.
    pub async fn finish(mut self) -> Result<(u64, usize), Error> {
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.flush().await?;
        }
        self.archive
            .complete(&self.key, &self.upload, &self.parts)
            .await?;
        Ok((self.written, self.most_held))
    }

    /// Drops the upload (after a failure).
    pub async fn abort(self) {
        if let Err(e) = self.archive.abort(&self.key, &self.upload).await {
            tracing::warn!(error = %e, "export upload not aborted; the lifecycle rule ends it");
        }
    }
}

/// The JSON document, written field by field and item by item.
struct Doc<'w, 'a> {
    out: &'w mut PartWriter<'a>,
    /// Whether the current object or array has had a member yet.
    first: bool,
    counts: BTreeMap<&'static str, u64>,
}

impl Doc<'_, '_> {
    async fn raw(&mut self, text: &[u8]) -> Result<(), Error> {
        self.out.write(text).await
    }

    async fn field(&mut self, name: &str, value: &Value) -> Result<(), Error> {
        self.key(name).await?;
        let bytes = to_bytes(&mask_staff(value.clone()))?;
        self.raw(&bytes).await
    }

    async fn key(&mut self, name: &str) -> Result<(), Error> {
        let mut text = Vec::new();
        if !self.first {
            text.push(b',');
        }
        text.extend_from_slice(&to_bytes(&json!(name))?);
        text.push(b':');
        self.first = false;
        self.raw(&text).await
    }

    async fn open(&mut self, name: &'static str) -> Result<(), Error> {
        self.key(name).await?;
        self.first = true;
        self.counts.insert(name, 0);
        self.raw(b"[").await
    }

    async fn item(&mut self, name: &'static str, value: &Value) -> Result<(), Error> {
        if !self.first {
            self.raw(b",").await?;
        }
        self.first = false;
        let bytes = to_bytes(&mask_staff(value.clone()))?;
        self.raw(&bytes).await?;
        *self.counts.entry(name).or_default() += 1;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.first = false;
        self.raw(b"]").await
    }
}

fn to_bytes(value: &Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("export item: {e}")))
}

/// What a page renderer gets: the store and whose export it is.
pub struct Ctx<'s> {
    pub store: &'s DynStore,
    pub member: &'s UserId,
    /// `RENJI_MEDIA_BASE_URL`: an upload's URL is this, `/`, its key.
    pub media_base_url: &'s str,
}

type Render = for<'c> fn(&'c Ctx<'c>, Vec<Item>) -> BoxFuture<'c, Result<Vec<Value>, Error>>;

/// One section: every page of `query`, each rendered by `render`, written item by item.
async fn section(
    doc: &mut Doc<'_, '_>,
    ctx: &Ctx<'_>,
    name: &'static str,
    query: Query,
    render: Render,
) -> Result<(), Error> {
    doc.open(name).await?;
    let mut cursor = None;
    loop {
        let page = ctx
            .store
            .query(query.clone().limit(PAGE).after(cursor))
            .await?;
        for value in render(ctx, page.items).await? {
            doc.item(name, &value).await?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    doc.close().await
}

/// Writes `member`'s whole document into `out`.
pub async fn write(
    out: &mut PartWriter<'_>,
    store: &DynStore,
    policy_versions: &PolicyVersions,
    media_base_url: &str,
    member: &UserId,
    export_id: &str,
    generated_at: &str,
) -> Result<(), Error> {
    let ctx = Ctx {
        store,
        member,
        media_base_url,
    };
    let mut doc = Doc {
        out,
        first: true,
        counts: BTreeMap::new(),
    };
    doc.raw(b"{").await?;
    doc.field("format", &json!("renji.export")).await?;
    doc.field("version", &json!(1)).await?;
    doc.field("export_id", &json!(export_id)).await?;
    doc.field("member_id", &json!(member)).await?;
    doc.field("generated_at", &json!(generated_at)).await?;
    let profile: Option<Member> = store.get_record(&keys::member(member)).await?;
    doc.field(
        "profile",
        &profile
            .as_ref()
            .map_or(Value::Null, |m| m.private_view(policy_versions)),
    )
    .await?;
    let verification: Option<Verification> = store.get_record(&keys::verification(member)).await?;
    doc.field(
        "verification",
        &verification.map_or(Value::Null, |v| v.view()),
    )
    .await?;
    // Consents (§六): the summary `GET /v1/me/consents` shows, every consent event kept (the
    // proof of consent), the stored coarse position while `location` is granted, and when a
    // guardian's consent was recorded (its details stay sealed: never shown by any route).
    doc.field(
        "consents",
        &profile
            .as_ref()
            .map_or(Value::Null, |m| consents::view(m, policy_versions)),
    )
    .await?;
    let user = keys::user(member);
    section(
        &mut doc,
        &ctx,
        "consent_history",
        Query::partition(user.clone()).sort(SortKey::Prefix(keys::CONSENT_PREFIX.into())),
        render_consents,
    )
    .await?;
    let position: Option<StoredPosition> = store.get_record(&keys::member_location(member)).await?;
    doc.field(
        "location",
        &position.map_or(
            Value::Null,
            |p| json!({"geohash": p.geohash, "recorded_at": p.recorded_at}),
        ),
    )
    .await?;
    let guardian: Option<GuardianConsent> =
        store.get_record(&keys::guardian_consent(member)).await?;
    doc.field(
        "guardian_consent",
        &guardian.map_or(
            Value::Null,
            |g| json!({"recorded_at": g.recorded_at, "details": "sealed"}),
        ),
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "payout_accounts",
        Query::partition(user.clone()).sort(SortKey::Prefix(keys::PAYOUT_PREFIX.into())),
        render_payout_accounts,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "sessions",
        Query::partition(user.clone()).sort(SortKey::Prefix(keys::SESSION_PREFIX.into())),
        render_sessions,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "uploads",
        Query::partition(user.clone()).sort(SortKey::Prefix(keys::MEDIA_PREFIX.into())),
        render_uploads,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "other_records",
        Query::partition(user),
        render_other,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "listings",
        Query::partition(keys::mine(member)).descending(),
        render_listings,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "favourites",
        Query::partition(keys::favourites(member)),
        render_favourites,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "following",
        Query::partition(keys::following(member)),
        render_edges,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "followers",
        Query::partition(keys::followers(member)),
        render_edges,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "blocks",
        Query::partition(keys::blocks(member)),
        render_blocks,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "shares",
        Query::partition(keys::shares(member)).descending(),
        render_shares,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "orders_as_buyer",
        Query::partition(keys::orders_of(member, Role::Buyer.as_str(), None)).descending(),
        render_orders_as_buyer,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "orders_as_seller",
        Query::partition(keys::orders_of(member, Role::Seller.as_str(), None)).descending(),
        render_orders_as_seller,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "earnings",
        Query::partition(keys::orders_of(member, Role::Seller.as_str(), None)).descending(),
        render_earnings,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "reviews_written",
        Query::partition(keys::reviews_of("author", member.as_str())).descending(),
        render_reviews,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "reviews_received",
        Query::partition(keys::orders_of(member, Role::Seller.as_str(), None)).descending(),
        render_reviews_received,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "tickets",
        Query::partition(keys::tickets_of(member)).descending(),
        render_tickets,
    )
    .await?;
    let me = crate::domain::audit::Target::member(member);
    section(
        &mut doc,
        &ctx,
        "audit_by_member",
        Query::partition(keys::audit_trail("actor", Some(me.as_str()))).descending(),
        render_audit,
    )
    .await?;
    section(
        &mut doc,
        &ctx,
        "audit_about_member",
        Query::partition(keys::audit_trail("target", Some(me.as_str()))).descending(),
        render_audit,
    )
    .await?;
    let counts = json!(doc.counts);
    doc.field("counts", &counts).await?;
    doc.raw(b"}").await
}

/// Whether an attribute of a generically rendered item is left out: the key attributes, and
/// any whose name speaks of a secret or an internal identifier (`sealed`, `secret`, `token`,
/// `hash`, `key`, `openid`, `unionid`, `tag`), at any depth.
pub fn withheld(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["pk", "sk", "gsi1pk", "gsi1sk", "ttl"].contains(&lower.as_str())
        || [
            "sealed", "secret", "token", "hash", "key", "openid", "unionid", "tag",
        ]
        .iter()
        .any(|word| lower.contains(word))
}

/// `value` without the [`withheld`] attributes, at any depth.
pub fn scrub(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| !withheld(name))
                .map(|(name, v)| (name, scrub(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
        other => other,
    }
}

/// Whether an attribute names a staff member: `staff_id` (`…_staff_id`), or an id in one named
/// `…_by` (`closed_by`; a member is never named so in a record — `requested_by: "member"` names
/// a role, kept).
fn names_staff(name: &str, value: &Value) -> bool {
    let lower = name.to_ascii_lowercase();
    let staff_id = lower == "staff_id" || lower.ends_with("_staff_id");
    match value {
        Value::Null | Value::Bool(_) => false,
        Value::String(text) => {
            staff_id
                || (lower.ends_with("_by")
                    && !["member", "staff", "system"].contains(&text.as_str()))
        }
        _ => staff_id,
    }
}

/// `value` with every attribute naming a staff member ([`names_staff`]), at any depth, as
/// `"staff"`: how a member's export shows staff.
pub fn mask_staff(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, v)| match names_staff(&name, &v) {
                    true => (name, json!("staff")),
                    false => (name, mask_staff(v)),
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mask_staff).collect()),
        other => other,
    }
}

fn sort_key(item: &Item) -> String {
    item.get("sk")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Uploads: each record (purpose, type, size, state and why, where it is used, times) and the
/// URL it has once public; never a signed link to the object.
fn render_uploads<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        items
            .iter()
            .map(|item| {
                let record = crate::domain::media::MediaRecord::from_item(item.clone())?;
                crate::domain::media::uploads::export_view(&record, ctx.media_base_url)
            })
            .collect()
    })
}

/// Sessions (and the device facts on them): each as stored, with its id, secrets withheld.
fn render_sessions<'c>(
    _: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        items
            .into_iter()
            .map(|item| {
                let sk = sort_key(&item);
                let id = sk
                    .strip_prefix(keys::SESSION_PREFIX)
                    .unwrap_or(&sk)
                    .to_owned();
                // As `GET /v1/me/sessions` shows it (not "current": no session asks here).
                let mut view = SessionRecord::from_item(item)?.view(&id, false)?;
                if let Some(view) = view.as_object_mut() {
                    view.remove("current");
                }
                Ok(view)
            })
            .collect()
    })
}

/// Payout accounts, as `GET /v1/me/payout-accounts` shows them: masked, never the sealed values.
fn render_payout_accounts<'c>(
    _: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        items
            .into_iter()
            .map(|item| Ok(crate::domain::payouts::PayoutAccount::from_item(item)?.view()))
            .collect()
    })
}

/// The kinds of the member's partition rendered in a section of their own, or not at all.
fn known_in_user(member: &UserId, sk: &str) -> bool {
    let own = [
        keys::member(member),
        keys::verification(member),
        keys::member_location(member),
        keys::guardian_consent(member),
    ];
    own.iter().any(|k| k.sk == sk)
        || sk.starts_with(keys::SESSION_PREFIX)
        || sk.starts_with(keys::CONSENT_PREFIX)
        || sk.starts_with(keys::MEDIA_PREFIX)
        || sk.starts_with(keys::PAYOUT_PREFIX)
        || keys::unexported_in_user(sk)
}

/// Consent events, as kept: what, which version or scope, when.
fn render_consents<'c>(
    _: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        records::<ConsentRecord>(items)?
            .into_iter()
            .map(|r| serde_json::to_value(r).map_err(|e| Error::Internal(format!("consent: {e}"))))
            .collect()
    })
}

/// Items of the member's partition of kinds not otherwise exported, generically.
fn render_other<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let sk = sort_key(&item);
                if known_in_user(ctx.member, &sk) {
                    return None;
                }
                let kind = sk
                    .split('#')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                Some(json!({
                    "kind": kind,
                    "key": sk,
                    "attributes": scrub(Value::Object(item)),
                }))
            })
            .collect())
    })
}

fn records<R: Record>(items: Vec<Item>) -> Result<Vec<R>, Error> {
    items.into_iter().map(R::from_item).collect()
}

/// The public cards of `ids` (a member who is gone: the id alone), one batch read.
async fn cards(store: &DynStore, ids: &[UserId]) -> Result<Vec<Value>, Error> {
    let member_keys: Vec<Key> = ids.iter().map(keys::member).collect();
    let found: Vec<Option<Member>> = store.get_records(&member_keys).await?;
    Ok(ids
        .iter()
        .zip(found)
        .map(|(id, m)| order_view::card(id, m.as_ref()))
        .collect())
}

fn render_listings<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let entries: Vec<MineEntry> = records(items)?;
        let listing_keys: Vec<Key> = entries
            .iter()
            .map(|e| keys::listing(&e.listing_id))
            .collect();
        let found: Vec<Option<Listing>> = ctx.store.get_records(&listing_keys).await?;
        Ok(entries
            .into_iter()
            .zip(found)
            .map(|(entry, listing)| match listing {
                Some(l) => l.owner_view(),
                None => json!({"id": entry.listing_id, "status": entry.status, "available": false}),
            })
            .collect())
    })
}

fn render_favourites<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let favourites: Vec<Favourite> = records(items)?;
        let ids: Vec<ListingId> = favourites.iter().map(|f| f.listing_id.clone()).collect();
        let summaries = listings::summaries(ctx.store, &ids).await?;
        Ok(favourites
            .into_iter()
            .zip(summaries)
            .map(|(f, listing)| {
                json!({"listing_id": f.listing_id, "favorited_at": f.created_at, "listing": listing})
            })
            .collect())
    })
}

fn render_edges<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let edges: Vec<Edge> = records(items)?;
        let ids: Vec<UserId> = edges.iter().map(|e| e.user_id.clone()).collect();
        let cards = cards(ctx.store, &ids).await?;
        Ok(edges
            .into_iter()
            .zip(cards)
            .map(|(e, card)| json!({"user": card, "since": e.created_at}))
            .collect())
    })
}

fn render_blocks<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let blocks: Vec<Block> = records(items)?;
        let ids: Vec<UserId> = blocks.iter().map(|b| b.user_id.clone()).collect();
        let cards = cards(ctx.store, &ids).await?;
        Ok(blocks
            .into_iter()
            .zip(cards)
            .map(|(b, card)| json!({"user": card, "blocked_at": b.created_at}))
            .collect())
    })
}

fn render_shares<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let shares: Vec<Share> = records(items)?;
        let ids: Vec<ListingId> = shares.iter().map(|s| s.listing_id.clone()).collect();
        let summaries = listings::summaries(ctx.store, &ids).await?;
        Ok(shares
            .into_iter()
            .zip(summaries)
            .map(|(s, listing)| {
                json!({
                    "id": s.id,
                    "listing_id": s.listing_id,
                    "channel": s.channel,
                    "created_at": s.created_at,
                    "listing": listing,
                })
            })
            .collect())
    })
}

async fn orders(ctx: &Ctx<'_>, items: Vec<Item>, role: Role) -> Result<Vec<Value>, Error> {
    let entries: Vec<OrderEntry> = records(items)?;
    let order_keys: Vec<Key> = entries.iter().map(|e| keys::order(&e.order_id)).collect();
    let found: Vec<Option<Order>> = ctx.store.get_records(&order_keys).await?;
    let mine: Vec<Order> = found
        .into_iter()
        .flatten()
        .filter(|o| o.role_of(ctx.member) == Some(role))
        .collect();
    order_view::views(ctx.store, &mine, role).await
}

fn render_orders_as_buyer<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(orders(ctx, items, Role::Buyer))
}

fn render_orders_as_seller<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(orders(ctx, items, Role::Seller))
}

/// What the member earned as a seller, as `GET /v1/me/earnings` lists it (each paid order's
/// split and ledger totals).
fn render_earnings<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(crate::domain::settlement::earnings::items(
        ctx.store, ctx.member, items,
    ))
}

/// Reviews the member wrote or received: the public view (the author's card), with the order
/// (theirs) and whether staff hid it.
fn render_reviews<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let entries: Vec<ReviewEntry> = records(items)?;
        reviews(
            ctx,
            entries.iter().map(|e| keys::review(&e.review_id)).collect(),
        )
        .await
    })
}

/// Reviews the member received, found through their orders as seller (each order's review
/// marker): a review staff hid has left the seller's public list, not their data.
fn render_reviews_received<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let entries: Vec<OrderEntry> = records(items)?;
        let markers: Vec<Key> = entries
            .iter()
            .map(|e| keys::order_review(&e.order_id))
            .collect();
        let found: Vec<Option<ReviewMarker>> = ctx.store.get_records(&markers).await?;
        let review_keys = found
            .into_iter()
            .flatten()
            .map(|m| keys::review(&m.review_id));
        reviews(ctx, review_keys.collect()).await
    })
}

/// The reviews at `review_keys`: the public view (the author's card), with the order and whether
/// staff hid it.
async fn reviews(ctx: &Ctx<'_>, review_keys: Vec<Key>) -> Result<Vec<Value>, Error> {
    {
        let found: Vec<Review> = ctx
            .store
            .get_records::<Review>(&review_keys)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let authors: Vec<UserId> = found.iter().map(|r| r.author_id.clone()).collect();
        let member_keys: Vec<Key> = authors.iter().map(keys::member).collect();
        let members: Vec<Option<Member>> = ctx.store.get_records(&member_keys).await?;
        Ok(found
            .into_iter()
            .zip(members)
            .map(|(review, author)| {
                let mut view = review.view(author.as_ref(), Some(ctx.member));
                view["order_id"] = json!(review.order_id);
                view["hidden"] = json!(review.hidden);
                view
            })
            .collect())
    }
}

/// Tickets the member sees, each with its whole history as they are shown it.
fn render_tickets<'c>(
    ctx: &'c Ctx<'c>,
    items: Vec<Item>,
) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        let entries: Vec<TicketEntry> = records(items)?;
        let ticket_keys: Vec<Key> = entries.iter().map(|e| keys::ticket(&e.ticket_id)).collect();
        let found: Vec<Option<Ticket>> = ctx.store.get_records(&ticket_keys).await?;
        let mut views = Vec::new();
        for ticket in found.into_iter().flatten() {
            if !ticket.visible_to(ctx.member) {
                continue;
            }
            let messages = tickets::history(ctx.store, &ticket.id).await?;
            views.push(tickets::list::member_view(&ticket, &messages, ctx.member));
        }
        Ok(views)
    })
}

fn render_audit<'c>(_: &'c Ctx<'c>, items: Vec<Item>) -> BoxFuture<'c, Result<Vec<Value>, Error>> {
    Box::pin(async move {
        // Staff are shown to members as `staff`, never by name (a WeCom userid often is one).
        Ok(records::<AuditRecord>(items)?
            .into_iter()
            .map(|r| {
                let mut view = r.view();
                if r.staff_id.is_some() {
                    view["actor"] = json!("staff");
                    view["staff_id"] = Value::Null;
                }
                view
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_withheld_from_generic_items_at_any_depth() {
        let item = json!({
            "pk": "USER#u", "sk": "GUARDIAN", "relationship": "mother",
            "name_sealed": {"kid": "k", "ct": "x"}, "openid": "o", "id_tag": "t",
            "nested": {"token_hash": "h", "scope": "marketing"},
        });
        assert_eq!(
            scrub(item),
            json!({"relationship": "mother", "nested": {"scope": "marketing"}})
        );
        let m = UserId::generate();
        assert!(known_in_user(&m, "PROFILE") && known_in_user(&m, "SESSION#x"));
        assert!(known_in_user(&m, "IDEMPOTENCY#POST /v1/x#k") && known_in_user(&m, "EXPORT"));
        assert!(known_in_user(&m, "CONSENT#01j") && known_in_user(&m, "GUARDIAN_CONSENT"));
        assert!(known_in_user(&m, "LOCATION") && !known_in_user(&m, "VERIFICATION_DAY#x"));
        assert!(!known_in_user(&m, "DELETION"));
    }

    #[test]
    fn staff_are_shown_as_staff_at_any_depth() {
        let held = json!({
            "kind": "textcheck", "key": "TEXTCHECK#01j",
            "attributes": {
                "author_id": "u_1",
                "decided": {"decision": "approve", "reason": "ok", "staff_id": "li.mo",
                    "at": "2026-11-30T00:00:00Z", "applied": true},
            },
        });
        let masked = mask_staff(held);
        assert_eq!(masked["attributes"]["decided"]["staff_id"], json!("staff"));
        assert_eq!(masked["attributes"]["author_id"], json!("u_1"));
        let ticket = json!({"closed_by": "wang.support", "requested_by": "member",
            "used_by": [{"kind": "listing"}], "approved_by_staff": true, "staff_id": null,
            "messages": [{"from": "staff", "staff_id": "wang.support"}]});
        assert_eq!(
            mask_staff(ticket),
            json!({"closed_by": "staff", "requested_by": "member",
                "used_by": [{"kind": "listing"}], "approved_by_staff": true, "staff_id": null,
                "messages": [{"from": "staff", "staff_id": "staff"}]})
        );
    }
}
