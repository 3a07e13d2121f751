//! A tenant's registered integrations (`pk = T#{t}`, `sk = INTEGRATION#{id}`):
//! the systems allowed to send to the activation queue for that tenant
//! (`domain::queue_proof`). The item names the integration and where its
//! secret is kept; the secret itself lives only in Secrets Manager.

use super::dynamo::{from_item, key, to_item, Store};
use super::keys;
use crate::domain::{IntegrationId, TenantId};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const INTEGRATION_PREFIX: &str = "INTEGRATION#";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationItem {
    pub pk: String,
    pub sk: String,
    pub integration_id: IntegrationId,
    /// Recorded as the actor of what its messages do.
    pub name: String,
    /// The Secrets Manager secret holding its signing secret.
    pub secret_name: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// When its secret was last set (at registration or a rotation).
    pub secret_set_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The Secrets Manager VersionId of the current secret: a verifier whose
    /// cached values are older reads them again, so a rotation holds at once.
    #[serde(default)]
    pub secret_version: Option<String>,
    /// Set by a rotation with `revoke_previous`: the secret before the current
    /// one no longer verifies (until the next rotation keeps one again).
    #[serde(default)]
    pub previous_revoked: bool,
}

impl IntegrationItem {
    pub fn key(tenant: &TenantId, id: &IntegrationId) -> (String, String) {
        (keys::tenant_pk(tenant), format!("{INTEGRATION_PREFIX}{id}"))
    }
}

impl Store {
    pub async fn get_integration(&self, tenant: &TenantId, id: &IntegrationId) -> anyhow::Result<Option<IntegrationItem>> {
        let (pk, sk) = IntegrationItem::key(tenant, id);
        self.get(pk, sk).await?.map(from_item).transpose()
    }

    pub async fn put_integration(&self, item: &IntegrationItem) -> anyhow::Result<()> {
        self.put_item(to_item(item)?, "an integration").await
    }

    /// Removes the registration; `false` when there was none.
    pub async fn delete_integration(&self, tenant: &TenantId, id: &IntegrationId) -> anyhow::Result<bool> {
        let (pk, sk) = IntegrationItem::key(tenant, id);
        let out = self
            .client()
            .delete_item()
            .table_name(self.table_name())
            .set_key(Some(key(pk, sk)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .context("Failed to delete an integration")?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
