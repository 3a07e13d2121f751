//! `GET /console` and `GET /console/{proxy+}`: the staff console and the
//! embeddable portlet's script, static files built from
//! `functions/console/web` (`node build.mjs` → `dist/`), which `sam build`
//! copies beside the `console` function's bootstrap (infra/lambda/Makefile).
//!
//! The files are read once per instance from `CONSOLE_ASSETS_DIR` (default
//! `$LAMBDA_TASK_ROOT/console`) and held in memory; `config.json` is written
//! from the environment: the issuer the API trusts (`JWT_ISSUER`), the
//! console's client id (`CONSOLE_CLIENT_ID`) and the scopes it asks for, and
//! on the local stack only, its sign-in page (`CONSOLE_LOCAL_SIGN_IN`).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles
//! only from here, connections only here and to the issuer); a path without
//! an extension that names no file is the console itself (the single-page
//! fallback), one with an extension is 404.

use super::routes::{Function, Route};
use crate::app::App;
use lambda_http::{http::StatusCode, Body, Request, RequestExt as _, Response};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `console` function.
pub struct Console;

impl Function for Console {
    const NAME: &'static str = "console";
    async fn handle(_app: &App, route: Route, req: Request) -> Response<Body> {
        if route == Route::Unrouted {
            return unrouted(req.raw_http_path());
        }
        let assets = Assets::get();
        let raw_path = req.raw_http_path().to_owned();
        let asked = match route {
            Route::ConsoleAsset => req.path_parameters().first("proxy").unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        assets.answer(&asked, raw_path.ends_with('/'))
    }
}

/// The `$default` route's answer: 405 with `Allow` for a path the API routes
/// by other methods (RFC 9110), else API Gateway's own 404.
pub fn unrouted(path: &str) -> Response<Body> {
    let allowed = Route::allowed_methods(path);
    let (status, message) = if allowed.is_empty() { (StatusCode::NOT_FOUND, "Not Found") } else { (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed") };
    let mut response = Response::builder().status(status).header("content-type", "application/json");
    if !allowed.is_empty() {
        response = response.header("allow", allowed.join(", "));
    }
    response.body(Body::Text(serde_json::json!({ "message": message }).to_string())).expect("a valid response")
}

/// At most this many files, each at most this large: a build gone wrong
/// cannot fill an instance's memory.
const MAX_FILES: usize = 200;
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// The built files, by path below the console (`index.html`, `demo/index.html`).
pub struct Assets {
    files: HashMap<String, Vec<u8>>,
    config: String,
    csp: String,
    /// Whether `/console/demo/` (a host page that takes a token in its URL) is served: only
    /// in the local stack, never by the template's deployment.
    demo: bool,
}

/// What `config.json` holds: how the console signs in.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConsoleConfig {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub local_sign_in: Option<String>,
}

impl ConsoleConfig {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            issuer: var("JWT_ISSUER").unwrap_or_default(),
            client_id: var("CONSOLE_CLIENT_ID").unwrap_or_default(),
            scopes: var("CONSOLE_SCOPES").unwrap_or_else(|| "openid email".into()),
            local_sign_in: var("CONSOLE_LOCAL_SIGN_IN"),
        }
    }
}

static ASSETS: OnceLock<Assets> = OnceLock::new();

impl Assets {
    /// This instance's files, read on first use (from the environment, unless [`Assets::install`]ed).
    pub fn get() -> &'static Assets {
        ASSETS.get_or_init(|| {
            let dir = std::env::var_os("CONSOLE_ASSETS_DIR").map(PathBuf::from).unwrap_or_else(|| {
                std::env::var_os("LAMBDA_TASK_ROOT").map(PathBuf::from).unwrap_or_default().join("console")
            });
            let local = crate::domain::web_url::Deployment::from_flag(std::env::var("PORTAL_LOCAL").ok().as_deref());
            Assets::from_dir(&dir, ConsoleConfig::from_env()).with_demo(local == crate::domain::web_url::Deployment::Local)
        })
    }

    /// The files the process serves, set before the first request (the local gateway's: the
    /// build in the repository and its own sign-in page). False when some were in use already.
    pub fn install(assets: Assets) -> bool {
        ASSETS.set(assets).is_ok()
    }

    /// The files below `dir` (none, logged, when it cannot be read).
    pub fn from_dir(dir: &Path, config: ConsoleConfig) -> Self {
        let files = read_dir(dir).unwrap_or_else(|e| {
            tracing::error!(dir = %dir.display(), error = %e, "the console's files could not be read");
            HashMap::new()
        });
        Assets::new(files, config)
    }

    pub fn new(files: HashMap<String, Vec<u8>>, config: ConsoleConfig) -> Self {
        let csp = content_security_policy(&config.issuer, std::env::var("CONSOLE_AUTH_ORIGINS").unwrap_or_default().split_whitespace());
        Self { files, config: serde_json::to_string(&config).expect("config serialises"), csp, demo: false }
    }

    /// Serves the demo host page too (the local stack only).
    pub fn with_demo(mut self, on: bool) -> Self {
        self.demo = on;
        self
    }

    /// The answer to `GET /console/{asked}` (`asked` empty for the console's root);
    /// `slash`: the request's path ended in `/`.
    pub fn answer(&self, asked: &str, slash: bool) -> Response<Body> {
        let asked = asked.trim_matches('/');
        if asked.split('/').any(|s| s == ".." || s == "." || s.starts_with('.')) {
            return self.not_found();
        }
        if !self.demo && (asked == "demo" || asked.starts_with("demo/")) {
            return self.not_found();
        }
        if asked == "config.json" {
            return self.respond(StatusCode::OK, "config.json", self.config.clone().into_bytes());
        }
        if let Some(bytes) = self.files.get(asked).filter(|_| !asked.is_empty()) {
            return self.respond(StatusCode::OK, asked, bytes.clone());
        }
        let index = if asked.is_empty() { "index.html".to_owned() } else { format!("{asked}/index.html") };
        if self.files.contains_key(&index) {
            // A folder's page: relative links resolve against its path only with the slash.
            if !slash {
                let to = if asked.is_empty() { "/console/".to_owned() } else { format!("/console/{asked}/") };
                return self.redirect(&to);
            }
            return self.respond(StatusCode::OK, &index, self.files[&index].clone());
        }
        let last = asked.rsplit('/').next().unwrap_or_default();
        match self.files.get("index.html") {
            // The single-page fallback: a console path, not a missing file.
            Some(page) if !last.contains('.') => self.respond(StatusCode::OK, "index.html", page.clone()),
            _ => self.not_found(),
        }
    }

    fn respond(&self, status: StatusCode, name: &str, bytes: Vec<u8>) -> Response<Body> {
        let (kind, text) = content_type(name);
        let cache = if name.ends_with(".html") || name == "config.json" { "no-cache" } else { "public, max-age=300" };
        let body = match String::from_utf8(bytes) {
            Ok(s) if text => Body::Text(s),
            Ok(s) => Body::Binary(s.into_bytes()),
            Err(e) => Body::Binary(e.into_bytes()),
        };
        self.headers(Response::builder().status(status).header("content-type", kind).header("cache-control", cache), name)
            .body(body)
            .expect("a valid response")
    }

    fn redirect(&self, to: &str) -> Response<Body> {
        self.headers(Response::builder().status(StatusCode::MOVED_PERMANENTLY).header("location", to), "")
            .body(Body::Empty)
            .expect("a valid response")
    }

    fn not_found(&self) -> Response<Body> {
        self.headers(Response::builder().status(StatusCode::NOT_FOUND).header("content-type", "text/plain; charset=utf-8"), "")
            .body(Body::Text("Not found\n".into()))
            .expect("a valid response")
    }

    fn headers(&self, b: lambda_http::http::response::Builder, name: &str) -> lambda_http::http::response::Builder {
        let b = b
            .header("content-security-policy", &self.csp)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .header("strict-transport-security", "max-age=31536000; includeSubDomains");
        // The portlet's script is loaded by other products' pages; nothing else is framed or shared.
        if name == "portlet.js" {
            b.header("access-control-allow-origin", "*").header("cross-origin-resource-policy", "cross-origin")
        } else {
            b.header("x-frame-options", "DENY").header("cross-origin-resource-policy", "same-origin")
        }
    }
}

/// Scripts and styles only from here; connections here, to the issuer and to
/// the origins its discovery names (`CONSOLE_AUTH_ORIGINS`, e.g. a Cognito
/// domain); never framed; forms only here.
pub fn content_security_policy<'a>(issuer: &'a str, more: impl Iterator<Item = &'a str>) -> String {
    let mut connect = vec!["'self'".to_owned()];
    for origin in std::iter::once(issuer).chain(more).filter_map(origin_of) {
        if !connect.contains(&origin) {
            connect.push(origin);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src {}; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// `scheme://host[:port]` of an http(s) URL, nothing for anything else.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (matches!(scheme, "https" | "http") && !host.is_empty() && host.chars().all(plain)).then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn content_type(name: &str) -> (&'static str, bool) {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => ("text/html; charset=utf-8", true),
        "js" | "mjs" => ("text/javascript; charset=utf-8", true),
        "css" => ("text/css; charset=utf-8", true),
        "json" => ("application/json", true),
        "svg" => ("image/svg+xml", true),
        "txt" => ("text/plain; charset=utf-8", true),
        "png" => ("image/png", false),
        "ico" => ("image/x-icon", false),
        _ => ("application/octet-stream", false),
    }
}

/// Every file below `dir`, by its relative path with `/` separators.
fn read_dir(dir: &Path) -> std::io::Result<HashMap<String, Vec<u8>>> {
    let mut files = HashMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() && entry.metadata()?.len() <= MAX_FILE_BYTES && files.len() < MAX_FILES {
                let rel = path.strip_prefix(dir).expect("below the dir").to_string_lossy().replace('\\', "/");
                files.insert(rel, std::fs::read(&path)?);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> Assets {
        let files = [("index.html", "<p>console"), ("console.js", "js"), ("portlet.js", "p"), ("demo/index.html", "<p>demo")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
            .collect();
        let config = ConsoleConfig { issuer: "https://idp.example/pool".into(), client_id: "c1".into(), scopes: "openid".into(), local_sign_in: None };
        Assets::new(files, config).with_demo(true)
    }

    fn text(r: &Response<Body>) -> String {
        match r.body() {
            Body::Text(t) => t.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn the_demo_page_is_served_only_in_the_local_stack() {
        let deployed = assets().with_demo(false);
        for path in ["demo", "demo/", "demo/index.html"] {
            assert_eq!(deployed.answer(path, path.ends_with('/')).status(), 404, "{path}");
        }
        assert_eq!(deployed.answer("", true).status(), 200, "the console itself is served");
        assert_eq!(text(&assets().answer("demo/", true)), "<p>demo");
    }

    #[test]
    fn files_folders_config_and_the_single_page_fallback() {
        let a = assets();
        let r = a.answer("console.js", false);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
        assert_eq!(a.answer("", true).status(), 200);
        assert_eq!(text(&a.answer("", true)), "<p>console");
        let r = a.answer("", false);
        assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (301, "/console/"));
        let r = a.answer("demo", false);
        assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (301, "/console/demo/"));
        assert_eq!(text(&a.answer("demo/", true)), "<p>demo");
        assert_eq!(text(&a.answer("contacts/c-1", false)), "<p>console", "a console path is the console");
        assert_eq!(a.answer("missing.js", false).status(), 404);
        let cfg: serde_json::Value = serde_json::from_str(&text(&a.answer("config.json", false))).unwrap();
        assert_eq!(cfg["client_id"], "c1");
        assert_eq!(cfg["local_sign_in"], serde_json::Value::Null);
    }

    #[test]
    fn no_path_leaves_the_folder_and_only_the_portlet_is_shared() {
        let a = assets();
        for bad in ["../secret", "demo/../../x", ".env", "demo/.hidden"] {
            assert_eq!(a.answer(bad, false).status(), 404, "{bad}");
        }
        assert_eq!(a.answer("portlet.js", false).headers()["access-control-allow-origin"], "*");
        let page = a.answer("", true);
        assert!(page.headers().get("access-control-allow-origin").is_none());
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';") && csp.contains("connect-src 'self' https://idp.example;"), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn connections_go_only_to_http_origins() {
        let csp = content_security_policy("https://cognito-idp.eu-west-1.amazonaws.com/pool", ["https://x.auth.eu-west-1.amazoncognito.com", "javascript:alert(1)", "nonsense"].into_iter());
        assert!(csp.contains("connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://x.auth.eu-west-1.amazoncognito.com;"), "{csp}");
    }
}
