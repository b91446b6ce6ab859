//! The rules: who would be locked out by losing one device, and whether the tenant is ready to
//! let them back in.

use serde::{Deserialize, Serialize};

use crate::graph::models::TapPolicy;

/// A user's lockout risk, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Risk {
    None,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub(crate) const AT_RISK: [Risk; 3] = [Risk::Critical, Risk::High, Risk::Medium];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::None => "none",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

/// One row of `reports/authenticationMethods/userRegistrationDetails`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: String,
    #[serde(default)]
    pub user_display_name: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub is_mfa_registered: bool,
    #[serde(default)]
    pub methods_registered: Vec<String>,
}

impl Registration {
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
    }
}

/// Methods that are a second factor (email and security questions are for self-service password
/// reset only; a Temporary Access Pass is temporary).
pub(crate) fn is_mfa_method(m: &str) -> bool {
    !matches!(m, "email" | "securityQuestion" | "temporaryAccessPass" | "password")
}

pub(crate) fn is_phishing_resistant(m: &str) -> bool {
    m.starts_with("fido2")
        || m.starts_with("passKey")
        || matches!(
            m,
            "windowsHelloForBusiness" | "macOsSecureEnclaveKey" | "platformCredential"
        )
}

pub(crate) fn is_phone(m: &str) -> bool {
    matches!(m, "mobilePhone" | "alternateMobilePhone" | "officePhone")
}

pub(crate) fn is_authenticator(m: &str) -> bool {
    m.starts_with("microsoftAuthenticator")
}

/// What was found about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assessment {
    pub risk: Risk,
    pub reasons: Vec<&'static str>,
}

/// Reasons, with the level each one carries and the words an administrator reads.
pub(crate) const REASONS: [(&str, &str); 5] = [
    ("not_mfa_registered", "no MFA method registered: cannot pass MFA at all"),
    (
        "admin_without_phishing_resistant",
        "administrator without a phishing-resistant method (FIDO2, passkey, Windows Hello)",
    ),
    (
        "authenticator_only",
        "Microsoft Authenticator is the only method: a lost phone is a lockout unless cloud backup is on",
    ),
    ("single_mfa_method", "a single MFA method, no backup"),
    (
        "key_user_without_backup",
        "key user without a backup phone or FIDO2 key",
    ),
];

pub fn describe(reason: &str) -> &'static str {
    REASONS.iter().find(|(r, _)| *r == reason).map_or("", |(_, d)| d)
}

/// Classify a member (guests sign in at home and are not assessed).
pub(crate) fn classify(row: &Registration, key_user: bool) -> Assessment {
    let mfa: Vec<&str> = row
        .methods_registered
        .iter()
        .map(String::as_str)
        .filter(|m| is_mfa_method(m))
        .collect();
    let mut reasons = Vec::new();
    let mut risk = Risk::None;
    let mut raise = |r: Risk, why: &'static str, reasons: &mut Vec<&'static str>| {
        risk = risk.max(r);
        reasons.push(why);
    };
    if mfa.is_empty() || !row.is_mfa_registered {
        let level = if row.is_admin { Risk::Critical } else { Risk::High };
        raise(level, "not_mfa_registered", &mut reasons);
    } else if mfa.iter().all(|m| is_authenticator(m)) {
        raise(Risk::High, "authenticator_only", &mut reasons);
    } else if mfa.len() == 1 {
        raise(Risk::Medium, "single_mfa_method", &mut reasons);
    }
    if row.is_admin && !mfa.iter().any(|m| is_phishing_resistant(m)) {
        raise(Risk::Critical, "admin_without_phishing_resistant", &mut reasons);
    }
    if key_user {
        let strong = mfa.iter().any(|m| is_phishing_resistant(m));
        let phone_backup = mfa.iter().any(|m| is_phone(m)) && mfa.len() >= 2;
        if !strong && !phone_backup {
            raise(Risk::High, "key_user_without_backup", &mut reasons);
        }
    }
    Assessment { risk, reasons }
}

/// A tenant-level finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    /// `high`, `medium`, `low` or `info`.
    pub severity: String,
    pub title: String,
    pub detail: String,
    /// Where to fix it in the Entra admin center.
    pub fix: String,
}

const TAP_PATH: &str = "Entra admin center → Protection → Authentication methods → Policies → Temporary Access Pass";

fn finding(id: &str, severity: &str, title: &str, detail: String, fix: &str) -> Finding {
    Finding {
        id: id.into(),
        severity: severity.into(),
        title: title.into(),
        detail,
        fix: fix.into(),
    }
}

/// Is the TAP policy ready for a recovery: enabled, one-time (EIDSCA.AT02), sane lifetimes, and
/// the helpdesk's groups in scope?
pub(crate) fn check_policy(policy: &TapPolicy, helpdesk_groups: &[uuid::Uuid]) -> Vec<Finding> {
    let mut out = Vec::new();
    if !policy.is_enabled() {
        out.push(finding(
            "tap_policy_disabled",
            "high",
            "The Temporary Access Pass policy is disabled",
            "No pass can be issued, so a user who loses their only device cannot be let back in without a password reset and a new registration in person.".into(),
            &format!("{TAP_PATH} → Enable and target → Enable"),
        ));
    }
    if !policy.is_usable_once {
        out.push(finding(
            "tap_not_one_time",
            "medium",
            "Passes may be used more than once (EIDSCA.AT02)",
            "Microsoft recommends one-time passes: a pass that leaks after the user signed in stays usable until it expires.".into(),
            &format!("{TAP_PATH} → Configure → One-time use: Yes"),
        ));
    }
    if policy.maximum_lifetime_in_minutes > 480 {
        out.push(finding(
            "tap_lifetime_too_long",
            "medium",
            "Passes may live longer than 8 hours",
            format!(
                "The maximum lifetime is {} minutes; a recovery needs an hour or two.",
                policy.maximum_lifetime_in_minutes
            ),
            &format!("{TAP_PATH} → Configure → Maximum lifetime: 8 hours or less"),
        ));
    }
    if policy.default_lifetime_in_minutes > 240 {
        out.push(finding(
            "tap_default_lifetime_long",
            "low",
            "The default pass lifetime is over 4 hours",
            format!(
                "The default lifetime is {} minutes.",
                policy.default_lifetime_in_minutes
            ),
            &format!("{TAP_PATH} → Configure → Default lifetime: 1 hour"),
        ));
    }
    let all_users = policy.include_targets.iter().any(|t| t.id == "all_users");
    for group in helpdesk_groups {
        let id = group.to_string();
        let included = all_users || policy.include_targets.iter().any(|t| t.id.eq_ignore_ascii_case(&id));
        let excluded = policy.exclude_targets.iter().any(|t| t.id.eq_ignore_ascii_case(&id));
        if !included || excluded {
            out.push(finding(
                "helpdesk_group_out_of_scope",
                "high",
                "A group the helpdesk serves is not in the policy's scope",
                format!(
                    "Group {id} is {}: its members cannot get a pass.",
                    if excluded { "excluded" } else { "not included" }
                ),
                &format!("{TAP_PATH} → Enable and target → Include (and Exclude)"),
            ));
        }
    }
    if out.is_empty() {
        out.push(finding(
            "tap_policy_ready",
            "info",
            "The Temporary Access Pass policy is ready",
            "Enabled, one-time, sane lifetimes, and the helpdesk's groups in scope.".into(),
            TAP_PATH,
        ));
    }
    out
}

/// The row written for an at-risk user (pages, CSV, JSON, HTML).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AtRiskLine {
    pub risk: Risk,
    pub id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub account_enabled: bool,
    pub is_admin: bool,
    pub key_user: bool,
    pub methods: Vec<String>,
    pub reasons: Vec<String>,
}

pub(crate) fn at_risk_line(row: &Registration, key_user: bool, account_enabled: bool, a: &Assessment) -> AtRiskLine {
    AtRiskLine {
        risk: a.risk,
        id: row.id.clone(),
        user_principal_name: row.user_principal_name.clone(),
        display_name: row.user_display_name.clone(),
        account_enabled,
        is_admin: row.is_admin,
        key_user,
        methods: row.methods_registered.clone(),
        reasons: a.reasons.iter().map(|r| (*r).to_owned()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn row(methods: &[&str], admin: bool) -> Registration {
        Registration {
            id: "u".into(),
            user_principal_name: "u@contoso.test".into(),
            user_display_name: None,
            user_type: Some("member".into()),
            is_admin: admin,
            is_mfa_registered: methods.iter().any(|m| is_mfa_method(m)),
            methods_registered: methods.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn check(methods: &[&str], admin: bool, key: bool, risk: Risk, reasons: &[&str]) {
        let a = classify(&row(methods, admin), key);
        assert_eq!(
            (a.risk, a.reasons.as_slice()),
            (risk, reasons),
            "{methods:?} admin={admin} key={key}"
        );
    }

    #[test]
    fn each_rule() {
        check(&[], false, false, Risk::High, &["not_mfa_registered"]);
        check(&["email"], false, false, Risk::High, &["not_mfa_registered"]);
        check(
            &[],
            true,
            false,
            Risk::Critical,
            &["not_mfa_registered", "admin_without_phishing_resistant"],
        );
        check(
            &["microsoftAuthenticatorPush"],
            false,
            false,
            Risk::High,
            &["authenticator_only"],
        );
        check(
            &["microsoftAuthenticatorPush", "microsoftAuthenticatorPasswordless"],
            false,
            false,
            Risk::High,
            &["authenticator_only"],
        );
        check(&["mobilePhone"], false, false, Risk::Medium, &["single_mfa_method"]);
        check(
            &["email", "softwareOneTimePasscode"],
            false,
            false,
            Risk::Medium,
            &["single_mfa_method"],
        );
        check(
            &["microsoftAuthenticatorPush", "mobilePhone"],
            false,
            false,
            Risk::None,
            &[],
        );
        check(
            &["microsoftAuthenticatorPush", "mobilePhone"],
            true,
            false,
            Risk::Critical,
            &["admin_without_phishing_resistant"],
        );
        check(&["fido2", "microsoftAuthenticatorPush"], true, false, Risk::None, &[]);
        check(&["passKeyDeviceBound", "mobilePhone"], true, true, Risk::None, &[]);
        // Key users: a backup phone (with another method) or a FIDO2 key.
        check(
            &["microsoftAuthenticatorPush", "softwareOneTimePasscode"],
            false,
            true,
            Risk::High,
            &["key_user_without_backup"],
        );
        check(
            &["microsoftAuthenticatorPush", "mobilePhone"],
            false,
            true,
            Risk::None,
            &[],
        );
        check(
            &["windowsHelloForBusiness", "microsoftAuthenticatorPush"],
            false,
            true,
            Risk::None,
            &[],
        );
        check(
            &["mobilePhone"],
            false,
            true,
            Risk::High,
            &["single_mfa_method", "key_user_without_backup"],
        );
    }

    fn policy(value: Value) -> TapPolicy {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn policy_checks() {
        let ready = policy(
            json!({"state": "enabled", "isUsableOnce": true, "defaultLifetimeInMinutes": 60,
            "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480,
            "includeTargets": [{"targetType": "group", "id": "all_users"}], "excludeTargets": []}),
        );
        let ids = |f: Vec<Finding>| f.into_iter().map(|f| f.id).collect::<Vec<_>>();
        assert_eq!(ids(check_policy(&ready, &[uuid::Uuid::nil()])), ["tap_policy_ready"]);
        let group = uuid::uuid!("a1b2c3d4-0001-4000-8000-000000000001");
        let weak = policy(
            json!({"state": "disabled", "isUsableOnce": false, "defaultLifetimeInMinutes": 600,
            "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 1440,
            "includeTargets": [{"targetType": "group", "id": "a1b2c3d4-0002-4000-8000-000000000002"}],
            "excludeTargets": []}),
        );
        assert_eq!(
            ids(check_policy(&weak, &[group])),
            [
                "tap_policy_disabled",
                "tap_not_one_time",
                "tap_lifetime_too_long",
                "tap_default_lifetime_long",
                "helpdesk_group_out_of_scope"
            ]
        );
    }
}
