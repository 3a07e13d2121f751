//! Identity providers' signing keys (JWKS), fetched and cached per instance.
//!
//! A key set is fetched the first time a portal's provider is needed and
//! kept for the life of the instance; a token whose `kid` the cached set
//! lacks refreshes it (providers rotate keys), at most once a minute per
//! URL, so tokens with made-up `kid`s cannot make us hammer a provider.
//!
//! The client trusts the public web PKI (Mozilla's roots, compiled in):
//! any identity provider, unlike the SDK clients' Amazon-only roots
//! (`crate::aws`). It fetches only what `domain::web_url::secure` allows:
//! https, or http to loopback in the local stack alone (a portal stored
//! before that rule cannot make a deployed function fetch plain http). Each
//! fetch is bounded: 1 s to connect, 2 s in all, 64 KiB. A provider that does
//! not answer in time makes the claim a 503 with `Retry-After`, and its
//! failure is remembered for [`FAILURE_MEMORY`] per URL: a slow provider
//! costs one claim one wait, not every claim 2 s.

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use crate::domain::web_url::{self, Deployment};

/// Longest key set we read.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long one fetch may take, connecting included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed fetch is remembered: claims meanwhile fail at once.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// How long connecting to the provider may take.
pub const CONNECT_TIMEOUT: Duration = crate::aws::CONNECT_TIMEOUT;
/// The least time between two fetches of one URL.
pub const MIN_REFRESH: Duration = Duration::from_secs(60);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The cache of key sets, by URL.
pub struct KeySets {
    client: OnceLock<HttpsClient>,
    cached: Mutex<HashMap<String, (Arc<JwkSet>, Instant)>>,
    /// The last failed fetch of each URL, within [`FAILURE_MEMORY`].
    failed: Mutex<HashMap<String, tokio::time::Instant>>,
    min_refresh: Duration,
    deployment: Deployment,
}

impl Default for KeySets {
    fn default() -> Self {
        Self::new(Deployment::Aws)
    }
}

impl KeySets {
    /// The cache of a deployment (which URLs it may fetch).
    pub fn new(deployment: Deployment) -> Self {
        Self::with_min_refresh(MIN_REFRESH, deployment)
    }

    /// A cache that fetches one URL at most once per `min_refresh`.
    pub fn with_min_refresh(min_refresh: Duration, deployment: Deployment) -> Self {
        Self { client: OnceLock::new(), cached: Mutex::new(HashMap::new()), failed: Mutex::new(HashMap::new()), min_refresh, deployment }
    }

    /// The key set at `url`: the cached one, else fetched.
    pub async fn get(&self, url: &str) -> anyhow::Result<Arc<JwkSet>> {
        if let Some((keys, _)) = self.cached.lock().expect("not poisoned").get(url) {
            return Ok(keys.clone());
        }
        self.fetch(url).await
    }

    /// A fresh key set for a token whose `kid` the cached one lacks, or
    /// `None` when `url` was fetched less than [`MIN_REFRESH`] ago.
    pub async fn refresh(&self, url: &str) -> anyhow::Result<Option<Arc<JwkSet>>> {
        let recent = self.cached.lock().expect("not poisoned").get(url).is_some_and(|(_, at)| at.elapsed() < self.min_refresh);
        if recent {
            return Ok(None);
        }
        self.fetch(url).await.map(Some)
    }

    /// Fetches `url` unless it failed within [`FAILURE_MEMORY`]; a failure is remembered.
    async fn fetch(&self, url: &str) -> anyhow::Result<Arc<JwkSet>> {
        {
            let mut failed = self.failed.lock().expect("not poisoned");
            failed.retain(|_, at| at.elapsed() < FAILURE_MEMORY);
            if failed.contains_key(url) {
                bail!("the identity provider's JWKS failed less than {FAILURE_MEMORY:?} ago");
            }
        }
        let fetched = self.fetch_now(url).await;
        if fetched.is_err() {
            self.failed.lock().expect("not poisoned").insert(url.to_owned(), tokio::time::Instant::now());
        }
        fetched
    }

    async fn fetch_now(&self, url: &str) -> anyhow::Result<Arc<JwkSet>> {
        if !web_url::secure(url, self.deployment) {
            bail!("the JWKS URL is not https (http only to loopback, in the local stack)");
        }
        let client = self.client.get_or_init(|| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(CONNECT_TIMEOUT));
            let https = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().wrap_connector(http);
            Client::builder(TokioExecutor::new()).build(https)
        });
        let uri: hyper::Uri = url.parse().context("the JWKS URL is not a URI")?;
        let keys = tokio::time::timeout(FETCH_TIMEOUT, async {
            let response = client.get(uri).await.context("the identity provider's JWKS could not be fetched")?;
            if !response.status().is_success() {
                bail!("the identity provider's JWKS answered {}", response.status());
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("the identity provider's JWKS could not be read: {e}"))?
                .to_bytes();
            serde_json::from_slice::<JwkSet>(&body).context("the identity provider's JWKS is not a JWK set")
        })
        .await
        .map_err(|_| anyhow::anyhow!("the identity provider's JWKS took longer than {FETCH_TIMEOUT:?}"))??;
        let keys = Arc::new(keys);
        self.cached.lock().expect("not poisoned").insert(url.to_owned(), (keys.clone(), Instant::now()));
        tracing::info!(url, keys = keys.keys.len(), "identity provider keys fetched");
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A JWKS endpoint on loopback that answers its `n`th request with `bodies[n]` (the last one after).
    async fn endpoint(bodies: Vec<String>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let n = count.fetch_add(1, Ordering::SeqCst);
                let body = &bodies[n.min(bodies.len() - 1)];
                let response = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (url, served)
    }

    fn set(kid: &str) -> String {
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid,
            "x": "DrVphZhkWtu6E2p56Mffc3V8MjOMPq3v5bef-kGnoX4", "y": "eiewfYz2sAooK2TY2CnbipQmk4Z54eev8_YDcNKE6Fg"}]})
        .to_string()
    }

    #[tokio::test]
    async fn a_set_is_fetched_once_and_refreshed_at_most_once_per_interval() {
        let (url, served) = endpoint(vec![set("old"), set("new")]).await;
        let keys = KeySets::with_min_refresh(Duration::from_millis(300), Deployment::Local);
        assert!(keys.get(&url).await.unwrap().find("old").is_some());
        assert!(keys.get(&url).await.unwrap().find("old").is_some());
        assert_eq!(served.load(Ordering::SeqCst), 1, "cached");
        // An unknown kid right after a fetch: no new fetch (made-up kids cannot hammer the provider).
        assert!(keys.refresh(&url).await.unwrap().is_none());
        assert_eq!(served.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let fresh = keys.refresh(&url).await.unwrap().expect("refreshed");
        assert!(fresh.find("new").is_some(), "the rotated key is found");
        assert!(keys.get(&url).await.unwrap().find("new").is_some(), "and cached");
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }

    /// A provider that accepts connections and never answers; counts them.
    async fn silent() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        (url, accepted)
    }

    /// Virtual time: the fetch's own bound must fire before 2.5 s do (it was 5 s).
    #[tokio::test(start_paused = true)]
    async fn a_silent_provider_is_given_two_seconds_and_then_left_alone_for_a_minute() {
        let (url, accepted) = silent().await;
        let keys = KeySets::new(Deployment::Local);
        let first = tokio::time::timeout(Duration::from_millis(2500), keys.get(&url)).await;
        let err = first.expect("the fetch gave up within 2.5 s").unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Claims in the next minute fail at once, without another connection.
        for _ in 0..5 {
            let again = tokio::time::timeout(Duration::from_millis(1), keys.get(&url)).await;
            assert!(again.expect("remembered, not waited for").is_err());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "a remembered failure is not fetched again");
        tokio::time::sleep(FAILURE_MEMORY).await;
        let _ = tokio::time::timeout(Duration::from_secs(3), keys.get(&url)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "tried again after a minute");
    }

    #[tokio::test]
    async fn a_deployed_function_never_fetches_plain_http_even_to_loopback() {
        let (url, served) = endpoint(vec![set("k")]).await;
        let err = KeySets::new(Deployment::Aws).get(&url).await.unwrap_err();
        assert!(err.to_string().contains("not https"), "{err}");
        assert_eq!(served.load(Ordering::SeqCst), 0);
        assert!(KeySets::new(Deployment::Local).get(&url).await.is_ok());
    }

    #[tokio::test]
    async fn a_provider_that_answers_garbage_or_too_much_is_an_error_not_a_key_set() {
        let (url, _) = endpoint(vec!["not json".into()]).await;
        assert!(KeySets::new(Deployment::Local).get(&url).await.is_err());
        let (url, _) = endpoint(vec![format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(MAX_JWKS_BYTES))]).await;
        assert!(KeySets::new(Deployment::Local).get(&url).await.is_err());
        assert!(KeySets::new(Deployment::Local).get("http://127.0.0.1:1/jwks.json").await.is_err(), "nothing listens there");
    }
}
