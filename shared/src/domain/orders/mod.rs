//! Orders (capabilities 8–9 of `product.md`): a buyer orders a published service of another
//! member, pays through a provider, the seller accepts, the buyer confirms — or the money goes
//! back. The state machine is [`machine`]; this module holds the stored order and the one way it
//! changes: [`Order::transition`] builds the next version, [`transition_writes`] writes it
//! conditioned on the version read, so a lost race fails (409) and changes nothing.
//!
//! Store layout ([`keys`]):
//! - `ORDER#<id> / ORDER`: the [`Order`] — listing snapshot, amounts, payment, refunds,
//!   timeline. While a job must act on it, it is listed in `gsi1` under `DUE#<kind>` by due time
//!   ([`Order::due_kind`]): `expire`, `accept`, `complete`, `refund_approve`, `refund`, `settle`
//!   (the split of a completed order: `domain::settlement`).
//! - `ORDER#<id> / PAYMENT#<provider>` and `ORDER#<id> / EVENT#<ulid>`: see [`payments`] and
//!   [`events`]; `ORDER#<id> / SHIPPING`: the WeChat shipping record an accepted WeChat-paid
//!   order owes, see [`shipping`].
//! - `ORDERS#<member>#<buyer|seller>[#<status>] / <id>`: [`OrderEntry`] pointers, newest first;
//!   the status entries move in the transition's own transaction, so a list by status never
//!   filters.

pub mod act;
pub mod create;
pub mod decide;
pub mod events;
pub mod jobs;
pub mod list;
pub mod machine;
pub mod payments;
pub mod refund_alarm;
pub mod shipping;
pub mod view;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::config::OrderTimes;
use crate::domain::settlement::{OrderSettlement, SettleTerms};
use crate::error::Error;
use crate::ids::{ListingId, OrderId, TicketId, UserId};
use crate::money::Fen;
use crate::payments::Channel;
use crate::store::{keys, Condition, DynStore, Key, Record, Records, StoreError, Write};

pub use machine::{Action, Actor, OrderStatus};

/// The label of the condition every transition writes under.
pub const VERSION_LABEL: &str = "order_version";
/// The label of the condition that makes an order id unique.
pub const NEW_ORDER_LABEL: &str = "order_new";

/// Which side of an order a member is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Buyer,
    Seller,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
        }
    }

    pub fn actor(self) -> Actor {
        match self {
            Role::Buyer => Actor::Buyer,
            Role::Seller => Actor::Seller,
        }
    }
}

/// What the buyer ordered, as it was when they ordered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingSnapshot {
    pub id: ListingId,
    pub title: String,
    pub kind: String,
    pub category: String,
    pub city: String,
    pub price_fen: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
}

/// The payment that paid the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    pub channel: Channel,
    pub transaction_id: String,
    pub paid_at: String,
}

/// The buyer's request for a refund of an accepted order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAsk {
    pub reason: String,
    pub at: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Decided; not yet accepted by the provider (the job asks it).
    Pending,
    /// Accepted by the provider, not final.
    Processing,
    Succeeded,
    Failed,
}

/// One refund of the order's payment, in order (`seq` from 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub seq: u32,
    /// `<order id>R<seq, 2 digits>`: the providers' `out_refund_no` / `out_request_no`; a retry
    /// reuses it, so the provider refunds once.
    pub out_refund_no: String,
    pub amount_fen: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The state the refund began from (for a dispute's refund, the state before the dispute):
    /// where a partial refund returns the order.
    pub from: OrderStatus,
    pub actor: Actor,
    pub status: RefundStatus,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How often the job has asked the provider about it (for backoff).
    #[serde(default)]
    pub attempts: u32,
    /// A refund after the order's split: how the seller's part of it comes back
    /// (`domain::settlement::refunds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_split: Option<crate::domain::settlement::refunds::AfterSplit>,
    /// A refund of an order whose split expired: the seller's part of it
    /// (`domain::settlement::resolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_expiry: Option<crate::domain::settlement::resolve::AfterExpiry>,
}

/// One transition on the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub status: OrderStatus,
    pub at: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Also the `order_no`: both providers' `out_trade_no`.
    pub id: OrderId,
    pub buyer_id: UserId,
    pub seller_id: UserId,
    pub listing: ListingSnapshot,
    pub quantity: u32,
    pub amount_fen: Fen,
    pub refunded_fen: Fen,
    pub remark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_date: Option<String>,
    pub status: OrderStatus,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<OrderPayment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_request: Option<RefundAsk>,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// While `disputed`: the state the dispute left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_dispute: Option<OrderStatus>,
    /// The ticket that opened the order's latest dispute: staff's decision closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_ticket: Option<TicketId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub timeline: Vec<Step>,
    /// The settlement terms agreed when it was created (absent on orders made before
    /// settlement existed: those are not split by the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<SettleTerms>,
    /// The split must be done before this (the payment's time + `RENJI_SETTLE_DEADLINE_DAYS`,
    /// within the providers' 30-day freeze); set when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_deadline: Option<String>,
    /// The split's progress, once the job has begun it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<OrderSettlement>,
    /// When the order jobs act on it next (epoch seconds), while [`Order::due_kind`] is some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// Grows with every write; each write is conditioned on the version it read.
    pub version: i64,
}

impl Record for Order {
    const KIND: &'static str = "order";
}

/// A pointer in a member's order list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    pub order_id: OrderId,
}

impl Record for OrderEntry {
    const KIND: &'static str = "order entry";
}

/// A time as the API shows it: RFC 3339 UTC, whole seconds.
pub fn rfc3339(at: OffsetDateTime) -> String {
    crate::domain::members::rfc3339(at)
}

/// An RFC 3339 time stored by us, as epoch seconds (0 for one that does not parse: never
/// written by this code).
pub fn epoch(text: &str) -> i64 {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_or(0, |t| t.unix_timestamp())
}

/// What is asked of [`Order::transition`].
#[derive(Clone, Debug)]
pub struct Change {
    pub action: Action,
    pub actor: Actor,
    pub at: OffsetDateTime,
    pub reason: Option<String>,
    /// For a transition into `refunding`: the amount (default: all that remains).
    pub refund: Option<Fen>,
}

impl Change {
    pub fn new(action: Action, actor: Actor, at: OffsetDateTime) -> Self {
        Change {
            action,
            actor,
            at,
            reason: None,
            refund: None,
        }
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    pub fn refund(mut self, amount: Fen) -> Self {
        self.refund = Some(amount);
        self
    }
}

impl Order {
    /// The role `member` has in this order, if any.
    pub fn role_of(&self, member: &UserId) -> Option<Role> {
        if *member == self.buyer_id {
            Some(Role::Buyer)
        } else if *member == self.seller_id {
            Some(Role::Seller)
        } else {
            None
        }
    }

    /// What remains to refund.
    pub fn refundable(&self) -> Fen {
        Fen::from_fen(self.amount_fen.get() - self.refunded_fen.get())
    }

    /// The refund in progress (the last one, while `refunding`).
    pub fn current_refund(&self) -> Option<&Refund> {
        match self.status {
            OrderStatus::Refunding => self.refunds.last(),
            _ => None,
        }
    }

    /// The job that acts on the order in its state, if any.
    pub fn due_kind(&self) -> Option<&'static str> {
        match self.status {
            OrderStatus::PendingPayment => Some("expire"),
            OrderStatus::Paid => Some("accept"),
            OrderStatus::Accepted => Some("complete"),
            OrderStatus::RefundRequested => Some("refund_approve"),
            OrderStatus::Refunding => Some("refund"),
            // Completed and not yet settled: the split, once the dispute window has passed.
            OrderStatus::Completed if self.settle.is_some() && !self.settled() => Some("settle"),
            _ => None,
        }
    }

    /// Whether its settlement needs no more work.
    pub fn settled(&self) -> bool {
        self.settlement.as_ref().is_some_and(|s| s.state.is_final())
    }

    /// The order's `gsi1` key while a job must act on it.
    pub fn due_key(&self) -> Option<Key> {
        Some(keys::due_listed(
            self.due_kind()?,
            self.due_at?,
            &self.id,
            None,
        ))
    }

    /// The next version after `change`, or the refusal of the state machine. The caller fills in
    /// what only it knows (the payment of a confirmation) and writes it with
    /// [`transition_writes`].
    pub fn transition(&self, change: &Change, times: &OrderTimes) -> Result<Order, Error> {
        let rule = machine::rule(self.status, change.action, change.actor)
            .map_err(|refusal| refusal.into_error(self.status, change.action))?;
        // Once the split has moved money (after the dispute window), the seller's share is on
        // its way or paid: a dispute or a dispute's refund would refund without taking it back.
        // Only staff's refund of a split order (`StaffRefundSettled`) takes it back. A split that
        // failed or expired moved nothing: the money is all at the provider (or, expired, with
        // Renji) and a dispute's refund is an ordinary one.
        if self.settlement.as_ref().is_some_and(|s| s.state.moved())
            && matches!(change.action, Action::OpenDispute | Action::StaffRefund)
        {
            return Err(Error::Conflict {
                code: "settlement_started",
                message: "the seller's share of this order is being or has been paid out; an \
                          administrator refunds it with POST /admin/v1/orders/{id}/refund"
                    .into(),
            });
        }
        let at = rfc3339(change.at);
        let now = change.at.unix_timestamp();
        let mut next = self.clone();
        next.status = match rule.to {
            machine::Target::To(status) => status,
            machine::Target::BeforeDispute => self.before_dispute.unwrap_or(OrderStatus::Accepted),
            machine::Target::AfterRefund => {
                let refund = self
                    .refunds
                    .last()
                    .ok_or_else(|| Error::Internal("a refunding order has no refund".into()))?;
                let refunded = self.refunded_fen.get() + refund.amount_fen.get();
                next.refunded_fen = Fen::from_fen(refunded);
                match refunded >= self.amount_fen.get() {
                    true => OrderStatus::Refunded,
                    false => refund.from,
                }
            }
        };
        if next.status == OrderStatus::Disputed {
            next.before_dispute = Some(self.status);
        } else if self.status == OrderStatus::Disputed {
            next.before_dispute = None;
        }
        // A retry asks for exactly the refund that failed, under a new number.
        let failed = match self.status {
            OrderStatus::RefundFailed => self.refunds.last(),
            _ => None,
        };
        if next.status == OrderStatus::Refunding {
            let remaining = self.refundable();
            let amount = match failed {
                Some(failed) => {
                    if change.refund.is_some_and(|a| a != failed.amount_fen) {
                        return Err(Error::invalid(
                            "amount_fen",
                            format!(
                                "a retry refunds what failed: {} (or leave it out)",
                                failed.amount_fen.get()
                            ),
                        ));
                    }
                    failed.amount_fen
                }
                None => change.refund.unwrap_or(remaining),
            };
            if amount.get() < 1 || amount > remaining {
                return Err(Error::invalid(
                    "amount_fen",
                    format!(
                        "must be from 1 to {} (what remains to refund)",
                        remaining.get()
                    ),
                ));
            }
            let seq = u32::try_from(self.refunds.len() + 1).unwrap_or(u32::MAX);
            // WeChat Pay takes at most 50 refunds of one payment.
            if seq > 50 {
                return Err(Error::Conflict {
                    code: "too_many_refunds",
                    message: "this payment has been refunded 50 times already".into(),
                });
            }
            let from = match (self.status, failed) {
                (_, Some(failed)) => failed.from,
                (OrderStatus::Disputed, _) => self.before_dispute.unwrap_or(OrderStatus::Accepted),
                (other, _) => other,
            };
            // An approved request (by the seller, or by the job when the seller did not answer)
            // refunds for the buyer's reason, which the provider shows the buyer; the change's
            // own reason stays on the timeline.
            let reason = match (self.status, &self.refund_request, failed) {
                (OrderStatus::RefundRequested, Some(ask), _) => Some(ask.reason.clone()),
                (_, _, Some(failed)) => failed.reason.clone(),
                _ => change.reason.clone(),
            };
            next.refunds.push(Refund {
                seq,
                out_refund_no: format!("{}R{seq:02}", self.id),
                amount_fen: amount,
                reason,
                from,
                actor: change.actor,
                status: RefundStatus::Pending,
                requested_at: at.clone(),
                refund_id: None,
                failure: None,
                finished_at: None,
                attempts: 0,
                // A refund after the split keeps its plan (and whatever of it was done: the
                // seller's part returned once is not asked again).
                after_split: failed.and_then(|f| f.after_split.clone()),
                // An expired split's money is refunded from the seller's share first.
                // (A retry keeps the failed refund's plan: one asked before the expiry stays an
                // ordinary refund, already left out of what the expiry holds for the seller.)
                after_expiry: match failed {
                    Some(failed) => failed.after_expiry.clone(),
                    None => crate::domain::settlement::resolve::plan(self, amount),
                },
            });
        }
        if let (OrderStatus::Refunding, Some(last)) = (self.status, next.refunds.last_mut()) {
            last.finished_at = Some(at.clone());
            last.status = match next.status {
                OrderStatus::RefundFailed => RefundStatus::Failed,
                _ => RefundStatus::Succeeded,
            };
        }
        match next.status {
            OrderStatus::Accepted if self.status == OrderStatus::Paid => {
                next.accepted_at = Some(at.clone())
            }
            // Completed once: a partial refund (or a released dispute) back to `completed` keeps
            // the first completion, which the dispute and review windows count from.
            OrderStatus::Completed if self.completed_at.is_none() => {
                next.completed_at = Some(at.clone())
            }
            OrderStatus::RefundRequested => {
                next.refund_request = Some(RefundAsk {
                    reason: change.reason.clone().unwrap_or_default(),
                    at: at.clone(),
                })
            }
            _ => {}
        }
        next.timeline.push(Step {
            status: next.status,
            at: at.clone(),
            actor: change.actor,
            reason: change.reason.clone(),
        });
        next.updated_at = at;
        next.due_at = next.next_due(now, times);
        next.version = self.version + 1;
        Ok(next)
    }

    /// When the job acts next on an order that just entered its state at `now`.
    fn next_due(&self, now: i64, times: &OrderTimes) -> Option<i64> {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        match self.status {
            OrderStatus::PendingPayment => Some(epoch(&self.expires_at)),
            OrderStatus::Paid => Some(now + secs(times.accept)),
            // A refund that was declined does not restart the clock of the acceptance.
            OrderStatus::Accepted => {
                Some(self.accepted_at.as_deref().map_or(now, epoch) + secs(times.auto_complete))
                    .map(|at| at.max(now))
            }
            OrderStatus::RefundRequested => Some(now + secs(times.refund_auto_approve)),
            // The refund is asked of the provider at once (by the request or the job).
            OrderStatus::Refunding => Some(now),
            // Split once nobody can open a dispute any more (a release from a dispute waits
            // the window again), and the delay after it.
            OrderStatus::Completed if self.due_kind().is_some() => {
                Some(now.saturating_add(secs(times.settle_after)))
            }
            _ => None,
        }
    }

    /// The order as its buyer or seller sees it.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "order_no": self.id,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "listing": self.listing,
            "quantity": self.quantity,
            "amount_fen": self.amount_fen,
            "refunded_fen": self.refunded_fen,
            "remark": self.remark,
            "service_date": self.service_date,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
            "payment": self.payment,
            "refund_request": self.refund_request,
            "refunds": self.refunds.iter().map(|r| json!({
                "seq": r.seq,
                "amount_fen": r.amount_fen,
                "status": r.status,
                "reason": r.reason,
                "requested_at": r.requested_at,
                "finished_at": r.finished_at,
            })).collect::<Vec<_>>(),
            "accepted_at": self.accepted_at,
            "completed_at": self.completed_at,
            "timeline": self.timeline,
        })
    }

    /// The order's item, listed under its due kind.
    pub fn item(&self) -> Result<crate::store::Item, Error> {
        self.to_item(keys::order(&self.id), self.due_key())
    }
}

/// The writes of a new order: the order (its id must be new) and its four list entries.
pub fn creation_writes(order: &Order) -> Result<Vec<Write>, Error> {
    let mut writes = vec![Write::put_if(
        order.item()?,
        Condition::Absent,
        NEW_ORDER_LABEL,
    )];
    for (member, role) in [
        (&order.buyer_id, Role::Buyer),
        (&order.seller_id, Role::Seller),
    ] {
        for status in [None, Some(order.status.as_str())] {
            writes.push(Write::put(entry(member, role, status, &order.id)?));
        }
    }
    Ok(writes)
}

fn entry(
    member: &UserId,
    role: Role,
    status: Option<&str>,
    id: &OrderId,
) -> Result<crate::store::Item, Error> {
    OrderEntry {
        order_id: id.clone(),
    }
    .to_item(keys::order_entry(member, role.as_str(), status, id), None)
}

/// The writes of a transition from `before` to `after`: the order, conditioned on the version
/// read (label [`VERSION_LABEL`]), the status entries moved when the status changed, and the
/// subscribe messages the change owes its parties (`subscriptions::order_writes`: the outbox,
/// sent by the notification job).
pub fn transition_writes(before: &Order, after: &Order) -> Result<Vec<Write>, Error> {
    let mut writes = vec![Write::put_if(
        after.item()?,
        Condition::Equals("version".into(), before.version.into()),
        VERSION_LABEL,
    )];
    if before.status != after.status {
        for (member, role) in [
            (&after.buyer_id, Role::Buyer),
            (&after.seller_id, Role::Seller),
        ] {
            writes.push(Write::delete(keys::order_entry(
                member,
                role.as_str(),
                Some(before.status.as_str()),
                &after.id,
            )));
            writes.push(Write::put(entry(
                member,
                role,
                Some(after.status.as_str()),
                &after.id,
            )?));
        }
    }
    writes.extend(crate::domain::subscriptions::order_writes(before, after)?);
    Ok(writes)
}

/// Writes a transition from `before` to `after` with `extra` writes in the same transaction; a
/// lost race (another write of the order, or of a payment record written with it, since they
/// were read) is 409 `order_changed`.
pub async fn commit(
    store: &DynStore,
    before: &Order,
    after: &Order,
    extra: Vec<Write>,
) -> Result<(), Error> {
    let mut writes = transition_writes(before, after)?;
    writes.extend(extra);
    store.transact(writes).await.map_err(|e| match e {
        StoreError::ConditionFailed {
            label: VERSION_LABEL | payments::PAYMENT_LABEL | shipping::SHIPPING_LABEL,
        } => order_changed(),
        // A ticket written with the transition (a dispute's, closed by staff's decision).
        StoreError::ConditionFailed {
            label: crate::domain::tickets::VERSION_LABEL,
        } => crate::domain::tickets::changed(),
        other => other.into(),
    })
}

/// The audit copies of a refund action on `order`, for the transition's own transaction (so
/// written only when the change is), target `order:<id>`: a party's (`order.refund_request` by
/// the buyer, `order.refund_approve` / `order.refund_decline` by the seller: in their own list
/// and the order's) or the order jobs' automatic refunds (`order.refund_unaccepted`: the seller
/// did not accept in time; `order.refund_auto_approve`: a refund request left unanswered; actor
/// system, in the order's list). Any other change has none here (staff's are audited by their
/// request edge). The reason given is not copied (a member's is free text).
pub fn audited(
    change: &Change,
    order: &Order,
    keep: std::time::Duration,
) -> Result<Vec<Write>, Error> {
    use crate::domain::audit::{self, AuditRecord, Target};
    let (action, actor) = match (change.action, change.actor) {
        (Action::RequestRefund, Actor::Buyer) => (
            "order.refund_request",
            audit::Actor::Member(order.buyer_id.clone()),
        ),
        (Action::ApproveRefund, Actor::Seller) => (
            "order.refund_approve",
            audit::Actor::Member(order.seller_id.clone()),
        ),
        (Action::DeclineRefund, Actor::Seller) => (
            "order.refund_decline",
            audit::Actor::Member(order.seller_id.clone()),
        ),
        (Action::AcceptTimeout, Actor::System) => ("order.refund_unaccepted", audit::Actor::System),
        (Action::AutoApproveRefund, Actor::System) => {
            ("order.refund_auto_approve", audit::Actor::System)
        }
        _ => return Ok(Vec::new()),
    };
    let target = Target::new("order", order.id.as_str())
        .ok_or_else(|| Error::Internal("an order id that is not an audit target".into()))?;
    let record = AuditRecord::by(actor, change.at, action, target, None, "ok");
    audit::writes(&record, keep)
}

/// The answer to a lost race: 409 `order_changed`.
pub fn order_changed() -> Error {
    Error::Conflict {
        code: "order_changed",
        message: "the order changed meanwhile; read it again".into(),
    }
}

/// The order, if it exists.
pub async fn get(store: &DynStore, id: &OrderId) -> Result<Option<Order>, Error> {
    store.get_record(&keys::order(id)).await
}

/// The order and the caller's role in it; 404 for anyone but its buyer and seller (an order's
/// existence is private).
pub async fn for_party(
    store: &DynStore,
    id: &OrderId,
    member: &UserId,
) -> Result<(Order, Role), Error> {
    let order = get(store, id).await?.ok_or(Error::NotFound("order"))?;
    match order.role_of(member) {
        Some(role) => Ok((order, role)),
        None => Err(Error::NotFound("order")),
    }
}
