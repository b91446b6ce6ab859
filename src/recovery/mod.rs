//! The recovery domain: what a request may ask for, the rules a Temporary Access Pass must meet,
//! and the guardrails around it. `tap` runs the whole procedure for the HTTP function and the CLI.

pub mod reset;
pub mod tap;

use serde_json::{Value, json};

/// A refusal or failure with the documented code a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RecoveryError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Whether the error is a refusal by a rule (`refused` in the audit trail) or a fault (`failed`).
    pub refusal: bool,
}

impl RecoveryError {
    pub fn refused(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            refusal: true,
        }
    }
    pub fn failed(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            refusal: false,
        }
    }
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

/// Parse a request body at the edge; `expected` names the fields for the caller. serde's message
/// names a wrong field; for syntax errors nothing of the body is echoed.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, RecoveryError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => "the body is not valid JSON".into(),
        };
        RecoveryError::refused(400, "invalid_request", format!("{what}. Expected {expected}"))
    })
}

/// A free-text field: present, at most `max` bytes, no control characters (no log forging).
pub(crate) fn text_ok(value: &str, max: usize) -> bool {
    !value.trim().is_empty() && value.len() <= max && !value.chars().any(char::is_control)
}
