//! A second approver: which recoveries need one, how long a request waits, and who is told.

#[allow(unused_imports)]
use super::*;

/// What makes a recovery wait for a second approver (`APPROVAL_REQUIRED_FOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApprovalTrigger {
    /// The target holds or is eligible for privilege (`recovery::privilege`).
    Privileged,
    /// A reset that removes every method (`scope: all`).
    ResetAll,
    /// A pass sent to the user's manager.
    ManagerChannel,
    /// Every recovery.
    All,
    /// A reset that would leave the user no method, asked with `allowEmpty` (always needs one;
    /// not a value of `APPROVAL_REQUIRED_FOR`).
    LeavesNothing,
    /// Entra ID Protection rates the user high risk or confirmed compromised (always needs one;
    /// not a value of `APPROVAL_REQUIRED_FOR`).
    AtRisk,
}

impl ApprovalTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalTrigger::Privileged => "privileged",
            ApprovalTrigger::ResetAll => "reset_all",
            ApprovalTrigger::ManagerChannel => "manager_channel",
            ApprovalTrigger::All => "all",
            ApprovalTrigger::LeavesNothing => "leaves_nothing",
            ApprovalTrigger::AtRisk => "at_risk",
        }
    }
    pub fn parse(value: &str) -> Option<ApprovalTrigger> {
        [
            ApprovalTrigger::Privileged,
            ApprovalTrigger::ResetAll,
            ApprovalTrigger::ManagerChannel,
            ApprovalTrigger::All,
        ]
        .into_iter()
        .find(|t| t.as_str() == value)
    }
}

/// `APPROVAL_*` and `SECURITY_ALERT_WEBHOOK`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ApprovalSettings {
    /// `APPROVAL_REQUIRED_FOR`: empty means no recovery waits (privileged targets are refused).
    pub required_for: Vec<ApprovalTrigger>,
    /// `APPROVAL_TIMEOUT_MINUTES`: an unanswered request expires after this long.
    pub timeout_minutes: u32,
    /// `APPROVAL_NOTIFY_GROUP`: the group whose members are emailed when a request waits.
    pub notify_group: Option<Uuid>,
    /// `APPROVAL_WEBHOOK`: a Teams Workflows or Logic App endpoint told when a request waits
    /// (signed with `CALLBACK_SIGNING_SECRET`). Its query may carry a signature: never logged.
    pub webhook: Option<Url>,
    /// `SECURITY_ALERT_WEBHOOK`: told of every attempt on a privileged account.
    pub security_alert_webhook: Option<Url>,
    /// `CONSOLE_URL` (default `https://{WEBSITE_HOSTNAME}/api/console/`, the host name the
    /// platform sets): the console's address, linked from approval emails and webhooks.
    pub console_url: Option<Url>,
}

/// A webhook URL without its query (a Logic App's or Teams Workflow's `sig=` is a credential):
/// what `mfa-recovery config` and any debug output show.
fn redacted(url: &Option<Url>) -> Option<String> {
    url.as_ref().map(|u| {
        let mut shown = u.clone();
        if shown.query().is_some() {
            shown.set_query(Some("<redacted>"));
        }
        shown.to_string()
    })
}

impl std::fmt::Debug for ApprovalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalSettings")
            .field("required_for", &self.required_for)
            .field("timeout_minutes", &self.timeout_minutes)
            .field("notify_group", &self.notify_group)
            .field("webhook", &redacted(&self.webhook))
            .field("security_alert_webhook", &redacted(&self.security_alert_webhook))
            .field("console_url", &self.console_url.as_ref().map(Url::as_str))
            .finish()
    }
}

impl ApprovalSettings {
    /// How long a request waits for an approver.
    pub fn timeout(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.timeout_minutes))
    }

    /// Whether approvals are on at all: some recovery waits for a second approver, so there are
    /// approvers to hold a request for.
    pub fn enabled(&self) -> bool {
        !self.required_for.is_empty()
    }

    pub fn requires(&self, trigger: ApprovalTrigger) -> bool {
        self.required_for.contains(&trigger) || self.required_for.contains(&ApprovalTrigger::All)
    }
}

/// A webhook URL: https (http only on loopback, for tests); a query is allowed (Logic Apps and
/// Teams Workflows put their signature there).
fn webhook_url(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| ConfigError::new(key, "is not an absolute URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(url)
    } else {
        // The value is not echoed: its query may be a signature.
        Err(ConfigError::new(
            key,
            "must use https (http is allowed only for 127.0.0.1 and localhost)",
        ))
    }
}

/// `CONSOLE_URL`, or the platform's `WEBSITE_HOSTNAME` with `/api/console/`.
fn console_url<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<Url>, ConfigError> {
    let value = match (get("CONSOLE_URL"), get("WEBSITE_HOSTNAME")) {
        (Some(url), _) => url.to_owned(),
        (None, Some(host)) => format!("https://{host}/api/console/"),
        (None, None) => return Ok(None),
    };
    let url = Url::parse(&value)
        .map_err(|e| ConfigError::new("CONSOLE_URL", format!("'{value}' is not an absolute URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
    if url.scheme() != "https" && !loopback {
        return Err(ConfigError::new(
            "CONSOLE_URL",
            "must be https (or http on this machine)",
        ));
    }
    Ok(Some(url))
}

pub(super) fn approval_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<ApprovalSettings, ConfigError> {
    let notify_group = get("APPROVAL_NOTIFY_GROUP")
        .map(|g| guid("APPROVAL_NOTIFY_GROUP", g))
        .transpose()?;
    let webhook = get("APPROVAL_WEBHOOK")
        .map(|u| webhook_url("APPROVAL_WEBHOOK", u))
        .transpose()?;
    let security_alert_webhook = get("SECURITY_ALERT_WEBHOOK")
        .map(|u| webhook_url("SECURITY_ALERT_WEBHOOK", u))
        .transpose()?;
    for (key, set) in [
        ("APPROVAL_WEBHOOK", webhook.is_some()),
        ("SECURITY_ALERT_WEBHOOK", security_alert_webhook.is_some()),
    ] {
        if set && get("CALLBACK_SIGNING_SECRET").is_none() {
            return Err(ConfigError::new(
                key,
                "needs CALLBACK_SIGNING_SECRET: the Key Vault secret that signs what the service sends (Standard Webhooks)",
            ));
        }
    }
    let approvers_told = notify_group.is_some() || webhook.is_some();
    let required_for = match get("APPROVAL_REQUIRED_FOR") {
        None if approvers_told => vec![ApprovalTrigger::Privileged],
        None | Some("none") => Vec::new(),
        Some(list) => {
            let mut triggers = Vec::new();
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let trigger = ApprovalTrigger::parse(item).ok_or_else(|| {
                    ConfigError::new(
                        "APPROVAL_REQUIRED_FOR",
                        format!("'{item}' is not one of privileged, reset_all, manager_channel, all (or none)"),
                    )
                })?;
                if !triggers.contains(&trigger) {
                    triggers.push(trigger);
                }
            }
            triggers
        }
    };
    if !required_for.is_empty() && !approvers_told {
        return Err(ConfigError::new(
            "APPROVAL_REQUIRED_FOR",
            "approvals need somebody to tell: set APPROVAL_NOTIFY_GROUP (a group whose members are emailed) or APPROVAL_WEBHOOK",
        ));
    }
    Ok(ApprovalSettings {
        required_for,
        timeout_minutes: number(get, "APPROVAL_TIMEOUT_MINUTES", 60, 5..=1440)?,
        notify_group,
        webhook,
        security_alert_webhook,
        console_url: console_url(get)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_settings_never_show_a_webhook_signature() {
        let settings = ApprovalSettings {
            webhook: Some(
                Url::parse("https://prod.logic.azure.com/workflows/1/triggers/manual?sig=S3cretSig").unwrap(),
            ),
            security_alert_webhook: Some(Url::parse("https://soc.contoso.com/hook?code=AlsoSecret").unwrap()),
            ..ApprovalSettings::default()
        };
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains("S3cretSig") && !shown.contains("AlsoSecret"), "{shown}");
        assert!(
            shown.contains("prod.logic.azure.com/workflows/1/triggers/manual"),
            "{shown}"
        );
    }
}
