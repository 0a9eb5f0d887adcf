//! Paying sellers (capability of issue #12): the settlement of an order — what was agreed when
//! it was created ([`terms`]), the money's append-only account ([`ledger`]) and the split's own
//! state on the order ([`OrderSettlement`]), moved by the order jobs ([`job`]). The providers'
//! settlement products sit behind the port in `crate::settlement`; nothing here sees a URL.
//!
//! The order state machine of `api.md` does not change: a `completed` order whose dispute window
//! has passed is split by the job (due kind `settle`), and the split's progress is this field of
//! the order, written with the order's version condition like every order change.

pub mod earnings;
pub mod fees;
pub mod job;
pub mod ledger;
pub mod reconcile;
pub mod refunds;
pub mod resolve;
pub mod terms;
pub mod watch;

use serde::{Deserialize, Serialize};

use crate::payments::Provider;
use crate::settlement::Receiver;

pub use ledger::{LedgerEntry, LedgerKind, Totals};
pub use terms::{SettleTerms, Shares};

/// Where an order's split is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleState {
    /// Not split yet: the order is still open, or waits for its dispute window.
    Pending,
    /// Asked of the provider, not final: the job asks again (personal receivers get no
    /// notification).
    Processing,
    /// The seller's share arrived and the rest was released to Renji.
    Paid,
    /// The provider closed the seller's receiver: the seller must fix the payout account; the
    /// share stays frozen and is split again (a new attempt) once they have, before the deadline.
    SettleFailed,
    /// Refunded in full: nothing to split.
    Nothing,
    /// The deadline passed unsplit: the provider released the funds to Renji; staff decide.
    Expired,
}

impl SettleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SettleState::Pending => "pending",
            SettleState::Processing => "processing",
            SettleState::Paid => "paid",
            SettleState::SettleFailed => "settle_failed",
            SettleState::Nothing => "nothing",
            SettleState::Expired => "expired",
        }
    }

    /// No more work for the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SettleState::Paid | SettleState::Nothing | SettleState::Expired
        )
    }

    /// Whether the seller's share is on its way or arrived: the order's money is then no longer
    /// all at the provider to refund (only staff's refund of a split order takes it back).
    pub fn moved(self) -> bool {
        matches!(self, SettleState::Processing | SettleState::Paid)
    }

    /// Which total of a seller's earnings counts its share: `pending`, `paid` or `failed` (an
    /// expired split's share is `failed`; an item says more: `earnings::item_state`).
    pub fn earning(self) -> &'static str {
        match self {
            SettleState::Pending | SettleState::Processing => "pending",
            SettleState::Paid | SettleState::Nothing => "paid",
            SettleState::SettleFailed | SettleState::Expired => "failed",
        }
    }
}

/// The split of one order, kept on the order (`Order.settlement`), written by the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSettlement {
    pub state: SettleState,
    pub provider: Provider,
    /// The split's attempt (from 1): a new attempt (after a closed receiver was replaced) has a
    /// new number.
    pub attempt: u32,
    /// The split's number at the provider for this attempt.
    pub out_order_no: String,
    /// Who receives the split-out amount (the seller's receiver, or Renji's in platform mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Receiver>,
    /// The amounts of this split ([`Shares::of`] on what remained after refunds).
    pub shares: Shares,
    /// Why it failed or expired (the provider's reason), while it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// When the seller's share arrived (the `seller_paid` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_at: Option<String>,
    /// The number of the unfreeze of the rest (to Renji), once the share arrived: asked, then
    /// polled until finished (`paid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfreeze_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How often the job has asked the provider about it (for backoff).
    #[serde(default)]
    pub checks: u32,
}

/// What an unsplit order's seller share is computed from: what the buyer paid less what was
/// refunded and what a refund under way (or failed, which staff retry) gives back — the buyer's
/// money, never the seller's.
pub fn owed_net(order: &crate::domain::orders::Order) -> crate::money::Fen {
    use crate::domain::orders::OrderStatus;
    let going_back = match order.status {
        OrderStatus::Refunding | OrderStatus::RefundFailed => {
            order.refunds.last().map_or(0, |r| r.amount_fen.get())
        }
        _ => 0,
    };
    crate::money::Fen::from_fen((order.refundable().get() - going_back).max(0))
}
