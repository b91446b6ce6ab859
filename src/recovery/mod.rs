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
