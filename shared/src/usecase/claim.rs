//! A person claims a code or an activation link's token and creates their
//! account. Unknown, malformed, expired, already used and wrong-portal codes
//! are all [`ClaimError::Rejected`], and every path hashes and looks the code
//! up first, so the answer says nothing about which it was. The claim itself
//! is one conditional transaction ([`invitation::claim`], re-checked in
//! DynamoDB): of N concurrent claims exactly one succeeds.
//!
//! Guessing is throttled per source address ([`crate::domain::guard`]): the
//! counter is read beside the code lookup, and only a refused claim writes to
//! it. Every refused claim is counted in the `ClaimsFailed` metric by portal
//! (`none` when no code matched).

use crate::app::App;
use crate::domain::guard::{claim_verdict, ClaimVerdict, FailureWindow};
use crate::domain::{invitation, CodeHash, ContactId, EmailAddress, LinkToken, Method, PickupCode, PortalId};
use crate::retry::{retry, Attempt, Policy};
use crate::store::TxError;
use std::time::Duration;
use chrono::DateTime;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Deliberately the same for every reason.
    #[error("this code cannot be claimed")]
    Rejected,
    /// Too many failed claims from this address.
    #[error("too many failed claims from this address; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What was claimed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claimed {
    pub contact_id: ContactId,
    pub portal_id: PortalId,
    pub email: EmailAddress,
}

/// Which portal a claim is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPortal {
    /// The claim does not say: any portal of the code.
    Any,
    /// Only a code of this portal.
    Only(PortalId),
    /// The claim named something that is no portal id: no code matches.
    NoneMatches,
}

impl ClaimPortal {
    fn admits(&self, portal: &PortalId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(p) => p == portal,
            Self::NoneMatches => false,
        }
    }
}

/// A claim as the person made it.
pub struct ClaimAttempt<'a> {
    /// The code or the link's token, as typed (it may be malformed).
    pub secret: &'a str,
    pub method: Method,
    pub email: &'a EmailAddress,
    /// The portal the claim page belongs to, if it says.
    pub portal: &'a ClaimPortal,
    /// The hashed source address, throttled when given.
    pub address: Option<&'a CodeHash>,
}

/// Claims a code or token.
pub async fn claim(app: &App, attempt: ClaimAttempt<'_>) -> Result<Claimed, ClaimError> {
    let mut seen = Seen::default();
    let result = try_claim(app, &attempt, &mut seen).await;
    match &result {
        Ok(c) => crate::metrics::emf::count("ClaimsSucceeded", &[("PortalId", c.portal_id.as_str())]),
        Err(ClaimError::Rejected) => {
            crate::metrics::emf::count("ClaimsFailed", &[("PortalId", seen.portal.as_ref().map_or("none", |p| p.as_str()))]);
            if let Some(address) = attempt.address {
                // Counting must not turn a refusal into a 5xx; the log shows it.
                if let Err(e) = app.store.record_claim_failure(address, seen.window, (app.clock)()).await {
                    tracing::error!(error = ?e, "could not count a failed claim");
                }
            }
        }
        Err(_) => {}
    }
    result
}

/// What a claim attempt learnt on the way, for the metric and the counter.
#[derive(Default)]
struct Seen {
    portal: Option<PortalId>,
    window: Option<FailureWindow>,
}

async fn try_claim(app: &App, attempt: &ClaimAttempt<'_>, seen: &mut Seen) -> Result<Claimed, ClaimError> {
    let secret = attempt.secret;
    // Hash whatever was given, well-formed or not, so every answer costs the same lookup.
    let hash = match attempt.method {
        Method::Code => match PickupCode::parse(secret) {
            Ok(code) => app.hasher.hash(&code),
            Err(_) => app.hasher.hash_secret(secret.as_bytes()),
        },
        Method::Link => match LinkToken::parse(secret) {
            Ok(token) => token.hash(&app.hasher),
            Err(_) => app.hasher.hash_secret(format!("link:{secret}").as_bytes()),
        },
    };
    let failures = async {
        match attempt.address {
            Some(a) => app.store.claim_failures(a).await,
            None => Ok(None),
        }
    };
    let hash = &hash;
    let (owner, failures) = tokio::join!(app.store.find_code(hash), failures);
    let now = (app.clock)();
    seen.window = failures?;
    if let ClaimVerdict::Refuse { retry_after_secs } = claim_verdict(seen.window, now) {
        return Err(ClaimError::RateLimited { retry_after_secs });
    }
    let owner = owner?.ok_or(ClaimError::Rejected)?;
    seen.portal = Some(owner.portal_id.clone());
    let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).ok_or(ClaimError::Rejected)?;
    let portal_matches = attempt.portal.admits(&owner.portal_id);
    if !portal_matches || owner.method != attempt.method {
        return Err(ClaimError::Rejected);
    }
    let transition = invitation::claim(owner.state, expires_at, now).map_err(|_| ClaimError::Rejected)?;
    let owner = &owner;
    // Another claim of the same code is in flight: try again shortly; the
    // transaction's conditions decide which claim wins.
    retry(CONTENTION, |_: TxError| ClaimError::Rejected, |_| async move {
        match app.store.claim_code(&hash, owner, transition, attempt.email, now).await {
            Ok(()) => Attempt::Done(()),
            Err(e) if e.is_contention() => Attempt::Again(e),
            Err(TxError::Cancelled(_)) => Attempt::Stop(ClaimError::Rejected),
            Err(TxError::Unexpected(e)) => Attempt::Stop(e.into()),
        }
    })
    .await?;
    tracing::info!(tenant = %owner.tenant_id, portal = %owner.portal_id, "code claimed");
    Ok(Claimed { contact_id: owner.contact_id.clone(), portal_id: owner.portal_id.clone(), email: attempt.email.clone() })
}

/// Tries of a claim that meets a concurrent claim of the same code.
const CONTENTION: Policy = Policy::backoff(5, Duration::from_millis(10), Duration::from_millis(80));
