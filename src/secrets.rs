//! Connector secrets from Key Vault (`KEY_VAULT_URI`), read with the managed identity through
//! azure_security_keyvault_secrets and cached for five minutes. Values live in `SecretString`
//! and leave the process only where a provider needs them (a signature, an auth header).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::Transport;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use secrecy::SecretString;
use tokio::sync::Mutex;

/// How long a secret is cached before it is read again (so a rotation is picked up).
const TTL: Duration = Duration::from_secs(5 * 60);
/// How long "no such secret" is remembered: a sender configured with a secret that does not exist
/// yet must not turn every unauthenticated request into a Key Vault read.
const MISSING_TTL: Duration = Duration::from_secs(60);

use crate::vocab::ports::SecretsUnavailable;

pub struct SecretCache {
    client: Option<SecretClient>,
    /// A value, or `None` for a secret the vault does not have, and when it was read.
    cache: Mutex<HashMap<String, (Option<SecretString>, Instant)>>,
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
        })
    }

    /// The secret `name`, or `None` when the vault has no such secret.
    ///
    /// # Errors
    /// The vault cannot be read.
    pub async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsUnavailable> {
        if let Some((value, at)) = self.cache.lock().await.get(name) {
            let ttl = if value.is_some() { TTL } else { MISSING_TTL };
            if at.elapsed() < ttl {
                return Ok(value.clone());
            }
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SecretsUnavailable("no Key Vault is configured".into()))?;
        let secret = match client.get_secret(name, None).await {
            Ok(response) => response
                .into_model()
                .map_err(|_| SecretsUnavailable(format!("{name}: unreadable")))?,
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                tracing::warn!(secret = name, "a configured secret does not exist in Key Vault");
                self.cache.lock().await.insert(name.to_owned(), (None, Instant::now()));
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
        let Some(value) = secret.value else { return Ok(None) };
        let value = SecretString::from(value);
        self.cache
            .lock()
            .await
            .insert(name.to_owned(), (Some(value.clone()), Instant::now()));
        Ok(Some(value))
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
    async fn invalidate(&self, name: &str) {
        SecretCache::invalidate(self, name).await;
    }
}
