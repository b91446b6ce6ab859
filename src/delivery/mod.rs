//! Delivering a pass and notices out of band: SMS through Azure Communication Services (HMAC
//! request signing, access key from Key Vault) and email through Microsoft Graph `sendMail` from
//! the service mailbox. Only addresses of record are used; the caller never supplies one.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{EmailProvider, SmsProvider, TapSettings};
use crate::vocab::ports::{MailError, MailSender, SecretSource};

pub use crate::vocab::{Address, Channel};

/// A message a provider accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub provider: &'static str,
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    #[error("no {0} connector is configured")]
    NotConfigured(&'static str),
    #[error("the provider refused the message ({0})")]
    Refused(String),
    #[error("the provider could not be reached ({0})")]
    Unavailable(String),
}

/// A phone number of record as E.164 (`+1 4255550101` -> `+14255550101`).
pub fn e164(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    (number.trim_start().starts_with('+') && (8..=15).contains(&digits.len())).then(|| format!("+{digits}"))
}

pub struct Deliverer {
    http: reqwest::Client,
    mail: Arc<dyn MailSender>,
    secrets: Arc<dyn SecretSource>,
    settings: TapSettings,
}

impl Deliverer {
    pub fn new(
        http: reqwest::Client,
        mail: Arc<dyn MailSender>,
        secrets: Arc<dyn SecretSource>,
        settings: TapSettings,
    ) -> Deliverer {
        Deliverer {
            http,
            mail,
            secrets,
            settings,
        }
    }

    /// Send `text` (which may hold a pass) to `address`. `idempotency` makes a retried send of the
    /// same message a no-op at providers that support it.
    ///
    /// # Errors
    /// The channel is not configured, or the provider refused or failed.
    pub async fn send(
        &self,
        address: &Address,
        subject: &str,
        text: &SecretString,
        idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        match address.channel {
            Channel::Sms => match self.settings.sms_provider {
                Some(SmsProvider::Twilio) => self.send_twilio(&address.to, text).await,
                Some(SmsProvider::Acs) => self.send_sms(&address.to, text, idempotency).await,
                None => Err(DeliveryError::NotConfigured("SMS (SMS_PROVIDER)")),
            },
            Channel::Email | Channel::Manager => match self.settings.email_provider {
                EmailProvider::Acs => self.send_acs_email(&address.to, subject, text, idempotency).await,
                EmailProvider::Graph => self.send_mail(&address.to, subject, text).await,
            },
        }
    }

    /// Check that `channel` can deliver now through the connector that carries it (configured,
    /// and its secret readable), before a pass is created.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    pub async fn ready(&self, channel: Channel) -> Result<(), DeliveryError> {
        match channel {
            Channel::Sms => match self.settings.sms_provider {
                Some(SmsProvider::Acs) => {
                    let acs = self
                        .settings
                        .acs
                        .as_ref()
                        .ok_or(DeliveryError::NotConfigured("SMS (ACS_ENDPOINT)"))?;
                    acs.sms_from
                        .as_ref()
                        .ok_or(DeliveryError::NotConfigured("SMS (ACS_SMS_FROM)"))?;
                    self.secret(&acs.access_key_secret).await.map(|_| ())
                }
                Some(SmsProvider::Twilio) => {
                    let twilio = self
                        .settings
                        .twilio
                        .as_ref()
                        .ok_or(DeliveryError::NotConfigured("SMS (TWILIO_ACCOUNT_SID)"))?;
                    self.secret(&twilio.auth_token_secret).await.map(|_| ())
                }
                None => Err(DeliveryError::NotConfigured("SMS (SMS_PROVIDER)")),
            },
            Channel::Email | Channel::Manager => self.ready_notices().await,
        }
    }

    /// Check that email (passes by email, and every notice) can go out through `EMAIL_PROVIDER`.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    pub async fn ready_notices(&self) -> Result<(), DeliveryError> {
        match self.settings.email_provider {
            EmailProvider::Graph => self
                .settings
                .mail_sender
                .as_ref()
                .map(|_| ())
                .ok_or(DeliveryError::NotConfigured("email (MAIL_SENDER)")),
            EmailProvider::Acs => {
                let acs = self
                    .settings
                    .acs
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured("email (ACS_ENDPOINT)"))?;
                acs.email_from
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured("email (ACS_EMAIL_FROM)"))?;
                self.secret(&acs.access_key_secret).await.map(|_| ())
            }
        }
    }

    /// A notice (no pass in it) through `EMAIL_PROVIDER`: Graph `sendMail`, or ACS Email.
    ///
    /// # Errors
    /// The provider is not configured, refused or failed.
    pub async fn send_notice(&self, to: &str, subject: &str, text: &SecretString) -> Result<Sent, DeliveryError> {
        match self.settings.email_provider {
            EmailProvider::Graph => self.send_mail(to, subject, text).await,
            EmailProvider::Acs => {
                let operation = uuid::Uuid::new_v4().to_string();
                self.send_acs_email(to, subject, text, &operation).await
            }
        }
    }

    /// Email through Graph `sendMail` from the service mailbox, no copy in Sent Items.
    ///
    /// # Errors
    /// No mailbox is configured, or Graph refused or failed.
    pub async fn send_mail(&self, to: &str, subject: &str, text: &SecretString) -> Result<Sent, DeliveryError> {
        let sender = self
            .settings
            .mail_sender
            .as_deref()
            .ok_or(DeliveryError::NotConfigured("email (MAIL_SENDER)"))?;
        match self.mail.send_text_mail(sender, to, subject, text).await {
            Ok(()) => Ok(Sent {
                provider: "graph",
                message_id: None,
            }),
            Err(MailError::Refused(e)) => Err(DeliveryError::Refused(e)),
            Err(MailError::Unavailable(e)) => Err(DeliveryError::Unavailable(e)),
        }
    }

    async fn secret(&self, name: &str) -> Result<SecretString, DeliveryError> {
        self.secrets
            .get(name)
            .await
            .map_err(|e| DeliveryError::Unavailable(e.to_string()))?
            .ok_or(DeliveryError::NotConfigured(
                "a connector (its Key Vault secret does not exist)",
            ))
    }

    /// Email through Azure Communication Services Email; `idempotency` is the operation id, so a
    /// retried send is not sent twice. https://learn.microsoft.com/rest/api/communication/dataplane/email/send
    async fn send_acs_email(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
        idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        let acs = self
            .settings
            .acs
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("email (ACS_ENDPOINT)"))?;
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
            .acs_post(acs, &["emails:send"], "2023-03-31", &body, Some(idempotency))
            .await?;
        let v: serde_json::Value = response.json().await.unwrap_or_default();
        Ok(Sent {
            provider: "acs",
            message_id: v["id"].as_str().map(str::to_owned),
        })
    }

    /// POST a signed request to ACS. A 401 re-reads the access key once (it may have been
    /// rotated); any other non-2xx is an error.
    async fn acs_post(
        &self,
        acs: &crate::config::AcsSettings,
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
            let key = self.secret(&acs.access_key_secret).await?;
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

    /// SMS through Twilio (HTTP Basic with the account SID and the auth token from Key Vault).
    /// https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
    async fn send_twilio(&self, to: &str, text: &SecretString) -> Result<Sent, DeliveryError> {
        let twilio = self
            .settings
            .twilio
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("SMS (TWILIO_ACCOUNT_SID)"))?;
        let to = e164(to).ok_or_else(|| DeliveryError::Refused("the phone number of record is not in E.164".into()))?;
        let mut url = twilio.endpoint.clone();
        url.path_segments_mut()
            .map_err(|_| DeliveryError::NotConfigured("SMS (TWILIO_ENDPOINT)"))?
            .pop_if_empty()
            .extend(["2010-04-01", "Accounts", twilio.account_sid.as_str(), "Messages.json"]);
        for attempt in 0..2 {
            let token = self.secret(&twilio.auth_token_secret).await?;
            let form = [
                ("To", to.as_str()),
                ("From", twilio.from.as_str()),
                ("Body", text.expose_secret()),
            ];
            let response = self
                .http
                .post(url.clone())
                .basic_auth(&twilio.account_sid, Some(token.expose_secret()))
                .form(&form)
                .send()
                .await
                .map_err(|e| DeliveryError::Unavailable(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                self.secrets.invalidate(&twilio.auth_token_secret).await;
                continue;
            }
            return match status {
                200..=299 => {
                    let v: serde_json::Value = response.json().await.unwrap_or_default();
                    Ok(Sent {
                        provider: "twilio",
                        message_id: v["sid"].as_str().map(str::to_owned),
                    })
                }
                400..=499 => {
                    let v: serde_json::Value = response.json().await.unwrap_or_default();
                    Err(DeliveryError::Refused(format!(
                        "Twilio answered {status} (code {})",
                        v["code"]
                    )))
                }
                _ => Err(DeliveryError::Unavailable(format!("Twilio answered {status}"))),
            };
        }
        Err(DeliveryError::Refused("Twilio refused the auth token twice".into()))
    }

    /// SMS through Azure Communication Services, with a repeatability id so a retried send is
    /// not sent twice. https://learn.microsoft.com/rest/api/communication/sms/send
    async fn send_sms(&self, to: &str, text: &SecretString, idempotency: &str) -> Result<Sent, DeliveryError> {
        let acs = self
            .settings
            .acs
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("SMS (ACS_ENDPOINT)"))?;
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
        let response = self.acs_post(acs, &["sms"], "2021-03-07", &body, None).await?;
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

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn numbers_of_record_become_e164() {
        assert_eq!(e164("+1 4255550101").as_deref(), Some("+14255550101"));
        assert_eq!(e164("+44 (20) 7946-0958").as_deref(), Some("+442079460958"));
        assert_eq!(e164("4255550101"), None, "no country code");
        assert_eq!(e164("+1 42"), None);
    }
}
