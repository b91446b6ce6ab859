//! What `mfa-recovery config` prints: every setting as `KEY=value` with where the value came from
//! (the environment or the default), and warnings about risky or missing settings.

use std::collections::HashMap;

use super::Settings;
use super::registry::SETTINGS;

/// One printed line per setting, in the registry's (and `docs/configuration.md`'s) order: `KEY=value
/// # environment` for a set one, `# KEY: default …` for one left to its default.
pub fn listing(vars: &HashMap<String, String>) -> Vec<String> {
    let mut lines = Vec::new();
    for row in SETTINGS {
        for key in row.keys {
            match vars.get(*key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                // The managed identity endpoint's secret, which the platform sets.
                Some(_) if *key == "IDENTITY_HEADER" => lines.push(format!("{key}=<hidden>  # environment")),
                Some(value) => lines.push(format!("{key}={}  # environment", shown(value))),
                None => lines.push(format!("# {key}: not set; default {}", plain(row.default))),
            }
        }
    }
    lines
}

/// A value as it may be printed: a URL's query and credentials are removed (a Logic App's or a
/// Teams workflow's `sig=` query is a credential). Connector secrets are Key Vault secret *names*;
/// the one secret value among the settings, `IDENTITY_HEADER`, is hidden by the caller.
fn shown(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.has_host() && (url.query().is_some() || !url.username().is_empty()) => {
            url.set_query(None);
            let _ = url.set_username("");
            let _ = url.set_password(None);
            format!("{url}?<query hidden>")
        }
        _ => value.to_owned(),
    }
}

/// A registry default without its Markdown.
fn plain(text: &str) -> String {
    text.replace(['`', '*'], "")
}

/// What an admin should hear about before relying on these settings.
pub(crate) fn warnings(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let tap = &settings.tap;
    if tap.return_to_caller {
        out.push(
            "TAP_RETURN_TO_CALLER=true: the pass is returned in the API's answer, so anyone holding Recovery.Tap sees it; keep it off unless the caller is the delivery channel".to_owned(),
        );
    }
    if tap.acs.is_none() && tap.twilio.is_none() {
        out.push("no SMS connector (ACS_ENDPOINT or TWILIO_ACCOUNT_SID): a pass cannot go by sms".to_owned());
    }
    if tap.mail_sender.is_none() && tap.acs.as_ref().is_none_or(|a| a.email_from.is_none()) {
        out.push(
            "no email connector (MAIL_SENDER or ACS_EMAIL_FROM): a pass, a code or a notice cannot go by email"
                .to_owned(),
        );
    }
    if settings.auth.tenant_id.is_none() {
        out.push(
            "AUTH_TENANT_ID is not set: the function app would not start (the command line runs without it)".to_owned(),
        );
    }
    if settings.auth.audience.is_none() {
        out.push(
            "AUTH_AUDIENCE is not set: tap, reset and verify refuse, because the holders of the API's app roles cannot be found".to_owned(),
        );
    }
    if settings.storage.is_none() {
        out.push(
            "no Azure Storage (AzureWebJobsStorage__*): the audit trail, limits and reports are kept in local directories".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_query_is_never_printed_and_defaults_say_so() {
        let vars = HashMap::from([
            (
                "APPROVAL_WEBHOOK".to_owned(),
                "https://prod.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=SECRETSIG".to_owned(),
            ),
            (
                "AUTH_TENANT_ID".to_owned(),
                "8a3e6b5c-1d2f-4e7a-9b0c-3d4e5f6a7b8c".to_owned(),
            ),
            ("IDENTITY_HEADER".to_owned(), "c2f1e0d9-secret-header".to_owned()),
        ]);
        let text = listing(&vars).join("\n");
        assert!(!text.contains("SECRETSIG"), "{text}");
        assert!(
            !text.contains("secret-header") && text.contains("IDENTITY_HEADER=<hidden>"),
            "{text}"
        );
        assert!(text.contains("APPROVAL_WEBHOOK=https://prod.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?<query hidden>  # environment"));
        assert!(text.contains("AUTH_TENANT_ID=8a3e6b5c-1d2f-4e7a-9b0c-3d4e5f6a7b8c  # environment"));
        assert!(
            text.contains("# TAP_DEFAULT_LIFETIME_MINUTES: not set; default"),
            "{text}"
        );
    }
}
