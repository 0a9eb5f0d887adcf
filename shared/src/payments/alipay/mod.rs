//! Alipay open API (RSA2 keys): the app and wap pay parameters, notification verification, and
//! the HTTP adapter whose every answer's signature is checked.
//!
//! - `params`: the signing content, the form encoding, Beijing time.
//! - `sign`: request signing and Alipay signature checks.
//! - `answer`: cutting the signed response object out of an answer, byte for byte.
//! - `notify`: [`NotifyVerifier`].
//! - `client`: [`AlipayGateway`].
//! - `bill`: the trade bill's zip and its GBK detail CSV, read for the reconciliation of the fee.
//!
//! Where the official SDKs differ, the choice is said where it is made.

pub mod answer;
pub mod bill;
pub mod client;
pub mod notify;
pub mod params;
pub mod sign;

pub use client::AlipayGateway;
pub use notify::NotifyVerifier;

#[cfg(test)]
pub(crate) mod tests;
