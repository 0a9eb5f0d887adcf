//! An order's ledger: append-only entries under the order (`ORDER#<id> / LEDGER#<ref>`), each
//! written in the same transaction as the order change it records and only if absent (label
//! [`ENTRY_LABEL`]), its `ref` derived from the event (`paid`, `refund:<out_refund_no>`,
//! `split:<out_order_no>` …) — so a retried or repeated event cannot count twice.
//!
//! [`Totals`] sums them. Money the provider still holds frozen for the order (or Renji holds for
//! a seller whose split failed) is [`Totals::held`]; at the end of every path it is zero, which is
//! the invariant `paid = refunded + seller_paid + commission_kept + fee`.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::OrderId;
use crate::money::Fen;
use crate::store::{keys, Condition, DynStore, Query, Record, SortKey, Write};

/// The label of the condition each entry is written under (a second write of one `ref`).
pub const ENTRY_LABEL: &str = "ledger_entry";

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// The buyer's payment, confirmed by the provider.
    Paid,
    /// The provider's fee: the configured rate's estimate (`split:<no>`), what a refund after
    /// the split gives back of it (`refund:<no>`, negative), then the difference to the
    /// providers' trade bills (`bill:<day>`, `fees.rs`).
    ProviderFee,
    /// Renji's commission, the fee included.
    Commission,
    /// What the seller is owed by a split that was asked for (not money moved).
    SellerPayable,
    /// What the provider moved to the seller's receiver.
    SellerPaid,
    /// Money the provider gave back to the buyer.
    Refunded,
    /// Money taken back from a seller's receiver (a WeChat return, an Alipay refund's royalty).
    Returned,
    /// A refund Renji paid that the seller's share could not give back (a personal receiver):
    /// what the seller owes Renji, decided by staff. Renji's commission bears it.
    Receivable,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Paid => "paid",
            LedgerKind::ProviderFee => "provider_fee",
            LedgerKind::Commission => "commission",
            LedgerKind::SellerPayable => "seller_payable",
            LedgerKind::SellerPaid => "seller_paid",
            LedgerKind::Refunded => "refunded",
            LedgerKind::Returned => "returned",
            LedgerKind::Receivable => "receivable",
        }
    }
}

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub order_id: OrderId,
    pub kind: LedgerKind,
    /// What event it records (unique per order): part of its key.
    #[serde(rename = "ref")]
    pub reference: String,
    pub amount_fen: Fen,
    pub at: String,
}

impl Record for LedgerEntry {
    const KIND: &'static str = "ledger entry";
}

impl LedgerEntry {
    pub fn new(
        order_id: &OrderId,
        kind: LedgerKind,
        reference: impl Into<String>,
        amount: Fen,
        at: &str,
    ) -> Self {
        LedgerEntry {
            order_id: order_id.clone(),
            kind,
            reference: reference.into(),
            amount_fen: amount,
            at: at.to_owned(),
        }
    }

    /// Its write: put only if no entry has its `ref` (label [`ENTRY_LABEL`]).
    pub fn write(&self) -> Result<Write, Error> {
        let key = keys::ledger_entry(
            &self.order_id,
            &format!("{}:{}", self.kind.as_str(), self.reference),
        );
        // What the provider moved to a seller is listed by day for the daily reconciliation.
        let listed = (self.kind == LedgerKind::SellerPaid).then(|| {
            keys::seller_paid_listed(
                crate::domain::orders::epoch(&self.at),
                &self.order_id,
                &self.reference,
            )
        });
        Ok(Write::put_if(
            self.to_item(key, listed)?,
            Condition::Absent,
            ENTRY_LABEL,
        ))
    }
}

/// An order's entries, in key order.
pub async fn entries(store: &DynStore, order: &OrderId) -> Result<Vec<LedgerEntry>, Error> {
    let query = Query::partition(keys::order_partition(order))
        .sort(SortKey::Prefix(keys::LEDGER_SK_PREFIX.into()))
        .limit(100);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(query.clone().after(cursor)).await?;
        for item in page.items {
            out.push(LedgerEntry::from_item(item)?);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// The sums of an order's entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub paid: i64,
    pub refunded: i64,
    /// Moved to the seller, less what was taken back.
    pub seller_paid: i64,
    /// Renji's commission less the provider's fee and the receivables it bore.
    pub commission_kept: i64,
    pub fee: i64,
    /// Owed to the seller by splits asked for and not (yet) paid.
    pub seller_payable: i64,
    pub receivable: i64,
}

impl Totals {
    pub fn of(entries: &[LedgerEntry]) -> Self {
        let mut t = Totals::default();
        for e in entries {
            let a = e.amount_fen.get();
            match e.kind {
                LedgerKind::Paid => t.paid += a,
                LedgerKind::Refunded => t.refunded += a,
                LedgerKind::ProviderFee => {
                    t.fee += a;
                    t.commission_kept -= a;
                }
                LedgerKind::Commission => t.commission_kept += a,
                LedgerKind::SellerPayable => t.seller_payable += a,
                LedgerKind::SellerPaid => {
                    t.seller_paid += a;
                    t.seller_payable -= a;
                }
                LedgerKind::Returned => t.seller_paid -= a,
                LedgerKind::Receivable => {
                    t.receivable += a;
                    t.commission_kept -= a;
                }
            }
        }
        t
    }

    /// What is not yet accounted for: still frozen at the provider, or held for a seller whose
    /// split did not arrive. Zero is the invariant `paid = refunded + seller_paid +
    /// commission_kept + fee`.
    pub fn held(&self) -> i64 {
        self.paid - self.refunded - self.seller_paid - self.commission_kept - self.fee
    }

    pub fn balances(&self) -> bool {
        self.held() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: LedgerKind, amount: i64) -> LedgerEntry {
        LedgerEntry::new(
            &OrderId::generate(),
            kind,
            "x",
            Fen::from_fen(amount),
            "2026-11-29T00:00:00Z",
        )
    }

    #[test]
    fn a_split_order_balances_and_an_unsplit_one_is_held() {
        use LedgerKind::*;
        let paid = [e(Paid, 10_000)];
        assert_eq!(Totals::of(&paid).held(), 10_000);
        let split = [
            e(Paid, 10_000),
            e(Refunded, 1_000),
            e(Commission, 900),
            e(ProviderFee, 54),
            e(SellerPayable, 8_100),
        ];
        // Asked, not arrived: the seller's share is still held.
        assert_eq!(Totals::of(&split).held(), 8_100);
        let mut done = split.to_vec();
        done.push(e(SellerPaid, 8_100));
        let t = Totals::of(&done);
        assert!(t.balances(), "{t:?}");
        assert_eq!((t.seller_paid, t.commission_kept, t.fee), (8_100, 846, 54));
        assert_eq!(t.seller_payable, 0);
        // A refund after the split from a personal receiver: Renji bears it as a receivable.
        done.push(e(Refunded, 2_000));
        done.push(e(Receivable, 2_000));
        let t = Totals::of(&done);
        assert!(t.balances(), "{t:?}");
        assert_eq!(t.commission_kept, 846 - 2_000);
    }
}
