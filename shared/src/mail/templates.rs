//! Email templates (minijinja) and the built-in default for each kind.
//!
//! Templates see a fixed set of variables ([`TemplateVars`]); an unknown one
//! is an error, not an empty string. HTML bodies are auto-escaped, so a
//! contact named `<script>` arrives as text. A subject never carries a line
//! break (it would let content inject headers).

use super::EmailKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeMap;

/// The variables every template may use. All are strings; absent ones are empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateVars {
    pub contact_name: String,
    pub portal_name: String,
    pub tenant_name: String,
    pub code: String,
    pub link: String,
    pub claim_url: String,
    pub expires_at: String,
}

impl TemplateVars {
    pub const NAMES: [&'static str; 7] =
        ["contact_name", "portal_name", "tenant_name", "code", "link", "claim_url", "expires_at"];

    pub fn to_map(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).expect("strings serialise");
        serde_json::from_value(value).expect("a map of strings")
    }

    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        Self {
            contact_name: get("contact_name"),
            portal_name: get("portal_name"),
            tenant_name: get("tenant_name"),
            code: get("code"),
            link: get("link"),
            claim_url: get("claim_url"),
            expires_at: get("expires_at"),
        }
    }
}

/// A template: subject, plain text and HTML bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EmailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("template {part}: {source}")]
pub struct TemplateError {
    pub part: &'static str,
    #[source]
    pub source: minijinja::Error,
}

/// The built-in template for a kind.
pub fn default_template(kind: EmailKind) -> EmailTemplate {
    match kind {
        EmailKind::PickupCode => EmailTemplate {
            subject: "Your {{ portal_name }} activation code".into(),
            text: "Hello {{ contact_name }},\n\n\
                   {{ tenant_name }} has invited you to {{ portal_name }}.\n\n\
                   Your pickup/activation code is: {{ code }}\n\n\
                   Go to {{ claim_url }}, enter the code and create your account.\n\
                   The code can be used once and expires at {{ expires_at }}.\n"
                .into(),
            html: "<p>Hello {{ contact_name }},</p>\n\
                   <p>{{ tenant_name }} has invited you to {{ portal_name }}.</p>\n\
                   <p>Your pickup/activation code is: <strong>{{ code }}</strong></p>\n\
                   <p>Go to <a href=\"{{ claim_url }}\">{{ claim_url }}</a>, enter the code and create your account.\n\
                   The code can be used once and expires at {{ expires_at }}.</p>\n"
                .into(),
        },
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

/// Renders a template with the given variables.
pub fn render(template: &EmailTemplate, vars: &TemplateVars) -> Result<RenderedEmail, TemplateError> {
    let env = environment();
    let one = |part: &'static str, name: &str, source: &str| {
        env.render_named_str(name, source, vars).map_err(|source| TemplateError { part, source })
    };
    let subject = one("subject", "subject.txt", &template.subject)?;
    Ok(RenderedEmail {
        subject: subject.replace(['\r', '\n'], " ").trim().to_owned(),
        text: one("text", "body.txt", &template.text)?,
        html: one("html", "body.html", &template.html)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            contact_name: "<script>alert(1)</script>".into(),
            portal_name: "Clinic Portal".into(),
            tenant_name: "Acme Clinic".into(),
            code: "ABCDE-FGHJK".into(),
            claim_url: "https://portal.example/claim".into(),
            expires_at: "2026-01-08T00:00:00.000Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_pickup_email_carries_the_code_and_escapes_html() {
        let email = render(&default_template(EmailKind::PickupCode), &vars()).unwrap();
        assert_eq!(email.subject, "Your Clinic Portal activation code");
        assert!(email.text.contains("ABCDE-FGHJK") && email.html.contains("ABCDE-FGHJK"));
        assert!(email.html.contains("&lt;script&gt;"), "{}", email.html);
        assert!(!email.html.contains("<script>"));
        assert!(email.text.contains("<script>"), "plain text is not HTML-escaped");
    }

    #[test]
    fn unknown_variables_are_errors_not_blanks() {
        let t = EmailTemplate { subject: "{{ nope }}".into(), text: String::new(), html: String::new() };
        assert_eq!(render(&t, &vars()).unwrap_err().part, "subject");
    }

    #[test]
    fn subjects_lose_line_breaks() {
        let mut v = vars();
        v.portal_name = "Evil\r\nBcc: x@example.org".into();
        let email = render(&default_template(EmailKind::PickupCode), &v).unwrap();
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
    }

    #[test]
    fn vars_round_trip_through_the_stored_map() {
        let v = vars();
        let back = TemplateVars::from_map(&v.to_map());
        assert_eq!(back.code, v.code);
        assert_eq!(v.to_map().len(), TemplateVars::NAMES.len());
    }
}
