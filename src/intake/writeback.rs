//! Writing the result back to where the request came from: which system may receive it (the
//! rule), the note it gets, and the hand-over to the `itsm` clients. The note says what was done,
//! when, to which channel (masked) and until when the pass is valid; it is built from the result
//! body, which never holds the pass.

use serde_json::Value;

use super::RequestRecord;
use crate::config::IntakeSettings;
use crate::itsm::Outgoing;
pub use crate::itsm::{ItsmClient, Target, WriteBackError, sign_standard};

pub struct WriteBack {
    client: ItsmClient,
    settings: IntakeSettings,
}

impl WriteBack {
    pub fn new(client: ItsmClient, settings: IntakeSettings) -> WriteBack {
        WriteBack { client, settings }
    }

    /// The target for a record (`target`, with this deployment's settings).
    pub fn target(&self, record: &RequestRecord) -> Option<Target> {
        target(&self.settings, record)
    }

    /// Send the record's result to `target`, retrying throttling, 5xx and network errors.
    ///
    /// # Errors
    /// Every attempt failed, or the target refused.
    pub async fn send(&self, target: Target, record: &RequestRecord) -> Result<(), WriteBackError> {
        self.client.send(&outgoing(target, record)).await
    }
}

/// What goes to `target` for a record: the note, or the callback with the record's view.
fn outgoing(target: Target, record: &RequestRecord) -> Outgoing {
    match target {
        Target::ServiceNow => Outgoing::ServiceNowNote {
            sys_id: record.source.sys_id.clone().unwrap_or_default(),
            note: note(record),
        },
        Target::Jira => Outgoing::JiraComment {
            issue: record.source.ticket.clone(),
            note: note(record),
        },
        Target::Callback => Outgoing::Callback {
            url: record.source.callback_url.clone().unwrap_or_default(),
            id: format!("msg_{}_{}", record.id.simple(), record.state.as_str()),
            data: record.view(),
        },
    }
}

/// The target for a record: its callback, else the ticket system it came from, when that
/// system's write-back is configured **and** the request arrived from that system (its signed
/// webhook, or a token caller listed in `SERVICENOW_CALLERS` / `JIRA_CALLERS`). Anyone else
/// naming a ticket gets the result on the status URL and its callback only: nobody can make
/// the service write on a record they merely name.
pub fn target(settings: &IntakeSettings, record: &RequestRecord) -> Option<Target> {
    if record.source.callback_url.is_some() {
        return Some(Target::Callback);
    }
    let from = |system: &str, callers: &[uuid::Uuid]| {
        let caller = &record.caller;
        caller.via.eq_ignore_ascii_case(&format!("webhook:{system}"))
            || (caller.via == "token"
                && caller
                    .object_id
                    .as_deref()
                    .and_then(|o| uuid::Uuid::parse_str(o).ok())
                    .is_some_and(|o| callers.contains(&o)))
    };
    match (record.source.system.as_str(), &settings.servicenow, &settings.jira) {
        ("servicenow", Some(sn), _) if record.source.sys_id.is_some() && from("servicenow", &sn.callers) => {
            Some(Target::ServiceNow)
        }
        ("jira", _, Some(jira)) if from("jira", &jira.callers) => Some(Target::Jira),
        _ => None,
    }
}

/// The ticket note: what was done, when, where to (masked), until when. Built only from the
/// result body, which never holds a pass.
pub fn note(record: &RequestRecord) -> String {
    let result = record.result.clone().unwrap_or(Value::Null);
    let when = record.finished_at.map(super::rfc3339).unwrap_or_default();
    let head = format!(
        "mfa-recovery: request {} ({} for {})",
        record.id,
        record.action.as_str(),
        record.user
    );
    let error = |r: &Value| {
        format!(
            "{} ({})",
            r["error"]["message"].as_str().unwrap_or("no detail"),
            r["error"]["code"].as_str().unwrap_or("error")
        )
    };
    let tap_line = |t: &Value| {
        if t.get("error").is_some() {
            return format!("No Temporary Access Pass: {}.", error(t));
        }
        format!(
            "Temporary Access Pass issued and sent by {} to {}; {}; valid until {} UTC. The pass itself is never recorded.",
            t["delivery"]["channel"].as_str().unwrap_or("?"),
            t["delivery"]["to"].as_str().unwrap_or("?"),
            if t["usableOnce"].as_bool().unwrap_or(true) {
                "one use"
            } else {
                "multi-use"
            },
            t["expiresAt"].as_str().unwrap_or("?")
        )
    };
    let body = match record.state {
        super::State::Succeeded => match record.action {
            super::Action::Tap => tap_line(&result),
            super::Action::Reset | super::Action::ResetTap => {
                let removed: Vec<String> = result["removed"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|m| m["label"].as_str().unwrap_or("method").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut text = format!(
                    "MFA re-registration required: removed {}{}.",
                    if removed.is_empty() {
                        "nothing (no method in scope)".to_owned()
                    } else {
                        removed.join(", ")
                    },
                    if result["sessionsRevoked"].as_bool() == Some(true) {
                        "; sign-in sessions revoked"
                    } else {
                        ""
                    }
                );
                if let Some(t) = result.get("tap") {
                    text.push(' ');
                    text.push_str(&tap_line(t));
                }
                text
            }
        },
        super::State::Refused => format!("Refused, nothing was changed: {}.", error(&result)),
        _ => format!("Failed: {}.", error(&result)),
    };
    let notified = result["notified"]
        .as_array()
        .or_else(|| result["tap"]["notified"].as_array())
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .filter(|s| !s.is_empty())
        .map(|s| format!(" The user was notified at {s}."))
        .unwrap_or_default();
    format!("{head} {} at {when} UTC. {body}{notified}", record.state.as_str())
}
