//! Require re-registration of MFA: remove the lost methods in the order Graph requires, revoke
//! sessions, optionally issue a pass through the TAP procedure, and tell the user. Safe to repeat:
//! a method already gone counts as removed, so running the same request again finishes the job.
//!
//! Scopes: `portal` does what the admin center's button does (deletes phone numbers, Microsoft
//! Authenticator and software OATH; deactivates hardware OATH tokens); `all` deletes every
//! deletable method; `methods` deletes only the listed ids. The password is never touched.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::admit::Asked;
use super::context::TapContext;
use super::details::{Details, MethodEntry, VerificationSeen};
use super::request::{TapRequest, TicketBody, VerificationBody};
use super::rules;
use super::{Journal, RecoveryError, text_ok};
use crate::audit::{Action, AuditEvent, Outcome, Phase, Target, Ticket};
use crate::graph::models::{AuthMethod, MethodKind, User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::{Fault, Refusal};

pub use super::rules::Scope;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResetBody {
    scope: Option<String>,
    methods: Option<Vec<String>>,
    revoke_sessions: Option<bool>,
    allow_empty: Option<bool>,
    tap: Option<Value>,
    ticket: TicketBody,
    reason: String,
    verification: Option<VerificationBody>,
}

/// A parsed, valid reset request.
#[derive(Debug)]
pub struct ResetRequest {
    pub user: UserRef,
    pub scope: Scope,
    pub methods: Vec<String>,
    pub revoke_sessions: bool,
    /// `allowEmpty`: the caller knows the reset leaves the user with no method at all (and that
    /// Conditional Access protects registering security info); refused otherwise.
    pub allow_empty: bool,
    /// The TAP part, already parsed with the TAP rules (same ticket, reason and verification).
    pub tap: Option<TapRequest>,
    pub ticket: Ticket,
    pub verification: Option<VerificationBody>,
}

fn bad(code: Refusal, message: impl Into<String>) -> RecoveryError {
    RecoveryError::refused(code, message)
}

impl ResetRequest {
    /// # Errors
    /// A 400 the caller can fix.
    pub fn parse(user: &str, body: &[u8]) -> Result<ResetRequest, RecoveryError> {
        let parsed_user = UserRef::parse(user).map_err(|e| bad(Refusal::InvalidUser, e))?;
        let body: ResetBody = super::parse_body(
            body,
            "{ticket: {system, id}, reason, scope?, methods?, revokeSessions?, allowEmpty?, tap?, verification?}",
        )?;
        let scope = match body.scope.as_deref() {
            None | Some("portal") => Scope::Portal,
            Some("all") => Scope::All,
            Some("methods") => Scope::Methods,
            Some(_) => return Err(bad(Refusal::InvalidRequest, "scope must be portal, all or methods")),
        };
        let methods = body.methods.unwrap_or_default();
        if (scope == Scope::Methods) == methods.is_empty() {
            return Err(bad(
                Refusal::InvalidRequest,
                "methods (a list of method ids) goes with scope \"methods\", and only with it",
            ));
        }
        // The TAP part goes through the TAP parser with the reset's ticket, reason and verification.
        let tap = match body.tap {
            None => None,
            Some(Value::Object(mut t)) => {
                t.insert(
                    "ticket".into(),
                    json!({"system": body.ticket.system, "id": body.ticket.id}),
                );
                t.insert("reason".into(), json!(body.reason));
                if let Some(v) = &body.verification {
                    t.insert("verification".into(), json!(v));
                }
                Some(TapRequest::parse(user, Value::Object(t).to_string().as_bytes())?)
            }
            Some(_) => {
                return Err(bad(
                    Refusal::InvalidRequest,
                    "tap must be an object like the tap function's body",
                ));
            }
        };
        if !text_ok(&body.ticket.system, 32) || !text_ok(&body.ticket.id, 64) || !text_ok(&body.reason, 500) {
            return Err(bad(
                Refusal::InvalidRequest,
                "ticket.system, ticket.id and reason are required",
            ));
        }
        Ok(ResetRequest {
            user: parsed_user,
            scope,
            methods,
            revoke_sessions: body.revoke_sessions.unwrap_or(true),
            allow_empty: body.allow_empty.unwrap_or(false),
            tap,
            ticket: Ticket {
                system: body.ticket.system,
                id: body.ticket.id,
            },
            verification: body.verification,
        })
    }
}

/// The result of a reset, complete or not.
#[derive(Debug, Default)]
pub struct ResetResult {
    pub request_id: Uuid,
    pub user_id: Option<Uuid>,
    pub removed: Vec<MethodEntry>,
    pub failed: Vec<MethodEntry>,
    /// Kept because Graph does not delete them, as documented: the user's default phone while no
    /// other method could become the default (phoneauthenticationmethod-delete). Not a failure
    /// (sending the request again changes nothing): the user changes their default after signing
    /// in with the pass, then an admin deletes it (docs/reset.md).
    pub kept: Vec<MethodEntry>,
    pub remaining: Vec<MethodEntry>,
    pub sessions_revoked: bool,
    /// The pass issued with the reset (`reset+tap`).
    pub tap: Option<super::tap::Issued>,
    pub tap_error: Option<RecoveryError>,
    pub notified: Vec<String>,
    /// A retry that found the removals done and the pass already sent, or being sent, by an
    /// earlier attempt.
    pub resumed: bool,
}

impl ResetResult {
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.tap_error.is_none()
    }
}

/// What a reset works on once it may go on.
#[derive(Clone, Copy)]
struct Work<'a> {
    user: &'a User,
    methods: &'a [AuthMethod],
    planned: &'a [AuthMethod],
}

/// What the reset's pass is checked against.
struct PassPlan<'a> {
    tap: &'a TapRequest,
    tap_id: Uuid,
    user: &'a User,
    memberships: &'a [crate::graph::models::DirectoryObject],
    planned: &'a [AuthMethod],
}

fn notices_down(e: crate::vocab::ports::NoticeError) -> RecoveryError {
    tracing::error!(error = %e, "the notice connector is not ready");
    RecoveryError::failed(
        Fault::NoticeUnavailable,
        format!("notices cannot be sent ({e}), so nothing was removed"),
    )
}

fn nothing_removed(e: crate::graph::GraphError) -> RecoveryError {
    tracing::error!(error = %e, "Graph call failed");
    if e.is_forbidden() {
        return super::context::permission_refused(e.needs(), "nothing was removed");
    }
    RecoveryError::failed(
        Fault::GraphUnavailable,
        "Microsoft Graph could not be reached; nothing was removed. Try again later.",
    )
}

impl TapContext<'_> {
    /// Run a reset and record intent and outcome. `may_tap` says whether the caller holds
    /// `Recovery.Tap` (checked before anything is removed).
    ///
    /// # Errors
    /// A refusal (nothing was removed) or a failure before the first removal.
    pub async fn reset(
        &self,
        caller: &CallerRecord,
        request: ResetRequest,
        may_tap: bool,
    ) -> Result<ResetResult, RecoveryError> {
        self.reset_with(caller, request, may_tap, &super::NoJournal::new())
            .await
    }

    /// `reset` for a queued request: its id, and its journal for the pass (the removals are safe
    /// to repeat as they are).
    ///
    /// # Errors
    /// As `reset`.
    pub(crate) async fn reset_with(
        &self,
        caller: &CallerRecord,
        request: ResetRequest,
        may_tap: bool,
        journal: &dyn Journal,
    ) -> Result<ResetResult, RecoveryError> {
        let request_id = journal.request_id();
        let mut target = Target {
            object_id: None,
            upn: Some(request.user.segment()),
        };
        let mut details = Details {
            scope: Some(format!("{:?}", request.scope).to_lowercase()),
            ..Details::default()
        };
        let graph = self.graph.scoped();
        let result = graph
            .drive(self.with_graph(&graph).run_reset(
                caller,
                &request,
                request_id,
                &mut target,
                &mut details,
                may_tap,
                journal,
            ))
            .await;
        let outcome = match &result {
            Ok(r) if r.complete() => Outcome::Succeeded,
            Ok(_) => Outcome::Failed(Fault::ResetIncomplete.as_str().into()),
            Err(e) => e.outcome(),
        };
        match &result {
            Ok(r) => {
                details.removed = Some(r.removed.clone());
                details.failed = Some(r.failed.clone());
                details.kept = Some(r.kept.clone()).filter(|k| !k.is_empty());
                details.sessions_revoked = Some(r.sessions_revoked);
                details.notified = Some(r.notified.clone());
                if let Some(t) = &r.tap {
                    details.tap_method_id = Some(t.tap_method_id.clone());
                }
            }
            Err(e) => {
                details.error = Some(e.message.clone());
                self.release_verification(caller, request.verification.as_ref(), request_id, e)
                    .await;
            }
        }
        self.record_outcome(
            caller,
            Action::MfaReset,
            target,
            &request.ticket,
            request_id,
            outcome,
            &details,
        )
        .await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_reset(
        &self,
        caller: &CallerRecord,
        request: &ResetRequest,
        request_id: Uuid,
        target: &mut Target,
        details: &mut Details,
        may_tap: bool,
        journal: &dyn Journal,
    ) -> Result<ResetResult, RecoveryError> {
        if request.tap.is_some() && !may_tap {
            return Err(RecoveryError::refused(
                Refusal::Forbidden,
                "a pass in the same call needs the Recovery.Tap role too",
            ));
        }
        let earlier = journal.progress();
        if let Some(tap) = &request.tap
            && (earlier.delivering || earlier.delivered.is_some())
        {
            return Ok(self.resume_reset(caller, tap, request_id, journal).await);
        }
        let asked = Asked {
            action: Action::MfaReset,
            what: "resets",
            user: &request.user,
            verification: request.verification.as_ref(),
            channel: request.tap.as_ref().map(|t| t.channel),
            reset_all: request.scope == rules::Scope::All,
            lifetime_minutes: request.tap.as_ref().and_then(|t| t.lifetime_minutes),
            defer_approval: true,
        };
        let admitted = self.admit(caller, asked, request_id, journal, target, details).await?;
        let user = admitted.user.clone();
        let memberships = admitted.memberships.clone();
        let methods = self.graph.list_methods(&user.id).await.map_err(nothing_removed)?;
        let planned = rules::removal_plan(request.scope, &methods, &request.methods);
        details.planned = Some(planned.iter().map(MethodEntry::of).collect());
        self.reset_approved(request, &admitted, &methods, &planned, journal, details)
            .await?;
        // Nothing is removed unless the whole request can finish: the pass's every pre-flight
        // check (policy, scope, lifetime, the address of record as it will be after the
        // removals, the connector, somebody to notify, its rate limit) runs first.
        let tap_id = journal.request_id();
        let prepared = match &request.tap {
            None => None,
            Some(tap) => {
                let pass = PassPlan {
                    tap,
                    tap_id,
                    user: &user,
                    memberships: &memberships,
                    planned: &planned,
                };
                Some(
                    self.prepare_reset_pass(caller, pass, &earlier, journal, details)
                        .await?,
                )
            }
        };
        details.allow_empty = Some(request.allow_empty);
        // The user is told what was removed: the notice connector must work before anything is.
        self.notifier.ready().await.map_err(notices_down)?;
        self.reserve_slots(
            Action::MfaReset,
            "resets",
            caller,
            &user.id,
            request_id,
            self.settings.max_per_target_per_day,
            self.settings.max_per_caller_per_hour,
        )
        .await?;
        self.record_reset_intent(caller, request, request_id, target, details)
            .await?;
        let work = Work {
            user: &user,
            methods: &methods,
            planned: &planned,
        };
        let mut result = self
            .carry_out(caller, request, request_id, work, prepared, journal)
            .await;
        result.notified = self.notify_reset(&user, &result, &request.ticket).await;
        Ok(result)
    }

    /// The removals, the sessions and the pass, at once: the removals are one chain (one round
    /// trip), the pass is created beside them and delivered once they are done (one by one too,
    /// when the chain did not finish), while what is left is read again. A pass is created after
    /// the removals and the session revocation when one of the removals is an earlier pass (a
    /// user has one at a time). The pass, already checked and its slot reserved, is issued even
    /// when a removal or the session revocation failed: whatever was removed, the user must not
    /// be left without a way in.
    async fn carry_out(
        &self,
        caller: &CallerRecord,
        request: &ResetRequest,
        request_id: Uuid,
        work: Work<'_>,
        prepared: Option<(TapRequest, super::prepare::Prepared)>,
        journal: &dyn Journal,
    ) -> ResetResult {
        let Work { user, methods, planned } = work;
        // Read with the methods (the recovery's reads); unknown, the chain finds out itself.
        let default = self.graph.default_method(&user.id).await.ok().flatten();
        // The pass is created beside the removals but delivered only once they are done: see
        // `Prepared::deliver_after`.
        let (removed, removals_done) = tokio::sync::oneshot::channel::<()>();
        let prepared = prepared.map(|(tap, mut p)| {
            p.deliver_after = Some(Box::pin(async move {
                let _ = removals_done.await;
            }));
            (tap, p)
        });
        // On the heap: each of these is a large future, and a worker thread's stack is 2 MiB.
        let removals = Box::pin(async {
            let mut done = ResetResult::default();
            let gone = self
                .remove_methods(user, request.scope, methods, planned, default.as_deref(), &mut done)
                .await;
            // Kept before the pass may go: a retry that finds it delivered reports them.
            let kept = super::RemovalsDone {
                removed: done.removed.clone(),
                failed: done.failed.clone(),
                kept: done.kept.clone(),
            };
            if let Err(e) = journal.save_removals(&kept).await {
                tracing::warn!(code = e.code_str(), "what the removals did could not be kept");
            }
            let _ = removed.send(());
            done.remaining = self.remaining_methods(user, request.scope, &gone).await;
            done
        });
        let revoke = async {
            match request.revoke_sessions {
                true => Some(self.graph.revoke_sessions(&user.id).await),
                false => None,
            }
        };
        let pass = Box::pin(async {
            match prepared {
                Some((tap, prepared)) => Some(self.issue_reset_pass(caller, &tap, prepared, journal, user).await),
                None => None,
            }
        });
        let (done, revoked, pass) = if planned.iter().any(|m| m.kind() == MethodKind::TemporaryAccessPass) {
            let (done, revoked) = tokio::join!(removals, revoke);
            (done, revoked, pass.await)
        } else {
            tokio::join!(removals, revoke, pass)
        };
        let mut result = ResetResult {
            request_id,
            user_id: Some(user.id),
            ..done
        };
        if let Some(revoked) = revoked {
            sessions_revoked(revoked, &mut result);
        }
        match pass {
            Some(Ok(issued)) => {
                // Read again beside the pass's delivery: the new pass is not something left.
                result
                    .remaining
                    .retain(|m| m.id.as_deref() != Some(issued.tap_method_id.as_str()));
                result.tap = Some(issued);
            }
            Some(Err(e)) => result.tap_error = Some(e),
            None => {}
        }
        result
    }

    /// Whether the reset may go on, judged once its plan is known: a reset that would leave the
    /// user no method must carry its pass (`tap`, on a channel other than the verification's), or
    /// be asked with `allowEmpty` and agreed by a second approver (`leaves_nothing`; refused with
    /// `second_approver_required` where nobody can approve); any reset that leaves nothing counts
    /// as `reset_all`. Then the second approver, for whatever else calls for one.
    ///
    /// # Errors
    /// `would_leave_no_method`, `second_approver_required`, or `approval_required` (held).
    async fn reset_approved(
        &self,
        request: &ResetRequest,
        admitted: &super::admit::Admitted,
        methods: &[AuthMethod],
        planned: &[AuthMethod],
        journal: &dyn Journal,
        details: &mut Details,
    ) -> Result<(), RecoveryError> {
        let leaves_nothing = rules::leaves_no_method(methods, planned);
        details.leaves_nothing = Some(leaves_nothing);
        // What stays (the dry run an approver sees): every method but the password not planned.
        details.remaining = Some(
            methods
                .iter()
                .filter(|m| m.kind() != MethodKind::Password)
                .filter(|m| !planned.iter().any(|p| p.id.eq_ignore_ascii_case(&m.id)))
                .map(MethodEntry::of)
                .collect(),
        );
        let empty_asked = leaves_nothing && request.tap.is_none();
        // A pass that is the user's only way back must not go where the code went, whatever
        // VERIFICATION_SAME_CHANNEL allows: one swapped SIM would then get both.
        if leaves_nothing
            && let Some(tap) = &request.tap
            && details.verification.as_ref().and_then(VerificationSeen::channel) == Some(tap.channel.as_str())
        {
            return Err(RecoveryError::refused(
                Refusal::VerificationChannelReused,
                format!(
                    "the reset leaves the user no other method, so its pass must go another way than the code did ({}): one swapped SIM or one changed address must not get both. Choose another channel for the pass; nothing was removed",
                    tap.channel.as_str()
                ),
            ));
        }
        if empty_asked && !request.allow_empty {
            return Err(RecoveryError::refused(
                Refusal::WouldLeaveNoMethod,
                "the reset would leave the user with no sign-in method, so whoever has the password could register their own. Send the pass in the same call (\"tap\": {\"delivery\": {\"channel\": …}}, on another channel than the verification's), or keep a method (scope \"methods\"). \"allowEmpty\": true needs a second approver (docs/reset.md)",
            ));
        }
        if empty_asked && !self.settings.approval.enabled() {
            return Err(RecoveryError::refused(
                Refusal::SecondApproverRequired,
                "a reset that leaves the user with no sign-in method (allowEmpty) needs a second approver, and this deployment has none (APPROVAL_REQUIRED_FOR is empty). Send a pass in the same call instead (\"tap\": {\"delivery\": {\"channel\": …}}), or turn on approvals (docs/approval.md)",
            ));
        }
        let why = super::approval::Why {
            privileged: admitted.privileged,
            channel: request.tap.as_ref().map(|t| t.channel),
            reset_all: request.scope == rules::Scope::All || leaves_nothing,
            leaves_nothing: empty_asked,
            at_risk: admitted.at_risk,
            lifetime_minutes: request.tap.as_ref().and_then(|t| t.lifetime_minutes),
        };
        self.approved_or_held(why, &admitted.user, journal, details).await
    }

    /// A retry that finds the removals done and the pass sent or being sent: only the pass's own
    /// procedure runs again (it picks up where it stopped). Repeating the removals now could
    /// remove a method the user has registered with that pass since.
    async fn resume_reset(
        &self,
        caller: &CallerRecord,
        tap: &TapRequest,
        request_id: Uuid,
        journal: &dyn Journal,
    ) -> ResetResult {
        // What the earlier attempt's removals did (kept before its pass went out).
        let done = journal.removals().unwrap_or_default();
        let mut result = ResetResult {
            request_id,
            resumed: true,
            removed: done.removed,
            failed: done.failed,
            kept: done.kept,
            ..ResetResult::default()
        };
        match self.issue_with(caller, clone_tap(tap), journal).await {
            Ok(issued) => {
                result.user_id = Some(issued.user_id);
                result.tap = Some(issued);
            }
            Err(e) => result.tap_error = Some(e),
        }
        result
    }

    /// Every pre-flight check of the reset's pass, against the methods as they will be after the
    /// removals. A refusal here means nothing is removed.
    async fn prepare_reset_pass(
        &self,
        caller: &CallerRecord,
        pass: PassPlan<'_>,
        earlier: &super::TapProgress,
        journal: &dyn Journal,
        details: &mut Details,
    ) -> Result<(TapRequest, super::prepare::Prepared), RecoveryError> {
        self.clean_up_earlier(journal, earlier, &pass.user.id).await?;
        let tap = TapRequest {
            user: UserRef::Id(pass.user.id),
            ..clone_tap(pass.tap)
        };
        let mut tap_details = Details {
            channel: Some(tap.channel.as_str()),
            ..Details::default()
        };
        let prepared = self
            .prepare(
                caller,
                &tap,
                pass.tap_id,
                pass.user.clone(),
                pass.memberships,
                pass.planned,
                &mut tap_details,
            )
            .await
            .map_err(|e| RecoveryError {
                message: format!(
                    "nothing was removed, because the pass this request asks for cannot be issued: {}",
                    e.message
                ),
                ..e
            })?;
        details.tap = Some(Box::new(tap_details));
        Ok((tap, prepared))
    }

    /// The intent: no record, nothing removed.
    async fn record_reset_intent(
        &self,
        caller: &CallerRecord,
        request: &ResetRequest,
        request_id: Uuid,
        target: &Target,
        details: &Details,
    ) -> Result<(), RecoveryError> {
        self.audit
            .record(AuditEvent {
                caller: caller.clone(),
                action: Action::MfaReset,
                target: Some(target.clone()),
                ticket: Some(request.ticket.clone()),
                request_id: Some(request_id),
                phase: Phase::Intent,
                outcome: None,
                details: crate::audit::details(&details),
            })
            .await
            .map(|_| ())
            .map_err(|_| {
                RecoveryError::failed(
                    Fault::AuditUnavailable,
                    "the audit trail is unavailable, so nothing was changed; try again later",
                )
            })
    }

    /// Remove `planned`, in order, each once; a failure is listed and the rest go on. Returns the
    /// ids that are gone. First as one chain (`remove_together`), then what it did not finish one
    /// by one, each failure handled as before.
    async fn remove_methods(
        &self,
        user: &User,
        scope: Scope,
        methods: &[AuthMethod],
        planned: &[AuthMethod],
        default: Option<&str>,
        result: &mut ResetResult,
    ) -> Vec<String> {
        let gone = self.remove_together(user, scope, methods, planned, default).await;
        for method in &planned[..gone.len()] {
            result.removed.push(MethodEntry::of(method));
        }
        let gone = gone.into_iter().map(|m| m.id.clone()).collect();
        self.remove_one_by_one(user, scope, methods, planned, gone, result)
            .await
    }

    /// The plan as one `$batch`, each removal after the one before (`dependsOn`), the default
    /// moved first off a phone that has it (Graph will not delete the default phone: see
    /// `remove_method`): one round trip. The methods removed, a prefix of `planned`: the chain
    /// stops at the first write that fails (the rest are not run, 424), at a method it cannot
    /// carry, or entirely when the batch fails as a whole.
    async fn remove_together<'a>(
        &self,
        user: &User,
        scope: Scope,
        methods: &[AuthMethod],
        planned: &'a [AuthMethod],
        default: Option<&str>,
    ) -> Vec<&'a AuthMethod> {
        let mut writes = Vec::new();
        // Which write removes each method, until the first the chain cannot carry.
        let mut removal_at = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for method in planned {
            let deactivate = scope == Scope::Portal && method.kind() == MethodKind::HardwareOath;
            let Some(removal) = self.graph.removal_write(&user.id, method, deactivate) else {
                break;
            };
            if default.is_some_and(|d| rules::is_default_phone(method, d))
                && let Some(next) = rules::next_default(methods, method, &gone)
            {
                writes.push(self.graph.default_write(&user.id, next));
            }
            writes.push(removal);
            removal_at.push(writes.len() - 1);
            gone.push(method.id.clone());
        }
        if writes.len() < 2 {
            return Vec::new();
        }
        let Some(answers) = self.graph.in_order(&writes).await else {
            return Vec::new();
        };
        // Every write up to a method's removal went through (a PATCH 2xx, a removal 2xx or
        // already gone). A removal answered 404 is not a success to Graph: the writes after it
        // answer 424 and go one by one.
        let ok =
            |i: usize| answers[i].is_some_and(|s| (200..300).contains(&s) || (s == 404 && writes[i].method != "PATCH"));
        let mut removed = Vec::new();
        let mut from = 0;
        for (method, at) in planned.iter().zip(removal_at) {
            if !(from..=at).all(ok) {
                break;
            }
            removed.push(method);
            from = at + 1;
        }
        removed
    }

    /// `planned` one by one, skipping what is `gone` already.
    async fn remove_one_by_one(
        &self,
        user: &User,
        scope: Scope,
        methods: &[AuthMethod],
        planned: &[AuthMethod],
        mut gone: Vec<String>,
        result: &mut ResetResult,
    ) -> Vec<String> {
        // A phone that could not go yet keeps the methods that can take the default: the same
        // request again must still be able to move the default off it.
        let mut phone_left = false;
        let done = gone.clone();
        for method in planned.iter().filter(|m| !done.contains(&m.id)) {
            if phone_left && rules::preference_for(method).is_some() && method.kind() != MethodKind::Phone {
                let mut waiting = MethodEntry::of(method);
                waiting.error = Some(
                    "not removed yet: it stays to take the default while a phone is still to go; send the same request again to finish".into(),
                );
                result.failed.push(waiting);
                continue;
            }
            match self.remove_method(user, scope, methods, method, &gone).await {
                Ok(()) => {
                    gone.push(method.id.clone());
                    result.removed.push(MethodEntry::of(method));
                }
                Err(e)
                    if method.kind() == MethodKind::Phone
                        && e.is_bad_request()
                        && rules::next_default(methods, method, &gone).is_none() =>
                {
                    tracing::info!(
                        kind = method.type_name(),
                        "the default phone is kept: no other method can be the default"
                    );
                    let mut kept = MethodEntry::of(method);
                    kept.error = Some(
                        "kept: Graph does not delete a user's default phone, and no other method remains to be the default. The user signs in (with the pass), changes their default sign-in method, then delete the phone (docs/reset.md)".into(),
                    );
                    result.kept.push(kept);
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = method.type_name(), "a method could not be removed");
                    phone_left |= method.kind() == MethodKind::Phone;
                    let mut failed = MethodEntry::of(method);
                    failed.error = Some(match &e {
                        crate::graph::GraphError::Status { status, code, .. } => {
                            format!("Graph answered {status} {code}")
                        }
                        crate::graph::GraphError::Unreachable(_) => "Graph could not be reached".into(),
                    });
                    result.failed.push(failed);
                }
            }
        }
        gone
    }

    /// Remove one method: `portal` deactivates a hardware token (as the admin center does); the
    /// default phone that Graph will not delete first hands the default to a method that stays.
    async fn remove_method(
        &self,
        user: &User,
        scope: Scope,
        methods: &[AuthMethod],
        method: &AuthMethod,
        gone: &[String],
    ) -> Result<(), crate::graph::GraphError> {
        if scope == Scope::Portal && method.kind() == MethodKind::HardwareOath {
            return self
                .graph
                .deactivate_hardware_oath(&user.id, &method.id)
                .await
                .map(|_| ());
        }
        match self.graph.delete_method(&user.id, method).await {
            Err(e) if method.kind() == MethodKind::Phone && e.is_bad_request() => {
                let Some(pref) = rules::next_default(methods, method, gone) else {
                    return Err(e);
                };
                self.graph.set_default_method(&user.id, pref).await?;
                self.graph.delete_method(&user.id, method).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// What is left (read again: the truth, not the plan); empty when it cannot be read.
    async fn remaining_methods(&self, user: &User, scope: Scope, gone: &[String]) -> Vec<MethodEntry> {
        match self.graph.list_methods(&user.id).await {
            Ok(now) => now
                .iter()
                .filter(|m| m.kind() != MethodKind::Password)
                .filter(|m| !(scope == Scope::Portal && m.kind() == MethodKind::HardwareOath && gone.contains(&m.id)))
                .map(MethodEntry::of)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn issue_reset_pass(
        &self,
        caller: &CallerRecord,
        tap: &TapRequest,
        prepared: super::prepare::Prepared,
        journal: &dyn Journal,
        user: &User,
    ) -> Result<super::tap::Issued, RecoveryError> {
        self.issue_prepared(caller, tap, journal.request_id(), prepared, journal)
            .await
            .map_err(|e| {
                tracing::error!(code = e.code_str(), "the reset removed methods but its pass failed");
                RecoveryError {
                    message: format!(
                        "{} The methods listed in \"removed\" are gone: issue a pass now (POST {}) so the user is not left without a way in.",
                        e.message,
                        crate::vocab::paths::fill(crate::vocab::paths::TAP, &user.id.to_string())
                    ),
                    ..e
                }
            })
    }

    async fn notify_reset(
        &self,
        user: &crate::graph::models::User,
        result: &ResetResult,
        ticket: &Ticket,
    ) -> Vec<String> {
        if result.removed.is_empty() {
            return Vec::new();
        }
        let mut to: Vec<String> = Vec::new();
        to.extend(user.mail.clone());
        to.extend(user.other_mails.iter().cloned());
        to.extend(user.manager.as_ref().and_then(|m| m.mail.clone()));
        to.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let kinds: Vec<String> = result
            .removed
            .iter()
            .map(|r| format!("{} {}", r.kind, r.label))
            .collect();
        let text = SecretString::from(format!(
            "These sign-in methods were removed from {}{}: {}.\nAt your next sign-in you will be asked to register again: open https://mysignins.microsoft.com/security-info, register Microsoft Authenticator with cloud backup turned on, and add a second method.\n\nIf you did not ask for this, contact {} now.",
            user.user_principal_name,
            rules::ticket_words(ticket),
            kinds.join(", "),
            self.settings.notice_contact
        ));
        let about = super::notice::About {
            request_id: result.request_id,
            target: crate::audit::Target {
                object_id: Some(user.id.to_string()),
                upn: Some(user.user_principal_name.clone()),
            },
        };
        self.tell(
            super::notice::NoticeKind::Reset,
            &about,
            &to,
            "Your sign-in methods were reset",
            &text,
        )
        .await
    }
}

fn clone_tap(t: &TapRequest) -> TapRequest {
    TapRequest {
        user: t.user.clone(),
        lifetime_minutes: t.lifetime_minutes,
        usable_once: t.usable_once,
        channel: t.channel,
        ticket: t.ticket.clone(),
        reason: t.reason.clone(),
        verification: t.verification.clone(),
    }
}

/// What `revokeSignInSessions` answered, in the result: revoked, or why not.
fn sessions_revoked(revoked: Result<(), crate::graph::GraphError>, result: &mut ResetResult) {
    match revoked {
        Ok(()) => result.sessions_revoked = true,
        Err(e) => {
            tracing::warn!(error = %e, "sessions could not be revoked");
            result.failed.push(MethodEntry {
                kind: "sessions".into(),
                id: None,
                label: "sign-in sessions".into(),
                error: Some(match e.needs().filter(|_| e.is_forbidden()) {
                    Some(permission) => format!(
                        "revokeSignInSessions was refused (403): grant the function app's identity {permission} (docs/deploy.md)"
                    ),
                    None => "revokeSignInSessions failed".into(),
                }),
            });
        }
    }
}
