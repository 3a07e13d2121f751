//! Delivery events on the email log, the tenant's suppression list, and the
//! contact's `email_problem` (`domain::delivery`). Each write is idempotent,
//! so a redelivered event redoes what a stopped one left undone: the
//! suppression and the contact's flag first, the log entry (the event's
//! "seen" mark) last.

use super::dynamo::{from_item, s, to_item, EmailKey, Store};
use super::items::SuppressionItem;
use super::keys;
use crate::domain::delivery::{DeliveryRecord, DeliveryStatus, EmailProblem};
use crate::domain::{ContactId, EmailAddress, TenantId};
use anyhow::Context as _;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

/// Whether a conditional update went through.
fn applied<T>(result: Result<T, aws_sdk_dynamodb::error::SdkError<UpdateItemError>>, what: &'static str) -> anyhow::Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
            other => Err(anyhow::Error::new(other).context(what)),
        },
    }
}

impl Store {
    /// Writes the entry's delivery status and events, if it is the email SES sent as `message_id`
    /// and no other event was recorded since it was read (`seen` events then): `false` otherwise.
    #[tracing::instrument(skip_all)]
    pub async fn record_delivery(
        &self,
        key: &EmailKey,
        message_id: &str,
        seen: usize,
        status: DeliveryStatus,
        events: &[DeliveryRecord],
    ) -> anyhow::Result<bool> {
        let unchanged = if seen == 0 { "attribute_not_exists(delivery_events)" } else { "size(delivery_events) = :seen" };
        let mut req = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(key.key()))
            .update_expression("SET delivery_status = :status, delivery_events = :events")
            .condition_expression(format!("attribute_exists(pk) AND ses_message_id = :mid AND {unchanged}"))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":events", serde_dynamo::to_attribute_value(events)?)
            .expression_attribute_values(":mid", s(message_id));
        if seen > 0 {
            req = req.expression_attribute_values(":seen", AttributeValue::N(seen.to_string()));
        }
        applied(req.send().await, "Failed to record a delivery event")
    }

    /// Puts an address on the tenant's suppression list; the first problem recorded stays.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn suppress(&self, tenant: &TenantId, item: &SuppressionItem) -> anyhow::Result<()> {
        debug_assert_eq!(item.pk, keys::tenant_pk(tenant));
        self.put_new(to_item(item)?).await.map(drop)
    }

    /// The address's entry on the tenant's suppression list, if it has one.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn suppression(&self, tenant: &TenantId, address: &EmailAddress) -> anyhow::Result<Option<SuppressionItem>> {
        self.get(keys::tenant_pk(tenant), keys::suppression_sk(address)).await?.map(from_item).transpose()
    }

    /// Marks the contact's email as a problem, if `address` is still its email (a changed one is not).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn flag_contact_email(&self, tenant: &TenantId, contact: &ContactId, address: &EmailAddress, problem: EmailProblem) -> anyhow::Result<bool> {
        let req = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(super::dynamo::key(keys::contact_pk(tenant, contact), keys::CONTACT_SK.into())))
            .update_expression("SET email_problem = :problem, email_problem_address = :address")
            .condition_expression("attribute_exists(pk) AND email = :address")
            .expression_attribute_values(":problem", s(problem.as_str()))
            .expression_attribute_values(":address", s(address.as_str()));
        applied(req.send().await, "Failed to mark a contact's email").context("flag_contact_email")
    }
}
