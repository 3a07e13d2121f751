//! Tenant settings and the sending quota's counters (`domain::quota`).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tenant settings | `T#{t}` | `SETTINGS` |
//! | tenant profile (`domain::tenant`) | `T#{t}` | `PROFILE` |
//! | emails handed to SES in one clock hour | `T#{t}#SENT#{YYYYMMDDHH}` | `SENT` (expires two hours after the window) |
//! | texts handed to SNS in one clock hour | `T#{t}#TEXTS#{YYYYMMDDHH}` | `SENT` (likewise) |

use super::dynamo::{n, s, Store};
use super::guards::condition_held;
use super::items::TTL_ATTRIBUTE;
use super::keys;
use crate::domain::quota::{Window, DEFAULT_EMAILS_PER_HOUR, DEFAULT_SMS_PER_HOUR};
use crate::domain::{time, Channel, TenantId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const SETTINGS_SK: &str = "SETTINGS";

/// The counter of one channel's sends in one window.
fn counter_pk(tenant: &TenantId, channel: Channel, window: Window) -> String {
    let counter = match channel {
        Channel::Email => "SENT",
        Channel::Sms => "TEXTS",
    };
    format!("{}#{counter}#{}", keys::tenant_pk(tenant), window.label())
}
const SENT_SK: &str = "SENT";

/// A tenant's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    pub emails_per_hour: u32,
    pub sms_per_hour: u32,
    /// When and by whom they were last changed (None: the defaults).
    pub updated: Option<(DateTime<Utc>, String)>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self { emails_per_hour: DEFAULT_EMAILS_PER_HOUR, sms_per_hour: DEFAULT_SMS_PER_HOUR, updated: None }
    }
}

impl Store {
    /// The tenant's settings, or the defaults if it never set any.
    pub async fn tenant_settings(&self, tenant: &TenantId) -> anyhow::Result<TenantSettings> {
        let Some(item) = self.get(keys::tenant_pk(tenant), SETTINGS_SK.into()).await? else {
            return Ok(TenantSettings::default());
        };
        let number = |name: &str, default: u32| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(default);
        let (emails_per_hour, sms_per_hour) = (number("emails_per_hour", DEFAULT_EMAILS_PER_HOUR), number("sms_per_hour", DEFAULT_SMS_PER_HOUR));
        let at = item.get("updated_at").and_then(|v| v.as_s().ok()).and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.with_timezone(&Utc));
        let by = item.get("updated_by").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(TenantSettings { emails_per_hour, sms_per_hour, updated: at.map(|at| (at, by)) })
    }

    pub async fn put_tenant_settings(&self, tenant: &TenantId, settings: &TenantSettings) -> anyhow::Result<()> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(keys::tenant_pk(tenant))),
            ("sk".to_owned(), s(SETTINGS_SK)),
            ("emails_per_hour".to_owned(), n(i64::from(settings.emails_per_hour))),
            ("sms_per_hour".to_owned(), n(i64::from(settings.sms_per_hour))),
        ]);
        if let Some((at, by)) = &settings.updated {
            item.insert("updated_at".into(), s(time::format(at)));
            item.insert("updated_by".into(), s(by.clone()));
        }
        self.put_item(item, "the tenant's settings").await
    }

    /// Counts one email against the tenant's quota for `window`: `false`
    /// (and nothing counted) when `limit` emails went out in it already.
    /// One conditional update, so concurrent mailers never exceed the limit.
    /// Counts `count` more against the window's quota (an email is 1, a text
    /// its segments) when they fit under `limit`; one larger than the whole
    /// limit goes only as the window's first.
    pub async fn take_send_slot(&self, tenant: &TenantId, channel: Channel, window: Window, limit: u32, count: u32) -> anyhow::Result<bool> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .key("pk", s(counter_pk(tenant, channel, window)))
            .key("sk", s(SENT_SK))
            .update_expression("ADD sent :count SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(sent) OR sent <= :room")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":count", n(i64::from(count.max(1))))
            .expression_attribute_values(":room", n(i64::from(limit) - i64::from(count.max(1))))
            .expression_attribute_values(":ttl", n((window.end() + chrono::Duration::hours(2)).timestamp()))
            .send()
            .await;
        condition_held(result, "Failed to count an email against the sending quota")
    }

    /// Emails counted in `window` so far.
    pub async fn sent_in_window(&self, tenant: &TenantId, channel: Channel, window: Window) -> anyhow::Result<u32> {
        let item = self.get(counter_pk(tenant, channel, window), SENT_SK.into()).await?;
        Ok(item.and_then(|i| i.get("sent").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())).unwrap_or(0))
    }
}

const PROFILE_SK: &str = "PROFILE";

impl Store {
    /// The tenant's profile (`domain::tenant`), if it set one.
    pub async fn tenant_profile(&self, tenant: &TenantId) -> anyhow::Result<Option<crate::domain::tenant::TenantProfile>> {
        let Some(item) = self.get(keys::tenant_pk(tenant), PROFILE_SK.into()).await? else { return Ok(None) };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(crate::domain::tenant::TenantProfile {
            display_name: text("display_name").unwrap_or_else(|| tenant.to_string()),
            support_email: text("support_email").and_then(|e| crate::domain::EmailAddress::parse(&e).ok()),
            logo_url: text("logo_url"),
            brand_color: text("brand_color"),
        }))
    }

    pub async fn put_tenant_profile(&self, tenant: &TenantId, profile: &crate::domain::tenant::TenantProfile, actor: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(keys::tenant_pk(tenant))),
            ("sk".to_owned(), s(PROFILE_SK)),
            ("display_name".to_owned(), s(profile.display_name.clone())),
            ("updated_at".to_owned(), s(time::format(&now))),
            ("updated_by".to_owned(), s(actor)),
        ]);
        for (name, value) in [
            ("support_email", profile.support_email.as_ref().map(|e| e.to_string())),
            ("logo_url", profile.logo_url.clone()),
            ("brand_color", profile.brand_color.clone()),
        ] {
            if let Some(v) = value {
                item.insert(name.to_owned(), s(v));
            }
        }
        self.put_item(item, "the tenant's profile").await
    }
}
