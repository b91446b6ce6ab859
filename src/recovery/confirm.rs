//! The user's answer to a confirmation link (`POST /api/confirm/{id}`): "it is me" verifies the
//! verification exactly as a confirmed code does; "this is not me" repudiates it and contains the
//! attack: recoveries for the user are blocked for `NOT_ME_BLOCK_HOURS` (race-proof: a
//! conditional write the admission stage reads), their sessions revoked when
//! `NOT_ME_REVOKE_SESSIONS` says so, and the trail records it (the SOC hears of it from the
//! intake, `intake::call::repudiated`). An approver may lift the block early (`lift_block`).

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use super::context::TapContext;
use super::details::Details;
use super::verification::{Block, Decision, VerificationRecord};
use super::verify::Answered;
use crate::audit::{Action, AuditEvent, Outcome, Phase, Target};
use crate::vocab::{CallerRecord, Refusal};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    secret: String,
    decision: Decision,
}

/// The user, as the trail names whoever answered a link (they proved it by opening it).
fn the_user(record: &VerificationRecord) -> CallerRecord {
    record.the_user()
}

impl TapContext<'_> {
    /// Take the user's answer to link `id`. `None` for every answer that cannot be taken (an
    /// unknown, used or expired link, a wrong secret, a body that is not an answer): the caller
    /// answers them all with one neutral message.
    ///
    /// "This is not me" writes the block before the answer: a failure leaves the link answerable,
    /// and an answer given again (to a repudiated link) runs the containment again.
    ///
    /// # Errors
    /// The store or the key is unavailable (nothing more was done; the user may answer again).
    pub(crate) async fn answer_link(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Option<(Answered, VerificationRecord)>, RecoveryError> {
        let (Ok(id), Ok(body)) = (Uuid::parse_str(id), serde_json::from_slice::<AnswerBody>(body)) else {
            return Ok(None);
        };
        let secret = SecretString::from(body.secret);
        let now = OffsetDateTime::now_utc();
        let sealed = std::sync::atomic::AtomicBool::new(false);
        let sealing = self.sealing(None, &sealed);
        if body.decision == Decision::NotMe {
            let Some(first) = self
                .verifications
                .check_link(id, self.link, &secret, body.decision, now)
                .await?
            else {
                return Ok(None);
            };
            let until = now + time::Duration::hours(i64::from(self.settings.not_me_block_hours));
            // An earlier block is merged into this one (its links' senders) only as the service
            // wrote it; one that is not is replaced: "this is not me" always blocks.
            let fresh = match self.verifications.block_record(first.user_id).await? {
                Some(block) => self.block_untampered(&block).await.is_err(),
                None => false,
            };
            let sealing = |block: Block| -> futures::future::BoxFuture<'_, _> {
                let details = Details {
                    verification_id: Some(block.verification_id),
                    decision: Some("block"),
                    blocked_until: Some(crate::audit::rfc3339_millis(block.until)),
                    ..Details::default()
                };
                let outcome = Outcome::Refused(Refusal::RecoveryBlocked.as_str().to_owned());
                Box::pin(self.seal_block(the_user(&first), first.upn.clone(), outcome, details, block))
            };
            self.verifications
                .block(first.user_id, until, &first, now, fresh, &sealing)
                .await?;
        }
        let Some(record) = self
            .verifications
            .answer_link(id, self.link, &secret, body.decision, now, sealing)
            .await?
        else {
            return Ok(None);
        };
        match body.decision {
            Decision::Open => Ok(Some((Answered::Opened, record))),
            Decision::Confirm => {
                // Recorded already when it was sealed; an answer taken before is recorded again.
                if !sealed.load(std::sync::atomic::Ordering::SeqCst) {
                    self.record_answer(&record, "confirm", Outcome::Succeeded, None).await;
                }
                Ok(Some((Answered::Verified, record)))
            }
            Decision::NotMe => {
                self.contain(&record, now).await?;
                Ok(Some((Answered::Repudiated, record)))
            }
        }
    }

    /// "This is not me" (the block written already): revoke the user's sessions if configured,
    /// and record it.
    async fn contain(&self, record: &VerificationRecord, now: OffsetDateTime) -> Result<(), RecoveryError> {
        let until = now + time::Duration::hours(i64::from(self.settings.not_me_block_hours));
        let mut revoked = None;
        if self.settings.not_me_revoke_sessions {
            revoked = Some(self.graph.revoke_sessions(&record.user_id).await.is_ok());
        }
        let outcome = Outcome::Refused(Refusal::RecoveryBlocked.as_str().to_owned());
        self.record_answer(record, "not_me", outcome, Some((until, revoked)))
            .await;
        Ok(())
    }

    async fn record_answer(
        &self,
        record: &VerificationRecord,
        decision: &'static str,
        outcome: Outcome,
        block: Option<(OffsetDateTime, Option<bool>)>,
    ) {
        let details = Details {
            verification_id: Some(record.id),
            channel: crate::vocab::Channel::parse(&record.channel).map(|c| c.as_str()),
            decision: Some(decision),
            blocked_until: block.map(|(until, _)| crate::audit::rfc3339_millis(until)),
            sessions_revoked: block.and_then(|(_, revoked)| revoked),
            ..Details::default()
        };
        let event = AuditEvent {
            caller: the_user(record),
            action: if block.is_some() {
                Action::RecoveryBlock
            } else {
                Action::VerificationConfirm
            },
            target: Some(Target {
                object_id: Some(record.user_id.to_string()),
                upn: Some(record.upn.clone()),
            }),
            ticket: None,
            request_id: Some(record.id),
            phase: Phase::Outcome,
            outcome: Some(outcome),
            details: crate::audit::details(&details),
        };
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, "a confirmation link's answer could not be recorded");
        }
    }

    /// Lift the block on `user`'s recoveries: an approver, signed in (a delegated token), who is
    /// not the user and sent none of the links the user repudiated; with a comment; audited.
    /// Verifications confirmed before the user's "not me" stay unusable.
    ///
    /// # Errors
    /// `invalid_request`, `approver_must_be_user`, `approver_is_requester`,
    /// `approver_is_target`, `not_blocked`, `user_not_found`, or the store or the trail is
    /// unavailable.
    pub(crate) async fn lift_block(
        &self,
        approver: &CallerRecord,
        user: &str,
        body: &[u8],
    ) -> Result<Lifted, RecoveryError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct LiftBody {
            comment: String,
        }
        let body: LiftBody = super::parse_body(body, "{comment: why the block may end now}")?;
        if !super::text_ok(&body.comment, 500) || body.comment.trim().is_empty() {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "comment (1 to 500 characters) says why the block may end now; it is kept in the audit trail",
            ));
        }
        if approver.object_id.is_none() || !approver.user {
            return Err(super::approval::approver_must_be_user());
        }
        let reference =
            crate::graph::models::UserRef::parse(user).map_err(|e| RecoveryError::refused(Refusal::InvalidUser, e))?;
        let found = self
            .graph
            .get_user(&reference)
            .await
            .map_err(super::context::graph_failed)?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        let now = OffsetDateTime::now_utc();
        if approver
            .object_id
            .as_deref()
            .is_some_and(|me| me.eq_ignore_ascii_case(&found.id.to_string()))
        {
            return Err(RecoveryError::refused(
                Refusal::ApproverIsTarget,
                "nobody lifts the block on their own recoveries",
            ));
        }
        let me = super::verification::caller_key(approver);
        if let Some(block) = self.verifications.block_record(found.id).await? {
            // Who may lift it is read from it: only from a block the service wrote.
            self.block_untampered(&block).await?;
        }
        if let Some(block) = self.verifications.block_of(found.id, now).await?
            && (block.senders.contains(&me)
                || approver
                    .object_id
                    .as_deref()
                    .is_some_and(|o| block.senders.iter().any(|s| s.ends_with(&format!(":{o}")))))
        {
            return Err(RecoveryError::refused(
                Refusal::ApproverIsRequester,
                "whoever sent a link the user repudiated cannot lift the block",
            ));
        }
        let comment = body.comment.trim().to_owned();
        let sealing = |block: Block| -> futures::future::BoxFuture<'_, _> {
            let details = Details {
                verification_id: Some(block.verification_id),
                blocked_until: Some(crate::audit::rfc3339_millis(now)),
                comment: Some(comment.clone()),
                ..Details::default()
            };
            let upn = found.user_principal_name.clone();
            Box::pin(self.seal_block(approver.clone(), upn, Outcome::Succeeded, details, block))
        };
        let lifted = self.verifications.lift(found.id, now, &me, &sealing).await?;
        Ok(Lifted {
            user_id: found.id,
            upn: found.user_principal_name,
            was_until: lifted.until,
            verification_id: lifted.verification_id,
        })
    }
}

impl TapContext<'_> {
    /// Record a block as it is about to be written (by `caller`), then seal it over that record.
    async fn seal_block(
        &self,
        caller: CallerRecord,
        upn: String,
        outcome: Outcome,
        details: Details,
        block: Block,
    ) -> Result<Option<crate::audit::seal::Seal>, RecoveryError> {
        let record = self
            .audit
            .record(AuditEvent {
                caller,
                action: Action::RecoveryBlock,
                target: Some(Target {
                    object_id: Some(block.user_id.to_string()),
                    upn: Some(upn),
                }),
                ticket: None,
                request_id: Some(block.verification_id),
                phase: Phase::Outcome,
                outcome: Some(outcome),
                details: crate::audit::details(&details),
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "a block could not be recorded");
                RecoveryError::failed(
                    crate::vocab::Fault::AuditUnavailable,
                    "the block cannot be recorded now, so it was not written; try again",
                )
            })?;
        self.audit.seal(&block.decided(), &record).await.map_err(|e| {
            tracing::error!(error = %e, "a block could not be sealed");
            RecoveryError::failed(
                crate::vocab::Fault::AuditUnavailable,
                "the block cannot be sealed now, so it was not written; try again",
            )
        })
    }
}

/// A block lifted: whose, and until when it would have run.
#[derive(Debug, Clone)]
pub struct Lifted {
    pub user_id: Uuid,
    pub upn: String,
    pub was_until: OffsetDateTime,
    pub verification_id: Uuid,
}
