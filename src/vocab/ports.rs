//! The small traits by which an adapter is lent to another without one importing the other:
//! delivery reads connector secrets through a `SecretSource` (Key Vault in `secrets`) and sends
//! Graph mail through a `MailSender` (`graph`). `app.rs` wires the real ones.

use async_trait::async_trait;
use secrecy::SecretString;

/// Key Vault (or whatever holds the secrets) could not be read. The message names the secret
/// and the status, never a value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the secrets could not be read from Key Vault: {0}")]
pub struct SecretsUnavailable(pub String);

/// Connector secrets by name.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret's current value, or `None` when it does not exist.
    ///
    /// # Errors
    /// The source could not be read.
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsUnavailable>;
    /// The secret's current version (`None`) or the version named, with the version's id
    /// (Key Vault's: the last segment of the secret's `id`), or `None` when it does not exist. A
    /// source without versions has one, `"0"`.
    ///
    /// # Errors
    /// The source could not be read.
    async fn get_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(String, SecretString)>, SecretsUnavailable> {
        match version {
            None | Some("0") => Ok(self.get(name).await?.map(|v| ("0".to_owned(), v))),
            Some(_) => Ok(None),
        }
    }
    /// When the secret's first version still kept was created (`None`: no such secret, or a
    /// source without versions).
    ///
    /// # Errors
    /// The source could not be read.
    async fn first_created(&self, _name: &str) -> Result<Option<time::OffsetDateTime>, SecretsUnavailable> {
        Ok(None)
    }
    /// Forget a cached value (a provider refused it: it may have been rotated).
    async fn invalidate(&self, name: &str);
}

/// What a log sink said of one batch of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Taken.
    Accepted,
    /// Too big for one call: send it in parts.
    TooLarge,
}

/// Why a batch was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// Throttled, failing or unreachable: try again, after `after` seconds when it said.
    #[error("{why}")]
    Retry { after: Option<u64>, why: String },
    /// Refused (a missing role, a wrong rule or stream): trying again will not help.
    #[error("{0}")]
    Refused(String),
}

/// Where the audit trail's copy goes (the Azure Monitor Logs Ingestion API in `monitor`).
#[async_trait]
pub trait LogSink: Send + Sync {
    /// Send one batch: `body` is a JSON array of rows.
    ///
    /// # Errors
    /// The batch was not taken.
    async fn ingest(&self, body: Vec<u8>) -> Result<Ingested, IngestError>;
}

/// Why a mail was not sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MailError {
    /// The service refused the message (4xx): sending it again will not help.
    #[error("{0}")]
    Refused(String),
    /// The service could not be reached or failed; the message may or may not have gone.
    #[error("{0}")]
    Unavailable(String),
}

/// Plain-text mail from a service mailbox (Microsoft Graph `sendMail`).
#[async_trait]
pub trait MailSender: Send + Sync {
    /// Send `text` from the mailbox `from` to `to`, without a copy in Sent Items.
    ///
    /// # Errors
    /// The service refused or failed.
    async fn send_text_mail(&self, from: &str, to: &str, subject: &str, text: &SecretString) -> Result<(), MailError>;
}

/// Why a notice did not go out (the message names the channel and the cause, never the text).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NoticeError(pub String);

/// Notices to people: a pass was issued, methods were reset, a recovery waits for an approver.
/// Never a pass or a code (those go through `delivery::Deliverer::send`, to an address of
/// record). Email through `EMAIL_PROVIDER` is `delivery::Deliverer`'s implementation; another
/// channel (a Teams chat) is one more implementation, lent to the recovery in
/// `App::tap_context`.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel can send now (configured, its secret readable): checked before a pass exists,
    /// since a pass nobody is told about must not be issued.
    ///
    /// # Errors
    /// Not configured, or its secret cannot be read.
    async fn ready(&self) -> Result<(), NoticeError>;
    /// Tell the person whose address of record (mail) is `to`.
    ///
    /// # Errors
    /// The channel refused or failed.
    async fn notify(&self, to: &str, subject: &str, text: &SecretString) -> Result<(), NoticeError>;
}
