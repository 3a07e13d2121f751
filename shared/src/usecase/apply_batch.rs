//! Applying one activation batch (seed 002): for each contact it skips and
//! counts a contact without an email address or already active, and
//! otherwise issues the code or link and its email job through
//! [`super::issue::plan`], the same path the single-contact operations take,
//! with a (job, contact) marker written in the same transaction. A
//! redelivered message finds the markers and issues nothing twice; its
//! counters are added once per batch; the job is `done` exactly when every
//! contact is accounted for.

use super::issue::{plan, recipients, IssueError, Step, Target};
use crate::app::App;
use crate::domain::job::{ActivationBatch, Counts, Outcome};
use crate::domain::portal::{default_portal, DefaultPortal};
use crate::domain::{identity, invitation, AccessEntry, Contact, ContactId, DocumentId, EmailKind, MailJob, Method, Portal, PortalState};
use crate::retry::{retry, Attempt, Policy};
use crate::store::{Store, TxError};
use anyhow::Context as _;
use futures::stream::{self, StreamExt};

/// Contacts of one message handled at once.
const CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Some contacts could not be handled this time; the message should come back.
    #[error("{failed} contacts failed; retrying the message")]
    ContactsFailed { failed: usize },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One contact's result, and the email job to queue for it.
struct ContactResult {
    outcome: Outcome,
    email: Option<DocumentId>,
}

/// Handles one batch. `last_try` is the last receive before the DLQ: then
/// contacts that still fail are counted as failed so the job can finish.
pub async fn apply_batch(app: &App, batch: &ActivationBatch, last_try: bool) -> Result<Counts, ApplyError> {
    let tenant = &batch.tenant_id;
    let portals = app.portals.get(&app.store, tenant).await?;
    let portal = match &batch.portal_id {
        Some(id) => portals.iter().find(|p| &p.portal_id == id).cloned().or(app.store.get_portal(tenant, id).await?),
        None => match default_portal(&portals) {
            DefaultPortal::Found(p) => Some(p.clone()),
            _ => None,
        },
    };
    let (contacts, markers) = tokio::try_join!(
        app.store.batch_contacts(tenant, &batch.contact_ids),
        app.store.batch_markers(tenant, &batch.job_id, &batch.contact_ids),
    )?;
    let (markers, contacts, portal) = (&markers, &contacts, &portal);
    let results: Vec<anyhow::Result<ContactResult>> = stream::iter(batch.contact_ids.iter().cloned())
        .map(|id: ContactId| async move {
            if let Some(m) = markers.get(&id) {
                return Ok(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() });
            }
            let Some(portal) = portal else {
                return skip(app, batch, &id, Outcome::Failed).await;
            };
            match contacts.get(&id) {
                None => skip(app, batch, &id, Outcome::Failed).await,
                Some((contact, access)) => activate_one(app, batch, portal, contact.clone(), access.get(portal.portal_id.as_str()).cloned()).await,
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut counts = Counts::default();
    let mut emails = Vec::new();
    let mut failed = 0;
    for (id, result) in batch.contact_ids.iter().zip(results) {
        match result {
            Ok(r) => {
                counts.add(r.outcome);
                if let Some(doc) = r.email {
                    emails.push(MailJob { tenant_id: tenant.clone(), contact_id: id.clone(), document_id: doc });
                }
            }
            Err(e) if last_try => {
                tracing::error!(error = ?e, "contact failed on the last try; counted as failed");
                counts.add(Outcome::Failed);
            }
            Err(e) => {
                tracing::warn!(error = ?e, "contact failed; the message will be retried");
                failed += 1;
            }
        }
    }
    // Queue (again, after a redelivery) every email of this batch: the mailer sends each once.
    app.mail_queue.send_all(&emails).await?;
    if failed > 0 {
        return Err(ApplyError::ContactsFailed { failed });
    }
    let now = (app.clock)();
    app.store
        .apply_batch(tenant, &batch.job_id, &batch.key(), counts, batch.contact_ids.len() as u32, batch.job_total, batch.method, now)
        .await?;
    Ok(counts)
}

async fn skip(app: &App, batch: &ActivationBatch, id: &ContactId, outcome: Outcome) -> anyhow::Result<ContactResult> {
    let marker = Store::marker(&batch.tenant_id, &batch.job_id, id, outcome, (app.clock)());
    if !app.store.put_marker(&marker).await? {
        return recorded(app, batch, id).await;
    }
    Ok(ContactResult { outcome, email: None })
}

/// The outcome a marker already records (a concurrent duplicate got there first).
async fn recorded(app: &App, batch: &ActivationBatch, id: &ContactId) -> anyhow::Result<ContactResult> {
    let m = app.store.batch_markers(&batch.tenant_id, &batch.job_id, std::slice::from_ref(id)).await?;
    let m = m.get(id).context("marker vanished")?;
    Ok(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() })
}

async fn activate_one(app: &App, batch: &ActivationBatch, portal: &Portal, contact: Contact, entry: Option<AccessEntry>) -> anyhow::Result<ContactResult> {
    let first = &(contact, entry);
    let id = &first.0.contact_id;
    retry(Policy::immediate(3), |()| anyhow::anyhow!("contact {id} kept changing"), |attempt| async move {
        // The first try uses what the batch read; a later one reads the contact again.
        let read;
        let (contact, entry) = if attempt == 1 {
            (&first.0, first.1.as_ref())
        } else {
            match app.store.get_contact_with_access(&batch.tenant_id, id).await {
                Ok(Some((c, access))) => {
                    read = (c, access.get(portal.portal_id.as_str()).cloned());
                    (&read.0, read.1.as_ref())
                }
                Ok(None) => return done(skip(app, batch, id, Outcome::Failed).await),
                Err(e) => return Attempt::Stop(e),
            }
        };
        activate_once(app, batch, portal, contact, entry).await
    })
    .await
}

fn done(result: anyhow::Result<ContactResult>) -> Attempt<ContactResult, (), anyhow::Error> {
    match result {
        Ok(r) => Attempt::Done(r),
        Err(e) => Attempt::Stop(e),
    }
}

/// One try for one contact: skip it, or issue its invitation with the job's
/// marker in the same transaction. `Again` when the contact changed meanwhile.
async fn activate_once(
    app: &App,
    batch: &ActivationBatch,
    portal: &Portal,
    contact: &Contact,
    entry: Option<&AccessEntry>,
) -> Attempt<ContactResult, (), anyhow::Error> {
    let tenant = &batch.tenant_id;
    let now = (app.clock)();
    let previous = invitation::contact_state(entry, now);
    let email = match batch.method {
        Method::Code => batch.send_email.then_some(EmailKind::PickupCode),
        Method::Link => Some(EmailKind::ActivationLink),
    };
    // Reachable by the portal's channels for the kind (a contact with neither email nor phone by nothing).
    let reachable = match email {
        Some(kind) => recipients(contact, portal, kind).map(drop),
        None if contact.email.is_none() && contact.phone.is_none() => Err(IssueError::NoEmailAddress),
        None => Ok(()),
    };
    if let Err(IssueError::NoEmailAddress | IssueError::NoPhoneNumber) = reachable {
        return done(skip(app, batch, &contact.contact_id, Outcome::SkippedNoEmail).await);
    }
    if previous == PortalState::Active {
        return done(skip(app, batch, &contact.contact_id, Outcome::SkippedAlreadyActive).await);
    }
    if let Err(IssueError::Suppressed(_)) = reachable {
        return done(skip(app, batch, &contact.contact_id, Outcome::SkippedSuppressed).await);
    }
    if !identity::missing(&portal.claim_checks, &contact.facts).is_empty() {
        return done(skip(app, batch, &contact.contact_id, Outcome::SkippedMissingFacts).await);
    }
    if previous == PortalState::Disabled {
        // Nothing of a stopped deactivation may come back with the new state.
        match super::deactivate::finish_before_enabling(app, tenant, &contact.contact_id, &portal.portal_id).await {
            Ok(()) => {}
            Err(super::deactivate::FinishError::KeptChanging(_)) => return Attempt::Again(()),
            Err(super::deactivate::FinishError::Unexpected(e)) => return Attempt::Stop(e),
        }
    }
    // Nothing was ever issued to a contact in `none`: no pending codes to look for.
    let revoke = if previous == PortalState::None {
        Vec::new()
    } else {
        match app.store.pending_code_hashes(tenant, &contact.contact_id, &portal.portal_id).await {
            Ok(r) => r,
            Err(e) => return Attempt::Stop(e),
        }
    };
    let keys = match app.keys.get().await {
        Ok(keys) => keys,
        Err(e) => return Attempt::Stop(e),
    };
    let tenant_name = app.tenant_name(tenant).await;
    let target = Target { actor: &batch.actor, tenant, contact, portal, method: batch.method, previous, now, key: &keys.current, tenant_name: &tenant_name };
    let (mut invitation, issued) = match plan(app, &target, Step { email, action: "bulk_activate" }, revoke) {
        Ok(planned) => planned,
        Err(e) => return Attempt::Stop(anyhow::Error::new(e).context("planning a contact's invitation")),
    };
    let mut marker = Store::marker(tenant, &batch.job_id, &contact.contact_id, Outcome::Activated, now);
    marker.email_document_id = issued.email_document_id.clone();
    invitation.job_marker = Some(marker);
    match app.store.issue_invitation(&invitation).await {
        Ok(()) => Attempt::Done(ContactResult { outcome: Outcome::Activated, email: issued.email_document_id }),
        Err(TxError::Cancelled(_)) => {
            // A duplicate delivery may have done it; otherwise the contact changed.
            match app.store.batch_markers(tenant, &batch.job_id, std::slice::from_ref(&contact.contact_id)).await {
                Ok(m) => match m.get(&contact.contact_id) {
                    Some(m) => Attempt::Done(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() }),
                    None => Attempt::Again(()),
                },
                Err(e) => Attempt::Stop(e),
            }
        }
        Err(TxError::Unexpected(e)) => Attempt::Stop(e),
    }
}
