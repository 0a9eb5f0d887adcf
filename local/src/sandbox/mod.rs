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
