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
use super::page_text::{self, Texts};
use super::request::claimant;
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

/// Whose page it is, and in which language.
struct Brand {
    name: String,
    tenant: Option<TenantId>,
    portal: Option<PortalId>,
    /// The facts its claims need; `None` when the portal is not known.
    checks: Option<BTreeSet<Fact>>,
    /// The page's words ([`Texts::choose`]).
    t: &'static Texts,
}

impl Brand {
    fn unknown() -> Self {
        Self { name: DEFAULT_NAME.into(), tenant: None, portal: None, checks: None, t: &page_text::ENGLISH }
    }

    /// A page of this brand in its language.
    fn page(&self, heading: &str) -> Page {
        Page::new(&self.name, heading).in_language(self.t.lang, &self.t.footer.replace("{portal}", &self.name))
    }

    /// A form of this brand's pages: it carries the language to the next page.
    fn form(&self, action: &str) -> Form {
        Form::post(action).hidden("lang", self.t.lang)
    }
}

/// What the person's request says of their language: the link's or form's `lang`, and the browser's.
#[derive(Default)]
struct Asked {
    lang: Option<String>,
    accept_language: Option<String>,
}

impl Asked {
    fn of(req: &Request, form: Option<&HashMap<String, String>>) -> Self {
        let lang = match form {
            Some(form) => form.get("lang").cloned(),
            None => query(req, "lang"),
        };
        let accept_language = req.headers().get("accept-language").and_then(|v| v.to_str().ok()).map(|v| v.chars().take(256).collect());
        Self { lang, accept_language }
    }
}

async fn brand(app: &App, asked: &Asked, tenant: Option<&str>, portal: Option<&str>) -> Brand {
    let Found { mut brand, default_locale } = brand_of(app, tenant, portal).await;
    brand.t = Texts::choose(asked.lang.as_deref(), asked.accept_language.as_deref(), default_locale.as_ref());
    brand
}

async fn brand_of(app: &App, tenant: Option<&str>, portal: Option<&str>) -> Found {
    let unknown = || Found { brand: Brand::unknown(), default_locale: None };
    let (Some(Ok(tenant)), Some(Ok(portal))) = (tenant.map(TenantId::parse), portal.map(PortalId::parse)) else {
        return unknown();
    };
    match app.portals.get(&app.store, &tenant).await {
        Ok(portals) => match portals.iter().find(|p| p.portal_id == portal) {
            Some(p) => {
                // The organisation's own name beside the portal's, once it has a profile.
                let name = match app.profiles.get(&app.store, &tenant).await.ok().and_then(|profile| profile.as_ref().clone()) {
                    Some(profile) if profile.display_name != p.name => format!("{} · {}", profile.display_name, p.name),
                    _ => p.name.clone(),
                };
                let brand = Brand { name, checks: Some(p.claim_checks.clone()), tenant: Some(tenant), portal: Some(portal), t: &page_text::ENGLISH };
                Found { brand, default_locale: Some(p.default_locale.clone()) }
            }
            None => unknown(),
        },
        Err(e) => {
            tracing::error!(error = ?e, "could not read the portal for a page");
            unknown()
        }
    }
}

/// A brand found, with its portal's default language.
struct Found {
    brand: Brand,
    default_locale: Option<crate::domain::Locale>,
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

/// `GET /claim` and `GET /claim?token=…`.
pub async fn claim_page(app: &App, req: &Request) -> Response<Body> {
    let asked = Asked::of(req, None);
    let Some(token) = query(req, "token") else {
        let brand = brand(app, &asked, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await;
        return claim_form_page(&brand, &Values::default(), None).respond(StatusCode::OK);
    };
    let (status, owner) = match claim::link_status(app, &token).await {
        Ok(found) => found,
        Err(e) => return failure(e),
    };
    let brand = match &owner {
        Some((tenant, portal)) => brand(app, &asked, Some(tenant.as_str()), Some(portal.as_str())).await,
        None => brand(app, &asked, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await,
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
    let t = brand.t;
    let mut page = brand.page(if link { t.heading_link } else { t.heading_code });
    if let Some(FormError::Rejected) = error {
        page = page.notice("alert", t.rejected);
    }
    page = page.text(if link { t.intro_link } else { t.intro_code });
    let mut form = brand.form("claim");
    if let (Some(tenant), Some(portal)) = (&brand.tenant, &brand.portal) {
        form = form.hidden("tenant", tenant.as_str()).hidden("portal", portal.as_str());
    }
    if link {
        form = form.hidden("token", &values.token);
    } else {
        let mut code = Field::new("code", t.code_label, "text", "one-time-code");
        code.hint = Some(t.code_hint);
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
            Fact::DateOfBirth => (t.date_of_birth, "date", "bday", t.as_on_record),
            Fact::FamilyName => (t.family_name, "text", "family-name", t.as_on_record),
            Fact::PostalCode => (t.postal_code, "text", "postal-code", t.postal_hint),
        };
        let mut field = Field::new(fact.as_str(), label, kind, autocomplete);
        field.required = required;
        field.hint = Some(if required { hint } else { t.optional_hint });
        form = form.field(field);
    }
    let mut email = Field::new("email", t.email_label, "email", "email");
    email.hint = Some(t.email_hint);
    email.value = &values.email;
    if let Some(FormError::Email) = error {
        email.error = Some(t.email_error);
    }
    form = form.field(email).button(if link { t.continue_button } else { t.set_up_button }, None);
    page.form(form)
}

enum FormError {
    Rejected,
    Email,
}

fn closed_link_page(brand: &Brand, token: &str, status: LinkStatus) -> Page {
    let t = brand.t;
    let (heading, text) = match status {
        LinkStatus::Used => t.link_used,
        LinkStatus::Expired => t.link_expired,
        LinkStatus::Replaced => t.link_replaced,
        LinkStatus::Locked => t.link_locked,
        LinkStatus::Unknown | LinkStatus::Open => t.link_invalid,
    };
    brand
        .page(heading)
        .text(text)
        .text(t.new_link_offer)
        .form(brand.form("claim/new-link").hidden("token", token).button(t.new_link_button, None))
}

/// `POST /claim`.
pub async fn claim_submit(app: &App, req: &Request) -> Response<Body> {
    let form = match read_form(app, req) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let asked = Asked::of(req, Some(&form));
    let brand = brand(app, &asked, field("tenant").as_deref(), field("portal").as_deref()).await;
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
        return message(&brand, StatusCode::BAD_REQUEST, brand.t.no_address.0, brand.t.no_address.1);
    };
    let facts: BTreeMap<Fact, String> =
        [Fact::DateOfBirth, Fact::FamilyName, Fact::PostalCode].into_iter().filter_map(|f| field(f.as_str()).map(|v| (f, v))).collect();
    // A branded page takes only its own tenant's portal's codes; one that names
    // a tenant or portal that is not there takes none (the same 400 as an unknown code).
    let portal = match (field("tenant"), field("portal")) {
        (None, None) => ClaimPortal::Any,
        (tenant, portal) => match (tenant.as_deref().map(TenantId::parse), portal.as_deref().map(PortalId::parse)) {
            (Some(Ok(t)), Some(Ok(p))) => ClaimPortal::OfTenant(t, p),
            _ => ClaimPortal::NoneMatches,
        },
    };
    let attempt = ClaimAttempt {
        locale: crate::domain::Locale::parse(brand.t.lang).ok(),
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
        Ok(ClaimOutcome::ConfirmationSent) => brand
            .page(brand.t.check_email)
            .notice("ok", &brand.t.sent_link.replace("{email}", email.as_str()))
            .text(brand.t.open_it)
            .text(brand.t.spam)
            .respond(StatusCode::ACCEPTED),
        Err(ClaimError::Rejected) => claim_form_page(&brand, &values, Some(FormError::Rejected)).respond(StatusCode::BAD_REQUEST),
        Err(e) => claim_failure(&brand, e),
    }
}

fn done(brand: &Brand, email: &EmailAddress) -> Response<Body> {
    brand
        .page(brand.t.ready)
        .notice("ok", &brand.t.ready_notice.replace("{email}", email.as_str()))
        .text(brand.t.ready_text)
        .respond(StatusCode::CREATED)
}

fn claim_failure(brand: &Brand, e: ClaimError) -> Response<Body> {
    match e {
        ClaimError::RateLimited { retry_after_secs } => {
            let minutes = retry_after_secs.div_ceil(60).max(1);
            let mut response = message(brand, StatusCode::TOO_MANY_REQUESTS, brand.t.too_many.0, &brand.t.too_many.1.replace("{minutes}", &minutes.to_string()));
            response.headers_mut().insert("retry-after", retry_after_secs.to_string().parse().expect("a number is a header value"));
            response
        }
        ClaimError::EmailNotQueued(_) | ClaimError::ProviderUnavailable(_) => {
            tracing::error!(error = ?e, "a claim page could not finish");
            try_again(brand)
        }
        ClaimError::Rejected => message(brand, StatusCode::BAD_REQUEST, brand.t.no_longer.0, brand.t.no_longer.1),
        ClaimError::Unexpected(e) => failure(e),
    }
}

/// `GET /claim/confirm?token=…`: a button; nothing is used up.
pub async fn confirm_page(app: &App, req: &Request) -> Response<Body> {
    let token = query(req, "token").unwrap_or_default();
    let asked = Asked::of(req, None);
    let open = match claim::open_confirmation(app, &token).await {
        Ok(open) => open,
        Err(e) => return failure(e),
    };
    match open {
        Some(c) => {
            let brand = brand(app, &asked, Some(c.tenant_id.as_str()), Some(c.portal_id.as_str())).await;
            brand
                .page(brand.t.confirm_heading)
                .text(&brand.t.confirm_text.replace("{email}", c.email.as_str()))
                .form(brand.form("confirm").hidden("token", &token).button(brand.t.confirm_button, None))
                .respond(StatusCode::OK)
        }
        None => {
            let brand = brand(app, &asked, query(req, "tenant").as_deref(), query(req, "portal").as_deref()).await;
            confirmation_closed(&brand)
        }
    }
}

fn confirmation_closed(brand: &Brand) -> Response<Body> {
    let (heading, first, second) = brand.t.confirmation_closed;
    brand.page(heading).text(first).text(second).respond(StatusCode::BAD_REQUEST)
}

/// `POST /claim/confirm`.
pub async fn confirm_submit(app: &App, req: &Request) -> Response<Body> {
    let form = match read_form(app, req) {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    let asked = Asked::of(req, Some(&form));
    // The brand is read before the confirmation is used up.
    let brand = match claim::open_confirmation(app, &token).await {
        Ok(Some(c)) => brand(app, &asked, Some(c.tenant_id.as_str()), Some(c.portal_id.as_str())).await,
        Ok(None) => brand(app, &asked, None, None).await,
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
    let asked = Asked::of(req, Some(&form));
    let brand = match claim::link_status(app, &token).await {
        Ok((_, Some((tenant, portal)))) => brand(app, &asked, Some(tenant.as_str()), Some(portal.as_str())).await,
        Ok((_, None)) => brand(app, &asked, None, None).await,
        Err(e) => return failure(e),
    };
    match new_link::request(app, &token).await {
        Ok(outcome) => tracing::info!(?outcome, "new link requested"),
        // The person sees the same page; the log has the cause.
        Err(e) => tracing::error!(error = ?e, "a new link could not be sent"),
    }
    brand.page(brand.t.check_email).notice("ok", brand.t.new_link_sent.0).text(brand.t.new_link_sent.1).respond(StatusCode::OK)
}

/// A short page with a heading and one paragraph.
fn message(brand: &Brand, status: StatusCode, heading: &str, text: &str) -> Response<Body> {
    brand.page(heading).text(text).respond(status)
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
    let mut response = message(brand, StatusCode::SERVICE_UNAVAILABLE, brand.t.try_again.0, brand.t.try_again.1);
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
