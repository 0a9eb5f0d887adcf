//! Refunds after an order's split (`settlement.md` §2, §3, §5.11), and refunds larger than
//! what the provider still holds frozen.
//!
//! **After the split** a refund happens only by staff decision: the dispute window is over
//! before the split, so no party can ask any more. `POST /admin/v1/orders/{id}/refund
//! {amount_fen?, reason}` (admin) refunds a `completed` order whose split is `paid` — the order
//! goes `refunding` (action `staff_refund_settled`) and back to `completed` for a part, or
//! `refunded` for all of it. The refund's seller part is the one rounding rule applied to the
//! running amounts: the seller's share ([`Shares::of`]) of what was left before the refund minus
//! their share of what is left after it — so parts add up to what one refund of their sum takes,
//! and a refund of everything takes the whole share; the rest is Renji's commission, which gives
//! it back. How the seller's
//! part comes back depends on the receiver the split paid:
//!
//! - WeChat `MERCHANT_ID`: **returned first** (`return_share`, number [`return_no`]`(order,
//!   refund seq)`, the same number and body on every retry, PROCESSING asked again by the job),
//!   ledger `returned` when it succeeded — then the refund. A return the provider refuses
//!   (`BALANCE_NOT_ENOUGH`, `ACCOUNT_ABNORMAL` …) does not stop the refund staff decided: what
//!   was not returned becomes a receivable, as for a personal receiver.
//! - WeChat `PERSONAL_OPENID`: no claw-back exists. The refund is paid from Renji's balance and
//!   the seller's part is recorded as a `receivable` (what the seller owes Renji; recovering it
//!   is an operations decision), with an audit record (`order.refund_receivable`, actor system,
//!   target the order, written with the refund's success: a failed refund leaves nothing owed)
//!   staff see in the audit trail.
//! - Alipay: the refund itself carries `refund_royalty_parameters` naming the seller's account
//!   and the seller's part; ledger `returned` and the refund's `returned_fen` when the refund
//!   succeeds (until then `returned_fen` is unknown: `null`).
//!
//! Ledger rule (each entry `refund:<out_refund_no>`, with the refund's success): `refunded`
//! (the whole refund), `commission` **negative** by the commission's part (Renji gives back its
//! commission of the refunded amount), `provider_fee` **negative** by the fee the provider gives
//! back in proportion ([`super::fees::refund_fee`]: Renji bears the fee of what the order keeps,
//! as before the split), `returned` (Alipay) and `receivable` (what the seller's part did not
//! give back). Every path ends with `Totals::balances()`.
//!
//! **Larger than the unsplit amount.** WeChat refuses a refund of a profit-sharing payment
//! whose sharing is not finished with more than what is unsplit (`RULE_LIMIT`). When the
//! order's split is `paid` (the share arrived, only the rest is still frozen), the refund path
//! unfreezes the rest itself ([`unfreeze_no`], the split job's own number, so the provider sees
//! one request) and refunds at once when the unfreeze finished; while the split is still at
//! work (or the unfreeze is), the refund waits — the order jobs ask again, backing off — rather
//! than failing to staff.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{LedgerEntry, LedgerKind, SettleState, Shares};
use crate::app::App;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::orders::{
    self, commit, payments, rfc3339, Action, Actor, Change, Order, OrderStatus, Refund,
    RefundStatus,
};
use crate::domain::profile::bounded_text;
use crate::error::Error;
use crate::ids::OrderId;
use crate::money::Fen;
use crate::payments::{GatewayError, Provider, RoyaltyBack};
use crate::settlement::{
    return_no, unfreeze_no, Receiver, ReceiverKind, ReturnRequest, ReturnState, SplitState,
    UnfreezeRequest,
};
use crate::store::Write;

/// The description of the unfreeze of an order's rest (the split job sends the same).
pub const UNFREEZE_DESCRIPTION: &str = "解冻剩余资金";
/// The description of a return before a refund.
pub const RETURN_DESCRIPTION: &str = "订单退款，回退分账";

/// How the seller's part of a refund after the split comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeBack {
    /// WeChat `MERCHANT_ID`: returned (回退) before the refund.
    Return,
    /// Alipay: with the refund (`refund_royalty_parameters`).
    Royalty,
    /// WeChat `PERSONAL_OPENID`: cannot be; the seller owes it.
    Receivable,
}

/// A refund after the split (`Refund.after_split`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterSplit {
    /// What of the refund was the seller's share.
    pub seller_part_fen: Fen,
    pub take_back: TakeBack,
    /// The receiver the split paid.
    pub receiver: Receiver,
    /// The split's number (a WeChat return names it).
    pub out_order_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_no: Option<String>,
    /// Returned by the seller's receiver before the refund (WeChat), once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_fen: Option<Fen>,
    /// Why the provider refused the return (the seller's part becomes a receivable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_failure: Option<String>,
}

impl AfterSplit {
    /// What the seller's part did not give back: owed by the seller.
    pub fn receivable(&self) -> Fen {
        let back = match self.take_back {
            TakeBack::Royalty => self.seller_part_fen.get(),
            TakeBack::Return => self.returned_fen.map_or(0, Fen::get),
            TakeBack::Receivable => 0,
        };
        Fen::from_fen((self.seller_part_fen.get() - back).max(0))
    }
}

/// The body of `POST /admin/v1/orders/{id}/refund`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRefundBody {
    /// All that remains when absent (never `null`).
    #[serde(default, deserialize_with = "crate::domain::profile::not_null")]
    pub amount_fen: Option<i64>,
    pub reason: String,
}

/// A checked staff refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffRefund {
    pub amount: Option<Fen>,
    pub reason: String,
}

impl StaffRefundBody {
    /// 422 naming the field: a reason of 1 to 200 characters, an amount a whole number of fen
    /// from 1 (what remains is checked with the order).
    pub fn check(self) -> Result<StaffRefund, Error> {
        let reason = bounded_text(
            "reason",
            &self.reason,
            crate::domain::orders::act::MAX_REASON_CHARS,
        )?;
        let amount = match self.amount_fen {
            None => None,
            Some(fen) if fen < 1 => {
                return Err(Error::invalid(
                    "amount_fen",
                    "must be a whole number of fen from 1",
                ))
            }
            Some(fen) => Some(Fen::from_fen(fen)),
        };
        Ok(StaffRefund { amount, reason })
    }
}

/// Staff refund a settled order, or ask again for a refund the provider failed (a
/// `refund_failed` order: the same amount under a new number; 422 `amount_fen` for another):
/// 409 `invalid_order_state` unless `completed` or `refund_failed`, 409
/// `not_settled` unless its split is `paid` or `expired` (before the split a dispute's decision
/// refunds; an expired split: [`super::resolve`]), 422 `amount_fen` beyond what remains.
/// Answers the order as it is afterwards (`refunding`
/// while a return or the refund is under way; the order jobs finish it).
pub async fn staff_refund(
    app: &App,
    id: &OrderId,
    refund: StaffRefund,
    now: OffsetDateTime,
) -> Result<Order, Error> {
    let order = orders::get(&app.store, id)
        .await?
        .ok_or(Error::NotFound("order"))?;
    // A refund the provider failed is asked again (its plan kept); otherwise a refund of a
    // split order, planned here.
    let retry = order.status == OrderStatus::RefundFailed;
    let action = match retry {
        true => Action::StaffRetryRefund,
        false => Action::StaffRefundSettled,
    };
    let mut change = Change::new(action, Actor::Staff, now).reason(Some(refund.reason.clone()));
    if let Some(amount) = refund.amount {
        change = change.refund(amount);
    }
    let mut next = order.transition(&change, &app.config.orders)?;
    // An expired split moved nothing: the refund takes the seller's share first, planned by the
    // transition (`super::resolve`); a split order's refund is planned here.
    if !retry && !super::resolve::expired(&order) {
        let plan = plan(&order, next.refunds.last())?;
        if let Some(last) = next.refunds.last_mut() {
            last.after_split = Some(plan);
        }
    }
    commit(&app.store, &order, &next, Vec::new()).await?;
    payments::request_refund(app, next, now).await
}

/// What the refunds since an order's split took back (the succeeded ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Refunded to the buyer.
    pub refunded_fen: Fen,
    /// Of it, the seller's part (returned, taken back with the refund, or owed).
    pub seller_part_fen: Fen,
}

/// The sums of the order's succeeded refunds after its split.
pub fn taken_since_split(order: &Order) -> Taken {
    let (refunded, part) = order
        .refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Succeeded)
        .filter_map(|r| {
            r.after_split
                .as_ref()
                .map(|a| (r.amount_fen, a.seller_part_fen))
        })
        .fold((0, 0), |(r, p), (amount, part)| {
            (r + amount.get(), p + part.get())
        });
    Taken {
        refunded_fen: Fen::from_fen(refunded),
        seller_part_fen: Fen::from_fen(part),
    }
}

/// How the seller's part of the refund `refund` of the settled `order` comes back.
fn plan(order: &Order, refund: Option<&Refund>) -> Result<AfterSplit, Error> {
    let not_settled = || Error::Conflict {
        code: "not_settled",
        message: "only an order whose split is paid (or expired) is refunded here; before \
                  the split, a dispute's decision refunds"
            .into(),
    };
    let (Some(settlement), Some(terms), Some(refund)) = (&order.settlement, &order.settle, refund)
    else {
        return Err(not_settled());
    };
    if settlement.state != SettleState::Paid {
        return Err(not_settled());
    }
    let Some(receiver) = settlement.receiver.clone() else {
        return Err(not_settled());
    };
    // The seller's part is the rounding rule on the running amounts — the share of what was
    // left before this refund minus the share of what is left after it — so refunds in parts
    // take back exactly what one refund of their sum would (ten 1-fen refunds are not ten
    // commissions rounded up to 1 fen each).
    let taken = taken_since_split(order);
    let before = settlement.shares.net_fen.get() - taken.refunded_fen.get();
    let after = before - refund.amount_fen.get();
    let share = |net: i64| Shares::of(Fen::from_fen(net), terms).seller_fen.get();
    let left = (settlement.shares.seller_fen.get() - taken.seller_part_fen.get()).max(0);
    let part = (share(before) - share(after)).clamp(0, left);
    let take_back = match receiver.kind {
        ReceiverKind::WechatMerchant => TakeBack::Return,
        ReceiverKind::WechatOpenid => TakeBack::Receivable,
        ReceiverKind::AlipayUserId | ReceiverKind::AlipayLoginName | ReceiverKind::AlipayOpenId => {
            TakeBack::Royalty
        }
    };
    Ok(AfterSplit {
        seller_part_fen: Fen::from_fen(part),
        take_back,
        receiver,
        out_order_no: settlement.out_order_no.clone(),
        return_no: (take_back == TakeBack::Return && part > 0)
            .then(|| return_no(order.id.as_str(), refund.seq)),
        returned_fen: None,
        return_failure: None,
    })
}

/// The audit record (`order.refund_receivable`, actor system, in the order's list) of a refund
/// whose seller part is owed by the seller: written with the refund's success, beside the
/// `receivable` entry (a refund that fails leaves nothing owed).
fn receivable_audit(
    order: &Order,
    refund: &Refund,
    owed: Fen,
    why: &str,
    now: OffsetDateTime,
    audit_keep: std::time::Duration,
) -> Result<Vec<Write>, Error> {
    let target = Target::new("order", order.id.as_str())
        .ok_or_else(|| Error::Internal("an order id that is not an audit target".into()))?;
    let record = AuditRecord::by(
        audit::Actor::System,
        now,
        "order.refund_receivable",
        target,
        Some(format!(
            "the seller owes {} fen of refund {} ({why})",
            owed.get(),
            refund.out_refund_no
        )),
        "ok",
    );
    audit::writes(&record, audit_keep)
}

/// What the refund path does next with a refund after the split.
pub enum Prepared {
    /// Ask the provider for the refund (the order as it is now; what an Alipay refund takes
    /// back of the royalty).
    Refund(Order, Option<RoyaltyBack>),
    /// The return is under way: the order jobs ask again.
    Wait(Order),
}

/// Before a pending refund after the split is asked: a WeChat merchant receiver returns the
/// seller's part first (recorded on the order with the `returned` entry); an Alipay refund
/// names it.
pub async fn prepare(app: &App, order: Order, now: OffsetDateTime) -> Result<Prepared, Error> {
    let Some(refund) = order.current_refund().cloned() else {
        return Ok(Prepared::Refund(order, None));
    };
    let Some(after) = refund.after_split.clone() else {
        return Ok(Prepared::Refund(order, None));
    };
    match after.take_back {
        TakeBack::Receivable => Ok(Prepared::Refund(order, None)),
        TakeBack::Royalty => {
            let back = (after.seller_part_fen.get() > 0).then(|| RoyaltyBack {
                from: after.receiver.clone(),
                amount: after.seller_part_fen,
            });
            Ok(Prepared::Refund(order, back))
        }
        TakeBack::Return => {
            let Some(number) = after.return_no.clone() else {
                return Ok(Prepared::Refund(order, None));
            };
            if after.returned_fen.is_some() || after.return_failure.is_some() {
                return Ok(Prepared::Refund(order, None));
            }
            let port = app.payments.settlement(Provider::Wechat)?;
            let request = ReturnRequest {
                out_order_no: after.out_order_no.clone(),
                out_return_no: number.clone(),
                from: after.receiver.clone(),
                amount: after.seller_part_fen,
                description: RETURN_DESCRIPTION.into(),
            };
            let state = match port.return_share(&request).await {
                Ok(answer) => answer.state,
                Err(GatewayError::Refused { code, message }) => ReturnState::Failed {
                    reason: format!("{code} {message}"),
                },
                Err(e) => {
                    tracing::warn!(order_id = %order.id, error = %e, "a return before a refund: provider unreachable, asked again later");
                    ReturnState::Processing
                }
            };
            let mut next = order.clone();
            next.version += 1;
            let mut writes = Vec::new();
            let last = next
                .refunds
                .last_mut()
                .and_then(|r| r.after_split.as_mut())
                .ok_or_else(|| Error::Internal("a refund after the split lost its plan".into()))?;
            match &state {
                ReturnState::Processing => {
                    // The refund waits: the job asks again with the same number.
                    payments::apply_refund(
                        app,
                        &order.id,
                        Provider::Wechat,
                        &refund.out_refund_no,
                        crate::payments::RefundState::NotFound,
                        crate::domain::orders::events::EventKind::Refund,
                        now,
                    )
                    .await?;
                    let now_order = orders::get(&app.store, &order.id)
                        .await?
                        .ok_or(Error::NotFound("order"))?;
                    return Ok(Prepared::Wait(now_order));
                }
                ReturnState::Success => {
                    last.returned_fen = Some(after.seller_part_fen);
                    let entry = LedgerEntry::new(
                        &order.id,
                        LedgerKind::Returned,
                        number.as_str(),
                        after.seller_part_fen,
                        &rfc3339(now),
                    );
                    writes.push(entry.write()?);
                }
                ReturnState::Failed { reason } => {
                    tracing::error!(order_id = %order.id, "a return before a refund failed: the seller's part becomes a receivable");
                    last.return_failure = Some(reason.clone());
                }
            }
            next.updated_at = rfc3339(now);
            commit(&app.store, &order, &next, writes).await?;
            Ok(Prepared::Refund(next, None))
        }
    }
}

/// WeChat refused a refund with `RULE_LIMIT` (more than is unsplit): when the order's split is
/// `paid`, unfreezes the rest (the split job's number) and answers whether it has finished (the
/// refund can be asked again now); `false`: wait.
pub async fn unfreeze_for_refund(app: &App, order: &Order) -> Result<bool, Error> {
    let (Some(settlement), Some(payment)) = (&order.settlement, &order.payment) else {
        return Ok(false);
    };
    if settlement.state != SettleState::Paid || settlement.provider != Provider::Wechat {
        // The split is still at work: the refund waits for it.
        return Ok(false);
    }
    let port = app.payments.settlement(Provider::Wechat)?;
    let request = UnfreezeRequest {
        order_no: order.id.to_string(),
        transaction_id: payment.transaction_id.clone(),
        out_order_no: unfreeze_no(order.id.as_str()),
        description: UNFREEZE_DESCRIPTION.into(),
    };
    match port.unfreeze(&request).await {
        Ok(answer) if answer.state == SplitState::Finished => return Ok(true),
        Ok(_) => {}
        // Nothing left to unfreeze, or asked before: its state says.
        Err(GatewayError::Refused { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let state = port
        .query_split(&payment.transaction_id, &request.out_order_no)
        .await?;
    Ok(state.is_some_and(|a| a.state == SplitState::Finished))
}

/// The entries a refund after the split adds to its success's transaction,
/// beside `refunded`: the commission's part given back, the provider's fee it gives back
/// ([`super::fees::refund_fee`]), the royalty returned with an Alipay refund (also recorded on
/// the refund of `next`, the order after the success, as `returned_fen`), and what the seller
/// owes (with its audit record).
pub fn success_writes(
    app: &App,
    order: &Order,
    refund: &Refund,
    next: &mut Order,
    now: OffsetDateTime,
) -> Result<Vec<Write>, Error> {
    let Some(after) = &refund.after_split else {
        return Ok(Vec::new());
    };
    let at = rfc3339(now);
    let reference = format!("refund:{}", refund.out_refund_no);
    let mut writes = Vec::new();
    writes.extend(super::fees::refund_fee_entry(order, refund, &at)?);
    let commission_part = refund.amount_fen.get() - after.seller_part_fen.get();
    if commission_part != 0 {
        writes.push(
            LedgerEntry::new(
                &order.id,
                LedgerKind::Commission,
                reference.as_str(),
                Fen::from_fen(-commission_part),
                &at,
            )
            .write()?,
        );
    }
    if after.take_back == TakeBack::Royalty && after.seller_part_fen.get() > 0 {
        writes.push(
            LedgerEntry::new(
                &order.id,
                LedgerKind::Returned,
                reference.as_str(),
                after.seller_part_fen,
                &at,
            )
            .write()?,
        );
        // Taken back with the refund itself: known now, as a WeChat return's is once it ran.
        let shown = next
            .refunds
            .iter_mut()
            .find(|r| r.out_refund_no == refund.out_refund_no)
            .and_then(|r| r.after_split.as_mut());
        if let Some(shown) = shown {
            shown.returned_fen = Some(after.seller_part_fen);
        }
    }
    let owed = after.receivable();
    if owed.get() > 0 {
        writes.push(
            LedgerEntry::new(
                &order.id,
                LedgerKind::Receivable,
                reference.as_str(),
                owed,
                &at,
            )
            .write()?,
        );
        let why = match after.take_back {
            TakeBack::Return => "the return was refused",
            _ => "a personal receiver: no claw-back",
        };
        writes.extend(receivable_audit(
            order,
            refund,
            owed,
            why,
            now,
            app.config.audit_keep,
        )?);
    }
    Ok(writes)
}

/// The order as staff see it after a refund: the parties' view, its settlement, and how each
/// refund after the split came back (or, after an expired split, what of it was the seller's).
pub fn staff_view(order: &Order) -> Value {
    let mut view = order.view();
    view["settlement"] = json!(order.settlement.as_ref().map(|s| json!({
        "state": s.state,
        "provider": s.provider,
        "shares": s.shares,
    })));
    if let Some(list) = view["refunds"].as_array_mut() {
        for (shown, refund) in list.iter_mut().zip(&order.refunds) {
            if let Some(after) = &refund.after_split {
                shown["after_split"] = json!({
                    "seller_part_fen": after.seller_part_fen,
                    "take_back": after.take_back,
                    "returned_fen": after.returned_fen,
                    "return_failure": after.return_failure,
                    "receivable_fen": after.receivable(),
                });
            }
            if let Some(after) = &refund.after_expiry {
                shown["after_expiry"] = json!({ "seller_part_fen": after.seller_part_fen });
            }
        }
    }
    view
}
