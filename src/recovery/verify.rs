//! The verification procedure: send a code to the user's address of record, and confirm the code
//! the caller reads back. The records and the code's hash live in `verification`.

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use super::context::{TapContext, limit_refused};
use super::details::Details;
use super::rules::ticket_id_ok;
use super::verification::{Confirmed, SentCode, Status, VerificationRecord, caller_key, not_found};
use super::verifier::About;
use crate::vocab::CallerRecord;
use crate::vocab::Channel;
use crate::vocab::{Fault, Refusal};

/// `POST /api/users/{user}/verifications`, as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendBody {
    channel: String,
    ticket: Option<super::request::TicketBody>,
}

impl TapContext<'_> {
    /// Send a verification code to `user`'s address of record on the channel the body names,
    /// and keep the verification (only the code's keyed hash). Audited, intent first (written
    /// before the code is sent; a trail that cannot be written sends nothing), then the outcome.
    ///
    /// # Errors
    /// A refusal (bad body, unknown, own or privileged user, no address, rate limit), or a fault
    /// (Graph, the connector, the store, the key, the audit trail).
    pub(crate) async fn send_verification(
        &self,
        caller: &CallerRecord,
        user: &str,
        body: &[u8],
    ) -> Result<SentCode, RecoveryError> {
        let user =
            crate::graph::models::UserRef::parse(user).map_err(|e| RecoveryError::refused(Refusal::InvalidUser, e))?;
        let body: SendBody = super::parse_body(body, "{channel: sms | email | manager, ticket?: {system, id}}")?;
        let channel = Channel::parse(&body.channel)
            .ok_or_else(|| RecoveryError::refused(Refusal::InvalidRequest, "channel must be sms, email or manager"))?;
        let ticket = body.ticket.as_ref().map(|t| crate::audit::Ticket {
            system: t.system.clone(),
            id: t.id.clone(),
        });
        if ticket
            .as_ref()
            .is_some_and(|t| !super::text_ok(&t.system, 32) || !ticket_id_ok(&t.id))
        {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "ticket.system (up to 32 characters) and ticket.id (1 to 32 letters, digits, - and _, as INC0010001 or HELP-42: it is quoted in the message to the user) are required in a ticket",
            ));
        }
        let id = Uuid::new_v4();
        let mut target = crate::audit::Target {
            object_id: None,
            upn: Some(user.segment()),
        };
        let mut details = Details {
            verification_id: Some(id),
            channel: Some(channel.as_str()),
            ..Details::default()
        };
        let result = self
            .send_code(caller, &user, channel, ticket.as_ref(), id, &mut target, &mut details)
            .await;
        if let Err(e) = &result {
            details.error = Some(e.message.clone());
        }
        let event = crate::audit::AuditEvent {
            caller: caller.clone(),
            action: crate::audit::Action::VerificationSend,
            target: Some(target),
            ticket,
            request_id: Some(id),
            phase: crate::audit::Phase::Outcome,
            outcome: Some(
                result
                    .as_ref()
                    .map_or_else(RecoveryError::outcome, |_| crate::audit::Outcome::Succeeded),
            ),
            details: crate::audit::details(&details),
        };
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, "a verification's outcome record could not be written");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_code(
        &self,
        caller: &CallerRecord,
        user: &crate::graph::models::UserRef,
        channel: Channel,
        ticket: Option<&crate::audit::Ticket>,
        id: Uuid,
        target: &mut crate::audit::Target,
        details: &mut Details,
    ) -> Result<SentCode, RecoveryError> {
        let s = self.settings;
        // Codes count with the passes in the caller's hourly limit (one bucket, as documented).
        self.reserve_caller_slot(
            crate::audit::Action::TapIssue,
            "passes and verification codes",
            caller,
            id,
            s.max_per_caller_per_hour,
        )
        .await?;
        let (user, _, privileged) = self.find_target(caller, user, target, details).await?;
        if user.account_enabled == Some(false) {
            return Err(RecoveryError::refused(
                Refusal::UserDisabled,
                "the account is disabled: no code was sent. Enable it first (a disabled account cannot be recovered)",
            ));
        }
        let risk = self.read_risk(&user, details).await?;
        if risk.as_ref().is_some_and(|r| r.at_risk) && !s.approval.enabled() {
            return Err(super::risk::at_risk_refused());
        }
        let address = self.address_of_record(&user, channel, &[]).await?;
        self.not_the_callers(caller, &user, &address).await?;
        self.deliverer.ready(channel).await.map_err(|e| {
            RecoveryError::failed(
                Fault::DeliveryUnavailable,
                format!(
                    "the {} connector is not available ({e}); no code was sent",
                    channel.as_str()
                ),
            )
        })?;
        // No record, no code: the intent is in the trail before anything is reserved for the user
        // or sent (a trail that cannot be written costs the user no code of their day's limit).
        details.sent_to = Some(address.masked());
        self.record_code_intent(caller, target, ticket, id, details).await?;
        // Last: the user's own daily limit, whoever sends (reserved atomically; attempts count).
        self.reserve_code_slot(&user.id, id).await?;
        let record = self
            .challenge_and_send(caller, &user, (channel, &address), ticket, id)
            .await?;
        details.expires_at = Some(crate::audit::rfc3339_millis(record.expires_at));
        Ok(SentCode {
            id,
            channel,
            sent_to: record.sent_to,
            expires_at: record.expires_at,
            privileged,
            user_id: user.id,
            upn: user.user_principal_name,
            risk: risk.filter(|r| r.at_risk || r.elevated).map(|r| r.view()),
            ticket: ticket.cloned(),
        })
    }

    /// The method's challenge, kept (its keyed hash) before it is sent; a challenge that could
    /// not be sent is killed.
    async fn challenge_and_send(
        &self,
        caller: &CallerRecord,
        user: &crate::graph::models::User,
        (channel, address): (Channel, &crate::vocab::Address),
        ticket: Option<&crate::audit::Ticket>,
        id: Uuid,
    ) -> Result<VerificationRecord, RecoveryError> {
        let s = self.settings;
        let now = OffsetDateTime::now_utc();
        let about = About {
            agent: caller.name.as_deref(),
            ticket: ticket.map(|t| t.id.as_str()),
            minutes: s.verification_code_minutes,
            contact: &s.notice_contact,
        };
        let challenge = self.verifier.challenge(id, about).await?;
        let record = VerificationRecord {
            id,
            caller: caller_key(caller),
            user_id: user.id,
            upn: user.user_principal_name.clone(),
            channel: channel.as_str().to_owned(),
            sent_to: address.masked(),
            code_hash: challenge.kept,
            created_at: now,
            expires_at: now + time::Duration::minutes(i64::from(s.verification_code_minutes)),
            attempts: 0,
            status: Status::Pending,
            verified_at: None,
            used_by: None,
        };
        self.verifications.create(&record).await?;
        if let Err(e) = self
            .deliverer
            .send(address, challenge.subject, &challenge.text, &id.to_string())
            .await
        {
            tracing::error!(error = %e, "the verification code could not be sent");
            self.verifications.kill(id, &record.caller).await;
            return Err(RecoveryError::failed(
                Fault::DeliveryFailed,
                format!("the code could not be sent ({e}); send a new one or choose another channel"),
            ));
        }
        Ok(record)
    }

    async fn record_code_intent(
        &self,
        caller: &CallerRecord,
        target: &crate::audit::Target,
        ticket: Option<&crate::audit::Ticket>,
        id: Uuid,
        details: &Details,
    ) -> Result<(), RecoveryError> {
        self.record(crate::audit::AuditEvent {
            caller: caller.clone(),
            action: crate::audit::Action::VerificationSend,
            target: Some(target.clone()),
            ticket: ticket.cloned(),
            request_id: Some(id),
            phase: crate::audit::Phase::Intent,
            outcome: None,
            details: crate::audit::details(&details),
        })
        .await
    }

    /// A slot of the user's daily code limit (`VERIFICATION_MAX_PER_TARGET_PER_DAY`), whoever
    /// sends: reserved atomically across instances, so it cannot be raced.
    async fn reserve_code_slot(&self, user: &Uuid, id: Uuid) -> Result<(), RecoveryError> {
        let max = self.settings.verification_max_per_target_per_day;
        let for_target = super::limits::Limit::per_target(
            crate::audit::Action::VerificationSend.as_str(),
            user,
            max,
            std::time::Duration::from_secs(86_400),
        );
        self.limits
            .reserve(&for_target, id, OffsetDateTime::now_utc())
            .await
            .map_err(|e| {
                limit_refused(
                    e,
                    format!("at most {max} verification codes per user per 24 hours, whoever sends them"),
                )
            })
    }

    /// Check the code the caller read back. Audited (never the code).
    ///
    /// # Errors
    /// As `Verifications::confirm`; a body without a code is `invalid_request` (its text is never
    /// echoed: it may hold the code).
    pub(crate) async fn confirm_verification(
        &self,
        caller: &CallerRecord,
        id: &str,
        body: &[u8],
    ) -> Result<OffsetDateTime, RecoveryError> {
        let parsed = Uuid::parse_str(id).ok();
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("code")
                    .and_then(|c| c.as_str())
                    .map(|c| SecretString::from(c.to_owned()))
            })
            .filter(|c| self.verifier.well_formed(c));
        let result = match (parsed, code) {
            (None, _) => Err(not_found()),
            (Some(_), None) => Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "the body must be {\"code\": \"<the digits the user read out>\"}",
            )),
            (Some(id), Some(code)) => {
                self.verifications
                    .confirm(id, &caller_key(caller), self.verifier, &code, OffsetDateTime::now_utc())
                    .await
            }
        };
        let mut details = Details {
            verification_id: parsed,
            ..Details::default()
        };
        let (target, verified_at) = match &result {
            Ok((record, Confirmed::Verified(at))) => {
                details.verification = Some(record.audit_view());
                (
                    Some(crate::audit::Target {
                        object_id: Some(record.user_id.to_string()),
                        upn: Some(record.upn.clone()),
                    }),
                    Ok(*at),
                )
            }
            Err(e) => {
                details.error = Some(e.message.clone());
                (None, Err(e.clone()))
            }
        };
        let event = crate::audit::AuditEvent {
            caller: caller.clone(),
            action: crate::audit::Action::VerificationConfirm,
            target,
            ticket: None,
            request_id: parsed,
            phase: crate::audit::Phase::Outcome,
            outcome: Some(
                verified_at
                    .as_ref()
                    .map_or_else(RecoveryError::outcome, |_| crate::audit::Outcome::Succeeded),
            ),
            details: crate::audit::details(&details),
        };
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, "a verification's confirmation record could not be written");
        }
        verified_at
    }
}
