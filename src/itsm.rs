//! The ITSM and callback clients: a ServiceNow work note (Table API
//! `PATCH /api/now/table/{table}/{sys_id}`), an internal Jira Service Management comment
//! (`POST /rest/servicedeskapi/request/{key}/comment` with `public: false`), or a callback signed
//! with Standard Webhooks. Credentials come from a `SecretSource` (Key Vault). An adapter: it
//! sends what it is given and knows nothing of requests; `intake::writeback` decides what to
//! send where.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;

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
    /// An approval or security-alert webhook (`APPROVAL_WEBHOOK`, `SECURITY_ALERT_WEBHOOK`).
    Webhook,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::ServiceNow => "servicenow",
            Target::Jira => "jira",
            Target::Callback => "callback",
            Target::Webhook => "webhook",
        }
    }
}

/// What to send, and where.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A work note on the ServiceNow record `sys_id`.
    ServiceNowNote { sys_id: String, note: String },
    /// An internal comment on the Jira issue `issue`.
    JiraComment { issue: String, note: String },
    /// A signed callback: `data` under `type: recovery.request.completed`, webhook id `id`.
    Callback { url: String, id: String, data: Value },
    /// A signed event (`recovery.approval.requested`, `recovery.privileged.attempt`) to a
    /// configured webhook; its URL may carry a signature and is never logged.
    Event {
        url: String,
        id: String,
        event: &'static str,
        data: Value,
    },
}

impl Outgoing {
    pub fn target(&self) -> Target {
        match self {
            Outgoing::ServiceNowNote { .. } => Target::ServiceNow,
            Outgoing::JiraComment { .. } => Target::Jira,
            Outgoing::Callback { .. } => Target::Callback,
            Outgoing::Event { .. } => Target::Webhook,
        }
    }
}

/// The clients, with their credentials' names and the waits between attempts.
pub struct ItsmClient {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    settings: IntakeSettings,
    /// Waits between attempts (tests shorten them).
    backoff: Vec<Duration>,
}

impl ItsmClient {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>, settings: IntakeSettings) -> ItsmClient {
        ItsmClient {
            http,
            secrets,
            settings,
            backoff: vec![Duration::from_millis(500), Duration::from_secs(2)],
        }
    }

    /// Send the note, retrying throttling, 5xx and network errors with backoff.
    ///
    /// # Errors
    /// Every attempt failed, or the target refused (4xx other than 408/429).
    pub async fn send(&self, message: &Outgoing) -> Result<(), WriteBackError> {
        let target = message.target();
        let mut attempt = 0;
        loop {
            let result = self.send_once(message).await;
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

    /// A Standard Webhooks delivery of `data` as `event`, signed with `CALLBACK_SIGNING_SECRET`.
    async fn signed(
        &self,
        url: &str,
        id: &str,
        event: &str,
        data: &Value,
    ) -> Result<reqwest::RequestBuilder, (bool, String)> {
        let name = self.settings.callback_secret.as_deref().ok_or((
            false,
            "signed webhooks are not configured (CALLBACK_SIGNING_SECRET)".to_owned(),
        ))?;
        let secret = self.secret(name).await?;
        let body = json!({
            "type": event,
            "timestamp": rfc3339(time::OffsetDateTime::now_utc()),
            "data": data,
        })
        .to_string();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let signature = sign_standard(secret.expose_secret(), id, &timestamp, &body);
        Ok(self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(body))
    }

    async fn send_once(&self, message: &Outgoing) -> Result<(), (bool, String)> {
        let target = message.target();
        let request = match message {
            Outgoing::ServiceNowNote { sys_id, note } => {
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
                    .extend(["api", "now", "table", &sn.table, sys_id]);
                url.set_query(Some("sysparm_exclude_ref_link=true"));
                self.http
                    .patch(url)
                    .basic_auth(&sn.user, Some(password.expose_secret()))
                    .json(&json!({"work_notes": note}))
            }
            Outgoing::JiraComment { issue, note } => {
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
                    .extend(["rest", "servicedeskapi", "request", issue, "comment"]);
                self.http
                    .post(url)
                    .basic_auth(&jira.user, Some(token.expose_secret()))
                    .json(&json!({"body": note, "public": false}))
            }
            Outgoing::Callback { url, id, data } => self.signed(url, id, "recovery.request.completed", data).await?,
            Outgoing::Event { url, id, event, data } => self.signed(url, id, event, data).await?,
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
pub(crate) fn sign_standard(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = B64.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// RFC 3339 to the second, UTC.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
