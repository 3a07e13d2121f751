//! The scheduler's reads and writes: the tenant registry, pending codes and
//! links by expiry (`gsi2`), and the conditional writes that make each step
//! happen once: expiring, auto-emailing and reminding.

use super::dynamo::{from_item, key, s, to_item, Item, Store, TxError};
use super::items::{CodeItem, EmailItem};
use super::keys;
use crate::domain::{time, AccessEntry, CodeHash, CodeState, ContactId, PortalState, TenantId};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};

/// Which pending invitations, by their expiry.
#[derive(Debug, Clone, Copy)]
pub enum Expiring {
    /// Already past expiry at this instant.
    Before(DateTime<Utc>),
    /// Not yet expired at this instant.
    After(DateTime<Utc>),
}

/// A page of pending invitations and where the next one starts.
pub struct PendingPage {
    pub rows: Vec<CodeItem>,
    pub next: Option<Item>,
}

impl Store {
    /// Every tenant with a portal.
    pub async fn list_tenants(&self) -> anyhow::Result<Vec<TenantId>> {
        let items = self.query_partition(keys::TENANTS_PK.into(), None, false).await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()))
            .filter_map(|t| TenantId::parse(t).ok())
            .collect())
    }

    /// One page of a tenant's pending codes and links, by expiry.
    pub async fn pending_page(&self, tenant: &TenantId, which: Expiring, start: Option<Item>, limit: i32) -> anyhow::Result<PendingPage> {
        let (condition, at) = match which {
            Expiring::Before(t) => ("gsi2pk = :pk AND gsi2sk < :at", t),
            Expiring::After(t) => ("gsi2pk = :pk AND gsi2sk > :at", t),
        };
        let out = self
            .client()
            .query()
            .table_name(self.table_name())
            .index_name(keys::GSI2)
            .key_condition_expression(condition)
            .expression_attribute_values(":pk", s(keys::pending_gsi_pk(tenant)))
            .expression_attribute_values(":at", s(time::format(&at)))
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .context("Failed to query pending invitations")?;
        let rows = out.items.unwrap_or_default().into_iter().map(from_item).collect::<anyhow::Result<Vec<CodeItem>>>()?;
        Ok(PendingPage { rows, next: out.last_evaluated_key.filter(|k| !k.is_empty()) })
    }

    fn row_update(&self, row: &CodeItem, expression: &str, condition: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(self.table_name())
            .set_key(Some(key(row.pk.clone(), row.sk.clone())))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(CodeState::Pending.as_str()))
    }

    /// Moves a pending code or link past its expiry to `expired` (row, lookup,
    /// and the contact's state when it still names this invitation). `false`
    /// if it was no longer pending.
    pub async fn expire(&self, tenant: &TenantId, row: &CodeItem, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let hash = CodeHash::from_stored(row.code_hash.clone());
        let row_update = self
            .row_update(row, "SET #state = :expired REMOVE code, gsi2pk, gsi2sk", "#state = :pending")
            .expression_attribute_values(":expired", s(CodeState::Expired.as_str()))
            .build()
            .context("Failed to build an Update")?;
        let items = vec![
            TransactWriteItem::builder().update(row_update).build(),
            self.set_state(key(keys::code_lookup_pk(&hash), keys::CODE_LOOKUP_SK.into()), CodeState::Expired, "", None)?,
        ];
        match self.transact(items).await {
            Ok(()) => {}
            Err(TxError::Cancelled { .. }) => return Ok(false),
            Err(TxError::Unexpected(e)) => return Err(e),
        }
        let contact_id = row.pk.rsplit("#C#").next().and_then(|c| ContactId::parse(c).ok()).context("a code row's key")?;
        let entry = serde_dynamo::to_attribute_value(AccessEntry::new(PortalState::Expired, None, now))?;
        let result = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(key(keys::contact_pk(tenant, &contact_id), keys::CONTACT_SK.into())))
            .update_expression("SET #access.#p = :entry")
            .condition_expression("#access.#p.#st = :pending AND #access.#p.expires_at = :exp")
            .expression_attribute_names("#access", "access")
            .expression_attribute_names("#p", row.portal_id.as_str())
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":pending", s(PortalState::Pending.as_str()))
            .expression_attribute_values(":exp", s(time::format(&row.expires_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // A newer invitation or a claim owns the state now: leave it.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(true),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to mark a contact expired")),
        }
    }

    /// Records that a pending code was emailed (once): `false` if it already was, or is no longer pending.
    pub async fn attach_email(&self, row: &CodeItem, email: &EmailItem) -> anyhow::Result<bool> {
        let update = self
            .row_update(row, "SET email_document_id = :doc", "#state = :pending AND attribute_not_exists(email_document_id)")
            .expression_attribute_values(":doc", s(email.document_id.clone()))
            .build()
            .context("Failed to build an Update")?;
        self.once(update, email).await
    }

    /// Records the one reminder of a code or link: `false` if it was already sent.
    pub async fn attach_reminder(&self, row: &CodeItem, email: &EmailItem, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let update = self
            .row_update(row, "SET reminder_sent_at = :now", "#state = :pending AND attribute_not_exists(reminder_sent_at)")
            .expression_attribute_values(":now", s(time::format(&now)))
            .build()
            .context("Failed to build an Update")?;
        self.once(update, email).await
    }

    async fn once(&self, update: Update, email: &EmailItem) -> anyhow::Result<bool> {
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put(to_item(email)?, "attribute_not_exists(pk)")?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled { .. }) => Ok(false),
            Err(TxError::Unexpected(e)) => Err(e),
        }
    }
}
