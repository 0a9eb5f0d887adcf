//! WeChat Pay API v3 for the mini-program (JSAPI), following the official Go SDK
//! (wechatpay-apiv3/wechatpay-go) rule for rule; `protocols.md` has the facts.
//!
//! - `sign`: our `Authorization` header and the `wx.requestPayment` parameters (`paySign`).
//! - `keys`: WeChat Pay's public keys and platform certificates (chosen by `Wechatpay-Serial`)
//!   and the check of a message it signed — a notification or an API answer.
//! - `notify`: [`NotifyVerifier`]: a notification verified, decrypted (AES-256-GCM with the
//!   APIv3 key) and read as a [`Notice`](crate::payments::Notice).
//! - `client`: [`WechatPayGateway`], the HTTP adapter of the `Gateway` port.
//! - `bill`: the trade bill (`/v3/bill/tradebill`) read for the reconciliation of the fee.

pub mod bill;
pub mod client;
pub mod keys;
pub mod notify;
pub mod sign;

pub use client::WechatPayGateway;
pub use notify::{ApiV3Key, NotifyVerifier};

#[cfg(test)]
pub(crate) mod tests;
