//! Build tasks (`cargo xtask <task>`):
//!
//! - `package [--debug] [--out DIR] [--host-glibc]`: build the deployable `mfa-recovery` binary
//!   (Linux x86-64, without the simulated tenant: `--no-default-features`), linked against glibc
//!   2.28 with `cargo zigbuild` (so it runs on any Functions Linux image; `--host-glibc` links
//!   against this machine's glibc instead, and refuses on anything but Linux x86-64), and lay out what the Functions host
//!   expects, both as a directory (`DIR/site`, for `azd deploy`) and as `DIR/mfa-recovery.zip`:
//!   `host.json`, `<function>/function.json` for each function, and the binary at the root with
//!   its executable bit.
//! - `check-package [--zip PATH] [--measure N]`: check a package the way the host will use it:
//!   the layout, the executable bit, an x86-64 ELF, no simulator inside, only glibc (and the GCC
//!   runtime) as shared libraries and no glibc symbol newer than 2.28, and a binary that starts
//!   and answers `GET /` with only the variables Azure sets. `--measure N` starts it N times and reports the time to the first answer.
//! - `cold-start BINARY... [--runs N]`: the same start with the same variables, N times (30 by
//!   default) for each binary, one after another in turn: the median and the slowest time from
//!   exec to the first answer on `GET /` (`benches/cold_start.sh`).
//!
//! Written by hand on purpose: a zip with Unix modes is a few lines with the `zip` crate, and no
//! packaging tool for custom handlers exists on crates.io.

mod graph_schema;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const BINARY: &str = "mfa-recovery";
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The newest glibc the package may need. Microsoft does not document the glibc of the Flex
/// Consumption custom-handler image; its Linux Functions images have been Debian based (bullseye:
/// 2.31, bookworm: 2.36), and Microsoft's own Rust quickstart sidesteps the question with a static
/// musl build. 2.28 (Debian buster) is older than any of them: fail safe.
const GLIBC: (u32, u32) = (2, 28);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("package") => {
            let debug = args.iter().any(|a| a == "--debug");
            let host_glibc = args.iter().any(|a| a == "--host-glibc");
            let out = arg(&args, "--out").map_or_else(|| root().join("target/package"), PathBuf::from);
            package(debug, host_glibc, &out)
        }
        Some("check-package") => {
            let zip = arg(&args, "--zip").map_or_else(|| root().join("target/package/mfa-recovery.zip"), PathBuf::from);
            let runs: usize = arg(&args, "--measure").map(|n| n.parse()).transpose()?.unwrap_or(1);
            check(&zip, runs)
        }
        Some("cold-start") => {
            let runs: usize = arg(&args, "--runs").map(|n| n.parse()).transpose()?.unwrap_or(30);
            let binaries: Vec<PathBuf> = args[1..]
                .iter()
                .enumerate()
                .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[*i] != "--runs"))
                .map(|(_, a)| PathBuf::from(a))
                .collect();
            cold_start(&binaries, runs.max(1))
        }
        Some("graph-requests") => {
            let dir = arg(&args, "--dir").map_or_else(|| root().join("target/graph-requests"), PathBuf::from);
            graph_schema::check_recorded(&root().join("xtask/graph/v1.0-Prod.csdl"), &dir)
        }
        _ => bail!(
            "usage: cargo xtask package [--debug] [--out DIR] [--host-glibc] | check-package [--zip PATH] [--measure N] | cold-start BINARY... [--runs N] | graph-requests [--dir DIR]"
        ),
    }
}

/// The function folders in `functions/`, sorted.
fn functions() -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("functions"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `cargo zigbuild` (crate cargo-zigbuild, with `zig` from the PyPI package ziglang) runs.
fn zigbuild_available() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["zigbuild", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn package(debug: bool, host_glibc: bool, out: &Path) -> Result<()> {
    let native = cfg!(all(target_os = "linux", target_arch = "x86_64"));
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root());
    let dir = if host_glibc {
        if !native {
            bail!(
                "this machine is {}/{}, and the Functions host runs Linux x86-64: a binary built here would not start there. Use the release's mfa-recovery.zip (docs/deploy.md), or install cargo-zigbuild and ziglang and run without --host-glibc",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
        }
        build.args(["build"]);
        root().join("target")
    } else {
        if !zigbuild_available() {
            bail!(
                "cargo zigbuild is not installed: it links the binary against glibc {}.{}, which every Functions Linux image has. Install it (ziglang from PyPI in a virtual environment on your PATH, and cargo install --locked cargo-zigbuild: docs/deploy.md, Prerequisites), use the release's mfa-recovery.zip (docs/deploy.md), or pass --host-glibc on Linux x86-64 (check-package then tells whether the platform can run it)",
                GLIBC.0,
                GLIBC.1
            );
        }
        build.args(["zigbuild", "--target", &format!("{TARGET}.{}.{}", GLIBC.0, GLIBC.1)]);
        root().join("target").join(TARGET)
    };
    build.args(["--locked", "--no-default-features", "--bin", BINARY]);
    if !debug {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let binary = dir.join(if debug { "debug" } else { "release" }).join(BINARY);
    // (path in the package, source, Unix mode)
    let mut entries: Vec<(String, PathBuf, u32)> = vec![
        ("host.json".into(), root().join("host.json"), 0o644),
        (BINARY.into(), binary, 0o755),
    ];
    for name in functions()? {
        entries.push((
            format!("{name}/function.json"),
            root().join("functions").join(&name).join("function.json"),
            0o644,
        ));
    }
    let site = out.join("site");
    if site.exists() {
        std::fs::remove_dir_all(&site)?;
    }
    std::fs::create_dir_all(&site)?;
    let zip_path = out.join("mfa-recovery.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path)?);
    for (path, source, mode) in &entries {
        let data = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        let target = site.join(path);
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        std::fs::write(&target, &data)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
        }
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        zip.start_file(path.as_str(), options)?;
        zip.write_all(&data)?;
    }
    zip.finish()?;
    let size = std::fs::metadata(out.join("site").join(BINARY))?.len();
    println!(
        "package: {} ({} files; binary {:.1} MiB; zip {:.1} MiB); site for azd: {}",
        zip_path.display(),
        entries.len(),
        size as f64 / 1_048_576.0,
        std::fs::metadata(&zip_path)?.len() as f64 / 1_048_576.0,
        site.display()
    );
    Ok(())
}

/// Shared libraries that come with every glibc system (glibc itself, and libgcc_s, the GCC
/// runtime Rust's unwinder uses).
const ALLOWED_LIBRARIES: [&str; 8] = [
    "linux-vdso.so",
    "libc.so",
    "libm.so",
    "libdl.so",
    "libpthread.so",
    "librt.so",
    "ld-linux-x86-64.so",
    "libgcc_s.so",
];

fn check(zip_path: &Path, runs: usize) -> Result<()> {
    let mut archive = zip::ZipArchive::new(
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?,
    )?;
    let mut names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).map(|f| f.name().to_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut expected: Vec<String> = vec!["host.json".into(), BINARY.into()];
    expected.extend(functions()?.iter().map(|f| format!("{f}/function.json")));
    expected.sort();
    if names != expected {
        bail!("the package holds {names:?}; the host expects exactly {expected:?}");
    }
    let mode = archive.by_name(BINARY)?.unix_mode().unwrap_or(0);
    if mode & 0o111 != 0o111 {
        bail!("{BINARY} in the zip has mode {mode:o}: not executable, so the host cannot start it");
    }
    let host = read_entry(&mut archive, "host.json")?;
    if !host.contains(&format!("\"defaultExecutablePath\": \"{BINARY}\"")) {
        bail!("host.json does not start {BINARY}");
    }
    // Unpack, as the platform does, and run it.
    let dir = std::env::temp_dir().join(format!("mfa-recovery-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    archive.extract(&dir)?;
    let binary = dir.join(BINARY);
    elf_for_the_platform(&binary)?;
    libraries(&binary)?;
    let dev = Command::new(&binary).args(["dev", "--help"]).output()?;
    if dev.status.success() {
        bail!(
            "the packaged binary has the `dev` command: the simulated tenant is inside (build with --no-default-features)"
        );
    }
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        times.push(first_answer(&binary)?);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let size = std::fs::metadata(&binary)?.len() as f64 / 1_048_576.0;
    println!(
        "check-package: {} ok: layout, executable bit, libraries, no simulator; binary {size:.1} MiB; start to first answer on GET /: median {:.1} ms, max {:.1} ms over {} runs",
        zip_path.display(),
        ms(times[times.len() / 2]),
        ms(*times.last().expect("a run")),
        times.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Start each of `binaries` `runs` times, taking turns (so a busy moment of the machine falls on
/// all of them alike), and print each one's median and slowest exec-to-first-answer, and when its
/// TLS roots were ready: the binary's own count (`roots_ms`, from the load's start) and, on this
/// clock, from exec, with how many starts had them ready before their first answer (a recovery,
/// which comes after the host's readiness probe, then finds them loaded).
fn cold_start(binaries: &[PathBuf], runs: usize) -> Result<()> {
    if binaries.is_empty() {
        bail!("usage: cargo xtask cold-start BINARY... [--runs N]");
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); binaries.len()];
    let mut roots: Vec<Vec<(f64, Duration, bool)>> = vec![Vec::new(); binaries.len()];
    for _ in 0..runs {
        for ((binary, times), roots) in binaries.iter().zip(&mut times).zip(&mut roots) {
            let (answered, ready) = started(binary, true)?;
            times.push(answered);
            roots.extend(ready.map(|(ms, at)| (ms, at, at <= answered)));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| binary | starts | median (ms) | slowest (ms) | TLS roots ready, median (ms) | from exec, median (ms) | ready before the first answer |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((binary, times), roots) in binaries.iter().zip(&mut times).zip(&mut roots) {
        times.sort();
        let mut counted: Vec<f64> = roots.iter().map(|r| r.0).collect();
        let mut arrived: Vec<Duration> = roots.iter().map(|r| r.1).collect();
        counted.sort_by(f64::total_cmp);
        arrived.sort();
        let median = |v: &[f64]| {
            v.get(v.len() / 2)
                .map_or("not logged".to_owned(), |r| format!("{r:.2}"))
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            binary.display(),
            times.len(),
            ms(times[times.len() / 2]),
            ms(*times.last().expect("a run")),
            median(&counted),
            median(&arrived.iter().map(|d| ms(*d)).collect::<Vec<_>>()),
            if roots.is_empty() {
                "not logged".to_owned()
            } else {
                format!("{} of {}", roots.iter().filter(|r| r.2).count(), roots.len())
            }
        );
    }
    Ok(())
}

fn read_entry(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<String> {
    let mut text = String::new();
    archive.by_name(name)?.read_to_string(&mut text)?;
    Ok(text)
}

/// `objdump`: an x86-64 ELF that needs no glibc symbol version newer than `GLIBC`.
fn elf_for_the_platform(binary: &Path) -> Result<()> {
    let header = Command::new("objdump")
        .arg("-f")
        .arg(binary)
        .output()
        .context("running objdump")?;
    let header = String::from_utf8_lossy(&header.stdout);
    if !header.contains("elf64-x86-64") {
        bail!("{BINARY} is not a Linux x86-64 executable, which the Functions host runs: {header}");
    }
    let symbols = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .context("running objdump")?;
    let newest = glibc_versions(&String::from_utf8_lossy(&symbols.stdout))
        .into_iter()
        .max()
        .context("no glibc symbol versions: not a dynamically linked glibc binary")?;
    if newest > GLIBC {
        bail!(
            "{BINARY} needs GLIBC_{}.{}, newer than the {}.{} every Functions Linux image has: build with cargo zigbuild (cargo xtask package without --host-glibc)",
            newest.0,
            newest.1,
            GLIBC.0,
            GLIBC.1
        );
    }
    println!(
        "check-package: newest glibc symbol GLIBC_{}.{} (at most {}.{})",
        newest.0, newest.1, GLIBC.0, GLIBC.1
    );
    Ok(())
}

/// Every `GLIBC_x.y` version in `objdump -T` output.
fn glibc_versions(dump: &str) -> Vec<(u32, u32)> {
    dump.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
            Some((major, minor))
        })
        .collect()
}

/// `ldd`: only the libraries every glibc system has.
fn libraries(binary: &Path) -> Result<()> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let lib = line.split_whitespace().next().unwrap_or_default();
        let lib = lib.rsplit('/').next().unwrap_or(lib);
        if !ALLOWED_LIBRARIES.iter().any(|a| lib.starts_with(a)) {
            bail!("{BINARY} needs {lib}, which an Azure Functions Linux image may not have: {line}");
        }
    }
    Ok(())
}

/// Start the binary with only what Azure sets (the platform's variables and the templates' app
/// settings; storage and identity endpoints that are not reachable here) and time the first
/// answer on `GET /`, the host's readiness probe.
fn first_answer(binary: &Path) -> Result<Duration> {
    started(binary, false).map(|(answered, _)| answered)
}

/// Start `binary` as the platform would; the time to its first answer on `GET /`, and with
/// `roots`, when its TLS roots were ready (the `roots_ms` it logs, waited for up to 2 s after the
/// answer; `None` from a build that does not log it).
fn started(binary: &Path, roots: bool) -> Result<(Duration, Option<(f64, Duration)>)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let platform = [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "2d1c6c55-worker".into()),
        ("WEBSITE_SITE_NAME", "func-mfa-recovery".into()),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token".into()),
        ("IDENTITY_HEADER", "0c1f6b8e-header".into()),
        (
            "AzureWebJobsStorage__blobServiceUri",
            "https://stmfarecovery.blob.core.windows.net/".into(),
        ),
        (
            "AzureWebJobsStorage__queueServiceUri",
            "https://stmfarecovery.queue.core.windows.net/".into(),
        ),
        ("AzureWebJobsStorage__credential", "managedidentity".into()),
        (
            "AzureWebJobsStorage__clientId",
            "5e29463d-71da-4fe0-8e69-999b57db23b0".into(),
        ),
        ("AZURE_CLIENT_ID", "5e29463d-71da-4fe0-8e69-999b57db23b0".into()),
        ("AUTH_TENANT_ID", "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10".into()),
        ("AUTH_AUDIENCE", "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31".into()),
        ("KEY_VAULT_URI", "https://kv-mfa-recovery.vault.azure.net/".into()),
        ("AUDIT_CONTAINER", "audit".into()),
        ("REQUESTS_CONTAINER", "recovery-requests".into()),
        ("SWEEP_CONTAINER", "sweeps".into()),
        ("SWEEP_SCHEDULE", "0 0 2 * * *".into()),
        ("EMAIL_PROVIDER", "graph".into()),
        ("MAIL_SENDER", "mfa-recovery@contoso.com".into()),
        ("TAP_REQUIRE_VERIFICATION", "true".into()),
        ("NOTICE_CONTACT", "the service desk".into()),
    ];
    let started = Instant::now();
    let exec_at = std::time::SystemTime::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(platform)
        .stdout(if roots { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()?;
    let (tx, rx) = std::sync::mpsc::channel::<(f64, Duration)>();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let field = |name: &str| {
                    line.split(&format!("\"{name}\":"))
                        .nth(1)
                        .and_then(|rest| rest.split([',', '}']).next())
                        .and_then(|n| n.trim().parse::<f64>().ok())
                };
                if let (Some(ms), Some(at)) = (field("roots_ms"), field("ready_at_us")) {
                    // When the roots were ready, from exec (the binary's wall clock against this
                    // one's at the exec), as the first answer is timed.
                    let at = std::time::UNIX_EPOCH + Duration::from_micros(at as u64);
                    let _ = tx.send((ms, at.duration_since(exec_at).unwrap_or_default()));
                }
            }
        });
    }
    let deadline = started + Duration::from_secs(10);
    let answered = loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                break started.elapsed();
            }
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("the packaged binary did not answer GET / within 10 s: {err}");
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let ready = if roots {
        rx.recv_timeout(Duration::from_secs(2)).ok()
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok((answered, ready))
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_versions_are_read_from_objdump() {
        let dump = "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.34) __libc_start_main\n\
                    0000000000000000      DF *UND*\t0000000000000000  GLIBC_2.2.5 memcpy\n\
                    0000000000000000  w   D  *UND*\t0000000000000000  Base        __gmon_start__\n";
        let mut found = super::glibc_versions(dump);
        found.sort();
        assert_eq!(found, vec![(2, 2), (2, 34)]);
        assert!(found.into_iter().max().unwrap() > super::GLIBC);
    }
}
