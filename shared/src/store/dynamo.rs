//! The DynamoDB adapter's core: [`Store`] itself (its client, and the count
//! of every request it sends, [`Store::requests_sent`], so tests and
//! benchmarks can hold us to "the portlet costs one Query"), the generic
//! reads and writes the other `store` modules build on (get, put, queries,
//! pages, transactions, the state updates of an invitation), and the
//! portal and contact records with the contact's partition.
//!
//! Each other kind of record has a module of its own beside this one
//! (`invitations`, `mail_log`, `guards`, `quota`, `listing`, `reports`,
//! `jobs`, `integrations`, `deliveries`, `scheduling`, `changes`), with the
//! key shapes in `keys` and the item shapes in `items`. Callers pass domain
//! types; reads that decide a write are strongly consistent.

use crate::domain::id_token::IdentityProvider;
use super::items::*;
use super::keys;
use super::tx::{Tx, TxError};
use crate::domain::{
    invitation::InvitationState,
    portlet::{AccountRecord, CodeRecord},
    identity::FactEdit,
    time, AccessEntry, CodeHash, Contact, ContactId, DocumentId, Fact, Portal, PortalId, TenantId,
};
use anyhow::Context as _;
use aws_sdk_dynamodb::{
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, Put, TransactWriteItem, Update},
    Client,
};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(super) type Item = HashMap<String, AttributeValue>;

/// The table adapter. Cheap to share; build once per Lambda instance.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    requests: Arc<AtomicU64>,
}

/// Everything on a contact's partition that the portlet needs.
#[derive(Debug, Clone)]
pub struct ContactPartition {
    pub contact: Contact,
    /// Portal id → stored state.
    pub access: BTreeMap<String, AccessEntry>,
    pub accounts: Vec<AccountRecord>,
    pub codes: Vec<CodeRecord>,
}

/// The key of one email log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailKey {
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub document_id: DocumentId,
}

impl EmailKey {
    pub(super) fn key(&self) -> Item {
        key(keys::contact_pk(&self.tenant_id, &self.contact_id), keys::email_sk(&self.document_id))
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

pub(super) fn to_item<T: Serialize>(value: &T) -> anyhow::Result<Item> {
    serde_dynamo::to_item(value).context("Failed to encode an item")
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> anyhow::Result<T> {
    serde_dynamo::from_item(item).context("Failed to decode an item")
}

impl Store {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        let requests = Arc::new(AtomicU64::new(0));
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(crate::metrics::RequestCounter(requests.clone()))
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

    pub(super) async fn get(&self, pk: String, sk: String) -> anyhow::Result<Option<Item>> {
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

    /// Puts an item, replacing any under its key; `what` names it in the error.
    pub(super) async fn put_item(&self, item: Item, what: &'static str) -> anyhow::Result<()> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.with_context(|| format!("Failed to store {what}"))?;
        Ok(())
    }

    /// Puts an item unless its key is taken; `false` when it was.
    pub(super) async fn put_new(&self, item: Item) -> anyhow::Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to put a new item")),
        }
    }

    /// All items of a partition whose sort key starts with `prefix`, following pages.
    pub(super) async fn query_prefix(&self, pk: String, prefix: &str, newest_first: bool) -> anyhow::Result<Vec<Item>> {
        self.query_partition(pk, Some(prefix), newest_first).await
    }

    /// All items of a partition (those whose sort key starts with `prefix`, if given), following pages.
    pub(super) async fn query_partition(&self, pk: String, prefix: Option<&str>, newest_first: bool) -> anyhow::Result<Vec<Item>> {
        let q = self.client.query().table_name(&self.table).expression_attribute_values(":pk", s(pk));
        let q = match prefix {
            Some(prefix) => q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)").expression_attribute_values(":prefix", s(prefix)),
            None => q.key_condition_expression("pk = :pk"),
        };
        self.query_pages(q.consistent_read(true).scan_index_forward(!newest_first)).await.context("Failed to query a partition")
    }

    /// Every item a Query finds, following its pages.
    pub(super) async fn query_pages(&self, q: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder) -> anyhow::Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = q.clone().set_exclusive_start_key(start).send().await?;
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
            portal_id: portal.portal_id.clone(),
            name: portal.name.clone(),
            default: portal.default,
            claim_url: portal.claim_url.clone(),
            code_ttl_hours: portal.code_ttl_hours,
            link_ttl_hours: portal.link_ttl_hours,
            auto_generate: portal.auto_generate,
            auto_email: portal.auto_email,
            reminder_days_before_expiry: portal.reminder_days_before_expiry,
            claim_checks: portal.claim_checks.clone(),
            identity_issuer: portal.identity.as_ref().map(|i| i.issuer.clone()),
            identity_audience: portal.identity.as_ref().map(|i| i.audience.clone()),
            identity_jwks_url: portal.identity.as_ref().map(|i| i.jwks_url.clone()),
            channels: portal.channels.clone(),
            default_locale: portal.default_locale.clone(),
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
        // The scheduler's registry of tenants (idempotent).
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(keys::TENANTS_PK.into(), tenant.to_string())))
            .send()
            .await
            .context("Failed to register a tenant")?;
        Ok(())
    }

    fn portal_from(item: Item) -> anyhow::Result<Portal> {
        let p: PortalItem = from_item(item)?;
        Ok(Portal {
            portal_id: p.portal_id,
            name: p.name,
            default: p.default,
            claim_url: p.claim_url,
            code_ttl_hours: p.code_ttl_hours,
            link_ttl_hours: p.link_ttl_hours,
            auto_generate: p.auto_generate,
            auto_email: p.auto_email,
            reminder_days_before_expiry: p.reminder_days_before_expiry,
            claim_checks: p.claim_checks,
            // Stored as validated; a stored provider that no longer validates trusts nothing.
            identity: IdentityProvider::from_settings(p.identity_issuer.as_deref(), p.identity_audience.as_deref(), p.identity_jwks_url.as_deref(), crate::domain::web_url::Deployment::Local)
                .unwrap_or_default(),
            channels: p.channels,
            default_locale: p.default_locale,
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

    /// Creates or updates a contact's profile; its portal states and facts of the record are kept.
    pub async fn put_contact(&self, tenant: &TenantId, contact: &Contact, actor: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.put_contact_with_facts(tenant, contact, &BTreeMap::new(), actor, now).await.map(|_| ())
    }

    /// Creates or updates a contact's profile and applies `facts` (a fact not
    /// named is kept); answers the contact as stored afterwards.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn put_contact_with_facts(
        &self,
        tenant: &TenantId,
        contact: &Contact,
        facts: &BTreeMap<Fact, FactEdit>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Contact> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::contact_pk(tenant, &contact.contact_id), keys::CONTACT_SK.into())))
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#access", "access")
            .expression_attribute_values(":id", s(contact.contact_id.as_str()))
            .expression_attribute_values(":name", s(contact.name.clone()))
            .expression_attribute_values(":kind", serde_dynamo::to_attribute_value(contact.kind)?)
            .expression_attribute_values(
                ":portals",
                AttributeValue::L(contact.portal_ids.iter().map(|p| s(p.as_str())).collect()),
            )
            .expression_attribute_values(":at", s(time::format(&now)))
            .expression_attribute_values(":by", s(actor))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":gpk", s(keys::contacts_gsi_pk(tenant)))
            .expression_attribute_values(":gsk", s(contact.contact_id.as_str()))
            // What the listing's name search looks in (`domain::report::search_text`).
            .expression_attribute_names("#search", "search")
            .expression_attribute_values(
                ":search",
                s(crate::domain::report::search_text(&contact.name, contact.email.as_ref().map_or("", |e| e.as_str()))),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let mut set = vec![
            "contact_id = :id".to_owned(),
            "#name = :name".into(),
            "kind = :kind".into(),
            "portal_ids = :portals".into(),
            "updated_at = :at".into(),
            "updated_by = :by".into(),
            "#access = if_not_exists(#access, :empty)".into(),
            "gsi1pk = :gpk".into(),
            "gsi1sk = :gsk".into(),
            "#search = :search".into(),
        ];
        let mut remove = Vec::new();
        match &contact.email {
            Some(email) => {
                set.push("email = :email".into());
                req = req.expression_attribute_values(":email", s(email.as_str()));
            }
            None => remove.push("email".to_owned()),
        }
        match &contact.phone {
            Some(phone) => {
                set.push("phone = :phone".into());
                req = req.expression_attribute_values(":phone", s(phone.as_str()));
            }
            None => remove.push("phone".to_owned()),
        }
        match &contact.locale {
            Some(locale) => {
                set.push("locale = :locale".into());
                req = req.expression_attribute_values(":locale", s(locale.as_str()));
            }
            None => remove.push("locale".to_owned()),
        }
        for (fact, edit) in facts {
            let attribute = fact_attribute(*fact);
            match edit {
                FactEdit::Set(hash, version) => {
                    set.push(format!("{attribute} = :{attribute}, {attribute}_key = :{attribute}_key"));
                    req = req.expression_attribute_values(format!(":{attribute}"), s(hash.as_str()));
                    req = req.expression_attribute_values(format!(":{attribute}_key"), s(version.clone()));
                }
                FactEdit::Erase => {
                    remove.push(attribute.to_owned());
                    remove.push(format!("{attribute}_key"));
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let out = req.update_expression(expression).send().await.context("Failed to store a contact")?;
        let (stored, _) = Self::contact_from(out.attributes.unwrap_or_default())?;
        Ok(stored)
    }

    pub(super) fn contact_from(item: Item) -> anyhow::Result<(Contact, BTreeMap<String, AccessEntry>)> {
        let c: ContactItem = from_item(item)?;
        let facts = c.facts();
        let fact_key_versions = c.fact_key_versions();
        // A problem of an address the contact no longer has is not the contact's.
        let email_problem = c.email_problem.filter(|_| match (&c.email, &c.email_problem_address) {
            (Some(email), Some(address)) => email.as_str() == address,
            _ => false,
        });
        let contact = Contact {
            contact_id: c.contact_id,
            name: c.name,
            email: c.email,
            phone: c.phone,
            locale: c.locale,
            kind: c.kind,
            portal_ids: c.portal_ids,
            facts,
            fact_key_versions,
            email_problem,
        };
        Ok((contact, c.access))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_contact(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Option<Contact>> {
        Ok(self.get_contact_with_access(tenant, contact).await?.map(|(c, _)| c))
    }

    /// The contact and its stored portal states.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_contact_with_access(
        &self,
        tenant: &TenantId,
        contact: &ContactId,
    ) -> anyhow::Result<Option<(Contact, BTreeMap<String, AccessEntry>)>> {
        self.get(keys::contact_pk(tenant, contact), keys::CONTACT_SK.into())
            .await?
            .map(Self::contact_from)
            .transpose()
    }

    /// The contact, its portal states, accounts and codes/links: one Query (pages aside).
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
                accounts.push(AccountRecord {
                    email: a.email,
                    portal_id: a.portal_id,
                    activated_at: a.activated_at,
                    method: a.method,
                    disabled_at: a.disabled_at,
                });
            } else if sk.starts_with(keys::CODE_PREFIX) {
                let c: CodeItem = from_item(item)?;
                codes.push(CodeRecord {
                    portal_id: c.portal_id,
                    method: c.method,
                    hash: c.code_hash,
                    code: c.code,
                    state: c.state,
                    created_at: c.created_at,
                    expires_at: c.expires_at,
                    email_document_id: c.email_document_id,
                });
            }
        }
        Ok(profile.map(|(contact, access)| ContactPartition { contact, access, accounts, codes }))
    }

    /// Hashes of the pending codes and links a contact has on a portal.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn pending_code_hashes(&self, tenant: &TenantId, contact: &ContactId, portal: &PortalId) -> anyhow::Result<Vec<CodeHash>> {
        let items = self
            .query_prefix(keys::contact_pk(tenant, contact), &keys::codes_of_portal_prefix(portal), false)
            .await?;
        let mut hashes = Vec::new();
        for item in items {
            let c: CodeItem = from_item(item)?;
            if c.state == InvitationState::Pending {
                hashes.push(c.code_hash);
            }
        }
        Ok(hashes)
    }

    pub(super) async fn transact(&self, tx: Tx) -> Result<(), TxError> {
        let items = tx.items.iter().map(|(_, i)| i.clone()).collect();
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<Option<&str>> = e.cancellation_reasons().iter().map(|r| r.code()).collect();
                    Err(TxError::Cancelled(tx.cancellations(&codes)))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    let codes = vec![Some("TransactionConflict"); tx.len()];
                    Err(TxError::Cancelled(tx.cancellations(&codes)))
                }
                other => Err(TxError::Unexpected(anyhow::Error::new(other).context("Failed to write a transaction"))),
            },
        }
    }

    pub(super) fn put(&self, item: Item, condition: &str) -> anyhow::Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .context("Failed to build a Put")?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An Update that moves a code row from pending to `to`; with `not_after_ms`
    /// it also requires the code to be unexpired, and it requires of the
    /// code's counter of fact tries what `tries` says (`invitation::fact_try`).
    pub(super) fn set_state(&self, key: Item, to: InvitationState, extra: &str, not_after_ms: Option<i64>, tries: Tries) -> anyhow::Result<TransactWriteItem> {
        let mut condition = "#state = :pending".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET #state = :to {extra}"))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(InvitationState::Pending.as_str()))
            .expression_attribute_values(":to", s(to.as_str()));
        if let Some(now_ms) = not_after_ms {
            condition.push_str(" AND expires_at_ms > :now_ms");
            update = update.expression_attribute_values(":now_ms", n(now_ms));
        }
        match tries {
            Tries::Any => {}
            Tries::Within(max) => {
                condition.push_str(" AND (attribute_not_exists(fact_tries) OR fact_tries <= :tries)");
                update = update.expression_attribute_values(":tries", n(max.into()));
            }
            Tries::UsedUp(max) => {
                condition.push_str(" AND fact_tries >= :tries");
                update = update.expression_attribute_values(":tries", n(max.into()));
            }
        }
        let update = update.condition_expression(condition).build().context("Failed to build an Update")?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

}

/// What a change of a code's state requires of its counter of fact tries
/// (`fact_tries` on the lookup item, `invitation::fact_try`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Tries {
    /// Nothing: the row, or a change no claim makes (revoke, expire).
    Any,
    /// No more tries than these were taken (absent: none): a claim binds only then.
    Within(u32),
    /// At least these were taken: a lock for used-up tries.
    UsedUp(u32),
}
