//! The local server: every route of `template.yaml` in one process, on the embedded store (or a
//! DynamoDB endpoint), with sandbox provider stand-ins on loopback.

pub mod exports;
pub mod functions;
pub mod http_server;
pub mod logs;
pub mod media;
pub mod policy;
pub mod router;
pub mod sandbox;
pub mod server;
pub mod static_files;
pub mod tables;
pub mod template;

pub use server::{start, Options, Running, StoreChoice};
