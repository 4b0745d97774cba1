//! Structured logs: JSON lines when stdout is not a terminal (a service manager, a container),
//! readable text when a person watches. Level from `TAGD_LOG` (or `RUST_LOG`), default `info`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// `auto` (by terminal), `json` or `text`.
pub fn init(format: &str) {
    let filter = std::env::var("TAGD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn".to_owned());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
