//! The AWS SDK configuration every function starts from.
//!
//! Region and credentials come from the environment as usual (Lambda sets
//! them). The HTTPS client trusts the root CAs of Amazon Trust Services,
//! compiled in, rather than the platform's store: every AWS service endpoint
//! (DynamoDB, SQS, SES, and their VPC and FIPS endpoints) presents a chain to
//! one of them, so no other CA can stand in for AWS, and a cold start does not
//! read and parse the system's CA files (about half the cold start of a
//! function measured here, see the README's performance section).
//! `PORTAL_TLS_ROOTS=system` trusts the platform's store instead, for a
//! TLS-inspecting proxy or a private CA in front of AWS.
//!
//! Every call waits a bounded time ([`bounded`]): a dependency that does not
//! answer fails the call within [`OPERATION_TIMEOUT`], retries included, and
//! the HTTP API answers 503 with `Retry-After` (`http::problem`) instead of
//! holding the function to its own timeout. The local stack and the tests
//! apply the same function to their configurations, so they run with these
//! very settings.

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::result::ConnectorError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// An SDK client built at its first use, not at cold start: a client costs
/// part of init to build, and many functions hold one they seldom or never
/// use (the SQS queues of status and reports, the mailer's SNS client when no
/// portal texts). Clones share the one client.
#[derive(Clone, Debug)]
pub struct Lazy<C> {
    sdk: aws_config::SdkConfig,
    client: Arc<OnceLock<C>>,
}

impl<C> Lazy<C> {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { sdk: sdk.clone(), client: Arc::default() }
    }

    /// The client, built by `build` from the configuration the first time.
    pub fn get_or(&self, build: impl FnOnce(&aws_config::SdkConfig) -> C) -> &C {
        self.client.get_or_init(|| build(&self.sdk))
    }

    /// Whether the client has been built.
    pub fn built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// Longest wait for a TCP (and TLS) connection to an endpoint. AWS endpoints
/// connect in milliseconds from inside the region; a second means the route
/// or the endpoint is broken, and the retry tries a fresh connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest one attempt (connect, send, the whole response) may take. Our
/// calls are single items, small queries and transactions of at most 100
/// items: milliseconds on AWS, so 2 s is far beyond a healthy answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a call may take, every attempt and the backoff between them included.
///
/// The arithmetic, for the HTTP functions' 10 s (`Timeout` in template.yaml's
/// Globals; reports have 30 s, the workers 10 s to 300 s): the standard retry
/// makes up to [`MAX_ATTEMPTS`] = 3 attempts of at most 2 s with up to 1 s
/// and then 2 s of jittered backoff between them, 2 + 1 + 2 + 2 + 2 = 9 s
/// unbounded; the operation timeout cuts that at 5 s, so a dependency that
/// does not answer costs a request 5 s and leaves it 5 s to answer 503
/// (a first attempt that fails fast still gets its retries within the 5 s).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call: the SDK's standard retry, stated here because the
/// arithmetic above depends on it.
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts above as the SDK takes them.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// A configuration loader with the bounded waits and the retry they assume:
/// the one place every SDK configuration here (the functions', the local
/// stack's, the tests') gets its timeouts from.
pub fn bounded(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader.timeout_config(timeouts()).retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (which cross-signs
/// them), in PEM, as Mozilla's CA store ships them.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../certs/amazon-trust-services.pem");

/// Which root CAs the functions' HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// The compiled-in Amazon Trust Services roots (the default).
    AmazonTrustServices,
    /// The platform's CA store (`PORTAL_TLS_ROOTS=system`).
    System,
}

impl TrustRoots {
    /// Reads `PORTAL_TLS_ROOTS`: unset, empty or `amazon` is the default.
    pub fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            None | Some("") | Some("amazon") => Ok(Self::AmazonTrustServices),
            Some("system") => Ok(Self::System),
            Some(other) => anyhow::bail!("PORTAL_TLS_ROOTS must be `amazon` (the default) or `system`, not {other:?}"),
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            Self::AmazonTrustServices => TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes()),
            Self::System => TrustStore::default(),
        }
    }
}

/// Whether `error` is a dependency that did not answer in time or could not
/// be reached at all (an SDK attempt or operation timeout, a connection that
/// timed out, was refused or broke): worth a retry shortly, unlike a bug or
/// an answer we did not expect. Pure; it reads the cause chain only.
///
/// The SDK's timeout error is generic over each operation's error type, so it
/// is recognised by its message (pinned by a test against a real client
/// below); a failed connection by its [`ConnectorError`] kind.
pub fn did_not_answer(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<ConnectorError>() {
            return e.is_timeout() || e.is_io();
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(e.kind(), TimedOut | ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe);
        }
        cause.is::<tokio::time::error::Elapsed>() || cause.to_string() == SDK_TIMEOUT_MESSAGE
    })
}

/// How `SdkError::TimeoutError` displays itself (an attempt or operation timeout).
const SDK_TIMEOUT_MESSAGE: &str = "request has timed out";

/// The SDK configuration of a function: the SDK's defaults from the
/// environment, with the HTTPS client described above and [`bounded`] waits.
pub async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    let roots = TrustRoots::parse(std::env::var("PORTAL_TLS_ROOTS").ok().as_deref())?;
    let tls = TlsContext::builder().with_trust_store(roots.trust_store()).build()?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https();
    Ok(bounded(aws_config::defaults(aws_config::BehaviorVersion::latest())).http_client(http).load().await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{pem::PemObject, CertificateDer};

    #[test]
    fn the_bundle_holds_the_five_amazon_trust_services_roots() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        let names = ["Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4", "Starfield Services Root Certificate Authority - G2"];
        assert_eq!(certs.len(), names.len());
        for (cert, name) in certs.iter().zip(names) {
            assert!(cert.as_ref().windows(name.len()).any(|w| w == name.as_bytes()), "{name} is not where expected");
        }
    }

    #[test]
    fn the_trust_roots_setting_is_amazon_unless_system_and_refuses_anything_else() {
        assert_eq!(TrustRoots::parse(None).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some("")).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some("amazon")).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some(" system ")).unwrap(), TrustRoots::System);
        assert!(TrustRoots::parse(Some("none")).is_err());
    }

    #[test]
    fn the_waits_fit_inside_the_http_functions_timeout() {
        let t = timeouts();
        assert_eq!((t.connect_timeout(), t.operation_attempt_timeout(), t.operation_timeout()), (Some(CONNECT_TIMEOUT), Some(ATTEMPT_TIMEOUT), Some(OPERATION_TIMEOUT)));
        assert!(CONNECT_TIMEOUT < ATTEMPT_TIMEOUT && ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
        // Two attempts fit in one call; the call leaves half of a 10 s function to answer.
        assert!(ATTEMPT_TIMEOUT * 2 < OPERATION_TIMEOUT);
        assert!(OPERATION_TIMEOUT * 2 <= Duration::from_secs(10));
    }

    /// A loopback port that accepts connections and never answers (a paused process).
    fn silent_listener() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        (listener, url)
    }

    async fn quick(endpoint: &str, timeouts: TimeoutConfig) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("k", "s", None, None, "test"))
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(2).with_initial_backoff(Duration::from_millis(10)))
            .load()
            .await
    }

    #[tokio::test]
    async fn a_call_to_an_endpoint_that_never_answers_is_a_dependency_that_did_not_answer() {
        let (_listener, url) = silent_listener();
        let attempts_only = TimeoutConfig::builder().operation_attempt_timeout(Duration::from_millis(100)).build();
        let whole = TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(5)).operation_timeout(Duration::from_millis(150)).build();
        for timeouts in [attempts_only, whole] {
            let client = aws_sdk_dynamodb::Client::new(&quick(&url, timeouts.clone()).await);
            let started = std::time::Instant::now();
            let err = client.list_tables().send().await.expect_err("nothing answers");
            assert!(started.elapsed() < Duration::from_secs(2), "{timeouts:?} bounded the call");
            let err = anyhow::Error::new(err).context("Failed to list tables");
            assert!(did_not_answer(&err), "{timeouts:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_did_not_answer_either() {
        let (listener, url) = silent_listener();
        drop(listener);
        let client = aws_sdk_dynamodb::Client::new(&quick(&url, timeouts()).await);
        let err = anyhow::Error::new(client.list_tables().send().await.expect_err("refused")).context("Failed to list tables");
        assert!(did_not_answer(&err), "{err:?}");
    }

    #[test]
    fn other_errors_are_not_a_dependency_that_did_not_answer() {
        assert!(!did_not_answer(&anyhow::anyhow!("Failed to decode an item")));
        assert!(!did_not_answer(&anyhow::Error::new(std::io::Error::other("disk")).context("Failed")));
        assert!(did_not_answer(&anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::TimedOut)).context("Failed")));
    }

    #[tokio::test]
    async fn a_config_builds_with_either_store() {
        for value in ["amazon", "system"] {
            let roots = TrustRoots::parse(Some(value)).unwrap();
            TlsContext::builder().with_trust_store(roots.trust_store()).build().expect("a TLS context");
        }
    }
}
