//! The contact listing with each contact's portal state, filterable by
//! state: a Query of the tenant's contacts on `gsi1` (id order) with a filter
//! on the stored state, never a Scan. Pages are followed until `limit`
//! matches are found or a bounded number of reads is spent; the opaque cursor
//! resumes exactly where the last page stopped.

use super::dynamo::{s, Store};
use super::keys;
use crate::domain::{invitation::contact_state, time, Contact, PortalId, PortalState, TenantId};
use anyhow::Context as _;
use super::cursor::{decode_cursor, encode_cursor};
use chrono::{DateTime, Utc};

/// Reads per listing call at most; a sparse filter then returns fewer items and a cursor.
const MAX_PAGES_PER_CALL: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cursor is not one this service issued")]
    BadCursor,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One page of the listing.
#[derive(Debug)]
pub struct ContactPage {
    pub items: Vec<(Contact, PortalState)>,
    pub next_cursor: Option<String>,
}

/// What a name search looks for: `needle` in the lowercased words of name and
/// email (`domain::report::search_text`), or `typed` as given in the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSearch {
    pub needle: String,
    pub typed: String,
}

impl NameSearch {
    /// None for an empty query.
    pub fn new(q: &str) -> Option<Self> {
        crate::domain::report::search_needle(q).map(|needle| Self { needle, typed: q.trim().to_owned() })
    }
}

impl Store {
    /// Contacts of a tenant with their state on `portal`, optionally only those
    /// in `filter`, and only those `search` finds (a name search, [`NameSearch`]).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    #[allow(clippy::too_many_arguments)]
    pub async fn list_contacts(
        &self,
        tenant: &TenantId,
        portal: &PortalId,
        filter: Option<PortalState>,
        search: Option<&NameSearch>,
        email_problem_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ContactPage, ListError> {
        let mut start = cursor
            .map(|c| decode_cursor(c, "gsi1pk", &keys::contacts_gsi_pk(tenant)).ok_or(ListError::BadCursor))
            .transpose()?;
        let now_s = time::format(&now);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES_PER_CALL {
            let mut q = self
                .client()
                .query()
                .table_name(self.table_name())
                .index_name(keys::GSI1)
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(keys::contacts_gsi_pk(tenant)))
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            let state_filter = match filter {
                None => None,
                Some(PortalState::None) => Some("attribute_not_exists(#access.#p)"),
                Some(PortalState::Pending) => Some("#access.#p.#st = :pending AND #access.#p.expires_at > :now"),
                Some(PortalState::Expired) => {
                    Some("#access.#p.#st = :expired OR (#access.#p.#st = :pending AND #access.#p.expires_at <= :now)")
                }
                Some(PortalState::Active) => Some("#access.#p.#st = :active"),
                Some(PortalState::Disabled) => Some("#access.#p.#st = :disabled"),
                Some(PortalState::Locked) => Some("#access.#p.#st = :locked"),
            };
            // A name search: a prefix of any word of the name or email (the `search`
            // attribute), or, on an item written before it had one, the name as typed.
            let search_filter = search.map(|_| "(contains(#search, :needle) OR (attribute_not_exists(#search) AND contains(#name, :typed)))");
            // An email problem is the contact's only while it is for the contact's email (`domain::delivery`).
            let problem_filter = email_problem_only.then_some("(attribute_exists(email_problem) AND email_problem_address = email)");
            let parts: Vec<String> = [state_filter.map(|a| format!("({a})")), search_filter.map(str::to_owned), problem_filter.map(str::to_owned)]
                .into_iter()
                .flatten()
                .collect();
            let expr = (!parts.is_empty()).then(|| parts.join(" AND "));
            if let Some(search) = search {
                q = q
                    .expression_attribute_names("#search", "search")
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_values(":needle", s(search.needle.clone()))
                    .expression_attribute_values(":typed", s(search.typed.clone()));
            }
            if let Some(expr) = expr {
                q = q.filter_expression(expr);
            }
            if state_filter.is_some() {
                q = q
                    .expression_attribute_names("#access", "access")
                    .expression_attribute_names("#p", portal.as_str());
                let values: &[(&str, &str)] = match filter {
                    Some(PortalState::Pending) => &[(":pending", "pending")],
                    Some(PortalState::Expired) => &[(":expired", "expired"), (":pending", "pending")],
                    Some(PortalState::Active) => &[(":active", "active")],
                    Some(PortalState::Disabled) => &[(":disabled", "disabled")],
                    Some(PortalState::Locked) => &[(":locked", "locked")],
                    _ => &[],
                };
                if !values.is_empty() {
                    q = q.expression_attribute_names("#st", "state");
                }
                for (name, value) in values {
                    q = q.expression_attribute_values(*name, s(*value));
                }
                if matches!(filter, Some(PortalState::Pending | PortalState::Expired)) {
                    q = q.expression_attribute_values(":now", s(now_s.clone()));
                }
            }
            let out = q.send().await.context("Failed to list contacts")?;
            for item in out.items.unwrap_or_default() {
                let (contact, access) = Self::contact_from(item)?;
                let state = contact_state(access.get(portal.as_str()), now);
                items.push((contact, state));
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() || items.len() >= limit {
                break;
            }
        }
        let next_cursor = start.as_ref().map(encode_cursor).transpose()?;
        Ok(ContactPage { items, next_cursor })
    }
}
