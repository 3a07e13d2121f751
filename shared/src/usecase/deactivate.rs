//! Deactivation (seed 002): every account of the contact on the portal loses
//! access at once, pending codes and links are revoked, the state becomes
//! `disabled` and a notice is emailed, in one transaction. Repeating it
//! changes nothing and sends nothing.

use super::issue::{queue_email, Actor, QueueEmailError};
use crate::app::App;
use crate::domain::{invitation, ContactId, DocumentId, EmailKind, MailJob, Portal, PortalState};
use crate::mail::templates::TemplateVars;
use crate::retry::{retry, Attempt, Policy};
use crate::store::{items::AuditItem, items::EmailItem, Deactivation, TxError};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum DeactivateError {
    #[error("contact not found")]
    ContactNotFound,
    #[error("the contact changed repeatedly meanwhile; try again")]
    KeptChanging(#[source] TxError),
    #[error(transparent)]
    EmailNotQueued(#[from] QueueEmailError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What deactivating did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The notice emailed; `None` when it was already disabled or the contact has no address.
    pub email_document_id: Option<DocumentId>,
    pub accounts_disabled: usize,
}

pub async fn deactivate(app: &App, actor: Actor<'_>, contact_id: &ContactId, portal: &Portal) -> Result<Deactivated, DeactivateError> {
    // The state changed between our read and the write: read again.
    let done = retry(Policy::immediate(3), DeactivateError::KeptChanging, |attempt| async move {
        match deactivate_once(app, actor, contact_id, portal).await {
            Ok(done) => Attempt::Done(done),
            Err(Ok(cancelled)) => {
                tracing::info!(attempt, error = %cancelled, "deactivation raced a change");
                Attempt::Again(cancelled)
            }
            Err(Err(e)) => Attempt::Stop(e),
        }
    })
    .await?;
    if let Some(doc) = &done.email_document_id {
        queue_email(app, MailJob { tenant_id: actor.tenant.clone(), contact_id: contact_id.clone(), document_id: doc.clone() }).await?;
    }
    Ok(done)
}

/// One read–write; `Err(Ok(_))` is a cancelled transaction (nothing written).
async fn deactivate_once(
    app: &App,
    actor: Actor<'_>,
    contact_id: &ContactId,
    portal: &Portal,
) -> Result<Deactivated, Result<TxError, DeactivateError>> {
    let tenant = actor.tenant;
    let partition = app
        .store
        .contact_partition(tenant, contact_id)
        .await
        .map_err(|e| Err(e.into()))?
        .ok_or(Err(DeactivateError::ContactNotFound))?;
    let now = (app.clock)();
    let seen = partition.access.get(portal.portal_id.as_str()).cloned();
    let previous = invitation::contact_state(seen.as_ref(), now);
    if previous == PortalState::Disabled {
        return Ok(Deactivated { email_document_id: None, accounts_disabled: 0 });
    }
    let accounts = partition
        .accounts
        .iter()
        .filter(|a| a.portal_id == portal.portal_id && a.disabled_at.is_none())
        .map(|a| a.email.clone())
        .collect::<Vec<_>>();
    let revoke = partition
        .codes
        .iter()
        .filter(|c| c.portal_id == portal.portal_id && invitation::revoke(c.state).is_some())
        .map(|c| c.hash.clone())
        .collect();
    let contact = &partition.contact;
    let email = contact.email.as_ref().map(|to| {
        let vars = TemplateVars {
            contact_name: contact.name.clone(),
            portal_name: portal.name.clone(),
            tenant_name: tenant.to_string(),
            claim_url: app.claim_url(tenant, portal),
            ..Default::default()
        };
        EmailItem::queued(tenant, contact_id, &portal.portal_id, EmailKind::Deactivation, to, vars.to_map(), now)
    });
    let detail = BTreeMap::from([
        ("previous_state".to_owned(), previous.as_str().to_owned()),
        ("accounts_disabled".to_owned(), accounts.len().to_string()),
    ]);
    let d = Deactivation {
        tenant_id: tenant.clone(),
        contact_id: contact_id.clone(),
        portal_id: portal.portal_id.clone(),
        seen,
        accounts,
        revoke,
        email,
        audit: AuditItem::contact(tenant, contact_id, Some(&portal.portal_id), actor.name, "deactivate", now, detail),
        now,
    };
    match app.store.deactivate(&d).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant, portal = %portal.portal_id, accounts = d.accounts.len(), "access deactivated");
            Ok(Deactivated { email_document_id: d.email.as_ref().map(|e| e.document_id.clone()), accounts_disabled: d.accounts.len() })
        }
        Err(e @ TxError::Cancelled(_)) => Err(Ok(e)),
        Err(TxError::Unexpected(e)) => Err(Err(e.into())),
    }
}
