//! Bulk activation (seed 002): a selection, or a whole group, activated as
//! queue batches of up to 100 contacts.
//!
//! Submitting ([`submit`]) records the job and enqueues its messages (ten per
//! SendMessageBatch). Processing ([`Activator::process`]) handles one message:
//! for each contact it skips and counts a contact without an email address or
//! already active, and otherwise issues the code or link and its email job
//! through [`crate::invite::plan`], the same path the single-contact
//! operations take, with a (job, contact) marker written in the same
//! transaction. A redelivered message finds the markers and issues nothing
//! twice; its counters are added once per batch; the job is `done` exactly
//! when every contact is accounted for.

use crate::app::{App, Clock};
use crate::domain::job::{self, ActivationBatch, Counts, JobState, Outcome};
use crate::domain::{access_state::effective, ContactId, JobId, Method, Portal, PortalState, TenantId};
use crate::http::problem::ApiError;
use crate::invite::{plan, Step, Target};
use crate::mail::{queue::JsonQueue, EmailKind, MailJob};
use crate::store::{items::JobItem, jobs, Store, TxError};
use anyhow::Context as _;
use futures::stream::{self, StreamExt};

/// Contacts of one message handled at once.
const CONCURRENCY: usize = 16;

/// What a job should do, as submitted.
pub struct JobRequest<'a> {
    pub tenant: &'a TenantId,
    pub actor: &'a str,
    pub portal: &'a Portal,
    pub method: Method,
    pub send_email: bool,
    pub contacts: &'a [ContactId],
    /// `http` or `group:{id}`.
    pub source: String,
}

/// Records a job and puts its messages on the activation queue.
pub async fn submit(store: &Store, queue: &JsonQueue, clock: &Clock, req: JobRequest<'_>) -> Result<JobId, ApiError> {
    let now = clock();
    let job_id = JobId::parse(&uuid::Uuid::now_v7().to_string()).expect("a uuid is a valid id");
    let record = JobItem {
        pk: jobs::job_pk(req.tenant, &job_id),
        sk: jobs::JOB_SK.into(),
        job_id: job_id.to_string(),
        state: JobState::Queued,
        portal_id: Some(req.portal.portal_id.to_string()),
        method: Some(req.method),
        total: req.contacts.len() as u32,
        activated: 0,
        skipped_no_email: 0,
        skipped_already_active: 0,
        failed: 0,
        created_at: now,
        finished_at: None,
        created_by: req.actor.to_owned(),
        source: req.source,
    };
    if !store.create_job(&record).await? {
        return Err(anyhow::anyhow!("a fresh job id was taken").into());
    }
    let messages = job::messages(req.tenant, &job_id, &req.portal.portal_id, req.method, req.send_email, req.contacts, req.actor);
    // Ten batches of ten in flight at once: 10,000 contacts is ten round trips.
    let sends = messages.chunks(crate::mail::queue::SQS_BATCH * 10).map(|group| {
        let chunks: Vec<_> = group.chunks(crate::mail::queue::SQS_BATCH).collect();
        async move {
            futures::future::try_join_all(chunks.into_iter().map(|c| queue.send_all(c))).await.map(drop)
        }
    });
    for send in sends {
        if let Err(e) = send.await {
            tracing::error!(error = ?e, job = %job_id, "could not queue a job's batches");
            return Err(ApiError::Unavailable(format!(
                "job {job_id} was recorded but not all of its batches could be queued; submit again"
            )));
        }
    }
    tracing::info!(job = %job_id, contacts = req.contacts.len(), batches = messages.len(), "activation job queued");
    Ok(job_id)
}

/// The activator's dependencies.
pub struct Activator {
    pub app: App,
    /// The activation queue's maxReceiveCount: the last receive before the DLQ.
    pub max_receive_count: u32,
}

/// One contact's result, and the email job to queue for it.
struct ContactResult {
    outcome: Outcome,
    email: Option<String>,
}

impl Activator {
    /// Handles one message. An error leaves the message for redelivery; on
    /// the last receive, contacts that still fail are counted as failed so
    /// the job can finish, and the message goes on to the DLQ.
    pub async fn process(&self, batch: &ActivationBatch, receive_count: u32) -> anyhow::Result<Counts> {
        let app = &self.app;
        let tenant = &batch.tenant_id;
        let portals = app.portals.get(&app.store, tenant).await?;
        let portal = match &batch.portal_id {
            Some(id) => portals.iter().find(|p| &p.portal_id == id).cloned().or(app.store.get_portal(tenant, id).await?),
            None => match crate::domain::portal::default_portal(&portals) {
                crate::domain::portal::DefaultPortal::Found(p) => Some(p.clone()),
                _ => None,
            },
        };
        let last_try = receive_count >= self.max_receive_count;
        let (contacts, markers) = tokio::try_join!(
            app.store.batch_contacts(tenant, &batch.contact_ids),
            app.store.batch_markers(tenant, &batch.job_id, &batch.contact_ids),
        )?;
        let (markers, contacts, portal) = (&markers, &contacts, &portal);
        let results: Vec<anyhow::Result<ContactResult>> = stream::iter(batch.contact_ids.iter().cloned())
            .map(|id: ContactId| async move {
                if let Some(m) = markers.get(id.as_str()) {
                    return Ok(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() });
                }
                let Some(portal) = portal else {
                    return self.skip(batch, &id, Outcome::Failed).await;
                };
                match contacts.get(&id) {
                    None => self.skip(batch, &id, Outcome::Failed).await,
                    Some((contact, access)) => {
                        self.activate_one(batch, portal, contact.clone(), access.get(portal.portal_id.as_str()).cloned()).await
                    }
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut counts = Counts::default();
        let mut emails = Vec::new();
        let mut errors = 0;
        for (id, result) in batch.contact_ids.iter().zip(results) {
            match result {
                Ok(r) => {
                    counts.add(r.outcome);
                    if let Some(doc) = r.email {
                        emails.push(MailJob { tenant_id: tenant.to_string(), contact_id: id.to_string(), document_id: doc });
                    }
                }
                Err(e) if last_try => {
                    tracing::error!(error = ?e, "contact failed on the last try; counted as failed");
                    counts.add(Outcome::Failed);
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "contact failed; the message will be retried");
                    errors += 1;
                }
            }
        }
        // Queue (again, after a redelivery) every email of this batch: the mailer sends each once.
        app.mail_queue.send_all(&emails).await?;
        if errors > 0 {
            anyhow::bail!("{errors} contacts failed; retrying the message");
        }
        let now = (app.clock)();
        app.store
            .apply_batch(tenant, &batch.job_id, &batch.key(), counts, batch.contact_ids.len() as u32, batch.job_total, batch.method, now)
            .await?;
        Ok(counts)
    }

    async fn skip(&self, batch: &ActivationBatch, id: &ContactId, outcome: Outcome) -> anyhow::Result<ContactResult> {
        let marker = Store::marker(&batch.tenant_id, &batch.job_id, id, outcome, (self.app.clock)());
        if !self.app.store.put_marker(&marker).await? {
            return self.recorded(batch, id).await;
        }
        Ok(ContactResult { outcome, email: None })
    }

    /// The outcome a marker already records (a concurrent duplicate got there first).
    async fn recorded(&self, batch: &ActivationBatch, id: &ContactId) -> anyhow::Result<ContactResult> {
        let m = self.app.store.batch_markers(&batch.tenant_id, &batch.job_id, std::slice::from_ref(id)).await?;
        let m = m.get(id.as_str()).context("marker vanished")?;
        Ok(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() })
    }

    async fn activate_one(
        &self,
        batch: &ActivationBatch,
        portal: &Portal,
        mut contact: crate::domain::Contact,
        mut entry: Option<crate::domain::AccessEntry>,
    ) -> anyhow::Result<ContactResult> {
        let app = &self.app;
        let tenant = &batch.tenant_id;
        for _attempt in 0..3 {
            let now = (app.clock)();
            let previous = effective(entry.as_ref(), now);
            if contact.email.is_none() {
                return self.skip(batch, &contact.contact_id, Outcome::SkippedNoEmail).await;
            }
            if previous == PortalState::Active {
                return self.skip(batch, &contact.contact_id, Outcome::SkippedAlreadyActive).await;
            }
            // Nothing was ever issued to a contact in `none`: no pending codes to look for.
            let revoke = if previous == PortalState::None {
                Vec::new()
            } else {
                app.store.pending_code_hashes(tenant, &contact.contact_id, &portal.portal_id).await?
            };
            let email = match batch.method {
                Method::Code => batch.send_email.then_some(EmailKind::PickupCode),
                Method::Link => Some(EmailKind::ActivationLink),
            };
            let target = Target { actor: &batch.actor, tenant, contact: &contact, portal, method: batch.method, previous, now };
            let (mut invitation, issued) = plan(app, &target, Step { email, action: "bulk_activate" }, revoke)
                .map_err(|e| anyhow::anyhow!("planning failed: {e}"))?;
            let mut marker = Store::marker(tenant, &batch.job_id, &contact.contact_id, Outcome::Activated, now);
            marker.email_document_id = issued.email_document_id.clone();
            invitation.job_marker = Some(marker);
            match app.store.issue_invitation(&invitation).await {
                Ok(()) => return Ok(ContactResult { outcome: Outcome::Activated, email: issued.email_document_id }),
                Err(TxError::Cancelled { .. }) => {
                    // A duplicate delivery may have done it; otherwise the contact changed.
                    let m = app.store.batch_markers(tenant, &batch.job_id, std::slice::from_ref(&contact.contact_id)).await?;
                    if let Some(m) = m.get(contact.contact_id.as_str()) {
                        return Ok(ContactResult { outcome: m.outcome, email: m.email_document_id.clone() });
                    }
                    let Some((c, access)) = app.store.get_contact_with_access(tenant, &contact.contact_id).await? else {
                        return self.skip(batch, &contact.contact_id, Outcome::Failed).await;
                    };
                    entry = access.get(portal.portal_id.as_str()).cloned();
                    contact = c;
                }
                Err(TxError::Unexpected(e)) => return Err(e),
            }
        }
        anyhow::bail!("contact {} kept changing", contact.contact_id)
    }

    /// The SQS batch: messages one after another, failures reported per message id.
    pub async fn handle_batch(&self, event: aws_lambda_events::sqs::SqsEvent) -> aws_lambda_events::sqs::SqsBatchResponse {
        let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
        for message in &event.records {
            let receive_count = message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            let ok = match message.body.as_deref().map(job::ActivationMessage::parse) {
                Some(Ok(batch)) => match self.process(&batch, receive_count).await {
                    Ok(counts) => {
                        tracing::info!(job = %batch.job_id, activated = counts.activated, accounted = counts.accounted(), "activation batch done");
                        crate::metrics::emf::put("BulkContactsProcessed", counts.accounted() as f64, &[]);
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = ?e, job = %batch.job_id, "activation batch failed");
                        false
                    }
                },
                Some(Err(e)) => {
                    tracing::error!(error = %e, message_id = ?message.message_id, "unreadable activation message; leaving it for the DLQ");
                    false
                }
                None => false,
            };
            if !ok {
                let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }
}

