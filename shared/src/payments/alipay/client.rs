//! The HTTP adapter: [`AlipayGateway`] implements [`Gateway`] over Alipay's open API gateway.
//!
//! `start` makes no call: the app's order string (`alipay.trade.app.pay`) and the web's pay URL
//! (`alipay.trade.wap.pay`) are signed here and opened by the client. `query`, `close`,
//! `refund` and `refund_query` POST the signed parameters, form-encoded, to the gateway, and
//! every answer's signature is checked before it is believed (`answer.rs`).

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::answer::{split, BadAnswer, Status};
use super::params::{beijing_time, beijing_to_rfc3339};
use super::sign::{private_key, public_keys, sign_request, verify_any, RequestBase, SignedParams};
use crate::config::AlipayConfig;
use crate::error::Error;
use crate::money::Fen;
use crate::payments::rsa::{PrivateKey, PublicKey};
use crate::payments::{
    Channel, Gateway, GatewayError, Paid, PaymentStart, RefundRequest, RefundState, Started, Trade,
    TradeBillLine,
};
use crate::secrets::{Cached, Secrets};

/// Alipay's `subject` limit, in characters.
const MAX_SUBJECT_CHARS: usize = 256;
/// Alipay's sub_codes for a day without a bill: what it answers (`isp.bill_not_exist`) and what
/// its OpenAPI spec names (`BILL_NOT_EXIST`), see `bill.rs`.
const BILL_NOT_EXIST: &[&str] = &["isp.bill_not_exist", "BILL_NOT_EXIST"];
/// Alipay's sub_code for a trade (or refund's trade) it does not know.
const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";

/// The Alipay adapter of one app.
pub struct AlipayGateway {
    /// Built on the first call (`outbound::client`).
    http: std::sync::OnceLock<reqwest::Client>,
    app_id: String,
    gateway: String,
    notify_url: String,
    /// The app private key, read on first need (from Secrets Manager in Lambda).
    key: Cached<PrivateKey>,
    /// Alipay's public keys: its answers are checked with them.
    alipay_keys: Vec<PublicKey>,
}

impl std::fmt::Debug for AlipayGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayGateway")
            .field("app_id", &self.app_id)
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl AlipayGateway {
    /// From the configuration; `None` without an app private key (this function calls no
    /// Alipay API). Alipay's public key is required with it: an answer that cannot be checked
    /// is never believed.
    pub fn from_config(config: &AlipayConfig, secrets: &Secrets) -> Result<Option<Self>, Error> {
        let Some(setting) = &config.app_private_key else {
            return Ok(None);
        };
        if config.public_keys.is_empty() {
            return Err(Error::Config(
                "ALIPAY_PUBLIC_KEY is not set: Alipay's answers could not be checked".into(),
            ));
        }
        let key = secrets.cached("ALIPAY_APP_PRIVATE_KEY", setting, private_key)?;
        Ok(Some(Self::with_key(
            config,
            key,
            public_keys(&config.public_keys).map_err(Error::Config)?,
        )?))
    }

    /// With the key at hand (tests).
    pub fn with_key(
        config: &AlipayConfig,
        key: Cached<PrivateKey>,
        alipay_keys: Vec<PublicKey>,
    ) -> Result<Self, Error> {
        // A relative URL (no RENJI_PUBLIC_BASE_URL) is no use to Alipay: left out, the jobs'
        // queries find the payments.
        let notify_url = match config.notify_url.starts_with("https://")
            || config.notify_url.starts_with("http://")
        {
            true => config.notify_url.clone(),
            false => String::new(),
        };
        Ok(AlipayGateway {
            http: std::sync::OnceLock::new(),
            app_id: config.app_id.clone(),
            gateway: config.gateway.clone(),
            notify_url,
            key,
            alipay_keys,
        })
    }

    async fn sign(&self, method: &str, biz: &Value) -> Result<SignedParams, GatewayError> {
        let key = (self.key.get().await)
            .map_err(|e| GatewayError::Unavailable(format!("app private key: {e}")))?;
        // Only a payment names the notify URL (Alipay notifies its refunds there too).
        let notify_url = match method.ends_with(".pay") {
            true => self.notify_url.as_str(),
            false => "",
        };
        let base = RequestBase {
            app_id: &self.app_id,
            notify_url,
        };
        Ok(sign_request(
            &key,
            &base,
            method,
            biz,
            OffsetDateTime::now_utc(),
        ))
    }

    /// The signed parameters of a pay method, for the client.
    pub async fn pay_params(&self, start: &PaymentStart) -> Result<SignedParams, GatewayError> {
        let subject: String = start.description.chars().take(MAX_SUBJECT_CHARS).collect();
        let (method, product_code) = match start.channel {
            Channel::Alipay => ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
            Channel::AlipayWap => ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
            Channel::Wechat => {
                return Err(GatewayError::Refused {
                    code: "CHANNEL".into(),
                    message: "not an Alipay channel".into(),
                })
            }
        };
        let biz = json!({
            "out_trade_no": start.order_no,
            "total_amount": start.amount.to_yuan(),
            "subject": subject,
            "product_code": product_code,
            "time_expire": beijing_time(start.expires_at),
            // Frozen for the settlement's royalty split (settlement.md).
            "extend_params": {"royalty_freeze": "true"},
        });
        self.sign(method, &biz).await
    }

    /// Calls `method` and answers its verified response object.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        biz: Value,
    ) -> Result<(Status, T), GatewayError> {
        let params = self.sign(method, &biz).await?;
        let unavailable =
            |e: reqwest::Error| GatewayError::Unavailable(e.without_url().to_string());
        let response = crate::outbound::client(&self.http)
            .map_err(GatewayError::Unavailable)?
            .post(&self.gateway)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(params.encoded())
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(GatewayError::Unavailable(format!("Alipay HTTP {status}")));
        }
        let body = crate::outbound::read_capped(response, crate::outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| GatewayError::Unavailable(format!("Alipay: {e}")))?;
        let body = String::from_utf8(body)
            .map_err(|_| GatewayError::Unavailable("Alipay answer is not UTF-8".into()))?;
        let content = match self.verified(&body, method) {
            Ok(content) => content,
            Err((e, sub_code)) => {
                self.refused_our_signature(&sub_code).await;
                return Err(e);
            }
        };
        let parsed = |_| GatewayError::Unavailable(format!("unreadable {method} answer"));
        let status: Status = serde_json::from_str(content).map_err(parsed)?;
        self.refused_our_signature(&status.sub_code).await;
        let fields: T = serde_json::from_str(content).map_err(parsed)?;
        Ok((status, fields))
    }

    /// A bill file at the URL a verified answer gave (Alipay's files are not signed; the URL is
    /// good for 30 seconds). http(s) only, read capped.
    async fn fetch_file(&self, url: &str) -> Result<Vec<u8>, GatewayError> {
        let parsed = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| GatewayError::Unavailable("a bill URL that is not http(s)".into()))?;
        let response = crate::outbound::client(&self.http)
            .map_err(GatewayError::Unavailable)?
            .get(parsed)
            .timeout(crate::payments::wechatpay::client::BILL_TIMEOUT)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(GatewayError::Unavailable(format!(
                "Alipay bill download HTTP {}",
                response.status().as_u16()
            )));
        }
        crate::outbound::read_capped(response, crate::payments::wechatpay::client::MAX_BILL_BYTES)
            .await
            .map_err(|e| GatewayError::Unavailable(format!("Alipay bill: {e}")))
    }

    /// Alipay could not verify our signature: the app key may have been rotated since it was
    /// read, so the next call reads it again.
    async fn refused_our_signature(&self, sub_code: &str) {
        if sub_code == "isv.invalid-signature" {
            self.key.refresh_soon().await;
        }
    }

    /// The raw response object of `body`, if Alipay signed it; else why not, and the answer's
    /// (unbelieved) sub_code.
    fn verified<'a>(&self, body: &'a str, method: &str) -> Result<&'a str, (GatewayError, String)> {
        let answer = split(body, method).map_err(|e| match e {
            BadAnswer::Malformed(why) => (
                GatewayError::Unavailable(format!("{method} answer: {why}")),
                String::new(),
            ),
            BadAnswer::GatewayError { code, sub_code } => (
                GatewayError::Unavailable(format!(
                    "Alipay gateway error {} {}",
                    short(&code),
                    short(&sub_code)
                )),
                sub_code,
            ),
        })?;
        let signed = verify_any(&self.alipay_keys, answer.content, &answer.sign)
            // Java SDK: a signature made over the text with `\/` unescaped is accepted too.
            || (answer.content.contains("\\/")
                && verify_any(
                    &self.alipay_keys,
                    &answer.content.replace("\\/", "/"),
                    &answer.sign,
                ));
        if signed {
            return Ok(answer.content);
        }
        // Said without believing it: an unsigned refusal names what went wrong (a bad app id or
        // signature of ours) for the operator.
        let status: Status = serde_json::from_str(answer.content).unwrap_or_default();
        Err((
            GatewayError::Unavailable(format!(
                "{method} answer's signature does not verify (code {} {})",
                short(&status.code),
                short(&status.sub_code)
            )),
            status.sub_code,
        ))
    }
}

/// A code from an answer, bounded and printable, fit for a log line.
fn short(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A refusal (code ≠ 10000): `sub_code` (or `code`) and its message. Alipay's "try again"
/// answers (20000 service unavailable, ACQ.SYSTEM_ERROR) are Unavailable.
pub(crate) fn refusal(status: &Status) -> GatewayError {
    let code = match status.sub_code.is_empty() {
        true => &status.code,
        false => &status.sub_code,
    };
    let message = match status.sub_msg.is_empty() {
        true => &status.msg,
        false => &status.sub_msg,
    };
    if status.code == "20000" || code == "ACQ.SYSTEM_ERROR" {
        return GatewayError::Unavailable(format!("Alipay busy: {}", short(code)));
    }
    GatewayError::Refused {
        code: short(code),
        message: message.chars().take(200).collect(),
    }
}

pub(crate) fn succeeded(status: &Status) -> bool {
    status.code == "10000"
}

#[derive(Deserialize)]
struct QueryAnswer {
    #[serde(default)]
    out_trade_no: String,
    #[serde(default)]
    trade_no: String,
    #[serde(default)]
    trade_status: String,
    #[serde(default)]
    total_amount: String,
    #[serde(default)]
    send_pay_date: String,
}

#[derive(Deserialize)]
struct RefundAnswer {
    #[serde(default)]
    fund_change: String,
    /// What the trade has had refunded in all, this refund included (yuan).
    #[serde(default)]
    refund_fee: String,
}

#[derive(Deserialize)]
struct RefundQueryAnswer {
    #[serde(default)]
    refund_status: String,
    #[serde(default)]
    out_request_no: String,
    #[serde(default)]
    refund_amount: String,
}

#[derive(Deserialize)]
struct Nothing {}

#[async_trait]
impl Gateway for AlipayGateway {
    async fn start(&self, start: &PaymentStart) -> Result<Started, GatewayError> {
        let params = self.pay_params(start).await?;
        let client = match start.channel {
            Channel::AlipayWap => {
                let joiner = if self.gateway.contains('?') { '&' } else { '?' };
                json!({"url": format!("{}{joiner}{}", self.gateway, params.encoded())})
            }
            _ => json!({"order_string": params.encoded()}),
        };
        Ok(Started {
            prepay_id: None,
            client,
        })
    }

    async fn query(&self, order_no: &str) -> Result<Trade, GatewayError> {
        let (status, answer): (_, QueryAnswer) = self
            .call("alipay.trade.query", json!({"out_trade_no": order_no}))
            .await?;
        if !succeeded(&status) {
            return match status.sub_code.as_str() {
                TRADE_NOT_EXIST => Ok(Trade::NotFound),
                _ => Err(refusal(&status)),
            };
        }
        if !answer.out_trade_no.is_empty() && answer.out_trade_no != order_no {
            return Err(GatewayError::Unavailable(
                "Alipay answered about another order".into(),
            ));
        }
        match answer.trade_status.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let amount = Fen::parse_yuan(&answer.total_amount).ok_or_else(|| {
                    GatewayError::Unavailable("query answer's total_amount is not yuan".into())
                })?;
                if answer.trade_no.is_empty() {
                    return Err(GatewayError::Unavailable(
                        "query answer has no trade_no".into(),
                    ));
                }
                Ok(Trade::Paid(Paid {
                    transaction_id: answer.trade_no,
                    amount,
                    paid_at: beijing_to_rfc3339(&answer.send_pay_date),
                }))
            }
            "WAIT_BUYER_PAY" => Ok(Trade::Open),
            // Closed unpaid (or, for a trade paid before, refunded in full: the domain knows
            // those payments already).
            "TRADE_CLOSED" => Ok(Trade::Closed),
            other => Err(GatewayError::Unavailable(format!(
                "unknown trade_status {}",
                short(other)
            ))),
        }
    }

    async fn close(&self, order_no: &str) -> Result<(), GatewayError> {
        let (status, Nothing {}) = self
            .call("alipay.trade.close", json!({"out_trade_no": order_no}))
            .await?;
        // Unknown: nothing to close. ACQ.TRADE_STATUS_ERROR: no longer open — paid meanwhile,
        // or closed already; the caller's query tells which (the port's contract).
        match status.sub_code.as_str() {
            _ if succeeded(&status) => Ok(()),
            TRADE_NOT_EXIST | "ACQ.TRADE_STATUS_ERROR" => Ok(()),
            _ => Err(refusal(&status)),
        }
    }

    async fn refund(&self, refund: &RefundRequest) -> Result<RefundState, GatewayError> {
        let mut biz = json!({
            "out_trade_no": refund.order_no,
            "refund_amount": refund.amount.to_yuan(),
            "out_request_no": refund.out_refund_no,
            "refund_reason": refund.reason.chars().take(256).collect::<String>(),
        });
        // After a royalty: the receiver named gives its part back with the refund (otherwise
        // Alipay takes it all from the payee, `settlement.md` §3).
        if let Some(back) = &refund.royalty_back {
            biz["refund_royalty_parameters"] = json!([{
                "royalty_type": "transfer",
                "trans_out_type": back.from.kind.as_str(),
                "trans_out": back.from.account,
                "amount": back.amount.to_yuan(),
                "desc": "退款退回分账",
            }]);
        }
        let (status, answer): (_, RefundAnswer) = self.call("alipay.trade.refund", biz).await?;
        if !succeeded(&status) {
            return Err(refusal(&status));
        }
        // `refund_fee` is the trade's running total: money moved for exactly this refund only
        // when it is what was refunded before plus this amount.
        let total = Fen::from_fen(refund.refunded_before.get() + refund.amount.get());
        if answer.fund_change == "Y" && Fen::parse_yuan(&answer.refund_fee) == Some(total) {
            return Ok(RefundState::Succeeded {
                refund_id: None,
                amount: Some(refund.amount),
            });
        }
        // Accepted without moving money now: a retry of a refund already made, or one in
        // progress. The refund query says which.
        match self
            .refund_query(&refund.order_no, &refund.out_refund_no)
            .await?
        {
            RefundState::NotFound => Ok(RefundState::Processing),
            state => Ok(state),
        }
    }

    async fn refund_query(
        &self,
        order_no: &str,
        out_refund_no: &str,
    ) -> Result<RefundState, GatewayError> {
        let (status, answer): (_, RefundQueryAnswer) = self
            .call(
                "alipay.trade.fastpay.refund.query",
                json!({"out_trade_no": order_no, "out_request_no": out_refund_no}),
            )
            .await?;
        if !succeeded(&status) {
            return match status.sub_code.as_str() {
                TRADE_NOT_EXIST => Ok(RefundState::NotFound),
                _ => Err(refusal(&status)),
            };
        }
        Ok(match answer.refund_status.as_str() {
            "REFUND_SUCCESS" => RefundState::Succeeded {
                refund_id: None,
                amount: Fen::parse_yuan(&answer.refund_amount),
            },
            // Alipay: no refund_status means not received, or not (yet) done; an answer naming
            // the refund is one it has.
            _ if !answer.out_request_no.is_empty() || !answer.refund_amount.is_empty() => {
                RefundState::Processing
            }
            _ => RefundState::NotFound,
        })
    }

    async fn trade_bill(&self, date: &str) -> Result<Option<Vec<TradeBillLine>>, GatewayError> {
        #[derive(Deserialize)]
        struct BillUrl {
            #[serde(default)]
            bill_download_url: String,
        }
        let (status, answer): (_, BillUrl) = self
            .call(
                "alipay.data.dataservice.bill.downloadurl.query",
                json!({"bill_type": "trade", "bill_date": date}),
            )
            .await?;
        if !succeeded(&status) {
            return match BILL_NOT_EXIST.contains(&status.sub_code.as_str()) {
                true => Ok(None),
                false => Err(refusal(&status)),
            };
        }
        let zip = self.fetch_file(&answer.bill_download_url).await?;
        super::bill::parse_trade_zip(&zip).map(Some)
    }
}
