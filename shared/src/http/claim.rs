//! `POST /v1/claim` (public): a person claims a code (`{"code","email"}`) or
//! an activation link's token (`{"token","email"}`) and creates their account.
//! Only this POST consumes a token: no GET anywhere uses one up, so a mail
//! scanner that follows the emailed link changes nothing.
//!
//! Unknown, malformed, expired, already used and wrong-portal codes all get
//! the same 400 body, and every path hashes and looks the code up first, so
//! the answer says nothing about which it was. The claim itself is one
//! conditional transaction: of N concurrent claims exactly one succeeds.
//!
//! Guessing is throttled per source address (IPv6 per /64): every claim is
//! counted atomically beside the code lookup, before it is judged; after 10
//! counted claims within 15 minutes the address gets 429 with `Retry-After`
//! until the window ends, and a claim that binds an account is taken back
//! out of the count ([`crate::domain::guard`]). A request without a source
//! address is refused (400). Every refused claim is counted in the
//! `ClaimsFailed` metric by portal (`none` when no code matched).

use super::problem::ApiError;
use super::request::{claimant, finish, json_body, respond};
use super::routes::{Function, Route};
use crate::app::App;
use crate::domain::{EmailAddress, Fact, Method, PortalId};
use std::collections::BTreeMap;
use crate::usecase::claim::{claim, confirm, ClaimAttempt, ClaimOutcome, ClaimPortal};
use lambda_http::{http::StatusCode, Body, Request, Response};
use serde::Deserialize;

pub use crate::usecase::claim::Claimed;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// The address to bind; may be left out when `id_token` is given.
    #[serde(default)]
    pub email: Option<String>,
    /// An ID token of the portal's identity provider vouching for the address.
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub portal_id: Option<String>,
    /// Facts of the record the portal checks (`claim_checks`).
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    /// The claimant's language (BCP 47): the confirmation email's, if one is sent.
    #[serde(default)]
    pub locale: Option<String>,
}

crate::debug_redacting!(ClaimRequest { email, portal_id, locale } hiding { code, token, id_token, date_of_birth, family_name, postal_code });

impl ClaimRequest {
    /// The facts given, by fact.
    pub fn facts(&self) -> BTreeMap<Fact, String> {
        [(Fact::DateOfBirth, &self.date_of_birth), (Fact::FamilyName, &self.family_name), (Fact::PostalCode, &self.postal_code)]
            .into_iter()
            .filter_map(|(f, v)| v.clone().map(|v| (f, v)))
            .collect()
    }
}

/// The `claim` function.
pub struct Claim;

impl Function for Claim {
    const NAME: &'static str = "claim";
    async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
        finish(match route {
            Route::Claim => run(app, &req).await,
            Route::ConfirmClaim => run_confirm(app, &req).await,
            Route::ClaimPage => Ok(super::pages::claim_page(app, &req).await),
            Route::ClaimPageSubmit => Ok(super::pages::claim_submit(app, &req).await),
            Route::ConfirmPage => Ok(super::pages::confirm_page(app, &req).await),
            Route::ConfirmPageSubmit => Ok(super::pages::confirm_submit(app, &req).await),
            Route::NewLinkPageSubmit => Ok(super::pages::new_link_submit(app, &req).await),
            _ => Err(ApiError::NotFound("route")),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub token: String,
}

crate::debug_redacting!(ConfirmRequest {} hiding { token });

/// `POST /v1/claim/confirm {"token"}`: completes a claim by its emailed confirmation.
async fn run_confirm(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ConfirmRequest = json_body(req, false)?;
    let (address, user_agent) = claimant(app, req).await?;
    let claimed = confirm(app, &body.token, address.as_ref(), user_agent.as_deref()).await?;
    Ok(respond(StatusCode::CREATED, &claimed))
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: ClaimRequest = json_body(req, false)?;
    let email = match (&body.email, &body.id_token) {
        (Some(email), _) => Some(EmailAddress::parse(email).map_err(|e| ApiError::validation("/email", format!("email {e}")))?),
        (None, Some(_)) => None,
        (None, None) => return Err(ApiError::validation("/email", "email: required unless an id_token is given")),
    };
    let (secret, method) = match (&body.code, &body.token) {
        (Some(code), None) => (code.as_str(), Method::Code),
        (None, Some(token)) => (token.as_str(), Method::Link),
        _ => return Err(ApiError::validation("", "give either a code or a token")),
    };
    // A portal id that is not even well-formed names no portal: the same refusal as a wrong one.
    let portal = match body.portal_id.as_deref().map(PortalId::parse) {
        None => ClaimPortal::Any,
        Some(Ok(p)) => ClaimPortal::Only(p),
        Some(Err(_)) => ClaimPortal::NoneMatches,
    };
    // Without a source address nothing could be throttled, so the claim is refused (fails closed).
    let (address, user_agent) = claimant(app, req).await?;
    let address = address
        .ok_or_else(|| ApiError::BadRequest("the request has no source address: claims are throttled per address and refused without one".into()))?;
    let facts = body.facts();
    let locale = match body.locale.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(crate::domain::Locale::parse(raw).map_err(|e| ApiError::validation("/locale", format!("locale {e}")))?),
    };
    let attempt = ClaimAttempt {
        locale,
        secret,
        method,
        email: email.as_ref(),
        id_token: body.id_token.as_deref(),
        portal: &portal,
        address: &address,
        facts: &facts,
        user_agent: user_agent.as_deref(),
    };
    Ok(match claim(app, attempt).await? {
        ClaimOutcome::Bound(claimed) => respond(StatusCode::CREATED, &claimed),
        ClaimOutcome::ConfirmationSent => respond(StatusCode::ACCEPTED, &serde_json::json!({"state": "confirmation_sent"})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::portlet::PendingCodeView;
    use crate::domain::PortalId;
    use crate::http::contacts::ContactRequest;
    use crate::http::generate::IssuedCode;
    use serde_json::json;

    #[test]
    fn what_holds_a_code_a_token_or_a_fact_prints_it_redacted() {
        let secrets = ["7K3QD-M9XPT", "tok-secret", "eyJ.secret", "1990-04-01", "Lee-Secret", "SW1A 1AA", "confirm-secret"];
        let claim: ClaimRequest = serde_json::from_value(json!({"code": "7K3QD-M9XPT", "token": "tok-secret", "id_token": "eyJ.secret",
            "email": "ann@example.com", "date_of_birth": "1990-04-01", "family_name": "Lee-Secret", "postal_code": "SW1A 1AA"}))
        .unwrap();
        let confirm: ConfirmRequest = serde_json::from_value(json!({"token": "confirm-secret"})).unwrap();
        let contact: ContactRequest = serde_json::from_value(json!({"name": "Ann Lee", "kind": "individual", "date_of_birth": "1990-04-01",
            "family_name": "Lee-Secret", "postal_code": "SW1A 1AA"}))
        .unwrap();
        let now = chrono::Utc::now();
        let main = PortalId::parse("main").unwrap();
        let issued = IssuedCode { code: "7K3QD-M9XPT".into(), portal_id: main.clone(), created_at: now, expires_at: now, email_document_id: None };
        let view = PendingCodeView { portal_id: main, portal_name: "Main".into(), code: "7K3QD-M9XPT".into(), created_at: now, expires_at: now, email_document_id: None };
        let printed = [format!("{claim:?}"), format!("{confirm:?}"), format!("{contact:?}"), format!("{issued:?}"), format!("{view:?}")];
        for p in &printed {
            assert!(p.contains("[redacted]"), "{p}");
            for s in secrets {
                assert!(!p.contains(s), "{s} in {p}");
            }
        }
        // What is not secret still prints, for the logs to be of use.
        assert!(printed[0].contains("ann@example.com") && printed[2].contains("Ann Lee") && printed[4].contains("Main"));
    }
}
