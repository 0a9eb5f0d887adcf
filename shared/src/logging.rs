//! JSON logs through tracing: one line per event, with the request id from the request span.
//! Callers log ids, routes, statuses and codes, never tokens, keys, openids or personal data.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; the level comes from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
