//! Delivering a pass and notices out of band, to addresses of record only (the caller never
//! supplies one). One provider per connector behind `Provider`: ACS SMS and ACS Email (`acs`),
//! Twilio SMS (`twilio`), Graph mail from the service mailbox (`graph_mail`). `Deliverer` picks
//! the provider each channel uses from the settings; a new channel is one file and one arm here.

mod acs;
mod graph_mail;
mod twilio;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::{EmailProvider, SmsProvider, TapSettings};
use crate::vocab::ports::{MailSender, SecretSource};

use crate::vocab::{Address, Channel};
pub use acs::{AcsEmail, AcsSms};
pub use graph_mail::GraphMail;
pub use twilio::Twilio;

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
pub(crate) fn e164(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    (number.trim_start().starts_with('+') && (8..=15).contains(&digits.len())).then(|| format!("+{digits}"))
}

/// One connector: a way to send a text to an address.
#[async_trait]
pub(crate) trait Provider: Send + Sync {
    /// Configured, and its credential readable now: checked before a pass exists.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    async fn ready(&self) -> Result<(), DeliveryError>;
    /// Send `text` (which may hold a pass). `idempotency` makes a retried send a no-op where the
    /// provider supports it.
    ///
    /// # Errors
    /// The provider refused or failed.
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
        idempotency: &str,
    ) -> Result<Sent, DeliveryError>;
}

/// A connector's secret from Key Vault; a secret the vault does not have is "not configured".
async fn read_secret(secrets: &dyn SecretSource, name: &str) -> Result<SecretString, DeliveryError> {
    secrets
        .get(name)
        .await
        .map_err(|e| DeliveryError::Unavailable(e.to_string()))?
        .ok_or(DeliveryError::NotConfigured(
            "a connector (its Key Vault secret does not exist)",
        ))
}

/// The providers each channel uses.
pub struct Deliverer {
    /// `SMS_PROVIDER`; `None` when no SMS connector is configured.
    sms: Option<Arc<dyn Provider>>,
    /// `EMAIL_PROVIDER`: passes by email or to the manager, and every notice.
    email: Arc<dyn Provider>,
    /// Graph mail from the service mailbox (the sweep's nudges).
    graph_mail: Arc<GraphMail>,
}

impl Deliverer {
    pub fn new(
        http: reqwest::Client,
        mail: Arc<dyn MailSender>,
        secrets: Arc<dyn SecretSource>,
        settings: TapSettings,
    ) -> Deliverer {
        let graph_mail = Arc::new(GraphMail::new(mail, settings.mail_sender.clone()));
        let sms: Option<Arc<dyn Provider>> = match settings.sms_provider {
            Some(SmsProvider::Acs) => Some(Arc::new(AcsSms::new(
                http.clone(),
                secrets.clone(),
                settings.acs.clone(),
            ))),
            Some(SmsProvider::Twilio) => Some(Arc::new(Twilio::new(
                http.clone(),
                secrets.clone(),
                settings.twilio.clone(),
            ))),
            None => None,
        };
        let email: Arc<dyn Provider> = match settings.email_provider {
            EmailProvider::Graph => graph_mail.clone(),
            EmailProvider::Acs => Arc::new(AcsEmail::new(http, secrets, settings.acs.clone())),
        };
        Deliverer { sms, email, graph_mail }
    }

    fn provider(&self, channel: Channel) -> Result<&Arc<dyn Provider>, DeliveryError> {
        match channel {
            Channel::Sms => self
                .sms
                .as_ref()
                .ok_or(DeliveryError::NotConfigured("SMS (SMS_PROVIDER)")),
            Channel::Email | Channel::Manager => Ok(&self.email),
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
        self.provider(address.channel)?
            .send(&address.to, subject, text, idempotency)
            .await
    }

    /// Check that `channel` can deliver now through the connector that carries it (configured,
    /// and its secret readable), before a pass is created.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    pub(crate) async fn ready(&self, channel: Channel) -> Result<(), DeliveryError> {
        self.provider(channel)?.ready().await
    }

    /// Check that email (passes by email, and every notice) can go out through `EMAIL_PROVIDER`.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    pub(crate) async fn ready_notices(&self) -> Result<(), DeliveryError> {
        self.email.ready().await
    }

    /// A notice (no pass in it) through `EMAIL_PROVIDER`.
    ///
    /// # Errors
    /// The provider is not configured, refused or failed.
    pub(crate) async fn send_notice(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
    ) -> Result<Sent, DeliveryError> {
        let operation = uuid::Uuid::new_v4().to_string();
        self.email.send(to, subject, text, &operation).await
    }

    /// Email through Graph `sendMail` from the service mailbox, no copy in Sent Items.
    ///
    /// # Errors
    /// No mailbox is configured, or Graph refused or failed.
    pub async fn send_mail(&self, to: &str, subject: &str, text: &SecretString) -> Result<Sent, DeliveryError> {
        self.graph_mail.send(to, subject, text, "").await
    }
}

/// Notices by email through `EMAIL_PROVIDER` (the default notifier).
#[async_trait::async_trait]
impl crate::vocab::ports::Notifier for Deliverer {
    async fn ready(&self) -> Result<(), crate::vocab::ports::NoticeError> {
        self.ready_notices()
            .await
            .map_err(|e| crate::vocab::ports::NoticeError(e.to_string()))
    }

    async fn notify(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
    ) -> Result<(), crate::vocab::ports::NoticeError> {
        self.send_notice(to, subject, text)
            .await
            .map(|_| ())
            .map_err(|e| crate::vocab::ports::NoticeError(e.to_string()))
    }
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
