//! SMS through Twilio (`SMS_PROVIDER=twilio`): HTTP Basic with the account SID and the auth token
//! from Key Vault; a 401 re-reads the token once.
//! https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{DeliveryError, Provider, Sent, e164, read_secret};
use crate::config::TwilioSettings;
use crate::vocab::ports::SecretSource;

pub struct Twilio {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    settings: Option<TwilioSettings>,
}

impl Twilio {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>, settings: Option<TwilioSettings>) -> Twilio {
        Twilio {
            http,
            secrets,
            settings,
        }
    }

    fn settings(&self) -> Result<&TwilioSettings, DeliveryError> {
        self.settings
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("SMS (TWILIO_ACCOUNT_SID)"))
    }
}

#[async_trait]
impl Provider for Twilio {
    async fn ready(&self) -> Result<(), DeliveryError> {
        let twilio = self.settings()?;
        read_secret(self.secrets.as_ref(), &twilio.auth_token_secret)
            .await
            .map(|_| ())
    }

    async fn send(
        &self,
        to: &str,
        _subject: &str,
        text: &SecretString,
        _idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        let twilio = self.settings()?;
        let to = e164(to).ok_or_else(|| DeliveryError::Refused("the phone number of record is not in E.164".into()))?;
        let mut url = twilio.endpoint.clone();
        url.path_segments_mut()
            .map_err(|_| DeliveryError::NotConfigured("SMS (TWILIO_ENDPOINT)"))?
            .pop_if_empty()
            .extend(["2010-04-01", "Accounts", twilio.account_sid.as_str(), "Messages.json"]);
        for attempt in 0..2 {
            let token = read_secret(self.secrets.as_ref(), &twilio.auth_token_secret).await?;
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
}
