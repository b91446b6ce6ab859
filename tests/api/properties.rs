//! Property tests (proptest) of every parser that takes outside input: the TAP and reset bodies,
//! intake submissions in all three shapes with their field mappings, the Functions host's
//! envelopes, webhook signatures, audit query strings, user references, client addresses and
//! `@odata.nextLink` handling. None may panic; a refusal is always a clean 4xx with a code; the
//! app answers every generated HTTP request with a documented status, never drops a connection.

use std::collections::HashMap;

use mfa_recovery::config::Settings;
use mfa_recovery::graph::models::UserRef;
use mfa_recovery::host::envelope::{InvocationRequest, QueueInvocation, TimerInfo, decode_host_string};
use mfa_recovery::intake::submission::{self, Envelope};
use mfa_recovery::recovery::request::TapRequest;
use mfa_recovery::recovery::reset::ResetRequest;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::helpers::*;

/// Field names the parsers know, so generated objects reach past the first check.
const KNOWN: &[&str] = &[
    "delivery",
    "channel",
    "ticket",
    "system",
    "id",
    "reason",
    "lifetimeMinutes",
    "usableOnce",
    "verification",
    "method",
    "verifiedBy",
    "verifiedAt",
    "scope",
    "methods",
    "revokeSessions",
    "allowEmpty",
    "tap",
    "action",
    "user",
    "callbackUrl",
    "sys_id",
    "number",
    "issue",
    "key",
    "fields",
    "u_affected_user",
    "u_recovery_action",
    "u_delivery_channel",
    "short_description",
    "u_verification_method",
    "u_verified_by",
    "u_verified_at",
    "customfield_10050",
    "customfield_10051",
    "customfield_10052",
    "value",
    "emailAddress",
    "Data",
    "Metadata",
    "queueItem",
    "myTimer",
    "DequeueCount",
    "Id",
    "ScheduleStatus",
    "IsPastDue",
    "Last",
    "Next",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KNOWN).prop_map(str::to_owned),
        1 => "[a-zA-Z_.]{1,12}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        Just("sms".to_owned()),
        Just("email".to_owned()),
        Just("tap".to_owned()),
        Just("reset+tap".to_owned()),
        Just("alex.wilber@contoso.test".to_owned()),
        Just("2026-11-28T09:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("{pass}".to_owned()),
        Just("\u{0}\u{202e}".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with one field (possibly nested) replaced by anything.
fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    (json_value(), proptest::sample::select(paths(&valid)), any::<bool>()).prop_map(move |(v, path, drop)| {
        let mut body = valid.clone();
        let mut at = &mut body;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let Some(obj) = at.as_object_mut() else { break };
            if last {
                if drop {
                    obj.remove(seg);
                } else {
                    obj.insert(seg.clone(), v.clone());
                }
                break;
            }
            at = obj.entry(seg.clone()).or_insert(Value::Null);
        }
        body
    })
}

fn paths(v: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Value::Object(m) = v {
        for (k, child) in m {
            out.push(vec![k.clone()]);
            for mut p in paths(child) {
                p.insert(0, k.clone());
                out.push(p);
            }
        }
    }
    out
}

fn valid_tap() -> Value {
    json!({"delivery": {"channel": "sms"}, "ticket": {"system": "servicenow", "id": "INC1"}, "reason": "lost phone",
        "lifetimeMinutes": 60, "usableOnce": true,
        "verification": {"method": "callback", "verifiedBy": "agent@contoso.test", "verifiedAt": "2026-11-28T09:00:00Z"}})
}

fn valid_reset() -> Value {
    json!({"scope": "portal", "revokeSessions": true, "allowEmpty": false, "tap": {"delivery": {"channel": "email"}},
        "ticket": {"system": "jira", "id": "HELP-1"}, "reason": "lost phone",
        "verification": {"method": "callback", "verifiedBy": "agent@contoso.test", "verifiedAt": "2026-11-28T09:00:00Z"}})
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        mutated(valid_tap()).prop_map(|v| v.to_string().into_bytes()),
        mutated(valid_reset()).prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alex.wilber@contoso.test".to_owned()),
        Just("b0000001-0000-4000-8000-000000000001".to_owned()),
        ".{0,40}",
    ]
}

fn clean_refusal(e: &mfa_recovery::recovery::RecoveryError) -> bool {
    let status = mfa_recovery::host::answers::status_of(e.code).as_u16();
    e.is_refusal() && (400..=422).contains(&status) && !e.code_str().is_empty() && !e.message.is_empty()
}

fn settings() -> Settings {
    let vars: HashMap<String, String> = [
        ("AUTH_TENANT_ID", "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10"),
        ("AUTH_AUDIENCE", "api://mfa-recovery"),
        ("AUDIT_DIR", "/tmp/mfa-recovery-properties"),
        ("CALLBACK_ALLOWED_HOSTS", "hooks.contoso.test"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
        ("KEY_VAULT_URI", "https://kv-mfa-recovery.vault.azure.net/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::from_map(&vars).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tap_and_reset_bodies_never_panic_and_refuse_with_a_4xx_code(user in user(), body in body_bytes()) {
        if let Err(e) = TapRequest::parse(&user, &body) {
            prop_assert!(clean_refusal(&e), "{e:?}");
        }
        if let Err(e) = ResetRequest::parse(&user, &body) {
            prop_assert!(clean_refusal(&e), "{e:?}");
        }
    }

    #[test]
    fn intake_submissions_in_every_shape_never_panic(
        body in prop_oneof![
            body_bytes(),
            mutated(json!({"sys_id": "9d38", "number": "INC1", "u_affected_user": "alex.wilber@contoso.test",
                "u_recovery_action": "tap", "u_delivery_channel": "email", "short_description": "lost",
                "u_verification_method": "video", "u_verified_by": "agent", "u_verified_at": "2026-11-28T09:00:00Z"}))
                .prop_map(|v| v.to_string().into_bytes()),
            mutated(json!({"issue": {"key": "HELP-1", "fields": {"customfield_10050": "alex.wilber@contoso.test",
                "customfield_10051": {"value": "reset+tap"}, "customfield_10052": {"value": "email"}}}}))
                .prop_map(|v| v.to_string().into_bytes()),
            mutated(json!({"action": "tap", "user": "alex.wilber@contoso.test", "callbackUrl": "https://hooks.contoso.test/x"}))
                .prop_map(|v| v.to_string().into_bytes()),
        ],
        key in proptest::option::of(".{0,250}"),
        delivery in proptest::option::of(".{0,40}"),
    ) {
        let s = settings();
        let envelope = Envelope { delivery_id: delivery.as_deref(), idempotency_key: key.as_deref(), caller: "token:x" };
        if let Err(e) = submission::parse(&body, &envelope, &s.intake, &s.tap) {
            prop_assert!(clean_refusal(&e), "{e:?}");
        }
    }

    #[test]
    fn host_envelopes_never_panic(envelope in json_value(), raw in ".{0,60}") {
        let _ = decode_host_string(&raw);
        if let Ok(request) = serde_json::from_value::<InvocationRequest>(envelope) {
            let _ = QueueInvocation::from_envelope(&request, "queueItem");
            let _ = TimerInfo::from_envelope(&request, "myTimer");
            let _ = request.utc_now();
        }
    }

    #[test]
    fn user_references_and_client_addresses_never_panic(value in ".{0,120}", xff in ".{0,80}") {
        if let Ok(u) = UserRef::parse(&value) {
            prop_assert_eq!(UserRef::parse(&u.segment()), Ok(u));
        }
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(v) = xff.parse() {
            headers.insert("x-forwarded-for", v);
            let _ = mfa_recovery::auth::source_ip(&headers);
        }
    }

    #[test]
    fn a_next_link_is_followed_only_to_graph_endpoint(link in prop_oneof![
        ".{0,80}",
        "https?://[a-z.]{1,20}(:[0-9]{1,5})?/v1\\.0/[a-z]{0,10}",
        Just("https://graph.microsoft.com/v1.0/users?$skiptoken=x".to_owned()),
        Just("https://graph.microsoft.com.evil.test/v1.0/users".to_owned()),
        Just("https://graph.microsoft.com:444/v1.0/users".to_owned()),
    ]) {
        let sim_credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential> = std::sync::Arc::new(NoCredential);
        let graph = mfa_recovery::graph::GraphClient::new(
            reqwest::Client::new(),
            "https://graph.microsoft.com".parse().unwrap(),
            sim_credential,
        );
        if let Ok(url) = graph.next_link(&link) {
            prop_assert_eq!(url.origin(), url::Url::parse("https://graph.microsoft.com").unwrap().origin());
        }
    }
}

/// A credential that is never asked (`next_link` makes no call).
#[derive(Debug)]
struct NoCredential;

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for NoCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "not used",
        ))
    }
}

/// The app answers generated requests with documented statuses only: no 5xx but 502/503, no
/// dropped connection, a JSON error with a code for every refusal.
#[test]
fn the_app_answers_every_generated_request_with_a_documented_status() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app_with(&[("TAP_MAX_PER_CALLER_PER_HOUR", "10000")]));
    let tap = app.token(&["Recovery.Tap", "Recovery.Reset", "Recovery.Request", "Audit.Read"]);
    const ROUTES: &[(&str, &str)] = &[
        ("POST", "/api/users/{u}/tap"),
        ("POST", "/api/users/{u}/mfa/reset"),
        ("POST", "/api/requests"),
        ("GET", "/api/requests/{u}"),
        ("GET", "/api/audit"),
    ];
    let strategy = (
        proptest::sample::select(ROUTES),
        prop_oneof![Just("alex.wilber@contoso.test".to_owned()), "[a-zA-Z0-9@._%-]{1,40}"],
        body_bytes(),
        prop::collection::vec(
            (
                proptest::sample::select(
                    &[
                        "from",
                        "to",
                        "user",
                        "ticket",
                        "action",
                        "outcome",
                        "pageSize",
                        "continuation",
                        "includeEntra",
                        "x",
                    ][..],
                ),
                text(),
            ),
            0..4,
        ),
        prop_oneof![
            3 => Just(Some(tap.clone())),
            1 => Just(None),
            1 => Just(Some("Bearer not.a.jwt".to_owned())),
        ],
        proptest::option::of(("(sha256=)?[0-9a-f]{0,64}", "[ -~]{0,20}")),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(150));
    runner
        .run(&strategy, |((method, route), user, body, query, token, signature)| {
            let path = route.replace(
                "{u}",
                &url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>(),
            );
            let mut url = url::Url::parse(&format!("{}{path}", app.base)).unwrap();
            for (k, v) in &query {
                url.query_pairs_mut().append_pair(k, v);
            }
            let (status, text) = rt.block_on(async {
                let mut r = app.client.request(method.parse().unwrap(), url.clone());
                if let Some(t) = &token {
                    r = r.bearer_auth(t.trim_start_matches("Bearer "));
                }
                if let Some((sig, id)) = &signature {
                    r = r
                        .header("x-hub-signature", sig.as_str())
                        .header("x-atlassian-webhook-identifier", id.as_str());
                }
                if method == "POST" {
                    r = r.header("content-type", "application/json").body(body.clone());
                }
                let response = r.send().await.expect("the connection is answered, never dropped");
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            });
            prop_assert!(
                !(500..600).contains(&status) || status == 502 || status == 503,
                "{method} {url}: {status} {text}"
            );
            if status >= 400 {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                prop_assert!(v["error"]["code"].is_string(), "{method} {url}: {status} {text}");
            }
            Ok(())
        })
        .unwrap();
    let _ = Map::<String, Value>::new();
}
