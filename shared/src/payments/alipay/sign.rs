//! Signing requests (RSA2: SHA256withRSA, PKCS#1 v1.5, base64) and checking Alipay's signatures
//! with its public key(s).
//!
//! A request's parameters are the common ones — `app_id`, `method`, `format=JSON`,
//! `charset=utf-8`, `sign_type=RSA2`, `timestamp` (Beijing `yyyy-MM-dd HH:mm:ss`),
//! `version=1.0`, `notify_url` — and `biz_content` (JSON). `sign` covers them all, `sign_type`
//! included, empty ones left out (`params::sign_content`); the values are URL-encoded only
//! after signing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;

use super::params::{beijing_time, form_encode, sign_content};
use crate::payments::rsa::{PrivateKey, PublicKey};

/// A request's parameters, in the order they are sent, `sign` last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedParams(pub Vec<(String, String)>);

impl SignedParams {
    /// The parameters form-encoded: the app's order string, a URL's query, a request body.
    pub fn encoded(&self) -> String {
        form_encode(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What every request of one app carries.
#[derive(Clone, Debug)]
pub struct RequestBase<'a> {
    pub app_id: &'a str,
    /// Absolute https URL, or empty (then left out: Alipay sends no notification, and the jobs'
    /// queries find the payment).
    pub notify_url: &'a str,
}

/// The parameters of `method` with `biz_content`, signed with `key` at `now`.
pub fn sign_request(
    key: &PrivateKey,
    base: &RequestBase<'_>,
    method: &str,
    biz_content: &Value,
    now: OffsetDateTime,
) -> SignedParams {
    let mut params: Vec<(String, String)> = [
        ("app_id", base.app_id.to_owned()),
        ("method", method.to_owned()),
        ("format", "JSON".to_owned()),
        ("charset", "utf-8".to_owned()),
        ("sign_type", "RSA2".to_owned()),
        ("timestamp", beijing_time(now)),
        ("version", "1.0".to_owned()),
        ("notify_url", base.notify_url.to_owned()),
        ("biz_content", biz_content.to_string()),
    ]
    .into_iter()
    // Empty values are not sent at all, so the content signed is the content sent.
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let content = sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), false);
    let sign = STANDARD.encode(key.sign_sha256(content.as_bytes()));
    params.push(("sign".to_owned(), sign));
    SignedParams(params)
}

/// Whether `sign` (base64) is one of `keys`' RSA2 signature of `content`.
pub fn verify_any(keys: &[PublicKey], content: &str, sign: &str) -> bool {
    let Ok(sig) = STANDARD.decode(sign.trim()) else {
        return false;
    };
    !sig.is_empty()
        && keys
            .iter()
            .any(|key| key.verify_sha256(content.as_bytes(), &sig))
}

/// A key's text as PEM. Alipay's key tool and open platform console show keys as bare base64
/// (no `-----BEGIN` line); such a value is wrapped in `label`'s lines. `\n` escapes allowed.
fn as_pem(text: &str, label: &str) -> String {
    let text = crate::config::pem_text(text);
    match text.contains("-----BEGIN") {
        true => text,
        false => format!("-----BEGIN {label}-----\n{text}\n-----END {label}-----\n"),
    }
}

/// The app private key: PEM (PKCS#8 or PKCS#1), or bare base64 of either.
pub fn private_key(text: &str) -> Result<PrivateKey, String> {
    PrivateKey::from_pem(&as_pem(text, "PRIVATE KEY"))
        .or_else(|e| PrivateKey::from_pem(&as_pem(text, "RSA PRIVATE KEY")).map_err(|_| e))
        .map_err(|e| e.to_string())
}

/// Alipay's public keys: PEM (SPKI or PKCS#1), or bare base64 SPKI as Alipay's console shows
/// it. A bad one is a start-up error naming its position, never its text.
pub fn public_keys(pems: &[String]) -> Result<Vec<PublicKey>, String> {
    pems.iter()
        .enumerate()
        .map(|(i, pem)| {
            PublicKey::from_pem(&as_pem(pem, "PUBLIC KEY"))
                .map_err(|e| format!("ALIPAY_PUBLIC_KEY (key {}): {e}", i + 1))
        })
        .collect()
}
