//! The daily reconciliation of the providers against the ledger (`settlement.md` §5.10), a step
//! of the order jobs: once a day per provider, after the providers' bills are ready (WeChat Pay's
//! after 10:00 the next day, Alipay's by 09:00, Beijing time: from [`BILLS_READY_HOUR`]), for the
//! Beijing day before. Two parts, each with its own marker, each retried on its own:
//!
//! **The splits** (this module):
//! - The ledger's side: the day's `seller_paid` entries, listed by their time in `gsi1`
//!   (`DUE#seller_paid`, written with each entry), of orders this provider settled — summed by
//!   split number (an entry's `ref` `split:<number>`, else the order's settlement number).
//! - The provider's side: WeChat Pay's profit-sharing bill of the day (`GET
//!   /v3/profitsharing/bills`, the file's SHA-1 checked; only successful splits, amounts in yuan);
//!   Alipay, which has no such bill here, by `alipay.trade.order.settle.query` of each split the
//!   ledger names (its successful lines).
//! - Any split whose amounts differ, or that only one side has, is a **staff alarm**: an audit
//!   record `settlement.reconcile_mismatch` (actor system) in the list `settlement:alarms` — staff
//!   read them with `GET /admin/v1/audit?target=settlement:alarms` — and an error log line naming
//!   the provider, day, split number and amounts only (no personal data).
//!
//! It runs once: a marker `RECON#<provider>#<day> / RUN` is claimed (written only if absent)
//! before the provider is asked, and marked done with its counts after; a run that could not
//! reach the provider removes its claim, so the next run tries again.
//!
//! **The provider's fee** ([`super::fees`], marker `RECON#<provider>#<day> / FEES`): the day's
//! trade bill (WeChat Pay `/v3/bill/tradebill`, Alipay's `trade` bill) line by line against the
//! fee Renji's rule estimated for those payments and refunds; the difference is written to the
//! order's ledger as a `provider_fee` entry `bill:<day>` (once), so the ledger carries the fee the
//! provider really took, and lines the ledger does not know or differences beyond rounding are
//! staff alarms `settlement.fee_mismatch` in the same list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{LedgerEntry, LedgerKind};
use crate::app::App;
use crate::domain::audit::{self, AuditRecord, Target};
use crate::domain::orders::{self, rfc3339, Order};
use crate::error::Error;
use crate::ids::OrderId;
use crate::payments::Provider;
use crate::settlement::ShareResult;
use crate::store::schema::GSI1;
use crate::store::{keys, Condition, Key, Query, Record, Records, SortKey, StoreError, Write};

/// From this Beijing hour on, the day before is reconciled (WeChat Pay's bills are ready after
/// 10:00).
pub const BILLS_READY_HOUR: u8 = 11;
/// The audit list staff read the alarms in (`?target=settlement:alarms`): the reconciliation's,
/// the fees' ([`super::fees`]) and failed refunds' (`domain::orders::refund_alarm`).
pub const ALARMS: (&str, &str) = ("settlement", "alarms");
/// The label of the marker's claim.
pub const MARKER_LABEL: &str = "reconciliation_marker";
/// The audit action of an alarm.
pub const MISMATCH_ACTION: &str = "settlement.reconcile_mismatch";

/// A day's reconciliation of one provider (`RECON#<provider>#<day> / RUN`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub provider: Provider,
    pub day: String,
    /// `running` (claimed) or `done`.
    pub state: String,
    pub at: String,
    #[serde(default)]
    pub checked: u32,
    #[serde(default)]
    pub mismatches: u32,
    /// Orders whose ledger a fee reconciliation adjusted (its marker only).
    #[serde(default)]
    pub adjusted: u32,
}

impl Record for Marker {
    const KIND: &'static str = "reconciliation";
}

/// One split the two sides do not agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub out_order_no: String,
    pub order_id: Option<OrderId>,
    /// What the ledger says was paid to the seller (fen).
    pub ledger_fen: i64,
    /// What the provider says it paid (fen).
    pub provider_fen: i64,
}

/// What one provider's day came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayReport {
    pub provider: Provider,
    pub day: String,
    /// Splits compared.
    pub checked: u32,
    pub mismatches: Vec<Mismatch>,
}

/// The Beijing day before `now` once the bills are ready; `None` before [`BILLS_READY_HOUR`].
pub fn due_day(now: OffsetDateTime) -> Option<String> {
    let local = now.to_offset(time::macros::offset!(+8));
    if local.hour() < BILLS_READY_HOUR {
        return None;
    }
    local.date().previous_day().map(|d| d.to_string())
}

/// The order jobs' step: each provider's day before, once — its splits, then its fees
/// ([`super::fees::daily`], which reports in the log and the alarms). Errors are logged, never
/// the run's. Answers the splits' reports.
pub async fn daily(app: &App, now: OffsetDateTime) -> Vec<DayReport> {
    let splits = daily_splits(app, now).await;
    super::fees::daily(app, now).await;
    splits
}

/// The splits' part of [`daily`].
pub async fn daily_splits(app: &App, now: OffsetDateTime) -> Vec<DayReport> {
    let Some(day) = due_day(now) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for provider in Provider::ALL {
        if app.payments.settlement(provider).is_err() {
            continue;
        }
        match day_of(app, provider, &day, now).await {
            Ok(Some(report)) => out.push(report),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = provider.as_str(), day = %day, error = %e, "reconciliation not done: tried again next run");
            }
        }
    }
    out
}

/// Claims a day's marker at `key` (`running`, written only if absent): `None` when that day was
/// done or another run has it. The caller removes it if its run fails, so the next run tries again.
pub(super) async fn claim(
    app: &App,
    key: &Key,
    provider: Provider,
    day: &str,
    now: OffsetDateTime,
) -> Result<Option<Marker>, Error> {
    if app.store.get_record::<Marker>(key).await?.is_some() {
        return Ok(None);
    }
    let marker = Marker {
        provider,
        day: day.to_owned(),
        state: "running".into(),
        at: rfc3339(now),
        checked: 0,
        mismatches: 0,
        adjusted: 0,
    };
    let claim = Write::put_if(
        marker.to_item(key.clone(), None)?,
        Condition::Absent,
        MARKER_LABEL,
    );
    match app.store.transact(vec![claim]).await {
        Ok(()) => Ok(Some(marker)),
        // Another run has it.
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reconciles `provider`'s `day` unless it was (`Ok(None)`).
pub async fn day_of(
    app: &App,
    provider: Provider,
    day: &str,
    now: OffsetDateTime,
) -> Result<Option<DayReport>, Error> {
    let key = keys::reconciliation(provider.as_str(), day);
    let Some(mut marker) = claim(app, &key, provider, day, now).await? else {
        return Ok(None);
    };
    let report = match compare(app, provider, day).await {
        Ok(report) => report,
        Err(e) => {
            app.store.transact(vec![Write::delete(key)]).await?;
            return Err(e);
        }
    };
    let mut writes = Vec::new();
    let target = Target::new(ALARMS.0, ALARMS.1)
        .ok_or_else(|| Error::Internal("the alarms' audit target".into()))?;
    for m in &report.mismatches {
        tracing::error!(
            provider = provider.as_str(),
            day,
            out_order_no = %m.out_order_no,
            ledger_fen = m.ledger_fen,
            provider_fen = m.provider_fen,
            "reconciliation mismatch: staff alarm"
        );
        let record = AuditRecord::by(
            audit::Actor::System,
            now,
            MISMATCH_ACTION,
            target.clone(),
            Some(format!(
                "{} {day} split {}{}: ledger seller_paid {} fen, provider {} fen",
                provider.as_str(),
                m.out_order_no,
                m.order_id
                    .as_ref()
                    .map(|id| format!(" (order {id})"))
                    .unwrap_or_default(),
                m.ledger_fen,
                m.provider_fen
            )),
            "mismatch",
        );
        writes.extend(audit::writes(&record, app.config.audit_keep)?);
    }
    marker.state = "done".into();
    marker.checked = report.checked;
    marker.mismatches = u32::try_from(report.mismatches.len()).unwrap_or(u32::MAX);
    writes.push(Write::put(marker.to_item(key, None)?));
    // Each alarm is its own small transaction's worth; a long list is written in chunks.
    for chunk in writes.chunks(24) {
        app.store.transact(chunk.to_vec()).await?;
    }
    tracing::info!(
        provider = provider.as_str(),
        day,
        checked = report.checked,
        mismatches = report.mismatches.len(),
        "reconciliation done"
    );
    Ok(Some(report))
}

/// Both sides of `provider`'s `day`, by split number.
async fn compare(app: &App, provider: Provider, day: &str) -> Result<DayReport, Error> {
    let date = crate::dates::parse_day(day)
        .ok_or_else(|| Error::Internal("a reconciliation day that is not a date".into()))?;
    let start = date
        .midnight()
        .assume_offset(time::macros::offset!(+8))
        .unix_timestamp();
    let end = start + 86_400 - 1;
    // The ledger's side.
    let mut ledger: BTreeMap<String, (OrderId, i64, Option<String>)> = BTreeMap::new();
    let query = Query::partition(keys::due_partition("seller_paid"))
        .index(GSI1)
        .sort(SortKey::Between(
            keys::due(start),
            format!("{}~", keys::due(end)),
        ))
        .limit(100);
    let mut cursor = None;
    let mut orders: BTreeMap<OrderId, Option<Order>> = BTreeMap::new();
    loop {
        let page = app.store.query(query.clone().after(cursor)).await?;
        for item in page.items {
            let entry = LedgerEntry::from_item(item)?;
            if entry.kind != LedgerKind::SellerPaid {
                continue;
            }
            if !orders.contains_key(&entry.order_id) {
                let order = orders::get(&app.store, &entry.order_id).await?;
                orders.insert(entry.order_id.clone(), order);
            }
            let Some(order) = orders.get(&entry.order_id).and_then(Option::as_ref) else {
                continue;
            };
            let settled_by = order
                .settlement
                .as_ref()
                .map(|s| s.provider)
                .or(order.payment.as_ref().map(|p| p.channel.provider()));
            if settled_by != Some(provider) {
                continue;
            }
            let number = entry
                .reference
                .strip_prefix("split:")
                .map(str::to_owned)
                .or_else(|| order.settlement.as_ref().map(|s| s.out_order_no.clone()))
                .unwrap_or_else(|| entry.reference.clone());
            let transaction = order.payment.as_ref().map(|p| p.transaction_id.clone());
            let line = ledger
                .entry(number)
                .or_insert((entry.order_id.clone(), 0, transaction));
            line.1 += entry.amount_fen.get();
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // The provider's side.
    let port = app.payments.settlement(provider)?;
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    match port.split_bill(day).await.map_err(Error::from)? {
        Some(lines) => {
            for line in lines {
                *paid.entry(line.out_order_no).or_insert(0) += line.amount.get();
            }
        }
        None => {
            for (number, (_, _, transaction)) in &ledger {
                let Some(transaction) = transaction else {
                    continue;
                };
                let answer = port
                    .query_split(transaction, number)
                    .await
                    .map_err(Error::from)?;
                let sum: i64 = answer
                    .map(|a| {
                        a.shares
                            .iter()
                            .filter(|s| s.result == ShareResult::Success)
                            .map(|s| s.amount.get())
                            .sum()
                    })
                    .unwrap_or(0);
                paid.insert(number.clone(), sum);
            }
        }
    }
    let mut numbers: Vec<&String> = ledger.keys().chain(paid.keys()).collect();
    numbers.sort();
    numbers.dedup();
    let mut mismatches = Vec::new();
    for number in &numbers {
        let ledger_fen = ledger.get(*number).map_or(0, |l| l.1);
        let provider_fen = paid.get(*number).copied().unwrap_or(0);
        if ledger_fen != provider_fen {
            let order_id = ledger
                .get(*number)
                .map(|l| l.0.clone())
                .or_else(|| number.strip_prefix("PS").and_then(OrderId::parse));
            mismatches.push(Mismatch {
                out_order_no: (*number).clone(),
                order_id,
                ledger_fen,
                provider_fen,
            });
        }
    }
    Ok(DayReport {
        provider,
        day: day.to_owned(),
        checked: u32::try_from(numbers.len()).unwrap_or(u32::MAX),
        mismatches,
    })
}
