//! Bulk activation jobs: the job record and its counters, the per-contact
//! markers that make redelivery harmless, batched reads of a message's
//! contacts, and groups (SmartGroups and Lists) with their members.
//!
//! | item            | pk                 | sk                       |
//! |-----------------|--------------------|--------------------------|
//! | job             | `T#{t}#J#{job}`    | `JOB`                    |
//! | contact marker  | `T#{t}#J#{job}`    | `C#{contact}`            |
//! | batch applied   | `T#{t}#J#{job}`    | `B#{batch key}`          |
//! | group           | `T#{t}#G#{group}`  | `GROUP`                  |
//! | group members   | `T#{t}#G#{group}`  | `GROUP#MEMBERS#{chunk}`  |

use super::dynamo::{from_item, key, n, s, to_item, Item, Store};
use super::tx::{Tx, TxError, TxItem};
use crate::retry::{retry, Attempt, Policy};
use std::time::Duration;
use super::items::{JobItem, JobMarkerItem};
use super::keys;
use crate::domain::job::{is_done, Counts, JobState, Outcome};
use crate::domain::{time, AccessEntry, Contact, ContactId, DocumentId, GroupId, JobId, TenantId};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub fn job_pk(t: &TenantId, j: &JobId) -> String {
    format!("T#{t}#J#{j}")
}
pub const JOB_SK: &str = "JOB";
pub fn marker_sk(c: &ContactId) -> String {
    format!("C#{c}")
}
pub fn group_pk(t: &TenantId, g: &GroupId) -> String {
    format!("T#{t}#G#{g}")
}
pub const GROUP_SK: &str = "GROUP";
/// Tries of a batch read whose keys DynamoDB leaves unprocessed (40 ms doubling).
const UNPROCESSED: Policy = Policy::backoff(8, Duration::from_millis(40), Duration::from_millis(640));
/// Tries of a job counter update that meets concurrent batches (50 ms doubling).
const CONTENTION: Policy = Policy::backoff(6, Duration::from_millis(50), Duration::from_millis(800));
/// Ids per members item: 1,000 ids of at most 64 bytes stay far below DynamoDB's 400 KB.
pub const MEMBERS_PER_ITEM: usize = 1000;

/// A marker's content as read back.
#[derive(Debug, Clone)]
pub struct Marker {
    pub outcome: Outcome,
    pub email_document_id: Option<DocumentId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupItem {
    pub pk: String,
    pub sk: String,
    pub group_id: GroupId,
    pub name: String,
    pub size: u32,
    pub chunks: u32,
    #[serde(with = "time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The tenant's groups in id order (`keys::groups_gsi_pk`); absent on groups saved before the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// One line of a tenant's list of groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group_id: GroupId,
    pub name: String,
    pub size: u32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MembersItem {
    pk: String,
    sk: String,
    contact_ids: Vec<ContactId>,
}

/// A group as read back.
#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: GroupId,
    pub name: String,
    pub contact_ids: Vec<ContactId>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Reads up to 100 items per request by key, following UnprocessedKeys.
    async fn batch_get(&self, keys_list: Vec<Item>) -> anyhow::Result<Vec<Item>> {
        let found = std::sync::Mutex::new(Vec::new());
        for chunk in keys_list.chunks(100) {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .context("Failed to build BatchGetItem keys")?;
            // DynamoDB may leave some keys unprocessed: ask again for those, backing off.
            let pending = std::sync::Mutex::new(keys);
            let (pending, found) = (&pending, &found);
            retry(UNPROCESSED, |()| anyhow::anyhow!("DynamoDB kept keys unprocessed"), |_| async move {
                let request = pending.lock().expect("keys lock").clone();
                let out = match self.client().batch_get_item().request_items(self.table_name(), request).send().await {
                    Ok(out) => out,
                    Err(e) => return Attempt::Stop(anyhow::Error::new(e).context("Failed to read items in a batch")),
                };
                if let Some(mut r) = out.responses {
                    found.lock().expect("items lock").extend(r.remove(self.table_name()).unwrap_or_default());
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(self.table_name())).filter(|k| !k.keys().is_empty()) {
                    Some(left) => {
                        *pending.lock().expect("keys lock") = left;
                        Attempt::Again(())
                    }
                    None => Attempt::Done(()),
                }
            })
            .await?;
        }
        Ok(found.into_inner().expect("items lock"))
    }

    /// Contacts (with their portal states) of one tenant, by id, in batches.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, n = ids.len()))]
    pub async fn batch_contacts(
        &self,
        tenant: &TenantId,
        ids: &[ContactId],
    ) -> anyhow::Result<HashMap<ContactId, (Contact, BTreeMap<String, AccessEntry>)>> {
        let keys_list = ids.iter().map(|c| key(keys::contact_pk(tenant, c), keys::CONTACT_SK.into())).collect();
        let mut out = HashMap::new();
        for item in self.batch_get(keys_list).await? {
            let (contact, access) = Self::contact_from(item)?;
            out.insert(contact.contact_id.clone(), (contact, access));
        }
        Ok(out)
    }

    /// The markers this job already has for these contacts.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, n = ids.len()))]
    pub async fn batch_markers(&self, tenant: &TenantId, job: &JobId, ids: &[ContactId]) -> anyhow::Result<HashMap<ContactId, Marker>> {
        let keys_list = ids.iter().map(|c| key(job_pk(tenant, job), marker_sk(c))).collect();
        let mut out = HashMap::new();
        for item in self.batch_get(keys_list).await? {
            let m: JobMarkerItem = from_item(item)?;
            out.insert(m.contact_id, Marker { outcome: m.outcome, email_document_id: m.email_document_id });
        }
        Ok(out)
    }

    /// A marker for one contact of a job.
    pub fn marker(tenant: &TenantId, job: &JobId, contact: &ContactId, outcome: Outcome, now: DateTime<Utc>) -> JobMarkerItem {
        JobMarkerItem {
            pk: job_pk(tenant, job),
            sk: marker_sk(contact),
            contact_id: contact.clone(),
            outcome,
            email_document_id: None,
            expires_ttl: now.timestamp() + 30 * 24 * 3600,
        }
    }

    /// Records a skip; `false` if the contact already had a marker (a redelivery).
    pub async fn put_marker(&self, marker: &JobMarkerItem) -> anyhow::Result<bool> {
        self.put_new(to_item(marker)?).await.context("Failed to record a job marker")
    }

    /// Creates a job; `false` if the id is taken.
    #[tracing::instrument(skip_all)]
    pub async fn create_job(&self, job: &JobItem) -> anyhow::Result<bool> {
        self.put_new(to_item(job)?).await.context("Failed to create a job")
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_job(&self, tenant: &TenantId, job: &JobId) -> anyhow::Result<Option<JobItem>> {
        self.get(job_pk(tenant, job), JOB_SK.into()).await?.map(from_item).transpose()
    }

    /// Adds one message's outcomes to the job's counters, exactly once per
    /// batch key (a redelivered or re-sent message adds nothing), and marks
    /// the job `done` when every contact is accounted for. `total_hint` is the
    /// job's size when the message knows it; otherwise the message's count
    /// is added to the total (direct submissions that do not announce one).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_batch(
        &self,
        tenant: &TenantId,
        job: &JobId,
        batch_key: &str,
        counts: Counts,
        message_size: u32,
        total_hint: Option<u32>,
        method: crate::domain::Method,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let pk = job_pk(tenant, job);
        let applied = HashMap::from([
            ("pk".to_owned(), s(pk.clone())),
            ("sk".to_owned(), s(format!("B#{batch_key}"))),
            ("expires_ttl".to_owned(), n(now.timestamp() + 30 * 24 * 3600)),
        ]);
        let total_part = match total_hint {
            Some(_) => "#total = if_not_exists(#total, :total)",
            None => "#total = if_not_exists(#total, :zero) + :size",
        };
        // Every attribute through a placeholder: several (source, total…) are DynamoDB reserved words.
        let mut update = Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(pk.clone(), JOB_SK.into())))
            .update_expression(format!(
                "SET #job_id = if_not_exists(#job_id, :jid), #created_at = if_not_exists(#created_at, :now), \
                 #state = if_not_exists(#state, :running), #source = if_not_exists(#source, :queue), {total_part}, \
                 #method = if_not_exists(#method, :method), \
                 #activated = if_not_exists(#activated, :zero) + :a, #no_email = if_not_exists(#no_email, :zero) + :ne, \
                 #already = if_not_exists(#already, :zero) + :aa, #missing = if_not_exists(#missing, :zero) + :mf, \
                 #suppressed = if_not_exists(#suppressed, :zero) + :ss, #failed = if_not_exists(#failed, :zero) + :f"
            ))
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#job_id", "job_id")
            .expression_attribute_names("#created_at", "created_at")
            .expression_attribute_names("#source", "source")
            .expression_attribute_names("#method", "method")
            .expression_attribute_values(":method", s(method.as_str()))
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#activated", "activated")
            .expression_attribute_names("#no_email", "skipped_no_email")
            .expression_attribute_names("#already", "skipped_already_active")
            .expression_attribute_names("#missing", "skipped_missing_facts")
            .expression_attribute_names("#suppressed", "skipped_suppressed")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_values(":jid", s(job.as_str()))
            .expression_attribute_values(":now", s(time::format(&now)))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":queue", s("queue"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":a", n(counts.activated.into()))
            .expression_attribute_values(":ne", n(counts.skipped_no_email.into()))
            .expression_attribute_values(":aa", n(counts.skipped_already_active.into()))
            .expression_attribute_values(":mf", n(counts.skipped_missing_facts.into()))
            .expression_attribute_values(":ss", n(counts.skipped_suppressed.into()))
            .expression_attribute_values(":f", n(counts.failed.into()));
        update = match total_hint {
            Some(t) => update.expression_attribute_values(":total", n(t.into())),
            None => update.expression_attribute_values(":size", n(message_size.into())),
        };
        let tx = Tx::new()
            .with(TxItem::BatchApplied, self.put(applied, "attribute_not_exists(pk)")?)
            .with(TxItem::Job, TransactWriteItem::builder().update(update.build().context("Failed to build an Update")?).build());
        // Every batch of a job updates the one job item: concurrent batches
        // contend for it (TransactionConflict). That is no reason to fail the
        // message (on its last receive it would go to the DLQ uncounted and
        // the job would never be done): retry, briefly backing off.
        let tx = &tx;
        retry(CONTENTION, |e: TxError| anyhow::Error::new(e).context("counting a batch kept meeting concurrent ones"), |attempt| async move {
            match self.transact(tx.clone()).await {
                Ok(()) => Attempt::Done(()),
                Err(e) if e.condition_failed(TxItem::BatchApplied) => {
                    tracing::info!("batch already counted");
                    Attempt::Done(())
                }
                Err(e) if e.is_contention() => {
                    tracing::info!(attempt, "counting a batch met a concurrent one; retrying");
                    Attempt::Again(e)
                }
                Err(e @ TxError::Cancelled(_)) => Attempt::Stop(anyhow::Error::new(e).context("counting a batch")),
                Err(TxError::Unexpected(e)) => Attempt::Stop(e),
            }
        })
        .await?;
        // Queued → running on the first batch; done once everything is accounted for.
        let job_now = self.get_job(tenant, job).await?.context("the job vanished")?;
        let counts_now = Counts {
            activated: job_now.activated,
            skipped_no_email: job_now.skipped_no_email,
            skipped_already_active: job_now.skipped_already_active,
            skipped_missing_facts: job_now.skipped_missing_facts,
            skipped_suppressed: job_now.skipped_suppressed,
            failed: job_now.failed,
        };
        let next = if is_done(&counts_now, job_now.total) { JobState::Done } else { JobState::Running };
        if job_now.state != next && job_now.state != JobState::Done {
            let mut u = self
                .client()
                .update_item()
                .table_name(self.table_name())
                .set_key(Some(key(pk, JOB_SK.into())))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":done", s("done"))
                .condition_expression("#state <> :done")
                .return_values(ReturnValue::None);
            u = if next == JobState::Done {
                u.update_expression("SET #state = :done, finished_at = :now").expression_attribute_values(":now", s(time::format(&now)))
            } else {
                u.update_expression("SET #state = :running").expression_attribute_values(":running", s("running"))
            };
            match u.send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to update a job's state")),
            }
        }
        Ok(())
    }

    /// Replaces a group's name and members atomically. `Cancelled` when a
    /// concurrent change of the same group got in the way: nothing was written.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn put_group(&self, tenant: &TenantId, group: &GroupId, name: &str, members: &[ContactId], actor: &str, now: DateTime<Utc>) -> Result<(), TxError> {
        let pk = group_pk(tenant, group);
        let old_chunks = match self.get(pk.clone(), GROUP_SK.into()).await? {
            Some(item) => from_item::<GroupItem>(item)?.chunks,
            None => 0,
        };
        let chunks: Vec<&[ContactId]> = members.chunks(MEMBERS_PER_ITEM).collect();
        let meta = GroupItem {
            pk: pk.clone(),
            sk: GROUP_SK.into(),
            group_id: group.clone(),
            name: name.to_owned(),
            size: members.len() as u32,
            chunks: chunks.len() as u32,
            updated_at: now,
            updated_by: actor.to_owned(),
            gsi1pk: Some(keys::groups_gsi_pk(tenant)),
            gsi1sk: Some(group.as_str().to_owned()),
        };
        let mut tx = Tx::new().with(TxItem::Group, self.put(to_item(&meta)?, "attribute_exists(pk) OR attribute_not_exists(pk)")?);
        for (i, chunk) in chunks.iter().enumerate() {
            let m = MembersItem {
                pk: pk.clone(),
                sk: format!("GROUP#MEMBERS#{i:04}"),
                contact_ids: chunk.to_vec(),
            };
            tx.push(TxItem::GroupMembers, self.put(to_item(&m)?, "attribute_exists(pk) OR attribute_not_exists(pk)")?);
        }
        for i in chunks.len() as u32..old_chunks {
            let d = Delete::builder()
                .table_name(self.table_name())
                .set_key(Some(key(pk.clone(), format!("GROUP#MEMBERS#{i:04}"))))
                .build()
                .context("Failed to build a Delete")?;
            tx.push(TxItem::GroupMembers, TransactWriteItem::builder().delete(d).build());
        }
        self.transact(tx).await
    }

    /// A group and its members as they are now (one Query).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    /// A page of the tenant's groups in id order (one Query on `gsi1`), and the
    /// store's cursor for the next; `None` for a cursor of another listing or tenant.
    pub async fn list_groups(&self, tenant: &TenantId, limit: i32, cursor: Option<&str>) -> anyhow::Result<Option<(Vec<GroupSummary>, Option<String>)>> {
        let pk = keys::groups_gsi_pk(tenant);
        let start = match cursor {
            Some(c) => match super::cursor::decode_cursor(c, "gsi1pk", &pk) {
                Some(start) => Some(start),
                None => return Ok(None),
            },
            None => None,
        };
        let out = self
            .client()
            .query()
            .table_name(self.table_name())
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .context("Failed to list groups")?;
        let groups = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let g: GroupItem = from_item(item)?;
                Ok(GroupSummary { group_id: g.group_id, name: g.name, size: g.size, updated_at: g.updated_at })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty()).as_ref().map(super::cursor::encode_cursor).transpose()?;
        Ok(Some((groups, next)))
    }

    pub async fn get_group(&self, tenant: &TenantId, group: &GroupId) -> anyhow::Result<Option<Group>> {
        let items = self.query_prefix(group_pk(tenant, group), GROUP_SK, false).await?;
        let (mut meta, mut members) = (None, Vec::new());
        for item in items {
            match item.get("sk").and_then(|v: &AttributeValue| v.as_s().ok()).map(String::as_str) {
                Some(GROUP_SK) => meta = Some(from_item::<GroupItem>(item)?),
                Some(sk) if sk.starts_with("GROUP#MEMBERS#") => {
                    let m: MembersItem = from_item(item)?;
                    members.extend(m.contact_ids);
                }
                _ => {}
            }
        }
        Ok(meta.map(|m| Group {
            group_id: group.clone(),
            name: m.name,
            contact_ids: members,
            updated_at: m.updated_at,
        }))
    }
}
