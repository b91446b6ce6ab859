//! The templates' app settings and `mfa-recovery dev`'s, compared setting by setting, so that a
//! recovery rehearsed locally runs the posture Azure runs. A difference fails unless it is listed
//! below with its reason.

use std::collections::BTreeMap;

use mfa_recovery::config::registry::SETTINGS;
use mfa_recovery_sim::{Seed, Simulator};

use crate::helpers::repo_path;

/// Where `dev` and a deployment differ on purpose, and why.
const EXCEPTIONS: &[(&str, &str)] = &[
    // What only a deployment has: its identity, its tenant, its API registration, its vault.
    (
        "AZURE_CLIENT_ID",
        "the deployment's managed identity; dev's is the simulator's",
    ),
    ("AUTH_TENANT_ID", "the admin's tenant; dev's is the simulated tenant"),
    (
        "AUTH_AUDIENCE",
        "the API registration the templates create; dev's is the simulated one",
    ),
    (
        "AUTH_CLIENT_ID",
        "the API registration the templates create; dev's is the simulated one",
    ),
    ("KEY_VAULT_URI", "the deployment's Key Vault; dev's is the simulator's"),
    (
        "AUDIT_EXPORT_ENDPOINT",
        "the deployment's data collection rule; dev exports nothing (the tests drive the simulated endpoint)",
    ),
    (
        "AUDIT_EXPORT_RULE_ID",
        "the deployment's data collection rule; dev exports nothing",
    ),
    // Connectors: the templates leave them for the admin to choose; dev points them at the
    // simulator's providers, so every channel works without an account anywhere.
    ("MAIL_SENDER", "the simulated tenant's service mailbox"),
    ("ACS_ENDPOINT", "the simulator's ACS"),
    ("ACS_ACCESS_KEY_SECRET", "the simulator's Key Vault secret for its ACS"),
    ("ACS_SMS_FROM", "the simulator's ACS number"),
    ("SERVICENOW_INSTANCE_URL", "the simulator's ServiceNow"),
    ("SERVICENOW_USER", "the simulator's ServiceNow"),
    (
        "SERVICENOW_PASSWORD_SECRET",
        "the simulator's Key Vault secret for its ServiceNow",
    ),
    ("JIRA_BASE_URL", "the simulator's Jira"),
    ("JIRA_USER", "the simulator's Jira"),
    ("JIRA_API_TOKEN_SECRET", "the simulator's Key Vault secret for its Jira"),
    (
        "CALLBACK_SIGNING_SECRET",
        "the simulator's Key Vault secret for signed callbacks",
    ),
    (
        "CALLBACK_ALLOWED_HOSTS",
        "callbacks go to the simulator on this machine",
    ),
    ("NOTICE_CONTACT", "the demo tenant's service desk"),
    // Ids of the admin's tenant the templates cannot know: dev names the demo tenant's group.
    (
        "TAP_PROTECTED_GROUPS",
        "the admin's own groups; dev protects the demo tenant's Tier 0 Accounts (Johanna)",
    ),
];

/// Settings only dev sets, and why (local storage and the simulator's integrations).
const DEV_ONLY: &[(&str, &str)] = &[
    ("AUDIT_DIR", "local directories instead of Azure Storage"),
    ("REQUESTS_DIR", "local directories instead of Azure Storage"),
    ("SWEEP_DIR", "local directories instead of Azure Storage"),
    ("GRAPH_ENDPOINT", "the simulated tenant's Graph"),
    ("AUTH_AUTHORITY", "the simulated tenant's sign-in"),
    (
        "FUNCTIONS_CUSTOMHANDLER_PORT",
        "the port dev serves on (the Functions host sets it in Azure)",
    ),
    (
        "SERVICENOW_CALLERS",
        "the banner's token stands for the ServiceNow integration",
    ),
    ("JIRA_CALLERS", "the banner's token stands for the Jira integration"),
    ("CONSOLE_URL", "the console on this machine"),
    ("MFA_RECOVERY_LOG_FORMAT", "text logs on a terminal; Azure reads JSON"),
    (
        "APPROVAL_NOTIFY_GROUP",
        "the admin's approvers group (MFA_RECOVERY_EXTRA_APP_SETTINGS); dev names the demo tenant's Recovery Approvers (Isaiah), so approvals are on",
    ),
];

/// `KEY: expression` lines of the block that starts with `start` and ends at the first line
/// that is `}` (Bicep's object literal).
fn block(text: &str, start: &str) -> Vec<(String, String)> {
    text.split(start)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{start}`"))
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| *l != "}")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// An expression of `main.bicep` as a literal, with each parameter's default: `Some` a literal
/// (`''` is unset: the code's default), `None` a value only a deployment has.
fn literal(expr: &str, params: &BTreeMap<String, String>, settings: &BTreeMap<String, String>) -> Option<String> {
    let expr = expr.trim();
    if let Some(s) = expr.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(s.to_owned());
    }
    if let Some((cond, branches)) = expr.split_once(" ? ") {
        let (yes, no) = branches.split_once(" : ")?;
        let cond = cond.trim();
        let truth = match cond.strip_prefix("empty(").and_then(|c| c.strip_suffix(')')) {
            Some(inner) => literal(inner, params, settings)?.is_empty(),
            None => literal(cond, params, settings)? == "true",
        };
        return literal(if truth { yes } else { no }, params, settings);
    }
    if let Some(name) = expr.strip_prefix("settings.") {
        return literal(settings.get(name)?, params, settings);
    }
    if let Some(default) = params.get(expr) {
        return literal(default, params, settings);
    }
    matches!(expr, "true" | "false").then(|| expr.to_owned())
}

/// The templates' app settings as a deployment with every parameter's default gets them.
fn template_settings() -> BTreeMap<String, Option<String>> {
    let main = std::fs::read_to_string(repo_path("infra/main.bicep")).unwrap();
    let app = std::fs::read_to_string(repo_path("infra/modules/functionapp.bicep")).unwrap();
    let params: BTreeMap<String, String> = main
        .lines()
        .filter_map(|l| l.strip_prefix("param "))
        .filter_map(|l| {
            let (head, default) = l.split_once(" = ")?;
            Some((head.split_whitespace().next()?.to_owned(), default.trim().to_owned()))
        })
        .collect();
    let settings: BTreeMap<String, String> = block(&main, "    settings: {").into_iter().collect();
    block(&app, "var appSettings = {")
        .into_iter()
        .map(|(key, expr)| {
            let value = literal(&expr, &params, &settings);
            (key, value)
        })
        .collect()
}

/// The code's default of a setting, as `docs/configuration.md` (the registry) gives it: the
/// backticked value it starts with (`` `0 0 2 * * *` (02:00 UTC daily) ``), else the text.
fn code_default(key: &str) -> String {
    SETTINGS
        .iter()
        .find(|s| s.keys.contains(&key))
        .map(|s| {
            let d = s.default.trim();
            match d.strip_prefix('`').and_then(|d| d.split_once('`')) {
                Some((inner, _)) => inner.to_owned(),
                None => d.to_owned(),
            }
        })
        .unwrap_or_default()
}

/// Every setting on which the two differ and no exception names, with both values.
fn disagreements(
    template: &BTreeMap<String, Option<String>>,
    dev: &BTreeMap<String, String>,
    exceptions: &[(&str, &str)],
    dev_only: &[(&str, &str)],
) -> Vec<String> {
    let listed = |key: &str, list: &[(&str, &str)]| list.iter().any(|(k, _)| *k == key);
    let effective = |value: Option<&str>, key: &str| match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v.to_owned(),
        None => code_default(key),
    };
    let mut found = Vec::new();
    for (key, value) in template {
        if listed(key, exceptions) {
            continue;
        }
        let Some(value) = value else {
            found.push(format!(
                "{key}: a deployment's own value, and no exception says what dev does"
            ));
            continue;
        };
        let (t, d) = (
            effective(Some(value), key),
            effective(dev.get(key).map(String::as_str), key),
        );
        if t != d {
            found.push(format!("{key}: the templates give `{t}`, dev `{d}`"));
        }
    }
    for (key, value) in dev {
        if template.contains_key(key) || listed(key, dev_only) || listed(key, exceptions) {
            continue;
        }
        if value.trim() != code_default(key) {
            found.push(format!(
                "{key}: dev sets `{value}`, the templates leave the default `{}`",
                code_default(key)
            ));
        }
    }
    found
}

#[tokio::test]
async fn the_templates_and_dev_run_the_same_settings_but_the_listed_ones() {
    let template = template_settings();
    for key in [
        "TAP_REQUIRE_VERIFICATION",
        "RISK_CHECK",
        "TAP_PROTECTED_GROUPS",
        "AUDIT_CONTAINER",
    ] {
        assert!(
            template.contains_key(key),
            "the templates' app settings lack {key}: {template:?}"
        );
    }
    assert_eq!(template["TAP_REQUIRE_VERIFICATION"].as_deref(), Some("service"));
    assert_eq!(template["RISK_CHECK"].as_deref(), Some("if_available"));
    assert_eq!(template["SWEEP_NUDGE"].as_deref(), Some("false"));
    assert_eq!(template["AZURE_CLIENT_ID"], None);
    // What the banner promises: the templates' verification, approvals on, Johanna protected.
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let dev: BTreeMap<String, String> = mfa_recovery::dev::dev_vars(&sim, 7071, mfa_recovery::dev::Posture::Shipped)
        .into_iter()
        .filter(|(k, _)| mfa_recovery::config::registry::is_registered(k) || template.contains_key(k))
        .collect();
    assert_eq!(dev["TAP_REQUIRE_VERIFICATION"], "service");
    assert_eq!(dev["APPROVAL_NOTIFY_GROUP"], mfa_recovery::dev::DEMO_APPROVERS);
    assert_eq!(dev["TAP_PROTECTED_GROUPS"], mfa_recovery::dev::DEMO_PROTECTED);
    let found = disagreements(&template, &dev, EXCEPTIONS, DEV_ONLY);
    assert!(found.is_empty(), "dev and the templates differ:\n{}", found.join("\n"));
    // Every exception still names a setting one of them has, with a reason.
    for (key, why) in EXCEPTIONS.iter().chain(DEV_ONLY) {
        assert!(
            template.contains_key(*key) || dev.contains_key(*key),
            "{key} is listed but neither sets it"
        );
        assert!(!why.is_empty());
    }
    sim.shutdown().await;
}

#[test]
fn a_planted_difference_is_found_and_a_listed_one_is_not() {
    let template: BTreeMap<String, Option<String>> = [
        ("RISK_CHECK".to_owned(), Some("if_available".to_owned())),
        ("TAP_PROTECTED_GROUPS".to_owned(), Some(String::new())),
        ("AZURE_CLIENT_ID".to_owned(), None),
    ]
    .into_iter()
    .collect();
    let dev = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let exceptions = [("AZURE_CLIENT_ID", "the deployment's identity")];
    // The same posture (dev leaving RISK_CHECK to its default, which is the templates' value).
    assert_eq!(
        disagreements(&template, &dev(&[]), &exceptions, &[]),
        Vec::<String>::new()
    );
    // A planted difference in a template setting, and a posture setting only dev sets.
    let found = disagreements(
        &template,
        &dev(&[("RISK_CHECK", "off"), ("ADDRESS_MIN_AGE_DAYS", "0")]),
        &exceptions,
        &[],
    );
    assert!(found.iter().any(|f| f.starts_with("RISK_CHECK")), "{found:?}");
    assert!(found.iter().any(|f| f.starts_with("ADDRESS_MIN_AGE_DAYS")), "{found:?}");
    // A deployment's own value with no exception is a difference too.
    assert_eq!(disagreements(&template, &dev(&[]), &[], &[]).len(), 1);
    // Listed, it is not.
    let listed = [
        ("RISK_CHECK", "a reason"),
        ("AZURE_CLIENT_ID", "the deployment's identity"),
    ];
    assert!(disagreements(&template, &dev(&[("RISK_CHECK", "off")]), &listed, &[]).is_empty());
}

#[tokio::test]
async fn dev_relaxed_is_the_old_posture_and_a_seed_without_the_demo_groups_names_none() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let relaxed = mfa_recovery::dev::dev_vars(&sim, 7071, mfa_recovery::dev::Posture::Relaxed);
    assert_eq!(relaxed["TAP_REQUIRE_VERIFICATION"], "attested");
    assert!(!relaxed.contains_key("APPROVAL_NOTIFY_GROUP") && !relaxed.contains_key("TAP_PROTECTED_GROUPS"));
    // The banner says the posture the settings give, whichever it is.
    let said = |vars| mfa_recovery::dev::posture_lines(&mfa_recovery::config::Settings::from_map(&vars).unwrap());
    let loose = said(relaxed);
    assert!(
        loose.contains("attested") && loose.contains("approvals are off") && loose.contains("no group is protected"),
        "{loose}"
    );
    let shipped = said(mfa_recovery::dev::dev_vars(
        &sim,
        7071,
        mfa_recovery::dev::Posture::Shipped,
    ));
    assert!(
        shipped.contains("=service") && shipped.contains("Isaiah Langer") && shipped.contains("Johanna"),
        "{shipped}"
    );
    sim.shutdown().await;
    let mut seed = Seed::demo();
    seed.groups.clear();
    let sim = Simulator::start(seed, "127.0.0.1:0").await.unwrap();
    let shipped = mfa_recovery::dev::dev_vars(&sim, 7071, mfa_recovery::dev::Posture::Shipped);
    assert_eq!(shipped["TAP_REQUIRE_VERIFICATION"], "service");
    assert!(!shipped.contains_key("APPROVAL_NOTIFY_GROUP") && !shipped.contains_key("TAP_PROTECTED_GROUPS"));
    sim.shutdown().await;
}
