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

/// `POST /api/users/{user}/verifications`: send a one-time code to the user's address of record
/// on the channel asked for; `201` with where it went (masked) and until when.
pub(crate) async fn send_verification(
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
    crate::intake::call::code_sent(state.intake.as_deref(), &state.tap_context(), &caller, &sent).await;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(crate::host::answers::sent_code_body(&sent)),
    )
        .into_response())
}

/// `GET /api/verifications/{id}`: where a verification stands (`sent`, `opened`, `verified`,
/// `repudiated`, `expired`), for the caller that made it.
pub(crate) async fn get_verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Authorized<ReadVerification>,
) -> Result<Response, ApiError> {
    let caller = CallerRecord::from(&who.caller);
    let view = state
        .tap_context()
        .verification_view(&caller, &id)
        .await
        .map_err(ApiError::Recovery)?;
    Ok(Json(json!(view)).into_response())
}

/// `POST /api/users/{user}/recovery-block/lift`: an approver ends the block "this is not me"
/// put on the user's recoveries, with a comment.
pub(crate) async fn lift_block(
    State(state): State<AppState>,
    Path(user): Path<String>,
    signed: Signed<LiftBlock>,
) -> Result<Response, ApiError> {
    let caller = CallerRecord::from(&signed.caller);
    let context = state.tap_context();
    let lifted = context
        .lift_block(&caller, &user, &signed.body)
        .await
        .map_err(ApiError::Recovery)?;
    crate::intake::call::block_lifted(state.intake.as_deref(), &context, &caller, &lifted).await;
    Ok(
        Json(json!({"status": "lifted", "wasBlockedUntil": crate::audit::rfc3339_millis(lifted.was_until)}))
            .into_response(),
    )
}

/// `POST /api/verifications/{id}/confirm`: check the code the user read back, by the caller that
/// asked for it.
pub(crate) async fn confirm_verification(
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
