//! `POST /v1/orders`: a buyer orders a published service of another member. The price comes
//! from the listing as stored, never from the client (an `amount_fen` or `price_fen` in the body
//! is an unknown field, 422), and a total over what the providers take in one payment
//! ([`MAX_PAYMENT_FEN`]) is 422 `quantity`, nothing written; the order, its four list entries
//! and — with an `Idempotency-Key` — the key's record are one transaction, which also checks that
//! the listing is still the version read (an edit of its price in between makes the creation
//! read it again).

use serde::Deserialize;
use serde_json::Value;
use time::{Date, OffsetDateTime, UtcOffset};

use super::{creation_writes, rfc3339, view, ListingSnapshot, Order, OrderStatus, Step};
use crate::config::{Config, OrderTimes};
use crate::domain::idempotency::{self, Begin, IdempotencyKey, StoredResponse};
use crate::domain::listings::{self, fields::Kind, Listing, ListingStatus};
use crate::domain::profile::printable;
use crate::domain::settlement::SettleTerms;
use crate::domain::{blocks, members};
use crate::error::Error;
use crate::ids::{ListingId, OrderId, UserId};
use crate::money::Fen;
use crate::payments::MAX_PAYMENT_FEN;
use crate::settlement::SettlementConfig;
use crate::store::{keys, Condition, DynStore, StoreError, Write};

use super::machine::Actor;

/// The route, as idempotency records name it.
pub const ROUTE: &str = "POST /v1/orders";
pub const MAX_QUANTITY: i64 = 99;
pub const MAX_REMARK_CHARS: usize = 200;
/// The label of the check that the listing is the version the order was priced from.
pub const LISTING_LABEL: &str = "listing_unchanged";
/// The labels of the checks that neither party is being deleted.
const BUYER_ACTIVE: &str = "buyer_active";
const SELLER_ACTIVE: &str = "seller_active";
/// A listing edited between the read and the write is read again this often.
const ATTEMPTS: usize = 3;

/// China Standard Time (UTC+8, no daylight saving): the calendar `service_date` is in.
pub const CHINA: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The request body. Numbers are read wide so an out-of-range one gets our message, not serde's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub listing_id: String,
    pub quantity: i64,
    #[serde(default)]
    pub remark: String,
    #[serde(default)]
    pub service_date: Option<String>,
}

/// The body's fields, checked (everything that does not need the listing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub listing_id: ListingId,
    pub quantity: u32,
    pub remark: String,
    pub service_date: Option<Date>,
}

impl NewOrder {
    /// Checks every field, naming the first bad one (422); `now` decides what "today" is.
    pub fn check(&self, now: OffsetDateTime) -> Result<Checked, Error> {
        let listing_id = ListingId::parse(&self.listing_id)
            .ok_or_else(|| Error::invalid("listing_id", "is not a listing id"))?;
        let quantity = u32::try_from(self.quantity)
            .ok()
            .filter(|q| (1..=MAX_QUANTITY as u32).contains(q))
            .ok_or_else(|| {
                Error::invalid(
                    "quantity",
                    format!("must be a whole number from 1 to {MAX_QUANTITY}"),
                )
            })?;
        let remark = self.remark.trim();
        printable("remark", remark)?;
        let chars = remark.chars().count();
        if chars > MAX_REMARK_CHARS {
            return Err(Error::invalid(
                "remark",
                format!("must be at most {MAX_REMARK_CHARS} characters, not {chars}"),
            ));
        }
        let service_date = self
            .service_date
            .as_deref()
            .map(|text| service_date(text, now))
            .transpose()?;
        Ok(Checked {
            listing_id,
            quantity,
            remark: remark.to_owned(),
            service_date,
        })
    }
}

/// `YYYY-MM-DD`, a real day, not before today in China (UTC+8).
pub fn service_date(text: &str, now: OffsetDateTime) -> Result<Date, Error> {
    let date = crate::dates::parse_day(text)
        .ok_or_else(|| Error::invalid("service_date", "must be a day as YYYY-MM-DD"))?;
    let today = now.to_offset(CHINA).date();
    if date < today {
        return Err(Error::invalid(
            "service_date",
            format!("must not be before today ({today} in China, UTC+8)"),
        ));
    }
    Ok(date)
}

/// Why `listing` cannot be ordered by `buyer`, if it cannot.
pub fn orderable(listing: &Listing, buyer: &UserId) -> Result<Fen, Error> {
    if &listing.owner_id == buyer {
        return Err(Error::Conflict {
            code: "own_listing",
            message: "you cannot order your own listing".into(),
        });
    }
    // Its text held for staff: not readable by others, so no such listing to order.
    if listing.text_review.is_some() {
        return Err(Error::NotFound("listing"));
    }
    match listing.status {
        ListingStatus::Published => {}
        // Closed listings are public (their page says so); the rest are private: no such listing.
        ListingStatus::Closed => {
            return Err(Error::Conflict {
                code: "listing_unavailable",
                message: "the listing is not published".into(),
            })
        }
        ListingStatus::Draft | ListingStatus::Removed | ListingStatus::TakenDown => {
            return Err(Error::NotFound("listing"))
        }
    }
    match (listing.kind, listing.price_fen) {
        (Kind::Service, Some(price)) => Ok(price),
        (Kind::Recruitment, _) => Err(Error::Conflict {
            code: "listing_not_orderable",
            message: "only a service listing can be ordered (this is a recruitment)".into(),
        }),
        (Kind::Service, None) => Err(Error::Conflict {
            code: "listing_not_orderable",
            message: "the listing has no price".into(),
        }),
    }
}

/// The new order (status `pending_payment`, the buyer's first step on its timeline).
pub fn new_order(
    listing: &Listing,
    buyer: &UserId,
    checked: &Checked,
    times: &OrderTimes,
    settlement: &SettlementConfig,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let price = orderable(listing, buyer)?;
    let amount = price
        .get()
        .checked_mul(i64::from(checked.quantity))
        .filter(|a| *a <= MAX_PAYMENT_FEN)
        .ok_or_else(|| {
            Error::invalid(
                "quantity",
                format!(
                    "makes the amount more than a payment may be ({MAX_PAYMENT_FEN} fen); \
                     order at most {} of this listing",
                    MAX_PAYMENT_FEN / price.get().max(1)
                ),
            )
        })?;
    let pay = time::Duration::try_from(times.pay)
        .map_err(|_| Error::Internal("the order pay time is out of range".into()))?;
    let expires = now
        .checked_add(pay)
        .ok_or_else(|| Error::Internal("the order expiry is out of range".into()))?;
    let at = rfc3339(now);
    let mut order = Order {
        id: OrderId::generate(),
        buyer_id: buyer.clone(),
        seller_id: listing.owner_id.clone(),
        listing: ListingSnapshot {
            id: listing.id.clone(),
            title: listing.title.clone(),
            kind: listing.kind.as_str().to_owned(),
            category: listing.category.clone(),
            city: listing.city.clone(),
            price_fen: price,
            cover_url: listing.images.first().cloned(),
        },
        quantity: checked.quantity,
        amount_fen: Fen::from_fen(amount),
        refunded_fen: Fen::from_fen(0),
        remark: checked.remark.clone(),
        service_date: checked.service_date.map(|d| d.to_string()),
        status: OrderStatus::PendingPayment,
        created_at: at.clone(),
        updated_at: at.clone(),
        expires_at: rfc3339(expires),
        payment: None,
        refund_request: None,
        refunds: Vec::new(),
        before_dispute: None,
        dispute_ticket: None,
        accepted_at: None,
        completed_at: None,
        timeline: vec![Step {
            status: OrderStatus::PendingPayment,
            at,
            actor: Actor::Buyer,
            reason: None,
        }],
        settle: Some(SettleTerms::now(settlement, &listing.category)),
        split_deadline: None,
        settlement: None,
        due_at: None,
        version: 1,
    };
    // The expiry job's due time is the stored (whole-second) expiry.
    order.due_at = Some(super::epoch(&order.expires_at));
    Ok(order)
}

/// What the creation answered: 201 with the new order, or 200 with the order an earlier request
/// with the same `Idempotency-Key` and body created.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub status: u16,
    pub body: Value,
}

/// `POST /v1/orders`. `request` is the body as received (an idempotency key's record hashes it).
pub async fn create(
    store: &DynStore,
    config: &Config,
    buyer: &UserId,
    body: &NewOrder,
    idempotency: Option<(&IdempotencyKey, &[u8])>,
    now: OffsetDateTime,
) -> Result<Created, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let guard = match idempotency {
            None => None,
            Some((key, request)) => {
                match idempotency::begin(store, buyer, ROUTE, key, request).await? {
                    Begin::Replay(stored) => return Ok(replayed(stored)),
                    Begin::Fresh(guard) => Some(guard),
                }
            }
        };
        // Checked after a repeat is answered: a repeat of an order made yesterday for today is
        // still that order, though its service date is now past.
        let checked = body.check(now)?;
        let listing = listings::get(store, &checked.listing_id)
            .await?
            .ok_or(Error::NotFound("listing"))?;
        let order = new_order(
            &listing,
            buyer,
            &checked,
            &config.orders,
            &config.settlement,
            now,
        )?;
        let mut writes = creation_writes(&order)?;
        writes.push(Write::check(
            keys::listing(&listing.id),
            Condition::Equals("version".into(), listing.version.into()),
            LISTING_LABEL,
        ));
        // Refused, and nothing kept (nor an idempotency record), when the seller blocks the buyer.
        writes.push(blocks::not_blocked(&order.seller_id, buyer));
        // Neither party's account deletion has begun: a deletion checks the member's orders
        // after setting its marker, so an order either lands first (and blocks the deletion) or
        // fails here.
        writes.push(Write::check(
            keys::member(buyer),
            members::active(),
            BUYER_ACTIVE,
        ));
        writes.push(Write::check(
            keys::member(&order.seller_id),
            members::active(),
            SELLER_ACTIVE,
        ));
        let response = StoredResponse {
            status: 201,
            body: view::view(store, &order, super::Role::Buyer).await?,
        };
        let result = match guard {
            None => store
                .transact(writes)
                .await
                .map(|()| response)
                .map_err(from_store),
            Some(guard) => guard
                .commit(store, writes, response, from_store)
                .await
                .map(|stored| match stored.status {
                    201 if stored.body["id"] == serde_json::json!(order.id) => stored,
                    // Another request with this key won the race: its order, as a repeat.
                    _ => StoredResponse {
                        status: 200,
                        ..stored
                    },
                }),
        };
        match result {
            Ok(stored) => {
                return Ok(Created {
                    status: stored.status,
                    body: stored.body,
                })
            }
            Err(Error::Conflict {
                code: "listing_changed",
                ..
            }) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A repeat answers 200: the order exists already, nothing was created now.
fn replayed(stored: StoredResponse) -> Created {
    Created {
        status: if stored.status == 201 {
            200
        } else {
            stored.status
        },
        body: stored.body,
    }
}

/// The listing changed between the read and the write (its price, say): [`create`] reads it
/// again, up to [`ATTEMPTS`] times, then answers this.
fn from_store(e: StoreError) -> Error {
    match e {
        StoreError::ConditionFailed {
            label: LISTING_LABEL,
        } => Error::Conflict {
            code: "listing_changed",
            message: "the listing changed while ordering; retry".into(),
        },
        StoreError::ConditionFailed {
            label: blocks::BLOCKED_LABEL,
        } => Error::Blocked,
        StoreError::ConditionFailed {
            label: BUYER_ACTIVE,
        } => Error::Unauthorized("member no longer exists"),
        StoreError::ConditionFailed {
            label: SELLER_ACTIVE,
        } => Error::Conflict {
            code: "listing_unavailable",
            message: "the listing's owner is deleting their account".into(),
        },
        other => other.into(),
    }
}
