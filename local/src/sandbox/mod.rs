//! Sandbox stand-ins for the providers, served on loopback so the real provider clients run
//! against them. Never linked into a Lambda binary.

pub mod alipay;
pub mod fakes;
pub mod im;
pub mod payment_keys;
pub mod secrets_manager;
pub mod verifier;
pub mod wechat;
pub mod wechatpay;
pub mod wecom;

/// The body of both payment stand-ins' `POST /sandbox/fail-refunds`: the trade whose refunds
/// fail from now on, or (`"fail": false`) succeed again.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRefundsCall {
    pub out_trade_no: String,
    #[serde(default = "failing")]
    pub fail: bool,
}

fn failing() -> bool {
    true
}
