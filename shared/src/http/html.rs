//! The hosted pages' HTML: one layout, escaping, and the headers every page
//! carries. No JavaScript at all; one stylesheet, inline but allowed by its
//! hash in the Content-Security-Policy (no `unsafe-inline`), so a page is a
//! single small response (well under 20 KB) that works on any phone.

use base64::Engine as _;
use lambda_http::{http::StatusCode, Body, Response};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// The pages' stylesheet: system fonts, one column, large touch targets,
/// colours with a contrast of at least 4.5:1, a visible focus ring.
pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;background:#f4f6f8}\
header{background:#0b3d62;color:#fff;padding:.9rem 1rem}\
header p{margin:0;font-weight:600;font-size:1.05rem}\
main{max-width:32rem;margin:0 auto;padding:1rem}\
h1{font-size:1.5rem;line-height:1.25;margin:.75rem 0 1rem}\
.card{background:#fff;border:1px solid #cfd6dd;border-radius:.5rem;padding:1.25rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
.hint{display:block;color:#4a5560;font-size:.95rem;margin:0 0 .35rem}\
input{display:block;width:100%;font:inherit;padding:.65rem .75rem;border:2px solid #5c6873;border-radius:.375rem;background:#fff;color:#1b1f24}\
input[aria-invalid=true]{border-color:#b3261e}\
button{display:block;width:100%;margin-top:1.5rem;font:inherit;font-weight:600;padding:.8rem 1rem;border:0;border-radius:.375rem;background:#0b5cad;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0b5cad;border:2px solid #0b5cad}\
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}\
.alert{border-left:.35rem solid #b3261e;background:#fdecea;padding:.75rem 1rem;margin:0 0 1rem}\
.ok{border-left:.35rem solid #1e7a3c;background:#e7f4ea;padding:.75rem 1rem;margin:0 0 1rem}\
.error{color:#b3261e;font-weight:600;margin:.25rem 0 0}\
footer{max-width:32rem;margin:0 auto;padding:1rem;color:#4a5560;font-size:.9rem}\
a{color:#0b5cad}";

/// `'sha256-…'` of [`STYLE`], for the CSP's `style-src`.
fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()))))
}

/// The Content-Security-Policy of every page: nothing but the stylesheet,
/// forms only to ourselves, never framed.
pub fn content_security_policy() -> String {
    format!("default-src 'none'; style-src {}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", style_hash())
}

/// Text made safe for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One page: whose it is (the portal's name, in the header and the title),
/// its heading, and its body (HTML already escaped by the builders below).
pub struct Page {
    pub portal_name: String,
    pub heading: String,
    pub body: String,
    /// The page's language (`<html lang>`) and its footer's sentence.
    pub lang: &'static str,
    pub footer: Option<String>,
}

impl Page {
    pub fn new(portal_name: &str, heading: &str) -> Self {
        Self { portal_name: portal_name.to_owned(), heading: heading.to_owned(), body: String::new(), lang: "en", footer: None }
    }

    /// In another language than English, with that language's footer.
    pub fn in_language(mut self, lang: &'static str, footer: &str) -> Self {
        self.lang = lang;
        self.footer = Some(footer.to_owned());
        self
    }

    /// A paragraph of text.
    pub fn text(mut self, text: &str) -> Self {
        let _ = write!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// A message box: `alert` (an error, announced) or `ok`.
    pub fn notice(mut self, class: &str, text: &str) -> Self {
        let role = if class == "alert" { " role=\"alert\"" } else { " role=\"status\"" };
        let _ = write!(self.body, "<div class=\"{class}\"{role}><p>{}</p></div>", escape(text));
        self
    }

    /// A form (already built).
    pub fn form(mut self, form: Form) -> Self {
        self.body.push_str(&form.finish());
        self
    }

    pub fn render(&self) -> String {
        let title = if self.heading == self.portal_name {
            escape(&self.heading)
        } else {
            format!("{} – {}", escape(&self.heading), escape(&self.portal_name))
        };
        format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>{STYLE}</style></head>\
             <body><header><p>{portal}</p></header><main><h1>{heading}</h1><div class=\"card\">{body}</div></main>\
             <footer><p>{footer}</p></footer></body></html>",
            lang = self.lang,
            footer = escape(self.footer.as_deref().unwrap_or(&format!("Secure account set-up for {}.", self.portal_name))),
            portal = escape(&self.portal_name),
            heading = escape(&self.heading),
            body = self.body,
        )
    }

    /// The page as a response with the strict headers.
    pub fn respond(&self, status: StatusCode) -> Response<Body> {
        page_response(status, self.render())
    }
}

/// An HTML answer with the headers every hosted page carries.
pub fn page_response(status: StatusCode, html: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("content-security-policy", content_security_policy())
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store")
        .body(Body::Text(html))
        .expect("a valid response")
}

/// A form that posts to `action` (relative to the page, so the pages work
/// under any base path).
pub struct Form {
    html: String,
}

/// One input of a form.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub autocomplete: &'a str,
    pub hint: Option<&'a str>,
    pub value: &'a str,
    pub required: bool,
    pub error: Option<&'a str>,
    pub inputmode: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self { name, label, kind, autocomplete, hint: None, value: "", required: true, error: None, inputmode: None }
    }
}

impl Form {
    pub fn post(action: &str) -> Self {
        Self { html: format!("<form method=\"post\" action=\"{}\">", escape(action)) }
    }

    pub fn hidden(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.html, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value));
        self
    }

    pub fn field(mut self, f: Field<'_>) -> Self {
        let id = format!("f-{}", f.name);
        let mut described = Vec::new();
        let _ = write!(self.html, "<label for=\"{id}\">{}</label>", escape(f.label));
        if let Some(hint) = f.hint {
            let _ = write!(self.html, "<span class=\"hint\" id=\"{id}-hint\">{}</span>", escape(hint));
            described.push(format!("{id}-hint"));
        }
        if f.error.is_some() {
            described.push(format!("{id}-error"));
        }
        let _ = write!(
            self.html,
            "<input id=\"{id}\" name=\"{}\" type=\"{}\" autocomplete=\"{}\" value=\"{}\"{}{}{}{}>",
            escape(f.name),
            escape(f.kind),
            escape(f.autocomplete),
            escape(f.value),
            if f.required { " required" } else { "" },
            f.inputmode.map(|m| format!(" inputmode=\"{}\"", escape(m))).unwrap_or_default(),
            if described.is_empty() { String::new() } else { format!(" aria-describedby=\"{}\"", described.join(" ")) },
            if f.error.is_some() { " aria-invalid=\"true\"" } else { "" },
        );
        if let Some(error) = f.error {
            let _ = write!(self.html, "<p class=\"error\" id=\"{id}-error\">{}</p>", escape(error));
        }
        self
    }

    pub fn button(mut self, label: &str, class: Option<&str>) -> Self {
        let class = class.map(|c| format!(" class=\"{}\"", escape(c))).unwrap_or_default();
        let _ = write!(self.html, "<button type=\"submit\"{class}>{}</button>", escape(label));
        self
    }

    fn finish(mut self) -> String {
        self.html.push_str("</form>");
        self.html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(escape(r#"<script>"a" & 'b'</script>"#), "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;");
        let html = Page::new("<b>Clinic</b>", "Hi").form(Form::post("claim").hidden("token", "\"><script>")).render();
        assert!(!html.contains("<b>Clinic") && !html.contains("\"><script>"), "{html}");
        assert!(html.contains("&lt;b&gt;Clinic&lt;/b&gt;"));
    }

    #[test]
    fn the_policy_allows_exactly_the_stylesheet_and_no_script() {
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
        let html = Page::new("P", "H").render();
        assert!(!html.contains("<script"), "no script at all");
        assert!(html.contains(&format!("<style>{STYLE}</style>")), "the hashed stylesheet is the page's, byte for byte");
    }
}
