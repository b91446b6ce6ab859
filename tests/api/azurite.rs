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

/// Azurite services on free ports (blob, and queue when asked for), killed on drop.
pub struct Azurite {
    children: Vec<Child>,
    pub port: u16,
    pub queue_port: Option<u16>,
}

fn spawn_service(service: &str, port: u16) -> Child {
    let bin = repo_path(&format!("node_modules/.bin/azurite-{service}"));
    assert!(
        bin.exists(),
        "Azurite is not installed: run `npm ci` (scripts/test does)"
    );
    let certs = certs();
    // The load run paces Azurite's extent collector (benches/azurite-blob-gc.js says why).
    let mut command = match std::env::var("AZURITE_GC_INTERVAL_MS") {
        Ok(_) if service == "blob" => {
            let mut c = Command::new("node");
            c.arg(repo_path("benches/azurite-blob-gc.js"));
            c
        }
        _ => Command::new(bin),
    };
    let child = command
        .args([
            format!("--{service}Host"),
            "127.0.0.1".into(),
            format!("--{service}Port"),
            port.to_string(),
        ])
        .args(["--oauth", "basic"])
        .arg("--cert")
        .arg(&certs.cert)
        .arg("--key")
        .arg(&certs.key)
        .args([
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ])
        // In-memory blobs are capped (64 MiB; AZURITE_EXTENT_MEMORY_MB for the load run, whose
        // trail and records outgrow it).
        .args(if service == "blob" {
            vec![
                "--extentMemoryLimit".to_owned(),
                std::env::var("AZURITE_EXTENT_MEMORY_MB").unwrap_or_else(|_| "64".into()),
            ]
        } else {
            Vec::new()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("azurite starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Azurite {service} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Azurite {
    /// The blob service alone.
    pub fn start() -> Azurite {
        let port = free_port();
        Azurite {
            children: vec![spawn_service("blob", port)],
            port,
            queue_port: None,
        }
    }

    /// Blob and queue services.
    pub fn start_with_queue() -> Azurite {
        let port = free_port();
        let queue_port = free_port();
        Azurite {
            children: vec![spawn_service("blob", port), spawn_service("queue", queue_port)],
            port,
            queue_port: Some(queue_port),
        }
    }

    /// The blob service URL, path style (`https://127.0.0.1:PORT/devstoreaccount1`).
    pub fn blob_url(&self) -> String {
        format!("https://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    /// The queue service URL, path style.
    pub fn queue_url(&self) -> String {
        format!(
            "https://127.0.0.1:{}/devstoreaccount1",
            self.queue_port.expect("started with a queue")
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// The test CA trusted, and Key Vault calls sent to the simulator `sim` (as `dev` does).
pub fn trusting_transport_to(sim: &mfa_recovery_sim::Simulator) -> Transport {
    let pem = std::fs::read(&certs().ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    Transport::new(Arc::new(mfa_recovery::dev::VaultToSimulator::new(
        sim,
        Arc::new(client),
    )))
}
