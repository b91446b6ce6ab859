//! Shared helpers for the simulator's tests: a simulator on a free port and a small Graph client.
#![allow(dead_code)]

use mfa_recovery_sim::{Seed, Simulator, TokenRequest};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

pub const ADELE: &str = "b0000001-0000-4000-8000-000000000001";
pub const ALEX: &str = "b0000002-0000-4000-8000-000000000002";
pub const ISAIAH: &str = "b0000003-0000-4000-8000-000000000003";
pub const LYNNE: &str = "b0000004-0000-4000-8000-000000000004";
pub const PAT_GUEST: &str = "b0000005-0000-4000-8000-000000000005";
pub const DIEGO_DISABLED: &str = "b0000006-0000-4000-8000-000000000006";
pub const MEGAN: &str = "b0000007-0000-4000-8000-000000000007";
pub const GRADY: &str = "b0000009-0000-4000-8000-000000000009";
pub const LEE: &str = "b0000011-0000-4000-8000-000000000011";
pub const MIRIAM: &str = "b0000012-0000-4000-8000-000000000012";
pub const PATTI: &str = "b0000013-0000-4000-8000-000000000013";
pub const MAILBOX: &str = "mfa-recovery@contoso.test";

pub const MOBILE: &str = "3179e48a-750b-4051-897c-87b9720928f7";
pub const ALTERNATE: &str = "b6332ec1-7057-4abe-9331-3d72feddfe41";
pub const OFFICE: &str = "e37fc753-ff3b-4958-9484-eaa9425c82bc";
pub const PASSWORD: &str = "28c10230-6103-485e-b985-444c60001490";

pub async fn start() -> Simulator {
    Simulator::start(Seed::demo(), "127.0.0.1:0")
        .await
        .expect("simulator starts")
}

pub async fn start_with(edit: impl FnOnce(&mut Value)) -> Simulator {
    let mut seed: Value = serde_json::from_str(mfa_recovery_sim::seed::DEMO_TENANT).unwrap();
    edit(&mut seed);
    let seed = Seed::from_json(&seed.to_string()).unwrap();
    Simulator::start(seed, "127.0.0.1:0").await.expect("simulator starts")
}

/// A token from the simulated managed identity endpoint, as the function app gets one.
pub async fn mi_token(sim: &Simulator, resource: &str) -> String {
    let response = Client::new()
        .get(sim.identity_endpoint())
        .query(&[("api-version", "2019-08-01"), ("resource", resource)])
        .header("x-identity-header", sim.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A Graph token with chosen application permissions (for tests that play an administrator).
pub fn graph_token_with(sim: &Simulator, roles: &[&str]) -> String {
    sim.issue_token(&TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        version: Some(1),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..TokenRequest::default()
    })
}

/// A Graph client holding a token.
pub struct Graph {
    pub client: Client,
    pub base: String,
    pub token: String,
}

impl Graph {
    /// With the managed identity's token (the function app's permissions).
    pub async fn as_app(sim: &Simulator) -> Graph {
        let token = mi_token(sim, "https://graph.microsoft.com").await;
        Graph {
            client: Client::new(),
            base: sim.graph_endpoint(),
            token,
        }
    }

    pub fn with_token(sim: &Simulator, token: String) -> Graph {
        Graph {
            client: Client::new(),
            base: sim.graph_endpoint(),
            token,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// A GET as an advanced query: with `ConsistencyLevel: eventual`.
    pub async fn get_eventual(&self, path: &str) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Method ids of a user by type suffix (`phoneAuthenticationMethod` -> ids).
    pub async fn method_types(&self, user: &str, version: &str) -> Vec<String> {
        let (status, body) = self
            .get(&format!("/{version}/users/{user}/authentication/methods"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["@odata.type"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("#microsoft.graph.")
                    .to_owned()
            })
            .collect()
    }

    pub async fn create_tap(&self, user: &str, body: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/v1.0/users/{user}/authentication/temporaryAccessPassMethods"),
            body,
        )
        .await
    }
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {"request-id", ...}}}`.
pub fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["innerError"]["request-id"].is_string(), "{body}");
    assert!(body["error"]["innerError"]["date"].is_string(), "{body}");
}

pub fn json_null() -> Value {
    json!(null)
}
