//! The stored shape of each item, (de)serialised with serde_dynamo.
//! Field names are the attribute names; keys come from [`super::keys`].

use crate::domain::{time, CodeState, ContactKind, EmailAddress, PortalId};
use crate::mail::{EmailKind, EmailStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Attribute DynamoDB's TTL deletes by (epoch seconds); named in template.yaml.
pub const TTL_ATTRIBUTE: &str = "expires_ttl";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalItem {
    pub pk: String,
    pub sk: String,
    pub portal_id: String,
    pub name: String,
    pub default: bool,
    pub claim_url: String,
    pub code_ttl_hours: u32,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactItem {
    pub pk: String,
    pub sk: String,
    pub contact_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub kind: ContactKind,
    #[serde(default)]
    pub portal_ids: Vec<String>,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountItem {
    pub pk: String,
    pub sk: String,
    pub email: EmailAddress,
    pub portal_id: PortalId,
    #[serde(with = "time::rfc3339")]
    pub activated_at: DateTime<Utc>,
}

/// A code on its contact's partition: what the portlet lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeItem {
    pub pk: String,
    pub sk: String,
    pub portal_id: PortalId,
    pub code_hash: String,
    /// The plain code (`XXXXX-XXXXX`), only while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub state: CodeState,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_document_id: Option<String>,
    pub created_by: String,
}

/// The global claim guard for a code: found by hash, names the owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeLookupItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: String,
    pub contact_id: String,
    pub portal_id: String,
    pub state: CodeState,
    /// Expiry in epoch milliseconds, compared in the claim's condition.
    pub expires_at_ms: i64,
    /// Epoch seconds after which DynamoDB may delete the guard (well after expiry).
    pub expires_ttl: i64,
}

/// One email: the job's inputs while queued, the rendered document once sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailItem {
    pub pk: String,
    pub sk: String,
    pub document_id: String,
    pub tenant_id: String,
    pub contact_id: String,
    pub portal_id: String,
    pub kind: EmailKind,
    pub to: String,
    pub status: EmailStatus,
    /// Template variables captured when the email was requested.
    pub vars: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// While a mailer is sending: until when (epoch ms) others must leave it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
}
