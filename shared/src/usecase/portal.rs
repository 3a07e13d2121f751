//! Which portal an operation means: the one named, or the tenant's single
//! default portal.

use crate::app::App;
use crate::domain::{
    portal::{default_portal, DefaultPortal},
    Portal, PortalId, TenantId,
};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("portal_id: no portal {0} in this tenant")]
    NoSuchPortal(PortalId),
    #[error("the tenant has no default portal; name one with portal_id")]
    NoDefault,
    #[error("the tenant has several default portals; name one with portal_id")]
    AmbiguousDefault,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The portal a request means: the named one, or the tenant's single default.
pub async fn resolve(app: &App, tenant: &TenantId, portal_id: Option<&PortalId>) -> Result<Portal, PortalError> {
    let portals = app.portals.get(&app.store, tenant).await?;
    match portal_id {
        Some(id) => match portals.iter().find(|p| &p.portal_id == id) {
            Some(p) => Ok(p.clone()),
            // Not in this instance's cache: it may be new, so ask the table.
            None => app.store.get_portal(tenant, id).await?.ok_or_else(|| PortalError::NoSuchPortal(id.clone())),
        },
        None => match default_portal(&portals) {
            DefaultPortal::Found(p) => Ok(p.clone()),
            DefaultPortal::None => Err(PortalError::NoDefault),
            DefaultPortal::Ambiguous => Err(PortalError::AmbiguousDefault),
        },
    }
}
