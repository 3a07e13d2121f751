//! The route table, once: every route of the API, the function (Lambda
//! binary) that serves it, and whether it is effectful (an `Idempotency-Key`
//! applies). template.yaml and openapi.yaml are checked against it
//! (`tests/api/drift.rs`).
//!
//! Dispatch is at compile time: each HTTP function is a type implementing
//! [`Function`], whose `handle` matches only its own routes; its binary
//! serves it with [`super::serve`]`::<F>()`, so the other functions'
//! handlers are never linked into it.

use crate::app::App;
use lambda_http::{Body, Request, Response};
use std::future::Future;

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    GenerateCode,
    Claim,
    ConfirmClaim,
    Portlet,
    Activate,
    Resend,
    Deactivate,
    AccountAccess,
    PutPortal,
    GetPortal,
    ListPortals,
    PutContact,
    GetContact,
    ListEmails,
    ListContacts,
    ContactAudit,
    GetDocument,
    GetTemplate,
    PutTemplate,
    PreviewTemplate,
    SubmitActivations,
    PutGroup,
    GetGroup,
    ListGroups,
    ActivateGroup,
    GetJob,
    PutIntegration,
    GetIntegration,
    DeleteIntegration,
    ActivationsReport,
    UnusedCodesReport,
    GetSettings,
    PutSettings,
    GetTenantProfile,
    PutTenantProfile,
    ClaimPage,
    ClaimPageSubmit,
    ConfirmPage,
    ConfirmPageSubmit,
    NewLinkPageSubmit,
    ConsoleRoot,
    ConsoleAsset,
    /// API Gateway's `$default` route: a request no other route takes. 405 with
    /// `Allow` when its path is a route's under another method, else 404.
    Unrouted,
}

/// Whether a route changes something a repeat must not change twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads, or writes that are idempotent by themselves (PUT).
    Safe,
    /// A POST with an effect: wrapped in the idempotency layer.
    Effectful,
}

impl Route {
    pub const ALL: [Route; 43] = [
        Route::GenerateCode,
        Route::Claim,
        Route::ConfirmClaim,
        Route::Portlet,
        Route::Activate,
        Route::Resend,
        Route::Deactivate,
        Route::AccountAccess,
        Route::PutPortal,
        Route::GetPortal,
        Route::ListPortals,
        Route::PutContact,
        Route::GetContact,
        Route::ListEmails,
        Route::ListContacts,
        Route::ContactAudit,
        Route::GetDocument,
        Route::GetTemplate,
        Route::PutTemplate,
        Route::PreviewTemplate,
        Route::SubmitActivations,
        Route::PutGroup,
        Route::GetGroup,
        Route::ListGroups,
        Route::ActivateGroup,
        Route::GetJob,
        Route::PutIntegration,
        Route::GetIntegration,
        Route::DeleteIntegration,
        Route::ActivationsReport,
        Route::UnusedCodesReport,
        Route::GetSettings,
        Route::PutSettings,
        Route::GetTenantProfile,
        Route::PutTenantProfile,
        Route::ClaimPage,
        Route::ClaimPageSubmit,
        Route::ConfirmPage,
        Route::ConfirmPageSubmit,
        Route::NewLinkPageSubmit,
        Route::ConsoleRoot,
        Route::ConsoleAsset,
        Route::Unrouted,
    ];

    /// (method, path template, binary, effect).
    const fn spec(self) -> (&'static str, &'static str, &'static str, Effect) {
        use Effect::*;
        match self {
            Self::GenerateCode => ("POST", "/v1/contacts/{contact_id}/codes", "generate", Effectful),
            Self::Claim => ("POST", "/v1/claim", "claim", Safe),
            // Public like the claim; a repeat finds the confirmation used up (400).
            Self::ConfirmClaim => ("POST", "/v1/claim/confirm", "claim", Safe),
            Self::Portlet => ("GET", "/v1/contacts/{contact_id}/portal", "status", Safe),
            Self::Activate => ("POST", "/v1/contacts/{contact_id}/portal/activate", "lifecycle", Effectful),
            Self::Resend => ("POST", "/v1/contacts/{contact_id}/portal/resend", "lifecycle", Effectful),
            Self::Deactivate => ("POST", "/v1/contacts/{contact_id}/portal/deactivate", "lifecycle", Effectful),
            Self::AccountAccess => ("GET", "/v1/accounts/{email}/access", "access", Safe),
            Self::PutPortal => ("PUT", "/v1/portals/{portal_id}", "admin", Safe),
            Self::GetPortal => ("GET", "/v1/portals/{portal_id}", "admin", Safe),
            Self::ListPortals => ("GET", "/v1/portals", "admin", Safe),
            Self::PutContact => ("PUT", "/v1/contacts/{contact_id}", "contacts", Safe),
            Self::GetContact => ("GET", "/v1/contacts/{contact_id}", "contacts", Safe),
            Self::ListEmails => ("GET", "/v1/contacts/{contact_id}/emails", "contacts", Safe),
            Self::ListContacts => ("GET", "/v1/contacts", "contacts", Safe),
            Self::ContactAudit => ("GET", "/v1/contacts/{contact_id}/audit", "contacts", Safe),
            Self::GetDocument => ("GET", "/v1/emails/{document_id}", "contacts", Safe),
            Self::GetTemplate => ("GET", "/v1/portals/{portal_id}/templates/{kind}", "templates", Safe),
            Self::PutTemplate => ("PUT", "/v1/portals/{portal_id}/templates/{kind}", "templates", Safe),
            Self::PreviewTemplate => ("POST", "/v1/portals/{portal_id}/templates/{kind}/preview", "templates", Safe),
            Self::SubmitActivations => ("POST", "/v1/activations", "activations", Effectful),
            Self::PutGroup => ("PUT", "/v1/groups/{group_id}", "activations", Safe),
            Self::GetGroup => ("GET", "/v1/groups/{group_id}", "activations", Safe),
            Self::ListGroups => ("GET", "/v1/groups", "activations", Safe),
            Self::ActivateGroup => ("POST", "/v1/groups/{group_id}/activate", "activations", Effectful),
            Self::GetJob => ("GET", "/v1/jobs/{job_id}", "activations", Safe),
            Self::PutIntegration => ("PUT", "/v1/integrations/{integration_id}", "activations", Safe),
            Self::GetIntegration => ("GET", "/v1/integrations/{integration_id}", "activations", Safe),
            Self::DeleteIntegration => ("DELETE", "/v1/integrations/{integration_id}", "activations", Safe),
            Self::ActivationsReport => ("GET", "/v1/reports/activations", "reports", Safe),
            Self::UnusedCodesReport => ("GET", "/v1/reports/unused-codes", "reports", Safe),
            Self::GetSettings => ("GET", "/v1/settings", "admin", Safe),
            Self::PutSettings => ("PUT", "/v1/settings", "admin", Safe),
            Self::GetTenantProfile => ("GET", "/v1/tenant/profile", "admin", Safe),
            Self::PutTenantProfile => ("PUT", "/v1/tenant/profile", "admin", Safe),
            // The hosted pages (`http::pages`), public HTML forms.
            Self::ClaimPage => ("GET", "/claim", "claim", Safe),
            Self::ClaimPageSubmit => ("POST", "/claim", "claim", Safe),
            Self::ConfirmPage => ("GET", "/claim/confirm", "claim", Safe),
            Self::ConfirmPageSubmit => ("POST", "/claim/confirm", "claim", Safe),
            // At most one email an hour per contact (`usecase::new_link`).
            Self::NewLinkPageSubmit => ("POST", "/claim/new-link", "claim", Safe),
            // The staff console and the portlet's script (`http::console`), public static files.
            Self::ConsoleRoot => ("GET", "/console", "console", Safe),
            Self::ConsoleAsset => ("GET", "/console/{proxy+}", "console", Safe),
            // What no route above takes (the console function answers it: public, tiny).
            Self::Unrouted => ("ANY", "$default", "console", Safe),
        }
    }

    /// The methods the API routes `path` (a request's path) by, in the table's order: what an
    /// `Allow` header lists for a method it does not.
    pub fn allowed_methods(path: &str) -> Vec<&'static str> {
        let mut methods: Vec<&'static str> = Vec::new();
        for r in Self::ALL.into_iter().filter(|r| *r != Self::Unrouted && path_matches(r.path(), path)) {
            if !methods.contains(&r.method()) {
                methods.push(r.method());
            }
        }
        methods
    }

    pub const fn method(self) -> &'static str {
        self.spec().0
    }

    /// The path template, as in template.yaml and openapi.yaml.
    pub const fn path(self) -> &'static str {
        self.spec().1
    }

    /// The Lambda binary (template.yaml's `BuildProperties.Binary`) that serves it.
    pub const fn function(self) -> &'static str {
        self.spec().2
    }

    pub const fn effect(self) -> Effect {
        self.spec().3
    }

    /// API Gateway's route key: `METHOD /path`.
    pub fn key(self) -> String {
        format!("{} {}", self.method(), self.path())
    }

    /// The route of an API Gateway route key, if it is one of ours.
    pub fn from_key(key: &str) -> Option<Self> {
        // The default route's key is `$default` alone (template.yaml's `ANY $default`).
        if key == "$default" {
            return Some(Self::Unrouted);
        }
        let (method, path) = key.split_once(' ')?;
        Self::ALL.into_iter().find(|r| r.method() == method && r.path() == path)
    }
}

/// Whether a path template (`/v1/contacts/{contact_id}`, `/console/{proxy+}`) takes `path`,
/// as API Gateway matches them: `{x}` one non-empty segment, `{x+}` one or more.
pub fn path_matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.trim_start_matches('/').split('/'), path.trim_start_matches('/').split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(seg), Some(got)) if seg.starts_with('{') && seg.ends_with("+}") => return !got.is_empty() || p.next().is_some(),
            (Some(seg), Some(got)) if seg.starts_with('{') && seg.ends_with('}') => {
                if got.is_empty() {
                    return false;
                }
            }
            (Some(seg), Some(got)) if seg == got => {}
            _ => return false,
        }
    }
}

/// An HTTP function: the routes it serves and its handler. `handle` is only
/// ever given one of `ROUTES`.
pub trait Function {
    /// The binary's name.
    const NAME: &'static str;
    fn handle(app: &App, route: Route, req: Request) -> impl Future<Output = Response<Body>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_key_reads_back_to_its_route_and_no_two_routes_share_one() {
        for r in Route::ALL {
            assert_eq!(Route::from_key(&r.key()), Some(r), "{r:?}");
        }
        let keys: std::collections::HashSet<String> = Route::ALL.iter().map(|r| r.key()).collect();
        assert_eq!(keys.len(), Route::ALL.len());
        assert_eq!(Route::from_key("GET /v1/nope"), None);
        assert_eq!(Route::from_key("DELETE /v1/claim"), None, "the method is part of the route");
    }

    #[test]
    fn a_path_routed_by_other_methods_is_allowed_by_those() {
        assert_eq!(Route::allowed_methods("/v1/settings"), ["GET", "PUT"]);
        assert_eq!(Route::allowed_methods("/v1/contacts/c-1"), ["PUT", "GET"]);
        assert_eq!(Route::allowed_methods("/console/assets/app.js"), ["GET"]);
        assert!(Route::allowed_methods("/v1/nope").is_empty());
        assert!(Route::allowed_methods("/v1/contacts//portal").is_empty(), "an empty segment is no id");
        assert!(path_matches("/console/{proxy+}", "/console/a/b") && !path_matches("/console/{proxy+}", "/console"));
    }

    #[test]
    fn only_posts_with_an_effect_take_an_idempotency_key() {
        let effectful: Vec<Route> = Route::ALL.into_iter().filter(|r| r.effect() == Effect::Effectful).collect();
        assert_eq!(
            effectful,
            [Route::GenerateCode, Route::Activate, Route::Resend, Route::Deactivate, Route::SubmitActivations, Route::ActivateGroup]
        );
        assert!(effectful.iter().all(|r| r.method() == "POST"));
    }
}
