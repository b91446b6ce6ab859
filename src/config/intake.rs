//! Queued requests: the record store, the claim, the ServiceNow and Jira write-back and field maps, callbacks.

#[allow(unused_imports)]
use super::*;

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

pub(super) const SERVICENOW_FIELDS: [(&str, &str); 12] = [
    ("user", "u_affected_user"),
    ("action", "u_recovery_action"),
    ("channel", "u_delivery_channel"),
    ("scope", "u_reset_scope"),
    ("lifetimeMinutes", "u_tap_lifetime_minutes"),
    ("reason", "short_description"),
    ("verificationMethod", "u_verification_method"),
    ("verifiedBy", "u_verified_by"),
    ("verifiedAt", "u_verified_at"),
    ("verificationId", "u_verification_id"),
    // `sms` or `email`: the service sends the user a confirmation link and the request waits.
    ("verificationLink", "u_verification_link"),
    // The agent who asks (UPN, email or object id): they may not approve their own request.
    ("requestedBy", "assigned_to"),
];

pub(super) const JIRA_FIELDS: [(&str, &str); 12] = [
    ("user", "fields.customfield_10050"),
    ("action", "fields.customfield_10051"),
    ("channel", "fields.customfield_10052"),
    ("scope", "fields.customfield_10053"),
    ("lifetimeMinutes", "fields.customfield_10054"),
    ("reason", "fields.summary"),
    ("verificationMethod", "fields.customfield_10055"),
    ("verifiedBy", "fields.customfield_10056"),
    ("verifiedAt", "fields.customfield_10057"),
    ("verificationId", "fields.customfield_10058"),
    ("verificationLink", "fields.customfield_10059"),
    ("requestedBy", "fields.assignee"),
];

pub(super) fn field_map(key: &str, value: Option<&str>, defaults: &[(&str, &str)]) -> Result<FieldMap, ConfigError> {
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

pub(super) fn intake_settings<'a>(
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
