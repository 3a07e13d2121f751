//! A person claims a code or an activation link's token and creates their
//! account. Unknown, malformed, expired, already used and wrong-portal codes
//! are all [`ClaimError::Rejected`], and every path hashes and looks the code
//! up first, so the answer says nothing about which it was. The claim itself
//! is one conditional transaction ([`invitation::claim`], re-checked in
//! DynamoDB): of N concurrent claims exactly one succeeds.
//!
//! A portal's `claim_checks` (`domain::identity`) make a claim give facts of
//! the record: a missing or wrong one is the same [`ClaimError::Rejected`].
//! Each such claim takes a numbered try from an atomic counter on the code
//! before anything is compared: only the first three are judged, a try past
//! them is refused unjudged, and a wrong third try or any later one locks the
//! code ([`invitation::fact_try`], [`invitation::fact_lock`]); the claim's
//! transaction requires the counter to be within them, so of any number of
//! parallel guesses at most three are judged. Every claim that matched a code writes an
//! audit record on the contact: `claimed`, `claim_refused` (wrong facts) or
//! `code_locked`, with the method, the email typed, the keyed hash of the
//! source address and the user agent.
//!
//! Guessing is throttled per source address ([`crate::domain::guard`]): the
//! claim is counted atomically beside the code lookup, before anything is
//! judged, and a claim that binds an account is forgiven afterwards. Every
//! refused claim is counted in the `ClaimsFailed` metric by portal (`none`
//! when no code matched).

use crate::domain::keyring::HashKey;
use crate::app::App;
use crate::domain::guard::{claim_verdict, ClaimVerdict, FailureWindow};
use crate::domain::identity::{self, FactHasher};
use crate::domain::{invitation, CodeHash, ContactId, EmailAddress, Fact, FactHashes, InvitationState, LinkToken, Method, PickupCode, PortalId};
use super::outbox::{queue_email, sealed_email, sealed_messages, QueueEmailError};
use crate::domain::confirmation::{self, Binding};
use crate::domain::{time, EmailKind, MailJob, Portal, TenantId};
use crate::mail::templates::TemplateVars;
use crate::store::items::{AuditItem, ConfirmationItem};
use crate::domain::id_token::{self, IdTokenError, Vouched};
use crate::store::{CodeOwner, ConfirmationStart, NewAccount};
use std::collections::BTreeMap;
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
    /// The confirmation was stored but its email could not be queued.
    #[error("the confirmation email could not be sent just now; try again")]
    EmailNotQueued(#[source] QueueEmailError),
    /// The portal's identity provider's keys could not be fetched to check an `id_token`.
    #[error("the portal's identity provider could not be reached to check the id_token; try again")]
    ProviderUnavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a claim that went through ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The account is bound (201).
    Bound(Claimed),
    /// A one-time confirmation link was emailed to the typed address (202).
    ConfirmationSent,
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
    /// Only a code of this portal (of whichever tenant: the API's `portal_id`).
    Only(PortalId),
    /// Only a code of this tenant's portal: a branded page (`?tenant=…&portal=…`).
    OfTenant(TenantId, PortalId),
    /// The claim named something that is no portal id: no code matches.
    NoneMatches,
}

impl ClaimPortal {
    fn admits(&self, tenant: &TenantId, portal: &PortalId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(p) => p == portal,
            Self::OfTenant(t, p) => t == tenant && p == portal,
            Self::NoneMatches => false,
        }
    }
}

/// A claim as the person made it.
pub struct ClaimAttempt<'a> {
    /// The code or the link's token, as typed (it may be malformed).
    pub secret: &'a str,
    pub method: Method,
    /// The address typed; with an `id_token`, the token's must be the same if given.
    pub email: Option<&'a EmailAddress>,
    /// An ID token of the portal's identity provider vouching for the address (`domain::id_token`).
    pub id_token: Option<&'a str>,
    /// The portal the claim page belongs to, if it says.
    pub portal: &'a ClaimPortal,
    /// The hashed source address ([`crate::domain::guard::throttle_address`]), throttled.
    pub address: &'a CodeHash,
    /// The facts of the record as typed (normalised and hashed here).
    pub facts: &'a BTreeMap<Fact, String>,
    /// The browser's `User-Agent`, for the audit (cut to 256 characters).
    pub user_agent: Option<&'a str>,
    /// The language of the page the claim came from: the confirmation email's (`domain::locale`).
    pub locale: Option<crate::domain::Locale>,
}

impl ClaimAttempt<'_> {
    /// The audit record of this claim of `owner`'s code, with more detail
    /// (`reason`, `identity_subject`, `fact_try`, …).
    fn audit_with(&self, owner: &CodeOwner, action: &str, now: chrono::DateTime<chrono::Utc>, more: &[(&str, String)]) -> AuditItem {
        let mut detail = BTreeMap::from([
            ("method".to_owned(), self.method.as_str().to_owned()),
            ("source_address_hash".to_owned(), self.address.as_str().to_owned()),
        ]);
        if let Some(email) = self.email {
            detail.insert("account_email".to_owned(), email.to_string());
        }
        if self.id_token.is_some() {
            detail.insert("id_token".to_owned(), "given".to_owned());
        }
        for (k, v) in more {
            detail.insert((*k).to_owned(), v.clone());
        }
        if let Some(agent) = self.user_agent {
            detail.insert("user_agent".to_owned(), agent.chars().take(256).collect());
        }
        AuditItem::contact(&owner.tenant_id, &owner.contact_id, Some(&owner.portal_id), CLAIMANT, action, now, detail)
    }
}

/// The actor of claims in the audit: the person at the claim page, not staff.
pub const CLAIMANT: &str = "claimant";

/// Claims a code or token: binds at once when the person has shown they
/// read the address (`domain::confirmation`), otherwise emails a confirmation.
pub async fn claim(app: &App, attempt: ClaimAttempt<'_>) -> Result<ClaimOutcome, ClaimError> {
    let mut seen = Seen::default();
    let result = try_claim(app, &attempt, &mut seen).await;
    match &result {
        // Counts against the address like a refusal: confirmations cannot mail-bomb.
        Ok(ClaimOutcome::ConfirmationSent) => {
            crate::metrics::emf::count("ClaimConfirmationsSent", &[("PortalId", seen.portal.as_ref().map_or("none", |p| p.as_str()))]);
        }
        Ok(ClaimOutcome::Bound(c)) => {
            crate::metrics::emf::count("ClaimsSucceeded", &[("PortalId", c.portal_id.as_str())]);
            if let Some(counted) = seen.window {
                // Forgiving must not turn a claim into a 5xx; the log shows it.
                if let Err(e) = app.store.forgive_claim(attempt.address, counted).await {
                    tracing::error!(error = ?e, "could not forgive a claim");
                }
            }
        }
        Err(ClaimError::Rejected) => {
            crate::metrics::emf::count("ClaimsFailed", &[("PortalId", seen.portal.as_ref().map_or("none", |p| p.as_str()))]);
        }
        Err(_) => {}
    }
    result
}

/// What a claim attempt learnt on the way, for the metric and the counter.
#[derive(Default)]
struct Seen {
    portal: Option<PortalId>,
    /// The address's window with this claim counted in it.
    window: Option<FailureWindow>,
}

async fn try_claim(app: &App, attempt: &ClaimAttempt<'_>, seen: &mut Seen) -> Result<ClaimOutcome, ClaimError> {
    let secret = attempt.secret;
    // Hash whatever was given, well-formed or not, so every answer costs the same
    // lookups: under the current key, then (after a rotation) the previous one.
    let keys = app.keys.get().await?;
    let hashes: Vec<CodeHash> = keys
        .all()
        .map(|key| match attempt.method {
            Method::Code => match PickupCode::parse(secret) {
                Ok(code) => key.hasher.hash(&code),
                Err(_) => key.hasher.hash_secret(secret.as_bytes()),
            },
            Method::Link => match LinkToken::parse(secret) {
                Ok(token) => token.hash(&key.hasher),
                Err(_) => key.hasher.hash_secret(format!("link:{secret}").as_bytes()),
            },
        })
        .collect();
    let now = (app.clock)();
    // Counted before it is judged: of parallel claims, each sees its own count.
    let (found, counted) = tokio::join!(find_code_under(app, &hashes), app.store.count_claim(attempt.address, now));
    let (hash, owner) = match found {
        Ok((hash, owner)) => (hash, Ok(owner)),
        Err(e) => (hashes[0].clone(), Err(e)),
    };
    let hash = &hash;
    let counted = counted?;
    if let ClaimVerdict::Refuse { retry_after_secs } = claim_verdict(counted, now) {
        return Err(ClaimError::RateLimited { retry_after_secs });
    }
    seen.window = Some(counted);
    let owner = owner?.ok_or(ClaimError::Rejected)?;
    seen.portal = Some(owner.portal_id.clone());
    let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).ok_or(ClaimError::Rejected)?;
    let portal_matches = attempt.portal.admits(&owner.tenant_id, &owner.portal_id);
    if !portal_matches || owner.method != attempt.method {
        return Err(ClaimError::Rejected);
    }
    let transition = invitation::claim(owner.state, expires_at, now).map_err(|_| ClaimError::Rejected)?;
    let owner = &owner;
    let Checked { portal, fact_try } = check_facts(app, attempt, hash, owner, expires_at, now).await?;
    // Which try at the facts this was, in the audit of what it did.
    let tried = fact_try.map(|n| ("fact_try", n.to_string()));
    let tried = tried.as_slice();
    if let Some(token) = attempt.id_token {
        // The provider vouches for the address: bound at once, to the token's email.
        let vouched = match vouch(app, &portal, token, now).await? {
            Ok(v) if attempt.email.is_none_or(|typed| *typed == v.email) => v,
            Ok(_) => return Err(refuse(app, attempt, owner, "id_token_email_mismatch", now).await),
            Err(reason) => return Err(refuse(app, attempt, owner, reason, now).await),
        };
        let account = NewAccount { email: vouched.email.clone(), subject: Some(vouched.subject.clone()) };
        let mut more = vec![
            ("account_email", vouched.email.to_string()),
            ("verified_by", "id_token".to_owned()),
            ("identity_subject", vouched.subject.clone()),
        ];
        more.extend_from_slice(tried);
        let audit = attempt.audit_with(owner, "claimed", now, &more);
        bind(app, hash, owner, transition, &account, &audit, None, now).await?;
        notify_account_added(app, owner, &portal, &vouched.email, now).await;
        return Ok(ClaimOutcome::Bound(Claimed { contact_id: owner.contact_id.clone(), portal_id: owner.portal_id.clone(), email: vouched.email }));
    }
    let email = attempt.email.ok_or(ClaimError::Rejected)?;
    match confirmation::binding(owner.method, owner.sent_to.as_ref(), email) {
        Binding::Now => {
            let account = NewAccount { email: email.clone(), subject: None };
            bind(app, hash, owner, transition, &account, &attempt.audit_with(owner, "claimed", now, tried), None, now).await?;
            notify_account_added(app, owner, &portal, email, now).await;
            Ok(ClaimOutcome::Bound(Claimed { contact_id: owner.contact_id.clone(), portal_id: owner.portal_id.clone(), email: email.clone() }))
        }
        Binding::Confirm => {
            send_confirmation(app, attempt, email, hash, owner, &portal, tried, now).await?;
            Ok(ClaimOutcome::ConfirmationSent)
        }
    }
}

/// Checks an `id_token` against the portal's identity provider: `Ok(Err(reason))`
/// when it vouches for nothing (no provider, a bad token), `Err` when the
/// provider's keys cannot be fetched. An unknown `kid` refreshes the keys once.
async fn vouch(app: &App, portal: &Portal, token: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Result<Vouched, &'static str>, ClaimError> {
    let Some(provider) = &portal.identity else {
        return Ok(Err("id_token_not_accepted"));
    };
    let keys = app.identity_keys.get(&provider.jwks_url).await.map_err(ClaimError::ProviderUnavailable)?;
    let verdict = match id_token::verify(token, provider, &keys, now) {
        Err(IdTokenError::UnknownKey) => match app.identity_keys.refresh(&provider.jwks_url).await.map_err(ClaimError::ProviderUnavailable)? {
            Some(fresh) => id_token::verify(token, provider, &fresh, now),
            None => Err(IdTokenError::UnknownKey),
        },
        verdict => verdict,
    };
    Ok(verdict.map_err(|e| {
        tracing::info!(portal = %portal.portal_id, reason = %e, "id_token refused");
        e.reason()
    }))
}

/// Audits a refused claim (`claim_refused` with its reason) and answers [`ClaimError::Rejected`].
async fn refuse(app: &App, attempt: &ClaimAttempt<'_>, owner: &CodeOwner, reason: &str, now: chrono::DateTime<chrono::Utc>) -> ClaimError {
    match app.store.put_audit(&attempt.audit_with(owner, "claim_refused", now, &[("reason", reason.to_owned())])).await {
        Ok(()) => ClaimError::Rejected,
        Err(e) => e.into(),
    }
}

/// The claim's one transaction (exactly once: of concurrent claims of one
/// code, one wins). Another claim of the same code in flight: try again
/// shortly; the transaction's conditions decide which claim wins.
#[allow(clippy::too_many_arguments)]
async fn bind(
    app: &App,
    hash: &CodeHash,
    owner: &CodeOwner,
    transition: invitation::Transition,
    account: &NewAccount,
    audit: &AuditItem,
    confirmation: Option<&CodeHash>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ClaimError> {
    retry(CONTENTION, |_: TxError| ClaimError::Rejected, |_| async move {
        match app.store.claim_code(hash, owner, transition, account, audit, confirmation, now).await {
            Ok(()) => Attempt::Done(()),
            Err(e) if e.is_contention() => Attempt::Again(e),
            Err(TxError::Cancelled(_)) => Attempt::Stop(ClaimError::Rejected),
            Err(TxError::Unexpected(e)) => Attempt::Stop(e.into()),
        }
    })
    .await?;
    tracing::info!(tenant = %owner.tenant_id, portal = %owner.portal_id, "code claimed");
    Ok(())
}

/// What a link's page may say of its token, read without changing anything
/// (GET never consumes: a mail scanner following the link changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    /// Claimable now.
    Open,
    /// Claimed already.
    Used,
    Expired,
    /// Replaced by a newer link, or revoked by staff.
    Replaced,
    /// Locked after wrong facts.
    Locked,
    /// No link has this token.
    Unknown,
}

/// The code or link stored under one of `hashes` (current key first), and that hash.
async fn find_code_under(app: &App, hashes: &[CodeHash]) -> anyhow::Result<(CodeHash, Option<crate::store::CodeOwner>)> {
    for hash in hashes {
        if let Some(owner) = app.store.find_code(hash).await? {
            return Ok((hash.clone(), Some(owner)));
        }
    }
    Ok((hashes[0].clone(), None))
}

/// A link token's owner, under the current or the previous key.
pub(super) async fn find_link(app: &App, token: &LinkToken) -> anyhow::Result<Option<crate::store::CodeOwner>> {
    Ok(find_link_hashed(app, token).await?.map(|(_, owner)| owner))
}

/// The link's owner and the hash it is stored under.
pub(super) async fn find_link_hashed(app: &App, token: &LinkToken) -> anyhow::Result<Option<(CodeHash, crate::store::CodeOwner)>> {
    let keys = app.keys.get().await?;
    let hashes: Vec<CodeHash> = keys.all().map(|k| token.hash(&k.hasher)).collect();
    let (hash, owner) = find_code_under(app, &hashes).await?;
    Ok(owner.map(|o| (hash, o)))
}

/// The link's status and, when it is one, whose it is (tenant and portal).
pub async fn link_status(app: &App, raw_token: &str) -> anyhow::Result<(LinkStatus, Option<(crate::domain::TenantId, PortalId)>)> {
    let Ok(token) = LinkToken::parse(raw_token) else {
        return Ok((LinkStatus::Unknown, None));
    };
    let Some(owner) = find_link(app, &token).await? else {
        return Ok((LinkStatus::Unknown, None));
    };
    if owner.method != Method::Link {
        return Ok((LinkStatus::Unknown, None));
    }
    let now = (app.clock)();
    let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).unwrap_or(now);
    let status = match (owner.state, invitation::claim(owner.state, expires_at, now)) {
        (_, Ok(_)) => LinkStatus::Open,
        (InvitationState::Claimed, _) => LinkStatus::Used,
        (InvitationState::Revoked, _) => LinkStatus::Replaced,
        (InvitationState::Locked, _) => LinkStatus::Locked,
        _ => LinkStatus::Expired,
    };
    Ok((status, Some((owner.tenant_id, owner.portal_id))))
}

/// An open confirmation: the address it binds and whose it is; `None` when
/// the token is unknown, expired, voided or used. Reads only.
pub async fn open_confirmation(app: &App, raw_token: &str) -> anyhow::Result<Option<ConfirmationItem>> {
    let Ok(token) = LinkToken::parse(raw_token) else {
        return Ok(None);
    };
    let found = find_confirmation(app, &token).await?;
    Ok(found.map(|(_, c)| c).filter(|c| confirmation::is_open(c.expires_at_ms, (app.clock)())))
}

/// The key a confirmation token is stored under, with one version of the hash key.
fn confirmation_hash(key: &HashKey, token: &LinkToken) -> CodeHash {
    key.hasher.hash_secret(format!("confirm:{}", token.expose()).as_bytes())
}

/// The confirmation stored for `token` under the current or the previous key, and its hash.
async fn find_confirmation(app: &App, token: &LinkToken) -> anyhow::Result<Option<(CodeHash, ConfirmationItem)>> {
    let keys = app.keys.get().await?;
    for key in keys.all() {
        let hash = confirmation_hash(key, token);
        if let Some(found) = app.store.find_confirmation(&hash).await? {
            return Ok(Some((hash, found)));
        }
    }
    Ok(None)
}

/// Emails a one-time confirmation link to the typed address, voiding the
/// code's oldest outstanding one past [`confirmation::MAX_OUTSTANDING`].
#[allow(clippy::too_many_arguments)]
async fn send_confirmation(
    app: &App,
    attempt: &ClaimAttempt<'_>,
    email: &EmailAddress,
    hash: &CodeHash,
    owner: &CodeOwner,
    portal: &Portal,
    more: &[(&str, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ClaimError> {
    let token = LinkToken::generate();
    let keys = app.keys.get().await?;
    let token_hash = confirmation_hash(&keys.current, &token);
    let (outstanding, voided) = confirmation::outstanding_after(&owner.confirmations, token_hash.clone());
    let expires_at = now + confirmation::VALID_FOR;
    let item = owner.confirmation(&token_hash, hash, email.clone(), now, expires_at);
    // Nothing of the chart goes to an address nobody has confirmed yet.
    let vars = TemplateVars {
        contact_name: String::new(),
        portal_name: portal.name.clone(),
        tenant_name: app.tenant_name(&owner.tenant_id).await,
        code: Default::default(),
        // The hosted confirmation page in the claim page's language.
        link: app.confirm_link(&owner.tenant_id, portal, token.expose(), attempt.locale.as_ref()).into(),
        claim_url: app.claim_url(&owner.tenant_id, portal),
        expires_at: time::format(&expires_at),
        account_email: String::new(),
    };
    // In the language of the page the claim came from, else the portal's.
    let email = sealed_email(&keys.current.sealer, &owner.tenant_id, &owner.contact_id, &owner.portal_id, EmailKind::ClaimConfirmation, email.clone(), &vars, now)
        .in_language(attempt.locale.as_ref(), &portal.default_locale);
    let document_id = email.document_id.clone();
    let start = ConfirmationStart { item, outstanding, voided, email, audit: attempt.audit_with(owner, "claim_confirmation_sent", now, more) };
    let start = &start;
    retry(CONTENTION, |_: TxError| ClaimError::Rejected, |_| async move {
        match app.store.start_confirmation(hash, owner, start).await {
            Ok(()) => Attempt::Done(()),
            Err(e) if e.is_contention() => Attempt::Again(e),
            // Claimed, locked or revoked meanwhile, or another confirmation went first.
            Err(TxError::Cancelled(_)) => Attempt::Stop(ClaimError::Rejected),
            Err(TxError::Unexpected(e)) => Attempt::Stop(e.into()),
        }
    })
    .await?;
    let job = MailJob { tenant_id: owner.tenant_id.clone(), contact_id: owner.contact_id.clone(), document_id };
    queue_email(app, job).await.map_err(ClaimError::EmailNotQueued)?;
    tracing::info!(tenant = %owner.tenant_id, portal = %owner.portal_id, "claim confirmation sent");
    Ok(())
}

/// Completes a claim by its emailed confirmation (`POST /v1/claim/confirm`):
/// the claim's own transaction, which also uses the confirmation up. An
/// unknown, expired, voided or used confirmation, or a code claimed, locked
/// or revoked meanwhile, is [`ClaimError::Rejected`].
/// `address` (the keyed hash of the source address) and `user_agent` go to the audit.
pub async fn confirm(app: &App, raw_token: &str, address: Option<&CodeHash>, user_agent: Option<&str>) -> Result<Claimed, ClaimError> {
    let token = LinkToken::parse(raw_token).map_err(|_| ClaimError::Rejected)?;
    let (token_hash, confirmation) = find_confirmation(app, &token).await?.ok_or(ClaimError::Rejected)?;
    let now = (app.clock)();
    if !confirmation::is_open(confirmation.expires_at_ms, now) {
        return Err(ClaimError::Rejected);
    }
    let owner = app.store.find_code(&confirmation.code_hash).await?.ok_or(ClaimError::Rejected)?;
    // A voided confirmation is deleted; this is the belt to those braces.
    if !owner.confirmations.contains(&token_hash) || owner.contact_id != confirmation.contact_id {
        return Err(ClaimError::Rejected);
    }
    let expires_at = DateTime::from_timestamp_millis(owner.expires_at_ms).ok_or(ClaimError::Rejected)?;
    let transition = invitation::claim(owner.state, expires_at, now).map_err(|_| ClaimError::Rejected)?;
    let mut detail = BTreeMap::from([
        ("method".to_owned(), owner.method.as_str().to_owned()),
        ("account_email".to_owned(), confirmation.email.to_string()),
        ("confirmed_by_email".to_owned(), "true".to_owned()),
    ]);
    if let Some(address) = address {
        detail.insert("source_address_hash".to_owned(), address.as_str().to_owned());
    }
    if let Some(agent) = user_agent {
        detail.insert("user_agent".to_owned(), agent.chars().take(256).collect());
    }
    let audit = AuditItem::contact(&owner.tenant_id, &owner.contact_id, Some(&owner.portal_id), CLAIMANT, "claimed", now, detail);
    let account = NewAccount { email: confirmation.email.clone(), subject: None };
    let result = bind(app, &confirmation.code_hash, &owner, transition, &account, &audit, Some(&token_hash), now).await;
    match &result {
        Ok(()) => crate::metrics::emf::count("ClaimsSucceeded", &[("PortalId", owner.portal_id.as_str())]),
        Err(_) => crate::metrics::emf::count("ClaimsFailed", &[("PortalId", owner.portal_id.as_str())]),
    }
    result?;
    if let Some(portal) = app.portals.get(&app.store, &owner.tenant_id).await?.iter().find(|p| p.portal_id == owner.portal_id) {
        notify_account_added(app, &owner, portal, &confirmation.email, now).await;
    }
    Ok(Claimed { contact_id: owner.contact_id, portal_id: owner.portal_id, email: confirmation.email })
}

/// When an account was bound to an address other than the contact's email
/// of record, that address gets a notice (`account_added`). The claim is
/// done by then: a notice that cannot be stored or queued is logged, and
/// the claim still answers as bound.
async fn notify_account_added(app: &App, owner: &CodeOwner, portal: &Portal, bound: &EmailAddress, now: chrono::DateTime<chrono::Utc>) {
    let result: anyhow::Result<()> = async {
        let Some(contact) = app.store.get_contact(&owner.tenant_id, &owner.contact_id).await? else { return Ok(()) };
        // The contact's address of record (if it is not the one bound) and phone, by the portal's channels.
        let to: Vec<_> = portal
            .reach(&contact, EmailKind::AccountAdded)
            .recipients
            .into_iter()
            .filter(|r| r.email() != Some(bound))
            .collect();
        if to.is_empty() {
            return Ok(());
        }
        let vars = TemplateVars {
            contact_name: contact.name.clone(),
            portal_name: portal.name.clone(),
            tenant_name: app.tenant_name(&owner.tenant_id).await,
            claim_url: app.claim_url_for(&owner.tenant_id, portal, contact.locale.as_ref()),
            account_email: bound.to_string(),
            ..Default::default()
        };
        let keys = app.keys.get().await?;
        let messages = sealed_messages(&keys.current.sealer, &owner.tenant_id, &contact, portal, EmailKind::AccountAdded, to, &vars, now);
        for message in &messages {
            app.store.put_email(message).await?;
        }
        let job = MailJob { tenant_id: owner.tenant_id.clone(), contact_id: owner.contact_id.clone(), document_id: messages[0].document_id.clone() };
        queue_email(app, job).await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = ?e, "could not send the account-added notice");
    }
}

/// A claim's portal, after its checks of the facts of the record passed.
struct Checked {
    portal: Portal,
    /// The try at the code's facts this claim took, when the portal checks any.
    fact_try: Option<u32>,
}

/// The portal's checks of the facts of the record: `Ok` when it has none or
/// every one matches. Before anything is compared the claim takes a numbered
/// try from the code's counter ([`invitation::fact_try`]); a try past the
/// judged ones is refused unjudged. A wrong or unjudged try is audited
/// (`claim_refused`, with its number), the one that uses the tries up locks
/// the code ([`invitation::fact_lock`], `code_locked`), and the claim is
/// [`ClaimError::Rejected`].
async fn check_facts(
    app: &App,
    attempt: &ClaimAttempt<'_>,
    hash: &CodeHash,
    owner: &CodeOwner,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Checked, ClaimError> {
    let (tenant, contact_id) = (&owner.tenant_id, &owner.contact_id);
    let portals = app.portals.get(&app.store, tenant).await?;
    let Some(portal) = portals.iter().find(|p| p.portal_id == owner.portal_id) else {
        return Err(ClaimError::Rejected);
    };
    if portal.claim_checks.is_empty() {
        return Ok(Checked { portal: portal.clone(), fact_try: None });
    }
    // Counted before it is judged: of parallel guesses, each holds its own
    // number, and only the first few are compared (a code no longer pending takes none).
    let Some(n) = app.store.take_fact_try(hash).await? else {
        return Err(ClaimError::Rejected);
    };
    let (contact, access) = app.store.get_contact_with_access(tenant, contact_id).await?.ok_or(ClaimError::Rejected)?;
    let judged = invitation::fact_try(n) == invitation::FactTry::Judge;
    let right = judged && {
        // What was typed, hashed under each key held: each fact on record is
        // compared under the version that hashed it (`domain::keyring`).
        let keys = app.keys.get().await?;
        let given: Vec<(&str, FactHashes)> = keys
            .all()
            .map(|key| {
                let hasher = FactHasher(&key.hasher);
                let hashes = attempt
                    .facts
                    .iter()
                    .filter_map(|(fact, raw)| identity::normalise(*fact, raw).ok().map(|normal| (*fact, hasher.hash(tenant, contact_id, *fact, &normal))))
                    .collect();
                (key.version.as_str(), hashes)
            })
            .collect();
        identity::matches_under(&portal.claim_checks, &contact.facts, &contact.fact_key_versions, &given)
    };
    if right {
        return Ok(Checked { portal: portal.clone(), fact_try: Some(n) });
    }
    let reason = if judged { "wrong_facts" } else { "fact_tries_used_up" };
    let detail = [("fact_try", n.to_string()), ("reason", reason.to_owned())];
    let refused = attempt.audit_with(owner, "claim_refused", now, &detail);
    match invitation::fact_lock(InvitationState::Pending, n, right) {
        Some(lock) => {
            let named = invitation::still_names(access.get(owner.portal_id.as_str()), expires_at);
            match app.store.lock_code(hash, owner, lock, named, &attempt.audit_with(owner, "code_locked", now, &detail), now).await {
                Ok(()) => {
                    tracing::warn!(tenant = %tenant, portal = %owner.portal_id, "code locked after its tries at the facts");
                    crate::metrics::emf::count("CodesLocked", &[("PortalId", owner.portal_id.as_str())]);
                }
                // A parallel try locked it first, or it was claimed or revoked meanwhile.
                Err(TxError::Cancelled(_)) => app.store.put_audit(&refused).await?,
                Err(TxError::Unexpected(e)) => return Err(e.into()),
            }
        }
        None => app.store.put_audit(&refused).await?,
    }
    Err(ClaimError::Rejected)
}

/// Tries of a claim that meets a concurrent claim of the same code.
const CONTENTION: Policy = Policy::backoff(5, Duration::from_millis(10), Duration::from_millis(80));
