//! Payment providers behind one port ([`Gateway`], one adapter per provider), and the verified
//! notifications ([`Notice`]) that, with a provider query, are the only things that change
//! payment state. The domain (`domain::orders`) sees these types only, never reqwest or a key.
//!
//! - `rsa`: the RSA (SHA256withRSA, PKCS#1 v1.5) keys both providers sign with.
//! - `wechatpay`: WeChat Pay API v3 — request signing, `wx.requestPayment` parameters,
//!   notification verification and decryption, the HTTP adapter.
//! - `alipay`: Alipay open API — RSA2 parameter signing, app and wap pay, notification
//!   verification, the HTTP adapter with its answers' signatures checked.
//!
//! The local server's stand-ins for both providers live in `local/src/sandbox/`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::money::Fen;

pub mod alipay;
pub mod rsa;
pub mod wechatpay;

/// The most one payment may be, in fen: WeChat Pay v3's `amount.total` is a 32-bit integer (its
/// official SDKs' `Integer`), 2147483647 fen; Alipay's `total_amount` goes to 100000000 yuan.
/// An order over it could never be paid through either, so it is never made.
pub const MAX_PAYMENT_FEN: i64 = i32::MAX as i64;

/// How a buyer pays: the mini-program's WeChat Pay, the Alipay app, or Alipay on the web.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Wechat,
    Alipay,
    AlipayWap,
}

impl Channel {
    pub fn provider(self) -> Provider {
        match self {
            Channel::Wechat => Provider::Wechat,
            Channel::Alipay | Channel::AlipayWap => Provider::Alipay,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
            Channel::AlipayWap => "alipay_wap",
        }
    }
}

/// Who holds the money: one merchant account each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Wechat,
    Alipay,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Wechat, Provider::Alipay];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Wechat => "wechat",
            Provider::Alipay => "alipay",
        }
    }
}

/// What a payment is started with; every amount and text comes from the stored order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentStart {
    pub channel: Channel,
    /// The order's `order_no`: both providers' `out_trade_no`.
    pub order_no: String,
    /// The listing's title (WeChat cuts it to 127 bytes on a character boundary; Alipay's
    /// `subject` to 256 characters).
    pub description: String,
    pub amount: Fen,
    /// The order's `expires_at`: WeChat's `time_expire`, Alipay's `time_expire`.
    pub expires_at: OffsetDateTime,
    /// The buyer's openid under the payment appid (WeChat JSAPI's `payer.openid`).
    pub payer_openid: Option<String>,
    /// A prepay id from an earlier start of this payment that is still valid: the WeChat adapter
    /// signs new client parameters for it instead of creating another.
    pub prepay_id: Option<String>,
}

/// A started payment: what the client needs to pay, and the prepay id to keep (WeChat).
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    pub prepay_id: Option<String>,
    /// `wechat`: `{timeStamp, nonceStr, package, signType: "RSA", paySign}`; `alipay`:
    /// `{order_string}`; `alipay_wap`: `{url}`.
    pub client: serde_json::Value,
}

/// A confirmed payment, as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The provider's transaction id (WeChat `transaction_id`, Alipay `trade_no`).
    pub transaction_id: String,
    /// What the buyer paid for the order (WeChat `amount.total`, Alipay `total_amount`).
    pub amount: Fen,
    /// When, RFC 3339 UTC, if the provider said.
    pub paid_at: Option<String>,
}

/// A trade's state at the provider (a query's answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trade {
    Paid(Paid),
    /// Created and not paid (yet): WeChat NOTPAY/USERPAYING, Alipay WAIT_BUYER_PAY.
    Open,
    /// Closed or revoked without payment (WeChat CLOSED/REVOKED/PAYERROR, Alipay TRADE_CLOSED
    /// of a trade never paid).
    Closed,
    /// The provider knows no such trade (never started, or Alipay's app pay never opened).
    NotFound,
}

/// A refund asked of the provider. `out_refund_no` is derived from the order and the refund's
/// sequence, so a retry reuses it and the provider refunds once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    pub order_no: String,
    pub out_refund_no: String,
    pub amount: Fen,
    /// The payment's whole amount (WeChat needs it).
    pub total: Fen,
    /// What earlier refunds of this payment gave back (Alipay reports the running total).
    pub refunded_before: Fen,
    pub reason: String,
    /// A refund after an Alipay royalty: the receiver that gives back how much of it
    /// (`refund_royalty_parameters`, `settlement.md` §3). WeChat Pay ignores it (its returns
    /// are separate calls of the settlement port).
    pub royalty_back: Option<RoyaltyBack>,
}

/// What a refund takes back from a royalty receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoyaltyBack {
    pub from: crate::settlement::Receiver,
    pub amount: Fen,
}

/// A refund's state at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundState {
    Succeeded {
        refund_id: Option<String>,
        /// This refund's amount as the provider reports it (`None`: its answer does not say);
        /// the domain refuses a success for another amount than it asked.
        amount: Option<Fen>,
    },
    /// Accepted, not final: ask again (a query, or the refund notification).
    Processing,
    /// Final failure (WeChat CLOSED/ABNORMAL, Alipay's refusal): staff attention.
    Failed { reason: String },
    /// The provider knows no such refund.
    NotFound,
}

/// A verified notification: the provider's word, checked (signature, decryption, merchant and
/// app ids). The amount is checked against the order by the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Paid {
        provider: Provider,
        order_no: String,
        paid: Paid,
    },
    Refund {
        provider: Provider,
        order_no: String,
        out_refund_no: String,
        state: RefundState,
        /// The refunded payment's whole amount, as the notification states it (checked against
        /// the payment the refund is of).
        paid_total: Option<Fen>,
    },
    /// Verified, and nothing to do (e.g. Alipay's WAIT_BUYER_PAY or TRADE_CLOSED): recorded only.
    Other {
        provider: Provider,
        order_no: String,
        what: String,
    },
}

impl Notice {
    pub fn order_no(&self) -> &str {
        match self {
            Notice::Paid { order_no, .. }
            | Notice::Refund { order_no, .. }
            | Notice::Other { order_no, .. } => order_no,
        }
    }
}

/// One line of a provider's trade bill (WeChat Pay `/v3/bill/tradebill`, Alipay's `trade`
/// bill): a payment or a refund of one order, and the provider's fee on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeBillLine {
    /// The order's `order_no` (both providers' `out_trade_no`, 商户订单号).
    pub order_no: String,
    pub kind: TradeBillKind,
    /// What was paid, or refunded (positive).
    pub amount: Fen,
    /// The provider's fee on this line in fen: what a payment cost (positive), what a refund's
    /// line gave back (negative). The sign is the line's kind, whatever sign the file writes.
    pub fee_fen: i64,
}

/// What a trade bill's line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TradeBillKind {
    Payment,
    Refund {
        /// The refund's `out_refund_no` (WeChat 商户退款单号, Alipay 退款批次号/请求号).
        out_refund_no: String,
    },
}

/// A bill's amount (yuan, as the providers write it: `0.04000`, `-0.01`, `12`) in fen, rounded
/// half away from zero where it has digits below the fen (WeChat writes fees to 5 decimals).
/// `None` for anything else (exponents, stray signs, empty).
pub(crate) fn bill_fen(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || whole.len() > 12 {
        return None;
    }
    if digits.contains('.') && fraction.is_empty() {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut cents: i64 = 0;
    for (i, b) in fraction.bytes().take(2).enumerate() {
        cents += i64::from(b - b'0') * if i == 0 { 10 } else { 1 };
    }
    let round_up = fraction.as_bytes().get(2).is_some_and(|b| *b >= b'5');
    let fen = whole * 100 + cents + i64::from(round_up);
    Some(if negative { -fen } else { fen })
}

/// Why a provider call did not give an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// Down, slow, unreadable, or an answer whose signature does not verify: try again later.
    Unavailable(String),
    /// The provider refused the request (its error code and message): retrying will not help.
    Refused { code: String, message: String },
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::Unavailable(why) => write!(f, "provider unavailable: {why}"),
            GatewayError::Refused { code, message } => {
                write!(f, "provider refused: {code} {message}")
            }
        }
    }
}

impl From<GatewayError> for Error {
    fn from(e: GatewayError) -> Self {
        Error::Unavailable(e.to_string())
    }
}

/// One provider's merchant API. Every call is idempotent at the provider (by `order_no` or
/// `out_refund_no`), so callers may retry.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Creates (WeChat) or signs (Alipay) the payment and answers the client's parameters.
    async fn start(&self, start: &PaymentStart) -> Result<Started, GatewayError>;
    /// The trade's state.
    async fn query(&self, order_no: &str) -> Result<Trade, GatewayError>;
    /// Closes an unpaid trade (an unknown trade counts as closed). A trade paid meanwhile is not
    /// closed: callers query after closing.
    async fn close(&self, order_no: &str) -> Result<(), GatewayError>;
    /// Asks for a refund; the same `out_refund_no` again answers the same refund.
    async fn refund(&self, refund: &RefundRequest) -> Result<RefundState, GatewayError>;
    /// A refund's state.
    async fn refund_query(
        &self,
        order_no: &str,
        out_refund_no: &str,
    ) -> Result<RefundState, GatewayError>;
    /// The trade bill of `date` (`yyyy-MM-dd`, Beijing time): every payment and refund of that
    /// day with the provider's fee on it, for the daily reconciliation of the fee. On this port,
    /// not the settlement one: the bill lists the merchant's payments and refunds (the fee is
    /// charged on every payment, whatever settles the order or whether it ever splits), and a
    /// later platform-mode settlement adapter would not change it. `Ok(None)`:
    /// the provider has no bill for that day (nothing was paid or refunded). Ready the next day
    /// (WeChat Pay after 10:00, Alipay by 09:00). A gateway without trade bills (the tests'
    /// fakes) has none.
    async fn trade_bill(&self, date: &str) -> Result<Option<Vec<TradeBillLine>>, GatewayError> {
        let _ = date;
        Ok(None)
    }
}

/// Why a notification was refused: it changes nothing, and the provider is answered with a
/// failure (so it retries a genuine one). The reason is recorded and logged; it never holds a key
/// or the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub reason: String,
}

impl Rejected {
    pub fn new(reason: impl Into<String>) -> Self {
        Rejected {
            reason: reason.into(),
        }
    }
}

/// The provider ports a function was configured with. A gateway exists where its private key is
/// configured (`payments`, `order-jobs`); a notification verifier where its verification keys are
/// (the notify functions).
#[derive(Default)]
pub struct Payments {
    pub wechat: Option<std::sync::Arc<dyn Gateway>>,
    pub alipay: Option<std::sync::Arc<dyn Gateway>>,
    // The notification verifiers (`wechatpay::NotifyVerifier`, `alipay::NotifyVerifier`) join
    // here with their modules.
    /// Present where the APIv3 key is configured (`wechat-pay-notify`).
    pub wechat_notify: Option<std::sync::Arc<wechatpay::NotifyVerifier>>,
    /// Present where Alipay's public key is configured (`alipay-notify`).
    pub alipay_notify: Option<std::sync::Arc<alipay::NotifyVerifier>>,
    /// The settlement adapters, present with their provider's gateway.
    pub wechat_settlement: Option<std::sync::Arc<dyn crate::settlement::Settlement>>,
    pub alipay_settlement: Option<std::sync::Arc<dyn crate::settlement::Settlement>>,
}

impl Payments {
    /// The ports `config` gives this function: a gateway where a provider's private key is
    /// configured, a notification verifier where its verification keys are. Keys given as values
    /// are parsed now (a bad one is a start-up error); stored ones are read on first need.
    pub fn from_config(
        config: &crate::config::Config,
        secrets: &crate::secrets::Secrets,
    ) -> Result<Self, Error> {
        let mut payments = Payments::default();
        if let Some(c) = &config.wechat_pay {
            if let Some(gateway) = wechatpay::WechatPayGateway::from_config(c, secrets)? {
                let gateway = std::sync::Arc::new(gateway);
                payments.wechat_settlement = Some(std::sync::Arc::new(
                    crate::settlement::wechatpay::WechatProfitSharing::new(gateway.clone()),
                ));
                payments.wechat = Some(gateway);
            }
            payments.wechat_notify =
                wechatpay::NotifyVerifier::from_config(c, secrets)?.map(std::sync::Arc::new);
        }
        if let Some(c) = &config.alipay {
            if let Some(gateway) = alipay::AlipayGateway::from_config(c, secrets)? {
                let gateway = std::sync::Arc::new(gateway);
                payments.alipay_settlement = Some(std::sync::Arc::new(
                    crate::settlement::alipay::AlipayRoyalty::new(gateway.clone()),
                ));
                payments.alipay = Some(gateway);
            }
            payments.alipay_notify =
                alipay::NotifyVerifier::from_config(c)?.map(std::sync::Arc::new);
        }
        Ok(payments)
    }

    /// The settlement adapter of `provider` (its profit sharing or royalty over the same signed
    /// client as its gateway), or 422 `channel_unavailable` when this deployment has none.
    pub fn settlement(
        &self,
        provider: Provider,
    ) -> Result<&dyn crate::settlement::Settlement, Error> {
        let adapter = match provider {
            Provider::Wechat => self.wechat_settlement.as_deref(),
            Provider::Alipay => self.alipay_settlement.as_deref(),
        };
        adapter.ok_or_else(|| unavailable(provider))
    }

    /// The gateway of `provider`, or 422 `channel_unavailable` when this deployment has none.
    pub fn gateway(&self, provider: Provider) -> Result<&dyn Gateway, Error> {
        let gateway = match provider {
            Provider::Wechat => self.wechat.as_deref(),
            Provider::Alipay => self.alipay.as_deref(),
        };
        gateway.ok_or_else(|| unavailable(provider))
    }
}

fn unavailable(provider: Provider) -> Error {
    Error::Unprocessable {
        code: "channel_unavailable",
        field: "channel",
        message: format!("{} payments are not available", provider.as_str()),
    }
}
