//! The Secrets Manager adapter: integration signing secrets (and, with
//! versions, the code hash key). A secret's value is read with its previous
//! version too (`AWSCURRENT`, `AWSPREVIOUS`), so a rotation voids nothing in
//! flight, and cached per instance for [`CACHE_TTL`]. The client is built on
//! first use, like the queues': most functions never read a secret.

use crate::domain::keyring::{HashKey, KeyRing};
use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a secret's values are cached.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// One version of a secret: Secrets Manager's VersionId and the value.
#[derive(Debug, Clone)]
pub struct Version {
    pub id: String,
    pub value: SecretString,
}

/// A secret's current value and, after a rotation, its previous one.
#[derive(Debug, Clone)]
pub struct Versions {
    pub current: Version,
    pub previous: Option<Version>,
}

impl Versions {
    /// Current first.
    pub fn keys(&self) -> Vec<&[u8]> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).map(|v| v.value.expose_secret().as_bytes()).collect()
    }
}

#[derive(Clone)]
pub struct Secrets {
    sdk: aws_config::SdkConfig,
    client: Arc<OnceLock<Client>>,
    cache: Arc<Mutex<HashMap<String, (Instant, Arc<Versions>)>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { sdk: sdk.clone(), client: Arc::default(), cache: Arc::default() }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| Client::new(&self.sdk))
    }

    /// Creates the secret `name`, or gives an existing one a new current value.
    pub async fn put(&self, name: &str, value: &SecretString, description: &str) -> anyhow::Result<()> {
        let created = self.client().create_secret().name(name).description(description).secret_string(value.expose_secret()).send().await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                self.client()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .context("Failed to set a secret's new value")?;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("Failed to create a secret")),
        }
        self.forget(name);
        Ok(())
    }

    /// Deletes the secret at once (no recovery window: the registration is gone).
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        let out = self.client().delete_secret().secret_id(name).force_delete_without_recovery(true).send().await;
        self.forget(name);
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to delete a secret")),
        }
    }

    /// The secret's current and previous values (cached); `None` when there is no such secret.
    pub async fn get(&self, name: &str) -> anyhow::Result<Option<Arc<Versions>>> {
        if let Some((at, v)) = self.cache.lock().expect("secrets cache").get(name) {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(v.clone()));
            }
        }
        // Both stages at once: one round trip's wait, not two.
        let (current, previous) = tokio::join!(self.stage(name, "AWSCURRENT"), self.stage(name, "AWSPREVIOUS"));
        let Some(current) = current? else { return Ok(None) };
        let previous = previous?;
        let versions = Arc::new(Versions { current, previous });
        self.cache.lock().expect("secrets cache").insert(name.to_owned(), (Instant::now(), versions.clone()));
        Ok(Some(versions))
    }

    async fn stage(&self, name: &str, stage: &str) -> anyhow::Result<Option<Version>> {
        match self.client().get_secret_value().secret_id(name).version_stage(stage).send().await {
            Ok(out) => Ok(out.secret_string.map(|value| Version { id: out.version_id.unwrap_or_default(), value: SecretString::from(value) })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to read a secret")),
        }
    }

    pub fn forget(&self, name: &str) {
        self.cache.lock().expect("secrets cache").remove(name);
    }
}

/// How long a function keeps the hash key's versions before reading them again:
/// a rotation reaches every instance within this (meanwhile the old key is
/// still the current one there, and the new one's codes are checked as
/// "previous" nowhere yet — so wait this long after a rotation before relying on it).
pub const HASH_KEY_TTL: Duration = Duration::from_secs(300);

/// The code hash key (`domain::keyring`), read from its secret
/// (`CODE_HASH_KEY_SECRET`) on first use and kept for [`HASH_KEY_TTL`].
/// [`HashKeys::prefetch`] starts the read at cold start without waiting for
/// it, so it overlaps the runtime's first poll instead of lengthening init.
#[derive(Clone)]
pub struct HashKeys {
    secrets: Secrets,
    name: String,
    ring: Arc<tokio::sync::Mutex<Option<(Instant, Arc<KeyRing>)>>>,
}

impl std::fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashKeys").field("secret", &self.name).finish_non_exhaustive()
    }
}

impl HashKeys {
    pub fn new(secrets: Secrets, name: impl Into<String>) -> Self {
        Self { secrets, name: name.into(), ring: Arc::default() }
    }

    /// The secret's name (or ARN).
    pub fn secret_name(&self) -> &str {
        &self.name
    }

    /// The current and previous keys. Concurrent first uses wait for one read.
    pub async fn get(&self) -> anyhow::Result<Arc<KeyRing>> {
        let mut ring = self.ring.lock().await;
        if let Some((at, keys)) = ring.as_ref() {
            if at.elapsed() < HASH_KEY_TTL {
                return Ok(keys.clone());
            }
        }
        self.secrets.forget(&self.name);
        let versions = self.secrets.get(&self.name).await?.with_context(|| format!("the code hash key's secret {} does not exist", self.name))?;
        let key = |v: &Version| {
            anyhow::ensure!(v.value.expose_secret().len() >= 16, "the code hash key (version {}) must be at least 16 characters", v.id);
            Ok(HashKey::new(v.id.clone(), v.value.expose_secret().as_bytes()))
        };
        let keys = Arc::new(KeyRing { current: key(&versions.current)?, previous: versions.previous.as_ref().map(key).transpose()? });
        *ring = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// Starts reading the key in the background (cold start); errors are left
    /// for the first real use to report.
    pub fn prefetch(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            handle.spawn(async move {
                if let Err(e) = me.get().await {
                    tracing::warn!(error = %e, "could not read the code hash key ahead of the first request");
                }
            });
        }
    }

    /// Reads the key again at next use (after a rotation, in tests).
    pub async fn forget(&self) {
        *self.ring.lock().await = None;
    }
}
