//! Webhook senders that cannot get tokens (ServiceNow, Jira) sign their deliveries instead.
//!
//! - Standard Webhooks (https://www.standardwebhooks.com): HMAC-SHA256 over
//!   `{webhook-id}.{webhook-timestamp}.{body}`, sent as `webhook-signature: v1,<base64>` (several
//!   space-separated signatures during a rotation); the timestamp must be within 5 minutes.
//! - Jira: `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 over the body. Jira signs no timestamp,
//!   so its delivery id (`X-Atlassian-Webhook-Identifier`) is the replay defence.
//!
//! Signing secrets are Key Vault secrets, read with the managed identity and cached for five
//! minutes; a sender may have up to three at once, so a secret is rotated without downtime.
//! Signatures are compared in constant time. A repeated delivery (a sender's retry, or a replay
//! of a captured one) is not refused here: the intake's idempotency record, shared by every
//! instance, answers it with the request it already holds, so it never acts twice.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{AuthError, Caller, source_ip};
use crate::config::{WebhookScheme, WebhookSender};

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now.
pub(crate) const TOLERANCE: Duration = Duration::from_secs(5 * 60);

use crate::vocab::ports::SecretSource;
use crate::vocab::ports::SecretsUnavailable;

pub struct WebhookVerifier {
    senders: Vec<WebhookSender>,
    secrets: Arc<dyn SecretSource>,
}

impl WebhookVerifier {
    pub fn new(senders: Vec<WebhookSender>, secrets: Arc<dyn SecretSource>) -> WebhookVerifier {
        WebhookVerifier { senders, secrets }
    }

    /// Whether the request carries a webhook signature of a configured scheme.
    pub(crate) fn is_signed(&self, headers: &axum::http::HeaderMap) -> bool {
        !self.senders.is_empty()
            && (headers.contains_key("webhook-signature") || headers.contains_key("x-hub-signature"))
    }

    /// Verify a signed delivery and return its sender as the caller.
    ///
    /// # Errors
    /// `Ok(Err(AuthError))` when the signature, timestamp or delivery id is not acceptable;
    /// `Err(SecretsUnavailable)` when Key Vault could not be read.
    pub async fn verify(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Result<Caller, AuthError>, SecretsUnavailable> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (scheme, delivery_id) = if header("webhook-signature").is_some() {
            (WebhookScheme::StandardWebhooks, header("webhook-id"))
        } else {
            (WebhookScheme::Jira, header("x-atlassian-webhook-identifier"))
        };
        if scheme == WebhookScheme::StandardWebhooks {
            let Some(ts) = header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
                return Ok(Err(AuthError::Invalid("no webhook-timestamp".into())));
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if (now - ts).unsigned_abs() > TOLERANCE.as_secs() {
                return Ok(Err(AuthError::Invalid(
                    "webhook-timestamp outside the 5-minute window".into(),
                )));
            }
            if delivery_id.is_none() {
                return Ok(Err(AuthError::Invalid("no webhook-id".into())));
            }
        }
        for sender in self.senders.iter().filter(|s| s.scheme == scheme) {
            for secret_name in &sender.secrets {
                let Some(secret) = self.secrets.get(secret_name).await? else {
                    continue;
                };
                if signature_matches(scheme, headers, body, &secret) {
                    return Ok(Ok(Caller {
                        via: format!("webhook:{}", sender.name),
                        app_id: None,
                        object_id: None,
                        name: Some(format!("webhook:{}", sender.name)),
                        source_ip: source_ip(headers),
                        roles: sender.roles.clone(),
                        user: false,
                    }));
                }
            }
        }
        Ok(Err(AuthError::Invalid(
            "no configured sender's secret matches the signature".into(),
        )))
    }
}

/// The HMAC key of a Standard Webhooks secret: `whsec_<base64>` or plain base64; anything else
/// is used as its bytes.
fn standard_key(secret: &str) -> Vec<u8> {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec())
}

fn signature_matches(
    scheme: WebhookScheme,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    secret: &SecretString,
) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match scheme {
        WebhookScheme::StandardWebhooks => {
            let key = standard_key(secret.expose_secret());
            let signed = [
                header("webhook-id").as_bytes(),
                b".",
                header("webhook-timestamp").as_bytes(),
                b".",
                body,
            ]
            .concat();
            header("webhook-signature").split_whitespace().any(|candidate| {
                let Some(sig) = candidate.strip_prefix("v1,").and_then(|b| B64.decode(b).ok()) else {
                    return false;
                };
                let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
                mac.update(&signed);
                mac.verify_slice(&sig).is_ok()
            })
        }
        WebhookScheme::Jira => {
            let Some(sig) = header("x-hub-signature")
                .strip_prefix("sha256=")
                .and_then(|h| hex::decode(h).ok())
            else {
                return false;
            };
            let mut mac =
                HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector_verifies() {
        // The example from the Standard Webhooks specification.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap());
        headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
        headers.insert(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse().unwrap(),
        );
        let body = br#"{"test": 2432232314}"#;
        assert!(signature_matches(
            WebhookScheme::StandardWebhooks,
            &headers,
            body,
            &secret
        ));
        assert!(!signature_matches(
            WebhookScheme::StandardWebhooks,
            &headers,
            br#"{"test": 1}"#,
            &secret
        ));
    }
}
