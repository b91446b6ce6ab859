//! Connector secrets from Key Vault (`KEY_VAULT_URI`), read with the managed identity through
//! azure_security_keyvault_secrets and cached for five minutes. Values live in `SecretString`
//! and leave the process only where a provider needs them (a signature, an auth header).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::Transport;
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use secrecy::SecretString;
use tokio::sync::Mutex;

/// How long a secret is cached before it is read again (so a rotation is picked up).
const TTL: Duration = Duration::from_secs(5 * 60);
/// How long "no such secret" is remembered: a sender configured with a secret that does not exist
/// yet must not turn every unauthenticated request into a Key Vault read.
const MISSING_TTL: Duration = Duration::from_secs(60);

use crate::vocab::ports::SecretsUnavailable;

/// A version's id and value.
type Versioned = (String, SecretString);

pub struct SecretCache {
    client: Option<SecretClient>,
    /// The current version's id and value, or `None` for a secret the vault does not have, and
    /// when it was read.
    cache: Mutex<HashMap<String, (Option<Versioned>, Instant)>>,
    /// Named versions read (a version never changes: kept for the process's life).
    versions: Mutex<HashMap<(String, String), SecretString>>,
}

impl SecretCache {
    /// A cache over the vault at `uri`; with no vault every read fails with `SecretsUnavailable`.
    ///
    /// # Errors
    /// The client cannot be built from the URI.
    pub fn new(
        uri: Option<&url::Url>,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Transport>,
    ) -> anyhow::Result<SecretCache> {
        let client = match uri {
            None => None,
            Some(uri) => {
                let options = SecretClientOptions {
                    client_options: crate::azure::client_options(transport),
                    ..Default::default()
                };
                Some(
                    SecretClient::new(uri.as_str(), credential, Some(options))
                        .map_err(|e| anyhow::anyhow!("Key Vault client for {uri}: {e}"))?,
                )
            }
        };
        Ok(SecretCache {
            client,
            cache: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        })
    }

    /// The secret `name`, or `None` when the vault has no such secret.
    ///
    /// # Errors
    /// The vault cannot be read.
    pub async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsUnavailable> {
        Ok(self.get_version(name, None).await?.map(|(_, value)| value))
    }

    /// The current version of `name` (`version: None`, cached for five minutes) or the version
    /// named (cached for good), with its id; `None` when the vault has no such secret or version.
    ///
    /// # Errors
    /// The vault cannot be read.
    pub async fn get_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(String, SecretString)>, SecretsUnavailable> {
        if let Some(v) = version {
            if let Some(value) = self.versions.lock().await.get(&(name.to_owned(), v.to_owned())) {
                return Ok(Some((v.to_owned(), value.clone())));
            }
        } else if let Some((value, at)) = self.cache.lock().await.get(name) {
            let ttl = if value.is_some() { TTL } else { MISSING_TTL };
            if at.elapsed() < ttl {
                return Ok(value.clone());
            }
        }
        let found = self.read(name, version).await?;
        match (&found, version) {
            (Some((v, value)), Some(_)) => {
                self.versions
                    .lock()
                    .await
                    .insert((name.to_owned(), v.clone()), value.clone());
            }
            (_, None) => {
                self.cache
                    .lock()
                    .await
                    .insert(name.to_owned(), (found.clone(), Instant::now()));
            }
            (None, Some(_)) => {}
        }
        Ok(found)
    }

    /// When the oldest version of `name` the vault lists was created (Get Secret Versions).
    ///
    /// # Errors
    /// The vault cannot be read.
    pub async fn first_created(&self, name: &str) -> Result<Option<time::OffsetDateTime>, SecretsUnavailable> {
        use futures::TryStreamExt;
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SecretsUnavailable("no Key Vault is configured".into()))?;
        let failed = |e: azure_core::Error| {
            let status = e
                .http_status()
                .map(|s| u16::from(s).to_string())
                .unwrap_or_else(|| "unreachable".into());
            SecretsUnavailable(format!("{name} versions: {status}"))
        };
        let mut versions = client.list_secret_properties_versions(name, None).map_err(failed)?;
        let mut first: Option<time::OffsetDateTime> = None;
        loop {
            match versions.try_next().await {
                Ok(Some(v)) => {
                    if let Some(created) = v.attributes.and_then(|a| a.created) {
                        first = Some(first.map_or(created, |f| f.min(created)));
                    }
                }
                Ok(None) => return Ok(first),
                Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => return Ok(None),
                Err(e) => return Err(failed(e)),
            }
        }
    }

    /// One read from the vault: the version's id (the last segment of the secret's `id`) and value.
    async fn read(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(String, SecretString)>, SecretsUnavailable> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SecretsUnavailable("no Key Vault is configured".into()))?;
        let options = SecretClientGetSecretOptions {
            secret_version: version.map(str::to_owned),
            ..Default::default()
        };
        let secret = match client.get_secret(name, Some(options)).await {
            Ok(response) => response
                .into_model()
                .map_err(|_| SecretsUnavailable(format!("{name}: unreadable")))?,
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                tracing::warn!(
                    secret = name,
                    "a configured secret (or its version) does not exist in Key Vault"
                );
                return Ok(None);
            }
            Err(e) => {
                let status = e
                    .http_status()
                    .map(|s| u16::from(s).to_string())
                    .unwrap_or_else(|| "unreachable".into());
                return Err(SecretsUnavailable(format!("{name}: {status}")));
            }
        };
        let id = secret
            .id
            .as_deref()
            .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
            .filter(|v| !v.is_empty() && *v != name)
            .map(str::to_owned)
            .or_else(|| version.map(str::to_owned))
            .unwrap_or_else(|| "0".to_owned());
        Ok(secret.value.map(|value| (id, SecretString::from(value))))
    }

    /// Forget a cached value (a provider refused it: it may have been rotated).
    pub(crate) async fn invalidate(&self, name: &str) {
        self.cache.lock().await.remove(name);
    }
}

#[async_trait::async_trait]
impl crate::vocab::ports::SecretSource for SecretCache {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsUnavailable> {
        SecretCache::get(self, name).await
    }
    async fn get_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(String, SecretString)>, SecretsUnavailable> {
        SecretCache::get_version(self, name, version).await
    }
    async fn first_created(&self, name: &str) -> Result<Option<time::OffsetDateTime>, SecretsUnavailable> {
        SecretCache::first_created(self, name).await
    }
    async fn invalidate(&self, name: &str) {
        SecretCache::invalidate(self, name).await;
    }
}
