//! Behind CloudFront (template.yaml's `WebAclArn`): WAF cannot attach to an
//! HTTP API, so a distribution with the web ACL sits in front of it and sends
//! every request on with a secret header, `X-Portal-Edge`
//! (`PORTAL_EDGE_SECRET_ARN`). A request without it, or with another value,
//! did not pass the web ACL: 403, before any route runs. A request with it
//! names its client in `CloudFront-Viewer-Address` (the source address the
//! gateway sees is CloudFront's), and that address is what the claim
//! throttle counts from then on: a direct call cannot forge it, since it
//! cannot pass without the secret.
//!
//! The secret's current and previous values both pass (`crate::secrets`,
//! cached a minute), so rotating it does not refuse requests in between.

use super::problem::ApiError;
use crate::app::App;
use lambda_http::request::RequestContext;
use lambda_http::Request;
use std::net::IpAddr;

/// The header CloudFront adds with the secret.
pub const EDGE_HEADER: &str = "x-portal-edge";
/// The header CloudFront adds with the viewer's address and port.
pub const VIEWER_HEADER: &str = "cloudfront-viewer-address";

/// The request as the routes see it: unchanged without an edge; behind one,
/// only with the secret, its source address the viewer's.
pub async fn admit(app: &App, mut req: Request) -> Result<Request, ApiError> {
    let Some(secret) = &app.edge_secret else {
        return Ok(req);
    };
    let versions = app.secrets.get(secret).await?.ok_or_else(|| anyhow::anyhow!("the edge secret {secret} does not exist"))?;
    let given = header(&req, EDGE_HEADER).unwrap_or_default().to_owned();
    if !versions.keys().iter().any(|key| same(key, given.as_bytes())) {
        return Err(ApiError::NotThroughEdge);
    }
    let viewer = header(&req, VIEWER_HEADER).and_then(viewer_address);
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.extensions_mut().get_mut::<RequestContext>() {
        // CloudFront always sends it; without it, no address at all rather than CloudFront's.
        ctx.http.source_ip = viewer.map(|ip| ip.to_string());
    }
    Ok(req)
}

/// The address in a `CloudFront-Viewer-Address` value: `198.51.100.7:46532`,
/// or an IPv6 address and port the same way (`2001:db8::1:46532`, no brackets).
pub fn viewer_address(value: &str) -> Option<IpAddr> {
    let (ip, port) = value.trim().rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// A header's value, when it is text.
fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_viewer_address_is_read_without_its_port() {
        assert_eq!(viewer_address("198.51.100.7:46532"), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(viewer_address("2001:db8:85a3::8a2e:370:7334:46532"), Some("2001:db8:85a3::8a2e:370:7334".parse().unwrap()));
        for bad in ["", "198.51.100.7", "198.51.100.7:", "198.51.100.7:99999", "evil:80", "1.2.3.4, 5.6.7.8:1"] {
            assert_eq!(viewer_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"x"));
    }
}
