//! Calendar days as the API writes them: exactly `YYYY-MM-DD`, ASCII digits.

use time::Date;

/// A real calendar day written exactly `YYYY-MM-DD` (ten ASCII characters), as openapi.yaml's
/// patterns say. The `time` crate's `[year]-[month]-[day]` alone also reads a signed year
/// (`+2001-01-01`), which is no such text.
pub fn parse_day(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn days_are_exactly_yyyy_mm_dd() {
        assert_eq!(parse_day("2001-01-01"), Some(date!(2001 - 01 - 01)));
        assert_eq!(parse_day("2000-02-29"), Some(date!(2000 - 02 - 29)));
        for bad in [
            "+2001-01-01",
            "+201-01-01",
            "-2001-01-01",
            "2001-1-01",
            "2001-01-1",
            "02001-01-01",
            "2001-01-01 ",
            " 2001-01-01",
            "2001/01/01",
            "20010101",
            "２００１-01-01",
            "2001-02-29",
            "2001-13-01",
            "2001-00-10",
            "2001-01-00",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
