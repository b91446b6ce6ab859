//! Notices after the answer, durably: the user's notices of a pass or a reset and the approvers'
//! emails go through the outbox, one notice per person: the notice is kept as a record
//! (`notices/{id}.json`, beside the request records) and its id put on the `recovery-notices`
//! queue (`{"noticeId": "<uuid>"}`: no address, no text in a queue). The `notice-worker` function
//! sends it, retried by the host, deletes the record, and audits it (`notice.send`), sent or
//! failed after its last try. The agent's answer waits for the outbox, not for the mail provider.
//!
//! Each record carries a keyed hash (HMAC-SHA256 with the audit key `AUDIT_KEY_SECRET`, and the
//! version that made it, so a notice waiting across a redeployment still verifies; without a Key
//! Vault's audit key, the code key `VERIFICATION_KEY_SECRET`) over its kind, request, user,
//! address, subject and text, bound to its id: a notice written into storage by anyone but the
//! service, or edited there, is never sent (it is on the trail as failed). Storage access alone cannot make the service mail an
//! address of someone's choosing.
//!
//! A notice never holds a pass or a code (the pass travels only on its own channel, on the
//! critical path). Its id is the same however often a resumed recovery posts it, and a message
//! whose record is gone was sent already, so a notice goes out once, except when a worker dies
//! between the provider's acceptance and the record's deletion: then it goes out again.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use crate::audit::{Action, AuditEvent, AuditTrail, Outcome, Phase, Target};
use crate::storage::StorageError;
use crate::storage::queue::MessageQueue;
use crate::storage::records::RecordStore;
use crate::vocab::ports::Notifier;
use crate::vocab::{CallerRecord, Fault};

/// The queue the outbox writes and `notice-worker` reads.
pub const QUEUE: &str = "recovery-notices";

/// How often a notice is tried before it is recorded as failed: the host's `maxDequeueCount`.
pub const ATTEMPTS: u32 = 5;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A pass was issued: to the user's other addresses and the manager.
    Pass,
    /// Methods were removed: to the user and the manager.
    Reset,
    /// A recovery waits for a second approver: to each approver.
    Approver,
}

impl NoticeKind {
    /// How logs name it.
    pub fn what(self) -> &'static str {
        match self {
            NoticeKind::Pass => "pass notice",
            NoticeKind::Reset => "reset notice",
            NoticeKind::Approver => "approver email",
        }
    }
}

/// What a set of notices is about: the recovery's request and its user.
#[derive(Debug, Clone)]
pub struct About {
    pub request_id: Uuid,
    pub target: Target,
}

/// One notice to one person, as the outbox carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// The same for the same notice to the same person about the same request, however often a
    /// resumed recovery posts it.
    pub id: Uuid,
    pub kind: NoticeKind,
    pub request_id: Uuid,
    pub target: Target,
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The keyed hash of the rest (`Outbox::post` sets it; empty until then).
    #[serde(default)]
    pub mac: String,
    /// The audit key's version that made `mac`; absent: the code key made it (`VERIFICATION_KEY_SECRET`,
    /// as before the audit key, or without a Key Vault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// What the audit key's MAC of a notice covers.
fn parts<'a>(id: &'a str, said: &'a SecretString) -> [&'a str; 3] {
    ["mfa-recovery notice v1", id, said.expose_secret()]
}

/// What a notice's keyed hash covers: everything it says, in a fixed order.
fn signed(n: &Notice) -> SecretString {
    SecretString::from(
        serde_json::to_string(&(n.kind, n.request_id, &n.target, &n.to, &n.subject, &n.text)).unwrap_or_default(),
    )
}

impl Notice {
    pub fn new(kind: NoticeKind, about: &About, to: &str, subject: &str, text: &str) -> Notice {
        let name = format!("{}:{}", kind.what(), to.to_ascii_lowercase());
        Notice {
            id: Uuid::new_v5(&about.request_id, name.as_bytes()),
            kind,
            request_id: about.request_id,
            target: about.target.clone(),
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
            mac: String::new(),
            kid: None,
        }
    }
}

/// The message on `recovery-notices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoticeMessage {
    pub notice_id: Uuid,
}

/// The outbox: where notices are kept until sent and the queue that carries their ids; in `dev`
/// and the tests the queue is in-process and `host::pump_local_notices` drains it the way the
/// host would.
pub struct Outbox {
    pub store: Arc<dyn RecordStore>,
    /// Signs each notice kept, and checks it before it is sent: the audit key (`AUDIT_KEY_SECRET`,
    /// whose earlier versions stay readable, so a notice waiting across a redeployment still
    /// verifies) when there is one; else the code key.
    pub(crate) keyed: super::code::KeyedHash,
    pub(crate) key: Option<crate::audit::seal::AuditKey>,
    pub queue: Arc<dyn MessageQueue>,
    pub local: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

fn record_name(id: Uuid) -> String {
    format!("notices/{id}.json")
}

impl Outbox {
    /// Keep `notice` and queue its id. A notice kept already (a resumed recovery posting it again)
    /// is queued again: the worker sends it once.
    ///
    /// # Errors
    /// The record or the queue cannot be written.
    pub async fn post(&self, notice: &Notice) -> Result<(), StorageError> {
        let mut notice = notice.clone();
        let said = signed(&notice);
        match &self.key {
            Some(key) => {
                let (kid, value) = key
                    .current()
                    .await
                    .map_err(|e| StorageError::Unavailable(format!("the notice could not be signed: {e}")))?;
                notice.mac = crate::audit::seal::mac(&value, &parts(&notice.id.to_string(), &said));
                notice.kid = Some(kid);
            }
            None => {
                notice.mac =
                    self.keyed.keep(notice.id, &said).await.map_err(|e| {
                        StorageError::Unavailable(format!("the notice could not be signed: {}", e.message))
                    })?;
            }
        }
        let notice = &notice;
        let data = serde_json::to_vec(notice).unwrap_or_default();
        match self.store.create(&record_name(notice.id), &data).await {
            Ok(_) | Err(StorageError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let message = NoticeMessage { notice_id: notice.id };
        if let Err(e) = self
            .queue
            .post(serde_json::to_string(&message).unwrap_or_default())
            .await
        {
            // The caller sends it at once instead: no record is left behind to be sent again.
            let _ = self.store.delete(&record_name(notice.id)).await;
            return Err(e);
        }
        Ok(())
    }

    /// The notice `id` as the service kept it: read, and its keyed hash checked. `Err` is what
    /// becomes of the message instead: sent already, retried, or dropped (a forged or unreadable
    /// notice, on the trail as failed).
    async fn kept(&self, audit: &AuditTrail, id: Uuid, dequeue_count: u32) -> Result<Notice, Sent> {
        let notice = match self.store.read(&record_name(id)).await {
            Ok(Some(kept)) => match serde_json::from_slice::<Notice>(&kept.data) {
                Ok(n) if n.id == id => n,
                _ => {
                    tracing::error!(notice_id = %id, "a kept notice is unreadable; dropped");
                    return Err(Sent::Done("unreadable notice; dropped".into()));
                }
            },
            Ok(None) => return Err(Sent::Done("sent already".into())),
            Err(e) if dequeue_count < ATTEMPTS => {
                return Err(Sent::Retry(format!("the notice could not be read: {e}")));
            }
            Err(e) => {
                // Its last try: on the trail as failed, so somebody can tell the user.
                tracing::error!(error = %e, notice_id = %id, "a notice could not be read after its last try");
                let event = AuditEvent {
                    caller: CallerRecord {
                        via: "service".into(),
                        ..CallerRecord::default()
                    },
                    action: Action::NoticeSend,
                    target: None,
                    ticket: None,
                    request_id: None,
                    phase: Phase::Outcome,
                    outcome: Some(Outcome::Failed(Fault::NoticeUnavailable.as_str().to_owned())),
                    details: serde_json::json!({"noticeId": id, "tries": dequeue_count, "why": "its record could not be read"}),
                };
                if let Err(e) = audit.record(event).await {
                    tracing::error!(error = %e, notice_id = %id, "a notice's audit record could not be written");
                }
                return Err(Sent::Done("unreadable after its last try; recorded".into()));
            }
        };
        let said = signed(&notice);
        let checked = match (&notice.kid, &self.key) {
            (Some(kid), Some(key)) => key
                .verifies(kid, &parts(&id.to_string(), &said), &notice.mac)
                .await
                .map_err(|e| e.to_string()),
            // Signed with the audit key, and no audit key here: not this service's.
            (Some(_), None) => Ok(false),
            (None, _) => self
                .keyed
                .matches(id, &notice.mac, said.expose_secret())
                .await
                .map_err(|e| e.message),
        };
        match checked {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(notice_id = %id, "a kept notice fails its keyed hash (written or edited by someone other than the service); not sent");
                let _ = self.store.delete(&record_name(id)).await;
                let mut event = event(
                    &notice,
                    Outcome::Failed(Fault::NoticeUnavailable.as_str().to_owned()),
                    dequeue_count,
                );
                event.details["why"] =
                    "its record fails its keyed hash: written or edited by someone other than the service; not sent"
                        .into();
                if let Err(e) = audit.record(event).await {
                    tracing::error!(error = %e, notice_id = %id, "a notice's audit record could not be written");
                }
                return Err(Sent::Done("a notice that fails its keyed hash; not sent".into()));
            }
            Err(e) => {
                return Err(Sent::Retry(format!(
                    "the notice's keyed hash could not be checked: {e}"
                )));
            }
        }
        Ok(notice)
    }

    /// `notice-worker`: send the notice `message` names (its `dequeue_count`th try), record it and
    /// forget it. A message that names no notice is dropped (logged without its text); one whose
    /// notice is gone was sent already.
    pub async fn deliver(
        &self,
        notifier: &dyn Notifier,
        audit: &AuditTrail,
        message: &str,
        dequeue_count: u32,
    ) -> Sent {
        let id = match serde_json::from_str::<NoticeMessage>(message) {
            Ok(m) => m.notice_id,
            Err(e) => {
                tracing::error!(
                    line = e.line(),
                    column = e.column(),
                    "a message on the notice queue names no notice; dropped"
                );
                return Sent::Done("not a notice; dropped".into());
            }
        };
        let notice = match self.kept(audit, id, dequeue_count).await {
            Ok(n) => n,
            Err(done) => return done,
        };
        let outcome = match notifier
            .notify(&notice.to, &notice.subject, &SecretString::from(notice.text.clone()))
            .await
        {
            Ok(()) => Outcome::Succeeded,
            Err(e) if dequeue_count < ATTEMPTS => {
                tracing::warn!(error = %e, notice_id = %id, dequeue_count, what = notice.kind.what(), "a notice could not be sent; the host tries again");
                return Sent::Retry(format!(
                    "{} not sent (try {dequeue_count} of {ATTEMPTS})",
                    notice.kind.what()
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, notice_id = %id, what = notice.kind.what(), "a notice could not be sent after its last try");
                Outcome::Failed(Fault::NoticeUnavailable.as_str().to_owned())
            }
        };
        let sent = outcome == Outcome::Succeeded;
        if let Err(e) = self.store.delete(&record_name(id)).await {
            tracing::warn!(error = %e, notice_id = %id, "a sent notice's record could not be deleted");
        }
        if let Err(e) = audit.record(event(&notice, outcome, dequeue_count)).await {
            // Not retried: a retry would send the notice again.
            tracing::error!(error = %e, notice_id = %id, "a notice's audit record could not be written");
        }
        if sent {
            Sent::Done(format!("{} sent", notice.kind.what()))
        } else {
            Sent::Done(format!(
                "{} failed after {ATTEMPTS} tries; recorded",
                notice.kind.what()
            ))
        }
    }
}

/// The audit record of a notice: who it went to (masked), never its text.
fn event(notice: &Notice, outcome: Outcome, tries: u32) -> AuditEvent {
    AuditEvent {
        caller: CallerRecord {
            via: "service".into(),
            ..CallerRecord::default()
        },
        action: Action::NoticeSend,
        target: Some(notice.target.clone()),
        ticket: None,
        request_id: Some(notice.request_id),
        phase: Phase::Outcome,
        outcome: Some(outcome),
        details: serde_json::json!({
            "noticeId": notice.id,
            "kind": notice.kind,
            "to": crate::vocab::mask_email(&notice.to),
            "tries": tries,
        }),
    }
}

/// What became of one try at a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Finished: sent, recorded as failed after its last try, or a message that can never be sent.
    Done(String),
    /// Failed this time; the host tries again.
    Retry(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            request_id: Uuid::from_u128(7),
            target: Target {
                object_id: Some("u1".into()),
                upn: Some("lee@contoso.test".into()),
            },
        }
    }

    #[test]
    fn the_same_notice_to_the_same_person_has_the_same_id() {
        let a = Notice::new(NoticeKind::Pass, &about(), "Lee@Contoso.test", "s", "t");
        let b = Notice::new(NoticeKind::Pass, &about(), "lee@contoso.test", "s", "t");
        let other = Notice::new(NoticeKind::Reset, &about(), "lee@contoso.test", "s", "t");
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, other.id);
    }

    /// Key Vault with the key.
    struct Key;

    #[async_trait::async_trait]
    impl crate::vocab::ports::SecretSource for Key {
        async fn get(&self, _: &str) -> Result<Option<SecretString>, crate::vocab::ports::SecretsUnavailable> {
            Ok(Some(SecretString::from("k1")))
        }
        async fn invalidate(&self, _: &str) {}
    }

    /// Someone with write access to the storage account, not the service, puts a notice in the
    /// outbox, or edits one the service kept: neither is sent, and each is on the trail as failed.
    #[tokio::test]
    async fn a_notice_written_or_edited_by_anyone_but_the_service_is_never_sent() {
        let (outbox, mut rx, mail, audit, dir) = outbox(0);
        // Forged: a record and a message, no keyed hash (or a made-up one).
        let mut forged = Notice::new(
            NoticeKind::Pass,
            &about(),
            "victim@example.com",
            "Your pass",
            "Call 555-0100",
        );
        forged.mac = "AAAA".into();
        let name = dir.join("records").join(record_name(forged.id));
        std::fs::create_dir_all(name.parent().unwrap()).unwrap();
        std::fs::write(&name, serde_json::to_vec(&forged).unwrap()).unwrap();
        let message = serde_json::to_string(&NoticeMessage { notice_id: forged.id }).unwrap();
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 1).await,
            Sent::Done(_)
        ));
        // Edited: the service kept it; its address was changed in storage.
        let kept = Notice::new(NoticeKind::Reset, &about(), "lee@contoso.test", "s", "t");
        outbox.post(&kept).await.unwrap();
        let message = rx.recv().await.unwrap();
        let path = dir.join("records").join(record_name(kept.id));
        let mut edited: Notice = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(!edited.mac.is_empty(), "the service signs what it keeps");
        edited.to = "attacker@example.com".into();
        std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 1).await,
            Sent::Done(_)
        ));
        assert!(mail.sent.lock().unwrap().is_empty(), "nothing was sent");
        let records = trail(&audit).await;
        assert_eq!(records.len(), 2);
        for r in &records {
            assert_eq!(r.outcome, Some(Outcome::Failed("notice_unavailable".into())));
            assert!(
                r.details["why"].as_str().unwrap().contains("keyed hash"),
                "{:?}",
                r.details
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A vault whose audit key has versions: `rotate` adds one; every version stays readable.
    struct Versions(std::sync::Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl crate::vocab::ports::SecretSource for Versions {
        async fn get(&self, _: &str) -> Result<Option<SecretString>, crate::vocab::ports::SecretsUnavailable> {
            Ok(self.0.lock().unwrap().last().map(|v| SecretString::from(v.clone())))
        }
        async fn get_version(
            &self,
            _: &str,
            version: Option<&str>,
        ) -> Result<Option<(String, SecretString)>, crate::vocab::ports::SecretsUnavailable> {
            let all = self.0.lock().unwrap();
            let i = match version {
                None => all.len().checked_sub(1),
                Some(v) => v.parse::<usize>().ok().filter(|i| *i < all.len()),
            };
            Ok(i.map(|i| (i.to_string(), SecretString::from(all[i].clone()))))
        }
        async fn invalidate(&self, _: &str) {}
    }

    /// With the audit key, a notice kept before the key was rotated (a redeployment adds a
    /// version) is still the service's and is sent; one edited in storage is not.
    #[tokio::test]
    async fn a_notice_signed_with_the_audit_key_survives_its_rotation_and_not_an_edit() {
        let (mut outbox, mut rx, mail, audit, dir) = outbox(0);
        let vault = Arc::new(Versions(std::sync::Mutex::new(vec!["first".into()])));
        outbox.key = Some(crate::audit::seal::AuditKey::new(vault.clone(), "audit-key"));
        let kept = Notice::new(NoticeKind::Pass, &about(), "lee@contoso.test", "s", "t");
        outbox.post(&kept).await.unwrap();
        let message = rx.recv().await.unwrap();
        vault.0.lock().unwrap().push("second".into());
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 1).await,
            Sent::Done(_)
        ));
        assert_eq!(*mail.sent.lock().unwrap(), vec!["lee@contoso.test".to_owned()]);
        let other = Notice::new(NoticeKind::Reset, &about(), "lee@contoso.test", "s", "t");
        outbox.post(&other).await.unwrap();
        let message = rx.recv().await.unwrap();
        let path = dir.join("records").join(record_name(other.id));
        let mut edited: Notice = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(edited.kid.as_deref(), Some("1"), "signed with the current version");
        edited.to = "attacker@example.com".into();
        std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 1).await,
            Sent::Done(_)
        ));
        assert_eq!(mail.sent.lock().unwrap().len(), 1, "the edited notice was not sent");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A mail connector that fails the first `fail` sends and counts the rest.
    struct Mail {
        fail: std::sync::atomic::AtomicU32,
        sent: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Notifier for Mail {
        async fn ready(&self) -> Result<(), crate::vocab::ports::NoticeError> {
            Ok(())
        }
        async fn notify(&self, to: &str, _: &str, _: &SecretString) -> Result<(), crate::vocab::ports::NoticeError> {
            let left = self.fail.load(std::sync::atomic::Ordering::SeqCst);
            if left > 0 {
                self.fail.store(left - 1, std::sync::atomic::Ordering::SeqCst);
                return Err(crate::vocab::ports::NoticeError("the provider answered 503".into()));
            }
            self.sent.lock().unwrap().push(to.to_owned());
            Ok(())
        }
    }

    /// An outbox on a directory, its queue's messages, a mail connector and a trail.
    fn outbox(
        fail: u32,
    ) -> (
        Outbox,
        mpsc::UnboundedReceiver<String>,
        Mail,
        AuditTrail,
        std::path::PathBuf,
    ) {
        let dir = std::env::temp_dir().join(format!("mfa-recovery-notices-{}", Uuid::new_v4()));
        let (queue, rx) = crate::storage::queue::LocalQueue::<String>::new();
        let outbox = Outbox {
            keyed: crate::recovery::code::KeyedHash::new(Arc::new(Key), "verification-key".into()),
            key: None,
            store: Arc::new(crate::storage::records::FileRecords::new(dir.join("records"))),
            queue: Arc::new(queue),
            local: Mutex::new(None),
        };
        let trail = AuditTrail::new(Arc::new(crate::storage::chains::FileStorage::new(dir.join("audit"))));
        let mail = Mail {
            fail: fail.into(),
            sent: std::sync::Mutex::default(),
        };
        (outbox, rx, mail, trail, dir)
    }

    async fn trail(audit: &AuditTrail) -> Vec<crate::audit::AuditRecord> {
        let filter = crate::audit::AuditFilter {
            from: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
            to: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            user: None,
            ticket: None,
            action: Some("notice.send".into()),
            outcome: None,
        };
        audit.query(&filter).await.unwrap()
    }

    #[tokio::test]
    async fn a_notice_posted_twice_and_its_message_delivered_twice_goes_out_once() {
        let (outbox, mut rx, mail, audit, dir) = outbox(0);
        let notice = Notice::new(
            NoticeKind::Pass,
            &about(),
            "lee@contoso.test",
            "subject",
            "A pass was issued",
        );
        outbox.post(&notice).await.unwrap();
        // A resumed recovery posts it again: the same id, a second message.
        outbox.post(&notice).await.unwrap();
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert_eq!(first, second);
        assert_eq!(
            first,
            format!("{{\"noticeId\":\"{}\"}}", notice.id),
            "only the id is queued"
        );
        let kept = std::fs::read_to_string(dir.join("records").join(record_name(notice.id))).unwrap();
        assert!(kept.contains("lee@contoso.test"), "the notice is a record");
        assert_eq!(
            outbox.deliver(&mail, &audit, &first, 1).await,
            Sent::Done("pass notice sent".into())
        );
        assert_eq!(
            outbox.deliver(&mail, &audit, &second, 1).await,
            Sent::Done("sent already".into())
        );
        assert_eq!(*mail.sent.lock().unwrap(), vec!["lee@contoso.test".to_owned()]);
        assert!(
            !dir.join("records").join(record_name(notice.id)).exists(),
            "a sent notice is forgotten"
        );
        let records = trail(&audit).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].outcome, Some(Outcome::Succeeded));
        assert_eq!(records[0].request_id, Some(about().request_id));
        assert_eq!(records[0].details["to"], "l***e@contoso.test");
        assert!(
            !serde_json::to_string(&records[0])
                .unwrap()
                .contains("A pass was issued"),
            "the text is not audited"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_notice_is_tried_again_and_recorded_as_failed_after_its_last_try() {
        let (outbox, mut rx, mail, audit, dir) = outbox(ATTEMPTS + 1);
        let notice = Notice::new(NoticeKind::Reset, &about(), "lee@contoso.test", "s", "t");
        outbox.post(&notice).await.unwrap();
        let message = rx.recv().await.unwrap();
        for tries in 1..ATTEMPTS {
            assert!(matches!(
                outbox.deliver(&mail, &audit, &message, tries).await,
                Sent::Retry(_)
            ));
            assert!(trail(&audit).await.is_empty(), "a retry is not a record yet");
        }
        assert_eq!(
            outbox.deliver(&mail, &audit, &message, ATTEMPTS).await,
            Sent::Done(format!("reset notice failed after {ATTEMPTS} tries; recorded"))
        );
        let records = trail(&audit).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].outcome, Some(Outcome::Failed("notice_unavailable".into())));
        assert_eq!(records[0].details["tries"], ATTEMPTS);
        assert!(mail.sent.lock().unwrap().is_empty());
        // A message that names no notice is dropped, never retried.
        assert!(matches!(
            outbox.deliver(&mail, &audit, "{\"requestId\":1}", 1).await,
            Sent::Done(_)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_notice_that_fails_once_goes_out_on_its_second_try() {
        let (outbox, mut rx, mail, audit, dir) = outbox(1);
        let notice = Notice::new(NoticeKind::Approver, &about(), "isaiah@contoso.test", "s", "t");
        outbox.post(&notice).await.unwrap();
        let message = rx.recv().await.unwrap();
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 1).await,
            Sent::Retry(_)
        ));
        assert!(matches!(
            outbox.deliver(&mail, &audit, &message, 2).await,
            Sent::Done(_)
        ));
        let records = trail(&audit).await;
        assert_eq!(
            (records.len(), &records[0].details["tries"]),
            (1, &serde_json::json!(2))
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_notice_goes_through_the_queue_as_it_was() {
        let n = Notice::new(NoticeKind::Approver, &about(), "a@contoso.test", "subject", "text");
        let back: Notice = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
}
