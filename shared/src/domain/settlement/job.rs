//! The order jobs' `settle` work: a `completed` order past its dispute window (and the settle
//! delay) whose settlement is not final. Called by `orders::jobs` with the order read
//! consistently; every change is written with the order's version condition, and every provider
//! call carries a number derived from the order, so two runs at once ask the provider once.
//!
//! **Write, then call.** The split is first written on the order (`processing`, its attempt,
//! number, receiver and shares, with the ledger's `commission`, `provider_fee` and
//! `seller_payable` entries, ref `split:<out_order_no>`) in the order's conditional write; only
//! the run that won that write asks the provider, with a body built from the stored order alone
//! (a retry sends the identical request). Then:
//! - PROCESSING: asked again later with backoff (`query_split`; a number the provider does not
//!   know — our request never arrived — is sent again);
//! - the seller's share SUCCESS: `seller_paid` entry and the unfreeze number written, then the
//!   rest unfrozen to Renji (`unfreeze_no`), polled until finished → `paid`;
//! - CLOSED (or a refusal naming the receiver): `settle_failed` with the provider's reason, an
//!   order event, an audit record and the seller's subscribe message (`settlement_failed`, once
//!   per failure); the share stays frozen. The job looks again every
//!   [`RECHECK_SECS`]: once the seller's payout account differs from the one that failed, a new
//!   attempt (a new number, [`crate::settlement::split_no_attempt`]) — before the deadline only;
//! - "too early / not settled", or the provider unreachable: asked again later, not a failure.
//!
//! Money is never "paid later from the balance": a failed or expired split stays held (the
//! ledger's [`Totals::held`](super::Totals::held)) for staff to decide.

use time::OffsetDateTime;

use super::ledger::{LedgerEntry, LedgerKind};
use super::{watch, OrderSettlement, SettleState, SettleTerms, Shares};
use crate::app::App;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::orders::events::{EventKind, Outcome, ProviderEvent};
use crate::domain::orders::{commit, epoch, rfc3339, Order};
use crate::domain::payouts::bound_at;
use crate::domain::subscriptions;
use crate::error::Error;
use crate::ids::UserId;
use crate::money::Fen;
use crate::payments::{GatewayError, Provider};
use crate::settlement::{
    self as port, Receiver, SettleMode, Share, ShareResult, SplitAnswer, SplitRequest, SplitState,
    UnfreezeRequest,
};
use crate::store::Write;

/// The reason of a split that could not be asked: the seller has no payout account at the
/// payment's provider.
pub const NO_PAYOUT_ACCOUNT: &str = "no_payout_account";
/// The reason of an order that passed its split deadline unsplit.
pub const DEADLINE_PASSED: &str = "deadline_passed";
/// How often a failed split's seller account is looked at again.
pub const RECHECK_SECS: i64 = 3600;
/// The longest wait between two questions about a split in progress.
const MAX_BACKOFF_SECS: i64 = 6 * 3600;

/// The wait before the `checks`-th question: 1 minute, doubling, at most 6 hours.
fn backoff(checks: u32) -> i64 {
    (60_i64 << checks.min(10)).min(MAX_BACKOFF_SECS)
}

/// Acts on one due order; `Ok(false)` when there was nothing to do.
pub async fn settle(app: &App, order: &Order, now: OffsetDateTime) -> Result<bool, Error> {
    let Some(terms) = order.settle else {
        return Ok(false);
    };
    let Some(payment) = order.payment.as_ref() else {
        return Ok(false);
    };
    if terms.mode != SettleMode::Ordinary {
        tracing::error!(order_id = %order.id, "no settlement adapter for the platform mode");
        return Ok(false);
    }
    let provider = payment.channel.provider();
    let past_deadline = past_deadline(order, now);
    match order.settlement.as_ref() {
        Some(s) if s.state.is_final() => Ok(false),
        Some(s) if s.state == SettleState::Processing => poll(app, order, s, now).await,
        _ if past_deadline => expire(app, order, now).await.map(|()| true),
        None => {
            let receiver = account_for(app, &order.seller_id, provider).await?;
            begin(app, order, provider, 1, receiver, now).await
        }
        Some(s) if s.state == SettleState::Pending => {
            let receiver = account_for(app, &order.seller_id, provider).await?;
            begin(app, order, provider, s.attempt.max(1), receiver, now).await
        }
        Some(s) => retry_failed(app, order, s, provider, now).await,
    }
}

/// Whether the order's split deadline has passed: no new request to the provider after it.
fn past_deadline(order: &Order, now: OffsetDateTime) -> bool {
    order
        .split_deadline
        .as_deref()
        .is_some_and(|d| epoch(d) <= now.unix_timestamp())
}

/// The seller's receiver at `provider`, as the split names it (no name: the order keeps no
/// personal data, and neither provider needs it to split).
async fn account_for(
    app: &App,
    seller: &UserId,
    provider: Provider,
) -> Result<Option<Receiver>, Error> {
    Ok(crate::domain::payouts::account_for(app, seller, provider)
        .await?
        .map(|r| Receiver { name: None, ..r }))
}

/// The next version of `order` with `settlement`, due again after `wait` seconds.
fn next_with(order: &Order, settlement: OrderSettlement, now: OffsetDateTime, wait: i64) -> Order {
    let mut next = order.clone();
    next.settlement = Some(settlement);
    next.updated_at = rfc3339(now);
    next.version = order.version + 1;
    next.due_at = next
        .due_kind()
        .map(|_| now.unix_timestamp().saturating_add(wait));
    next
}

/// Starts attempt `attempt` of the split (writes it, then asks the provider).
async fn begin(
    app: &App,
    order: &Order,
    provider: Provider,
    attempt: u32,
    receiver: Option<Receiver>,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let Some(terms) = order.settle else {
        return Ok(false);
    };
    let shares = Shares::of(order.refundable(), &terms);
    let at = rfc3339(now);
    let out_order_no = port::split_no_attempt(order.id.as_str(), attempt);
    let mut settlement = OrderSettlement {
        state: SettleState::Processing,
        provider,
        attempt,
        out_order_no: out_order_no.clone(),
        receiver: receiver.clone(),
        shares,
        failure: None,
        requested_at: None,
        shared_at: None,
        unfreeze_no: None,
        finished_at: None,
        checks: 0,
    };
    if shares.net_fen.get() == 0 {
        settlement.state = SettleState::Nothing;
        settlement.finished_at = Some(at);
        let next = next_with(order, settlement, now, 0);
        commit(&app.store, order, &next, vec![watch::done_write(&order.id)]).await?;
        return Ok(true);
    }
    if receiver.is_none() {
        return fail(app, order, settlement, NO_PAYOUT_ACCOUNT, now).await;
    }
    settlement.requested_at = Some(at.clone());
    let mut writes = split_entries(order, order.settlement.as_ref(), &settlement, &at)?;
    // Nothing for the seller (a commission of 100 %): no split, only the rest unfrozen.
    let unfreeze_only = shares.seller_fen.get() == 0;
    if unfreeze_only {
        settlement.shared_at = Some(at.clone());
        settlement.unfreeze_no = Some(port::unfreeze_no(order.id.as_str()));
    }
    let next = next_with(order, settlement, now, backoff(0));
    commit(&app.store, order, &next, std::mem::take(&mut writes)).await?;
    // Only the run that wrote the split asks for it.
    let adapter = app.payments.settlement(provider)?;
    if unfreeze_only {
        let answer = adapter.unfreeze(&unfreeze_request(&next)?).await;
        return after_unfreeze(app, &next, answer, now).await;
    }
    let answer = adapter.split(&split_request(&next)?).await;
    after_split(app, &next, answer, now).await
}

/// The ledger entries of a split asked for: what it changes of the commission, the fee and the
/// seller's payable against the split asked before it (the first attempt, or one after a split
/// never asked: all of them; a retry of the same amounts: none), ref `split:<out_order_no>`.
/// Each attempt's entries bring the split's totals to its shares, so the last attempt asked
/// (on the order: `before`) is what the ledger holds — no read of the ledger needed.
fn split_entries(
    order: &Order,
    before: Option<&OrderSettlement>,
    settlement: &OrderSettlement,
    at: &str,
) -> Result<Vec<Write>, Error> {
    let prior = before
        .filter(|b| b.requested_at.is_some())
        .map(|b| b.shares)
        .unwrap_or(Shares::of(
            Fen::from_fen(0),
            &order.settle.unwrap_or(SettleTerms {
                mode: SettleMode::Ordinary,
                commission_bps: 0,
                fee_bps: 0,
            }),
        ));
    let s = &settlement.shares;
    let first = prior.net_fen.get() == 0;
    let reference = format!("split:{}", settlement.out_order_no);
    let mut writes = Vec::new();
    for (kind, amount) in [
        (
            LedgerKind::Commission,
            s.commission_fen.get() - prior.commission_fen.get(),
        ),
        (
            LedgerKind::ProviderFee,
            s.fee_fen.get() - prior.fee_fen.get(),
        ),
        (
            LedgerKind::SellerPayable,
            s.seller_fen.get() - prior.seller_fen.get(),
        ),
    ] {
        if amount != 0 || first {
            writes.push(
                LedgerEntry::new(&order.id, kind, &reference, Fen::from_fen(amount), at).write()?,
            );
        }
    }
    Ok(writes)
}

/// The split of the stored order (identical on every retry).
fn split_request(order: &Order) -> Result<SplitRequest, Error> {
    let (s, payment) = parts(order)?;
    let receiver = s
        .receiver
        .clone()
        .ok_or_else(|| Error::Internal("a split without a receiver".into()))?;
    Ok(SplitRequest {
        order_no: order.id.to_string(),
        transaction_id: payment.transaction_id.clone(),
        out_order_no: s.out_order_no.clone(),
        shares: vec![Share {
            receiver,
            amount: s.shares.seller_fen,
            description: format!("Renji order {}", order.id),
        }],
        finish: false,
    })
}

fn unfreeze_request(order: &Order) -> Result<UnfreezeRequest, Error> {
    let (s, payment) = parts(order)?;
    Ok(UnfreezeRequest {
        order_no: order.id.to_string(),
        transaction_id: payment.transaction_id.clone(),
        out_order_no: s
            .unfreeze_no
            .clone()
            .unwrap_or_else(|| port::unfreeze_no(order.id.as_str())),
        description: format!("Renji order {} commission", order.id),
    })
}

fn parts(order: &Order) -> Result<(&OrderSettlement, &crate::domain::orders::OrderPayment), Error> {
    match (&order.settlement, &order.payment) {
        (Some(s), Some(p)) => Ok((s, p)),
        _ => Err(Error::Internal("a split of an unpaid order".into())),
    }
}

/// A split in progress: its share, then the unfreeze of the rest. Asking about it is a read;
/// a number the provider does not know (our request never arrived, or was refused "too early")
/// is sent again — by the one run that wins the order's write first.
async fn poll(
    app: &App,
    order: &Order,
    s: &OrderSettlement,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let adapter = app.payments.settlement(s.provider)?;
    let (_, payment) = parts(order)?;
    let unfreezing = s.unfreeze_no.is_some();
    let number = s.unfreeze_no.as_deref().unwrap_or(&s.out_order_no);
    let known = adapter.query_split(&payment.transaction_id, number).await;
    let answer = match known {
        Ok(Some(answer)) => Ok(answer),
        Err(e) => Err(e),
        // Past the deadline no split is asked: one that never reached the provider expires (an
        // unfreeze is still asked: the share has arrived).
        Ok(None) if !unfreezing && past_deadline(order, now) => {
            return expire(app, order, now).await.map(|()| true)
        }
        Ok(None) => {
            let mut again = s.clone();
            again.checks += 1;
            let next = next_with(order, again, now, backoff(s.checks + 1));
            commit(&app.store, order, &next, Vec::new()).await?;
            let answer = match unfreezing {
                true => adapter.unfreeze(&unfreeze_request(&next)?).await,
                false => adapter.split(&split_request(&next)?).await,
            };
            return match unfreezing {
                true => after_unfreeze(app, &next, answer, now).await,
                false => after_split(app, &next, answer, now).await,
            };
        }
    };
    match unfreezing {
        true => after_unfreeze(app, order, answer, now).await,
        false => after_split(app, order, answer, now).await,
    }
}

/// A refusal that says "not yet" (the funds not settled, the order still processing at the
/// provider, a rate limit): asked again later.
fn not_yet(code: &str, message: &str) -> bool {
    [
        "FREQUENCY_LIMITED",
        "SYSTEM_ERROR",
        "ACQ.SYSTEM_ERROR",
        "RATELIMIT_EXCEED",
    ]
    .contains(&code)
        || message.contains("处理中")
        || message.contains("稍后")
        || message.contains("not settled")
}

/// A refusal about the seller's receiver: the seller must fix the account.
fn receiver_refused(code: &str) -> bool {
    ["RECEIVER", "RELATION", "ACCOUNT"]
        .iter()
        .any(|w| code.to_ascii_uppercase().contains(w))
}

async fn after_split(
    app: &App,
    order: &Order,
    answer: Result<SplitAnswer, GatewayError>,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let (s, _) = parts(order)?;
    let s = s.clone();
    let answer = match answer {
        Ok(a) => a,
        Err(GatewayError::Refused { code, .. }) if receiver_refused(&code) => {
            return fail(app, order, s, &code, now).await;
        }
        Err(e) => return later(app, order, s, EventKind::Split, &e, now).await,
    };
    let account = s.receiver.as_ref().map(|r| r.account.as_str());
    let line = answer
        .shares
        .iter()
        .find(|l| Some(l.account.as_str()) == account)
        .or(answer.shares.first());
    match line.map(|l| &l.result) {
        Some(ShareResult::Success) => shared(app, order, s, now).await,
        Some(ShareResult::Closed { reason }) => {
            let reason = reason.clone();
            fail(app, order, s, &reason, now).await
        }
        _ if answer.state == SplitState::Finished && line.is_none() => {
            // Finished with no line for the seller: not what we asked; staff look at it.
            let e = GatewayError::Unavailable("a finished split without the seller's line".into());
            later(app, order, s, EventKind::Split, &e, now).await
        }
        _ => pending(app, order, s, now).await,
    }
}

/// Not final yet: asked again after the backoff.
async fn pending(
    app: &App,
    order: &Order,
    mut s: OrderSettlement,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    s.checks += 1;
    let wait = backoff(s.checks);
    let next = next_with(order, s, now, wait);
    commit(&app.store, order, &next, Vec::new()).await?;
    Ok(true)
}

/// The provider could not answer, or refused for now: recorded, asked again later.
async fn later(
    app: &App,
    order: &Order,
    mut s: OrderSettlement,
    kind: EventKind,
    e: &GatewayError,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let refused = matches!(e, GatewayError::Refused { code, message } if !not_yet(code, message));
    if refused && s.shared_at.is_none() && past_deadline(order, now) {
        // Refused, and no time left to try again: expired, for staff.
        let event = ProviderEvent::new(s.provider, kind, Outcome::Rejected, now, e.to_string())
            .order(&order.id);
        crate::domain::orders::events::record(&app.store, event, now).await;
        return expire(app, order, now).await.map(|()| true);
    }
    let outcome = match e {
        GatewayError::Refused { code, message } if !not_yet(code, message) => {
            tracing::error!(order_id = %order.id, error = %e, "the provider refused a split");
            Outcome::Rejected
        }
        _ => Outcome::Failed,
    };
    let event = ProviderEvent::new(s.provider, kind, outcome, now, e.to_string()).order(&order.id);
    s.checks += 1;
    let wait = backoff(s.checks);
    let next = next_with(order, s, now, wait);
    commit(&app.store, order, &next, vec![event.write(now)?]).await?;
    Ok(true)
}

/// The seller's share arrived: `seller_paid`, then the rest unfrozen to Renji.
async fn shared(
    app: &App,
    order: &Order,
    mut s: OrderSettlement,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let at = rfc3339(now);
    let entry = LedgerEntry::new(
        &order.id,
        LedgerKind::SellerPaid,
        format!("split:{}", s.out_order_no),
        s.shares.seller_fen,
        &at,
    );
    let event = ProviderEvent::new(
        s.provider,
        EventKind::Split,
        Outcome::Applied,
        now,
        "share SUCCESS",
    )
    .order(&order.id)
    .amount(s.shares.seller_fen);
    s.shared_at = Some(at);
    s.unfreeze_no = Some(port::unfreeze_no(order.id.as_str()));
    s.checks = 0;
    let next = next_with(order, s.clone(), now, backoff(0));
    commit(
        &app.store,
        order,
        &next,
        vec![entry.write()?, event.write(now)?],
    )
    .await?;
    let answer = app
        .payments
        .settlement(s.provider)?
        .unfreeze(&unfreeze_request(&next)?)
        .await;
    after_unfreeze(app, &next, answer, now).await
}

async fn after_unfreeze(
    app: &App,
    order: &Order,
    answer: Result<SplitAnswer, GatewayError>,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let (s, _) = parts(order)?;
    let mut s = s.clone();
    match answer {
        Ok(a) if a.state == SplitState::Finished => {}
        // Nothing left to unfreeze: the rest is Renji's already.
        Err(GatewayError::Refused { code, .. }) if code == "NOT_ENOUGH" => {}
        Ok(_) => return pending(app, order, s, now).await,
        Err(e) => return later(app, order, s, EventKind::Split, &e, now).await,
    }
    s.state = SettleState::Paid;
    s.finished_at = Some(rfc3339(now));
    let next = next_with(order, s, now, 0);
    commit(&app.store, order, &next, vec![watch::done_write(&order.id)]).await?;
    Ok(true)
}

/// The split failed at the seller's receiver (or could not be asked): `settle_failed`, the
/// seller told by a subscribe message (`settlement_failed`, in the outbox with this write), the
/// order's event and their earnings, an audit record; looked at again every [`RECHECK_SECS`].
async fn fail(
    app: &App,
    order: &Order,
    mut s: OrderSettlement,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    s.state = SettleState::SettleFailed;
    s.failure = Some(reason.chars().take(64).collect());
    s.checks = 0;
    let event = ProviderEvent::new(
        s.provider,
        EventKind::Split,
        Outcome::Failed,
        now,
        format!("settle_failed: {reason}"),
    )
    .order(&order.id)
    .amount(s.shares.seller_fen);
    let mut writes = vec![event.write(now)?];
    writes.extend(audited(order, now, "settlement.failed", reason, app)?);
    let next = next_with(order, s, now, RECHECK_SECS);
    // The seller is told, once per failure: the message is written with this version.
    writes.extend(subscriptions::settlement_failed_writes(
        &next,
        reason == NO_PAYOUT_ACCOUNT,
    )?);
    commit(&app.store, order, &next, writes).await?;
    tracing::warn!(order_id = %order.id, reason, "split failed: the seller must fix the payout account");
    Ok(true)
}

fn audited(
    order: &Order,
    now: OffsetDateTime,
    action: &str,
    reason: &str,
    app: &App,
) -> Result<Vec<Write>, Error> {
    let target = Target::new("order", order.id.as_str())
        .ok_or_else(|| Error::Internal("an order id that is not an audit target".into()))?;
    let record = AuditRecord::by(
        audit::Actor::System,
        now,
        action,
        target,
        Some(reason.to_owned()),
        "ok",
    );
    audit::writes(&record, app.config.audit_keep)
}

/// A failed split: a new attempt once the seller's account differs from the one that failed, or
/// was bound again since (registered anew at the provider: a receiver removed there, by an
/// unbind during the split, comes back the same) — before the deadline: [`settle`] expires it
/// past it; otherwise looked at again later.
async fn retry_failed(
    app: &App,
    order: &Order,
    s: &OrderSettlement,
    provider: Provider,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let current = account_for(app, &order.seller_id, provider).await?;
    let changed = match (&s.receiver, &current) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => {
            let rebound = match (
                &s.requested_at,
                bound_at(&app.store, &order.seller_id, provider).await?,
            ) {
                (Some(failed), Some(bound)) => epoch(&bound) > epoch(failed),
                _ => false,
            };
            old.kind != new.kind || old.account != new.account || rebound
        }
    };
    if !changed {
        let next = next_with(order, s.clone(), now, RECHECK_SECS);
        commit(&app.store, order, &next, Vec::new()).await?;
        return Ok(false);
    }
    // A split never asked (no account then) keeps its number.
    let attempt = match s.requested_at {
        None => s.attempt.max(1),
        Some(_) => s.attempt + 1,
    };
    begin(app, order, provider, attempt, current, now).await
}

/// Past the deadline unsplit: `expired` (the provider released the frozen funds to Renji); the
/// ledger keeps showing what is held for the seller (a split never asked writes its shares now:
/// `super::resolve`); the watch is listed for staff, who refund that share to the buyer.
pub async fn expire(app: &App, order: &Order, now: OffsetDateTime) -> Result<(), Error> {
    let Some(terms) = order.settle else {
        return Ok(());
    };
    let provider = order
        .payment
        .as_ref()
        .map_or(Provider::Wechat, |p| p.channel.provider());
    let mut s = order.settlement.clone().unwrap_or(OrderSettlement {
        state: SettleState::Pending,
        provider,
        attempt: 0,
        out_order_no: port::split_no(order.id.as_str()),
        receiver: None,
        shares: Shares::of(order.refundable(), &terms),
        failure: None,
        requested_at: None,
        shared_at: None,
        unfreeze_no: None,
        finished_at: None,
        checks: 0,
    });
    if s.state.is_final() {
        return Ok(());
    }
    let why = match &s.failure {
        Some(f) => format!("{DEADLINE_PASSED} (after {f})"),
        None => DEADLINE_PASSED.to_owned(),
    };
    s.state = SettleState::Expired;
    s.failure = Some(why.clone());
    s.finished_at = Some(rfc3339(now));
    let mut next = next_with(order, s, now, 0);
    // Renji's commission is its own once the funds are released: the ledger holds the seller's
    // share, what staff resolve (`super::resolve`).
    let mut writes = Vec::new();
    if let Some(s) = next.settlement.as_mut() {
        writes.extend(super::resolve::expiry_entries(order, s, &rfc3339(now))?);
    }
    writes.push(watch::expired_write(&next)?);
    writes.extend(audited(order, now, "settlement.expired", &why, app)?);
    commit(&app.store, order, &next, writes).await?;
    tracing::error!(order_id = %order.id, "split deadline passed unsplit: staff decide");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1), 120);
        assert_eq!(backoff(30), MAX_BACKOFF_SECS);
    }

    #[test]
    fn refusals_are_sorted() {
        assert!(not_yet(
            "INVALID_REQUEST",
            "订单处理中，暂时无法分账，请稍后再试"
        ));
        assert!(!not_yet("INVALID_REQUEST", "分账金额超出最大分账比例"));
        assert!(receiver_refused("ACQ.ROYALTY_RECEIVER_INVALID"));
        assert!(receiver_refused("NO_RELATION"));
        assert!(!receiver_refused("NOT_ENOUGH"));
    }
}
