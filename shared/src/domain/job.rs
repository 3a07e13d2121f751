//! Bulk activation (seed 002): the activation-queue message, the per-contact
//! outcome, the job's counters and when a job is done.
//!
//! # The activation queue's message (version 1)
//!
//! A tenant's registered integrations may send these directly
//! (SendMessageBatch, no HTTP call), signed as [`super::queue_proof`] says:
//!
//! ```json
//! {
//!   "version": 1,
//!   "job_id": "nightly-2026-11-23",
//!   "portal_id": "main",
//!   "method": "code",
//!   "send_email": true,
//!   "contact_ids": ["chart-1001", "chart-1002"],
//!   "job_total": 2
//! }
//! ```
//!
//! The tenant is the one the signature proves; `tenant_id`, when the body
//! names one, must be that tenant. The audit's actor is the integration's
//! registered name (only the service's own messages carry `actor`, the staff
//! member who submitted the job). `portal_id` (default: the tenant's default
//! portal), `send_email` (default true) and `job_total` (the job's contact
//! count, when the sender knows it) are optional; `contact_ids` holds 1 to
//! 100 ids. Unknown fields are refused.

use super::queue_proof::ProofError;
use super::{access_state::Method, ContactId, JobId, PortalId, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most contacts one job takes.
pub const MAX_CONTACTS_PER_JOB: usize = 10_000;
/// Most contacts one queue message carries.
pub const CONTACTS_PER_MESSAGE: usize = 100;
/// The actor recorded for the service's own messages that name none.
pub const QUEUE_ACTOR: &str = "activation-queue";

fn yes() -> bool {
    true
}

/// The activation queue's message, as it travels: what the service sends
/// (its ids are the domain's types). What arrives is read through
/// [`ActivationMessage::parse`], which names the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationMessage {
    pub version: u32,
    pub tenant_id: TenantId,
    pub job_id: JobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<PortalId>,
    pub method: Method,
    #[serde(default = "yes")]
    pub send_email: bool,
    pub contact_ids: Vec<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The message as any sender may write it: plain strings, checked one by one
/// so an error names the field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    version: u32,
    #[serde(default)]
    tenant_id: Option<String>,
    job_id: String,
    #[serde(default)]
    portal_id: Option<String>,
    method: Method,
    #[serde(default = "yes")]
    send_email: bool,
    contact_ids: Vec<String>,
    #[serde(default)]
    job_total: Option<u32>,
    #[serde(default)]
    actor: Option<String>,
}

/// A message whose every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationBatch {
    pub tenant_id: TenantId,
    pub job_id: JobId,
    pub portal_id: Option<PortalId>,
    pub method: Method,
    pub send_email: bool,
    pub contact_ids: Vec<ContactId>,
    pub job_total: Option<u32>,
    pub actor: String,
}

/// Why a message is not acted on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("invalid activation message: {0}")]
    Invalid(String),
    /// The body claims what its proof does not.
    #[error(transparent)]
    Refused(#[from] ProofError),
}

/// Who a message's proof says sent it (`super::queue_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender<'a> {
    /// The service's own message: its `actor` is the staff member.
    Service,
    /// A registered integration, by its registered name.
    Integration { name: &'a str },
}

impl ActivationMessage {
    /// Reads a body whose proof has been verified: it acts for `tenant`, the
    /// proven tenant, and its actor is what `sender` says.
    pub fn parse(body: &str, tenant: &TenantId, sender: Sender<'_>) -> Result<ActivationBatch, MessageError> {
        let m: RawMessage = serde_json::from_str(body).map_err(|e| MessageError::Invalid(e.to_string()))?;
        m.check(tenant, sender)
    }
}

impl RawMessage {
    fn check(self, tenant: &TenantId, sender: Sender<'_>) -> Result<ActivationBatch, MessageError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| MessageError::Invalid(format!("{what} {e}"));
        if self.version != 1 {
            return Err(MessageError::Invalid(format!("version {} is not supported (1 is)", self.version)));
        }
        if self.contact_ids.is_empty() || self.contact_ids.len() > CONTACTS_PER_MESSAGE {
            return Err(MessageError::Invalid(format!("contact_ids must hold 1 to {CONTACTS_PER_MESSAGE} ids")));
        }
        if let Some(named) = self.tenant_id.as_deref().filter(|t| *t != tenant.as_str()) {
            return Err(ProofError::OtherTenant { named: named.chars().take(64).collect(), proven: tenant.to_string() }.into());
        }
        let actor = match sender {
            Sender::Service => self.actor.filter(|a| !a.is_empty() && a.len() <= 200).unwrap_or_else(|| QUEUE_ACTOR.to_owned()),
            Sender::Integration { name } if self.actor.is_none() => name.to_owned(),
            Sender::Integration { .. } => return Err(ProofError::ActorNamed.into()),
        };
        let mut contact_ids = Vec::with_capacity(self.contact_ids.len());
        for id in &self.contact_ids {
            contact_ids.push(ContactId::parse(id).map_err(|e| bad("contact id", &e))?);
        }
        contact_ids.sort();
        contact_ids.dedup();
        Ok(ActivationBatch {
            tenant_id: tenant.clone(),
            job_id: JobId::parse(&self.job_id).map_err(|e| bad("job_id", &e))?,
            portal_id: self.portal_id.as_deref().map(PortalId::parse).transpose().map_err(|e| bad("portal_id", &e))?,
            method: self.method,
            send_email: self.send_email,
            contact_ids,
            job_total: self.job_total,
            actor,
        })
    }
}

impl ActivationBatch {
    /// Identifies the batch by its content, so a duplicate delivery (or a
    /// duplicate send) of the same contacts for the same job counts once.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for id in &self.contact_ids {
            h.update(id.as_str().as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// Splits a job's contacts into messages of at most 100.
pub fn messages(
    tenant: &TenantId,
    job: &JobId,
    portal: &PortalId,
    method: Method,
    send_email: bool,
    contacts: &[ContactId],
    actor: &str,
) -> Vec<ActivationMessage> {
    contacts
        .chunks(CONTACTS_PER_MESSAGE)
        .map(|chunk| ActivationMessage {
            version: 1,
            tenant_id: tenant.clone(),
            job_id: job.clone(),
            portal_id: Some(portal.clone()),
            method,
            send_email,
            contact_ids: chunk.to_vec(),
            job_total: Some(contacts.len() as u32),
            actor: Some(actor.to_owned()),
        })
        .collect()
}

/// What happened to one contact of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Activated,
    SkippedNoEmail,
    SkippedAlreadyActive,
    /// The portal checks a fact of the record the contact lacks.
    SkippedMissingFacts,
    /// The contact's email bounced hard or was complained about (`domain::delivery`).
    SkippedSuppressed,
    /// Not a contact of this tenant, or the write failed for good.
    Failed,
}

/// A job's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub activated: u32,
    pub skipped_no_email: u32,
    pub skipped_already_active: u32,
    #[serde(default)]
    pub skipped_missing_facts: u32,
    #[serde(default)]
    pub skipped_suppressed: u32,
    pub failed: u32,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Activated => self.activated += 1,
            Outcome::SkippedNoEmail => self.skipped_no_email += 1,
            Outcome::SkippedAlreadyActive => self.skipped_already_active += 1,
            Outcome::SkippedMissingFacts => self.skipped_missing_facts += 1,
            Outcome::SkippedSuppressed => self.skipped_suppressed += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    /// Contacts accounted for.
    pub fn accounted(&self) -> u32 {
        self.activated + self.skipped_no_email + self.skipped_already_active + self.skipped_missing_facts + self.skipped_suppressed + self.failed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
}

/// A job is done exactly when every one of its contacts is accounted for.
pub fn is_done(counts: &Counts, total: u32) -> bool {
    total > 0 && counts.accounted() >= total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ContactId> {
        (0..n).map(|i| ContactId::parse(&format!("c{i}")).unwrap()).collect()
    }

    #[test]
    fn jobs_split_into_messages_of_a_hundred() {
        let t = TenantId::parse("t").unwrap();
        let j = JobId::parse("j").unwrap();
        let p = PortalId::parse("p").unwrap();
        let m = messages(&t, &j, &p, Method::Code, true, &ids(250), "staff");
        assert_eq!(m.iter().map(|m| m.contact_ids.len()).collect::<Vec<_>>(), [100, 100, 50]);
        assert!(m.iter().all(|m| m.job_total == Some(250)));
        let round = ActivationMessage::parse(&serde_json::to_string(&m[2]).unwrap(), &t, Sender::Service).unwrap();
        assert_eq!(round.contact_ids.len(), 50);
        assert_eq!(round.actor, "staff");
    }

    #[test]
    fn messages_are_checked() {
        let t = TenantId::parse("t").unwrap();
        let ok = r#"{"version":1,"tenant_id":"t","job_id":"j","method":"link","contact_ids":["a","b","a"]}"#;
        let b = ActivationMessage::parse(ok, &t, Sender::Service).unwrap();
        assert_eq!(b.contact_ids.len(), 2, "duplicates collapse");
        assert!(b.send_email, "send_email defaults to true");
        assert_eq!(b.actor, QUEUE_ACTOR);
        for bad in [
            r#"{"version":2,"tenant_id":"t","job_id":"j","method":"code","contact_ids":["a"]}"#,
            r#"{"version":1,"tenant_id":"t#x","job_id":"j","method":"code","contact_ids":["a"]}"#,
            r#"{"version":1,"tenant_id":"t","job_id":"j#x","method":"code","contact_ids":["a"]}"#,
            r#"{"version":1,"tenant_id":"t","job_id":"j","method":"code","contact_ids":[]}"#,
            r#"{"version":1,"tenant_id":"t","job_id":"j","method":"sms","contact_ids":["a"]}"#,
            r#"{"version":1,"tenant_id":"t","job_id":"j","method":"code","contact_ids":["a"],"extra":1}"#,
            "not json",
        ] {
            assert!(ActivationMessage::parse(bad, &t, Sender::Service).is_err(), "{bad}");
        }
        let too_many = serde_json::json!({"version":1,"tenant_id":"t","job_id":"j","method":"code",
            "contact_ids": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>()});
        assert!(ActivationMessage::parse(&too_many.to_string(), &t, Sender::Service).is_err());
    }

    #[test]
    fn the_proven_tenant_and_the_registered_name_win() {
        let a = TenantId::parse("a").unwrap();
        let crm = Sender::Integration { name: "CRM sync" };
        let other = r#"{"version":1,"tenant_id":"b","job_id":"j","method":"code","contact_ids":["x"]}"#;
        assert!(matches!(ActivationMessage::parse(other, &a, crm), Err(MessageError::Refused(ProofError::OtherTenant { .. }))));
        assert!(matches!(ActivationMessage::parse(other, &a, Sender::Service), Err(MessageError::Refused(_))));
        let anonymous = r#"{"version":1,"job_id":"j","method":"code","contact_ids":["x"]}"#;
        let b = ActivationMessage::parse(anonymous, &a, crm).unwrap();
        assert_eq!((b.tenant_id.as_str(), b.actor.as_str()), ("a", "CRM sync"));
        let named = r#"{"version":1,"job_id":"j","method":"code","contact_ids":["x"],"actor":"dr-smith"}"#;
        assert_eq!(ActivationMessage::parse(named, &a, crm), Err(MessageError::Refused(ProofError::ActorNamed)));
        assert_eq!(ActivationMessage::parse(named, &a, Sender::Service).unwrap().actor, "dr-smith");
    }

    #[test]
    fn the_batch_key_depends_on_the_contacts_only() {
        let t = TenantId::parse("t").unwrap();
        let parse = |body: &str| ActivationMessage::parse(body, &t, Sender::Service).unwrap();
        let a = parse(r#"{"version":1,"tenant_id":"t","job_id":"j","method":"code","contact_ids":["a","b"]}"#);
        let b = parse(r#"{"version":1,"tenant_id":"t","job_id":"j","method":"code","contact_ids":["b","a"]}"#);
        let c = parse(r#"{"version":1,"tenant_id":"t","job_id":"j","method":"code","contact_ids":["a","c"]}"#);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn done_means_every_contact_accounted_for() {
        let mut c = Counts::default();
        for o in [Outcome::Activated, Outcome::SkippedNoEmail, Outcome::SkippedAlreadyActive, Outcome::SkippedMissingFacts] {
            c.add(o);
        }
        assert!(!is_done(&c, 5));
        c.add(Outcome::Failed);
        assert!(is_done(&c, 5));
        assert!(!is_done(&Counts::default(), 0));
    }
}
