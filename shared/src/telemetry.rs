//! Logging: JSON lines through tracing, as the Lambda runtime expects.
//!
//! Every line carries the invocation's `requestId`: the runtime wraps each
//! invocation in a span (`Lambda runtime invoke`, with `requestId` and
//! `xrayTraceId`), and the span list is printed on every line inside it.
//! The level follows Lambda's logging controls (`AWS_LAMBDA_LOG_LEVEL`, set
//! by `LoggingConfig.ApplicationLogLevel`), then `RUST_LOG`, then `info`.
//! Codes, tokens and email bodies are never logged (their types redact).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// The filter: Lambda's level, else `RUST_LOG`, else `info`. `RUST_LOG`
/// takes `level` and `target=level` directives, comma-separated
/// ([`Targets`]: no regular expressions, so no regex engine in every binary).
fn filter() -> Targets {
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map(|l| l.to_lowercase());
    let directives = match lambda_level.as_deref() {
        Some(level @ ("trace" | "debug" | "info" | "warn" | "error")) => level.to_owned(),
        Some("fatal") => "error".to_owned(),
        _ => std::env::var("RUST_LOG").unwrap_or_default(),
    };
    directives.parse().ok().filter(|_| !directives.trim().is_empty()).unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The JSON subscriber writing to `writer`.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_span_list(true)
        .with_current_span(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .finish()
        .with(filter())
}

/// Installs the JSON subscriber on stdout.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_inside_an_invocation_names_its_request_id() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = super::subscriber(move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            // The span lambda_runtime opens around each invocation.
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "req-123", xrayTraceId = "Root=1-abc");
            let _g = invoke.enter();
            let inner = tracing::info_span!("claim", tenant = "t1");
            let _i = inner.enter();
            tracing::info!(portal = "main", "code claimed");
            tracing::warn!("second line");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert_eq!(line["spans"][0]["requestId"], "req-123", "{line}");
            assert_eq!(line["spans"][0]["xrayTraceId"], "Root=1-abc", "{line}");
        }
        assert_eq!(lines[0]["message"], "code claimed");
        assert_eq!(lines[0]["portal"], "main");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["spans"][1]["tenant"], "t1");
    }
}
