//! The Graph client against the simulated Graph: typed reads, retries that honour Retry-After,
//! and a TAP create that is never resent blindly.

use std::sync::Arc;

use mfa_recovery::dev::SimCredential;
use mfa_recovery::graph::models::UserRef;
use mfa_recovery::graph::{CreateTapError, GraphClient, GraphError};
use mfa_recovery_sim::{Seed, Simulator};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const ALEX: &str = "b0000002-0000-4000-8000-000000000002";

async fn setup() -> (Simulator, GraphClient) {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let graph = GraphClient::new(
        reqwest::Client::new(),
        sim.graph_endpoint().parse().unwrap(),
        Arc::new(SimCredential::new(&sim)),
    );
    (sim, graph)
}

async fn fault(sim: &Simulator, fault: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn requests_to(sim: &Simulator, method: &str, path_suffix: &str) -> Vec<Value> {
    let log: Value = reqwest::get(format!("{}/sim/requests", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["path"].as_str().unwrap().ends_with(path_suffix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn users_are_read_by_id_or_upn_including_guest_upns() {
    let (_sim, graph) = setup().await;
    let alex = graph
        .get_user(&UserRef::parse("alex.wilber@contoso.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alex.id.to_string(), ALEX);
    assert_eq!(alex.manager.unwrap().mail.as_deref(), Some("megan.bowen@contoso.test"));
    assert_eq!(alex.other_mails, vec!["alex.wilber@personal.example".to_owned()]);
    let guest = graph
        .get_user(&UserRef::parse("pat.guest_fabrikam.example#EXT#@contoso.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!guest.is_member());
    let by_id = graph.get_user(&UserRef::parse(ALEX).unwrap()).await.unwrap().unwrap();
    assert_eq!(by_id.user_principal_name, "alex.wilber@contoso.test");
    assert!(
        graph
            .get_user(&UserRef::parse("nobody@contoso.test").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn membership_and_policy_are_typed() {
    let (_sim, graph) = setup().await;
    let patti = "b0000013-0000-4000-8000-000000000013".parse().unwrap();
    let memberships = graph.transitive_member_of(&patti).await.unwrap();
    assert!(
        memberships
            .iter()
            .any(|m| m.is_role() && m.role_template_id.as_deref() == Some("729827e3-9c14-49f7-bb1b-9608f156bbb8"))
    );
    assert!(
        memberships
            .iter()
            .any(|m| m.is_group() && m.display_name.as_deref() == Some("Helpdesk Admins"))
    );
    let policy = graph.tap_policy().await.unwrap();
    assert!(policy.is_enabled());
    assert_eq!(
        (policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes),
        (60, 480)
    );
    assert_eq!(policy.include_targets[0].id, "a1b2c3d4-0001-4000-8000-000000000001");
}

#[tokio::test]
async fn reads_retry_throttling_after_retry_after_and_give_up_with_the_code() {
    let (sim, graph) = setup().await;
    fault(
        &sim,
        json!({"route": "/v1.0/policies/**", "status": 429, "retryAfter": 1, "count": 1}),
    )
    .await;
    fault(&sim, json!({"route": "/v1.0/policies/**", "status": 503, "count": 1})).await;
    let started = std::time::Instant::now();
    assert!(graph.tap_policy().await.is_ok());
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After is the minimum wait"
    );
    assert_eq!(requests_to(&sim, "GET", "temporaryAccessPass").await.len(), 3);
    // Past the attempt budget, the typed error keeps status, code and request id.
    fault(&sim, json!({"route": "/v1.0/policies/**", "status": 503, "count": 10})).await;
    match graph.tap_policy().await {
        Err(GraphError::Status { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (503, "serviceNotAvailable"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_created_pass_is_kept_secret_and_returned_once() {
    let (sim, graph) = setup().await;
    let created = graph.create_tap(&ALEX.parse().unwrap(), 60, true).await.unwrap();
    let taps: Value = reqwest::get(format!("{}/sim/taps", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = taps["value"][0]["temporaryAccessPass"].as_str().unwrap();
    assert_eq!(created.pass.expose_secret(), pass);
    assert!(!format!("{created:?}").contains(pass), "Debug never shows the pass");
    assert_eq!(created.method.lifetime_in_minutes, Some(60));
}

#[tokio::test]
async fn a_throttled_create_is_retried_because_it_was_not_processed() {
    let (sim, graph) = setup().await;
    fault(&sim, json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "status": 429, "retryAfter": 1})).await;
    assert!(graph.create_tap(&ALEX.parse().unwrap(), 60, true).await.is_ok());
    assert_eq!(requests_to(&sim, "POST", "temporaryAccessPassMethods").await.len(), 2);
}

#[tokio::test]
async fn a_create_with_an_unknown_outcome_is_reconciled_not_resent() {
    let (sim, graph) = setup().await;
    // Graph creates the pass but the client sees a 504.
    fault(&sim, json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "status": 504, "after": true})).await;
    let user = ALEX.parse().unwrap();
    match graph.create_tap(&user, 60, true).await {
        Err(CreateTapError::Unknown { orphan: Some(id), .. }) => {
            let listed = graph.list_taps(&user).await.unwrap();
            assert_eq!(listed[0].id, id, "the orphan is the pass Graph holds");
            graph.delete_tap(&user, &id).await.unwrap();
            graph.delete_tap(&user, &id).await.unwrap();
            assert!(graph.list_taps(&user).await.unwrap().is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        requests_to(&sim, "POST", "temporaryAccessPassMethods").await.len(),
        1,
        "sent exactly once"
    );
    // The same when the answer never comes back in time (the connection is cut by the client).
    let slow = GraphClient::new(
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap(),
        sim.graph_endpoint().parse().unwrap(),
        Arc::new(SimCredential::new(&sim)),
    );
    fault(&sim, json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "latencyMs": 800, "count": 1})).await;
    let outcome = slow.create_tap(&user, 60, true).await;
    assert!(matches!(outcome, Err(CreateTapError::Unknown { .. })), "{outcome:?}");
    // The simulator logs a request when it finishes, and one the client cut off may not finish:
    // either way the client sent it once, not again.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(requests_to(&sim, "POST", "temporaryAccessPassMethods").await.len() <= 2);
}

#[tokio::test]
async fn a_refused_create_keeps_graphs_code() {
    let (_sim, graph) = setup().await;
    let lynne = "b0000004-0000-4000-8000-000000000004".parse().unwrap();
    match graph.create_tap(&lynne, 60, true).await {
        Err(CreateTapError::Refused(GraphError::Status { status: 400, code, .. })) => assert_eq!(code, "badRequest"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn mail_is_sent_from_the_service_mailbox_without_a_sent_copy() {
    let (sim, graph) = setup().await;
    let message = json!({"subject": "Notice", "body": {"contentType": "Text", "content": "Hello"},
        "toRecipients": [{"emailAddress": {"address": "alex.wilber@contoso.test"}}]});
    graph.send_mail("mfa-recovery@contoso.test", &message).await.unwrap();
    assert_eq!(sim.outbox()[0].to, vec!["alex.wilber@contoso.test".to_owned()]);
}
