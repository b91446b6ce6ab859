//! HTTP-triggered functions. With `enableForwardingHttpRequest` the host forwards the original
//! request (`/api/<route>`), so these are plain axum handlers.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit::{Action, AuditEvent, AuditFilter, AuditRecord, Outcome, Phase};
use crate::auth::{AuthError, Caller};
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::recovery::request::TapRequest;
use crate::recovery::reset::ResetRequest;
use crate::vocab::Refusal;
use crate::vocab::{CallerRecord, Role};

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}

/// Authenticate and authorize a call. A refusal is recorded in the audit trail with whatever is
/// known of the caller (best effort: a refusal changes nothing, so an audit failure does not
/// change the answer).
async fn guard(state: &AppState, headers: &HeaderMap, role: Role, action: Action) -> Result<Caller, ApiError> {
    let result = state.auth.authenticate(headers).await;
    check_role(state, headers, role, action, result).await
}

/// As `guard`, for functions that webhook senders may call: a request without a bearer token but
/// with a webhook signature is checked against the configured senders.
async fn guard_signed(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    role: Role,
    action: Action,
) -> Result<Caller, ApiError> {
    guard_signed_any(state, headers, body, &[role], action).await
}

async fn check_role(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
    action: Action,
    authenticated: Result<Caller, AuthError>,
) -> Result<Caller, ApiError> {
    check_roles(state, headers, &[role], action, authenticated).await
}

/// `guard` for calls any of `roles` may make, with an Entra token.
async fn guard_any(state: &AppState, headers: &HeaderMap, roles: &[Role], action: Action) -> Result<Caller, ApiError> {
    let authenticated = state.auth.authenticate(headers).await;
    check_roles(state, headers, roles, action, authenticated).await
}

/// `check_role` for calls any of `roles` may make (the first is named in a refusal).
async fn check_roles(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    action: Action,
    authenticated: Result<Caller, AuthError>,
) -> Result<Caller, ApiError> {
    let role = roles[0];
    let (refusal, caller) = match authenticated {
        Ok(caller) => {
            caller.record_on_span();
            if roles.iter().any(|r| caller.has(*r)) {
                return Ok(caller);
            }
            (AuthError::MissingRole(role.as_str()), CallerRecord::from(&caller))
        }
        Err(refusal) => {
            // Nobody known: counted, and recorded in aggregate (`refusals`), so a flood writes a
            // bounded number of records.
            tracing::warn!(status = refusal.status().as_u16(), reason = %refusal, "call refused");
            let source = crate::auth::source_ip(headers).map(|i| i.to_string());
            state.refusals.add(source, action, &refusal.to_string());
            return Err(refusal.into());
        }
    };
    // Logged once here (the response itself is uniform).
    tracing::warn!(status = refusal.status().as_u16(), reason = %refusal, "call refused");
    let code = if refusal.status().as_u16() == 403 {
        "forbidden"
    } else {
        "unauthenticated"
    };
    let event = AuditEvent {
        caller,
        action,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Outcome,
        outcome: Some(Outcome::Refused(code.to_owned())),
        details: json!({"reason": refusal.to_string(), "requiredRole": role.as_str()}),
    };
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record a refused call");
    }
    Err(refusal.into())
}

/// A malformed request is still an attempt: record the refusal (best effort), then answer it.
async fn refuse_request(
    state: &AppState,
    caller: CallerRecord,
    action: Action,
    e: crate::recovery::RecoveryError,
) -> ApiError {
    let event = AuditEvent {
        caller,
        action,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Outcome,
        outcome: Some(e.outcome()),
        details: json!({"error": e.message}),
    };
    if let Err(err) = state.audit.record(event).await {
        tracing::error!(error = %err, "could not record a refused request");
    }
    ApiError::Recovery(e)
}

/// `POST /api/users/{user}/tap`: issue a Temporary Access Pass and deliver it out of band.
pub async fn tap(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = guard(&state, &headers, Role::Tap, Action::TapIssue).await?;
    let caller = CallerRecord::from(&caller);
    let console = from_console(&state, &caller);
    let request = match TapRequest::parse(&user, &body) {
        Ok(r) => r,
        Err(e) => return Err(refuse_request(&state, caller, Action::TapIssue, e).await),
    };
    let context = state.tap_context();
    let journal = crate::recovery::NoJournal::new();
    match context.issue_with(&caller, request, &journal).await {
        Ok(mut issued) => {
            if console {
                issued.pass = None;
            }
            tracing::info!(request_id = %issued.request_id, tap_method_id = %issued.tap_method_id, channel = issued.channel.as_str(), "pass issued and delivered");
            Ok((
                axum::http::StatusCode::CREATED,
                Json(crate::host::answers::issued_body(&issued)),
            )
                .into_response())
        }
        Err(e) => held_or_refused(&state, &journal, crate::intake::Action::Tap, &user, &body, caller, e).await,
    }
}

/// `GET /api/users/{user}`: what an agent needs to know before recovering the user
/// (`recovery::summary`): agents (`Recovery.Tap` or `Recovery.Reset`) only, and each look is
/// audited as `user.lookup` (who looked at whom; nothing of what was shown).
pub async fn user_summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let caller = guard_any(&state, &headers, &[Role::Tap, Role::Reset], Action::UserLookup).await?;
    let caller = CallerRecord::from(&caller);
    let caller_record = caller.clone();
    let result = state.tap_context().summarize(&caller, &user).await;
    let target = match &result {
        Ok(summary) => Some(crate::audit::Target {
            object_id: summary["id"].as_str().map(str::to_owned),
            upn: summary["userPrincipalName"].as_str().map(str::to_owned),
        }),
        Err(_) => None,
    };
    let event = AuditEvent {
        caller,
        action: Action::UserLookup,
        target,
        ticket: None,
        request_id: None,
        phase: Phase::Outcome,
        outcome: Some(match &result {
            Ok(_) => Outcome::Succeeded,
            Err(e) => e.outcome(),
        }),
        details: match &result {
            Ok(summary) => json!({"protected": summary["protected"]}),
            Err(e) => json!({"error": e.message, "requested": user.chars().take(256).collect::<String>()}),
        },
    };
    // A look that cannot be recorded is not shown: the trail says who looked at whom.
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record a user lookup");
        return Err(ApiError::Recovery(crate::recovery::RecoveryError::failed(
            crate::vocab::Fault::AuditUnavailable,
            "the audit trail is unavailable, so the user is not shown; try again later",
        )));
    }
    let mut summary = result.map_err(ApiError::Recovery)?;
    // A look at a privileged account is what an attacker with an agent's session does first:
    // the SOC hears of it (signed, in the background; the look-up does not wait for it).
    if summary["protected"] == true
        && let (Some(intake), Some(url)) = (
            state.intake.clone(),
            state.settings.tap.approval.security_alert_webhook.clone(),
        )
    {
        let data = json!({"outcome": "looked_up", "user": summary["userPrincipalName"], "userId": summary["id"], "requester": caller_record});
        let id = format!("msg_{}_lookup", uuid::Uuid::new_v4().simple());
        tokio::spawn(async move {
            intake
                .writeback
                .event(&url, "recovery.privileged.lookup", id, data)
                .await;
        });
    }
    // Requests for this user not finished yet (queued, retrying, waiting for an approver).
    if let Some(intake) = &state.intake {
        let upn = summary["userPrincipalName"].as_str().unwrap_or_default().to_owned();
        let id = summary["id"].as_str().unwrap_or_default().to_owned();
        let open: Vec<Value> = match intake.open_requests().await {
            Ok(waiting) => waiting
                .iter()
                .filter(|r| r.user.eq_ignore_ascii_case(&upn) || r.user.eq_ignore_ascii_case(&id))
                .map(|r| {
                    let v = r.view();
                    json!({"requestId": v["requestId"], "action": v["action"], "status": v["status"], "createdAt": v["createdAt"]})
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the waiting requests could not be read");
                summary["openRequests"] = Value::Null;
                summary["openRequestsError"] = json!("the waiting requests could not be read; try again");
                return Ok(no_store(Json(summary).into_response()));
            }
        };
        summary["openRequests"] = json!(open);
    }
    Ok(no_store(Json(summary).into_response()))
}

/// `GET /api/users?search=<text>` (`Recovery.Tap` or `Recovery.Reset`): up to 10 users whose
/// name, mail or UPN matches, with what tells them apart (contact details masked). Counted in the
/// look-up limit, audited as `user.search`.
pub async fn search_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let caller = guard_any(&state, &headers, &[Role::Tap, Role::Reset], Action::UserSearch).await?;
    let caller = CallerRecord::from(&caller);
    let text = query.get("search").cloned().unwrap_or_default();
    let result = state.tap_context().search(&caller, &text).await;
    let event = AuditEvent {
        caller,
        action: Action::UserSearch,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Outcome,
        outcome: Some(match &result {
            Ok(_) => Outcome::Succeeded,
            Err(e) => e.outcome(),
        }),
        details: match &result {
            Ok(found) => json!({"search": text.chars().take(64).collect::<String>(), "found": found.len(),
                "users": found.iter().map(|u| u["id"].clone()).collect::<Vec<_>>()}),
            Err(e) => json!({"search": text.chars().take(64).collect::<String>(), "error": e.message}),
        },
    };
    // A search that cannot be recorded is not answered: the trail says who looked for whom.
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record a user search");
        return Err(ApiError::Recovery(crate::recovery::RecoveryError::failed(
            crate::vocab::Fault::AuditUnavailable,
            "the audit trail is unavailable, so no user is shown; try again later",
        )));
    }
    let found = result.map_err(ApiError::Recovery)?;
    Ok(no_store(Json(json!({"value": found})).into_response()))
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the caller is the console (its token was issued to the API's own registration,
/// `AUTH_CLIENT_ID`): a browser never gets a pass, whatever `TAP_RETURN_TO_CALLER` says.
fn from_console(state: &AppState, caller: &CallerRecord) -> bool {
    match (&caller.app_id, state.settings.auth.client_id) {
        (Some(app), Some(console)) => app.eq_ignore_ascii_case(&console.to_string()),
        _ => false,
    }
}

/// A synchronous recovery that ended in a hold is kept as a request waiting for an approver
/// (`202` with its status URL); a refused privileged target is reported to the SOC; anything
/// else is the error it was.
async fn held_or_refused(
    state: &AppState,
    journal: &crate::recovery::NoJournal,
    action: crate::intake::Action,
    user: &str,
    body: &[u8],
    caller: CallerRecord,
    e: crate::recovery::RecoveryError,
) -> Result<Response, ApiError> {
    let context = state.tap_context();
    let Some(intake) = state.intake.clone() else {
        // Held, but nowhere to keep it: say so, rather than a 202 for a request nobody can find.
        if journal.held().is_some() {
            return Err(ApiError::Recovery(crate::recovery::RecoveryError::failed(
                crate::vocab::Fault::StorageUnavailable,
                "this recovery needs a second approver, but the intake has no storage to keep it waiting (set AzureWebJobsStorage__* or REQUESTS_DIR); nothing was changed",
            )));
        }
        return Err(ApiError::Recovery(e));
    };
    if e.code == crate::vocab::ErrorCode::Refused(Refusal::TargetProtected) {
        let data = json!({"action": action.as_str(), "user": user, "ticket": body_ticket(body), "outcome": "refused", "requester": caller});
        intake
            .alert_call(&context, crate::recovery::Journal::request_id(journal), data)
            .await;
        return Err(ApiError::Recovery(e));
    }
    let Some(approval) = journal.held() else {
        return Err(ApiError::Recovery(e));
    };
    let record = intake
        .hold_call(
            &context,
            crate::recovery::Journal::request_id(journal),
            action,
            body,
            caller,
            approval,
        )
        .await
        .map_err(ApiError::Recovery)?;
    tracing::info!(request_id = %record.id, "recovery held for a second approver");
    let mut response = (axum::http::StatusCode::ACCEPTED, Json(record.view())).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/api/requests/{}", record.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The ticket of a request body, for an alert (the body was parsed already).
fn body_ticket(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .map(|b| b["ticket"].clone())
        .unwrap_or(Value::Null)
}

/// The roles that may verify a caller: whoever may recover an account or ask for it.
const VERIFIERS: [Role; 3] = [Role::Tap, Role::Reset, Role::Request];

/// As `guard_signed`, for calls any of `roles` may make (the first is named in a refusal).
async fn guard_signed_any(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    roles: &[Role],
    action: Action,
) -> Result<Caller, ApiError> {
    let result = if headers.contains_key(header::AUTHORIZATION) || !state.webhooks.is_signed(headers) {
        state.auth.authenticate(headers).await
    } else {
        match state.webhooks.verify(headers, body).await {
            Err(e) => return Err(ApiError::DependencyUnavailable(e.to_string())),
            Ok(result) => result,
        }
    };
    check_roles(state, headers, roles, action, result).await
}

/// `POST /api/users/{user}/verifications`: send a one-time code to the user's address of record
/// on the channel asked for; `201` with where it went (masked) and until when.
pub async fn send_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = guard_signed_any(&state, &headers, &body, &VERIFIERS, Action::VerificationSend).await?;
    let caller = CallerRecord::from(&caller);
    let sent = state
        .tap_context()
        .send_verification(&caller, &user, &body)
        .await
        .map_err(ApiError::Recovery)?;
    tracing::info!(verification_id = %sent.id, channel = sent.channel.as_str(), "verification code sent");
    // A code to a privileged account (approvals let it through) is the first step of taking it
    // over: the SOC hears of it, signed, before the agent gets the answer.
    if sent.privileged
        && let Some(intake) = state.intake.clone()
    {
        let data = json!({"action": "verification.send", "user": sent.upn, "userId": sent.user_id,
            "channel": sent.channel.as_str(), "outcome": "code_sent", "requester": caller,
            "ticket": body_ticket(&body)});
        intake.alert_code(&state.tap_context(), sent.id, data).await;
    }
    Ok((
        axum::http::StatusCode::CREATED,
        Json(crate::host::answers::sent_code_body(&sent)),
    )
        .into_response())
}

/// `POST /api/verifications/{id}/confirm`: check the code the user read back, by the caller that
/// asked for it.
pub async fn confirm_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = guard_signed_any(&state, &headers, &body, &VERIFIERS, Action::VerificationConfirm).await?;
    let caller = CallerRecord::from(&caller);
    let verified_at = state
        .tap_context()
        .confirm_verification(&caller, &id, &body)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(Json(json!({"status": "verified", "verifiedAt": crate::audit::rfc3339_millis(verified_at)})).into_response())
}

/// `POST /api/users/{user}/mfa/reset`: require re-registration of MFA (and optionally issue a
/// pass in the same call, which also needs `Recovery.Tap`).
pub async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = guard(&state, &headers, Role::Reset, Action::MfaReset).await?;
    let may_tap = caller.has(Role::Tap);
    let caller = CallerRecord::from(&caller);
    let request = match ResetRequest::parse(&user, &body) {
        Ok(r) => r,
        Err(e) => return Err(refuse_request(&state, caller, Action::MfaReset, e).await),
    };
    let context = state.tap_context();
    let journal = crate::recovery::NoJournal::new();
    let action = if request.tap.is_some() {
        crate::intake::Action::ResetTap
    } else {
        crate::intake::Action::Reset
    };
    let console = from_console(&state, &caller);
    let mut result = match context.reset_with(&caller, request, may_tap, &journal).await {
        Ok(r) => r,
        Err(e) => return held_or_refused(&state, &journal, action, &user, &body, caller, e).await,
    };
    if console && let Some(tap) = result.tap.as_mut() {
        tap.pass = None;
    }
    tracing::info!(request_id = %result.request_id, removed = result.removed.len(), failed = result.failed.len(), "reset finished");
    // 200 when everything was done; 502 with the same lists when something is left to do.
    let (status, body) = crate::host::answers::reset_answer(&result);
    Ok((status, Json(body)).into_response())
}

/// `POST /api/requests` (a token with `Recovery.Request`, or a signed webhook): validate fully,
/// keep the record, queue it, answer 202 with where to look. A duplicate (same idempotency key)
/// answers 200 with the original request and changes nothing.
pub async fn submit_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = guard_signed(&state, &headers, &body, Role::Request, Action::RequestSubmit).await?;
    let intake = state.intake.clone().ok_or_else(intake_off)?;
    let caller_id = caller.object_id.clone().unwrap_or_else(|| caller.via.clone());
    let caller = CallerRecord::from(&caller);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A webhook sender's idempotency comes only from what it signed (the ticket in the body): an
    // unsigned Idempotency-Key added to a captured delivery must not make it a new request.
    let signed_by_webhook = caller.via.starts_with("webhook:");
    let envelope = crate::intake::submission::Envelope {
        delivery_id: header("webhook-id").or_else(|| header("x-atlassian-webhook-identifier")),
        idempotency_key: if signed_by_webhook {
            None
        } else {
            header("idempotency-key")
        },
        caller: &caller_id,
    };
    let submission =
        match crate::intake::submission::parse(&body, &envelope, &state.settings.intake, &state.settings.tap) {
            Ok(s) => s,
            Err(e) => return Err(refuse_request(&state, caller, Action::RequestSubmit, e).await),
        };
    // The person who asks: the token's user (who names nobody else: `requestedBy` is dropped), or
    // the agent the signed payload or the application names.
    let mut caller = caller;
    let mut submission = submission;
    if caller.user {
        submission.requested_by = None;
    }
    if !caller.user
        && let Some(given) = &submission.requested_by
    {
        caller.on_behalf_of = match state.tap_context().resolve_person(given).await {
            Ok(person) => person,
            Err(e) => return Err(refuse_request(&state, caller, Action::RequestSubmit, e).await),
        };
    }
    let submitted = intake.submit(submission, caller.clone()).await.map_err(|e| match e {
        crate::intake::IntakeError::KeyReused(id) => ApiError::Recovery(crate::recovery::RecoveryError::refused(Refusal::IdempotencyKeyReused,
            format!("request {id} was accepted for this ticket and action (or Idempotency-Key) with different content; use a new key or ticket"),
        )),
        crate::intake::IntakeError::Unavailable(e) => ApiError::DependencyUnavailable(e),
    })?;
    let (status, record, duplicate) = match submitted {
        crate::intake::Submitted::Accepted(r) => (axum::http::StatusCode::ACCEPTED, r, false),
        crate::intake::Submitted::Duplicate(r) => (axum::http::StatusCode::OK, r, true),
    };
    let event = AuditEvent {
        caller,
        action: Action::RequestSubmit,
        target: Some(crate::audit::Target {
            object_id: None,
            upn: Some(record.user.clone()),
        }),
        ticket: Some(crate::audit::Ticket {
            system: record.source.system.clone(),
            id: record.source.ticket.clone(),
        }),
        request_id: Some(record.id),
        phase: Phase::Outcome,
        outcome: Some(Outcome::Succeeded),
        details: json!({"requestAction": record.action.as_str(), "duplicate": duplicate, "state": record.state.as_str()}),
    };
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record an accepted request");
    }
    tracing::info!(request_id = %record.id, duplicate, "request accepted");
    let location = format!("/api/requests/{}", record.id);
    let mut response = (status, Json(record.view())).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `POST /api/requests/{id}/approve` (`Recovery.Approve`): a second person agrees; the request
/// runs. Not by its requester, not by its target, and for a privileged target only by an active
/// Privileged Authentication Administrator or Global Administrator.
pub async fn approve_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(state, headers, id, body, true).await
}

/// `GET /api/approvals` (`Recovery.Approve`): the requests waiting for an approver now, oldest
/// first, as their status views (never a pass: none exists before the approval).
pub async fn pending_approvals(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    guard(&state, &headers, Role::Approve, Action::RequestRead).await?;
    let intake = state.intake.clone().ok_or_else(intake_off)?;
    let waiting = intake.pending().await.map_err(ApiError::Recovery)?;
    Ok(Json(
        json!({"value": waiting.iter().map(|r| r.view()).collect::<Vec<_>>()}),
    ))
}

/// `POST /api/requests/{id}/deny` (`Recovery.Approve`): a second person says no, with a comment.
pub async fn deny_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(state, headers, id, body, false).await
}

async fn decide(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: axum::body::Bytes,
    approved: bool,
) -> Result<Response, ApiError> {
    let caller = guard(&state, &headers, Role::Approve, Action::RequestApproval).await?;
    let caller = CallerRecord::from(&caller);
    // Only people decide: an app-only token is refused before anything is read.
    if !caller.user {
        let e = crate::recovery::approval::approver_must_be_user();
        return Err(refuse_request(&state, caller, Action::RequestApproval, e).await);
    }
    let intake = state.intake.clone().ok_or_else(intake_off)?;
    let comment = match crate::recovery::approval::parse_comment(&body) {
        Ok(c) => c,
        Err(e) => return Err(refuse_request(&state, caller, Action::RequestApproval, e).await),
    };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| {
        ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::RequestNotFound,
            "no request with this id",
        ))
    })?;
    let record = intake
        .decide(&state.tap_context(), id, &caller, approved, comment)
        .await
        .map_err(ApiError::Recovery)?;
    tracing::info!(request_id = %record.id, approved, "approval decided");
    Ok(Json(record.view()).into_response())
}

fn intake_off() -> ApiError {
    ApiError::DependencyUnavailable(
        "the intake has no storage: set AzureWebJobsStorage__* (or REQUESTS_DIR for a local directory)".into(),
    )
}

/// `GET /api/requests/{id}`: the request's state and, once finished, the same result body the
/// synchronous function gives (never the pass).
pub async fn get_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // A Jira signature covers only the body, and a GET has none: it would be one constant value,
    // replayable forever. Reads take a token, or a timestamped Standard Webhooks signature.
    if !headers.contains_key(header::AUTHORIZATION) && headers.contains_key("x-hub-signature") {
        let refused: Result<Caller, AuthError> = Err(AuthError::Malformed("a Jira signature on a GET"));
        check_role(&state, &headers, Role::Request, Action::RequestRead, refused).await?;
    }
    // The submitter (Recovery.Request) or an auditor (Audit.Read).
    let authenticated = if !headers.contains_key(header::AUTHORIZATION) && state.webhooks.is_signed(&headers) {
        state
            .webhooks
            .verify(&headers, &[])
            .await
            .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
    } else {
        state.auth.authenticate(&headers).await
    };
    let caller = check_roles(
        &state,
        &headers,
        &[Role::Request, Role::AuditRead, Role::Tap, Role::Reset, Role::Approve],
        Action::RequestRead,
        authenticated,
    )
    .await?;
    let intake = state.intake.clone().ok_or_else(intake_off)?;
    let not_found = || {
        ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::RequestNotFound,
            "no request with this id",
        ))
    };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let record = intake
        .get(id)
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(not_found)?;
    // A request belongs to whoever made it (or an auditor): anyone else learns nothing, not even
    // that it exists.
    let own = record.caller.via == caller.via && record.caller.object_id == caller.object_id;
    // An approver reads what waits for (or was given) an approval.
    let to_approve = record.approval.is_some() && caller.has(Role::Approve);
    if !own && !to_approve && !caller.has(Role::AuditRead) {
        return Err(not_found());
    }
    Ok(Json(record.view()))
}

/// `GET /api/sweeps/latest` (or a run id): the sweep's summary and links to its reports.
/// Needs `Audit.Read`.
pub async fn sweep_summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    guard(&state, &headers, Role::AuditRead, Action::SweepRead).await?;
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    match run.as_str() {
        "current" => return sweep_progress(store.as_ref()).await.map(Json),
        "history" => return sweep_history(store.as_ref()).await.map(Json),
        _ => {}
    }
    let mut summary = latest_summary(store.as_ref()).await?;
    if run != "latest" && summary["runId"] != run.as_str() {
        return Err(sweep_not_found());
    }
    let id = summary["runId"].as_str().unwrap_or_default().to_owned();
    summary["links"] = json!({
        "html": format!("/api/sweeps/{id}/report.html"),
        "csv": format!("/api/sweeps/{id}/report.csv"),
        "json": format!("/api/sweeps/{id}/report.json"),
    });
    Ok(Json(summary))
}

/// `GET /api/sweeps/{run}/report.{html,csv,json}`: a report of the latest run.
pub async fn sweep_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((run, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    guard(&state, &headers, Role::AuditRead, Action::SweepRead).await?;
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    if !["report.html", "report.csv", "report.json"].contains(&file.as_str()) {
        return Err(sweep_not_found());
    }
    let run = if run == "latest" {
        latest_summary(store.as_ref()).await?["runId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        run
    };
    if run.is_empty() || !run.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(sweep_not_found());
    }
    let name = format!("runs/{run}/{file}");
    let data = store
        .get(&name)
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    let mut response = data.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::storage::reports::content_type(&name)),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/sweeps/current`: the run in progress, or the last one (finished).
async fn sweep_progress(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let data = store
        .get("current.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    let c: Value =
        serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("current.json: {e}")))?;
    // Unfinished and saved recently: running. Unfinished and quiet: stopped (the instance was
    // recycled, or the time budget ran out), and the next run resumes it.
    let last_saved = c["savedAt"]
        .as_str()
        .or(c["startedAt"].as_str())
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
    let running = c["finishedAt"].is_null()
        && last_saved
            .is_some_and(|t| OffsetDateTime::now_utc() - t < time::Duration::minutes(crate::sweep::STALE_MINUTES));
    Ok(json!({
        "runId": c["runId"], "startedAt": c["startedAt"], "finishedAt": c["finishedAt"],
        "running": running, "savedAt": c["savedAt"], "pages": c["pages"], "users": c["totals"]["users"],
        "byRisk": c["totals"]["byRisk"], "excluded": c["totals"]["excluded"],
    }))
}

/// `GET /api/sweeps/history`: the last runs, newest first, each with the change from the one
/// before it.
async fn sweep_history(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let runs: Vec<Value> = match store
        .get("history.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
    {
        Some(data) => {
            serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("history.json: {e}")))?
        }
        None => Vec::new(),
    };
    let value: Vec<Value> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut run = run.clone();
            if let Some(before) = runs.get(i + 1) {
                run["change"] = crate::sweep::report::change(before, &run);
            }
            run
        })
        .collect();
    Ok(json!({"value": value}))
}

/// `POST /api/sweeps` (`Audit.Read`): run the sweep now ("run now" in the console), whatever
/// `SWEEP_MIN_INTERVAL_HOURS` says, at the usual pace, within the usual time budget (a run cut
/// off resumes at the next timer or run). One at a time: `409 sweep_running` while one runs.
/// Audited as `sweep.run` with who asked.
pub async fn start_sweep(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = guard(&state, &headers, Role::AuditRead, Action::SweepRun).await?;
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    let running = || {
        ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepRunning,
            "a sweep is running; follow it at /api/sweeps/current",
        ))
    };
    // Two "run now" calls at once in this instance: only one starts (the checkpoint below covers
    // a run started elsewhere).
    if state.sweep_started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(running());
    }
    let release = ReleaseOnDrop(state.sweep_started.clone());
    let wait = i64::from(state.settings.sweep.run_now_min_minutes);
    if let Ok(latest) = latest_summary(store.as_ref()).await
        && let Some(finished) = latest["finishedAt"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        && OffsetDateTime::now_utc() - finished < time::Duration::minutes(wait)
    {
        let left = (finished + time::Duration::minutes(wait) - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        return Err(ApiError::Recovery(
            crate::recovery::RecoveryError::refused(
                Refusal::SweepTooSoon,
                format!(
                    "the last sweep finished less than {wait} minutes ago (SWEEP_RUN_NOW_MIN_MINUTES); its report is current. Try again in {} minutes",
                    (left + 59) / 60
                ),
            )
            .with_retry_after(left.unsigned_abs()),
        ));
    }
    if let Ok(progress) = sweep_progress(store.as_ref()).await
        && progress["running"] == true
    {
        return Err(ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepRunning,
            format!(
                "sweep {} is running; follow it at /api/sweeps/current",
                progress["runId"].as_str().unwrap_or_default()
            ),
        )));
    }
    let event = AuditEvent {
        caller: CallerRecord::from(&caller),
        action: Action::SweepRun,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Intent,
        outcome: None,
        details: json!({"trigger": "api"}),
    };
    state.audit.record(event).await.map_err(|e| {
        tracing::error!(error = %e, "the sweep's intent could not be recorded");
        ApiError::Recovery(crate::recovery::RecoveryError::failed(
            crate::vocab::Fault::AuditUnavailable,
            "the audit trail is unavailable, so the sweep was not started; try again later",
        ))
    })?;
    let run = state.clone();
    tokio::spawn(async move {
        // The flag stays up until the run ends.
        let _release = release;
        let sweep = crate::sweep::Sweep {
            graph: &run.graph,
            store,
            settings: &run.settings.sweep,
            deliverer: Some(&run.deliverer),
            audit: Some(&run.audit),
            budget: Some(std::time::Duration::from_secs(u64::from(
                run.settings.sweep.time_budget_seconds,
            ))),
        };
        match sweep.run(crate::sweep::Trigger::Api, &|_| {}).await {
            Ok(crate::sweep::RunOutcome::Finished(summary)) => {
                tracing::info!(run_id = %summary["runId"], "sweep started from the API finished");
            }
            Ok(_) => tracing::info!("sweep started from the API paused or was up to date; the next run resumes"),
            Err(e) => tracing::error!(error = %e, "sweep started from the API failed"),
        }
    });
    Ok((
        axum::http::StatusCode::ACCEPTED,
        [(header::LOCATION, "/api/sweeps/current")],
        Json(json!({"status": "started", "statusUrl": "/api/sweeps/current"})),
    )
        .into_response())
}

/// Lowers the flag when dropped (the run ended, or the call was refused or failed).
struct ReleaseOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn latest_summary(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let data = store
        .get("latest.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("latest.json: {e}")))
}

fn sweeps_off() -> ApiError {
    ApiError::DependencyUnavailable("the sweep has no storage: set AzureWebJobsStorage__* (or SWEEP_DIR)".into())
}

fn sweep_not_found() -> ApiError {
    ApiError::Recovery(crate::recovery::RecoveryError::refused(
        Refusal::SweepNotFound,
        "no finished sweep (run the compliance-sweep function, or mfa-recovery sweep)",
    ))
}

/// Largest page of `GET /api/audit`, and the widest time range one query may scan.
const MAX_PAGE: usize = 1000;
const MAX_RANGE_DAYS: i64 = 31;

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    let rfc = &time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(value, rfc)
        .or_else(|_| {
            time::Date::parse(value, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time or a YYYY-MM-DD date")))
}

/// The opaque continuation token: where the previous page ended (the order key of its last record).
fn continuation_of(r: &AuditRecord) -> String {
    let (time, chain, seq) = r.order_key();
    B64.encode(format!("{time}|{chain}|{seq}"))
}

fn parse_continuation(token: &str) -> Result<(String, String, u64), ApiError> {
    let bad = || ApiError::BadRequest("continuation is not a token this API returned".into());
    let raw = String::from_utf8(B64.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '|');
    let (time, chain, seq) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    Ok((time.to_owned(), chain.to_owned(), seq.parse().map_err(|_| bad())?))
}

/// `GET /api/audit?user=&ticket=&action=&outcome=&from=&to=&pageSize=&continuation=`
///
/// JSON by default, CSV with `Accept: text/csv`. Requires `Audit.Read`; each query is itself
/// recorded (`audit.query`).
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let caller = guard(&state, &headers, Role::AuditRead, Action::AuditQuery).await?;
    let AuditQuery {
        filter,
        include_entra,
        page_size,
        after,
    } = parse_audit_query(&q)?;
    let (from, to) = (filter.from, filter.to);
    let records = state.audit.query(&filter).await.map_err(ApiError::AuditUnavailable)?;
    let entra = match (include_entra, filter.user.as_deref()) {
        (true, Some(user)) => Some(entra_events(&state, user, from, to).await?),
        _ => None,
    };
    let start = match &after {
        None => 0,
        Some((time, chain, seq)) => records.partition_point(|r| r.order_key() <= (time.as_str(), chain.as_str(), *seq)),
    };
    let page: Vec<AuditRecord> = records.iter().skip(start).take(page_size).cloned().collect();
    let next = (start + page.len() < records.len())
        .then(|| page.last().map(continuation_of))
        .flatten();
    state
        .audit
        .record(AuditEvent {
            caller: CallerRecord::from(&caller),
            action: Action::AuditQuery,
            target: None,
            ticket: None,
            request_id: None,
            phase: Phase::Outcome,
            outcome: Some(Outcome::Succeeded),
            details: json!({"returned": page.len(), "filter": {
                "user": filter.user, "ticket": filter.ticket, "action": filter.action, "outcome": filter.outcome,
                "from": crate::audit::rfc3339_millis(from), "to": crate::audit::rfc3339_millis(to)}}),
        })
        .await
        .map_err(ApiError::AuditUnavailable)?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], to_csv(&page)).into_response();
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("x-continuation", next);
        }
        return Ok(response);
    }
    let mut body = json!({"value": page, "count": page.len()});
    if let Some(entra) = entra {
        body["entra"] = json!(entra);
    }
    if let Some(next) = next {
        body["continuation"] = json!(next);
    }
    Ok(Json(body).into_response())
}

/// A parsed `GET /api/audit` query.
struct AuditQuery {
    filter: AuditFilter,
    include_entra: bool,
    page_size: usize,
    /// The continuation: the order key of the last record already returned.
    after: Option<(String, String, u64)>,
}

/// Check and parse the audit query string; every bad parameter is a 400 that names it.
fn parse_audit_query(q: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    const KNOWN: [&str; 9] = [
        "user",
        "ticket",
        "action",
        "outcome",
        "from",
        "to",
        "pageSize",
        "continuation",
        "includeEntra",
    ];
    if let Some(unknown) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter '{unknown}'; use {}",
            KNOWN.join(", ")
        )));
    }
    let include_entra = match q.get("includeEntra").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("includeEntra must be true or false".into())),
    };
    if include_entra && !q.contains_key("user") {
        return Err(ApiError::BadRequest(
            "includeEntra=true needs user (an object id or UPN)".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let to = q.get("to").map(|v| parse_time("to", v)).transpose()?.unwrap_or(now);
    let from = q
        .get("from")
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - time::Duration::days(7));
    if from > to {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    if to - from > time::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "from and to may be at most {MAX_RANGE_DAYS} days apart"
        )));
    }
    if let Some(o) = q.get("outcome")
        && !["succeeded", "refused", "failed"].contains(&o.as_str())
    {
        return Err(ApiError::BadRequest(
            "outcome must be succeeded, refused or failed".into(),
        ));
    }
    let page_size = match q.get("pageSize") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("pageSize must be 1 to {MAX_PAGE}")))?,
    };
    let after = q.get("continuation").map(|c| parse_continuation(c)).transpose()?;
    let filter = AuditFilter {
        from,
        to,
        user: q.get("user").cloned(),
        ticket: q.get("ticket").cloned(),
        action: q.get("action").cloned(),
        outcome: q.get("outcome").cloned(),
    };
    Ok(AuditQuery {
        filter,
        include_entra,
        page_size,
        after,
    })
}

/// The user's "Authentication Methods" events from Entra's directory audit.
async fn entra_events(
    state: &AppState,
    user: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Value>, ApiError> {
    state
        .graph
        .authentication_method_events(user, from, to)
        .await
        .map_err(ApiError::EntraAudit)
}

/// One CSV cell: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn cell(value: &str) -> String {
    crate::vocab::csv::field(value, crate::vocab::csv::Quote::WhenNeeded)
}

fn to_csv(records: &[AuditRecord]) -> String {
    let mut out = String::from(
        "time,id,phase,action,outcome,code,callerVia,callerAppId,callerObjectId,callerName,sourceIp,targetObjectId,targetUpn,ticketSystem,ticketId,requestId,details,chain,seq,hash\r\n",
    );
    for r in records {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let phase = match r.phase {
            Phase::Intent => "intent",
            Phase::Outcome => "outcome",
        };
        let row = [
            r.time.clone(),
            r.id.to_string(),
            phase.into(),
            r.action.clone(),
            r.outcome.as_ref().map(|x| x.name().to_owned()).unwrap_or_default(),
            r.outcome
                .as_ref()
                .and_then(|x| x.code().map(str::to_owned))
                .unwrap_or_default(),
            r.caller.via.clone(),
            o(&r.caller.app_id),
            o(&r.caller.object_id),
            o(&r.caller.name),
            o(&r.caller.source_ip),
            r.target.as_ref().map(|t| o(&t.object_id)).unwrap_or_default(),
            r.target.as_ref().map(|t| o(&t.upn)).unwrap_or_default(),
            r.ticket.as_ref().map(|t| t.system.clone()).unwrap_or_default(),
            r.ticket.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
            r.request_id.map(|i| i.to_string()).unwrap_or_default(),
            r.details.to_string(),
            r.chain.clone(),
            r.seq.to_string(),
            r.hash.clone(),
        ];
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
    }
}
