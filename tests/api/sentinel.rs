//! #35: the Sentinel rules the templates deploy, held to the published alert-rule type (the
//! vendored bicep-types file) and to the table the export writes; and the postprovision hook that
//! locks the audit container's immutability policy, run against a recorded `az`.
//! (The rules' KQL is checked by Microsoft's Kusto parser in scripts/check-kql.js, in the test
//! command.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::helpers::*;

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).unwrap()
}

/// Every string literal a type of the type file allows (through unions and arrays).
fn literals(types: &[Value], reference: &str) -> BTreeSet<String> {
    let index: usize = reference.trim_start_matches("#/").parse().unwrap();
    let t = &types[index];
    match t["$type"].as_str().unwrap() {
        "StringLiteralType" => [t["value"].as_str().unwrap().to_owned()].into(),
        "UnionType" => t["elements"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| literals(types, e["$ref"].as_str().unwrap()))
            .collect(),
        "ArrayType" => literals(types, t["itemType"]["$ref"].as_str().unwrap()),
        _ => BTreeSet::new(),
    }
}

/// An ISO 8601 duration the rules use (`PT5M`, `PT1H`, `P2D`, `P14D`), in minutes.
fn minutes(d: &str) -> u64 {
    let re = regex::Regex::new(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$").unwrap();
    let c = re
        .captures(d)
        .unwrap_or_else(|| panic!("{d} is not an ISO 8601 duration"));
    let n = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<u64>().unwrap());
    n(1) * 1440 + n(2) * 60 + n(3)
}

/// Each rule has what a scheduled rule needs, with values the published type allows (severity,
/// tactics), a schedule Sentinel takes (frequency 5 minutes to 14 days, period at least the
/// frequency and at most 14 days: https://learn.microsoft.com/azure/sentinel/create-analytics-rules),
/// MITRE technique ids, and entity mappings with documented identifiers
/// (https://learn.microsoft.com/azure/sentinel/entities-reference).
#[test]
fn the_rules_follow_the_published_alert_rule_type() {
    let types: Vec<Value> = serde_json::from_str(&read(
        "xtask/bicep-types/az/microsoft.securityinsights/2025-09-01/types.json",
    ))
    .unwrap();
    let scheduled = types
        .iter()
        .find(|t| t["$type"] == "ObjectType" && t["name"] == "ScheduledAlertRuleProperties")
        .unwrap();
    let allowed = |p: &str| literals(&types, scheduled["properties"][p]["type"]["$ref"].as_str().unwrap());
    let (severities, tactics) = (allowed("severity"), allowed("tactics"));
    assert!(
        severities.contains("High") && tactics.contains("Persistence"),
        "{tactics:?}"
    );
    let identifiers = |entity: &str| -> &[&str] {
        match entity {
            "Account" => &[
                "Name",
                "FullName",
                "NTDomain",
                "DnsDomain",
                "UPNSuffix",
                "Sid",
                "AadTenantId",
                "AadUserId",
                "PUID",
                "IsDomainJoined",
                "DisplayName",
                "ObjectGuid",
            ],
            "IP" => &["Address", "AddressScope"],
            other => panic!("entity type {other} is not one the rules use"),
        }
    };
    let rules: Vec<Value> = serde_json::from_str(&read("infra/sentinel/rules.json")).unwrap();
    assert_eq!(rules.len(), 6);
    let mut ids = BTreeSet::new();
    let technique = regex::Regex::new(r"^T\d{4}$").unwrap();
    for r in &rules {
        let id = r["id"].as_str().unwrap();
        assert!(ids.insert(id), "{id} twice");
        assert!(r["displayName"].as_str().unwrap().starts_with("mfa-recovery: "), "{id}");
        assert!(r["description"].as_str().unwrap().len() > 40, "{id}: say what to do");
        assert!(severities.contains(r["severity"].as_str().unwrap()), "{id}");
        for t in r["tactics"].as_array().unwrap() {
            assert!(tactics.contains(t.as_str().unwrap()), "{id}: tactic {t}");
        }
        let techniques = r["techniques"].as_array().unwrap();
        assert!(!techniques.is_empty(), "{id}: a MITRE technique");
        assert!(
            techniques.iter().all(|t| technique.is_match(t.as_str().unwrap())),
            "{id}"
        );
        let (frequency, period) = (
            minutes(r["queryFrequency"].as_str().unwrap()),
            minutes(r["queryPeriod"].as_str().unwrap()),
        );
        assert!((5..=14 * 1440).contains(&frequency), "{id}");
        assert!(period >= frequency && period <= 14 * 1440, "{id}");
        for m in r["entityMappings"].as_array().unwrap() {
            let entity = m["entityType"].as_str().unwrap();
            for f in m["fieldMappings"].as_array().unwrap() {
                assert!(
                    identifiers(entity).contains(&f["identifier"].as_str().unwrap()),
                    "{id}: {f}"
                );
            }
        }
    }
}

/// The KQL check's schema of the custom table is the table the templates create.
#[test]
fn the_checked_schema_is_the_table_the_templates_create() {
    let tables: Value = serde_json::from_str(&read("infra/sentinel/tables.json")).unwrap();
    let declared: BTreeSet<(String, String)> = tables["MfaRecoveryAudit_CL"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let bicep = read("infra/modules/auditexport.bicep");
    let column = regex::Regex::new(r"\{ name: '(\w+)', table: '(\w+)', stream: '(\w+)' \}").unwrap();
    let created: BTreeSet<(String, String)> = column
        .captures_iter(&bicep)
        .map(|c| (c[1].to_owned(), c[2].to_lowercase()))
        .collect();
    assert_eq!(declared, created);
}

/// A directory with a recording `az` and `azd`: each call's arguments are appended to `calls`;
/// `az … show` prints `show` (what `az` prints for the hook's query).
fn recorder(show: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir("az-recorder");
    let calls = dir.join("calls");
    for tool in ["az", "azd"] {
        let script = format!(
            "#!/bin/sh\necho \"{tool} $*\" >> '{}'\ncase \"$*\" in *\"immutability-policy show\"*) echo '{show}' ;; esac\n",
            calls.display()
        );
        let path = dir.join(tool);
        std::fs::write(&path, script).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    (dir, calls)
}

fn run_hook(dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new("sh")
        .arg(repo_path("scripts/azd/lock-audit-policy.sh"))
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env("AZURE_STORAGE_ACCOUNT", "stmfarecovery")
        .env("AZURE_RESOURCE_GROUP", "rg-mfa-recovery")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn calls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The postprovision hook, against a recorded `az`: an unlocked policy is locked with the etag it
/// was read with and the next provision told to leave it alone; a locked one is extended when the
/// retention grew, and only then; the opt-out calls nothing.
#[test]
fn the_hook_locks_the_audit_policy_once_and_only_extends_it_after() {
    let show = "--account-name stmfarecovery --container-name audit --resource-group rg-mfa-recovery";
    let (dir, log) = recorder("Unlocked \"0x8DD1F2A3B4C5D6E\" 365");
    // azd's subscription, named on each call.
    let sub = "--subscription 8f0c2c1e-0000-4000-8000-000000000001";
    let (ok, out) = run_hook(
        &dir,
        &[("AZURE_SUBSCRIPTION_ID", "8f0c2c1e-0000-4000-8000-000000000001")],
    );
    assert!(ok, "{out}");
    assert_eq!(
        calls(&log),
        vec![
            format!(
                "az storage container immutability-policy show {sub} {show} --query join(' ', [state, etag, to_string(immutabilityPeriodSinceCreationInDays)]) --output tsv"
            ),
            format!(
                "az storage container immutability-policy lock {sub} {show} --if-match \"0x8DD1F2A3B4C5D6E\" --output none"
            ),
            "azd env set MFA_RECOVERY_AUDIT_POLICY_LOCKED true".to_owned(),
        ]
    );

    // Locked already, same retention: nothing but the read and the flag.
    let (dir, log) = recorder("Locked \"0x8DD1F2A3B4C5D6F\" 365");
    let (ok, out) = run_hook(&dir, &[("MFA_RECOVERY_AUDIT_RETENTION_DAYS", "365")]);
    assert!(ok, "{out}");
    let seen = calls(&log);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen.iter().any(|c| c.contains(" lock ") || c.contains(" extend ")));

    // Locked, retention grown: extended (the one change Azure takes on a locked policy).
    let (dir, log) = recorder("Locked \"0x8DD1F2A3B4C5D6F\" 365");
    let (ok, out) = run_hook(&dir, &[("MFA_RECOVERY_AUDIT_RETENTION_DAYS", "730")]);
    assert!(ok, "{out}");
    assert!(calls(&log).contains(&format!(
        "az storage container immutability-policy extend {show} --if-match \"0x8DD1F2A3B4C5D6F\" --period 730 --allow-protected-append-writes true --output none"
    )));

    // The opt-out: no call at all, and it says what it means.
    let (dir, log) = recorder("Unlocked \"x\" 365");
    let (ok, out) = run_hook(&dir, &[("MFA_RECOVERY_LOCK_AUDIT_POLICY", "false")]);
    assert!(ok && out.contains("can delete the trail"), "{out}");
    assert!(calls(&log).is_empty());
}

/// Re-provisioning after the lock: the hook's flag reaches the storage module, which then leaves
/// the policy out (Azure refuses a create-or-update of a locked policy); azd runs the hook after
/// every provision; the opt-out is a template parameter.
#[test]
fn a_locked_policy_is_left_out_of_the_next_provision() {
    let params: Value = serde_json::from_str(&read("infra/main.parameters.json")).unwrap();
    assert_eq!(
        params["parameters"]["auditPolicyLocked"]["value"],
        "${MFA_RECOVERY_AUDIT_POLICY_LOCKED=false}"
    );
    assert_eq!(
        params["parameters"]["lockAuditPolicy"]["value"],
        "${MFA_RECOVERY_LOCK_AUDIT_POLICY=true}"
    );
    let main = read("infra/main.bicep");
    assert!(main.contains("auditPolicyLocked: auditPolicyLocked"));
    assert!(main.contains("output MFA_RECOVERY_LOCK_AUDIT_POLICY bool = lockAuditPolicy"));
    let storage = read("infra/modules/storage.bicep");
    assert!(storage.contains("immutabilityPolicies@2023-05-01' = if (!auditPolicyLocked) {"));
    let azure: String = read("azure.yaml");
    assert!(azure.contains("postprovision:") && azure.contains("./scripts/azd/lock-audit-policy.sh"));
    assert!(read("scripts/azd/lock-audit-policy.sh").contains("azd env set MFA_RECOVERY_AUDIT_POLICY_LOCKED true"));
}
