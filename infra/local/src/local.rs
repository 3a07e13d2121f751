//! The local stack's endpoints and names, and the functions' settings
//! resolved from template.yaml the way CloudFormation would resolve them.

use crate::template::{ref_target, Template};
use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use portal::app::{App, Settings};
use portal::mail::ses::Ses;
use portal::queue::{ActivationQueue, MailQueue};
use portal::secrets::Secrets;
use portal::workers::{activator::Activator, mailer::Mailer, scheduler::Scheduler};
use portal::store::Store;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// Default local endpoints (override with PORTAL_DYNAMODB_ENDPOINT / PORTAL_MOTO_ENDPOINT).
pub const DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";
pub const MOTO_ENDPOINT: &str = "http://127.0.0.1:5000";
pub const GATEWAY_ADDR: &str = "127.0.0.1:3000";
/// The secret local codes are hashed under (override with PORTAL_LOCAL_CODE_HASH_KEY).
pub const LOCAL_CODE_HASH_KEY: &str = "local-dev-code-hash-key";
/// The pseudo parameters' local values and `!Sub` of them live with the template's reading.
pub use crate::template::{substitute, ACCOUNT_ID, REGION, STACK_NAME};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

pub fn dynamodb_endpoint() -> String {
    env_or("PORTAL_DYNAMODB_ENDPOINT", DYNAMODB_ENDPOINT)
}

pub fn moto_endpoint() -> String {
    env_or("PORTAL_MOTO_ENDPOINT", MOTO_ENDPOINT)
}

pub fn gateway_addr() -> String {
    env_or("PORTAL_GATEWAY_ADDR", GATEWAY_ADDR)
}

/// An SDK configuration aimed at one local endpoint, with dummy credentials
/// and the functions' own timeouts (`portal::aws::bounded`).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    portal::aws::bounded(aws_config::defaults(BehaviorVersion::latest()))
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "portal-local"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// moto is one Python process that every test thread, the gateway and its
/// queue pollers share: on a loaded machine it has taken longer than the
/// functions' 2 s attempt (a CI run failed so, 23 tests at once, "operation
/// attempt timeout occurred after 2s"). The local stack gives moto's calls
/// this long an attempt instead; no test is about moto being slow (the fault
/// tests inject errors through their own proxy, and stall DynamoDB only).
pub const MOTO_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// [`sdk_config`] for moto, with [`MOTO_ATTEMPT_TIMEOUT`].
pub async fn moto_config(endpoint: &str) -> SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(MOTO_ATTEMPT_TIMEOUT)
        .operation_timeout(3 * MOTO_ATTEMPT_TIMEOUT)
        .build();
    portal::aws::bounded(aws_config::defaults(BehaviorVersion::latest()))
        .timeout_config(timeouts)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "portal-local"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// SDK configurations for DynamoDB Local and for moto (SQS, SES v2).
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub dynamodb: SdkConfig,
    pub moto: SdkConfig,
}

impl Endpoints {
    pub async fn from_env() -> Self {
        Self { dynamodb: sdk_config(&dynamodb_endpoint()).await, moto: moto_config(&moto_endpoint()).await }
    }
}

/// Local names: each resource is named by its logical id.
pub fn table_name(t: &Template) -> anyhow::Result<String> {
    Ok(t.tables.first().context("template has no table")?.logical_id.clone())
}

/// The value of a template parameter here: its Default, with local secrets filled in.
pub fn parameter_value(t: &Template, name: &str) -> Option<String> {
    match name {
        "CodeHashKey" => Some(env_or("PORTAL_LOCAL_CODE_HASH_KEY", LOCAL_CODE_HASH_KEY)),
        // The hosted pages are the gateway's own.
        "PublicBaseUrl" => Some(env_or("PORTAL_PUBLIC_BASE_URL", &format!("http://{}", gateway_addr()))),
        _ => t.parameter_default(name),
    }
}

/// A secret's name in moto: `{stack}/{logical id}` (created by `setup`).
pub fn secret_name(logical_id: &str) -> String {
    format!("{STACK_NAME}/{logical_id}")
}

/// The value `setup` gives a secret it creates: the code hash key's is the local key.
pub fn secret_initial_value(t: &Template, logical_id: &str) -> String {
    match logical_id {
        "CodeHashKeySecret" => parameter_value(t, "CodeHashKey").unwrap_or_else(|| LOCAL_CODE_HASH_KEY.to_owned()),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

pub async fn queue_url(endpoints: &Endpoints, name: &str) -> anyhow::Result<String> {
    let sqs = aws_sdk_sqs::Client::new(&endpoints.moto);
    let out = sqs.get_queue_url().queue_name(name).send().await.with_context(|| format!("queue {name} (run setup first)"))?;
    out.queue_url.context("queue url")
}

/// A function's environment as CloudFormation would resolve it locally.
pub async fn function_env(endpoints: &Endpoints, t: &Template, binary: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let f = t.function(binary).with_context(|| format!("no function with binary {binary} in template.yaml"))?;
    let mut env = BTreeMap::new();
    for (name, value) in &f.environment {
        let resolved = match (ref_target(value), value) {
            (Some(target), _) if t.parameters.contains_key(target) => parameter_value(t, target),
            (Some(target), _) if t.tables.iter().any(|x| x.logical_id == target) => Some(target.to_owned()),
            (Some(target), _) if t.queue(target).is_some() => Some(queue_url(endpoints, target).await?),
            (Some(target), _) if t.secrets.iter().any(|s| s == target) => Some(secret_name(target)),
            // moto's SES v2 takes any configuration set name (and publishes no events).
            (Some(target), _) if t.configuration_sets.iter().any(|s| s == target) => Some(target.to_owned()),
            (Some(target), _) if t.event_buses.iter().any(|(id, _)| id == target) => {
                t.event_buses.iter().find(|(id, _)| id == target).map(|(_, name)| name.clone())
            }
            (Some(target), _) => anyhow::bail!("{binary}: {name} refers to {target}, which the local stack does not know"),
            (None, Value::String(s)) => Some(s.clone()),
            (None, Value::Tagged(tagged)) if tagged.tag == "Sub" && tagged.value.is_string() => Some(substitute(tagged.value.as_str().unwrap_or_default())),
            // `!If [Condition, then, else]`: the template's conditions hang on
            // parameters whose defaults leave them off (an edge, `WebAclArn`
            // empty), and the local stack deploys with the defaults.
            (None, Value::Tagged(tagged)) if tagged.tag == "If" => match tagged.value.as_sequence().map(Vec::as_slice) {
                Some([_, _, Value::String(otherwise)]) => Some(otherwise.clone()),
                _ => anyhow::bail!("{binary}: {name} is an !If the local stack cannot resolve (its else branch must be a string)"),
            },
            (None, other) => Some(serde_yaml::to_string(other)?.trim().to_owned()),
        };
        if let Some(v) = resolved {
            env.insert(name.clone(), v);
        }
    }
    // The local stack, and only it (template.yaml never sets it): http to
    // loopback for portals' URLs, the console's demo page.
    env.insert("PORTAL_LOCAL".to_owned(), "1".to_owned());
    Ok(env)
}


async fn settings(endpoints: &Endpoints, t: &Template, binary: &str) -> anyhow::Result<Settings> {
    let env = function_env(endpoints, t, binary).await?;
    Settings::from_lookup(|name| env.get(name).cloned())
}

/// The dependencies an HTTP function gets, pointed at the local stack.
pub async fn http_app(endpoints: &Endpoints, t: &Template, binary: &str) -> anyhow::Result<App> {
    let s = settings(endpoints, t, binary).await?;
    Ok(App::from_parts(
        Store::new(&endpoints.dynamodb, &s.table_name),
        MailQueue::new(&endpoints.moto, &s.mail_queue_url),
        ActivationQueue::new(&endpoints.moto, &s.activation_queue_url),
        Secrets::new(&endpoints.moto),
        &s,
    ))
}

/// The bulk activator, pointed at the local stack.
pub async fn activator(endpoints: &Endpoints, t: &Template) -> anyhow::Result<Activator> {
    let s = settings(endpoints, t, "activator").await?;
    let app = App::from_parts(
        Store::new(&endpoints.dynamodb, &s.table_name),
        MailQueue::new(&endpoints.moto, &s.mail_queue_url),
        ActivationQueue::new(&endpoints.moto, &s.activation_queue_url),
        Secrets::new(&endpoints.moto),
        &s,
    );
    Ok(Activator { app, max_receive_count: s.activation_max_receive_count })
}

/// The events-out publisher, pointed at moto's EventBridge.
pub async fn publisher(endpoints: &Endpoints, t: &Template) -> anyhow::Result<portal::workers::publisher::Publisher> {
    let env = function_env(endpoints, t, "publisher").await?;
    let bus = env.get("EVENT_BUS_NAME").context("the publisher has no EVENT_BUS_NAME")?;
    Ok(portal::workers::publisher::Publisher { bus: portal::bus::Bus::new(&endpoints.moto, bus) })
}

/// The delivery event recorder, pointed at the local stack.
pub async fn deliveries(endpoints: &Endpoints, t: &Template) -> anyhow::Result<portal::workers::deliveries::Deliveries> {
    let s = settings(endpoints, t, "deliveries").await?;
    Ok(portal::workers::deliveries::Deliveries::from_store(Store::new(&endpoints.dynamodb, &s.table_name)))
}

/// The mailer, pointed at the local stack.
pub async fn mailer(endpoints: &Endpoints, t: &Template) -> anyhow::Result<Mailer> {
    let s = settings(endpoints, t, "mailer").await?;
    Ok(Mailer::from_parts(
        Store::new(&endpoints.dynamodb, &s.table_name),
        Ses::new(&endpoints.moto, &s.mail_from).with_configuration_set(s.ses_configuration_set.clone()),
        portal::mail::sns::Sms::new(&endpoints.moto),
        MailQueue::new(&endpoints.moto, &s.mail_queue_url),
        Secrets::new(&endpoints.moto),
        &s,
    ))
}

/// The scheduler, pointed at the local stack.
pub async fn scheduler(endpoints: &Endpoints, t: &Template) -> anyhow::Result<Scheduler> {
    Ok(Scheduler { app: http_app(endpoints, t, "scheduler").await? })
}
