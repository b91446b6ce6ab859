//! Writing the result back to where the request came from: a ServiceNow work note (Table API
//! `PATCH /api/now/table/{table}/{sys_id}`), an internal Jira Service Management comment
//! (`POST /rest/servicedeskapi/request/{key}/comment` with `public: false`), or a callback signed
//! with Standard Webhooks. Credentials come from Key Vault. The note says what was done, when,
//! to which channel (masked) and until when the pass is valid; it is built from the result body,
//! which never holds the pass.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;

use super::RequestRecord;
use crate::config::IntakeSettings;
use crate::vocab::ports::SecretSource;

#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    #[error("{0}")]
    Failed(String),
}

/// Where a record's result goes, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ServiceNow,
    Jira,
    Callback,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::ServiceNow => "servicenow",
            Target::Jira => "jira",
            Target::Callback => "callback",
        }
    }
}

pub struct WriteBack {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    settings: IntakeSettings,
    /// Waits between attempts (tests shorten them).
    backoff: Vec<Duration>,
}

impl WriteBack {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>, settings: IntakeSettings) -> WriteBack {
        WriteBack {
            http,
            secrets,
            settings,
            backoff: vec![Duration::from_millis(500), Duration::from_secs(2)],
        }
    }

    /// The target for a record: its callback, else the ticket system it came from, when that
    /// system's write-back is configured **and** the request arrived from that system (its signed
    /// webhook, or a token caller listed in `SERVICENOW_CALLERS` / `JIRA_CALLERS`). Anyone else
    /// naming a ticket gets the result on the status URL and its callback only: nobody can make
    /// the service write on a record they merely name.
    pub fn target(&self, record: &RequestRecord) -> Option<Target> {
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
        match (
            record.source.system.as_str(),
            &self.settings.servicenow,
            &self.settings.jira,
        ) {
            ("servicenow", Some(sn), _) if record.source.sys_id.is_some() && from("servicenow", &sn.callers) => {
                Some(Target::ServiceNow)
            }
            ("jira", _, Some(jira)) if from("jira", &jira.callers) => Some(Target::Jira),
            _ => None,
        }
    }

    /// Send the note, retrying throttling, 5xx and network errors with backoff.
    ///
    /// # Errors
    /// Every attempt failed, or the target refused (4xx other than 408/429).
    pub async fn send(&self, target: Target, record: &RequestRecord) -> Result<(), WriteBackError> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(target, record).await;
            match result {
                Ok(()) => return Ok(()),
                Err((retryable, message)) => {
                    let Some(wait) = self.backoff.get(attempt).filter(|_| retryable) else {
                        return Err(WriteBackError::Failed(message));
                    };
                    tracing::warn!(target = target.as_str(), %message, "write-back failed; retrying");
                    tokio::time::sleep(*wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn secret(&self, name: &str) -> Result<secrecy::SecretString, (bool, String)> {
        match self.secrets.get(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err((false, format!("the Key Vault secret {name} does not exist"))),
            Err(e) => Err((true, format!("Key Vault: {e}"))),
        }
    }

    async fn send_once(&self, target: Target, record: &RequestRecord) -> Result<(), (bool, String)> {
        let note = note(record);
        let request = match target {
            Target::ServiceNow => {
                let sn = self
                    .settings
                    .servicenow
                    .as_ref()
                    .ok_or((false, "ServiceNow is not configured".into()))?;
                let password = self.secret(&sn.password_secret).await?;
                let mut url = sn.instance_url.clone();
                url.path_segments_mut()
                    .map_err(|_| (false, "bad SERVICENOW_INSTANCE_URL".to_owned()))?
                    .pop_if_empty()
                    .extend([
                        "api",
                        "now",
                        "table",
                        &sn.table,
                        record.source.sys_id.as_deref().unwrap_or_default(),
                    ]);
                url.set_query(Some("sysparm_exclude_ref_link=true"));
                self.http
                    .patch(url)
                    .basic_auth(&sn.user, Some(password.expose_secret()))
                    .json(&json!({"work_notes": note}))
            }
            Target::Jira => {
                let jira = self
                    .settings
                    .jira
                    .as_ref()
                    .ok_or((false, "Jira is not configured".into()))?;
                let token = self.secret(&jira.token_secret).await?;
                let mut url = jira.base_url.clone();
                url.path_segments_mut()
                    .map_err(|_| (false, "bad JIRA_BASE_URL".to_owned()))?
                    .pop_if_empty()
                    .extend(["rest", "servicedeskapi", "request", &record.source.ticket, "comment"]);
                self.http
                    .post(url)
                    .basic_auth(&jira.user, Some(token.expose_secret()))
                    .json(&json!({"body": note, "public": false}))
            }
            Target::Callback => {
                let name = self
                    .settings
                    .callback_secret
                    .as_deref()
                    .ok_or((false, "callbacks are not configured".to_owned()))?;
                let secret = self.secret(name).await?;
                let body = json!({
                    "type": "recovery.request.completed",
                    "timestamp": super::rfc3339(time::OffsetDateTime::now_utc()),
                    "data": record.view(),
                })
                .to_string();
                let id = format!("msg_{}_{}", record.id.simple(), record.state.as_str());
                let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
                let signature = sign_standard(secret.expose_secret(), &id, &timestamp, &body);
                self.http
                    .post(record.source.callback_url.as_deref().unwrap_or_default())
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", timestamp)
                    .header("webhook-signature", signature)
                    .body(body)
            }
        };
        let response = request
            .send()
            .await
            // Without the URL: a callback URL may carry a signature in its query (a Power
            // Automate trigger's `sig=`), and this message reaches logs and the record.
            .map_err(|e| {
                (
                    true,
                    format!("{} could not be reached: {}", target.as_str(), e.without_url()),
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
        Err((retryable, format!("{} answered {status}", target.as_str())))
    }
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with a `whsec_` (or plain base64) secret.
pub fn sign_standard(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = B64.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
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
