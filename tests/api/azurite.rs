//! Azurite (Azure Storage's local emulator, from npm) with Entra token authentication over
//! https, and the pieces the Azure SDK needs to talk to it: a test CA and a credential.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use azure_core::http::Transport;

use crate::helpers::{free_port, repo_path, temp_dir};

/// A test CA and a leaf certificate for 127.0.0.1, made once per test process with openssl.
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = temp_dir("certs");
        openssl(&dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=mfa-recovery test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]);
        std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
        openssl(&dir, &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext"]);
        Certs { ca: dir.join("ca.pem"), cert: dir.join("leaf.pem"), key: dir.join("leaf.key"), dir }
    })
}

/// An Azurite blob service on a free port, killed on drop.
pub struct Azurite {
    child: Child,
    pub port: u16,
}

impl Azurite {
    pub fn start() -> Azurite {
        let bin = repo_path("node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm ci` (scripts/test does)"
        );
        let certs = certs();
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--oauth",
                "basic",
            ])
            .arg("--cert")
            .arg(&certs.cert)
            .arg("--key")
            .arg(&certs.key)
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
                "--extentMemoryLimit",
                "64",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Azurite { child, port }
    }

    /// The blob service URL, path style (`https://127.0.0.1:PORT/devstoreaccount1`).
    pub fn blob_url(&self) -> String {
        format!("https://127.0.0.1:{}/devstoreaccount1", self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Azure SDK transport that trusts the test CA (and only adds it; nothing else changes).
pub fn trusting_transport() -> Transport {
    let pem = std::fs::read(&certs().ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    Transport::new(Arc::new(client))
}
