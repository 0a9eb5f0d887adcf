//! Money is an integer number of fen (1/100 yuan), never a float.

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    /// The largest price a listing may ask: ¥1,000,000.
    pub const MAX_PRICE: i64 = 100_000_000;

    /// A listing price: at least 1 fen, at most [`Fen::MAX_PRICE`].
    pub fn price(field: &str, fen: i64) -> Result<Self, Error> {
        if !(1..=Self::MAX_PRICE).contains(&fen) {
            return Err(Error::invalid(
                field,
                format!(
                    "must be a whole number of fen from 1 to {}",
                    Self::MAX_PRICE
                ),
            ));
        }
        Ok(Fen(fen))
    }

    /// An amount computed by the server from amounts it holds (never from input).
    pub fn from_fen(fen: i64) -> Self {
        Fen(fen)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The amount as a yuan string with exactly two decimals, as the providers want it:
    /// 1 → "0.01", 10 → "0.10", 100 → "1.00". Integer arithmetic only.
    pub fn to_yuan(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let fen = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", fen / 100, fen % 100)
    }

    /// A yuan string read exactly, with no float in between: ASCII digits, then optionally a `.`
    /// and one or two digits ("1", "1.0", "1.00", "0.01"). Anything else — a sign, an exponent,
    /// spaces, a third decimal, a bare "1." or ".5", full-width digits, a value over `i64` fen — is
    /// `None`.
    pub fn parse_yuan(text: &str) -> Option<Fen> {
        let (whole, decimals) = match text.split_once('.') {
            Some((whole, decimals)) => (whole, Some(decimals)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) {
            return None;
        }
        let cents = match decimals {
            None => 0,
            Some(d) if digits(d) && d.len() <= 2 => {
                // "5" is 50 fen, "05" is 5.
                let n: i64 = d.parse().ok()?;
                if d.len() == 1 {
                    n * 10
                } else {
                    n
                }
            }
            Some(_) => return None,
        };
        let mut yuan: i64 = 0;
        for b in whole.bytes() {
            yuan = yuan.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        }
        yuan.checked_mul(100)?.checked_add(cents).map(Fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_are_written_as_yuan_with_two_decimals() {
        for (fen, yuan) in [
            (0, "0.00"),
            (1, "0.01"),
            (9, "0.09"),
            (10, "0.10"),
            (99, "0.99"),
            (100, "1.00"),
            (101, "1.01"),
            (110, "1.10"),
            (12_345, "123.45"),
            (Fen::MAX_PRICE, "1000000.00"),
            (9_999_999_999, "99999999.99"),
            (10_000_000_000, "100000000.00"),
            (-1, "-0.01"),
            (i64::MAX, "92233720368547758.07"),
            (i64::MIN, "-92233720368547758.08"),
        ] {
            assert_eq!(Fen(fen).to_yuan(), yuan, "{fen}");
        }
    }

    #[test]
    fn yuan_strings_are_read_exactly() {
        for (yuan, fen) in [
            ("0", 0),
            ("0.0", 0),
            ("0.00", 0),
            ("0.01", 1),
            ("0.1", 10),
            ("0.10", 10),
            ("0.09", 9),
            ("0.99", 99),
            ("1", 100),
            ("1.0", 100),
            ("1.00", 100),
            ("1.5", 150),
            ("1.05", 105),
            ("01.00", 100),
            ("123.45", 12_345),
            ("99999999.99", 9_999_999_999),
            ("100000000", 10_000_000_000),
            ("92233720368547758.07", i64::MAX),
        ] {
            assert_eq!(Fen::parse_yuan(yuan), Some(Fen(fen)), "{yuan}");
        }
    }

    #[test]
    fn anything_but_plain_yuan_is_refused() {
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            ".50",
            "1.234",
            "0.001",
            "1.000",
            "1e2",
            "1E2",
            "1e-2",
            "-0.01",
            "-1",
            "+1",
            "+0.01",
            " 1.00",
            "1.00 ",
            "1 .00",
            "1. 00",
            "1,00",
            "1,000.00",
            "1..0",
            "1.0.0",
            "0x10",
            "１",
            "１.００",
            "1.０",
            "٣",
            "NaN",
            "inf",
            "1_000",
            "¥1.00",
            "1.00元",
            "\u{0}1",
            "92233720368547758.08",
            "92233720368547759",
            "99999999999999999999",
            "184467440737095516.16",
        ] {
            assert_eq!(Fen::parse_yuan(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_amount_round_trips_near_the_boundaries() {
        let edges = [
            0_i64,
            100,
            1_000,
            Fen::MAX_PRICE,
            9_999_999_999,
            i64::MAX - 1_000,
        ];
        for edge in edges {
            for fen in edge..=edge.saturating_add(1_000) {
                let yuan = Fen(fen).to_yuan();
                assert_eq!(Fen::parse_yuan(&yuan), Some(Fen(fen)), "{yuan}");
                // The one-decimal and whole forms read back the same where they exist.
                if fen % 10 == 0 {
                    assert_eq!(Fen::parse_yuan(&yuan[..yuan.len() - 1]), Some(Fen(fen)));
                }
                if fen % 100 == 0 {
                    assert_eq!(Fen::parse_yuan(&yuan[..yuan.len() - 3]), Some(Fen(fen)));
                }
            }
        }
    }

    #[test]
    fn a_third_decimal_is_refused_whatever_its_digit() {
        for d in 0..=9 {
            assert_eq!(Fen::parse_yuan(&format!("1.00{d}")), None);
            assert_eq!(Fen::parse_yuan(&format!("1.{d}")), Some(Fen(100 + d * 10)));
        }
    }
}
