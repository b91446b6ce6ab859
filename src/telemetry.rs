//! Logging: `tracing` with JSON lines under a Functions host and readable lines in a terminal.
//!
//! What may be logged: ids (invocation, request, message, user object id), outcomes, statuses
//! and durations. What may not: payloads, message bodies, tokens, passes, secrets, phone numbers.
//! Every line written inside an invocation carries its `invocation_id` (see `host::invocation`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Install the global subscriber. `RUST_LOG` overrides the default level (`info`).
pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_span_events(FmtSpan::NONE)
            .try_init(),
        // Colours only on a terminal: a file, a pipe or a log collector gets plain text.
        LogFormat::Text => builder
            .compact()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
    };
}
