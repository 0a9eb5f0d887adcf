//! Renji's common crate: what every Lambda function and the local server share.

pub mod app;
pub mod archive;
pub mod cities;
pub mod config;
pub mod dates;
pub mod domain;
pub mod english;
pub mod error;
pub mod http;
pub mod ids;
pub mod im;
pub mod logging;
pub mod media_bucket;
pub mod outbound;
pub mod payments;
pub mod pii;
pub mod ratelimit;
pub mod s3;
pub mod secrets;
pub mod session;
pub mod settlement;
pub mod staff;
pub mod store;
pub mod verifier;
pub mod wechat;
pub mod wecom;

pub use app::App;
pub use error::Error;
pub mod geo;
pub mod money;
pub mod text;
