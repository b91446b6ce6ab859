//! `mfa-recovery dev`: the whole function set on one machine, wired to the simulated tenant,
//! and `mfa-recovery sim`: the simulated tenant alone. Compiled only with the `dev` feature.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use mfa_recovery_sim::{Seed, Simulator, TokenRequest};

use crate::config::Settings;
use crate::host::functions::{FUNCTIONS, Trigger};
use crate::host::{self, Application, HostOptions};
use crate::telemetry;

/// Roles a demo caller token carries.
/// Every app role, as demo tokens carry them.
pub(crate) fn all_roles() -> Vec<&'static str> {
    crate::vocab::Role::ALL.iter().map(|r| r.as_str()).collect()
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port of the function app (like `func start`).
    #[arg(long, default_value_t = 7071)]
    pub port: u16,
    /// Port of the simulated tenant.
    #[arg(long, default_value_t = 7072)]
    pub sim_port: u16,
    /// Seed file for the simulated tenant (default: the bundled demo tenant).
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Keep the audit trail, requests, rate-limit slots and sweeps of earlier runs in `.dev/`
    /// (by default each run starts clean, like the simulated tenant it runs on).
    #[arg(long)]
    pub keep: bool,
    /// The posture of earlier versions: a typed verification block is accepted
    /// (`TAP_REQUIRE_VERIFICATION=attested`), no approvals, no protected group. By default `dev`
    /// runs the templates' posture.
    #[arg(long)]
    pub relaxed: bool,
    /// For benchmarks: every operation of the local stores (request records, the audit trail,
    /// rate-limit slots, the in-process queues) first waits this many milliseconds, as a storage
    /// account's round trip would (`benches/intake.sh` with `STORE_DELAY_MS`).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub store_delay_ms: Option<u64>,
}

/// How `dev` guards recoveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posture {
    /// The templates' settings (`tests/api/defaults_agree.rs` holds the two together), with the
    /// demo tenant's groups where a deployment names the admin's: approvals are on (Recovery
    /// Approvers: Isaiah Langer), Johanna is protected (Tier 0 Accounts).
    Shipped,
    /// `--relaxed`: a typed verification block, no approvals, no protected group.
    Relaxed,
}

/// The demo tenant's approvers (Isaiah Langer) and protected group (Johanna Lorenz).
pub const DEMO_APPROVERS: &str = "a1b2c3d4-0007-4000-8000-000000000007";
pub const DEMO_PROTECTED: &str = "a1b2c3d4-0004-4000-8000-000000000004";

/// The local directories `dev` defaults to (those the environment does not name), which a run
/// empties unless `--keep`: the simulated tenant starts fresh every time, so a trail, rate-limit
/// slots and requests about its users from an earlier run would only get in the way (the
/// README's third pass would answer 429).
pub(crate) fn own_directories(vars: &HashMap<String, String>) -> Vec<&'static str> {
    if vars.keys().any(|k| k.starts_with("AzureWebJobsStorage__")) {
        return Vec::new();
    }
    [
        ("AUDIT_DIR", ".dev/audit"),
        ("REQUESTS_DIR", ".dev/requests"),
        ("SWEEP_DIR", ".dev/sweeps"),
    ]
    .into_iter()
    .filter(|(key, _)| !vars.contains_key(*key))
    .map(|(_, dir)| dir)
    .collect()
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Port of the simulated tenant.
    #[arg(long, default_value_t = 7072)]
    pub port: u16,
    /// Seed file for the simulated tenant (default: the bundled demo tenant).
    #[arg(long)]
    pub seed: Option<PathBuf>,
}

fn load_seed(path: Option<&PathBuf>) -> anyhow::Result<Seed> {
    match path {
        None => Ok(Seed::demo()),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading seed file {}", p.display()))?;
            Seed::from_json(&text).with_context(|| format!("parsing seed file {}", p.display()))
        }
    }
}

/// The settings `dev` runs with: the process environment, with every endpoint pointed at the
/// simulator.
pub(crate) fn dev_settings(sim: &Simulator, port: u16, posture: Posture) -> anyhow::Result<Settings> {
    Ok(Settings::from_map(&dev_vars(sim, port, posture))?)
}

/// The environment `dev` runs the function set with.
pub fn dev_vars(sim: &Simulator, port: u16, posture: Posture) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = crate::config::environment();
    let seed = sim.seed();
    for (k, v) in [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("GRAPH_ENDPOINT", sim.graph_endpoint()),
        ("AUTH_TENANT_ID", seed.tenant_id.clone()),
        ("AUTH_AUDIENCE", seed.api.audience.clone()),
        ("AUTH_CLIENT_ID", seed.api.app_id.clone()),
        ("AUTH_AUTHORITY", sim.authority()),
        ("KEY_VAULT_URI", sim.key_vault_uri()),
        ("AZURE_CLIENT_ID", seed.managed_identity.client_id.clone()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    // Connectors on the simulator, unless the shell says otherwise.
    for (k, v) in [
        ("MAIL_SENDER", "mfa-recovery@contoso.test".to_owned()),
        ("ACS_ENDPOINT", format!("{}/acs", sim.base_url())),
        ("ACS_ACCESS_KEY_SECRET", "acs-access-key".to_owned()),
        ("ACS_SMS_FROM", "+18005550199".to_owned()),
        // Write-back to the simulator's ServiceNow, Jira and callback recorders.
        ("SERVICENOW_INSTANCE_URL", format!("{}/servicenow", sim.base_url())),
        ("SERVICENOW_USER", "mfa-recovery".to_owned()),
        ("SERVICENOW_PASSWORD_SECRET", "servicenow-password".to_owned()),
        // The banner's token stands for the ServiceNow and Jira integrations: their queued
        // requests are written back to the ticket they name (nobody else's are).
        ("SERVICENOW_CALLERS", DEMO_CALLER.to_owned()),
        ("JIRA_CALLERS", DEMO_CALLER.to_owned()),
        ("JIRA_BASE_URL", format!("{}/jira", sim.base_url())),
        ("JIRA_USER", "mfa-recovery@contoso.test".to_owned()),
        ("JIRA_API_TOKEN_SECRET", "jira-api-token".to_owned()),
        ("CALLBACK_SIGNING_SECRET", "callback-signing".to_owned()),
        ("CALLBACK_ALLOWED_HOSTS", "127.0.0.1,localhost".to_owned()),
        ("CONSOLE_URL", format!("http://127.0.0.1:{port}/api/console/")),
    ] {
        vars.entry(k.to_owned()).or_insert(v);
    }
    for (k, v) in posture_vars(sim, posture) {
        vars.entry(k.to_owned()).or_insert(v);
    }
    vars.entry("NOTICE_CONTACT".into())
        .or_insert_with(|| "the Contoso service desk, +1 800 555 0100".into());
    // The audit trail goes to a local directory unless you point dev at a storage account.
    if !vars.keys().any(|k| k.starts_with("AzureWebJobsStorage__")) {
        vars.entry("AUDIT_DIR".into()).or_insert_with(|| ".dev/audit".into());
        vars.entry("REQUESTS_DIR".into())
            .or_insert_with(|| ".dev/requests".into());
        vars.entry("SWEEP_DIR".into()).or_insert_with(|| ".dev/sweeps".into());
    }
    vars.entry("MFA_RECOVERY_LOG_FORMAT".into())
        .or_insert_with(|| "text".into());
    vars
}

/// The guardrails `dev` sets (the shell's own values win): the templates' verification, and the
/// demo groups that turn approvals on and protect Johanna (only when the seed has them).
fn posture_vars(sim: &Simulator, posture: Posture) -> Vec<(&'static str, String)> {
    if posture == Posture::Relaxed {
        return vec![("TAP_REQUIRE_VERIFICATION", "attested".to_owned())];
    }
    let mut vars = vec![("TAP_REQUIRE_VERIFICATION", "service".to_owned())];
    let has = |id: &str| sim.seed().groups.iter().any(|g| g.id == id);
    if has(DEMO_APPROVERS) {
        vars.push(("APPROVAL_NOTIFY_GROUP", DEMO_APPROVERS.to_owned()));
    }
    if has(DEMO_PROTECTED) {
        vars.push(("TAP_PROTECTED_GROUPS", DEMO_PROTECTED.to_owned()));
    }
    vars
}

/// What the command line needs to act on this simulated tenant, as `export` lines for a fresh
/// shell: Graph, the simulator's managed identity endpoint (the real credential uses it), Key
/// Vault through the simulator (`MFA_RECOVERY_SIM`, a `dev`-build hook), the connectors, the
/// API's App ID URI (the privilege check finds the API by it) and `dev`'s own audit directory,
/// made absolute, so the trail is one. No `AUTH_TENANT_ID`: the command line accepts no tokens.
pub(crate) fn cli_exports(sim: &Simulator, posture: Posture) -> Vec<(String, String)> {
    let vars = dev_vars(sim, 0, posture);
    let mut out = vec![
        ("IDENTITY_ENDPOINT".to_owned(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".to_owned(), sim.identity_header().to_owned()),
        ("MFA_RECOVERY_SIM".to_owned(), sim.base_url().to_owned()),
    ];
    for key in [
        "GRAPH_ENDPOINT",
        "AUTH_AUDIENCE",
        "AZURE_CLIENT_ID",
        "KEY_VAULT_URI",
        "MAIL_SENDER",
        "ACS_ENDPOINT",
        "ACS_ACCESS_KEY_SECRET",
        "ACS_SMS_FROM",
        "NOTICE_CONTACT",
        "TAP_REQUIRE_VERIFICATION",
        "TAP_PROTECTED_GROUPS",
        "AUDIT_DIR",
        "LIMITS_DIR",
        "SWEEP_DIR",
    ] {
        let Some(value) = vars.get(key) else { continue };
        let value = match key {
            "AUDIT_DIR" | "LIMITS_DIR" | "SWEEP_DIR" => {
                std::path::absolute(value).map_or_else(|_| value.clone(), |p| p.to_string_lossy().into_owned())
            }
            _ => value.clone(),
        };
        out.push((key.to_owned(), value));
    }
    out
}

/// `export K='v'` lines (single quotes: the values hold no quote).
fn export_lines(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("  export {k}='{}'\n", v.replace('\'', "")))
        .collect()
}

/// The object id in the simulator's caller tokens when none is asked for (the banner's token).
const DEMO_CALLER: &str = "9e8d7c6b-5a49-4382-8170-6f5e4d3c2b1a";

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let seed = load_seed(args.seed.as_ref())?;
    let sim = Simulator::start(seed, &format!("127.0.0.1:{}", args.sim_port))
        .await
        .with_context(|| {
            format!(
                "starting the simulated tenant on port {} (use --sim-port)",
                args.sim_port
            )
        })?;
    if !args.keep {
        for dir in own_directories(&crate::config::environment()) {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => anyhow::bail!("emptying {dir} (or run with --keep): {e}"),
            }
        }
    }
    if let Some(ms) = args.store_delay_ms {
        crate::storage::place_local_stores_away(std::time::Duration::from_millis(ms));
    }
    let posture = if args.relaxed {
        Posture::Relaxed
    } else {
        Posture::Shipped
    };
    let settings = dev_settings(&sim, args.port, posture)?;
    let described = posture_lines(&settings);
    telemetry::init(settings.log_format);
    let schedule = settings.sweep_schedule.clone();
    let app = Application::build(
        settings,
        HostOptions {
            admin_api: true,
            azure: sim_overrides(&sim),
            ..HostOptions::default()
        },
    )
    .await
    .context("starting the function app (use --port)")?;
    // The console's SPA redirect URIs, as the templates register the function app's.
    for host in ["127.0.0.1", "localhost"] {
        sim.register_spa_redirect(&format!("http://{host}:{}/api/console/", app.port()));
    }
    print!("{}", banner(&sim, app.port(), &schedule, posture, &described));
    app.run_until_stopped(host::shutdown_signal()).await?;
    sim.shutdown().await;
    Ok(())
}

pub(crate) async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let seed = load_seed(args.seed.as_ref())?;
    let sim = Simulator::start(seed, &format!("127.0.0.1:{}", args.port)).await?;
    println!("Simulated tenant on {}", sim.base_url());
    println!("{}", serde_json::to_string_pretty(&sim.info())?);
    host::shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

/// What `dev` prints at start: the functions with their URLs, the demo users, and commands to
/// copy, with a caller token from the simulator.
pub fn banner(sim: &Simulator, port: u16, schedule: &str, posture: Posture, described: &str) -> String {
    let app = format!("http://127.0.0.1:{port}");
    let token = sim.issue_token(&TokenRequest {
        roles: all_roles().into_iter().map(str::to_owned).collect(),
        name: Some("mfa-recovery dev".into()),
        expires_in: Some(8 * 3600),
        ..TokenRequest::default()
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmfa-recovery dev: the function set on a simulated Entra tenant ({})\n",
        sim.seed().domain
    );
    let _ = writeln!(out, "Functions on {app}");
    for f in FUNCTIONS {
        let line = match f.trigger {
            Trigger::Http { methods, route } => {
                format!("{:<18} {:<9} {app}/api/{route}", f.name, methods.join(","))
            }
            Trigger::Queue { queue } => {
                format!(
                    "{:<18} {:<9} queue {queue}; run: POST {app}/admin/functions/{}",
                    f.name, "queue", f.name
                )
            }
            Trigger::Timer { .. } => {
                format!(
                    "{:<18} {:<9} {schedule} UTC; run: POST {app}/admin/functions/{}",
                    f.name, "timer", f.name
                )
            }
        };
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "\nSimulated tenant on {} (Graph, managed identity, Key Vault, ACS, Twilio)",
        sim.base_url()
    );
    let _ = writeln!(
        out,
        "  outbox: GET {0}/sim/outbox   faults: POST {0}/sim/faults   reset: POST {0}/sim/reset",
        sim.base_url()
    );
    let _ = writeln!(
        out,
        "\nConsole: {app}/api/console/  (sign in as Debra Berger: an agent with Recovery.Tap and Recovery.Reset; Isaiah Langer: an approver with Audit.Read)"
    );
    let _ = writeln!(out, "\nDemo users");
    for (upn, name, note) in sim.demo_users() {
        let _ = writeln!(out, "  {upn:<46} {name:<22} {note}");
    }
    let _ = writeln!(
        out,
        "\nTry it (the token carries {} and is valid 8 h)",
        all_roles().join(", ")
    );
    out.push_str(described);
    let _ = writeln!(out, "  export TOKEN={token}");
    let _ = writeln!(out, "  curl -s {app}/api/health");
    let sim_url = sim.base_url();
    let recipes = [
        (
            "a verified pass (docs/verification.md): a code to Lee by email, read from the outbox as Lee would, confirmed; then the pass by SMS",
            "lee.gu",
            "email",
            format!(
                "curl -s -X POST {app}/api/users/lee.gu@contoso.test/tap {AUTH} -d \"{{\\\"delivery\\\":{{\\\"channel\\\":\\\"sms\\\"}},\\\"ticket\\\":{{\\\"system\\\":\\\"servicenow\\\",\\\"id\\\":\\\"INC0010004\\\"}},\\\"reason\\\":\\\"lost phone\\\",\\\"verification\\\":{{\\\"id\\\":\\\"$V\\\"}}}}\""
            ),
        ),
        (
            "a verified reset (docs/reset.md): a code to Adele by SMS; her Authenticator and phones are removed and, in the same call, a pass goes to her alternate email",
            "adele.vance",
            "sms",
            format!(
                "curl -s -X POST {app}/api/users/adele.vance@contoso.test/mfa/reset {AUTH} -d \"{{\\\"tap\\\":{{\\\"delivery\\\":{{\\\"channel\\\":\\\"email\\\"}}}},\\\"ticket\\\":{{\\\"system\\\":\\\"jira\\\",\\\"id\\\":\\\"HELP-42\\\"}},\\\"reason\\\":\\\"lost phone\\\",\\\"verification\\\":{{\\\"id\\\":\\\"$V\\\"}}}}\""
            ),
        ),
        (
            "a privileged user (docs/approval.md): Allan, an eligible (PIM) Global Administrator; his pass waits (202, approval_required) for a second approver: sign in to the console as Isaiah Langer",
            "allan.deyoung",
            "email",
            format!(
                "curl -s -X POST {app}/api/users/allan.deyoung@contoso.test/tap {AUTH} -d \"{{\\\"delivery\\\":{{\\\"channel\\\":\\\"sms\\\"}},\\\"ticket\\\":{{\\\"system\\\":\\\"servicenow\\\",\\\"id\\\":\\\"INC0010003\\\"}},\\\"reason\\\":\\\"lost phone\\\",\\\"verification\\\":{{\\\"id\\\":\\\"$V\\\"}}}}\""
            ),
        ),
        (
            "queued, as ServiceNow's business rule sends an incident with the verification's id (docs/servicenow.md); a code to Alex's manager; then GET the statusUrl, and the work note it gets back is in /sim/itsm",
            "alex.wilber",
            "manager",
            format!(
                "curl -s -X POST {app}/api/requests {AUTH} -d \"{{\\\"sys_id\\\":\\\"9d385017c611228701d22104cc95c371\\\",\\\"number\\\":\\\"INC0010002\\\",\\\"u_affected_user\\\":\\\"alex.wilber@contoso.test\\\",\\\"u_recovery_action\\\":\\\"tap\\\",\\\"u_delivery_channel\\\":\\\"email\\\",\\\"short_description\\\":\\\"lost phone\\\",\\\"u_verification_id\\\":\\\"$V\\\"}}\""
            ),
        ),
    ];
    for (number, (what, user, channel, recovery)) in recipes.iter().enumerate() {
        let _ = writeln!(out, "  # {}. {what}", number + 1);
        out.push_str(&code_lines(&app, sim_url, user, channel));
        let _ = writeln!(out, "  {recovery}");
    }
    let _ = writeln!(
        out,
        "  curl -s -H \"Authorization: Bearer $TOKEN\" {app}/api/requests/<requestId>"
    );
    let _ = writeln!(
        out,
        "  curl -s -X POST {app}/admin/functions/compliance-sweep -H 'Content-Type: application/json' -d '{{}}'"
    );
    let _ = writeln!(
        out,
        "  curl -s -H \"Authorization: Bearer $TOKEN\" {app}/api/sweeps/latest   # then open {app}/api/sweeps/latest/report.html with the token"
    );
    let _ = writeln!(out, "  curl -s {sim_url}/sim/outbox");
    let _ = writeln!(
        out,
        "  another token: curl -s -X POST {sim_url}/sim/token -d '{{\"roles\":[\"Recovery.Tap\"]}}'\n"
    );
    let _ = writeln!(
        out,
        "The command line on this tenant (paste into another shell; `verify` asks for the code: read it from the outbox):"
    );
    out.push_str(&export_lines(&cli_exports(sim, posture)));
    let _ = writeln!(
        out,
        "  V=$(mfa-recovery verify --user alex.wilber@contoso.test --channel manager --ticket servicenow:INC0010009)"
    );
    let _ = writeln!(
        out,
        "  mfa-recovery tap --user alex.wilber@contoso.test --channel email --ticket servicenow:INC0010009 --reason 'lost phone' --verification-id \"$V\"\n"
    );
    out
}

/// The headers of every banner `curl` that sends JSON with the banner's token.
const AUTH: &str = "-H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json'";

/// The three `curl` lines that verify the caller: a code to `user` by `channel`, read from the
/// simulator's outbox as the user would read it out, confirmed; `$V` is the verification's id.
fn code_lines(app: &str, sim: &str, user: &str, channel: &str) -> String {
    format!(
        "  V=$(curl -s -X POST {app}/api/users/{user}@contoso.test/verifications {AUTH} -d '{{\"channel\":\"{channel}\"}}' | sed 's/.*\"verificationId\":\"\\([^\"]*\\)\".*/\\1/')\n  CODE=$(curl -s {sim}/sim/outbox | grep -o 'Your code: [0-9]*' | tail -1 | cut -d' ' -f3)\n  curl -s -X POST {app}/api/verifications/$V/confirm {AUTH} -d \"{{\\\"code\\\":\\\"$CODE\\\"}}\"\n"
    )
}

/// What the banner says of the posture `dev` runs, read from the settings it runs with (a value
/// from your shell wins over dev's, and the banner says what it is).
pub fn posture_lines(settings: &Settings) -> String {
    use crate::config::VerificationMode;
    let t = &settings.tap;
    let verification = match t.verification {
        VerificationMode::Service => {
            "a recovery names a code the service sent and the caller confirmed (TAP_REQUIRE_VERIFICATION=service, as deployed)"
        }
        VerificationMode::Attested => {
            "a typed verification block is accepted (TAP_REQUIRE_VERIFICATION=attested; a deployment runs service)"
        }
        VerificationMode::Off => "no verification is asked (TAP_REQUIRE_VERIFICATION=false; a deployment runs service)",
    };
    let approvals = if t.approval.enabled() {
        let reasons: Vec<&str> = t.approval.required_for.iter().map(|r| r.as_str()).collect();
        let who = if t.approval.notify_group.is_some_and(|g| g.to_string() == DEMO_APPROVERS) {
            " (Recovery Approvers: Isaiah Langer)"
        } else {
            ""
        };
        format!(
            "a recovery that is {} waits for a second approver{who}",
            reasons.join(" or ")
        )
    } else {
        "approvals are off: a privileged user is refused".to_owned()
    };
    let protected = if t.protected_groups.iter().any(|g| g.to_string() == DEMO_PROTECTED) {
        "Johanna is protected (Tier 0 Accounts)".to_owned()
    } else if t.protected_groups.is_empty() {
        "no group is protected (TAP_PROTECTED_GROUPS)".to_owned()
    } else {
        format!("{} protected group(s) (TAP_PROTECTED_GROUPS)", t.protected_groups.len())
    };
    format!(
        "  Posture: {verification};
  {approvals}; {protected}. `dev --relaxed` is the looser posture of earlier versions.
"
    )
}

/// Tokens from the simulator's managed identity endpoint, the way `ManagedIdentityCredential`
/// gets them. That credential reads its endpoint from the process environment when it is built,
/// which `dev` and in-process tests cannot set safely once threads run; the binary under a host
/// uses the real one.
#[derive(Debug)]
pub struct SimCredential {
    pub endpoint: String,
    pub header: String,
    http: reqwest::Client,
    /// Tokens by resource, kept until five minutes before they expire, as the real credential's
    /// cache does (a token per call would count a round trip the real one never makes).
    cache: std::sync::Mutex<std::collections::HashMap<String, azure_core::credentials::AccessToken>>,
}

impl SimCredential {
    pub fn new(sim: &Simulator) -> SimCredential {
        SimCredential {
            endpoint: sim.identity_endpoint(),
            header: sim.identity_header().to_owned(),
            http: reqwest::Client::new(),
            cache: std::sync::Mutex::default(),
        }
    }
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for SimCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let fail = |e: String| azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e);
        let resource = scopes
            .first()
            .copied()
            .unwrap_or_default()
            .trim_end_matches("/.default");
        if let Some(token) = self.cache.lock().expect("token cache").get(resource)
            && token.expires_on > time::OffsetDateTime::now_utc() + time::Duration::minutes(5)
        {
            return Ok(token.clone());
        }
        let body: serde_json::Value = self
            .http
            .get(&self.endpoint)
            .query(&[("api-version", "2019-08-01"), ("resource", resource)])
            .header("x-identity-header", &self.header)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(e.to_string()))?
            .json()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| fail("no access_token".into()))?;
        let expires: i64 = body["expires_on"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail("no expires_on".into()))?;
        let expires_on = time::OffsetDateTime::from_unix_timestamp(expires).map_err(|e| fail(e.to_string()))?;
        let token = azure_core::credentials::AccessToken::new(token.to_owned(), expires_on);
        self.cache
            .lock()
            .expect("token cache")
            .insert(resource.to_owned(), token.clone());
        Ok(token)
    }
}

/// An Azure SDK transport that sends requests for `*.vault.azure.net` to the simulator over
/// http, leaving the client's vault URL (and so the SDK's https and challenge checks) as in
/// production. Every other request goes out unchanged.
#[derive(Debug)]
pub struct VaultToSimulator {
    target: url::Url,
    inner: std::sync::Arc<dyn azure_core::http::HttpClient>,
}

impl VaultToSimulator {
    pub fn new(sim: &Simulator, inner: std::sync::Arc<dyn azure_core::http::HttpClient>) -> VaultToSimulator {
        Self::to(url::Url::parse(sim.base_url()).expect("sim url"), inner)
    }
    /// Key Vault calls to the simulated tenant at `target` (its base URL).
    pub fn to(target: url::Url, inner: std::sync::Arc<dyn azure_core::http::HttpClient>) -> VaultToSimulator {
        VaultToSimulator { target, inner }
    }
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for VaultToSimulator {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        if !request
            .url()
            .host_str()
            .is_some_and(|h| h.ends_with(".vault.azure.net"))
        {
            return self.inner.execute_request(request).await;
        }
        let mut request = request.clone();
        let url = request.url_mut();
        let _ = url.set_scheme("http");
        let _ = url.set_host(self.target.host_str());
        let _ = url.set_port(self.target.port());
        self.inner.execute_request(&request).await
    }
}

/// The Azure SDK seams `dev` uses: the simulator's identity and a transport to its vault.
pub fn sim_overrides(sim: &Simulator) -> crate::azure::AzureOverrides {
    crate::azure::AzureOverrides {
        credential: Some(std::sync::Arc::new(SimCredential::new(sim))),
        transport: Some(azure_core::http::Transport::new(std::sync::Arc::new(
            VaultToSimulator::new(sim, azure_core::http::new_http_client(None)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_empties_only_the_directories_it_chose_itself() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(
            own_directories(&vars(&[])),
            vec![".dev/audit", ".dev/requests", ".dev/sweeps"]
        );
        assert_eq!(
            own_directories(&vars(&[("AUDIT_DIR", "/var/trail")])),
            vec![".dev/requests", ".dev/sweeps"]
        );
        assert!(own_directories(&vars(&[("AzureWebJobsStorage__blobServiceUri", "https://x")])).is_empty());
    }
}
