//! Requests that wait for a second approver (`recovery::approval`): kept as `pending_approval`,
//! announced to the approvers (email to `APPROVAL_NOTIFY_GROUP`, a signed `APPROVAL_WEBHOOK`),
//! approved or denied (`POST /api/requests/{id}/approve`, `/deny`), or expired by a queue message
//! that becomes visible when the wait is over. Every attempt on a privileged account also goes to
//! `SECURITY_ALERT_WEBHOOK`.
//!
//! An approval is a conditional write on the record (`If-Match`): two approvers racing, or an
//! approver racing the expiry, leave exactly one decision. An approved request is queued again
//! and runs from the start with its request id, its verification and its caller slot.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Intake, RequestRecord, State, WorkOutcome, decode, encode, name, submission};
use crate::audit::{Action as AuditAction, Outcome};
use crate::recovery::approval::{Approval, Decision};
use crate::recovery::context::TapContext;
use crate::recovery::{Answer, RecoveryError};
use crate::storage::StorageError;
use crate::storage::records::{Update, UpdateError, update};
use crate::vocab::CallerRecord;
use crate::vocab::paths;
use crate::vocab::{Fault, Refusal};

fn not_found() -> RecoveryError {
    RecoveryError::refused(Refusal::RequestNotFound, "no request with this id")
}

fn expired() -> RecoveryError {
    RecoveryError::refused(
        Refusal::ApprovalExpired,
        "the request waited too long and expired; nothing was changed",
    )
}

/// The approval a request waits for, or why it waits for none.
fn waiting(record: &RequestRecord) -> Result<Approval, RecoveryError> {
    record
        .approval
        .clone()
        .filter(|_| record.state == State::PendingApproval)
        .ok_or_else(|| {
            RecoveryError::refused(
                Refusal::NotPendingApproval,
                format!("the request is {}, not waiting for an approval", record.state.as_str()),
            )
        })
}

fn unavailable(e: impl std::fmt::Display) -> RecoveryError {
    tracing::error!(error = %e, "request storage failed during an approval");
    RecoveryError::failed(
        Fault::StorageUnavailable,
        "request storage is unavailable; nothing was decided. Try again",
    )
}

/// What an approver agrees to, as lines of text for the email: the reset's dry run, where the
/// pass goes, how the caller was verified. Masked addresses only; nothing secret.
fn plan_text(approval: &Value) -> String {
    let kinds = |list: &Value| {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|m| {
                        format!(
                            "{} {}",
                            m["type"].as_str().unwrap_or("?"),
                            m["label"].as_str().unwrap_or("")
                        )
                        .trim()
                        .to_owned()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "nothing".to_owned())
    };
    let mut out = String::new();
    let plan = &approval["plan"];
    if plan["reset"].is_object() {
        out.push_str(&format!(
            "Reset (scope {}): removes {}; leaves {}\n",
            plan["reset"]["scope"].as_str().unwrap_or("portal"),
            kinds(&plan["reset"]["removed"]),
            kinds(&plan["reset"]["remaining"])
        ));
    }
    if plan["pass"].is_object() {
        out.push_str(&format!(
            "Pass: by {} to {}, valid {} minutes\n",
            plan["pass"]["channel"].as_str().unwrap_or("?"),
            plan["pass"]["to"].as_str().unwrap_or("(no address now)"),
            plan["pass"]["lifetimeMinutes"]
        ));
    }
    let v = &approval["verification"];
    if v.is_object() {
        let how = match v["channel"].as_str() {
            Some(channel) => format!(
                "a code by {channel} to {}, confirmed {}",
                v["sentTo"].as_str().unwrap_or("?"),
                v["verifiedAt"].as_str().unwrap_or("?")
            ),
            None => format!(
                "\"{}\" by {} at {} (typed by the caller)",
                v["method"].as_str().unwrap_or("?"),
                v["verifiedBy"].as_str().unwrap_or("?"),
                v["verifiedAt"].as_str().unwrap_or("?")
            ),
        };
        out.push_str(&format!("Caller verified: {how}\n"));
    }
    if let Some(reason) = approval["request"]["reason"].as_str() {
        out.push_str(&format!("Reason given: {reason}\n"));
    }
    out
}

/// The requests not finished yet (queued, running, retrying, waiting for an approver): one empty
/// entry per request, `open/{id}`, beside the records, made when the request opens and deleted
/// when it finishes. `GET /api/approvals` and a user's open requests list them. No document is
/// shared between requests, so concurrent intakes never wait on one another (issue "An intake
/// without a hot spot"). Every record an entry names is read again, so a stale entry shows
/// nothing, and an entry whose request finished is deleted then.
const OPEN: &str = "open/";

/// The single document earlier versions kept instead (every id in one JSON array): each id it
/// holds is given its own entry, then it is emptied, at the version read (an instance of the
/// earlier version adding an id meanwhile keeps it for the next read).
const OPEN_BEFORE: &str = "requests-open.json";

fn open_entry(id: Uuid) -> String {
    format!("{OPEN}{id}")
}

impl Intake {
    /// Open or close `id`'s entry among the open requests. Best effort: the approvers are told by
    /// email and webhook whatever happens to it, and a stale entry is deleted when it is read.
    pub(super) async fn index_open(&self, id: Uuid, open: bool) {
        let done = if open {
            match self.store.create(&open_entry(id), b"{}").await {
                Err(StorageError::Conflict(_)) => Ok(()),
                other => other.map(|_| ()),
            }
        } else {
            self.store.delete(&open_entry(id)).await
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, request_id = %id, open, "an open request's entry could not be changed");
        }
    }

    /// Give each id of the earlier single document its own entry, then empty it at the version
    /// read (after an upgrade, and while instances of the earlier version still run). It is
    /// emptied only when every entry was made.
    async fn open_entries_from_before(&self) -> Result<(), RecoveryError> {
        let Some(stored) = self.store.read(OPEN_BEFORE).await.map_err(unavailable)? else {
            return Ok(());
        };
        let ids: Vec<Uuid> = serde_json::from_slice(&stored.data).map_err(|e| {
            RecoveryError::failed(
                Fault::StorageUnavailable,
                format!(
                    "the index of open requests is unreadable ({e}); the approvers' emails still name each request"
                ),
            )
        })?;
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            match self.store.create(&open_entry(id), b"{}").await {
                Ok(_) | Err(StorageError::Conflict(_)) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        match self.store.replace(OPEN_BEFORE, b"[]", &stored.etag).await {
            // Written meanwhile: its new ids get their entries at the next read.
            Ok(_) | Err(StorageError::Conflict(_)) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The requests waiting for an approver now (not decided, not expired), oldest first.
    ///
    /// # Errors
    /// Storage is down.
    pub async fn pending(&self) -> Result<Vec<RequestRecord>, RecoveryError> {
        let now = submission::now();
        Ok(self
            .open_requests()
            .await?
            .into_iter()
            .filter(|r| r.state == State::PendingApproval && r.approval.as_ref().is_some_and(|a| a.expires_at > now))
            .collect())
    }

    /// Every request not finished yet, oldest first; the entries of finished ones found among
    /// them are deleted.
    ///
    /// # Errors
    /// Storage is down, or the index is unreadable.
    pub(crate) async fn open_requests(&self) -> Result<Vec<RequestRecord>, RecoveryError> {
        self.open_entries_from_before().await?;
        let ids: Vec<Uuid> = self
            .store
            .list(OPEN)
            .await
            .map_err(unavailable)?
            .iter()
            .filter_map(|n| n.strip_prefix(OPEN).and_then(|id| Uuid::parse_str(id).ok()))
            .collect();
        // Read the records 16 at a time: on Blob Storage each is a round trip.
        use futures::StreamExt;
        let reads: Vec<(Uuid, Result<Option<crate::storage::records::Versioned>, StorageError>)> =
            futures::stream::iter(ids)
                .map(|id| async move { (id, self.store.read(&name(id)).await) })
                .buffered(16)
                .collect()
                .await;
        let mut open = Vec::new();
        let mut finished = Vec::new();
        for (id, read) in reads {
            let Some(stored) = read.map_err(unavailable)? else {
                finished.push(id);
                continue;
            };
            let Ok(record) = decode(&stored.data) else {
                tracing::error!(request_id = %id, "an open request's record is unreadable; not listed");
                continue;
            };
            if record.state.is_final() {
                finished.push(id);
            } else {
                open.push(record);
            }
        }
        // Finished meanwhile: their entries go.
        futures::future::join_all(finished.into_iter().map(|id| self.index_open(id, false))).await;
        open.sort_by_key(|r| r.created_at);
        Ok(open)
    }

    /// A queued request's attempt ended in a hold: save it as `pending_approval`, schedule its
    /// expiry, and tell the approvers.
    pub(super) async fn held(&self, context: &TapContext<'_>, mut record: RequestRecord, etag: String) -> WorkOutcome {
        // Nothing was decided yet: no result, only the approval it waits for.
        record.hold(submission::now());
        if let Err(e) = Self::seal_hold(context, &mut record).await {
            return WorkOutcome::Retry(format!("the hold could not be sealed: {}", e.message));
        }
        if let Err(e) = self.store.replace(&name(record.id), &encode(&record), &etag).await {
            return WorkOutcome::Retry(format!("the hold could not be saved: {e}"));
        }
        self.index_open(record.id, true).await;
        self.announce(context, &record).await;
        WorkOutcome::Done(format!("request {} waits for an approver", record.id))
    }

    /// Keep a synchronous call's held recovery as a request (`202` with its status URL): the same
    /// request id, so its verification and caller slot carry over when it is approved.
    ///
    /// # Errors
    /// Storage is down: the recovery is refused (nothing was changed).
    pub(crate) async fn hold_call(
        &self,
        context: &TapContext<'_>,
        id: Uuid,
        action: super::Action,
        body: &[u8],
        caller: CallerRecord,
        approval: Approval,
    ) -> Result<RequestRecord, RecoveryError> {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let now = submission::now();
        let ticket = &body["ticket"];
        let record = RequestRecord {
            id,
            idempotency_key: format!("call:{id}"),
            fingerprint: String::new(),
            action,
            user: approval.target_upn.clone(),
            body: body.clone(),
            source: super::Source {
                system: ticket["system"].as_str().unwrap_or("api").to_owned(),
                ticket: ticket["id"].as_str().unwrap_or_default().to_owned(),
                sys_id: None,
                callback_url: None,
                delivery_id: None,
            },
            caller,
            state: State::PendingApproval,
            created_at: approval.requested_at,
            updated_at: now,
            queued_at: None,
            attempts: 1,
            started_at: Some(now),
            claim: None,
            progress: crate::recovery::TapProgress::default(),
            last_error: None,
            answered: None,
            result: None,
            finished_at: None,
            write_back: super::WriteBackStatus {
                state: super::WriteBackState::None,
                target: None,
                attempts: 0,
                last_error: None,
            },
            approval: Some(approval),
            requested_by: None,
            awaiting_link: None,
            removals: None,
        };
        let mut record = record;
        Self::seal_hold(context, &mut record).await?;
        self.store
            .create(&name(id), &encode(&record))
            .await
            .map_err(unavailable)?;
        self.index_open(id, true).await;
        self.announce(context, &record).await;
        Ok(record)
    }

    /// Record the hold (`request.approval`, event `held`, by the requester) and seal it over that
    /// record: an approver then decides on what was asked, and the worker runs only that.
    ///
    /// # Errors
    /// The trail or the key is unavailable: the hold is not kept (nothing was changed).
    async fn seal_hold(context: &TapContext<'_>, record: &mut RequestRecord) -> Result<(), RecoveryError> {
        let Some(hold) = record.held_as() else { return Ok(()) };
        let failed = |e: crate::audit::AuditError| {
            tracing::error!(error = %e, "a hold could not be recorded or sealed");
            RecoveryError::failed(
                Fault::AuditUnavailable,
                "the recovery needs a second approver, but the hold cannot be recorded now; nothing was changed. Try again",
            )
        };
        let approval = record.approval.as_ref().expect("held_as needs an approval");
        let event = crate::audit::AuditEvent {
            caller: record.caller.clone(),
            action: AuditAction::RequestApproval,
            target: Some(crate::audit::Target {
                object_id: Some(approval.target_id.to_string()),
                upn: Some(record.user.clone()),
            }),
            ticket: Some(record.ticket()),
            request_id: Some(record.id),
            phase: crate::audit::Phase::Outcome,
            outcome: Some(Outcome::Refused(Refusal::ApprovalRequired.as_str().to_owned())),
            details: json!({"event": "held", "reasons": approval.reasons, "privileged": approval.privileged}),
        };
        let audited = context.audit.record(event).await.map_err(failed)?;
        let seal = context.audit.seal(&hold, &audited).await.map_err(failed)?;
        record.approval.as_mut().expect("checked").hold_seal = seal;
        Ok(())
    }

    /// Schedule the expiry, email the approvers, call the webhooks.
    async fn announce(&self, context: &TapContext<'_>, record: &RequestRecord) {
        let Some(approval) = &record.approval else { return };
        let delay = (approval.expires_at - submission::now()).max(time::Duration::seconds(1));
        if let Err(e) = self
            .queue
            .send_after(record.id, delay.try_into().unwrap_or(std::time::Duration::from_secs(1)))
            .await
        {
            // The approve and deny calls check the time themselves; only the write-back of an
            // expiry nobody asks about waits.
            tracing::error!(error = %e, request_id = %record.id, "the approval's expiry could not be scheduled");
        }
        let asked = record.requester();
        let who = match &asked.person {
            Some(p) => format!("{} (object id {})", p.upn.unwrap_or("?"), p.object_id.unwrap_or("?")),
            None => format!(
                "UNKNOWN: no person is tied to this request{}. Any approver may decide it; find out who asked first",
                asked.given.map_or_else(String::new, |g| format!(
                    " (the ticket names \"{g}\", not found in the directory)"
                ))
            ),
        };
        let plan = plan_text(&serde_json::to_value(approval.view()).expect("an approval serializes"));
        let open_it = context.settings.approval.console_url.as_ref().map_or_else(
            || format!("POST {} or {}", paths::approve(record.id), paths::deny(record.id)),
            |console| {
                format!(
                    "{console}#approve={} (or POST {} or {})",
                    record.id,
                    paths::approve(record.id),
                    paths::deny(record.id)
                )
            },
        );
        let text = format!(
            "A recovery waits for your approval.\n\nWhat: {} for {}\nWhy it needs a second person: {}\nAsked by: {} (through {})\nTicket: {} {}\n{plan}Expires: {} UTC\n\nCheck with the requester, through a channel you trust, that this is real. Then approve or deny it, with a comment: {} (or `mfa-recovery approve {}`). If you did not expect this, deny it and tell your security team.",
            record.action.as_str(),
            approval.target_upn,
            approval.reasons.join(", "),
            who,
            record.caller.via,
            record.source.system,
            record.source.ticket,
            super::rfc3339(approval.expires_at),
            open_it,
            record.id,
        );
        let told = context.tell_approvers(record.id, approval, &record.caller, &text).await;
        let webhook = match &context.settings.approval.webhook {
            Some(url) => {
                self.writeback
                    .event(
                        url,
                        "recovery.approval.requested",
                        format!("msg_{}_approval", record.id.simple()),
                        {
                            let mut view = record.view(self.answers.as_ref());
                            view.console_url = context
                                .settings
                                .approval
                                .console_url
                                .as_ref()
                                .map(|console| format!("{console}#approve={}", record.id));
                            view
                        },
                    )
                    .await
            }
            None => false,
        };
        super::audit(
            context,
            record,
            AuditAction::RequestApproval,
            Outcome::Succeeded,
            json!({"event": "requested", "approval": approval.view(), "approversEmailed": told, "webhook": webhook}),
        )
        .await;
        if approval.privileged {
            self.alert_privileged(context, record, "held_for_approval", None).await;
        }
    }

    /// Tell `SECURITY_ALERT_WEBHOOK` of an attempt on a privileged account.
    pub(crate) async fn alert_privileged(
        &self,
        context: &TapContext<'_>,
        record: &RequestRecord,
        outcome: &str,
        by: Option<&CallerRecord>,
    ) {
        let Some(url) = &context.settings.approval.security_alert_webhook else {
            return;
        };
        let mut data = json!({
            "requestId": record.id,
            "action": record.action.as_str(),
            "user": record.user,
            "outcome": outcome,
            "requester": record.caller,
            "ticket": {"system": record.source.system, "id": record.source.ticket},
        });
        if let Some(by) = by {
            data["decidedBy"] = json!(by);
        }
        self.writeback
            .event(
                url,
                "recovery.privileged.attempt",
                format!("msg_{}_{outcome}", record.id.simple()),
                data,
            )
            .await;
    }

    /// Tell `SECURITY_ALERT_WEBHOOK` that a recovery found a stored decision (an approval, a
    /// verification) the service did not write: someone with the storage forged or edited it.
    pub(crate) async fn alert_tampered(
        &self,
        context: &TapContext<'_>,
        request_id: Uuid,
        user: &str,
        requester: &CallerRecord,
        message: &str,
    ) {
        let Some(url) = &context.settings.approval.security_alert_webhook else {
            return;
        };
        let data = json!({"requestId": request_id, "user": user, "outcome": "state_tampered",
            "requester": requester, "message": message});
        self.writeback
            .event(
                url,
                "recovery.state_tampered",
                format!("msg_{}_tampered", request_id.simple()),
                data,
            )
            .await;
    }

    /// Tell `SECURITY_ALERT_WEBHOOK` that a user answered a confirmation link "this is not me".
    pub(crate) async fn alert_repudiated(
        &self,
        context: &TapContext<'_>,
        record: &crate::recovery::verification::VerificationRecord,
    ) {
        let Some(url) = &context.settings.approval.security_alert_webhook else {
            return;
        };
        let data = json!({
            "verificationId": record.id,
            "user": record.upn,
            "userId": record.user_id,
            "outcome": "repudiated",
            "requester": record.caller,
            "agent": record.agent,
            "channel": record.channel,
            "sentTo": record.sent_to,
            "ticket": record.ticket,
            "action": record.action,
            "blockedHours": context.settings.not_me_block_hours,
        });
        self.writeback
            .event(
                url,
                "recovery.repudiated",
                format!("msg_{}_repudiated", record.id.simple()),
                data,
            )
            .await;
    }

    /// Tell `SECURITY_ALERT_WEBHOOK` of an attempt on a privileged account that left no request
    /// record (a synchronous call refused, a code sent): `id` names the message.
    pub(crate) async fn alert_attempt(
        &self,
        context: &TapContext<'_>,
        id: &str,
        attempt: &super::call::PrivilegedAttempt<'_>,
    ) {
        let Some(url) = &context.settings.approval.security_alert_webhook else {
            return;
        };
        self.writeback
            .event(url, "recovery.privileged.attempt", id.to_owned(), attempt)
            .await;
    }

    /// A look at a privileged account (`protected` in the summary) is what an attacker with an
    /// agent's session does first: the SOC hears of it, signed, in the background (the look-up
    /// does not wait for it).
    pub(crate) fn alert_lookup(
        self: &std::sync::Arc<Self>,
        context: &TapContext<'_>,
        summary: &crate::recovery::summary::UserSummary,
        requester: &CallerRecord,
    ) {
        let Some(url) = context.settings.approval.security_alert_webhook.clone() else {
            return;
        };
        if !summary.protected() {
            return;
        }
        let who = summary.who();
        let data =
            json!({"outcome": "looked_up", "user": who.user_principal_name, "userId": who.id, "requester": requester});
        let id = format!("msg_{}_lookup", Uuid::new_v4().simple());
        let intake = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            intake
                .writeback
                .event(&url, "recovery.privileged.lookup", id, data)
                .await;
        });
    }

    /// The requests about the user (UPN or object id) not finished yet: queued, retrying, or
    /// waiting for an approver; each as its id, action, status and creation.
    ///
    /// # Errors
    /// The index of open requests or a record cannot be read.
    pub(crate) async fn open_for(&self, upn: &str, id: &str) -> Result<Vec<super::view::OpenRequest>, RecoveryError> {
        Ok(self
            .open_requests()
            .await?
            .iter()
            .filter(|r| r.user.eq_ignore_ascii_case(upn) || r.user.eq_ignore_ascii_case(id))
            .map(RequestRecord::open_view)
            .collect())
    }

    /// A pending request whose wait is over: `refused` with `approval_expired`, audited,
    /// written back.
    pub(super) async fn expire(
        &self,
        context: &TapContext<'_>,
        mut record: RequestRecord,
        etag: String,
    ) -> WorkOutcome {
        let now = submission::now();
        let error = RecoveryError::refused(
            Refusal::ApprovalExpired,
            "nobody approved the recovery in time; nothing was changed. Ask again if it is still needed",
        );
        let (answered, result) = super::rendered(self.answers.as_ref(), Answer::Error(&error));
        record.finish(State::Refused, answered, result, now);
        let etag = match self.store.replace(&name(record.id), &encode(&record), &etag).await {
            Ok(etag) => etag,
            Err(StorageError::Conflict(_)) => {
                return WorkOutcome::Done(format!("request {} was decided meanwhile", record.id));
            }
            Err(e) => return WorkOutcome::Retry(format!("the expiry could not be saved: {e}")),
        };
        self.index_open(record.id, false).await;
        super::audit(
            context,
            &record,
            AuditAction::RequestApproval,
            Outcome::Refused("approval_expired".into()),
            json!({"event": "expired"}),
        )
        .await;
        if record.approval.as_ref().is_some_and(|a| a.privileged) {
            self.alert_privileged(context, &record, "expired", None).await;
        }
        self.write_back(context, record, etag).await
    }

    /// `POST /api/requests/{id}/approve` or `/deny`: one decision, by an approver who may make it.
    ///
    /// # Errors
    /// `request_not_found`, `not_pending_approval`, `approval_expired`, the approver checks, or a
    /// fault (nothing decided).
    pub async fn decide(
        &self,
        context: &TapContext<'_>,
        id: Uuid,
        approver: &CallerRecord,
        approved: bool,
        comment: String,
    ) -> Result<RequestRecord, RecoveryError> {
        // Read, and check the approver against the directory, before any write: the checks
        // call Graph, which must not sit between a read and its conditional write.
        let stored = self
            .store
            .read(&name(id))
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        let record = decode(&stored.data).map_err(unavailable)?;
        let approval = waiting(&record)?;
        if approval.expires_at <= submission::now() {
            let _ = self.expire(context, record, stored.etag).await;
            return Err(expired());
        }
        // (An expiry needs no trust: a request found expired just ends.)
        self.may_decide(context, &record, &approval, approver, approved).await?;
        let decision = Decision {
            approved,
            by: approver.clone(),
            at: submission::now(),
            comment,
            seal: None,
        };
        let (decision, decided_record) = self.sealed(context, &record, &approval, decision).await?;
        let answers = &self.answers;
        // The one decision: written only if the request still waits for the approval checked.
        let record = update(&*self.store, &name(id), 5, |current: Option<RequestRecord>| {
            let mut record = current.ok_or_else(not_found)?;
            let now = decision.at;
            let pending = waiting(&record)?;
            if pending.requested_at != approval.requested_at {
                return Err(RecoveryError::refused(
                    Refusal::NotPendingApproval,
                    "the request was held again since it was read; read it and decide again",
                ));
            }
            if pending.expires_at <= now {
                return Err(expired());
            }
            record.approval = Some(Approval {
                decision: Some(decision.clone()),
                ..pending
            });
            if approved {
                record.approve(now);
            } else {
                let error = RecoveryError::refused(
                    Refusal::ApprovalDenied,
                    format!("an approver denied the recovery: {}", decision.comment),
                );
                let (answered, result) = super::rendered(answers.as_ref(), Answer::Error(&error));
                record.finish(State::Refused, answered, result, now);
            }
            Ok(Update::Write(record.clone(), record))
        })
        .await
        .map_err(|e| match e {
            UpdateError::Refused(e) => e,
            UpdateError::Storage(StorageError::Conflict(_)) => RecoveryError::failed(
                Fault::ClaimLost,
                "the request changed while it was being decided; read it and try again",
            ),
            UpdateError::Storage(e) => unavailable(e),
        });
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                // The decision recorded above did not take: the trail says so too.
                self.audit_decision(context, &decided_record, approver, approved, Some(&e))
                    .await;
                return Err(e);
            }
        };
        if !approved {
            self.index_open(id, false).await;
        }
        if approval.privileged {
            let outcome = if approved { "approved" } else { "denied" };
            self.alert_privileged(context, &record, outcome, Some(approver)).await;
        }
        // Approved: run it. Denied: the worker writes the result back. If the message cannot
        // be sent, the expiry message already on the queue runs it (or writes it back).
        if let Err(e) = self.queue.send(id).await {
            tracing::error!(error = %e, request_id = %id, "a decided request could not be queued; its expiry message will pick it up");
        }
        Ok(record)
    }

    /// Whether `approver` may decide on `record`: the hold as the service sealed it (what the
    /// requester asked; else `state_tampered`, the SOC told), then the approver checks. A refusal
    /// is recorded.
    async fn may_decide(
        &self,
        context: &TapContext<'_>,
        record: &RequestRecord,
        approval: &Approval,
        approver: &CallerRecord,
        approved: bool,
    ) -> Result<(), RecoveryError> {
        let held = match record.held_as() {
            Some(hold) => {
                context
                    .untampered(
                        &hold,
                        approval.hold_seal.as_ref(),
                        AuditAction::RequestApproval,
                        "held request",
                    )
                    .await
            }
            None => Ok(()),
        };
        if let Err(e) = &held
            && e.code == crate::vocab::ErrorCode::Refused(Refusal::StateTampered)
        {
            self.alert_tampered(context, record.id, &record.user, &record.caller, &e.message)
                .await;
        }
        let checked = match held {
            Ok(()) => context.check_approver(approver, &record.caller, approval).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &checked {
            self.audit_decision(context, record, approver, approved, Some(e)).await;
        }
        checked
    }

    /// A decision recorded first, then sealed over itself and that record: a decision the
    /// trail does not hold, or that is not sealed, is never written. The record as decided.
    async fn sealed(
        &self,
        context: &TapContext<'_>,
        record: &RequestRecord,
        approval: &Approval,
        mut decision: Decision,
    ) -> Result<(Decision, RequestRecord), RecoveryError> {
        let mut decided_record = record.clone();
        decided_record.approval = Some(Approval {
            decision: Some(decision.clone()),
            ..approval.clone()
        });
        let audited = self
            .audit_decision(context, &decided_record, &decision.by, decision.approved, None)
            .await
            .ok_or_else(|| unavailable("the decision's audit record could not be written"))?;
        decision.seal = context
            .audit
            .seal(
                &crate::recovery::approval::decided(record.id, approval, &decision),
                &audited,
            )
            .await
            .map_err(unavailable)?;
        Ok((decision, decided_record))
    }

    async fn audit_decision(
        &self,
        context: &TapContext<'_>,
        record: &RequestRecord,
        approver: &CallerRecord,
        approved: bool,
        refused: Option<&RecoveryError>,
    ) -> Option<crate::audit::AuditRecord> {
        let outcome = match refused {
            None => Outcome::Succeeded,
            Some(e) => e.outcome(),
        };
        let event = crate::audit::AuditEvent {
            caller: approver.clone(),
            action: AuditAction::RequestApproval,
            target: Some(crate::audit::Target {
                object_id: record.approval.as_ref().map(|a| a.target_id.to_string()),
                upn: Some(record.user.clone()),
            }),
            ticket: Some(record.ticket()),
            request_id: Some(record.id),
            phase: crate::audit::Phase::Outcome,
            outcome: Some(outcome),
            details: json!({
                "event": if approved { "approve" } else { "deny" },
                "requester": record.caller,
                "approval": record.approval.as_ref().map(Approval::view),
                "error": refused.map(|e| e.message.clone()),
            }),
        };
        match context.audit.record(event).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "an approval decision could not be recorded");
                None
            }
        }
    }
}
