//! What an order's settlement was agreed on, snapshotted when the order is created (a later
//! change of the commission does not reach orders already made), and the one rounding rule that
//! turns an amount into Renji's commission, the provider's fee and the seller's share.

use serde::{Deserialize, Serialize};

use crate::money::Fen;
use crate::settlement::config::BPS;
use crate::settlement::{SettleMode, SettlementConfig};

/// The order's settlement terms (`Order.settle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleTerms {
    /// Which product settles it, so who is payee and what is split out.
    pub mode: SettleMode,
    /// Renji's commission, basis points of what the buyer finally paid.
    pub commission_bps: u32,
    /// The provider's fee rate (`RENJI_PROVIDER_FEE_BPS`), paid out of the commission.
    pub fee_bps: u32,
}

impl SettleTerms {
    /// The terms an order in `category` is made on today.
    pub fn now(config: &SettlementConfig, category: &str) -> Self {
        SettleTerms {
            mode: SettleMode::Ordinary,
            commission_bps: config.commission_bps(category),
            fee_bps: config.fee_bps,
        }
    }
}

/// How an amount divides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shares {
    /// What the buyer paid and was not refunded.
    pub net_fen: Fen,
    /// Renji's commission, the provider's fee included.
    pub commission_fen: Fen,
    /// The provider's fee (an estimate from the configured rate; the bills reconcile it).
    pub fee_fen: Fen,
    /// What the seller receives: `net − commission`.
    pub seller_fen: Fen,
}

impl Shares {
    /// The one rounding rule, all in integer fen: the commission is `net × bps / 10 000`
    /// rounded **up** (a fraction of a fen goes to Renji, so the seller's share never exceeds
    /// the ratio a provider checks), the fee is rounded half up (as the providers round), and the
    /// seller gets the rest. A commission rate at least the fee rate (a start-up check) keeps the
    /// fee within the commission.
    pub fn of(net: Fen, terms: &SettleTerms) -> Self {
        let net_fen = net.get().max(0);
        let bps = i64::from(BPS);
        let commission = (net_fen * i64::from(terms.commission_bps) + bps - 1) / bps;
        let fee = (net_fen * i64::from(terms.fee_bps) + bps / 2) / bps;
        Shares {
            net_fen: Fen::from_fen(net_fen),
            commission_fen: Fen::from_fen(commission),
            fee_fen: Fen::from_fen(fee.min(commission)),
            seller_fen: Fen::from_fen(net_fen - commission),
        }
    }

    /// What Renji keeps of the commission once the provider's fee is paid.
    pub fn commission_kept(&self) -> Fen {
        Fen::from_fen(self.commission_fen.get() - self.fee_fen.get())
    }

    /// What the split moves out, by mode: the seller's share (ordinary) or the commission
    /// (platform).
    pub fn split_out(&self, mode: SettleMode) -> Fen {
        match mode.split_out() {
            crate::settlement::SplitOut::SellerShare => self.seller_fen,
            crate::settlement::SplitOut::Commission => self.commission_fen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(commission_bps: u32, fee_bps: u32) -> SettleTerms {
        SettleTerms {
            mode: SettleMode::Ordinary,
            commission_bps,
            fee_bps,
        }
    }

    #[test]
    fn the_commission_rounds_up_the_fee_half_up_and_the_parts_add_up() {
        // 10 % of 12 345 fen is 1 234.5: Renji's 1 235; 0.6 % is 74.07: 74.
        let s = Shares::of(Fen::from_fen(12_345), &terms(1_000, 60));
        assert_eq!(s.commission_fen.get(), 1_235);
        assert_eq!(s.fee_fen.get(), 74);
        assert_eq!(s.seller_fen.get(), 11_110);
        assert_eq!(s.commission_kept().get(), 1_161);
        // 0.6 % of 250 is 1.5: 2.
        assert_eq!(
            Shares::of(Fen::from_fen(250), &terms(1_000, 60))
                .fee_fen
                .get(),
            2
        );
        for net in [0, 1, 2, 9, 99, 100, 101, 12_345, 99_999_999] {
            for (c, f) in [
                (0, 0),
                (1, 1),
                (60, 60),
                (1_000, 60),
                (3_333, 38),
                (10_000, 60),
            ] {
                let s = Shares::of(Fen::from_fen(net), &terms(c, f));
                assert_eq!(
                    s.seller_fen.get() + s.commission_kept().get() + s.fee_fen.get(),
                    net,
                    "{net} {c} {f}"
                );
                assert!(s.fee_fen <= s.commission_fen && s.seller_fen.get() >= 0);
                // The seller's share never passes (10 000 − commission) of the amount: within a
                // ratio cap the configuration was checked against.
                assert!(s.seller_fen.get() * 10_000 <= net * i64::from(10_000 - c));
            }
        }
    }

    #[test]
    fn the_mode_names_what_is_split_out() {
        let s = Shares::of(Fen::from_fen(1_000), &terms(1_000, 60));
        assert_eq!(s.split_out(SettleMode::Ordinary).get(), 900);
        assert_eq!(s.split_out(SettleMode::Platform).get(), 100);
    }
}
