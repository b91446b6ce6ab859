//! The real Azure SDK clients against the simulator: `ManagedIdentityCredential` (App Service
//! protocol through `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`) and the Key Vault `SecretClient`
//! (401 challenge, then the token for `https://vault.azure.net`).
//!
//! The credential reads `IDENTITY_ENDPOINT` from the process environment, so this file holds a
//! single test that sets it before building the credential; no other test shares the process.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

/// Sends requests for `https://<vault>.vault.azure.net` to the simulator over plain http. The
/// client keeps its real vault URL, so the SDK's https-only and challenge-resource checks stay on.
#[derive(Debug)]
struct ToSimulator {
    target: url::Url,
    inner: Arc<dyn HttpClient>,
}

#[async_trait]
impl HttpClient for ToSimulator {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        let url = request.url_mut();
        url.set_scheme("http").expect("scheme");
        url.set_host(self.target.host_str()).expect("host");
        url.set_port(self.target.port()).expect("port");
        self.inner.execute_request(&request).await
    }
}

#[tokio::test]
#[allow(unsafe_code)] // std::env::set_var is unsafe since Rust 2024; see SAFETY below.
async fn the_azure_sdk_gets_tokens_and_secrets_from_the_simulator() {
    let sim = common::start().await;
    // SAFETY: the only test in this process; set before any credential reads the environment.
    unsafe {
        std::env::set_var("IDENTITY_ENDPOINT", sim.identity_endpoint());
        std::env::set_var("IDENTITY_HEADER", sim.identity_header());
    }
    let client_id = sim.seed().managed_identity.client_id.clone();
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: Some(UserAssignedId::ClientId(client_id)),
        ..Default::default()
    }))
    .expect("credential");

    let token = credential
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .expect("token");
    assert!(token.expires_on > time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    let graph = common::Graph::with_token(&sim, token.token.secret().to_owned());
    let (status, _) = graph.get(&format!("/v1.0/users/{}", common::ALEX)).await;
    assert_eq!(status, reqwest::StatusCode::OK);

    let transport = ToSimulator {
        target: url::Url::parse(sim.base_url()).unwrap(),
        inner: azure_core::http::new_http_client(None),
    };
    let options = SecretClientOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(transport))),
            ..Default::default()
        },
        ..Default::default()
    };
    let secrets = SecretClient::new(&sim.key_vault_uri(), credential.clone(), Some(options)).expect("secret client");
    let secret = secrets
        .get_secret("twilio-auth-token", None)
        .await
        .expect("secret")
        .into_model()
        .expect("model");
    assert_eq!(secret.value, sim.secret("twilio-auth-token"));
    let missing = secrets
        .get_secret("no-such-secret", None)
        .await
        .expect_err("missing secret");
    assert_eq!(missing.http_status(), Some(azure_core::http::StatusCode::NotFound));
}
