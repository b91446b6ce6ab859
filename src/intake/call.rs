//! A synchronous call (`POST /api/users/{user}/tap`, `/mfa/reset`, `/verifications`): the
//! recovery runs now, and what follows it is decided here, in the domain, not back in the HTTP
//! layer: a recovery that ends in a hold becomes a request waiting for an approver (the same
//! request id, so its verification and caller slot carry over), and an attempt on a privileged
//! account refused, or a code sent to one, is told to the SOC.

use serde::Serialize;
use uuid::Uuid;

use super::{Action, Intake, RequestRecord};
use crate::audit::Ticket;
use crate::recovery::context::TapContext;
use crate::recovery::request::TapRequest;
use crate::recovery::reset::{ResetRequest, ResetResult};
use crate::recovery::summary::UserSummary;
use crate::recovery::tap::Issued;
use crate::recovery::verification::{SentCode, VerificationRecord};
use crate::recovery::{Journal, NoJournal, RecoveryError};
use crate::vocab::{CallerRecord, ErrorCode, Fault, Refusal};

/// A recovery to run now, parsed at the edge.
pub enum Call {
    Tap(TapRequest),
    /// `may_tap`: the caller also holds `Recovery.Tap` (a pass with the reset).
    Reset {
        request: ResetRequest,
        may_tap: bool,
    },
}

impl Call {
    fn action(&self) -> Action {
        match self {
            Call::Tap(_) => Action::Tap,
            Call::Reset { request, .. } if request.tap.is_some() => Action::ResetTap,
            Call::Reset { .. } => Action::Reset,
        }
    }

    fn ticket(&self) -> Ticket {
        let t = match self {
            Call::Tap(r) => &r.ticket,
            Call::Reset { request, .. } => &request.ticket,
        };
        Ticket {
            system: t.system.clone(),
            id: t.id.clone(),
        }
    }
}

/// How a call ended, when it did not fail.
pub enum Called {
    Issued(Box<Issued>),
    Reset(Box<ResetResult>),
    /// Kept as a request waiting for an approver.
    Held(Box<RequestRecord>),
}

/// What the SOC (`SECURITY_ALERT_WEBHOOK`) hears of an attempt on a privileged account that
/// left no request record (a call refused, a code sent); nothing secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PrivilegedAttempt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<Uuid>,
    pub action: &'a str,
    pub user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    pub outcome: &'a str,
    pub requester: &'a CallerRecord,
    pub ticket: Option<&'a Ticket>,
}

/// Run `call` for `caller` now. `body` is the request as it came (kept as the held request's
/// body, so an approved request runs what was asked).
///
/// # Errors
/// The recovery's own refusal or fault; a hold with no intake to keep it (`storage_unavailable`).
pub async fn run(
    intake: Option<&Intake>,
    context: &TapContext<'_>,
    caller: CallerRecord,
    call: Call,
    body: &[u8],
) -> Result<Called, RecoveryError> {
    let journal = NoJournal::new();
    let (action, ticket) = (call.action(), call.ticket());
    let user = match &call {
        Call::Tap(r) => r.user.segment(),
        Call::Reset { request, .. } => request.user.segment(),
    };
    let e = match call {
        Call::Tap(request) => match context.issue_with(&caller, request, &journal).await {
            Ok(issued) => return Ok(Called::Issued(Box::new(issued))),
            Err(e) => e,
        },
        Call::Reset { request, may_tap } => match context.reset_with(&caller, request, may_tap, &journal).await {
            Ok(done) => return Ok(Called::Reset(Box::new(done))),
            Err(e) => e,
        },
    };
    let held = journal.held();
    let Some(intake) = intake else {
        // Held, but nowhere to keep it: say so, rather than a 202 for a request nobody can find.
        return Err(if held.is_some() {
            RecoveryError::failed(
                Fault::StorageUnavailable,
                "this recovery needs a second approver, but the intake has no storage to keep it waiting (set AzureWebJobsStorage__* or REQUESTS_DIR); nothing was changed",
            )
        } else {
            e
        });
    };
    if e.code == ErrorCode::Refused(Refusal::StateTampered) {
        intake
            .alert_tampered(context, journal.request_id(), &user, &caller, &e.message)
            .await;
        return Err(e);
    }
    if e.code == ErrorCode::Refused(Refusal::TargetProtected) {
        let attempt = PrivilegedAttempt {
            request_id: Some(journal.request_id()),
            verification_id: None,
            action: action.as_str(),
            user: &user,
            user_id: None,
            channel: None,
            outcome: "refused",
            requester: &caller,
            ticket: Some(&ticket),
        };
        intake
            .alert_attempt(
                context,
                &format!("msg_{}_refused", journal.request_id().simple()),
                &attempt,
            )
            .await;
        return Err(e);
    }
    let Some(approval) = held else {
        return Err(e);
    };
    let record = intake
        .hold_call(context, journal.request_id(), action, body, caller, approval)
        .await?;
    tracing::info!(request_id = %record.id, "recovery held for a second approver");
    Ok(Called::Held(Box::new(record)))
}

/// A code just sent: to a privileged account (approvals let it through) it is the first step of
/// taking it over, so the SOC hears of it, signed, before the agent gets the answer.
pub async fn code_sent(intake: Option<&Intake>, context: &TapContext<'_>, caller: &CallerRecord, sent: &SentCode) {
    let Some(intake) = intake.filter(|_| sent.privileged) else {
        return;
    };
    let attempt = PrivilegedAttempt {
        request_id: None,
        verification_id: Some(sent.id),
        action: "verification.send",
        user: &sent.upn,
        user_id: Some(sent.user_id),
        channel: Some(sent.channel.as_str()),
        outcome: "code_sent",
        requester: caller,
        ticket: sent.ticket.as_ref(),
    };
    intake
        .alert_attempt(context, &format!("msg_{}_code", sent.id.simple()), &attempt)
        .await;
}

/// "This is not me": the user says the recovery an agent started was not theirs. The SOC hears
/// of it at once (`recovery.repudiated`, signed, to `SECURITY_ALERT_WEBHOOK`): who sent the link,
/// through which channel, for which ticket.
pub async fn repudiated(intake: Option<&Intake>, context: &TapContext<'_>, record: &VerificationRecord) {
    let Some(intake) = intake else {
        return;
    };
    intake.alert_repudiated(context, record).await;
}

/// The user answered a confirmation link: a queued request waiting on it runs (confirmed) or
/// ends (repudiated).
pub async fn link_answered(
    intake: Option<&Intake>,
    context: &TapContext<'_>,
    verification: Uuid,
    answered: crate::recovery::verify::Answered,
) {
    if let Some(intake) = intake {
        intake.link_answered(context, verification, answered).await;
    }
}

/// A block "this is not me" put on a user's recoveries, lifted by an approver: the SOC hears of
/// it (`recovery.block.lifted`), since it reopens the account to recovery.
pub async fn block_lifted(
    intake: Option<&Intake>,
    context: &TapContext<'_>,
    by: &CallerRecord,
    lifted: &crate::recovery::confirm::Lifted,
) {
    let (Some(intake), Some(url)) = (intake, &context.settings.approval.security_alert_webhook) else {
        return;
    };
    let data = serde_json::json!({
        "user": lifted.upn,
        "userId": lifted.user_id,
        "outcome": "lifted",
        "verificationId": lifted.verification_id,
        "wasBlockedUntil": crate::audit::rfc3339_millis(lifted.was_until),
        "liftedBy": by,
    });
    intake
        .writeback
        .event(
            url,
            "recovery.block.lifted",
            format!(
                "msg_{}_lifted_{}",
                lifted.verification_id.simple(),
                Uuid::new_v4().simple()
            ),
            data,
        )
        .await;
}

/// A user's summary as an agent gets it: the summary, and the requests for the user not finished
/// yet (queued, retrying, waiting for an approver), when there is an intake to ask.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookedUp {
    #[serde(flatten)]
    pub summary: UserSummary,
    /// Absent without an intake; `null` when the requests could not be read (and then
    /// `openRequestsError` says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_requests: Option<Option<Vec<super::view::OpenRequest>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_requests_error: Option<&'static str>,
}

/// `GET /api/users/{user}`: the summary (`TapContext::look_up`, audited), a look at a privileged
/// account told to the SOC, and the user's open requests.
///
/// # Errors
/// As `TapContext::look_up`.
pub(crate) async fn look_up(
    intake: Option<&std::sync::Arc<Intake>>,
    context: &TapContext<'_>,
    caller: &CallerRecord,
    user: &str,
) -> Result<LookedUp, RecoveryError> {
    let summary = context.look_up(caller, user).await?;
    let Some(intake) = intake else {
        return Ok(LookedUp {
            summary,
            open_requests: None,
            open_requests_error: None,
        });
    };
    intake.alert_lookup(context, &summary, caller);
    let who = summary.who();
    let (open, error) = match intake.open_for(&who.user_principal_name, &who.id.to_string()).await {
        Ok(open) => (Some(open), None),
        Err(e) => {
            tracing::warn!(error = %e, "the waiting requests could not be read");
            (None, Some("the waiting requests could not be read; try again"))
        }
    };
    Ok(LookedUp {
        summary,
        open_requests: Some(open),
        open_requests_error: error,
    })
}

/// Why a submission was not kept.
#[derive(Debug)]
pub enum NotKept {
    /// The person the request names could not be looked up (a refusal or a fault).
    Person(RecoveryError),
    /// The store, or a key used for other content.
    Intake(super::IntakeError),
}

/// `POST /api/requests`: who asks (the token's user, who names nobody else; or the agent the
/// signed payload or the application names, resolved in the directory), the request kept and
/// queued (or the one already kept under its key), and its acceptance recorded.
///
/// # Errors
/// `NotKept`: nothing was kept.
pub async fn submit(
    intake: &Intake,
    context: &TapContext<'_>,
    mut submission: super::submission::Submission,
    mut caller: CallerRecord,
) -> Result<super::Submitted, NotKept> {
    if caller.user {
        submission.requested_by = None;
    }
    if !caller.user
        && let Some(given) = &submission.requested_by
    {
        caller.on_behalf_of = context.resolve_person(given).await.map_err(NotKept::Person)?;
    }
    let mut submitted = intake
        .submit(submission, caller.clone())
        .await
        .map_err(NotKept::Intake)?;
    // A request that waits for the user: the link goes out now, as its caller (once: a
    // duplicate finds it sent, or ended).
    if let super::Submitted::Accepted(record) = &submitted
        && record.state == super::State::AwaitingConfirmation
    {
        intake.send_link(context, record).await;
        if let Ok(Some(now)) = intake.get(record.id).await {
            submitted = super::Submitted::Accepted(now);
        }
    }
    let (record, duplicate) = match &submitted {
        super::Submitted::Accepted(r) => (r, false),
        super::Submitted::Duplicate(r) => (r, true),
    };
    let event = crate::audit::AuditEvent {
        caller,
        action: crate::audit::Action::RequestSubmit,
        target: Some(crate::audit::Target {
            object_id: None,
            upn: Some(record.user.clone()),
        }),
        ticket: Some(record.ticket()),
        request_id: Some(record.id),
        phase: crate::audit::Phase::Outcome,
        outcome: Some(crate::audit::Outcome::Succeeded),
        details: serde_json::json!({"requestAction": record.action.as_str(), "duplicate": duplicate, "state": record.state.as_str()}),
    };
    if let Err(e) = context.audit.record(event).await {
        tracing::error!(error = %e, "could not record an accepted request");
    }
    tracing::info!(request_id = %record.id, duplicate, "request accepted");
    Ok(submitted)
}
