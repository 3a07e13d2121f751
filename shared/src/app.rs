//! What the use cases need at run time ([`App`]): the adapters, the hasher
//! and the clock, built once at cold start from the environment that
//! template.yaml (or the local stack) sets. The workers compose their own
//! dependencies beside them (the workers' own `from_env`).

use crate::domain::{Portal, TenantId};
use crate::secrets::HashKeys;
use crate::queue::{ActivationQueue, MailQueue};
use crate::store::Store;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The time source; tests swap it to move through expiry.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(crate::domain::time::now)
}

/// Settings read from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `TABLE_NAME`: the single table.
    pub table_name: String,
    /// `MAIL_QUEUE_URL`: where email jobs go.
    pub mail_queue_url: String,
    /// `CODE_HASH_KEY_SECRET`: the Secrets Manager secret (name or ARN) holding
    /// the key codes and tokens are hashed under, with its versions (`domain::keyring`).
    pub code_hash_key_secret: String,
    /// `MAIL_FROM`: the verified SES sender.
    pub mail_from: String,
    /// `SES_CONFIGURATION_SET`: named on every send, so SES publishes the email's
    /// delivery events (`domain::delivery`); none: sent without one.
    pub ses_configuration_set: Option<String>,
    /// `MAIL_MAX_RECEIVE_COUNT`: the mail queue's redrive maxReceiveCount.
    pub mail_max_receive_count: u32,
    /// `MAX_EMAILS_PER_HOUR`: the most any tenant may set as its `emails_per_hour`
    /// (`domain::quota`; default 5,000).
    pub max_emails_per_hour: u32,
    /// `MAX_SMS_PER_HOUR`: the most any tenant may set as its `sms_per_hour` (default 1,000).
    pub max_sms_per_hour: u32,
    /// `PORTAL_SMS_COUNTRIES` (template parameter `SmsCountries`): the countries
    /// contacts' phone numbers may be in (`domain::number_plan`; default US, CA, GB).
    pub sms_countries: crate::domain::number_plan::SmsCountries,
    /// `ACTIVATION_QUEUE_URL`: where bulk activation batches go.
    pub activation_queue_url: String,
    /// `ACTIVATION_MAX_RECEIVE_COUNT`: the activation queue's redrive maxReceiveCount.
    pub activation_max_receive_count: u32,
    /// `PORTAL_CACHE_SECONDS`: how long a tenant's portal list is cached (default 30).
    pub portal_cache_seconds: u64,
    /// `INTEGRATION_SECRET_PREFIX`: the Secrets Manager names of integration
    /// secrets start with it (`{prefix}/{tenant}/{integration}`).
    pub integration_secret_prefix: String,
    /// `PUBLIC_BASE_URL`: where this deployment's hosted pages are (`{base}/claim`);
    /// a portal without its own `claim_url` links there. None: every portal needs one.
    pub public_base_url: Option<String>,
    /// `PORTAL_LOCAL`: `1` only in the local stack (`portal-local` sets it;
    /// template.yaml never does). It alone lets portals name http URLs on
    /// loopback and serves the console's demo page (`domain::web_url`).
    pub deployment: crate::domain::web_url::Deployment,
    /// `PORTAL_EDGE_SECRET_ARN`: behind CloudFront (template's `WebAclArn`), the
    /// secret its `X-Portal-Edge` header carries; requests without it are 403
    /// and the client's address is CloudFront's `CloudFront-Viewer-Address`
    /// (`http::edge`). Empty: no edge, the gateway's source address.
    pub edge_secret: Option<String>,
}

impl Settings {
    /// From the process environment (a Lambda's configuration).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any source of variables (the local stack resolves template.yaml's).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| get(name).with_context(|| format!("environment variable {name} is not set"));
        let key_secret = var("CODE_HASH_KEY_SECRET")?;
        let deployment = crate::domain::web_url::Deployment::from_flag(get("PORTAL_LOCAL").as_deref());
        anyhow::ensure!(!key_secret.trim().is_empty(), "CODE_HASH_KEY_SECRET must name the code hash key's secret");
        Ok(Self {
            table_name: var("TABLE_NAME")?,
            mail_queue_url: get("MAIL_QUEUE_URL").unwrap_or_default(),
            code_hash_key_secret: key_secret.trim().to_owned(),
            mail_from: get("MAIL_FROM").unwrap_or_default(),
            ses_configuration_set: get("SES_CONFIGURATION_SET").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
            mail_max_receive_count: get("MAIL_MAX_RECEIVE_COUNT").and_then(|v| v.parse().ok()).unwrap_or(5),
            max_emails_per_hour: match get("MAX_EMAILS_PER_HOUR").filter(|v| !v.trim().is_empty()) {
                None => crate::domain::quota::DEFAULT_MAX_EMAILS_PER_HOUR,
                Some(v) => v.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("MAX_EMAILS_PER_HOUR must be a positive number, not {v:?}"))?,
            },
            max_sms_per_hour: match get("MAX_SMS_PER_HOUR").filter(|v| !v.trim().is_empty()) {
                None => crate::domain::quota::DEFAULT_MAX_SMS_PER_HOUR,
                Some(v) => v.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("MAX_SMS_PER_HOUR must be a positive number, not {v:?}"))?,
            },
            sms_countries: crate::domain::number_plan::SmsCountries::parse(get("PORTAL_SMS_COUNTRIES").as_deref()).map_err(anyhow::Error::msg)?,
            activation_queue_url: get("ACTIVATION_QUEUE_URL").unwrap_or_default(),
            activation_max_receive_count: get("ACTIVATION_MAX_RECEIVE_COUNT").and_then(|v| v.parse().ok()).unwrap_or(5),
            integration_secret_prefix: get("INTEGRATION_SECRET_PREFIX")
                .map(|p| p.trim().trim_end_matches('/').to_owned())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "portal-access/integrations".to_owned()),
            portal_cache_seconds: get("PORTAL_CACHE_SECONDS").and_then(|v| v.parse().ok()).unwrap_or(30),
            public_base_url: match get("PUBLIC_BASE_URL").map(|v| v.trim().trim_end_matches('/').to_owned()).filter(|v| !v.is_empty()) {
                Some(url) if crate::domain::web_url::secure(&url, deployment) => Some(url),
                Some(url) => anyhow::bail!("PUBLIC_BASE_URL must be an https URL (http to loopback only in the local stack), not {url:?}"),
                None => None,
            },
            deployment,
            edge_secret: get("PORTAL_EDGE_SECRET_ARN").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
        })
    }
}

/// Something of a tenant's that every call reads and that changes rarely,
/// cached per Lambda instance for a while. Writes through this instance
/// refresh it ([`TenantCache::forget`]).
pub struct TenantCache<T> {
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, (Instant, Arc<T>)>>,
}

impl<T> TenantCache<T> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The cached value, or what `read` answers (then kept for the TTL).
    async fn get_or_read<F: std::future::Future<Output = anyhow::Result<T>>>(&self, tenant: &TenantId, read: F) -> anyhow::Result<Arc<T>> {
        if let Some((at, value)) = self.entries.lock().expect("cache lock").get(tenant) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = Arc::new(read.await?);
        self.entries.lock().expect("cache lock").insert(tenant.clone(), (Instant::now(), value.clone()));
        Ok(value)
    }

    pub fn forget(&self, tenant: &TenantId) {
        self.entries.lock().expect("cache lock").remove(tenant);
    }
}

/// A tenant's portals: the portlet reads them on every call.
pub type PortalCache = TenantCache<Vec<Portal>>;

impl PortalCache {
    pub async fn get(&self, store: &Store, tenant: &TenantId) -> anyhow::Result<Arc<Vec<Portal>>> {
        self.get_or_read(tenant, store.list_portals(tenant)).await
    }
}

/// Tenants' profiles (`domain::tenant`): every email and hosted page names the tenant.
pub type ProfileCache = TenantCache<Option<crate::domain::tenant::TenantProfile>>;

impl ProfileCache {
    pub async fn get(&self, store: &Store, tenant: &TenantId) -> anyhow::Result<Arc<Option<crate::domain::tenant::TenantProfile>>> {
        self.get_or_read(tenant, store.tenant_profile(tenant)).await
    }
}

/// Everything the use cases use.
pub struct App {
    pub store: Store,
    pub mail_queue: MailQueue,
    /// Bulk activation batches (used by the `activations` function).
    pub activation_queue: ActivationQueue,
    /// The code hash key's versions (`domain::keyring`): what hashes codes,
    /// tokens and facts, seals email secrets and signs cursors and the
    /// service's activation messages.
    pub keys: HashKeys,
    pub clock: Clock,
    pub portals: PortalCache,
    /// Tenants' profiles (display names).
    pub profiles: ProfileCache,
    /// Identity providers' signing keys, fetched on first use (`crate::oidc`).
    pub identity_keys: crate::oidc::KeySets,
    /// Where the hosted pages are (`Settings::public_base_url`).
    pub public_base_url: Option<String>,
    /// Secrets Manager: integrations' signing secrets.
    pub secrets: crate::secrets::Secrets,
    /// `Settings::integration_secret_prefix`.
    pub integration_secret_prefix: String,
    /// `Settings::max_emails_per_hour`.
    pub max_emails_per_hour: u32,
    /// `Settings::max_sms_per_hour`.
    pub max_sms_per_hour: u32,
    /// `Settings::sms_countries`.
    pub sms_countries: crate::domain::number_plan::SmsCountries,
    /// `Settings::deployment`.
    pub deployment: crate::domain::web_url::Deployment,
    /// `Settings::edge_secret`.
    pub edge_secret: Option<String>,
}

impl App {
    pub fn new(sdk: &aws_config::SdkConfig, settings: &Settings) -> Self {
        Self::from_parts(
            Store::new(sdk, &settings.table_name),
            MailQueue::new(sdk, &settings.mail_queue_url),
            ActivationQueue::new(sdk, &settings.activation_queue_url),
            crate::secrets::Secrets::new(sdk),
            settings,
        )
    }

    /// From adapters built elsewhere (the local stack points each at its own endpoint).
    pub fn from_parts(store: Store, mail_queue: MailQueue, activation_queue: ActivationQueue, secrets: crate::secrets::Secrets, settings: &Settings) -> Self {
        let keys = HashKeys::new(secrets.clone(), &settings.code_hash_key_secret);
        Self {
            store,
            mail_queue,
            activation_queue: activation_queue.signed_with(keys.clone()),
            secrets,
            integration_secret_prefix: settings.integration_secret_prefix.clone(),
            keys,
            clock: system_clock(),
            portals: PortalCache::new(Duration::from_secs(settings.portal_cache_seconds)),
            profiles: ProfileCache::new(Duration::from_secs(settings.portal_cache_seconds)),
            identity_keys: crate::oidc::KeySets::new(settings.deployment),
            public_base_url: settings.public_base_url.clone(),
            max_emails_per_hour: settings.max_emails_per_hour,
            max_sms_per_hour: settings.max_sms_per_hour,
            sms_countries: settings.sms_countries.clone(),
            deployment: settings.deployment,
            edge_secret: settings.edge_secret.clone(),
        }
    }

    /// Where `portal`'s people claim: its own `claim_url`, else the hosted
    /// page, branded for it (`{PUBLIC_BASE_URL}/claim?tenant=…&portal=…`).
    /// A portal is stored without a `claim_url` only while the deployment has a
    /// base URL; should it lose it, the link is the page's path alone (and logged).
    pub fn claim_url(&self, tenant: &TenantId, portal: &Portal) -> String {
        if let Some(url) = &portal.claim_url {
            return url.clone();
        }
        let base = self.public_base_url.as_deref().unwrap_or_else(|| {
            tracing::error!(portal = %portal.portal_id, "a portal without claim_url, and no PUBLIC_BASE_URL");
            ""
        });
        crate::domain::link_token::hosted_claim_url(base, tenant, &portal.portal_id)
    }

    /// [`Self::claim_url`] for a contact of `locale`: the hosted page then
    /// opens in the language the contact's emails fall back to (the same
    /// chain, `domain::locale`, among the languages the pages are written in);
    /// a portal's own page is left as it is.
    pub fn claim_url_for(&self, tenant: &TenantId, portal: &Portal, locale: Option<&crate::domain::Locale>) -> String {
        use crate::domain::locale::{chain, BuiltIn};
        let url = self.claim_url(tenant, portal);
        match &portal.claim_url {
            None => {
                let language = BuiltIn::for_chain(&chain(locale, &portal.default_locale)).locale();
                crate::domain::link_token::with_query(&url, "lang", language.as_str())
            }
            Some(_) => url,
        }
    }

    /// What emails and pages call the tenant: its profile's display name, or
    /// its id when it has none (or the profile cannot be read just now).
    pub async fn tenant_name(&self, tenant: &TenantId) -> String {
        match self.profiles.get(&self.store, tenant).await {
            Ok(profile) => profile.as_ref().as_ref().map_or_else(|| tenant.to_string(), |p| p.display_name.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the tenant's profile; naming it by its id");
                tenant.to_string()
            }
        }
    }

    /// The Secrets Manager name of an integration's signing secret.
    pub fn integration_secret_name(&self, tenant: &TenantId, id: &crate::domain::IntegrationId) -> String {
        format!("{}/{tenant}/{id}", self.integration_secret_prefix)
    }

    /// The link that confirms a claim for `portal` (`domain::confirmation`).
    /// On the hosted page, in `locale` (its `lang` before the token, which stays last).
    pub fn confirm_link(&self, tenant: &TenantId, portal: &Portal, token: &str, locale: Option<&crate::domain::Locale>) -> String {
        use crate::domain::confirmation::{confirm_link, ConfirmPage};
        match &portal.claim_url {
            Some(url) => confirm_link(ConfirmPage::Portal(url), token),
            None => {
                let mut page = crate::domain::link_token::hosted_confirm_url(self.public_base_url.as_deref().unwrap_or_default(), tenant, &portal.portal_id);
                if let Some(locale) = locale {
                    page = crate::domain::link_token::with_query(&page, "lang", locale.as_str());
                }
                confirm_link(ConfirmPage::Hosted(&page), token)
            }
        }
    }

    /// Cold start of an HTTP function: AWS config from the environment. The
    /// hash key is read by the first request that needs it, not at init
    /// (`secrets::HashKeys`).
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env()?;
        let sdk = crate::aws::sdk_config().await?;
        Ok(Self::new(&sdk, &settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_hash_key_s_secret_and_hold_no_key() {
        let key = "arn:aws:secretsmanager:eu-west-1:1:secret:portal-access/code-hash-key";
        let settings = Settings::from_lookup(|name| match name {
            "CODE_HASH_KEY_SECRET" => Some(key.to_owned()),
            "TABLE_NAME" => Some("portal".to_owned()),
            _ => None,
        })
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(printed.contains("table_name: \"portal\""), "{printed}");
        assert_eq!(settings.code_hash_key_secret, key);
        assert!(Settings::from_lookup(|name| (name == "TABLE_NAME").then(|| "portal".to_owned())).is_err(), "the secret is required");
    }
}
