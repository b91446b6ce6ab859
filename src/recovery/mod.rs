//! The recovery domain: what a request may ask for, the rules a Temporary Access Pass must meet,
//! and the guardrails around it. `tap` runs the whole procedure for the HTTP function and the CLI.

pub mod addresses;
pub mod admit;
pub mod approval;
pub mod code;
pub mod confirm;
pub mod context;
pub mod details;
pub mod fresh;
pub mod limits;
pub mod link;
pub mod notice;
pub mod prepare;
pub mod privilege;
pub mod request;
pub mod reset;
pub mod risk;
pub mod rules;
pub mod summary;
pub mod tap;
pub mod target;
pub mod verification;
pub mod verifier;
pub mod verify;

use serde_json::Value;

use crate::vocab::{ErrorCode, Fault, Refusal};

/// A refusal or failure with the documented code a caller can act on. Which HTTP status it
/// answers is the HTTP layer's business (`host::error::status_of`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RecoveryError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which the same request may succeed (`Retry-After` of a 429).
    pub retry_after: Option<u64>,
}

impl RecoveryError {
    /// A rule said no (`refused` in the audit trail).
    pub fn refused(code: Refusal, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Refused(code),
            message: message.into(),
            retry_after: None,
        }
    }
    /// The same error, telling the caller when to try again.
    #[must_use]
    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    /// Something failed (`failed` in the audit trail).
    pub fn failed(code: Fault, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Failed(code),
            message: message.into(),
            retry_after: None,
        }
    }
    /// Whether a rule refused (rather than something failing).
    pub fn is_refusal(&self) -> bool {
        self.code.is_refusal()
    }
    /// Whether a queued request should be tried again: a fault another attempt may get past.
    pub(crate) fn worth_retry(&self) -> bool {
        matches!(self.code, ErrorCode::Failed(f) if f.worth_retry())
    }
    /// The documented code, as text.
    pub fn code_str(&self) -> &'static str {
        self.code.as_str()
    }
    /// The outcome the audit trail records for this error.
    pub fn outcome(&self) -> crate::audit::Outcome {
        if self.is_refusal() {
            crate::audit::Outcome::Refused(self.code_str().to_owned())
        } else {
            crate::audit::Outcome::Failed(self.code_str().to_owned())
        }
    }
}

/// What a recovery came to, for whoever renders answers (the HTTP layer).
pub enum Answer<'a> {
    Issued(&'a tap::Issued),
    Reset(&'a reset::ResetResult),
    Error(&'a RecoveryError),
}

impl Answer<'_> {
    /// What kind of outcome it is, as a record keeps it.
    pub fn answered(&self) -> Answered {
        match self {
            Answer::Issued(_) => Answered::Issued,
            Answer::Reset(r) if r.complete() => Answered::Reset,
            Answer::Reset(_) => Answered::Error(ErrorCode::Failed(Fault::ResetIncomplete)),
            Answer::Error(e) => Answered::Error(e.code),
        }
    }
}

/// What kind of outcome a finished request had: a pass issued, a reset done, or an error code
/// (`reset_incomplete` for a reset that left something to do). A request record keeps this, not
/// a status: whoever owns the wire format chooses the status (`Answers::status`). Kept as its
/// name (`issued`, `reset`, or the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Answered {
    Issued,
    Reset,
    Error(ErrorCode),
}

impl From<Answered> for String {
    fn from(a: Answered) -> String {
        match a {
            Answered::Issued => "issued".into(),
            Answered::Reset => "reset".into(),
            Answered::Error(code) => code.as_str().into(),
        }
    }
}

impl TryFrom<String> for Answered {
    type Error = String;
    fn try_from(name: String) -> Result<Answered, String> {
        match name.as_str() {
            "issued" => Ok(Answered::Issued),
            "reset" => Ok(Answered::Reset),
            _ => ErrorCode::all()
                .find(|c| c.as_str() == name)
                .map(Answered::Error)
                .ok_or_else(|| format!("unknown outcome {name}")),
        }
    }
}

/// Renders an outcome as the synchronous API answers it: its body, and the status that goes
/// with a kind of outcome. The intake keeps the body and the kind in a request record; the HTTP
/// layer implements it (`host::answers`).
pub trait Answers: Send + Sync {
    fn render(&self, answer: Answer<'_>) -> Value;
    /// The status the synchronous function answers for this kind of outcome.
    fn status(&self, answered: Answered) -> u16;
}

/// Parse a request body at the edge; `expected` names the fields for the caller. serde's message
/// names a wrong field; for syntax errors nothing of the body is echoed.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, RecoveryError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => "the body is not valid JSON".into(),
        };
        RecoveryError::refused(Refusal::InvalidRequest, format!("{what}. Expected {expected}"))
    })
}

/// A free-text field: present, at most `max` bytes, no control characters (no log forging).
pub(crate) fn text_ok(value: &str, max: usize) -> bool {
    !value.trim().is_empty() && value.len() <= max && !value.chars().any(hidden_or_control)
}

#[cfg(test)]
mod text_tests {
    #[test]
    fn text_that_hides_or_breaks_a_line_is_refused() {
        assert!(super::text_ok("lost phone", 500));
        for bad in [
            "lost\nphone",
            "lost phone\u{2028}Verified in person",
            "a\u{202E}b",
            "a\u{200B}b",
            "  ",
        ] {
            assert!(!super::text_ok(bad, 500), "{bad:?}");
        }
    }
}

/// A character that breaks or disguises a line a person reads (in an approver's email, a
/// console): controls, Unicode line and paragraph separators, zero-width and bidirectional
/// formatting marks.
fn hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{061C}')
        || ('\u{200B}'..='\u{200F}').contains(&c)
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// How far an earlier attempt of a queued request got with its pass. Saved by the intake after
/// each step, so a retry after a crash neither loses the request nor issues a second pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapProgress {
    /// The pass was created (its method id; never the pass itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_id: Option<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<time::OffsetDateTime>,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(default)]
    pub usable_once: bool,
    /// Graph was asked to create the pass at this time and its answer is not saved yet: if no
    /// `method_id` follows, the attempt died in between, and a pass created since is an orphan
    /// nobody holds the value of.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub creating_since: Option<time::OffsetDateTime>,
    /// The provider was being called: if no `delivered` follows, nobody knows whether it sent.
    #[serde(default)]
    pub delivering: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<Delivered>,
}

/// Where a pass went (masked) and the provider's receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    pub channel: String,
    pub to: String,
    pub provider: String,
    pub message_id: Option<String>,
}

/// The intake's record of one request, seen from the recovery procedures: where an earlier
/// attempt stopped, and a way to save each step before the next one starts.
#[async_trait::async_trait]
pub(crate) trait Journal: Send + Sync {
    /// The request's id, used as the audit records' request id.
    fn request_id(&self) -> uuid::Uuid;
    /// When the request was accepted (the requester's verification is judged as of then).
    fn accepted_at(&self) -> time::OffsetDateTime;
    /// What an earlier attempt saved.
    fn progress(&self) -> TapProgress;
    /// Save a step; the next step starts only when this succeeded.
    ///
    /// # Errors
    /// The record could not be written (or another worker took the request over).
    async fn save(&self, progress: &TapProgress) -> Result<(), RecoveryError>;
    /// Whether this is a queued request's record (its result is stored and shown later), rather
    /// than a synchronous call's `NoJournal`.
    fn is_queued(&self) -> bool {
        true
    }
    /// The approval this request was given, if any (`approval::Approval` with an approving
    /// decision).
    fn approval(&self) -> Option<approval::Approval> {
        None
    }
    /// Keep the request as waiting for a second approver: what was asked, of whom, why.
    async fn hold(&self, approval: approval::Approval);
    /// What the seal of the request's hold covers, computed from the request as it is now
    /// (`None`: a request that was never held, or a call with no record).
    fn held_as(&self) -> Option<crate::audit::seal::Decided> {
        None
    }
    /// Keep what a reset's removals did, before its pass may be delivered: a retry that finds
    /// the pass delivered reports them (it never removes again). Best effort: a failure is
    /// logged, and such a retry then reports nothing removed.
    async fn save_removals(&self, _done: &RemovalsDone) -> Result<(), RecoveryError> {
        Ok(())
    }
    /// What an earlier attempt's removals did (`save_removals`).
    fn removals(&self) -> Option<RemovalsDone> {
        None
    }
}

/// What a reset's removals did, kept in its request record.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemovalsDone {
    pub removed: Vec<details::MethodEntry>,
    pub failed: Vec<details::MethodEntry>,
    pub kept: Vec<details::MethodEntry>,
}

/// The journal of a synchronous call: a fresh request id, nothing earlier to resume, and
/// nothing kept (the caller gets the answer at once).
pub(crate) struct NoJournal {
    id: uuid::Uuid,
    at: time::OffsetDateTime,
    held: std::sync::Mutex<Option<approval::Approval>>,
}

impl NoJournal {
    pub fn new() -> NoJournal {
        NoJournal {
            id: uuid::Uuid::new_v4(),
            at: time::OffsetDateTime::now_utc(),
            held: std::sync::Mutex::new(None),
        }
    }
    /// What a synchronous call left waiting for an approver (the HTTP layer keeps it as a
    /// request).
    pub fn held(&self) -> Option<approval::Approval> {
        self.held.lock().expect("not poisoned").take()
    }
}

impl Default for NoJournal {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Journal for NoJournal {
    fn request_id(&self) -> uuid::Uuid {
        self.id
    }
    fn accepted_at(&self) -> time::OffsetDateTime {
        self.at
    }
    fn progress(&self) -> TapProgress {
        TapProgress::default()
    }
    async fn save(&self, _progress: &TapProgress) -> Result<(), RecoveryError> {
        Ok(())
    }
    fn is_queued(&self) -> bool {
        false
    }
    async fn hold(&self, approval: approval::Approval) {
        *self.held.lock().expect("not poisoned") = Some(approval);
    }
}
