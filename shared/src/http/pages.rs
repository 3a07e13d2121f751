//! The hosted pages, for the person claiming (served by the `claim` function):
//!
//! | page | what it does |
//! |---|---|
//! | `GET /claim` | the form: code, the portal's facts, email (`?tenant=…&portal=…` brands it) |
//! | `GET /claim?token=…` | the emailed link's page: "Continue" and the facts; an expired or used link says so and offers "Email me a new link" |
//! | `POST /claim` | the claim (`usecase::claim`): "check your email", "done" or a plain error |
//! | `GET /claim/confirm?token=…` | the confirmation link's page: a "Confirm" button |
//! | `POST /claim/confirm` | completes the claim |
//! | `POST /claim/new-link` | a fresh link to the contact's email of record only (`usecase::new_link`), the same answer whatever happened |
//!
//! **GET never consumes anything**: a mail scanner that follows a link five
//! times changes nothing. No JavaScript; every page carries a strict CSP,
//! `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY` ([`super::html`]).
//! POSTs are refused (403) when the browser says they come from another site:
//! `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is
//! not this page's own. The forms carry no session and no cookie, so there
//! is nothing else a cross-site request could ride on.

use super::html::{Field, Form, Page};
use super::claim::claimant;
use crate::app::App;
use crate::domain::{EmailAddress, Fact, Method, PortalId, TenantId};
use crate::usecase::claim::{self, ClaimAttempt, ClaimError, ClaimOutcome, ClaimPortal, LinkStatus};
use crate::usecase::new_link;
use lambda_http::{http::StatusCode, Body, Request, RequestExt as _, Response};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The name shown when no portal is known yet (a bare `GET /claim`).
pub const DEFAULT_NAME: &str = "Portal Access";
/// Largest form body we read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Whose page it is.
struct Brand {
    name: String,
    tenant: Option<TenantId>,
    portal: Option<PortalId>,
    /// The facts its claims need; `None` when the portal is not known.
    checks: Option<BTreeSet<Fact>>,
}

impl Brand {
    fn unknown() -> Self {
        Self { name: DEFAULT_NAME.into(), tenant: None, portal: None, checks: None }
    }
}

async fn brand(app: &App, tenant: Option<&str>, portal: Option<&str>) -> Brand {
    let (Some(Ok(tenant)), Some(Ok(portal))) = (tenant.map(TenantId::parse), portal.map(PortalId::parse)) else {
        return Brand::unknown();
    };
    match app.portals.get(&app.store, &tenant).await {
        Ok(portals) => match portals.iter().find(|p| p.portal_id == portal) {
            Some(p) => {
                // The organisation's own name beside the portal's, once it has a profile.
                let name = match app.profiles.get(&app.store, &tenant).await.ok().and_then(|profile| profile.as_ref().clone()) {
                    Some(profile) if profile.display_name != p.name => format!("{} · {}", profile.display_name, p.name),
                    _ => p.name.clone(),
                };
                Brand { name, checks: Some(p.claim_checks.clone()), tenant: Some(tenant), portal: Some(portal) }
            }
            None => Brand::unknown(),
        },
        Err(e) => {
            tracing::error!(error = ?e, "could not read the portal for a page");
            Brand::unknown()
        }
    }
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

/// `GET /claim` and `GET /claim?token=…`.
pub async fn claim_page(app: &App, req: &Request) -> Response<Body> {
    let Some(token) = query(req, "token") else {
        let brand = brand(app, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await;
        return claim_form_page(&brand, &Values::default(), None).respond(StatusCode::OK);
    };
    let (status, owner) = match claim::link_status(app, &token).await {
        Ok(found) => found,
        Err(e) => return failure(e),
    };
    let brand = match &owner {
        Some((tenant, portal)) => brand(app, Some(tenant.as_str()), Some(portal.as_str())).await,
        None => brand(app, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await,
    };
    let values = Values { token: token.clone(), ..Values::default() };
    match status {
        LinkStatus::Open => claim_form_page(&brand, &values, None).respond(StatusCode::OK),
        closed => closed_link_page(&brand, &token, closed).respond(StatusCode::OK),
    }
}

/// What the person typed, kept when the form is shown again (facts are not echoed).
#[derive(Default)]
struct Values {
    token: String,
    code: String,
    email: String,
}

fn claim_form_page(brand: &Brand, values: &Values, error: Option<FormError>) -> Page {
    let link = !values.token.is_empty();
    let heading = if link { "Set up your account" } else { "Set up your account with your code" };
    let mut page = Page::new(&brand.name, heading);
    if let Some(FormError::Rejected) = error {
        page = page.notice(
            "alert",
            "We could not accept these details. Check the code and the details you were asked for, and try again. \
             After several wrong tries a code is locked; the practice can send you a new one.",
        );
    }
    page = page.text(if link {
        "Enter your email address to finish setting up your account."
    } else {
        "Enter the activation code you were given and your email address."
    });
    let mut form = Form::post("claim");
    if let (Some(tenant), Some(portal)) = (&brand.tenant, &brand.portal) {
        form = form.hidden("tenant", tenant.as_str()).hidden("portal", portal.as_str());
    }
    if link {
        form = form.hidden("token", &values.token);
    } else {
        let mut code = Field::new("code", "Activation code", "text", "one-time-code");
        code.hint = Some("10 letters and numbers, for example ABCDE-23456");
        code.value = &values.code;
        form = form.field(code);
    }
    // The portal's facts; when it is not known, each is asked for as optional.
    let facts: Vec<(Fact, bool)> = match &brand.checks {
        Some(checks) => checks.iter().map(|f| (*f, true)).collect(),
        None => [Fact::DateOfBirth, Fact::FamilyName, Fact::PostalCode].into_iter().map(|f| (f, false)).collect(),
    };
    for (fact, required) in facts {
        let (label, kind, autocomplete, hint) = match fact {
            Fact::DateOfBirth => ("Date of birth", "date", "bday", "As on your record"),
            Fact::FamilyName => ("Last name", "text", "family-name", "As on your record"),
            Fact::PostalCode => ("Postal code", "text", "postal-code", "The postal code on your record"),
        };
        let mut field = Field::new(fact.as_str(), label, kind, autocomplete);
        field.required = required;
        field.hint = Some(if required { hint } else { "Only if you were asked for it" });
        form = form.field(field);
    }
    let mut email = Field::new("email", "Email address", "email", "email");
    email.hint = Some("Your account will use this address. If it is not the one we emailed, we send it a link to confirm.");
    email.value = &values.email;
    if let Some(FormError::Email) = error {
        email.error = Some("Enter an email address like name@example.com");
    }
    form = form.field(email).button(if link { "Continue" } else { "Set up my account" }, None);
    page.form(form)
}

enum FormError {
    Rejected,
    Email,
}

fn closed_link_page(brand: &Brand, token: &str, status: LinkStatus) -> Page {
    let (heading, text) = match status {
        LinkStatus::Used => ("This link has already been used", "If you set up your account with it, sign in to the portal."),
        LinkStatus::Expired => ("This link has expired", "Links are valid for a limited time."),
        LinkStatus::Replaced => ("This link has been replaced", "A newer link was sent, or the practice cancelled this one."),
        LinkStatus::Locked => ("This link is locked", "It was locked after too many attempts with details that did not match."),
        LinkStatus::Unknown | LinkStatus::Open => ("This link is not valid", "Check that you opened the whole link from your email."),
    };
    Page::new(&brand.name, heading)
        .text(text)
        .text("We can email a new link to the address the practice has on file for you.")
        .form(Form::post("claim/new-link").hidden("token", token).button("Email me a new link", None))
}

/// `POST /claim`.
pub async fn claim_submit(app: &App, req: &Request) -> Response<Body> {
    let form = match read_form(app, req) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let brand = brand(app, field("tenant").as_deref(), field("portal").as_deref()).await;
    let values = Values { token: field("token").unwrap_or_default(), code: field("code").unwrap_or_default(), email: field("email").unwrap_or_default() };
    let email = match EmailAddress::parse(&values.email) {
        Ok(email) => email,
        Err(_) => return claim_form_page(&brand, &values, Some(FormError::Email)).respond(StatusCode::UNPROCESSABLE_ENTITY),
    };
    let (secret, method) = if values.token.is_empty() { (values.code.as_str(), Method::Code) } else { (values.token.as_str(), Method::Link) };
    let claimant = match claimant(app, req).await {
        Ok(claimant) => claimant,
        Err(e) => return failure(e),
    };
    let (Some(address), user_agent) = claimant else {
        return message(&brand, StatusCode::BAD_REQUEST, "We could not accept this request", "Your request reached us without a network address. Try again.");
    };
    let facts: BTreeMap<Fact, String> =
        [Fact::DateOfBirth, Fact::FamilyName, Fact::PostalCode].into_iter().filter_map(|f| field(f.as_str()).map(|v| (f, v))).collect();
    let portal = match &brand.portal {
        Some(p) => ClaimPortal::Only(p.clone()),
        None => ClaimPortal::Any,
    };
    let attempt = ClaimAttempt {
        secret,
        method,
        email: Some(&email),
        id_token: None,
        portal: &portal,
        address: &address,
        facts: &facts,
        user_agent: user_agent.as_deref(),
    };
    match claim::claim(app, attempt).await {
        Ok(ClaimOutcome::Bound(claimed)) => done(&brand, &claimed.email),
        Ok(ClaimOutcome::ConfirmationSent) => Page::new(&brand.name, "Check your email")
            .notice("ok", &format!("We sent a link to {email}."))
            .text("Open it on any device to finish setting up your account. It is valid for 24 hours.")
            .text("If it does not arrive within a few minutes, check your spam folder, or start again.")
            .respond(StatusCode::ACCEPTED),
        Err(ClaimError::Rejected) => claim_form_page(&brand, &values, Some(FormError::Rejected)).respond(StatusCode::BAD_REQUEST),
        Err(e) => claim_failure(&brand, e),
    }
}

fn done(brand: &Brand, email: &EmailAddress) -> Response<Body> {
    Page::new(&brand.name, "Your account is ready")
        .notice("ok", &format!("Your account for {email} is set up."))
        .text("You can now sign in to the portal with this email address.")
        .respond(StatusCode::CREATED)
}

fn claim_failure(brand: &Brand, e: ClaimError) -> Response<Body> {
    match e {
        ClaimError::RateLimited { retry_after_secs } => {
            let minutes = retry_after_secs.div_ceil(60).max(1);
            let mut response = message(
                brand,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("There were too many attempts from your network. Try again in {minutes} minutes."),
            );
            response.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("a number is a header value"));
            response
        }
        ClaimError::EmailNotQueued(_) | ClaimError::ProviderUnavailable(_) => {
            tracing::error!(error = ?e, "a claim page could not finish");
            try_again(brand)
        }
        ClaimError::Rejected => message(brand, StatusCode::BAD_REQUEST, "This link can no longer be used", "It has been used, has expired or was replaced."),
        ClaimError::Unexpected(e) => failure(e),
    }
}

/// `GET /claim/confirm?token=…`: a button; nothing is used up.
pub async fn confirm_page(app: &App, req: &Request) -> Response<Body> {
    let token = query(req, "token").unwrap_or_default();
    let open = match claim::open_confirmation(app, &token).await {
        Ok(open) => open,
        Err(e) => return failure(e),
    };
    match open {
        Some(c) => {
            let brand = brand(app, Some(c.tenant_id.as_str()), Some(c.portal_id.as_str())).await;
            Page::new(&brand.name, "Confirm your email address")
                .text(&format!("Confirm to finish setting up your account for {}.", c.email))
                .form(Form::post("confirm").hidden("token", &token).button("Confirm", None))
                .respond(StatusCode::OK)
        }
        None => {
            let brand = brand(app, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await;
            confirmation_closed(&brand)
        }
    }
}

fn confirmation_closed(brand: &Brand) -> Response<Body> {
    Page::new(&brand.name, "This confirmation link can no longer be used")
        .text("It has been used, has expired (links are valid for 24 hours), or a newer one was sent.")
        .text("To set up your account, start again with your code or your activation link.")
        .respond(StatusCode::BAD_REQUEST)
}

/// `POST /claim/confirm`.
pub async fn confirm_submit(app: &App, req: &Request) -> Response<Body> {
    let form = match read_form(app, req) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    // The brand is read before the confirmation is used up.
    let brand = match claim::open_confirmation(app, &token).await {
        Ok(Some(c)) => brand(app, Some(c.tenant_id.as_str()), Some(c.portal_id.as_str())).await,
        Ok(None) => Brand::unknown(),
        Err(e) => return failure(e),
    };
    let (address, user_agent) = match claimant(app, req).await {
        Ok(claimant) => claimant,
        Err(e) => return failure(e),
    };
    match claim::confirm(app, &token, address.as_ref(), user_agent.as_deref()).await {
        Ok(claimed) => done(&brand, &claimed.email),
        Err(ClaimError::Rejected) => confirmation_closed(&brand),
        Err(e) => claim_failure(&brand, e),
    }
}

/// `POST /claim/new-link`: the same answer whatever happened.
pub async fn new_link_submit(app: &App, req: &Request) -> Response<Body> {
    let form = match read_form(app, req) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    let brand = match claim::link_status(app, &token).await {
        Ok((_, Some((tenant, portal)))) => brand(app, Some(tenant.as_str()), Some(portal.as_str())).await,
        Ok((_, None)) => Brand::unknown(),
        Err(e) => return failure(e),
    };
    match new_link::request(app, &token).await {
        Ok(outcome) => tracing::info!(?outcome, "new link requested"),
        // The person sees the same page; the log has the cause.
        Err(e) => tracing::error!(error = ?e, "a new link could not be sent"),
    }
    Page::new(&brand.name, "Check your email")
        .notice("ok", "If we can send you a new link, it is on its way to the email address the practice has on file for you.")
        .text("For your security we send it only to that address, and at most once an hour.")
        .respond(StatusCode::OK)
}

/// A short page with a heading and one paragraph.
fn message(brand: &Brand, status: StatusCode, heading: &str, text: &str) -> Response<Body> {
    Page::new(&brand.name, heading).text(text).respond(status)
}

/// An unexpected failure: logged with its cause, a plain page for the person.
/// A page's unexpected error: a dependency that did not answer in time
/// (`aws::did_not_answer`) is a 503 to try again, anything else a 500; the
/// cause is logged here.
fn failure(e: anyhow::Error) -> Response<Body> {
    if crate::aws::did_not_answer(&e) {
        tracing::error!(error = ?e, "a hosted page's dependency did not answer in time");
        return try_again(&Brand::unknown());
    }
    tracing::error!(error = ?e, "a hosted page failed");
    message(&Brand::unknown(), StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again in a few minutes.")
}

/// 503 with `Retry-After`, as the API answers when we cannot finish just now.
fn try_again(brand: &Brand) -> Response<Body> {
    let mut response = message(brand, StatusCode::SERVICE_UNAVAILABLE, "Please try again", "We could not finish this just now. Try again in a minute.");
    let secs = super::problem::UNAVAILABLE_RETRY_AFTER_SECS.to_string();
    response.headers_mut().insert("retry-after", secs.parse().expect("a number is a header value"));
    response
}

/// Whether a POST comes from our own pages, as the browser tells: its
/// `Sec-Fetch-Site` decides (every current browser sends it); a browser
/// without it is judged by `Origin`, which must be this page's own. Our
/// pages' `Referrer-Policy: no-referrer` makes browsers send `Origin: null`
/// on their own form posts, so `null` is refused only where `Sec-Fetch-Site`
/// is missing. Requests with neither (not from a browser) cannot be
/// cross-site requests.
pub fn same_origin(headers: &lambda_http::http::HeaderMap, public_base_url: Option<&str>) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    let host = header("x-forwarded-host").or(header("host")).unwrap_or_default();
    let ours = |scheme: &str| !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"));
    let base_origin = public_base_url.map(|b| {
        let rest = b.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        format!("{}://{authority}", b.split_once("://").map_or("", |(s, _)| s))
    });
    ours("https") || ours("http") || base_origin.is_some_and(|b| origin.eq_ignore_ascii_case(&b))
}

/// The form of a POST, or the page refusing it: cross-site (403), not a
/// form (415), too large (413).
fn read_form(app: &App, req: &Request) -> Result<HashMap<String, String>, Response<Body>> {
    let brand = Brand::unknown();
    if !same_origin(req.headers(), app.public_base_url.as_deref()) {
        return Err(message(&brand, StatusCode::FORBIDDEN, "This form was sent from another site", "Open the page again from your email or from the practice's site."));
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(message(&brand, StatusCode::UNSUPPORTED_MEDIA_TYPE, "We could not read this form", "Send the form from the page itself."));
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_FORM_BYTES {
        return Err(message(&brand, StatusCode::PAYLOAD_TOO_LARGE, "We could not read this form", "It is larger than any of our forms."));
    }
    Ok(parse_form(body))
}

/// `application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte; the first of a repeated name wins.
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let mut form = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        form.entry(decode(name)).or_insert_with(|| decode(value));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn forms_decode_plus_percent_and_keep_the_first_of_a_name() {
        let form = parse_form(b"email=pat%40example.org&code=ABCDE+23456&code=other&empty=&flag");
        assert_eq!(form["email"], "pat@example.org");
        assert_eq!(form["code"], "ABCDE 23456");
        assert_eq!(form["empty"], "");
        assert_eq!(form["flag"], "");
    }

    #[test]
    fn only_our_own_pages_may_post() {
        let host = ("host", "claim.example.org");
        assert!(same_origin(&headers(&[host, ("origin", "https://claim.example.org"), ("sec-fetch-site", "same-origin")]), None));
        assert!(same_origin(&headers(&[host]), None), "not a browser: no cross-site request to fear");
        assert!(!same_origin(&headers(&[host, ("origin", "https://evil.example")]), None));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), None), "an opaque origin, from a browser without Fetch Metadata");
        assert!(same_origin(&headers(&[host, ("origin", "null"), ("sec-fetch-site", "same-origin")]), None), "our no-referrer pages' own posts");
        assert!(!same_origin(&headers(&[host, ("sec-fetch-site", "cross-site")]), None));
        assert!(!same_origin(&headers(&[host, ("sec-fetch-site", "same-site"), ("origin", "https://claim.example.org")]), None));
        let behind_cdn = headers(&[("host", "abc.execute-api.us-east-1.amazonaws.com"), ("origin", "https://claim.example.org")]);
        assert!(same_origin(&behind_cdn, Some("https://claim.example.org")), "the deployment's public base URL is ours too");
    }
}
