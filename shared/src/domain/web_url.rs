//! The URLs a portal names for us to link to (`claim_url`) or fetch from
//! (an identity provider's issuer and JWKS): read with the `url` crate (the
//! WHATWG URL parser, the reading browsers and HTTP clients give them), never
//! by slicing the text, so the check and the fetch cannot disagree about the
//! scheme or the host.
//!
//! In AWS they must be `https` with a host and no credentials. Only the local
//! stack ([`Deployment::Local`], `PORTAL_LOCAL`, which template.yaml never
//! sets) also takes `http` to a loopback host, where its moto and its pages live.

use url::{Host, Url};

/// Where this deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deployment {
    /// In AWS, as template.yaml deploys it.
    #[default]
    Aws,
    /// The Docker-free local stack (`PORTAL_LOCAL` set by `portal-local`).
    Local,
}

impl Deployment {
    /// From `PORTAL_LOCAL` (`1` or `true`: local; anything else or unset: AWS).
    pub fn from_flag(flag: Option<&str>) -> Self {
        match flag.map(str::trim) {
            Some("1") | Some("true") => Self::Local,
            _ => Self::Aws,
        }
    }

    pub fn is_local(self) -> bool {
        self == Self::Local
    }
}

/// Longest URL a portal may name.
pub const MAX_URL_LEN: usize = 2048;

/// Whether `raw` is a URL this deployment may link to or fetch from: `https`
/// with a host and no user or password, or, in local mode only, `http` to a
/// loopback host.
pub fn secure(raw: &str, deployment: Deployment) -> bool {
    if raw.len() > MAX_URL_LEN || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Ok(url) = Url::parse(raw) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let Some(host) = url.host() else {
        return false;
    };
    match url.scheme() {
        "https" => !matches!(&host, Host::Domain(d) if d.is_empty()),
        "http" => deployment.is_local() && loopback(&host),
        _ => false,
    }
}

fn loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback_in_local_mode() {
        for ok in ["https://portal.example.com/claim", "https://[2001:db8::1]/x", "https://idp.example:8443/.well-known/jwks.json"] {
            assert!(secure(ok, Deployment::Aws), "{ok}");
            assert!(secure(ok, Deployment::Local), "{ok}");
        }
        for local in ["http://127.0.0.1:3000/claim", "http://localhost:5000/jwks", "http://[::1]/x", "http://127.9.9.9/"] {
            assert!(!secure(local, Deployment::Aws), "{local} in AWS");
            assert!(secure(local, Deployment::Local), "{local} locally");
        }
        for bad in [
            "http://portal.example.com/claim",
            "http://10.1.2.3/jwks",
            "http://169.254.169.254/latest/meta-data",
            // The URL parser's reading, not the text's: the host here is evil.example.
            "https://127.0.0.1@evil.example/",
            "http://localhost@evil.example/",
            "http://127.0.0.1.evil.example/",
            "javascript:alert(1)",
            "ftp://portal.example.com/",
            "https://",
            "//portal.example.com/claim",
            "https://portal.example.com/a b",
            "https://user:pw@portal.example.com/",
        ] {
            assert!(!secure(bad, Deployment::Local), "{bad}");
            assert!(!secure(bad, Deployment::Aws), "{bad}");
        }
        assert!(!secure(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN)), Deployment::Aws));
    }

    #[test]
    fn only_an_explicit_flag_is_local() {
        assert_eq!(Deployment::from_flag(Some("1")), Deployment::Local);
        assert_eq!(Deployment::from_flag(Some("true")), Deployment::Local);
        for other in [None, Some(""), Some("0"), Some("false"), Some("yes")] {
            assert_eq!(Deployment::from_flag(other), Deployment::Aws, "{other:?}");
        }
    }
}
