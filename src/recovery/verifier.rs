//! The verifier port: one way for the user to prove it is them. The procedure around it is the
//! same for every method (`recovery/verify.rs`): the target found and checked, the limits, the
//! address of record, the intent in the trail, the record kept (a keyed hash of the secret, never
//! the secret), the answer checked once and spent at admission (`recovery/admit.rs`). What
//! differs is here: the challenge the user is sent, and how an answer is checked against what was
//! kept. The code read back is `recovery::code::CodeVerifier`; a confirmation link, or a Verified
//! ID Face Check, is one more implementation, lent in `App::tap_context`.

use async_trait::async_trait;
use secrecy::SecretString;
use uuid::Uuid;

use super::RecoveryError;

/// What a challenge says besides its secret: who verifies, for which ticket, how long it lasts
/// and whom the user contacts if they did not ask. Nothing here is secret.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// The agent, as their token names them (reduced to words by the method's template).
    pub agent: Option<&'a str>,
    pub ticket: Option<&'a str>,
    /// What is to come once the user is verified (`tap`, `reset`), when the caller said.
    pub action: Option<&'a str>,
    pub minutes: u32,
    pub contact: &'a str,
}

/// A challenge made: what the record keeps (a keyed hash) and the message the user gets on their
/// address of record. The message carries the secret; it goes to the deliverer and nowhere else.
pub struct Challenge {
    pub kept: String,
    pub subject: &'static str,
    pub text: SecretString,
}

/// One verification method.
#[async_trait]
pub trait Verifier: Send + Sync {
    /// The method's name (`code`).
    fn method(&self) -> &'static str;

    /// A new challenge for verification `id` (the id binds what is kept to its record).
    ///
    /// # Errors
    /// The method's key or service is unavailable (`verification_unavailable`).
    async fn challenge(&self, id: Uuid, about: About<'_>) -> Result<Challenge, RecoveryError>;

    /// Whether `answer` is the one verification `id` kept as `kept`, compared in constant time.
    /// Changes nothing: attempts and single use are the store's (`Verifications::confirm`).
    ///
    /// # Errors
    /// The method's key or service is unavailable.
    async fn check(&self, id: Uuid, kept: &str, answer: &SecretString) -> Result<bool, RecoveryError>;

    /// Whether `answer` has the shape of one (checked before anything is read; never echoed).
    fn well_formed(&self, answer: &SecretString) -> bool;
}
