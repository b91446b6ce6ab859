//! Issue a Temporary Access Pass that only the user can receive.
//!
//! Order: parse the request; find the user; refuse the caller's own account and any privileged
//! target (`privilege`, failing closed when a read fails); then the pre-flight (`prepare`): the
//! account (enabled, a member), separation of duties for the manager channel, the tenant's TAP
//! policy and scope, the lifetime (policy and channel), the address of record, the connector,
//! somebody to notify, and last a rate-limit slot reserved atomically (`limits`). Then write the
//! intent record (no record, no pass); create the pass (never resent blindly); deliver it; tell
//! the user on every other channel and the manager; write the outcome. A pass that cannot be
//! delivered is deleted, so no undelivered pass stays usable. A reset with a pass runs the same
//! pre-flight before its first removal.
//!
//! The pass lives in a `SecretString` from Graph's answer to the provider's request and nowhere
//! else: not in logs, errors, audit records or responses (unless `TAP_RETURN_TO_CALLER`).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::limits::Limits;
use super::privilege::PrivilegeCheck;
use super::rules;
use super::{Delivered, Journal, RecoveryError, TapProgress, text_ok};
use crate::audit::{Action, AuditEvent, AuditTrail, Outcome, Phase, Target, Ticket};
use crate::config::ApprovalTrigger as Trigger;
use crate::config::{TapSettings, VerificationMode};
use crate::delivery::Deliverer;
use crate::graph::models::{User, UserRef};
use crate::graph::{CreateTapError, GraphClient};
use crate::vocab::CallerRecord;
use crate::vocab::{Address, Channel};
use crate::vocab::{Fault, Refusal};

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

/// How the caller shows the requester was verified: a verification the service made (its id),
/// or, where `TAP_REQUIRE_VERIFICATION=attested`, the block the caller types.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum VerificationBody {
    Service(ServiceVerification),
    Attested(AttestedVerification),
}

impl VerificationBody {
    /// The block as a request carries it.
    pub fn to_json(&self) -> Value {
        match self {
            VerificationBody::Service(v) => json!({"id": v.id}),
            VerificationBody::Attested(v) => json!({"method": v.method, "verifiedBy": v.verified_by,
                "verifiedAt": v.verified_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceVerification {
    pub id: Uuid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestedVerification {
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

fn bad(code: Refusal, message: impl Into<String>) -> RecoveryError {
    RecoveryError::refused(code, message)
}

impl TapRequest {
    /// Parse the route's `{user}` and the body; every problem is a 400 the caller can fix.
    ///
    /// # Errors
    /// `invalid_request`, `address_not_allowed`, `invalid_user`.
    pub fn parse(user: &str, body: &[u8]) -> Result<TapRequest, RecoveryError> {
        let user = UserRef::parse(user).map_err(|e| bad(Refusal::InvalidUser, e))?;
        let body: TapBody = super::parse_body(
            body,
            "{delivery: {channel}, ticket: {system, id}, reason, lifetimeMinutes?, usableOnce?, verification?}",
        )?;
        if !body.delivery.other.is_empty() {
            return Err(bad(
                Refusal::AddressNotAllowed,
                "a pass goes only to an address of record; remove everything but delivery.channel",
            ));
        }
        let channel = Channel::parse(&body.delivery.channel).ok_or_else(|| {
            bad(
                Refusal::InvalidRequest,
                "delivery.channel must be sms, email or manager",
            )
        })?;
        if !text_ok(&body.ticket.system, 32) || !text_ok(&body.ticket.id, 64) {
            return Err(bad(
                Refusal::InvalidRequest,
                "ticket.system (up to 32 characters) and ticket.id (up to 64) are required",
            ));
        }
        if !text_ok(&body.reason, 500) {
            return Err(bad(
                Refusal::InvalidRequest,
                "reason is required (up to 500 characters)",
            ));
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
    /// Set when the pass went out but nobody could be told.
    pub warning: Option<String>,
    /// Only when `TAP_RETURN_TO_CALLER` is on.
    pub pass: Option<SecretString>,
}

/// What a recovery asks for, as its first steps need it.
pub(crate) struct Asked<'a> {
    pub action: Action,
    /// What the caller's limit counts (`passes`, `resets`), for its message.
    pub what: &'static str,
    pub user: &'a UserRef,
    pub verification: Option<&'a VerificationBody>,
    /// The channel a pass would take (a verification's code must have taken another).
    pub channel: Option<Channel>,
    /// A reset of every method (`scope: all`), which may need a second approver.
    pub reset_all: bool,
    /// The pass's lifetime as asked (`None`: the default), for an approver to see.
    pub lifetime_minutes: Option<u32>,
    /// The approval is decided later, by the caller of `admit` (a reset knows what it leaves
    /// only once it has read the user's methods).
    pub defer_approval: bool,
}

/// A target `admit` let through: who, their memberships, and what a second approver may need
/// to know.
pub(crate) struct Admitted {
    pub user: User,
    pub memberships: Vec<crate::graph::models::DirectoryObject>,
    pub privileged: bool,
    /// Entra ID Protection rates the user high risk or confirmed compromised (approvals are on,
    /// or `admit` would have refused).
    pub at_risk: bool,
}

/// Everything issuing a pass needs.
pub struct TapContext<'a> {
    pub graph: &'a GraphClient,
    pub audit: &'a AuditTrail,
    pub deliverer: &'a Deliverer,
    pub settings: &'a TapSettings,
    pub privilege: &'a PrivilegeCheck,
    pub limits: &'a Limits,
    pub verifications: &'a super::verification::Verifications,
}

/// A pass every pre-flight check has allowed, with its rate-limit slot reserved: what is left is
/// to record the intent, create it, deliver it and tell the user.
pub(crate) struct Prepared {
    pub user: User,
    pub lifetime: u32,
    pub usable_once: bool,
    pub address: Address,
    /// Who is told about the pass (never the address that carries it).
    pub notice_to: Vec<String>,
}

fn graph_failed(e: crate::graph::GraphError) -> RecoveryError {
    tracing::error!(error = %e, "Graph call failed");
    if e.is_forbidden() {
        return permission_refused("nothing was changed");
    }
    RecoveryError::failed(
        Fault::GraphUnavailable,
        "Microsoft Graph could not be reached or refused the call; nothing was changed. Try again later.",
    )
}

/// Graph answered 403: the identity this runs as lacks a Graph permission. Retrying does not help;
/// granting it does (docs/deploy.md lists them).
pub(crate) fn permission_refused(what_happened: &str) -> RecoveryError {
    RecoveryError::failed(
        Fault::PermissionMissing,
        format!(
            "Microsoft Graph refused the call (403): the identity this runs as lacks a Graph permission the recovery needs (docs/deploy.md lists them); {what_happened}."
        ),
    )
}

impl TapContext<'_> {
    async fn record(&self, event: AuditEvent) -> Result<(), RecoveryError> {
        self.audit.record(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit record failed");
            RecoveryError::failed(
                Fault::AuditUnavailable,
                "the audit trail is unavailable, so nothing was changed; try again later",
            )
        })
    }

    /// Run the whole procedure and record its outcome, whatever it is.
    pub async fn issue(&self, caller: &CallerRecord, request: TapRequest) -> Result<Issued, RecoveryError> {
        self.issue_with(caller, request, &super::NoJournal::new()).await
    }

    /// `issue` for a queued request: its id and its journal, so a retry after a crash picks up
    /// where the last attempt stopped and never delivers a second pass.
    pub async fn issue_with(
        &self,
        caller: &CallerRecord,
        request: TapRequest,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let request_id = journal.request_id();
        self.recorded(caller, &request, request_id, None, journal).await
    }

    /// The pass of a reset that already passed every pre-flight check (before its removals).
    pub(crate) async fn issue_prepared(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        prepared: Prepared,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        self.recorded(caller, request, request_id, Some(prepared), journal)
            .await
    }

    /// Run (the pre-flight unless `prepared`, then the pass) and record the outcome.
    async fn recorded(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        prepared: Option<Prepared>,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
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
        let result = match prepared {
            Some(prepared) => {
                target = Target {
                    object_id: Some(prepared.user.id.to_string()),
                    upn: Some(prepared.user.user_principal_name.clone()),
                };
                details["to"] = json!(prepared.address.masked());
                details["lifetimeMinutes"] = json!(prepared.lifetime);
                details["usableOnce"] = json!(prepared.usable_once);
                self.execute(caller, request, request_id, &target, &mut details, prepared, journal)
                    .await
            }
            None => {
                self.run(caller, request, request_id, &mut target, &mut details, journal)
                    .await
            }
        };
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(e) => e.outcome(),
        };
        if let Err(e) = &result {
            details["error"] = json!(e.message);
            self.release_verification(caller, request.verification.as_ref(), request_id, e)
                .await;
        }
        self.record_outcome(
            caller,
            Action::TapIssue,
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
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let earlier = journal.progress();
        if earlier.delivering || earlier.delivered.is_some() {
            return self.resume(journal, &earlier, request, target, details).await;
        }
        let asked = Asked {
            action: Action::TapIssue,
            what: "passes",
            user: &request.user,
            verification: request.verification.as_ref(),
            channel: Some(request.channel),
            reset_all: false,
            lifetime_minutes: request.lifetime_minutes,
            defer_approval: false,
        };
        let Admitted { user, memberships, .. } =
            self.admit(caller, asked, request_id, journal, target, details).await?;
        self.clean_up_earlier(journal, &earlier, &user.id).await?;
        let prepared = self
            .prepare(caller, request, request_id, user, &memberships, &[], details)
            .await?;
        self.execute(caller, request, request_id, target, details, prepared, journal)
            .await
    }

    /// The first steps of every recovery, in order: the requester's verification, the caller's
    /// rate-limit slot (every attempt counts, so nobody can probe who is privileged, or anything
    /// else, faster than the caller limit), then the target: found, not the caller, not
    /// privileged, not at risk in Entra ID Protection; then, unless deferred, the second approver.
    pub(crate) async fn admit(
        &self,
        caller: &CallerRecord,
        asked: Asked<'_>,
        request_id: Uuid,
        journal: &dyn Journal,
        target: &mut Target,
        details: &mut Value,
    ) -> Result<Admitted, RecoveryError> {
        check_verification(self.settings, asked.verification, Some(journal.accepted_at()), details)?;
        self.reserve_caller_slot(
            asked.action,
            asked.what,
            caller,
            request_id,
            self.settings.max_per_caller_per_hour,
        )
        .await?;
        let (user, memberships, privileged) = self.find_target(caller, asked.user, target, details).await?;
        if let Some(VerificationBody::Service(v)) = asked.verification
            && self.settings.verification != VerificationMode::Off
        {
            let max_age = time::Duration::minutes(i64::from(self.settings.verification_max_age_minutes));
            let record = self
                .verifications
                .take(
                    v.id,
                    &super::verification::caller_key(caller),
                    user.id,
                    request_id,
                    asked.channel,
                    self.settings.verification_same_channel,
                    max_age,
                    journal.accepted_at(),
                )
                .await?;
            details["verification"] = record.audit_view();
            // The person a ticket names counts as the caller: the code they relied on must not
            // have gone to them (checked when it was sent only for whoever sent it).
            if let Some(person) = &caller.on_behalf_of
                && let Some(channel) = Channel::parse(&record.channel)
            {
                let address = self.address_unchecked(&user, channel, &[]).await?;
                self.not_the_addresses_of(&[person.object_id.as_str()], &user, &address)
                    .await?;
            }
        }
        let at_risk = self.read_risk(&user, details).await?.is_some_and(|r| r.at_risk);
        if at_risk && !self.settings.approval.enabled() {
            return Err(super::risk::at_risk_refused());
        }
        if !asked.defer_approval {
            let why = super::approval::Why {
                privileged,
                channel: asked.channel,
                reset_all: asked.reset_all,
                leaves_nothing: false,
                at_risk,
                lifetime_minutes: asked.lifetime_minutes,
            };
            self.approved_or_held(why, &user, journal, details).await?;
        }
        Ok(Admitted {
            user,
            memberships,
            privileged,
            at_risk,
        })
    }

    /// Every check a pass must meet before it exists, in order: the account (enabled, a member),
    /// who may send it where (separation of duties), the tenant's policy and scope, the lifetime,
    /// the address of record (still of record after `removing`, the methods a reset is about to
    /// remove), the connector, somebody to tell, and last a rate-limit slot for the caller and
    /// for the target (reserved atomically, so it cannot be raced).
    ///
    /// # Errors
    /// A refusal; nothing was created (a slot reserved is kept: attempts count).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn prepare(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        user: User,
        memberships: &[crate::graph::models::DirectoryObject],
        removing: &[crate::graph::models::AuthMethod],
        details: &mut Value,
    ) -> Result<Prepared, RecoveryError> {
        let s = self.settings;
        rules::account_eligible(&user)?;
        let mut people = caller.people();
        people.extend(caller.object_id.as_deref());
        rules::manager_is_not_caller(request.channel, &user, &people)?;
        let policy = self.policy_covering(memberships).await?;
        // Lifetime: the policy's range and the channel's limit.
        let channel_max = match request.channel {
            Channel::Sms => s.max_minutes_sms,
            Channel::Email => s.max_minutes_email,
            Channel::Manager => s.max_minutes_manager,
        };
        let lifetime = rules::lifetime(
            request.lifetime_minutes,
            s.default_lifetime_minutes,
            &policy,
            request.channel,
            channel_max,
        )?;
        let usable_once = rules::usable_once(request.usable_once, &policy, s.allow_multi_use)?;
        // The address of record, as it will be when the pass goes out.
        let address = self.address_of_record(&user, request.channel, removing).await?;
        // Nobody sends a pass to themselves, on any channel.
        self.not_the_callers(caller, &user, &address).await?;
        details["to"] = json!(address.masked());
        // The connector must work before a pass exists: a pass that cannot be delivered is
        // worse than none.
        self.deliverer.ready(request.channel).await.map_err(|e| {
            tracing::error!(error = %e, "the delivery connector is not ready");
            RecoveryError::failed(
                Fault::DeliveryUnavailable,
                format!(
                    "the {} connector is not available ({e}); no pass was created",
                    request.channel.as_str()
                ),
            )
        })?;
        // Somebody other than the holder of the pass's address must be told, or a pass sent to
        // an address an attacker changed would go unnoticed.
        let notice_to = rules::notice_recipients(&user, &address);
        if notice_to.is_empty() {
            return Err(RecoveryError::refused(
                Refusal::NoNoticeRecipient,
                "nobody can be told about the pass: the user has no mailbox, alternate email or manager with mail besides the address the pass would go to. Add one, or choose another channel",
            ));
        }
        self.deliverer.ready_notices().await.map_err(|e| {
            tracing::error!(error = %e, "the notice connector is not ready");
            RecoveryError::failed(
                Fault::NoticeUnavailable,
                format!("notices cannot be sent ({e}), so no pass was created"),
            )
        })?;
        details["lifetimeMinutes"] = json!(lifetime);
        details["usableOnce"] = json!(usable_once);
        // Last: a slot, reserved atomically (attempts count, whatever happens next).
        self.reserve_slots(
            Action::TapIssue,
            "passes",
            caller,
            &user.id,
            request_id,
            s.max_per_target_per_day,
            s.max_per_caller_per_hour,
        )
        .await?;
        Ok(Prepared {
            user,
            lifetime,
            usable_once,
            address,
            notice_to,
        })
    }

    /// The tenant's Temporary Access Pass policy, when it is enabled and covers a user with these
    /// memberships.
    async fn policy_covering(
        &self,
        memberships: &[crate::graph::models::DirectoryObject],
    ) -> Result<crate::graph::models::TapPolicy, RecoveryError> {
        let policy = self.graph.tap_policy().await.map_err(graph_failed)?;
        if !policy.is_enabled() {
            return Err(RecoveryError::refused(
                Refusal::PolicyDisabled,
                "the tenant's Temporary Access Pass policy is disabled",
            ));
        }
        let groups: Vec<String> = memberships
            .iter()
            .filter(|m| m.is_group())
            .map(|m| m.id.clone())
            .collect();
        if !rules::in_policy_scope(&policy, &groups) {
            return Err(RecoveryError::refused(
                Refusal::UserOutOfScope,
                "the user is not in the scope of the tenant's Temporary Access Pass policy",
            ));
        }
        Ok(policy)
    }

    /// Record the intent, create the pass (never resent blindly), deliver it, tell the user.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &Target,
        details: &mut Value,
        prepared: Prepared,
        journal: &dyn Journal,
    ) -> Result<Issued, RecoveryError> {
        let s = self.settings;
        let Prepared {
            user,
            lifetime,
            usable_once,
            address,
            notice_to,
        } = prepared;
        let now = OffsetDateTime::now_utc();
        self.record_intent(caller, request, request_id, target, details, journal, now)
            .await?;
        let created = self.create_pass(&user, lifetime, usable_once).await?;
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
        self.save_created(journal, &mut progress, &user, &created.method.id)
            .await?;
        // Deliver.
        let text = SecretString::from(pass_message(
            s.message_template.as_deref(),
            &user,
            created.pass.expose_secret(),
            expires_at,
            usable_once,
            &s.notice_contact,
        ));
        let sent = self
            .deliver_pass(&address, &text, request_id, &user, &created.method.id, journal)
            .await?;
        details["provider"] = json!(sent.provider);
        details["messageId"] = json!(sent.message_id);
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
        // Tell the user on every other channel of record, and the manager.
        let notified = self
            .notify(&user, &notice_to, &address, expires_at, &request.ticket)
            .await;
        details["notified"] = json!(notified);
        let warning = no_notice_warning(&notified, details);
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
            warning,
            // Only a synchronous answer may carry it: a queued request's result is stored, shown by
            // its status URL and sent to its callback, whatever TAP_RETURN_TO_CALLER says.
            pass: (s.return_to_caller && !journal.is_queued()).then_some(created.pass),
        })
    }

    /// The intent (no record, no pass) and, before Graph is asked, the journal's mark: an attempt
    /// that dies before the pass's id is saved leaves the next one a sign to look for it.
    #[allow(clippy::too_many_arguments)]
    async fn record_intent(
        &self,
        caller: &CallerRecord,
        request: &TapRequest,
        request_id: Uuid,
        target: &Target,
        details: &Value,
        journal: &dyn Journal,
        now: OffsetDateTime,
    ) -> Result<(), RecoveryError> {
        self.record(AuditEvent {
            caller: caller.clone(),
            action: Action::TapIssue,
            target: Some(target.clone()),
            ticket: Some(request.ticket.clone()),
            request_id: Some(request_id),
            phase: Phase::Intent,
            outcome: None,
            details: details.clone(),
        })
        .await?;
        journal
            .save(&TapProgress {
                creating_since: Some(now),
                ..TapProgress::default()
            })
            .await
    }

    /// Create the pass. Graph's refusal is a refusal; an unknown outcome deletes whatever pass the
    /// attempt may have left (its id, when Graph named one) and says which it is.
    async fn create_pass(
        &self,
        user: &User,
        lifetime: u32,
        usable_once: bool,
    ) -> Result<crate::graph::models::CreatedTap, RecoveryError> {
        match self.graph.create_tap(&user.id, lifetime, usable_once).await {
            Ok(c) => Ok(c),
            Err(CreateTapError::Refused(e)) => {
                tracing::warn!(error = %e, "Graph refused the TAP");
                Err(RecoveryError::refused(
                    Refusal::GraphRefused,
                    "Microsoft Graph refused to create the pass (check the TAP policy and the user's scope)",
                ))
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
                Err(RecoveryError::failed(
                    Fault::TapOutcomeUnknown,
                    format!("the pass could not be confirmed; {state}. Try again."),
                ))
            }
        }
    }

    /// A queued request saves each step before the next one: the pass exists, then the provider
    /// is being called. A pass whose step cannot be saved is deleted.
    async fn save_created(
        &self,
        journal: &dyn Journal,
        progress: &mut TapProgress,
        user: &User,
        method_id: &str,
    ) -> Result<(), RecoveryError> {
        let mut saved = journal.save(progress).await;
        if saved.is_ok() {
            progress.delivering = true;
            saved = journal.save(progress).await;
        }
        if let Err(e) = saved {
            let _ = self.graph.delete_tap(&user.id, method_id).await;
            return Err(e);
        }
        Ok(())
    }

    /// Hand the pass to the provider. When the provider says no, the pass is deleted and a queued
    /// request's progress starts afresh (a retry must not take the pass for one that may have
    /// arrived), keeping the pass's id if it could not be deleted.
    async fn deliver_pass(
        &self,
        address: &Address,
        text: &SecretString,
        request_id: Uuid,
        user: &User,
        method_id: &str,
        journal: &dyn Journal,
    ) -> Result<crate::delivery::Sent, RecoveryError> {
        let e = match self
            .deliverer
            .send(address, "Your temporary sign-in pass", text, &request_id.to_string())
            .await
        {
            Ok(sent) => return Ok(sent),
            Err(e) => e,
        };
        tracing::error!(error = %e, "delivery failed; deleting the undelivered pass");
        let deleted = self.graph.delete_tap(&user.id, method_id).await.is_ok();
        let fresh = TapProgress {
            method_id: (!deleted).then(|| method_id.to_owned()),
            ..TapProgress::default()
        };
        if let Err(e) = journal.save(&fresh).await {
            tracing::error!(error = %e, "the failed delivery could not be saved in the request record");
        }
        let state = if deleted {
            "the pass was deleted, so no pass is active"
        } else {
            "the pass could not be deleted: delete it in the admin center"
        };
        Err(RecoveryError::failed(
            Fault::DeliveryFailed,
            format!("the pass could not be delivered ({e}); {state}"),
        ))
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
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
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
                Fault::DeliveryUnconfirmed,
                format!(
                    "the service stopped while the pass was being sent, so it may or may not have arrived; it was not sent again. It stays valid until {} UTC. If the user did not receive it, submit a new request: its pass replaces this one.",
                    expires_at.format(fmt).unwrap_or_default()
                ),
            ));
        };
        details["to"] = json!(delivered.to);
        details["provider"] = json!(delivered.provider);
        let address = self.address_of_record(&user, request.channel, &[]).await?;
        let notice_to = rules::notice_recipients(&user, &address);
        let notified = self
            .notify(&user, &notice_to, &address, expires_at, &request.ticket)
            .await;
        details["notified"] = json!(notified);
        let warning = no_notice_warning(&notified, details);
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
            warning,
            pass: None,
        })
    }

    /// Delete a pass that a request given up on created and never handed to a provider (`user`
    /// as the request named them). Whether it is gone: `false` means it may still exist.
    pub async fn discard_undelivered(&self, user: &str, method_id: &str) -> bool {
        let Ok(user) = UserRef::parse(user) else {
            return false;
        };
        match self.graph.get_user(&user).await {
            Ok(Some(u)) => match self.graph.delete_tap(&u.id, method_id).await {
                Ok(()) => true,
                Err(e) => e.is_not_found(),
            },
            _ => false,
        }
    }

    /// Before a retry creates a pass: delete the one an earlier attempt created but never handed
    /// to a provider (saved in the journal), or, when the attempt died between creating it and
    /// saving that step (its intent record is in the audit trail), any pass created since the
    /// request was first claimed. Either way no undelivered pass stays usable.
    pub(crate) async fn clean_up_earlier(
        &self,
        journal: &dyn Journal,
        earlier: &TapProgress,
        user: &Uuid,
    ) -> Result<(), RecoveryError> {
        let delete = |id: String| async move {
            match self.graph.delete_tap(user, &id).await {
                Err(e) if !e.is_not_found() => Err(graph_failed(e)),
                _ => Ok(()),
            }
        };
        if let Some(id) = &earlier.method_id {
            tracing::warn!(tap_method_id = %id, "deleting the undelivered pass of an earlier attempt");
            delete(id.clone()).await?;
            return journal.save(&TapProgress::default()).await;
        }
        // An attempt died between asking Graph for the pass and saving its id: a pass created
        // since then (a minute's leeway for clocks) is that orphan.
        let Some(creating) = earlier.creating_since else {
            return Ok(());
        };
        let since = creating - time::Duration::minutes(1);
        for tap in self.graph.list_taps(user).await.map_err(graph_failed)? {
            if tap.created_date_time.is_some_and(|c| c >= since) {
                tracing::warn!(tap_method_id = %tap.id, "deleting a pass an earlier attempt created but never recorded");
                delete(tap.id).await?;
            }
        }
        journal.save(&TapProgress::default()).await
    }

    /// The address of record for `channel`, as it will be once the methods in `removing` are
    /// gone (a reset that removes the mobile phone cannot send the pass to it).
    pub(crate) async fn address_of_record(
        &self,
        user: &User,
        channel: Channel,
        removing: &[crate::graph::models::AuthMethod],
    ) -> Result<Address, RecoveryError> {
        let address = self.address_unchecked(user, channel, removing).await?;
        self.address_settled(user, channel).await?;
        Ok(address)
    }

    /// The address of record for `channel`, without the stale-address check.
    pub(crate) async fn address_unchecked(
        &self,
        user: &User,
        channel: Channel,
        removing: &[crate::graph::models::AuthMethod],
    ) -> Result<Address, RecoveryError> {
        let none = |what: &str| {
            RecoveryError::refused(Refusal::NoAddressOfRecord, format!("the user has no {what} of record"))
        };
        let to = match channel {
            Channel::Sms if self.settings.sms_from_attribute => {
                user.mobile_phone.clone().ok_or_else(|| none("mobile phone"))?
            }
            Channel::Sms if removing.iter().any(crate::graph::models::AuthMethod::is_mobile_phone) => {
                return Err(RecoveryError::refused(
                    Refusal::NoAddressOfRecord,
                    "the reset removes the registered mobile phone the pass would go to; choose email or manager, or keep the mobile phone (scope \"methods\")",
                ));
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
        // A number no provider can send to fails only at delivery, after a reset's removals:
        // refuse it now, before anything exists.
        if channel == Channel::Sms && crate::delivery::e164(&to).is_none() {
            return Err(RecoveryError::refused(
                Refusal::NoAddressOfRecord,
                "the user's mobile phone of record is not a number in international form (+country code), so no text message can reach it; correct it in the directory or choose another channel",
            ));
        }
        Ok(Address { channel, to })
    }

    /// The address `channel` uses was not changed within `ADDRESS_MIN_AGE_DAYS` (the directory
    /// audit log says who changed what, when). Fails closed when the log cannot be read.
    async fn address_settled(&self, user: &User, channel: Channel) -> Result<(), RecoveryError> {
        let events = self.address_changes(user, channel).await?;
        self.settled_in(&events, channel)
    }

    /// The directory audit events about `user` within `ADDRESS_MIN_AGE_DAYS` (none when the check
    /// is off), read once for however many channels are judged with `settled_in`.
    pub(crate) async fn address_changes(
        &self,
        user: &User,
        channel: Channel,
    ) -> Result<Vec<serde_json::Value>, RecoveryError> {
        let days = self.settings.address_min_age_days;
        if days == 0 {
            return Ok(Vec::new());
        }
        let since = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
        self.graph.directory_audits_about(&user.id, since).await.map_err(|e| {
            tracing::error!(error = %e, "the directory audit log could not be read; refusing the channel");
            let grant = if e.is_forbidden() {
                " Grant the function app's identity AuditLog.Read.All and Directory.Read.All (docs/deploy.md)."
            } else {
                " Try again later."
            };
            RecoveryError::failed(
                Fault::AddressCheckUnavailable,
                format!(
                    "the directory audit log could not be read, so the service cannot tell whether the user's {} address changed recently; nothing was sent.{grant}",
                    channel.as_str()
                ),
            )
        })
    }

    /// Whether `events` (from `address_changes`) change the address `channel` uses.
    pub(crate) fn settled_in(&self, events: &[serde_json::Value], channel: Channel) -> Result<(), RecoveryError> {
        let days = self.settings.address_min_age_days;
        let latest = events
            .iter()
            .filter(|e| rules::changes_address(e, channel, self.settings.sms_from_attribute))
            .filter_map(|e| e["activityDateTime"].as_str())
            .max();
        if let Some(when) = latest {
            return Err(RecoveryError::refused(
                Refusal::AddressRecentlyChanged,
                format!(
                    "the user's {} address changed on {} (within {days} days): an attacker may have put theirs there. Choose another channel, or ask for approval",
                    channel.as_str(),
                    when.get(..10).unwrap_or(when)
                ),
            ));
        }
        Ok(())
    }

    /// Notices to `to` (see `notice_recipients`). Best effort: each address that got the notice
    /// is listed (masked).
    async fn notify(
        &self,
        user: &User,
        to: &[String],
        used: &Address,
        expires_at: OffsetDateTime,
        ticket: &Ticket,
    ) -> Vec<String> {
        let fmt = &time::format_description::well_known::Rfc3339;
        let text = SecretString::from(format!(
            "A Temporary Access Pass was issued for {} at {} UTC{} and sent to {}. It expires at {} UTC.\n\nIf you did not ask for this, contact {} now.",
            user.user_principal_name,
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::now_utc())
                .format(fmt)
                .unwrap_or_default(),
            rules::ticket_words(ticket),
            used.masked(),
            expires_at.format(fmt).unwrap_or_default(),
            self.settings.notice_contact,
        ));
        let mut notified = Vec::new();
        for address in to {
            match self
                .deliverer
                .send_notice(address, "A Temporary Access Pass was issued for your account", &text)
                .await
            {
                Ok(_) => notified.push(crate::vocab::mask_email(address)),
                Err(e) => tracing::warn!(error = %e, "a notice could not be sent"),
            }
        }
        notified
    }
}

/// Who is told about a pass: the user's mailbox, other addresses of record and the manager,
/// never the address that carried the pass.
/// When no notice went out, say so loudly: in the answer and in the audit record.
fn no_notice_warning(notified: &[String], details: &mut Value) -> Option<String> {
    if !notified.is_empty() {
        return None;
    }
    tracing::error!("the pass was delivered but no notice could be sent");
    details["noticeFailed"] = json!(true);
    Some("no notice could be sent to the user or the manager: tell them yourself that a pass was issued".into())
}

/// The requester's identity check (how the helpdesk proved who is calling), as far as it can be
/// judged before the target is known: present, of the kind this deployment accepts, and a typed
/// block recent. A verification the service made is checked against its record in `admit`.
pub(crate) fn check_verification(
    s: &TapSettings,
    verification: Option<&VerificationBody>,
    as_of: Option<OffsetDateTime>,
    details: &mut Value,
) -> Result<(), RecoveryError> {
    let v = match (s.verification, verification) {
        (VerificationMode::Off, _) => return Ok(()),
        (_, Some(VerificationBody::Service(_))) => return Ok(()),
        (VerificationMode::Service, Some(VerificationBody::Attested(_))) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                "this deployment accepts only verifications the service made: send a code (POST /api/users/{user}/verifications), confirm it, then pass verification: {id}",
            ));
        }
        (VerificationMode::Service, None) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                "verification {id} is required: send a code (POST /api/users/{user}/verifications) and confirm it first",
            ));
        }
        (VerificationMode::Attested, None) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                "verification {method, verifiedBy, verifiedAt} (or {id} of a verification the service made) is required",
            ));
        }
        (VerificationMode::Attested, Some(VerificationBody::Attested(v))) => v,
    };
    // A queued request is judged as of when it was accepted, not when a worker got to it.
    let age = as_of.unwrap_or_else(OffsetDateTime::now_utc) - v.verified_at;
    if age > time::Duration::minutes(i64::from(s.verification_max_age_minutes)) || age < -time::Duration::minutes(2) {
        return Err(RecoveryError::refused(
            Refusal::VerificationStale,
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
        details: Value,
    ) {
        let event = AuditEvent {
            caller: caller.clone(),
            action,
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

    /// The user, refused when it is the caller or privileged in any way (`privilege`), unless
    /// privileged targets wait for a second approver (then `true`); what was found goes into the
    /// audit record's `privilege`, not to the caller.
    pub(crate) async fn find_target(
        &self,
        caller: &CallerRecord,
        user: &UserRef,
        target: &mut Target,
        details: &mut Value,
    ) -> Result<(User, Vec<crate::graph::models::DirectoryObject>, bool), RecoveryError> {
        let user = self
            .graph
            .get_user(user)
            .await
            .map_err(graph_failed)?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        *target = Target {
            object_id: Some(user.id.to_string()),
            upn: Some(user.user_principal_name.clone()),
        };
        // Separation of duties: nobody recovers their own account through this service.
        if caller
            .object_id
            .as_deref()
            .is_some_and(|me| me.eq_ignore_ascii_case(&user.id.to_string()))
            || caller.is_person(&user.id.to_string())
        {
            return Err(RecoveryError::refused(
                Refusal::SelfRecoveryForbidden,
                "a caller cannot recover its own account; ask another agent",
            ));
        }
        let memberships = self
            .graph
            .transitive_member_of(&user.id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the target's memberships could not be read; refusing");
                let (code, message) = if e.is_forbidden() {
                    (Fault::PermissionMissing, "Microsoft Graph refused to read the user's group and role memberships, so the service cannot tell whether the user is privileged and changed nothing. Grant the function app's identity User.Read.All (docs/deploy.md).")
                } else {
                    (Fault::PrivilegeCheckUnavailable, "Microsoft Graph could not be read (the user's memberships), so the service cannot tell whether the user is privileged and changed nothing. Try again later.")
                };
                RecoveryError::failed(code, message)
            })?;
        let privileged = match self.privilege.find(self.graph, &user.id, &memberships).await? {
            None => false,
            Some(privilege) => {
                details["privilege"] = privilege.detail();
                if !self.settings.approval.requires(Trigger::Privileged) {
                    tracing::warn!(
                        kind = privilege.kind,
                        assignment = privilege.assignment,
                        "the target is privileged; refusing"
                    );
                    return Err(RecoveryError::refused(
                        Refusal::TargetProtected,
                        "the user holds or is eligible for an administrative role, is in a protected group, or holds a role of this service; a person with the Privileged Authentication Administrator role must do this",
                    ));
                }
                tracing::warn!(
                    kind = privilege.kind,
                    assignment = privilege.assignment,
                    "the target is privileged; a second approver must agree"
                );
                true
            }
        };
        Ok((user, memberships, privileged))
    }

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

/// The built-in text that carries the pass; `TAP_MESSAGE_TEMPLATE` replaces it. It holds no text
/// a caller chose (no ticket, no reason): an attacker's words never travel with a pass.
pub const DEFAULT_MESSAGE: &str = "Temporary Access Pass for {upn}: {pass}\nValid until {expires} UTC{usage}.\nSign in with your password and this pass, open https://mysignins.microsoft.com/security-info, register Microsoft Authenticator with cloud backup turned on, and add a second method.\nNot you? Contact {contact}.";

/// Fill the template in one pass: each placeholder of the template is replaced once and the text
/// put in is never read again, so no value can smuggle in a placeholder (a `{pass}` in a UPN or a
/// contact stays as typed). Unknown placeholders stay as they are.
fn pass_message(
    template: Option<&str>,
    user: &User,
    pass: &str,
    expires_at: OffsetDateTime,
    usable_once: bool,
    contact: &str,
) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let expires = expires_at.format(&fmt).unwrap_or_default();
    let mut out = String::new();
    let mut rest = template.unwrap_or(DEFAULT_MESSAGE);
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            rest = after;
            break;
        };
        let value = match &after[..=close] {
            "{upn}" => Some(user.user_principal_name.as_str()),
            "{pass}" => Some(pass),
            "{expires}" => Some(expires.as_str()),
            "{usage}" => Some(if usable_once { ", one use" } else { "" }),
            "{contact}" => Some(contact),
            _ => None,
        };
        match value {
            Some(v) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str) -> User {
        serde_json::from_value(json!({"id": Uuid::nil(), "userPrincipalName": upn})).unwrap()
    }

    #[test]
    fn the_pass_message_fills_each_placeholder_once() {
        let t = time::macros::datetime!(2026-11-28 10:00 UTC);
        let text = pass_message(
            Some("{upn} {pass} {expires}{usage} {contact} {ticket} {"),
            &user("a{pass}b@contoso.test"),
            "SECRET",
            t,
            true,
            "call {pass}",
        );
        assert_eq!(
            text,
            "a{pass}b@contoso.test SECRET 2026-11-28 10:00, one use call {pass} {ticket} {"
        );
        assert_eq!(text.matches("SECRET").count(), 1);
    }

    #[test]
    fn the_default_message_carries_no_caller_text() {
        assert!(!DEFAULT_MESSAGE.contains("{ticket}"));
        let text = pass_message(
            None,
            &user("a@contoso.test"),
            "P",
            OffsetDateTime::now_utc(),
            false,
            "IT",
        );
        assert!(text.contains("a@contoso.test: P"), "{text}");
    }
}
