//! The tenant's signing keys, fetched from `{AUTH_AUTHORITY}/{tenant}/discovery/v2.0/keys`.
//!
//! Keys are cached for a day. A token naming a key id the cache does not hold triggers one
//! refetch (Entra rotates keys without notice), at most once a second whatever the tokens say, so
//! forged key ids cannot turn the service into a JWKS flood. No lock is held across a fetch: a
//! token with a known key is checked at once while another request waits for the issuer (only
//! requests that need the fetch wait for it, and share it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::sync::RwLock;

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
    /// Held only to read or replace the keys, never across an await.
    state: RwLock<Cached>,
    /// Single flight: requests that need a refetch share one.
    fetching: Mutex<()>,
}

impl JwksCache {
    pub fn new(http: reqwest::Client, url: String) -> JwksCache {
        JwksCache {
            http,
            url,
            state: RwLock::new(Cached {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            fetching: Mutex::new(()),
        }
    }

    /// The key with id `kid`, fetching the JWKS when it is stale or does not hold the id.
    ///
    /// # Errors
    /// The id is unknown after a refetch, or the JWKS cannot be fetched.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cached(kid, false) {
            return Ok(key);
        }
        // Only requests that need a refetch wait here, and share it.
        let _flight = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid, false) {
            return Ok(key);
        }
        let (stale, may_refetch, have_keys) = {
            let state = self.state.read().expect("jwks lock");
            let age = state.fetched_at.map(|t| t.elapsed());
            (
                age.is_none_or(|a| a > MAX_AGE),
                age.is_none_or(|a| a >= MIN_REFETCH_INTERVAL),
                !state.keys.is_empty(),
            )
        };
        if stale || may_refetch {
            match self.fetch().await {
                Ok(keys) => {
                    let mut state = self.state.write().expect("jwks lock");
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                // Keep serving cached keys if the issuer is briefly unreachable.
                Err(e) if have_keys => tracing::warn!(error = %e, "JWKS refresh failed; using cached keys"),
                Err(e) => return Err(e),
            }
        }
        self.cached(kid, true).ok_or(AuthError::UnknownKey)
    }

    /// The cached key `kid`: only while the cache is fresh, unless `any_age`.
    fn cached(&self, kid: &str, any_age: bool) -> Option<DecodingKey> {
        let state = self.state.read().expect("jwks lock");
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() <= MAX_AGE);
        (fresh || any_age).then(|| state.keys.get(kid).cloned()).flatten()
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
