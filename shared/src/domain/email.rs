//! What an email is for and where it is in its life: the words the email
//! log, the templates, the mail queue and the mailer share.

use super::ids::{ContactId, DocumentId, TenantId};
use serde::{Deserialize, Serialize};

/// The message on the mail queue: only a reference to the email log entry.
/// The entry holds everything needed to render; the queue carries no code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailJob {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub document_id: DocumentId,
}

/// What an email is for; each kind has a built-in default template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// Seed 000's "Generate & Email": the pickup/activation code and instructions.
    PickupCode,
    /// Seed 001/002's activation link (activate, resend, reset).
    ActivationLink,
    /// Access enabled again after it was disabled: a create-account link.
    Reactivation,
    /// Seed 002's notice that access was terminated.
    Deactivation,
    /// The scheduler's one reminder before a code or link expires.
    Reminder,
    /// A claim's one-time link, to the address typed at claim: proves the person reads it.
    ClaimConfirmation,
    /// To the contact's address of record: an account for another address was added.
    AccountAdded,
}

impl EmailKind {
    pub const ALL: [Self; 7] = [
        Self::PickupCode,
        Self::ActivationLink,
        Self::Reactivation,
        Self::Deactivation,
        Self::Reminder,
        Self::ClaimConfirmation,
        Self::AccountAdded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PickupCode => "pickup_code",
            Self::ActivationLink => "activation_link",
            Self::Reactivation => "reactivation",
            Self::Deactivation => "deactivation",
            Self::Reminder => "reminder",
            Self::ClaimConfirmation => "claim_confirmation",
            Self::AccountAdded => "account_added",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A template: subject, plain text and HTML bodies, and the text message (minijinja source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The text message (`domain::channel`): plain text.
    pub sms: String,
}

/// A portal's own template for one kind and locale, as saved; without an
/// `sms` the built-in text message of its language is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnTemplate {
    pub locale: super::Locale,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: Option<String>,
}

/// A template rendered for one email: what SES sends and the log keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where an email is in its life. `sending` is internal (a mailer holds a
/// lease); staff see it as `queued`. `throttled`: held back by the tenant's
/// sending quota (`domain::quota`), and sent when the window allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Throttled,
}

impl EmailStatus {
    /// The status staff see.
    pub fn public(self) -> &'static str {
        match self {
            Self::Queued | Self::Sending => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Throttled => "throttled",
        }
    }
}
