//! `POST /admin/functions/{name}` with `{"input": "..."}`: runs a queue or timer function the
//! way the real host's admin API does, for `mfa-recovery dev` only (in Azure the host owns
//! `/admin/*` and never forwards it). The envelope is built exactly as a real host builds it,
//! double-encoded strings included, and goes through the same decoding as a real invocation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::host::AppState;
use crate::host::error::ApiError;
use crate::host::functions::{self, Trigger};
use crate::host::invocation::current_invocation_id;
use crate::host::invoke::invoke;

#[derive(Debug, Deserialize)]
struct AdminInvoke {
    #[serde(default)]
    input: Option<String>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// Encode a string the way the host does (`JsonConvert.SerializeObject(value)`).
fn host_string(s: &str) -> Value {
    Value::String(Value::String(s.to_owned()).to_string())
}

/// The envelope a real host sends for `input` to `name`.
pub(crate) fn envelope_for(name: &str, binding: &str, trigger: Trigger, input: Option<&str>) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let sys = json!({"MethodName": name, "UtcNow": rfc3339(now), "RandGuid": uuid::Uuid::new_v4().to_string()});
    match trigger {
        Trigger::Queue { .. } => json!({
            "Data": { binding: host_string(input.unwrap_or_default()) },
            "Metadata": {
                "DequeueCount": "1",
                "ExpirationTime": rfc3339(now + time::Duration::days(7)),
                "Id": host_string(&uuid::Uuid::new_v4().to_string()),
                "InsertionTime": rfc3339(now),
                "NextVisibleTime": rfc3339(now + time::Duration::seconds(30)),
                "PopReceipt": host_string("AgAAAAMAAAAAAAAAZGV2LW1vZGU="),
                "sys": sys,
            }
        }),
        _ => json!({
            "Data": { binding: {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false} },
            "Metadata": { "sys": sys }
        }),
    }
}

pub(crate) async fn run_function(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = functions::find(&name).ok_or_else(|| ApiError::NotFound {
        method: "POST".into(),
        path: format!("/admin/functions/{name}"),
    })?;
    if let Trigger::Http { route, .. } = spec.trigger {
        return Err(ApiError::BadRequest(format!(
            "{name} is an HTTP function: call /api/{route} instead"
        )));
    }
    let request: AdminInvoke = if body.is_empty() {
        AdminInvoke { input: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::BadRequest("the body must be {\"input\": \"<string>\"}".into()))?
    };
    if matches!(spec.trigger, Trigger::Queue { .. }) && request.input.is_none() {
        return Err(ApiError::BadRequest(format!(
            "{name} is queue-triggered: give the message text as \"input\""
        )));
    }
    let envelope = envelope_for(spec.name, spec.binding, spec.trigger, request.input.as_deref());
    let response = match invoke(State(state), Path(name.clone()), Bytes::from(envelope.to_string())).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let inner: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        // The real admin API answers 202; the body says what the function answered.
        Ok((StatusCode::ACCEPTED, Json(json!({"function": name, "invocationId": current_invocation_id(), "status": status.as_u16(), "response": inner}))).into_response())
    } else {
        Ok((status, Json(inner)).into_response())
    }
}
