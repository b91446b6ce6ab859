//! Simulated SMS and email providers that record what they would have sent in the outbox.
//!
//! - Azure Communication Services SMS (`POST /acs/sms?api-version=2021-03-07`) and Email
//!   (`POST /acs/emails:send?api-version=2023-03-31`), authenticated with HMAC-SHA256 request
//!   signing: https://learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial
//!   SMS honours `repeatabilityRequestId` (a retried send is not sent twice).
//! - Twilio Programmable Messaging (`POST /twilio/2010-04-01/Accounts/{sid}/Messages.json`, form
//!   body, HTTP Basic with the account SID and auth token):
//!   https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::{digest, hmac};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::SimState;
use crate::graph::now_rfc3339;
use crate::state::OutboxItem;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/acs/sms", post(acs_sms))
        .route("/acs/emails:send", post(acs_email))
        .route("/acs/emails/operations/{id}", get(acs_email_status))
        .route("/twilio/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_send))
}

fn acs_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// Verify an ACS HMAC-SHA256 signature:
/// `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<b64>`
/// over `"{METHOD}\n{path?query}\n{x-ms-date};{host};{x-ms-content-sha256}"`.
#[allow(clippy::result_large_err)] // sim code: the error is the response to send
fn verify_acs(state: &SimState, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let denied = || acs_error(StatusCode::UNAUTHORIZED, "Denied", "Denied by the resource provider.");
    let Some(acs) = &state.seed.providers.acs else {
        return Err(denied());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(date), Some(host), Some(hash), Some(auth)) = (
        header("x-ms-date"),
        header("host"),
        header("x-ms-content-sha256"),
        header("authorization"),
    ) else {
        return Err(denied());
    };
    let actual_hash = B64.encode(digest::digest(&digest::SHA256, body).as_ref());
    if actual_hash != hash {
        return Err(denied());
    }
    let fmt = &time::format_description::well_known::Rfc2822;
    let parsed = time::OffsetDateTime::parse(&date.replace("GMT", "+0000"), fmt).map_err(|_| denied())?;
    if (time::OffsetDateTime::now_utc() - parsed).abs() > time::Duration::minutes(15) {
        return Err(denied());
    }
    let Some(rest) = auth.strip_prefix("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=")
    else {
        return Err(denied());
    };
    let signature = B64.decode(rest).map_err(|_| denied())?;
    let key = state
        .secrets
        .lock()
        .unwrap()
        .get(&acs.access_key_secret)
        .cloned()
        .ok_or_else(denied)?;
    let key = B64.decode(key).map_err(|_| denied())?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let to_sign = format!("{method}\n{path_and_query}\n{date};{host};{hash}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    hmac::verify(&key, to_sign.as_bytes(), &signature).map_err(|_| denied())
}

fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `POST /acs/sms?api-version=2021-03-07`
async fn acs_sms(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = verify_acs(&state, &method, &uri, &headers, &body) {
        return r;
    }
    let acs = state.seed.providers.acs.as_ref().expect("verified");
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is not valid JSON.",
        );
    };
    if req.get("from").and_then(Value::as_str) != Some(acs.sms_from.as_str()) {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The 'from' number is not a number of this resource.",
        );
    }
    let message = req.get("message").and_then(Value::as_str).unwrap_or_default();
    if message.is_empty() {
        return acs_error(StatusCode::BAD_REQUEST, "BadRequest", "The message is required.");
    }
    let Some(recipients) = req
        .get("smsRecipients")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "At least one recipient is required.",
        );
    };
    let mut results = Vec::new();
    for r in recipients {
        let to = r.get("to").and_then(Value::as_str).unwrap_or_default();
        if !is_e164(to) {
            results.push(json!({"to": to, "httpStatusCode": 400, "successful": false, "errorMessage": "Invalid To phone number format."}));
            continue;
        }
        let repeatability = r
            .get("repeatabilityRequestId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(id) = &repeatability
            && let Some(previous) = state.tenant().acs_repeatability.get(id).cloned()
        {
            let mut again = previous;
            again["repeatabilityResult"] = json!("rejected");
            results.push(again);
            continue;
        }
        let message_id = format!("Outgoing_{}_noam", uuid::Uuid::new_v4().simple());
        state.outbox.lock().unwrap().push(OutboxItem {
            id: message_id.clone(),
            provider: "acs".into(),
            channel: "sms".into(),
            from: acs.sms_from.clone(),
            to: vec![to.to_owned()],
            subject: None,
            body: message.to_owned(),
            at: now_rfc3339(),
        });
        let result = json!({"to": to, "messageId": message_id, "httpStatusCode": 202, "repeatabilityResult": "accepted", "successful": true});
        if let Some(id) = repeatability {
            state.tenant().acs_repeatability.insert(id, result.clone());
        }
        results.push(result);
    }
    (StatusCode::ACCEPTED, Json(json!({"value": results}))).into_response()
}

/// `POST /acs/emails:send?api-version=2023-03-31`
async fn acs_email(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = verify_acs(&state, &method, &uri, &headers, &body) {
        return r;
    }
    let acs = state.seed.providers.acs.as_ref().expect("verified");
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is not valid JSON.",
        );
    };
    if req.get("senderAddress").and_then(Value::as_str) != Some(acs.email_from.as_str()) {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "InvalidSenderUserName",
            "The sender address is not configured for this resource.",
        );
    }
    let to: Vec<String> = req
        .pointer("/recipients/to")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("address").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if to.is_empty() {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "EmptyToRecipients",
            "At least one 'to' recipient is required.",
        );
    }
    let subject = req.pointer("/content/subject").and_then(Value::as_str);
    let text = req
        .pointer("/content/plainText")
        .or_else(|| req.pointer("/content/html"))
        .and_then(Value::as_str);
    let (Some(subject), Some(text)) = (subject, text) else {
        return acs_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "content.subject and a plainText or html body are required.",
        );
    };
    let operation = headers
        .get("operation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let already = state.outbox.lock().unwrap().iter().any(|o| o.id == operation);
    if !already {
        state.outbox.lock().unwrap().push(OutboxItem {
            id: operation.clone(),
            provider: "acs".into(),
            channel: "email".into(),
            from: acs.email_from.clone(),
            to,
            subject: Some(subject.to_owned()),
            body: text.to_owned(),
            at: now_rfc3339(),
        });
    }
    let location = format!(
        "{}/acs/emails/operations/{operation}?api-version=2023-03-31",
        state.base_url
    );
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"id": operation, "status": "Running"})),
    )
        .into_response();
    response
        .headers_mut()
        .insert("operation-location", HeaderValue::from_str(&location).expect("ascii"));
    response
}

async fn acs_email_status(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let known = state.outbox.lock().unwrap().iter().any(|o| o.id == id);
    if known {
        Json(json!({"id": id, "status": "Succeeded"})).into_response()
    } else {
        acs_error(StatusCode::NOT_FOUND, "NotFound", "Unknown operation.")
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}))).into_response()
}

/// `POST /twilio/2010-04-01/Accounts/{AccountSid}/Messages.json`
async fn twilio_send(
    State(state): State<Arc<SimState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(_q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(twilio) = &state.seed.providers.twilio else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    let authenticated = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|creds| {
            let token = state
                .secrets
                .lock()
                .unwrap()
                .get(&twilio.auth_token_secret)
                .cloned()
                .unwrap_or_default();
            let expected = format!("{}:{}", twilio.account_sid, token);
            !token.is_empty()
                && aws_lc_rs::constant_time::verify_slices_are_equal(creds.as_bytes(), expected.as_bytes()).is_ok()
        });
    if !authenticated || sid != twilio.account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(to) = form.get("To").filter(|t| !t.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.");
    };
    if !is_e164(to) {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if form.get("From").map(String::as_str) != Some(twilio.from.as_str()) && !form.contains_key("MessagingServiceSid") {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21606,
            "The From phone number is not a valid message-capable Twilio phone number for this account.",
        );
    }
    let Some(text) = form.get("Body").filter(|b| !b.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let message_sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    state.outbox.lock().unwrap().push(OutboxItem {
        id: message_sid.clone(),
        provider: "twilio".into(),
        channel: "sms".into(),
        from: twilio.from.clone(),
        to: vec![to.clone()],
        subject: None,
        body: text.clone(),
        at: now_rfc3339(),
    });
    (
        StatusCode::CREATED,
        Json(json!({
            "sid": message_sid, "account_sid": sid, "to": to, "from": twilio.from, "body": text,
            "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "date_created": now_rfc3339(), "error_code": null, "error_message": null,
            "uri": format!("/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"),
        })),
    )
        .into_response()
}
