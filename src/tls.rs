//! TLS for every outbound HTTPS call (Graph, Key Vault, Storage, the connectors, write-back): the
//! same verification reqwest does by default (rustls, the platform's root certificates through
//! `rustls-platform-verifier`), with the roots loaded once per process, and not on the way to the
//! process's first answer.
//!
//! Loading the platform's roots reads every certificate of the system store (about 150 files on
//! Debian): some 3 ms each time, and reqwest loads them for every client it builds, before the
//! process can answer anything (issue "An intake without a hot spot, and a 5 ms cold start"). Here
//! one verifier serves every client, loads the roots at its first use, and `warm` starts that
//! load on a thread of its own as soon as the process starts, so the first recovery finds them
//! ready. Written by hand because neither reqwest nor rustls-platform-verifier loads lazily: the
//! wrapper is the `ServerCertVerifier` trait, each call handed to the platform verifier.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The platform verifier, made at its first use.
#[derive(Debug)]
pub struct PlatformRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl PlatformRoots {
    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Load the roots now (on a thread of its own: `warm`).
    pub fn load(&self) {
        if let Err(e) = self.verifier() {
            tracing::error!(error = %e, "the platform's root certificates could not be loaded: every HTTPS call will fail");
        }
    }
}

impl ServerCertVerifier for PlatformRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // What the platform verifier answers, without its roots: the provider's algorithms.
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS configuration every client of the process shares, and its roots (to `warm`).
///
/// # Errors
/// The crypto provider refuses the default protocol versions (it never does).
pub fn client_config() -> Result<(rustls::ClientConfig, Arc<PlatformRoots>), rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(PlatformRoots {
        provider: provider.clone(),
        verifier: OnceLock::new(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(roots.clone())
        .with_no_client_auth();
    // As reqwest sets it for HTTP/1 (this build has no HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, roots))
}

/// Load the roots on a thread of its own, beside the start-up, and log when they are ready
/// (`roots_ms`: since `warm` was called, early in the start; `cargo xtask cold-start` reads it).
pub fn warm(roots: &Arc<PlatformRoots>) {
    let roots = roots.clone();
    let began = std::time::Instant::now();
    let _ = std::thread::Builder::new().name("tls-roots".into()).spawn(move || {
        roots.load();
        let roots_ms = began.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(roots_ms, "the platform's root certificates are loaded");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_wait_for_their_first_use_and_load_once() {
        let (_, roots) = client_config().unwrap();
        assert!(
            roots.verifier.get().is_none(),
            "nothing is loaded by building the configuration"
        );
        roots.load();
        assert!(
            roots.verifier.get().is_some_and(Result::is_ok),
            "the platform's roots load"
        );
        let first: *const _ = roots.verifier().unwrap();
        roots.load();
        assert!(std::ptr::eq(first, roots.verifier().unwrap()), "loaded once");
    }
}
