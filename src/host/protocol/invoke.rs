//! Queue- and timer-triggered functions: `POST /{function}` with the host's envelope.
//!
//! Retry policy: a non-2xx answer fails the invocation and the host retries the message (up to
//! `maxDequeueCount` in host.json, then moves it to `<queue>-poison`). A message that can never
//! succeed (not JSON, not a recovery request) is completed with a 200 and a log line saying why,
//! instead of being retried five times and poisoned.
//!
//! The queue message contract (written by the `requests` function, read by the worker): the
//! JSON text `{"requestId": "<uuid>"}`, unencoded (`messageEncoding: none` in host.json). It
//! carries only the id; the request itself lives in its record in Blob Storage, so no personal
//! data and never a secret sits in a queue. The same holds for `recovery-notices`
//! (`{"noticeId": "<uuid>"}`, read by `notice-worker`; the notice is a record too).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::host::AppState;
use crate::host::envelope::{InvocationRequest, InvocationResponse, QueueInvocation, TimerInfo};
use crate::host::error::ApiError;
use crate::host::functions::{self, FunctionSpec, Trigger};

/// The message on `recovery-requests` (and, after too many failures, `recovery-requests-poison`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct QueueMessage {
    #[serde(rename = "requestId")]
    pub request_id: Uuid,
}

/// Why a message text is not a `QueueMessage`, without quoting it (serde's own messages do).
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "is not valid JSON",
        Category::Eof => "is truncated JSON",
        Category::Data => "is JSON but not a recovery request (expected {\"requestId\": \"<uuid>\"})",
        Category::Io => "could not be read",
    };
    format!("the message {what} (line {}, column {})", e.line(), e.column())
}

/// Parse a queue message text.
///
/// # Errors
/// A description of what is wrong that never includes the text.
pub(crate) fn parse_message(text: &str) -> Result<QueueMessage, String> {
    serde_json::from_str(text).map_err(|e| describe(&e))
}

/// `POST /{function}` for queue and timer functions.
pub async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = functions::find(&name)
        .filter(|f| !matches!(f.trigger, Trigger::Http { .. }))
        .ok_or_else(|| ApiError::NotFound {
            method: "POST".into(),
            path: format!("/{name}"),
        })?;
    let envelope: InvocationRequest = serde_json::from_slice(&body).map_err(|e| {
        // The host's own payload is broken; failing lets the host report and retry it.
        ApiError::BadRequest(format!(
            "the invocation body is not a {{Data, Metadata}} envelope: {}",
            describe(&e)
        ))
    })?;
    match spec.trigger {
        Trigger::Queue { .. } => queue(&state, spec, &envelope).await,
        Trigger::Timer { .. } => timer(&state, spec, &envelope).await,
        Trigger::Http { .. } => unreachable!("filtered above"),
    }
}

/// Complete a message that can never succeed, and say why.
fn discard(spec: &FunctionSpec, message_id: Option<&str>, reason: &str) -> Response {
    let id = message_id.unwrap_or("(no id)");
    tracing::warn!(
        function = spec.name,
        message_id = id,
        reason,
        "message discarded: it can never succeed, so it is completed instead of retried"
    );
    let log = format!("{}: discarded message {id}: {reason}", spec.name);
    Json(InvocationResponse::with_log(log)).into_response()
}

async fn queue(state: &AppState, spec: &FunctionSpec, envelope: &InvocationRequest) -> Result<Response, ApiError> {
    let invocation = match QueueInvocation::from_envelope(envelope, spec.binding) {
        Ok(q) => q,
        Err(e) => return Ok(discard(spec, None, &e.to_string())),
    };
    let message_id = invocation.message_id.as_deref();
    if spec.name == "notice-worker" {
        return notice(state, spec, &invocation).await;
    }
    let message = match parse_message(&invocation.text) {
        Ok(m) => m,
        Err(reason) => return Ok(discard(spec, message_id, &reason)),
    };
    tracing::info!(
        function = spec.name,
        message_id = message_id.unwrap_or("(no id)"),
        dequeue_count = invocation.dequeue_count,
        request_id = %message.request_id,
        "queue message received"
    );
    let Some(intake) = state.intake.clone() else {
        // Retried, not discarded: the message is fine, the configuration is not.
        return Err(ApiError::DependencyUnavailable(
            "the intake has no storage (AzureWebJobsStorage__* or REQUESTS_DIR)".into(),
        ));
    };
    let context = state.tap_context();
    let outcome = match spec.name {
        "recovery-worker" => {
            let delivery = crate::intake::Delivery {
                message_id: invocation.message_id.clone(),
                dequeue_count: invocation.dequeue_count,
            };
            intake.work(&context, &delivery, message.request_id).await
        }
        "recovery-poison" => intake.poison(&context, message.request_id).await,
        other => return Err(ApiError::Unexpected(anyhow::anyhow!("no queue handler for {other}"))),
    };
    match outcome {
        crate::intake::WorkOutcome::Done(why) => {
            tracing::info!(function = spec.name, request_id = %message.request_id, %why, "message complete");
            Ok(Json(InvocationResponse::with_log(format!("{}: {why}", spec.name))).into_response())
        }
        crate::intake::WorkOutcome::Retry(why) => {
            tracing::warn!(function = spec.name, request_id = %message.request_id, %why, "invocation failed; the host will retry");
            Err(ApiError::Retry(why))
        }
    }
}

/// `notice-worker`: one notice from the outbox (`recovery::notice`).
async fn notice(state: &AppState, spec: &FunctionSpec, invocation: &QueueInvocation) -> Result<Response, ApiError> {
    let Some(outbox) = state.outbox.clone() else {
        return Err(ApiError::DependencyUnavailable(
            "the outbox has no storage (AzureWebJobsStorage__* or REQUESTS_DIR)".into(),
        ));
    };
    let sent = outbox
        .deliver(
            state.notifier.as_ref(),
            &state.audit,
            &invocation.text,
            invocation.dequeue_count,
        )
        .await;
    match sent {
        crate::recovery::notice::Sent::Done(why) => {
            tracing::info!(function = spec.name, %why, "message complete");
            Ok(Json(InvocationResponse::with_log(format!("{}: {why}", spec.name))).into_response())
        }
        crate::recovery::notice::Sent::Retry(why) => {
            tracing::warn!(function = spec.name, %why, "invocation failed; the host will retry");
            Err(ApiError::Retry(why))
        }
    }
}

async fn timer(state: &AppState, spec: &FunctionSpec, envelope: &InvocationRequest) -> Result<Response, ApiError> {
    let info = match TimerInfo::from_envelope(envelope, spec.binding) {
        Ok(t) => t,
        Err(e) => return Ok(discard(spec, None, &e.to_string())),
    };
    tracing::info!(function = spec.name, is_past_due = info.is_past_due, "timer fired");
    if spec.name == "audit-export" {
        return export(state, spec).await;
    }
    let Some(sweep) = state.sweep() else {
        return Err(ApiError::DependencyUnavailable(
            "the sweep has no storage (AzureWebJobsStorage__* or SWEEP_DIR)".into(),
        ));
    };
    let trigger = crate::sweep::Trigger::Timer {
        past_due: info.is_past_due,
    };
    let log = match sweep.run(trigger, &|_| {}).await {
        Ok(crate::sweep::RunOutcome::Finished(summary)) => format!(
            "sweep {} finished: {} users, {} at risk",
            summary.run_id, summary.totals.users, summary.at_risk
        ),
        Ok(crate::sweep::RunOutcome::Paused { run_id, pages }) => {
            format!("sweep {run_id} paused after page {pages}; the next run resumes")
        }
        Ok(crate::sweep::RunOutcome::UpToDate { run_id }) => {
            format!("sweep {run_id} is recent enough (SWEEP_MIN_INTERVAL_HOURS); nothing to do")
        }
        Err(e) => return Err(ApiError::DependencyUnavailable(e.to_string())),
    };
    tracing::info!(function = spec.name, %log, "timer done");
    Ok(Json(InvocationResponse::with_log(log)).into_response())
}

/// `audit-export`: the trail's new records to Log Analytics. A run that fails completes anyway
/// (the next minute's run goes on from the marks); its failure is in the status and the trail.
async fn export(state: &AppState, spec: &FunctionSpec) -> Result<Response, ApiError> {
    let Some(exporter) = &state.exporter else {
        let log = "audit-export: not configured (AUDIT_EXPORT_ENDPOINT, AUDIT_EXPORT_RULE_ID)".to_owned();
        return Ok(Json(InvocationResponse::with_log(log)).into_response());
    };
    let run = exporter.run(&state.audit).await;
    let log = match &run.failed {
        None => format!(
            "audit-export: {} records from {} chains in {} calls",
            run.records, run.chains, run.calls
        ),
        Some(e) => format!("audit-export: {} records sent, then failed: {e}", run.records),
    };
    tracing::info!(function = spec.name, %log, "timer done");
    Ok(Json(InvocationResponse::with_log(log)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_errors_never_quote_the_message() {
        for text in [
            "aaaaa-secret",
            "{\"requestId\": \"secret-value\"}",
            "[\"secret\"]",
            "{\"requestId\"",
        ] {
            let reason = parse_message(text).unwrap_err();
            assert!(!reason.contains("secret"), "{reason}");
        }
    }

    #[test]
    fn a_request_id_message_parses() {
        let m = parse_message(r#"{"requestId":"b0000001-0000-4000-8000-000000000001"}"#).unwrap();
        assert_eq!(m.request_id.to_string(), "b0000001-0000-4000-8000-000000000001");
    }
}
