//! Validated profile fields (privacy policy §二(一)2: all optional; only nickname and avatar are
//! public). Each type can only hold an acceptable value.

use serde::{Deserialize, Deserializer, Serialize};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::error::Error;

/// Characters that show nothing, or change how the text around them shows: names and titles
/// are shown to others, so none of these may hide in them (a blank-looking nickname, a title
/// reversed by a bidi override, a line break smuggled in as U+2028).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}' // Arabic format characters
            | '\u{0890}'..='\u{0891}' | '\u{08E2}'
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels (render as nothing)
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, direction marks
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{2800}' // braille blank
            | '\u{FEFF}' // zero-width no-break space
            | '\u{FFF0}'..='\u{FFFB}' // interlinear annotation controls
            | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' // other format characters
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// Variation selectors choose how the character before them is drawn (❤ → ❤️): fine after one,
/// but they show nothing on their own.
fn variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Rejects control and invisible characters, and text with nothing visible in it.
pub fn printable(field: &str, text: &str) -> Result<(), Error> {
    if text.chars().any(invisible) {
        return Err(Error::invalid(
            field,
            "must not contain control or invisible characters",
        ));
    }
    let blank = |c: char| c.is_whitespace() || variation_selector(c);
    if !text.is_empty() && text.chars().all(blank) {
        return Err(Error::invalid(field, "must contain a visible character"));
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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Accepts an absolute https URL with a host and no credentials, at most `max_len` bytes (http on
/// the loopback too: the local server's media URLs).
pub fn https_url(field: &str, text: &str, max_len: usize) -> Result<String, Error> {
    if text.len() > max_len {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_len} bytes"),
        ));
    }
    printable(field, text)?;
    let url = url::Url::parse(text).map_err(|_| Error::invalid(field, "must be a URL"))?;
    // Plain http only on the loopback: the local server serves its uploads there
    // (`RENJI_MEDIA_BASE_URL`); a media URL must be under that base anyway (`media::attach`).
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host_str().is_none_or(str::is_empty) {
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
        let date = crate::dates::parse_day(text)
            .ok_or_else(|| Error::invalid("birth_date", "must be a real date as YYYY-MM-DD"))?;
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

/// For optional fields that have no null: absent → `None` (a PATCH leaves it as is, a create
/// takes the default), a value → `Some(v)`, `null` → an error naming the field (rather than
/// silently reading it as absent: a refund's `"amount_fen": null` is not "all of it"). Use with
/// `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "cannot be null: send a value, or leave the field out",
        )),
    }
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
    fn invisible_characters_are_refused() {
        for bad in [
            "a\u{2028}b",
            "a\u{2029}b",
            "\u{115F}",
            "\u{1160}\u{1160}",
            "\u{3164}",
            "\u{FFA0}",
            "小王\u{3164}",
            "a\u{200B}b",
            "a\u{200D}b",
            "a\u{2060}b",
            "\u{2066}x\u{2069}",
            "soft\u{00AD}hyphen",
            "\u{FE0F}",
            "\u{FE0F}\u{FE0E}",
            "\u{E0100}",
            "\u{2800}",
            "tag\u{E0041}",
            "\u{180E}",
        ] {
            let err = Nickname::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_field", "{bad:?}");
        }
        // Visible text keeps its emoji presentation selectors and inner spaces.
        for good in ["❤\u{FE0F}小王", "小 王", "Ａ王", "한국어"] {
            assert!(Nickname::parse(good).is_ok(), "{good:?}");
        }
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
            "+2001-01-01",
            "2001-1-01",
            "",
        ] {
            assert!(BirthDate::parse(bad, today).is_err(), "{bad}");
        }
        assert!(BirthDate::parse("2026-11-29", today).is_ok());
    }
}
