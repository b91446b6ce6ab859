//! What storage alone cannot forge: MACs keyed with a Key Vault secret (`AUDIT_KEY_SECRET`) that
//! the function app's identity can read and the storage account's administrators need not.
//!
//! - **Anchors.** Each anchor line carries `kid` (the secret's version) and `mac`, an
//!   HMAC-SHA256 over the record's chain, place and hash and over the previous anchor's MAC in
//!   the same chain. Rewriting a record, adding one, or removing records together with their
//!   anchor lines breaks the MACs from there on; only a removed tail keeps a consistent prefix,
//!   and the chain's head (its last MAC) is also in Log Analytics (`audit::export`), where a
//!   shorter chain in storage shows.
//! - **Decisions.** A decision the worker acts on (an approval, a verification's `verified`, a
//!   "this is not me" block) carries a `Seal`: a MAC over what was decided, by whom, about whom,
//!   when, and the place of its own audit record, which the worker reads back (one record).
//!
//! Rotation: a new version of the secret signs from the next read (the cache keeps five
//! minutes); every earlier version stays readable by its id, so old MACs still verify.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuditError;
use crate::vocab::ports::SecretSource;

/// The trail's key: a Key Vault secret, by name; its versions are the key ids.
#[derive(Clone)]
pub struct AuditKey {
    secrets: Arc<dyn SecretSource>,
    name: String,
}

fn key_error(name: &str, why: impl std::fmt::Display) -> AuditError {
    AuditError::Key(format!(
        "the audit key (Key Vault secret {name}) cannot be read ({why}): records cannot be signed, so none is written"
    ))
}

impl AuditKey {
    pub fn new(secrets: Arc<dyn SecretSource>, name: impl Into<String>) -> AuditKey {
        AuditKey {
            secrets,
            name: name.into(),
        }
    }

    /// The secret's name (`AUDIT_KEY_SECRET`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current version: its id and value.
    pub(crate) async fn current(&self) -> Result<(String, SecretString), AuditError> {
        self.secrets
            .get_version(&self.name, None)
            .await
            .map_err(|e| key_error(&self.name, e))?
            .ok_or_else(|| key_error(&self.name, "it does not exist; `azd provision` creates it"))
    }

    /// When the key's oldest version was created: the trail is signed from then on.
    pub(crate) async fn created(&self) -> Result<Option<OffsetDateTime>, AuditError> {
        self.secrets
            .first_created(&self.name)
            .await
            .map_err(|e| key_error(&self.name, e))
    }

    /// Version `kid`, or `None` when the vault has no such version.
    pub(crate) async fn version(&self, kid: &str) -> Result<Option<SecretString>, AuditError> {
        Ok(self
            .secrets
            .get_version(&self.name, Some(kid))
            .await
            .map_err(|e| key_error(&self.name, e))?
            .map(|(_, v)| v))
    }

    /// Whether `mac` is the MAC of `parts` under version `kid` (constant time); a version the
    /// vault does not have verifies nothing.
    pub(crate) async fn verifies(&self, kid: &str, parts: &[&str], mac: &str) -> Result<bool, AuditError> {
        let Some(key) = self.version(kid).await? else {
            return Ok(false);
        };
        let Ok(expected) = B64.decode(mac) else {
            return Ok(false);
        };
        Ok(hmac_of(&key, parts).verify_slice(&expected).is_ok())
    }
}

/// HMAC-SHA256 of `parts`, each length-prefixed (no two lists of parts give the same bytes).
fn hmac_of(key: &SecretString, parts: &[&str]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).expect("HMAC takes any key length");
    for p in parts {
        mac.update(format!("{}:", p.len()).as_bytes());
        mac.update(p.as_bytes());
        mac.update(b"\n");
    }
    mac
}

/// The MAC of `parts` under `key`, base64.
pub(crate) fn mac(key: &SecretString, parts: &[&str]) -> String {
    B64.encode(hmac_of(key, parts).finalize().into_bytes())
}

/// What an anchor's MAC covers: its record's chain, place and hash, and the MAC of the anchor
/// before it in that chain (empty for the first).
pub(crate) fn anchor_parts<'a>(chain: &'a str, seq: &'a str, hash: &'a str, prev_mac: &'a str) -> [&'a str; 5] {
    ["mfa-recovery anchor v1", chain, seq, hash, prev_mac]
}

/// Where a decision's own audit record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRef {
    pub chain: String,
    pub seq: u64,
}

/// A decision's seal: the key's id, the MAC, and its audit record's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seal {
    pub kid: String,
    pub mac: String,
    pub audit: AuditRef,
}

/// What a decision says: about which request or verification (`subject`), whose account
/// (`target`), what (`action`: `approve`, `deny`, `verified`, `not_me`, `lift`), who decided
/// (`decider`, a caller key), when, and anything else it fixes (`extra`, e.g. a block's end).
#[derive(Debug, Clone)]
pub struct Decided {
    pub subject: Uuid,
    pub target: Uuid,
    pub action: &'static str,
    pub decider: String,
    pub at: OffsetDateTime,
    pub extra: String,
}

impl Decided {
    fn parts<'a>(&'a self, strings: &'a [String; 5]) -> [&'a str; 9] {
        [
            "mfa-recovery decision v1",
            &strings[0],
            &strings[1],
            self.action,
            &self.decider,
            &strings[2],
            &self.extra,
            &strings[3],
            &strings[4],
        ]
    }

    fn strings(&self, audit: &AuditRef) -> [String; 5] {
        [
            self.subject.to_string(),
            self.target.to_string(),
            super::rfc3339_millis(self.at),
            audit.chain.clone(),
            audit.seq.to_string(),
        ]
    }

    /// The seal of this decision, whose audit record is at `audit`.
    ///
    /// # Errors
    /// The key cannot be read: the decision must not be written.
    pub(crate) async fn seal(&self, key: &AuditKey, audit: AuditRef) -> Result<Seal, AuditError> {
        let (kid, value) = key.current().await?;
        let strings = self.strings(&audit);
        Ok(Seal {
            mac: mac(&value, &self.parts(&strings)),
            kid,
            audit,
        })
    }

    /// Whether `seal` is this decision's, under the key it names.
    pub(crate) async fn sealed_by(&self, key: &AuditKey, seal: &Seal) -> Result<bool, AuditError> {
        let strings = self.strings(&seal.audit);
        key.verifies(&seal.kid, &self.parts(&strings), &seal.mac).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous() {
        let k = SecretString::from("k".to_owned());
        assert_ne!(mac(&k, &["ab", "c"]), mac(&k, &["a", "bc"]));
        assert_ne!(mac(&k, &["a\n1:b"]), mac(&k, &["a", "b"]));
        assert_eq!(mac(&k, &["a", "b"]), mac(&k, &["a", "b"]));
    }
}
