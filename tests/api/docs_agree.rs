//! The docs name only what exists: every setting, error code, API route and audit action named in
//! `docs/` and the README is one the code has; and every setting and error code is documented.
//! The checks are functions run on the real docs and on planted fixtures (each must be caught).

use std::collections::BTreeSet;

use regex::Regex;

use crate::helpers::repo_path;

/// Every Markdown file the admin reads: the README and `docs/*.md`.
fn docs() -> Vec<(String, String)> {
    let mut out = vec![(
        "README.md".to_owned(),
        std::fs::read_to_string(repo_path("README.md")).unwrap(),
    )];
    for entry in std::fs::read_dir(repo_path("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Names in backticks that look like settings: UPPER_SNAKE with at least one underscore.
fn named_settings(text: &str) -> BTreeSet<String> {
    let re = Regex::new(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`").unwrap();
    re.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

/// Error codes as the docs give them: a status then a code (`409 would_leave_no_method`, or a
/// table row `| 409 | \`code\` |`).
fn named_codes(text: &str) -> BTreeSet<String> {
    let inline = Regex::new(r"\b[45]\d\d`? `([a-z][a-z_]+)`").unwrap();
    let joined = Regex::new(r"`[45]\d\d ([a-z][a-z_]+)`").unwrap();
    let row = Regex::new(r"\|\s*[45]\d\d\s*\|\s*`([a-z][a-z_]+)`").unwrap();
    inline
        .captures_iter(text)
        .chain(joined.captures_iter(text))
        .chain(row.captures_iter(text))
        .map(|c| c[1].to_owned())
        .collect()
}

/// API routes as the docs give them (`/api/users/{user}/tap`), query and trailing text dropped.
fn named_routes(text: &str) -> BTreeSet<String> {
    let re = Regex::new(r"(?:GET|POST|PUT|DELETE|PATCH)\s+`?(/api/[A-Za-z0-9_{}/.*-]*)").unwrap();
    re.captures_iter(text)
        .map(|c| c[1].trim_end_matches(['.', '/']).to_owned())
        // ServiceNow's own Table API (`/api/now/…`) is not this service's.
        .filter(|r| !r.is_empty() && !r.starts_with("/api/now/"))
        .collect()
}

/// Audit actions in backticks: `tap.issue`, `user.search`, … (the prefixes actions have).
fn named_actions(text: &str) -> BTreeSet<String> {
    let re = Regex::new(r"`((?:tap|mfa|request|audit|sweep|verification|user)\.([a-zA-Z]+))`").unwrap();
    // `request.reason`, `verification.id`, `tap.error`: fields of an answer, not actions.
    let fields = [
        "action",
        "reason",
        "scope",
        "ticket",
        "id",
        "error",
        "requestedBy",
        "verifiedBy",
        "channel",
        "delivery",
    ];
    re.captures_iter(text)
        .filter(|c| !fields.contains(&&c[2]))
        .map(|c| c[1].to_owned())
        .collect()
}

/// Settings the docs name that are not the binary's: the platform's, azd's, the templates'
/// outputs, the test hooks.
fn not_a_setting(name: &str) -> bool {
    name.starts_with("MFA_RECOVERY_")
        || name.starts_with("AZURE_")
        || name.starts_with("FUNCTIONS_")
        || name.starts_with("WEBSITE_")
        || name.starts_with("AZD_")
        || name.starts_with("APPLICATIONINSIGHTS_")
        || name.starts_with("AzureWebJobs")
        || name.starts_with("FUZZ_")
        // aws-lc-sys's build settings (.cargo/config.toml).
        || name.starts_with("AWS_LC_SYS_")
        || [
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "RUST_LOG",
            "SSL_CERT_FILE",
            "CONSOLE_SCREENSHOTS",
            "REQUESTS_DIR",
            "AUDIT_DIR",
            "SWEEP_DIR",
            "LIMITS_DIR",
            "CHROMIUM",
            // benches/intake.sh's: `dev --store-delay-ms`.
            "STORE_DELAY_MS",
        ]
        .contains(&name)
}

/// HTTP-layer codes (not `ErrorCode`s): the edge's own answers.
const EDGE_CODES: [&str; 7] = [
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "console_not_configured",
    "unauthenticated",
];

/// A route the docs name matches one the router serves (`{x}` matches any one segment).
fn route_served(named: &str, served: &[String]) -> bool {
    let parts: Vec<&str> = named.split('/').collect();
    served.iter().any(|s| {
        let want: Vec<&str> = s.split('/').collect();
        want.len() == parts.len()
            && want
                .iter()
                .zip(&parts)
                .all(|(w, p)| w.starts_with('{') || p.starts_with('{') || w == p || *w == "*")
            || (s.ends_with("{*path}") && named.starts_with(s.trim_end_matches("{*path}")))
    })
}

fn served_routes() -> Vec<String> {
    let mut routes: Vec<String> = Vec::new();
    for f in mfa_recovery::host::protocol::functions::FUNCTIONS {
        if let mfa_recovery::host::protocol::functions::Trigger::Http { route, .. } = f.trigger {
            // An optional last segment (`{id?}`) serves the route with and without it.
            match route.rsplit_once('/') {
                Some((head, last)) if last.ends_with("?}") => {
                    routes.push(format!("/api/{head}"));
                    routes.push(format!("/api/{}", route.replace("?}", "}")));
                }
                _ => routes.push(format!("/api/{route}")),
            }
        }
    }
    // Routes the catalog's functions serve below their own (the sweeps' files, the console's).
    routes.extend(["/api/sweeps/{run}/{file}", "/api/console", "/api/console/{*path}"].map(str::to_owned));
    routes
}

/// What one document names that does not exist.
fn unknown_in(
    text: &str,
    registry: &dyn Fn(&str) -> bool,
    codes: &BTreeSet<String>,
    routes: &[String],
    actions: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for s in named_settings(text) {
        if !not_a_setting(&s) && !registry(&s) {
            out.push(format!("setting `{s}`"));
        }
    }
    for c in named_codes(text) {
        if !codes.contains(&c) && !EDGE_CODES.contains(&c.as_str()) {
            out.push(format!("error code `{c}`"));
        }
    }
    for r in named_routes(text) {
        if !route_served(&r, routes) {
            out.push(format!("route `{r}`"));
        }
    }
    for a in named_actions(text) {
        if !actions.contains(&a) {
            out.push(format!("audit action `{a}`"));
        }
    }
    out
}

fn codes() -> BTreeSet<String> {
    mfa_recovery::vocab::ErrorCode::all()
        .map(|c| c.as_str().to_owned())
        .collect()
}

fn actions() -> BTreeSet<String> {
    mfa_recovery::audit::Action::ALL
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}

#[test]
fn the_docs_name_only_settings_codes_routes_and_actions_that_exist() {
    let registry = |k: &str| mfa_recovery::config::registry::is_registered(k);
    let (codes, routes, actions) = (codes(), served_routes(), actions());
    let mut problems = Vec::new();
    for (name, text) in docs() {
        for p in unknown_in(&text, &registry, &codes, &routes, &actions) {
            problems.push(format!("{name}: {p}, which the code does not have"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_error_code_and_setting_is_documented() {
    let all: String = docs().into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("\n");
    let missing: Vec<String> = codes()
        .into_iter()
        .filter(|c| !Regex::new(&format!(r"\b{c}\b")).unwrap().is_match(&all))
        .collect();
    assert!(missing.is_empty(), "error codes no doc names: {missing:?}");
    for setting in mfa_recovery::config::registry::SETTINGS {
        for key in setting.keys {
            assert!(all.contains(&format!("`{key}`")), "no doc names the setting {key}");
        }
    }
}

/// The checks catch what they are for: a planted unknown code, setting, route and action.
#[test]
fn a_planted_unknown_name_is_caught() {
    let registry = |k: &str| mfa_recovery::config::registry::is_registered(k);
    let (codes, routes, actions) = (codes(), served_routes(), actions());
    let planted = "| 409 | `pass_already_sent` | ... |\nSet `TAP_MAX_PASSES_EVER`.\n`GET /api/users/{user}/passes`\nrecorded as `tap.revoke`.\nAnd `403 address_is_callers`, `TAP_MAX_PER_CALLER_PER_HOUR`, `GET /api/users/{user}`, `user.search`, `AZURE_ENV_NAME`.";
    let found = unknown_in(planted, &registry, &codes, &routes, &actions);
    assert_eq!(
        found,
        vec![
            "setting `TAP_MAX_PASSES_EVER`".to_owned(),
            "error code `pass_already_sent`".to_owned(),
            "route `/api/users/{user}/passes`".to_owned(),
            "audit action `tap.revoke`".to_owned(),
        ]
    );
}
