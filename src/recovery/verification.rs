//! The store of verifications the service makes and checks: a challenge sent to an address of
//! record (a code read back today, by `recovery::code`, behind the `recovery::verifier` port),
//! answered by the caller, checked here. A recovery then names the verification by id
//! (`TAP_REQUIRE_VERIFICATION=service`) instead of a block the caller typed.
//!
//! A record keeps only what the method kept (a keyed hash, never the secret). A verification is
//! single use, dies after five wrong answers and expires after `VERIFICATION_CODE_MINUTES`.
//! Records sit beside the rate-limit slots (`verifications/{id}.json`), written only
//! conditionally.

use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use super::verifier::Verifier;
use crate::storage::records::{RecordStore, Update, UpdateError, update};
use crate::vocab::CallerRecord;
use crate::vocab::paths;
use crate::vocab::{Channel, Fault, Refusal};

/// Wrong codes before a verification dies.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

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
    /// The user answered the confirmation link "this is not me".
    Repudiated,
}

/// How the user proves it is them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A code the user reads back to the agent.
    #[default]
    Code,
    /// A link the user opens on their own device and answers: "it is me" or "this is not me".
    Link,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Code => "code",
            Mode::Link => "link",
        }
    }
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
    /// A code read back, or a confirmation link.
    #[serde(default)]
    pub mode: Mode,
    /// What the confirmation page shows the user (nothing secret): the agent as words, the
    /// action to come, the ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// When the user's browser first opened the link with its secret (the page's script).
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub opened_at: Option<OffsetDateTime>,
    /// The service's seal over `verified` and its audit record (`audit::seal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::audit::seal::Seal>,
}

/// A decision's seal, made once its audit record is written (or `None` on an unsigned trail).
pub(crate) type Sealing<'a> = Box<
    dyn FnOnce(
            VerificationRecord,
        ) -> futures::future::BoxFuture<'a, Result<Option<crate::audit::seal::Seal>, RecoveryError>>
        + Send
        + 'a,
>;

impl VerificationRecord {
    /// The user, as the caller who answers their own link.
    pub(crate) fn the_user(&self) -> CallerRecord {
        CallerRecord {
            via: "link".into(),
            object_id: Some(self.user_id.to_string()),
            name: Some(self.upn.clone()),
            ..CallerRecord::default()
        }
    }

    /// What the seal of its `verified` covers: the verification, the user, who confirmed it (the
    /// caller who asked for a code, the user for a link), when, and the mode, channel and caller
    /// it serves.
    pub(crate) fn verified(&self) -> crate::audit::seal::Decided {
        let decider = match self.mode {
            Mode::Code => self.caller.clone(),
            Mode::Link => self.the_user().key(),
        };
        crate::audit::seal::Decided {
            subject: self.id,
            target: self.user_id,
            action: "verified",
            decider,
            at: self.verified_at.unwrap_or(self.created_at),
            extra: format!(
                "{}|{}|{}|{}|{}",
                self.mode.as_str(),
                self.channel,
                self.caller,
                self.action.as_deref().unwrap_or_default(),
                crate::audit::rfc3339_millis(self.created_at)
            ),
        }
    }

    /// What an audit record keeps of it: no code, no hash.
    pub(crate) fn audit_view(&self) -> super::details::VerificationSeen {
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
pub(crate) fn caller_key(caller: &CallerRecord) -> String {
    caller.key()
}

/// The outcome of a confirmation that changed nothing lasting (or killed the verification).
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    Verified(OffsetDateTime),
}

/// The store of verifications and the key of their codes' hashes.
pub struct Verifications {
    store: Arc<dyn RecordStore>,
}

fn name(id: Uuid) -> String {
    format!("verifications/{id}.json")
}

pub(crate) fn unavailable(what: impl std::fmt::Display) -> RecoveryError {
    tracing::error!(error = %what, "verifications are unavailable");
    RecoveryError::failed(
        Fault::VerificationUnavailable,
        "verifications cannot be made or checked now (their store or key is unavailable); nothing was changed. Try again later.",
    )
}

/// A conditional update's failure as a recovery error: the change's own refusal, or the store.
fn updated(e: UpdateError<RecoveryError>) -> RecoveryError {
    match e {
        UpdateError::Refused(e) => e,
        UpdateError::Storage(e) => unavailable(e),
    }
}

pub(crate) fn not_found() -> RecoveryError {
    RecoveryError::refused(
        Refusal::VerificationNotFound,
        format!(
            "no such verification for this caller; send a new code (POST {})",
            paths::VERIFICATIONS
        ),
    )
}

impl Verifications {
    pub fn new(store: Arc<dyn RecordStore>) -> Verifications {
        Verifications { store }
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

    /// Verification `id` whoever made it, for its confirmation page (reads only).
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn peek(&self, id: Uuid) -> Result<Option<VerificationRecord>, RecoveryError> {
        Ok(self.read(id).await?.map(|(record, _)| record))
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

    /// Check `answer` against verification `id`, by its caller, with the method that made it. A
    /// wrong answer counts; the fifth kills the verification. Single use: once verified, the
    /// answer is spent (another confirmation answers as the first did, and changes nothing).
    ///
    /// # Errors
    /// `verification_not_found`, `verification_expired`, `too_many_attempts`, `code_mismatch`
    /// (with the attempts left), or the store or the method's key is unavailable.
    pub async fn confirm(
        &self,
        id: Uuid,
        caller: &str,
        verifier: &dyn Verifier,
        answer: &SecretString,
        now: OffsetDateTime,
        seal: Sealing<'_>,
    ) -> Result<(VerificationRecord, Confirmed), RecoveryError> {
        // A spent, dead or expired verification answers without the key.
        let (first, _) = self.get(id, caller).await?;
        if first.mode == Mode::Link {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                format!(
                    "this verification is a confirmation link: the user answers it on their own device; watch GET {}",
                    paths::fill(paths::VERIFICATION, &id.to_string())
                ),
            ));
        }
        if first.status == Status::Pending && now < first.expires_at {
            // What was kept never changes: the verdict holds for whichever write wins below.
            let right = verifier.check(id, &first.code_hash, answer).await?;
            // The right code: its audit record and seal before it is written verified.
            let sealed = if right {
                let mut verified = first.clone();
                verified.status = Status::Verified;
                verified.verified_at = Some(now);
                seal(verified).await?
            } else {
                None
            };
            return self
                .modify(id, caller, |mut record| {
                    if let Some(done) = settled(&record, now) {
                        return Ok(Update::Keep(done));
                    }
                    if right {
                        record.status = Status::Verified;
                        record.verified_at = Some(now);
                        record.seal = sealed.clone();
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
        .map_err(updated)
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

/// What the user asks of a confirmation link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The page opened with its secret (changes no outcome: the status says `opened`).
    Open,
    /// "It is me".
    Confirm,
    /// "This is not me".
    NotMe,
}

/// How long after it was sent a link still takes "this is not me", even once confirmed: an
/// attacker who got the secret and confirmed first does not silence the user.
pub(crate) const NOT_ME_WINDOW: time::Duration = time::Duration::hours(24);

/// Whether link `r` takes `decision` at `now`: "it is me" only while it waits for its answer
/// (`VERIFICATION_CODE_MINUTES`); "open" and "this is not me" within `NOT_ME_WINDOW` of its
/// sending, answered or not (not a repudiated link's "open": its page is neutral).
pub(crate) fn answerable(r: &VerificationRecord, decision: Decision, now: OffsetDateTime) -> bool {
    if r.mode != Mode::Link {
        return false;
    }
    let waiting = r.status == Status::Pending && now < r.expires_at;
    // "This is not me" outlives the answer's time: the message asks a user who did not ask to
    // say so, whenever they read it (within the window).
    let within = now < r.created_at + NOT_ME_WINDOW;
    match decision {
        Decision::Confirm => waiting,
        // A repudiated link's page is neutral; "not me" again only finishes a containment.
        Decision::Open => within && matches!(r.status, Status::Pending | Status::Verified),
        Decision::NotMe => within && matches!(r.status, Status::Pending | Status::Verified | Status::Repudiated),
    }
}

/// A block on a user's recoveries after "this is not me".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The verification the user repudiated (the latest).
    pub verification_id: Uuid,
    /// Who sent each link the user repudiated (caller keys): none of them may lift the block.
    #[serde(default)]
    pub senders: Vec<String>,
    /// When the user last said "this is not me": a verification confirmed before then serves no
    /// recovery, even after the block is lifted.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub repudiated_at: Option<OffsetDateTime>,
    /// Who set it as it is (a caller key: the user through the link, or the approver who lifted
    /// it), and when.
    #[serde(default)]
    pub decided_by: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub decided_at: Option<OffsetDateTime>,
    /// The service's seal over the block as it is and its audit record (`audit::seal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::audit::seal::Seal>,
}

impl Block {
    /// What the seal covers: the verification repudiated, the user, who set the block as it is
    /// and when, until when, since when repudiated, and whose links it names.
    pub(crate) fn decided(&self) -> crate::audit::seal::Decided {
        crate::audit::seal::Decided {
            subject: self.verification_id,
            target: self.user_id,
            action: "block",
            decider: self.decided_by.clone(),
            at: self.decided_at.unwrap_or(self.until),
            extra: format!(
                "{}|{}|{}",
                crate::audit::rfc3339_millis(self.until),
                self.repudiated_at.map(crate::audit::rfc3339_millis).unwrap_or_default(),
                self.senders.join(",")
            ),
        }
    }
}

/// A block's seal, made once its audit record is written.
pub(crate) type BlockSealing<'a> = &'a (
        dyn Fn(Block) -> futures::future::BoxFuture<'a, Result<Option<crate::audit::seal::Seal>, RecoveryError>>
            + Send
            + Sync
    );

fn block_name(user: Uuid) -> String {
    format!("blocks/{user}.json")
}

impl Verifications {
    /// Link `id` when it takes `decision` now and `secret` is its own; reads only.
    ///
    /// # Errors
    /// The store or the key is unavailable.
    pub async fn check_link(
        &self,
        id: Uuid,
        verifier: &dyn Verifier,
        secret: &SecretString,
        decision: Decision,
        now: OffsetDateTime,
    ) -> Result<Option<VerificationRecord>, RecoveryError> {
        let Some((first, _)) = self.read(id).await? else {
            return Ok(None);
        };
        if !answerable(&first, decision, now)
            || !verifier.well_formed(secret)
            || !verifier.check(id, &first.code_hash, secret).await?
        {
            return Ok(None);
        }
        Ok(Some(first))
    }

    /// The user's answer to link `id`: with the right secret, while it is pending and fresh,
    /// `Open` notes the first opening, `Confirm` verifies, `NotMe` repudiates; the record as
    /// written. `None` for anything else (no such id, a code, used, expired, a wrong secret):
    /// the caller answers all of them alike.
    ///
    /// # Errors
    /// The store or the key is unavailable.
    pub async fn answer_link(
        &self,
        id: Uuid,
        verifier: &dyn Verifier,
        secret: &SecretString,
        decision: Decision,
        now: OffsetDateTime,
        seal: Sealing<'_>,
    ) -> Result<Option<VerificationRecord>, RecoveryError> {
        let Some(first) = self.check_link(id, verifier, secret, decision, now).await? else {
            return Ok(None);
        };
        // "It is me": its audit record and seal before it is written verified.
        let sealed = if decision == Decision::Confirm && first.status == Status::Pending {
            let mut verified = first.clone();
            verified.status = Status::Verified;
            verified.verified_at = Some(now);
            seal(verified).await?
        } else {
            None
        };
        update(&*self.store, &name(id), 16, |current: Option<VerificationRecord>| {
            let Some(mut record) = current.filter(|r| answerable(r, decision, now)) else {
                return Ok::<_, RecoveryError>(Update::Keep(None));
            };
            match (decision, record.status) {
                (Decision::Open, Status::Pending) if record.opened_at.is_none() => record.opened_at = Some(now),
                (Decision::Confirm, Status::Pending) => {
                    record.status = Status::Verified;
                    record.verified_at = Some(now);
                    record.seal = sealed.clone();
                }
                (Decision::NotMe, Status::Pending | Status::Verified) => record.status = Status::Repudiated,
                // Opened already, or repudiated already (the containment runs again: a retry
                // after a failure finishes it).
                _ => return Ok(Update::Keep(Some(record))),
            }
            record.opened_at.get_or_insert(now);
            Ok(Update::Write(record.clone(), Some(record)))
        })
        .await
        .map_err(updated)
    }

    /// Block `user`'s recoveries until `until` (a longer block already there stays, unless
    /// `fresh`: the one there was not the service's, and is replaced), as the user said "this is
    /// not me"; recorded and sealed (`sealing`) before it is written.
    ///
    /// # Errors
    /// The store or the trail is unavailable: the caller must not say the user is protected.
    pub async fn block(
        &self,
        user: Uuid,
        until: OffsetDateTime,
        repudiated: &VerificationRecord,
        now: OffsetDateTime,
        fresh: bool,
        sealing: BlockSealing<'_>,
    ) -> Result<(), RecoveryError> {
        self.change_block(
            user,
            |current: Option<Block>| {
                let mut block = current.filter(|_| !fresh).unwrap_or(Block {
                    user_id: user,
                    until,
                    verification_id: repudiated.id,
                    senders: Vec::new(),
                    repudiated_at: None,
                    decided_by: String::new(),
                    decided_at: None,
                    seal: None,
                });
                if block.verification_id == repudiated.id && block.until >= until && block.repudiated_at.is_some() {
                    return Ok(Update::Keep(()));
                }
                block.until = block.until.max(until);
                block.verification_id = repudiated.id;
                if !block.senders.contains(&repudiated.caller) {
                    block.senders.push(repudiated.caller.clone());
                }
                block.repudiated_at = Some(block.repudiated_at.map_or(now, |at| at.max(now)));
                block.decided_by = repudiated.the_user().key();
                block.decided_at = Some(now);
                Ok(Update::Write(block, ()))
            },
            sealing,
        )
        .await
    }

    /// Read the user's block, let `change` decide, seal what it writes (its audit record first),
    /// write conditionally; again when another writer won.
    async fn change_block<R>(
        &self,
        user: Uuid,
        mut change: impl FnMut(Option<Block>) -> Result<Update<Block, R>, RecoveryError>,
        sealing: BlockSealing<'_>,
    ) -> Result<R, RecoveryError> {
        let name = block_name(user);
        for _ in 0..8 {
            let current = self.store.read(&name).await.map_err(unavailable)?;
            let (value, etag) = match current {
                None => (None, None),
                Some(v) => (
                    Some(
                        serde_json::from_slice::<Block>(&v.data)
                            .map_err(|e| unavailable(format!("unreadable block: {e}")))?,
                    ),
                    Some(v.etag),
                ),
            };
            let (mut next, answer) = match change(value)? {
                Update::Keep(answer) => return Ok(answer),
                Update::Write(next, answer) => (next, answer),
            };
            next.seal = sealing(next.clone()).await?;
            let data = serde_json::to_vec(&next).expect("a block serializes");
            let written = match etag {
                Some(etag) => self.store.replace(&name, &data, &etag).await,
                None => self.store.create(&name, &data).await,
            };
            match written {
                Ok(_) => return Ok(answer),
                Err(crate::storage::StorageError::Conflict(_)) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(unavailable("the block kept changing while it was written"))
    }

    /// The block on `user`'s recoveries in force at `now`, if any.
    ///
    /// # Errors
    /// The store is unavailable (the caller fails closed).
    pub async fn block_of(&self, user: Uuid, now: OffsetDateTime) -> Result<Option<Block>, RecoveryError> {
        Ok(self.block_record(user).await?.filter(|b| b.until > now))
    }

    /// The user's block record, in force or not (lifted, ended): when they last repudiated.
    ///
    /// # Errors
    /// The store is unavailable (the caller fails closed).
    pub async fn block_record(&self, user: Uuid) -> Result<Option<Block>, RecoveryError> {
        let Some(v) = self.store.read(&block_name(user)).await.map_err(unavailable)? else {
            return Ok(None);
        };
        serde_json::from_slice(&v.data)
            .map(Some)
            .map_err(|e| unavailable(format!("unreadable block: {e}")))
    }

    /// End the block on `user`'s recoveries now, by `by` (the approver's caller key); recorded
    /// and sealed (`sealing`) before it is written. The block that was lifted.
    ///
    /// # Errors
    /// `not_blocked` when none is in force, or the store or the trail is unavailable.
    pub async fn lift(
        &self,
        user: Uuid,
        now: OffsetDateTime,
        by: &str,
        sealing: BlockSealing<'_>,
    ) -> Result<Block, RecoveryError> {
        self.change_block(
            user,
            |current: Option<Block>| match current {
                Some(mut block) if block.until > now => {
                    let lifted = block.clone();
                    block.until = now;
                    block.decided_by = by.to_owned();
                    block.decided_at = Some(now);
                    Ok(Update::Write(block, lifted))
                }
                _ => Err(RecoveryError::refused(
                    Refusal::NotBlocked,
                    "no block is in force on this user's recoveries",
                )),
            },
            sealing,
        )
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
            format!(
                "the verification's code was not confirmed (POST {})",
                paths::VERIFICATION_CONFIRM
            ),
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
        Status::Repudiated => Some(Err(RecoveryError::refused(
            Refusal::RecoveryBlocked,
            "the user answered this verification's link \"this is not me\": no recovery for them now",
        ))),
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
    /// A code read back, or a link the user answers.
    pub mode: Mode,
}

/// Two addresses of record are the same: emails case-insensitively, phone numbers by their
/// digits (`+1 206 555 0100` is `+12065550100`).
pub(crate) fn same_address(a: &str, b: &str) -> bool {
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
    fn addresses_compare_as_addresses() {
        assert!(same_address("+1 206 555 0100", "+12065550100"));
        assert!(same_address("+1 206 555 0100", "(206) 555-0100"));
        assert!(same_address("+44 20 7946 0958", "020 7946 0958"));
        assert!(same_address("Megan@Contoso.test", "megan@contoso.test"));
        assert!(!same_address("+1 206 555 0100", "+1 206 555 0101"));
        assert!(!same_address("", ""));
    }
}
