//! The benchmark runner's parts (`scripts/bench` runs `renji-bench`; the README explains the
//! figures).

pub mod build;
pub mod counting;
pub mod cpu;
pub mod events;
pub mod fixture;
pub mod lambda;
pub mod limiter;
pub mod memstore;
pub mod nearby;
pub mod pay;
pub mod report;
pub mod requests;
pub mod runtime_api;
pub mod stats;
pub mod throughput;
