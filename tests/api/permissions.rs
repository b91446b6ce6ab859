//! Least privilege, proven: the simulated identity holds exactly the templates' grants
//! (`infra::the_simulated_identity_holds_exactly_the_templates_grants`), and each grant in turn is
//! taken away here: some feature then stops and its answer names the grant. A grant Graph also
//! accepts Directory.Read.All for (which the directory audit log needs) changes nothing alone; it
//! is shown needed with Directory.Read.All taken away too, and the list of those is pinned.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub(crate) fn grants() -> BTreeSet<String> {
    let graph = std::fs::read_to_string(repo_path("infra/modules/graph.bicep")).unwrap();
    let always = &graph[graph.find("var always = [").unwrap()..];
    let always = &always[..always.find("\n]").unwrap()];
    regex::Regex::new(r"(?m)^\s*'([A-Za-z]+\.[A-Za-z.]+)'")
        .unwrap()
        .captures_iter(always)
        .map(|c| c[1].to_owned())
        .collect()
}

/// What each feature answered, as `feature: status code message`.
async fn probe(app: &TestApp) -> Vec<String> {
    let verification = json!({"method": "manager callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now()});
    let ticket = json!({"system": "jira", "id": "HELP-42"});
    let token = app.token(&["Recovery.Tap", "Recovery.Reset", "Audit.Read"]);
    let alex = "alex.wilber@contoso.test";
    let calls: [(&str, reqwest::Method, String, Option<Value>); 4] = [
        ("look-up", reqwest::Method::GET, format!("/api/users/{alex}"), None),
        (
            "tap",
            reqwest::Method::POST,
            format!("/api/users/{alex}/tap"),
            Some(
                json!({"delivery": {"channel": "email"}, "ticket": ticket, "reason": "lost phone", "verification": verification}),
            ),
        ),
        (
            "reset",
            reqwest::Method::POST,
            "/api/users/adele.vance@contoso.test/mfa/reset".to_owned(),
            Some(
                json!({"ticket": ticket, "reason": "lost phone", "verification": verification,
                "revokeSessions": true, "tap": {"delivery": {"channel": "email"}}}),
            ),
        ),
        (
            "entra events",
            reqwest::Method::GET,
            format!("/api/audit?includeEntra=true&user={alex}"),
            None,
        ),
    ];
    let mut out = Vec::new();
    for (feature, method, path, body) in calls {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        let mut message = error["message"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        // A reset names what it could not do in its lists.
        for failed in body["failed"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                " [{}: {}]",
                failed["label"].as_str().unwrap_or("?"),
                failed["error"].as_str().unwrap_or("?")
            ));
        }
        out.push(format!(
            "{feature}: {} {} {message}",
            status.as_u16(),
            error["code"].as_str().unwrap_or("-")
        ));
        if status == StatusCode::OK && feature == "look-up" {
            // A look-up goes on where a channel's check could not be made: the channel says why.
            for (channel, seen) in body["channels"].as_object().into_iter().flatten() {
                if seen["code"] == "address_check_unavailable" {
                    // Read once for the three channels, the log's error names each.
                    let message = seen["message"].as_str().unwrap_or_default();
                    assert!(
                        message.contains(&format!("user's {channel} address")),
                        "{channel}: {message}"
                    );
                }
                if seen["available"] == false {
                    out.push(format!(
                        "look-up {channel}: {} {}",
                        seen["code"].as_str().unwrap_or("-"),
                        seen["message"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    out
}

async fn without(taken: &[&str]) -> Vec<String> {
    let app = spawn_app().await;
    app.sim
        .tenant()
        .graph_permissions
        .retain(|p| !taken.contains(&p.as_str()));
    probe(&app).await
}

#[tokio::test]
async fn each_grant_taken_away_stops_a_feature_that_names_it() {
    // With every grant, nothing is refused for a permission.
    let all = probe(&spawn_app().await).await;
    assert!(
        all.iter()
            .all(|line| !line.contains("permission_missing") && !line.contains("403")),
        "{all:#?}"
    );
    let mut covered = BTreeSet::new();
    for grant in grants() {
        let names = |lines: &[String]| {
            lines
                .iter()
                .any(|l| l.contains(&grant) || (grant.ends_with("Read.All") && l.contains(&format!("{grant} and"))))
        };
        let alone = without(&[&grant]).await;
        if names(&alone) {
            continue;
        }
        assert!(
            alone == all
                || alone
                    .iter()
                    .zip(&all)
                    .all(|(a, b)| a.split(':').next() == b.split(':').next()),
            "{grant} taken away changed something without naming it: {alone:#?}"
        );
        let both = without(&[&grant, "Directory.Read.All"]).await;
        assert!(
            names(&both),
            "{grant}: no feature stops and names it, even without Directory.Read.All: {both:#?}"
        );
        covered.insert(grant);
    }
    // Graph accepts Directory.Read.All for these reads too (the user and its memberships, group
    // members and owners, service principals), so while it is granted for the directory audit
    // log they are redundant; they stay granted so that a deployment that drops Directory.Read.All
    // (ADDRESS_MIN_AGE_DAYS=0, no includeEntra) keeps working (docs/deploy.md says so).
    assert_eq!(
        covered,
        ["Application.Read.All", "GroupMember.Read.All", "User.Read.All"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        "the grants Directory.Read.All covers"
    );
}
