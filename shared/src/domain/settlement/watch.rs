//! The split deadline, watched: every paid order with settlement terms gets a small watch item
//! (`ORDER#<id> / SETTLE_WATCH`, [`keys::settle_watch`]) written with its payment (in the same
//! transaction as the `paid` ledger entry) and removed when its split is final (`paid`,
//! `nothing`). It is listed in `gsi1` under `DUE#settle_watch` by the order's `split_deadline`, so
//! - **staff's alarm** is the list of watches whose deadline is within [`ALARM_SECS`] (3 days):
//!   an order nearing its deadline unsplit, whatever its state (disputed, refund requested,
//!   split failed…) — [`alarms`], served by `GET /admin/v1/settlements?state=alarm`;
//! - **past the deadline** the order jobs ([`run`]) mark an order still unsplit `expired` (the
//!   provider released the frozen funds to Renji; the ledger shows what is held for the seller)
//!   and move its watch to `DUE#settle_expired`, where staff find it (`?state=expired`) to decide.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::app::App;
use crate::domain::orders::{self, epoch, Order};
use crate::error::Error;
use crate::ids::OrderId;
use crate::store::schema::GSI1;
use crate::store::{keys, Key, Query, Record, Records, SortKey, Write};

/// Staff are alarmed this long before an order's split deadline.
pub const ALARM_SECS: i64 = 3 * 24 * 3600;
/// The `gsi1` partitions (`DUE#<kind>`) of watches: waiting, and expired.
pub const WATCHING: &str = "settle_watch";
pub const EXPIRED: &str = "settle_expired";

/// One paid order's watch (no member id: the order names its parties, and a deletion
/// anonymises it there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleWatch {
    pub order_id: OrderId,
    pub split_deadline: String,
    /// `watching` or `expired`.
    pub state: String,
}

impl Record for SettleWatch {
    const KIND: &'static str = "settlement watch";
}

impl SettleWatch {
    fn listed(&self) -> Key {
        let kind = match self.state.as_str() {
            "expired" => EXPIRED,
            _ => WATCHING,
        };
        keys::due_listed(kind, epoch(&self.split_deadline), &self.order_id, None)
    }

    fn write(&self) -> Result<Write, Error> {
        Ok(Write::put(self.to_item(
            keys::settle_watch(&self.order_id),
            Some(self.listed()),
        )?))
    }
}

/// The watch of an order just paid (with settlement terms and a deadline), for the payment's
/// transaction; none for an order settled without terms.
pub fn paid_writes(order: &Order) -> Result<Vec<Write>, Error> {
    let (Some(_), Some(deadline)) = (&order.settle, &order.split_deadline) else {
        return Ok(Vec::new());
    };
    Ok(vec![SettleWatch {
        order_id: order.id.clone(),
        split_deadline: deadline.clone(),
        state: "watching".into(),
    }
    .write()?])
}

/// The removal of an order's watch (its split is final).
pub fn done_write(id: &OrderId) -> Write {
    Write::delete(keys::settle_watch(id))
}

/// The watch of an order that expired: listed for staff under `DUE#settle_expired`.
pub fn expired_write(order: &Order) -> Result<Write, Error> {
    SettleWatch {
        order_id: order.id.clone(),
        split_deadline: order.split_deadline.clone().unwrap_or_default(),
        state: "expired".into(),
    }
    .write()
}

/// What a watch run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub examined: u32,
    pub expired: u32,
    pub removed: u32,
    pub failed: u32,
}

/// The watches whose deadline passed at `now` (at most `limit`): an order settled meanwhile (or
/// with nothing left to split) loses its watch; one still unsplit becomes `expired` — except a
/// split the provider is still processing, which the `settle` job follows to its end.
pub async fn run(app: &App, now: OffsetDateTime, limit: usize) -> Result<Report, Error> {
    let page = app
        .store
        .query(
            Query::partition(keys::due_partition(WATCHING))
                .index(GSI1)
                .sort(SortKey::Below(keys::due(now.unix_timestamp() + 1)))
                .limit(limit),
        )
        .await?;
    let mut report = Report::default();
    for item in page.items {
        report.examined += 1;
        let watch = match SettleWatch::from_item(item) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "unreadable settlement watch");
                report.failed += 1;
                continue;
            }
        };
        match one(app, &watch, now).await {
            Ok(Some(true)) => report.expired += 1,
            Ok(Some(false)) => report.removed += 1,
            Ok(None) | Err(Error::Conflict { .. }) => {}
            Err(e) => {
                tracing::warn!(order_id = %watch.order_id, error = %e, "settlement watch failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// `Some(true)`: expired; `Some(false)`: the watch removed; `None`: left.
async fn one(app: &App, watch: &SettleWatch, now: OffsetDateTime) -> Result<Option<bool>, Error> {
    let Some(order) = orders::get(&app.store, &watch.order_id).await? else {
        app.store
            .transact(vec![done_write(&watch.order_id)])
            .await?;
        return Ok(Some(false));
    };
    let state = order.settlement.as_ref().map(|s| s.state);
    if order.settled() || owes_nothing(&order) {
        app.store.transact(vec![done_write(&order.id)]).await?;
        return Ok(Some(false));
    }
    if state == Some(super::SettleState::Processing) {
        return Ok(None);
    }
    super::job::expire(app, &order, now).await?;
    Ok(Some(true))
}

/// Whether nothing of `order` is owed to its seller: no split moved money and all was refunded,
/// or is going back to the buyer (a refund under way or failed is staff's through the refund,
/// not a seller's split to decide).
fn owes_nothing(order: &Order) -> bool {
    let moved = order.settlement.as_ref().is_some_and(|s| s.state.moved());
    !moved && super::owed_net(order).get() == 0
}

/// Staff's list (`GET /admin/v1/settlements?state=alarm|expired`): orders within
/// [`ALARM_SECS`] of their split deadline unsplit (or past it, not yet expired by the job), or
/// expired ones, nearest deadline first, each with its order's state and money.
pub async fn alarms(
    app: &App,
    expired: bool,
    now: OffsetDateTime,
    limit: usize,
    cursor: Option<&crate::store::PageCursor>,
) -> Result<(Vec<Value>, Option<crate::store::PageCursor>), Error> {
    let (kind, below) = match expired {
        true => (EXPIRED, i64::MAX / 4),
        false => (WATCHING, now.unix_timestamp() + ALARM_SECS + 1),
    };
    let query = Query::partition(keys::due_partition(kind))
        .index(GSI1)
        .sort(SortKey::Below(keys::due(below)))
        .limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = app.store.query(query.after(cursor)).await?;
    let watches = page
        .items
        .into_iter()
        .map(SettleWatch::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let order_keys: Vec<Key> = watches.iter().map(|w| keys::order(&w.order_id)).collect();
    let found: Vec<Option<Order>> = app.store.get_records(&order_keys).await?;
    let mut items = Vec::new();
    for (watch, order) in watches.iter().zip(found) {
        let Some(order) = order else { continue };
        // Nothing owed to the seller (refunded before its split, or going back to the buyer):
        // no alarm; the watch itself goes at the deadline ([`run`]).
        if owes_nothing(&order) {
            continue;
        }
        let entries = super::ledger::entries(&app.store, &order.id).await?;
        let totals = super::Totals::of(&entries);
        items.push(json!({
            "order_id": order.id,
            "seller_id": order.seller_id,
            "status": order.status,
            "settlement": order.settlement.as_ref().map_or("pending", |s| s.state.as_str()),
            "failure": order.settlement.as_ref().and_then(|s| s.failure.clone()),
            "amount_fen": order.amount_fen,
            "refunded_fen": order.refunded_fen,
            "split_deadline": watch.split_deadline,
            "held_fen": totals.held(),
        }));
    }
    Ok((items, page.next.map(crate::store::PageCursor::from)))
}
