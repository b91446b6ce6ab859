//! The audit trail: one record per event, append-only, hash-chained.
//!
//! Every record carries the previous record's hash and its own, so an edited, removed or
//! reordered record breaks its chain and `mfa-recovery audit verify` finds it. Each process
//! writes its own chain (`{yyyy}/{mm}/{dd}/{instance}.jsonl`, a new one each day), appending one
//! JSON line per record with a conditional append (the expected offset), so several Function
//! instances never interleave or tear lines. Records hold ids, outcomes and masked addresses;
//! never a pass, a secret, a token or a full phone number.
//!
//! A chain alone cannot show that its last records, or the whole chain, were deleted, or that it
//! was rewritten with fresh hashes. So every record is also **anchored**: a line `{chain, seq,
//! hash}` (with `kid` and `mac` when signed: `seal`) appended to its writer's anchor log for the
//! hour (`anchors/{yyyy}/{mm}/{dd}/{hh}-{instance}.jsonl`; an hour because an append blob takes at
//! most 50,000 appends, the writer's random id so nobody can create it first). `audit verify` then
//! requires every anchored record to be in its chain with the same hash (a deleted tail, a deleted
//! chain or a rewrite breaks that), every record but an unsigned chain's last (a writer may stop
//! between the two appends) to be anchored, and every MAC to verify; it fails on an empty trail
//! unless told the trail may be empty. Deleting the anchors as well needs the same storage rights
//! the container's immutability policy takes away.
//!
//! Storage is an append blob container (production, `crate::storage::chains::BlobStorage`) or a directory with
//! the same layout (`dev`, `crate::storage::chains::FileStorage`).

pub mod export;
pub mod refusals;
pub mod seal;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::storage::StorageError;
use crate::storage::chains::AuditStorage;

/// `prev_hash` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Before acting, or after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Intent,
    Outcome,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "code")]
pub enum Outcome {
    Succeeded,
    /// Refused by a rule; the code is the documented error code.
    Refused(String),
    /// Failed on a fault; the code says which.
    Failed(String),
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded => None,
            Outcome::Refused(c) | Outcome::Failed(c) => Some(c),
        }
    }
}

use crate::vocab::CallerRecord;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub system: String,
    pub id: String,
}

/// A record's typed details (a recovery's `recovery::details::Details`, a view), serialized here,
/// at the trail's boundary, once.
pub fn details(details: &impl Serialize) -> Value {
    serde_json::to_value(details).unwrap_or_default()
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A Temporary Access Pass (`POST /api/users/{user}/tap`, or a queued `tap`).
    TapIssue,
    /// A reset of MFA methods (`POST /api/users/{user}/mfa/reset`, or a queued reset).
    MfaReset,
    /// A request submitted to the intake (`POST /api/requests`).
    RequestSubmit,
    /// A request's status read by someone it does not belong to (refused).
    RequestRead,
    /// A request's result written back to its ticket or callback.
    RequestWriteback,
    /// A request closed after its retries ran out.
    RequestClose,
    /// The audit trail read (`GET /api/audit`).
    AuditQuery,
    /// A compliance sweep run.
    SweepRun,
    /// A sweep report read.
    SweepRead,
    /// A verification code sent (`POST /api/users/{user}/verifications`).
    VerificationSend,
    /// A verification code checked (`POST /api/verifications/{id}/confirm`).
    VerificationConfirm,
    /// A request held for a second approver, approved, denied or expired
    /// (`POST /api/requests/{id}/approve` and `/deny`).
    RequestApproval,
    /// A user looked up before a recovery (`GET /api/users/{user}`, the console).
    UserLookup,
    /// A writer left a chain whose tail it did not write and began a new segment.
    AuditSegment,
    /// Users searched by name before a recovery (`GET /api/users?search=`, the console).
    UserSearch,
    /// The doctor's report read (`GET /api/doctor`); recorded only as a refusal.
    DoctorRead,
    /// A user's recoveries blocked after "this is not me", or the block lifted by an approver
    /// (`POST /api/users/{user}/recovery-block/lift`).
    RecoveryBlock,
    /// A notice from the outbox (a pass's, a reset's, an approver's email) sent, or failed after
    /// its last try.
    NoticeSend,
    /// The export of the trail to Log Analytics started failing, or works again.
    AuditExport,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::TapIssue,
        Action::MfaReset,
        Action::RequestSubmit,
        Action::RequestRead,
        Action::RequestWriteback,
        Action::RequestClose,
        Action::AuditQuery,
        Action::SweepRun,
        Action::SweepRead,
        Action::VerificationSend,
        Action::VerificationConfirm,
        Action::RequestApproval,
        Action::UserLookup,
        Action::AuditSegment,
        Action::UserSearch,
        Action::DoctorRead,
        Action::RecoveryBlock,
        Action::NoticeSend,
        Action::AuditExport,
    ];

    /// The action as records store it (and `GET /api/audit?action=` filters on it).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::TapIssue => "tap.issue",
            Action::MfaReset => "mfa.reset",
            Action::RequestSubmit => "request.submit",
            Action::RequestRead => "request.read",
            Action::RequestWriteback => "request.writeback",
            Action::RequestClose => "request.close",
            Action::AuditQuery => "audit.query",
            Action::SweepRun => "sweep.run",
            Action::SweepRead => "sweep.read",
            Action::VerificationSend => "verification.send",
            Action::VerificationConfirm => "verification.confirm",
            Action::RequestApproval => "request.approval",
            Action::UserLookup => "user.lookup",
            Action::AuditSegment => "audit.segment",
            Action::UserSearch => "user.search",
            Action::DoctorRead => "doctor.read",
            Action::RecoveryBlock => "recovery.block",
            Action::NoticeSend => "notice.send",
            Action::AuditExport => "audit.export",
        }
    }
}

/// What a caller of the trail supplies; the trail adds id, time, chain and hashes.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub caller: CallerRecord,
    pub action: Action,
    pub target: Option<Target>,
    pub ticket: Option<Ticket>,
    pub request_id: Option<Uuid>,
    pub phase: Phase,
    pub outcome: Option<Outcome>,
    /// Method types and ids, TAP method id, lifetime, channel, masked address, provider message id.
    pub details: Value,
}

/// One stored record: a line of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub id: Uuid,
    /// UTC, RFC 3339 with milliseconds.
    pub time: String,
    /// The chain (writer instance and day) and the record's place in it, from 1.
    pub chain: String,
    pub seq: u64,
    pub caller: CallerRecord,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    pub phase: Phase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Time, then chain and place in it: records of one chain keep their order even within a
    /// millisecond, and the order is the same on every read.
    pub(crate) fn order_key(&self) -> (&str, &str, u64) {
        (self.time.as_str(), self.chain.as_str(), self.seq)
    }

    /// SHA-256 (hex) of the record's JSON with `hash` empty. Field order is the struct's and
    /// `details` keys are sorted, so the bytes are the same wherever the record is re-read.
    pub(crate) fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).expect("records serialize");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// Why the trail could not record or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit storage: {0}")]
    Storage(#[from] StorageError),
    /// The audit key (`AUDIT_KEY_SECRET`) could not be read: nothing is written unsigned.
    #[error("{0}")]
    Key(String),
}

struct ChainState {
    day: String,
    /// Segments begun today after a chain's tail was found not where this writer left it.
    segment: u32,
    name: String,
    seq: u64,
    offset: u64,
    last_hash: String,
    /// The MAC of this chain's last anchor (empty before the first, or unsigned).
    last_mac: String,
}

/// The trail: appends records to this process's chain and reads every chain.
pub struct AuditTrail {
    storage: Arc<dyn AuditStorage>,
    /// The key that signs anchors and decisions (`AUDIT_KEY_SECRET`); `None`: unsigned (no Key
    /// Vault configured, as in a bare `dev` or a unit test).
    key: Option<seal::AuditKey>,
    instance: String,
    chain: Mutex<Option<ChainState>>,
    /// Records asked for and not written yet: whoever holds `chain` next writes them all.
    waiting: std::sync::Mutex<Vec<Waiting>>,
}

/// A record waiting for the writer, and where its outcome goes.
struct Waiting {
    event: AuditEvent,
    done: tokio::sync::oneshot::Sender<Result<AuditRecord, AuditError>>,
}

/// The most records one append carries (a line is about 1 KB; an append takes up to 4 MiB).
const GROUP_MAX: usize = 256;

/// A group being written. If the writer stops before it has answered them (its caller went
/// away, it panicked), each record still waiting is told it may not have been kept, so nobody
/// waits for it forever and nobody acts on it.
struct Group(Vec<Waiting>);

impl Drop for Group {
    fn drop(&mut self) {
        for w in self.0.drain(..) {
            let _ = w.done.send(Err(stopped()));
        }
    }
}

/// What a record whose writer stopped before answering gets.
fn stopped() -> AuditError {
    AuditError::Storage(StorageError::Unavailable(
        "the audit writer stopped before this record was confirmed; it may not have been kept".into(),
    ))
}

/// The same failure for each record of a group that failed together.
fn each(e: &AuditError) -> AuditError {
    match e {
        AuditError::Storage(StorageError::Conflict(c)) => AuditError::Storage(StorageError::Conflict(c.clone())),
        other => AuditError::Storage(StorageError::Unavailable(other.to_string())),
    }
}

fn day_of(t: OffsetDateTime) -> String {
    day_path(t.date())
}

/// `yyyy/mm/dd`, as chains and anchor logs are named.
fn day_path(day: time::Date) -> String {
    format!("{:04}/{:02}/{:02}", day.year(), u8::from(day.month()), day.day())
}

/// Every calendar day from `from`'s to `to`'s. The calendar's last day (9999-12-31) has no next
/// day: the walk stops there, it never panics.
fn days(from: OffsetDateTime, to: OffsetDateTime) -> impl Iterator<Item = time::Date> {
    let last = to.date();
    std::iter::successors(Some(from.date()), |d| d.next_day()).take_while(move |d| *d <= last)
}

/// One line of the anchor log: a record's place and hash, outside its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Anchor {
    chain: String,
    seq: u64,
    hash: String,
    /// The audit key's version that made `mac` (absent on anchors written before signing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    /// HMAC over chain, seq, hash and the chain's previous anchor's MAC (`seal::anchor_parts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

/// Anchors by chain, then by sequence number: the hash each record had when it was written, and
/// its MAC when signed.
type Anchored = std::collections::BTreeMap<String, std::collections::BTreeMap<u64, Anchor>>;

fn mismatch_at(chain: &str, line: u64, record_id: Option<Uuid>, reason: String) -> Mismatch {
    Mismatch {
        chain: chain.to_owned(),
        line,
        record_id,
        reason,
    }
}

/// The anchor log of an hour for one writer: `anchors/yyyy/mm/dd/hh-{instance}.jsonl`. One log an
/// hour, because an append blob takes at most 50,000 appends; one per writer, with the writer's
/// random id in its name, so nobody can create (or fill) a log ahead of the writer to stop it.
fn anchor_log(t: OffsetDateTime, instance: &str) -> String {
    format!("anchors/{}/{:02}-{instance}.jsonl", day_of(t), t.hour())
}

/// UTC, RFC 3339, always with three decimals (`2026-11-28T09:14:03.120Z`): fixed width, so the
/// text sorts in time order.
pub(crate) fn rfc3339_millis(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(&fmt).expect("formattable")
}

impl AuditTrail {
    pub fn new(storage: Arc<dyn AuditStorage>) -> AuditTrail {
        // One chain per process: a fresh id each start, so a restarted instance never appends
        // to a chain whose tail it does not know.
        let instance = Uuid::new_v4().simple().to_string();
        AuditTrail {
            storage,
            key: None,
            instance,
            chain: Mutex::new(None),
            waiting: std::sync::Mutex::default(),
        }
    }

    /// Sign anchors and decisions with `key` (and check them with it).
    #[must_use]
    pub fn with_key(mut self, key: seal::AuditKey) -> AuditTrail {
        self.key = Some(key);
        self
    }

    /// The key, when the trail is signed.
    pub fn key(&self) -> Option<&seal::AuditKey> {
        self.key.as_ref()
    }

    /// Append one record. The record is stored when this returns `Ok`.
    ///
    /// Only this writer appends to its chain, so a chain whose end is not where this writer left
    /// it (a foreign byte appended, a damaged tail) is never appended to again: the writer
    /// begins a new segment (`{instance}-{n}`), whose first record (`audit.segment`) names the
    /// chain left and why, and `audit verify` reports the foreign bytes in the old one. One bad
    /// line never stops recoveries.
    ///
    /// # Errors
    /// The storage refused or failed the append; nothing was recorded, so the caller must not act.
    pub async fn record(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        // Group commit: records asked for at the same moment go out as one append to the chain and
        // one to the anchor log, in the order they were asked, each still a line of its own with
        // its own hash and anchor. Whoever holds the chain writes every record waiting, so
        // concurrent callers wait for one write, not for each other's.
        let (done, mut outcome) = tokio::sync::oneshot::channel();
        self.waiting.lock().expect("waiting lock").push(Waiting { event, done });
        let mut guard = self.chain.lock().await;
        loop {
            // The writer before us may have written ours, or stopped before it could say.
            match outcome.try_recv() {
                Ok(written) => return written,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return Err(stopped()),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            let mut group = Group(std::mem::take(&mut *self.waiting.lock().expect("waiting lock")));
            if group.0.len() > GROUP_MAX {
                // The rest wait for the next write, first in line.
                let rest = group.0.split_off(GROUP_MAX);
                let mut waiting = self.waiting.lock().expect("waiting lock");
                let later = std::mem::replace(&mut *waiting, rest);
                waiting.extend(later);
            }
            if group.0.is_empty() {
                // Ours is neither waiting nor answered: never spin on nothing.
                return Err(stopped());
            }
            let events: Vec<AuditEvent> = group.0.iter().map(|w| w.event.clone()).collect();
            match self.write_group(&mut guard, events).await {
                Ok(records) => {
                    for (w, r) in group.0.drain(..).zip(records) {
                        let _ = w.done.send(Ok(r));
                    }
                }
                Err(e) => {
                    for w in group.0.drain(..) {
                        let _ = w.done.send(Err(each(&e)));
                    }
                }
            }
        }
    }

    /// Append `events` to this writer's chain. A chain whose end is not where this writer left it
    /// is never appended to again: a new segment begins with an `audit.segment` record.
    async fn write_group(
        &self,
        guard: &mut Option<ChainState>,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        match self.append(guard, events.clone()).await {
            Err(AuditError::Storage(StorageError::Conflict(_))) => {
                let left = guard.as_ref().map(|c| c.name.clone()).unwrap_or_default();
                let offset = guard.as_ref().map_or(0, |c| c.offset);
                tracing::error!(chain = %left, offset, "the audit chain's tail is not where this writer left it (foreign bytes?); continuing in a new segment");
                let day = day_of(OffsetDateTime::now_utc());
                let mut segment = guard.as_ref().filter(|c| c.day == day).map_or(0, |c| c.segment);
                // A segment's name someone else created first is skipped too.
                let mut tries = 0;
                loop {
                    segment += 1;
                    tries += 1;
                    match self.begin(guard, day.clone(), segment).await {
                        Err(AuditError::Storage(StorageError::Conflict(_))) if tries < 16 => continue,
                        other => break other?,
                    }
                }
                let why = AuditEvent {
                    caller: CallerRecord {
                        via: "service".into(),
                        ..Default::default()
                    },
                    action: Action::AuditSegment,
                    target: None,
                    ticket: None,
                    request_id: None,
                    phase: Phase::Outcome,
                    outcome: Some(Outcome::Succeeded),
                    details: serde_json::json!({
                        "previousChain": left.trim_end_matches(".jsonl"),
                        "previousLength": offset,
                        "reason": "the previous chain no longer ends where this writer left it (bytes this writer did not write were appended, or its tail was damaged): it is never appended to again; audit verify reports it",
                    }),
                };
                let mut records = self.append(guard, std::iter::once(why).chain(events).collect()).await?;
                records.remove(0);
                Ok(records)
            }
            other => other,
        }
    }

    /// Start chain `segment` of `day` (0: `{day}/{instance}.jsonl`).
    async fn begin(&self, guard: &mut Option<ChainState>, day: String, segment: u32) -> Result<(), AuditError> {
        // A segment's name has a random part: nobody can create it first to stop the writer.
        let name = if segment == 0 {
            format!("{day}/{}.jsonl", self.instance)
        } else {
            format!(
                "{day}/{}-{segment}-{}.jsonl",
                self.instance,
                &Uuid::new_v4().simple().to_string()[..12]
            )
        };
        self.storage.create(&name).await?;
        *guard = Some(ChainState {
            day,
            segment,
            name,
            seq: 0,
            offset: 0,
            last_hash: GENESIS.into(),
            last_mac: String::new(),
        });
        Ok(())
    }

    /// Append records to the current chain (a new one each day) in one write, then their anchors
    /// in one write.
    async fn append(
        &self,
        guard: &mut Option<ChainState>,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let now = OffsetDateTime::now_utc();
        let day = day_of(now);
        if guard.as_ref().is_none_or(|c| c.day != day) {
            self.begin(guard, day, 0).await?;
        }
        // The key first: a record that cannot be signed is not written.
        let key = match &self.key {
            Some(k) => Some(k.current().await?),
            None => None,
        };
        let chain = guard.as_mut().expect("set above");
        let (mut seq, mut last_hash, mut last_mac) = (chain.seq, chain.last_hash.clone(), chain.last_mac.clone());
        let mut lines = Vec::new();
        let mut anchor_lines = Vec::new();
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let mut record = AuditRecord {
                id: Uuid::new_v4(),
                time: rfc3339_millis(now),
                chain: chain.name.trim_end_matches(".jsonl").to_owned(),
                seq: seq + 1,
                caller: event.caller,
                action: event.action.as_str().to_owned(),
                target: event.target,
                ticket: event.ticket,
                request_id: event.request_id,
                phase: event.phase,
                outcome: event.outcome,
                details: if event.details.is_null() {
                    Value::Object(Default::default())
                } else {
                    event.details
                },
                prev_hash: last_hash.clone(),
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            lines.extend(serde_json::to_vec(&record).expect("records serialize"));
            lines.push(b'\n');
            let mut anchor = Anchor {
                chain: record.chain.clone(),
                seq: record.seq,
                hash: record.hash.clone(),
                kid: None,
                mac: None,
            };
            if let Some((kid, value)) = &key {
                let seq_text = record.seq.to_string();
                let m = seal::mac(
                    value,
                    &seal::anchor_parts(&record.chain, &seq_text, &record.hash, &last_mac),
                );
                anchor.kid = Some(kid.clone());
                anchor.mac = Some(m.clone());
                last_mac = m;
            }
            anchor_lines.extend(serde_json::to_vec(&anchor).expect("anchors serialize"));
            anchor_lines.push(b'\n');
            seq += 1;
            last_hash = record.hash.clone();
            records.push(record);
        }
        self.storage.append(&chain.name, chain.offset, &lines).await?;
        chain.offset += lines.len() as u64;
        chain.seq = seq;
        chain.last_hash = last_hash;
        chain.last_mac = last_mac;
        // The anchors: without them the records do not count as kept (the callers act on `Ok`).
        self.storage
            .append_shared(&anchor_log(now, &self.instance), &anchor_lines)
            .await?;
        Ok(records)
    }

    /// Every chain (blob) whose day is within `[from, to]`.
    async fn chains(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Vec<String>, AuditError> {
        let mut names = Vec::new();
        for day in days(from, to) {
            names.extend(self.storage.list(&format!("{}/", day_path(day))).await?);
        }
        names.sort();
        Ok(names)
    }

    /// Read every line of one chain, in order: a record, or why it is not one. A writer ends
    /// every line with a newline, so a blank line or bytes after the last newline are foreign.
    async fn read_chain(&self, name: &str) -> Result<Vec<Result<AuditRecord, String>>, AuditError> {
        let bytes = self.storage.read(name).await?;
        let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        // The empty piece after the last newline is not a line.
        let tail = lines.pop().unwrap_or_default();
        let mut out: Vec<Result<AuditRecord, String>> = lines
            .into_iter()
            .map(|l| {
                if l.is_empty() {
                    Err("a blank line: bytes no writer wrote".to_owned())
                } else {
                    serde_json::from_slice::<AuditRecord>(l).map_err(|_| "not a record".to_owned())
                }
            })
            .collect();
        if !tail.is_empty() {
            out.push(Err(format!(
                "{} foreign bytes after the chain's last line (no writer leaves a line unended): tampering or a damaged tail",
                tail.len()
            )));
        }
        Ok(out)
    }

    /// One page of the trail for `caller` (`GET /api/audit`): the records `filter` selects, after
    /// the order key `after` (the last record of the page before), at most `page_size`; the query
    /// itself is recorded (`audit.query`: who asked, with what filter, how many came back). A
    /// query that cannot be recorded is not answered.
    ///
    /// # Errors
    /// The trail cannot be read or written.
    pub(crate) async fn read_page(
        &self,
        caller: CallerRecord,
        filter: &AuditFilter,
        after: Option<(String, String, u64)>,
        page_size: usize,
    ) -> Result<Page, AuditError> {
        let records = self.query(filter).await?;
        let start = match &after {
            None => 0,
            Some((time, chain, seq)) => {
                records.partition_point(|r| r.order_key() <= (time.as_str(), chain.as_str(), *seq))
            }
        };
        let page: Vec<AuditRecord> = records.iter().skip(start).take(page_size).cloned().collect();
        let more = start + page.len() < records.len();
        self.record(AuditEvent {
            caller,
            action: Action::AuditQuery,
            target: None,
            ticket: None,
            request_id: None,
            phase: Phase::Outcome,
            outcome: Some(Outcome::Succeeded),
            details: json!({"returned": page.len(), "filter": {
                "user": filter.user, "ticket": filter.ticket, "action": filter.action, "outcome": filter.outcome,
                "from": rfc3339_millis(filter.from), "to": rfc3339_millis(filter.to)}}),
        })
        .await?;
        Ok(Page { records: page, more })
    }

    /// Records in `[from, to]` that match `filter`, ordered by `AuditRecord::order_key`. A line
    /// that is not a record is skipped and logged (`audit verify` reports it): one damaged line
    /// must not hide the rest of the trail.
    ///
    /// # Errors
    /// Storage failed.
    pub async fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, AuditError> {
        let mut out = Vec::new();
        for name in self.chains(filter.from, filter.to).await? {
            for (i, r) in self.read_chain(&name).await?.into_iter().enumerate() {
                let Ok(r) = r else {
                    tracing::error!(chain = %name, line = i + 1, "an audit line is not a record; skipped (run audit verify)");
                    continue;
                };
                if filter.matches(&r) {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        Ok(out)
    }

    /// Recompute every chain in `[from, to]` and hold them against the anchor logs of those days.
    /// An empty range is a mismatch unless `allow_empty`.
    ///
    /// # Errors
    /// Storage failed.
    pub async fn verify(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        allow_empty: bool,
    ) -> Result<VerifyReport, AuditError> {
        let mut report = VerifyReport::default();
        let names = self.chains(from, to).await?;
        let anchored = match self.anchors(from, to).await? {
            Ok(anchored) => anchored,
            Err(mismatch) => {
                report.first_mismatch = Some(mismatch);
                return Ok(report);
            }
        };
        if let Some(mismatch) = self.left_chains_intact(&names).await? {
            report.first_mismatch = Some(mismatch);
            return Ok(report);
        }
        if let Some(mismatch) = self.check_signatures(&anchored, &mut report).await? {
            report.first_mismatch = Some(mismatch);
            return Ok(report);
        }
        let mut seen = std::collections::BTreeSet::new();
        // Each chain's first record's time, and whether its anchors are signed.
        let mut firsts: Vec<(String, String, bool)> = Vec::new();
        for name in &names {
            report.chains += 1;
            let chain_id = name.trim_end_matches(".jsonl");
            seen.insert(chain_id.to_owned());
            let anchors = anchored.get(chain_id);
            match self.check_chain(name, anchors).await? {
                Ok((records, first)) => {
                    report.records += records;
                    let signed = anchors.is_some_and(|a| a.values().any(|a| a.mac.is_some()));
                    if signed {
                        report.signed_records += records;
                    }
                    if let Some(first) = first {
                        firsts.push((chain_id.to_owned(), first, signed));
                    }
                }
                Err(mismatch) => {
                    report.first_mismatch = Some(mismatch);
                    return Ok(report);
                }
            }
        }
        report.signed_from = firsts.iter().filter(|f| f.2).map(|f| f.1.clone()).min();
        // Once the trail is signed (its first signed record, or the audit key's creation in Key
        // Vault, which storage cannot move), a chain begun later without signatures was not
        // written by the service: made up, or stripped, by someone with the storage alone.
        let key_since = match &self.key {
            Some(k) => k.created().await?.map(rfc3339_millis),
            None => None,
        };
        let since = [report.signed_from.clone(), key_since].into_iter().flatten().min();
        if let Some(from) = &since
            && let Some((chain, first, _)) = firsts.iter().find(|f| !f.2 && f.1 >= *from)
        {
            report.first_mismatch = Some(mismatch_at(
                chain,
                1,
                None,
                format!(
                    "its anchors are not signed, but it begins at {first}, after the trail was signed (from {from}): it was made up, or its signatures stripped, without the audit key"
                ),
            ));
            return Ok(report);
        }
        // Anchored chains that are gone altogether.
        if let Some((chain, anchors)) = anchored.iter().find(|(c, _)| !seen.contains(*c)) {
            report.first_mismatch = Some(mismatch_at(
                chain,
                1,
                None,
                format!(
                    "{} anchored records, but the chain is gone: it was deleted",
                    anchors.len()
                ),
            ));
            return Ok(report);
        }
        if report.records == 0 && !allow_empty {
            report.first_mismatch = Some(mismatch_at(
                "-",
                0,
                None,
                "the trail holds no record in this range (a wrong container or directory, or a deleted trail); pass --allow-empty if that is expected".into(),
            ));
        }
        Ok(report)
    }

    /// Every chain a writer left for a new segment (its `audit.segment` record names it and the
    /// length it had) must still have that length: bytes after it were appended by someone else,
    /// however well-formed (a forged record with a recomputed hash and its own anchor).
    async fn left_chains_intact(&self, names: &[String]) -> Result<Option<Mismatch>, AuditError> {
        for name in names {
            for line in self.read_chain(name).await?.into_iter().flatten() {
                if line.action != Action::AuditSegment.as_str() {
                    continue;
                }
                let (Some(left), Some(length)) = (
                    line.details["previousChain"].as_str(),
                    line.details["previousLength"].as_u64(),
                ) else {
                    continue;
                };
                let bytes = self.storage.read(&format!("{left}.jsonl")).await?;
                if bytes.len() as u64 != length {
                    return Ok(Some(mismatch_at(
                        left,
                        bytes[..(length as usize).min(bytes.len())]
                            .iter()
                            .filter(|b| **b == b'\n')
                            .count() as u64
                            + 1,
                        None,
                        format!(
                            "{} foreign bytes after offset {length}, where its writer left this chain (audit.segment in {}): appended by someone else",
                            (bytes.len() as u64).saturating_sub(length),
                            line.chain
                        ),
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The anchors of every day in `[from, to]`, by chain and sequence number; a line that is
    /// not an anchor is a mismatch.
    async fn anchors(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Result<Anchored, Mismatch>, AuditError> {
        let mut anchored = Anchored::new();
        let mut logs = Vec::new();
        for day in days(from, to) {
            // No anchor log for an hour (nothing recorded then): any chain with records then fails later.
            logs.extend(self.storage.list(&format!("anchors/{}/", day_path(day))).await?);
        }
        for name in logs {
            let bytes = self.storage.read(&name).await?;
            for (i, line) in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                let Ok(a) = serde_json::from_slice::<Anchor>(line) else {
                    return Ok(Err(mismatch_at(
                        &name,
                        i as u64 + 1,
                        None,
                        "the anchor log holds a line that is not an anchor".into(),
                    )));
                };
                anchored.entry(a.chain.clone()).or_default().insert(a.seq, a);
            }
        }
        Ok(Ok(anchored))
    }

    /// Recompute one chain and hold it against its anchors: the number of records, or the first
    /// mismatch (an edit, a gap, a rewrite, a deleted tail).
    async fn check_chain(
        &self,
        name: &str,
        anchors: Option<&std::collections::BTreeMap<u64, Anchor>>,
    ) -> Result<Result<(u64, Option<String>), Mismatch>, AuditError> {
        let lines = self.read_chain(name).await?;
        let count = lines.len() as u64;
        let first = lines.first().and_then(|l| l.as_ref().ok()).map(|r| r.time.clone());
        let chain_id = name.trim_end_matches(".jsonl");
        // A chain's records are of its folder's day (`yyyy/mm/dd/…`), in time order.
        let day = chain_id.get(..10).unwrap_or_default().replace('/', "-");
        let signed = anchors.is_some_and(|a| a.values().any(|a| a.mac.is_some()));
        let mut prev = GENESIS.to_owned();
        let mut last_time = String::new();
        for (i, line) in lines.into_iter().enumerate() {
            let line_no = i as u64 + 1;
            let problem = match &line {
                Err(e) => Some(e.clone()),
                Ok(r) if r.seq != line_no => Some(format!("sequence {} where {line_no} was expected", r.seq)),
                Ok(r) if r.chain != chain_id => Some(format!("it names chain {}, not the one it is in", r.chain)),
                Ok(r) if !r.time.starts_with(&day) || r.time < last_time => {
                    Some(format!("its time {} is not of its chain's day {day}, or before the record ahead of it", r.time))
                }
                Ok(r) if r.prev_hash != prev => Some("its prevHash does not match the record before it".into()),
                Ok(r) if r.compute_hash() != r.hash => Some("its content does not match its hash".into()),
                Ok(r) => match anchors.and_then(|a| a.get(&r.seq)) {
                    Some(a) if a.hash != r.hash => {
                        Some("its hash differs from its anchor: the chain was rewritten".into())
                    }
                    Some(_) => None,
                    // The writer may stop between the record and its anchor: only the last, and
                    // only in an unsigned chain (a signed record with no MAC is anyone's).
                    None if line_no == count && !signed => None,
                    None if line_no == count => Some("it is the chain's last record and has no anchor: appended without the audit key (or its writer stopped between its two appends: investigate)".into()),
                    None => Some("it has no anchor: the chain was rewritten or made up".into()),
                },
            };
            if let Some(reason) = problem {
                return Ok(Err(mismatch_at(
                    name,
                    line_no,
                    line.as_ref().ok().map(|r| r.id),
                    reason,
                )));
            }
            let r = line.expect("checked");
            last_time = r.time;
            prev = r.hash;
        }
        // Anchored records the chain no longer has: its tail was deleted.
        if let Some((&last, _)) = anchors.and_then(|a| a.iter().next_back())
            && last > count
        {
            return Ok(Err(mismatch_at(
                name,
                count + 1,
                None,
                format!(
                    "records {} to {last} were anchored but are gone: the chain's tail was deleted",
                    count + 1
                ),
            )));
        }
        Ok(Ok((count, first)))
    }

    /// Every signed chain's anchors: contiguous from its first record, each signed, each MAC
    /// verifying under the key version it names and over the MAC before it. The key ids seen go
    /// to the report.
    ///
    /// # Errors
    /// The key cannot be read, or the trail is signed and no key is configured.
    async fn check_signatures(
        &self,
        anchored: &Anchored,
        report: &mut VerifyReport,
    ) -> Result<Option<Mismatch>, AuditError> {
        for (chain, anchors) in anchored {
            if !anchors.values().any(|a| a.mac.is_some()) {
                continue;
            }
            let key = self.key.as_ref().ok_or_else(|| {
                AuditError::Key("the trail's anchors are signed, but no audit key is configured to check them: set KEY_VAULT_URI and AUDIT_KEY_SECRET (the reader needs Key Vault Secrets User)".into())
            })?;
            let mut prev = String::new();
            for (expected, (seq, a)) in (1u64..).zip(anchors) {
                let problem = if *seq != expected {
                    Some(format!(
                        "the anchor of record {expected} is gone: anchor lines were removed"
                    ))
                } else {
                    match (&a.kid, &a.mac) {
                        (Some(kid), Some(mac)) => {
                            let seq_text = seq.to_string();
                            if !report.key_ids.contains(kid) {
                                report.key_ids.push(kid.clone());
                            }
                            let parts = seal::anchor_parts(chain, &seq_text, &a.hash, &prev);
                            (!key.verifies(kid, &parts, mac).await?).then(|| format!("its anchor's MAC does not verify under audit key {kid}: the anchor was written, rewritten or reordered without the audit key"))
                        }
                        _ => Some("its anchor is not signed, in a chain whose anchors are: it was added without the audit key".into()),
                    }
                };
                if let Some(reason) = problem {
                    return Ok(Some(mismatch_at(chain, *seq.min(&expected), None, reason)));
                }
                prev = a.mac.clone().unwrap_or_default();
            }
        }
        Ok(None)
    }

    /// The seal of `decided`, whose own audit record is `record`: `None` when the trail is
    /// unsigned (no Key Vault).
    ///
    /// # Errors
    /// The key cannot be read: the decision must not be written.
    pub async fn seal(&self, decided: &seal::Decided, record: &AuditRecord) -> Result<Option<seal::Seal>, AuditError> {
        let Some(key) = &self.key else { return Ok(None) };
        let at = seal::AuditRef {
            chain: record.chain.clone(),
            seq: record.seq,
        };
        Ok(Some(decided.seal(key, at).await?))
    }

    /// Whether a stored decision is the service's: its seal verifies, and its own audit record
    /// (`action`, read alone) is about the same subject and target, by the same decider.
    /// `Ok(Err(why))` when it is not; always `Ok(Ok(()))` on an unsigned trail.
    ///
    /// # Errors
    /// The key or the record cannot be read (the caller fails closed).
    pub async fn check_seal(
        &self,
        decided: &seal::Decided,
        stored: Option<&seal::Seal>,
        action: Action,
    ) -> Result<Result<(), String>, AuditError> {
        let Some(key) = &self.key else { return Ok(Ok(())) };
        let Some(stored) = stored else {
            return Ok(Err("it carries no seal".into()));
        };
        if !decided.sealed_by(key, stored).await? {
            return Ok(Err(format!(
                "its seal does not verify under audit key {}: it was written or edited without the audit key",
                stored.kid
            )));
        }
        let Some(record) = self.read_record(&stored.audit.chain, stored.audit.seq).await? else {
            return Ok(Err(format!(
                "its audit record ({} #{}) is not in the trail",
                stored.audit.chain, stored.audit.seq
            )));
        };
        let target = decided.target.to_string();
        let same = record.action == action.as_str()
            && record.request_id == Some(decided.subject)
            && record
                .target
                .as_ref()
                .and_then(|t| t.object_id.as_deref())
                .is_some_and(|t| t.eq_ignore_ascii_case(&target))
            && record.caller.key() == decided.decider;
        Ok(if same {
            Ok(())
        } else {
            Err(format!(
                "its audit record ({} #{}) is about another decision",
                stored.audit.chain, stored.audit.seq
            ))
        })
    }

    /// The record at `seq` of `chain` (a decision's own record: one chain read, never the trail).
    ///
    /// # Errors
    /// Storage failed.
    pub async fn read_record(&self, chain: &str, seq: u64) -> Result<Option<AuditRecord>, AuditError> {
        if seq == 0 || chain.contains("..") {
            return Ok(None);
        }
        // A chain that cannot be read (gone, or storage down) fails: the caller fails closed.
        let lines = self.read_chain(&format!("{chain}.jsonl")).await?;
        Ok(lines
            .into_iter()
            .nth((seq - 1) as usize)
            .and_then(Result::ok)
            .filter(|r| r.seq == seq && r.chain == chain && r.compute_hash() == r.hash))
    }
}

/// A page of the trail, and whether more records follow it.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<AuditRecord>,
    pub more: bool,
}

/// What `GET /api/audit` and the CLI filter on.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Target object id or UPN (case-insensitive).
    pub user: Option<String>,
    pub ticket: Option<String>,
    pub action: Option<String>,
    /// `succeeded`, `refused` or `failed`.
    pub outcome: Option<String>,
}

impl AuditFilter {
    fn matches(&self, r: &AuditRecord) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let time_ok = OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t >= self.from && t <= self.to);
        time_ok
            && self.user.as_deref().is_none_or(|u| {
                r.target.as_ref().is_some_and(|t| {
                    t.object_id.as_deref().is_some_and(|o| eq(o, u)) || t.upn.as_deref().is_some_and(|x| eq(x, u))
                })
            })
            && self
                .ticket
                .as_deref()
                .is_none_or(|k| r.ticket.as_ref().is_some_and(|t| eq(&t.id, k)))
            && self.action.as_deref().is_none_or(|a| eq(&r.action, a))
            && self
                .outcome
                .as_deref()
                .is_none_or(|o| r.outcome.as_ref().is_some_and(|x| eq(x.name(), o)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub chains: u64,
    pub records: u64,
    /// Records whose anchors are signed with the audit key.
    pub signed_records: u64,
    /// The first signed record's time: from then on every chain must be signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_from: Option<String>,
    /// The audit key's versions that signed the anchors checked.
    pub key_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub chain: String,
    pub line: u64,
    pub record_id: Option<Uuid>,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::storage::chains::FileStorage;

    #[test]
    fn record_times_have_a_fixed_width() {
        let t = time::macros::datetime!(2026-11-28 09:14:03 UTC);
        assert_eq!(rfc3339_millis(t), "2026-11-28T09:14:03.000Z");
        assert_eq!(
            rfc3339_millis(t + time::Duration::milliseconds(120)),
            "2026-11-28T09:14:03.120Z"
        );
    }

    /// A storage that counts its appends and takes its time, as Blob Storage does: the `n`th
    /// append waits `wait(n)` ms.
    struct Slow {
        inner: FileStorage,
        appends: std::sync::atomic::AtomicUsize,
        wait: fn(usize) -> u64,
    }

    #[async_trait::async_trait]
    impl AuditStorage for Slow {
        async fn create(&self, name: &str) -> Result<(), StorageError> {
            self.inner.create(name).await
        }
        async fn append(&self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
            let n = self.appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis((self.wait)(n))).await;
            self.inner.append(name, offset, data).await
        }
        async fn append_shared(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
            self.inner.append_shared(name, data).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(prefix).await
        }
        async fn read(&self, name: &str) -> Result<Vec<u8>, StorageError> {
            self.inner.read(name).await
        }
    }

    /// Records asked for at once are written together (one append each for the chain and the
    /// anchors, not one each), in order, each its own line with its own hash and anchor: the
    /// trail verifies and every caller gets its own record.
    #[tokio::test]
    async fn records_asked_for_at_once_share_one_append_and_the_chain_verifies() {
        let dir = std::env::temp_dir().join(format!("audit-unit-{}", Uuid::new_v4()));
        let storage = Arc::new(Slow {
            inner: FileStorage::new(dir.clone()),
            appends: 0.into(),
            wait: |_| 20,
        });
        let trail = AuditTrail::new(storage.clone());
        let event = |i: usize| AuditEvent {
            caller: CallerRecord {
                via: "cli".into(),
                ..Default::default()
            },
            action: Action::RequestSubmit,
            target: None,
            ticket: Some(Ticket {
                system: "jira".into(),
                id: format!("HELP-{i}"),
            }),
            request_id: None,
            phase: Phase::Outcome,
            outcome: Some(Outcome::Succeeded),
            details: Value::Null,
        };
        let started = std::time::Instant::now();
        let written = futures::future::join_all((0..200).map(|i| trail.record(event(i)))).await;
        let mut seqs: Vec<u64> = written.iter().map(|r| r.as_ref().unwrap().seq).collect();
        for (i, r) in written.iter().enumerate() {
            assert_eq!(
                r.as_ref().unwrap().ticket.as_ref().unwrap().id,
                format!("HELP-{i}"),
                "each caller gets its own record"
            );
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        let appends = storage.appends.load(std::sync::atomic::Ordering::SeqCst);
        assert!(appends <= 3, "200 records at once took {appends} appends");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let now = OffsetDateTime::now_utc();
        let report = trail
            .verify(now - time::Duration::hours(1), now + time::Duration::hours(1), false)
            .await
            .unwrap();
        assert_eq!(
            (report.records, report.first_mismatch.is_none()),
            (200, true),
            "{report:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A writer whose caller goes away in the middle of a group's append (a client that hung up
    /// drops its handler) answers the others of its group with an error at once: nobody waits
    /// forever, nobody is told a record was kept that may not be, and the trail goes on.
    #[tokio::test]
    async fn a_writer_dropped_mid_append_leaves_nobody_waiting() {
        let dir = std::env::temp_dir().join(format!("audit-unit-{}", Uuid::new_v4()));
        // The first append takes 50 ms, the second ten seconds (a storage that stopped
        // answering), the rest none.
        let storage = Arc::new(Slow {
            inner: FileStorage::new(dir.clone()),
            appends: 0.into(),
            wait: |n| [50, 10_000].get(n).copied().unwrap_or(0),
        });
        let trail = AuditTrail::new(storage);
        let event = || AuditEvent {
            caller: CallerRecord {
                via: "cli".into(),
                ..Default::default()
            },
            action: Action::AuditQuery,
            target: None,
            ticket: None,
            request_id: None,
            phase: Phase::Outcome,
            outcome: Some(Outcome::Succeeded),
            details: Value::Null,
        };
        let ms = std::time::Duration::from_millis;
        // The first writes alone (50 ms); meanwhile two more ask; the first of them writes both
        // and stalls; its caller gives up after 300 ms.
        let (first, dropped, other) = tokio::join!(
            trail.record(event()),
            tokio::time::timeout(ms(300), trail.record(event())),
            tokio::time::timeout(ms(3000), trail.record(event())),
        );
        assert!(first.is_ok());
        assert!(dropped.is_err(), "the stalled writer's caller gave up");
        let other = other.expect("the other record of the group is answered, not left waiting");
        assert!(other.is_err(), "and told it may not have been kept");
        let next = tokio::time::timeout(ms(3000), trail.record(event())).await;
        assert!(next.expect("the trail goes on").is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_chain_verifies_and_an_edit_is_found() {
        let dir = std::env::temp_dir().join(format!("audit-unit-{}", Uuid::new_v4()));
        let storage = Arc::new(FileStorage::new(dir.clone()));
        let trail = AuditTrail::new(storage.clone());
        for i in 0..3 {
            trail
                .record(AuditEvent {
                    caller: CallerRecord {
                        via: "cli".into(),
                        ..Default::default()
                    },
                    action: Action::AuditQuery,
                    target: None,
                    ticket: Some(Ticket {
                        system: "jira".into(),
                        id: format!("HELP-{i}"),
                    }),
                    request_id: None,
                    phase: Phase::Intent,
                    outcome: None,
                    details: serde_json::json!({"n": i}),
                })
                .await
                .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        let report = trail.verify(now - time::Duration::days(1), now, false).await.unwrap();
        assert_eq!((report.chains, report.records, report.first_mismatch), (1, 3, None));
        // Edit the second record's ticket in place.
        let name = storage.list(&format!("{}/", day_of(now))).await.unwrap().remove(0);
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path).unwrap().replace("HELP-1", "HELP-9");
        std::fs::write(&path, text).unwrap();
        let report = trail.verify(now - time::Duration::days(1), now, false).await.unwrap();
        let mismatch = report.first_mismatch.unwrap();
        assert_eq!(mismatch.line, 2);
        assert!(mismatch.reason.contains("hash"), "{}", mismatch.reason);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            caller: CallerRecord {
                via: "cli".into(),
                ..Default::default()
            },
            action: Action::AuditQuery,
            target: None,
            ticket: None,
            request_id: None,
            phase: Phase::Intent,
            outcome: None,
            details: serde_json::json!({"n": n}),
        }
    }

    #[tokio::test]
    async fn a_well_formed_forged_tail_is_caught_once_the_writer_has_moved_on() {
        let (trail, dir, path) = trail_with(2).await;
        // Someone with write access appends a valid-looking third record, and its anchor.
        let text = std::fs::read_to_string(&path).unwrap();
        let last: AuditRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let mut forged = last.clone();
        forged.id = Uuid::new_v4();
        forged.seq = 3;
        forged.prev_hash = last.hash.clone();
        forged.details = serde_json::json!({"forged": "Megan issued Isaiah a pass"});
        forged.hash = forged.compute_hash();
        let line = format!("{}\n", serde_json::to_string(&forged).unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let anchor = format!(
            "{}\n",
            serde_json::to_string(&Anchor {
                chain: forged.chain.clone(),
                seq: 3,
                hash: forged.hash.clone(),
                kid: None,
                mac: None,
            })
            .unwrap()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(anchor_log(now, &trail.instance)))
            .unwrap()
            .write_all(anchor.as_bytes())
            .unwrap();
        // The writer's next record goes to a new segment; the old chain's forged tail is reported.
        trail.record(event(9)).await.expect("recording goes on");
        let m = verdict(&trail).await.expect("the forged tail is found");
        assert!(m.reason.contains("foreign bytes after offset"), "{}", m.reason);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A trail of `n` records in a fresh directory: the trail, its storage, the directory and the
    /// path of its one chain.
    async fn trail_with(n: u64) -> (AuditTrail, std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("audit-anchor-{}", Uuid::new_v4()));
        let storage = Arc::new(FileStorage::new(dir.clone()));
        let trail = AuditTrail::new(storage.clone());
        for i in 0..n {
            trail
                .record(AuditEvent {
                    caller: CallerRecord {
                        via: "cli".into(),
                        ..Default::default()
                    },
                    action: Action::AuditQuery,
                    target: None,
                    ticket: None,
                    request_id: None,
                    phase: Phase::Intent,
                    outcome: None,
                    details: serde_json::json!({"n": i}),
                })
                .await
                .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        let chain = storage.list(&format!("{}/", day_of(now))).await.unwrap().remove(0);
        let path = dir.join(chain);
        (trail, dir, path)
    }

    async fn verdict(trail: &AuditTrail) -> Option<Mismatch> {
        let now = OffsetDateTime::now_utc();
        trail
            .verify(now - time::Duration::days(1), now + time::Duration::minutes(1), false)
            .await
            .unwrap()
            .first_mismatch
    }

    #[tokio::test]
    async fn verify_finds_a_deleted_tail_a_deleted_chain_a_rewrite_and_an_empty_trail() {
        // Untouched: every record verifies and is anchored.
        let (trail, dir, _) = trail_with(4).await;
        assert_eq!(verdict(&trail).await, None);
        let _ = std::fs::remove_dir_all(dir);

        // The last line removed.
        let (trail, dir, path) = trail_with(4).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().take(3).collect();
        std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
        let m = verdict(&trail).await.expect("a deleted tail");
        assert!(m.reason.contains("tail was deleted"), "{}", m.reason);
        let _ = std::fs::remove_dir_all(dir);

        // The whole chain removed.
        let (trail, dir, path) = trail_with(3).await;
        std::fs::remove_file(&path).unwrap();
        let m = verdict(&trail).await.expect("a deleted chain");
        assert!(m.reason.contains("chain is gone"), "{}", m.reason);
        let _ = std::fs::remove_dir_all(dir);

        // Rewritten with recomputed hashes: each record is valid on its own, but not anchored.
        let (trail, dir, path) = trail_with(3).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let mut prev = GENESIS.to_owned();
        let mut out = String::new();
        for line in text.lines() {
            let mut r: AuditRecord = serde_json::from_str(line).unwrap();
            r.details = serde_json::json!({"n": "rewritten"});
            r.prev_hash = prev.clone();
            r.hash = r.compute_hash();
            prev = r.hash.clone();
            out.push_str(&serde_json::to_string(&r).unwrap());
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
        let m = verdict(&trail).await.expect("a rewrite");
        assert!(m.reason.contains("rewritten"), "{}", m.reason);
        let _ = std::fs::remove_dir_all(dir);

        // Nothing at all (a wrong directory, or everything deleted).
        let dir = std::env::temp_dir().join(format!("audit-empty-{}", Uuid::new_v4()));
        let trail = AuditTrail::new(Arc::new(FileStorage::new(dir.clone())));
        let m = verdict(&trail).await.expect("an empty trail");
        assert!(m.reason.contains("no record"), "{}", m.reason);
        let now = OffsetDateTime::now_utc();
        let allowed = trail.verify(now - time::Duration::days(1), now, true).await.unwrap();
        assert_eq!(allowed.first_mismatch, None);
    }
}
