//! WeChat Pay's verification keys and the check of a signed message (a notification or an API
//! answer), as wechatpay-go's `wechatPayValidator` does it.
//!
//! Keys are chosen by `Wechatpay-Serial`: WeChat Pay public keys by their id (`PUB_KEY_ID_…`)
//! and platform certificates by their serial, both at once (a merchant switching from
//! certificates to the public key receives both for a while).

use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use time::OffsetDateTime;

use crate::config::WechatPayConfig;
use crate::payments::rsa::{self, PublicKey};

pub const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";
/// Probe traffic WeChat Pay sends to check that signatures are verified: it must fail.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";
/// wechatpay-go's `consts.FiveMinute`: a timestamp this far (or farther) from now is refused.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

pub const HEADER_SERIAL: &str = "wechatpay-serial";
pub const HEADER_SIGNATURE: &str = "wechatpay-signature";
pub const HEADER_TIMESTAMP: &str = "wechatpay-timestamp";
pub const HEADER_NONCE: &str = "wechatpay-nonce";
pub const HEADER_SIGNATURE_TYPE: &str = "wechatpay-signature-type";

/// The public keys WeChat Pay signs with, by serial.
#[derive(Debug)]
pub struct PlatformKeys {
    keys: Vec<(String, PublicKey)>,
}

impl PlatformKeys {
    /// The public keys (`id`, PEM) and platform certificates (PEM) of the configuration. None at
    /// all is an error: nothing could be verified.
    pub fn new(public_keys: &[(String, String)], certs: Option<&str>) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (id, pem) in public_keys {
            let key = PublicKey::from_pem(pem)
                .map_err(|e| format!("WECHATPAY_PUBLIC_KEY ({id}): {e}"))?;
            keys.push((id.clone(), key));
        }
        if let Some(pem) = certs {
            keys.extend(
                rsa::certificates(pem).map_err(|e| format!("WECHATPAY_PLATFORM_CERTS: {e}"))?,
            );
        }
        if keys.is_empty() {
            return Err(
                "neither WECHATPAY_PUBLIC_KEY_ID + WECHATPAY_PUBLIC_KEY nor \
                 WECHATPAY_PLATFORM_CERTS is set"
                    .into(),
            );
        }
        Ok(PlatformKeys { keys })
    }

    pub(crate) fn get(&self, serial: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|(s, _)| s == serial).map(|(_, k)| k)
    }

    /// The serial we tell WeChat Pay we verify with (the request's `Wechatpay-Serial`, as
    /// wechatpay-go sends it): the public key's id when one is configured, which makes WeChat
    /// Pay sign its answers with that key during a switch from certificates.
    pub fn preferred_serial(&self) -> Option<&str> {
        self.keys
            .iter()
            .map(|(s, _)| s.as_str())
            .find(|s| s.starts_with("PUB_KEY_ID_"))
            .or_else(|| self.keys.first().map(|(s, _)| s.as_str()))
    }

    /// Checks a message WeChat Pay signed: the headers present (`Wechatpay-Serial`,
    /// `-Signature`, `-Timestamp`, `-Nonce`; `-Signature-Type`, when sent, the RSA one), the
    /// timestamp less than five minutes from `now` either way, not a `WECHATPAY/SIGNTEST/`
    /// probe, and the RSA signature over `TS\nNONCE\nBODY\n` with the key the serial names —
    /// `body` exactly as received. The error is a short reason (no body, no key).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), String> {
        let header = |name: &str| -> Result<&str, String> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{} header missing", canonical(name)))
        };
        if let Some(kind) = headers.get(HEADER_SIGNATURE_TYPE) {
            if kind.to_str().ok().map(str::trim) != Some(SIGNATURE_TYPE) {
                return Err("unsupported Wechatpay-Signature-Type".into());
            }
        }
        let serial = header(HEADER_SERIAL)?;
        let signature = header(HEADER_SIGNATURE)?;
        let timestamp = header(HEADER_TIMESTAMP)?;
        let nonce = header(HEADER_NONCE)?;
        let timestamp: i64 = timestamp
            .parse()
            .map_err(|_| "Wechatpay-Timestamp is not a number".to_owned())?;
        if now
            .unix_timestamp()
            .checked_sub(timestamp)
            .is_none_or(|skew| skew.abs() >= MAX_SKEW_SECS)
        {
            return Err("Wechatpay-Timestamp is more than 5 minutes from now".into());
        }
        if signature.starts_with(SIGNTEST_PREFIX) {
            return Err("signature test probe (WECHATPAY/SIGNTEST/)".into());
        }
        let key = self
            .get(serial)
            .ok_or_else(|| format!("unknown Wechatpay-Serial {}", printable(serial)))?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| "Wechatpay-Signature is not base64".to_owned())?;
        let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        match key.verify_sha256(&message, &signature) {
            true => Ok(()),
            false => Err("signature does not verify".into()),
        }
    }
}

/// The configured keys, parsed on first use (certificates cost nothing at start-up, and a bad
/// PEM is an error of the requests that need it, not a failed start).
pub(super) struct LazyKeys {
    public_keys: Vec<(String, String)>,
    certs: Option<String>,
    parsed: OnceLock<Result<Arc<PlatformKeys>, String>>,
}

impl std::fmt::Debug for LazyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.public_keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("LazyKeys")
            .field("public_key_ids", &ids)
            .field("platform_certs", &self.certs.is_some())
            .finish_non_exhaustive()
    }
}

impl LazyKeys {
    pub(super) fn new(config: &WechatPayConfig) -> Self {
        LazyKeys {
            public_keys: config.public_keys.clone(),
            certs: config.platform_certs.clone(),
            parsed: OnceLock::new(),
        }
    }

    pub(super) fn get(&self) -> Result<Arc<PlatformKeys>, String> {
        self.parsed
            .get_or_init(|| {
                PlatformKeys::new(&self.public_keys, self.certs.as_deref()).map(Arc::new)
            })
            .clone()
    }
}

fn canonical(name: &str) -> &'static str {
    match name {
        HEADER_SERIAL => "Wechatpay-Serial",
        HEADER_SIGNATURE => "Wechatpay-Signature",
        HEADER_TIMESTAMP => "Wechatpay-Timestamp",
        HEADER_NONCE => "Wechatpay-Nonce",
        _ => "a Wechatpay header",
    }
}

/// A header value fit for a log line: short, printable ASCII.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| match c.is_ascii_graphic() {
            true => c,
            false => '?',
        })
        .collect()
}
