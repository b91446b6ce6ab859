//! `/api/users/{user}/verifications` and `/api/verifications/{id}/confirm`: the code the service
//! sends to verify a caller, and its confirmation.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::host::AppState;
use crate::host::error::ApiError;
use crate::vocab::CallerRecord;

use super::caller::*;
use super::users::body_ticket;

/// `POST /api/users/{user}/verifications`: send a one-time code to the user's address of record
/// on the channel asked for; `201` with where it went (masked) and until when.
pub async fn send_verification(
    State(state): State<AppState>,
    Path(user): Path<String>,
    signed: Signed<SendCode>,
) -> Result<Response, ApiError> {
    let caller = CallerRecord::from(&signed.caller);
    let body = signed.body;
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
    Path(id): Path<String>,
    signed: Signed<ConfirmCode>,
) -> Result<Response, ApiError> {
    let caller = CallerRecord::from(&signed.caller);
    let body = signed.body;
    let verified_at = state
        .tap_context()
        .confirm_verification(&caller, &id, &body)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(Json(json!({"status": "verified", "verifiedAt": crate::audit::rfc3339_millis(verified_at)})).into_response())
}
