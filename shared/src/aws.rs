//! The AWS SDK configuration every function starts from.
//!
//! Region and credentials come from the environment as usual (Lambda sets
//! them). The HTTPS client trusts the root CAs of Amazon Trust Services,
//! compiled in, rather than the platform's store: every AWS service endpoint
//! (DynamoDB, SQS, SES, and their VPC and FIPS endpoints) presents a chain to
//! one of them, so no other CA can stand in for AWS, and a cold start does not
//! read and parse the system's CA files (about half the cold start of a
//! function measured here, see the README's performance section).
//! `PORTAL_TLS_ROOTS=system` trusts the platform's store instead, for a
//! TLS-inspecting proxy or a private CA in front of AWS.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (which cross-signs
/// them), in PEM, as Mozilla's CA store ships them.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../certs/amazon-trust-services.pem");

/// Which root CAs the functions' HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// The compiled-in Amazon Trust Services roots (the default).
    AmazonTrustServices,
    /// The platform's CA store (`PORTAL_TLS_ROOTS=system`).
    System,
}

impl TrustRoots {
    /// Reads `PORTAL_TLS_ROOTS`: unset, empty or `amazon` is the default.
    pub fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim) {
            None | Some("") | Some("amazon") => Ok(Self::AmazonTrustServices),
            Some("system") => Ok(Self::System),
            Some(other) => anyhow::bail!("PORTAL_TLS_ROOTS must be `amazon` (the default) or `system`, not {other:?}"),
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            Self::AmazonTrustServices => TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes()),
            Self::System => TrustStore::default(),
        }
    }
}

/// The SDK configuration of a function: the SDK's defaults from the
/// environment, with the HTTPS client described above.
pub async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    let roots = TrustRoots::parse(std::env::var("PORTAL_TLS_ROOTS").ok().as_deref())?;
    let tls = TlsContext::builder().with_trust_store(roots.trust_store()).build()?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https();
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{pem::PemObject, CertificateDer};

    #[test]
    fn the_bundle_holds_the_five_amazon_trust_services_roots() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        let names = ["Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4", "Starfield Services Root Certificate Authority - G2"];
        assert_eq!(certs.len(), names.len());
        for (cert, name) in certs.iter().zip(names) {
            assert!(cert.as_ref().windows(name.len()).any(|w| w == name.as_bytes()), "{name} is not where expected");
        }
    }

    #[test]
    fn the_trust_roots_setting_is_amazon_unless_system_and_refuses_anything_else() {
        assert_eq!(TrustRoots::parse(None).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some("")).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some("amazon")).unwrap(), TrustRoots::AmazonTrustServices);
        assert_eq!(TrustRoots::parse(Some(" system ")).unwrap(), TrustRoots::System);
        assert!(TrustRoots::parse(Some("none")).is_err());
    }

    #[tokio::test]
    async fn a_config_builds_with_either_store() {
        for value in ["amazon", "system"] {
            let roots = TrustRoots::parse(Some(value)).unwrap();
            TlsContext::builder().with_trust_store(roots.trust_store()).build().expect("a TLS context");
        }
    }
}
