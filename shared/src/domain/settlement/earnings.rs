//! `GET /v1/me/earnings`: what a seller has earned — totals (`pending_fen`, `paid_fen`,
//! `failed_fen`) and a page of their paid orders with each one's split.
//!
//! Read from the seller's order list (`ORDERS#<member>#seller`, newest first, the project's
//! cursor): an order that was never paid (or was made before settlement existed) is left out
//! of the page, so a page may hold fewer items than `limit` while `next_cursor` is there. The
//! totals read the whole list (a seller's orders; a per-seller aggregate is the next step if a
//! seller's list grows large).
//!
//! Each item: the order id, the listing's title, amount, refunded, commission, fee, the seller's
//! share (after a split: what the seller keeps once the refunds staff made since took their
//! parts back — the ledger's `seller_paid − receivable`, `seller_paid` being net of returns),
//! `state` ([`item_state`]: what happened to the seller's earning) with `settlement` (the split's
//! own state: `pending`, `processing`, `paid`, `settle_failed`, `nothing`, `expired`) and
//! `failure` (why it failed: the provider's reason, `no_payout_account`, `deadline_passed`), the
//! split deadline, when the share arrived (`paid_at`) and when the split finished, and the
//! order's `ledger` totals (`held_fen` is what is not yet accounted for: zero once settled;
//! `receivable_fen` what the seller owes back). Once a split is `paid` and no refund is under
//! way, the item and its ledger agree: `seller_fen = seller_paid − receivable` and
//! `commission_fen = commission_kept + fee + receivable` (the ledger's fee is the provider's
//! own once the bills are reconciled, the item's Renji's estimate; a bill's correction moves
//! money between the ledger's fee and `commission_kept` only).

use serde_json::{json, Value};

use super::{ledger, refunds, SettleState, SettleTerms, Shares, Totals};
use crate::domain::orders::{Order, OrderEntry, OrderStatus};
use crate::error::Error;
use crate::ids::UserId;
use crate::money::Fen;
use crate::store::{keys, DynStore, Key, PageCursor, Query, Record, Records};

/// At most this many orders per batch read.
const BATCH: usize = 100;

/// The split's state and shares of a paid order: a split that moved money, as it was made (less
/// what refunds since took back); otherwise what the seller is owed now ([`super::owed_net`]:
/// nothing — `nothing`, counted as 0 — once it all goes back to the buyer).
fn split_of(order: &Order) -> Option<(SettleState, Shares)> {
    let terms = order.settle?;
    order.payment.as_ref()?;
    Some(match &order.settlement {
        Some(s) if s.state == SettleState::Paid => (
            s.state,
            after_refunds(&s.shares, refunds::taken_since_split(order), &terms),
        ),
        Some(s) if s.state.moved() => (s.state, s.shares),
        // An expired split, resolved (or being resolved) by refunding the buyer the seller's
        // share first: what it still holds for the seller (`resolve`).
        Some(s) if matches!(s.state, SettleState::Expired | SettleState::Nothing) => {
            (s.state, super::resolve::owed_shares(order, s))
        }
        settlement => {
            let shares = Shares::of(super::owed_net(order), &terms);
            let state = match (shares.net_fen.get(), settlement) {
                (0, _) => SettleState::Nothing,
                (_, Some(s)) => s.state,
                (_, None) => SettleState::Pending,
            };
            (state, shares)
        }
    })
}

/// A split's shares once the refunds since the split took their parts back: the seller keeps
/// what was paid less what was returned or is owed; Renji gave back the rest of each refund
/// from its commission, and the provider gave back its fee in proportion (the fee is that of
/// what is left, as the refunds' `provider_fee` entries book it: `fees::refund_fee`).
fn after_refunds(split: &Shares, taken: refunds::Taken, terms: &SettleTerms) -> Shares {
    let net = split.net_fen.get() - taken.refunded_fen.get();
    let seller = split.seller_fen.get() - taken.seller_part_fen.get();
    // The split's fee less what each refund since gave back: they telescope to the fee of `net`.
    let given_back = Shares::of(split.net_fen, terms).fee_fen.get()
        - Shares::of(Fen::from_fen(net), terms).fee_fen.get();
    Shares {
        net_fen: Fen::from_fen(net),
        commission_fen: Fen::from_fen(net - seller),
        fee_fen: Fen::from_fen(split.fee_fen.get() - given_back),
        seller_fen: Fen::from_fen(seller),
    }
}

/// What an item's `state` says happened to the seller's earning: `pending` (not split yet, or
/// the provider still at it), `paid` (the share arrived; refunds since take their parts back),
/// `failed` (the split failed: a payout account to fix), `expired` (the deadline passed unsplit:
/// the share goes back to the buyer, staff decide), `refunded` (nothing for the seller: all of it
/// went back to the buyer before a split, or an expired split's share did), `refunding` (all that
/// is left is going back to the buyer by a refund under way, or one that failed and staff retry:
/// the ledger holds it until the refund succeeds). The totals count by [`SettleState::earning`].
fn item_state(order: &Order, state: SettleState) -> &'static str {
    match state {
        SettleState::Pending | SettleState::Processing => "pending",
        SettleState::Paid => "paid",
        SettleState::SettleFailed => "failed",
        SettleState::Expired => "expired",
        SettleState::Nothing => match order.status {
            OrderStatus::Refunding | OrderStatus::RefundFailed => "refunding",
            _ => "refunded",
        },
    }
}

/// The totals and one page.
pub async fn earnings(
    store: &DynStore,
    seller: &UserId,
    limit: usize,
    cursor: Option<&PageCursor>,
) -> Result<(Value, Vec<Value>, Option<PageCursor>), Error> {
    let partition = keys::orders_of(seller, "seller", None);
    // The totals: every order of the seller.
    let (mut pending, mut paid, mut failed) = (0_i64, 0_i64, 0_i64);
    let mut after = None;
    loop {
        let page = store
            .query(Query::partition(&partition).limit(BATCH).after(after))
            .await?;
        for order in orders_of(store, page.items).await? {
            if order.seller_id != *seller {
                continue;
            }
            if let Some((state, shares)) = split_of(&order) {
                let share = shares.seller_fen.get();
                match state.earning() {
                    "paid" => paid += share,
                    "failed" => failed += share,
                    _ => pending += share,
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let totals = json!({
        "pending_fen": Fen::from_fen(pending),
        "paid_fen": Fen::from_fen(paid),
        "failed_fen": Fen::from_fen(failed),
    });
    let query = Query::partition(&partition).descending().limit(limit);
    let cursor = crate::domain::cursor_for(&query, cursor)?;
    let page = store.query(query.after(cursor)).await?;
    let items = items(store, seller, page.items).await?;
    Ok((totals, items, page.next.map(PageCursor::from)))
}

/// The earnings of the seller's order-list `entries` (`ORDERS#<seller>#seller` items), one per
/// paid order: a page of the route, and the export's `earnings` section.
pub async fn items(
    store: &DynStore,
    seller: &UserId,
    entries: Vec<crate::store::Item>,
) -> Result<Vec<Value>, Error> {
    let mut items = Vec::new();
    for order in orders_of(store, entries).await? {
        if order.seller_id != *seller {
            continue;
        }
        let Some((state, shares)) = split_of(&order) else {
            continue;
        };
        let totals = Totals::of(&ledger::entries(store, &order.id).await?);
        items.push(item(&order, state, &shares, &totals));
    }
    Ok(items)
}

async fn orders_of(
    store: &DynStore,
    entries: Vec<crate::store::Item>,
) -> Result<Vec<Order>, Error> {
    let order_keys = entries
        .into_iter()
        .map(|e| OrderEntry::from_item(e).map(|e| keys::order(&e.order_id)))
        .collect::<Result<Vec<Key>, _>>()?;
    let found: Vec<Option<Order>> = store.get_records(&order_keys).await?;
    Ok(found.into_iter().flatten().collect())
}

fn item(order: &Order, state: SettleState, shares: &Shares, totals: &Totals) -> Value {
    let s = order.settlement.as_ref();
    json!({
        "order_id": order.id,
        "listing_title": order.listing.title,
        "order_status": order.status,
        "amount_fen": order.amount_fen,
        "refunded_fen": order.refunded_fen,
        "commission_fen": shares.commission_fen,
        "fee_fen": shares.fee_fen,
        "seller_fen": shares.seller_fen,
        "state": item_state(order, state),
        "settlement": state.as_str(),
        "failure": s.and_then(|s| s.failure.clone()),
        "split_deadline": order.split_deadline,
        "paid_at": s.and_then(|s| s.shared_at.clone()),
        "finished_at": s.and_then(|s| s.finished_at.clone()),
        "ledger": {
            "paid_fen": totals.paid,
            "refunded_fen": totals.refunded,
            "seller_paid_fen": totals.seller_paid,
            "commission_kept_fen": totals.commission_kept,
            "fee_fen": totals.fee,
            "seller_payable_fen": totals.seller_payable,
            "receivable_fen": totals.receivable,
            "held_fen": totals.held(),
            "balances": totals.balances(),
        },
    })
}
