//! What the HTTP API answers for each outcome of a recovery: the one table from documented error
//! codes to HTTP statuses, and the response bodies. The intake keeps these answers in its request
//! records (`resultStatus`, `result`) through the `Answers` trait, so a queued request reads
//! exactly as the synchronous call would have answered.

use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::recovery::reset::ResetResult;
use crate::recovery::tap::Issued;
use crate::recovery::{Answer, Answered, Answers, RecoveryError};
use crate::vocab::{ErrorCode, Fault, Refusal};

/// The status each documented code answers.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Refused(r) => match r {
            Refusal::InvalidRequest
            | Refusal::InvalidUser
            | Refusal::AddressNotAllowed
            | Refusal::CallbackNotAllowed
            | Refusal::VerificationRequired => StatusCode::BAD_REQUEST,
            Refusal::CallerIsManager
            | Refusal::SelfRecoveryForbidden
            | Refusal::Forbidden
            | Refusal::TargetProtected
            | Refusal::ApprovalDenied
            | Refusal::ApproverIsRequester
            | Refusal::ApproverIsTarget
            | Refusal::ApproverNotAdmin
            | Refusal::AddressIsCallers
            | Refusal::ApproverMustBeUser
            | Refusal::UserAtRisk => StatusCode::FORBIDDEN,
            Refusal::ApprovalRequired => StatusCode::ACCEPTED,
            Refusal::RequestNotFound
            | Refusal::SweepNotFound
            | Refusal::UserNotFound
            | Refusal::VerificationNotFound
            | Refusal::LinkUnusable => StatusCode::NOT_FOUND,
            Refusal::VerificationExpired | Refusal::ApprovalExpired => StatusCode::GONE,
            Refusal::TooManyAttempts | Refusal::RecoveryBlocked => StatusCode::LOCKED,
            Refusal::IdempotencyKeyReused
            | Refusal::UserDisabled
            | Refusal::UserIsGuest
            | Refusal::PolicyDisabled
            | Refusal::UserOutOfScope
            | Refusal::GraphRefused
            | Refusal::WouldLeaveNoMethod
            | Refusal::SecondApproverRequired
            | Refusal::VerificationUsed
            | Refusal::NotPendingApproval
            | Refusal::SweepRunning
            | Refusal::NotBlocked
            | Refusal::StateTampered
            | Refusal::AddressRecentlyChanged => StatusCode::CONFLICT,
            Refusal::VerificationStale
            | Refusal::LifetimeOutOfRange
            | Refusal::MultiUseNotAllowed
            | Refusal::NoAddressOfRecord
            | Refusal::NoNoticeRecipient
            | Refusal::CodeMismatch
            | Refusal::VerificationNotConfirmed
            | Refusal::VerificationChannelReused => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::RateLimited | Refusal::SweepTooSoon => StatusCode::TOO_MANY_REQUESTS,
        },
        ErrorCode::Failed(f) => match f {
            Fault::TapOutcomeUnknown | Fault::DeliveryFailed | Fault::DeliveryUnconfirmed | Fault::ResetIncomplete => {
                StatusCode::BAD_GATEWAY
            }
            Fault::ClaimLost => StatusCode::CONFLICT,
            Fault::RetriesExhausted => StatusCode::INTERNAL_SERVER_ERROR,
            Fault::GraphUnavailable
            | Fault::AuditUnavailable
            | Fault::DeliveryUnavailable
            | Fault::NoticeUnavailable
            | Fault::PermissionMissing
            | Fault::PrivilegeCheckUnavailable
            | Fault::RateLimitUnavailable
            | Fault::StorageUnavailable
            | Fault::VerificationUnavailable
            | Fault::AddressCheckUnavailable
            | Fault::RiskCheckUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}

/// `{"error": {"code", "message"}}`.
pub(crate) fn error_body(e: &RecoveryError) -> Value {
    json!({"error": {"code": e.code_str(), "message": e.message}})
}

/// The body of `201 Created` for an issued pass. The pass itself only when the procedure kept it
/// (`TAP_RETURN_TO_CALLER` on a synchronous call).
pub(crate) fn issued_body(issued: &Issued) -> Value {
    let fmt = &time::format_description::well_known::Rfc3339;
    let mut body = json!({
        "requestId": issued.request_id,
        "userId": issued.user_id,
        "tapMethodId": issued.tap_method_id,
        "startDateTime": issued.start.format(fmt).unwrap_or_default(),
        "expiresAt": issued.expires_at.format(fmt).unwrap_or_default(),
        "usableOnce": issued.usable_once,
        "delivery": {"channel": issued.channel.as_str(), "to": issued.to_masked, "provider": issued.provider, "messageId": issued.message_id},
        "notified": issued.notified,
    });
    if let Some(warning) = &issued.warning {
        body["warning"] = json!(warning);
    }
    if let Some(pass) = &issued.pass {
        body["temporaryAccessPass"] = json!(pass.expose_secret());
    }
    body
}

/// A reset: `200` when everything was done, `502` with the same lists when something is left.
pub(crate) fn reset_answer(result: &ResetResult) -> (StatusCode, Value) {
    let mut body = json!({
        "requestId": result.request_id, "userId": result.user_id,
        "removed": result.removed, "failed": result.failed, "remaining": result.remaining, "kept": result.kept,
        "sessionsRevoked": result.sessions_revoked, "notified": result.notified,
    });
    if let Some(t) = &result.tap {
        body["tap"] = issued_body(t);
    }
    if result.resumed {
        body["resumed"] = json!(true);
        body["note"] =
            json!("an earlier attempt removed the methods and sent the pass; this attempt only finished the request");
    }
    if !result.kept.is_empty() {
        body["note"] = json!(
            "Graph does not delete a user's default phone while no other method can take the default (\"kept\"). The user signs in with the pass, changes their default sign-in method, then delete the phone (docs/reset.md)."
        );
    }
    if let Some(e) = &result.tap_error {
        body["tap"] = error_body(e);
    }
    if result.complete() {
        return (StatusCode::OK, body);
    }
    let incomplete = RecoveryError::failed(
        Fault::ResetIncomplete,
        "not everything was done; the lists say what was removed, what failed and what is left. Send the same request again to finish.",
    );
    body["error"] = error_body(&incomplete)["error"].clone();
    (status_of(incomplete.code), body)
}

/// The body of `201 Created` for a verification code sent.
pub(crate) fn sent_code_body(sent: &crate::recovery::verification::SentCode) -> Value {
    let mut body = json!({"verificationId": sent.id, "mode": sent.mode.as_str(), "channel": sent.channel.as_str(), "sentTo": sent.sent_to,
        "expiresAt": crate::audit::rfc3339_millis(sent.expires_at)});
    if let Some(risk) = &sent.risk {
        body["userRisk"] = json!(risk);
    }
    body
}

/// The answers as the HTTP API gives them, for the intake's request records.
pub(crate) struct HttpAnswers;

impl Answers for HttpAnswers {
    fn render(&self, answer: Answer<'_>) -> Value {
        match answer {
            Answer::Issued(i) => issued_body(i),
            Answer::Reset(r) => reset_answer(r).1,
            Answer::Error(e) => error_body(e),
        }
    }

    fn status(&self, answered: Answered) -> u16 {
        match answered {
            Answered::Issued => StatusCode::CREATED,
            Answered::Reset => StatusCode::OK,
            Answered::Error(code) => status_of(code),
        }
        .as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_a_client_can_branch_on() {
        for code in ErrorCode::all() {
            let status = status_of(code);
            if code == ErrorCode::Refused(Refusal::ApprovalRequired) {
                // Not a refusal the caller sees: the request is kept, waiting (202).
                assert_eq!(status, StatusCode::ACCEPTED);
            } else if code.is_refusal() {
                assert!(status.is_client_error(), "{code} answers {status}");
            } else {
                assert!(
                    status.is_server_error() || status == StatusCode::CONFLICT,
                    "{code} answers {status}"
                );
            }
        }
    }
}
