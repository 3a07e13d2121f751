//! A tenant's portal and its settings (Portal Administration).

use super::id_token::IdentityProvider;
use super::identity::Fact;
use super::channel::Channels;
use super::ids::PortalId;
use super::locale::Locale;
use super::web_url::{self, Deployment};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How long a code stays claimable unless the portal says otherwise (7 days).
pub const DEFAULT_CODE_TTL_HOURS: u32 = 168;
/// The longest a portal may let codes live (90 days).
pub const MAX_CODE_TTL_HOURS: u32 = 2160;
/// Longest portal or contact name we keep.
pub const MAX_NAME_LEN: usize = 200;

/// A portal as staff configure it and as every handler reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portal {
    pub portal_id: PortalId,
    pub name: String,
    /// Default portals are listed for every contact and used when a request names none.
    pub default: bool,
    /// Where people claim: the activation email points here. None: the
    /// deployment's hosted claim page (`PUBLIC_BASE_URL`/claim).
    #[serde(default)]
    pub claim_url: Option<String>,
    pub code_ttl_hours: u32,
    /// How long an emailed activation link stays usable.
    pub link_ttl_hours: u32,
    /// Scheduler: generate codes for related contacts with neither a pending code nor an account.
    #[serde(default)]
    pub auto_generate: bool,
    /// Scheduler: email pending codes that were never emailed.
    #[serde(default)]
    pub auto_email: bool,
    /// Scheduler: one reminder per code or link this many days before it expires (none when absent).
    #[serde(default)]
    pub reminder_days_before_expiry: Option<u32>,
    /// Facts of the record a claim must match (`domain::identity`); none by default.
    #[serde(default)]
    pub claim_checks: BTreeSet<Fact>,
    /// The identity provider whose ID tokens vouch for a claimant's address
    /// (`domain::id_token`): `identity_issuer`, `identity_audience`, `identity_jwks_url`.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityProvider>,
    /// Per kind, the channels its messages go by (`domain::channel`); a kind not named: email.
    #[serde(default)]
    pub channels: Channels,
    /// The language of its messages and pages for contacts without a `locale` (`domain::locale`).
    #[serde(default)]
    pub default_locale: Locale,
}

/// Longest reminder lead time, in days.
pub const MAX_REMINDER_DAYS: u32 = 90;

/// Why a portal's settings were refused; each names its field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortalError {
    #[error("name: must be 1 to {MAX_NAME_LEN} characters")]
    Name,
    #[error("claim_url: must be an https URL with a host")]
    ClaimUrl,
    #[error("code_ttl_hours: must be between 1 and {MAX_CODE_TTL_HOURS}")]
    CodeTtl,
    #[error("link_ttl_hours: must be between 1 and {MAX_CODE_TTL_HOURS}")]
    LinkTtl,
    #[error("reminder_days_before_expiry: must be between 1 and {MAX_REMINDER_DAYS}")]
    ReminderDays,
}

impl PortalError {
    /// The JSON pointer of the offending field.
    pub fn pointer(&self) -> &'static str {
        match self {
            Self::Name => "/name",
            Self::ClaimUrl => "/claim_url",
            Self::CodeTtl => "/code_ttl_hours",
            Self::LinkTtl => "/link_ttl_hours",
            Self::ReminderDays => "/reminder_days_before_expiry",
        }
    }
}

impl Portal {
    /// Builds a portal from staff input, applying the documented defaults.
    pub fn new(
        portal_id: PortalId,
        name: &str,
        default: bool,
        claim_url: Option<&str>,
        code_ttl_hours: Option<u32>,
        link_ttl_hours: Option<u32>,
        deployment: Deployment,
    ) -> Result<Self, PortalError> {
        let name = valid_name(name).ok_or(PortalError::Name)?;
        let claim_url = claim_url.map(str::trim).filter(|u| !u.is_empty());
        if let Some(claim_url) = claim_url {
            if !web_url::secure(claim_url, deployment) {
                return Err(PortalError::ClaimUrl);
            }
        }
        let code_ttl_hours = code_ttl_hours.unwrap_or(DEFAULT_CODE_TTL_HOURS);
        if !(1..=MAX_CODE_TTL_HOURS).contains(&code_ttl_hours) {
            return Err(PortalError::CodeTtl);
        }
        let link_ttl_hours = link_ttl_hours.unwrap_or(DEFAULT_CODE_TTL_HOURS);
        if !(1..=MAX_CODE_TTL_HOURS).contains(&link_ttl_hours) {
            return Err(PortalError::LinkTtl);
        }
        Ok(Self {
            portal_id,
            name,
            default,
            claim_url: claim_url.map(str::to_owned),
            code_ttl_hours,
            link_ttl_hours,
            auto_generate: false,
            auto_email: false,
            reminder_days_before_expiry: None,
            claim_checks: BTreeSet::new(),
            identity: None,
            channels: Channels::default(),
            default_locale: Locale::english(),
        })
    }

    /// Sets the identity provider whose ID tokens vouch for addresses.
    pub fn with_identity(mut self, identity: Option<IdentityProvider>) -> Self {
        self.identity = identity;
        self
    }

    /// Sets the channels per kind and the default language.
    pub fn with_messages(mut self, channels: Channels, default_locale: Locale) -> Self {
        self.channels = channels;
        self.default_locale = default_locale;
        self
    }

    /// Sets the facts a claim must match.
    pub fn with_claim_checks(mut self, checks: impl IntoIterator<Item = Fact>) -> Self {
        self.claim_checks = checks.into_iter().collect();
        self
    }

    /// Sets the scheduler's work for this portal (all off by default).
    pub fn with_automation(mut self, auto_generate: bool, auto_email: bool, reminder_days: Option<u32>) -> Result<Self, PortalError> {
        if reminder_days.is_some_and(|d| !(1..=MAX_REMINDER_DAYS).contains(&d)) {
            return Err(PortalError::ReminderDays);
        }
        self.auto_generate = auto_generate;
        self.auto_email = auto_email;
        self.reminder_days_before_expiry = reminder_days;
        Ok(self)
    }

    /// Who gets a kind's messages to `contact` on this portal: one recipient
    /// per channel it names that the contact can be reached by (`domain::channel`).
    pub fn reach(&self, contact: &super::Contact, kind: super::EmailKind) -> super::channel::Reach {
        super::channel::reach(self.channels.of(kind), contact.email.as_ref(), contact.email_problem, contact.phone.as_ref())
    }

    /// Whether the scheduler has anything to do for this portal beyond expiry.
    pub fn automated(&self) -> bool {
        self.auto_generate || self.auto_email || self.reminder_days_before_expiry.is_some()
    }
}

/// A display name: trimmed, 1..=200 characters, no control characters.
pub fn valid_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let ok = !name.is_empty() && name.chars().count() <= MAX_NAME_LEN && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// Which portal a request means when it names none: the tenant's one default portal.
#[derive(Debug, PartialEq, Eq)]
pub enum DefaultPortal<'a> {
    Found(&'a Portal),
    None,
    Ambiguous,
}

pub fn default_portal(portals: &[Portal]) -> DefaultPortal<'_> {
    let mut defaults = portals.iter().filter(|p| p.default);
    match (defaults.next(), defaults.next()) {
        (Some(p), None) => DefaultPortal::Found(p),
        (None, _) => DefaultPortal::None,
        (Some(_), Some(_)) => DefaultPortal::Ambiguous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PortalId {
        PortalId::parse(s).unwrap()
    }

    #[test]
    fn ttl_defaults_to_a_week_and_is_bounded() {
        let p = Portal::new(id("main"), "Main", true, Some("https://portal.example/claim"), None, None, Deployment::Aws).unwrap();
        assert_eq!(p.code_ttl_hours, 168);
        assert_eq!(Portal::new(id("m"), "M", true, Some("https://x.example"), Some(0), None, Deployment::Aws), Err(PortalError::CodeTtl));
        assert_eq!(Portal::new(id("m"), "M", true, Some("https://x.example"), Some(2161), None, Deployment::Aws), Err(PortalError::CodeTtl));
        assert!(Portal::new(id("m"), "M", true, Some("https://x.example"), Some(2160), None, Deployment::Aws).is_ok());
    }

    #[test]
    fn names_and_urls_are_checked() {
        assert_eq!(Portal::new(id("m"), "  ", true, Some("https://x.example"), None, None, Deployment::Aws), Err(PortalError::Name));
        assert_eq!(Portal::new(id("m"), &"n".repeat(201), true, Some("https://x.example"), None, None, Deployment::Aws), Err(PortalError::Name));
        assert_eq!(Portal::new(id("m"), "M", true, Some("javascript:alert(1)"), None, None, Deployment::Aws), Err(PortalError::ClaimUrl));
        assert_eq!(Portal::new(id("m"), "M", true, Some("https://x.example/a b"), None, None, Deployment::Aws), Err(PortalError::ClaimUrl));
        for hostless in ["https://", "https://?token=", "http://:443/claim", "https://user@/claim", "https://[]/"] {
            assert_eq!(Portal::new(id("m"), "M", true, Some(hostless), None, None, Deployment::Aws), Err(PortalError::ClaimUrl), "{hostless}");
        }
        assert!(Portal::new(id("m"), "M", true, Some("https://[::1]:8443/claim"), None, None, Deployment::Aws).is_ok());
        // A claim page is https; http only to loopback, and only in the local stack.
        assert_eq!(Portal::new(id("m"), "M", true, Some("http://portal.example/claim"), None, None, Deployment::Local), Err(PortalError::ClaimUrl));
        assert_eq!(Portal::new(id("m"), "M", true, Some("http://127.0.0.1:3000/claim"), None, None, Deployment::Aws), Err(PortalError::ClaimUrl));
        assert!(Portal::new(id("m"), "M", true, Some("http://127.0.0.1:3000/claim"), None, None, Deployment::Local).is_ok());
    }

    #[test]
    fn the_default_portal_must_be_unique() {
        let a = Portal::new(id("a"), "A", true, Some("https://a.example"), None, None, Deployment::Aws).unwrap();
        let b = Portal::new(id("b"), "B", false, Some("https://b.example"), None, None, Deployment::Aws).unwrap();
        let mut c = b.clone();
        c.default = true;
        assert_eq!(default_portal(&[a.clone(), b.clone()]), DefaultPortal::Found(&a));
        assert_eq!(default_portal(&[b.clone()]), DefaultPortal::None);
        assert_eq!(default_portal(&[a, c]), DefaultPortal::Ambiguous);
    }
}
