//! A party's action on an order (accept, confirm, refund request here; cancel, decline and the
//! answers to a refund request in the `payments` function, with the provider calls around it):
//! load the order for its buyer or seller (anyone else: 404), take the actor from their role,
//! ask the state machine ([`Order::transition`]: 403 for the wrong party, 409 from the wrong
//! state) and write the next version conditioned on the version read ([`commit`](super::commit):
//! a lost race is 409 `order_changed` and changes nothing). The seller's accept of a WeChat-paid
//! order also owes WeChat the order's shipping record ([`shipping`]).

use serde::Deserialize;
use time::OffsetDateTime;

use super::{commit, for_party, shipping, Action, Change, Order, Role};
use crate::app::App;
use crate::domain::profile::bounded_text;
use crate::error::Error;
use crate::ids::{OrderId, UserId};

/// Longest reason a party may give (a refund request, a decline).
pub const MAX_REASON_CHARS: usize = 200;

/// The body of an action that needs a reason (`POST /v1/orders/{id}/refund`, the declines).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

impl ReasonBody {
    /// The reason, trimmed: 1 to [`MAX_REASON_CHARS`] visible characters (422 naming `reason`).
    pub fn reason(&self) -> Result<String, Error> {
        bounded_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

/// `member` takes `action` on order `id` at `now`: 200 with the next version, or 404 (not a
/// party), 403 (the other party's action), 409 `invalid_order_state` (not from this state) or
/// 409 `order_changed` (another change won the race).
pub async fn act(
    app: &App,
    id: &OrderId,
    member: &UserId,
    action: Action,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let (order, role) = for_party(&app.store, id, member).await?;
    apply(app, &order, role, action, reason, now).await
}

/// [`act`] on an order already read for its party (a caller that must look at it first — the
/// `payments` function closing a payment before a cancel, say): the machine's answer for `role`,
/// written conditioned on `order`'s version.
pub async fn apply(
    app: &App,
    order: &Order,
    role: Role,
    action: Action,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let change = Change::new(action, role.actor(), now).reason(reason);
    let next = order.transition(&change, &app.config.orders)?;
    let mut extra = super::audited(&change, order, app.config.audit_keep)?;
    // An accepted WeChat-paid order owes WeChat its shipping record: owed in the accept's own
    // transaction, sent right after it (a failure is the order jobs' to retry, never the
    // accept's).
    let shipping = match action {
        Action::Accept => shipping::owed(app, order, now).await?,
        _ => None,
    };
    if let Some(record) = &shipping {
        extra.push(record.write(None)?);
    }
    commit(&app.store, order, &next, extra).await?;
    if let Some(record) = &shipping {
        shipping::after_accept(app, record, now).await;
    }
    Ok(next)
}
