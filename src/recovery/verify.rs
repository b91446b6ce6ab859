//! The verification procedure: send a code to the user's address of record, and confirm the code
//! the caller reads back. The records and the code's hash live in `verification`.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecoveryError;
use super::context::{TapContext, limit_refused};
use super::details::Details;
use super::rules::ticket_id_ok;
use super::verification::{Confirmed, Mode, SentCode, Status, VerificationRecord, caller_key, not_found};
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
    /// `code` (the default) or `link`.
    mode: Option<String>,
    /// What is to come (`tap` or `reset`), named in a link's message and page.
    action: Option<String>,
}

/// How a verification is sent, as the body asked.
#[derive(Clone, Copy)]
struct Asked<'a> {
    channel: Channel,
    mode: Mode,
    action: Option<&'a str>,
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
        let graph = self.graph.scoped();
        graph
            .drive(self.with_graph(&graph).send_verification_now(caller, user, body))
            .await
    }

    async fn send_verification_now(
        &self,
        caller: &CallerRecord,
        user: &str,
        body: &[u8],
    ) -> Result<SentCode, RecoveryError> {
        let user =
            crate::graph::models::UserRef::parse(user).map_err(|e| RecoveryError::refused(Refusal::InvalidUser, e))?;
        let body: SendBody = super::parse_body(
            body,
            "{channel: sms | email | manager, mode?: code | link, action?: tap | reset, ticket?: {system, id}}",
        )?;
        let channel = Channel::parse(&body.channel)
            .ok_or_else(|| RecoveryError::refused(Refusal::InvalidRequest, "channel must be sms, email or manager"))?;
        let mode = match body.mode.as_deref() {
            None | Some("code") => Mode::Code,
            Some("link") => Mode::Link,
            Some(_) => {
                return Err(RecoveryError::refused(
                    Refusal::InvalidRequest,
                    "mode must be code or link",
                ));
            }
        };
        if mode == Mode::Link && channel == Channel::Manager {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "a confirmation link asks the user \"is it you?\": it goes to the user (sms or email), never to their manager; use a code for the manager channel",
            ));
        }
        if body.action.as_deref().is_some_and(|a| a != "tap" && a != "reset") {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "action must be tap or reset",
            ));
        }
        let asked = Asked {
            channel,
            mode,
            action: body.action.as_deref(),
        };
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
            .send_code(caller, &user, asked, ticket.as_ref(), id, &mut target, &mut details)
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
        asked: Asked<'_>,
        ticket: Option<&crate::audit::Ticket>,
        id: Uuid,
        target: &mut crate::audit::Target,
        details: &mut Details,
    ) -> Result<SentCode, RecoveryError> {
        let s = self.settings;
        let channel = asked.channel;
        // Codes count with the passes in the caller's hourly limit (one bucket, as documented).
        self.reserve_caller_slot(
            crate::audit::Action::TapIssue,
            "passes and verification codes",
            caller,
            id,
            s.max_per_caller_per_hour,
        )
        .await?;
        let (user, _, privileged) = self
            .find_target(
                caller,
                user,
                target,
                details,
                super::target::Wants {
                    channel: Some(channel),
                    policy: false,
                    methods: false,
                    default_method: false,
                    callers: true,
                },
            )
            .await?;
        self.not_blocked(&user.id).await?;
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
            .challenge_and_send(caller, &user, (asked, &address), ticket, id)
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
            mode: asked.mode,
        })
    }

    /// The method's challenge, kept (its keyed hash) before it is sent; a challenge that could
    /// not be sent is killed.
    async fn challenge_and_send(
        &self,
        caller: &CallerRecord,
        user: &crate::graph::models::User,
        (asked, address): (Asked<'_>, &crate::vocab::Address),
        ticket: Option<&crate::audit::Ticket>,
        id: Uuid,
    ) -> Result<VerificationRecord, RecoveryError> {
        let s = self.settings;
        let channel = asked.channel;
        let now = OffsetDateTime::now_utc();
        // The human a ticket names, or the caller's own name (from the token).
        let agent = caller
            .on_behalf_of
            .as_ref()
            .and_then(|p| p.upn.as_deref())
            .or(caller.name.as_deref());
        let about = About {
            agent,
            ticket: ticket.map(|t| t.id.as_str()),
            action: asked.action,
            minutes: s.verification_code_minutes,
            contact: &s.notice_contact,
        };
        let verifier = match asked.mode {
            Mode::Code => self.verifier,
            Mode::Link => self.link,
        };
        let challenge = verifier.challenge(id, about).await?;
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
            mode: asked.mode,
            agent: Some(super::code::agent_words(agent)).filter(|a| !a.is_empty()),
            action: asked.action.map(str::to_owned),
            ticket: ticket.map(|t| t.id.clone()).filter(|t| super::rules::ticket_id_ok(t)),
            opened_at: None,
            seal: None,
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
        let sealed = std::sync::atomic::AtomicBool::new(false);
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
                let sealing = self.sealing(Some(caller.clone()), &sealed);
                self.verifications
                    .confirm(
                        id,
                        &caller_key(caller),
                        self.verifier,
                        &code,
                        OffsetDateTime::now_utc(),
                        sealing,
                    )
                    .await
            }
        };
        // A confirmation that verified was recorded before it was written (its seal names that
        // record): not again.
        if result.is_ok() && sealed.load(std::sync::atomic::Ordering::SeqCst) {
            return result.map(|(_, Confirmed::Verified(at))| at);
        }
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

impl TapContext<'_> {
    /// Go on only with a block the service wrote as it is. A block from before blocks were
    /// sealed (no seal, nobody named) counts only if it ended before the audit key existed.
    ///
    /// # Errors
    /// `state_tampered`, or `audit_unavailable` when the key or the record cannot be read.
    pub(crate) async fn block_untampered(&self, block: &super::verification::Block) -> Result<(), RecoveryError> {
        if block.seal.is_none() && block.decided_by.is_empty() {
            let Some(key) = self.audit.key() else { return Ok(()) };
            let created = key.created().await.map_err(|e| {
                tracing::error!(error = %e, "the audit key's creation could not be read");
                RecoveryError::failed(
                    Fault::AuditUnavailable,
                    "the user's block cannot be checked now (the audit key is unavailable); nothing was done. Try again later.",
                )
            })?;
            if created.is_some_and(|t| block.until < t) {
                return Ok(());
            }
        }
        self.untampered(
            &block.decided(),
            block.seal.as_ref(),
            crate::audit::Action::RecoveryBlock,
            "block on the user's recoveries",
        )
        .await
    }

    /// What seals a verification as it becomes `verified`: its `verification.confirm` record
    /// (by `caller`: the agent who read the code back, or the user through a link), written
    /// first, then the seal over both. `recorded` says the record was written.
    pub(crate) fn sealing<'a>(
        &'a self,
        caller: Option<CallerRecord>,
        recorded: &'a std::sync::atomic::AtomicBool,
    ) -> super::verification::Sealing<'a> {
        Box::new(move |verified: VerificationRecord| {
            Box::pin(async move {
                let details = Details {
                    verification_id: Some(verified.id),
                    verification: Some(verified.audit_view()),
                    channel: Channel::parse(&verified.channel).map(|c| c.as_str()),
                    decision: (verified.mode == Mode::Link).then_some("confirm"),
                    ..Details::default()
                };
                let event = crate::audit::AuditEvent {
                    caller: caller.unwrap_or_else(|| verified.the_user()),
                    action: crate::audit::Action::VerificationConfirm,
                    target: Some(crate::audit::Target {
                        object_id: Some(verified.user_id.to_string()),
                        upn: Some(verified.upn.clone()),
                    }),
                    ticket: None,
                    request_id: Some(verified.id),
                    phase: crate::audit::Phase::Outcome,
                    outcome: Some(crate::audit::Outcome::Succeeded),
                    details: crate::audit::details(&details),
                };
                let unavailable = |e: crate::audit::AuditError| {
                    tracing::error!(error = %e, "a verification could not be recorded or sealed");
                    RecoveryError::failed(
                        Fault::AuditUnavailable,
                        "the confirmation cannot be recorded now, so it was not taken; try again",
                    )
                };
                let record = self.audit.record(event).await.map_err(unavailable)?;
                recorded.store(true, std::sync::atomic::Ordering::SeqCst);
                self.audit
                    .seal(&verified.verified(), &record)
                    .await
                    .map_err(unavailable)
            })
        })
    }
}

/// What the confirmation page shows the user once its script proved the secret (`open`):
/// nothing secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmPage {
    /// The agent as words ("megan bowen"), or none.
    pub agent: Option<String>,
    /// What is to come, in words.
    pub action: &'static str,
    pub ticket: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub asked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Confirmed already: the page then offers only "this is not me" (within its window).
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    /// Whether "it is me" may still be answered (pending, in time); otherwise only "not me".
    pub can_confirm: bool,
}

/// What a verification's caller may see of it (`GET /api/verifications/{id}`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationView {
    pub id: Uuid,
    /// `sent`, `opened`, `verified`, `repudiated`, `expired` (or `dead`: too many wrong codes).
    pub status: &'static str,
    pub mode: &'static str,
    pub channel: String,
    pub sent_to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<OffsetDateTime>,
}

impl ConfirmPage {
    /// The page's content for a link the user opened.
    pub fn of(r: &VerificationRecord) -> ConfirmPage {
        ConfirmPage {
            agent: r.agent.clone(),
            action: super::link::action_words(r.action.as_deref()),
            ticket: r.ticket.clone(),
            asked_at: r.created_at,
            expires_at: r.expires_at,
            confirmed_at: r.verified_at.filter(|_| r.status == Status::Verified),
            can_confirm: r.status == Status::Pending && OffsetDateTime::now_utc() < r.expires_at,
        }
    }
}

/// The user's answer to a link, once taken: what the page tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Opened,
    Verified,
    Repudiated,
}

impl VerificationRecord {
    fn view(&self, now: OffsetDateTime) -> VerificationView {
        let status = match self.status {
            Status::Verified => "verified",
            Status::Repudiated => "repudiated",
            Status::Dead => "dead",
            Status::Pending if now >= self.expires_at => "expired",
            Status::Pending if self.opened_at.is_some() => "opened",
            Status::Pending => "sent",
        };
        VerificationView {
            id: self.id,
            status,
            mode: self.mode.as_str(),
            channel: self.channel.clone(),
            sent_to: self.sent_to.clone(),
            expires_at: self.expires_at,
            verified_at: self.verified_at,
        }
    }
}

impl TapContext<'_> {
    /// Verification `id` as the caller that made it sees it; anyone else's is not found.
    ///
    /// # Errors
    /// `verification_not_found`, or the store is unavailable.
    pub(crate) async fn verification_view(
        &self,
        caller: &CallerRecord,
        id: &str,
    ) -> Result<VerificationView, RecoveryError> {
        let id = Uuid::parse_str(id).map_err(|_| not_found())?;
        let (record, _) = self.verifications.get(id, &caller_key(caller)).await?;
        Ok(record.view(OffsetDateTime::now_utc()))
    }

    /// Block recoveries for a user who was shown to be impersonated; the user's block record
    /// otherwise (lifted or ended: when they last said "this is not me"), read once.
    ///
    /// # Errors
    /// `recovery_blocked` while a block is in force; the store unavailable fails closed.
    pub(crate) async fn not_blocked(&self, user: &Uuid) -> Result<Option<super::verification::Block>, RecoveryError> {
        let record = self.verifications.block_record(*user).await?;
        match record.as_ref().filter(|b| b.until > OffsetDateTime::now_utc()) {
            // Lifted or ended: only by the service (an edited end or date is not).
            None if record.is_some() => {
                self.block_untampered(record.as_ref().expect("checked")).await?;
                Ok(record)
            }
            None => Ok(record),
            Some(block) => Err(RecoveryError::refused(
                Refusal::RecoveryBlocked,
                format!(
                    "the user answered a confirmation link \"this is not me\": no recovery for them until {} (an approver may lift it: POST {})",
                    crate::audit::rfc3339_millis(block.until),
                    crate::vocab::paths::RECOVERY_BLOCK_LIFT
                ),
            )),
        }
    }
}
