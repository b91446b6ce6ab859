//! Settings: one typed value built at start-up from the environment (app settings in Azure).
//!
//! Every setting, its meaning and its default is listed in `docs/configuration.md`; keep the two
//! in step. A bad or missing value stops start-up with an error that names the key. Secrets are
//! never settings: connector secrets live in Key Vault and are read with the managed identity.

use std::collections::HashMap;
use std::fmt;

use url::Url;
use uuid::Uuid;

mod approval;
mod auth;
mod delivery;
mod intake;
pub mod registry;
pub mod show;
mod storage;
mod sweep;

pub use approval::{ApprovalSettings, ApprovalTrigger};
pub use auth::{AuthSettings, WebhookScheme, WebhookSender};
use auth::{auth_settings, webhook_senders};
use delivery::tap_settings;
pub use delivery::{AcsSettings, EmailProvider, RiskCheck, SmsProvider, TapSettings, TwilioSettings, VerificationMode};
use intake::intake_settings;
pub use intake::{FieldMap, IntakeSettings, IntakeStore, JiraSettings, ServiceNowSettings};
pub use storage::{AuditSettings, LimitsStore, StorageSettings};
use storage::{audit, container_name, limits, refusal_seconds, storage};
pub use sweep::{SweepSettings, SweepStore};
use sweep::{sweep_settings, validate_schedule};

/// A setting that is missing or cannot be used. Its `Display` names the key; when several are
/// wrong, start-up reports them all at once (`also`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    /// The other bad settings found in the same pass.
    pub also: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)?;
        for e in &self.also {
            write!(f, "; {}: {}", e.key, e.problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
            also: Vec::new(),
        }
    }
}

/// The errors of one pass over the settings: each section is read even when an earlier one
/// failed, so an admin fixes them all at once.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// The section's value, or `None` (its error kept).
    fn keep<T>(&mut self, section: Result<T, ConfigError>) -> Option<T> {
        match section {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// The first error, with the others attached.
    fn into_result(self) -> Result<(), ConfigError> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.also = all.collect();
                Err(first)
            }
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (what the Functions host forwards to Application Insights).
    Json,
    /// Readable lines for a terminal.
    Text,
}

/// The whole configuration of the function set.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`: the port the Functions host gave us.
    pub port: u16,
    /// `GRAPH_ENDPOINT`: Microsoft Graph base URL, without the version segment.
    pub graph_endpoint: Url,
    /// `AZURE_CLIENT_ID`: the user-assigned managed identity; `None` means system-assigned.
    pub managed_identity_client_id: Option<Uuid>,
    pub auth: AuthSettings,
    /// `KEY_VAULT_URI`: the vault holding connector secrets.
    pub key_vault_uri: Option<Url>,
    pub storage: Option<StorageSettings>,
    /// Where the audit trail is kept.
    pub audit: AuditSettings,
    /// Where the rate-limit slots are kept.
    pub limits: LimitsStore,
    /// `AUDIT_REFUSAL_SECONDS`: unauthenticated refusals are counted per source and recorded in
    /// aggregate once per this many seconds (default 60), so a flood cannot fill the trail.
    pub refusal_flush_seconds: u32,
    /// `AUDIT_KEY_SECRET`: the Key Vault secret that signs the trail's anchors and the decisions
    /// (`None` without `KEY_VAULT_URI`: the trail is unsigned).
    pub audit_key_secret: Option<String>,
    /// `AUDIT_EXPORT_ENDPOINT`, `AUDIT_EXPORT_RULE_ID`, `AUDIT_EXPORT_STREAM`: the trail's copy in
    /// Log Analytics (`None`: not exported).
    pub audit_export: Option<AuditExportSettings>,
    /// `WEBHOOK_SENDERS`: senders that sign instead of presenting a token.
    pub webhook_senders: Vec<WebhookSender>,
    pub tap: TapSettings,
    /// The asynchronous intake (`requests`, `recovery-worker`, `recovery-poison`) and write-back.
    pub intake: IntakeSettings,
    /// `SWEEP_SCHEDULE`: NCRONTAB (6 fields) of the compliance sweep.
    pub sweep_schedule: String,
    /// The compliance sweep's checks, pace, output and nudges.
    pub sweep: SweepSettings,
    /// `MFA_RECOVERY_LOG_FORMAT`, or JSON when running under a Functions host.
    pub log_format: LogFormat,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No secret is a setting, so every field may be shown.
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field("graph_endpoint", &self.graph_endpoint.as_str())
            .field("managed_identity_client_id", &self.managed_identity_client_id)
            .field("auth", &self.auth)
            .field("key_vault_uri", &self.key_vault_uri.as_ref().map(Url::as_str))
            .field("storage", &self.storage)
            .field("audit", &self.audit)
            .field("limits", &self.limits)
            .field("refusal_flush_seconds", &self.refusal_flush_seconds)
            .field("audit_key_secret", &self.audit_key_secret)
            .field("audit_export", &self.audit_export)
            .field("webhook_senders", &self.webhook_senders)
            .field("tap", &self.tap)
            .field("intake", &self.intake)
            .field("sweep_schedule", &self.sweep_schedule)
            .field("sweep", &self.sweep)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// Defaults from DESIGN.md's configuration contract.
pub(crate) const DEFAULT_PORT: u16 = 7071;
pub(crate) const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
pub(crate) const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub(crate) const DEFAULT_SWEEP_SCHEDULE: &str = "0 0 2 * * *";

/// Environment variables that show the process runs under a Functions host.
use registry::HOST_MARKERS;

/// The process environment as a map (what `Settings::from_map` reads; `dev` overlays it).
pub fn environment() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// Whether the platform provides a managed identity here (`IDENTITY_ENDPOINT`, set by App
/// Service and Functions): the CLI uses it there and the developer's sign-in elsewhere.
pub(crate) fn platform_identity_available() -> bool {
    std::env::var_os("IDENTITY_ENDPOINT").is_some()
}

/// Who runs the command line (`USER` or `USERNAME`), for its audit records.
pub(crate) fn operator_name() -> Option<String> {
    std::env::var("USER").ok().or_else(|| std::env::var("USERNAME").ok())
}

/// Test hook (`dev` builds): the step after which the process aborts (`MFA_RECOVERY_CRASH_AT`).
pub fn crash_at() -> Option<String> {
    std::env::var("MFA_RECOVERY_CRASH_AT").ok()
}

/// Test hook (`dev` builds): the simulated tenant a CLI run reaches Key Vault through
/// (`MFA_RECOVERY_SIM`, its base URL), since the vault's https name cannot resolve here.
#[cfg(feature = "dev")]
pub(crate) fn sim_url() -> Option<String> {
    std::env::var("MFA_RECOVERY_SIM").ok()
}

impl Settings {
    /// Read the settings from the process environment.
    ///
    /// # Errors
    /// A required setting is missing or a value cannot be used; the error names the key.
    pub(crate) fn from_env() -> Result<Settings, ConfigError> {
        Self::from_map(&environment())
    }

    /// Read the settings from `vars` (the environment, or a map built by a test or `dev`).
    ///
    /// # Errors
    /// A required setting is missing or a value cannot be used; the error names the key.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        Self::read(vars, true)
    }

    /// The settings a command-line run reads from the environment: as `from_env`, but the API's
    /// caller settings (`AUTH_*`) are optional, since the command line accepts no tokens.
    ///
    /// # Errors
    /// A setting that is present cannot be used, or a required one is missing.
    pub(crate) fn for_command_line() -> Result<Settings, ConfigError> {
        Self::read(&environment(), false)
    }

    /// The command line's settings for `doctor`, which writes nothing: the audit trail's storage
    /// is not required (a workstation with `az login` has none set), so where none is named a
    /// directory that is never written stands in for it.
    pub(crate) fn for_doctor() -> Result<Settings, ConfigError> {
        let mut vars = environment();
        let named = [
            "AUDIT_DIR",
            "AzureWebJobsStorage__blobServiceUri",
            "AzureWebJobsStorage__accountName",
        ]
        .iter()
        .any(|k| vars.get(*k).is_some_and(|v| !v.trim().is_empty()));
        if !named {
            vars.insert("AUDIT_DIR".into(), std::env::temp_dir().to_string_lossy().into_owned());
        }
        Self::read(&vars, false)
    }

    fn read(vars: &HashMap<String, String>, serving: bool) -> Result<Settings, ConfigError> {
        let get = |key: &str| {
            debug_assert!(
                registry::is_registered(key),
                "{key} is read but not in config::registry (docs/configuration.md)"
            );
            vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        let mut problems = Problems::default();
        let host = problems.keep(host_settings(&get));
        let auth = problems.keep(auth_settings(&get, serving));
        let key_vault_uri = problems
            .keep(get("KEY_VAULT_URI").map(|v| endpoint("KEY_VAULT_URI", v)).transpose())
            .flatten();
        let storage = problems.keep(storage(&get)).flatten();
        let audit = problems.keep(audit(&get, storage.as_ref()));
        let limits = audit
            .as_ref()
            .and_then(|a| problems.keep(limits(&get, storage.as_ref(), a)));
        let refusal_flush_seconds = problems.keep(refusal_seconds(&get));
        let audit_export = problems.keep(audit_export(&get));
        let webhook_senders = problems.keep(webhook_senders(get("WEBHOOK_SENDERS")));
        let tap = problems.keep(tap_settings(&get));
        let intake = problems.keep(intake_settings(&get, storage.as_ref()));
        let sweep_schedule = get("SWEEP_SCHEDULE").unwrap_or(DEFAULT_SWEEP_SCHEDULE).to_owned();
        problems.keep(validate_schedule(&sweep_schedule));
        let sweep = problems.keep(sweep_settings(&get, storage.as_ref()));
        if key_vault_uri.is_none() {
            problems.keep(vault_needed(webhook_senders.as_deref(), tap.as_ref(), intake.as_ref()));
        }
        problems.into_result()?;
        let (port, graph_endpoint, managed_identity_client_id, log_format) = host.expect("no problems");
        let audit_key_secret = key_vault_uri
            .as_ref()
            .map(|_| get("AUDIT_KEY_SECRET").unwrap_or("audit-key").to_owned());
        Ok(Settings {
            port,
            graph_endpoint,
            managed_identity_client_id,
            auth: auth.expect("no problems"),
            key_vault_uri,
            storage,
            audit: audit.expect("no problems"),
            limits: limits.expect("no problems"),
            refusal_flush_seconds: refusal_flush_seconds.expect("no problems"),
            audit_key_secret,
            audit_export: audit_export.expect("no problems"),
            webhook_senders: webhook_senders.expect("no problems"),
            tap: tap.expect("no problems"),
            intake: intake.expect("no problems"),
            sweep_schedule,
            sweep: sweep.expect("no problems"),
            log_format,
        })
    }
}

type Get<'a, 'b> = &'b dyn Fn(&str) -> Option<&'a str>;

/// The host's part: the port, Graph, the managed identity, the log format.
fn host_settings<'a>(get: Get<'a, '_>) -> Result<(u16, Url, Option<Uuid>, LogFormat), ConfigError> {
    let port = match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
        None => DEFAULT_PORT,
        Some(v) => v.parse::<u16>().map_err(|_| {
            ConfigError::new(
                "FUNCTIONS_CUSTOMHANDLER_PORT",
                format!("'{v}' is not a port number (0-65535)"),
            )
        })?,
    };
    let graph_endpoint = endpoint(
        "GRAPH_ENDPOINT",
        get("GRAPH_ENDPOINT").unwrap_or(DEFAULT_GRAPH_ENDPOINT),
    )?;
    let managed_identity_client_id = get("AZURE_CLIENT_ID").map(|v| guid("AZURE_CLIENT_ID", v)).transpose()?;
    let log_format = match get("MFA_RECOVERY_LOG_FORMAT") {
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            return Err(ConfigError::new(
                "MFA_RECOVERY_LOG_FORMAT",
                format!("'{other}' is not 'json' or 'text'"),
            ));
        }
        None if HOST_MARKERS.iter().any(|k| get(k).is_some()) => LogFormat::Json,
        None => LogFormat::Text,
    };
    Ok((port, graph_endpoint, managed_identity_client_id, log_format))
}

/// Without a vault, nothing may need a secret from it.
fn vault_needed(
    webhook_senders: Option<&[WebhookSender]>,
    tap: Option<&TapSettings>,
    intake: Option<&IntakeSettings>,
) -> Result<(), ConfigError> {
    if webhook_senders.is_some_and(|w| !w.is_empty()) {
        return Err(ConfigError::new(
            "KEY_VAULT_URI",
            "is required when WEBHOOK_SENDERS is set (the signing secrets live there)",
        ));
    }
    if tap.is_some_and(|t| t.acs.is_some()) {
        return Err(ConfigError::new(
            "KEY_VAULT_URI",
            "is required when ACS_ENDPOINT is set (the access key lives there)",
        ));
    }
    if intake.is_some_and(|i| i.servicenow.is_some() || i.jira.is_some() || i.callback_secret.is_some()) {
        return Err(ConfigError::new(
            "KEY_VAULT_URI",
            "is required when a write-back (SERVICENOW_*, JIRA_*, CALLBACK_SIGNING_SECRET) is set: its credential lives there",
        ));
    }
    Ok(())
}

/// An absolute URL; `https` unless it points at this machine (the simulator, Azurite).
fn endpoint(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(value).map_err(|e| ConfigError::new(key, format!("'{value}' is not an absolute URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(ConfigError::new(
                key,
                format!("'{value}' must use https (http is allowed only for 127.0.0.1 and localhost)"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            key,
            format!("'{value}' must not carry a query or fragment"),
        ));
    }
    Ok(url)
}

/// Where the trail's copy goes: a data collection rule's Logs Ingestion endpoint, its immutable
/// id and stream. Both or neither of the endpoint and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditExportSettings {
    pub endpoint: Url,
    pub rule_id: String,
    pub stream: String,
}

fn audit_export(get: Get<'_, '_>) -> Result<Option<AuditExportSettings>, ConfigError> {
    let (endpoint, rule) = match (get("AUDIT_EXPORT_ENDPOINT"), get("AUDIT_EXPORT_RULE_ID")) {
        (None, None) => return Ok(None),
        (Some(e), Some(r)) => (endpoint("AUDIT_EXPORT_ENDPOINT", e)?, r),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "AUDIT_EXPORT_RULE_ID",
                "is required with AUDIT_EXPORT_ENDPOINT: the data collection rule's immutable id (dcr-…)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "AUDIT_EXPORT_ENDPOINT",
                "is required with AUDIT_EXPORT_RULE_ID: the data collection rule's logsIngestion endpoint",
            ));
        }
    };
    let simple = |v: &str| {
        !v.is_empty() && v.len() <= 100 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !rule.starts_with("dcr-") || !simple(rule) {
        return Err(ConfigError::new(
            "AUDIT_EXPORT_RULE_ID",
            format!("'{rule}' is not a data collection rule's immutable id (dcr- and letters or digits)"),
        ));
    }
    let stream = get("AUDIT_EXPORT_STREAM").unwrap_or("Custom-MfaRecoveryAudit");
    if !stream.starts_with("Custom-") || !simple(stream) {
        return Err(ConfigError::new(
            "AUDIT_EXPORT_STREAM",
            format!("'{stream}' is not a custom stream's name (Custom- and letters, digits, - or _)"),
        ));
    }
    Ok(Some(AuditExportSettings {
        endpoint,
        rule_id: rule.to_owned(),
        stream: stream.to_owned(),
    }))
}

fn guid(key: &str, value: &str) -> Result<Uuid, ConfigError> {
    Uuid::parse_str(value).map_err(|_| ConfigError::new(key, format!("'{value}' is not a GUID")))
}

fn number<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    key: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => v.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ConfigError::new(
                key,
                format!("'{v}' is not a whole number from {} to {}", range.start(), range.end()),
            )
        }),
    }
}

fn flag<'a>(get: &impl Fn(&str) -> Option<&'a str>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ConfigError::new(key, format!("'{v}' is not true or false"))),
    }
}

/// A comma-separated list of object ids.
fn guid_list(key: &str, value: Option<&str>) -> Result<Vec<Uuid>, ConfigError> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| guid(key, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("AUTH_TENANT_ID", "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10"),
            ("AUTH_AUDIENCE", "api://mfa-recovery"),
            ("AUDIT_DIR", "/tmp/mfa-recovery-audit"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m = base();
        for (k, v) in pairs {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    }

    #[test]
    fn defaults_follow_the_design_contract() {
        let s = Settings::from_map(&base()).unwrap();
        assert_eq!(s.port, 7071);
        assert_eq!(s.graph_endpoint.as_str(), "https://graph.microsoft.com/");
        assert_eq!(s.auth.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(s.sweep_schedule, "0 0 2 * * *");
        assert_eq!(s.managed_identity_client_id, None);
        assert_eq!(s.storage, None);
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let mut vars = with(&[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "seventy"),
            ("TAP_MAX_MINUTES_SMS", "5"),
            ("SWEEP_SCHEDULE", "daily"),
        ]);
        vars.remove("AUTH_TENANT_ID");
        let e = Settings::from_map(&vars).unwrap_err();
        let keys: Vec<&str> = std::iter::once(e.key.as_str())
            .chain(e.also.iter().map(|a| a.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                "FUNCTIONS_CUSTOMHANDLER_PORT",
                "AUTH_TENANT_ID",
                "TAP_MAX_MINUTES_SMS",
                "SWEEP_SCHEDULE"
            ]
        );
        let text = e.to_string();
        assert!(text.starts_with("FUNCTIONS_CUSTOMHANDLER_PORT: "), "{text}");
        assert!(text.contains("; SWEEP_SCHEDULE: "), "{text}");
    }

    #[test]
    fn every_key_read_is_in_the_registry() {
        // `from_map` asserts each read in debug builds; a full configuration reads every section.
        let all = with(&[
            ("AzureWebJobsStorage__accountName", "stmfa"),
            ("KEY_VAULT_URI", "https://kv.vault.azure.net/"),
            ("ACS_ENDPOINT", "https://acs.communication.azure.com"),
            ("ACS_ACCESS_KEY_SECRET", "acs-key"),
            ("ACS_SMS_FROM", "+14255550100"),
            ("SERVICENOW_INSTANCE_URL", "https://contoso.service-now.com"),
            ("SERVICENOW_USER", "svc"),
            ("SERVICENOW_PASSWORD_SECRET", "sn"),
            ("JIRA_BASE_URL", "https://contoso.atlassian.net"),
            ("JIRA_USER", "svc@contoso.test"),
            ("JIRA_API_TOKEN_SECRET", "jira"),
        ]);
        Settings::from_map(&all).unwrap();
    }

    #[test]
    fn running_under_a_functions_host_selects_json_logs() {
        let s = Settings::from_map(&with(&[("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "abc")])).unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")],
                "FUNCTIONS_CUSTOMHANDLER_PORT",
            ),
            (&[("GRAPH_ENDPOINT", "graph.microsoft.com")], "GRAPH_ENDPOINT"),
            (&[("GRAPH_ENDPOINT", "http://graph.microsoft.com")], "GRAPH_ENDPOINT"),
            (&[("AZURE_CLIENT_ID", "not-a-guid")], "AZURE_CLIENT_ID"),
            (&[("AUTH_TENANT_ID", "contoso")], "AUTH_TENANT_ID"),
            (&[("AUTH_AUTHORITY", "ftp://login")], "AUTH_AUTHORITY"),
            (&[("KEY_VAULT_URI", "https://kv.vault.azure.net/?x=1")], "KEY_VAULT_URI"),
            (&[("SWEEP_SCHEDULE", "0 2 * * *")], "SWEEP_SCHEDULE"),
            (&[("SWEEP_SCHEDULE", "0 0 25 * * *")], "SWEEP_SCHEDULE"),
            (&[("MFA_RECOVERY_LOG_FORMAT", "xml")], "MFA_RECOVERY_LOG_FORMAT"),
            (&[("ADDRESS_MIN_AGE_DAYS", "31")], "ADDRESS_MIN_AGE_DAYS"),
            (&[("ADDRESS_MIN_AGE_DAYS", "90")], "ADDRESS_MIN_AGE_DAYS"),
            (
                &[("AzureWebJobsStorage__accountName", "Bad_Name")],
                "AzureWebJobsStorage__accountName",
            ),
            (
                &[("AzureWebJobsStorage__blobServiceUri", "https://a.blob.core.windows.net")],
                "AzureWebJobsStorage__queueServiceUri",
            ),
        ];
        for (pairs, key) in cases {
            let err = Settings::from_map(&with(pairs)).expect_err(key);
            assert_eq!(&err.key, key, "{pairs:?}");
            assert!(err.to_string().starts_with(key), "{err}");
        }
    }

    #[test]
    fn required_settings_are_named_when_missing() {
        let mut m = base();
        m.remove("AUTH_TENANT_ID");
        assert_eq!(Settings::from_map(&m).unwrap_err().key, "AUTH_TENANT_ID");
        let mut m = base();
        m.insert("AUTH_AUDIENCE".into(), "  ".into());
        assert_eq!(Settings::from_map(&m).unwrap_err().key, "AUTH_AUDIENCE");
    }

    #[test]
    fn storage_account_name_expands_to_public_cloud_endpoints() {
        let s = Settings::from_map(&with(&[
            ("AzureWebJobsStorage__accountName", "stmfarecovery"),
            ("AzureWebJobsStorage__clientId", "5e29463d-71da-4fe0-8e69-999b57db23b0"),
        ]))
        .unwrap();
        let st = s.storage.unwrap();
        assert_eq!(
            st.blob_service_uri.as_str(),
            "https://stmfarecovery.blob.core.windows.net/"
        );
        assert_eq!(
            st.queue_service_uri.as_str(),
            "https://stmfarecovery.queue.core.windows.net/"
        );
        assert!(st.client_id.is_some());
    }

    #[test]
    fn the_audit_trail_needs_storage_or_a_directory() {
        let mut m = base();
        m.remove("AUDIT_DIR");
        assert_eq!(
            Settings::from_map(&m).unwrap_err().key,
            "AzureWebJobsStorage__blobServiceUri"
        );
        m.insert("AzureWebJobsStorage__accountName".into(), "stmfarecovery".into());
        let s = Settings::from_map(&m).unwrap();
        assert_eq!(
            s.audit,
            AuditSettings::Blob {
                service_uri: Url::parse("https://stmfarecovery.blob.core.windows.net").unwrap(),
                container: "audit".into()
            }
        );
        m.insert("AUDIT_CONTAINER".into(), "Audit_Trail".into());
        assert_eq!(Settings::from_map(&m).unwrap_err().key, "AUDIT_CONTAINER");
    }

    #[test]
    fn webhook_senders_are_checked() {
        let ok = r#"[{"name":"servicenow","scheme":"standard-webhooks","secrets":["webhook-servicenow"],"roles":["Recovery.Request"]}]"#;
        let s = Settings::from_map(&with(&[
            ("WEBHOOK_SENDERS", ok),
            ("KEY_VAULT_URI", "https://kv.vault.azure.net/"),
        ]))
        .unwrap();
        assert_eq!(s.webhook_senders[0].scheme, WebhookScheme::StandardWebhooks);
        assert_eq!(
            Settings::from_map(&with(&[("WEBHOOK_SENDERS", ok)])).unwrap_err().key,
            "KEY_VAULT_URI"
        );
        for bad in [
            "not json",
            r#"[{"name":"x","scheme":"carrier-pigeon","secrets":["s"],"roles":[]}]"#,
            r#"[{"name":"x","scheme":"jira","secrets":[],"roles":[]}]"#,
            r#"[{"name":"x","scheme":"jira","secrets":["s"],"roles":["Recovery.Everything"]}]"#,
            r#"[{"name":"Bad Name","scheme":"jira","secrets":["s"],"roles":[]}]"#,
        ] {
            let err = Settings::from_map(&with(&[
                ("WEBHOOK_SENDERS", bad),
                ("KEY_VAULT_URI", "https://kv.vault.azure.net/"),
            ]))
            .unwrap_err();
            assert_eq!(err.key, "WEBHOOK_SENDERS", "{bad}");
        }
    }

    #[test]
    fn loopback_endpoints_may_use_http() {
        let s = Settings::from_map(&with(&[("GRAPH_ENDPOINT", "http://127.0.0.1:7072")])).unwrap();
        assert_eq!(s.graph_endpoint.as_str(), "http://127.0.0.1:7072/");
    }
}
