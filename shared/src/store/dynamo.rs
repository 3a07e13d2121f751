//! The DynamoDB adapter: every read and write the service makes, one method each.
//!
//! Callers pass domain types; this file owns key building, item shapes,
//! condition expressions and transactions. Reads that decide a write are
//! strongly consistent. Every request is counted (see [`Store::requests_sent`])
//! so tests and benchmarks can hold us to "the portlet costs one Query".

use super::items::*;
use super::keys;
use crate::domain::{
    code_lifecycle::CodeState,
    portlet::{AccountRecord, CodeRecord},
    time, CodeHash, Contact, ContactId, EmailAddress, Portal, PortalId, TenantId,
};
use crate::mail::RenderedEmail;
use anyhow::Context as _;
use aws_sdk_dynamodb::{
    config::{interceptors::BeforeTransmitInterceptorContextRef, ConfigBag, Intercept, RuntimeComponents},
    error::BoxError,
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update},
    Client,
};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

/// The table adapter. Cheap to share; build once per Lambda instance.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    requests: Arc<AtomicU64>,
}

#[derive(Debug)]
struct RequestCounter(Arc<AtomicU64>);

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Everything on a contact's partition that the portlet needs.
#[derive(Debug, Clone)]
pub struct ContactPartition {
    pub contact: Contact,
    pub accounts: Vec<AccountRecord>,
    pub codes: Vec<CodeRecord>,
}

/// A transaction that DynamoDB refused because a condition did not hold
/// (or another transaction held an item): nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("transaction cancelled: {reasons:?}")]
    Cancelled { reasons: Vec<String> },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl TxError {
    /// Only contention with another transaction (worth retrying), no failed condition.
    pub fn is_contention(&self) -> bool {
        matches!(self, Self::Cancelled { reasons } if reasons.iter().any(|r| r == "TransactionConflict")
            && !reasons.iter().any(|r| r == "ConditionalCheckFailed"))
    }
}

/// What generating a code writes, in one transaction.
#[derive(Debug)]
pub struct CodeIssue {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub code_display: String,
    pub code_hash: CodeHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    /// Earlier pending codes of the same contact and portal, revoked by this one.
    pub revoke: Vec<CodeHash>,
    /// The email log entry, when the code is also emailed.
    pub email: Option<EmailItem>,
}

/// Where a code belongs, read from its lookup item.
#[derive(Debug, Clone)]
pub struct CodeOwner {
    pub tenant_id: String,
    pub contact_id: String,
    pub portal_id: String,
    pub state: CodeState,
    pub expires_at_ms: i64,
}

/// The key of one email log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailKey {
    pub tenant_id: String,
    pub contact_id: String,
    pub document_id: String,
}

impl EmailKey {
    fn key(&self) -> Item {
        HashMap::from([
            ("pk".into(), s(format!("T#{}#C#{}", self.tenant_id, self.contact_id))),
            ("sk".into(), s(keys::email_sk(&self.document_id))),
        ])
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

fn to_item<T: Serialize>(value: &T) -> anyhow::Result<Item> {
    serde_dynamo::to_item(value).context("Failed to encode an item")
}

fn from_item<T: DeserializeOwned>(item: Item) -> anyhow::Result<T> {
    serde_dynamo::from_item(item).context("Failed to decode an item")
}

impl Store {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        let requests = Arc::new(AtomicU64::new(0));
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(RequestCounter(requests.clone()))
            .build();
        Self { client: Client::from_conf(config), table: table.into(), requests }
    }

    /// DynamoDB requests this adapter has sent (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get(&self, pk: String, sk: String) -> anyhow::Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .context("Failed to read an item")?;
        Ok(out.item)
    }

    /// All items of a partition whose sort key starts with `prefix`, following pages.
    async fn query_prefix(&self, pk: String, prefix: &str, newest_first: bool) -> anyhow::Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("Failed to query a partition")?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn put_portal(&self, tenant: &TenantId, portal: &Portal, actor: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let item = PortalItem {
            pk: keys::tenant_pk(tenant),
            sk: keys::portal_sk(&portal.portal_id),
            portal_id: portal.portal_id.to_string(),
            name: portal.name.clone(),
            default: portal.default,
            claim_url: portal.claim_url.clone(),
            code_ttl_hours: portal.code_ttl_hours,
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .send()
            .await
            .context("Failed to store a portal")?;
        Ok(())
    }

    fn portal_from(item: Item) -> anyhow::Result<Portal> {
        let p: PortalItem = from_item(item)?;
        Ok(Portal {
            portal_id: PortalId::parse(&p.portal_id).context("stored portal id")?,
            name: p.name,
            default: p.default,
            claim_url: p.claim_url,
            code_ttl_hours: p.code_ttl_hours,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn list_portals(&self, tenant: &TenantId) -> anyhow::Result<Vec<Portal>> {
        let items = self.query_prefix(keys::tenant_pk(tenant), keys::PORTAL_PREFIX, false).await?;
        items.into_iter().map(Self::portal_from).collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_portal(&self, tenant: &TenantId, portal: &PortalId) -> anyhow::Result<Option<Portal>> {
        self.get(keys::tenant_pk(tenant), keys::portal_sk(portal)).await?.map(Self::portal_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn put_contact(&self, tenant: &TenantId, contact: &Contact, actor: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let item = ContactItem {
            pk: keys::contact_pk(tenant, &contact.contact_id),
            sk: keys::CONTACT_SK.into(),
            contact_id: contact.contact_id.to_string(),
            name: contact.name.clone(),
            email: contact.email.as_ref().map(|e| e.to_string()),
            kind: contact.kind,
            portal_ids: contact.portal_ids.iter().map(|p| p.to_string()).collect(),
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .send()
            .await
            .context("Failed to store a contact")?;
        Ok(())
    }

    fn contact_from(item: Item) -> anyhow::Result<Contact> {
        let c: ContactItem = from_item(item)?;
        Ok(Contact {
            contact_id: ContactId::parse(&c.contact_id).context("stored contact id")?,
            name: c.name,
            email: c.email.map(|e| EmailAddress::parse(&e)).transpose().context("stored email")?,
            kind: c.kind,
            portal_ids: c.portal_ids.iter().filter_map(|p| PortalId::parse(p).ok()).collect(),
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_contact(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Option<Contact>> {
        self.get(keys::contact_pk(tenant, contact), keys::CONTACT_SK.into())
            .await?
            .map(Self::contact_from)
            .transpose()
    }

    /// The contact, its accounts and its codes: one Query (pages aside).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn contact_partition(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Option<ContactPartition>> {
        let items = self.query_prefix(keys::contact_pk(tenant, contact), keys::CONTACT_VIEW_PREFIX, false).await?;
        let (mut profile, mut accounts, mut codes) = (None, Vec::new(), Vec::new());
        for item in items {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => continue,
            };
            if sk == keys::CONTACT_SK {
                profile = Some(Self::contact_from(item)?);
            } else if sk.starts_with(keys::ACCOUNT_PREFIX) {
                let a: AccountItem = from_item(item)?;
                accounts.push(AccountRecord { email: a.email, portal_id: a.portal_id, activated_at: a.activated_at });
            } else if sk.starts_with(keys::CODE_PREFIX) {
                let c: CodeItem = from_item(item)?;
                codes.push(CodeRecord {
                    portal_id: c.portal_id,
                    code: c.code,
                    state: c.state,
                    created_at: c.created_at,
                    expires_at: c.expires_at,
                    email_document_id: c.email_document_id,
                });
            }
        }
        Ok(profile.map(|contact| ContactPartition { contact, accounts, codes }))
    }

    /// Hashes of the pending codes a contact has on a portal.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn pending_code_hashes(&self, tenant: &TenantId, contact: &ContactId, portal: &PortalId) -> anyhow::Result<Vec<CodeHash>> {
        let items = self
            .query_prefix(keys::contact_pk(tenant, contact), &keys::codes_of_portal_prefix(portal), false)
            .await?;
        let mut hashes = Vec::new();
        for item in items {
            let c: CodeItem = from_item(item)?;
            if c.state == CodeState::Pending {
                hashes.push(CodeHash::from_stored(c.code_hash));
            }
        }
        Ok(hashes)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => Err(TxError::Cancelled {
                    reasons: e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect(),
                }),
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(TxError::Cancelled { reasons: vec!["TransactionConflict".into()] })
                }
                other => Err(TxError::Unexpected(anyhow::Error::new(other).context("Failed to write a transaction"))),
            },
        }
    }

    fn put(&self, item: Item, condition: &str) -> anyhow::Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .context("Failed to build a Put")?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Stores a new code (lookup + contact row), revokes the earlier pending
    /// ones and records the email entry, all or nothing.
    #[tracing::instrument(skip_all, fields(tenant = %issue.tenant_id))]
    pub async fn issue_code(&self, issue: &CodeIssue) -> Result<(), TxError> {
        let pk = keys::contact_pk(&issue.tenant_id, &issue.contact_id);
        let expires_ms = issue.expires_at.timestamp_millis();
        let lookup = CodeLookupItem {
            pk: keys::code_lookup_pk(&issue.code_hash),
            sk: keys::CODE_LOOKUP_SK.into(),
            tenant_id: issue.tenant_id.to_string(),
            contact_id: issue.contact_id.to_string(),
            portal_id: issue.portal_id.to_string(),
            state: CodeState::Pending,
            expires_at_ms: expires_ms,
            // Keep the guard 30 days past expiry so late claims still get a clean "no".
            expires_ttl: expires_ms / 1000 + 30 * 24 * 3600,
        };
        let row = CodeItem {
            pk: pk.clone(),
            sk: keys::code_sk(&issue.portal_id, &issue.code_hash),
            portal_id: issue.portal_id.clone(),
            code_hash: issue.code_hash.as_str().to_owned(),
            code: Some(issue.code_display.clone()),
            state: CodeState::Pending,
            created_at: issue.created_at,
            expires_at: issue.expires_at,
            email_document_id: issue.email.as_ref().map(|e| e.document_id.clone()),
            created_by: issue.created_by.clone(),
        };
        let mut items = vec![
            self.put(to_item(&lookup)?, "attribute_not_exists(pk)")?,
            self.put(to_item(&row)?, "attribute_not_exists(pk)")?,
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk.clone(), keys::CONTACT_SK.into())))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .context("Failed to build a ConditionCheck")?,
                )
                .build(),
        ];
        for old in &issue.revoke {
            items.push(self.set_state(
                key(pk.clone(), keys::code_sk(&issue.portal_id, old)),
                CodeState::Revoked,
                "REMOVE code",
                None,
            )?);
            items.push(self.set_state(
                key(keys::code_lookup_pk(old), keys::CODE_LOOKUP_SK.into()),
                CodeState::Revoked,
                "",
                None,
            )?);
        }
        if let Some(email) = &issue.email {
            items.push(self.put(to_item(email)?, "attribute_not_exists(pk)")?);
        }
        self.transact(items).await
    }

    /// An Update that moves a code row from pending to `to`; with `not_after_ms`
    /// it also requires the code to be unexpired.
    fn set_state(&self, key: Item, to: CodeState, extra: &str, not_after_ms: Option<i64>) -> anyhow::Result<TransactWriteItem> {
        let mut condition = "#state = :pending".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET #state = :to {extra}"))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(CodeState::Pending.as_str()))
            .expression_attribute_values(":to", s(to.as_str()));
        if let Some(now_ms) = not_after_ms {
            condition.push_str(" AND expires_at_ms > :now_ms");
            update = update.expression_attribute_values(":now_ms", n(now_ms));
        }
        let update = update.condition_expression(condition).build().context("Failed to build an Update")?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Reads the lookup item of a code hash.
    #[tracing::instrument(skip_all)]
    pub async fn find_code(&self, hash: &CodeHash) -> anyhow::Result<Option<CodeOwner>> {
        let Some(item) = self.get(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into()).await? else {
            return Ok(None);
        };
        let l: CodeLookupItem = from_item(item)?;
        Ok(Some(CodeOwner {
            tenant_id: l.tenant_id,
            contact_id: l.contact_id,
            portal_id: l.portal_id,
            state: l.state,
            expires_at_ms: l.expires_at_ms,
        }))
    }

    /// Claims a code for `email`: the lookup and the contact row go from
    /// pending to claimed (only if still pending and unexpired at `now`), the
    /// plain code is erased and the portal account is created, in one transaction.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn claim_code(
        &self,
        hash: &CodeHash,
        tenant: &TenantId,
        contact: &ContactId,
        portal: &PortalId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), TxError> {
        let pk = keys::contact_pk(tenant, contact);
        let now_s = time::format(&now);
        let account = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::account_sk(portal, email))))
            .update_expression("SET email = :email, portal_id = :portal, activated_at = if_not_exists(activated_at, :now)")
            .expression_attribute_values(":email", s(email.as_str()))
            .expression_attribute_values(":portal", s(portal.as_str()))
            .expression_attribute_values(":now", s(now_s.clone()))
            .build()
            .context("Failed to build an Update")?;
        let items = vec![
            self.set_state(
                key(keys::code_lookup_pk(hash), keys::CODE_LOOKUP_SK.into()),
                CodeState::Claimed,
                "",
                Some(now.timestamp_millis()),
            )?,
            self.set_state(key(pk, keys::code_sk(portal, hash)), CodeState::Claimed, "REMOVE code", None)?,
            TransactWriteItem::builder().update(account).build(),
        ];
        self.transact(items).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn list_emails(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Vec<EmailItem>> {
        let items = self.query_prefix(keys::contact_pk(tenant, contact), keys::EMAIL_PREFIX, true).await?;
        items.into_iter().map(from_item).collect()
    }

    #[tracing::instrument(skip_all)]
    pub async fn get_email(&self, key: &EmailKey) -> anyhow::Result<Option<EmailItem>> {
        let k = key.key();
        let (pk, sk) = (k["pk"].as_s().unwrap().clone(), k["sk"].as_s().unwrap().clone());
        self.get(pk, sk).await?.map(from_item).transpose()
    }

    async fn update_email(&self, key: &EmailKey, expression: &str, condition: Option<&str>, values: Vec<(&str, AttributeValue)>) -> anyhow::Result<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.key()))
            .update_expression(expression)
            .expression_attribute_names("#status", "status");
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        let condition = condition.map_or("attribute_exists(pk)".to_owned(), |c| format!("attribute_exists(pk) AND ({c})"));
        match req.condition_expression(condition).send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(anyhow::Error::new(other).context("Failed to update an email entry")),
            },
        }
    }

    /// Takes the email for sending: queued, failed (a message redriven from the
    /// DLQ gets another try), or sending under an expired lease (a mailer died).
    /// `false` when another mailer holds it or it was sent: a sent email is never sent again.
    #[tracing::instrument(skip_all)]
    pub async fn lease_email(&self, key: &EmailKey, now: DateTime<Utc>, lease_ms: i64) -> anyhow::Result<bool> {
        let now_ms = now.timestamp_millis();
        self.update_email(
            key,
            "SET #status = :sending, lease_until_ms = :until ADD attempts :one",
            Some("#status IN (:queued, :failed) OR (#status = :sending AND lease_until_ms < :now)"),
            vec![
                (":sending", s("sending")),
                (":queued", s("queued")),
                (":failed", s("failed")),
                (":until", n(now_ms + lease_ms)),
                (":now", n(now_ms)),
                (":one", n(1)),
            ],
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    pub async fn mark_email_sent(&self, key: &EmailKey, message_id: &str, rendered: &RenderedEmail, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.update_email(
            key,
            "SET #status = :sent, ses_message_id = :mid, sent_at = :now, subject = :subject, body_text = :text, body_html = :html \
             REMOVE lease_until_ms, failure_reason",
            None,
            vec![
                (":sent", s("sent")),
                (":mid", s(message_id)),
                (":now", s(time::format(&now))),
                (":subject", s(rendered.subject.clone())),
                (":text", s(rendered.text.clone())),
                (":html", s(rendered.html.clone())),
            ],
        )
        .await
        .map(drop)
    }

    /// Records a failure: `final_failure` marks it `failed`, otherwise it goes back to `queued` for a retry.
    #[tracing::instrument(skip_all)]
    pub async fn mark_email_unsent(&self, key: &EmailKey, reason: &str, final_failure: bool) -> anyhow::Result<()> {
        let status = if final_failure { "failed" } else { "queued" };
        self.update_email(
            key,
            "SET #status = :status, failure_reason = :reason REMOVE lease_until_ms",
            None,
            vec![(":status", s(status)), (":reason", s(reason))],
        )
        .await
        .map(drop)
    }
}
