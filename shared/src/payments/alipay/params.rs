//! Alipay's parameter lists: the signing content, the form encoding, and Beijing time.
//!
//! The signing content (Alipay's "待签名字符串", the official SDKs' `getSignContent`): the
//! parameters sorted by name (ASCII), joined as `name=value&…` with the values raw (not
//! URL-encoded). Requests leave out `sign` and empty values and keep `sign_type`; notifications
//! leave out `sign` and `sign_type`, and Alipay's SDKs disagree on their empty values
//! (`notify.rs`).

use std::collections::BTreeMap;

use time::format_description::BorrowedFormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Alipay's clock: every time it sends or reads (`timestamp`, `time_expire`, `gmt_payment`) is
/// Beijing time, UTC+8, no daylight saving.
pub const BEIJING: UtcOffset = offset!(+8);

const ALIPAY_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn beijing_time(at: OffsetDateTime) -> String {
    at.to_offset(BEIJING)
        .format(ALIPAY_TIME)
        .unwrap_or_default()
}

/// A Beijing `yyyy-MM-dd HH:mm:ss` time as RFC 3339 UTC (`2026-11-29T04:05:06Z`), if it is one.
pub fn beijing_to_rfc3339(text: &str) -> Option<String> {
    let local = PrimitiveDateTime::parse(text, ALIPAY_TIME).ok()?;
    local
        .assume_offset(BEIJING)
        .to_offset(UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The signing content of `params`: sorted by name, `name=value` joined by `&`, `sign` always
/// left out, empty values left out unless `keep_empty`.
pub fn sign_content<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    keep_empty: bool,
) -> String {
    let sorted: BTreeMap<&str, &str> = params
        .into_iter()
        .filter(|(k, v)| !k.is_empty() && *k != "sign" && (keep_empty || !v.is_empty()))
        .collect();
    let mut out = String::new();
    for (k, v) in sorted {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `application/x-www-form-urlencoded` text of `params` (spaces as `+`, as the SDKs'
/// `URLEncoder` and `quote_plus` write them).
pub fn form_encode<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

/// A form body's fields, each value percent-decoded once (`+` is a space). A name given twice
/// is refused: which one was signed would be a guess.
pub fn form_decode(body: &[u8]) -> Result<BTreeMap<String, String>, &'static str> {
    let mut fields = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("a parameter appears twice");
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing_time() {
        let at = time::macros::datetime!(2026-11-29 16:30:05 UTC);
        assert_eq!(beijing_time(at), "2026-11-30 00:30:05");
        assert_eq!(
            beijing_to_rfc3339("2026-11-30 00:30:05").as_deref(),
            Some("2026-11-29T16:30:05Z")
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-11-30T00:30:05",
            "2026-13-01 00:00:00",
            "now",
        ] {
            assert_eq!(beijing_to_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_content_is_sorted_raw_and_leaves_out_sign() {
        let params = [
            ("timestamp", "2026-11-30 00:30:05"),
            ("sign", "abc"),
            ("biz_content", r#"{"a":"x&y=z"}"#),
            ("app_id", "2021"),
            ("notify_url", ""),
            ("sign_type", "RSA2"),
            ("Zeta", "capital sorts first"),
        ];
        assert_eq!(
            sign_content(params, false),
            r#"Zeta=capital sorts first&app_id=2021&biz_content={"a":"x&y=z"}&sign_type=RSA2&timestamp=2026-11-30 00:30:05"#
        );
        assert_eq!(
            sign_content(params, true),
            r#"Zeta=capital sorts first&app_id=2021&biz_content={"a":"x&y=z"}&notify_url=&sign_type=RSA2&timestamp=2026-11-30 00:30:05"#
        );
    }

    #[test]
    fn forms_decode_once_and_refuse_repeated_names() {
        let fields = form_decode(b"a=1+2&b=%2B%25%32%30&c=&d=%E6%94%AF").unwrap();
        assert_eq!(fields["a"], "1 2");
        // Decoded once only: "%2520"-style double encodings stay as sent.
        assert_eq!(fields["b"], "+%20");
        assert_eq!(fields["c"], "");
        assert_eq!(fields["d"], "支");
        assert!(form_decode(b"a=1&a=1").is_err());
        let encoded = form_encode([("k", "a b+c&d=é/")]);
        assert_eq!(encoded, "k=a+b%2Bc%26d%3D%C3%A9%2F");
        assert_eq!(form_decode(encoded.as_bytes()).unwrap()["k"], "a b+c&d=é/");
    }
}
