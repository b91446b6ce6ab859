//! Where state is kept: the storage account, the audit trail, the rate-limit slots, the refusal tally.

#[allow(unused_imports)]
use super::*;

/// Identity-based storage (`AzureWebJobsStorage__*`), used for queues, audit and request records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub blob_service_uri: Url,
    pub queue_service_uri: Url,
    /// `AzureWebJobsStorage__clientId`: the user-assigned identity for storage, if not the default.
    pub client_id: Option<Uuid>,
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

pub(super) fn refusal_seconds<'a>(get: Get<'a, '_>) -> Result<u32, ConfigError> {
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

/// `AzureWebJobsStorage__blobServiceUri` / `__queueServiceUri`, or `__accountName` (public cloud).
pub(super) fn storage<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<StorageSettings>, ConfigError> {
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

/// A blob container name from `key` (else `default`): 3 to 63 lowercase letters, digits and
/// single hyphens, neither first nor last. The one check for every container setting.
pub(super) fn container_name<'a>(
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

pub(super) fn audit<'a>(
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

pub(super) fn limits<'a>(
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
