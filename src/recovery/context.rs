//! The ports every recovery stage reaches through (Graph, the audit trail, the connectors, the
//! settings, the privilege check, the rate limits, the verification store), and what all stages
//! share: the audit write, the rate-limit slots, the errors a failed read becomes.

use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use super::limits::Limits;
use super::privilege::PrivilegeCheck;
use super::request::VerificationBody;
use crate::audit::{Action, AuditEvent, AuditTrail, Outcome, Phase, Target, Ticket};
use crate::config::TapSettings;
use crate::delivery::Deliverer;
use crate::graph::GraphClient;
use crate::vocab::CallerRecord;
use crate::vocab::{Fault, Refusal};

/// Everything issuing a pass needs.
pub struct TapContext<'a> {
    pub graph: &'a GraphClient,
    pub audit: &'a AuditTrail,
    pub deliverer: &'a Deliverer,
    pub settings: &'a TapSettings,
    pub privilege: &'a PrivilegeCheck,
    pub limits: &'a Limits,
    /// Who is told of a pass, a reset or a waiting approval (email by default).
    pub notifier: &'a dyn crate::vocab::ports::Notifier,
    pub verifications: &'a super::verification::Verifications,
    /// How the user proves it is them (a code read back by default).
    pub verifier: &'a dyn super::verifier::Verifier,
    /// Or a confirmation link they answer on their own device (`mode: link`).
    pub link: &'a dyn super::verifier::Verifier,
    /// The tenant's facts kept at most 60 s (the TAP policy; this API's are the privilege check's).
    pub facts: &'a super::fresh::TenantFacts,
    /// Where notices go to be sent after the answer; `None` sends them at once (the command line).
    pub outbox: Option<&'a super::notice::Outbox>,
    /// When the recovery started: the one "now" its reads are asked with (so the same read asked
    /// twice is the same URL, answered once).
    pub started: OffsetDateTime,
}

pub(crate) fn graph_failed(e: crate::graph::GraphError) -> RecoveryError {
    tracing::error!(error = %e, "Graph call failed");
    if e.is_forbidden() {
        return permission_refused(e.needs(), "nothing was changed");
    }
    RecoveryError::failed(
        Fault::GraphUnavailable,
        "Microsoft Graph could not be reached or refused the call; nothing was changed. Try again later.",
    )
}

/// Graph answered 403: the identity this runs as lacks a Graph permission (`needs`, when the call
/// says which). Retrying does not help; granting it does (docs/deploy.md lists them).
pub(crate) fn permission_refused(needs: Option<&str>, what_happened: &str) -> RecoveryError {
    let which = needs.map_or_else(
        || "a Graph permission the recovery needs".to_owned(),
        |p| format!("the Graph permission {p}"),
    );
    RecoveryError::failed(
        Fault::PermissionMissing,
        format!(
            "Microsoft Graph refused the call (403): the identity this runs as lacks {which} (docs/deploy.md lists them); {what_happened}."
        ),
    )
}

impl<'a> TapContext<'a> {
    /// This context on another Graph client (a recovery's scoped one, `GraphClient::scoped`).
    pub(crate) fn with_graph<'g>(&self, graph: &'g GraphClient) -> TapContext<'g>
    where
        'a: 'g,
    {
        TapContext { graph, ..*self }
    }
}

impl TapContext<'_> {
    /// Tell each of `to` (mail) of `about`. With an outbox (`recovery-notices`), each notice is
    /// posted there, side by side, and sent after the answer by `notice-worker`, retried and
    /// audited; a notice the queue refused, or every notice when there is no outbox (the command
    /// line), is sent now, side by side. The addresses told or to be told, masked; a failure is
    /// logged.
    pub(crate) async fn tell(
        &self,
        kind: super::notice::NoticeKind,
        about: &super::notice::About,
        to: &[String],
        subject: &str,
        text: &secrecy::SecretString,
    ) -> Vec<String> {
        use secrecy::ExposeSecret;
        let what = kind.what();
        let sent = futures::future::join_all(to.iter().map(|address| async move {
            if let Some(outbox) = self.outbox {
                let notice = super::notice::Notice::new(kind, about, address, subject, text.expose_secret());
                match outbox.post(&notice).await {
                    Ok(()) => return (address, Ok(())),
                    Err(e) => tracing::warn!(error = %e, what, "the outbox refused a notice; sending it now"),
                }
            }
            (address, self.notifier.notify(address, subject, text).await)
        }))
        .await;
        sent.into_iter()
            .filter_map(|(address, sent)| match sent {
                Ok(()) => Some(crate::vocab::mask_email(address)),
                Err(e) => {
                    tracing::warn!(error = %e, what, "a notice could not be sent");
                    None
                }
            })
            .collect()
    }

    pub(crate) async fn record(&self, event: AuditEvent) -> Result<(), RecoveryError> {
        self.audit.record(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit record failed");
            RecoveryError::failed(
                Fault::AuditUnavailable,
                "the audit trail is unavailable, so nothing was changed; try again later",
            )
        })
    }
}

impl TapContext<'_> {
    /// A recovery refused before it changed anything gives back the service verification it took,
    /// so one refusal (a channel, a rule) does not cost the user another code. A held recovery
    /// keeps it for when it is approved.
    pub(crate) async fn release_verification(
        &self,
        caller: &CallerRecord,
        verification: Option<&VerificationBody>,
        request_id: Uuid,
        error: &RecoveryError,
    ) {
        if let Some(VerificationBody::Service(v)) = verification
            && error.is_refusal()
            && error.code != crate::vocab::ErrorCode::Refused(Refusal::ApprovalRequired)
        {
            self.verifications
                .release(v.id, &super::verification::caller_key(caller), request_id)
                .await;
        }
    }

    /// The outcome record of an attempt. What was done is already done, so a failure to write
    /// it is logged loudly rather than changing the answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_outcome(
        &self,
        caller: &CallerRecord,
        action: Action,
        target: Target,
        ticket: &Ticket,
        request_id: Uuid,
        outcome: Outcome,
        details: &super::details::Details,
    ) {
        let event = AuditEvent {
            caller: caller.clone(),
            action,
            target: Some(target),
            ticket: Some(ticket.clone()),
            request_id: Some(request_id),
            phase: Phase::Outcome,
            outcome: Some(outcome),
            details: crate::audit::details(&details),
        };
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, %request_id, "the outcome record could not be written");
        }
    }
}

impl TapContext<'_> {
    /// Go on only with a decision the service wrote: its seal verifies and its own audit record
    /// matches (`AuditTrail::check_seal`). `what` names it for the message.
    ///
    /// # Errors
    /// `state_tampered` (nothing is done; the refusal is audited with why, and the SOC told by
    /// the caller), or `audit_unavailable` when the key or the record cannot be read.
    pub(crate) async fn untampered(
        &self,
        decided: &crate::audit::seal::Decided,
        seal: Option<&crate::audit::seal::Seal>,
        action: Action,
        what: &str,
    ) -> Result<(), RecoveryError> {
        match self.audit.check_seal(decided, seal, action).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => {
                tracing::error!(subject = %decided.subject, what, why = %why, "a stored decision was not written by the service; refusing");
                Err(RecoveryError::refused(
                    Refusal::StateTampered,
                    format!(
                        "the stored {what} was not written by this service ({why}); nothing was done and the security team is alerted"
                    ),
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, what, "a stored decision's seal could not be checked");
                Err(RecoveryError::failed(
                    Fault::AuditUnavailable,
                    format!(
                        "the {what} cannot be checked now (the audit key or trail is unavailable); nothing was done. Try again later."
                    ),
                ))
            }
        }
    }
}

impl TapContext<'_> {
    /// Reserve the caller's slot of `action` (per hour) for `attempt`; the same attempt reserves
    /// once, so calling this early and again from `reserve_slots` counts one.
    ///
    /// # Errors
    /// `rate_limited` (429, with the seconds to wait) or `rate_limit_unavailable` (503).
    pub(crate) async fn reserve_caller_slot(
        &self,
        action: Action,
        noun: &str,
        caller: &CallerRecord,
        attempt: Uuid,
        per_caller_per_hour: u32,
    ) -> Result<(), RecoveryError> {
        let limit = caller_limit(action, caller, per_caller_per_hour);
        self.limits
            .reserve(&limit, attempt, OffsetDateTime::now_utc())
            .await
            .map_err(|e| limit_refused(e, format!("at most {per_caller_per_hour} {noun} per caller per hour")))
    }

    /// Reserve one slot of `action` for the caller (per hour), then for the target (per 24 hours),
    /// atomically across instances. A caller slot is given back when the target's limit refuses
    /// (nothing was attempted on anyone).
    ///
    /// # Errors
    /// `rate_limited` (429, with the seconds to wait) or `rate_limit_unavailable` (503).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn reserve_slots(
        &self,
        action: Action,
        noun: &str,
        caller: &CallerRecord,
        user: &Uuid,
        attempt: Uuid,
        per_target_per_day: u32,
        per_caller_per_hour: u32,
    ) -> Result<(), RecoveryError> {
        use super::limits::Limit;
        self.reserve_caller_slot(action, noun, caller, attempt, per_caller_per_hour)
            .await?;
        let for_target = Limit::per_target(
            action.as_str(),
            user,
            per_target_per_day,
            std::time::Duration::from_secs(86_400),
        );
        if let Err(e) = self
            .limits
            .reserve(&for_target, attempt, OffsetDateTime::now_utc())
            .await
        {
            let for_caller = caller_limit(action, caller, per_caller_per_hour);
            self.limits.release(&for_caller, attempt).await;
            return Err(limit_refused(
                e,
                format!("at most {per_target_per_day} {noun} per user per 24 hours"),
            ));
        }
        Ok(())
    }
}

fn caller_limit(action: Action, caller: &CallerRecord, per_hour: u32) -> super::limits::Limit {
    super::limits::Limit::per_caller(
        action.as_str(),
        &caller.via,
        caller.object_id.as_deref(),
        per_hour,
        std::time::Duration::from_secs(3600),
    )
}

pub(crate) fn limit_refused(e: super::limits::LimitError, what: String) -> RecoveryError {
    match e {
        super::limits::LimitError::Exceeded { retry_after } => {
            RecoveryError::refused(Refusal::RateLimited, what).with_retry_after(retry_after.as_secs())
        }
        super::limits::LimitError::Unavailable(cause) => {
            tracing::error!(%cause, "the rate-limit store is unavailable; refusing");
            RecoveryError::failed(
                Fault::RateLimitUnavailable,
                "the rate-limit store is unavailable, so nothing was changed; try again later",
            )
        }
    }
}
