//! What a use case sends: its messages sealed for the mail queue
//! ([`sealed_messages`], [`sealed_email`]), put on the queue
//! ([`queue_email`]), and who they are sent for ([`Actor`]). Below every use
//! case that sends (issue, deactivate, claim, the scheduler's reminders), so
//! none of them depends on another for it.

use crate::app::App;
use crate::domain::{
    sealed::{self, Sealer},
    Contact, ContactId, EmailKind, MailJob, Portal, PortalId, Recipient, TenantId,
};
use crate::mail::templates::TemplateVars;
use crate::store::{items::EmailItem, EmailKey};
use chrono::{DateTime, Utc};

/// Who issues: a staff member's `sub`, an integration's name, or the scheduler.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub tenant: &'a TenantId,
    pub name: &'a str,
}

/// The messages of one send, in the contact's language, sealed: the first
/// names the others as its companions (the mailer queues them with it).
#[allow(clippy::too_many_arguments)]
pub fn sealed_messages(
    sealer: &Sealer,
    tenant: &TenantId,
    contact: &Contact,
    portal: &Portal,
    kind: EmailKind,
    to: Vec<Recipient>,
    vars: &TemplateVars,
    now: DateTime<Utc>,
) -> Vec<EmailItem> {
    EmailItem::one_send(
        to.into_iter()
            .map(|to| {
                sealed_email(sealer, tenant, &contact.contact_id, &portal.portal_id, kind, to, vars, now)
                    .in_language(contact.locale.as_ref(), &portal.default_locale)
            })
            .collect(),
    )
}

/// A new `queued` email log entry whose secrets (`code`, `link`) are sealed
/// for the mailer and masked in the stored variables (`domain::sealed`).
#[allow(clippy::too_many_arguments)]
pub fn sealed_email(
    sealer: &Sealer,
    tenant: &TenantId,
    contact: &ContactId,
    portal: &PortalId,
    kind: EmailKind,
    to: impl Into<Recipient>,
    vars: &TemplateVars,
    now: DateTime<Utc>,
) -> EmailItem {
    let masked = TemplateVars { code: sealed::mask_code(&vars.code).into(), link: sealed::mask_link(&vars.link).into(), ..vars.clone() };
    let mut email = EmailItem::queued(tenant, contact, portal, kind, to, masked.to_map(), now);
    if !vars.code.is_empty() || !vars.link.is_empty() {
        let secrets = serde_json::json!({"code": vars.code, "link": vars.link}).to_string();
        email.sealed = Some(sealer.seal(&email.document_id, &secrets));
    }
    email
}

/// An email job that could not be put on the mail queue. What was stored
/// stays valid and the operation can be repeated.
#[derive(Debug, thiserror::Error)]
pub enum QueueEmailError {
    #[error("the change was stored but its email could not be queued; repeat it to retry")]
    NotQueued(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Puts an email job on the mail queue. If SQS refuses, the log entry says so.
pub async fn queue_email(app: &App, job: MailJob) -> Result<(), QueueEmailError> {
    if let Err(e) = app.mail_queue.enqueue(&job).await {
        tracing::error!(error = ?e, "could not queue an email");
        let key = EmailKey { tenant_id: job.tenant_id, contact_id: job.contact_id, document_id: job.document_id };
        app.store.mark_email_unsent(&key, "the email job could not be queued", true).await?;
        return Err(QueueEmailError::NotQueued(e));
    }
    Ok(())
}
