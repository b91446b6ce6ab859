//! Azure Communication Services: SMS (with a repeatability id, so a retried send is not sent
//! twice) and Email (the operation id does the same). Requests are HMAC-signed with the access
//! key from Key Vault; a 401 re-reads the key once (it may have been rotated).
//! https://learn.microsoft.com/rest/api/communication/sms/send
//! https://learn.microsoft.com/rest/api/communication/dataplane/email/send

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{DeliveryError, Provider, Sent, e164, read_secret};
use crate::config::AcsSettings;
use crate::vocab::ports::SecretSource;

/// The ACS resource, shared by its SMS and Email providers.
struct Acs {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    settings: Option<AcsSettings>,
}

impl Acs {
    fn settings(&self, what: &'static str) -> Result<&AcsSettings, DeliveryError> {
        self.settings.as_ref().ok_or(DeliveryError::NotConfigured(what))
    }

    /// POST a signed request to ACS. A 401 re-reads the access key once; any other non-2xx is an
    /// error.
    async fn post(
        &self,
        acs: &AcsSettings,
        path: &[&str],
        api_version: &str,
        body: &str,
        operation_id: Option<&str>,
    ) -> Result<reqwest::Response, DeliveryError> {
        let mut url = acs.endpoint.clone();
        url.path_segments_mut()
            .map_err(|_| DeliveryError::NotConfigured("ACS (ACS_ENDPOINT)"))?
            .pop_if_empty()
            .extend(path);
        url.query_pairs_mut().append_pair("api-version", api_version);
        for attempt in 0..2 {
            let key = read_secret(self.secrets.as_ref(), &acs.access_key_secret).await?;
            let mut request = self.http.post(url.clone());
            if let Some(id) = operation_id {
                request = request.header("operation-id", id);
            }
            let request = sign_acs(request, &url, body, &key)
                .map_err(|_| DeliveryError::NotConfigured("ACS (the access key is not base64)"))?;
            let response = request
                .send()
                .await
                .map_err(|e| DeliveryError::Unavailable(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                self.secrets.invalidate(&acs.access_key_secret).await;
                continue;
            }
            return match status {
                200..=299 => Ok(response),
                400..=499 => Err(DeliveryError::Refused(format!("ACS answered {status}"))),
                _ => Err(DeliveryError::Unavailable(format!("ACS answered {status}"))),
            };
        }
        Err(DeliveryError::Refused("ACS refused the access key twice".into()))
    }
}

/// SMS through ACS (`SMS_PROVIDER=acs`).
pub struct AcsSms(Acs);

impl AcsSms {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>, settings: Option<AcsSettings>) -> AcsSms {
        AcsSms(Acs {
            http,
            secrets,
            settings,
        })
    }
}

#[async_trait]
impl Provider for AcsSms {
    async fn ready(&self) -> Result<(), DeliveryError> {
        let acs = self.0.settings("SMS (ACS_ENDPOINT)")?;
        acs.sms_from
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("SMS (ACS_SMS_FROM)"))?;
        read_secret(self.0.secrets.as_ref(), &acs.access_key_secret)
            .await
            .map(|_| ())
    }

    async fn send(
        &self,
        to: &str,
        _subject: &str,
        text: &SecretString,
        idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        let acs = self.0.settings("SMS (ACS_ENDPOINT)")?;
        let from = acs
            .sms_from
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("SMS (ACS_SMS_FROM)"))?;
        let to = e164(to).ok_or_else(|| DeliveryError::Refused("the phone number of record is not in E.164".into()))?;
        let body = json!({
            "from": from,
            "smsRecipients": [{"to": to, "repeatabilityRequestId": idempotency, "repeatabilityFirstSent": httpdate(time::OffsetDateTime::now_utc())}],
            "message": text.expose_secret(),
            "smsSendOptions": {"enableDeliveryReport": false},
        })
        .to_string();
        let response = self.0.post(acs, &["sms"], "2021-03-07", &body, None).await?;
        let result: serde_json::Value = response.json().await.unwrap_or_default();
        let item = &result["value"][0];
        if item["successful"].as_bool() != Some(true) {
            return Err(DeliveryError::Refused(format!(
                "ACS did not accept the recipient ({})",
                item["httpStatusCode"]
            )));
        }
        Ok(Sent {
            provider: "acs",
            message_id: item["messageId"].as_str().map(str::to_owned),
        })
    }
}

/// Email through ACS Email (`EMAIL_PROVIDER=acs`).
pub struct AcsEmail(Acs);

impl AcsEmail {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>, settings: Option<AcsSettings>) -> AcsEmail {
        AcsEmail(Acs {
            http,
            secrets,
            settings,
        })
    }
}

#[async_trait]
impl Provider for AcsEmail {
    async fn ready(&self) -> Result<(), DeliveryError> {
        let acs = self.0.settings("email (ACS_ENDPOINT)")?;
        acs.email_from
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("email (ACS_EMAIL_FROM)"))?;
        read_secret(self.0.secrets.as_ref(), &acs.access_key_secret)
            .await
            .map(|_| ())
    }

    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
        idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        let acs = self.0.settings("email (ACS_ENDPOINT)")?;
        let from = acs
            .email_from
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("email (ACS_EMAIL_FROM)"))?;
        let body = json!({
            "senderAddress": from,
            "recipients": {"to": [{"address": to}]},
            "content": {"subject": subject, "plainText": text.expose_secret()},
        })
        .to_string();
        let response = self
            .0
            .post(acs, &["emails:send"], "2023-03-31", &body, Some(idempotency))
            .await?;
        let v: serde_json::Value = response.json().await.unwrap_or_default();
        Ok(Sent {
            provider: "acs",
            message_id: v["id"].as_str().map(str::to_owned),
        })
    }
}

fn httpdate(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC).format(&fmt).expect("formattable")
}

/// Sign a request the way ACS requires: HMAC-SHA256 over
/// `"POST\n{path?query}\n{x-ms-date};{host};{x-ms-content-sha256}"` with the base64 access key.
/// https://learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial
fn sign_acs(
    request: reqwest::RequestBuilder,
    url: &url::Url,
    body: &str,
    key: &SecretString,
) -> Result<reqwest::RequestBuilder, base64::DecodeError> {
    let key = B64.decode(key.expose_secret())?;
    let date = httpdate(time::OffsetDateTime::now_utc());
    let hash = B64.encode(Sha256::digest(body.as_bytes()));
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let to_sign = format!("POST\n{path_and_query}\n{date};{host};{hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    let signature = B64.encode(mac.finalize().into_bytes());
    Ok(request
        .header("x-ms-date", date)
        .header("x-ms-content-sha256", hash)
        .header(
            "authorization",
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
        )
        .header("content-type", "application/json")
        .body(body.to_owned()))
}
