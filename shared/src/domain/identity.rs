//! Validated identity fields for real-name verification (privacy policy §二(一)2): a person's
//! name and resident ID number (GB 11643), a company's name and unified social credit code
//! (GB 32100-2015), and their masked forms.
//!
//! These values are personal data: `Debug` never shows them and error messages never echo them.

use time::{Date, Month};

use super::profile::{bounded_text_between, today};
use crate::error::Error;

/// Implements a `Debug` that names the type and hides the value.
macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    )*};
}

/// A person's legal name, as on the ID card.
#[derive(Clone, PartialEq, Eq)]
pub struct RealName(String);

impl RealName {
    pub const MIN_CHARS: usize = 2;
    pub const MAX_CHARS: usize = 30;

    pub fn parse(text: &str) -> Result<Self, Error> {
        bounded_text_between("real_name", text, Self::MIN_CHARS, Self::MAX_CHARS).map(RealName)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Only the last character shows: `张三` → `*三`.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let hidden = chars.len().saturating_sub(1);
        let mut masked = "*".repeat(hidden);
        masked.extend(&chars[hidden..]);
        masked
    }
}

/// A company's registered name. Public registry data, so it is shown in full.
#[derive(Clone, PartialEq, Eq)]
pub struct CompanyName(String);

impl CompanyName {
    pub const MIN_CHARS: usize = 2;
    pub const MAX_CHARS: usize = 100;

    pub fn parse(text: &str) -> Result<Self, Error> {
        bounded_text_between("company_name", text, Self::MIN_CHARS, Self::MAX_CHARS)
            .map(CompanyName)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// An 18-character resident identity number (GB 11643-1999): a 6-digit region, the birth date
/// as YYYYMMDD, a 3-digit sequence and an ISO 7064 MOD 11-2 check character. Stored uppercase.
#[derive(Clone, PartialEq, Eq)]
pub struct ResidentId(String);

impl ResidentId {
    const FIELD: &'static str = "id_number";
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &'static [u8; 11] = b"10X98765432";

    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_on(text, today())
    }

    /// As [`ResidentId::parse`], with the day that counts as today (birth dates cannot follow it).
    pub fn parse_on(text: &str, today: Date) -> Result<Self, Error> {
        let number = text.trim().to_ascii_uppercase();
        let bytes = number.as_bytes();
        let well_formed = bytes.len() == 18
            && bytes[..17].iter().all(u8::is_ascii_digit)
            && (bytes[17].is_ascii_digit() || bytes[17] == b'X');
        if !well_formed {
            return Err(Error::invalid(
                Self::FIELD,
                "must be 18 characters: 17 digits and a check digit or X",
            ));
        }
        let sum: u32 = bytes[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        if Self::CHECK[(sum % 11) as usize] != bytes[17] {
            return Err(Error::invalid(Self::FIELD, "check digit does not match"));
        }
        let digits = |range: std::ops::Range<usize>| -> u32 {
            bytes[range]
                .iter()
                .fold(0, |n, b| n * 10 + u32::from(b - b'0'))
        };
        let birth = Month::try_from(digits(10..12) as u8).ok().and_then(|m| {
            Date::from_calendar_date(digits(6..10) as i32, m, digits(12..14) as u8).ok()
        });
        match birth {
            None => Err(Error::invalid(Self::FIELD, "birth date is not a real date")),
            Some(d) if d > today => Err(Error::invalid(Self::FIELD, "birth date is in the future")),
            Some(d) if d.year() < 1900 => {
                Err(Error::invalid(Self::FIELD, "birth date is before 1900"))
            }
            Some(_) => Ok(ResidentId(number)),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The birth date the number carries (checked real when parsed).
    pub fn birth_date(&self) -> Option<Date> {
        let digits =
            |range: std::ops::Range<usize>| -> Option<u32> { self.0.get(range)?.parse().ok() };
        let month = Month::try_from(u8::try_from(digits(10..12)?).ok()?).ok()?;
        Date::from_calendar_date(
            i32::try_from(digits(6..10)?).ok()?,
            month,
            u8::try_from(digits(12..14)?).ok()?,
        )
        .ok()
    }
}

/// An 18-character unified social credit code (GB 32100-2015), uppercase, its last character a
/// MOD 31 check over the first 17.
#[derive(Clone, PartialEq, Eq)]
pub struct CreditCode(String);

impl CreditCode {
    const FIELD: &'static str = "credit_code";
    /// The code's alphabet: digits and capitals without I, O, Z, S, V.
    const CHARSET: &'static [u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];

    pub fn parse(text: &str) -> Result<Self, Error> {
        let code = text.trim().to_ascii_uppercase();
        let values: Option<Vec<usize>> = code
            .bytes()
            .map(|b| Self::CHARSET.iter().position(|&c| c == b))
            .collect();
        let values = match values {
            Some(v) if v.len() == 18 => v,
            _ => {
                return Err(Error::invalid(
                    Self::FIELD,
                    "must be 18 characters of 0-9 and A-Y without I, O, S, V, Z",
                ))
            }
        };
        let sum: usize = values[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(v, w)| v * w)
            .sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(Error::invalid(
                Self::FIELD,
                "check character does not match",
            ));
        }
        Ok(CreditCode(code))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

redacted_debug!(RealName, CompanyName, ResidentId, CreditCode);

/// An ID number or credit code with all but its first and last two characters hidden.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    let mut masked: String = chars[..2].iter().collect();
    masked.push_str(&"*".repeat(n - 4));
    masked.extend(&chars[n - 2..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 29);

    /// The check character of 17 digits, computed independently of the parser.
    fn with_check(first17: &str) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = first17
            .chars()
            .zip(weights)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
        format!("{first17}{check}")
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn valid_resident_ids_are_accepted_and_normalised() {
        for good in [
            "11010519491231002X",
            "110101199003074477",
            "440308199901010012",
            " 11010519491231002x ",
        ] {
            let id = ResidentId::parse_on(good, TODAY).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(id.expose(), good.trim().to_ascii_uppercase());
        }
        // Leap day, and a birth date of exactly today.
        assert!(ResidentId::parse_on(&with_check("11010120000229001"), TODAY).is_ok());
        assert!(ResidentId::parse_on(&with_check("11010120261129001"), TODAY).is_ok());
        assert!(ResidentId::parse_on(&with_check("11010119000101001"), TODAY).is_ok());
    }

    #[test]
    fn malformed_resident_ids_are_refused_naming_the_field() {
        let cases = [
            ("11010519491231002", "18 characters"),
            ("11010519491231002X1", "18 characters"),
            ("1101051949123100XX", "18 characters"),
            ("11010519491231002Y", "18 characters"),
            ("１１010519491231002X", "18 characters"), // full-width digits
            ("", "18 characters"),
            ("110105194912310021", "check digit"),
            ("110101199003074478", "check digit"),
            (&with_check("11010120010229001"), "not a real date"),
            (&with_check("11010119901301001"), "not a real date"),
            (&with_check("11010119900100001"), "not a real date"),
            (&with_check("11010120261130001"), "in the future"),
            (&with_check("11010118991231001"), "before 1900"),
        ];
        for (bad, why) in cases {
            let e = ResidentId::parse_on(bad, TODAY).unwrap_err();
            assert!(e.message().contains(why), "{bad}: {e:?}");
            assert!(!e.message().contains(bad) || bad.is_empty(), "echoed {bad}");
            assert_eq!(field_of(e), "id_number");
        }
    }

    #[test]
    fn credit_codes_check_their_last_character() {
        for good in [
            "91350100M000100Y43",
            "91110000802100433B",
            "9144030071526726XG",
            "91310000717866186P",
            "91350100m000100y43",
        ] {
            let code = CreditCode::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(code.expose(), good.to_ascii_uppercase());
        }
        for (bad, why) in [
            ("91350100M000100Y44", "check character"),
            ("91110000802100433C", "check character"),
            ("91350100M000100Y4", "18 characters"),
            ("91350100M000100Y433", "18 characters"),
            ("91350100I000100Y43", "18 characters"), // I is not in the alphabet
            ("91350100S000100Y43", "18 characters"),
            ("9135010-M000100Y43", "18 characters"),
        ] {
            let e = CreditCode::parse(bad).unwrap_err();
            assert!(e.message().contains(why), "{bad}: {e:?}");
            assert_eq!(field_of(e), "credit_code");
        }
    }

    #[test]
    fn names_count_characters_and_mask() {
        assert_eq!(RealName::parse(" 张三 ").unwrap().masked(), "*三");
        assert_eq!(RealName::parse("欧阳小明").unwrap().masked(), "***明");
        assert!(RealName::parse("张").is_err());
        assert!(RealName::parse(&"张".repeat(30)).is_ok());
        assert_eq!(
            field_of(RealName::parse(&"张".repeat(31)).unwrap_err()),
            "real_name"
        );
        assert!(RealName::parse("张\n三").is_err());
        assert!(CompanyName::parse(&"公".repeat(100)).is_ok());
        assert_eq!(
            field_of(CompanyName::parse(&"公".repeat(101)).unwrap_err()),
            "company_name"
        );
        assert!(CompanyName::parse(" ").is_err());
        assert_eq!(mask_number("11010519491231002X"), "11**************2X");
        assert_eq!(mask_number("91350100M000100Y43"), "91**************43");
    }

    #[test]
    fn debug_never_shows_the_values() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        let name = RealName::parse("张三").unwrap();
        let shown = format!("{id:?} {name:?}");
        assert!(!shown.contains("1101") && !shown.contains('张'), "{shown}");
    }
}
