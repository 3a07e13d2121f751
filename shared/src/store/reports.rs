//! The two reports of seed 000, each one Query per page on a sparse index:
//! activations on `gsi3` (accounts by activation time), unused codes on
//! `gsi2` (pending codes and links by expiry).

use super::cursor::{decode_cursor, encode_cursor};
use super::dynamo::{from_item, s, Store};
use super::items::{AccountItem, CodeItem};
use super::keys;
use crate::domain::{time, Method, PortalId, TenantId};
use anyhow::Context as _;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cursor is not one this report issued")]
    BadCursor,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub struct Page<T> {
    pub rows: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Filters of the activation report.
#[derive(Debug, Default, Clone)]
pub struct ActivationFilter {
    /// `" " + lower-cased query`: a prefix of any word (see `domain::report`).
    pub needle: Option<String>,
    pub portal: Option<PortalId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// One page of activations, newest first.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn activations_page(&self, tenant: &TenantId, f: &ActivationFilter, limit: i32, cursor: Option<&str>) -> Result<Page<AccountItem>, ReportError> {
        let pk = keys::activated_gsi_pk(tenant);
        let start = cursor.map(|c| decode_cursor(c, "gsi3pk", &pk).ok_or(ReportError::BadCursor)).transpose()?;
        // Sort keys start with the activation time; `~` sorts after every digit.
        let from = f.from.as_ref().map(time::format).unwrap_or_else(|| "0".into());
        let to = f.to.as_ref().map(|t| format!("{}~", time::format(t))).unwrap_or_else(|| "~".into());
        let mut q = self
            .client()
            .query()
            .table_name(self.table_name())
            .index_name(keys::GSI3)
            .key_condition_expression("gsi3pk = :pk AND gsi3sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start);
        let mut filters = Vec::new();
        if let Some(needle) = &f.needle {
            filters.push("contains(#search, :needle)");
            q = q.expression_attribute_names("#search", "search").expression_attribute_values(":needle", s(needle.clone()));
        }
        if let Some(p) = &f.portal {
            filters.push("portal_id = :portal");
            q = q.expression_attribute_values(":portal", s(p.as_str()));
        }
        if !filters.is_empty() {
            q = q.filter_expression(filters.join(" AND "));
        }
        let out = q.send().await.context("Failed to query activations")?;
        let rows = out.items.unwrap_or_default().into_iter().map(from_item).collect::<anyhow::Result<Vec<AccountItem>>>()?;
        let next_cursor = out.last_evaluated_key.filter(|k| !k.is_empty()).as_ref().map(encode_cursor).transpose()?;
        Ok(Page { rows, next_cursor })
    }

    /// One page of pending, unexpired codes (soonest to expire first).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn unused_codes_page(
        &self,
        tenant: &TenantId,
        portal: Option<&PortalId>,
        older_than: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<CodeItem>, ReportError> {
        let pk = keys::pending_gsi_pk(tenant);
        let start = cursor.map(|c| decode_cursor(c, "gsi2pk", &pk).ok_or(ReportError::BadCursor)).transpose()?;
        let mut filters = vec!["#method = :code"];
        let mut q = self
            .client()
            .query()
            .table_name(self.table_name())
            .index_name(keys::GSI2)
            .key_condition_expression("gsi2pk = :pk AND gsi2sk > :now")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":now", s(time::format(&now)))
            .expression_attribute_names("#method", "method")
            .expression_attribute_values(":code", s(Method::Code.as_str()))
            .limit(limit)
            .set_exclusive_start_key(start);
        if let Some(p) = portal {
            filters.push("portal_id = :portal");
            q = q.expression_attribute_values(":portal", s(p.as_str()));
        }
        if let Some(t) = older_than {
            filters.push("created_at < :older");
            q = q.expression_attribute_values(":older", s(time::format(&t)));
        }
        let out = q.filter_expression(filters.join(" AND ")).send().await.context("Failed to query unused codes")?;
        let rows = out.items.unwrap_or_default().into_iter().map(from_item).collect::<anyhow::Result<Vec<CodeItem>>>()?;
        let next_cursor = out.last_evaluated_key.filter(|k| !k.is_empty()).as_ref().map(encode_cursor).transpose()?;
        Ok(Page { rows, next_cursor })
    }
}
