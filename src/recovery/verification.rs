//! Verifications the service makes and checks: a one-time numeric code sent to an address of
//! record, read back by the caller, checked here. A recovery then names the verification by id
//! (`TAP_REQUIRE_VERIFICATION=service`) instead of a block the caller typed.
//!
//! A code exists in clear only in a `SecretString` between its generation and the provider; the
//! record keeps an HMAC-SHA256 of it, keyed with a Key Vault secret (`VERIFICATION_KEY_SECRET`),
//! so whoever can read the storage cannot try the million codes. It is compared in constant time,
//! is single use, dies after five wrong tries and expires after `VERIFICATION_CODE_MINUTES`.
//! Records sit beside the rate-limit slots (`verifications/{id}.json`), written only
//! conditionally.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use crate::storage::records::{RecordStore, Update, UpdateError, update};
use crate::vocab::CallerRecord;
use crate::vocab::ports::SecretSource;
use crate::vocab::{Channel, Fault, Refusal};

/// Wrong codes before a verification dies.
pub const MAX_ATTEMPTS: u32 = 5;
/// Digits in a code (read aloud easily).
const DIGITS: u32 = 6;

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Sent; waiting for the code.
    Pending,
    /// The right code came back.
    Verified,
    /// Too many wrong codes.
    Dead,
}

/// One verification, as stored. Never the code: only its keyed hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRecord {
    pub id: Uuid,
    /// Who asked for it (`via` and object id); only they may confirm or use it.
    pub caller: String,
    pub user_id: Uuid,
    pub upn: String,
    pub channel: String,
    /// The address of record the code went to, masked.
    pub sent_to: String,
    pub code_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub attempts: u32,
    pub status: Status,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub verified_at: Option<OffsetDateTime>,
    /// The recovery that used it (a retry of the same request may use it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<Uuid>,
}

impl VerificationRecord {
    /// What an audit record keeps of it: no code, no hash.
    pub fn audit_view(&self) -> super::details::VerificationSeen {
        super::details::VerificationSeen::Service {
            id: self.id,
            channel: self.channel.clone(),
            sent_to: self.sent_to.clone(),
            created_at: crate::audit::rfc3339_millis(self.created_at),
            verified_at: self.verified_at.map(crate::audit::rfc3339_millis),
        }
    }
}

/// The key a caller is known by across its calls: how it proved itself and who it is.
pub fn caller_key(caller: &CallerRecord) -> String {
    format!("{}:{}", caller.via, caller.object_id.as_deref().unwrap_or("-"))
}

/// A fresh code: `DIGITS` decimal digits from the operating system's random source (through
/// a v4 UUID's 122 random bits; the modulo bias is below 10^-30).
pub fn new_code() -> SecretString {
    let n = Uuid::new_v4().as_u128() % 10u128.pow(DIGITS);
    SecretString::from(format!("{n:0width$}", width = DIGITS as usize))
}

/// The outcome of a confirmation that changed nothing lasting (or killed the verification).
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    Verified(OffsetDateTime),
}

/// The store of verifications and the key of their codes' hashes.
pub struct Verifications {
    store: Arc<dyn RecordStore>,
    secrets: Arc<dyn SecretSource>,
    key_secret: String,
}

fn name(id: Uuid) -> String {
    format!("verifications/{id}.json")
}

fn unavailable(what: impl std::fmt::Display) -> RecoveryError {
    tracing::error!(error = %what, "verifications are unavailable");
    RecoveryError::failed(
        Fault::VerificationUnavailable,
        "verifications cannot be made or checked now (their store or key is unavailable); nothing was changed. Try again later.",
    )
}

pub(crate) fn not_found() -> RecoveryError {
    RecoveryError::refused(
        Refusal::VerificationNotFound,
        "no such verification for this caller; send a new code (POST /api/users/{user}/verifications)",
    )
}

impl Verifications {
    pub fn new(store: Arc<dyn RecordStore>, secrets: Arc<dyn SecretSource>, key_secret: String) -> Verifications {
        Verifications {
            store,
            secrets,
            key_secret,
        }
    }

    /// The keyed hash of `code` for verification `id` (the id binds a hash to its record).
    async fn mac(&self, id: Uuid) -> Result<Hmac<Sha256>, RecoveryError> {
        let key = self
            .secrets
            .get(&self.key_secret)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| unavailable(format!("the Key Vault secret {} does not exist", self.key_secret)))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        Ok(mac)
    }

    /// The hash to store for a new code.
    ///
    /// # Errors
    /// The key cannot be read.
    pub async fn hash(&self, id: Uuid, code: &SecretString) -> Result<String, RecoveryError> {
        let mut mac = self.mac(id).await?;
        mac.update(code.expose_secret().as_bytes());
        Ok(B64.encode(mac.finalize().into_bytes()))
    }

    /// Keep a new verification (before its code is sent).
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn create(&self, record: &VerificationRecord) -> Result<(), RecoveryError> {
        let data = serde_json::to_vec(record).expect("a verification serializes");
        self.store
            .create(&name(record.id), &data)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn read(&self, id: Uuid) -> Result<Option<(VerificationRecord, String)>, RecoveryError> {
        let Some(v) = self.store.read(&name(id)).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let record =
            serde_json::from_slice(&v.data).map_err(|e| unavailable(format!("unreadable verification: {e}")))?;
        Ok(Some((record, v.etag)))
    }

    /// The verification `id` as its caller sees it; someone else's is not found.
    ///
    /// # Errors
    /// Not found (or not this caller's), or the store is unavailable.
    pub async fn get(&self, id: Uuid, caller: &str) -> Result<(VerificationRecord, String), RecoveryError> {
        match self.read(id).await? {
            Some((record, etag)) if record.caller == caller => Ok((record, etag)),
            _ => Err(not_found()),
        }
    }

    /// Check `code` against verification `id`, by its caller. A wrong code counts; the fifth
    /// kills the verification. Single use: once verified, the code is spent (another confirmation
    /// answers as the first did, and changes nothing).
    ///
    /// # Errors
    /// `verification_not_found`, `verification_expired`, `too_many_attempts`, `code_mismatch`
    /// (with the attempts left), or the store or key is unavailable.
    pub async fn confirm(
        &self,
        id: Uuid,
        caller: &str,
        code: &SecretString,
        now: OffsetDateTime,
    ) -> Result<(VerificationRecord, Confirmed), RecoveryError> {
        // A spent, dead or expired verification answers without the key.
        let (first, _) = self.get(id, caller).await?;
        if first.status == Status::Pending && now < first.expires_at {
            let mut mac = self.mac(id).await?;
            mac.update(code.expose_secret().trim().as_bytes());
            return self
                .modify(id, caller, |mut record| {
                    if let Some(done) = settled(&record, now) {
                        return Ok(Update::Keep(done));
                    }
                    let expected = B64.decode(&record.code_hash).map_err(unavailable)?;
                    // `verify_slice` compares in constant time.
                    let right = mac.clone().verify_slice(&expected).is_ok();
                    if right {
                        record.status = Status::Verified;
                        record.verified_at = Some(now);
                    } else {
                        record.attempts += 1;
                        if record.attempts >= MAX_ATTEMPTS {
                            record.status = Status::Dead;
                        }
                    }
                    let answer = confirmed(record.clone(), right, now);
                    Ok(Update::Write(record, answer))
                })
                .await
                .and_then(|answer| answer);
        }
        settled(&first, now).unwrap_or_else(|| Err(unavailable("a pending verification changed")))
    }

    /// Read verification `id` (this caller's), let `change` decide, write conditionally; again
    /// when another writer won (`storage::records::update`).
    async fn modify<R>(
        &self,
        id: Uuid,
        caller: &str,
        mut change: impl FnMut(VerificationRecord) -> Result<Update<VerificationRecord, R>, RecoveryError>,
    ) -> Result<R, RecoveryError> {
        update(
            &*self.store,
            &name(id),
            16,
            |current: Option<VerificationRecord>| match current {
                Some(record) if record.caller == caller => change(record),
                _ => Err(not_found()),
            },
        )
        .await
        .map_err(|e| match e {
            UpdateError::Refused(e) => e,
            UpdateError::Storage(e) => unavailable(e),
        })
    }

    /// Mark a verification dead (its code could not be sent).
    pub async fn kill(&self, id: Uuid, caller: &str) {
        let _ = self
            .modify(id, caller, |mut record| {
                record.status = Status::Dead;
                Ok(Update::Write(record, ()))
            })
            .await;
    }

    /// Give verification `id` back when recovery `request` took it and was then refused before
    /// changing anything: the caller may use it again (a held request keeps it).
    pub async fn release(&self, id: Uuid, caller: &str, request: Uuid) {
        let _ = self
            .modify(id, caller, |mut record| {
                if record.used_by != Some(request) {
                    return Ok(Update::Keep(()));
                }
                record.used_by = None;
                Ok(Update::Write(record, ()))
            })
            .await;
    }

    /// Take verification `id` for recovery `request` of `user` through `channel` (the pass's
    /// channel; `None` for a reset without a pass): it must be this caller's, for this user,
    /// verified within `max_age` of `as_of`, not used by another recovery, and (unless
    /// `same_channel`) its code must have gone through another channel than the pass.
    ///
    /// # Errors
    /// The refusal that says which of these failed, or the store is unavailable.
    #[allow(clippy::too_many_arguments)]
    pub async fn take(
        &self,
        id: Uuid,
        caller: &str,
        user: Uuid,
        request: Uuid,
        channel: Option<Channel>,
        same_channel: bool,
        max_age: time::Duration,
        as_of: OffsetDateTime,
    ) -> Result<VerificationRecord, RecoveryError> {
        self.modify(id, caller, |mut record| {
            usable(
                &record,
                user,
                request,
                channel.filter(|_| !same_channel),
                max_age,
                as_of,
            )?;
            if record.used_by == Some(request) {
                return Ok(Update::Keep(record));
            }
            record.used_by = Some(request);
            Ok(Update::Write(record.clone(), record))
        })
        .await
    }
}

/// Whether a verification may serve recovery `request` of `user` (its pass going by `channel`,
/// when the channels must differ), as of `as_of`: for this user, confirmed, recent, another
/// channel, and not used by another recovery.
fn usable(
    record: &VerificationRecord,
    user: Uuid,
    request: Uuid,
    channel: Option<Channel>,
    max_age: time::Duration,
    as_of: OffsetDateTime,
) -> Result<(), RecoveryError> {
    if record.user_id != user {
        return Err(RecoveryError::refused(
            Refusal::VerificationNotFound,
            "this verification is for another user; verify this one",
        ));
    }
    let Some(verified_at) = record.verified_at.filter(|_| record.status == Status::Verified) else {
        return Err(RecoveryError::refused(
            Refusal::VerificationNotConfirmed,
            "the verification's code was not confirmed (POST /api/verifications/{id}/confirm)",
        ));
    };
    let age = as_of - verified_at;
    if age > max_age || age < -time::Duration::minutes(2) {
        return Err(RecoveryError::refused(
            Refusal::VerificationStale,
            format!(
                "the verification must be from the last {} minutes; verify again",
                max_age.whole_minutes()
            ),
        ));
    }
    if let Some(channel) = channel
        && channel.as_str() == record.channel
    {
        return Err(RecoveryError::refused(
            Refusal::VerificationChannelReused,
            format!(
                "the code went by {}; the pass must go another way, so one swapped SIM or one changed address is not enough",
                record.channel
            ),
        ));
    }
    match record.used_by {
        Some(other) if other != request => Err(RecoveryError::refused(
            Refusal::VerificationUsed,
            "this verification served another recovery; verify again",
        )),
        _ => Ok(()),
    }
}

/// A verification that no code can change any more: spent (the first confirmation's answer),
/// dead, or expired. `None` while it waits for its code.
fn settled(
    record: &VerificationRecord,
    now: OffsetDateTime,
) -> Option<Result<(VerificationRecord, Confirmed), RecoveryError>> {
    match record.status {
        Status::Verified => {
            let at = record.verified_at.unwrap_or(record.created_at);
            Some(Ok((record.clone(), Confirmed::Verified(at))))
        }
        Status::Dead => Some(Err(too_many())),
        Status::Pending if now >= record.expires_at => Some(Err(RecoveryError::refused(
            Refusal::VerificationExpired,
            "the code has expired; send a new one",
        ))),
        Status::Pending => None,
    }
}

/// The answer to a confirmation that was written: verified, or the attempts left (or dead).
fn confirmed(
    record: VerificationRecord,
    right: bool,
    now: OffsetDateTime,
) -> Result<(VerificationRecord, Confirmed), RecoveryError> {
    match (right, record.status) {
        (true, _) => Ok((record, Confirmed::Verified(now))),
        (false, Status::Dead) => Err(too_many()),
        (false, _) => Err(RecoveryError::refused(
            Refusal::CodeMismatch,
            format!(
                "the code does not match; {} attempts left",
                MAX_ATTEMPTS - record.attempts
            ),
        )),
    }
}

fn too_many() -> RecoveryError {
    RecoveryError::refused(
        Refusal::TooManyAttempts,
        format!("{MAX_ATTEMPTS} wrong codes: this verification is closed; send a new code"),
    )
}

/// The message that carries a code, a fixed template: the code first, so nothing a caller
/// chose comes before it; then who is verifying (the agent's name from their token, reduced to
/// letters, spaces and `.'-`), the ticket (reduced to a safe character set, `ticket_id_ok`), to
/// read it only to an agent you called, and whom to contact otherwise. The code is the only
/// secret in it.
pub fn code_message(
    code: &SecretString,
    agent: Option<&str>,
    ticket: Option<&str>,
    minutes: u32,
    contact: &str,
) -> SecretString {
    // A UPN or username (`megan.bowen@contoso.com`): its local part, as words ("megan bowen"), so
    // no domain or link reaches the user.
    let agent = agent.unwrap_or_default();
    let agent = agent.split('@').next().unwrap_or_default().replace(['.', '_'], " ");
    let name: String = agent
        .chars()
        .filter(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '-'))
        .take(64)
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let who = if name.is_empty() {
        "Your IT service desk".to_owned()
    } else {
        format!("{name} (IT service desk)")
    };
    let about = ticket
        .filter(|t| super::rules::ticket_id_ok(t))
        .map_or_else(String::new, |t| format!(" for ticket {t}"));
    SecretString::from(format!(
        "Your code: {}\n{who} is verifying your identity{about}. Valid {minutes} minutes. Read it only to an agent you called yourself, never to someone who called you.\nDid not ask? Contact {contact}.",
        code.expose_secret()
    ))
}

/// A code sent: what the caller is told.
#[derive(Debug)]
pub struct SentCode {
    pub id: Uuid,
    pub channel: Channel,
    /// The address of record it went to, masked.
    pub sent_to: String,
    pub expires_at: OffsetDateTime,
    /// The user is privileged (approvals are on for them): the SOC hears of the code.
    pub privileged: bool,
    pub user_id: Uuid,
    pub upn: String,
    /// Entra ID Protection's rating, when worth the agent's attention (`medium`, or `high` held
    /// for an approver); `{level, state}`.
    pub risk: Option<super::details::RiskSeen>,
    /// The ticket the request named, if any.
    pub ticket: Option<crate::audit::Ticket>,
}

/// Two addresses of record are the same: emails case-insensitively, phone numbers by their
/// digits (`+1 206 555 0100` is `+12065550100`).
pub fn same_address(a: &str, b: &str) -> bool {
    if a.contains('@') || b.contains('@') {
        return a.trim().eq_ignore_ascii_case(b.trim());
    }
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    if a.len() < 7 || b.len() < 7 {
        return false;
    }
    // `+1 425 555 0100`, `(425) 555-0100` and `0425 555 0100` are one number: compare the last
    // nine digits (a subscriber number with its area code) when both have them, else the whole.
    let tail = |s: &str| s[s.len().saturating_sub(9)..].to_owned();
    if a.len() >= 9 && b.len() >= 9 {
        tail(&a) == tail(&b)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = new_code();
            assert_eq!(c.expose_secret().len(), 6);
            assert!(c.expose_secret().chars().all(|d| d.is_ascii_digit()));
        }
    }

    #[test]
    fn the_code_message_names_the_agent_and_the_ticket_and_warns() {
        let text = code_message(
            &SecretString::from("042137"),
            Some("Megan Bowen"),
            Some("INC0010001"),
            10,
            "the service desk",
        );
        let t = text.expose_secret();
        assert!(t.contains("042137") && t.contains("Megan Bowen") && t.contains("INC0010001"));
        assert!(t.contains("only to an agent you called"));
        assert!(t.contains("Contact the service desk"));
        assert!(t.starts_with("Your code: 042137\n"), "the code comes first: {t}");
    }

    #[test]
    fn nothing_a_caller_chose_reaches_the_code_message_unfiltered() {
        let text = code_message(
            &SecretString::from("042137"),
            Some("Megan <b>Bowen</b> call +1 555 0100"),
            Some("INC1 call +1 555 0100 now"),
            10,
            "the service desk",
        );
        let t = text.expose_secret();
        assert!(!t.contains("555") && !t.contains('<') && !t.contains("INC1"), "{t}");
        assert!(crate::recovery::rules::ticket_id_ok("INC0010001") && crate::recovery::rules::ticket_id_ok("HELP-42"));
        assert!(
            !crate::recovery::rules::ticket_id_ok("HELP 42")
                && !crate::recovery::rules::ticket_id_ok("https://evil.example/?x")
                && !crate::recovery::rules::ticket_id_ok("")
        );
        assert!(
            !crate::recovery::rules::ticket_id_ok("evil.example")
                && !crate::recovery::rules::ticket_id_ok("a/b")
                && !crate::recovery::rules::ticket_id_ok("-x")
        );
        // A UPN as the agent's name: words, no domain.
        let text = code_message(
            &SecretString::from("042137"),
            Some("megan.bowen@evil.example"),
            None,
            10,
            "IT",
        );
        let t = text.expose_secret();
        assert!(
            t.contains("megan bowen (IT service desk)") && !t.contains("evil"),
            "{t}"
        );
    }

    #[test]
    fn addresses_compare_as_addresses() {
        assert!(same_address("+1 206 555 0100", "+12065550100"));
        assert!(same_address("+1 206 555 0100", "(206) 555-0100"));
        assert!(same_address("+44 20 7946 0958", "020 7946 0958"));
        assert!(same_address("Megan@Contoso.test", "megan@contoso.test"));
        assert!(!same_address("+1 206 555 0100", "+1 206 555 0101"));
        assert!(!same_address("", ""));
    }
}
