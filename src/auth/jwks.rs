//! The tenant's signing keys, fetched from `{AUTH_AUTHORITY}/{tenant}/discovery/v2.0/keys`.
//!
//! Keys are cached for a day. A token naming a key id the cache does not hold triggers one
//! refetch (Entra rotates keys without notice), at most once a second whatever the tokens say, so
//! forged key ids cannot turn the service into a JWKS flood.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::AuthError;

const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

pub struct JwksCache {
    http: reqwest::Client,
    url: String,
    state: Mutex<Cached>,
}

impl JwksCache {
    pub fn new(http: reqwest::Client, url: String) -> JwksCache {
        JwksCache {
            http,
            url,
            state: Mutex::new(Cached {
                keys: HashMap::new(),
                fetched_at: None,
            }),
        }
    }

    /// The key with id `kid`, fetching the JWKS when it is stale or does not hold the id.
    ///
    /// # Errors
    /// The id is unknown after a refetch, or the JWKS cannot be fetched.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        // One lock for lookup and refetch: concurrent requests share one fetch.
        let mut state = self.state.lock().await;
        let age = state.fetched_at.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a > MAX_AGE);
        let may_refetch = age.is_none_or(|a| a >= MIN_REFETCH_INTERVAL);
        if !stale && let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        if stale || may_refetch {
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                // Keep serving cached keys if the issuer is briefly unreachable.
                Err(e) if !state.keys.is_empty() => {
                    tracing::warn!(error = %e, "JWKS refresh failed; using cached keys")
                }
                Err(e) => return Err(e),
            }
        }
        state.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, AuthError> {
        let unavailable = |e: &dyn std::fmt::Display| AuthError::KeysUnavailable(e.to_string());
        let response = self
            .http
            .get(&self.url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("status {}", response.status())));
        }
        let jwks: Jwks = response.json().await.map_err(|e| unavailable(&e))?;
        let mut keys = HashMap::new();
        for k in jwks.keys {
            if let (Some(kid), "RSA", Some(n), Some(e)) = (k.kid, k.kty.as_str(), k.n, k.e)
                && let Ok(key) = DecodingKey::from_rsa_components(&n, &e)
            {
                keys.insert(kid, key);
            }
        }
        tracing::info!(keys = keys.len(), "fetched the tenant's signing keys");
        Ok(keys)
    }
}
