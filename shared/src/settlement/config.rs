//! Settlement's configuration (`RENJI_COMMISSION_BPS`, `RENJI_COMMISSION_BPS_BY_CATEGORY`,
//! `RENJI_SETTLE_MAX_RATIO_BPS`, `RENJI_SETTLE_DEADLINE_DAYS`, `RENJI_SETTLE_DELAY_DAYS`,
//! `RENJI_PROVIDER_FEE_BPS`) and its
//! start-up checks: the seller's share under every commission must fit the split ratio the
//! provider granted, and an order's way to its split (accept + auto-complete + dispute window +
//! settle delay) must end before the split deadline, itself before the providers' 30-day freeze.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;

/// Basis points (万分比, WeChat's unit): 10 000 = 100 %.
pub const BPS: u32 = 10_000;
/// `RENJI_COMMISSION_BPS`'s default: 10 %.
pub const DEFAULT_COMMISSION_BPS: u32 = 1_000;
/// `RENJI_SETTLE_MAX_RATIO_BPS`'s default: the local stand-ins' grant (90 %), so the default
/// configuration starts. WeChat's and Alipay's own default is 3 000 (30 %): set what the provider
/// granted.
pub const DEFAULT_MAX_RATIO_BPS: u32 = 9_000;
/// The ordinary-merchant freeze: funds unfreeze to the payee after 30 days.
pub const FREEZE_DAYS: u64 = 30;
/// `RENJI_SETTLE_DEADLINE_DAYS`'s default: split within 25 days of payment (5 days' margin).
pub const DEFAULT_DEADLINE_DAYS: u64 = 25;
/// `RENJI_SETTLE_DELAY_DAYS`'s default: a day after the dispute window closes.
pub const DEFAULT_DELAY_DAYS: u64 = 1;
/// `RENJI_PROVIDER_FEE_BPS`'s default: 0.6 %, the standard rate of WeChat Pay and Alipay for
/// this kind of merchant.
pub const DEFAULT_FEE_BPS: u32 = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementConfig {
    /// Renji's commission in basis points (`RENJI_COMMISSION_BPS`), snapshotted onto an order.
    pub commission_bps: u32,
    /// Per-category commissions (`RENJI_COMMISSION_BPS_BY_CATEGORY`, `slug=bps,…`).
    pub commission_by_category: BTreeMap<String, u32>,
    /// The split cap the provider granted (`RENJI_SETTLE_MAX_RATIO_BPS`).
    pub max_ratio_bps: u32,
    /// An order must be split this long after payment at the latest
    /// (`RENJI_SETTLE_DEADLINE_DAYS`, below the 30-day freeze): the order's `split_deadline`.
    pub deadline: Duration,
    /// How long after the dispute window the split waits (`RENJI_SETTLE_DELAY_DAYS`).
    pub delay: Duration,
    /// The providers' fee rate (`RENJI_PROVIDER_FEE_BPS`), paid out of Renji's commission:
    /// every commission must be at least it.
    pub fee_bps: u32,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        SettlementConfig {
            commission_bps: DEFAULT_COMMISSION_BPS,
            commission_by_category: BTreeMap::new(),
            max_ratio_bps: DEFAULT_MAX_RATIO_BPS,
            deadline: Duration::from_secs(DEFAULT_DEADLINE_DAYS * 86_400),
            delay: Duration::from_secs(DEFAULT_DELAY_DAYS * 86_400),
            fee_bps: DEFAULT_FEE_BPS,
        }
    }
}

impl SettlementConfig {
    /// The commission of a listing's category.
    pub fn commission_bps(&self, category: &str) -> u32 {
        self.commission_by_category
            .get(category)
            .copied()
            .unwrap_or(self.commission_bps)
    }

    /// Reads it through `lookup` and checks it against the order clock and the categories.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        orders: &crate::config::OrderTimes,
        dispute_window: Duration,
        categories: &[String],
    ) -> Result<Self, Error> {
        let bps = |name: &str, text: &str| -> Result<u32, Error> {
            text.trim()
                .parse::<u32>()
                .ok()
                .filter(|b| *b <= BPS)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{name} is a whole number of basis points from 0 to 10000"
                    ))
                })
        };
        let days = |name: &str, default: u64| -> Result<u64, Error> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| Error::Config(format!("{name} is not a whole number of days"))),
            }
        };
        let mut config = SettlementConfig::default();
        if let Some(v) = lookup("RENJI_COMMISSION_BPS").filter(|v| !v.trim().is_empty()) {
            config.commission_bps = bps("RENJI_COMMISSION_BPS", &v)?;
        }
        if let Some(list) = lookup("RENJI_COMMISSION_BPS_BY_CATEGORY") {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let bad = || {
                    Error::Config(format!(
                        "RENJI_COMMISSION_BPS_BY_CATEGORY: {item:?} is not category=basis points"
                    ))
                };
                let (slug, value) = item.split_once('=').ok_or_else(bad)?;
                let slug = slug.trim();
                if !categories.iter().any(|c| c == slug) {
                    return Err(Error::Config(format!(
                        "RENJI_COMMISSION_BPS_BY_CATEGORY names {slug:?}, which is not in RENJI_CATEGORIES"
                    )));
                }
                let value = bps("RENJI_COMMISSION_BPS_BY_CATEGORY", value)?;
                if config
                    .commission_by_category
                    .insert(slug.to_owned(), value)
                    .is_some()
                {
                    return Err(Error::Config(format!(
                        "RENJI_COMMISSION_BPS_BY_CATEGORY names {slug:?} twice"
                    )));
                }
            }
        }
        if let Some(v) = lookup("RENJI_SETTLE_MAX_RATIO_BPS").filter(|v| !v.trim().is_empty()) {
            config.max_ratio_bps = bps("RENJI_SETTLE_MAX_RATIO_BPS", &v)?;
        }
        if let Some(v) = lookup("RENJI_PROVIDER_FEE_BPS").filter(|v| !v.trim().is_empty()) {
            config.fee_bps = bps("RENJI_PROVIDER_FEE_BPS", &v)?;
        }
        let deadline_days = days("RENJI_SETTLE_DEADLINE_DAYS", DEFAULT_DEADLINE_DAYS)?;
        if !(1..FREEZE_DAYS).contains(&deadline_days) {
            return Err(Error::Config(format!(
                "RENJI_SETTLE_DEADLINE_DAYS is a whole number from 1 to {} (the providers \
                 unfreeze an unsplit order to Renji after {FREEZE_DAYS} days)",
                FREEZE_DAYS - 1
            )));
        }
        config.deadline = Duration::from_secs(deadline_days * 86_400);
        config.delay =
            Duration::from_secs(days("RENJI_SETTLE_DELAY_DAYS", DEFAULT_DELAY_DAYS)? * 86_400);
        config.check(orders, dispute_window)?;
        Ok(config)
    }

    /// The start-up checks: every seller share within the granted ratio, and the longest way
    /// to a split (accept + auto-complete + dispute window + delay) shorter than the deadline.
    pub fn check(
        &self,
        orders: &crate::config::OrderTimes,
        dispute_window: Duration,
    ) -> Result<(), Error> {
        let lowest =
            std::iter::once(("RENJI_COMMISSION_BPS".to_owned(), self.commission_bps))
                .chain(self.commission_by_category.iter().map(|(slug, bps)| {
                    (format!("RENJI_COMMISSION_BPS_BY_CATEGORY ({slug})"), *bps)
                }))
                .min_by_key(|(_, bps)| *bps);
        if let Some((name, bps)) = lowest {
            if bps < self.fee_bps {
                return Err(Error::Config(format!(
                    "{name} = {bps} is less than the providers' fee (RENJI_PROVIDER_FEE_BPS = {}), \
                     which Renji's commission pays",
                    self.fee_bps
                )));
            }
            let seller_share = BPS - bps;
            if seller_share > self.max_ratio_bps {
                return Err(Error::Config(format!(
                    "{name} = {bps} leaves the seller {seller_share} basis points, more than the \
                     {} the provider lets Renji split out (RENJI_SETTLE_MAX_RATIO_BPS): raise the \
                     commission or have the provider raise the ratio",
                    self.max_ratio_bps
                )));
            }
        }
        let way = orders.accept + orders.auto_complete + dispute_window + self.delay;
        if way >= self.deadline {
            let days = |d: Duration| d.as_secs().div_ceil(86_400);
            return Err(Error::Config(format!(
                "an order may wait {} days before its split (RENJI_ORDER_ACCEPT_HOURS + \
                 RENJI_ORDER_AUTO_COMPLETE_DAYS + RENJI_DISPUTE_DAYS + RENJI_SETTLE_DELAY_DAYS), \
                 which reaches RENJI_SETTLE_DEADLINE_DAYS = {}: shorten them or the split would \
                 miss the providers' {FREEZE_DAYS}-day freeze",
                days(way),
                days(self.deadline)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OrderTimes;

    fn read(vars: &[(&str, &str)]) -> Result<SettlementConfig, Error> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SettlementConfig::from_lookup(
            &|name| map.get(name).cloned(),
            &OrderTimes::default(),
            Duration::from_secs(15 * 86_400),
            &["venue".to_owned(), "makeup".to_owned()],
        )
    }

    fn message(result: Result<SettlementConfig, Error>) -> String {
        match result {
            Err(Error::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn the_default_configuration_starts() {
        let c = read(&[]).unwrap();
        assert_eq!(c, SettlementConfig::default());
        assert_eq!(c.commission_bps("venue"), 1_000);
    }

    #[test]
    fn a_seller_share_over_the_granted_ratio_is_refused() {
        // WeChat's default 30 %: a 10 % commission leaves the seller 90 %.
        let m = message(read(&[("RENJI_SETTLE_MAX_RATIO_BPS", "3000")]));
        assert!(
            m.contains("RENJI_COMMISSION_BPS = 1000") && m.contains("9000"),
            "{m}"
        );
        read(&[
            ("RENJI_SETTLE_MAX_RATIO_BPS", "3000"),
            ("RENJI_COMMISSION_BPS", "7000"),
        ])
        .unwrap();
        // A category's lower commission counts too.
        let m = message(read(&[("RENJI_COMMISSION_BPS_BY_CATEGORY", "venue=500")]));
        assert!(m.contains("venue"), "{m}");
        let c = read(&[(
            "RENJI_COMMISSION_BPS_BY_CATEGORY",
            "venue=1500, makeup=2000",
        )])
        .unwrap();
        assert_eq!(c.commission_bps("venue"), 1_500);
        assert_eq!(c.commission_bps("other"), 1_000);
    }

    #[test]
    fn days_that_reach_the_deadline_are_refused() {
        // 1 (accept) + 7 + 15 + 1 = 24 < 25; a delay of 2 reaches it.
        let m = message(read(&[("RENJI_SETTLE_DELAY_DAYS", "2")]));
        assert!(m.contains("25"), "{m}");
        read(&[
            ("RENJI_SETTLE_DELAY_DAYS", "2"),
            ("RENJI_SETTLE_DEADLINE_DAYS", "29"),
        ])
        .unwrap();
        message(read(&[("RENJI_SETTLE_DEADLINE_DAYS", "30")]));
        message(read(&[("RENJI_SETTLE_DEADLINE_DAYS", "0")]));
    }

    #[test]
    fn bad_values_are_refused() {
        for vars in [
            [("RENJI_COMMISSION_BPS", "10001")],
            [("RENJI_COMMISSION_BPS", "-1")],
            [("RENJI_COMMISSION_BPS", "10%")],
            [("RENJI_SETTLE_MAX_RATIO_BPS", "x")],
            [("RENJI_COMMISSION_BPS_BY_CATEGORY", "nope=1000")],
            [("RENJI_COMMISSION_BPS_BY_CATEGORY", "venue")],
            [("RENJI_COMMISSION_BPS_BY_CATEGORY", "venue=1000,venue=1200")],
            [("RENJI_SETTLE_DELAY_DAYS", "one")],
            [("RENJI_PROVIDER_FEE_BPS", "1001")],
            [("RENJI_COMMISSION_BPS_BY_CATEGORY", "venue=50")],
        ] {
            message(read(&vars));
        }
    }
}
