//! WeChat Pay notifications (`POST /v1/payments/wechat/notify`): verified, decrypted and turned
//! into a [`Notice`], as wechatpay-go's `notify.Handler` does (`ParseNotifyRequest`), plus the
//! checks it leaves to its caller (merchant and app ids, the event's meaning).
//!
//! Order: signature (over the raw body, never re-serialised) → envelope → AES-256-GCM with the
//! APIv3 key (tag checked) → mchid/appid → the event. A [`Rejected`] changes nothing; its reason
//! is short and holds neither the body nor a key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::keys::{LazyKeys, PlatformKeys};
use crate::config::WechatPayConfig;
use crate::error::Error;
use crate::money::Fen;
use crate::payments::{Notice, Paid, Provider, RefundState, Rejected};
use crate::secrets::{Cached, Secrets};

/// The APIv3 key: 32 bytes, used as the AES-256-GCM key of notifications (and of the
/// certificates download, which we do not use).
pub struct ApiV3Key(LessSafeKey);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key")
    }
}

impl ApiV3Key {
    /// The key as WeChat Pay's merchant platform shows it: 32 characters, their bytes the key
    /// (surrounding blanks, such as a secret's trailing newline, ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.trim().as_bytes();
        if bytes.len() != 32 {
            return Err(format!("is {} bytes, not 32", bytes.len()));
        }
        let key = UnboundKey::new(&aead::AES_256_GCM, bytes)
            .map_err(|_| "is not an AES-256 key".to_owned())?;
        Ok(ApiV3Key(LessSafeKey::new(key)))
    }

    /// Opens `ciphertext` (ct || 16-byte tag) sealed with `nonce` (12 bytes) and `aad`.
    fn open(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Checks WeChat Pay notifications: built where the APIv3 key is configured (the
/// `wechat-pay-notify` function), with WeChat Pay's public keys and/or platform certificates.
#[derive(Debug)]
pub struct NotifyVerifier {
    mchid: String,
    appid: String,
    apiv3_key: Cached<ApiV3Key>,
    keys: LazyKeys,
}

#[derive(Deserialize)]
struct Envelope {
    event_type: String,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    nonce: String,
    #[serde(default)]
    associated_data: Option<String>,
}

/// The decrypted resource: a transaction (`TRANSACTION.*`) or a refund (`REFUND.*`). Only what
/// is used is read.
#[derive(Deserialize)]
struct Decrypted {
    mchid: Option<String>,
    appid: Option<String>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    trade_state: Option<String>,
    success_time: Option<String>,
    out_refund_no: Option<String>,
    refund_id: Option<String>,
    refund_status: Option<String>,
    amount: Option<Amount>,
}

#[derive(Deserialize)]
pub(super) struct Amount {
    pub(super) total: i64,
    /// A refund's amount (refund notifications and answers).
    #[serde(default)]
    pub(super) refund: Option<i64>,
    #[serde(default)]
    pub(super) currency: Option<String>,
}

impl NotifyVerifier {
    /// The verifier `config` asks for: `None` when no APIv3 key is configured (this function
    /// receives no notifications). A key given as a value is checked now; a stored one on first
    /// need. Bad public keys or certificates are an error of the first notification.
    pub fn from_config(config: &WechatPayConfig, secrets: &Secrets) -> Result<Option<Self>, Error> {
        let Some(setting) = &config.apiv3_key else {
            return Ok(None);
        };
        Ok(Some(NotifyVerifier {
            mchid: config.mchid.clone(),
            appid: config.appid.clone(),
            apiv3_key: secrets.cached("WECHATPAY_APIV3_KEY", setting, ApiV3Key::parse)?,
            keys: LazyKeys::new(config),
        }))
    }

    /// A verifier with its APIv3 key given (tests, the local server).
    pub fn with_key(config: &WechatPayConfig, apiv3_key: ApiV3Key) -> Self {
        NotifyVerifier {
            mchid: config.mchid.clone(),
            appid: config.appid.clone(),
            apiv3_key: Cached::fixed("WECHATPAY_APIV3_KEY", apiv3_key),
            keys: LazyKeys::new(config),
        }
    }

    /// Whether notifications can be checked now: the APIv3 key can be read (a 503 when Secrets
    /// Manager cannot be reached, a 500 when the key is not 32 bytes) and the public keys parse
    /// (a 500). The notify handler asks this first, so a configuration fault is answered as one
    /// (WeChat Pay retries) and logged as an error, not recorded as a rejected notification.
    pub async fn ready(&self) -> Result<(), Error> {
        self.apiv3_key.get().await?;
        self.keys.get().map_err(Error::Config)?;
        Ok(())
    }

    /// Verifies a notification (`headers` and the raw `body` as received) at `now`.
    pub async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Notice, Rejected> {
        let keys = self
            .keys
            .get()
            .map_err(|_| Rejected::new("WeChat Pay public keys are not configured correctly"))?;
        let apiv3_key = self
            .apiv3_key
            .get()
            .await
            .map_err(|_| Rejected::new("the APIv3 key cannot be read"))?;
        self.verify_with(&keys, &apiv3_key, headers, body, now)
    }

    fn verify_with(
        &self,
        keys: &PlatformKeys,
        apiv3_key: &ApiV3Key,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Notice, Rejected> {
        keys.verify(headers, body, now).map_err(Rejected::new)?;
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|_| Rejected::new("not a notification envelope"))?;
        let resource = &envelope.resource;
        if resource.algorithm != "AEAD_AES_256_GCM" {
            return Err(Rejected::new("resource.algorithm is not AEAD_AES_256_GCM"));
        }
        let ciphertext = STANDARD
            .decode(&resource.ciphertext)
            .map_err(|_| Rejected::new("resource.ciphertext is not base64"))?;
        let plain = apiv3_key
            .open(
                resource.nonce.as_bytes(),
                resource.associated_data.as_deref().unwrap_or("").as_bytes(),
                &ciphertext,
            )
            .ok_or_else(|| Rejected::new("resource does not decrypt (AES-256-GCM)"))?;
        let resource: Decrypted = serde_json::from_slice(&plain)
            .map_err(|_| Rejected::new("decrypted resource is not the expected JSON"))?;
        self.notice(&envelope.event_type, resource)
    }

    fn notice(&self, event_type: &str, r: Decrypted) -> Result<Notice, Rejected> {
        if r.mchid.as_deref() != Some(self.mchid.as_str()) {
            return Err(Rejected::new("mchid is not ours"));
        }
        // A transaction names the app it was paid in; a refund resource has no appid.
        let appid_required = event_type.starts_with("TRANSACTION.");
        match r.appid.as_deref() {
            Some(appid) if appid != self.appid => return Err(Rejected::new("appid is not ours")),
            None if appid_required => return Err(Rejected::new("appid missing")),
            _ => {}
        }
        let order_no = r
            .out_trade_no
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Rejected::new("out_trade_no missing"))?;
        let provider = Provider::Wechat;
        match event_type {
            "TRANSACTION.SUCCESS" if r.trade_state.as_deref() == Some("SUCCESS") => {
                let transaction_id = r
                    .transaction_id
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Rejected::new("transaction_id missing"))?;
                let amount = r.amount.ok_or_else(|| Rejected::new("amount missing"))?;
                let amount = amount_fen(&amount).map_err(Rejected::new)?;
                Ok(Notice::Paid {
                    provider,
                    order_no,
                    paid: Paid {
                        transaction_id,
                        amount,
                        paid_at: r.success_time.as_deref().and_then(utc_rfc3339),
                    },
                })
            }
            "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => {
                let out_refund_no = r
                    .out_refund_no
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| Rejected::new("out_refund_no missing"))?;
                // `refund_status` is the refund's state; the event type says the same.
                let status = r
                    .refund_status
                    .unwrap_or_else(|| event_type.trim_start_matches("REFUND.").to_owned());
                Ok(Notice::Refund {
                    provider,
                    order_no,
                    out_refund_no,
                    state: refund_state(&status, r.refund_id, r.amount.as_ref())
                        .ok_or_else(|| Rejected::new("unknown refund_status"))?,
                    paid_total: r.amount.as_ref().map(|a| Fen::from_fen(a.total)),
                })
            }
            _ => Ok(Notice::Other {
                provider,
                order_no,
                what: match r.trade_state {
                    Some(state) => format!("{} {}", printable(event_type), printable(&state)),
                    None => printable(event_type),
                },
            }),
        }
    }
}

/// A WeChat amount in fen (`amount.total`, an integer), in CNY.
pub(super) fn amount_fen(amount: &Amount) -> Result<Fen, String> {
    if amount.currency.as_deref().is_some_and(|c| c != "CNY") {
        return Err("amount.currency is not CNY".into());
    }
    if amount.total < 0 {
        return Err("amount.total is negative".into());
    }
    Ok(Fen::from_fen(amount.total))
}

/// A refund's `status` / `refund_status` as our state.
pub(super) fn refund_state(
    status: &str,
    refund_id: Option<String>,
    amount: Option<&Amount>,
) -> Option<RefundState> {
    Some(match status {
        "SUCCESS" => RefundState::Succeeded {
            refund_id,
            amount: amount.and_then(|a| a.refund).map(Fen::from_fen),
        },
        "PROCESSING" => RefundState::Processing,
        "CLOSED" | "ABNORMAL" => RefundState::Failed {
            reason: status.to_owned(),
        },
        _ => return None,
    })
}

/// WeChat's `2018-06-08T10:34:56+08:00` as RFC 3339 UTC (`2018-06-08T02:34:56Z`).
pub(super) fn utc_rfc3339(text: &str) -> Option<String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .ok()
}

fn printable(value: &str) -> String {
    value
        .chars()
        .take(64)
        .filter(|c| c.is_ascii_graphic())
        .collect()
}
