//! Claim-failure counters and idempotency records. Both expire through the
//! table's TTL attribute; reads also check the time themselves, since TTL
//! deletes lazily.
//!
//! | item                | pk                        | sk          |
//! |---------------------|---------------------------|-------------|
//! | claim counter       | `CLAIMFAIL#{address hash}` | `CLAIMFAIL` |
//! | idempotency record  | `T#{t}#IDEM#{key digest}`  | `IDEM`      |
//! | new-link request    | `T#{t}#NEWLINK#{contact}`  | `NEWLINK`   |
//!
//! The claim counter is keyed by a keyed hash of the source address (the
//! claim page is public: no tenant is known before the code is found, and a
//! guesser tries every tenant's codes). Idempotency records are the tenant's.

use super::dynamo::{n, s, Item, Store};
use super::items::TTL_ATTRIBUTE;
use crate::domain::guard::{FailureWindow, IdempotencyKey, IdempotencyRecord, StoredResponse, CLAIM_WINDOW, IDEMPOTENCY_TTL};
use crate::domain::{CodeHash, ContactId, TenantId};
use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const CLAIM_FAIL_SK: &str = "CLAIMFAIL";
const IDEM_SK: &str = "IDEM";

fn claim_fail_key(address: &CodeHash) -> Item {
    HashMap::from([("pk".into(), s(format!("CLAIMFAIL#{}", address.as_str()))), ("sk".into(), s(CLAIM_FAIL_SK))])
}

fn idem_key(tenant: &TenantId, key: &IdempotencyKey) -> Item {
    HashMap::from([("pk".into(), s(format!("T#{tenant}#IDEM#{}", key.digest()))), ("sk".into(), s(IDEM_SK))])
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn millis(ms: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).context("a stored time is out of range")
}

/// How [`Store::begin_idempotent`] went.
#[derive(Debug)]
pub enum Begun {
    /// The key is ours: run the request, then [`Store::finish_idempotent`].
    Started,
    /// The key is on record already.
    Existing(IdempotencyRecord),
}

/// A conditional write's result: `true` written, `false` its condition did not hold.
pub(super) fn condition_held<T, E, R>(result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>, what: &'static str) -> anyhow::Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.code() == Some("ConditionalCheckFailedException")) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(what)),
    }
}

impl Store {
    /// Takes the contact's one "email me a new link" of the next `per`:
    /// `true` when none was taken within it (one conditional write).
    pub async fn take_new_link_slot(&self, tenant: &TenantId, contact: &ContactId, per: chrono::Duration, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let until = now + per;
        let item = HashMap::from([
            ("pk".into(), s(format!("T#{tenant}#NEWLINK#{contact}"))),
            ("sk".into(), s("NEWLINK")),
            ("until_ms".into(), n(until.timestamp_millis())),
            (TTL_ATTRIBUTE.into(), n(until.timestamp() + 60)),
        ]);
        let result = self
            .client()
            .put_item()
            .table_name(self.table_name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR until_ms <= :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        condition_held(result, "Failed to take a new-link slot")
    }

    /// Counts one claim from this source address and answers the window as
    /// it is after the addition: one more in the open window, or a new window
    /// from `now` holding this claim. Atomic (an `ADD` in DynamoDB), so
    /// parallel claims each see a different count.
    pub async fn count_claim(&self, address: &CodeHash, now: DateTime<Utc>) -> anyhow::Result<FailureWindow> {
        let window_floor = (now - CLAIM_WINDOW).timestamp_millis();
        for _ in 0..4 {
            if let Some(window) = self.add_to_claim_window(address, now, window_floor).await? {
                return Ok(window);
            }
            if self.start_claim_window(address, now, window_floor).await? {
                return Ok(FailureWindow { started_at: now, failures: 1 });
            }
        }
        anyhow::bail!("could not count a claim: the counter kept changing")
    }

    /// Takes back the count of a claim that bound an account, if its window is still the one it was counted in.
    pub async fn forgive_claim(&self, address: &CodeHash, counted: FailureWindow) -> anyhow::Result<()> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(claim_fail_key(address)))
            .update_expression("ADD failures :minus_one")
            .condition_expression("started_at_ms = :started AND failures > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":started", n(counted.started_at.timestamp_millis()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        condition_held(result, "Failed to forgive a claim").map(|_| ())
    }

    /// One more in the open window, or the first of a window from `now` when
    /// the address has none (one request either way), answering the window
    /// after it; `None` when an old window is still stored (TTL deletes late).
    async fn add_to_claim_window(&self, address: &CodeHash, now: DateTime<Utc>, window_floor: i64) -> anyhow::Result<Option<FailureWindow>> {
        let added = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(claim_fail_key(address)))
            .update_expression("ADD failures :one SET started_at_ms = if_not_exists(started_at_ms, :now), #ttl = if_not_exists(#ttl, :ttl)")
            .condition_expression("attribute_not_exists(pk) OR started_at_ms > :floor")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":ttl", n((now + CLAIM_WINDOW).timestamp() + 60))
            .expression_attribute_values(":floor", n(window_floor))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match added {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let (Some(started), Some(failures)) = (number(&item, "started_at_ms"), number(&item, "failures")) else {
                    anyhow::bail!("a claim counter lacks its window");
                };
                Ok(Some(FailureWindow { started_at: millis(started)?, failures: failures.clamp(0, u32::MAX as i64) as u32 }))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to count a claim")),
        }
    }

    /// A new window from `now` holding one claim; `false` when one is open.
    async fn start_claim_window(&self, address: &CodeHash, now: DateTime<Utc>, window_floor: i64) -> anyhow::Result<bool> {
        let mut item = claim_fail_key(address);
        item.insert("started_at_ms".into(), n(now.timestamp_millis()));
        item.insert("failures".into(), n(1));
        item.insert(TTL_ATTRIBUTE.into(), n((now + CLAIM_WINDOW).timestamp() + 60));
        let started = self
            .client()
            .put_item()
            .table_name(self.table_name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR started_at_ms <= :floor")
            .expression_attribute_values(":floor", n(window_floor))
            .send()
            .await;
        condition_held(started, "Failed to count a claim")
    }

    /// Claims `key` for a request with `fingerprint`, unless the key is on
    /// record (and neither expired nor abandoned).
    pub async fn begin_idempotent(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        take_over: bool,
    ) -> anyhow::Result<Begun> {
        let mut item = idem_key(tenant, key);
        item.insert("fingerprint".into(), s(fingerprint));
        item.insert("started_at_ms".into(), n(now.timestamp_millis()));
        item.insert("expires_at_ms".into(), n((now + IDEMPOTENCY_TTL).timestamp_millis()));
        item.insert(TTL_ATTRIBUTE.into(), n((now + IDEMPOTENCY_TTL).timestamp()));
        let mut put = self.client().put_item().table_name(self.table_name()).set_item(Some(item));
        put = if take_over {
            // Only the record we judged dead or expired, not one a concurrent taker just wrote.
            put.condition_expression("attribute_not_exists(pk) OR expires_at_ms <= :now OR (attribute_not_exists(#response) AND started_at_ms <= :stale)")
                .expression_attribute_names("#response", "response")
                .expression_attribute_values(":stale", n((now - crate::domain::guard::IDEMPOTENCY_STALE_AFTER).timestamp_millis()))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
        } else {
            put.condition_expression("attribute_not_exists(pk)")
        };
        if condition_held(put.send().await, "Failed to record an idempotency key")? {
            return Ok(Begun::Started);
        }
        let record = self.get_idempotent(tenant, key).await?.context("an idempotency record vanished")?;
        Ok(Begun::Existing(record))
    }

    /// The record under `key`, if any.
    pub async fn get_idempotent(&self, tenant: &TenantId, key: &IdempotencyKey) -> anyhow::Result<Option<IdempotencyRecord>> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table_name())
            .set_key(Some(idem_key(tenant, key)))
            .consistent_read(true)
            .send()
            .await
            .context("Failed to read an idempotency record")?;
        let Some(item) = out.item else { return Ok(None) };
        let fingerprint = item.get("fingerprint").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let response = match item.get("response") {
            Some(v) => Some(serde_dynamo::from_attribute_value::<_, StoredResponse>(v.clone()).context("a stored response")?),
            None => None,
        };
        Ok(Some(IdempotencyRecord {
            fingerprint,
            started_at: millis(number(&item, "started_at_ms").unwrap_or(0))?,
            expires_at: millis(number(&item, "expires_at_ms").unwrap_or(0))?,
            response,
        }))
    }

    /// Stores the answer of the request that holds `key`.
    pub async fn finish_idempotent(&self, tenant: &TenantId, key: &IdempotencyKey, fingerprint: &str, response: &StoredResponse) -> anyhow::Result<()> {
        let value: AttributeValue = serde_dynamo::to_attribute_value(response).context("a response to store")?;
        self.client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(idem_key(tenant, key)))
            .update_expression("SET #response = :response")
            .condition_expression("fingerprint = :fp")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":response", value)
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await
            .context("Failed to store an idempotent response")?;
        Ok(())
    }

    /// Gives `key` up after a request failed on our side, so a retry runs afresh.
    pub async fn abandon_idempotent(&self, tenant: &TenantId, key: &IdempotencyKey, fingerprint: &str) -> anyhow::Result<()> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table_name())
            .set_key(Some(idem_key(tenant, key)))
            .condition_expression("fingerprint = :fp AND attribute_not_exists(#response)")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        // Not ours to give up (answered meanwhile, or another request's): nothing to do.
        condition_held(result, "Failed to release an idempotency key").map(|_| ())
    }
}
