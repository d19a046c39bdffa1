//! Per-registry transport settings: a registries file in the TOML shape of
//! containers' registries.conf (`[[registry]] location = "host:port"`,
//! `insecure = true`), plus `ca = "/path/ca.pem"`, and CA certificates in
//! certs.d directories (`<dir>/<host:port>/*.crt`) as Docker and Podman
//! read them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_CONFIG: &str = "/etc/hull/registries.conf";
pub const CERTS_DIRS: &[&str] = &[
    "/etc/hull/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
];
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistriesConfig {
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryEntry {
    pub location: String,
    /// Plain HTTP allowed and TLS certificates not verified.
    #[serde(default)]
    pub insecure: bool,
    /// An extra CA certificate (PEM) trusted for this registry.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl RegistriesConfig {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        })
    }

    pub fn entry(&self, host: &str) -> Option<&RegistryEntry> {
        self.registries.iter().find(|r| r.location == host)
    }
}

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub insecure: bool,
    pub extra_cas: Vec<PathBuf>,
}

impl Transport {
    pub fn for_host(config: &RegistriesConfig, certs_dirs: &[PathBuf], host: &str) -> Transport {
        let entry = config.entry(host);
        let mut extra_cas: Vec<PathBuf> = entry.and_then(|e| e.ca.clone()).into_iter().collect();
        for dir in certs_dirs {
            let Ok(files) = std::fs::read_dir(dir.join(host)) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|x| x == "crt") {
                    extra_cas.push(p);
                }
            }
        }
        Transport {
            insecure: entry.is_some_and(|e| e.insecure),
            extra_cas,
        }
    }

    /// The TLS client configuration: system roots plus the extra CAs, or
    /// no verification at all for an insecure registry.
    pub fn tls_config(&self, host: &str) -> Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(host, e))?;
        if self.insecure && self.extra_cas.is_empty() {
            let cfg = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth();
            return Ok(Arc::new(cfg));
        }
        let mut roots = rustls::RootCertStore::empty();
        if Path::new(SYSTEM_ROOTS).exists() {
            add_pem(&mut roots, Path::new(SYSTEM_ROOTS))?;
        } else {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for ca in &self.extra_cas {
            add_pem(&mut roots, ca)?;
        }
        Ok(Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        ))
    }
}

fn tls_err(host: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        registry: host.to_string(),
        op: "tls".into(),
        reason: e.to_string(),
    }
}

fn add_pem(roots: &mut rustls::RootCertStore, path: &Path) -> Result<()> {
    let data = std::fs::read(path).map_err(Error::io("read", path))?;
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut data.as_slice()) {
        let cert = cert.map_err(Error::io("parse certificate", path))?;
        if roots.add(cert).is_ok() {
            n += 1;
        }
    }
    if n == 0 {
        return Err(Error::Config {
            path: path.to_path_buf(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(())
}

/// Accepts any server certificate: only for registries marked insecure.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_conf() {
        let c: RegistriesConfig = toml::from_str(
            r#"
            unqualified-search-registries = ["docker.io"]
            [[registry]]
            location = "reg.example:5000"
            insecure = true
            [[registry]]
            location = "tls.example"
            ca = "/etc/ca.pem"
            "#,
        )
        .unwrap();
        assert!(c.entry("reg.example:5000").unwrap().insecure);
        let t = Transport::for_host(&c, &[], "tls.example");
        assert!(!t.insecure);
        assert_eq!(t.extra_cas, [PathBuf::from("/etc/ca.pem")]);
        assert!(!Transport::for_host(&c, &[], "127.0.0.1:5000").insecure);
        assert!(!Transport::for_host(&c, &[], "quay.io").insecure);
    }
}
