//! The email log (documents), portal templates and audit records.

use super::dynamo::{from_item, n, s, to_item, EmailKey, Store};
use super::items::{AuditItem, EmailItem, TemplateItem};
use super::keys;
use crate::domain::{time, ContactId, DocumentId, PortalId, TenantId};
use crate::domain::email::{EmailKind, RenderedEmail};
use crate::domain::Locale;
use crate::domain::email::OwnTemplate;
use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

impl Store {
    /// The contact's email log, newest first, or `None` when there is no such
    /// contact: one strongly consistent Query of the contact's partition from
    /// its `EMAIL#` entries down to its profile (`CONTACT`), the accounts and
    /// codes between them left out by a filter. One request, not a read of
    /// the profile beside a Query of the log: on a cold instance each would
    /// open a connection of its own.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn contact_emails(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Option<Vec<EmailItem>>> {
        // `$` sorts right after `#`: the range ends past every `EMAIL#…` key.
        let last = format!("{}$", keys::EMAIL_PREFIX.trim_end_matches('#'));
        let q = self
            .client()
            .query()
            .table_name(self.table_name())
            .key_condition_expression("pk = :pk AND sk BETWEEN :profile AND :last")
            // A filter may not name a key: the profile is the item with a `name`,
            // an email the one with a `document_id`; codes and accounts have neither.
            .filter_expression("attribute_exists(#name) OR attribute_exists(document_id)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":pk", s(keys::contact_pk(tenant, contact)))
            .expression_attribute_values(":profile", s(keys::CONTACT_SK))
            .expression_attribute_values(":last", s(last))
            .consistent_read(true)
            .scan_index_forward(false);
        let items = self.query_pages(q).await.context("Failed to query a contact's email log")?;
        let (mut emails, mut found) = (Vec::new(), false);
        for item in items {
            match item.get("sk") {
                Some(AttributeValue::S(sk)) if sk == keys::CONTACT_SK => found = true,
                _ => emails.push(from_item(item)?),
            }
        }
        Ok(found.then_some(emails))
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
            .client()
            .update_item()
            .table_name(self.table_name())
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
            Some("#status IN (:queued, :failed, :throttled) OR (#status = :sending AND lease_until_ms < :now)"),
            vec![
                (":sending", s("sending")),
                (":queued", s("queued")),
                (":failed", s("failed")),
                (":throttled", s("throttled")),
                (":until", n(now_ms + lease_ms)),
                (":now", n(now_ms)),
                (":one", n(1)),
            ],
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    /// A text has no subject and no HTML: neither is stored.
    pub async fn mark_email_sent(&self, key: &EmailKey, message_id: &str, rendered: &RenderedEmail, locale: &Locale, now: DateTime<Utc>) -> anyhow::Result<()> {
        let text_only = rendered.subject.is_empty() && rendered.html.is_empty();
        let expression = if text_only {
            "SET #status = :sent, ses_message_id = :mid, sent_at = :now, body_text = :text, sent_locale = :locale \
             REMOVE lease_until_ms, failure_reason, sealed"
        } else {
            "SET #status = :sent, ses_message_id = :mid, sent_at = :now, subject = :subject, body_text = :text, body_html = :html, sent_locale = :locale \
             REMOVE lease_until_ms, failure_reason, sealed"
        };
        let mut values = vec![
            (":sent", s("sent")),
            (":mid", s(message_id)),
            (":now", s(time::format(&now))),
            (":text", s(rendered.text.clone())),
            (":locale", s(locale.as_str())),
        ];
        if !text_only {
            values.push((":subject", s(rendered.subject.clone())));
            values.push((":html", s(rendered.html.clone())));
        }
        self.update_email(key, expression, None, values)
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

    /// Held back by the tenant's sending quota (`domain::quota`): the lease
    /// is given up and staff see `throttled` until the delayed job sends it.
    #[tracing::instrument(skip_all)]
    pub async fn mark_email_throttled(&self, key: &EmailKey) -> anyhow::Result<()> {
        self.update_email(key, "SET #status = :throttled REMOVE lease_until_ms", None, vec![(":throttled", s("throttled"))])
            .await
            .map(drop)
    }

    /// An email document by id alone (through `gsi1`).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn get_document(&self, tenant: &TenantId, document_id: &DocumentId) -> anyhow::Result<Option<EmailItem>> {
        let out = self
            .client()
            .query()
            .table_name(self.table_name())
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk = :sk")
            .expression_attribute_values(":pk", s(keys::document_gsi_pk(tenant, document_id)))
            .expression_attribute_values(":sk", s(keys::DOCUMENT_GSI_SK))
            .send()
            .await
            .context("Failed to find an email document")?;
        out.items.unwrap_or_default().into_iter().next().map(from_item).transpose()
    }

    /// A portal's own templates for a kind, one per locale (one query;
    /// `default_locale` is the locale of one saved before languages).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn templates_of(&self, tenant: &TenantId, portal: &PortalId, kind: EmailKind, default_locale: &Locale) -> anyhow::Result<Vec<OwnTemplate>> {
        let base = keys::template_sk(portal, kind.as_str());
        let items = self.query_prefix(keys::tenant_pk(tenant), &base, false).await?;
        let mut own: Vec<OwnTemplate> = Vec::new();
        for item in items {
            let t: TemplateItem = from_item(item)?;
            // `…#pickup_code` must not take `…#pickup_code_x`'s templates.
            if t.sk != base && !t.sk.starts_with(&format!("{base}#")) {
                continue;
            }
            let locale = t.locale.clone().unwrap_or_else(|| default_locale.clone());
            // One saved for the locale beats one saved before languages.
            if t.locale.is_none() && own.iter().any(|o| o.locale == locale) {
                continue;
            }
            own.retain(|o| o.locale != locale);
            own.push(OwnTemplate { locale, subject: t.subject, text: t.text, html: t.html, sms: t.sms });
        }
        Ok(own)
    }

    /// Saves a portal's template together with its audit record.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn put_template(
        &self,
        tenant: &TenantId,
        portal: &PortalId,
        kind: EmailKind,
        template: &OwnTemplate,
        audit: &AuditItem,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let item = TemplateItem {
            pk: keys::tenant_pk(tenant),
            sk: keys::template_locale_sk(portal, kind.as_str(), &template.locale),
            portal_id: portal.clone(),
            kind,
            locale: Some(template.locale.clone()),
            subject: template.subject.clone(),
            text: template.text.clone(),
            html: template.html.clone(),
            sms: template.sms.clone(),
            updated_at: now,
            updated_by: audit.actor.clone(),
        };
        let put = self.put(to_item(&item)?, "attribute_exists(pk) OR attribute_not_exists(pk)")?;
        let record = self.put(to_item(audit)?, "attribute_not_exists(pk)")?;
        self.transact(super::tx::Tx::new().with(super::tx::TxItem::Template, put).with(super::tx::TxItem::Audit, record)).await.map_err(|e| anyhow::anyhow!(e).context("Failed to save a template"))
    }

    /// Stores a new email log entry on its own (most are written in the transaction of their change).
    pub async fn put_email(&self, email: &EmailItem) -> anyhow::Result<()> {
        anyhow::ensure!(self.put_new(super::dynamo::to_item(email)?).await?, "an email document id was taken");
        Ok(())
    }

    /// Records one audit entry on its own (most entries are written in the transaction of their change).
    pub async fn put_audit(&self, audit: &AuditItem) -> anyhow::Result<()> {
        let item = super::dynamo::to_item(audit)?;
        anyhow::ensure!(self.put_new(item).await?, "an audit key was taken");
        Ok(())
    }

    /// A contact's audit trail, newest first.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn list_audit(&self, tenant: &TenantId, contact: &ContactId) -> anyhow::Result<Vec<AuditItem>> {
        let items = self.query_prefix(keys::contact_pk(tenant, contact), keys::AUDIT_PREFIX, true).await?;
        items.into_iter().map(from_item).collect()
    }
}

