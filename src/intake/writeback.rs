//! Writing the result back to where the request came from: which system may receive it (the
//! rule), the note it gets, and the hand-over to the `itsm` clients. The note says what was done,
//! when, to which channel (masked) and until when the pass is valid; it is built from the result
//! body, which never holds the pass.

use serde_json::Value;

use super::RequestRecord;
use crate::config::IntakeSettings;
use crate::itsm::Outgoing;
use crate::itsm::{ItsmClient, Target, WriteBackError};

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
    pub async fn send(
        &self,
        target: Target,
        record: &RequestRecord,
        answers: &dyn crate::recovery::Answers,
    ) -> Result<(), WriteBackError> {
        self.client.send(&outgoing(target, record, answers)).await
    }

    /// Send a signed `event` about a request to a configured webhook (best effort: logged, not
    /// retried beyond the client's own attempts). The URL is never logged.
    pub async fn event(&self, url: &url::Url, event: &'static str, id: String, data: impl serde::Serialize) -> bool {
        let message = Outgoing::Event {
            url: url.to_string(),
            id,
            event,
            data: serde_json::to_value(data).expect("an event serializes"),
        };
        match self.client.send(&message).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, event, "a webhook could not be told");
                false
            }
        }
    }
}

/// What goes to `target` for a record: the note, or the callback with the record's view.
fn outgoing(target: Target, record: &RequestRecord, answers: &dyn crate::recovery::Answers) -> Outgoing {
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
            data: serde_json::to_value(record.view(answers)).expect("a view serializes"),
        },
        // Events are sent by `WriteBack::event`, never as a record's write-back.
        Target::Webhook => Outgoing::Callback {
            url: String::new(),
            id: String::new(),
            data: Value::Null,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> IntakeSettings {
        let vars: std::collections::HashMap<String, String> = [
            ("AUTH_TENANT_ID", "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10"),
            ("AUTH_AUDIENCE", "api://mfa-recovery"),
            ("AUDIT_DIR", "/tmp/mfa-recovery-audit"),
            ("KEY_VAULT_URI", "https://kv.vault.azure.net/"),
            ("SERVICENOW_INSTANCE_URL", "https://contoso.service-now.com"),
            ("SERVICENOW_USER", "svc"),
            ("SERVICENOW_PASSWORD_SECRET", "sn"),
            ("SERVICENOW_CALLERS", "a0000000-0000-4000-8000-000000000001"),
            ("JIRA_BASE_URL", "https://contoso.atlassian.net"),
            ("JIRA_USER", "svc@contoso.test"),
            ("JIRA_API_TOKEN_SECRET", "jira"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        crate::config::Settings::from_map(&vars).unwrap().intake
    }

    fn record(
        system: &str,
        via: &str,
        object_id: Option<&str>,
        sys_id: Option<&str>,
        callback: Option<&str>,
    ) -> RequestRecord {
        serde_json::from_value(json!({
            "id": "c0000000-0000-4000-8000-000000000001", "idempotencyKey": "k", "fingerprint": "f",
            "action": "tap", "user": "adele.vance@contoso.test",
            "body": {}, "state": "succeeded", "createdAt": "2026-11-28T10:00:00Z", "updatedAt": "2026-11-28T10:01:00Z",
            "attempts": 1, "writeBack": {"state": "none"},
            "caller": {"via": via, "objectId": object_id},
            "source": {"system": system, "ticket": "INC0010001", "sysId": sys_id, "callbackUrl": callback},
        }))
        .unwrap()
    }

    #[test]
    fn a_note_goes_only_to_the_system_the_request_came_from() {
        let s = settings();
        let sys = Some("9d385017c611228701d22104cc95c371");
        // The system's own signed webhook, or its mapped caller.
        assert_eq!(
            target(&s, &record("servicenow", "webhook:servicenow", None, sys, None)),
            Some(Target::ServiceNow)
        );
        let mapped = record(
            "servicenow",
            "token",
            Some("a0000000-0000-4000-8000-000000000001"),
            sys,
            None,
        );
        assert_eq!(target(&s, &mapped), Some(Target::ServiceNow));
        assert_eq!(
            target(&s, &record("jira", "webhook:jira", None, None, None)),
            Some(Target::Jira)
        );
        // Anyone else naming a ticket: no write-back.
        let other = record(
            "servicenow",
            "token",
            Some("a0000000-0000-4000-8000-000000000002"),
            sys,
            None,
        );
        assert_eq!(target(&s, &other), None);
        assert_eq!(
            target(&s, &record("jira", "webhook:servicenow", None, None, None)),
            None
        );
        // ServiceNow needs the record's sys_id.
        assert_eq!(
            target(&s, &record("servicenow", "webhook:servicenow", None, None, None)),
            None
        );
        // A callback wins.
        let cb = record(
            "jira",
            "token",
            None,
            None,
            Some("https://prod.westeurope.logic.azure.com/x"),
        );
        assert_eq!(target(&s, &cb), Some(Target::Callback));
    }
}
