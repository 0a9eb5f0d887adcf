//! The daily reconciliation of the provider's fee against the providers' trade bills, the
//! second step of [`super::reconcile::daily`] (its own marker, `RECON#<provider>#<day> / FEES`).
//!
//! **What the ledger holds.** The split writes the fee Renji's rule estimates for what the order
//! kept (`provider_fee`, ref `split:<no>`: [`Shares::of`] on the amount less the refunds before
//! the split, at the order's `fee_bps`). The providers charge their fee per payment and give it
//! back in proportion on **any** refund — before or after the split (the stand-ins do; WeChat
//! Pay's community answers say the fee is refunded with the refund) — and say so line by line in
//! the day's trade bill ([`crate::payments::Gateway::trade_bill`]). So a refund after the split
//! (or after an expired split) books the fee it gives back with its success ([`refund_fee`],
//! `provider_fee`, ref `refund:<out_refund_no>`, negative): the ledger carries the fee of what
//! the order kept whatever the order of events.
//!
//! **What is compared.** Each of the day's lines is set against what Renji's rule attributes to
//! that very line: a payment the fee of the whole amount; a refund the change it makes to the
//! estimate (`fee(net after) − fee(net before)`, [`refund_fee`]). These telescope to exactly
//! what the split and the refunds after it write (or 0 for an order refunded in full before it,
//! which the split leaves without entries), whenever the split happens — before or after the
//! bill's day. So for each order of the bill, `bill fee − attributed estimate` is what
//! the ledger lacks, and it is written as an append-only `provider_fee` entry, ref `bill:<day>`
//! (only if absent, as every entry: a rerun cannot add it twice). Once the split and every bill
//! of the order are in, the order's `provider_fee` entries sum to the fee the provider took. A
//! `provider_fee` entry moves money between the fee and Renji's kept commission
//! ([`Totals`](super::Totals)): the ledger stays balanced (`held` does not change).
//!
//! **A late payment** (paid after the order stopped taking it — through the other provider,
//! after a cancel or the expiry — and refunded in full by the job, `orders::payments`) is not the
//! order's money: its ledger carries neither it nor its fee, and nothing is booked for it. The
//! providers charge it a fee as any payment and give the whole fee back on its full refund, so
//! Renji's rule attributes to its payment line what the provider charged on it, and to its refund
//! (`<order id>L<W|A>`) that fee given back ([`late_estimate`]): together nothing, no alarm.
//!
//! **Alarms** (an audit record [`FEE_MISMATCH_ACTION`] in the list `settlement:alarms`, and an
//! error log line with numbers only): a line whose order the ledger does not know (no such order,
//! not paid through this provider nor paid late there, a refund number it never asked) — nothing
//! is written for it; and a difference beyond rounding (for a late payment: a refund that did not
//! give the fee back). **Tolerance:** one fen per line of the order that day. Each
//! side rounds each line to the fen on its own (the providers per payment and per refund, Renji
//! the net before and after), so a line can differ by at most one fen; more than that is a rate
//! other than the configured one, or a line Renji did not expect. The ledger is adjusted either
//! way (it carries the money that moved); the alarm asks staff to look at the rate.
//!
//! It runs once per provider and Beijing day like the splits' step (from
//! [`BILLS_READY_HOUR`](super::reconcile::BILLS_READY_HOUR); WeChat Pay's bill is made after
//! 10:00, Alipay's by 09:00): the marker is claimed before the provider is asked; a run that cannot
//! reach it (or reads a bill that fails its hash or its CRC) removes the claim, and the next run
//! tries again; a day without a bill (nothing paid or refunded) is done. Orders made before
//! settlement existed (no terms) have no estimate to correct and are left alone.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::reconcile::ALARMS;
use super::{LedgerEntry, LedgerKind, SettleTerms, Shares};
use crate::app::App;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::orders::payments::{self, PaymentState};
use crate::domain::orders::{self, rfc3339, Order, Refund, RefundStatus};
use crate::error::Error;
use crate::ids::OrderId;
use crate::money::Fen;
use crate::payments::{Provider, TradeBillKind, TradeBillLine};
use crate::store::{keys, Record, StoreError, Write};

/// The audit action of a fee alarm.
pub const FEE_MISMATCH_ACTION: &str = "settlement.fee_mismatch";
/// The `ref` of a day's adjustment (`bill:<day>`).
pub fn adjustment_ref(day: &str) -> String {
    format!("bill:{day}")
}

/// One order (or bill line) staff should look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeeMismatch {
    /// The bill's order number (`out_trade_no`).
    pub order_no: String,
    /// The order, when the ledger knows it.
    pub order_id: Option<OrderId>,
    /// The fee on the order's lines of the day, as the bill says (fen).
    pub bill_fen: i64,
    /// What Renji's rule attributes to those lines (fen).
    pub estimate_fen: i64,
    /// Why: `unknown_order`, `unknown_refund`, `beyond_rounding`.
    pub why: &'static str,
}

/// What one provider's day of fees came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeeReport {
    pub provider: Provider,
    pub day: String,
    /// The provider had no bill for the day.
    pub no_bill: bool,
    /// Orders of the bill compared.
    pub checked: u32,
    /// Orders whose ledger got an adjustment now.
    pub adjusted: u32,
    pub mismatches: Vec<FeeMismatch>,
}

/// The order jobs' step: each provider's day before, once. Errors are logged, never the run's.
pub async fn daily(app: &App, now: OffsetDateTime) -> Vec<FeeReport> {
    let Some(day) = super::reconcile::due_day(now) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for provider in Provider::ALL {
        if app.payments.gateway(provider).is_err() {
            continue;
        }
        match day_of(app, provider, &day, now).await {
            Ok(Some(report)) => out.push(report),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = provider.as_str(), day = %day, error = %e, "fee reconciliation not done: tried again next run");
            }
        }
    }
    out
}

/// Reconciles `provider`'s fees of `day` (`yyyy-MM-dd`, Beijing) unless it was (`Ok(None)`).
pub async fn day_of(
    app: &App,
    provider: Provider,
    day: &str,
    now: OffsetDateTime,
) -> Result<Option<FeeReport>, Error> {
    if crate::dates::parse_day(day).is_none() {
        return Err(Error::Internal(
            "a fee reconciliation day that is not a date".into(),
        ));
    }
    let key = keys::fee_reconciliation(provider.as_str(), day);
    let Some(mut marker) = super::reconcile::claim(app, &key, provider, day, now).await? else {
        return Ok(None);
    };
    let report = match settle_day(app, provider, day, now).await {
        Ok(report) => report,
        Err(e) => {
            app.store.transact(vec![Write::delete(key)]).await?;
            return Err(e);
        }
    };
    marker.state = "done".into();
    marker.checked = report.checked;
    marker.adjusted = report.adjusted;
    marker.mismatches = u32::try_from(report.mismatches.len()).unwrap_or(u32::MAX);
    app.store
        .transact(vec![Write::put(marker.to_item(key, None)?)])
        .await?;
    tracing::info!(
        provider = provider.as_str(),
        day,
        no_bill = report.no_bill,
        checked = report.checked,
        adjusted = report.adjusted,
        mismatches = report.mismatches.len(),
        "fee reconciliation done"
    );
    Ok(Some(report))
}

/// What Renji's rule attributes to `line` of `order` (fen), or why the ledger does not know it.
pub fn estimate(
    order: &Order,
    terms: &SettleTerms,
    line: &TradeBillLine,
) -> Result<i64, &'static str> {
    let fee = |net: i64| Shares::of(Fen::from_fen(net), terms).fee_fen.get();
    match &line.kind {
        TradeBillKind::Payment => Ok(fee(order.amount_fen.get())),
        TradeBillKind::Refund { out_refund_no } => {
            let refund = order
                .refunds
                .iter()
                .find(|r| &r.out_refund_no == out_refund_no)
                .ok_or("unknown_refund")?;
            Ok(refund_fee(order, terms, refund))
        }
    }
}

/// The fee `refund` of `order` gives back by Renji's rule (fen, ≤ 0): `fee(net after) −
/// fee(net before)`, `net before` being the amount less the refunds that succeeded before it.
/// A refund before the split is in what the split books (it splits what is left); a refund after
/// the split or an expired split books it with its success ([`refund_fee_entry`]).
pub fn refund_fee(order: &Order, terms: &SettleTerms, refund: &Refund) -> i64 {
    let fee = |net: i64| Shares::of(Fen::from_fen(net), terms).fee_fen.get();
    let before: i64 = order
        .refunds
        .iter()
        .filter(|r| r.seq < refund.seq && r.status == RefundStatus::Succeeded)
        .map(|r| r.amount_fen.get())
        .sum();
    let net_before = order.amount_fen.get() - before;
    fee(net_before - refund.amount_fen.get()) - fee(net_before)
}

/// The `provider_fee` entry (ref `refund:<out_refund_no>`) of the fee a refund after the split
/// or an expired split gives back, for its success's transaction (none when it gives back
/// nothing, or for an order without terms).
pub fn refund_fee_entry(order: &Order, refund: &Refund, at: &str) -> Result<Option<Write>, Error> {
    let Some(terms) = order.settle else {
        return Ok(None);
    };
    match refund_fee(order, &terms, refund) {
        0 => Ok(None),
        back => LedgerEntry::new(
            &order.id,
            LedgerKind::ProviderFee,
            format!("refund:{}", refund.out_refund_no),
            Fen::from_fen(back),
            at,
        )
        .write()
        .map(Some),
    }
}

/// What Renji's rule attributes to `lines`, the day's lines of a late payment of `order` at
/// `provider`, or why they are not known: the payment line what the provider charged on it
/// (Renji has no rate of its own for money it did not take), the late refund that fee given back
/// in full. When the refund falls on a later day than the payment, the payment's fee is on an
/// earlier bill (which Renji does not keep), and the refund's line is taken as billed.
pub fn late_estimate(
    order: &OrderId,
    provider: Provider,
    lines: &[TradeBillLine],
) -> Result<i64, &'static str> {
    let refund_no = payments::late_refund_no(order, provider);
    let charged = lines
        .iter()
        .filter(|l| l.kind == TradeBillKind::Payment)
        .map(|l| l.fee_fen)
        .reduce(|a, b| a + b);
    let mut estimate = 0;
    for line in lines {
        estimate += match &line.kind {
            TradeBillKind::Payment => line.fee_fen,
            TradeBillKind::Refund { out_refund_no } if *out_refund_no == refund_no => {
                charged.map_or(line.fee_fen, |fee| -fee)
            }
            TradeBillKind::Refund { .. } => return Err("unknown_refund"),
        };
    }
    Ok(estimate)
}

/// The alarm `lines` of a late payment of `order` raise, if any (nothing is ever booked).
fn late_mismatch(
    order: &Order,
    provider: Provider,
    lines: &[TradeBillLine],
) -> Option<FeeMismatch> {
    let bill_fen: i64 = lines.iter().map(|l| l.fee_fen).sum();
    let lines_n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    let (estimate_fen, why) = match late_estimate(&order.id, provider, lines) {
        Err(why) => (0, why),
        Ok(estimate) if (bill_fen - estimate).abs() > lines_n => (estimate, "beyond_rounding"),
        Ok(_) => return None,
    };
    Some(FeeMismatch {
        order_no: order.id.to_string(),
        order_id: Some(order.id.clone()),
        bill_fen,
        estimate_fen,
        why,
    })
}

/// The day's bill against the ledger; adjustments and alarms written.
async fn settle_day(
    app: &App,
    provider: Provider,
    day: &str,
    now: OffsetDateTime,
) -> Result<FeeReport, Error> {
    let mut report = FeeReport {
        provider,
        day: day.to_owned(),
        no_bill: false,
        checked: 0,
        adjusted: 0,
        mismatches: Vec::new(),
    };
    let gateway = app.payments.gateway(provider)?;
    let Some(lines) = gateway.trade_bill(day).await.map_err(Error::from)? else {
        report.no_bill = true;
        return Ok(report);
    };
    let mut by_order: BTreeMap<String, Vec<TradeBillLine>> = BTreeMap::new();
    for line in lines {
        by_order
            .entry(line.order_no.clone())
            .or_default()
            .push(line);
    }
    let target = Target::new(ALARMS.0, ALARMS.1)
        .ok_or_else(|| Error::Internal("the alarms' audit target".into()))?;
    let at = rfc3339(now);
    for (order_no, lines) in by_order {
        report.checked += 1;
        let bill_fen: i64 = lines.iter().map(|l| l.fee_fen).sum();
        let order = match OrderId::parse(&order_no) {
            Some(id) => orders::get(&app.store, &id).await?,
            None => None,
        };
        let paid_here = order.as_ref().filter(|o| {
            o.payment
                .as_ref()
                .is_some_and(|p| p.channel.provider() == provider)
        });
        let Some(order) = paid_here else {
            let late = match &order {
                Some(o) => payments::record_of(&app.store, &o.id, provider)
                    .await?
                    .is_some_and(|r| r.state == PaymentState::Late),
                None => false,
            };
            if let Some(o) = order.as_ref().filter(|_| late) {
                if let Some(m) = late_mismatch(o, provider, &lines) {
                    alarm(app, provider, day, &m, None, &target, now).await?;
                    report.mismatches.push(m);
                }
                continue;
            }
            let m = FeeMismatch {
                order_no,
                order_id: order.map(|o| o.id),
                bill_fen,
                estimate_fen: 0,
                why: "unknown_order",
            };
            alarm(app, provider, day, &m, None, &target, now).await?;
            report.mismatches.push(m);
            continue;
        };
        let Some(terms) = order.settle else {
            // Made before settlement existed: no estimate in its ledger to correct.
            continue;
        };
        let mut estimate_fen = 0;
        let mut unknown = None;
        for line in &lines {
            match estimate(order, &terms, line) {
                Ok(fen) => estimate_fen += fen,
                Err(why) => unknown = Some(why),
            }
        }
        let diff = bill_fen - estimate_fen;
        let lines_n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        let why = match unknown {
            Some(why) => Some(why),
            None if diff.abs() > lines_n => Some("beyond_rounding"),
            None => None,
        };
        let mismatch = why.map(|why| FeeMismatch {
            order_no: order_no.clone(),
            order_id: Some(order.id.clone()),
            bill_fen,
            estimate_fen,
            why,
        });
        // A line the ledger does not know is not booked: staff look first.
        let entry = (diff != 0 && unknown.is_none()).then(|| {
            LedgerEntry::new(
                &order.id,
                LedgerKind::ProviderFee,
                adjustment_ref(day),
                Fen::from_fen(diff),
                &at,
            )
        });
        let mut writes = Vec::new();
        if let Some(entry) = &entry {
            writes.push(entry.write()?);
        }
        match (&mismatch, writes.is_empty()) {
            (None, true) => continue,
            (None, false) => match app.store.transact(writes).await {
                Ok(()) => report.adjusted += 1,
                // Adjusted by an earlier run of this day.
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            (Some(m), _) => {
                if alarm(app, provider, day, m, entry.as_ref(), &target, now).await? {
                    report.adjusted += u32::from(entry.is_some());
                }
                report.mismatches.push(m.clone());
            }
        }
    }
    Ok(report)
}

/// Writes an alarm (with the order's adjustment, if any, in the same transaction: a rerun that
/// finds the adjustment written raises no second alarm). `Ok(false)`: it was written before.
async fn alarm(
    app: &App,
    provider: Provider,
    day: &str,
    m: &FeeMismatch,
    entry: Option<&LedgerEntry>,
    target: &Target,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    tracing::error!(
        provider = provider.as_str(),
        day,
        order_no = %m.order_no,
        bill_fen = m.bill_fen,
        estimate_fen = m.estimate_fen,
        why = m.why,
        "fee reconciliation mismatch: staff alarm"
    );
    let adjusted = entry.map_or_else(
        || "ledger not adjusted".to_owned(),
        |e| format!("ledger provider_fee adjusted by {} fen", e.amount_fen.get()),
    );
    let record = AuditRecord::by(
        audit::Actor::System,
        now,
        FEE_MISMATCH_ACTION,
        target.clone(),
        Some(format!(
            "{} {day} order {}: {}; fee on the bill {} fen, estimated {} fen; {adjusted}",
            provider.as_str(),
            m.order_no,
            m.why,
            m.bill_fen,
            m.estimate_fen,
        )),
        "mismatch",
    );
    let mut writes = audit::writes(&record, app.config.audit_keep)?;
    if let Some(entry) = entry {
        writes.push(entry.write()?);
    }
    match app.store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::orders::{Actor, ListingSnapshot, OrderPayment, OrderStatus, Refund};
    use crate::domain::settlement::refunds::{AfterSplit, TakeBack};
    use crate::ids::{ListingId, UserId};
    use crate::payments::Channel;
    use crate::settlement::{Receiver, ReceiverKind, SettleMode};

    fn refund(seq: u32, amount: i64, status: RefundStatus, after_split: bool) -> Refund {
        Refund {
            seq,
            out_refund_no: format!("oR{seq:02}"),
            amount_fen: Fen::from_fen(amount),
            reason: None,
            from: OrderStatus::Accepted,
            actor: Actor::Staff,
            status,
            requested_at: "2026-11-28T02:00:00Z".into(),
            refund_id: None,
            failure: None,
            finished_at: None,
            attempts: 0,
            after_split: after_split.then(|| AfterSplit {
                seller_part_fen: Fen::from_fen(0),
                take_back: TakeBack::Receivable,
                receiver: Receiver {
                    kind: ReceiverKind::WechatOpenid,
                    account: "oSeller".into(),
                    name: None,
                },
                out_order_no: "PSo".into(),
                return_no: None,
                returned_fen: None,
                return_failure: None,
            }),
            after_expiry: None,
        }
    }

    fn order(amount: i64, refunds: Vec<Refund>) -> Order {
        Order {
            id: OrderId::generate(),
            buyer_id: UserId::generate(),
            seller_id: UserId::generate(),
            listing: ListingSnapshot {
                id: ListingId::generate(),
                title: "婚礼跟拍".into(),
                kind: "service".into(),
                category: "photography".into(),
                city: "北京市".into(),
                price_fen: Fen::from_fen(amount),
                cover_url: None,
            },
            quantity: 1,
            amount_fen: Fen::from_fen(amount),
            refunded_fen: Fen::from_fen(0),
            remark: String::new(),
            service_date: None,
            status: OrderStatus::Completed,
            created_at: "2026-11-28T01:00:00Z".into(),
            updated_at: "2026-11-28T01:00:00Z".into(),
            expires_at: "2026-11-28T01:30:00Z".into(),
            payment: Some(OrderPayment {
                channel: Channel::Wechat,
                transaction_id: "4200".into(),
                paid_at: "2026-11-28T01:01:00Z".into(),
            }),
            refund_request: None,
            refunds,
            before_dispute: None,
            dispute_ticket: None,
            accepted_at: None,
            completed_at: None,
            timeline: Vec::new(),
            settle: Some(TERMS),
            split_deadline: None,
            settlement: None,
            due_at: None,
            version: 1,
        }
    }

    const TERMS: SettleTerms = SettleTerms {
        mode: SettleMode::Ordinary,
        commission_bps: 1_000,
        fee_bps: 60,
    };

    fn line(order: &Order, kind: TradeBillKind) -> TradeBillLine {
        TradeBillLine {
            order_no: order.id.to_string(),
            kind,
            amount: Fen::from_fen(0),
            fee_fen: 0,
        }
    }

    fn refund_line(order: &Order, seq: u32) -> TradeBillLine {
        line(
            order,
            TradeBillKind::Refund {
                out_refund_no: format!("oR{seq:02}"),
            },
        )
    }

    /// What the lines are attributed adds up to what the split books on what the refunds before
    /// it left, plus what the refunds after it book with their success: a failed refund does not
    /// count, each line rounds on its own and the sum still telescopes exactly.
    #[test]
    fn the_lines_add_up_to_the_splits_estimate() {
        let o = order(
            12_345,
            vec![
                refund(1, 1_000, RefundStatus::Succeeded, false),
                refund(2, 500, RefundStatus::Failed, false),
                refund(3, 2_083, RefundStatus::Succeeded, false),
                refund(4, 3_000, RefundStatus::Succeeded, true),
            ],
        );
        let at = |l: &TradeBillLine| estimate(&o, &TERMS, l).unwrap();
        let payment = at(&line(&o, TradeBillKind::Payment));
        assert_eq!(payment, 74); // 74.07
        let (first, third, after) = (
            at(&refund_line(&o, 1)),
            at(&refund_line(&o, 3)),
            at(&refund_line(&o, 4)),
        );
        // 11 345 → 68.07: −6; 9 262 → 55.572: −12; after the split, 6 262 → 37.572: −18.
        assert_eq!((first, third, after), (-6, -12, -18));
        let split = Shares::of(Fen::from_fen(12_345 - 1_000 - 2_083), &TERMS);
        assert_eq!(payment + first + third, split.fee_fen.get());
        // The refund after the split books what it attributes: the ledger ends at the fee of
        // what the order kept.
        let after_split = &o.refunds[3];
        assert_eq!(refund_fee(&o, &TERMS, after_split), after);
        let kept = Shares::of(Fen::from_fen(12_345 - 1_000 - 2_083 - 3_000), &TERMS);
        assert_eq!(split.fee_fen.get() + after, kept.fee_fen.get());
        // Refunded in full before any split: nothing, as the split books nothing.
        let full = order(250, vec![refund(1, 250, RefundStatus::Succeeded, false)]);
        let sum = estimate(&full, &TERMS, &line(&full, TradeBillKind::Payment)).unwrap()
            + estimate(&full, &TERMS, &refund_line(&full, 1)).unwrap();
        assert_eq!(sum, 0);
        // A refund the order never asked.
        assert_eq!(
            estimate(&o, &TERMS, &refund_line(&o, 9)),
            Err("unknown_refund")
        );
    }

    /// A late payment's lines: what the provider charged, given back whole by its refund — on
    /// one bill nothing to say; its refund on a later day taken as billed; a refund that keeps
    /// the fee, or one the job never asked, an alarm.
    #[test]
    fn a_late_payment_is_what_the_provider_charged_given_back() {
        let o = order(28_800, Vec::new());
        let provider = Provider::Alipay;
        let paid = TradeBillLine {
            fee_fen: 288,
            ..line(&o, TradeBillKind::Payment)
        };
        let late_refund = |fee_fen: i64| TradeBillLine {
            fee_fen,
            ..line(
                &o,
                TradeBillKind::Refund {
                    out_refund_no: payments::late_refund_no(&o.id, provider),
                },
            )
        };
        let both = [paid.clone(), late_refund(-288)];
        assert_eq!(late_estimate(&o.id, provider, &both), Ok(0));
        assert_eq!(late_mismatch(&o, provider, &both), None);
        assert_eq!(late_estimate(&o.id, provider, &both[..1]), Ok(288));
        assert_eq!(late_mismatch(&o, provider, &both[..1]), None);
        assert_eq!(late_estimate(&o.id, provider, &both[1..]), Ok(-288));
        assert_eq!(late_mismatch(&o, provider, &both[1..]), None);
        // The refund kept 100 fen of the fee.
        let kept = [paid.clone(), late_refund(-188)];
        let m = late_mismatch(&o, provider, &kept).expect("an alarm");
        assert_eq!(
            (m.why, m.bill_fen, m.estimate_fen),
            ("beyond_rounding", 100, 0)
        );
        // The other provider's letter, or an order refund's number: not this late payment's.
        let other = TradeBillLine {
            fee_fen: -288,
            ..line(
                &o,
                TradeBillKind::Refund {
                    out_refund_no: payments::late_refund_no(&o.id, Provider::Wechat),
                },
            )
        };
        let m = late_mismatch(&o, provider, &[paid, other]).expect("an alarm");
        assert_eq!(m.why, "unknown_refund");
    }
}
