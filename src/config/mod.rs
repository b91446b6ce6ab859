//! Settings: one typed value built at start-up from the environment (app settings in Azure).
//!
//! Every setting, its meaning and its default is listed in `docs/configuration.md`; keep the two
//! in step. A bad or missing value stops start-up with an error that names the key. Secrets are
//! never settings: connector secrets live in Key Vault and are read with the managed identity.

use std::collections::HashMap;
use std::fmt;

use url::Url;
use uuid::Uuid;

pub mod registry;

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
    fn new(key: &str, problem: impl Into<String>) -> Self {
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

/// Who may call the API: the Entra tenant, the API's audience, and the login endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub tenant_id: Uuid,
    /// `AUTH_AUDIENCE`: the API's App ID URI (the first of its comma-separated list); the name the
    /// API's service principal is found by.
    pub audience: String,
    /// Every accepted `aud`: the `AUTH_AUDIENCE` list and `AUTH_CLIENT_ID` (Entra puts the client
    /// id in v2 tokens, the App ID URI in v1 tokens).
    pub audiences: Vec<String>,
    pub authority: Url,
    /// `AUTH_ALLOWED_CLIENT_APPS`: when set, only tokens obtained by these client applications
    /// (`azp` or `appid`) are accepted.
    pub allowed_client_apps: Vec<Uuid>,
    /// `AUTH_SCOPE`: the scope a delegated (user) token must carry in `scp` (default
    /// `user_impersonation`, the one the templates expose).
    pub scope: String,
}

/// Identity-based storage (`AzureWebJobsStorage__*`), used for queues, audit and request records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub blob_service_uri: Url,
    pub queue_service_uri: Url,
    /// `AzureWebJobsStorage__clientId`: the user-assigned identity for storage, if not the default.
    pub client_id: Option<Uuid>,
}

/// How a webhook sender signs its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum WebhookScheme {
    /// https://www.standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    /// Jira: `X-Hub-Signature: sha256=<hex>` over the body.
    #[serde(rename = "jira")]
    Jira,
}

/// A system that calls with a signed webhook instead of a token (`WEBHOOK_SENDERS`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSender {
    /// A short name, recorded as the caller (`servicenow`, `jira`).
    pub name: String,
    pub scheme: WebhookScheme,
    /// Names of Key Vault secrets holding its signing secrets; two during a rotation.
    pub secrets: Vec<String>,
    /// App roles the sender may use (`Recovery.Request`).
    pub roles: Vec<String>,
}

/// Temporary Access Pass rules and guardrails (`TAP_*`), and how passes are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSettings {
    /// `TAP_DEFAULT_LIFETIME_MINUTES`: used when a request names none (then bounded by the policy).
    pub default_lifetime_minutes: u32,
    /// `TAP_MAX_MINUTES_SMS`, `TAP_MAX_MINUTES_EMAIL`, `TAP_MAX_MINUTES_MANAGER`: per-channel limits.
    pub max_minutes_sms: u32,
    pub max_minutes_email: u32,
    pub max_minutes_manager: u32,
    /// `TAP_ALLOW_MULTI_USE`: whether a request may ask for a multi-use pass at all.
    pub allow_multi_use: bool,
    /// `TAP_PROTECTED_GROUPS`: members (transitive) of these groups are refused like role holders.
    pub protected_groups: Vec<Uuid>,
    /// `TAP_MAX_PER_TARGET_PER_DAY` and `TAP_MAX_PER_CALLER_PER_HOUR`.
    pub max_per_target_per_day: u32,
    pub max_per_caller_per_hour: u32,
    /// `TAP_REQUIRE_VERIFICATION` and `TAP_VERIFICATION_MAX_AGE_MINUTES`.
    pub require_verification: bool,
    pub verification_max_age_minutes: u32,
    /// `MAIL_SENDER`: the service mailbox Graph `sendMail` sends from (email delivery, notices).
    pub mail_sender: Option<String>,
    /// `SMS_NUMBER_SOURCE`: `methods` (the registered mobile phone method) or `attribute` (`mobilePhone`).
    pub sms_from_attribute: bool,
    /// `ACS_ENDPOINT`, `ACS_ACCESS_KEY_SECRET` (a Key Vault secret name), `ACS_SMS_FROM`, `ACS_EMAIL_FROM`.
    pub acs: Option<AcsSettings>,
    pub twilio: Option<TwilioSettings>,
    /// `SMS_PROVIDER` (`acs` or `twilio`) and `EMAIL_PROVIDER` (`graph` or `acs`).
    pub sms_provider: Option<SmsProvider>,
    pub email_provider: EmailProvider,
    /// `TAP_MESSAGE_TEMPLATE`: the text that carries the pass, with `{upn}`, `{pass}`, `{expires}`,
    /// `{usage}` and `{contact}` (never caller text such as the ticket); `None` for the built-in text.
    pub message_template: Option<String>,
    /// `NOTICE_CONTACT`: whom a user should contact when a change was not theirs.
    pub notice_contact: String,
    /// `TAP_RETURN_TO_CALLER`: put the pass in the HTTP response (off; a documented risk).
    pub return_to_caller: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsSettings {
    pub endpoint: Url,
    pub access_key_secret: String,
    /// `ACS_SMS_FROM`: the sending number (E.164), for SMS through ACS.
    pub sms_from: Option<String>,
    /// `ACS_EMAIL_FROM`: the sender address, for email through ACS Email.
    pub email_from: Option<String>,
}

/// Twilio Programmable Messaging (`TWILIO_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioSettings {
    pub endpoint: Url,
    pub account_sid: String,
    /// Key Vault secret name of the auth token.
    pub auth_token_secret: String,
    pub from: String,
}

/// Which connector carries each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    Acs,
    Twilio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProvider {
    Graph,
    Acs,
}

/// Where the audit trail lives: a blob container (production) or a directory (`dev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSettings {
    /// `AUDIT_CONTAINER` in the storage account of `AzureWebJobsStorage__blobServiceUri`.
    Blob { service_uri: Url, container: String },
    /// `AUDIT_DIR`: a local directory with the same layout.
    Directory(std::path::PathBuf),
}

/// Where the rate-limit slots are kept: small documents changed only by conditional writes, so
/// the limits hold across instances and cannot be raced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitsStore {
    /// `LIMITS_CONTAINER` (default `recovery-limits`) in the `AzureWebJobsStorage__*` account.
    Blob { service_uri: Url, container: String },
    /// `LIMITS_DIR`, or `limits/` inside `AUDIT_DIR` (outside the day folders the trail reads).
    Directory(std::path::PathBuf),
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
pub const DEFAULT_PORT: u16 = 7071;
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_SWEEP_SCHEDULE: &str = "0 0 2 * * *";

/// Environment variables that show the process runs under a Functions host.
use registry::HOST_MARKERS;

/// The process environment as a map (what `Settings::from_map` reads; `dev` overlays it).
pub fn environment() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// Whether the platform provides a managed identity here (`IDENTITY_ENDPOINT`, set by App
/// Service and Functions): the CLI uses it there and the developer's sign-in elsewhere.
pub fn platform_identity_available() -> bool {
    std::env::var_os("IDENTITY_ENDPOINT").is_some()
}

/// Who runs the command line (`USER` or `USERNAME`), for its audit records.
pub fn operator_name() -> Option<String> {
    std::env::var("USER").ok().or_else(|| std::env::var("USERNAME").ok())
}

/// Test hook (`dev` builds): the step after which the process aborts (`MFA_RECOVERY_CRASH_AT`).
pub fn crash_at() -> Option<String> {
    std::env::var("MFA_RECOVERY_CRASH_AT").ok()
}

impl Settings {
    /// Read the settings from the process environment.
    ///
    /// # Errors
    /// A required setting is missing or a value cannot be used; the error names the key.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_map(&environment())
    }

    /// Read the settings from `vars` (the environment, or a map built by a test or `dev`).
    ///
    /// # Errors
    /// A required setting is missing or a value cannot be used; the error names the key.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let get = |key: &str| {
            debug_assert!(
                registry::is_registered(key),
                "{key} is read but not in config::registry (docs/configuration.md)"
            );
            vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        let mut problems = Problems::default();
        let host = problems.keep(host_settings(&get));
        let auth = problems.keep(auth_settings(&get));
        let key_vault_uri = problems
            .keep(get("KEY_VAULT_URI").map(|v| endpoint("KEY_VAULT_URI", v)).transpose())
            .flatten();
        let storage = problems.keep(storage(&get)).flatten();
        let audit = problems.keep(audit(&get, storage.as_ref()));
        let limits = audit
            .as_ref()
            .and_then(|a| problems.keep(limits(&get, storage.as_ref(), a)));
        let refusal_flush_seconds = problems.keep(refusal_seconds(&get));
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

/// Who may call: the tenant, the audiences, the allowed client apps, the scope, the authority.
fn auth_settings<'a>(get: Get<'a, '_>) -> Result<AuthSettings, ConfigError> {
    let tenant_id = guid(
        "AUTH_TENANT_ID",
        get("AUTH_TENANT_ID").ok_or_else(|| {
            ConfigError::new(
                "AUTH_TENANT_ID",
                "is required: the Entra tenant id (a GUID) whose callers may use the API",
            )
        })?,
    )?;
    let required = || {
        ConfigError::new(
            "AUTH_AUDIENCE",
            "is required: the App ID URI or client id of this API's app registration",
        )
    };
    let mut audiences: Vec<String> = get("AUTH_AUDIENCE")
        .ok_or_else(required)?
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let audience = audiences.first().cloned().ok_or_else(required)?;
    if let Some(client_id) = get("AUTH_CLIENT_ID") {
        audiences.push(guid("AUTH_CLIENT_ID", client_id)?.to_string());
    }
    let allowed_client_apps = guid_list("AUTH_ALLOWED_CLIENT_APPS", get("AUTH_ALLOWED_CLIENT_APPS"))?;
    let scope = get("AUTH_SCOPE").unwrap_or("user_impersonation").to_owned();
    if scope.contains(char::is_whitespace) {
        return Err(ConfigError::new("AUTH_SCOPE", "is one scope name, without spaces"));
    }
    let authority = endpoint("AUTH_AUTHORITY", get("AUTH_AUTHORITY").unwrap_or(DEFAULT_AUTHORITY))?;
    Ok(AuthSettings {
        tenant_id,
        audience,
        audiences,
        authority,
        allowed_client_apps,
        scope,
    })
}

fn refusal_seconds<'a>(get: Get<'a, '_>) -> Result<u32, ConfigError> {
    match get("AUDIT_REFUSAL_SECONDS") {
        None => Ok(60),
        Some(v) => v.parse::<u32>().ok().filter(|n| (1..=3600).contains(n)).ok_or_else(|| {
            ConfigError::new(
                "AUDIT_REFUSAL_SECONDS",
                format!("'{v}' is not a whole number from 1 to 3600"),
            )
        }),
    }
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

fn guid(key: &str, value: &str) -> Result<Uuid, ConfigError> {
    Uuid::parse_str(value).map_err(|_| ConfigError::new(key, format!("'{value}' is not a GUID")))
}

/// `AzureWebJobsStorage__blobServiceUri` / `__queueServiceUri`, or `__accountName` (public cloud).
fn storage<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<StorageSettings>, ConfigError> {
    const PREFIX: &str = "AzureWebJobsStorage__";
    let key = |suffix: &str| format!("{PREFIX}{suffix}");
    let account = get(&key("accountName"));
    let uri = |suffix: &str, service: &str| -> Result<Option<Url>, ConfigError> {
        match (get(&key(suffix)), account) {
            (Some(v), _) => endpoint(&key(suffix), v).map(Some),
            (None, Some(name)) => {
                if !(3..=24).contains(&name.len())
                    || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(ConfigError::new(
                        &key("accountName"),
                        format!("'{name}' is not a storage account name"),
                    ));
                }
                endpoint(
                    &key("accountName"),
                    &format!("https://{name}.{service}.core.windows.net"),
                )
                .map(Some)
            }
            (None, None) => Ok(None),
        }
    };
    let blob = uri("blobServiceUri", "blob")?;
    let queue = uri("queueServiceUri", "queue")?;
    let client_id = get(&key("clientId")).map(|v| guid(&key("clientId"), v)).transpose()?;
    match (blob, queue) {
        (None, None) => Ok(None),
        (Some(blob_service_uri), Some(queue_service_uri)) => Ok(Some(StorageSettings {
            blob_service_uri,
            queue_service_uri,
            client_id,
        })),
        (None, Some(_)) => Err(ConfigError::new(
            &key("blobServiceUri"),
            "is required when a queue service URI is set",
        )),
        (Some(_), None) => Err(ConfigError::new(
            &key("queueServiceUri"),
            "is required when a blob service URI is set",
        )),
    }
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

fn e164_setting(key: &str, value: &str) -> Result<String, ConfigError> {
    let ok =
        value.starts_with('+') && (8..=16).contains(&value.len()) && value[1..].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::new(
            key,
            format!("'{value}' is not a number in E.164 (+18005550199)"),
        ))
    }
}

fn tap_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<TapSettings, ConfigError> {
    let lifetimes = 10..=43200;
    let protected_groups = match get("TAP_PROTECTED_GROUPS") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|g| guid("TAP_PROTECTED_GROUPS", g))
            .collect::<Result<_, _>>()?,
    };
    let (acs, twilio, sms_provider, email_provider) = connectors(get)?;
    let sms_from_attribute = match get("SMS_NUMBER_SOURCE") {
        None | Some("methods") => false,
        Some("attribute") => true,
        Some(v) => {
            return Err(ConfigError::new(
                "SMS_NUMBER_SOURCE",
                format!("'{v}' is not 'methods' or 'attribute'"),
            ));
        }
    };
    let mail_sender = get("MAIL_SENDER").map(str::to_owned);
    if mail_sender.as_deref().is_some_and(|m| !m.contains('@')) {
        return Err(ConfigError::new(
            "MAIL_SENDER",
            "must be the UPN or address of the service mailbox",
        ));
    }
    Ok(TapSettings {
        default_lifetime_minutes: number(get, "TAP_DEFAULT_LIFETIME_MINUTES", 60, lifetimes.clone())?,
        max_minutes_sms: number(get, "TAP_MAX_MINUTES_SMS", 60, lifetimes.clone())?,
        max_minutes_email: number(get, "TAP_MAX_MINUTES_EMAIL", 480, lifetimes.clone())?,
        max_minutes_manager: number(get, "TAP_MAX_MINUTES_MANAGER", 480, lifetimes)?,
        allow_multi_use: flag(get, "TAP_ALLOW_MULTI_USE", false)?,
        protected_groups,
        max_per_target_per_day: number(get, "TAP_MAX_PER_TARGET_PER_DAY", 2, 1..=100)?,
        max_per_caller_per_hour: number(get, "TAP_MAX_PER_CALLER_PER_HOUR", 20, 1..=10000)?,
        require_verification: flag(get, "TAP_REQUIRE_VERIFICATION", true)?,
        verification_max_age_minutes: number(get, "TAP_VERIFICATION_MAX_AGE_MINUTES", 30, 1..=1440)?,
        mail_sender,
        sms_from_attribute,
        acs,
        twilio,
        sms_provider,
        email_provider,
        message_template: message_template(get("TAP_MESSAGE_TEMPLATE"))?,
        notice_contact: get("NOTICE_CONTACT").unwrap_or("your IT service desk").to_owned(),
        return_to_caller: flag(get, "TAP_RETURN_TO_CALLER", false)?,
    })
}

/// The delivery connectors (ACS, Twilio) and which one each channel uses.
#[allow(clippy::type_complexity)]
fn connectors<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<
    (
        Option<AcsSettings>,
        Option<TwilioSettings>,
        Option<SmsProvider>,
        EmailProvider,
    ),
    ConfigError,
> {
    let acs = match get("ACS_ENDPOINT") {
        None => None,
        Some(endpoint) => Some(AcsSettings {
            endpoint: self::endpoint("ACS_ENDPOINT", endpoint)?,
            access_key_secret: get("ACS_ACCESS_KEY_SECRET")
                .ok_or_else(|| {
                    ConfigError::new(
                        "ACS_ACCESS_KEY_SECRET",
                        "is required with ACS_ENDPOINT: the Key Vault secret name of the access key",
                    )
                })?
                .to_owned(),
            sms_from: get("ACS_SMS_FROM")
                .map(|n| e164_setting("ACS_SMS_FROM", n))
                .transpose()?,
            email_from: get("ACS_EMAIL_FROM").map(str::to_owned),
        }),
    };
    let twilio = match get("TWILIO_ACCOUNT_SID") {
        None => None,
        Some(sid) => Some(TwilioSettings {
            endpoint: self::endpoint(
                "TWILIO_ENDPOINT",
                get("TWILIO_ENDPOINT").unwrap_or("https://api.twilio.com"),
            )?,
            account_sid: sid.to_owned(),
            auth_token_secret: get("TWILIO_AUTH_TOKEN_SECRET")
                .ok_or_else(|| {
                    ConfigError::new(
                        "TWILIO_AUTH_TOKEN_SECRET",
                        "is required with TWILIO_ACCOUNT_SID: the Key Vault secret name of the auth token",
                    )
                })?
                .to_owned(),
            from: e164_setting("TWILIO_FROM", get("TWILIO_FROM").unwrap_or_default())?,
        }),
    };
    let sms_provider = match get("SMS_PROVIDER") {
        Some("acs") if acs.as_ref().is_some_and(|a| a.sms_from.is_some()) => Some(SmsProvider::Acs),
        Some("twilio") if twilio.is_some() => Some(SmsProvider::Twilio),
        Some(v @ ("acs" | "twilio")) => {
            return Err(ConfigError::new(
                "SMS_PROVIDER",
                format!("'{v}' is chosen but not configured (ACS_ENDPOINT and ACS_SMS_FROM, or TWILIO_*)"),
            ));
        }
        Some(v) => {
            return Err(ConfigError::new(
                "SMS_PROVIDER",
                format!("'{v}' is not 'acs' or 'twilio'"),
            ));
        }
        None if acs.as_ref().is_some_and(|a| a.sms_from.is_some()) => Some(SmsProvider::Acs),
        None if twilio.is_some() => Some(SmsProvider::Twilio),
        None => None,
    };
    let email_provider = match get("EMAIL_PROVIDER") {
        None | Some("graph") => EmailProvider::Graph,
        Some("acs") if acs.as_ref().is_some_and(|a| a.email_from.is_some()) => EmailProvider::Acs,
        Some("acs") => {
            return Err(ConfigError::new(
                "EMAIL_PROVIDER",
                "'acs' needs ACS_ENDPOINT and ACS_EMAIL_FROM",
            ));
        }
        Some(v) => {
            return Err(ConfigError::new(
                "EMAIL_PROVIDER",
                format!("'{v}' is not 'graph' or 'acs'"),
            ));
        }
    };
    Ok((acs, twilio, sms_provider, email_provider))
}

/// The text that carries the pass: it must hold `{pass}` and must not hold `{ticket}`.
fn message_template(template: Option<&str>) -> Result<Option<String>, ConfigError> {
    match template {
        Some(t) if !t.contains("{pass}") => Err(ConfigError::new(
            "TAP_MESSAGE_TEMPLATE",
            "must contain {pass} (and may use {upn}, {expires}, {usage}, {contact})",
        )),
        Some(t) if t.contains("{ticket}") => Err(ConfigError::new(
            "TAP_MESSAGE_TEMPLATE",
            "must not use {ticket}: ticket text comes from the caller and never travels with a pass (the notices name the ticket)",
        )),
        other => Ok(other.map(|t| t.replace("\\n", "\n"))),
    }
}

fn webhook_senders(value: Option<&str>) -> Result<Vec<WebhookSender>, ConfigError> {
    const KEY: &str = "WEBHOOK_SENDERS";
    let Some(value) = value else { return Ok(Vec::new()) };
    let senders: Vec<WebhookSender> = serde_json::from_str(value).map_err(|e| {
        ConfigError::new(
            KEY,
            format!("is not a JSON list of {{name, scheme, secrets, roles}} ({e})"),
        )
    })?;
    let mut names = std::collections::HashSet::new();
    for s in &senders {
        let name_ok = !s.name.is_empty()
            && s.name.len() <= 32
            && s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok || !names.insert(s.name.clone()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender name '{}' must be unique, 1-32 of a-z, 0-9 and -", s.name),
            ));
        }
        if !(1..=3).contains(&s.secrets.len()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender '{}' needs 1 to 3 Key Vault secret names", s.name),
            ));
        }
        if let Some(role) = s.roles.iter().find(|r| crate::vocab::Role::parse(r).is_none()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender '{}' has unknown role '{role}'", s.name),
            ));
        }
    }
    Ok(senders)
}

/// A blob container name from `key` (else `default`): 3 to 63 lowercase letters, digits and
/// single hyphens, neither first nor last. The one check for every container setting.
fn container_name<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    key: &str,
    default: &'a str,
) -> Result<&'a str, ConfigError> {
    let container = get(key).unwrap_or(default);
    let valid = (3..=63).contains(&container.len())
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if valid {
        Ok(container)
    } else {
        Err(ConfigError::new(
            key,
            format!("'{container}' is not a blob container name"),
        ))
    }
}

fn audit<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    storage: Option<&StorageSettings>,
) -> Result<AuditSettings, ConfigError> {
    if let Some(dir) = get("AUDIT_DIR") {
        return Ok(AuditSettings::Directory(dir.into()));
    }
    let container = container_name(get, "AUDIT_CONTAINER", "audit")?;
    match storage {
        Some(s) => Ok(AuditSettings::Blob {
            service_uri: s.blob_service_uri.clone(),
            container: container.to_owned(),
        }),
        None => Err(ConfigError::new(
            "AzureWebJobsStorage__blobServiceUri",
            "is required for the audit trail (or AzureWebJobsStorage__accountName; AUDIT_DIR for a local directory)",
        )),
    }
}

fn limits<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    storage: Option<&StorageSettings>,
    audit: &AuditSettings,
) -> Result<LimitsStore, ConfigError> {
    if let Some(dir) = get("LIMITS_DIR") {
        return Ok(LimitsStore::Directory(dir.into()));
    }
    let container = container_name(get, "LIMITS_CONTAINER", "recovery-limits")?;
    Ok(match (audit, storage) {
        (AuditSettings::Directory(dir), _) => LimitsStore::Directory(dir.join("limits")),
        (AuditSettings::Blob { .. }, Some(s)) => LimitsStore::Blob {
            service_uri: s.blob_service_uri.clone(),
            container: container.to_owned(),
        },
        (AuditSettings::Blob { service_uri, .. }, None) => LimitsStore::Blob {
            service_uri: service_uri.clone(),
            container: container.to_owned(),
        },
    })
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

/// Where queued requests live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeStore {
    /// Records in `REQUESTS_CONTAINER` (blob) and messages on the `recovery-requests` queue of the
    /// `AzureWebJobsStorage__*` account.
    Storage {
        blob_service_uri: Url,
        queue_service_uri: Url,
        container: String,
    },
    /// `REQUESTS_DIR`: records in a directory, and an in-process queue that plays the host's part
    /// (`mfa-recovery dev`).
    Directory(std::path::PathBuf),
}

/// ServiceNow write-back: Table API with basic authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowSettings {
    /// `SERVICENOW_INSTANCE_URL`, such as `https://contoso.service-now.com`.
    pub instance_url: Url,
    /// `SERVICENOW_TABLE` (default `incident`).
    pub table: String,
    /// `SERVICENOW_USER`: the integration user.
    pub user: String,
    /// `SERVICENOW_PASSWORD_SECRET`: the Key Vault secret holding its password.
    pub password_secret: String,
    /// `SERVICENOW_CALLERS`: object ids of token callers (the ServiceNow integration's identity)
    /// whose requests are written back to the record they name. Requests signed by the webhook
    /// sender named `servicenow` are written back too; anyone else's only go to their callback.
    pub callers: Vec<Uuid>,
}

/// Jira Service Management write-back: REST API with an Atlassian API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraSettings {
    /// `JIRA_BASE_URL`, such as `https://contoso.atlassian.net`.
    pub base_url: Url,
    /// `JIRA_USER`: the account (email) the API token belongs to.
    pub user: String,
    /// `JIRA_API_TOKEN_SECRET`: the Key Vault secret holding the API token.
    pub token_secret: String,
    /// `JIRA_CALLERS`: as `SERVICENOW_CALLERS`, for the webhook sender named `jira`.
    pub callers: Vec<Uuid>,
}

/// Which field of a ticket payload carries each part of a request: a dotted path (`caller_id.email`),
/// or `=value` for a constant.
pub type FieldMap = std::collections::BTreeMap<String, String>;

/// The asynchronous intake and where results are written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeSettings {
    /// `None`: neither `REQUESTS_DIR` nor storage is set, so the intake answers 503.
    pub store: Option<IntakeStore>,
    pub servicenow: Option<ServiceNowSettings>,
    /// `SERVICENOW_FIELDS` (JSON object), merged over the defaults.
    pub servicenow_fields: FieldMap,
    pub jira: Option<JiraSettings>,
    /// `JIRA_FIELDS` (JSON object; paths from the `issue` object), merged over the defaults.
    pub jira_fields: FieldMap,
    /// `CALLBACK_SIGNING_SECRET`: Key Vault secret that signs callbacks (Standard Webhooks).
    pub callback_secret: Option<String>,
    /// `CALLBACK_ALLOWED_HOSTS`: hosts a request's `callbackUrl` may point at (comma-separated).
    pub callback_hosts: Vec<String>,
    /// `REQUEST_CLAIM_SECONDS` (default 600): how long a worker's claim on a request holds before
    /// another delivery of it may take over.
    pub claim_seconds: u32,
}

const SERVICENOW_FIELDS: [(&str, &str); 9] = [
    ("user", "u_affected_user"),
    ("action", "u_recovery_action"),
    ("channel", "u_delivery_channel"),
    ("scope", "u_reset_scope"),
    ("lifetimeMinutes", "u_tap_lifetime_minutes"),
    ("reason", "short_description"),
    ("verificationMethod", "u_verification_method"),
    ("verifiedBy", "u_verified_by"),
    ("verifiedAt", "u_verified_at"),
];

const JIRA_FIELDS: [(&str, &str); 9] = [
    ("user", "fields.customfield_10050"),
    ("action", "fields.customfield_10051"),
    ("channel", "fields.customfield_10052"),
    ("scope", "fields.customfield_10053"),
    ("lifetimeMinutes", "fields.customfield_10054"),
    ("reason", "fields.summary"),
    ("verificationMethod", "fields.customfield_10055"),
    ("verifiedBy", "fields.customfield_10056"),
    ("verifiedAt", "fields.customfield_10057"),
];

fn field_map(key: &str, value: Option<&str>, defaults: &[(&str, &str)]) -> Result<FieldMap, ConfigError> {
    let mut map: FieldMap = defaults
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(value) = value {
        let given: std::collections::BTreeMap<String, String> = serde_json::from_str(value)
            .map_err(|e| ConfigError::new(key, format!("is not a JSON object of field names to paths ({e})")))?;
        for (name, path) in given {
            if !map.contains_key(&name) {
                let known: Vec<&str> = defaults.iter().map(|(k, _)| *k).collect();
                return Err(ConfigError::new(
                    key,
                    format!("'{name}' is not a request field; use {}", known.join(", ")),
                ));
            }
            map.insert(name, path);
        }
    }
    Ok(map)
}

fn intake_settings<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    storage: Option<&StorageSettings>,
) -> Result<IntakeSettings, ConfigError> {
    let container = container_name(get, "REQUESTS_CONTAINER", "recovery-requests")?;
    let store = match (get("REQUESTS_DIR"), storage) {
        (Some(dir), _) => Some(IntakeStore::Directory(dir.into())),
        (None, Some(s)) => Some(IntakeStore::Storage {
            blob_service_uri: s.blob_service_uri.clone(),
            queue_service_uri: s.queue_service_uri.clone(),
            container: container.to_owned(),
        }),
        (None, None) => None,
    };
    let required = |key: &str, why: &str| {
        get(key)
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::new(key, format!("is required when {why} is set")))
    };
    let servicenow = match get("SERVICENOW_INSTANCE_URL") {
        None => None,
        Some(url) => Some(ServiceNowSettings {
            instance_url: endpoint("SERVICENOW_INSTANCE_URL", url)?,
            table: get("SERVICENOW_TABLE").unwrap_or("incident").to_owned(),
            user: required("SERVICENOW_USER", "SERVICENOW_INSTANCE_URL")?,
            password_secret: required("SERVICENOW_PASSWORD_SECRET", "SERVICENOW_INSTANCE_URL")?,
            callers: guid_list("SERVICENOW_CALLERS", get("SERVICENOW_CALLERS"))?,
        }),
    };
    let jira = match get("JIRA_BASE_URL") {
        None => None,
        Some(url) => Some(JiraSettings {
            base_url: endpoint("JIRA_BASE_URL", url)?,
            user: required("JIRA_USER", "JIRA_BASE_URL")?,
            token_secret: required("JIRA_API_TOKEN_SECRET", "JIRA_BASE_URL")?,
            callers: guid_list("JIRA_CALLERS", get("JIRA_CALLERS"))?,
        }),
    };
    let claim_seconds = match get("REQUEST_CLAIM_SECONDS") {
        None => 600,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=86_400).contains(n))
            .ok_or_else(|| {
                ConfigError::new(
                    "REQUEST_CLAIM_SECONDS",
                    format!("'{v}' is not a number of seconds from 1 to 86400"),
                )
            })?,
    };
    Ok(IntakeSettings {
        store,
        servicenow,
        servicenow_fields: field_map("SERVICENOW_FIELDS", get("SERVICENOW_FIELDS"), &SERVICENOW_FIELDS)?,
        jira,
        jira_fields: field_map("JIRA_FIELDS", get("JIRA_FIELDS"), &JIRA_FIELDS)?,
        callback_secret: get("CALLBACK_SIGNING_SECRET").map(str::to_owned),
        callback_hosts: get("CALLBACK_ALLOWED_HOSTS")
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        claim_seconds,
    })
}

/// Where sweep reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepStore {
    /// `SWEEP_CONTAINER` in the storage account.
    Blob { service_uri: Url, container: String },
    /// `SWEEP_DIR`: a local directory with the same layout.
    Directory(std::path::PathBuf),
}

/// The compliance sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSettings {
    /// `None`: neither storage nor `SWEEP_DIR`; the sweep can only run from the CLI with `--out`.
    pub store: Option<SweepStore>,
    /// `SWEEP_HELPDESK_GROUPS`: groups the helpdesk serves; each must be in the TAP policy's scope.
    pub helpdesk_groups: Vec<Uuid>,
    /// `SWEEP_KEY_USER_GROUPS`: groups whose members need a backup phone or a FIDO2 key.
    pub key_user_groups: Vec<Uuid>,
    /// `SWEEP_REQUESTS_PER_10S`: the pace of report reads (Graph allows 5 per 10 s per app).
    pub requests_per_10s: u32,
    /// `SWEEP_TIME_BUDGET_SECONDS`: stop and save before the Functions timeout; the next run resumes.
    pub time_budget_seconds: u32,
    /// `SWEEP_MIN_INTERVAL_HOURS`: a timer run within this many hours of the last finished one is skipped.
    pub min_interval_hours: u32,
    /// `SWEEP_NUDGE`: email at-risk users how to add a backup method.
    pub nudge: bool,
    /// `SWEEP_NUDGE_MAX_PER_RUN` and `SWEEP_NUDGE_PERIOD_DAYS`.
    pub nudge_max_per_run: u32,
    pub nudge_period_days: u32,
    /// `SWEEP_HTML_MAX_ROWS`: at-risk users listed in the HTML report (all are in the CSV).
    pub html_max_rows: u32,
}

fn group_list<'a>(get: &impl Fn(&str) -> Option<&'a str>, key: &str) -> Result<Vec<Uuid>, ConfigError> {
    match get(key) {
        None => Ok(Vec::new()),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|g| guid(key, g))
            .collect(),
    }
}

fn sweep_settings<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    storage: Option<&StorageSettings>,
) -> Result<SweepSettings, ConfigError> {
    let store = match (get("SWEEP_DIR"), storage) {
        (Some(dir), _) => Some(SweepStore::Directory(dir.into())),
        (None, Some(s)) => Some(SweepStore::Blob {
            service_uri: s.blob_service_uri.clone(),
            container: container_name(get, "SWEEP_CONTAINER", "sweeps")?.to_owned(),
        }),
        (None, None) => None,
    };
    let nudge = flag(get, "SWEEP_NUDGE", false)?;
    Ok(SweepSettings {
        store,
        helpdesk_groups: group_list(get, "SWEEP_HELPDESK_GROUPS")?,
        key_user_groups: group_list(get, "SWEEP_KEY_USER_GROUPS")?,
        requests_per_10s: number(get, "SWEEP_REQUESTS_PER_10S", 5, 1..=10_000)?,
        time_budget_seconds: number(get, "SWEEP_TIME_BUDGET_SECONDS", 540, 10..=86_400)?,
        min_interval_hours: number(get, "SWEEP_MIN_INTERVAL_HOURS", 20, 0..=720)?,
        nudge,
        nudge_max_per_run: number(get, "SWEEP_NUDGE_MAX_PER_RUN", 100, 0..=100_000)?,
        nudge_period_days: number(get, "SWEEP_NUDGE_PERIOD_DAYS", 30, 1..=365)?,
        html_max_rows: number(get, "SWEEP_HTML_MAX_ROWS", 2000, 0..=100_000)?,
    })
}

/// The host accepts 6-field NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`).
fn validate_schedule(value: &str) -> Result<(), ConfigError> {
    let fields = value.split_whitespace().count();
    if fields != 6 {
        return Err(ConfigError::new(
            "SWEEP_SCHEDULE",
            format!("'{value}' has {fields} fields; use 6-field NCRONTAB such as '0 0 2 * * *' (02:00 UTC daily)"),
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(value)
        .map(|_| ())
        .map_err(|e| {
            ConfigError::new(
                "SWEEP_SCHEDULE",
                format!("'{value}' is not a valid NCRONTAB expression ({e})"),
            )
        })
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
