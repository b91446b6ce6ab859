//! `/api/requests…` and `/api/approvals`: queued requests (submitted, read by whoever made them),
//! and a second approver's decision.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::audit::Action;
use crate::auth::{AuthError, Caller};
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::intake::call::NotKept;
use crate::vocab::Refusal;
use crate::vocab::{CallerRecord, Role};

use super::caller::*;

/// `POST /api/requests` (a token with `Recovery.Request`, or a signed webhook): validate fully,
/// keep the record, queue it, answer 202 with where to look. A duplicate (same idempotency key)
/// answers 200 with the original request and changes nothing.
pub(crate) async fn submit_request(
    State(state): State<AppState>,
    signed: Signed<Submit>,
) -> Result<Response, ApiError> {
    let Signed {
        caller, headers, body, ..
    } = signed;
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
    let submitted = match crate::intake::call::submit(&intake, &state.tap_context(), submission, caller.clone()).await {
        Ok(s) => s,
        Err(NotKept::Person(e)) => return Err(refuse_request(&state, caller, Action::RequestSubmit, e).await),
        Err(NotKept::Intake(crate::intake::IntakeError::KeyReused(id))) => {
            return Err(ApiError::Recovery(crate::recovery::RecoveryError::refused(
                Refusal::IdempotencyKeyReused,
                format!(
                    "request {id} was accepted for this ticket and action (or Idempotency-Key) with different content; use a new key or ticket"
                ),
            )));
        }
        Err(NotKept::Intake(crate::intake::IntakeError::Unavailable(e))) => {
            return Err(ApiError::DependencyUnavailable(e));
        }
    };
    let (status, record) = match submitted {
        crate::intake::Submitted::Accepted(r) => (axum::http::StatusCode::ACCEPTED, r),
        crate::intake::Submitted::Duplicate(r) => (axum::http::StatusCode::OK, r),
    };
    Ok(with_location(status, &record))
}

/// A request kept (accepted, or held for an approver): `202` with its view and where to look.
pub(super) fn accepted(record: &crate::intake::RequestRecord) -> Response {
    with_location(axum::http::StatusCode::ACCEPTED, record)
}

fn with_location(status: axum::http::StatusCode, record: &crate::intake::RequestRecord) -> Response {
    let mut response = (status, Json(view(record))).into_response();
    if let Ok(value) = HeaderValue::from_str(&crate::vocab::paths::request(record.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /api/requests/{id}`: the request's state and, once finished, the same result body the
/// synchronous function gives (never the pass).
pub(crate) async fn get_request(
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
    Ok(Json(view(&record)))
}

/// A request as the API shows it (`intake::view`), with the status the synchronous function
/// would have answered.
pub(super) fn view(record: &crate::intake::RequestRecord) -> Value {
    serde_json::to_value(record.view(&crate::host::answers::HttpAnswers)).expect("a view serializes")
}

/// `GET /api/approvals` (`Recovery.Approve`): the requests waiting for an approver now, oldest
/// first, as their status views (never a pass: none exists before the approval).
pub(crate) async fn pending_approvals(
    State(state): State<AppState>,
    _who: Authorized<Waiting>,
) -> Result<Json<Value>, ApiError> {
    let intake = state.intake.clone().ok_or_else(intake_off)?;
    let waiting = intake.pending().await.map_err(ApiError::Recovery)?;
    Ok(Json(json!({"value": waiting.iter().map(view).collect::<Vec<_>>()})))
}

/// `POST /api/requests/{id}/approve` (`Recovery.Approve`): a second person agrees; the request
/// runs. Not by its requester, not by its target, and for a privileged target only by an active
/// Privileged Authentication Administrator or Global Administrator.
pub(crate) async fn approve_request(
    State(state): State<AppState>,
    who: Authorized<Decide>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(state, who, id, body, true).await
}

/// `POST /api/requests/{id}/deny` (`Recovery.Approve`): a second person says no, with a comment.
pub(crate) async fn deny_request(
    State(state): State<AppState>,
    who: Authorized<Decide>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(state, who, id, body, false).await
}

pub(super) async fn decide(
    state: AppState,
    who: Authorized<Decide>,
    id: String,
    body: axum::body::Bytes,
    approved: bool,
) -> Result<Response, ApiError> {
    let caller = who.record();
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
    Ok(Json(view(&record)).into_response())
}

pub(super) fn intake_off() -> ApiError {
    ApiError::DependencyUnavailable(
        "the intake has no storage: set AzureWebJobsStorage__* (or REQUESTS_DIR for a local directory)".into(),
    )
}
