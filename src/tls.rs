//! TLS for every outbound HTTPS call (Graph, Key Vault, Storage, the connectors, write-back): the
//! same verification reqwest does by default (rustls, the platform's root certificates through
//! `rustls-platform-verifier`), with the roots loaded once per process, and not on the way to the
//! process's first answer.
//!
//! Loading the platform's roots reads every certificate of the system store (about 150 files on
//! Debian): some 3 ms each time, and reqwest loads them for every client it builds, before the
//! process can answer anything (issue "An intake without a hot spot, and a 5 ms cold start"). Here
//! one verifier serves every client, loads the roots at its first use, and `warm_early`, the first
//! thing `main` does, starts that load on a thread of its own, so that it runs beside the whole
//! start and the first recovery finds the roots ready (`cargo xtask cold-start` counts the starts
//! where they were ready before the first answer). Written by hand because neither reqwest nor rustls-platform-verifier loads lazily: the
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

    /// Load the roots now (on a thread of its own: `warm`). A failure is kept, and every HTTPS
    /// call then fails with it.
    ///
    /// # Errors
    /// The platform's roots could not be loaded.
    pub fn load(&self) -> Result<(), rustls::Error> {
        self.verifier().map(|_| ())
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

/// The client configuration on `roots`: every client of the process shares it
/// (`process_client_config`).
fn config_on(roots: Arc<PlatformRoots>) -> Result<(rustls::ClientConfig, Arc<PlatformRoots>), rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(roots.provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(roots.clone())
        .with_no_client_auth();
    // As reqwest sets it for HTTP/1 (this build has no HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, roots))
}

impl PlatformRoots {
    fn new() -> Arc<PlatformRoots> {
        Arc::new(PlatformRoots {
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            verifier: OnceLock::new(),
        })
    }
}

/// The process's roots, their load begun by `main` before anything else (`warm_early`).
static PROCESS_ROOTS: OnceLock<Arc<PlatformRoots>> = OnceLock::new();

/// Begin loading the process's roots now, on a thread of their own: `main`'s first step, so the
/// load runs beside everything the start does (parsing the command line, the runtime, the
/// settings, the app), not after part of it. `process_client_config` then serves them.
pub fn warm_early() {
    let mut fresh = false;
    let roots = PROCESS_ROOTS.get_or_init(|| {
        fresh = true;
        PlatformRoots::new()
    });
    if fresh {
        warm(roots);
    }
}

/// `client_config` on the process's roots (their load begun by `warm_early`, or now).
///
/// # Errors
/// As `client_config`.
pub fn process_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    warm_early();
    let roots = PROCESS_ROOTS.get().expect("set by warm_early").clone();
    config_on(roots).map(|(config, _)| config)
}

/// Load the roots on a thread of its own, beside the start-up, and log when they are ready
/// (`roots_ms`: since `warm` was called, at the start of `main`; `ready_at_us`: when, in
/// microseconds since 1970, which `cargo xtask cold-start` sets against its exec and the first
/// answer). The log waits (up to 2 s) for the subscriber, which the start sets up after: an error
/// logged before would be lost.
///
/// The provider's random numbers need no warming: aws-lc is built without its CPU jitter entropy
/// source (`AWS_LC_SYS_NO_JITTER_ENTROPY` in `.cargo/config.toml`), which gathered about 30 ms of
/// entropy at its first use, in the first TLS handshake, so in the first recovery after every
/// start (`benches/first_call.sh`). It draws from the operating system (`getrandom`), as ring and
/// OpenSSL do.
fn warm(roots: &Arc<PlatformRoots>) {
    let roots = roots.clone();
    let began = std::time::Instant::now();
    let _ = std::thread::Builder::new().name("tls-roots".into()).spawn(move || {
        let loaded = roots.load();
        let roots_ms = began.elapsed().as_secs_f64() * 1000.0;
        // When, on the wall clock (the log line itself may wait for the subscriber below).
        let ready_at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        for _ in 0..20_000 {
            if tracing::dispatcher::has_been_set() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        match loaded {
            Ok(()) => tracing::info!(roots_ms, ready_at_us, "the platform's root certificates are loaded"),
            Err(e) => tracing::error!(error = %e, "the platform's root certificates could not be loaded: every HTTPS call will fail"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_wait_for_their_first_use_and_load_once() {
        let (_, roots) = config_on(PlatformRoots::new()).unwrap();
        assert!(
            roots.verifier.get().is_none(),
            "nothing is loaded by building the configuration"
        );
        roots.load().unwrap();
        assert!(
            roots.verifier.get().is_some_and(Result::is_ok),
            "the platform's roots load"
        );
        let first: *const _ = roots.verifier().unwrap();
        roots.load().unwrap();
        assert!(std::ptr::eq(first, roots.verifier().unwrap()), "loaded once");
    }
}
