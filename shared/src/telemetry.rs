//! Logging: JSON lines through tracing, as the Lambda runtime expects.
//! Codes, tokens and email bodies are never logged (their types redact).

/// Installs the JSON subscriber; `RUST_LOG` overrides the `info` default.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
