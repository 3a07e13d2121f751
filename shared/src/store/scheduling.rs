//! The scheduler's reads and writes: the tenant registry, pending codes and
//! links by expiry (`gsi2`), and the conditional writes that make each step
//! happen once: expiring, auto-emailing and reminding.

use super::dynamo::{from_item, key, s, to_item, Item, Store, Tries};
use super::tx::{Tx, TxError, TxItem};
use super::items::{CodeItem, EmailItem};
use super::keys;
use crate::domain::{invitation, time, AccessEntry, ContactId, InvitationState, PortalId, PortalState, TenantId};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::{builders::UpdateBuilder, ConditionCheck, TransactWriteItem, Update};
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
            .expression_attribute_values(":pending", s(InvitationState::Pending.as_str()))
    }

    /// Stores an expiry ([`invitation::expire`]) in one transaction: the row
    /// and the lookup go `pending → expired` (the plain code and the pending
    /// index keys are removed), and the contact's state on the portal becomes
    /// `expired` when `contact_named` says it still names this invitation
    /// (`seen` is the entry read just before; the write is conditional on it,
    /// and otherwise the transaction checks that it still does *not* name it).
    /// [`TxError::Cancelled`] names the item that changed meanwhile.
    pub async fn expire(
        &self,
        tenant: &TenantId,
        row: &CodeItem,
        expiry: invitation::Transition,
        contact_named: bool,
        now: DateTime<Utc>,
    ) -> Result<(), TxError> {
        let contact_id = row.contact_id().context("a code row's key")?;
        let row_update = self
            .row_update(row, "SET #state = :expired REMOVE code, gsi2pk, gsi2sk", "#state = :pending")
            .expression_attribute_values(":expired", s(expiry.to.as_str()))
            .build()
            .context("Failed to build an Update")?;
        let contact_item = self.follow_invitation(tenant, &contact_id, &row.portal_id, &row.expires_at, expiry.contact, contact_named, now)?;
        let tx = Tx::new()
            .with(TxItem::CodeRow, TransactWriteItem::builder().update(row_update).build())
            .with(
                TxItem::CodeLookup,
                self.set_state(key(keys::code_lookup_pk(&row.code_hash), keys::CODE_LOOKUP_SK.into()), expiry.to, "", None, Tries::Any)?,
            )
            .with(TxItem::Contact, contact_item);
        self.transact(tx).await
    }

    /// The contact's side of an invitation's move ([`invitation::ContactEffect`]):
    /// its state on the portal becomes the effect's state when `named` (the
    /// entry read just before still names the invitation expiring at
    /// `expires_at`; the write is conditional on it), and otherwise the
    /// transaction checks that it still does *not* name it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn follow_invitation(
        &self,
        tenant: &TenantId,
        contact_id: &ContactId,
        portal_id: &PortalId,
        expires_at: &DateTime<Utc>,
        effect: invitation::ContactEffect,
        named: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<TransactWriteItem> {
        let contact_key = key(keys::contact_pk(tenant, contact_id), keys::CONTACT_SK.into());
        let condition = "#access.#p.#st = :pending AND #access.#p.expires_at = :exp";
        let names = |u: UpdateBuilder| {
            u.expression_attribute_names("#access", "access")
                .expression_attribute_names("#p", portal_id.as_str())
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":pending", s(PortalState::Pending.as_str()))
                .expression_attribute_values(":exp", s(time::format(expires_at)))
        };
        Ok(match (effect, named) {
            (invitation::ContactEffect::IfStillNamed(state) | invitation::ContactEffect::Set(state), true) => {
                let entry = serde_dynamo::to_attribute_value(AccessEntry::new(state, None, now)).context("Failed to encode an access entry")?;
                let u = Update::builder()
                    .table_name(self.table_name())
                    .set_key(Some(contact_key))
                    .update_expression("SET #access.#p = :entry")
                    .condition_expression(condition)
                    .expression_attribute_values(":entry", entry);
                TransactWriteItem::builder().update(names(u).build().context("Failed to build an Update")?).build()
            }
            _ => {
                let c = ConditionCheck::builder()
                    .table_name(self.table_name())
                    .set_key(Some(contact_key))
                    .condition_expression(format!("NOT ({condition})"))
                    .expression_attribute_names("#access", "access")
                    .expression_attribute_names("#p", portal_id.as_str())
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":pending", s(PortalState::Pending.as_str()))
                    .expression_attribute_values(":exp", s(time::format(expires_at)));
                TransactWriteItem::builder().condition_check(c.build().context("Failed to build a ConditionCheck")?).build()
            }
        })
    }

    /// Records that a pending code was emailed (once): `false` if it already was, or is no longer pending.
    /// `messages` are the email's, one per channel; the first is the one recorded.
    pub async fn attach_email(&self, row: &CodeItem, messages: &[EmailItem]) -> anyhow::Result<bool> {
        let first = messages.first().context("an email of no message")?;
        let update = self
            .row_update(row, "SET email_document_id = :doc, sent_by = :by", "#state = :pending AND attribute_not_exists(email_document_id)")
            .expression_attribute_values(":doc", s(first.document_id.to_string()))
            .expression_attribute_values(":by", aws_sdk_dynamodb::types::AttributeValue::L(messages.iter().map(|m| s(m.to.channel().as_str())).collect()))
            .build()
            .context("Failed to build an Update")?;
        self.once(update, messages).await
    }

    /// Records the one reminder of a code or link: `false` if it was already sent.
    pub async fn attach_reminder(&self, row: &CodeItem, messages: &[EmailItem], now: DateTime<Utc>) -> anyhow::Result<bool> {
        let update = self
            .row_update(row, "SET reminder_sent_at = :now", "#state = :pending AND attribute_not_exists(reminder_sent_at)")
            .expression_attribute_values(":now", s(time::format(&now)))
            .build()
            .context("Failed to build an Update")?;
        self.once(update, messages).await
    }

    async fn once(&self, update: Update, messages: &[EmailItem]) -> anyhow::Result<bool> {
        let mut tx = Tx::new().with(TxItem::CodeRow, TransactWriteItem::builder().update(update).build());
        for message in messages {
            tx.push(TxItem::Email, self.put(to_item(message)?, "attribute_not_exists(pk)")?);
        }
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(TxError::Unexpected(e)) => Err(e),
        }
    }
}

