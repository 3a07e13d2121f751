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
use std::sync::{Arc, Mutex};
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
    client: crate::aws::Lazy<Client>,
    cache: Arc<Mutex<HashMap<String, (Instant, Arc<Versions>)>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { client: crate::aws::Lazy::new(sdk), cache: Arc::default() }
    }

    fn client(&self) -> &Client {
        self.client.get_or(Client::new)
    }

    /// Creates the secret `name`, or gives an existing one a new current value;
    /// the new value's VersionId.
    pub async fn put(&self, name: &str, value: &SecretString, description: &str) -> anyhow::Result<String> {
        let created = self.client().create_secret().name(name).description(description).secret_string(value.expose_secret()).send().await;
        let version = match created {
            Ok(out) => out.version_id,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                self.client()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .context("Failed to set a secret's new value")?
                    .version_id
            }
            Err(e) => return Err(anyhow::Error::new(e).context("Failed to create a secret")),
        };
        self.forget(name);
        version.context("Secrets Manager gave no VersionId")
    }

    /// Takes the `AWSPREVIOUS` label off the secret's previous version: it is
    /// read (and verifies) nowhere from then on. Nothing to do when there is none.
    pub async fn revoke_previous(&self, name: &str) -> anyhow::Result<()> {
        if let Some(previous) = self.stage(name, "AWSPREVIOUS").await? {
            self.client()
                .update_secret_version_stage()
                .secret_id(name)
                .version_stage("AWSPREVIOUS")
                .remove_from_version_id(previous.id)
                .send()
                .await
                .context("Failed to revoke a secret's previous value")?;
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

    /// [`Self::get`], read again when what is cached is older than `current`
    /// (the VersionId a registration recorded at its last rotation), so a
    /// rotation holds at once on every instance, not after [`CACHE_TTL`].
    pub async fn get_at_least(&self, name: &str, current: Option<&str>) -> anyhow::Result<Option<Arc<Versions>>> {
        let versions = self.get(name).await?;
        match (current, &versions) {
            (Some(current), Some(v)) if v.current.id != current => {
                self.forget(name);
                self.get(name).await
            }
            _ => Ok(versions),
        }
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
/// Not at cold start: a read started in the background there made init about
/// 1 ms (a third) longer on two cores for every function that hashes, and
/// saved the first request less (README, "Performance"); a binary whose
/// routes never hash (status, access) then links no Secrets Manager client.
#[derive(Clone)]
pub struct HashKeys {
    secrets: Secrets,
    name: String,
    state: Arc<tokio::sync::Mutex<KeyState>>,
}

#[derive(Default)]
struct KeyState {
    /// The versions last read, and when.
    ring: Option<(Instant, Arc<KeyRing>)>,
    /// The last read that failed: when, whether the service did not answer, why.
    failed: Option<(Instant, bool, String)>,
}

/// A failed read's error again, for those who waited on it (a timeout stays a timeout: 503).
fn failed_again(did_not_answer: bool, why: &str) -> anyhow::Error {
    let e = if did_not_answer {
        anyhow::Error::new(std::io::Error::new(std::io::ErrorKind::TimedOut, why.to_owned()))
    } else {
        anyhow::anyhow!("{why}")
    };
    e.context("the code hash key could not be read")
}

impl std::fmt::Debug for HashKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashKeys").field("secret", &self.name).finish_non_exhaustive()
    }
}

impl HashKeys {
    pub fn new(secrets: Secrets, name: impl Into<String>) -> Self {
        Self { secrets, name: name.into(), state: Arc::default() }
    }

    /// The secret's name (or ARN).
    pub fn secret_name(&self) -> &str {
        &self.name
    }

    /// The current and previous keys. Concurrent first uses wait for one read
    /// and share its outcome: a caller never waits for two reads in a row,
    /// which would outlast the function's timeout when Secrets Manager does not
    /// answer. When a refresh fails, the versions
    /// read before are used a while longer.
    pub async fn get(&self) -> anyhow::Result<Arc<KeyRing>> {
        let waited_from = Instant::now();
        let mut state = self.state.lock().await;
        if let Some((at, keys)) = state.ring.as_ref() {
            if at.elapsed() < HASH_KEY_TTL {
                return Ok(keys.clone());
            }
        }
        if let Some((at, did_not_answer, why)) = &state.failed {
            if *at >= waited_from {
                return Err(failed_again(*did_not_answer, why));
            }
        }
        match self.read().await {
            Ok(keys) => {
                *state = KeyState { ring: Some((Instant::now(), keys.clone())), failed: None };
                Ok(keys)
            }
            Err(e) => {
                state.failed = Some((Instant::now(), crate::aws::did_not_answer(&e), format!("{e:#}")));
                match state.ring.take() {
                    Some((_, stale)) => {
                        tracing::warn!(error = %e, "could not refresh the code hash key; using the versions read before for 30 s more");
                        // Tried again in 30 s, not by every request meanwhile.
                        let again = Instant::now().checked_sub(HASH_KEY_TTL - Duration::from_secs(30)).unwrap_or_else(Instant::now);
                        state.ring = Some((again, stale.clone()));
                        Ok(stale)
                    }
                    None => Err(e),
                }
            }
        }
    }

    async fn read(&self) -> anyhow::Result<Arc<KeyRing>> {
        self.secrets.forget(&self.name);
        let versions = self.secrets.get(&self.name).await?.with_context(|| format!("the code hash key's secret {} does not exist", self.name))?;
        let key = |v: &Version| {
            anyhow::ensure!(v.value.expose_secret().len() >= 16, "the code hash key (version {}) must be at least 16 characters", v.id);
            Ok(HashKey::new(v.id.clone(), v.value.expose_secret().as_bytes()))
        };
        Ok(Arc::new(KeyRing { current: key(&versions.current)?, previous: versions.previous.as_ref().map(key).transpose()? }))
    }

    /// Reads the key again at next use (after a rotation, in tests).
    pub async fn forget(&self) {
        *self.state.lock().await = KeyState::default();
    }
}
