//! `/api/users/{user}…`: the look-up and search an agent makes before a recovery, the pass and the
//! reset; a recovery held for an approver becomes a request waiting for one.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::audit::Action;
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::recovery::request::TapRequest;
use crate::recovery::reset::ResetRequest;
use crate::vocab::Refusal;
use crate::vocab::{CallerRecord, Role};

use super::caller::*;

/// `POST /api/users/{user}/tap`: issue a Temporary Access Pass and deliver it out of band.
pub async fn tap(
    State(state): State<AppState>,
    who: Authorized<IssuePass>,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = who.record();
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

/// `POST /api/users/{user}/mfa/reset`: require re-registration of MFA (and optionally issue a
/// pass in the same call, which also needs `Recovery.Tap`).
pub async fn reset(
    State(state): State<AppState>,
    who: Authorized<ResetMethods>,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let may_tap = who.caller.has(Role::Tap);
    let caller = who.record();
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

/// `GET /api/users/{user}`: what an agent needs to know before recovering the user
/// (`recovery::summary`): agents (`Recovery.Tap` or `Recovery.Reset`) only, and each look is
/// audited as `user.lookup` (who looked at whom; nothing of what was shown).
pub async fn user_summary(
    State(state): State<AppState>,
    who: Authorized<LookUp>,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let caller = who.record();
    let mut summary = state
        .tap_context()
        .look_up(&caller, &user)
        .await
        .map_err(ApiError::Recovery)?;
    let Some(intake) = &state.intake else {
        return Ok(no_store(Json(summary).into_response()));
    };
    intake.alert_lookup(&state.tap_context(), &summary, &caller);
    // Requests for this user not finished yet (queued, retrying, waiting for an approver).
    let upn = summary["userPrincipalName"].as_str().unwrap_or_default().to_owned();
    let id = summary["id"].as_str().unwrap_or_default().to_owned();
    match intake.open_for(&upn, &id).await {
        Ok(open) => summary["openRequests"] = json!(open),
        Err(e) => {
            tracing::warn!(error = %e, "the waiting requests could not be read");
            summary["openRequests"] = Value::Null;
            summary["openRequestsError"] = json!("the waiting requests could not be read; try again");
        }
    }
    Ok(no_store(Json(summary).into_response()))
}

/// `GET /api/users?search=<text>` (`Recovery.Tap` or `Recovery.Reset`): up to 10 users whose
/// name, mail or UPN matches, with what tells them apart (contact details masked). Counted in the
/// look-up limit, audited as `user.search`.
pub async fn search_users(
    State(state): State<AppState>,
    who: Authorized<Search>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let caller = who.record();
    let text = query.get("search").cloned().unwrap_or_default();
    let found = state
        .tap_context()
        .find_users(&caller, &text)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(no_store(Json(json!({"value": found})).into_response()))
}

pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the caller is the console (its token was issued to the API's own registration,
/// `AUTH_CLIENT_ID`): a browser never gets a pass, whatever `TAP_RETURN_TO_CALLER` says.
pub(super) fn from_console(state: &AppState, caller: &CallerRecord) -> bool {
    match (&caller.app_id, state.settings.auth.client_id) {
        (Some(app), Some(console)) => app.eq_ignore_ascii_case(&console.to_string()),
        _ => false,
    }
}

/// A synchronous recovery that ended in a hold is kept as a request waiting for an approver
/// (`202` with its status URL); a refused privileged target is reported to the SOC; anything
/// else is the error it was.
pub(super) async fn held_or_refused(
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
pub(super) fn body_ticket(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .map(|b| b["ticket"].clone())
        .unwrap_or(Value::Null)
}
