//! Alipay's asynchronous notifications (`POST /v1/payments/alipay/notify`, a form body).
//!
//! Verified as Alipay documents it ("异步通知验签"): every parameter but `sign` and `sign_type`,
//! values URL-decoded once, sorted, joined `k=v&…`, RSA2 over it with Alipay's public key.
//! Empty values: the official Java SDK (`AlipaySignature.getSignCheckContentV1`) leaves them
//! out; the python (`fzlee/alipay`) and npm SDKs keep them as `k=`. Alipay signs one of the two,
//! so both are tried, the Java one first. Then the ids are checked (app_id, seller_id), and the
//! amount read exactly (`Fen::parse_yuan`). The order's own amount is the domain's check.

use std::collections::BTreeMap;

use super::params::{beijing_to_rfc3339, form_decode, sign_content};
use super::sign::{public_keys, verify_any};
use crate::config::AlipayConfig;
use crate::error::Error;
use crate::money::Fen;
use crate::payments::rsa::PublicKey;
use crate::payments::{Notice, Paid, Provider, RefundState, Rejected};

/// Checks Alipay's notifications. Holds Alipay's public keys only: any one verifying is enough
/// (a key rotation lists both).
#[derive(Debug)]
pub struct NotifyVerifier {
    app_id: String,
    seller_id: Option<String>,
    keys: Vec<PublicKey>,
}

impl NotifyVerifier {
    /// From the configuration; `None` without a public key (this function checks no
    /// notification), an error for a key that does not parse.
    pub fn from_config(config: &AlipayConfig) -> Result<Option<Self>, Error> {
        if config.public_keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(NotifyVerifier {
            app_id: config.app_id.clone(),
            seller_id: config.seller_id.clone(),
            keys: public_keys(&config.public_keys).map_err(Error::Config)?,
        }))
    }

    pub fn new(app_id: &str, seller_id: Option<&str>, keys: Vec<PublicKey>) -> Self {
        NotifyVerifier {
            app_id: app_id.to_owned(),
            seller_id: seller_id.map(str::to_owned),
            keys,
        }
    }

    /// The notification in `body` (the raw form body), verified and read.
    pub fn verify(&self, body: &[u8]) -> Result<Notice, Rejected> {
        let fields = form_decode(body).map_err(Rejected::new)?;
        let sign = field(&fields, "sign").ok_or_else(|| Rejected::new("no sign"))?;
        // We sign with RSA2 only; an RSA (SHA1) notification is not ours to accept.
        if field(&fields, "sign_type").is_some_and(|t| t != "RSA2") {
            return Err(Rejected::new("sign_type is not RSA2"));
        }
        let signed = || {
            fields
                .iter()
                .filter(|(k, _)| k.as_str() != "sign_type")
                .map(|(k, v)| (k.as_str(), v.as_str()))
        };
        let has_empty = fields.values().any(String::is_empty);
        let verified = verify_any(&self.keys, &sign_content(signed(), false), sign)
            || (has_empty && verify_any(&self.keys, &sign_content(signed(), true), sign));
        if !verified {
            return Err(Rejected::new("signature does not verify"));
        }

        if field(&fields, "app_id") != Some(self.app_id.as_str()) {
            return Err(Rejected::new("app_id is not this app's"));
        }
        if let Some(seller) = &self.seller_id {
            if field(&fields, "seller_id") != Some(seller.as_str()) {
                return Err(Rejected::new("seller_id is not this merchant's"));
            }
        }
        let order_no = field(&fields, "out_trade_no")
            .ok_or_else(|| Rejected::new("no out_trade_no"))?
            .to_owned();
        let amount = field(&fields, "total_amount")
            .and_then(Fen::parse_yuan)
            .ok_or_else(|| Rejected::new("total_amount is not a yuan amount"))?;
        let status = field(&fields, "trade_status").unwrap_or("");

        // A refund's notification names it (`out_biz_no` = our `out_request_no`) and its amount;
        // Alipay sends one when the money has moved.
        if let (Some(out_refund_no), Some(_)) =
            (field(&fields, "out_biz_no"), field(&fields, "refund_fee"))
        {
            return Ok(Notice::Refund {
                provider: Provider::Alipay,
                order_no,
                out_refund_no: out_refund_no.to_owned(),
                paid_total: Some(amount),
                // `refund_fee` is the trade's running total, not this refund's amount.
                state: RefundState::Succeeded {
                    refund_id: None,
                    amount: None,
                },
            });
        }
        match status {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let transaction_id = field(&fields, "trade_no")
                    .ok_or_else(|| Rejected::new("no trade_no"))?
                    .to_owned();
                Ok(Notice::Paid {
                    provider: Provider::Alipay,
                    order_no,
                    paid: Paid {
                        transaction_id,
                        amount,
                        paid_at: field(&fields, "gmt_payment").and_then(beijing_to_rfc3339),
                    },
                })
            }
            other => Ok(Notice::Other {
                provider: Provider::Alipay,
                order_no,
                what: match other {
                    "" => "no trade_status".to_owned(),
                    s => s.chars().take(32).collect(),
                },
            }),
        }
    }
}

/// A field's value, if present and not empty.
fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}
