//! Queued requests that wait for the user (`"verification": {"mode": "link", "channel"}`): the
//! service sends the user a confirmation link as the request's caller, the request waits
//! `awaiting_confirmation`, and runs once the user confirms (its verification is then the
//! link's, `{"id"}`, checked at admission like any other); "this is not me" or no answer in
//! time ends it `refused`, written back to its ticket like every result.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AwaitingLink, Intake, RequestRecord, State, WorkOutcome, encode, name, rendered, submission};
use crate::audit::{Action as AuditAction, Outcome};
use crate::recovery::context::TapContext;
use crate::recovery::verify::Answered;
use crate::recovery::{Answer, RecoveryError};
use crate::storage::StorageError;
use crate::vocab::Refusal;

/// Why a request stopped waiting without running.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ended {
    /// The link could not be sent.
    NotSent,
    /// The user answered "this is not me".
    Repudiated,
    /// Nobody answered in time.
    Expired,
}

fn link_index(verification: Uuid) -> String {
    format!("links/{verification}.json")
}

impl Intake {
    /// Send the link for a request just accepted `awaiting_confirmation`, as its caller; keep
    /// which verification it waits on, and a message due when the link expires (the worker then
    /// ends it unless the user answered). A link that cannot be sent ends the request.
    pub async fn send_link(&self, context: &TapContext<'_>, record: &RequestRecord) {
        let Some(channel) = record.body["verification"]["channel"].as_str() else {
            return;
        };
        let mut body = json!({"channel": channel, "mode": "link", "action": match record.action {
            super::Action::Tap => "tap",
            _ => "reset",
        }});
        if crate::recovery::rules::ticket_id_ok(&record.source.ticket) {
            body["ticket"] = json!({"system": record.source.system, "id": record.source.ticket});
        }
        let sent = context
            .send_verification(&record.caller, &record.user, body.to_string().as_bytes())
            .await;
        let stored = match self.store.read(&name(record.id)).await {
            Ok(Some(v)) => v,
            _ => return,
        };
        let Ok(mut current) = super::decode(&stored.data) else {
            return;
        };
        match sent {
            Ok(sent) => {
                current.awaiting_link = Some(AwaitingLink {
                    verification_id: sent.id,
                    expires_at: sent.expires_at,
                });
                let index = json!({"requestId": record.id}).to_string();
                if let Err(e) = self.store.create(&link_index(sent.id), index.as_bytes()).await {
                    tracing::error!(error = %e, "a link's request could not be indexed");
                }
                if let Err(e) = self
                    .store
                    .replace(&name(record.id), &encode(&current), &stored.etag)
                    .await
                {
                    tracing::error!(error = %e, "the link a request waits on could not be kept");
                }
                let wait = (sent.expires_at - OffsetDateTime::now_utc()).whole_seconds().max(0);
                let wait = std::time::Duration::from_secs(u64::try_from(wait).unwrap_or(0) + 5);
                if let Err(e) = self.queue.send_after(record.id, wait).await {
                    tracing::error!(error = %e, "the link's expiry could not be queued");
                }
            }
            Err(e) => {
                let _ = self.end(context, current, stored.etag, Ended::NotSent, Some(&e)).await;
            }
        }
    }

    /// The user answered link `verification`: the request waiting on it runs (confirmed) or
    /// ends (repudiated). Nothing when no request waits on it.
    pub async fn link_answered(&self, context: &TapContext<'_>, verification: Uuid, answered: Answered) {
        let Ok(Some(index)) = self.store.read(&link_index(verification)).await else {
            return;
        };
        let Some(id) = serde_json::from_slice::<serde_json::Value>(&index.data)
            .ok()
            .and_then(|v| v["requestId"].as_str().and_then(|i| Uuid::parse_str(i).ok()))
        else {
            return;
        };
        let Ok(Some(stored)) = self.store.read(&name(id)).await else {
            return;
        };
        let Ok(mut record) = super::decode(&stored.data) else {
            return;
        };
        let waits = record.state == State::AwaitingConfirmation
            && record
                .awaiting_link
                .as_ref()
                .is_some_and(|a| a.verification_id == verification);
        if !waits {
            return;
        }
        match answered {
            Answered::Opened => {}
            Answered::Verified => {
                record.body["verification"] = json!({"id": verification});
                record.become_(State::Accepted, submission::now());
                record.awaiting_link = None;
                match self.store.replace(&name(id), &encode(&record), &stored.etag).await {
                    Ok(_) => {
                        if let Err(e) = self.queue.send(id).await {
                            tracing::error!(error = %e, "a confirmed request could not be queued; its expiry message will run it");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "a confirmed request could not be resumed"),
                }
            }
            Answered::Repudiated => {
                let _ = self.end(context, record, stored.etag, Ended::Repudiated, None).await;
            }
        }
    }

    /// A request that waited on a link and will not run: `refused`, audited, written back.
    pub(super) async fn link_ended(
        &self,
        context: &TapContext<'_>,
        record: RequestRecord,
        etag: String,
        why: Ended,
    ) -> WorkOutcome {
        self.end(context, record, etag, why, None).await
    }

    async fn end(
        &self,
        context: &TapContext<'_>,
        mut record: RequestRecord,
        etag: String,
        why: Ended,
        cause: Option<&RecoveryError>,
    ) -> WorkOutcome {
        let error = match (why, cause) {
            (Ended::NotSent, Some(e)) => e.clone(),
            (Ended::Repudiated, _) => RecoveryError::refused(
                Refusal::RecoveryBlocked,
                "the user answered the confirmation link \"this is not me\": nothing was changed, and recoveries for them are blocked",
            ),
            _ => RecoveryError::refused(
                Refusal::VerificationExpired,
                "the user did not answer the confirmation link in time; nothing was changed. Ask again if it is still needed",
            ),
        };
        let (answered, result) = rendered(self.answers.as_ref(), Answer::Error(&error));
        record.finish(State::Refused, answered, result, submission::now());
        record.awaiting_link = None;
        let etag = match self.store.replace(&name(record.id), &encode(&record), &etag).await {
            Ok(etag) => etag,
            Err(StorageError::Conflict(_)) => {
                return WorkOutcome::Done(format!("request {} was decided meanwhile", record.id));
            }
            Err(e) => return WorkOutcome::Retry(format!("the end of a wait could not be saved: {e}")),
        };
        self.index_open(record.id, false).await;
        super::audit(
            context,
            &record,
            AuditAction::RequestClose,
            Outcome::Refused(error.code.as_str().to_owned()),
            json!({"event": "link", "ended": format!("{why:?}").to_ascii_lowercase()}),
        )
        .await;
        self.write_back(context, record, etag).await
    }
}
