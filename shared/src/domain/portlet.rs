//! The Portal portlet (seed 000): what staff see for one contact.
//!
//! Built by a pure function from what one DynamoDB Query of the contact's
//! partition returns plus the tenant's (cached) portal list, so the rule for
//! "which portals, which accounts, which codes, which message" lives here only.

use super::{
    access_state::{AccessEntry, Method, PortalState},
    invitation::{is_listed_as_pending, InvitationState},
    pickup_code::CodeHash,
    contact::Contact,
    email_address::EmailAddress,
    ids::{ContactId, DocumentId, PortalId},
    portal::Portal,
    time,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

pub const MESSAGE_NO_ACCOUNTS: &str = "There are no accounts currently with portal-only access to this chart.";
pub const MESSAGE_HAS_ACCOUNTS: &str = "These accounts have portal-only access to this chart.";

/// A portal account: an email that claimed access to this contact on a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub email: EmailAddress,
    pub portal_id: PortalId,
    pub activated_at: DateTime<Utc>,
    pub method: Method,
    /// Deactivated accounts stay on record but give no access.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A code generated for this contact, in whatever state it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub portal_id: PortalId,
    /// A typed code, or an emailed link (whose token is never stored).
    pub method: Method,
    pub hash: CodeHash,
    /// The plain code, `XXXXX-XXXXX`; present only while pending (never printed).
    pub code: Option<super::redacted::Redacted<String>>,
    pub state: InvitationState,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<DocumentId>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PortalRef {
    pub portal_id: PortalId,
    pub name: String,
    pub default: bool,
    /// none, pending, expired, active or disabled.
    pub state: PortalState,
    /// The channels "Generate & Email" would send a pickup code by to this
    /// contact on this portal (`domain::channel`): empty when it can reach them
    /// by none (no address, a suppressed one, no phone for texts).
    pub sends_by: Vec<super::channel::Channel>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AccountView {
    pub email: EmailAddress,
    pub portal_id: PortalId,
    #[serde(with = "time::rfc3339")]
    pub activated_at: DateTime<Utc>,
}

#[derive(Serialize, PartialEq, Eq)]
pub struct PendingCodeView {
    pub portal_id: PortalId,
    pub portal_name: String,
    pub code: String,
    #[serde(with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub email_document_id: Option<DocumentId>,
}

crate::debug_redacting!(PendingCodeView { portal_id, portal_name, created_at, expires_at, email_document_id } hiding { code });

/// The body of `GET /v1/contacts/{contact_id}/portal`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PortletView {
    pub contact_id: ContactId,
    pub portals: Vec<PortalRef>,
    pub accounts: Vec<AccountView>,
    pub pending_codes: Vec<PendingCodeView>,
    pub message: &'static str,
    /// The contact's email bounced hard or was complained about: nothing is sent there (`domain::delivery`).
    pub email_problem: Option<super::delivery::EmailProblem>,
}

/// Portals listed for a contact: the tenant's default portals plus those the contact is related to.
pub fn listed_portals<'a>(contact: &Contact, tenant_portals: &'a [Portal]) -> Vec<&'a Portal> {
    tenant_portals
        .iter()
        .filter(|p| p.default || contact.portal_ids.contains(&p.portal_id))
        .collect()
}

pub fn build(
    contact: &Contact,
    tenant_portals: &[Portal],
    access: &BTreeMap<String, AccessEntry>,
    accounts: Vec<AccountRecord>,
    codes: Vec<CodeRecord>,
    now: DateTime<Utc>,
) -> PortletView {
    let portal_name = |id: &PortalId| {
        tenant_portals.iter().find(|p| &p.portal_id == id).map_or_else(|| id.to_string(), |p| p.name.clone())
    };
    let mut pending_codes: Vec<PendingCodeView> = codes
        .into_iter()
        .filter(|c| is_listed_as_pending(c.state, c.expires_at, now))
        .filter_map(|c| {
            Some(PendingCodeView {
                portal_name: portal_name(&c.portal_id),
                code: c.code?.into_inner(),
                portal_id: c.portal_id,
                created_at: c.created_at,
                expires_at: c.expires_at,
                email_document_id: c.email_document_id,
            })
        })
        .collect();
    pending_codes.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let mut accounts: Vec<AccountView> = accounts
        .into_iter()
        .filter(|a| a.disabled_at.is_none())
        .map(|a| AccountView { email: a.email, portal_id: a.portal_id, activated_at: a.activated_at })
        .collect();
    accounts.sort_by(|a, b| a.activated_at.cmp(&b.activated_at));
    PortletView {
        email_problem: contact.email_problem,
        contact_id: contact.contact_id.clone(),
        portals: listed_portals(contact, tenant_portals)
            .into_iter()
            .map(|p| PortalRef {
                portal_id: p.portal_id.clone(),
                name: p.name.clone(),
                default: p.default,
                state: super::invitation::contact_state(access.get(p.portal_id.as_str()), now),
                sends_by: p
                    .reach(contact, super::EmailKind::PickupCode)
                    .recipients
                    .iter()
                    .map(|r| r.channel())
                    .collect(),
            })
            .collect(),
        message: if accounts.is_empty() { MESSAGE_NO_ACCOUNTS } else { MESSAGE_HAS_ACCOUNTS },
        accounts,
        pending_codes,
    }
}

/// Whether the invitation stored under `hash` is the newest one the contact
/// was given on `portal`, code or link: only that one may ask for a new link,
/// so a forwarded old link cannot void a newer paper code.
pub fn is_newest_on(codes: &[CodeRecord], portal: &PortalId, hash: &CodeHash) -> bool {
    codes.iter().filter(|c| &c.portal_id == portal).max_by_key(|c| c.created_at).is_some_and(|newest| &newest.hash == hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::ContactKind;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn pid(s: &str) -> PortalId {
        PortalId::parse(s).unwrap()
    }
    fn portal(id: &str, default: bool) -> Portal {
        Portal::new(pid(id), &format!("Portal {id}"), default, Some("https://p.example/claim"), None, None, crate::domain::web_url::Deployment::Aws).unwrap()
    }
    fn contact(related: &[&str]) -> Contact {
        Contact {
            contact_id: ContactId::parse("c1").unwrap(),
            name: "Ann".into(),
            email: None,
            kind: ContactKind::Individual,
            portal_ids: related.iter().map(|p| pid(p)).collect(),
            facts: Default::default(),
            fact_key_versions: Default::default(),
            email_problem: None,
            phone: None,
            locale: None,
        }
    }
    fn code(portal: &str, state: InvitationState, expires: &str) -> CodeRecord {
        CodeRecord {
            portal_id: pid(portal),
            method: Method::Code,
            hash: CodeHash::from_stored("h".into()),
            code: (state == InvitationState::Pending).then(|| "ABCDE-FGHJK".into()),
            state,
            created_at: t("2026-01-01T00:00:00Z"),
            expires_at: t(expires),
            email_document_id: None,
        }
    }

    #[test]
    fn lists_default_portals_and_related_ones_only() {
        let portals = [portal("a", true), portal("b", false), portal("c", false)];
        let view = build(&contact(&["c"]), &portals, &BTreeMap::new(), vec![], vec![], t("2026-01-02T00:00:00Z"));
        let ids: Vec<&str> = view.portals.iter().map(|p| p.portal_id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(view.message, MESSAGE_NO_ACCOUNTS);
    }

    #[test]
    fn claimed_revoked_and_expired_codes_are_not_pending() {
        let now = t("2026-01-02T00:00:00Z");
        let codes = vec![
            code("a", InvitationState::Pending, "2026-01-08T00:00:00Z"),
            code("a", InvitationState::Claimed, "2026-01-08T00:00:00Z"),
            code("a", InvitationState::Revoked, "2026-01-08T00:00:00Z"),
            code("a", InvitationState::Pending, "2026-01-01T12:00:00Z"),
        ];
        let view = build(&contact(&[]), &[portal("a", true)], &BTreeMap::new(), vec![], codes, now);
        assert_eq!(view.pending_codes.len(), 1);
        assert_eq!(view.pending_codes[0].portal_name, "Portal a");
    }

    #[test]
    fn accounts_switch_the_message() {
        let account = AccountRecord {
            email: EmailAddress::parse("ann@example.org").unwrap(),
            portal_id: pid("a"),
            activated_at: t("2026-01-01T10:00:00Z"),
            method: Method::Code,
            disabled_at: None,
        };
        let mut disabled = account.clone();
        disabled.disabled_at = Some(t("2026-01-01T11:00:00Z"));
        let view = build(&contact(&[]), &[portal("a", true)], &BTreeMap::new(), vec![disabled], vec![], t("2026-01-02T00:00:00Z"));
        assert_eq!(view.message, MESSAGE_NO_ACCOUNTS, "a disabled account gives no access");
        let access = BTreeMap::from([("a".to_string(), AccessEntry::new(PortalState::Active, None, t("2026-01-01T10:00:00Z")))]);
        let view = build(&contact(&[]), &[portal("a", true)], &access, vec![account], vec![], t("2026-01-02T00:00:00Z"));
        assert_eq!(view.message, MESSAGE_HAS_ACCOUNTS);
        assert_eq!(view.accounts.len(), 1);
        assert_eq!(view.portals[0].state, PortalState::Active);
    }
}
