//! Staff resolve an `expired` split (`settlement.md` §2, §5.9): the split deadline passed with
//! the seller's share unsplit, so the provider released the frozen funds to Renji's merchant
//! account. Renji may not pay the seller from its balance (二清), so the legal end of that money
//! is the buyer: staff refund it (`POST /admin/v1/orders/{id}/refund`, admin, audited at the
//! request edge like every staff action — or a disputed order's refund decision).
//!
//! - **At expiry** ([`super::job::expire`]) the split's shares are set to what the seller is owed
//!   then, and its entries written (`commission`, `provider_fee`, `seller_payable`, ref
//!   `expired:<out_order_no>`: all of them if no split was ever asked, else what refunds since
//!   the failed split changed): Renji's commission is its own once the funds are released, so
//!   what the ledger holds (`held`) is exactly the seller's share — what staff must resolve.
//! - **Each refund of an expired split** takes the seller's share first ([`plan`], on the refund
//!   as [`AfterExpiry`] when the refund is asked): nothing was split, so there is no return, no
//!   royalty back and no receivable; Renji gives back its commission only for what a refund takes
//!   beyond the seller's share (it bears the provider's fee of what the order keeps, as after a
//!   split).
//! - **When the refund succeeds** ([`success`], in its transaction): `seller_payable` lowered by
//!   the seller's part, `commission` by the rest, `provider_fee` by the fee the provider gives
//!   back ([`super::fees::refund_fee`]); the settlement's shares lowered alike. Once the
//!   whole seller share went back the ledger balances (`held == 0`) and the split is `nothing` (no
//!   new state: as for an order refunded before its split, nothing is left to split and nothing
//!   was paid out; the `failure` keeps `deadline_passed`), and its watch leaves staff's expired
//!   list. A refund of less keeps it `expired` (and listed) with what is still held.
//! - **A failed split refunded** (not expired: `settle_failed` after a split was asked, so its
//!   entries are on the ledger though nothing moved; a dispute's refund is an ordinary one then):
//!   [`failed_split_success`] brings the entries to the shares of what is left with the refund's
//!   success — `nothing` once all is back — so the ledger balances without a later attempt.
//! - **Audited**: staff's request at the edge (like every staff action), and a system record
//!   `settlement.resolve` in the refund's success ([`success`]) naming the seller's part and
//!   whether it resolved the split (a refund that fails resolves nothing).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{LedgerEntry, LedgerKind, OrderSettlement, SettleState, Shares};
use crate::app::App;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::orders::{rfc3339, Order, Refund};
use crate::error::Error;
use crate::money::Fen;
use crate::store::Write;

/// A refund of an order whose split expired (`Refund.after_expiry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterExpiry {
    /// What of the refund was the seller's share (the rest was Renji's commission).
    pub seller_part_fen: Fen,
}

/// Whether `order`'s split expired unsplit.
pub fn expired(order: &Order) -> bool {
    order
        .settlement
        .as_ref()
        .is_some_and(|s| s.state == SettleState::Expired)
}

/// The plan of a refund of `amount` of `order`, when its split expired: the seller's share
/// first.
pub fn plan(order: &Order, amount: Fen) -> Option<AfterExpiry> {
    let s = order.settlement.as_ref().filter(|_| expired(order))?;
    let part = amount.get().clamp(0, s.shares.seller_fen.get().max(0));
    Some(AfterExpiry {
        seller_part_fen: Fen::from_fen(part),
    })
}

/// The expiry of `settlement` (its next version, `expired`): its shares set to what the seller is
/// owed now ([`super::owed_net`]: a failed split's order may have been refunded since, by a
/// dispute's decision), and the entries that bring the ledger to them — all of them when no split
/// was ever asked, else the difference from the split's own entries (none without refunds since),
/// ref `expired:<out_order_no>`.
pub fn expiry_entries(
    order: &Order,
    settlement: &mut OrderSettlement,
    at: &str,
) -> Result<Vec<Write>, Error> {
    let Some(terms) = order.settle else {
        return Ok(Vec::new());
    };
    let owed = Shares::of(super::owed_net(order), &terms);
    let prior = match settlement.requested_at {
        Some(_) => settlement.shares,
        None => Shares::of(Fen::from_fen(0), &terms),
    };
    settlement.shares = owed;
    let reference = format!("expired:{}", settlement.out_order_no);
    toward(order, &prior, &owed, &reference, at)
}

/// The entries that bring a split's `commission`, `provider_fee` and `seller_payable` from
/// `prior` to `owed` (only those that change).
fn toward(
    order: &Order,
    prior: &Shares,
    owed: &Shares,
    reference: &str,
    at: &str,
) -> Result<Vec<Write>, Error> {
    [
        (
            LedgerKind::Commission,
            owed.commission_fen,
            prior.commission_fen,
        ),
        (LedgerKind::ProviderFee, owed.fee_fen, prior.fee_fen),
        (LedgerKind::SellerPayable, owed.seller_fen, prior.seller_fen),
    ]
    .into_iter()
    .filter(|(_, now, before)| now != before)
    .map(|(kind, now, before)| {
        let change = Fen::from_fen(now.get() - before.get());
        LedgerEntry::new(&order.id, kind, reference, change, at).write()
    })
    .collect()
}

/// A refund succeeded on an order whose split failed after it was asked (`settle_failed`: the
/// split's entries are on the ledger, nothing moved): in its transaction, the entries brought to
/// the shares of what is left (ref `refund:<out_refund_no>`) and the settlement of `next` (the
/// order after the success) with them — `nothing`, its watch removed, once all is refunded. A
/// later attempt of the split starts from these shares. Nothing for another refund.
pub fn failed_split_success(
    refund: &Refund,
    next: &mut Order,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    let Some(terms) = next.settle else {
        return Ok(Vec::new());
    };
    let refundable = next.refundable();
    let Some(s) = next.settlement.as_mut().filter(|s| {
        s.state == SettleState::SettleFailed
            && s.requested_at.is_some()
            && refund.after_expiry.is_none()
            && refund.after_split.is_none()
    }) else {
        return Ok(Vec::new());
    };
    let at = rfc3339(now);
    let owed = Shares::of(refundable, &terms);
    let prior = std::mem::replace(&mut s.shares, owed);
    let mut writes = Vec::new();
    if owed.net_fen.get() == 0 {
        s.state = SettleState::Nothing;
        s.finished_at = Some(at.clone());
        writes.push(super::watch::done_write(&next.id));
    }
    let reference = format!("refund:{}", refund.out_refund_no);
    writes.extend(toward(next, &prior, &owed, &reference, &at)?);
    Ok(writes)
}

/// What an expired (or resolved) split still holds for the seller, as the seller's earnings show
/// it: its shares, less the seller's part of a refund of it under way (or failed, which staff
/// retry).
pub fn owed_shares(order: &Order, settlement: &OrderSettlement) -> Shares {
    use crate::domain::orders::OrderStatus;
    let going_back = match order.status {
        OrderStatus::Refunding | OrderStatus::RefundFailed => order
            .refunds
            .last()
            .and_then(|r| r.after_expiry.as_ref())
            .map_or(0, |a| a.seller_part_fen.get()),
        _ => 0,
    };
    let s = settlement.shares;
    Shares {
        seller_fen: Fen::from_fen((s.seller_fen.get() - going_back).max(0)),
        ..s
    }
}

/// The audit record (`settlement.resolve`, actor system, target the order) of a refund of an
/// expired split that succeeded, for the success's own transaction: what of the seller's share
/// went back, and whether it resolved the split (a refund that fails resolves nothing).
fn resolved_audit(
    order: &Order,
    refund: &Refund,
    after: &AfterExpiry,
    held: i64,
    now: OffsetDateTime,
    keep: std::time::Duration,
) -> Result<Vec<Write>, Error> {
    let part = after.seller_part_fen.get();
    let target = Target::new("order", order.id.as_str())
        .ok_or_else(|| Error::Internal("an order id that is not an audit target".into()))?;
    let record = AuditRecord::by(
        audit::Actor::System,
        now,
        "settlement.resolve",
        target,
        Some(format!(
            "refund {} of {} fen to the buyer: {part} fen of the expired split's seller share \
             ({held} fen held){}",
            refund.out_refund_no,
            refund.amount_fen.get(),
            match part >= held {
                true => "; resolves it",
                false => "",
            }
        )),
        "ok",
    );
    audit::writes(&record, keep)
}

/// The refund `refund` of `order` (its split expired) succeeded: the entries for its
/// transaction, and the settlement of `next` (the order after the success) lowered by it —
/// `nothing` once the seller's whole share went back. Nothing for another refund.
pub fn success(
    app: &App,
    order: &Order,
    refund: &Refund,
    next: &mut Order,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    let (Some(after), Some(s)) = (&refund.after_expiry, next.settlement.as_mut()) else {
        return Ok(Vec::new());
    };
    let at = rfc3339(now);
    let reference = format!("refund:{}", refund.out_refund_no);
    let seller_part = after.seller_part_fen.get();
    let commission_part = refund.amount_fen.get() - seller_part;
    let mut writes = resolved_audit(
        order,
        refund,
        after,
        s.shares.seller_fen.get(),
        now,
        app.config.audit_keep,
    )?;
    // The provider gives its fee back in proportion, as on any refund.
    let fee_back = match order.settle {
        Some(terms) => super::fees::refund_fee(order, &terms, refund),
        None => 0,
    };
    writes.extend(super::fees::refund_fee_entry(order, refund, &at)?);
    for (kind, amount) in [
        (LedgerKind::SellerPayable, seller_part),
        (LedgerKind::Commission, commission_part),
    ] {
        if amount != 0 {
            let entry = LedgerEntry::new(
                &order.id,
                kind,
                reference.as_str(),
                Fen::from_fen(-amount),
                &at,
            );
            writes.push(entry.write()?);
        }
    }
    let was = s.shares;
    s.shares = Shares {
        net_fen: Fen::from_fen(was.net_fen.get() - refund.amount_fen.get()),
        commission_fen: Fen::from_fen(was.commission_fen.get() - commission_part),
        fee_fen: Fen::from_fen(was.fee_fen.get() + fee_back),
        seller_fen: Fen::from_fen(was.seller_fen.get() - seller_part),
    };
    if s.state == SettleState::Expired && s.shares.seller_fen.get() <= 0 {
        s.state = SettleState::Nothing;
        s.finished_at = Some(at);
        writes.push(super::watch::done_write(&order.id));
        tracing::info!(order_id = %order.id, "an expired split was resolved: the seller's share went back to the buyer");
    }
    Ok(writes)
}
