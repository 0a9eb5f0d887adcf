//! JSON logs through tracing: one line per event, with the request id from the request span.
//! Callers log ids, routes, statuses and codes, never tokens, keys, openids or personal data.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The filter in `RUST_LOG`: a level (`info`) or `target=level` directives
/// (`renji_shared=debug,info`); `info` when unset or unreadable. (tracing-subscriber's
/// `Targets`, not `EnvFilter`: that one brings a regex engine, half a megabyte of every binary
/// and a regex compilation into every cold start, for span and field filters we do not use.)
pub fn filter_from(value: Option<&str>) -> Targets {
    value
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Installs the JSON subscriber once, writing to stdout; the level comes from `RUST_LOG`
/// (default `info`).
pub fn init() {
    init_to(
        std::io::stdout,
        filter_from(std::env::var("RUST_LOG").ok().as_deref()),
    );
}

/// Installs the same subscriber writing elsewhere (the benchmark formats and drops its logs).
pub fn init_to<W>(writer: W, filter: Targets)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false)
                .without_time()
                .with_writer(writer),
        )
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_is_a_level_or_target_directives() {
        let info = filter_from(None);
        assert!(info.would_enable("renji_shared", &Level::INFO));
        assert!(!info.would_enable("renji_shared", &Level::DEBUG));
        assert!(filter_from(Some("not a filter ===")).would_enable("x", &Level::INFO));
        let debug = filter_from(Some("renji_shared=debug,warn"));
        assert!(debug.would_enable("renji_shared::session", &Level::DEBUG));
        assert!(!debug.would_enable("hyper", &Level::INFO));
        assert!(filter_from(Some("debug")).would_enable("x", &Level::DEBUG));
    }
}
