//! Events out: the state changes the systems around the portal (an EHR, a
//! CRM) may subscribe to, as they appear on the service's EventBridge bus
//! (source [`SOURCE`], detail-type the event's [`EventType`], detail an
//! [`OutEvent`]). Each detail's JSON Schema is in `events/schemas/`.
//!
//! They are derived from the table's change stream (`store::changes`), so
//! every committed change yields its events and nothing else does: at least
//! once, each with a stable `event_id` (the same on every retry of the same
//! change), which a consumer uses to drop repeats. No code, link, token or
//! email address is ever in an event: ids, states and times only.

use super::ids::{ContactId, DocumentId, JobId, PortalId, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// EventBridge `source` of every event.
pub const SOURCE: &str = "portal-access";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "invitation.issued")]
    InvitationIssued,
    #[serde(rename = "invitation.emailed")]
    InvitationEmailed,
    #[serde(rename = "invitation.claimed")]
    InvitationClaimed,
    #[serde(rename = "invitation.locked")]
    InvitationLocked,
    #[serde(rename = "invitation.expired")]
    InvitationExpired,
    #[serde(rename = "invitation.revoked")]
    InvitationRevoked,
    #[serde(rename = "claim.confirmation_sent")]
    ClaimConfirmationSent,
    #[serde(rename = "email.sent")]
    EmailSent,
    #[serde(rename = "email.delivered")]
    EmailDelivered,
    #[serde(rename = "email.bounced")]
    EmailBounced,
    #[serde(rename = "email.complained")]
    EmailComplained,
    #[serde(rename = "contact.deactivated")]
    ContactDeactivated,
    #[serde(rename = "bulk_job.done")]
    BulkJobDone,
}

impl EventType {
    pub const ALL: [Self; 13] = [
        Self::InvitationIssued,
        Self::InvitationEmailed,
        Self::InvitationClaimed,
        Self::InvitationLocked,
        Self::InvitationExpired,
        Self::InvitationRevoked,
        Self::ClaimConfirmationSent,
        Self::EmailSent,
        Self::EmailDelivered,
        Self::EmailBounced,
        Self::EmailComplained,
        Self::ContactDeactivated,
        Self::BulkJobDone,
    ];

    /// The EventBridge detail-type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvitationIssued => "invitation.issued",
            Self::InvitationEmailed => "invitation.emailed",
            Self::InvitationClaimed => "invitation.claimed",
            Self::InvitationLocked => "invitation.locked",
            Self::InvitationExpired => "invitation.expired",
            Self::InvitationRevoked => "invitation.revoked",
            Self::ClaimConfirmationSent => "claim.confirmation_sent",
            Self::EmailSent => "email.sent",
            Self::EmailDelivered => "email.delivered",
            Self::EmailBounced => "email.bounced",
            Self::EmailComplained => "email.complained",
            Self::ContactDeactivated => "contact.deactivated",
            Self::BulkJobDone => "bulk_job.done",
        }
    }
}

/// A bulk job's counters as its `bulk_job.done` event carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub total: u32,
    pub activated: u32,
    pub skipped_no_email: u32,
    pub skipped_already_active: u32,
    pub skipped_missing_facts: u32,
    pub skipped_suppressed: u32,
    pub failed: u32,
}

/// One event's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutEvent {
    /// Stable: the same for every delivery of the same change.
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub tenant_id: TenantId,
    #[serde(with = "super::time::rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<PortalId>,
    /// `code` or `link`, for invitations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none", with = "super::time::rfc3339_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The email log entry, for email events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<DocumentId>,
    /// What the email was (`pickup_code`, `deactivation`, …), for email events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_kind: Option<&'static str>,
    /// `email` or `sms`: how the message went, for message events (`domain::channel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'static str>,
    /// `hard` or `soft`, for `email.bounced`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<JobCounts>,
}

impl OutEvent {
    /// An event with only its envelope; the rest is filled by whoever knows it.
    pub fn new(event_id: String, kind: EventType, tenant_id: TenantId, occurred_at: DateTime<Utc>) -> Self {
        Self {
            event_id,
            kind,
            tenant_id,
            occurred_at,
            contact_id: None,
            portal_id: None,
            method: None,
            expires_at: None,
            document_id: None,
            email_kind: None,
            channel: None,
            bounce: None,
            job_id: None,
            counts: None,
        }
    }
}
