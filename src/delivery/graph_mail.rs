//! Email through Microsoft Graph `sendMail` from the service mailbox (`EMAIL_PROVIDER=graph`,
//! `MAIL_SENDER`), no copy in Sent Items. Graph itself is lent through the `MailSender` port.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{DeliveryError, Provider, Sent};
use crate::vocab::ports::{MailError, MailSender};

pub struct GraphMail {
    mail: Arc<dyn MailSender>,
    sender: Option<String>,
}

impl GraphMail {
    pub fn new(mail: Arc<dyn MailSender>, sender: Option<String>) -> GraphMail {
        GraphMail { mail, sender }
    }

    fn sender(&self) -> Result<&str, DeliveryError> {
        self.sender
            .as_deref()
            .ok_or(DeliveryError::NotConfigured("email (MAIL_SENDER)"))
    }
}

#[async_trait]
impl Provider for GraphMail {
    async fn ready(&self) -> Result<(), DeliveryError> {
        self.sender().map(|_| ())
    }

    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &SecretString,
        _idempotency: &str,
    ) -> Result<Sent, DeliveryError> {
        match self.mail.send_text_mail(self.sender()?, to, subject, text).await {
            Ok(()) => Ok(Sent {
                provider: "graph",
                message_id: None,
            }),
            Err(MailError::Refused(e)) => Err(DeliveryError::Refused(e)),
            Err(MailError::Unavailable(e)) => Err(DeliveryError::Unavailable(e)),
        }
    }
}
