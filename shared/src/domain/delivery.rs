//! What happened to an email after SES took it: the delivery events SES
//! publishes through the configuration set (`SES_CONFIGURATION_SET`) to an SNS
//! topic, which feeds the `DeliveryEventQueue` (an SNS notification whose
//! `Message` is SES's event JSON). Pure: parsing, ordering, suppression.
//!
//! - An event names its email by the message tags the mailer sent with it
//!   (`tenant_id`, `contact_id`, `document_id`: ids are within SES's tag
//!   alphabet) and by SES's `mail.messageId`, which must be the one the log
//!   entry recorded at send: an event for a message we did not send changes
//!   nothing.
//! - The log keeps every event once (by [`DeliveryEvent::id`]: the feedback id
//!   of a bounce or complaint, else the event's type and time) and the
//!   furthest state ([`DeliveryStatus::rank`]): `delivery_delayed` <
//!   soft `bounced` < `delivered` = hard `bounced` < `complained`. An event
//!   that arrives late (a delay after the delivery) is kept in the history but
//!   moves nothing back; one that arrives twice is recorded once.
//! - A hard bounce or a complaint puts the address on the tenant's suppression
//!   list ([`EmailProblem`]): nothing more is sent there until the contact's
//!   email changes.

use super::ids::{ContactId, DocumentId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The message tags the mailer sends with every email (and SES echoes in `mail.tags`).
pub const TAG_TENANT: &str = "tenant_id";
pub const TAG_CONTACT: &str = "contact_id";
pub const TAG_DOCUMENT: &str = "document_id";

/// Where an email is after SES took it (`sent`); absent until the first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    DeliveryDelayed,
    Delivered,
    Bounced,
    Complained,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeliveryDelayed => "delivery_delayed",
            Self::Delivered => "delivered",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
        }
    }
}

/// Why the tenant no longer sends to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailProblem {
    Bounced,
    Complained,
}

impl EmailProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounced => "bounced",
            Self::Complained => "complained",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "bounced" => Some(Self::Bounced),
            "complained" => Some(Self::Complained),
            _ => None,
        }
    }
}

/// One event as the email log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// What makes it the same event when it comes twice.
    pub id: String,
    pub status: DeliveryStatus,
    #[serde(with = "super::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// A bounce's kind: `hard` (SES's Permanent) or `soft` (Transient, Undetermined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce: Option<BounceKind>,
    /// What the receiving server said (a bounce's or a delay's diagnostic, a delivery's SMTP response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    Hard,
    Soft,
}

impl DeliveryRecord {
    /// How far along a message's life this event is; a later event of lower rank moves nothing back.
    pub fn rank(&self) -> u8 {
        match (self.status, self.bounce) {
            (DeliveryStatus::DeliveryDelayed, _) => 1,
            (DeliveryStatus::Bounced, Some(BounceKind::Soft) | None) => 2,
            (DeliveryStatus::Delivered, _) | (DeliveryStatus::Bounced, Some(BounceKind::Hard)) => 3,
            (DeliveryStatus::Complained, _) => 4,
        }
    }

    /// What the event does to the address: a hard bounce or a complaint suppresses it.
    pub fn problem(&self) -> Option<EmailProblem> {
        match (self.status, self.bounce) {
            (DeliveryStatus::Bounced, Some(BounceKind::Hard)) => Some(EmailProblem::Bounced),
            (DeliveryStatus::Complained, _) => Some(EmailProblem::Complained),
            _ => None,
        }
    }
}

/// The email an event is about, from its tags and SES's message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub document_id: DocumentId,
    pub message_id: String,
    /// The address the event is about (the email's one recipient).
    pub recipient: Option<String>,
    pub record: DeliveryRecord,
}

/// Why a queue message is not an event we act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryParseError {
    #[error("not an SNS notification with an SES event: {0}")]
    Unreadable(String),
    /// An SES event type the log does not track (Send, Open, Click, …): nothing to do.
    #[error("SES event {0} is not tracked")]
    Untracked(String),
    /// An email sent without our tags (not this service's, or sent before the tags).
    #[error("the event names no email of this service: {0}")]
    NotOurs(&'static str),
}

/// Diagnostics are kept short: the log shows them, they are not documents.
const MAX_DIAGNOSTIC: usize = 500;

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesEvent {
    #[serde(alias = "notificationType")]
    event_type: String,
    mail: Mail,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Delivery>,
    delivery_delay: Option<DeliveryDelay>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    #[serde(default)]
    destination: Vec<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: DateTime<Utc>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: Option<String>,
    diagnostic_code: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    timestamp: DateTime<Utc>,
    feedback_id: Option<String>,
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    timestamp: DateTime<Utc>,
    smtp_response: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDelay {
    timestamp: DateTime<Utc>,
    delay_type: Option<String>,
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
}

fn short(text: Option<String>) -> Option<String> {
    text.map(|t| {
        let t = t.trim();
        match t.char_indices().nth(MAX_DIAGNOSTIC) {
            Some((i, _)) => format!("{}…", &t[..i]),
            None => t.to_owned(),
        }
    })
    .filter(|t| !t.is_empty())
}

/// Reads one message of the delivery event queue: an SNS notification (not raw delivery) of an SES event.
pub fn parse_notification(body: &str) -> Result<DeliveryEvent, DeliveryParseError> {
    let unreadable = |e: serde_json::Error| DeliveryParseError::Unreadable(e.to_string());
    let note: Notification = serde_json::from_str(body).map_err(unreadable)?;
    if note.kind != "Notification" {
        return Err(DeliveryParseError::Unreadable(format!("SNS message type {}", note.kind)));
    }
    let event: SesEvent = serde_json::from_str(&note.message).map_err(unreadable)?;
    let tag = |name: &'static str| event.mail.tags.get(name).and_then(|v| v.first()).map(String::as_str).ok_or(DeliveryParseError::NotOurs(name));
    let tenant_id = TenantId::parse(tag(TAG_TENANT)?).map_err(|_| DeliveryParseError::NotOurs(TAG_TENANT))?;
    let contact_id = ContactId::parse(tag(TAG_CONTACT)?).map_err(|_| DeliveryParseError::NotOurs(TAG_CONTACT))?;
    let document_id = DocumentId::parse(tag(TAG_DOCUMENT)?).map_err(|_| DeliveryParseError::NotOurs(TAG_DOCUMENT))?;
    let missing = |what: &str| DeliveryParseError::Unreadable(format!("a {what} event without its {what} object"));
    let first = |r: &[Recipient]| r.first().and_then(|r| r.email_address.clone());
    let (record, recipient) = match event.event_type.as_str() {
        "Bounce" => {
            let b = event.bounce.ok_or_else(|| missing("Bounce"))?;
            let kind = if b.bounce_type == "Permanent" { BounceKind::Hard } else { BounceKind::Soft };
            let who = b.bounced_recipients.first();
            let diagnostic = who.and_then(|r| r.diagnostic_code.clone().or_else(|| r.status.clone()));
            let id = b.feedback_id.clone().unwrap_or_else(|| format!("Bounce:{}", super::time::format(&b.timestamp)));
            let record = DeliveryRecord { id, status: DeliveryStatus::Bounced, at: b.timestamp, bounce: Some(kind), diagnostic: short(diagnostic) };
            (record, first(&b.bounced_recipients))
        }
        "Complaint" => {
            let c = event.complaint.ok_or_else(|| missing("Complaint"))?;
            let id = c.feedback_id.clone().unwrap_or_else(|| format!("Complaint:{}", super::time::format(&c.timestamp)));
            let record = DeliveryRecord { id, status: DeliveryStatus::Complained, at: c.timestamp, bounce: None, diagnostic: None };
            (record, first(&c.complained_recipients))
        }
        "Delivery" => {
            let d = event.delivery.ok_or_else(|| missing("Delivery"))?;
            let id = format!("Delivery:{}", super::time::format(&d.timestamp));
            let record = DeliveryRecord { id, status: DeliveryStatus::Delivered, at: d.timestamp, bounce: None, diagnostic: short(d.smtp_response) };
            (record, d.recipients.first().cloned())
        }
        "DeliveryDelay" => {
            let d = event.delivery_delay.ok_or_else(|| missing("DeliveryDelay"))?;
            let id = format!("DeliveryDelay:{}", super::time::format(&d.timestamp));
            let who = d.delayed_recipients.first();
            let diagnostic = who.and_then(|r| r.diagnostic_code.clone()).or(d.delay_type);
            let record = DeliveryRecord { id, status: DeliveryStatus::DeliveryDelayed, at: d.timestamp, bounce: None, diagnostic: short(diagnostic) };
            (record, first(&d.delayed_recipients))
        }
        other => return Err(DeliveryParseError::Untracked(other.to_owned())),
    };
    let recipient = recipient.or_else(|| event.mail.destination.first().cloned());
    Ok(DeliveryEvent { tenant_id, contact_id, document_id, message_id: event.mail.message_id, recipient, record })
}

/// The log entry's delivery after `event`: `None` when it holds that event already.
/// Every event is kept (in time order); the status is the furthest one's.
pub fn apply(history: &[DeliveryRecord], event: &DeliveryRecord) -> Option<(DeliveryStatus, Vec<DeliveryRecord>)> {
    if history.iter().any(|r| r.id == event.id) {
        return None;
    }
    let mut next = history.to_vec();
    next.push(event.clone());
    next.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    // The furthest; among equals, the first that got there.
    let furthest = next.iter().fold(None::<&DeliveryRecord>, |best, r| match best {
        Some(b) if b.rank() >= r.rank() => Some(b),
        _ => Some(r),
    });
    furthest.map(|f| (f.status, next.clone()))
}

/// Most events one log entry keeps: a message has a handful; more is a replay or a fault.
pub const MAX_EVENTS_PER_EMAIL: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn note(event: serde_json::Value) -> String {
        serde_json::json!({"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": event.to_string()}).to_string()
    }

    fn mail() -> serde_json::Value {
        serde_json::json!({"messageId": "m-1", "destination": ["ann@example.org"], "tags": {
            "ses:configuration-set": ["portal"], "tenant_id": ["t1"], "contact_id": ["c1"], "document_id": ["d1"]}})
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_hard_bounce_names_its_email_and_suppresses() {
        let body = note(serde_json::json!({"eventType": "Bounce", "mail": mail(), "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-12-03T10:00:00.000Z", "feedbackId": "fb-1",
            "bouncedRecipients": [{"emailAddress": "ann@example.org", "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}));
        let e = parse_notification(&body).unwrap();
        assert_eq!((e.tenant_id.as_str(), e.contact_id.as_str(), e.document_id.as_str(), e.message_id.as_str()), ("t1", "c1", "d1", "m-1"));
        assert_eq!(e.record.id, "fb-1");
        assert_eq!(e.record.bounce, Some(BounceKind::Hard));
        assert_eq!(e.record.diagnostic.as_deref(), Some("smtp; 550 5.1.1 user unknown"));
        assert_eq!(e.record.problem(), Some(EmailProblem::Bounced));
        assert_eq!(e.recipient.as_deref(), Some("ann@example.org"));
    }

    #[test]
    fn a_soft_bounce_does_not_suppress() {
        let body = note(serde_json::json!({"eventType": "Bounce", "mail": mail(), "bounce": {
            "bounceType": "Transient", "timestamp": "2026-12-03T10:00:00.000Z", "bouncedRecipients": [{"emailAddress": "ann@example.org"}]}}));
        let e = parse_notification(&body).unwrap();
        assert_eq!(e.record.bounce, Some(BounceKind::Soft));
        assert_eq!(e.record.problem(), None);
    }

    #[test]
    fn untagged_untracked_and_garbage_are_told_apart() {
        let mut untagged = mail();
        untagged["tags"] = serde_json::json!({"ses:configuration-set": ["portal"]});
        let body = note(serde_json::json!({"eventType": "Delivery", "mail": untagged, "delivery": {"timestamp": "2026-12-03T10:00:00Z"}}));
        assert_eq!(parse_notification(&body), Err(DeliveryParseError::NotOurs(TAG_TENANT)));
        let body = note(serde_json::json!({"eventType": "Open", "mail": mail(), "open": {}}));
        assert_eq!(parse_notification(&body), Err(DeliveryParseError::Untracked("Open".into())));
        assert!(matches!(parse_notification("{"), Err(DeliveryParseError::Unreadable(_))));
        let mut bad_id = mail();
        bad_id["tags"]["tenant_id"] = serde_json::json!(["../other"]);
        let body = note(serde_json::json!({"eventType": "Delivery", "mail": bad_id, "delivery": {"timestamp": "2026-12-03T10:00:00Z"}}));
        assert_eq!(parse_notification(&body), Err(DeliveryParseError::NotOurs(TAG_TENANT)));
    }

    fn record(id: &str, status: DeliveryStatus, t: &str, bounce: Option<BounceKind>) -> DeliveryRecord {
        DeliveryRecord { id: id.into(), status, at: at(t), bounce, diagnostic: None }
    }

    #[test]
    fn the_furthest_state_wins_whatever_the_order_and_each_event_counts_once() {
        let delayed = record("d", DeliveryStatus::DeliveryDelayed, "2026-12-03T10:00:00Z", None);
        let delivered = record("v", DeliveryStatus::Delivered, "2026-12-03T10:05:00Z", None);
        let complained = record("c", DeliveryStatus::Complained, "2026-12-03T11:00:00Z", None);
        // In order.
        let (s1, h1) = apply(&[], &delayed).unwrap();
        assert_eq!(s1, DeliveryStatus::DeliveryDelayed);
        let (s2, h2) = apply(&h1, &delivered).unwrap();
        assert_eq!(s2, DeliveryStatus::Delivered);
        // Late: the delay arrives after the delivery; kept in time order, status stays delivered.
        let (s3, h3) = apply(&[delivered.clone()], &delayed).unwrap();
        assert_eq!(s3, DeliveryStatus::Delivered);
        assert_eq!(h3, h2);
        // Twice: nothing.
        assert_eq!(apply(&h2, &delivered), None);
        let (s4, _) = apply(&h2, &complained).unwrap();
        assert_eq!(s4, DeliveryStatus::Complained);
        // A soft bounce then the delivery that finally happened: delivered.
        let soft = record("s", DeliveryStatus::Bounced, "2026-12-03T10:01:00Z", Some(BounceKind::Soft));
        assert_eq!(apply(&[soft], &delivered).unwrap().0, DeliveryStatus::Delivered);
    }

    #[test]
    fn diagnostics_are_kept_short() {
        let long = "x".repeat(2000);
        assert_eq!(short(Some(long)).unwrap().chars().count(), MAX_DIAGNOSTIC + 1);
        assert_eq!(short(Some("  ".into())), None);
    }
}
