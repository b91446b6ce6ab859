//! Command line: `serve` (what the Functions host starts), `dev`, `sim` and `config`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::host::{self, Application, HostOptions};
use crate::telemetry;

/// Get locked-out Microsoft Entra ID users back in, safely.
#[derive(Debug, Parser)]
#[command(name = "mfa-recovery", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as the Azure Functions custom handler (the default: what the host starts).
    Serve,
    /// Check the configuration from the environment and print it (no secrets are settings).
    Config,
    /// Issue a Temporary Access Pass and deliver it out of band (the same procedure as the `tap` function).
    Tap(TapArgs),
    /// Require re-registration of MFA (the same procedure as the `reset` function).
    Reset(ResetArgs),
    /// Verify the caller: send a code to the user's address of record, type the code they read
    /// out, and get the verification id for `tap` or `reset --verification-id` (docs/verification.md).
    Verify(VerifyArgs),
    /// Approve a recovery that waits for a second person (docs/approval.md), through the API with
    /// your own token: your identity and roles are what is checked.
    Approve(DecisionArgs),
    /// Deny a recovery that waits for a second person, with a comment.
    Deny(DecisionArgs),
    /// Run the compliance sweep now (or resume an unfinished one) and write its reports.
    Sweep(SweepArgs),
    /// Check, without writing anything, that this tenant grants, licenses and answers every read
    /// the service needs: per feature, works / missing permission (named) / not licensed / not
    /// configured, with the fix (docs/verify-in-a-tenant.md). With the managed identity (in
    /// Azure) it checks the identity's grants; from a workstation (`az login`), what you can read.
    Doctor(DoctorArgs),
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the whole function set locally against the simulated tenant.
    #[cfg(feature = "dev")]
    Dev(crate::dev::DevArgs),
    /// Run the simulated tenant alone.
    #[cfg(feature = "dev")]
    Sim(crate::dev::SimArgs),
}

/// Where a pass or a code goes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ChannelArg {
    /// A text message to the user's phone number of record.
    Sms,
    /// An email to the user's alternate address of record (never their own mailbox).
    Email,
    /// An email to the user's manager, who hands it over in person.
    Manager,
}

impl ChannelArg {
    fn as_str(self) -> &'static str {
        match self {
            ChannelArg::Sms => "sms",
            ChannelArg::Email => "email",
            ChannelArg::Manager => "manager",
        }
    }
}

/// Which methods `reset` removes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    /// What the admin center's "Require re-register MFA" removes.
    Portal,
    /// Every removable method.
    All,
    /// Only the methods named with --method.
    Methods,
}

impl ScopeArg {
    fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Portal => "portal",
            ScopeArg::All => "all",
            ScopeArg::Methods => "methods",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DecisionArgs {
    /// The request id (from the approver's email, the webhook or the status URL).
    pub request: String,
    /// Why (kept in the audit trail and the request).
    #[arg(long)]
    pub comment: String,
    /// The function app's base URL, such as `https://func-mfa-recovery-abc.azurewebsites.net`.
    #[arg(long, env = "MFA_RECOVERY_API")]
    pub api: url::Url,
    /// A bearer token for the API holding `Recovery.Approve` (for example
    /// `az account get-access-token --resource <AUTH_AUDIENCE> --query accessToken -o tsv`).
    #[arg(long, env = "MFA_RECOVERY_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The account whose reads are tried (object id or UPN; nothing is changed on it). Without
    /// it, the first user the directory lists.
    #[arg(long)]
    pub user: Option<String>,
    /// Print the report as JSON (what `GET /api/doctor` answers) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Write the run and its reports to this directory instead of the configured storage.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The user: object id or UPN.
    #[arg(long)]
    pub user: String,
    /// Where the pass goes.
    #[arg(long, value_enum)]
    pub channel: ChannelArg,
    /// The ticket as SYSTEM:ID, e.g. servicenow:INC0010001.
    #[arg(long)]
    pub ticket: String,
    /// Why (kept in the audit trail), e.g. "lost phone".
    #[arg(long)]
    pub reason: String,
    /// Lifetime in minutes (default: TAP_DEFAULT_LIFETIME_MINUTES, within the policy and channel limits).
    #[arg(long)]
    pub lifetime: Option<u32>,
    /// A verification the service made (`mfa-recovery verify`); required under
    /// TAP_REQUIRE_VERIFICATION=service.
    #[arg(long)]
    pub verification_id: Option<String>,
    /// How the requester's identity was verified, e.g. "manager callback"
    /// (TAP_REQUIRE_VERIFICATION=attested).
    #[arg(long)]
    pub verification_method: Option<String>,
    /// Who verified it (a UPN), with --verification-method.
    #[arg(long)]
    pub verified_by: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The user: object id or UPN.
    #[arg(long)]
    pub user: String,
    /// Where the code goes. The pass must then take another channel.
    #[arg(long, value_enum)]
    pub channel: ChannelArg,
    /// The ticket as SYSTEM:ID, named in the message.
    #[arg(long)]
    pub ticket: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The user: object id or UPN.
    #[arg(long)]
    pub user: String,
    /// Which methods are removed.
    #[arg(long, value_enum, default_value = "portal")]
    pub scope: ScopeArg,
    /// A method id to remove, with --scope methods (repeatable).
    #[arg(long = "method")]
    pub methods: Vec<String>,
    /// Also issue a pass, delivered by this channel.
    #[arg(long, value_enum)]
    pub tap: Option<ChannelArg>,
    /// Keep the user's sign-in sessions.
    #[arg(long)]
    pub keep_sessions: bool,
    /// The ticket as SYSTEM:ID.
    #[arg(long)]
    pub ticket: String,
    /// Why (kept in the audit trail), e.g. "lost phone".
    #[arg(long)]
    pub reason: String,
    /// A verification the service made (`mfa-recovery verify`).
    #[arg(long)]
    pub verification_id: Option<String>,
    /// How the requester's identity was verified (TAP_REQUIRE_VERIFICATION=attested).
    #[arg(long)]
    pub verification_method: Option<String>,
    /// Who verified it (a UPN), with --verification-method.
    #[arg(long)]
    pub verified_by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash chain in a time range, hold each against the anchor log (a deleted
    /// tail, a deleted chain or a rewrite is found), and report the first record that does not
    /// match. An empty range fails unless --allow-empty.
    Verify {
        /// Start of the range (RFC 3339 or YYYY-MM-DD, UTC). Default: 30 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// End of the range. Default: now.
        #[arg(long)]
        to: Option<String>,
        /// Succeed on a range with no record (a new deployment, a quiet period).
        #[arg(long)]
        allow_empty: bool,
        /// Also hold the trail against its copy in Log Analytics: a query result saved as JSON
        /// (`az monitor log-analytics query … -o json > export.json`, docs/audit.md).
        #[arg(long, value_name = "FILE")]
        compare_export: Option<std::path::PathBuf>,
    },
}

/// Run the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Config => show_config(),
        Command::Reset(args) => match recovery_settings() {
            Ok(settings) => reset(settings, args).await,
            Err(e) => config_error(&e),
        },
        Command::Tap(args) => match recovery_settings() {
            Ok(settings) => tap(settings, args).await,
            Err(e) => config_error(&e),
        },
        Command::Verify(args) => match recovery_settings() {
            Ok(settings) => verify(settings, args).await,
            Err(e) => config_error(&e),
        },
        Command::Approve(args) => decide(args, "approve").await,
        Command::Deny(args) => decide(args, "deny").await,
        Command::Sweep(args) => match Settings::for_command_line() {
            Ok(settings) => sweep(settings, args).await,
            Err(e) => config_error(&e),
        },
        Command::Doctor(args) => match Settings::for_doctor() {
            Ok(settings) => doctor(settings, args).await,
            Err(e) => config_error(&e),
        },
        Command::Audit {
            command:
                AuditCommand::Verify {
                    from,
                    to,
                    allow_empty,
                    compare_export,
                },
        } => match Settings::for_command_line() {
            Ok(settings) => audit_verify(settings, from, to, allow_empty, compare_export).await,
            Err(e) => config_error(&e),
        },
        #[cfg(feature = "dev")]
        Command::Dev(args) => report(crate::dev::run(args).await),
        #[cfg(feature = "dev")]
        Command::Sim(args) => report(crate::dev::run_sim(args).await),
    }
}

/// The settings `tap`, `reset` and `verify` need: the command line's, with the API's App ID URI,
/// because the holders of the API's app roles are protected and are found by it.
fn recovery_settings() -> Result<Settings, crate::config::ConfigError> {
    let settings = Settings::for_command_line()?;
    if settings.auth.audience.is_none() {
        return Err(crate::config::ConfigError::new(
            "AUTH_AUDIENCE",
            "is required by tap, reset and verify: the holders of the API's app roles are protected, and the API is found by its App ID URI (azd env get-value AUTH_AUDIENCE)",
        ));
    }
    Ok(settings)
}

/// `mfa-recovery config`: every setting as `KEY=value` with its source, then warnings; exit 2 on
/// a setting that cannot be used (all of them named).
fn show_config() -> ExitCode {
    let vars = crate::config::environment();
    for line in crate::config::show::listing(&vars) {
        println!("{line}");
    }
    match Settings::for_command_line() {
        Ok(settings) => {
            for warning in crate::config::show::warnings(&settings) {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
}

/// `mfa-recovery doctor`: the report as lines (or JSON); exit 1 when a row needs the admin.
async fn doctor(settings: Settings, args: DoctorArgs) -> ExitCode {
    let user = match args
        .user
        .as_deref()
        .map(crate::graph::models::UserRef::parse)
        .transpose()
    {
        Ok(user) => user,
        Err(e) => {
            eprintln!("mfa-recovery doctor: --user: {e}");
            return ExitCode::from(2);
        }
    };
    let graph = match doctor_graph(&settings) {
        Ok(graph) => graph,
        Err(e) => return fail("doctor", &e),
    };
    let report = crate::doctor::run(&graph, &settings, user.as_ref()).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        println!("{}", report.note);
        for row in &report.rows {
            let status = serde_json::to_value(row.status).unwrap_or_default();
            println!(
                "{:<18} {}: {}: {}",
                status.as_str().unwrap_or("?"),
                row.feature,
                row.check,
                row.detail
            );
        }
        println!("{} work, {} need you.", report.works, report.problems);
    }
    if report.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A Graph client with the command line's credential: the managed identity where the platform
/// has one, otherwise the developer's sign-in. Only Graph: the doctor needs no storage.
fn doctor_graph(settings: &Settings) -> anyhow::Result<crate::graph::GraphClient> {
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("mfa-recovery/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let credential = crate::azure::cli_credential(settings)?;
    Ok(crate::graph::GraphClient::new(
        http,
        settings.graph_endpoint.clone(),
        credential,
    ))
}

fn config_error(e: &crate::config::ConfigError) -> ExitCode {
    eprintln!("mfa-recovery: configuration error: {e}");
    eprintln!("See docs/configuration.md for every setting and its default.");
    ExitCode::from(2)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-recovery: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    telemetry::init(settings.log_format);
    let app = match Application::build(settings, HostOptions::default()).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    report(app.run_until_stopped(host::shutdown_signal()).await.map_err(Into::into))
}

fn parse_day_or_time(name: &str, value: &str) -> anyhow::Result<time::OffsetDateTime> {
    let rfc = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(value, rfc)
        .or_else(|_| {
            time::Date::parse(value, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| anyhow::anyhow!("--{name} must be an RFC 3339 time or a YYYY-MM-DD date"))
}

/// `mfa-recovery audit verify`: exit 0 when every chain verifies, 1 when one does not.
async fn audit_verify(
    settings: Settings,
    from: Option<String>,
    to: Option<String>,
    allow_empty: bool,
    compare_export: Option<std::path::PathBuf>,
) -> ExitCode {
    let run = async {
        let to = match to {
            Some(t) => parse_day_or_time("to", &t)?,
            None => time::OffsetDateTime::now_utc(),
        };
        let from = match from {
            Some(f) => parse_day_or_time("from", &f)?,
            None => to - time::Duration::days(30),
        };
        anyhow::ensure!(from <= to, "--from must not be after --to");
        let trail = crate::app::operator_trail(&settings, &cli_overrides(&settings)?).await?;
        let report = trail.verify(from, to, allow_empty).await?;
        let compared = match compare_export {
            Some(file) => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("--compare-export {}: {e}", file.display()))?;
                let rows: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("--compare-export {}: not a JSON array of rows ({e})", file.display())
                })?;
                Some(crate::audit::export::compare(&trail, &rows, from, to).await?)
            }
            None => None,
        };
        Ok::<_, anyhow::Error>((report, compared))
    };
    match run.await {
        Ok((report, compared)) => match &report.first_mismatch {
            None if compared.as_ref().is_some_and(|c| c.problem.is_some()) => {
                let c = compared.expect("checked");
                println!(
                    "verified {} records in {} chains, but EXPORT MISMATCH: {}",
                    report.records,
                    report.chains,
                    c.problem.unwrap_or_default()
                );
                ExitCode::FAILURE
            }
            None => {
                if let Some(c) = &compared {
                    println!(
                        "the export agrees: {} records and {} chain heads match storage; {} records are not exported yet",
                        c.records, c.heads, c.not_yet
                    );
                }
                println!(
                    "verified {} records in {} chains: every hash matches",
                    report.records, report.chains
                );
                match &report.signed_from {
                    Some(from) => println!(
                        "{} records signed from {from} (audit key versions: {}); every anchor's MAC verifies{}",
                        report.signed_records,
                        report.key_ids.join(", "),
                        if report.signed_records < report.records {
                            format!(
                                "; {} earlier records are not signed",
                                report.records - report.signed_records
                            )
                        } else {
                            String::new()
                        }
                    ),
                    None => println!(
                        "no record in this range is signed (written before AUDIT_KEY_SECRET, or without a Key Vault)"
                    ),
                }
                ExitCode::SUCCESS
            }
            Some(m) if m.chain == "-" => {
                println!("FAILED: {}", m.reason);
                ExitCode::FAILURE
            }
            Some(m) => {
                println!(
                    "MISMATCH in chain {} at line {} (record {}): {}; {} records before it verified",
                    m.chain,
                    m.line,
                    m.record_id
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "unreadable".into()),
                    m.reason,
                    report.records
                );
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("mfa-recovery: audit verify: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The parts of a recovery body the CLI flags give: ticket, reason and verification.
fn request_body(
    ticket: &str,
    reason: &str,
    verification_id: Option<&String>,
    method: Option<&String>,
    by: Option<&String>,
) -> anyhow::Result<serde_json::Value> {
    let (system, id) = ticket
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--ticket must be SYSTEM:ID"))?;
    let mut body = serde_json::json!({"ticket": {"system": system, "id": id}, "reason": reason});
    if let Some(v) = verification_id {
        body["verification"] = serde_json::json!({"id": v});
    } else if let (Some(method), Some(by)) = (method, by) {
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
        body["verification"] = serde_json::json!({"method": method, "verifiedBy": by, "verifiedAt": now});
    }
    Ok(body)
}

/// `mfa-recovery verify`: send a code, read the one the user reads out from standard input (the
/// code is never an argument: arguments reach shell history and process lists), confirm it, and
/// print the verification id.
async fn verify(settings: Settings, args: VerifyArgs) -> ExitCode {
    let run = async {
        let mut body = serde_json::json!({"channel": args.channel.as_str()});
        if let Some(ticket) = &args.ticket {
            let (system, id) = ticket
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--ticket must be SYSTEM:ID"))?;
            body["ticket"] = serde_json::json!({"system": system, "id": id});
        }
        let (state, caller) = cli_state(settings).await?;
        let context = state.tap_context();
        let sent = context
            .send_verification(&caller, &args.user, body.to_string().as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        eprintln!(
            "A code went by {} to {} (valid until {}). Type the code the user reads out:",
            sent.channel.as_str(),
            sent.sent_to,
            crate::audit::rfc3339_millis(sent.expires_at)
        );
        for _ in 0..crate::recovery::verification::MAX_ATTEMPTS {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line)? == 0 {
                anyhow::bail!("no code was typed");
            }
            let body = serde_json::json!({"code": line.trim()}).to_string();
            match context
                .confirm_verification(&caller, &sent.id.to_string(), body.as_bytes())
                .await
            {
                Ok(_) => {
                    println!("{}", sent.id);
                    eprintln!("Verified. Pass it as --verification-id {} to tap or reset.", sent.id);
                    return Ok(());
                }
                Err(e) if e.code_str() == "code_mismatch" => eprintln!("{} Type it again:", e.message),
                Err(e) => anyhow::bail!("{}: {}", e.code, e.message),
            }
        }
        anyhow::bail!("too many wrong codes")
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("verify", &e),
    }
}

/// `mfa-recovery approve` and `deny`: `POST /api/requests/{id}/{decision}` with the approver's
/// token; prints the request's status.
async fn decide(args: DecisionArgs, decision: &str) -> ExitCode {
    let run = async {
        let mut url = args.api.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow::anyhow!("--api must be an http(s) URL"))?
            .pop_if_empty()
            .extend(["api", "requests", &args.request, decision]);
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(&args.token)
            .json(&serde_json::json!({"comment": args.comment}))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("the API could not be reached: {}", e.without_url()))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let code = body["error"]["code"].as_str().unwrap_or("error");
            let message = body["error"]["message"].as_str().unwrap_or("no detail");
            anyhow::bail!("{status} {code}: {message}");
        }
        println!("{}", serde_json::to_string_pretty(&body)?);
        Ok(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(decision, &e),
    }
}

/// How a command reaches Azure: the managed identity or the developer's sign-in, and (test hook,
/// `dev` builds) Key Vault through a simulated tenant.
fn cli_overrides(settings: &Settings) -> anyhow::Result<crate::azure::AzureOverrides> {
    #[allow(unused_mut)]
    let mut overrides = crate::azure::AzureOverrides {
        credential: Some(crate::azure::cli_credential(settings)?),
        transport: None,
    };
    #[cfg(feature = "dev")]
    if let Some(sim) = crate::config::sim_url() {
        let target = url::Url::parse(&sim).map_err(|e| anyhow::anyhow!("MFA_RECOVERY_SIM: {e}"))?;
        overrides.transport = Some(azure_core::http::Transport::new(std::sync::Arc::new(
            crate::dev::VaultToSimulator::to(target, azure_core::http::new_http_client(None)),
        )));
    }
    Ok(overrides)
}

/// The app's clients for a CLI run (managed identity or the developer's sign-in) and the CLI caller.
async fn cli_state(settings: Settings) -> anyhow::Result<(crate::app::App, crate::vocab::CallerRecord)> {
    let overrides = cli_overrides(&settings)?;
    let mut state = crate::app::App::new(settings, &overrides, std::sync::Arc::new(host::answers::HttpAnswers)).await?;
    // A command runs once and ends: its notices are sent before it does, not left to a queue.
    state.outbox = None;
    let caller = crate::vocab::CallerRecord {
        via: "cli".into(),
        name: crate::config::operator_name(),
        ..Default::default()
    };
    Ok((state, caller))
}

fn fail(what: &str, e: &anyhow::Error) -> ExitCode {
    let text = format!("{e:#}");
    eprintln!("mfa-recovery: {what}: {text}");
    if text.contains("permission_missing") && !crate::config::platform_identity_available() {
        eprintln!("{DEVELOPER_CREDENTIAL_403}");
    }
    ExitCode::FAILURE
}

/// Why Graph refuses a command line run with the developer's own sign-in (docs/tap.md).
pub(crate) const DEVELOPER_CREDENTIAL_403: &str = "mfa-recovery: this run used your own sign-in (az login or azd auth login), not the function app's managed identity. Microsoft Graph gives the Azure CLI's token only the scopes that app is pre-authorized for, which exclude UserAuthenticationMethod.*, so it answers 403 whatever your admin roles. Run where the managed identity is (IDENTITY_ENDPOINT), or call the API with your own token (docs/tap.md, \"From the command line\").";

/// `mfa-recovery tap`: the same procedure as `POST /api/users/{user}/tap`, recorded with the
/// caller `cli` and the operating-system user.
async fn tap(settings: Settings, args: TapArgs) -> ExitCode {
    let run = async {
        let mut body = request_body(
            &args.ticket,
            &args.reason,
            args.verification_id.as_ref(),
            args.verification_method.as_ref(),
            args.verified_by.as_ref(),
        )?;
        body["delivery"] = serde_json::json!({"channel": args.channel.as_str()});
        if let Some(l) = args.lifetime {
            body["lifetimeMinutes"] = serde_json::json!(l);
        }
        let request = crate::recovery::request::TapRequest::parse(&args.user, body.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        let (state, caller) = cli_state(settings).await?;
        state
            .tap_context()
            .issue(&caller, request)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
    };
    match run.await {
        Ok(issued) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&host::answers::issued_body(&issued)).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("tap", &e),
    }
}

/// `mfa-recovery reset`: the same procedure as `POST /api/users/{user}/mfa/reset`.
async fn reset(settings: Settings, args: ResetArgs) -> ExitCode {
    let run = async {
        let mut body = request_body(
            &args.ticket,
            &args.reason,
            args.verification_id.as_ref(),
            args.verification_method.as_ref(),
            args.verified_by.as_ref(),
        )?;
        body["scope"] = serde_json::json!(args.scope.as_str());
        body["revokeSessions"] = serde_json::json!(!args.keep_sessions);
        if !args.methods.is_empty() {
            body["methods"] = serde_json::json!(args.methods);
        }
        if let Some(channel) = args.tap {
            body["tap"] = serde_json::json!({"delivery": {"channel": channel.as_str()}});
        }
        let request = crate::recovery::reset::ResetRequest::parse(&args.user, body.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        let (state, caller) = cli_state(settings).await?;
        state
            .tap_context()
            .reset(&caller, request, true)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
    };
    match run.await {
        Ok(result) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&host::answers::reset_answer(&result).1).unwrap_or_default()
            );
            if result.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail("reset", &e),
    }
}

/// The process's peak resident set size (Linux), in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `mfa-recovery sweep [--out DIR]`: the compliance sweep from a terminal, with a progress bar;
/// prints the run's summary (and how fast it went) as JSON.
async fn sweep(settings: Settings, args: SweepArgs) -> ExitCode {
    use std::io::IsTerminal;
    let run = async {
        let (state, _) = cli_state(settings).await?;
        let store: std::sync::Arc<dyn crate::storage::reports::ReportStore> = match &args.out {
            Some(dir) => std::sync::Arc::new(crate::storage::reports::DirStore::new(dir.clone())),
            None => state.sweeps.clone().ok_or_else(|| {
                anyhow::anyhow!("no sweep storage: pass --out DIR, or set SWEEP_DIR or AzureWebJobsStorage__*")
            })?,
        };
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            Some(bar)
        } else {
            None
        };
        let sweep = crate::sweep::Sweep {
            graph: &state.graph,
            store,
            settings: &state.settings.sweep,
            deliverer: Some(&state.deliverer),
            audit: Some(&state.audit),
            budget: None,
        };
        let started = std::time::Instant::now();
        let progress = |p: &crate::sweep::Progress| {
            if let Some(bar) = &bar {
                bar.set_message(format!("{} users, {} at risk, page {}", p.users, p.at_risk, p.pages));
            }
        };
        let outcome = sweep.run(crate::sweep::Trigger::Cli, &progress).await?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let crate::sweep::RunOutcome::Finished(summary) = outcome else {
            anyhow::bail!("the sweep did not finish");
        };
        let elapsed = started.elapsed().as_secs_f64();
        let users = summary.totals.users;
        let mut summary = serde_json::to_value(&summary)?;
        summary["thisInvocation"] = serde_json::json!({
            "elapsedSeconds": (elapsed * 1000.0).round() / 1000.0,
            "usersPerSecond": if elapsed > 0.0 { (users as f64 / elapsed).round() } else { 0.0 },
            "peakRssKiB": peak_rss_kib(),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        Ok::<(), anyhow::Error>(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("sweep", &e),
    }
}
