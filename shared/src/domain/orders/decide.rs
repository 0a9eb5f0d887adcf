//! Staff decide a disputed order (`POST /admin/v1/orders/{id}/decision`): a refund to the buyer —
//! all that remains, or `amount_fen` of it — through the payments code
//! ([`payments::refund_now`]: the order goes `refunding`, the provider is asked at once, and its
//! confirmation makes it `refunded`, or for a part returns it to the state before the dispute
//! with `refunded_fen` grown), or a release for the seller (`StaffRelease`: back to the state
//! before the dispute, its jobs' clock running again). Only a `disputed` order (409
//! `invalid_order_state` otherwise, from the state machine); the reason is on the timeline.
//!
//! The dispute's ticket (`Order::dispute_ticket`), when still open, is closed by the deciding
//! staff member in the order's own transaction, the reason its resolution: the parties see the
//! decision and the closed ticket together, or neither (409 `ticket_changed` when another
//! change of the ticket — staff closing it at the same time — won the race, and nothing changed).

use serde::Deserialize;
use time::OffsetDateTime;

use super::{commit, get, payments, Action, Actor, Change, Order};
use crate::app::App;
use crate::domain::profile::bounded_text;
use crate::domain::tickets::{self, TicketStatus};
use crate::error::Error;
use crate::ids::{OrderId, StaffId};
use crate::money::Fen;
use crate::store::Write;

/// What staff decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Money back to the buyer.
    Refund,
    /// The seller keeps it.
    Release,
}

/// The body of a decision.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub action: Decision,
    /// A refund's amount; all that remains when absent (never when `null`). Not with `release`.
    #[serde(default, deserialize_with = "crate::domain::profile::not_null")]
    pub amount_fen: Option<i64>,
    pub reason: String,
}

/// A checked decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub action: Decision,
    pub amount: Option<Fen>,
    pub reason: String,
}

impl DecisionBody {
    /// 422 naming the field: a reason of 1 to 200 characters; an amount only for a refund, a
    /// whole number of fen from 1 (the order's remaining amount is checked by the machine).
    pub fn check(self) -> Result<Checked, Error> {
        let reason = bounded_text("reason", &self.reason, super::act::MAX_REASON_CHARS)?;
        let amount = match (self.action, self.amount_fen) {
            (_, None) => None,
            (Decision::Release, Some(_)) => {
                return Err(Error::invalid(
                    "amount_fen",
                    "is given only with action refund",
                ))
            }
            (Decision::Refund, Some(fen)) if fen < 1 => {
                return Err(Error::invalid(
                    "amount_fen",
                    "must be a whole number of fen from 1",
                ))
            }
            (Decision::Refund, Some(fen)) => Some(Fen::from_fen(fen)),
        };
        Ok(Checked {
            action: self.action,
            amount,
            reason,
        })
    }
}

/// `staff` applies `decision` to order `id` at `now`; answers the order as it is afterwards (a
/// refund the provider has not confirmed yet leaves it `refunding`; the order jobs and the
/// notification finish it).
pub async fn decide(
    app: &App,
    id: &OrderId,
    staff: &StaffId,
    decision: Checked,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let order = get(&app.store, id).await?.ok_or(Error::NotFound("order"))?;
    let action = match decision.action {
        Decision::Refund => Action::StaffRefund,
        Decision::Release => Action::StaffRelease,
    };
    let mut change = Change::new(action, Actor::Staff, now).reason(Some(decision.reason.clone()));
    if let Some(amount) = decision.amount {
        change = change.refund(amount);
    }
    // The machine's refusal (not disputed: 409) before the ticket is read.
    let next = order.transition(&change, &app.config.orders)?;
    let extra = close_dispute_ticket(app, &order, staff, &decision.reason, now).await?;
    match decision.action {
        Decision::Refund => payments::refund_now_with(app, &order, change, extra).await,
        Decision::Release => {
            commit(&app.store, &order, &next, extra).await?;
            Ok(next)
        }
    }
}

/// The writes that close the order's dispute ticket, if it has one still open.
async fn close_dispute_ticket(
    app: &App,
    order: &Order,
    staff: &StaffId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    let Some(ticket_id) = &order.dispute_ticket else {
        return Ok(Vec::new());
    };
    match tickets::get(&app.store, ticket_id).await? {
        Some(ticket) if ticket.status == TicketStatus::Open => {
            tickets::staff::closing(&ticket, staff, reason.to_owned(), now)
        }
        // Closed by staff already (or gone): the decision stands on its own.
        _ => Ok(Vec::new()),
    }
}
