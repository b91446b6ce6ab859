//! The custom-handler invocation protocol for non-HTTP triggers.
//!
//! The host sends `POST /{function}` with `{"Data": {<binding>: …}, "Metadata": {…}}` and
//! expects `{"Outputs": {…}, "Logs": […], "ReturnValue": …}` with a 2xx status; any other status
//! fails the invocation (a queue message is then retried, up to `maxDequeueCount`).
//!
//! Real hosts JSON-encode string values a second time: a queue message `{"a":1}` arrives as
//! `"{\"a\":1}"`, `DequeueCount` as `"1"` and `Id` as `"\"a000…\""` (see the verbatim capture in
//! `tests/fixtures/functions/queue-trigger.request.json`). The documented, tidy form sends the
//! plain values. Both are accepted here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The request body of a non-HTTP invocation.
#[derive(Debug, Clone, Deserialize)]
pub struct InvocationRequest {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

/// The response body of a non-HTTP invocation.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Written by the host as Information logs of the invocation: ids and outcomes only.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

impl InvocationResponse {
    pub(crate) fn with_log(message: impl Into<String>) -> Self {
        Self {
            logs: vec![message.into()],
            ..Self::default()
        }
    }
}

/// Why a trigger value cannot be read. The text never contains the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the envelope has no Data.{0} value")]
    MissingBinding(String),
    #[error("Data.{binding} is {found}, expected {expected}")]
    WrongType {
        binding: String,
        found: &'static str,
        expected: &'static str,
    },
}

impl InvocationRequest {
    /// The trigger value: `Data[binding]`, or the only entry of `Data` when the host used
    /// another binding name (the captures use `inMsg`).
    pub fn trigger(&self, binding: &str) -> Result<&Value, EnvelopeError> {
        if let Some(v) = self.data.get(binding) {
            return Ok(v);
        }
        match self.data.len() {
            1 => Ok(self.data.values().next().expect("one entry")),
            _ => Err(EnvelopeError::MissingBinding(binding.to_owned())),
        }
    }

    /// `sys.UtcNow` of the invocation, if present.
    pub fn utc_now(&self) -> Option<OffsetDateTime> {
        self.metadata
            .get("sys")
            .and_then(|s| s.get("UtcNow"))
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
    }
}

/// Undo the host's second JSON encoding of a string: `"\"aaaaa\""` becomes `aaaaa`, while a
/// value that is not itself a JSON string literal (the documented tidy form) is returned as is.
pub fn decode_host_string(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.starts_with('"')
        && let Ok(Value::String(inner)) = serde_json::from_str::<Value>(trimmed)
    {
        return inner;
    }
    raw.to_owned()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A queue-triggered invocation: the message text and its metadata.
#[derive(Debug, Clone)]
pub struct QueueInvocation {
    /// The message text, decoded from the host's encoding (never logged).
    pub text: String,
    pub message_id: Option<String>,
    /// How many times the message has been dequeued, this time included.
    pub dequeue_count: u32,
    pub insertion_time: Option<OffsetDateTime>,
}

impl QueueInvocation {
    /// Read the queue trigger from an envelope.
    ///
    /// # Errors
    /// The envelope carries no usable trigger value.
    pub fn from_envelope(envelope: &InvocationRequest, binding: &str) -> Result<Self, EnvelopeError> {
        let text = match envelope.trigger(binding)? {
            Value::String(s) => decode_host_string(s),
            // A host that hands over a JSON message as an object (or bytes as base64 with
            // `dataType: binary`) is read as the JSON text of that value.
            v @ Value::Object(_) => v.to_string(),
            other => {
                return Err(EnvelopeError::WrongType {
                    binding: binding.to_owned(),
                    found: kind_of(other),
                    expected: "a string or an object",
                });
            }
        };
        let meta = &envelope.metadata;
        let message_id = meta.get("Id").and_then(|v| match v {
            Value::String(s) => Some(decode_host_string(s)),
            _ => None,
        });
        let dequeue_count = match meta.get("DequeueCount") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(1) as u32,
            Some(Value::String(s)) => decode_host_string(s).trim().parse().unwrap_or(1),
            _ => 1,
        };
        let insertion_time = meta
            .get("InsertionTime")
            .and_then(Value::as_str)
            .map(decode_host_string)
            .and_then(|s| OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok());
        Ok(QueueInvocation {
            text,
            message_id,
            dequeue_count,
            insertion_time,
        })
    }
}

/// The timer trigger's value (`TimerInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TimerInfo {
    #[serde(rename = "IsPastDue", default)]
    pub is_past_due: bool,
    #[serde(rename = "ScheduleStatus", default)]
    pub schedule_status: Option<ScheduleStatus>,
}

/// Present when the schedule is monitored (`useMonitor`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScheduleStatus {
    #[serde(rename = "Last", with = "time::serde::rfc3339::option", default)]
    pub last: Option<OffsetDateTime>,
    #[serde(rename = "Next", with = "time::serde::rfc3339::option", default)]
    pub next: Option<OffsetDateTime>,
    #[serde(rename = "LastUpdated", with = "time::serde::rfc3339::option", default)]
    pub last_updated: Option<OffsetDateTime>,
}

impl TimerInfo {
    /// Read the timer trigger from an envelope (an object, or the same JSON as a string).
    ///
    /// # Errors
    /// The envelope carries no usable `TimerInfo`.
    pub fn from_envelope(envelope: &InvocationRequest, binding: &str) -> Result<Self, EnvelopeError> {
        let value = envelope.trigger(binding)?;
        let parsed = match value {
            Value::String(s) => serde_json::from_str(&decode_host_string(s)).ok(),
            v @ Value::Object(_) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        };
        parsed.ok_or_else(|| EnvelopeError::WrongType {
            binding: binding.to_owned(),
            found: kind_of(value),
            expected: "a TimerInfo object",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_encoded_strings_are_decoded_once() {
        assert_eq!(decode_host_string("\"aaaaa\""), "aaaaa");
        assert_eq!(decode_host_string("\"{\\\"requestId\\\":1}\""), "{\"requestId\":1}");
        // The tidy form: not a JSON string literal, kept as is.
        assert_eq!(
            decode_host_string("{ message: \"Message sent\" }"),
            "{ message: \"Message sent\" }"
        );
        assert_eq!(decode_host_string("plain"), "plain");
        // A lone quote is not a JSON string: kept.
        assert_eq!(decode_host_string("\"unterminated"), "\"unterminated");
    }

    #[test]
    fn dequeue_count_is_read_from_a_string_or_a_number() {
        for meta in [
            r#"{"DequeueCount":"3"}"#,
            r#"{"DequeueCount":3}"#,
            r#"{"DequeueCount":"\"3\""}"#,
        ] {
            let env: InvocationRequest =
                serde_json::from_str(&format!(r#"{{"Data":{{"message":"x"}},"Metadata":{meta}}}"#)).unwrap();
            assert_eq!(
                QueueInvocation::from_envelope(&env, "message").unwrap().dequeue_count,
                3,
                "{meta}"
            );
        }
    }

    #[test]
    fn a_numeric_trigger_value_is_a_type_error_that_does_not_echo_it() {
        let env: InvocationRequest = serde_json::from_str(r#"{"Data":{"message":12345},"Metadata":{}}"#).unwrap();
        let err = QueueInvocation::from_envelope(&env, "message").unwrap_err();
        assert!(!err.to_string().contains("12345"));
    }

    #[test]
    fn two_unknown_bindings_are_ambiguous() {
        let env: InvocationRequest = serde_json::from_str(r#"{"Data":{"a":"1","b":"2"},"Metadata":{}}"#).unwrap();
        assert_eq!(
            QueueInvocation::from_envelope(&env, "message").unwrap_err(),
            EnvelopeError::MissingBinding("message".into())
        );
    }
}
