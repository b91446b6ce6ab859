//! Error bodies in the shape each simulated service uses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A Graph error: `{"error":{"code","message","innerError":{date, request-id, client-request-id}}}`.
/// https://learn.microsoft.com/graph/errors
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` seconds, for a 429.
    pub retry_after: Option<u64>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }
    pub fn user_not_found(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    pub fn item_not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "itemNotFound", format!("{what} was not found."))
    }
    pub fn denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }
}

pub fn graph_body(code: &str, message: &str) -> serde_json::Value {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    json!({"error": {"code": code, "message": message,
        "innerError": {"date": date, "request-id": id, "client-request-id": id}}})
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(graph_body(self.code, &self.message))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

pub type GraphResult<T = Response> = Result<T, GraphError>;
