//! Microsoft Graph: one shared `reqwest` client, tokens from the managed identity, the base URL
//! from `GRAPH_ENDPOINT`, retries on 429/503/504 that honour `Retry-After`, and a typed error that
//! keeps the status, Graph's error code and the request id (never the body).
//!
//! Every value that goes into `$filter` passes through `odata::quote`, and URLs are built with
//! `Url::query_pairs_mut`, which percent-encodes them.

mod batch;
pub mod models;
pub mod odata;

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use serde_json::Value;
use url::Url;

/// A failed Graph call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error.
    #[error("Graph answered {status} {code} (request id {request_id})")]
    Status {
        status: u16,
        code: String,
        request_id: String,
        /// The permission the refused call needs (`permission_for` its path), when known.
        needs: Option<&'static str>,
    },
    /// No answer: connection, timeout, or no token.
    #[error("Graph could not be reached: {0}")]
    Unreachable(String),
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Status { status, .. } => Some(*status),
            GraphError::Unreachable(_) => None,
        }
    }
    /// Graph said the identity lacks a permission (403): granting it is the fix.
    pub(crate) fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
    /// The permission the refused call needs, when its path says.
    pub(crate) fn needs(&self) -> Option<&'static str> {
        match self {
            GraphError::Status { needs, .. } => *needs,
            GraphError::Unreachable(_) => None,
        }
    }
    /// Graph said the tenant lacks the licence for a report: `403
    /// Authentication_RequestFromNonPremiumTenantOrB2CTenant` (the reports need Entra ID P1 or P2).
    pub(crate) fn is_not_licensed(&self) -> bool {
        matches!(self, GraphError::Status { status: 403, code, .. }
            if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    }
    /// Graph said there is no such object (404).
    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    /// Graph refused the request as such (400), for example a method it will not delete.
    pub(crate) fn is_bad_request(&self) -> bool {
        self.status() == Some(400)
    }
}

/// Retry budget for reads.
const MAX_ATTEMPTS: u32 = 4;
const MAX_TOTAL: Duration = Duration::from_secs(30);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    /// A recovery's reads (`scoped`): answered once, sent together.
    scope_state: Option<Arc<batch::Scope>>,
}

impl GraphClient {
    /// `base` is `GRAPH_ENDPOINT`; the token scope is `{base}/.default`, so sovereign clouds work.
    pub fn new(http: reqwest::Client, base: Url, credential: Arc<dyn TokenCredential>) -> GraphClient {
        let scope = format!("{}/.default", base.as_str().trim_end_matches('/'));
        // Tokens for the public cloud are always requested for graph.microsoft.com, also when
        // GRAPH_ENDPOINT points at a local simulator.
        let scope = if matches!(base.host_str(), Some("127.0.0.1" | "localhost")) {
            "https://graph.microsoft.com/.default".to_owned()
        } else {
            scope
        };
        GraphClient {
            http,
            base,
            credential,
            scope,
            scope_state: None,
        }
    }

    /// `{GRAPH_ENDPOINT}/{version}/{segments…}`, each segment and the query percent-encoded, so
    /// an id or UPN (`#EXT#` included) is always one segment.
    pub fn url(&self, version: &str, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().expect("GRAPH_ENDPOINT is a base URL");
            segments.pop_if_empty().push(version);
            for segment in path {
                segments.push(segment);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    async fn token(&self) -> Result<String, GraphError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| GraphError::Unreachable(format!("no token for Graph: {e}")))?;
        Ok(token.token.secret().to_owned())
    }

    /// Who Graph sees: the `roles` (application permissions) of the token, for an application
    /// token, or `None` for a signed-in user's (delegated: it carries `scp`, and its roles are the
    /// user's, not grants). The token's payload is read, not verified: Graph verifies it; this only
    /// says which grants the token carries, and nothing of it is logged or returned.
    ///
    /// # Errors
    /// No token, or a token that is not a JWT.
    pub(crate) async fn token_grants(&self) -> Result<Option<Vec<String>>, GraphError> {
        use base64::Engine as _;
        let token = self.token().await?;
        let unreadable = || GraphError::Unreachable("the Graph token is not a JWT".into());
        let payload = token.split('.').nth(1).ok_or_else(unreadable)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| unreadable())?;
        let claims: Value = serde_json::from_slice(&bytes).map_err(|_| unreadable())?;
        if claims.get("scp").is_some() {
            return Ok(None);
        }
        Ok(Some(
            claims["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ))
    }

    /// GET a JSON document, retrying 429, 503 and 504 (with `Retry-After` as the minimum wait,
    /// capped attempts and total time). Reads only: a write is never retried blindly.
    ///
    /// # Errors
    /// Graph's error, or unreachable after the retry budget.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Value, GraphError> {
        self.get_json_with(url, &[]).await
    }

    async fn get_json_with(&self, url: &Url, headers: &[(&str, &str)]) -> Result<Value, GraphError> {
        self.get_raw(url, headers).await?.into_result(url.path())
    }

    /// A GET's answer whatever its status: through the recovery's scope when there is one.
    pub(crate) async fn get_raw(&self, url: &Url, headers: &[(&str, &str)]) -> Result<Raw, GraphError> {
        if let Some(scope) = &self.scope_state {
            return self.scoped_get(scope, url, headers).await;
        }
        self.get_raw_direct(url, headers).await
    }

    /// `get_raw`, sent now whatever the scope (with the retry policy).
    async fn get_raw_direct(&self, url: &Url, headers: &[(&str, &str)]) -> Result<Raw, GraphError> {
        let response = self
            .send_retrying_with(reqwest::Method::GET, url, None, headers)
            .await?;
        let status = response.status().as_u16();
        let request_id = request_id_of(&response);
        let body = if response.status().is_success() {
            response
                .json()
                .await
                .map_err(|e| GraphError::Unreachable(format!("unreadable answer: {}", e.without_url())))?
        } else {
            response.json().await.unwrap_or(Value::Null)
        };
        Ok(Raw {
            status,
            request_id,
            body,
        })
    }

    /// A page's `@odata.nextLink`, followed whole (never rebuilt) but only when it points at
    /// `GRAPH_ENDPOINT`: the bearer token is never sent to another host.
    ///
    /// # Errors
    /// The link is unreadable or points elsewhere.
    pub fn next_link(&self, link: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link).map_err(|_| GraphError::Unreachable("an unreadable nextLink".into()))?;
        if url.origin() != self.base.origin() {
            return Err(GraphError::Unreachable(format!(
                "a nextLink pointing away from GRAPH_ENDPOINT ({})",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// Every item of a collection, following `@odata.nextLink` (through `next_link`) until it is
    /// absent. Items of another shape are skipped (Graph adds types over time). The one
    /// pagination loop of the client.
    /// https://learn.microsoft.com/graph/paging
    ///
    /// # Errors
    /// Graph failed, or a nextLink points away from `GRAPH_ENDPOINT`.
    pub(crate) async fn list_all<T: serde::de::DeserializeOwned>(&self, first: Url) -> Result<Vec<T>, GraphError> {
        self.list_pages(first, false, &[]).await
    }

    /// `list_all` for an advanced query (an OData cast on a member list): `ConsistencyLevel:
    /// eventual` on every page's request; the URL carries `$count=true`.
    /// https://learn.microsoft.com/graph/aad-advanced-queries
    ///
    /// # Errors
    /// As `list_all`.
    pub(crate) async fn list_all_advanced<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
    ) -> Result<Vec<T>, GraphError> {
        self.list_pages(first, false, &[("ConsistencyLevel", "eventual")]).await
    }

    /// `list_all` for reads a guardrail decides on: an item that does not have the expected shape
    /// fails the read (so a role assignment Graph reports differently is never silently skipped).
    ///
    /// # Errors
    /// As `list_all`, and an item of another shape.
    pub(crate) async fn list_all_strict<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
    ) -> Result<Vec<T>, GraphError> {
        self.list_pages(first, true, &[]).await
    }

    async fn list_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
        strict: bool,
        headers: &[(&str, &str)],
    ) -> Result<Vec<T>, GraphError> {
        let mut url = first;
        let mut out = Vec::new();
        loop {
            let mut page = self.get_json_with(&url, headers).await?;
            // A page without its `value` is unreadable, never an empty list.
            let Value::Array(items) = page["value"].take() else {
                return Err(GraphError::Unreachable("a page without a value array".into()));
            };
            {
                for item in items {
                    match serde_json::from_value(item) {
                        Ok(v) => out.push(v),
                        Err(e) if strict => {
                            return Err(GraphError::Unreachable(format!("an item of an unexpected shape: {e}")));
                        }
                        Err(_) => {}
                    }
                }
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = self.next_link(next)?,
                None => return Ok(out),
            }
        }
    }

    /// Send a request that is safe to repeat (a read, a delete, an action with the same effect
    /// twice), retrying 429/503/504 after `Retry-After` (at least the backoff) and connection
    /// failures, within `MAX_ATTEMPTS` and `MAX_TOTAL`. Returns the final response, whatever its
    /// status. Never used for a TAP create.
    async fn send_retrying(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, GraphError> {
        self.send_retrying_with(method, url, body, &[]).await
    }

    /// `send_retrying` with extra request headers (`ConsistencyLevel: eventual` for advanced
    /// queries).
    async fn send_retrying_with(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, GraphError> {
        let writes = method != reqwest::Method::GET;
        if writes && let Some(scope) = &self.scope_state {
            scope.forget();
        }
        let sent = self.send_retrying_now(method, url, body, headers).await;
        // And after: a read asked while the write was under way may hold what was before it.
        if writes && let Some(scope) = &self.scope_state {
            scope.forget();
        }
        sent
    }

    async fn send_retrying_now(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, GraphError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(token);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS && started.elapsed() < MAX_TOTAL => {
                    tracing::warn!(attempt, error = %e.without_url(), "Graph unreachable; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GraphError::Unreachable(e.without_url().to_string())),
            };
            let status = response.status().as_u16();
            let wait = retry_after(&response)
                .unwrap_or_else(|| backoff(attempt))
                .max(backoff(attempt));
            let retry = matches!(status, 429 | 503 | 504)
                && attempt < MAX_ATTEMPTS
                && started.elapsed() + wait < MAX_TOTAL
                && wait <= MAX_RETRY_AFTER;
            if !retry {
                return Ok(response);
            }
            tracing::warn!(
                status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "Graph throttled or busy; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// POST a request that must not be repeated blindly (a TAP create, a mail): only a 429, which
    /// Graph did not process, is sent again after `Retry-After`. Returns the first other
    /// response, or the transport error (the request may have reached Graph).
    async fn send_unrepeatable(
        &self,
        url: &Url,
        body: &Value,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, GraphError> {
        if let Some(scope) = &self.scope_state {
            scope.forget();
        }
        let sent = self.send_unrepeatable_now(url, body).await;
        if let Some(scope) = &self.scope_state {
            scope.forget();
        }
        sent
    }

    async fn send_unrepeatable_now(
        &self,
        url: &Url,
        body: &Value,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, GraphError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let response = match self.http.post(url.clone()).bearer_auth(token).json(body).send().await {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            if response.status().as_u16() == 429 && attempt < MAX_ATTEMPTS {
                let wait = retry_after(&response)
                    .unwrap_or_else(|| backoff(attempt))
                    .max(backoff(attempt));
                if wait <= MAX_RETRY_AFTER {
                    tracing::warn!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "Graph throttled a request it did not process; sending it again"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(Ok(response));
        }
    }
}

/// A GET's answer as Graph gave it (a `$batch` part or a request of its own).
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub status: u16,
    pub request_id: String,
    pub body: Value,
}

impl Raw {
    /// The body of a 2xx; otherwise the error the status and Graph's code make (naming the
    /// permission a call on `path` needs).
    pub(crate) fn into_result(self, path: &str) -> Result<Value, GraphError> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        Err(GraphError::Status {
            status: self.status,
            code: self.body["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
            request_id: self.request_id,
            needs: permission_for(path),
        })
    }
}

/// The outcome of a TAP create that did not clearly succeed or fail.
#[derive(Debug, thiserror::Error)]
pub enum CreateTapError {
    /// Graph refused it (4xx): nothing was created.
    #[error(transparent)]
    Refused(GraphError),
    /// Graph throttled it (429) every time it was sent: nothing was created, and trying again
    /// later may succeed.
    #[error("Graph throttled the TAP create every time it was sent: {0}")]
    Throttled(GraphError),
    /// No clear answer (timeout, connection reset, 5xx). The user's TAPs were listed afterwards:
    /// `orphan` is a pass that may have been created by this call and whose value nobody has.
    #[error("the outcome of the TAP create is unknown ({cause})")]
    Unknown { cause: String, orphan: Option<String> },
}

impl GraphClient {
    /// GET /users/{id | upn}?$select=…&$expand=manager(…); `None` when the user does not exist.
    /// https://learn.microsoft.com/graph/api/user-get
    ///
    /// # Errors
    /// Graph failed.
    pub async fn get_user(&self, user: &models::UserRef) -> Result<Option<models::User>, GraphError> {
        let url = self.url(
            "v1.0",
            &["users", &user.segment()],
            &[("$select", models::User::SELECT), ("$expand", models::User::EXPAND)],
        );
        match self.get_json(&url).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| GraphError::Unreachable(format!("unexpected user shape: {e}"))),
            Err(GraphError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group and directory role the user is in, transitively, following `@odata.nextLink`.
    /// https://learn.microsoft.com/graph/api/user-list-transitivememberof
    ///
    /// # Errors
    /// Graph failed.
    pub async fn transitive_member_of(&self, user: &uuid::Uuid) -> Result<Vec<models::DirectoryObject>, GraphError> {
        let url = self.url(
            "v1.0",
            &["users", &user.to_string(), "transitiveMemberOf"],
            &[
                ("$select", "id,displayName,roleTemplateId,isAssignableToRole"),
                ("$top", "999"),
            ],
        );
        self.list_all_strict(url).await
    }

    /// The Temporary Access Pass policy.
    /// https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
    ///
    /// # Errors
    /// Graph failed.
    pub async fn tap_policy(&self) -> Result<models::TapPolicy, GraphError> {
        let url = self.url(
            "v1.0",
            &[
                "policies",
                "authenticationMethodsPolicy",
                "authenticationMethodConfigurations",
                "temporaryAccessPass",
            ],
            &[],
        );
        let v = self.get_json(&url).await?;
        serde_json::from_value(v).map_err(|e| GraphError::Unreachable(format!("unexpected policy shape: {e}")))
    }

    /// The user's TAP methods (at most one).
    /// https://learn.microsoft.com/graph/api/authentication-list-temporaryaccesspassmethods
    ///
    /// # Errors
    /// Graph failed.
    pub async fn list_taps(&self, user: &uuid::Uuid) -> Result<Vec<models::TapMethod>, GraphError> {
        let url = self.url(
            "v1.0",
            &[
                "users",
                &user.to_string(),
                "authentication",
                "temporaryAccessPassMethods",
            ],
            &[],
        );
        let v = self.get_json(&url).await?;
        Ok(v["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| serde_json::from_value(m.clone()).ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Delete a TAP; already gone counts as deleted.
    /// https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethod-delete
    ///
    /// # Errors
    /// Graph failed.
    pub async fn delete_tap(&self, user: &uuid::Uuid, method_id: &str) -> Result<(), GraphError> {
        let url = self.url(
            "v1.0",
            &[
                "users",
                &user.to_string(),
                "authentication",
                "temporaryAccessPassMethods",
                method_id,
            ],
            &[],
        );
        // A delete is safe to repeat: throttling and 5xx are retried (an undelivered pass must go).
        self.send_repeatable(reqwest::Method::DELETE, &url, None)
            .await
            .map(|_| ())
    }

    /// Create a TAP. It is sent once: a 429 (not processed) is retried after `Retry-After`, but
    /// a timeout, a reset or a 5xx is never resent blindly. The user's TAPs are listed instead,
    /// and a pass created since the call began is reported as an orphan for the caller to delete.
    /// https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods
    ///
    /// # Errors
    /// `Refused` for a 4xx, `Unknown` when the outcome cannot be known.
    pub async fn create_tap(
        &self,
        user: &uuid::Uuid,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<models::CreatedTap, CreateTapError> {
        let url = self.url(
            "v1.0",
            &[
                "users",
                &user.to_string(),
                "authentication",
                "temporaryAccessPassMethods",
            ],
            &[],
        );
        let body = serde_json::json!({"lifetimeInMinutes": lifetime_minutes, "isUsableOnce": usable_once});
        let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
        let response = match self
            .send_unrepeatable(&url, &body)
            .await
            .map_err(CreateTapError::Refused)?
        {
            Ok(r) => r,
            // The request may have reached Graph: reconcile, never resend.
            Err(e) => return Err(self.reconcile(user, started, e.to_string()).await),
        };
        let status = response.status().as_u16();
        if status == 201 {
            let created: serde_json::Value = response.json().await.map_err(|e| CreateTapError::Unknown {
                cause: format!("unreadable create response: {}", e.without_url()),
                orphan: None,
            })?;
            let pass = created["temporaryAccessPass"]
                .as_str()
                .map(|p| secrecy::SecretString::from(p.to_owned()));
            let method = serde_json::from_value::<models::TapMethod>(created.clone()).ok();
            return match (pass, method) {
                (Some(pass), Some(method)) => Ok(models::CreatedTap { method, pass }),
                _ => Err(CreateTapError::Unknown {
                    cause: "the create response has no pass".into(),
                    orphan: created["id"].as_str().map(str::to_owned),
                }),
            };
        }
        // Throttled (still, after its retries): Graph did not process it. Not a refusal of this
        // pass: the request is worth another try.
        if status == 429 {
            return Err(CreateTapError::Throttled(error_of(response).await));
        }
        // 408: the request timed out on its way; whether Graph acted is not known.
        if (400..500).contains(&status) && status != 408 {
            return Err(CreateTapError::Refused(error_of(response).await));
        }
        let cause = error_of(response).await.to_string();
        Err(self.reconcile(user, started, cause).await)
    }

    async fn reconcile(&self, user: &uuid::Uuid, since: time::OffsetDateTime, cause: String) -> CreateTapError {
        tracing::warn!(%cause, "TAP create outcome unknown; listing the user's passes to reconcile");
        let orphan = match self.list_taps(user).await {
            Ok(taps) => taps
                .into_iter()
                .find(|t| t.created_date_time.is_none_or(|c| c >= since))
                .map(|t| t.id),
            Err(e) => {
                tracing::error!(error = %e, "could not list the user's passes after an unknown create");
                None
            }
        };
        CreateTapError::Unknown { cause, orphan }
    }

    /// The user's registered mobile phone number (`phoneMethods`, type `mobile`), if any.
    /// https://learn.microsoft.com/graph/api/authentication-list-phonemethods
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn mobile_phone_method(&self, user: &uuid::Uuid) -> Result<Option<String>, GraphError> {
        let url = self.url(
            "v1.0",
            &["users", &user.to_string(), "authentication", "phoneMethods"],
            &[],
        );
        let v = self.get_json(&url).await?;
        Ok(v["value"].as_array().and_then(|methods| {
            methods
                .iter()
                .find(|m| m["phoneType"] == "mobile")
                .and_then(|m| m["phoneNumber"].as_str())
                .map(str::to_owned)
        }))
    }

    /// Every method the user has registered (beta lists hardware OATH tokens too).
    /// https://learn.microsoft.com/graph/api/authentication-list-methods
    ///
    /// # Errors
    /// Graph failed.
    pub async fn list_methods(&self, user: &uuid::Uuid) -> Result<Vec<models::AuthMethod>, GraphError> {
        let url = self.url("beta", &["users", &user.to_string(), "authentication", "methods"], &[]);
        let v = self.get_json(&url).await?;
        Ok(v["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| serde_json::from_value(m.clone()).ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `send_retrying` for writes: the final status (2xx or 404), or Graph's error.
    async fn send_repeatable(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<u16, GraphError> {
        let response = self.send_retrying(method, url, body).await?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) || status == 404 {
            Ok(status)
        } else {
            Err(error_of(response).await)
        }
    }

    /// Where one method is deleted: its own collection's path under `authentication` and the
    /// version that documents it; `None` for what cannot be deleted (the password).
    fn method_path(method: &models::AuthMethod) -> Option<(&'static str, Vec<&str>)> {
        Some(match method.kind() {
            models::MethodKind::Phone => ("v1.0", vec!["phoneMethods", &method.id]),
            models::MethodKind::MicrosoftAuthenticator => ("v1.0", vec!["microsoftAuthenticatorMethods", &method.id]),
            models::MethodKind::Fido2 => ("v1.0", vec!["fido2Methods", &method.id]),
            models::MethodKind::SoftwareOath => ("v1.0", vec!["softwareOathMethods", &method.id]),
            models::MethodKind::Email => ("v1.0", vec!["emailMethods", &method.id]),
            models::MethodKind::WindowsHelloForBusiness => ("v1.0", vec!["windowsHelloForBusinessMethods", &method.id]),
            models::MethodKind::PlatformCredential => ("v1.0", vec!["platformCredentialMethods", &method.id]),
            models::MethodKind::TemporaryAccessPass => ("v1.0", vec!["temporaryAccessPassMethods", &method.id]),
            models::MethodKind::External => ("v1.0", vec!["externalAuthenticationMethods", &method.id, "$ref"]),
            models::MethodKind::HardwareOath => ("beta", vec!["hardwareOathMethods", &method.id]),
            models::MethodKind::QrCodePin => ("beta", vec!["qrCodePinMethod"]),
            models::MethodKind::Password | models::MethodKind::Other => return None,
        })
    }

    /// Delete one method through its own collection; already gone counts as deleted.
    /// Returns whether it was there.
    ///
    /// # Errors
    /// Graph refused (e.g. the default phone) or failed.
    pub async fn delete_method(&self, user: &uuid::Uuid, method: &models::AuthMethod) -> Result<bool, GraphError> {
        let user = user.to_string();
        let Some((version, path)) = Self::method_path(method) else {
            return Err(GraphError::Status {
                status: 400,
                code: format!("unsupportedType:{}", method.type_name()),
                request_id: "-".into(),
                needs: None,
            });
        };
        let mut segments = vec!["users", user.as_str(), "authentication"];
        segments.extend(path);
        let url = self.url(version, &segments, &[]);
        Ok(self.send_repeatable(reqwest::Method::DELETE, &url, None).await? != 404)
    }

    /// `delete_method` (or, `deactivate`, `deactivate_hardware_oath`) as a write of a beta chain
    /// (`in_order`): beta documents each of these collections' delete as v1.0 does, and one
    /// `$batch` has one version. `None` for a method that is not deleted through a collection of
    /// its own by id (the password, the QR code's singleton, an external method's `$ref`).
    pub(crate) fn removal_write(
        &self,
        user: &uuid::Uuid,
        method: &models::AuthMethod,
        deactivate: bool,
    ) -> Option<batch::Write> {
        let user = user.to_string();
        let (_, path) = Self::method_path(method)?;
        if path.len() != 2 {
            return None;
        }
        let mut segments = vec!["users", user.as_str(), "authentication"];
        segments.extend(path);
        if deactivate {
            segments.push("deactivate");
        }
        Some(batch::Write {
            method: if deactivate { "POST" } else { "DELETE" },
            url: self.url("beta", &segments, &[]),
            body: None,
        })
    }

    /// `set_default_method` as a write of a beta chain (`in_order`).
    pub(crate) fn default_write(&self, user: &uuid::Uuid, preference: &str) -> batch::Write {
        batch::Write {
            method: "PATCH",
            url: self.url(
                "beta",
                &["users", &user.to_string(), "authentication", "signInPreferences"],
                &[],
            ),
            body: Some(serde_json::json!({"userPreferredMethodForSecondaryAuthentication": preference})),
        }
    }

    /// The user's default second factor as `signInPreferences` names it (`sms`, `push`, …), when
    /// one is set. https://learn.microsoft.com/graph/api/authentication-get?view=graph-rest-beta
    /// (beta `signInPreferences`; UserAuthenticationMethod.Read.All).
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn default_method(&self, user: &uuid::Uuid) -> Result<Option<String>, GraphError> {
        let url = self.url(
            "beta",
            &["users", &user.to_string(), "authentication", "signInPreferences"],
            &[],
        );
        let v = self.get_json(&url).await?;
        Ok(v["userPreferredMethodForSecondaryAuthentication"]
            .as_str()
            .map(str::to_owned))
    }

    /// Deactivate a hardware OATH token (what the portal's "Require re-register MFA" does).
    ///
    /// # Errors
    /// Graph refused or failed.
    pub(crate) async fn deactivate_hardware_oath(&self, user: &uuid::Uuid, id: &str) -> Result<bool, GraphError> {
        let url = self.url(
            "beta",
            &[
                "users",
                &user.to_string(),
                "authentication",
                "hardwareOathMethods",
                id,
                "deactivate",
            ],
            &[],
        );
        Ok(self.send_repeatable(reqwest::Method::POST, &url, None).await? != 404)
    }

    /// Move the user's default second factor (beta `signInPreferences`).
    ///
    /// # Errors
    /// Graph refused or failed.
    pub(crate) async fn set_default_method(&self, user: &uuid::Uuid, preference: &str) -> Result<(), GraphError> {
        let url = self.url(
            "beta",
            &["users", &user.to_string(), "authentication", "signInPreferences"],
            &[],
        );
        let body = serde_json::json!({"userPreferredMethodForSecondaryAuthentication": preference});
        self.send_repeatable(reqwest::Method::PATCH, &url, Some(&body))
            .await
            .map(|_| ())
    }

    /// Revoke the user's sign-in sessions; any 2xx is success (Graph answers 200 `{"value": true}`).
    /// https://learn.microsoft.com/graph/api/user-revokesigninsessions
    ///
    /// # Errors
    /// Graph refused or failed.
    pub async fn revoke_sessions(&self, user: &uuid::Uuid) -> Result<(), GraphError> {
        let url = self.url("v1.0", &["users", &user.to_string(), "revokeSignInSessions"], &[]);
        match self.send_repeatable(reqwest::Method::POST, &url, None).await? {
            404 => Err(GraphError::Status {
                status: 404,
                code: "Request_ResourceNotFound".into(),
                request_id: "-".into(),
                needs: None,
            }),
            _ => Ok(()),
        }
    }

    /// Send mail from `sender` (a service mailbox) with `saveToSentItems: false`.
    /// https://learn.microsoft.com/graph/api/user-sendmail
    ///
    /// # Errors
    /// Graph refused or failed.
    pub async fn send_mail(&self, sender: &str, message: &serde_json::Value) -> Result<(), GraphError> {
        let url = self.url("v1.0", &["users", sender, "sendMail"], &[]);
        let body = serde_json::json!({"message": message, "saveToSentItems": false});
        // Anything but a 429 may have been processed (a 503, a timeout): never resent blindly.
        let response = self
            .send_unrepeatable(&url, &body)
            .await?
            .map_err(|e| GraphError::Unreachable(e.without_url().to_string()))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_of(response).await)
    }
}

/// The reads that tell whether a target holds privilege, however it is held.
impl GraphClient {
    /// `{collection}?$filter=principalId eq '{principal}'` under `path`.
    fn by_principal(&self, path: &[&str], principal: &str) -> Url {
        let filter = format!("principalId eq {}", odata::quote(principal));
        self.url("v1.0", path, &[("$filter", filter.as_str())])
    }

    /// Active directory role assignments of a principal (user or group) at any scope, built-in or
    /// custom, permanent or activated through PIM.
    /// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentscheduleinstances
    ///
    /// # Errors
    /// Graph failed (403 when `RoleManagement.Read.Directory` is missing).
    pub(crate) async fn role_assignment_instances(
        &self,
        principal: &str,
    ) -> Result<Vec<models::RoleInstance>, GraphError> {
        let url = self.by_principal(
            &["roleManagement", "directory", "roleAssignmentScheduleInstances"],
            principal,
        );
        self.list_all_strict(url).await
    }

    /// PIM-eligible directory role assignments of a principal (user or group), at any scope.
    /// https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityscheduleinstances
    ///
    /// # Errors
    /// Graph failed (403 when `RoleManagement.Read.Directory` is missing).
    pub async fn role_eligibility_instances(&self, principal: &str) -> Result<Vec<models::RoleInstance>, GraphError> {
        let url = self.by_principal(
            &["roleManagement", "directory", "roleEligibilityScheduleInstances"],
            principal,
        );
        self.list_all_strict(url).await
    }

    /// PIM for Groups: the groups a principal is eligible to join or own. The `$filter` is
    /// required by the API.
    /// https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityscheduleinstances
    ///
    /// # Errors
    /// Graph failed (403 when `PrivilegedEligibilitySchedule.Read.AzureADGroup` is missing).
    pub async fn group_eligibility_instances(
        &self,
        principal: &str,
    ) -> Result<Vec<models::GroupEligibility>, GraphError> {
        let url = self.by_principal(
            &[
                "identityGovernance",
                "privilegedAccess",
                "group",
                "eligibilityScheduleInstances",
            ],
            principal,
        );
        self.list_all_strict(url).await
    }

    /// A directory role's display name (built-in or custom), for the audit record.
    /// https://learn.microsoft.com/graph/api/unifiedroledefinition-get
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn role_definition_name(&self, id: &str) -> Result<Option<String>, GraphError> {
        let url = self.url(
            "v1.0",
            &["roleManagement", "directory", "roleDefinitions", id],
            &[("$select", "id,displayName,isBuiltIn")],
        );
        let v = self.get_json(&url).await?;
        Ok(v["displayName"].as_str().map(str::to_owned))
    }

    /// The object id and client id of the service principal whose `servicePrincipalNames` include
    /// `name` (the API's App ID URI or client id).
    /// https://learn.microsoft.com/graph/api/serviceprincipal-list
    ///
    /// # Errors
    /// Graph failed (403 when `Application.Read.All` is missing).
    pub(crate) async fn service_principal_by_name(&self, name: &str) -> Result<Option<(String, String)>, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Sp {
            id: String,
            app_id: String,
        }
        let filter = format!("servicePrincipalNames/any(n:n eq {})", odata::quote(name));
        let url = self.url(
            "v1.0",
            &["servicePrincipals"],
            &[("$filter", filter.as_str()), ("$select", "id,appId")],
        );
        let found: Vec<Sp> = self.list_all_strict(url).await?;
        Ok(found.into_iter().next().map(|s| (s.id, s.app_id)))
    }

    /// The object id of the application (registration) with client id `app_id`.
    /// https://learn.microsoft.com/graph/api/application-list
    ///
    /// # Errors
    /// Graph failed (403 when `Application.Read.All` is missing).
    pub async fn application_object_id(&self, app_id: &str) -> Result<Option<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct App {
            id: String,
        }
        let filter = format!("appId eq {}", odata::quote(app_id));
        let url = self.url(
            "v1.0",
            &["applications"],
            &[("$filter", filter.as_str()), ("$select", "id")],
        );
        let found: Vec<App> = self.list_all_strict(url).await?;
        Ok(found.into_iter().next().map(|a| a.id))
    }

    /// The ids (lower case) of the owners of a group, service principal or application
    /// (`collection` is `groups`, `servicePrincipals` or `applications`).
    /// https://learn.microsoft.com/graph/api/group-list-owners,
    /// https://learn.microsoft.com/graph/api/serviceprincipal-list-owners,
    /// https://learn.microsoft.com/graph/api/application-list-owners
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn owner_ids(&self, collection: &str, id: &str) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let url = self.url(
            "v1.0",
            &[collection, id, "owners"],
            &[("$select", "id"), ("$top", "999")],
        );
        let owners: Vec<Id> = self.list_all_strict(url).await?;
        Ok(owners.into_iter().map(|o| o.id.to_ascii_lowercase()).collect())
    }

    /// Every group that can hold directory roles (`isAssignableToRole`; at most 500 per tenant).
    /// https://learn.microsoft.com/graph/api/group-list
    ///
    /// # Errors
    /// Graph failed (403 when `GroupMember.Read.All` is missing).
    pub(crate) async fn role_assignable_group_ids(&self) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let url = self.url(
            "v1.0",
            &["groups"],
            &[
                ("$filter", "isAssignableToRole eq true"),
                ("$select", "id"),
                ("$top", "999"),
            ],
        );
        let groups: Vec<Id> = self.list_all_strict(url).await?;
        Ok(groups.into_iter().map(|g| g.id.to_ascii_lowercase()).collect())
    }

    /// Every group that can hold directory roles with its owners' ids, one listing.
    /// https://learn.microsoft.com/graph/api/group-list
    ///
    /// # Errors
    /// Graph failed (403 when `GroupMember.Read.All` is missing).
    pub(crate) async fn role_assignable_group_owners(&self) -> Result<Vec<(String, Vec<String>)>, GraphError> {
        self.groups_with_owners("isAssignableToRole eq true").await
    }

    /// The groups `ids` with their owners' ids, 15 to a read (`$filter=id in (…)`: group `id`
    /// "Supports `$filter` (`eq`, `ne`, `not`, `in`)", resources/group.md; "the request is limited
    /// to 15 expressions in the filter clause by default", filter-query-parameter.md), the reads
    /// side by side. A group the answer leaves out (gone, or not yet replicated) is a failed read:
    /// its owners are not known.
    ///
    /// # Errors
    /// Graph failed (403 when `GroupMember.Read.All` is missing), or a group was not found (404).
    pub(crate) async fn owners_of_groups(&self, ids: &[String]) -> Result<Vec<(String, Vec<String>)>, GraphError> {
        let reads = ids.chunks(15).map(|chunk| async move {
            let quoted: Vec<String> = chunk.iter().map(|id| odata::quote(id)).collect();
            self.groups_with_owners(&format!("id in ({})", quoted.join(","))).await
        });
        let found: Vec<(String, Vec<String>)> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if let Some(missing) = ids
            .iter()
            .find(|id| !found.iter().any(|(g, _)| g.eq_ignore_ascii_case(id)))
        {
            return Err(GraphError::Status {
                status: 404,
                code: format!("Request_ResourceNotFound: group {missing}"),
                request_id: "-".into(),
                needs: None,
            });
        }
        Ok(found)
    }

    /// The groups `filter` finds with their owners' ids: `$expand=owners($select=id)`
    /// (resources/group.md: owners "Supports `$expand` including nested `$select`"). An expansion
    /// stops at 20 items (concepts/query-parameters.md: "`$expand` typically returns a maximum of
    /// 20 items for the expanded relationship"), so a group showing 20 owners has them all read
    /// (`owner_ids`). Pages are followed whatever their size.
    async fn groups_with_owners(&self, filter: &str) -> Result<Vec<(String, Vec<String>)>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        #[derive(serde::Deserialize)]
        struct Group {
            id: String,
            #[serde(default)]
            owners: Option<Vec<Id>>,
            /// Any sign that the expansion was cut short.
            #[serde(default, rename = "owners@odata.nextLink")]
            more_owners: Option<String>,
        }
        let url = self.url(
            "v1.0",
            &["groups"],
            &[
                ("$filter", filter),
                ("$select", "id"),
                ("$expand", "owners($select=id)"),
                ("$top", "999"),
            ],
        );
        let groups: Vec<Group> = self.list_all_strict(url).await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let id = g.id.to_ascii_lowercase();
            // Not expanded at all is not "no owners": read them.
            let owners = match g.owners {
                Some(o) if o.len() < 20 && g.more_owners.is_none() => {
                    o.into_iter().map(|o| o.id.to_ascii_lowercase()).collect()
                }
                _ => self.owner_ids("groups", &id).await?,
            };
            out.push((id, owners));
        }
        Ok(out)
    }

    /// The app roles a principal holds: a user's own and, as the page says, "app role
    /// assignments granted to groups that the user is a direct member of" (with `ConsistencyLevel:
    /// eventual` and `$count`, which the page asks for "to ensure complete results"); a group's
    /// own. Needs Directory.Read.All (the pages' least privileged application permission).
    /// https://learn.microsoft.com/graph/api/user-list-approleassignments
    /// https://learn.microsoft.com/graph/api/group-list-approleassignments
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn app_roles_of(
        &self,
        collection: &str,
        principal: &str,
    ) -> Result<Vec<models::AppRoleAssignmentOf>, GraphError> {
        let url = self.url(
            "v1.0",
            &[collection, principal, "appRoleAssignments"],
            &[("$count", "true"), ("$top", "999")],
        );
        self.list_pages(url, true, &[("ConsistencyLevel", "eventual")]).await
    }

    /// Everyone granted one of a service principal's app roles (users, groups, applications). The
    /// API has no `$filter` on `principalId`, so the whole list is read.
    /// https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto
    ///
    /// # Errors
    /// Graph failed (403 when `Application.Read.All` is missing).
    pub async fn app_role_assigned_to(
        &self,
        service_principal: &str,
    ) -> Result<Vec<models::AppRoleAssignment>, GraphError> {
        let url = self.url(
            "v1.0",
            &["servicePrincipals", service_principal, "appRoleAssignedTo"],
            &[("$top", "999")],
        );
        self.list_all_strict(url).await
    }
}

/// The compliance sweep's reads.
impl GraphClient {
    /// One page of `reports/authenticationMethods/userRegistrationDetails`: the first when `next`
    /// is `None`, else the `@odata.nextLink` given (followed whole, never rebuilt; it must point at
    /// `GRAPH_ENDPOINT`, so a token is never sent elsewhere).
    /// https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails
    ///
    /// # Errors
    /// Graph failed after the retry budget, or the next link points elsewhere.
    pub(crate) async fn registration_page(
        &self,
        next: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), GraphError> {
        let url = match next {
            None => self.url(
                "v1.0",
                &["reports", "authenticationMethods", "userRegistrationDetails"],
                &[],
            ),
            Some(link) => self.next_link(link)?,
        };
        let mut page = self.get_json(&url).await?;
        let rows = match page["value"].take() {
            Value::Array(rows) => rows,
            _ => Vec::new(),
        };
        let next = page["@odata.nextLink"].as_str().map(str::to_owned);
        Ok((rows, next))
    }

    /// The ids of the users in a group, directly or through nested groups.
    /// https://learn.microsoft.com/graph/api/group-list-transitivemembers
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn group_user_ids(
        &self,
        group: &uuid::Uuid,
    ) -> Result<std::collections::HashSet<String>, GraphError> {
        Ok(self
            .group_transitive_member_ids(group, "microsoft.graph.user")
            .await?
            .into_iter()
            .collect())
    }

    /// The mail addresses of a group's enabled users, directly or through nested groups (whom an
    /// approval request is emailed to).
    /// https://learn.microsoft.com/graph/api/group-list-transitivemembers
    ///
    /// # Errors
    /// Graph failed (403 without GroupMember.Read.All).
    pub(crate) async fn group_user_mails(&self, group: &uuid::Uuid) -> Result<Vec<(String, String)>, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Member {
            id: String,
            mail: Option<String>,
            account_enabled: Option<bool>,
        }
        let url = self.url(
            "v1.0",
            &[
                "groups",
                &group.to_string(),
                "transitiveMembers",
                "microsoft.graph.user",
            ],
            &[
                ("$select", "id,mail,accountEnabled"),
                ("$count", "true"),
                ("$top", "999"),
            ],
        );
        let members: Vec<Member> = self.list_all_advanced(url).await?;
        Ok(members
            .into_iter()
            .filter(|m| m.account_enabled != Some(false))
            .filter_map(|m| m.mail.map(|mail| (m.id.to_ascii_lowercase(), mail)))
            .collect())
    }

    /// The ids of the tenant's disabled accounts, lower case (the sweep leaves them out):
    /// `GET /users?$filter=accountEnabled eq false&$select=id`, paged.
    /// https://learn.microsoft.com/graph/api/user-list (accountEnabled supports `eq` in default
    /// queries; User.Read.All)
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn disabled_user_ids(&self) -> Result<std::collections::HashSet<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let url = self.url(
            "v1.0",
            &["users"],
            &[
                ("$filter", "accountEnabled eq false"),
                ("$select", "id"),
                ("$top", "999"),
            ],
        );
        let ids: Vec<Id> = self.list_all(url).await?;
        Ok(ids.into_iter().map(|i| i.id.to_ascii_lowercase()).collect())
    }

    /// The ids of a group's members of one type (`microsoft.graph.user` or
    /// `microsoft.graph.group`), directly or through nested groups, lower case.
    /// https://learn.microsoft.com/graph/api/group-list-transitivemembers
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn group_transitive_member_ids(
        &self,
        group: &uuid::Uuid,
        cast: &str,
    ) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let url = self.url(
            "v1.0",
            &["groups", &group.to_string(), "transitiveMembers", cast],
            &[("$select", "id"), ("$count", "true"), ("$top", "999")],
        );
        let ids: Vec<Id> = self.list_all_advanced(url).await?;
        Ok(ids.into_iter().map(|i| i.id.to_ascii_lowercase()).collect())
    }
}

/// `Retry-After` in seconds, if the answer has one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

async fn error_of(response: reqwest::Response) -> GraphError {
    let path = response.url().path().to_owned();
    let raw = Raw {
        status: response.status().as_u16(),
        request_id: request_id_of(&response),
        body: response.json().await.unwrap_or(Value::Null),
    };
    raw.into_result(&path)
        .err()
        .unwrap_or_else(|| GraphError::Unreachable("a success taken for an error".into()))
}

/// The `request-id` Graph answered with (`-` when none), for the error a caller may quote.
fn request_id_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// The application permission (of the templates' grants, docs/deploy.md) a Graph call on `path`
/// needs, as the call's own doc page lists it: what a 403 tells the admin to grant.
pub(crate) fn permission_for(path: &str) -> Option<&'static str> {
    let table: [(&str, &str); 14] = [
        ("/appRoleAssignments", "Directory.Read.All"),
        ("/authentication/", "UserAuthenticationMethod.ReadWrite.All"),
        (
            "/policies/authenticationMethodsPolicy",
            "Policy.Read.AuthenticationMethod",
        ),
        ("/identityProtection/riskyUsers", "IdentityRiskyUser.Read.All"),
        ("/auditLogs/directoryAudits", "AuditLog.Read.All and Directory.Read.All"),
        ("/reports/authenticationMethods", "AuditLog.Read.All"),
        ("/revokeSignInSessions", "User.RevokeSessions.All"),
        (
            "/identityGovernance/privilegedAccess/group",
            "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        ),
        ("/roleManagement/", "RoleManagement.Read.Directory"),
        ("/servicePrincipals", "Application.Read.All"),
        ("/applications", "Application.Read.All"),
        ("/groups", "GroupMember.Read.All"),
        (
            "/sendMail",
            "Mail.Send (Exchange RBAC for Applications, docs/deploy.md)",
        ),
        ("/users", "User.Read.All"),
    ];
    table.iter().find(|(part, _)| path.contains(part)).map(|(_, p)| *p)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(5)))
}

impl GraphClient {
    /// Every directory audit event about `user` (object id) since `since`, all pages, for the
    /// stale-address check. Needs AuditLog.Read.All and Directory.Read.All.
    /// https://learn.microsoft.com/graph/api/directoryaudit-list
    ///
    /// # Errors
    /// Graph refused or failed, or a page is not what the docs describe.
    pub(crate) async fn directory_audits_about(
        &self,
        user: &uuid::Uuid,
        since: time::OffsetDateTime,
    ) -> Result<Vec<models::DirectoryAudit>, GraphError> {
        let millis =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        let since = since
            .to_offset(time::UtcOffset::UTC)
            .format(&millis)
            .unwrap_or_default();
        let filter = format!(
            "activityDateTime ge {since} and targetResources/any(t:t/id eq {})",
            odata::quote(&user.to_string())
        );
        let url = self.url("v1.0", &["auditLogs", "directoryAudits"], &[("$filter", &filter)]);
        self.list_all_strict(url).await
    }

    /// A user's "Authentication Methods" events from Entra's directory audit in `[from, to]`,
    /// every page, newest first (`$orderby`), summarised: time, activity, result, who. The target
    /// is filtered by object id: `targetResources` filters only on `id` and `displayName`
    /// (directoryaudit-list). Needs AuditLog.Read.All (with Directory.Read.All, as the page lists).
    /// https://learn.microsoft.com/graph/api/directoryaudit-list
    ///
    /// # Errors
    /// Graph refused or failed.
    pub(crate) async fn authentication_method_events(
        &self,
        user: &uuid::Uuid,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    ) -> Result<Vec<models::MethodEvent>, GraphError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Event {
            activity_date_time: Option<String>,
            activity_display_name: Option<String>,
            result: Option<String>,
            result_reason: Option<String>,
            initiated_by: Value,
            correlation_id: Option<String>,
        }
        let millis =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        let at = |t: time::OffsetDateTime| t.to_offset(time::UtcOffset::UTC).format(&millis).unwrap_or_default();
        let filter = format!(
            "loggedByService eq 'Authentication Methods' and activityDateTime ge {} and activityDateTime le {} and targetResources/any(t:t/id eq {})",
            at(from),
            at(to),
            odata::quote(&user.to_string())
        );
        let url = self.url(
            "v1.0",
            &["auditLogs", "directoryAudits"],
            &[("$filter", &filter), ("$orderby", "activityDateTime desc")],
        );
        let events: Vec<Event> = self.list_all(url).await?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(events
            .into_iter()
            .map(|e| models::MethodEvent {
                time: e.activity_date_time,
                activity: e.activity_display_name,
                result: e.result,
                result_reason: e.result_reason,
                initiated_by: text(&e.initiated_by["user"]["userPrincipalName"])
                    .or_else(|| text(&e.initiated_by["app"]["displayName"])),
                correlation_id: e.correlation_id,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl crate::vocab::ports::MailSender for GraphClient {
    async fn send_text_mail(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        text: &secrecy::SecretString,
    ) -> Result<(), crate::vocab::ports::MailError> {
        use crate::vocab::ports::MailError;
        use secrecy::ExposeSecret;
        let message = serde_json::json!({
            "subject": subject,
            "body": {"contentType": "Text", "content": text.expose_secret()},
            "toRecipients": [{"emailAddress": {"address": to}}],
        });
        match self.send_mail(from, &message).await {
            Ok(()) => Ok(()),
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

/// What a read of a user's risk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RiskRead {
    /// Identity Protection's record of the user.
    Rated(models::RiskyUser),
    /// `404`: Identity Protection has no record of the user (never at risk).
    NoRecord,
    /// `403` naming the licence: the tenant has no Entra ID P2, so there is no risk to read.
    NotLicensed,
}

impl GraphClient {
    /// The user's risk in Entra ID Protection. Needs IdentityRiskyUser.Read.All and a tenant with
    /// Entra ID P2. https://learn.microsoft.com/graph/api/riskyuser-get
    ///
    /// The docs list only the `200`. A `404` is read as "no record" (the user was never rated);
    /// a `403` whose message says the tenant is "not licensed" (as Graph says
    /// for a tenant without P2) as `NotLicensed`; every other `403` (a missing permission) is an
    /// error, so a guardrail that needs the read fails closed.
    ///
    /// # Errors
    /// Graph refused (a permission) or failed.
    pub(crate) async fn risky_user(&self, user: &uuid::Uuid) -> Result<RiskRead, GraphError> {
        let url = self.url("v1.0", &["identityProtection", "riskyUsers", &user.to_string()], &[]);
        let raw = self.get_raw(&url, &[]).await?;
        match raw.status {
            200..=299 => serde_json::from_value(raw.body)
                .map(RiskRead::Rated)
                .map_err(|e| GraphError::Unreachable(format!("unexpected riskyUser shape: {e}"))),
            404 => Ok(RiskRead::NoRecord),
            403 => {
                let message = raw.body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let code = raw.body["error"]["code"].as_str().unwrap_or_default();
                // A missing permission (Authorization_RequestDenied) is never a missing licence.
                if code != "Authorization_RequestDenied" && message.contains("not licensed") {
                    return Ok(RiskRead::NotLicensed);
                }
                Err(GraphError::Status {
                    status: 403,
                    code: raw.body["error"]["code"].as_str().unwrap_or("Forbidden").to_owned(),
                    request_id: raw.request_id,
                    needs: None,
                })
            }
            _ => Err(raw
                .into_result(url.path())
                .err()
                .unwrap_or_else(|| GraphError::Unreachable("unexpected status".into()))),
        }
    }
}

impl GraphClient {
    /// The id of the first user the directory lists (`GET /users?$select=id&$top=1`): the
    /// doctor's default account to try reads on; the features never list users this way.
    /// https://learn.microsoft.com/graph/api/user-list
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn first_user_id(&self) -> Result<Option<uuid::Uuid>, GraphError> {
        let url = self.url("v1.0", &["users"], &[("$select", "id"), ("$top", "1")]);
        let page = self.get_json(&url).await?;
        Ok(page["value"][0]["id"].as_str().and_then(|id| id.parse().ok()))
    }

    /// The users whose `mail` is `mail` (id and UPN), for a requester named by email. `mail`
    /// supports `eq` in default queries. https://learn.microsoft.com/graph/api/user-list
    ///
    /// # Errors
    /// Graph failed.
    pub(crate) async fn users_by_mail(&self, mail: &str) -> Result<Vec<models::UserId>, GraphError> {
        let filter = format!("mail eq {}", odata::quote(mail));
        let url = self.url(
            "v1.0",
            &["users"],
            &[("$filter", filter.as_str()), ("$select", "id,userPrincipalName")],
        );
        self.list_all_strict(url).await
    }
}

impl GraphClient {
    /// Up to 10 users whose display name, mail or UPN matches `text` (Graph's `$search`, which
    /// needs the advanced-query header `ConsistencyLevel: eventual` and `$count=true`), with the
    /// properties an agent tells people apart by.
    /// https://learn.microsoft.com/graph/api/user-list (example "Use $search to get users with
    /// display names that contain the letters 'wa' including a count of returned objects") and
    /// https://learn.microsoft.com/graph/search-query-parameter
    ///
    /// # Errors
    /// Graph failed.
    pub async fn search_users(&self, text: &str) -> Result<Vec<Value>, GraphError> {
        // `$search` takes `"property:text"` clauses; the text is stripped of quotes and
        // backslashes by the caller, so it cannot close a clause.
        let search = format!("\"displayName:{text}\" OR \"mail:{text}\" OR \"userPrincipalName:{text}\"");
        let url = self.url(
            "v1.0",
            &["users"],
            &[
                ("$search", search.as_str()),
                ("$count", "true"),
                ("$top", "10"),
                (
                    "$select",
                    "id,displayName,userPrincipalName,mail,mobilePhone,department,jobTitle,officeLocation,accountEnabled,userType",
                ),
            ],
        );
        let response = self
            .send_retrying_with(reqwest::Method::GET, &url, None, &[("ConsistencyLevel", "eventual")])
            .await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let mut page: Value = response
            .json()
            .await
            .map_err(|e| GraphError::Unreachable(format!("unreadable answer: {}", e.without_url())))?;
        Ok(match page["value"].take() {
            Value::Array(items) => items.into_iter().take(10).collect(),
            _ => Vec::new(),
        })
    }
}
