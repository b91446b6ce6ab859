//! Asynchronous intake: ITSM webhooks and flows hand a request in (`POST /api/requests`), it is
//! kept as a record and queued, a queue-triggered worker carries it out with the same code as the
//! synchronous functions, and the result is written back to the ticket.
//!
//! Exactly once, however often a request arrives or a worker dies:
//! - The request id is derived from the idempotency key (`Idempotency-Key`, or system + ticket +
//!   action), and the record is created with `If-None-Match: *`: of fifty duplicate webhooks one
//!   creates it, the others read it and answer with it.
//! - A worker claims the record with `If-Match` on its ETag; a second delivery of the message
//!   finds it claimed and completes without acting. The host's retry of the same message (a higher
//!   dequeue count) takes over at once; any other delivery takes over when the claim expires.
//! - Every step of the pass is saved before the next starts (`recovery::Journal`): a retry knows
//!   whether the pass was created, handed to the provider, or delivered, and never sends a second.

use crate::storage::queue;
pub mod approval;
pub mod call;
pub mod link;
pub mod submission;
pub mod view;
pub mod writeback;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::audit::{Action as AuditAction, AuditEvent, Outcome, Phase, Target, Ticket};
use crate::recovery::context::TapContext;
use crate::recovery::request::TapRequest;
use crate::recovery::reset::ResetRequest;
use crate::recovery::{Answer, Answered, Answers, Journal, RecoveryError, TapProgress};
use crate::storage::StorageError;
use crate::storage::records::{RecordStore, Update, UpdateError, update, update_versioned};
use crate::vocab::CallerRecord;
use crate::vocab::Fault;
use queue::RequestQueue;
pub use submission::{Action, Source, Submission};
use writeback::WriteBack;

/// The queue the worker reads and the one the host moves exhausted messages to.
pub const QUEUE: &str = "recovery-requests";
pub const POISON_QUEUE: &str = "recovery-requests-poison";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Accepted,
    /// Held for a second approver (`recovery::approval`); not run until approved.
    #[serde(rename = "pending_approval")]
    PendingApproval,
    /// Waits for the user to answer the confirmation link the service sent
    /// (`"verification": {"mode": "link"}`); runs once they confirm.
    #[serde(rename = "awaiting_confirmation")]
    AwaitingConfirmation,
    Running,
    Succeeded,
    Refused,
    Failed,
}

impl State {
    /// Whether a request in this state may move to `next`: accepted (or approved) → running →
    /// a final state, or held for an approver; held → accepted (approved) or refused (denied,
    /// expired); a running request whose worker died is claimed again; one whose messages ran out
    /// of retries fails, wherever it was. A final state is final.
    pub(crate) fn may_become(self, next: State) -> bool {
        use State::{Accepted, AwaitingConfirmation, Failed, PendingApproval, Refused, Running, Succeeded};
        matches!(
            (self, next),
            (Accepted, Running | PendingApproval | Failed)
                | (Running, Running | Succeeded | Refused | Failed | PendingApproval)
                | (PendingApproval, Accepted | Refused | Failed)
                | (AwaitingConfirmation, Accepted | Refused | Failed)
        )
    }

    pub(crate) fn is_final(self) -> bool {
        matches!(self, State::Succeeded | State::Refused | State::Failed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            State::Accepted => "accepted",
            State::PendingApproval => "pending_approval",
            State::AwaitingConfirmation => "awaiting_confirmation",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Refused => "refused",
            State::Failed => "failed",
        }
    }
}

/// A worker's hold on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub message_id: Option<String>,
    pub dequeue_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteBackState {
    None,
    Pending,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteBackStatus {
    pub state: WriteBackState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One request, as kept in its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub id: Uuid,
    pub idempotency_key: String,
    pub fingerprint: String,
    pub action: Action,
    pub user: String,
    /// The synchronous function's body (ticket, reason, verification; never a secret).
    pub body: Value,
    pub source: Source,
    pub caller: CallerRecord,
    pub state: State,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub queued_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub progress: TapProgress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the synchronous function would have come to (a pass, a reset, an error code), and
    /// the body it would have answered (rendered by `recovery::Answers`); the status is the
    /// wire's to choose from the kind (`view`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<Answered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    pub write_back: WriteBackStatus,
    /// Why it waits for a second approver, and what was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::recovery::approval::Approval>,
    /// The agent the ticket or webhook named as asking, as given (resolved, it is
    /// `caller.onBehalfOf`; not resolved, the requester is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The confirmation link the service sent for it, while it waits for the user's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_link: Option<AwaitingLink>,
    /// What a reset's removals did, kept before its pass may be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removals: Option<crate::recovery::RemovalsDone>,
}

/// The link a request waits on: which verification, and until when the user may answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitingLink {
    pub verification_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl RequestRecord {
    /// Whether a worker holding `delivery` may take this request now: `None` when it may (claim
    /// it with `claim_for`), else what to do instead (it is final, its approval expired, it
    /// waits for an approver, or another invocation holds it).
    #[allow(clippy::type_complexity)]
    fn claimable(&self, delivery: &Delivery, now: OffsetDateTime) -> Option<fn(RequestRecord) -> ClaimDecision> {
        if self.state.is_final() {
            return Some(ClaimDecision::Final);
        }
        if self.state == State::PendingApproval {
            if self.approval.as_ref().is_some_and(|a| a.expires_at <= now) {
                return Some(ClaimDecision::Expired);
            }
            return Some(|r| ClaimDecision::Skip(format!("request {} waits for an approver", r.id)));
        }
        if self.state == State::AwaitingConfirmation {
            // Sent, and not answered in time (the delayed message), or never sent at all.
            if self.awaiting_link.as_ref().is_none_or(|a| a.expires_at <= now) {
                return Some(ClaimDecision::Expired);
            }
            return Some(|r| ClaimDecision::Skip(format!("request {} waits for the user's confirmation", r.id)));
        }
        let free = match &self.claim {
            None => true,
            Some(c) => {
                c.until < now
                    || (c.message_id.is_some()
                        && c.message_id == delivery.message_id
                        && c.dequeue_count < delivery.dequeue_count)
            }
        };
        (!free).then_some(|r: RequestRecord| {
            ClaimDecision::Skip(format!(
                "request {} is being run by another invocation; this delivery is complete",
                r.id
            ))
        })
    }

    /// Move to `next`, which the lifecycle must allow (`State::may_become`).
    fn become_(&mut self, next: State, now: OffsetDateTime) {
        assert!(
            self.state.may_become(next),
            "request {}: {} may not become {}",
            self.id,
            self.state.as_str(),
            next.as_str()
        );
        self.state = next;
        self.updated_at = now;
    }

    /// Held for a second approver: nothing decided yet (no result), no worker holds it.
    /// What the seal of this request's hold covers (`None` when it was never held): the request,
    /// its target, the requester, when it was held, and a digest of everything the approver
    /// decides on (action, body, requester, user, creation, idempotency key, and the approval as
    /// held: reasons, privilege, plan, expiry, the requester's verification).
    pub(crate) fn held_as(&self) -> Option<crate::audit::seal::Decided> {
        use sha2::{Digest, Sha256};
        let approval = self.approval.as_ref()?;
        let mut asked = approval.clone();
        asked.decision = None;
        asked.hold_seal = None;
        let what = serde_json::json!({
            "action": self.action.as_str(), "body": self.body, "caller": self.caller, "user": self.user,
            "createdAt": crate::audit::rfc3339_millis(self.created_at),
            "idempotencyKey": self.idempotency_key, "approval": asked,
        });
        Some(crate::audit::seal::Decided {
            subject: self.id,
            target: approval.target_id,
            action: "hold",
            decider: self.caller.key(),
            at: approval.requested_at,
            extra: hex::encode(Sha256::digest(serde_json::to_vec(&what).expect("a request serializes"))),
        })
    }

    fn hold(&mut self, now: OffsetDateTime) {
        self.become_(State::PendingApproval, now);
        self.answered = None;
        self.result = None;
        self.last_error = None;
        self.claim = None;
    }

    /// Approved: queued again, to run as if just accepted.
    fn approve(&mut self, now: OffsetDateTime) {
        self.become_(State::Accepted, now);
        self.answered = None;
        self.result = None;
        self.queued_at = None;
    }

    /// Finished (`state` is final) with the answer a synchronous call would have given; the
    /// result is then due to the ticket, if it has one to go to.
    fn finish(&mut self, state: State, answered: Answered, result: serde_json::Value, now: OffsetDateTime) {
        assert!(state.is_final(), "{} is not final", state.as_str());
        self.become_(state, now);
        self.answered = Some(answered);
        self.result = Some(result);
        self.finished_at = Some(now);
        if self.write_back.target.is_some() {
            self.write_back.state = WriteBackState::Pending;
        }
    }

    /// Take the request for the worker holding `delivery`, until `now + hold`.
    fn claim_for(&mut self, delivery: &Delivery, now: OffsetDateTime, hold: time::Duration) {
        self.become_(State::Running, now);
        self.attempts += 1;
        self.started_at.get_or_insert(now);
        self.updated_at = now;
        self.claim = Some(Claim {
            message_id: delivery.message_id.clone(),
            dequeue_count: delivery.dequeue_count,
            at: now,
            until: now + hold,
        });
    }

    fn ticket(&self) -> Ticket {
        Ticket {
            system: self.source.system.clone(),
            id: self.source.ticket.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("request storage is unavailable: {0}")]
    Unavailable(String),
    #[error("request {0} was accepted under the same key with different content")]
    KeyReused(Uuid),
}

impl From<StorageError> for IntakeError {
    fn from(e: StorageError) -> Self {
        IntakeError::Unavailable(e.to_string())
    }
}

/// What a submission led to.
#[derive(Debug)]
pub enum Submitted {
    Accepted(RequestRecord),
    Duplicate(RequestRecord),
}

/// One delivery of a queue message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: Option<String>,
    pub dequeue_count: u32,
}

/// How an invocation ends: `Done` completes the message, `Retry` fails the invocation so the host
/// delivers the message again (and, after `maxDequeueCount`, to the poison queue).
#[derive(Debug, PartialEq, Eq)]
pub enum WorkOutcome {
    Done(String),
    Retry(String),
}

pub struct Intake {
    store: Arc<dyn RecordStore>,
    queue: Arc<dyn RequestQueue>,
    pub writeback: WriteBack,
    claim: time::Duration,
    /// How an outcome reads as the synchronous API's answer (the HTTP layer's table).
    answers: Arc<dyn crate::recovery::Answers>,
    /// `dev`: the in-process queue's receiving end, taken once by the pump.
    pub local: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>>>,
}

fn name(id: Uuid) -> String {
    format!("{id}.json")
}

fn encode(record: &RequestRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a record serializes")
}

fn decode(data: &[u8]) -> Result<RequestRecord, StorageError> {
    let mut record: RequestRecord = serde_json::from_slice(data)
        .map_err(|e| StorageError::Unavailable(format!("a request record is unreadable: {e}")))?;
    if record.answered.is_none()
        && let Some(result) = &record.result
    {
        record.answered = written_before_kinds(record.action, result);
    }
    Ok(record)
}

/// A record written before outcomes had a kind kept its status instead: the kind is read back
/// from its body (an error's code, else what the action gives).
fn written_before_kinds(action: Action, result: &Value) -> Option<Answered> {
    match result["error"]["code"].as_str() {
        Some(code) => Answered::try_from(code.to_owned()).ok(),
        None if action == Action::Tap => Some(Answered::Issued),
        None => Some(Answered::Reset),
    }
}

/// Test hook (`dev` builds only): `MFA_RECOVERY_CRASH_AT=<step>` aborts the process right after
/// that step was saved, the way a worker killed by the platform stops.
fn crash_point(step: &str) {
    #[cfg(feature = "dev")]
    if crate::config::crash_at().as_deref() == Some(step) {
        eprintln!("MFA_RECOVERY_CRASH_AT={step}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "dev"))]
    let _ = step;
}

impl Intake {
    pub fn new(
        store: Arc<dyn RecordStore>,
        queue: Arc<dyn RequestQueue>,
        writeback: WriteBack,
        claim_seconds: u32,
        answers: Arc<dyn crate::recovery::Answers>,
        local: Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>>,
    ) -> Intake {
        Intake {
            store,
            queue,
            writeback,
            claim: time::Duration::seconds(i64::from(claim_seconds)),
            answers,
            local: Mutex::new(local),
        }
    }

    /// Keep and queue a validated request, or find the one already kept under its key.
    ///
    /// # Errors
    /// Storage is down (nothing was queued), or the key was used for a different request.
    pub async fn submit(&self, submission: Submission, caller: CallerRecord) -> Result<Submitted, IntakeError> {
        let id = self.id_for(&submission.idempotency_key).await?;
        let now = submission::now();
        let write_back_target = None::<String>;
        let mut record = RequestRecord {
            id,
            idempotency_key: submission.idempotency_key,
            fingerprint: submission.fingerprint,
            action: submission.action,
            user: submission.user,
            body: submission.body,
            source: submission.source,
            caller,
            state: State::Accepted,
            created_at: now,
            updated_at: now,
            queued_at: None,
            attempts: 0,
            started_at: None,
            claim: None,
            progress: TapProgress::default(),
            last_error: None,
            answered: None,
            result: None,
            finished_at: None,
            write_back: WriteBackStatus {
                state: WriteBackState::None,
                target: write_back_target,
                attempts: 0,
                last_error: None,
            },
            approval: None,
            requested_by: submission.requested_by,
            awaiting_link: None,
            removals: None,
        };
        if submission.link.is_some() {
            record.state = State::AwaitingConfirmation;
        }
        record.write_back.target = self.writeback.target(&record).map(|t| t.as_str().to_owned());
        let (mut record, etag, fresh) = match self.store.create(&name(id), &encode(&record)).await {
            Ok(etag) => (record, etag, true),
            Err(StorageError::Conflict(_)) => {
                let stored = self
                    .store
                    .read(&name(id))
                    .await?
                    .ok_or_else(|| IntakeError::Unavailable("a record vanished".into()))?;
                let existing = decode(&stored.data)?;
                if existing.fingerprint != record.fingerprint {
                    return Err(IntakeError::KeyReused(id));
                }
                (existing, stored.etag, false)
            }
            Err(e) => return Err(e.into()),
        };
        if fresh {
            self.index_open(id, true).await;
        }
        // Queue it. A duplicate queues it again only when the first delivery kept it but never
        // marked it queued (it died in between) and is not simply still at it: the sender's later
        // retry mends the crash. A spare message is harmless (the worker acts once).
        let stranded = record.created_at < now - time::Duration::seconds(30);
        if record.state == State::Accepted && record.queued_at.is_none() && (fresh || stranded) {
            self.queue.send(id).await?;
            record.queued_at = Some(submission::now());
            if let Err(e) = self.store.replace(&name(id), &encode(&record), &etag).await {
                // Queued all the same; the mark only saves a re-queue on a later duplicate.
                tracing::debug!(error = %e, "the queued mark was not saved");
            }
        }
        Ok(if fresh {
            Submitted::Accepted(record)
        } else {
            Submitted::Duplicate(record)
        })
    }

    /// # Errors
    /// Storage is down.
    /// The request id of an idempotency key: a random id, kept under the key's digest the first
    /// time (`If-None-Match: *`), so every duplicate finds the same record while nobody can guess
    /// an id from a ticket number.
    async fn id_for(&self, key: &str) -> Result<Uuid, IntakeError> {
        let name = format!("keys/{}.json", hex::encode(Sha256::digest(key.as_bytes())));
        let fresh = Uuid::new_v4();
        match self
            .store
            .create(&name, &serde_json::to_vec(&json!({"id": fresh})).expect("json"))
            .await
        {
            Ok(_) => Ok(fresh),
            Err(StorageError::Conflict(_)) => {
                let stored = self
                    .store
                    .read(&name)
                    .await?
                    .ok_or_else(|| IntakeError::Unavailable("an idempotency key vanished".into()))?;
                serde_json::from_slice::<Value>(&stored.data)
                    .ok()
                    .and_then(|v| v["id"].as_str().and_then(|i| Uuid::parse_str(i).ok()))
                    .ok_or_else(|| IntakeError::Unavailable("an idempotency key record is unreadable".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<RequestRecord>, IntakeError> {
        match self.store.read(&name(id)).await? {
            None => Ok(None),
            Some(v) => Ok(Some(decode(&v.data)?)),
        }
    }

    /// The `recovery-worker` function: claim the request, carry it out, save the result, write it
    /// back.
    pub async fn work(&self, context: &TapContext<'_>, delivery: &Delivery, id: Uuid) -> WorkOutcome {
        let (record, etag) = match self.claim(delivery, id).await {
            Ok(Claimed::Go(record, etag)) => (record, etag),
            Ok(Claimed::Final(record, etag)) => return self.write_back(context, record, etag).await,
            Ok(Claimed::Expired(record, etag)) if record.state == State::AwaitingConfirmation => {
                return self.link_ended(context, record, etag, link::Ended::Expired).await;
            }
            Ok(Claimed::Expired(record, etag)) => return self.expire(context, record, etag).await,
            Ok(Claimed::Skip(why)) => return WorkOutcome::Done(why),
            Err(e) => return WorkOutcome::Retry(format!("request storage: {e}")),
        };
        crash_point("after_claim");
        tracing::info!(request_id = %id, attempt = record.attempts, action = record.action.as_str(), "running a queued request");
        let journal = RecordJournal {
            store: self.store.clone(),
            progress: record.progress.clone(),
            accepted_at: record.created_at,
            id,
            approval: record
                .approval
                .clone()
                .filter(|a| a.decision.as_ref().is_some_and(|d| d.approved)),
            held_as: record.held_as(),
            removals: record.removals.clone(),
            current: Mutex::new((record.clone(), etag)),
        };
        let ran = run(context, self.answers.as_ref(), &record, &journal).await;
        let (mut record, etag) = journal.current.into_inner();
        let now = submission::now();
        record.updated_at = now;
        record.claim = None;
        if ran.held && record.approval.is_some() {
            return self.held(context, record, etag).await;
        }
        if ran.target_protected {
            self.alert_privileged(context, &record, "refused", None).await;
        }
        if ran.tampered {
            let message = ran.result["error"]["message"].as_str().unwrap_or_default().to_owned();
            self.alert_tampered(context, record.id, &record.user, &record.caller, &message)
                .await;
        }
        if let Some(reason) = ran.retry {
            record.last_error = Some(reason.clone());
            record.answered = Some(ran.answered);
            record.result = Some(ran.result);
            return match self.store.replace(&name(id), &encode(&record), &etag).await {
                Ok(_) => WorkOutcome::Retry(reason),
                Err(e) => WorkOutcome::Retry(format!("{reason}; and the record was not saved: {e}")),
            };
        }
        record.finish(ran.state, ran.answered, ran.result, now);
        let etag = match self.store.replace(&name(id), &encode(&record), &etag).await {
            Ok(etag) => etag,
            Err(StorageError::Conflict(_)) => {
                return WorkOutcome::Done(format!("request {id} was taken over by another invocation"));
            }
            Err(e) => return WorkOutcome::Retry(format!("the result could not be saved: {e}")),
        };
        tracing::info!(request_id = %id, state = record.state.as_str(), "queued request finished");
        self.index_open(id, false).await;
        self.write_back(context, record, etag).await
    }

    async fn claim(&self, delivery: &Delivery, id: Uuid) -> Result<Claimed, StorageError> {
        let decided = update_versioned(&*self.store, &name(id), 5, |current: Option<RequestRecord>| {
            let Some(mut record) = current else {
                return Ok::<_, std::convert::Infallible>(Update::Keep(ClaimDecision::Skip(format!(
                    "no request {id}: nothing to do"
                ))));
            };
            let now = submission::now();
            Ok(match record.claimable(delivery, now) {
                Some(decision) => Update::Keep(decision(record)),
                None => {
                    record.claim_for(delivery, now, self.claim);
                    Update::Write(record.clone(), ClaimDecision::Go(record))
                }
            })
        })
        .await;
        let (decision, etag) = match decided {
            Ok(done) => done,
            Err(UpdateError::Storage(StorageError::Conflict(_))) => {
                return Ok(Claimed::Skip(format!(
                    "request {id} is contended; another invocation has it"
                )));
            }
            Err(UpdateError::Storage(e)) => return Err(e),
            Err(UpdateError::Refused(never)) => match never {},
        };
        let etag = etag.unwrap_or_default();
        Ok(match decision {
            ClaimDecision::Go(r) => Claimed::Go(r, etag),
            ClaimDecision::Final(r) => Claimed::Final(r, etag),
            ClaimDecision::Expired(r) => Claimed::Expired(r, etag),
            ClaimDecision::Skip(why) => Claimed::Skip(why),
        })
    }

    /// Write a finished request's result back, if it has somewhere to go and has not gone yet.
    async fn write_back(&self, context: &TapContext<'_>, mut record: RequestRecord, etag: String) -> WorkOutcome {
        if record.write_back.state != WriteBackState::Pending {
            return WorkOutcome::Done(format!("request {} is {}", record.id, record.state.as_str()));
        }
        let Some(target) = self.writeback.target(&record) else {
            return WorkOutcome::Done("no write-back target".into());
        };
        let sent = self.writeback.send(target, &record, self.answers.as_ref()).await;
        record.write_back.attempts += 1;
        record.updated_at = submission::now();
        let outcome = match &sent {
            Ok(()) => {
                record.write_back.state = WriteBackState::Done;
                record.write_back.last_error = None;
                WorkOutcome::Done(format!(
                    "request {} is {}; written back to {}",
                    record.id,
                    record.state.as_str(),
                    target.as_str()
                ))
            }
            Err(e) => {
                record.write_back.last_error = Some(e.to_string());
                WorkOutcome::Retry(format!("the write-back to {} failed: {e}", target.as_str()))
            }
        };
        if let Err(e) = self.store.replace(&name(record.id), &encode(&record), &etag).await {
            tracing::warn!(error = %e, "the write-back state was not saved");
        }
        let event_outcome = match &sent {
            Ok(()) => Outcome::Succeeded,
            Err(_) => Outcome::Failed("write_back_failed".into()),
        };
        audit(
            context,
            &record,
            AuditAction::RequestWriteback,
            event_outcome,
            json!({"target": target.as_str(), "attempt": record.write_back.attempts}),
        )
        .await;
        outcome
    }

    /// The `recovery-poison` function: a request whose message exhausted its retries ends `failed`
    /// (an undelivered pass is deleted first), is audited, and is written back.
    pub async fn poison(&self, context: &TapContext<'_>, id: Uuid) -> WorkOutcome {
        let stored = match self.store.read(&name(id)).await {
            Ok(Some(s)) => s,
            Ok(None) => return WorkOutcome::Done(format!("no request {id}: nothing to close")),
            Err(e) => return WorkOutcome::Retry(format!("request storage: {e}")),
        };
        let record = match decode(&stored.data) {
            Ok(r) => r,
            Err(e) => return WorkOutcome::Done(e.to_string()),
        };
        if record.state.is_final() {
            return self.give_up_write_back(context, record, stored.etag).await;
        }
        if let Some(busy) = still_running(&record, submission::now()) {
            return WorkOutcome::Done(busy);
        }
        // A pass created and never handed to a provider must not stay usable (a Graph call:
        // made before the record is read for its write, never between the two).
        let mut cleanup = "";
        if let Some(method) = &record.progress.method_id
            && !record.progress.delivering
            && record.progress.delivered.is_none()
        {
            cleanup = if context.discard_undelivered(&record.user, method).await {
                " The undelivered pass was deleted."
            } else {
                " A pass may exist for the user: delete it in the admin center."
            };
        }
        let answers = &self.answers;
        let closed = update_versioned(&*self.store, &name(id), 5, |current: Option<RequestRecord>| {
            let Some(mut record) = current else {
                return Ok(Update::Keep(Err(format!("no request {id}: nothing to close"))));
            };
            let now = submission::now();
            if record.state.is_final() {
                return Ok(Update::Keep(Err(format!(
                    "request {id} is already {}",
                    record.state.as_str()
                ))));
            }
            if let Some(busy) = still_running(&record, now) {
                return Ok(Update::Keep(Err(busy)));
            }
            let last = record.last_error.clone().unwrap_or_else(|| "no detail".into());
            let message = format!(
                "the request failed {} times and will not be tried again; the last error: {last}.{cleanup}",
                record.attempts
            );
            let (answered, result) = rendered(
                answers.as_ref(),
                Answer::Error(&RecoveryError::failed(Fault::RetriesExhausted, message)),
            );
            record.finish(State::Failed, answered, result, now);
            record.claim = None;
            Ok::<_, std::convert::Infallible>(Update::Write(record.clone(), Ok((record, last))))
        })
        .await;
        let ((record, last), etag) = match closed {
            Ok((Ok(closed), Some(etag))) => (closed, etag),
            Ok((Err(done), _)) => return WorkOutcome::Done(done),
            Ok((Ok(_), None)) => return WorkOutcome::Retry(format!("request {id}: no version after the close")),
            Err(UpdateError::Storage(StorageError::Conflict(_))) => {
                return WorkOutcome::Retry(format!("request {id} is contended"));
            }
            Err(UpdateError::Storage(e)) => return WorkOutcome::Retry(format!("request storage: {e}")),
            Err(UpdateError::Refused(never)) => match never {},
        };
        self.index_open(id, false).await;
        audit(
            context,
            &record,
            AuditAction::RequestClose,
            Outcome::Failed("retries_exhausted".into()),
            json!({"attempts": record.attempts, "lastError": last}),
        )
        .await;
        match self.write_back(context, record, etag).await {
            WorkOutcome::Retry(why) => WorkOutcome::Done(format!("request {id} closed as failed; {why}")),
            done => done,
        }
    }

    /// A final request whose write-back exhausted the retries: one last try, then it is marked
    /// failed.
    async fn give_up_write_back(&self, context: &TapContext<'_>, record: RequestRecord, etag: String) -> WorkOutcome {
        let id = record.id;
        if record.write_back.state != WriteBackState::Pending {
            return WorkOutcome::Done(format!("request {id} is already {}", record.state.as_str()));
        }
        let why = match self.write_back(context, record, etag).await {
            WorkOutcome::Retry(why) => why,
            outcome => return outcome,
        };
        let marked = update(&*self.store, &name(id), 5, |current: Option<RequestRecord>| {
            Ok::<_, std::convert::Infallible>(match current {
                Some(mut r) if r.write_back.state == WriteBackState::Pending => {
                    r.write_back.state = WriteBackState::Failed;
                    Update::Write(r, ())
                }
                _ => Update::Keep(()),
            })
        })
        .await;
        if let Err(e) = marked {
            tracing::warn!(request_id = %id, error = ?e, "a given-up write-back could not be marked failed");
        }
        WorkOutcome::Done(format!("request {id}: write-back given up: {why}"))
    }
}

/// Why a request another invocation still holds is not closed here, if it is.
fn still_running(record: &RequestRecord, now: OffsetDateTime) -> Option<String> {
    record.claim.as_ref().is_some_and(|c| c.until > now).then(|| {
        format!(
            "request {} is being run by another invocation; it will finish it",
            record.id
        )
    })
}

/// What a claim decided, before the version is known.
enum ClaimDecision {
    Go(RequestRecord),
    Final(RequestRecord),
    Expired(RequestRecord),
    Skip(String),
}

enum Claimed {
    Go(RequestRecord, String),
    Final(RequestRecord, String),
    /// Waiting for an approver, and too late now.
    Expired(RequestRecord, String),
    Skip(String),
}

async fn audit(
    context: &TapContext<'_>,
    record: &RequestRecord,
    action: AuditAction,
    outcome: Outcome,
    details: Value,
) {
    let event = AuditEvent {
        caller: record.caller.clone(),
        action,
        target: Some(Target {
            object_id: None,
            upn: Some(record.user.clone()),
        }),
        ticket: Some(record.ticket()),
        request_id: Some(record.id),
        phase: Phase::Outcome,
        outcome: Some(outcome),
        details,
    };
    if let Err(e) = context.audit.record(event).await {
        tracing::error!(error = %e, "an intake audit record could not be written");
    }
}

/// What one attempt came to.
struct Ran {
    state: State,
    answered: Answered,
    result: Value,
    /// Set when the attempt should be repeated (a fault another try may get past).
    retry: Option<String>,
    /// The recovery waits for a second approver (`approval_required`).
    held: bool,
    /// A privileged target was refused (`target_protected`): the SOC hears of it.
    target_protected: bool,
    /// A stored decision was not the service's (`state_tampered`): the SOC hears of it.
    tampered: bool,
}

/// An outcome as a record keeps it: its kind and the body the synchronous function answers.
fn rendered(answers: &dyn Answers, answer: Answer<'_>) -> (Answered, Value) {
    (answer.answered(), answers.render(answer))
}

fn from_error(answers: &dyn Answers, e: &RecoveryError) -> Ran {
    let (answered, result) = rendered(answers, Answer::Error(e));
    Ran {
        state: if e.is_refusal() { State::Refused } else { State::Failed },
        answered,
        result,
        retry: e.worth_retry().then(|| format!("{} ({})", e.message, e.code)),
        held: e.code == crate::vocab::ErrorCode::Refused(crate::vocab::Refusal::ApprovalRequired),
        target_protected: e.code == crate::vocab::ErrorCode::Refused(crate::vocab::Refusal::TargetProtected),
        tampered: e.code == crate::vocab::ErrorCode::Refused(crate::vocab::Refusal::StateTampered),
    }
}

async fn run(context: &TapContext<'_>, answers: &dyn Answers, record: &RequestRecord, journal: &RecordJournal) -> Ran {
    let body = record.body.to_string();
    match record.action {
        Action::Tap => {
            let request = match TapRequest::parse(&record.user, body.as_bytes()) {
                Ok(r) => r,
                Err(e) => return from_error(answers, &e),
            };
            match context.issue_with(&record.caller, request, journal).await {
                Ok(mut issued) => {
                    // A queued request never returns the pass, whatever TAP_RETURN_TO_CALLER says.
                    issued.pass = None;
                    let (answered, result) = rendered(answers, Answer::Issued(&issued));
                    Ran {
                        state: State::Succeeded,
                        answered,
                        result,
                        retry: None,
                        held: false,
                        target_protected: false,
                        tampered: false,
                    }
                }
                Err(e) => from_error(answers, &e),
            }
        }
        Action::Reset | Action::ResetTap => {
            let request = match ResetRequest::parse(&record.user, body.as_bytes()) {
                Ok(r) => r,
                Err(e) => return from_error(answers, &e),
            };
            match context.reset_with(&record.caller, request, true, journal).await {
                Ok(r) => {
                    let (answered, result) = rendered(answers, Answer::Reset(&r));
                    if r.complete() {
                        return Ran {
                            state: State::Succeeded,
                            answered,
                            result,
                            retry: None,
                            held: false,
                            target_protected: false,
                            tampered: false,
                        };
                    }
                    // A resumed reset never removes again (its pass is out): what failed is final.
                    let again = (!r.resumed && !r.failed.is_empty())
                        || r.tap_error.as_ref().is_some_and(RecoveryError::worth_retry);
                    Ran {
                        state: State::Failed,
                        answered,
                        result,
                        retry: again.then(|| format!("the reset is incomplete ({})", Fault::ResetIncomplete.as_str())),
                        held: false,
                        target_protected: false,
                        tampered: false,
                    }
                }
                Err(e) => from_error(answers, &e),
            }
        }
    }
}

/// The request record as the recovery procedures' journal: each step is a conditional write.
struct RecordJournal {
    store: Arc<dyn RecordStore>,
    id: Uuid,
    progress: TapProgress,
    accepted_at: OffsetDateTime,
    /// The approval the request was given, if it was.
    approval: Option<crate::recovery::approval::Approval>,
    /// What the seal of its hold covers, from the request as it was read.
    held_as: Option<crate::audit::seal::Decided>,
    /// What an earlier attempt's removals did.
    removals: Option<crate::recovery::RemovalsDone>,
    current: Mutex<(RequestRecord, String)>,
}

impl RecordJournal {
    /// Write the record as it is now, at the version this worker holds.
    async fn write(&self, current: &mut (RequestRecord, String)) -> Result<(), RecoveryError> {
        let (record, etag) = current;
        record.updated_at = submission::now();
        match self.store.replace(&name(self.id), &encode(record), etag).await {
            Ok(new) => {
                *etag = new;
                Ok(())
            }
            Err(StorageError::Conflict(_)) => Err(RecoveryError::failed(
                Fault::ClaimLost,
                "another invocation took the request over; this one stopped",
            )),
            Err(e) => {
                tracing::error!(error = %e, "a request step could not be saved");
                Err(RecoveryError::failed(
                    Fault::StorageUnavailable,
                    "request storage is unavailable; the request will be tried again",
                ))
            }
        }
    }
}

#[async_trait::async_trait]
impl Journal for RecordJournal {
    fn request_id(&self) -> Uuid {
        self.id
    }
    fn accepted_at(&self) -> OffsetDateTime {
        self.accepted_at
    }
    fn progress(&self) -> TapProgress {
        self.progress.clone()
    }
    fn approval(&self) -> Option<crate::recovery::approval::Approval> {
        self.approval.clone()
    }
    fn held_as(&self) -> Option<crate::audit::seal::Decided> {
        self.held_as.clone()
    }
    async fn save_removals(&self, done: &crate::recovery::RemovalsDone) -> Result<(), RecoveryError> {
        let mut current = self.current.lock().await;
        current.0.removals = Some(done.clone());
        self.write(&mut current).await
    }
    fn removals(&self) -> Option<crate::recovery::RemovalsDone> {
        self.removals.clone()
    }
    async fn hold(&self, approval: crate::recovery::approval::Approval) {
        // Saved with the attempt's result (`Intake::held`).
        self.current.lock().await.0.approval = Some(approval);
    }

    async fn save(&self, progress: &TapProgress) -> Result<(), RecoveryError> {
        let mut current = self.current.lock().await;
        if progress.method_id.is_some() && current.0.progress.method_id.is_none() {
            // Graph created the pass; its id is not saved yet.
            crash_point("tap_created_unsaved");
        }
        current.0.progress = progress.clone();
        self.write(&mut current).await?;
        drop(current);
        if progress.delivered.is_some() {
            crash_point("after_delivery");
        } else if progress.delivering {
            crash_point("while_delivering");
        } else if progress.method_id.is_some() {
            crash_point("after_tap_created");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 6] = [
        State::Accepted,
        State::PendingApproval,
        State::Running,
        State::Succeeded,
        State::Refused,
        State::Failed,
    ];

    /// The lifecycle, whole: every pair of states, allowed or not.
    #[test]
    fn the_lifecycle_allows_exactly_these_moves() {
        let allowed = [
            ("accepted", "running"),
            ("accepted", "pending_approval"),
            ("accepted", "failed"),
            ("running", "running"),
            ("running", "succeeded"),
            ("running", "refused"),
            ("running", "failed"),
            ("running", "pending_approval"),
            ("pending_approval", "accepted"),
            ("pending_approval", "refused"),
            ("pending_approval", "failed"),
        ];
        for from in ALL {
            for to in ALL {
                let expected = allowed.contains(&(from.as_str(), to.as_str()));
                assert_eq!(from.may_become(to), expected, "{} -> {}", from.as_str(), to.as_str());
            }
            if from.is_final() {
                assert!(ALL.iter().all(|to| !from.may_become(*to)), "{} is final", from.as_str());
            }
        }
    }

    fn record(state: &str, write_back_to: Option<&str>) -> RequestRecord {
        serde_json::from_value(json!({
            "id": "c0000000-0000-4000-8000-000000000001", "idempotencyKey": "k", "fingerprint": "f",
            "action": "tap", "user": "adele.vance@contoso.test",
            "body": {}, "state": state, "createdAt": "2026-11-28T10:00:00Z", "updatedAt": "2026-11-28T10:01:00Z",
            "attempts": 1, "writeBack": {"state": "none", "target": write_back_to},
            "caller": {"via": "token"}, "lastError": "Graph answered 503", "answered": "graph_unavailable", "result": {"error": {}},
            "source": {"system": "servicenow", "ticket": "INC0010001"},
        }))
        .unwrap()
    }

    #[test]
    fn a_record_written_with_a_status_reads_back_with_its_kind() {
        let mut old = serde_json::to_value(record("succeeded", None)).unwrap();
        old.as_object_mut().unwrap().remove("answered");
        old["status"] = json!(201);
        old["result"] = json!({"requestId": "x", "tapMethodId": "m"});
        let r = decode(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(r.answered, Some(Answered::Issued));
        old["status"] = json!(403);
        old["result"] = json!({"error": {"code": "target_protected", "message": "m"}});
        let r = decode(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(
            r.answered,
            Some(Answered::Error(crate::vocab::ErrorCode::Refused(
                crate::vocab::Refusal::TargetProtected
            )))
        );
    }

    #[test]
    fn a_held_request_has_no_result_and_an_approved_one_runs_again() {
        let now = OffsetDateTime::now_utc();
        let mut r = record("running", None);
        r.hold(now);
        assert_eq!(r.state, State::PendingApproval);
        assert!(r.answered.is_none() && r.result.is_none() && r.last_error.is_none() && r.claim.is_none());
        r.approve(now);
        assert_eq!(r.state, State::Accepted);
        assert!(r.answered.is_none() && r.result.is_none() && r.queued_at.is_none());
    }

    #[test]
    fn a_finished_request_keeps_its_answer_and_is_due_to_its_ticket() {
        let now = OffsetDateTime::now_utc();
        let mut r = record("pending_approval", Some("servicenow"));
        let answered = Answered::Error(crate::vocab::ErrorCode::Refused(crate::vocab::Refusal::ApprovalDenied));
        r.finish(
            State::Refused,
            answered,
            json!({"error": {"code": "approval_denied"}}),
            now,
        );
        assert_eq!((r.state, r.answered), (State::Refused, Some(answered)));
        assert_eq!(r.finished_at, Some(now));
        assert_eq!(r.write_back.state, WriteBackState::Pending);
        let mut quiet = record("running", None);
        quiet.finish(State::Succeeded, Answered::Issued, json!({}), now);
        assert_eq!(quiet.write_back.state, WriteBackState::None, "no ticket to write to");
    }

    #[test]
    #[should_panic(expected = "may not become")]
    fn a_final_request_cannot_be_held() {
        record("succeeded", None).hold(OffsetDateTime::now_utc());
    }
}
