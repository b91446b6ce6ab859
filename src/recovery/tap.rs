//! Issue a Temporary Access Pass that only the user can receive.
//!
//! Order: parse the request; find the user (exists, enabled, a member); refuse privileged or
//! protected targets; check the tenant's TAP policy and scope; fit the lifetime to the policy and
//! the channel; count earlier passes in the audit trail (rate limits that hold across instances);
//! resolve the address of record; write the intent record (no record, no pass); create the pass
//! (never resent blindly); deliver it; tell the user on every other channel and the manager; write
//! the outcome. A pass that cannot be delivered is deleted, so no undelivered pass stays usable.
//!
//! The pass lives in a `SecretString` from Graph's answer to the provider's request and nowhere
//! else: not in logs, errors, audit records or responses (unless `TAP_RETURN_TO_CALLER`).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Delivered, Journal, RecoveryError, TapProgress, text_ok};
use crate::audit::{AuditEvent, AuditFilter, AuditTrail, CallerRecord, Outcome, Phase, Target, Ticket};
use crate::config::TapSettings;
use crate::delivery::{Address, Channel, Deliverer};
use crate::graph::models::{User, UserRef};
use crate::graph::{CreateTapError, GraphClient};

/// The body of `POST /api/users/{user}/tap`, as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TapBody {
    pub lifetime_minutes: Option<u32>,
    pub usable_once: Option<bool>,
    pub delivery: DeliveryBody,
    pub ticket: TicketBody,
    pub reason: String,
    pub verification: Option<VerificationBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryBody {
    pub channel: String,
    /// Anything else here (an address, a number) is refused: passes go to addresses of record only.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketBody {
    pub system: String,
    pub id: String,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationBody {
    pub method: String,
    pub verified_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
}

/// A parsed, valid request.
#[derive(Debug)]
pub struct TapRequest {
    pub user: UserRef,
    pub lifetime_minutes: Option<u32>,
    pub usable_once: Option<bool>,
    pub channel: Channel,
    pub ticket: Ticket,
    pub reason: String,
    pub verification: Option<VerificationBody>,
}

fn bad(code: &'static str, message: impl Into<String>) -> RecoveryError {
    RecoveryError::refused(400, code, message)
}

impl TapRequest {
    /// Parse the route's `{user}` and the body; every problem is a 400 the caller can fix.
    ///
    /// # Errors
    /// `invalid_request`, `address_not_allowed`, `invalid_user`.
    pub fn parse(user: &str, body: &[u8]) -> Result<TapRequest, RecoveryError> {
        let user = UserRef::parse(user).map_err(|e| bad("invalid_user", e))?;
        let body: TapBody = super::parse_body(
            body,
            "{delivery: {channel}, ticket: {system, id}, reason, lifetimeMinutes?, usableOnce?, verification?}",
        )?;
        if !body.delivery.other.is_empty() {
            return Err(bad(
                "address_not_allowed",
                "a pass goes only to an address of record; remove everything but delivery.channel",
            ));
        }
        let channel = Channel::parse(&body.delivery.channel)
            .ok_or_else(|| bad("invalid_request", "delivery.channel must be sms, email or manager"))?;
        if !text_ok(&body.ticket.system, 32) || !text_ok(&body.ticket.id, 64) {
            return Err(bad(
                "invalid_request",
                "ticket.system (up to 32 characters) and ticket.id (up to 64) are required",
            ));
        }
        if !text_ok(&body.reason, 500) {
            return Err(bad("invalid_request", "reason is required (up to 500 characters)"));
        }
        Ok(TapRequest {
            user,
            lifetime_minutes: body.lifetime_minutes,
            usable_once: body.usable_once,
            channel,
            ticket: Ticket {
                system: body.ticket.system,
                id: body.ticket.id,
            },
            reason: body.reason,
            verification: body.verification,
        })
    }
}

/// What a successful issue returns (and the outcome record holds, minus the pass).
#[derive(Debug)]
pub struct Issued {
    pub request_id: Uuid,
    pub user_id: Uuid,
    pub tap_method_id: String,
    pub start: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub usable_once: bool,
    pub channel: Channel,
    pub to_masked: String,
    pub provider: String,
    pub message_id: Option<String>,
    pub notified: Vec<String>,
    /// Only when `TAP_RETURN_TO_CALLER` is on.
    pub pass: Option<SecretString>,
}

impl Issued {
    pub fn body(&self) -> Value {
        let fmt = &time::format_description::well_known::Rfc3339;
        let mut body = json!({
            "requestId": self.request_id,
            "userId": self.user_id,
            "tapMethodId": self.tap_method_id,
            "startDateTime": self.start.format(fmt).unwrap_or_default(),
            "expiresAt": self.expires_at.format(fmt).unwrap_or_default(),
            "usableOnce": self.usable_once,
            "delivery": {"channel": self.channel.as_str(), "to": self.to_masked, "provider": self.provider, "messageId": self.message_id},
            "notified": self.notified,
        });
        if let Some(pass) = &self.pass {
            body["temporaryAccessPass"] = json!(pass.expose_secret());
        }
        body
    }
}

/// Everything issuing a pass needs.
pub struct TapContext<'a> {
    pub graph: &'a GraphClient,
    pub audit: &'a AuditTrail,
    pub deliverer: &'a Deliverer,
    pub settings: &'a TapSettings,
}

fn graph_failed(e: impl std::fmt::Display) -> RecoveryError {
    tracing::error!(error = %e, "Graph call failed");
    RecoveryError::failed(
        503,
        "graph_unavailable",
        "Microsoft Graph could not be reached or refused the call; nothing was changed. Try again later.",
    )
}

impl TapContext<'_> {
    async fn record(&self, event: AuditEvent) -> Result<(), RecoveryError> {
        self.audit.record(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit record failed");
            RecoveryError::failed(
                503,
                "audit_unavailable",
                "the audit trail is unavailable, so nothing was changed; try again later",
            )
        })
    }

    /// Run the whole procedure and record its outcome, whatever it is.
    pub async fn issue(&self, caller: &CallerRecord, request: TapRequest) -> Result<Issued, RecoveryError> {
        self.issue_with(caller, request, None).await
    }

    /// `issue` for a queued request: its id and its journal, so a retry after a crash picks up
    /// where the last attempt stopped and never delivers a second pass.
    pub async fn issue_with(
        &self,
        caller: &CallerRecord,
        request: TapRequest,
        journal: Option<&dyn Journal>,
    ) -> Result<Issued, RecoveryError> {
        let request_id = journal.map_or_else(Uuid::new_v4, |j| j.request_id());
        let mut target = Target {
            object_id: None,
            upn: Some(request.user.segment()),
        };
        if let UserRef::Id(id) = &request.user {
            target = Target {
                object_id: Some(id.to_string()),
                upn: None,
            };
        }
        let mut details = json!({"channel": request.channel.as_str()});
        let result = self
            .run(caller, &request, request_id, &mut target, &mut details, journal)
            .await;
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(e) if e.refusal => Outcome::Refused(e.code.to_owned()),
            Err(e) => Outcome::Failed(e.code.to_owned()),
        };
        if let Err(e) = &result {
            details["error"] = json!(e.message);
        }
        self.record_outcome(
            caller,
            "tap.issue",
            target,
            &request.ticket,
            request_id,
            outcome,
            details,
        )
        .await;
        result
    }

    async fn run(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &mut Target,
        details: &mut Value,
        journal: Option<&dyn Journal>,
    ) -> Result<Issued, RecoveryError> {
        let s = self.settings;
        let earlier = journal.map(|j| j.progress()).unwrap_or_default();
        if let Some(journal) = journal
            && (earlier.delivering || earlier.delivered.is_some())
        {
            return self.resume(journal, &earlier, request, target, details).await;
        }
        check_verification(
            s,
            request.verification.as_ref(),
            journal.map(|j| j.accepted_at()),
            details,
        )?;
        let (user, memberships) = self.find_target(&request.user, target).await?;
        if let Some(journal) = journal {
            self.clean_up_earlier(journal, &earlier, &user.id).await?;
        }
        if user.account_enabled == Some(false) {
            return Err(RecoveryError::refused(
                409,
                "user_disabled",
                "the account is disabled; enable it before issuing a pass",
            ));
        }
        if !user.is_member() {
            return Err(RecoveryError::refused(
                409,
                "user_is_guest",
                "Temporary Access Passes cannot be issued to guests",
            ));
        }
        // The tenant's policy and scope.
        let policy = self.graph.tap_policy().await.map_err(graph_failed)?;
        if !policy.is_enabled() {
            return Err(RecoveryError::refused(
                409,
                "policy_disabled",
                "the tenant's Temporary Access Pass policy is disabled",
            ));
        }
        let groups: Vec<String> = memberships
            .iter()
            .filter(|m| m.is_group())
            .map(|m| m.id.to_ascii_lowercase())
            .collect();
        let included = policy
            .include_targets
            .iter()
            .any(|t| t.id == "all_users" || groups.contains(&t.id.to_ascii_lowercase()));
        let excluded = policy
            .exclude_targets
            .iter()
            .any(|t| groups.contains(&t.id.to_ascii_lowercase()));
        if !included || excluded {
            return Err(RecoveryError::refused(
                409,
                "user_out_of_scope",
                "the user is not in the scope of the tenant's Temporary Access Pass policy",
            ));
        }
        // Lifetime: the policy's range and the channel's limit.
        let channel_max = match request.channel {
            Channel::Sms => s.max_minutes_sms,
            Channel::Email => s.max_minutes_email,
            Channel::Manager => s.max_minutes_manager,
        };
        let low = policy.minimum_lifetime_in_minutes;
        let high = policy.maximum_lifetime_in_minutes.min(channel_max);
        let lifetime = request
            .lifetime_minutes
            .unwrap_or_else(|| s.default_lifetime_minutes.clamp(low, high.max(low)));
        if low > high || lifetime < low || lifetime > high {
            return Err(RecoveryError::refused(
                422,
                "lifetime_out_of_range",
                format!(
                    "for {} delivery the lifetime must be {low} to {high} minutes (tenant policy and channel limit)",
                    request.channel.as_str()
                ),
            ));
        }
        let usable_once = request.usable_once.unwrap_or(true);
        if !usable_once && (policy.is_usable_once || !s.allow_multi_use) {
            return Err(RecoveryError::refused(
                422,
                "multi_use_not_allowed",
                "only one-time passes are allowed",
            ));
        }
        // Rate limits, counted from the audit trail (so they hold across instances).
        self.check_rate(
            "tap.issue",
            "passes",
            caller,
            &user.id,
            s.max_per_target_per_day,
            s.max_per_caller_per_hour,
        )
        .await?;
        let now = OffsetDateTime::now_utc();
        // The address of record.
        let address = self.address_of_record(&user, request.channel).await?;
        details["to"] = json!(address.masked());
        // The connector must work before a pass exists: a pass that cannot be delivered is
        // worse than none.
        self.deliverer.ready(request.channel).await.map_err(|e| {
            tracing::error!(error = %e, "the delivery connector is not ready");
            RecoveryError::failed(
                503,
                "delivery_unavailable",
                format!(
                    "the {} connector is not available ({e}); no pass was created",
                    request.channel.as_str()
                ),
            )
        })?;
        details["lifetimeMinutes"] = json!(lifetime);
        details["usableOnce"] = json!(usable_once);
        // Intent: no record, no pass.
        self.record(AuditEvent {
            caller: caller.clone(),
            action: "tap.issue".into(),
            target: Some(target.clone()),
            ticket: Some(request.ticket.clone()),
            request_id: Some(request_id),
            phase: Phase::Intent,
            outcome: None,
            details: details.clone(),
        })
        .await?;
        // Create.
        let created = match self.graph.create_tap(&user.id, lifetime, usable_once).await {
            Ok(c) => c,
            Err(CreateTapError::Refused(e)) => {
                tracing::warn!(error = %e, "Graph refused the TAP");
                return Err(RecoveryError::refused(
                    409,
                    "graph_refused",
                    "Microsoft Graph refused to create the pass (check the TAP policy and the user's scope)",
                ));
            }
            Err(CreateTapError::Unknown { cause, orphan }) => {
                tracing::error!(%cause, "TAP create outcome unknown");
                let cleaned = match orphan {
                    Some(id) => self.graph.delete_tap(&user.id, &id).await.is_ok(),
                    None => true,
                };
                let state = if cleaned {
                    "no pass is active for the user"
                } else {
                    "a pass may exist for the user: delete it in the admin center"
                };
                return Err(RecoveryError::failed(
                    502,
                    "tap_outcome_unknown",
                    format!("the pass could not be confirmed; {state}. Try again."),
                ));
            }
        };
        details["tapMethodId"] = json!(created.method.id);
        let start = created.method.start_date_time.unwrap_or(now);
        let expires_at = start + time::Duration::minutes(i64::from(lifetime));
        // A queued request saves each step before the next one: the pass exists, then the
        // provider is being called. A pass whose step cannot be saved is deleted.
        let mut progress = TapProgress {
            method_id: Some(created.method.id.clone()),
            start: Some(start),
            expires_at: Some(expires_at),
            usable_once,
            ..TapProgress::default()
        };
        if let Some(journal) = journal {
            let mut saved = journal.save(&progress).await;
            if saved.is_ok() {
                progress.delivering = true;
                saved = journal.save(&progress).await;
            }
            if let Err(e) = saved {
                let _ = self.graph.delete_tap(&user.id, &created.method.id).await;
                return Err(e);
            }
        }
        // Deliver.
        let text = SecretString::from(pass_message(
            s.message_template.as_deref(),
            &user,
            created.pass.expose_secret(),
            expires_at,
            usable_once,
            &request.ticket,
            &s.notice_contact,
        ));
        let sent = match self
            .deliverer
            .send(&address, "Your temporary sign-in pass", &text, &request_id.to_string())
            .await
        {
            Ok(sent) => sent,
            Err(e) => {
                tracing::error!(error = %e, "delivery failed; deleting the undelivered pass");
                let deleted = self.graph.delete_tap(&user.id, &created.method.id).await.is_ok();
                let state = if deleted {
                    "the pass was deleted, so no pass is active"
                } else {
                    "the pass could not be deleted: delete it in the admin center"
                };
                return Err(RecoveryError::failed(
                    502,
                    "delivery_failed",
                    format!("the pass could not be delivered ({e}); {state}"),
                ));
            }
        };
        details["provider"] = json!(sent.provider);
        details["messageId"] = json!(sent.message_id);
        if let Some(journal) = journal {
            progress.delivering = false;
            progress.delivered = Some(Delivered {
                channel: request.channel.as_str().to_owned(),
                to: address.masked(),
                provider: sent.provider.to_owned(),
                message_id: sent.message_id.clone(),
            });
            // The pass is out; if this save fails, the retry reports the delivery as unconfirmed.
            if let Err(e) = journal.save(&progress).await {
                tracing::error!(error = %e, "the delivery could not be saved in the request record");
            }
        }
        // Tell the user on every other channel of record, and the manager.
        let notified = self.notify(&user, &address, expires_at, &request.ticket).await;
        details["notified"] = json!(notified);
        Ok(Issued {
            request_id,
            user_id: user.id,
            tap_method_id: created.method.id,
            start,
            expires_at,
            usable_once,
            channel: request.channel,
            to_masked: address.masked(),
            provider: sent.provider.to_owned(),
            message_id: sent.message_id,
            notified,
            pass: s.return_to_caller.then_some(created.pass),
        })
    }

    /// A retry of a request whose pass reached the provider: never a second pass. Delivered: finish
    /// (notices, outcome) from the saved step. Sent but unconfirmed (the worker died while the
    /// provider was being called): the pass stays, and the caller is told to ask again if it did
    /// not arrive (a new pass replaces this one).
    async fn resume(
        &self,
        journal: &dyn Journal,
        earlier: &TapProgress,
        request: &TapRequest,
        target: &mut Target,
        details: &mut Value,
    ) -> Result<Issued, RecoveryError> {
        let user = self
            .graph
            .get_user(&request.user)
            .await
            .map_err(graph_failed)?
            .ok_or_else(|| RecoveryError::refused(404, "user_not_found", "no such user"))?;
        *target = Target {
            object_id: Some(user.id.to_string()),
            upn: Some(user.user_principal_name.clone()),
        };
        let now = OffsetDateTime::now_utc();
        let expires_at = earlier.expires_at.unwrap_or(now);
        details["tapMethodId"] = json!(earlier.method_id);
        details["resumed"] = json!(true);
        let Some(delivered) = &earlier.delivered else {
            let fmt = &time::format_description::well_known::Rfc3339;
            return Err(RecoveryError::failed(
                502,
                "delivery_unconfirmed",
                format!(
                    "the service stopped while the pass was being sent, so it may or may not have arrived; it was not sent again. It stays valid until {} UTC. If the user did not receive it, submit a new request: its pass replaces this one.",
                    expires_at.format(fmt).unwrap_or_default()
                ),
            ));
        };
        details["to"] = json!(delivered.to);
        details["provider"] = json!(delivered.provider);
        let address = self.address_of_record(&user, request.channel).await?;
        let notified = self.notify(&user, &address, expires_at, &request.ticket).await;
        details["notified"] = json!(notified);
        Ok(Issued {
            request_id: journal.request_id(),
            user_id: user.id,
            tap_method_id: earlier.method_id.clone().unwrap_or_default(),
            start: earlier.start.unwrap_or(now),
            expires_at,
            usable_once: earlier.usable_once,
            channel: request.channel,
            to_masked: delivered.to.clone(),
            provider: delivered.provider.clone(),
            message_id: delivered.message_id.clone(),
            notified,
            pass: None,
        })
    }

    /// Before a retry creates a pass: delete the one an earlier attempt created but never handed
    /// to a provider (saved in the journal), or, when the attempt died between creating it and
    /// saving that step (its intent record is in the audit trail), any pass created since the
    /// request was first claimed. Either way no undelivered pass stays usable.
    async fn clean_up_earlier(
        &self,
        journal: &dyn Journal,
        earlier: &TapProgress,
        user: &Uuid,
    ) -> Result<(), RecoveryError> {
        let delete = |id: String| async move {
            match self.graph.delete_tap(user, &id).await {
                Err(e) if e.status() != Some(404) => Err(graph_failed(e)),
                _ => Ok(()),
            }
        };
        if let Some(id) = &earlier.method_id {
            tracing::warn!(tap_method_id = %id, "deleting the undelivered pass of an earlier attempt");
            delete(id.clone()).await?;
            return journal.save(&TapProgress::default()).await;
        }
        if !journal.is_retry() {
            return Ok(());
        }
        let since = journal.started_at() - time::Duration::minutes(1);
        let filter = AuditFilter {
            from: since,
            to: OffsetDateTime::now_utc(),
            user: None,
            ticket: None,
            action: Some("tap.issue".into()),
            outcome: None,
        };
        let intent = self
            .audit
            .query(&filter)
            .await
            .map_err(|_| audit_down())?
            .iter()
            .any(|r| r.request_id == Some(journal.request_id()) && r.outcome.is_none());
        if !intent {
            return Ok(());
        }
        for tap in self.graph.list_taps(user).await.map_err(graph_failed)? {
            if tap.created_date_time.is_some_and(|c| c >= since) {
                tracing::warn!(tap_method_id = %tap.id, "deleting a pass an earlier attempt created but never recorded");
                delete(tap.id).await?;
            }
        }
        Ok(())
    }

    async fn address_of_record(&self, user: &User, channel: Channel) -> Result<Address, RecoveryError> {
        let none = |what: &str| {
            RecoveryError::refused(422, "no_address_of_record", format!("the user has no {what} of record"))
        };
        let to = match channel {
            Channel::Sms if self.settings.sms_from_attribute => {
                user.mobile_phone.clone().ok_or_else(|| none("mobile phone"))?
            }
            Channel::Sms => self
                .graph
                .mobile_phone_method(&user.id)
                .await
                .map_err(graph_failed)?
                .ok_or_else(|| none("registered mobile phone"))?,
            Channel::Email => user
                .other_mails
                .first()
                .cloned()
                .ok_or_else(|| none("alternate email address"))?,
            Channel::Manager => user
                .manager
                .as_ref()
                .and_then(|m| m.mail.clone())
                .ok_or_else(|| none("manager with mail"))?,
        };
        Ok(Address { channel, to })
    }

    /// Notices to the user's mailbox, other addresses of record that did not carry the pass, and
    /// the manager. Best effort: each address that got the notice is listed (masked).
    async fn notify(&self, user: &User, used: &Address, expires_at: OffsetDateTime, ticket: &Ticket) -> Vec<String> {
        let mut to: Vec<String> = Vec::new();
        to.extend(user.mail.clone());
        to.extend(user.other_mails.iter().cloned());
        to.extend(user.manager.as_ref().and_then(|m| m.mail.clone()));
        to.retain(|a| !a.eq_ignore_ascii_case(&used.to));
        to.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let fmt = &time::format_description::well_known::Rfc3339;
        let text = SecretString::from(format!(
            "A Temporary Access Pass was issued for {} at {} UTC for ticket {} {} and sent to {}. It expires at {} UTC.\n\nIf you did not ask for this, contact {} now.",
            user.user_principal_name,
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::now_utc())
                .format(fmt)
                .unwrap_or_default(),
            ticket.system,
            ticket.id,
            used.masked(),
            expires_at.format(fmt).unwrap_or_default(),
            self.settings.notice_contact,
        ));
        let mut notified = Vec::new();
        for address in to {
            match self
                .deliverer
                .send_mail(&address, "A Temporary Access Pass was issued for your account", &text)
                .await
            {
                Ok(_) => notified.push(crate::audit::mask_email(&address)),
                Err(e) => tracing::warn!(error = %e, "a notice could not be sent"),
            }
        }
        notified
    }
}

/// The requester's identity check (how the helpdesk proved who is calling), when required.
pub(crate) fn check_verification(
    s: &TapSettings,
    verification: Option<&VerificationBody>,
    as_of: Option<OffsetDateTime>,
    details: &mut Value,
) -> Result<(), RecoveryError> {
    if !s.require_verification {
        return Ok(());
    }
    let v = verification.ok_or_else(|| {
        RecoveryError::refused(
            400,
            "verification_required",
            "verification {method, verifiedBy, verifiedAt} is required",
        )
    })?;
    // A queued request is judged as of when it was accepted, not when a worker got to it.
    let age = as_of.unwrap_or_else(OffsetDateTime::now_utc) - v.verified_at;
    if age > time::Duration::minutes(i64::from(s.verification_max_age_minutes)) || age < -time::Duration::minutes(2) {
        return Err(RecoveryError::refused(
            422,
            "verification_stale",
            format!(
                "the verification must be from the last {} minutes",
                s.verification_max_age_minutes
            ),
        ));
    }
    details["verification"] = json!({"method": v.method, "verifiedBy": v.verified_by,
        "verifiedAt": v.verified_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()});
    Ok(())
}

fn audit_down() -> RecoveryError {
    RecoveryError::failed(
        503,
        "audit_unavailable",
        "the audit trail is unavailable, so nothing was changed; try again later",
    )
}

impl TapContext<'_> {
    /// The outcome record of an attempt. What was done is already done, so a failure to write
    /// it is logged loudly rather than changing the answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_outcome(
        &self,
        caller: &CallerRecord,
        action: &str,
        target: Target,
        ticket: &Ticket,
        request_id: Uuid,
        outcome: Outcome,
        details: Value,
    ) {
        let event = AuditEvent {
            caller: caller.clone(),
            action: action.to_owned(),
            target: Some(target),
            ticket: Some(ticket.clone()),
            request_id: Some(request_id),
            phase: Phase::Outcome,
            outcome: Some(outcome),
            details,
        };
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, %request_id, "the outcome record could not be written");
        }
    }

    /// The user, refused when privileged: any directory role, or a protected group (transitively).
    pub(crate) async fn find_target(
        &self,
        user: &UserRef,
        target: &mut Target,
    ) -> Result<(User, Vec<crate::graph::models::DirectoryObject>), RecoveryError> {
        let user = self
            .graph
            .get_user(user)
            .await
            .map_err(graph_failed)?
            .ok_or_else(|| RecoveryError::refused(404, "user_not_found", "no such user"))?;
        *target = Target {
            object_id: Some(user.id.to_string()),
            upn: Some(user.user_principal_name.clone()),
        };
        let memberships = self.graph.transitive_member_of(&user.id).await.map_err(graph_failed)?;
        let protected = memberships.iter().any(|m| {
            m.is_role()
                || (m.is_group() && Uuid::parse_str(&m.id).is_ok_and(|g| self.settings.protected_groups.contains(&g)))
        });
        if protected {
            return Err(RecoveryError::refused(
                403,
                "target_protected",
                "the user holds a directory role or is in a protected group; a person with the Privileged Authentication Administrator role must do this",
            ));
        }
        Ok((user, memberships))
    }

    /// Rate limits for `action`, counted from the audit trail so they hold across instances.
    pub(crate) async fn check_rate(
        &self,
        action: &str,
        noun: &str,
        caller: &CallerRecord,
        user: &Uuid,
        per_target_per_day: u32,
        per_caller_per_hour: u32,
    ) -> Result<(), RecoveryError> {
        let now = OffsetDateTime::now_utc();
        let done = |user: Option<String>, from: OffsetDateTime| AuditFilter {
            from,
            to: now,
            user,
            ticket: None,
            action: Some(action.into()),
            outcome: Some("succeeded".into()),
        };
        let for_target = self
            .audit
            .query(&done(Some(user.to_string()), now - time::Duration::hours(24)))
            .await
            .map_err(|_| audit_down())?
            .len();
        if for_target >= per_target_per_day as usize {
            return Err(RecoveryError::refused(
                429,
                "rate_limited",
                format!("at most {per_target_per_day} {noun} per user per 24 hours"),
            ));
        }
        let for_caller = self
            .audit
            .query(&done(None, now - time::Duration::hours(1)))
            .await
            .map_err(|_| audit_down())?
            .into_iter()
            .filter(|r| r.caller.object_id == caller.object_id && r.caller.via == caller.via)
            .count();
        if for_caller >= per_caller_per_hour as usize {
            return Err(RecoveryError::refused(
                429,
                "rate_limited",
                format!("at most {per_caller_per_hour} {noun} per caller per hour"),
            ));
        }
        Ok(())
    }
}

/// The built-in text that carries the pass; `TAP_MESSAGE_TEMPLATE` replaces it.
pub const DEFAULT_MESSAGE: &str = "Temporary Access Pass for {upn}: {pass}\nValid until {expires} UTC{usage}.\nSign in with your password and this pass, open https://mysignins.microsoft.com/security-info, register Microsoft Authenticator with cloud backup turned on, and add a second method.\nTicket {ticket}. Not you? Contact {contact}.";

fn pass_message(
    template: Option<&str>,
    user: &User,
    pass: &str,
    expires_at: OffsetDateTime,
    usable_once: bool,
    ticket: &Ticket,
    contact: &str,
) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    // `{pass}` is filled last, so text in the other values cannot be taken for a placeholder of it.
    template
        .unwrap_or(DEFAULT_MESSAGE)
        .replace("{upn}", &user.user_principal_name)
        .replace("{expires}", &expires_at.format(&fmt).unwrap_or_default())
        .replace("{usage}", if usable_once { ", one use" } else { "" })
        .replace("{ticket}", &format!("{} {}", ticket.system, ticket.id))
        .replace("{contact}", contact)
        .replace("{pass}", pass)
}
