//! RS256 tokens: the simulator is the tenant's token issuer (for callers and for the managed
//! identity) and publishes its public keys as a JWKS, as Entra ID does.

use std::sync::RwLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

struct SigningKey {
    kid: String,
    pair: KeyPair,
}

/// The issuer's signing keys; the newest signs, all are published.
pub struct Keys {
    keys: RwLock<Vec<SigningKey>>,
    rng: SystemRandom,
}

impl Keys {
    /// Generate a fresh 2048-bit key. Nothing is read from or written to disk.
    pub fn generate() -> Keys {
        let keys = Keys {
            keys: RwLock::new(Vec::new()),
            rng: SystemRandom::new(),
        };
        keys.rotate();
        keys
    }

    /// Add a new signing key (the old ones stay in the JWKS). Returns the new key id.
    pub fn rotate(&self) -> String {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let kid = uuid::Uuid::new_v4().simple().to_string();
        self.keys.write().unwrap().push(SigningKey { kid: kid.clone(), pair });
        kid
    }

    /// The JWKS document (`/{tenant}/discovery/v2.0/keys`).
    pub fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap();
        let list: Vec<Value> = keys
            .iter()
            .map(|k| {
                let public = k.pair.public_key();
                json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid,
                    "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                })
            })
            .collect();
        json!({ "keys": list })
    }

    /// Sign `claims` as a compact JWS with the newest key.
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.keys.read().unwrap();
        let key = keys.last().expect("at least one key");
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut sig = vec![0u8; key.pair.public_modulus_len()];
        key.pair
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .expect("RSA signing");
        format!("{input}.{}", B64.encode(sig))
    }

    /// Check a token's RS256 signature against the published keys and return its claims.
    /// Time, audience and issuer are the caller's to check.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        let kid = header.get("kid")?.as_str()?;
        let sig = B64.decode(s).ok()?;
        let keys = self.keys.read().unwrap();
        let key = keys.iter().find(|k| k.kid == kid)?;
        let public = key.pair.public_key();
        let components = PublicKeyComponents {
            n: public.modulus().big_endian_without_leading_zero(),
            e: public.exponent().big_endian_without_leading_zero(),
        };
        components
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                format!("{h}.{p}").as_bytes(),
                &sig,
            )
            .ok()?;
        serde_json::from_slice(&B64.decode(p).ok()?).ok()
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether `claims` are inside their validity window (with no skew: the simulator is strict).
pub fn is_current(claims: &Value) -> bool {
    let t = now();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    nbf <= t && t < exp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_token_verifies_and_tampered_token_does_not() {
        let keys = Keys::generate();
        let token = keys.sign(&json!({"sub": "x", "exp": now() + 60}));
        assert_eq!(keys.verify(&token).unwrap()["sub"], "x");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(json!({"sub": "y"}).to_string());
        parts[1] = &forged;
        assert!(keys.verify(&parts.join(".")).is_none());
    }

    #[test]
    fn rotated_keys_keep_old_tokens_valid_and_publish_both() {
        let keys = Keys::generate();
        let old = keys.sign(&json!({"a": 1}));
        keys.rotate();
        assert!(keys.verify(&old).is_some());
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = Keys::generate();
        let header = B64.encode(r#"{"alg":"none","kid":"x"}"#);
        let body = B64.encode(r#"{"a":1}"#);
        assert!(keys.verify(&format!("{header}.{body}.")).is_none());
    }
}
