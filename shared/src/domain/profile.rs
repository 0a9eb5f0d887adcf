//! Validated profile fields (privacy policy §二(一)2: all optional; only nickname and avatar are
//! public). Each type can only hold an acceptable value.

use serde::{Deserialize, Deserializer, Serialize};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::error::Error;

/// Rejects control characters (newlines, NUL, bidi overrides stay out of names shown to others).
pub fn printable(field: &str, text: &str) -> Result<(), Error> {
    let bad = text.chars().any(|c| {
        c.is_control() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    });
    if bad {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Trims, then checks the length in characters (not bytes: 摄影师 is 3).
pub fn bounded_text(field: &str, text: &str, max_chars: usize) -> Result<String, Error> {
    let trimmed = text.trim();
    printable(field, trimmed)?;
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if chars > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters, not {chars}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// [`bounded_text`] with a lower bound too (names of people and companies need at least two).
pub(crate) fn bounded_text_between(
    field: &str,
    text: &str,
    min_chars: usize,
    max_chars: usize,
) -> Result<String, Error> {
    let text = bounded_text(field, text, max_chars)?;
    if text.chars().count() < min_chars {
        return Err(Error::invalid(
            field,
            format!("must be at least {min_chars} characters"),
        ));
    }
    Ok(text)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nickname(String);

impl Nickname {
    pub const MAX_CHARS: usize = 20;

    pub fn parse(text: &str) -> Result<Self, Error> {
        bounded_text("nickname", text, Self::MAX_CHARS).map(Nickname)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An https image URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub const MAX_LEN: usize = 512;

    pub fn parse(text: &str) -> Result<Self, Error> {
        https_url("avatar_url", text, Self::MAX_LEN).map(AvatarUrl)
    }
}

/// Accepts an absolute https URL with a host and no credentials, at most `max_len` bytes.
pub fn https_url(field: &str, text: &str, max_len: usize) -> Result<String, Error> {
    if text.len() > max_len {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_len} bytes"),
        ));
    }
    printable(field, text)?;
    let url = url::Url::parse(text).map_err(|_| Error::invalid(field, "must be a URL"))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, "must be an https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(field, "must not carry credentials"));
    }
    Ok(url.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Other,
}

/// A birth date: a real calendar date, not in the future, not before 1900.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BirthDate(Date);

impl BirthDate {
    pub fn parse(text: &str, today: Date) -> Result<Self, Error> {
        let format = format_description!("[year]-[month]-[day]");
        let date = Date::parse(text, format)
            .map_err(|_| Error::invalid("birth_date", "must be a real date as YYYY-MM-DD"))?;
        if date > today {
            return Err(Error::invalid("birth_date", "must not be in the future"));
        }
        if date.year() < 1900 {
            return Err(Error::invalid("birth_date", "must be in 1900 or later"));
        }
        Ok(BirthDate(date))
    }

    pub fn date(&self) -> Date {
        self.0
    }

    pub fn to_text(self) -> String {
        let format = format_description!("[year]-[month]-[day]");
        self.0.format(format).unwrap_or_default()
    }
}

/// Place of residence, free text such as "北京市朝阳区".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Residence(String);

impl Residence {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(text: &str) -> Result<Self, Error> {
        bounded_text("residence", text, Self::MAX_CHARS).map(Residence)
    }
}

/// For PATCH bodies: absent → `None` (leave as is), `null` → `Some(None)` (clear), a value →
/// `Some(Some(v))`. Use with `#[serde(default, deserialize_with = "patch_field")]`.
pub fn patch_field<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn nicknames_count_characters_and_refuse_control_characters() {
        assert_eq!(
            Nickname::parse(" 婚礼摄影师小王 ").unwrap().as_str(),
            "婚礼摄影师小王"
        );
        assert!(Nickname::parse(&"摄".repeat(20)).is_ok());
        let long = Nickname::parse(&"摄".repeat(21)).unwrap_err();
        assert!(long.message().contains("at most 20 characters"), "{long:?}");
        assert!(Nickname::parse("   ").is_err());
        assert!(Nickname::parse("a\nb").is_err());
        assert!(Nickname::parse("evil\u{202E}txt").is_err());
    }

    #[test]
    fn avatars_must_be_https() {
        assert!(AvatarUrl::parse("https://img.example.com/a.png").is_ok());
        for bad in [
            "http://img.example.com/a.png",
            "javascript:alert(1)",
            "https://user:pw@img.example.com/a.png",
            "not a url",
            "https://",
            "ftp://img.example.com/a.png",
        ] {
            assert!(AvatarUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(AvatarUrl::parse(&format!("https://a.com/{}", "x".repeat(600))).is_err());
    }

    #[test]
    fn birth_dates_are_real_and_not_in_the_future() {
        let today = date!(2026 - 11 - 29);
        assert_eq!(
            BirthDate::parse("2000-02-29", today).unwrap().to_text(),
            "2000-02-29"
        );
        for bad in [
            "2001-02-29",
            "2026-11-30",
            "1899-12-31",
            "2000-13-01",
            "20000101",
            "",
        ] {
            assert!(BirthDate::parse(bad, today).is_err(), "{bad}");
        }
        assert!(BirthDate::parse("2026-11-29", today).is_ok());
    }
}
