//! Expiring what is due: every pending code and link of a tenant whose
//! expiry has passed becomes `expired`, with its contact's state, each in one
//! transaction ([`crate::domain::invitation`] says what that means; this is
//! the scheduler's first step). Conditional on what it changes, so a second
//! run, or one racing a claim or a newer code, does only what is left.

use crate::app::App;
use crate::domain::{invitation, TenantId};
use crate::retry::{retry, Attempt, Policy};
use crate::store::{items::CodeItem, scheduling::Expiring, TxError, TxItem};

/// Rows read per page of due invitations.
const PAGE: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ExpireError {
    /// The contact kept changing between our read and our write.
    #[error("the contact of an expiring invitation kept changing")]
    KeptChanging(#[source] TxError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What one call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub expired: u32,
    /// False when `more` said stop before every due invitation was seen.
    pub complete: bool,
}

/// Expires every due invitation of `tenant`, page by page, while `more()` allows.
pub async fn expire_due(app: &App, tenant: &TenantId, more: impl Fn() -> bool) -> Result<Expired, ExpireError> {
    let mut done = Expired::default();
    let mut start = None;
    loop {
        if !more() {
            return Ok(done);
        }
        let page = app.store.pending_page(tenant, Expiring::Before((app.clock)()), start, PAGE).await?;
        for row in &page.rows {
            match expire_one(app, tenant, row).await {
                Ok(true) => done.expired += 1,
                Ok(false) => {}
                // Left pending: the next run expires it.
                Err(ExpireError::KeptChanging(e)) => tracing::warn!(error = %e, "an expiry kept meeting changes; left for the next run"),
                Err(e) => return Err(e),
            }
        }
        match page.next {
            Some(next) => start = Some(next),
            None => {
                done.complete = true;
                return Ok(done);
            }
        }
    }
}

/// Expires one invitation; `false` if it was no longer pending (claimed,
/// revoked or expired by another run meanwhile).
pub async fn expire_one(app: &App, tenant: &TenantId, row: &CodeItem) -> Result<bool, ExpireError> {
    let Some(contact_id) = row.contact_id() else {
        return Err(anyhow::anyhow!("a code row's key names no contact").into());
    };
    let contact_id = &contact_id;
    retry(Policy::immediate(3), ExpireError::KeptChanging, |_| async move {
        let now = (app.clock)();
        let Some(expiry) = invitation::expire(row.state, row.expires_at, now) else {
            return Attempt::Done(false);
        };
        let access = match app.store.get_contact_with_access(tenant, contact_id).await {
            Ok(found) => found.map(|(_, a)| a),
            Err(e) => return Attempt::Stop(e.into()),
        };
        let entry = access.as_ref().and_then(|a| a.get(row.portal_id.as_str()));
        let named = invitation::still_names(entry, row.expires_at);
        match app.store.expire(tenant, row, expiry, named, now).await {
            Ok(()) => Attempt::Done(true),
            // Claimed, revoked or expired by another run meanwhile.
            Err(e) if e.condition_failed(TxItem::CodeRow) || e.condition_failed(TxItem::CodeLookup) => Attempt::Done(false),
            // The contact moved between our read and the write (or another
            // transaction held it): read it again.
            Err(e @ TxError::Cancelled(_)) => Attempt::Again(e),
            Err(TxError::Unexpected(e)) => Attempt::Stop(e.into()),
        }
    })
    .await
}
