//! Submitting a bulk activation (seed 002): a selection, or a whole group, is
//! recorded as a job and put on the activation queue as batches of up to 100
//! contacts (ten per SendMessageBatch). [`super::apply_batch`] handles them.

use crate::app::App;
use crate::domain::job::{self, JobState};
use crate::domain::{ContactId, JobId, Method, Portal, TenantId};
use crate::queue::SQS_BATCH;
use crate::store::{items::JobItem, jobs};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The job is recorded but some of its batches are not on the queue.
    #[error("job {job_id} was recorded but not all of its batches could be queued; submit again")]
    NotQueued {
        job_id: JobId,
        #[source]
        source: anyhow::Error,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

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
pub async fn submit(app: &App, req: JobRequest<'_>) -> Result<JobId, SubmitError> {
    let now = (app.clock)();
    let job_id = JobId::parse(&uuid::Uuid::now_v7().to_string()).expect("a uuid is a valid id");
    let record = JobItem {
        pk: jobs::job_pk(req.tenant, &job_id),
        sk: jobs::JOB_SK.into(),
        job_id: job_id.clone(),
        state: JobState::Queued,
        portal_id: Some(req.portal.portal_id.clone()),
        method: Some(req.method),
        total: req.contacts.len() as u32,
        activated: 0,
        skipped_no_email: 0,
        skipped_already_active: 0,
        skipped_missing_facts: 0,
        skipped_suppressed: 0,
        failed: 0,
        created_at: now,
        finished_at: None,
        created_by: req.actor.to_owned(),
        source: req.source,
    };
    if !app.store.create_job(&record).await? {
        return Err(anyhow::anyhow!("a fresh job id was taken").into());
    }
    let messages = job::messages(req.tenant, &job_id, &req.portal.portal_id, req.method, req.send_email, req.contacts, req.actor);
    // Ten batches of ten in flight at once: 10,000 contacts is ten round trips.
    let queue = &app.activation_queue;
    for group in messages.chunks(SQS_BATCH * 10) {
        let sends = group.chunks(SQS_BATCH).map(|c| queue.send_all(c));
        if let Err(source) = futures::future::try_join_all(sends).await {
            tracing::error!(error = ?source, job = %job_id, "could not queue a job's batches");
            return Err(SubmitError::NotQueued { job_id, source });
        }
    }
    tracing::info!(job = %job_id, contacts = req.contacts.len(), batches = messages.len(), "activation job queued");
    Ok(job_id)
}
