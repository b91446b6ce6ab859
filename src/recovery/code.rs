//! The code read back: a one-time numeric code sent to an address of record, which the caller
//! reads back to the agent (`recovery::verifier::Verifier`).
//!
//! A code exists in clear only in a `SecretString` between its generation and the provider; the
//! record keeps an HMAC-SHA256 of it, keyed with a Key Vault secret (`VERIFICATION_KEY_SECRET`)
//! and bound to the verification's id, so whoever can read the storage cannot try the million
//! codes. It is compared in constant time.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use super::RecoveryError;
use super::verification::unavailable;
use super::verifier::{About, Challenge, Verifier};
use crate::vocab::ports::SecretSource;

/// Digits in a code (read aloud easily).
const DIGITS: u32 = 6;

/// Codes read back, hashed with the Key Vault secret named `key_secret`.
pub(crate) struct CodeVerifier {
    keyed: KeyedHash,
}

/// The keyed hash every verifier keeps instead of its secret: HMAC-SHA256 with the Key Vault
/// secret named `key_secret`, bound to the verification's id.
#[derive(Clone)]
pub(crate) struct KeyedHash {
    secrets: Arc<dyn SecretSource>,
    key_secret: String,
}

impl CodeVerifier {
    pub fn new(secrets: Arc<dyn SecretSource>, key_secret: String) -> CodeVerifier {
        CodeVerifier {
            keyed: KeyedHash { secrets, key_secret },
        }
    }
}

impl KeyedHash {
    pub fn new(secrets: Arc<dyn SecretSource>, key_secret: String) -> KeyedHash {
        KeyedHash { secrets, key_secret }
    }

    /// What is kept of `secret` for verification `id`.
    pub(crate) async fn keep(&self, id: Uuid, secret: &SecretString) -> Result<String, RecoveryError> {
        let mut mac = self.mac(id).await?;
        mac.update(secret.expose_secret().as_bytes());
        Ok(B64.encode(mac.finalize().into_bytes()))
    }

    /// Whether `answer` is the secret kept as `kept` for verification `id` (constant time).
    pub(crate) async fn matches(&self, id: Uuid, kept: &str, answer: &str) -> Result<bool, RecoveryError> {
        let mut mac = self.mac(id).await?;
        mac.update(answer.as_bytes());
        let expected = B64.decode(kept).map_err(unavailable)?;
        // `verify_slice` compares in constant time.
        Ok(mac.verify_slice(&expected).is_ok())
    }

    /// The keyed hash's state for verification `id` (the id binds a hash to its record).
    async fn mac(&self, id: Uuid) -> Result<Hmac<Sha256>, RecoveryError> {
        let key = self
            .secrets
            .get(&self.key_secret)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| unavailable(format!("the Key Vault secret {} does not exist", self.key_secret)))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        Ok(mac)
    }
}

#[async_trait]
impl Verifier for CodeVerifier {
    fn method(&self) -> &'static str {
        "code"
    }

    async fn challenge(&self, id: Uuid, about: About<'_>) -> Result<Challenge, RecoveryError> {
        let code = new_code();
        Ok(Challenge {
            kept: self.keyed.keep(id, &code).await?,
            subject: "Your verification code",
            text: code_message(&code, about.agent, about.ticket, about.minutes, about.contact),
        })
    }

    async fn check(&self, id: Uuid, kept: &str, answer: &SecretString) -> Result<bool, RecoveryError> {
        self.keyed.matches(id, kept, answer.expose_secret().trim()).await
    }

    fn well_formed(&self, answer: &SecretString) -> bool {
        let c = answer.expose_secret().trim();
        !c.is_empty() && c.len() <= 12 && c.chars().all(|d| d.is_ascii_digit())
    }
}

/// A fresh code: `DIGITS` decimal digits from the operating system's random source (through
/// a v4 UUID's 122 random bits; the modulo bias is below 10^-30).
pub(crate) fn new_code() -> SecretString {
    let n = Uuid::new_v4().as_u128() % 10u128.pow(DIGITS);
    SecretString::from(format!("{n:0width$}", width = DIGITS as usize))
}

/// An agent as words a user reads: a UPN or username (`megan.bowen@contoso.com`) becomes its
/// local part ("megan bowen"), reduced to letters, spaces and `'-`, so no domain or link from a
/// token reaches the user.
pub(crate) fn agent_words(agent: Option<&str>) -> String {
    let agent = agent.unwrap_or_default();
    let agent = agent.split('@').next().unwrap_or_default().replace(['.', '_'], " ");
    let name: String = agent
        .chars()
        .filter(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '-'))
        .take(64)
        .collect();
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message that carries a code, a fixed template: the code first, so nothing a caller
/// chose comes before it; then who is verifying (the agent's name from their token, reduced to
/// letters, spaces and `.'-`), the ticket (reduced to a safe character set, `ticket_id_ok`), to
/// read it only to an agent you called, and whom to contact otherwise. The code is the only
/// secret in it.
pub(crate) fn code_message(
    code: &SecretString,
    agent: Option<&str>,
    ticket: Option<&str>,
    minutes: u32,
    contact: &str,
) -> SecretString {
    let name = agent_words(agent);
    let who = if name.is_empty() {
        "Your IT service desk".to_owned()
    } else {
        format!("{name} (IT service desk)")
    };
    let about = ticket
        .filter(|t| super::rules::ticket_id_ok(t))
        .map_or_else(String::new, |t| format!(" for ticket {t}"));
    SecretString::from(format!(
        "Your code: {}\n{who} is verifying your identity{about}. Valid {minutes} minutes. Read it only to an agent you called yourself, never to someone who called you.\nDid not ask? Contact {contact}.",
        code.expose_secret()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ports::SecretsUnavailable;

    /// A key source with one secret, or none (Key Vault without it).
    struct Key(Option<&'static str>);

    #[async_trait]
    impl SecretSource for Key {
        async fn get(&self, _: &str) -> Result<Option<SecretString>, SecretsUnavailable> {
            Ok(self.0.map(SecretString::from))
        }
        async fn invalidate(&self, _: &str) {}
    }

    fn about() -> About<'static> {
        About {
            agent: Some("Megan Bowen"),
            ticket: Some("INC0010001"),
            action: None,
            minutes: 10,
            contact: "the service desk",
        }
    }

    #[tokio::test]
    async fn through_the_port_a_code_is_kept_as_a_keyed_hash_and_only_its_own_answer_checks() {
        let verifier: &dyn Verifier = &CodeVerifier::new(Arc::new(Key(Some("k1"))), "verification-key".into());
        let id = Uuid::new_v4();
        let challenge = verifier.challenge(id, about()).await.unwrap();
        let text = challenge.text.expose_secret().to_owned();
        let code = text.strip_prefix("Your code: ").unwrap()[..6].to_owned();
        assert!(!challenge.kept.contains(&code), "only a hash is kept");
        assert!(
            verifier
                .check(id, &challenge.kept, &SecretString::from(code.clone()))
                .await
                .unwrap()
        );
        assert!(
            verifier
                .check(id, &challenge.kept, &SecretString::from(format!(" {code} ")))
                .await
                .unwrap()
        );
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(
            !verifier
                .check(id, &challenge.kept, &SecretString::from(wrong))
                .await
                .unwrap()
        );
        // The hash is bound to its verification: the same code under another id does not check.
        assert!(
            !verifier
                .check(Uuid::new_v4(), &challenge.kept, &SecretString::from(code.clone()))
                .await
                .unwrap()
        );
        // And to its key: a rotated key does not check an old code.
        let rotated = CodeVerifier::new(Arc::new(Key(Some("k2"))), "verification-key".into());
        assert!(
            !rotated
                .check(id, &challenge.kept, &SecretString::from(code))
                .await
                .unwrap()
        );
        assert!(verifier.well_formed(&SecretString::from("042137")));
        assert!(!verifier.well_formed(&SecretString::from("04213a")) && !verifier.well_formed(&SecretString::from("")));
    }

    #[tokio::test]
    async fn without_its_key_no_challenge_is_made_and_nothing_checks() {
        let verifier = CodeVerifier::new(Arc::new(Key(None)), "verification-key".into());
        let e = verifier.challenge(Uuid::new_v4(), about()).await.err().unwrap();
        assert_eq!(
            e.code,
            crate::vocab::ErrorCode::Failed(crate::vocab::Fault::VerificationUnavailable)
        );
        assert!(
            verifier
                .check(Uuid::new_v4(), "AAAA", &SecretString::from("042137"))
                .await
                .is_err()
        );
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = new_code();
            assert_eq!(c.expose_secret().len(), 6);
            assert!(c.expose_secret().chars().all(|d| d.is_ascii_digit()));
        }
    }

    #[test]
    fn the_code_message_names_the_agent_and_the_ticket_and_warns() {
        let text = code_message(
            &SecretString::from("042137"),
            Some("Megan Bowen"),
            Some("INC0010001"),
            10,
            "the service desk",
        );
        let t = text.expose_secret();
        assert!(t.contains("042137") && t.contains("Megan Bowen") && t.contains("INC0010001"));
        assert!(t.contains("only to an agent you called"));
        assert!(t.contains("Contact the service desk"));
        assert!(t.starts_with("Your code: 042137\n"), "the code comes first: {t}");
    }

    #[test]
    fn nothing_a_caller_chose_reaches_the_code_message_unfiltered() {
        let text = code_message(
            &SecretString::from("042137"),
            Some("Megan <b>Bowen</b> call +1 555 0100"),
            Some("INC1 call +1 555 0100 now"),
            10,
            "the service desk",
        );
        let t = text.expose_secret();
        assert!(!t.contains("555") && !t.contains('<') && !t.contains("INC1"), "{t}");
        assert!(crate::recovery::rules::ticket_id_ok("INC0010001") && crate::recovery::rules::ticket_id_ok("HELP-42"));
        assert!(
            !crate::recovery::rules::ticket_id_ok("HELP 42")
                && !crate::recovery::rules::ticket_id_ok("https://evil.example/?x")
                && !crate::recovery::rules::ticket_id_ok("")
        );
        assert!(
            !crate::recovery::rules::ticket_id_ok("evil.example")
                && !crate::recovery::rules::ticket_id_ok("a/b")
                && !crate::recovery::rules::ticket_id_ok("-x")
        );
        // A UPN as the agent's name: words, no domain.
        let text = code_message(
            &SecretString::from("042137"),
            Some("megan.bowen@evil.example"),
            None,
            10,
            "IT",
        );
        let t = text.expose_secret();
        assert!(
            t.contains("megan bowen (IT service desk)") && !t.contains("evil"),
            "{t}"
        );
    }
}
