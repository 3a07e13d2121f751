//! Deactivation (seed 002): every account of the contact on the portal loses
//! access at once, pending codes and links are revoked, the state becomes
//! `disabled` and one notice is emailed, whatever the number of accounts and
//! codes. Repeating a finished deactivation changes nothing and sends nothing.
//!
//! # In chunks, all or nothing in effect
//!
//! Each account costs two items of a transaction (its row gets `disabled_at`,
//! its access grant is deleted) and so does each pending code (its row and
//! its lookup go to `revoked`); a DynamoDB transaction holds at most 100
//! items. So a deactivation is a run of transactions:
//!
//! 1. **The switch** ([`Store::deactivate`]): the contact's state on the
//!    portal becomes `disabled` (only if it is still what was read), the
//!    audit entry and the notice's email log entry are written, and as many
//!    codes and then accounts as fit beside them ([`Deactivation::room`]: 48
//!    with a notice, 49 without). A contact with up to 48 accounts and codes
//!    is deactivated by this one transaction alone, as before. The notice's
//!    job is queued right after it.
//! 2. **The rest** ([`Store::end_access`]), 49 accounts or codes a
//!    transaction, codes first, each only while the state is still
//!    `disabled`.
//!
//! Access ends with the switch, not with the last chunk: the login check
//! ([`Store::access_of`]) answers no grant of a contact that is `disabled` on
//! the grant's portal, and a claim cannot make the contact active again while
//! it is `disabled` (the claim's transaction requires it not to be, so a claim
//! of a code the chunks have not revoked yet is refused like a revoked one).
//!
//! If a call stops between chunks (a crash, a timeout, DynamoDB failing), the
//! contact is `disabled` with some accounts and codes left. Any later
//! deactivate of it (a retry, or staff pressing it again) reads what is left
//! and finishes it, writing no second audit entry and sending no second
//! notice; a finished one has nothing left and writes nothing. Enabling the
//! contact again (activate, resend, generate, bulk activation: every path
//! that issues from `disabled`, [`finish_before_enabling`]) finishes what is
//! left first, so no account of the old access survives into the new one.
//!
//! # Bounds
//!
//! One call writes at most [`MAX_TRANSACTIONS_PER_CALL`] transactions
//! (≈ 48 + 40 · 49 = 2,008 accounts and codes) and starts no chunk after
//! [`TIME_BUDGET`], inside the function's 10 s timeout. A bigger contact is
//! disabled at once all the same, and the answer says `"complete": false`:
//! deactivate again to end the rest (each call continues where the last
//! stopped).

use super::outbox::{queue_email, Actor, QueueEmailError};
use crate::app::App;
use crate::domain::{invitation, CodeHash, ContactId, DocumentId, EmailAddress, EmailKind, MailJob, Portal, PortalId, PortalState, TenantId};
use crate::mail::templates::TemplateVars;
use crate::retry::{retry, Attempt, Policy};
use crate::store::{items::AuditItem, items::EmailItem, ContactPartition, Deactivation, EndAccess, TxError, TxItem};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Transactions one call writes at most, the switch included.
pub const MAX_TRANSACTIONS_PER_CALL: usize = 41;
/// No chunk is started after this much of a call (the function times out at 10 s;
/// one transaction's operation timeout is 5 s, so the last one still fits).
pub const TIME_BUDGET: Duration = Duration::from_secs(4);
/// Cancelled chunks in a row (a code that left `pending` meanwhile, a
/// concurrent deactivation's chunk) before giving up; each is read again.
const CHUNK_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DeactivateError {
    #[error("contact not found")]
    ContactNotFound,
    #[error("the contact changed repeatedly meanwhile; try again")]
    KeptChanging(#[source] TxError),
    #[error(transparent)]
    EmailNotQueued(#[from] QueueEmailError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What deactivating did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The notice emailed; `None` when it was already disabled or the contact has no address.
    pub email_document_id: Option<DocumentId>,
    /// Accounts this call disabled.
    pub accounts_disabled: usize,
    /// Nothing is left to end; `false` only past [`MAX_TRANSACTIONS_PER_CALL`] or [`TIME_BUDGET`].
    pub complete: bool,
    /// Transactions this call wrote.
    pub transactions: usize,
}

/// What is left to end on a portal: pending codes and links, and accounts that still have access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    pub codes: Vec<CodeHash>,
    pub accounts: Vec<EmailAddress>,
}

impl Work {
    /// What of `partition` a deactivation on `portal` ends.
    pub fn of(partition: &ContactPartition, portal: &PortalId) -> Self {
        Self {
            codes: partition
                .codes
                .iter()
                .filter(|c| c.portal_id == *portal && invitation::revoke(c.state).is_some())
                .map(|c| c.hash.clone())
                .collect(),
            accounts: partition
                .accounts
                .iter()
                .filter(|a| a.portal_id == *portal && a.disabled_at.is_none())
                .map(|a| a.email.clone())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty() && self.accounts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.codes.len() + self.accounts.len()
    }

    /// Takes up to `room` of it, codes first (so no claim is left a code to try).
    pub fn take(&mut self, room: usize) -> Work {
        let codes: Vec<_> = self.codes.drain(..room.min(self.codes.len())).collect();
        let left = room - codes.len();
        let accounts = self.accounts.drain(..left.min(self.accounts.len())).collect();
        Work { codes, accounts }
    }
}

/// The switch's outcome: the notice, what it ended, what is left.
struct Switched {
    email_document_id: Option<DocumentId>,
    accounts_disabled: usize,
    /// Whether this call wrote the switch (else the contact was disabled already).
    wrote: bool,
    rest: Work,
    now: DateTime<Utc>,
}

pub async fn deactivate(app: &App, actor: Actor<'_>, contact_id: &ContactId, portal: &Portal) -> Result<Deactivated, DeactivateError> {
    let started = Instant::now();
    // The state changed between our read and the write: read again.
    let switched = retry(Policy::immediate(3), DeactivateError::KeptChanging, |attempt| async move {
        match switch_once(app, actor, contact_id, portal).await {
            Ok(done) => Attempt::Done(done),
            Err(Ok(cancelled)) => {
                tracing::info!(attempt, error = %cancelled, "deactivation raced a change");
                Attempt::Again(cancelled)
            }
            Err(Err(e)) => Attempt::Stop(e),
        }
    })
    .await?;
    // Access has ended already: the notice goes out now, whatever happens to the chunks.
    let queued = match &switched.email_document_id {
        Some(doc) => queue_email(app, MailJob { tenant_id: actor.tenant.clone(), contact_id: contact_id.clone(), document_id: doc.clone() }).await,
        None => Ok(()),
    };
    let target = Target { tenant: actor.tenant, contact_id, portal_id: &portal.portal_id, now: switched.now };
    let finished = finish(app, &target, switched.rest, usize::from(switched.wrote), started).await?;
    queued?;
    let done = Deactivated {
        email_document_id: switched.email_document_id,
        accounts_disabled: switched.accounts_disabled + finished.accounts_disabled,
        complete: finished.complete,
        transactions: finished.transactions,
    };
    if done.transactions > 0 {
        tracing::info!(
            tenant = %actor.tenant,
            portal = %portal.portal_id,
            accounts = done.accounts_disabled,
            transactions = done.transactions,
            complete = done.complete,
            finishing = !switched.wrote,
            "access deactivated"
        );
    }
    Ok(done)
}

/// One read–write of the switch; `Err(Ok(_))` is a cancelled transaction
/// (nothing written). An already disabled contact writes nothing here and
/// answers what is left of it.
async fn switch_once(
    app: &App,
    actor: Actor<'_>,
    contact_id: &ContactId,
    portal: &Portal,
) -> Result<Switched, Result<TxError, DeactivateError>> {
    let tenant = actor.tenant;
    let partition = app
        .store
        .contact_partition(tenant, contact_id)
        .await
        .map_err(|e| Err(e.into()))?
        .ok_or(Err(DeactivateError::ContactNotFound))?;
    let now = (app.clock)();
    let seen = partition.access.get(portal.portal_id.as_str()).cloned();
    let previous = invitation::contact_state(seen.as_ref(), now);
    let mut rest = Work::of(&partition, &portal.portal_id);
    if previous == PortalState::Disabled {
        return Ok(Switched { email_document_id: None, accounts_disabled: 0, wrote: false, rest, now });
    }
    let contact = &partition.contact;
    let tenant_name = app.tenant_name(tenant).await;
    // The notice goes by every channel the contact can be reached by; none: no notice (the switch still happens).
    let to = portal.reach(contact, EmailKind::Deactivation).recipients;
    let vars = TemplateVars {
        contact_name: contact.name.clone(),
        portal_name: portal.name.clone(),
        tenant_name: tenant_name.clone(),
        claim_url: app.claim_url_for(tenant, portal, contact.locale.as_ref()),
        ..Default::default()
    };
    let messages = EmailItem::one_send(
        to.into_iter()
            .map(|to| EmailItem::queued(tenant, contact_id, &portal.portal_id, EmailKind::Deactivation, to, vars.to_map(), now).in_language(contact.locale.as_ref(), &portal.default_locale))
            .collect(),
    );
    let detail = BTreeMap::from([
        ("previous_state".to_owned(), previous.as_str().to_owned()),
        ("accounts_disabled".to_owned(), rest.accounts.len().to_string()),
    ]);
    let first = rest.take(Deactivation::room(messages.len()));
    let d = Deactivation {
        tenant_id: tenant.clone(),
        contact_id: contact_id.clone(),
        portal_id: portal.portal_id.clone(),
        seen,
        accounts: first.accounts,
        revoke: first.codes,
        messages,
        audit: AuditItem::contact(tenant, contact_id, Some(&portal.portal_id), actor.name, "deactivate", now, detail),
        now,
    };
    match app.store.deactivate(&d).await {
        Ok(()) => Ok(Switched {
            email_document_id: d.messages.first().map(|e| e.document_id.clone()),
            accounts_disabled: d.accounts.len(),
            wrote: true,
            rest,
            now,
        }),
        Err(e @ TxError::Cancelled(_)) => Err(Ok(e)),
        Err(TxError::Unexpected(e)) => Err(Err(e.into())),
    }
}

/// Whose deactivation is being finished.
struct Target<'a> {
    tenant: &'a TenantId,
    contact_id: &'a ContactId,
    portal_id: &'a PortalId,
    now: DateTime<Utc>,
}

/// What finishing did.
struct Finished {
    accounts_disabled: usize,
    complete: bool,
    transactions: usize,
}

/// Ends `rest` in [`EndAccess`] transactions, within the call's bounds.
async fn finish(app: &App, target: &Target<'_>, mut rest: Work, mut transactions: usize, started: Instant) -> Result<Finished, DeactivateError> {
    let mut accounts_disabled = 0;
    let mut cancelled = 0;
    loop {
        if rest.is_empty() {
            return Ok(Finished { accounts_disabled, complete: true, transactions });
        }
        if transactions >= MAX_TRANSACTIONS_PER_CALL || started.elapsed() >= TIME_BUDGET {
            tracing::warn!(left = rest.len(), transactions, "deactivation left unfinished by this call; the next one continues");
            return Ok(Finished { accounts_disabled, complete: false, transactions });
        }
        let chunk = rest.take(EndAccess::ROOM);
        let end = EndAccess {
            tenant_id: target.tenant.clone(),
            contact_id: target.contact_id.clone(),
            portal_id: target.portal_id.clone(),
            accounts: chunk.accounts,
            revoke: chunk.codes,
            now: target.now,
        };
        transactions += 1;
        match app.store.end_access(&end).await {
            Ok(()) => {
                accounts_disabled += end.accounts.len();
                cancelled = 0;
            }
            // Enabled again meanwhile: whoever enabled it finished this first.
            Err(e) if e.condition_failed(TxItem::Contact) => {
                tracing::info!("the contact was enabled again while its deactivation was being finished");
                return Ok(Finished { accounts_disabled, complete: true, transactions });
            }
            Err(e @ TxError::Cancelled(_)) => {
                cancelled += 1;
                if cancelled >= CHUNK_TRIES {
                    return Err(DeactivateError::KeptChanging(e));
                }
                tracing::info!(error = %e, "a deactivation chunk raced a change; reading what is left again");
                match left(app, target.tenant, target.contact_id, target.portal_id).await? {
                    Some(work) => rest = work,
                    None => return Ok(Finished { accounts_disabled, complete: true, transactions }),
                }
            }
            Err(TxError::Unexpected(e)) => return Err(e.into()),
        }
    }
}

/// What is left of a deactivation: `None` when the contact is gone or no longer `disabled`.
async fn left(app: &App, tenant: &TenantId, contact_id: &ContactId, portal_id: &PortalId) -> anyhow::Result<Option<Work>> {
    let Some(partition) = app.store.contact_partition(tenant, contact_id).await? else { return Ok(None) };
    let state = invitation::contact_state(partition.access.get(portal_id.as_str()), (app.clock)());
    Ok((state == PortalState::Disabled).then(|| Work::of(&partition, portal_id)))
}

/// Why a contact could not be enabled yet.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// A chunk kept meeting changes; read and try again.
    #[error("the contact changed repeatedly meanwhile; try again")]
    KeptChanging(#[source] TxError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Before a `disabled` contact is given access again: ends whatever a
/// stopped deactivation left (accounts, grants, pending codes), so none of
/// it comes back with the new state. Nothing to do for a finished one (one
/// partition Query).
pub async fn finish_before_enabling(app: &App, tenant: &TenantId, contact_id: &ContactId, portal_id: &PortalId) -> Result<(), FinishError> {
    let Some(rest) = left(app, tenant, contact_id, portal_id).await? else { return Ok(()) };
    if rest.is_empty() {
        return Ok(());
    }
    let target = Target { tenant, contact_id, portal_id, now: (app.clock)() };
    match finish(app, &target, rest, 0, Instant::now()).await {
        Ok(f) if f.complete => {
            tracing::info!(accounts = f.accounts_disabled, "finished a stopped deactivation before enabling");
            Ok(())
        }
        Ok(_) => Err(anyhow::anyhow!("the contact's deactivation is still unfinished: deactivate it again, then enable it").into()),
        Err(DeactivateError::KeptChanging(e)) => Err(FinishError::KeptChanging(e)),
        Err(DeactivateError::Unexpected(e)) => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: usize) -> CodeHash {
        CodeHash::from_stored(format!("{i:064x}"))
    }

    fn work(codes: usize, accounts: usize) -> Work {
        Work {
            codes: (0..codes).map(hash).collect(),
            accounts: (0..accounts).map(|i| EmailAddress::parse(&format!("a{i}@example.com")).unwrap()).collect(),
        }
    }

    #[test]
    fn every_transaction_stays_within_dynamodbs_hundred_items() {
        use crate::store::invitations::{ITEMS_PER_END, TX_MAX_ITEMS};
        assert_eq!(Deactivation::room(1), 48);
        assert_eq!(Deactivation::room(0), 49);
        assert!(3 + Deactivation::room(1) * ITEMS_PER_END <= TX_MAX_ITEMS);
        assert!(4 + Deactivation::room(2) * ITEMS_PER_END <= TX_MAX_ITEMS);
        assert!(2 + Deactivation::room(0) * ITEMS_PER_END <= TX_MAX_ITEMS);
        assert!(1 + EndAccess::ROOM * ITEMS_PER_END <= TX_MAX_ITEMS);
    }

    #[test]
    fn work_is_taken_codes_first_and_in_full() {
        let mut w = work(5, 150);
        let first = w.take(Deactivation::room(1));
        assert_eq!((first.codes.len(), first.accounts.len()), (5, 43));
        let mut chunks = vec![first];
        while !w.is_empty() {
            chunks.push(w.take(EndAccess::ROOM));
        }
        assert_eq!(chunks.len(), 4, "150 accounts and 5 codes: the switch and three more");
        assert_eq!(chunks.iter().map(|c| c.accounts.len()).sum::<usize>(), 150);
        assert!(chunks[1..].iter().all(|c| c.codes.is_empty()));
        let mut many = work(60, 0);
        assert_eq!(many.take(48).codes.len(), 48);
        assert_eq!(many.len(), 12);
    }

    #[test]
    fn the_bound_covers_a_few_thousand_accounts() {
        let per_call = Deactivation::room(1) + (MAX_TRANSACTIONS_PER_CALL - 1) * EndAccess::ROOM;
        assert_eq!(per_call, 2008);
    }
}
