//! The WeChat Pay API v3 adapter of [`Gateway`]: JSAPI payments, query, close, refunds.
//!
//! Every request carries our `Authorization` (`sign.rs`); every answer's signature is checked
//! with WeChat Pay's keys by the notifications' rules (wechatpay-go's
//! `WechatPayResponseValidator`), and an answer that does not verify is
//! [`GatewayError::Unavailable`]. Like wechatpay-go, error answers (4xx/5xx) are read even when
//! unsigned (WeChat Pay does not sign an answer to a request whose own signature failed), with
//! two exceptions: an error answer that carries a signature must verify, and the "no such
//! order/refund" answers, which make the caller treat a trade as never paid, must be signed.

use std::sync::OnceLock;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::keys::LazyKeys;
use super::notify::{amount_fen, refund_state, utc_rfc3339, Amount};
use super::sign::{self, Merchant};
use crate::config::WechatPayConfig;
use crate::error::Error;
use crate::outbound::{read_capped, MAX_ANSWER_BYTES};
use crate::payments::rsa::PrivateKey;
use crate::payments::{
    Channel, Gateway, GatewayError, Paid, PaymentStart, RefundRequest, RefundState, Started, Trade,
    TradeBillLine,
};
use crate::secrets::{Cached, Secrets};

/// WeChat's `description` limit, in bytes of UTF-8.
pub const MAX_DESCRIPTION_BYTES: usize = 127;
/// A refund's `reason` limit, in characters.
pub const MAX_REASON_CHARS: usize = 80;
const USER_AGENT: &str = concat!("renji/", env!("CARGO_PKG_VERSION"), " (WeChat Pay API v3)");
/// The largest bill file read (a day's trade bill of a busy merchant runs to megabytes).
pub const MAX_BILL_BYTES: usize = 32 * 1024 * 1024;
/// How long a bill file's download may take (the clients' 5 s is for answers of a few hundred
/// bytes; the order jobs run for at most 60 s).
pub const BILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The longest provider error message kept (it is logged and recorded).
const MAX_MESSAGE_CHARS: usize = 200;
/// Error codes that mean "try again", whatever the status says.
const RETRYABLE_CODES: &[&str] = &["SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR"];
/// Close answers that leave the trade as it is for the caller's query to find: closed already,
/// paid meanwhile, never created.
const CLOSE_SETTLED_CODES: &[&str] = &[
    "ORDER_CLOSED",
    "ORDERPAID",
    "ORDER_PAID",
    "ORDER_NOT_EXIST",
    "ORDERNOTEXIST",
];

/// The adapter. Built where the merchant private key is configured (`payments`, `order-jobs`).
#[derive(Debug)]
pub struct WechatPayGateway {
    /// Built on first use (its TLS setup is not a cold-start cost).
    http: OnceLock<reqwest::Client>,
    mchid: String,
    appid: String,
    merchant_serial: Option<String>,
    api_base: String,
    notify_url: String,
    merchant_key: Cached<PrivateKey>,
    keys: LazyKeys,
}

/// An answer, read and (where it must be) verified.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    /// Whether its signature was checked and holds.
    pub(crate) verified: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

impl Answer {
    pub(crate) fn code(&self) -> Option<String> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|e| e.code)
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GatewayError> {
        serde_json::from_slice(&self.body)
            .map_err(|_| GatewayError::Unavailable("unreadable WeChat Pay answer".into()))
    }

    /// A failed call's error: 4xx with `{code, message}` is a refusal (unless the code says to
    /// retry); 5xx, 429 and anything unreadable are unavailability.
    pub(crate) fn error(&self) -> GatewayError {
        let parsed = serde_json::from_slice::<ErrorBody>(&self.body).ok();
        let status = self.status;
        match parsed {
            Some(e)
                if status.is_client_error()
                    && status != StatusCode::TOO_MANY_REQUESTS
                    && !RETRYABLE_CODES.contains(&e.code.as_str()) =>
            {
                GatewayError::Refused {
                    code: printable(&e.code, 64),
                    message: printable(&e.message, MAX_MESSAGE_CHARS),
                }
            }
            Some(e) => GatewayError::Unavailable(format!(
                "WeChat Pay HTTP {} {}",
                status.as_u16(),
                printable(&e.code, 64)
            )),
            None => GatewayError::Unavailable(format!("WeChat Pay HTTP {}", status.as_u16())),
        }
    }
}

#[derive(Deserialize)]
struct PrepayAnswer {
    prepay_id: String,
}

#[derive(Deserialize)]
struct TradeAnswer {
    trade_state: String,
    #[serde(default)]
    mchid: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    out_trade_no: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    success_time: Option<String>,
    #[serde(default)]
    amount: Option<Amount>,
}

#[derive(Deserialize)]
struct RefundAnswer {
    status: String,
    #[serde(default)]
    refund_id: Option<String>,
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(default)]
    out_trade_no: Option<String>,
}

impl WechatPayGateway {
    /// The gateway `config` asks for: `None` when no merchant private key is configured. A key
    /// given as a value is parsed now; a stored one on first need (a bad one is then a 503 of
    /// that request). Public keys and certificates are parsed on first use.
    pub fn from_config(config: &WechatPayConfig, secrets: &Secrets) -> Result<Option<Self>, Error> {
        let Some(setting) = &config.merchant_key else {
            return Ok(None);
        };
        let key = secrets.cached("WECHATPAY_MERCHANT_KEY", setting, |pem| {
            PrivateKey::from_pem(pem).map_err(|e| e.to_string())
        })?;
        Ok(Some(Self::with(config, key)))
    }

    /// A gateway with its merchant key given (tests, the local server).
    pub fn with_key(config: &WechatPayConfig, key: PrivateKey) -> Self {
        Self::with(config, Cached::fixed("WECHATPAY_MERCHANT_KEY", key))
    }

    fn with(config: &WechatPayConfig, merchant_key: Cached<PrivateKey>) -> Self {
        WechatPayGateway {
            http: OnceLock::new(),
            mchid: config.mchid.clone(),
            appid: config.appid.clone(),
            merchant_serial: config.merchant_serial.clone(),
            api_base: config.api_base.clone(),
            notify_url: config.notify_url.clone(),
            merchant_key,
            keys: LazyKeys::new(config),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, GatewayError> {
        crate::outbound::client(&self.http).map_err(GatewayError::Unavailable)
    }

    async fn key(&self) -> Result<std::sync::Arc<PrivateKey>, GatewayError> {
        self.merchant_key
            .get()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("merchant key: {e}")))
    }

    /// One signed call: `path` segments under the API base (each percent-encoded), an optional
    /// query, an optional JSON body. The answer is read capped and its signature checked.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: Option<(&str, &str)>,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, GatewayError> {
        let query: Vec<(&str, &str)> = query.into_iter().collect();
        self.call_with(method, path, &query, body, true, MAX_ANSWER_BYTES)
            .await
    }

    /// A bill of the day (`GET` of `path` with `query`, e.g. `/v3/bill/tradebill?bill_date=
    /// &bill_type=ALL` or `/v3/profitsharing/bills?bill_date=`), downloaded and checked: the
    /// answer `{hash_type, hash_value, download_url}` is signed and verified like every answer;
    /// the file (`GET /v3/billdownload/file?token=`, signed by us, **not** signed by WeChat Pay)
    /// is fetched from our own API base with the token the answer gave (the URL's host is never
    /// followed) and must match the answer's SHA-1. `Ok(None)`: WeChat Pay answered
    /// `NO_STATEMENT_EXIST` (账单文件不存在: nothing that day); `STATEMENT_CREATING` (账单生成中)
    /// is unavailability (asked again later). Codes: the API page 申请交易账单 as quoted by
    /// gabinlin/wx-pay-profits-sharing `BillOfTradeResponse.java` (400 NO_STATEMENT_EXIST,
    /// 400 STATEMENT_CREATING); answer fields: WxJava `WxPayApplyBillV3Result`.
    pub(crate) async fn bill_file(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        let answer = self
            .call_with(Method::GET, path, query, None, true, MAX_ANSWER_BYTES)
            .await?;
        if !answer.status.is_success() {
            return match answer.code().as_deref() {
                Some("NO_STATEMENT_EXIST") if answer.verified => Ok(None),
                Some("STATEMENT_CREATING") => Err(GatewayError::Unavailable(
                    "WeChat Pay's bill is being made".into(),
                )),
                _ => Err(answer.error()),
            };
        }
        #[derive(Deserialize)]
        struct Bill {
            download_url: String,
            #[serde(default)]
            hash_type: String,
            #[serde(default)]
            hash_value: String,
        }
        let bill: Bill = answer.json()?;
        let token = url::Url::parse(&bill.download_url)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| GatewayError::Unavailable("a bill without a download token".into()))?;
        if !bill.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(GatewayError::Unavailable(format!(
                "a bill hashed with {}",
                printable(&bill.hash_type, 16)
            )));
        }
        let file = self
            .call_with(
                Method::GET,
                &["v3", "billdownload", "file"],
                &[("token", &token)],
                None,
                false,
                MAX_BILL_BYTES,
            )
            .await?;
        if !file.status.is_success() {
            return Err(file.error());
        }
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &file.body);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        if !hex.eq_ignore_ascii_case(bill.hash_value.trim()) {
            return Err(GatewayError::Unavailable(
                "the bill file does not match its hash".into(),
            ));
        }
        Ok(Some(file.body))
    }

    async fn call_with(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
        verify: bool,
        max_bytes: usize,
    ) -> Result<Answer, GatewayError> {
        let unavailable = |why: String| GatewayError::Unavailable(why);
        let key = self.key().await?;
        let serial = self
            .merchant_serial
            .as_deref()
            .ok_or_else(|| unavailable("WECHATPAY_MERCHANT_SERIAL is not set".into()))?;
        let keys = self.keys.get().map_err(unavailable)?;
        let mut url = url::Url::parse(&self.api_base)
            .map_err(|_| unavailable("WECHATPAY_API_BASE is not a URL".into()))?;
        url.path_segments_mut()
            .map_err(|_| unavailable("WECHATPAY_API_BASE is not a URL".into()))?
            .pop_if_empty()
            .extend(path);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        // What is signed is exactly what is sent: the path and query as encoded in the URL,
        // and the body's bytes.
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let nonce = sign::nonce().ok_or_else(|| unavailable("no random source".into()))?;
        let merchant = Merchant {
            mchid: &self.mchid,
            serial,
            key: &key,
        };
        let authorization = merchant.authorization(
            method.as_str(),
            &path_and_query,
            &body,
            OffsetDateTime::now_utc().unix_timestamp(),
            &nonce,
        );
        let mut request = self
            .http()?
            .request(method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, USER_AGENT);
        if let Some(serial) = keys.preferred_serial() {
            request = request.header("Wechatpay-Serial", serial);
        }
        if method != Method::GET {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if max_bytes > MAX_ANSWER_BYTES {
            request = request.timeout(BILL_TIMEOUT);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(format!("WeChat Pay: {}", e.without_url())))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, max_bytes)
            .await
            .map_err(|e| unavailable(format!("WeChat Pay: {e}")))?;
        if !verify {
            return Ok(Answer {
                status,
                body,
                verified: false,
            });
        }
        let check = keys.verify(&headers, &body, OffsetDateTime::now_utc());
        let signed = headers.contains_key(super::keys::HEADER_SIGNATURE);
        match check {
            Ok(()) => Ok(Answer {
                status,
                body,
                verified: true,
            }),
            Err(why) if status.is_success() || signed => {
                tracing::warn!(status = status.as_u16(), why = %why, "WeChat Pay answer not verified");
                Err(unavailable(format!(
                    "WeChat Pay answer not verified: {why}"
                )))
            }
            Err(_) => Ok(Answer {
                status,
                body,
                verified: false,
            }),
        }
    }

    pub(crate) fn appid(&self) -> &str {
        &self.appid
    }

    /// `text` encrypted for WeChat Pay (a sensitive field such as a receiver's `name`):
    /// RSAES-OAEP (SHA-1) with the key whose serial every request of this gateway sends as
    /// `Wechatpay-Serial`, base64. Answers that serial with the ciphertext.
    pub(crate) fn encrypt_sensitive(&self, text: &str) -> Result<(String, String), GatewayError> {
        let keys = self.keys.get().map_err(GatewayError::Unavailable)?;
        let serial = keys
            .preferred_serial()
            .ok_or_else(|| GatewayError::Unavailable("no WeChat Pay public key".into()))?;
        let key = keys
            .get(serial)
            .ok_or_else(|| GatewayError::Unavailable("no WeChat Pay public key".into()))?;
        let sealed = key
            .encrypt_oaep_sha1(text.as_bytes())
            .map_err(|e| GatewayError::Unavailable(format!("encrypting for WeChat Pay: {e}")))?;
        Ok((
            serial.to_owned(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed),
        ))
    }

    /// The client's `wx.requestPayment` parameters for `prepay_id`, freshly signed.
    async fn client_params(&self, prepay_id: &str) -> Result<serde_json::Value, GatewayError> {
        let key = self.key().await?;
        let nonce =
            sign::nonce().ok_or_else(|| GatewayError::Unavailable("no random source".into()))?;
        Ok(sign::payment_params(
            &key,
            &self.appid,
            prepay_id,
            OffsetDateTime::now_utc().unix_timestamp(),
            &nonce,
        ))
    }
}

#[async_trait]
impl Gateway for WechatPayGateway {
    async fn start(&self, start: &PaymentStart) -> Result<Started, GatewayError> {
        if start.channel != Channel::Wechat {
            return Err(refused("CHANNEL", "not a WeChat Pay channel"));
        }
        if let Some(prepay_id) = &start.prepay_id {
            return Ok(Started {
                prepay_id: Some(prepay_id.clone()),
                client: self.client_params(prepay_id).await?,
            });
        }
        let openid = start
            .payer_openid
            .as_deref()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| refused("PAYER_OPENID", "the buyer has no openid for this app"))?;
        let body = json!({
            "appid": self.appid,
            "mchid": self.mchid,
            "description": sign::cut_bytes(&start.description, MAX_DESCRIPTION_BYTES),
            "out_trade_no": start.order_no,
            "time_expire": time_expire(start.expires_at)?,
            "notify_url": self.notify_url,
            "amount": {"total": start.amount.get(), "currency": "CNY"},
            "payer": {"openid": openid},
            // Splittable, for the settlement of sellers' shares (`settlement.md`).
            "settle_info": {"profit_sharing": true},
        });
        let answer = self
            .call(
                Method::POST,
                &["v3", "pay", "transactions", "jsapi"],
                None,
                Some(body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        let prepay: PrepayAnswer = answer.json()?;
        Ok(Started {
            client: self.client_params(&prepay.prepay_id).await?,
            prepay_id: Some(prepay.prepay_id),
        })
    }

    async fn query(&self, order_no: &str) -> Result<Trade, GatewayError> {
        let answer = self
            .call(
                Method::GET,
                &["v3", "pay", "transactions", "out-trade-no", order_no],
                Some(("mchid", &self.mchid)),
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND
            && answer.code().as_deref() == Some("ORDER_NOT_EXIST")
        {
            return match answer.verified {
                true => Ok(Trade::NotFound),
                false => Err(GatewayError::Unavailable(
                    "unsigned ORDER_NOT_EXIST answer".into(),
                )),
            };
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        let trade: TradeAnswer = answer.json()?;
        if trade.out_trade_no.as_deref().is_some_and(|n| n != order_no) {
            return Err(GatewayError::Unavailable(
                "WeChat Pay answered about another order".into(),
            ));
        }
        // The same checks as a notification's: another merchant's or app's trade is not ours.
        if trade.mchid.as_deref().is_some_and(|m| m != self.mchid)
            || trade.appid.as_deref().is_some_and(|a| a != self.appid)
        {
            return Err(GatewayError::Unavailable(
                "WeChat Pay answered about another merchant's or app's trade".into(),
            ));
        }
        Ok(match trade.trade_state.as_str() {
            // REFUND: paid, then (partly) refunded — it was paid.
            "SUCCESS" | "REFUND" => Trade::Paid(Paid {
                transaction_id: trade.transaction_id.filter(|t| !t.is_empty()).ok_or_else(
                    || GatewayError::Unavailable("paid without transaction_id".into()),
                )?,
                amount: amount_fen(
                    trade
                        .amount
                        .as_ref()
                        .ok_or_else(|| GatewayError::Unavailable("paid without amount".into()))?,
                )
                .map_err(GatewayError::Unavailable)?,
                paid_at: trade.success_time.as_deref().and_then(utc_rfc3339),
            }),
            "NOTPAY" | "USERPAYING" => Trade::Open,
            "CLOSED" | "REVOKED" | "PAYERROR" => Trade::Closed,
            other => {
                return Err(GatewayError::Unavailable(format!(
                    "unknown trade_state {}",
                    printable(other, 32)
                )))
            }
        })
    }

    async fn close(&self, order_no: &str) -> Result<(), GatewayError> {
        let answer = self
            .call(
                Method::POST,
                &[
                    "v3",
                    "pay",
                    "transactions",
                    "out-trade-no",
                    order_no,
                    "close",
                ],
                None,
                Some(json!({"mchid": self.mchid})),
            )
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        match answer.code() {
            Some(code) if CLOSE_SETTLED_CODES.contains(&code.as_str()) => Ok(()),
            _ => Err(answer.error()),
        }
    }

    async fn refund(&self, refund: &RefundRequest) -> Result<RefundState, GatewayError> {
        let mut body = json!({
            "out_trade_no": refund.order_no,
            "out_refund_no": refund.out_refund_no,
            "notify_url": self.notify_url,
            "amount": {
                "refund": refund.amount.get(),
                "total": refund.total.get(),
                "currency": "CNY",
            },
        });
        let reason = sign::cut_chars(refund.reason.trim(), MAX_REASON_CHARS);
        if !reason.is_empty() {
            body["reason"] = json!(reason);
        }
        let answer = self
            .call(
                Method::POST,
                &["v3", "refund", "domestic", "refunds"],
                None,
                Some(body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        refund_answer(&answer, &refund.order_no)
    }

    async fn refund_query(
        &self,
        order_no: &str,
        out_refund_no: &str,
    ) -> Result<RefundState, GatewayError> {
        let answer = self
            .call(
                Method::GET,
                &["v3", "refund", "domestic", "refunds", out_refund_no],
                None,
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND
            && answer.code().as_deref() == Some("RESOURCE_NOT_EXISTS")
        {
            return match answer.verified {
                true => Ok(RefundState::NotFound),
                false => Err(GatewayError::Unavailable(
                    "unsigned RESOURCE_NOT_EXISTS answer".into(),
                )),
            };
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        refund_answer(&answer, order_no)
    }

    async fn trade_bill(&self, date: &str) -> Result<Option<Vec<TradeBillLine>>, GatewayError> {
        let Some(file) = self
            .bill_file(
                &["v3", "bill", "tradebill"],
                &[("bill_date", date), ("bill_type", "ALL")],
            )
            .await?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(file)
            .map_err(|_| GatewayError::Unavailable("a trade bill that is not UTF-8".into()))?;
        super::bill::parse_trade_bill(&text).map(Some)
    }
}

fn refund_answer(answer: &Answer, order_no: &str) -> Result<RefundState, GatewayError> {
    let refund: RefundAnswer = answer.json()?;
    if refund
        .out_trade_no
        .as_deref()
        .is_some_and(|n| n != order_no)
    {
        return Err(GatewayError::Unavailable(
            "WeChat Pay answered about another order's refund".into(),
        ));
    }
    refund_state(&refund.status, refund.refund_id, refund.amount.as_ref()).ok_or_else(|| {
        GatewayError::Unavailable(format!(
            "unknown refund status {}",
            printable(&refund.status, 32)
        ))
    })
}

/// `time_expire` as WeChat shows times: RFC 3339 in Beijing time, whole seconds
/// (`2026-11-29T20:30:00+08:00`).
pub fn time_expire(at: OffsetDateTime) -> Result<String, GatewayError> {
    let bad = || GatewayError::Unavailable("time_expire out of range".into());
    let beijing = UtcOffset::from_hms(8, 0, 0).map_err(|_| bad())?;
    OffsetDateTime::from_unix_timestamp(at.unix_timestamp())
        .map_err(|_| bad())?
        .to_offset(beijing)
        .format(&Rfc3339)
        .map_err(|_| bad())
}

fn refused(code: &str, message: &str) -> GatewayError {
    GatewayError::Refused {
        code: code.into(),
        message: message.into(),
    }
}

fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}
