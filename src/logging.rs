//! Structured logs through `tracing`: human-readable lines by default, one JSON object per
//! line when configured (for log shippers).

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the config's level.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            // Which serving thread wrote the line, to match it with a busy thread in `top -H`.
            .with_thread_names(true)
            .try_init(),
    };
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = result;
}
