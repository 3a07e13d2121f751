//! The Secrets Manager adapter: integration signing secrets (and, with
//! versions, the code hash key). A secret's value is read with its previous
//! version too (`AWSCURRENT`, `AWSPREVIOUS`), so a rotation voids nothing in
//! flight, and cached per instance for [`CACHE_TTL`]. The client is built on
//! first use, like the queues': most functions never read a secret.

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a secret's values are cached.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// A secret's current value and, after a rotation, its previous one.
#[derive(Debug, Clone)]
pub struct Versions {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

impl Versions {
    /// Current first.
    pub fn keys(&self) -> Vec<&[u8]> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).map(|s| s.expose_secret().as_bytes()).collect()
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
        let Some(current) = self.stage(name, "AWSCURRENT").await? else { return Ok(None) };
        let previous = self.stage(name, "AWSPREVIOUS").await?;
        let versions = Arc::new(Versions { current, previous });
        self.cache.lock().expect("secrets cache").insert(name.to_owned(), (Instant::now(), versions.clone()));
        Ok(Some(versions))
    }

    async fn stage(&self, name: &str, stage: &str) -> anyhow::Result<Option<SecretString>> {
        match self.client().get_secret_value().secret_id(name).version_stage(stage).send().await {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to read a secret")),
        }
    }

    pub fn forget(&self, name: &str) {
        self.cache.lock().expect("secrets cache").remove(name);
    }
}
