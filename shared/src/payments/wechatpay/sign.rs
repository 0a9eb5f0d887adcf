//! Our signatures for WeChat Pay: the `Authorization` header of every API request and the
//! `paySign` of `wx.requestPayment`, as wechatpay-go makes them (`WechatPayCredentials`,
//! `SHA256WithRSASigner`, `PrepayWithRequestPayment`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use super::keys::SIGNATURE_TYPE;
use crate::payments::rsa::PrivateKey;

/// wechatpay-go's `utils.NonceSymbols` and `NonceLength`.
const NONCE_SYMBOLS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NONCE_LENGTH: usize = 32;

/// A random 32-character `[0-9a-zA-Z]` nonce (`nonce_str`, `nonceStr`); `None` only if the
/// system's random source fails.
pub fn nonce() -> Option<String> {
    let mut bytes = [0u8; NONCE_LENGTH];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(
        bytes
            .iter()
            .map(|b| char::from(NONCE_SYMBOLS[usize::from(*b) % NONCE_SYMBOLS.len()]))
            .collect(),
    )
}

/// The string an API request's signature covers: `METHOD\nPATH?QUERY\nTS\nNONCE\nBODY\n` (a GET
/// has an empty body, so it ends `\n\n`).
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// Who signs: the merchant, its API certificate's serial, and its private key.
pub struct Merchant<'a> {
    pub mchid: &'a str,
    pub serial: &'a str,
    pub key: &'a PrivateKey,
}

impl Merchant<'_> {
    /// The `Authorization` header of a request, in wechatpay-go's order: `WECHATPAY2-SHA256-
    /// RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> String {
        let message = request_message(method, path_and_query, timestamp, nonce, body);
        let signature = STANDARD.encode(self.key.sign_sha256(message.as_bytes()));
        format!(
            "{SIGNATURE_TYPE} mchid=\"{}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",\
             serial_no=\"{}\",signature=\"{signature}\"",
            self.mchid, self.serial
        )
    }
}

/// The parameters of `wx.requestPayment` for `prepay_id`: `{timeStamp, nonceStr, package,
/// signType: "RSA", paySign}`, `paySign` being SHA256withRSA over
/// `appId\ntimeStamp\nnonceStr\npackage\n`.
pub fn payment_params(
    key: &PrivateKey,
    appid: &str,
    prepay_id: &str,
    timestamp: i64,
    nonce: &str,
) -> serde_json::Value {
    let timestamp = timestamp.to_string();
    let package = format!("prepay_id={prepay_id}");
    let message = format!("{appid}\n{timestamp}\n{nonce}\n{package}\n");
    let pay_sign = STANDARD.encode(key.sign_sha256(message.as_bytes()));
    json!({
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": pay_sign,
    })
}

/// `text` cut to at most `max` bytes, on a character boundary (WeChat's `description` is at most
/// 127 bytes of UTF-8).
pub fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most `max` characters (a refund's `reason`: 80).
pub fn cut_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_32_symbols_and_differ() {
        let a = nonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, nonce().unwrap());
    }

    #[test]
    fn descriptions_are_cut_on_a_character_boundary() {
        assert_eq!(cut_bytes("abc", 127), "abc");
        let a = "a".repeat(127);
        assert_eq!(cut_bytes(&format!("{a}b"), 127), a);
        // 42 three-byte characters are 126 bytes; the 43rd does not fit in 127.
        let han = "汉".repeat(50);
        let cut = cut_bytes(&han, 127);
        assert_eq!(cut.len(), 126);
        assert_eq!(cut.chars().count(), 42);
        let mixed = format!("a{}", "汉".repeat(50));
        assert_eq!(cut_bytes(&mixed, 127).len(), 127);
        // A four-byte character straddling the limit is dropped whole.
        let emoji = format!("{}😀", "a".repeat(125));
        assert_eq!(cut_bytes(&emoji, 127), "a".repeat(125));
    }

    #[test]
    fn reasons_are_cut_to_80_characters() {
        let long = "退".repeat(100);
        assert_eq!(cut_chars(&long, 80).chars().count(), 80);
        assert_eq!(cut_chars("short", 80), "short");
    }

    #[test]
    fn the_signed_message_has_a_newline_after_each_part() {
        assert_eq!(
            request_message(
                "GET",
                "/v3/certificates",
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                ""
            ),
            "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
    }
}
