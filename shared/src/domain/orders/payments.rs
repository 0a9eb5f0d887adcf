//! Paying for orders and giving money back, through the provider port (`crate::payments`).
//!
//! Payment state changes only on a verified notification ([`apply_notice`]) or a provider query
//! (the order jobs), exactly once: a confirmation is the order's transition
//! `pending_payment → paid` together with its payment record, one transaction conditioned on the
//! versions read; a repeat finds the payment already applied and changes nothing. A payment that
//! arrives for an order that no longer takes it (expired, cancelled, or paid through the other
//! provider) is recorded as `late` and refunded in full by the job — never kept, never dropped.
//!
//! Each provider has one payment record per order (`ORDER#<id> / PAYMENT#<provider>`): the
//! Alipay app and web channels pay the same Alipay trade (`out_trade_no` is the order id).
//! While a record is unresolved it is listed under `DUE#payment` for the job's queries
//! (notifications get lost).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::events::{self, EventKind, Outcome, ProviderEvent};
use super::refund_alarm::RefundAlarm;
use super::{
    commit, order_changed, rfc3339, Action, Actor, Change, Order, OrderPayment, OrderStatus,
    RefundStatus, VERSION_LABEL,
};
use crate::app::App;
use crate::domain::settlement::{refunds, LedgerEntry, LedgerKind};
use crate::error::Error;
use crate::ids::{OrderId, UserId};
use crate::money::Fen;
use crate::payments::{
    Channel, GatewayError, Notice, Paid, PaymentStart, Provider, RefundRequest, RefundState,
    Rejected, Trade,
};
use crate::settlement::SettlementConfig;
use crate::store::{keys, Condition, DynStore, Key, Record, Records, StoreError, Write};

/// The label of a payment record's version condition.
pub const PAYMENT_LABEL: &str = "payment_version";
/// The first query of a started payment with no notification, after it started.
pub const FIRST_QUERY_SECS: i64 = 120;
/// Queries back off by doubling up to this.
const MAX_QUERY_WAIT_SECS: i64 = 3600;
/// WeChat's prepay id is valid two hours; one is reused within this.
const PREPAY_REUSE_SECS: i64 = 110 * 60;
/// How often an applying write is retried after losing a race to another.
const RACE_RETRIES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Started at the provider; not paid as far as we know.
    Started,
    /// Paid, and this is the order's payment.
    Paid,
    /// Paid, and the order does not take it: refunded in full by the job.
    Late,
    /// Closed at the provider without payment.
    Closed,
}

/// The refund of a late payment (`<order id>L<W|A>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateRefund {
    pub out_refund_no: String,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default)]
    pub attempts: u32,
}

/// One provider's payment of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub order_id: OrderId,
    pub provider: Provider,
    /// The channel last started.
    pub channel: Channel,
    pub state: PaymentState,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepay_id: Option<String>,
    /// When the prepay id was created (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepay_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_fen: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_refund: Option<LateRefund>,
    /// Queries so far without an answer that settles it (for backoff).
    #[serde(default)]
    pub checks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    pub version: i64,
}

impl Record for PaymentRecord {
    const KIND: &'static str = "payment";
}

impl PaymentRecord {
    pub fn key(&self) -> Key {
        keys::payment(&self.order_id, self.provider.as_str())
    }

    /// Whether the job still has something to do with it.
    fn unresolved(&self) -> bool {
        match self.state {
            PaymentState::Started => true,
            PaymentState::Late => self.late_refund.as_ref().is_none_or(|r| {
                matches!(r.status, RefundStatus::Pending | RefundStatus::Processing)
            }),
            PaymentState::Paid | PaymentState::Closed => false,
        }
    }

    /// The write of this version over `before` (absent: a new record).
    fn write(&self, before: Option<&PaymentRecord>) -> Result<Write, Error> {
        let listed = match (self.unresolved(), self.due_at) {
            (true, Some(at)) => Some(keys::due_listed(
                "payment",
                at,
                &self.order_id,
                Some(self.provider.as_str()),
            )),
            _ => None,
        };
        let item = self.to_item(self.key(), listed)?;
        let condition = match before {
            None => Condition::Absent,
            Some(b) => Condition::Equals("version".into(), b.version.into()),
        };
        Ok(Write::put_if(item, condition, PAYMENT_LABEL))
    }

    fn next(&self) -> PaymentRecord {
        let mut next = self.clone();
        next.version += 1;
        next
    }
}

/// When a record that was just checked is checked next: doubling from the first wait.
fn backoff(now: i64, checks: u32) -> i64 {
    let wait = FIRST_QUERY_SECS.saturating_mul(1 << checks.min(10));
    now + wait.min(MAX_QUERY_WAIT_SECS)
}

/// The provider's payment records of `order`.
pub async fn records(store: &DynStore, id: &OrderId) -> Result<Vec<PaymentRecord>, Error> {
    let keys: Vec<Key> = Provider::ALL
        .iter()
        .map(|p| keys::payment(id, p.as_str()))
        .collect();
    Ok(store
        .get_records::<PaymentRecord>(&keys)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

pub async fn record_of(
    store: &DynStore,
    id: &OrderId,
    provider: Provider,
) -> Result<Option<PaymentRecord>, Error> {
    store
        .get_record(&keys::payment(id, provider.as_str()))
        .await
}

fn lost_race(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::ConditionFailed {
            label: VERSION_LABEL | PAYMENT_LABEL
        }
    )
}

// Starting a payment.

/// `POST /v1/orders/{id}/payments {channel}`: the buyer's client parameters for `channel`. The
/// caller has checked that `member` is the buyer. Answers the response body and the writes that
/// record the start (for the idempotency key's transaction).
pub async fn start(
    app: &App,
    order: &Order,
    channel: Channel,
    now: OffsetDateTime,
) -> Result<(Value, Vec<Write>), Error> {
    if order.status != OrderStatus::PendingPayment {
        return Err(Error::Conflict {
            code: "invalid_order_state",
            message: format!("not possible while the order is {}", order.status.as_str()),
        });
    }
    let expires = OffsetDateTime::parse(
        &order.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| Error::Internal("an order's expires_at does not parse".into()))?;
    if now >= expires {
        return Err(Error::Conflict {
            code: "order_expired",
            message: "the time to pay this order has passed".into(),
        });
    }
    let provider = channel.provider();
    let gateway = app.payments.gateway(provider)?;
    // Only through a provider the seller can be paid at (their payout accounts).
    crate::domain::payouts::require_channel(&app.store, &order.seller_id, provider).await?;
    let existing = record_of(&app.store, &order.id, provider).await?;
    if existing
        .as_ref()
        .is_some_and(|r| r.state != PaymentState::Started)
    {
        return Err(Error::Conflict {
            code: "payment_settled",
            message: "this order's payment at this provider is already settled".into(),
        });
    }
    let payer_openid = match channel {
        Channel::Wechat => Some(
            crate::domain::members::get(&app.store, &order.buyer_id)
                .await?
                .ok_or(Error::NotFound("member"))?
                .openid,
        ),
        _ => None,
    };
    let now_secs = now.unix_timestamp();
    let reusable = existing.as_ref().and_then(|r| {
        let fresh = r
            .prepay_at
            .is_some_and(|at| now_secs - at < PREPAY_REUSE_SECS);
        (r.channel == channel && fresh)
            .then(|| r.prepay_id.clone())
            .flatten()
    });
    let request = PaymentStart {
        channel,
        order_no: order.id.to_string(),
        description: order.listing.title.clone(),
        amount: order.amount_fen,
        expires_at: expires,
        payer_openid,
        prepay_id: reusable.clone(),
    };
    let started = match gateway.start(&request).await {
        Ok(s) => s,
        Err(e) => {
            let event = ProviderEvent::new(
                provider,
                EventKind::Start,
                Outcome::Failed,
                now,
                e.to_string(),
            )
            .order(&order.id);
            events::record(&app.store, event, now).await;
            return Err(match e {
                GatewayError::Refused { code, message } => Error::Unprocessable {
                    code: "payment_refused",
                    field: "channel",
                    message: format!("the provider refused the payment: {code} {message}"),
                },
                unavailable => unavailable.into(),
            });
        }
    };
    let record = match &existing {
        Some(r) => {
            let mut next = r.next();
            next.channel = channel;
            if started.prepay_id.is_some() && started.prepay_id != reusable {
                next.prepay_id = started.prepay_id.clone();
                next.prepay_at = Some(now_secs);
            }
            next
        }
        None => PaymentRecord {
            order_id: order.id.clone(),
            provider,
            channel,
            state: PaymentState::Started,
            started_at: rfc3339(now),
            prepay_at: started.prepay_id.as_ref().map(|_| now_secs),
            prepay_id: started.prepay_id.clone(),
            transaction_id: None,
            paid_fen: None,
            paid_at: None,
            late_refund: None,
            checks: 0,
            due_at: Some(now_secs + FIRST_QUERY_SECS),
            version: 1,
        },
    };
    let event = ProviderEvent::new(
        provider,
        EventKind::Start,
        Outcome::Recorded,
        now,
        channel.as_str(),
    )
    .order(&order.id)
    .amount(order.amount_fen);
    let writes = vec![record.write(existing.as_ref())?, event.write(now)?];
    let mut body = match started.client {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    body.insert("channel".into(), json!(channel));
    body.insert("order_id".into(), json!(order.id));
    body.insert("amount_fen".into(), json!(order.amount_fen));
    body.insert("expires_at".into(), json!(order.expires_at));
    Ok((Value::Object(body), writes))
}

// Applying what the providers say.

/// What applying a notice (or a query's answer) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It changed the order or a payment.
    Changed,
    /// It had been applied before.
    Repeat,
    /// Nothing to change (recorded).
    Nothing,
    /// Verified, but it contradicts the order (another amount, a second transaction for one
    /// trade): recorded and refused, nothing changed.
    Refused(&'static str),
}

/// A notification the order contradicts is refused (the provider is told it failed).
fn refused_as_rejected(applied: Applied) -> Result<Applied, Rejected> {
    match applied {
        Applied::Refused(why) => Err(Rejected::new(why)),
        other => Ok(other),
    }
}

/// Applies a verified notification. A refusal (unknown order, wrong amount) changes nothing and
/// is recorded; the provider is told to try again only when the store failed.
pub async fn apply_notice(
    app: &App,
    notice: Notice,
    now: OffsetDateTime,
) -> Result<Result<Applied, Rejected>, Error> {
    let provider = match &notice {
        Notice::Paid { provider, .. }
        | Notice::Refund { provider, .. }
        | Notice::Other { provider, .. } => *provider,
    };
    let reject = |reason: &str, order: Option<&OrderId>| {
        let mut event = ProviderEvent::new(
            provider,
            EventKind::Notification,
            Outcome::Rejected,
            now,
            reason,
        );
        if let Some(id) = order {
            event = event.order(id);
        }
        event
    };
    let Some(id) = OrderId::parse(notice.order_no()) else {
        events::record(
            &app.store,
            reject("out_trade_no is not an order number of ours", None),
            now,
        )
        .await;
        return Ok(Err(Rejected::new("unknown order")));
    };
    let Some(order) = super::get(&app.store, &id).await? else {
        events::record(&app.store, reject("no such order", None), now).await;
        return Ok(Err(Rejected::new("unknown order")));
    };
    match notice {
        Notice::Paid { paid, .. } => apply_paid(
            app,
            &id,
            provider,
            None,
            &paid,
            EventKind::Notification,
            now,
        )
        .await
        .map(refused_as_rejected),
        Notice::Refund {
            out_refund_no,
            paid_total,
            ..
        } if !refund_of_paid_total(app, &order, provider, &out_refund_no, paid_total).await? => {
            let event = reject("the refunded payment's total is not the order's", Some(&id))
                .refund_no(&out_refund_no);
            events::record(&app.store, event, now).await;
            Ok(Err(Rejected::new("payment total mismatch")))
        }
        Notice::Refund {
            out_refund_no,
            state,
            ..
        } => apply_refund(
            app,
            &id,
            provider,
            &out_refund_no,
            state,
            EventKind::Notification,
            now,
        )
        .await
        .map(refused_as_rejected),
        Notice::Other { what, .. } => {
            let event = ProviderEvent::new(
                provider,
                EventKind::Notification,
                Outcome::Recorded,
                now,
                what,
            )
            .order(&id);
            events::record(&app.store, event, now).await;
            Ok(Ok(Applied::Nothing))
        }
    }
}

/// Whether a refund notification's stated payment total is the payment the refund is of: the
/// order's amount, or a late payment's (a notification that states none passes).
async fn refund_of_paid_total(
    app: &App,
    order: &Order,
    provider: Provider,
    out_refund_no: &str,
    paid_total: Option<Fen>,
) -> Result<bool, Error> {
    let Some(total) = paid_total else {
        return Ok(true);
    };
    if out_refund_no == late_refund_no(&order.id, provider) {
        let record = record_of(&app.store, &order.id, provider).await?;
        return Ok(record.and_then(|r| r.paid_fen) == Some(total));
    }
    Ok(total == order.amount_fen)
}

/// Applies a confirmed payment at `provider` (from a notification or a query), exactly once.
/// `channel` is the channel when known (a query of a record), else the record's.
pub async fn apply_paid(
    app: &App,
    id: &OrderId,
    provider: Provider,
    channel: Option<Channel>,
    paid: &Paid,
    source: EventKind,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    for _ in 0..RACE_RETRIES {
        let order = super::get(&app.store, id)
            .await?
            .ok_or(Error::NotFound("order"))?;
        let existing = record_of(&app.store, id, provider).await?;
        // Whatever says it (a notification or a query's answer), a payment must match the order
        // and be the provider's one transaction for it.
        let settled = existing
            .as_ref()
            .filter(|r| matches!(r.state, PaymentState::Paid | PaymentState::Late));
        let contradiction = if paid.amount != order.amount_fen {
            Some("amount differs from the order's")
        } else if settled
            .is_some_and(|r| r.transaction_id.as_deref() != Some(paid.transaction_id.as_str()))
        {
            Some("a second transaction for one trade")
        } else {
            None
        };
        if let Some(why) = contradiction {
            tracing::error!(order_id = %id, provider = provider.as_str(), why, "a payment contradicts the order: refused");
            let event = ProviderEvent::new(provider, source, Outcome::Rejected, now, why)
                .order(id)
                .transaction(Some(&paid.transaction_id))
                .amount(paid.amount);
            events::record(&app.store, event, now).await;
            return Ok(Applied::Refused(why));
        }
        if let Some(r) = &existing {
            if r.transaction_id.as_deref() == Some(paid.transaction_id.as_str())
                && matches!(r.state, PaymentState::Paid | PaymentState::Late)
            {
                let event = ProviderEvent::new(provider, source, Outcome::Repeat, now, "paid")
                    .order(id)
                    .transaction(Some(&paid.transaction_id));
                events::record(&app.store, event, now).await;
                return Ok(Applied::Repeat);
            }
        }
        let channel = channel
            .or(existing.as_ref().map(|r| r.channel))
            .unwrap_or(match provider {
                Provider::Wechat => Channel::Wechat,
                Provider::Alipay => Channel::Alipay,
            });
        let mut record = match &existing {
            Some(r) => r.next(),
            None => PaymentRecord {
                order_id: id.clone(),
                provider,
                channel,
                state: PaymentState::Started,
                started_at: rfc3339(now),
                prepay_id: None,
                prepay_at: None,
                transaction_id: None,
                paid_fen: None,
                paid_at: None,
                late_refund: None,
                checks: 0,
                due_at: None,
                version: 1,
            },
        };
        record.transaction_id = Some(paid.transaction_id.clone());
        record.paid_fen = Some(paid.amount);
        let paid_at = paid.paid_at.clone().unwrap_or_else(|| rfc3339(now));
        record.paid_at = Some(paid_at.clone());
        let takes_it = order.status == OrderStatus::PendingPayment;
        let mut event = ProviderEvent::new(provider, source, Outcome::Applied, now, "paid")
            .order(id)
            .transaction(Some(&paid.transaction_id))
            .amount(paid.amount);
        let result = if takes_it {
            record.state = PaymentState::Paid;
            record.due_at = None;
            let mut next = order.transition(
                &Change::new(Action::ConfirmPayment, Actor::Provider, now),
                &app.config.orders,
            )?;
            next.split_deadline = Some(split_deadline(&paid_at, now, &app.config.settlement));
            let entry = LedgerEntry::new(id, LedgerKind::Paid, "payment", paid.amount, &paid_at);
            next.payment = Some(OrderPayment {
                channel,
                transaction_id: paid.transaction_id.clone(),
                paid_at,
            });
            commit(
                &app.store,
                &order,
                &next,
                vec![
                    record.write(existing.as_ref())?,
                    event.write(now)?,
                    entry.write()?,
                ]
                .into_iter()
                .chain(crate::domain::settlement::watch::paid_writes(&next)?)
                .collect(),
            )
            .await
        } else {
            // Expired, cancelled or paid through the other provider: the money goes back.
            record.state = PaymentState::Late;
            record.late_refund = Some(LateRefund {
                out_refund_no: late_refund_no(id, provider),
                status: RefundStatus::Pending,
                failure: None,
                attempts: 0,
            });
            record.due_at = Some(now.unix_timestamp());
            event.detail = format!(
                "paid while the order is {}: refunded by the job",
                order.status.as_str()
            );
            app.store
                .transact(vec![record.write(existing.as_ref())?, event.write(now)?])
                .await
                // Another notice of this payment wrote the record first: read again (a repeat).
                .map_err(|e| match lost_race(&e) {
                    true => order_changed(),
                    false => e.into(),
                })
        };
        match result {
            Ok(()) => {
                tracing::info!(order_id = %id, provider = provider.as_str(), late = !takes_it, "payment applied");
                return Ok(Applied::Changed);
            }
            Err(Error::Conflict {
                code: "order_changed",
                ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(order_changed())
}

/// When an order paid at `paid_at` must be split by: `RENJI_SETTLE_DEADLINE_DAYS` after it (the
/// providers count their freeze from the payment).
fn split_deadline(paid_at: &str, now: OffsetDateTime, config: &SettlementConfig) -> String {
    let paid = match super::epoch(paid_at) {
        0 => now.unix_timestamp(),
        at => at,
    };
    let deadline = paid.saturating_add(i64::try_from(config.deadline.as_secs()).unwrap_or(0));
    rfc3339(OffsetDateTime::from_unix_timestamp(deadline).unwrap_or(now))
}

/// A provider's answer that contradicts the order: nothing is changed on its word (503, the
/// event is on record, staff look).
pub fn contradicted(provider: Provider, why: &str) -> Error {
    Error::Unavailable(format!(
        "{}'s answer contradicts the order: {why}",
        provider.as_str()
    ))
}

/// `<order id>L<W|A>`: the refund number of a late payment at `provider`.
pub fn late_refund_no(id: &OrderId, provider: Provider) -> String {
    let letter = match provider {
        Provider::Wechat => 'W',
        Provider::Alipay => 'A',
    };
    format!("{id}L{letter}")
}

/// Applies a refund's state at the provider: the order's current refund, or a late payment's.
/// Every failure of an order's refund comes here (the refund's answer, a notification, the jobs'
/// query): its transition into `refund_failed` carries the staff alarm ([`super::refund_alarm`]).
pub async fn apply_refund(
    app: &App,
    id: &OrderId,
    provider: Provider,
    out_refund_no: &str,
    state: RefundState,
    source: EventKind,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    if out_refund_no == late_refund_no(id, provider) {
        return apply_late_refund(app, id, provider, state, source, now).await;
    }
    for _ in 0..RACE_RETRIES {
        let order = super::get(&app.store, id)
            .await?
            .ok_or(Error::NotFound("order"))?;
        let event = |outcome: Outcome, detail: String| {
            ProviderEvent::new(provider, source, outcome, now, detail)
                .order(id)
                .refund_no(out_refund_no)
        };
        let current = order
            .current_refund()
            .filter(|r| r.out_refund_no == out_refund_no);
        let Some(refund) = current else {
            // Final already, or another refund's: a repeat.
            events::record(
                &app.store,
                event(Outcome::Repeat, format!("{state:?}")),
                now,
            )
            .await;
            return Ok(Applied::Repeat);
        };
        // A success for another amount than asked is not this refund's: recorded, refused, and
        // the refund asked about again later (staff see the events).
        let mismatch = matches!(&state, RefundState::Succeeded { amount: Some(a), .. } if *a != refund.amount_fen);
        let effective = match mismatch {
            true => RefundState::NotFound,
            false => state.clone(),
        };
        let (change, refund_id) = match &effective {
            RefundState::Succeeded { refund_id, .. } => (
                Some(Change::new(Action::RefundSucceeded, Actor::Provider, now)),
                refund_id.clone(),
            ),
            RefundState::Failed { reason } => (
                Some(
                    Change::new(Action::RefundFailed, Actor::Provider, now)
                        .reason(Some(reason.clone())),
                ),
                None,
            ),
            RefundState::Processing | RefundState::NotFound => (None, None),
        };
        let mut alarm = None;
        let result = match change {
            Some(change) => {
                let mut next = order.transition(&change, &app.config.orders)?;
                if let Some(last) = next.refunds.last_mut() {
                    last.refund_id = refund_id.or(last.refund_id.take());
                    if let RefundState::Failed { reason } = &state {
                        last.failure = Some(reason.clone());
                    }
                }
                let e = event(Outcome::Applied, format!("{state:?}")).amount(refund.amount_fen);
                let mut writes = vec![e.write(now)?];
                if next.status != OrderStatus::RefundFailed {
                    let entry = LedgerEntry::new(
                        id,
                        LedgerKind::Refunded,
                        out_refund_no,
                        refund.amount_fen,
                        &rfc3339(now),
                    );
                    writes.push(entry.write()?);
                    writes.extend(refunds::success_writes(
                        app, &order, refund, &mut next, now,
                    )?);
                    writes.extend(crate::domain::settlement::resolve::success(
                        app, &order, refund, &mut next, now,
                    )?);
                    writes.extend(crate::domain::settlement::resolve::failed_split_success(
                        refund, &mut next, now,
                    )?);
                } else if let RefundState::Failed { reason } = &effective {
                    // The money is held until staff ask again: they are told with the change.
                    let raised = RefundAlarm::new(id, refund, provider, reason);
                    writes.extend(raised.writes(now, app.config.audit_keep)?);
                    alarm = Some(raised);
                }
                commit(&app.store, &order, &next, writes).await
            }
            None => {
                // Still in progress: ask again later, backing off.
                let mut next = order.clone();
                next.version += 1;
                let attempts = refund.attempts + 1;
                if let Some(last) = next.refunds.last_mut() {
                    last.attempts = attempts;
                    if state == RefundState::Processing {
                        last.status = RefundStatus::Processing;
                    }
                }
                next.due_at = Some(backoff(now.unix_timestamp(), attempts.saturating_sub(1)));
                let e = match mismatch {
                    true => {
                        tracing::error!(order_id = %id, provider = provider.as_str(), "a refund's success names another amount: refused");
                        event(Outcome::Rejected, format!("another amount: {state:?}"))
                    }
                    false => event(Outcome::Recorded, format!("{state:?}")),
                };
                commit(&app.store, &order, &next, vec![e.write(now)?]).await
            }
        };
        match result {
            Ok(()) if mismatch => return Ok(Applied::Refused("refund amount differs")),
            Ok(()) => {
                if let Some(alarm) = alarm {
                    alarm.log();
                }
                return Ok(Applied::Changed);
            }
            Err(Error::Conflict {
                code: "order_changed",
                ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(order_changed())
}

async fn apply_late_refund(
    app: &App,
    id: &OrderId,
    provider: Provider,
    state: RefundState,
    source: EventKind,
    now: OffsetDateTime,
) -> Result<Applied, Error> {
    for _ in 0..RACE_RETRIES {
        let Some(record) = record_of(&app.store, id, provider).await? else {
            return Ok(Applied::Nothing);
        };
        let Some(late) = record
            .late_refund
            .clone()
            .filter(|r| matches!(r.status, RefundStatus::Pending | RefundStatus::Processing))
        else {
            return Ok(Applied::Repeat);
        };
        let mismatch = matches!(&state, RefundState::Succeeded { amount: Some(a), .. } if Some(*a) != record.paid_fen);
        let effective = match mismatch {
            true => RefundState::NotFound,
            false => state.clone(),
        };
        let mut next = record.next();
        let refund = next.late_refund.get_or_insert(late.clone());
        refund.attempts = late.attempts + 1;
        let outcome = match &effective {
            RefundState::Succeeded { .. } => {
                refund.status = RefundStatus::Succeeded;
                next.due_at = None;
                Outcome::Applied
            }
            RefundState::Failed { reason } => {
                refund.status = RefundStatus::Failed;
                refund.failure = Some(reason.clone());
                next.due_at = None;
                tracing::error!(order_id = %id, provider = provider.as_str(), "a late payment's refund failed: staff attention");
                Outcome::Applied
            }
            RefundState::Processing | RefundState::NotFound => {
                if effective == RefundState::Processing {
                    refund.status = RefundStatus::Processing;
                }
                next.due_at = Some(backoff(now.unix_timestamp(), late.attempts));
                match mismatch {
                    true => Outcome::Rejected,
                    false => Outcome::Recorded,
                }
            }
        };
        let event = ProviderEvent::new(
            provider,
            source,
            outcome,
            now,
            format!("late payment refund {state:?}"),
        )
        .order(id)
        .refund_no(&late.out_refund_no);
        match app
            .store
            .transact(vec![next.write(Some(&record))?, event.write(now)?])
            .await
        {
            Ok(()) if mismatch => return Ok(Applied::Refused("refund amount differs")),
            Ok(()) => return Ok(Applied::Changed),
            Err(e) if lost_race(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(order_changed())
}

// Moving money from the request path and the jobs.

/// Asks the provider for the order's current refund (idempotent by its `out_refund_no`) and
/// applies the answer; a provider that cannot be reached leaves the refund to the job. Answers
/// the order as it is afterwards.
pub async fn request_refund(app: &App, order: Order, now: OffsetDateTime) -> Result<Order, Error> {
    let (Some(refund), Some(payment)) = (order.current_refund().cloned(), order.payment.clone())
    else {
        return Ok(order);
    };
    let provider = payment.channel.provider();
    let gateway = app.payments.gateway(provider)?;
    // After the split, the seller's part comes back first (or with the refund).
    let (order, royalty_back) = match (&refund.after_split, refund.status) {
        (Some(_), RefundStatus::Pending) => match refunds::prepare(app, order, now).await? {
            refunds::Prepared::Refund(order, back) => (order, back),
            refunds::Prepared::Wait(order) => return Ok(order),
        },
        _ => (order, None),
    };
    let request = RefundRequest {
        order_no: order.id.to_string(),
        out_refund_no: refund.out_refund_no.clone(),
        amount: refund.amount_fen,
        total: order.amount_fen,
        refunded_before: order.refunded_fen,
        reason: refund.reason.clone().unwrap_or_else(|| "退款".into()),
        royalty_back,
    };
    let mut state = match refund.status {
        RefundStatus::Pending => gateway.refund(&request).await,
        _ => {
            gateway
                .refund_query(&request.order_no, &request.out_refund_no)
                .await
        }
    };
    // More than WeChat still holds unsplit: unfreeze the rest of a split order and ask again,
    // or wait for the split to finish — never a failure for staff.
    if rule_limit(&state) {
        if refunds::unfreeze_for_refund(app, &order).await? {
            state = gateway.refund(&request).await;
        }
        if rule_limit(&state) {
            state = Err(GatewayError::Unavailable(
                "RULE_LIMIT: more than is unsplit; waits for the split to finish".into(),
            ));
        }
    }
    match state {
        Ok(state) => {
            apply_refund(
                app,
                &order.id,
                provider,
                &refund.out_refund_no,
                state,
                EventKind::Refund,
                now,
            )
            .await?;
        }
        Err(e) => {
            let failed = matches!(e, GatewayError::Refused { .. });
            let event = ProviderEvent::new(
                provider,
                EventKind::Refund,
                Outcome::Failed,
                now,
                e.to_string(),
            )
            .order(&order.id)
            .refund_no(&refund.out_refund_no);
            events::record(&app.store, event, now).await;
            if failed {
                // The provider will not do it: staff attention.
                apply_refund(
                    app,
                    &order.id,
                    provider,
                    &refund.out_refund_no,
                    RefundState::Failed {
                        reason: e.to_string(),
                    },
                    EventKind::Refund,
                    now,
                )
                .await?;
            } else {
                // Unreachable: the job asks again.
                apply_refund(
                    app,
                    &order.id,
                    provider,
                    &refund.out_refund_no,
                    RefundState::NotFound,
                    EventKind::Refund,
                    now,
                )
                .await?;
            }
        }
    }
    super::get(&app.store, &order.id)
        .await?
        .ok_or(Error::NotFound("order"))
}

/// WeChat's refusal of a refund larger than what is unsplit.
fn rule_limit(state: &Result<RefundState, GatewayError>) -> bool {
    matches!(state, Err(GatewayError::Refused { code, .. }) if code == "RULE_LIMIT")
}

/// Refunds a late payment in full (the job).
pub async fn refund_late(
    app: &App,
    record: &PaymentRecord,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let (Some(late), Some(paid)) = (&record.late_refund, record.paid_fen) else {
        return Ok(());
    };
    let gateway = app.payments.gateway(record.provider)?;
    let request = RefundRequest {
        order_no: record.order_id.to_string(),
        out_refund_no: late.out_refund_no.clone(),
        amount: paid,
        total: paid,
        refunded_before: Fen::from_fen(0),
        reason: "订单已关闭，退回重复或逾期的付款".into(),
        royalty_back: None,
    };
    let answer = match late.status {
        RefundStatus::Pending => gateway.refund(&request).await,
        _ => {
            gateway
                .refund_query(&request.order_no, &request.out_refund_no)
                .await
        }
    };
    let state = match answer {
        Ok(state) => state,
        Err(GatewayError::Refused { code, message }) => RefundState::Failed {
            reason: format!("{code} {message}"),
        },
        Err(e) => return Err(e.into()),
    };
    apply_late_refund(
        app,
        &record.order_id,
        record.provider,
        state,
        EventKind::Refund,
        now,
    )
    .await?;
    Ok(())
}

/// How often a payment still open after a close is closed again before the cancel answers 503.
const CLOSE_ATTEMPTS: usize = 3;

/// Closes the order's open payments at their providers before it is cancelled or expires.
/// Answers `Err(order)` when a provider says it was paid meanwhile (the payment is applied: the
/// order is `paid` now), else the payment records' writes that mark them closed, for the
/// transition's transaction.
pub async fn close_open(
    app: &App,
    order: &Order,
    now: OffsetDateTime,
) -> Result<Result<Vec<Write>, Order>, Error> {
    let mut writes = Vec::new();
    for record in records(&app.store, &order.id).await? {
        if record.state != PaymentState::Started {
            continue;
        }
        let provider = record.provider;
        let gateway = app.payments.gateway(provider)?;
        let order_no = order.id.to_string();
        // A trade the buyer opens between our close and our query (Alipay creates it only when
        // the cashier opens) is still open: close it again before giving up.
        let mut trade = Trade::Open;
        for _ in 0..CLOSE_ATTEMPTS {
            gateway.close(&order_no).await.map_err(Error::from)?;
            trade = gateway.query(&order_no).await.map_err(Error::from)?;
            if !matches!(trade, Trade::Open) {
                break;
            }
        }
        let event = ProviderEvent::new(
            provider,
            EventKind::Close,
            Outcome::Recorded,
            now,
            format!("{trade:?}"),
        )
        .order(&order.id);
        match trade {
            Trade::Paid(paid) => {
                events::record(&app.store, event, now).await;
                let applied = apply_paid(
                    app,
                    &order.id,
                    provider,
                    Some(record.channel),
                    &paid,
                    EventKind::Query,
                    now,
                )
                .await?;
                if let Applied::Refused(why) = applied {
                    return Err(contradicted(provider, why));
                }
                let now_order = super::get(&app.store, &order.id)
                    .await?
                    .ok_or(Error::NotFound("order"))?;
                return Ok(Err(now_order));
            }
            Trade::Open => {
                // Closing did not take: try again later.
                return Err(Error::Unavailable(format!(
                    "{} did not close the payment",
                    provider.as_str()
                )));
            }
            Trade::Closed | Trade::NotFound => {
                let mut next = record.next();
                next.state = PaymentState::Closed;
                next.due_at = None;
                writes.push(next.write(Some(&record))?);
                writes.push(event.write(now)?);
            }
        }
    }
    Ok(Ok(writes))
}

/// Leaves `pending_payment` by `action` (the buyer's cancel, the job's expiry): open payments
/// are closed first; a payment that landed meanwhile makes the order `paid` and the answer
/// 409 `order_paid` (the job: the order as it is).
pub async fn close_unpaid(app: &App, order: &Order, change: Change) -> Result<Order, Error> {
    let now = change.at;
    let paid_meanwhile = |paid: &Order| Error::Conflict {
        code: "order_paid",
        message: format!(
            "the order was paid meanwhile; it is {} now",
            paid.status.as_str()
        ),
    };
    match close_open(app, order, now).await? {
        Err(paid) => Err(paid_meanwhile(&paid)),
        Ok(writes) => {
            let next = order.transition(&change, &app.config.orders)?;
            match commit(&app.store, order, &next, writes).await {
                Ok(()) => Ok(next),
                // A notification won the race after the order was read.
                Err(Error::Conflict {
                    code: "order_changed",
                    ..
                }) => match super::get(&app.store, &order.id).await? {
                    Some(now) if now.status != OrderStatus::PendingPayment => {
                        Err(paid_meanwhile(&now))
                    }
                    _ => Err(order_changed()),
                },
                Err(e) => Err(e),
            }
        }
    }
}

/// Moves the order by `change` into `refunding` and asks the provider at once.
pub async fn refund_now(app: &App, order: &Order, change: Change) -> Result<Order, Error> {
    refund_now_with(app, order, change, Vec::new()).await
}

/// [`refund_now`] with `extra` writes in the transition's transaction (staff's decision of a
/// dispute closes the dispute's ticket with it).
pub async fn refund_now_with(
    app: &App,
    order: &Order,
    change: Change,
    extra: Vec<Write>,
) -> Result<Order, Error> {
    let now = change.at;
    let next = order.transition(&change, &app.config.orders)?;
    let mut extra = extra;
    extra.extend(super::audited(&change, order, app.config.audit_keep)?);
    commit(&app.store, order, &next, extra).await?;
    request_refund(app, next, now).await
}

/// The buyer's cancel: an unpaid order is closed (`cancelled`), a paid one not yet accepted is
/// refunded in full.
pub async fn cancel(app: &App, order: &Order, now: OffsetDateTime) -> Result<Order, Error> {
    let change = Change::new(Action::Cancel, Actor::Buyer, now);
    match order.status {
        OrderStatus::PendingPayment => close_unpaid(app, order, change).await,
        _ => refund_now(app, order, change).await,
    }
}

/// Who asks a member-side payment action: the caller must be the order's buyer or seller.
pub fn actor_of(order: &Order, member: &UserId) -> Result<Actor, Error> {
    order
        .role_of(member)
        .map(super::Role::actor)
        .ok_or(Error::NotFound("order"))
}

/// Looks at a started payment again later (backing off).
pub async fn reschedule(
    app: &App,
    record: &PaymentRecord,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let mut next = record.next();
    next.checks = record.checks + 1;
    next.due_at = Some(backoff(now.unix_timestamp(), record.checks));
    app.store
        .transact(vec![next.write(Some(record))?])
        .await
        .map_err(|e| match lost_race(&e) {
            true => order_changed(),
            false => e.into(),
        })
}

/// A started payment the provider closed (or never saw), for an order that no longer waits.
pub async fn mark_closed(
    app: &App,
    record: &PaymentRecord,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let mut next = record.next();
    next.state = PaymentState::Closed;
    next.due_at = None;
    let event = ProviderEvent::new(
        record.provider,
        EventKind::Query,
        Outcome::Applied,
        now,
        "closed",
    )
    .order(&record.order_id);
    app.store
        .transact(vec![next.write(Some(record))?, event.write(now)?])
        .await
        .map_err(|e| match lost_race(&e) {
            true => order_changed(),
            false => e.into(),
        })
}
