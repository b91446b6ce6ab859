//! `/api/users/{user}…`: the look-up and search an agent makes before a recovery, the pass and the
//! reset; a recovery held for an approver becomes a request waiting for one.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::audit::Action;
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::intake::call::{self, Call, Called};
use crate::recovery::request::TapRequest;
use crate::recovery::reset::ResetRequest;
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
    let request = match TapRequest::parse(&user, &body) {
        Ok(r) => r,
        Err(e) => return Err(refuse_request(&state, caller, Action::TapIssue, e).await),
    };
    run_call(&state, caller, Call::Tap(request), &body).await
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
    run_call(&state, caller, Call::Reset { request, may_tap }, &body).await
}

/// Run a recovery now (`intake::call`) and answer it: `201` with the pass, the reset's `200`
/// (or `502` with what is left to do), or `202` with the status URL of a request held for an
/// approver. The console never gets a pass, whatever `TAP_RETURN_TO_CALLER` says.
async fn run_call(state: &AppState, caller: CallerRecord, call: Call, body: &[u8]) -> Result<Response, ApiError> {
    let console = from_console(state, &caller);
    let called = call::run(state.intake.as_deref(), &state.tap_context(), caller, call, body)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(match called {
        Called::Issued(mut issued) => {
            if console {
                issued.pass = None;
            }
            tracing::info!(request_id = %issued.request_id, tap_method_id = %issued.tap_method_id, channel = issued.channel.as_str(), "pass issued and delivered");
            (
                axum::http::StatusCode::CREATED,
                Json(crate::host::answers::issued_body(&issued)),
            )
                .into_response()
        }
        Called::Reset(mut result) => {
            if console && let Some(tap) = result.tap.as_mut() {
                tap.pass = None;
            }
            tracing::info!(request_id = %result.request_id, removed = result.removed.len(), failed = result.failed.len(), "reset finished");
            // 200 when everything was done; 502 with the same lists when something is left to do.
            let (status, body) = crate::host::answers::reset_answer(&result);
            (status, Json(body)).into_response()
        }
        Called::Held(record) => super::requests::accepted(&record),
    })
}

/// `GET /api/users/{user}`: what an agent needs to know before recovering the user
/// (`recovery::summary`): agents (`Recovery.Tap` or `Recovery.Reset`) only, and each look is
/// audited as `user.lookup` (who looked at whom; nothing of what was shown).
pub(crate) async fn user_summary(
    State(state): State<AppState>,
    who: Authorized<LookUp>,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let caller = who.record();
    let looked = call::look_up(state.intake.as_ref(), &state.tap_context(), &caller, &user)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(no_store(Json(looked).into_response()))
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
