//! The confirmation link: a message on the user's channel of record that names the agent, the
//! action to come, the ticket and the time, and carries `https://<host>/api/confirm/{id}#{secret}`.
//! The user opens it on their own device and answers "it is me" or "this is not me"; the agent
//! relays nothing (`recovery::verifier::Verifier`).
//!
//! The secret is 32 bytes from the operating system's random source (244 random bits: two v4
//! UUIDs), URL-safe base64, in the URL's fragment, which browsers never send: it reaches no
//! server or proxy log. The record keeps its keyed hash (`code::KeyedHash`), bound to the id.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::RecoveryError;
use super::code::{KeyedHash, agent_words};
use super::verification::unavailable;
use super::verifier::{About, Challenge, Verifier};
use crate::vocab::paths;

/// Characters of an encoded secret (32 bytes, base64 without padding).
const SECRET_CHARS: usize = 43;

/// Links whose page is served at `origin` (the function app's, from `CONSOLE_URL` or
/// `WEBSITE_HOSTNAME`); without one no link can be made.
pub(crate) struct LinkVerifier {
    keyed: KeyedHash,
    origin: Option<String>,
}

impl LinkVerifier {
    pub fn new(keyed: KeyedHash, origin: Option<String>) -> LinkVerifier {
        LinkVerifier { keyed, origin }
    }
}

/// A fresh secret: 32 bytes of two v4 UUIDs, URL-safe base64.
fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

#[async_trait]
impl Verifier for LinkVerifier {
    fn method(&self) -> &'static str {
        "link"
    }

    async fn challenge(&self, id: Uuid, about: About<'_>) -> Result<Challenge, RecoveryError> {
        let origin = self.origin.as_deref().ok_or_else(|| {
            unavailable("no public address for the confirmation page: set CONSOLE_URL (Azure sets WEBSITE_HOSTNAME)")
        })?;
        let secret = new_secret();
        let link = SecretString::from(format!(
            "{origin}{}#{}",
            paths::fill(paths::CONFIRM, &id.to_string()),
            secret.expose_secret()
        ));
        Ok(Challenge {
            kept: self.keyed.keep(id, &secret).await?,
            subject: "Is it you? Confirm with your IT service desk",
            text: link_message(&link, about),
        })
    }

    async fn check(&self, id: Uuid, kept: &str, answer: &SecretString) -> Result<bool, RecoveryError> {
        self.keyed.matches(id, kept, answer.expose_secret()).await
    }

    fn well_formed(&self, answer: &SecretString) -> bool {
        let s = answer.expose_secret();
        s.len() == SECRET_CHARS && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// What the action to come is called in a message and on the page.
pub(crate) fn action_words(action: Option<&str>) -> &'static str {
    match action {
        Some("tap") => "give you a Temporary Access Pass to sign in",
        Some("reset") => "reset your sign-in methods (you will set them up again)",
        _ => "help you get back into your account",
    }
}

/// The message that carries a link, a fixed template: who asks (the agent as words), for what,
/// the ticket, the link, and what to do if it was not you. The link is the only secret in it.
pub(crate) fn link_message(link: &SecretString, about: About<'_>) -> SecretString {
    let name = agent_words(about.agent);
    let who = if name.is_empty() {
        "Your IT service desk".to_owned()
    } else {
        format!("{name} (IT service desk)")
    };
    let ticket = about
        .ticket
        .filter(|t| super::rules::ticket_id_ok(t))
        .map_or_else(String::new, |t| format!(" (ticket {t})"));
    let now = time::OffsetDateTime::now_utc();
    let at = format!("{:02}:{:02} UTC", now.hour(), now.minute());
    SecretString::from(format!(
        "{who} asks to {}{ticket}, at {at}. Is it you?\nOpen this link on your own device and answer, within {} minutes:\n{}\nIf you did not ask, open it and choose \"This is not me\", or contact {}. Never forward it or read it to anyone.",
        action_words(about.action),
        about.minutes,
        link.expose_secret(),
        about.contact
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_long_random_and_url_safe() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.expose_secret().len(), SECRET_CHARS);
        assert_ne!(a.expose_secret(), b.expose_secret());
        let verifier = LinkVerifier::new(
            KeyedHash::new(std::sync::Arc::new(NoKey), "k".into()),
            Some("https://x".into()),
        );
        assert!(verifier.well_formed(&a));
        assert!(!verifier.well_formed(&SecretString::from("123456".to_owned())));
        assert!(!verifier.well_formed(&SecretString::from(format!("{}=", &a.expose_secret()[..42]))));
    }

    #[test]
    fn the_message_names_the_agent_the_action_and_the_ticket_and_no_domain() {
        let link = SecretString::from("https://func.example/api/confirm/1#s3cret".to_owned());
        let text = link_message(
            &link,
            About {
                agent: Some("megan.bowen@contoso.com"),
                ticket: Some("INC0010001"),
                action: Some("tap"),
                minutes: 10,
                contact: "the service desk",
            },
        );
        let text = text.expose_secret();
        assert!(text.starts_with("megan bowen (IT service desk) asks to give you a Temporary Access Pass"));
        assert!(text.contains("(ticket INC0010001)"));
        assert!(text.contains("https://func.example/api/confirm/1#s3cret"));
        assert!(text.contains("\"This is not me\""));
        assert!(!text.contains("contoso.com"));
    }

    struct NoKey;
    #[async_trait]
    impl crate::vocab::ports::SecretSource for NoKey {
        async fn get(&self, _: &str) -> Result<Option<SecretString>, crate::vocab::ports::SecretsUnavailable> {
            Ok(None)
        }
        async fn invalidate(&self, _: &str) {}
    }
}
