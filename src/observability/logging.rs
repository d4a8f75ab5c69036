//! Log output: human-readable lines by default, or one JSON object per line (`LOG_FORMAT=json`)
//! for log collectors. Each request's lines carry its `x-request-id` (the span the HTTP layer
//! opens), in either format.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What is logged unless `RUST_LOG` says otherwise: statements and session-store chatter stay out.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_sessions=warn";

/// Installs the process's logger; call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        // The current span's fields (method, path, request id) go with every line, flattened so
        // a collector can filter on `span.id` without walking a list.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
