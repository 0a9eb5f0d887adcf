//! The order jobs (the `order-jobs` function, every minute; the local server's timer): each
//! kind of due work is a `gsi1` partition `DUE#<kind>` read in order of due time up to now, and
//! each item is decided again on a consistent read of its order — the index may lag, and two runs
//! at once must each do a thing once: every change is a write conditioned on the version read
//! (the loser skips), and every provider call is idempotent at the provider (`out_trade_no`,
//! `out_refund_no`). The clock is an argument, so tests move time instead of sleeping.
//!
//! - `payment`: payments started with no notification — queried (notifications get lost); a
//!   paid one is applied, one for an order that no longer waits is closed; a late payment (one
//!   the order did not take) is refunded in full.
//! - `expire`: unpaid past `expires_at` — open payments closed at the providers first, then
//!   `expired` (a payment that landed at the last second makes it `paid` instead).
//! - `accept`: paid and not accepted in time — refunded in full.
//! - `complete`: accepted long enough — `completed`.
//! - `refund_approve`: a refund request unanswered in time — approved (buyer protection).
//! - `refund`: refunds not yet final — asked of the provider again, backing off.
//! - `settle`: completed orders past their dispute window — split (`domain::settlement::job`).
//! - `shipping`: WeChat shipping records of accepted WeChat-paid orders not yet taken by WeChat
//!   (`ORDER#<id> / SHIPPING`) — sent again, backing off, until WeChat takes or refuses it
//!   ([`super::shipping`]).
//! - Once a day (after 11:00 Beijing time), the day before's splits reconciled against each
//!   provider's bill, and the provider's fee against its trade bill
//!   (`domain::settlement::reconcile`, `fees`), once each: a marker per provider and day.

use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use super::events::{self, EventKind, Outcome, ProviderEvent};
use super::payments::{self, PaymentRecord, PaymentState};
use super::{commit, Action, Actor, Change, OrderStatus};
use crate::app::App;
use crate::error::Error;
use crate::ids::OrderId;
use crate::payments::{Provider, Trade};
use crate::store::schema::GSI1;
use crate::store::{keys, Key, Query, SortKey};

/// The kinds of due work, in the order a run takes them.
pub const KINDS: [&str; 8] = [
    "payment",
    "expire",
    "accept",
    "complete",
    "refund_approve",
    "refund",
    "settle",
    super::shipping::DUE_KIND,
];

/// How much one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Items read of each kind.
    pub per_kind: usize,
    /// Stop starting new items after this (the function's timeout is longer).
    pub time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            per_kind: 50,
            time: Duration::from_secs(40),
        }
    }
}

/// What a run did, by kind.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub examined: u32,
    pub changed: u32,
    pub skipped: u32,
    pub failed: u32,
    /// Work was left for the next run.
    pub more: bool,
}

/// One run at `now`.
pub async fn run(app: &App, now: OffsetDateTime, budget: Budget) -> Result<Report, Error> {
    let started = Instant::now();
    let mut report = Report::default();
    for kind in KINDS {
        let page = app
            .store
            .query(
                Query::partition(keys::due_partition(kind))
                    .index(GSI1)
                    .sort(SortKey::Below(keys::due(now.unix_timestamp() + 1)))
                    .limit(budget.per_kind),
            )
            .await?;
        report.more |= page.next.is_some();
        for entry in page.items {
            if started.elapsed() >= budget.time {
                report.more = true;
                return Ok(report);
            }
            report.examined += 1;
            let Some((id, provider)) = Key::of(&entry).and_then(|k| due_target(&k)) else {
                tracing::error!(kind, "due entry without an order");
                report.failed += 1;
                continue;
            };
            match one(app, kind, &id, provider, now).await {
                Ok(true) => report.changed += 1,
                Ok(false) => report.skipped += 1,
                // Another run (or a request) got there first.
                Err(Error::Conflict { .. }) => report.skipped += 1,
                Err(e) => {
                    tracing::warn!(kind, order_id = %id, error = %e, "order job item failed");
                    report.failed += 1;
                }
            }
        }
    }
    // Once a day per provider (a marker says whether it ran): the splits against the bills.
    crate::domain::settlement::reconcile::daily(app, now).await;
    Ok(report)
}

/// The order (and provider, for a payment) a due entry is: its table key,
/// `ORDER#<id> / ORDER`, `ORDER#<id> / PAYMENT#<provider>` or `ORDER#<id> / SHIPPING`.
fn due_target(key: &Key) -> Option<(OrderId, Option<Provider>)> {
    let id = OrderId::parse(key.pk.strip_prefix(keys::ORDER)?)?;
    let provider = match key.sk.strip_prefix(keys::PAYMENT_SK_PREFIX) {
        None => None,
        Some(p) => Some(*Provider::ALL.iter().find(|x| x.as_str() == p)?),
    };
    Some((id, provider))
}

/// Acts on one due item; `Ok(false)` when it turned out not to be due.
async fn one(
    app: &App,
    kind: &str,
    id: &OrderId,
    provider: Option<Provider>,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let now_secs = now.unix_timestamp();
    if kind == "payment" {
        let Some(provider) = provider else {
            return Ok(false);
        };
        let Some(record) = payments::record_of(&app.store, id, provider).await? else {
            return Ok(false);
        };
        if record.due_at.is_none_or(|at| at > now_secs) {
            return Ok(false);
        }
        return reconcile(app, &record, now).await.map(|()| true);
    }
    if kind == super::shipping::DUE_KIND {
        return super::shipping::retry(app, id, now).await;
    }
    let Some(order) = super::get(&app.store, id).await? else {
        return Ok(false);
    };
    if order.due_kind() != Some(kind) || order.due_at.is_none_or(|at| at > now_secs) {
        return Ok(false);
    }
    let system = |action| Change::new(action, Actor::System, now);
    match order.status {
        OrderStatus::PendingPayment => {
            match payments::close_unpaid(app, &order, system(Action::Expire)).await {
                Ok(_) => {}
                // A payment landed at the last second: the order is paid, not expired.
                Err(Error::Conflict {
                    code: "order_paid", ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        OrderStatus::Paid => {
            let change = system(Action::AcceptTimeout)
                .reason(Some("the seller did not accept in time".into()));
            payments::refund_now(app, &order, change).await?;
        }
        OrderStatus::Accepted => {
            let next = order.transition(&system(Action::AutoComplete), &app.config.orders)?;
            commit(&app.store, &order, &next, Vec::new()).await?;
        }
        OrderStatus::RefundRequested => {
            let change = system(Action::AutoApproveRefund).reason(Some(
                "the seller did not answer the refund request in time".into(),
            ));
            payments::refund_now(app, &order, change).await?;
        }
        OrderStatus::Refunding => {
            payments::request_refund(app, order, now).await?;
        }
        OrderStatus::Completed => {
            return crate::domain::settlement::job::settle(app, &order, now).await;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A payment with no notification yet, or a late payment to refund.
async fn reconcile(app: &App, record: &PaymentRecord, now: OffsetDateTime) -> Result<(), Error> {
    if record.state == PaymentState::Late {
        return payments::refund_late(app, record, now).await;
    }
    let gateway = app.payments.gateway(record.provider)?;
    let order_no = record.order_id.to_string();
    let trade = gateway.query(&order_no).await?;
    let order = super::get(&app.store, &record.order_id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let waiting = order.status == OrderStatus::PendingPayment;
    // Every provider answer is on record; a payment the answer confirms is recorded where it
    // is applied.
    if !matches!(trade, Trade::Paid(_)) {
        let event = ProviderEvent::new(
            record.provider,
            EventKind::Query,
            Outcome::Recorded,
            now,
            format!("{trade:?}"),
        )
        .order(&record.order_id);
        events::record(&app.store, event, now).await;
    }
    match trade {
        Trade::Paid(paid) => {
            let applied = payments::apply_paid(
                app,
                &record.order_id,
                record.provider,
                Some(record.channel),
                &paid,
                EventKind::Query,
                now,
            )
            .await?;
            if let payments::Applied::Refused(why) = applied {
                return Err(payments::contradicted(record.provider, why));
            }
        }
        Trade::Open if !waiting => {
            gateway.close(&order_no).await?;
            // Checked again next time: closed, or paid meanwhile (then refunded as late).
            payments::reschedule(app, record, now).await?;
        }
        Trade::Closed | Trade::NotFound if !waiting => {
            payments::mark_closed(app, record, now).await?;
        }
        // The buyer may still pay: look again later.
        Trade::Open | Trade::Closed | Trade::NotFound => {
            payments::reschedule(app, record, now).await?;
        }
    }
    Ok(())
}
