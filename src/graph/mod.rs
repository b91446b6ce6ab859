//! Microsoft Graph: one shared `reqwest` client, tokens from the managed identity, the base URL
//! from `GRAPH_ENDPOINT`, retries on 429/503/504 that honour `Retry-After`, and a typed error that
//! keeps the status, Graph's error code and the request id (never the body).
//!
//! Every value that goes into `$filter` passes through `odata::quote`, and URLs are built with
//! `Url::query_pairs_mut`, which percent-encodes them.

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
        }
    }

    /// `{GRAPH_ENDPOINT}/{version}/{path}` with `query` percent-encoded.
    pub fn url(&self, version: &str, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().expect("GRAPH_ENDPOINT is a base URL");
            segments.pop_if_empty().push(version);
            for segment in path.split('/').filter(|s| !s.is_empty()) {
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

    /// GET a JSON document, retrying 429, 503 and 504 (with `Retry-After` as the minimum wait,
    /// capped attempts and total time). Reads only: a write is never retried blindly.
    ///
    /// # Errors
    /// Graph's error, or unreachable after the retry budget.
    pub async fn get_json(&self, url: &Url) -> Result<Value, GraphError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let result = self.http.get(url.clone()).bearer_auth(token).send().await;
            let response = match result {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS && started.elapsed() < MAX_TOTAL => {
                    tracing::warn!(attempt, error = %e, "Graph unreachable; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GraphError::Unreachable(e.to_string())),
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                return response
                    .json()
                    .await
                    .map_err(|e| GraphError::Unreachable(format!("unreadable answer: {e}")));
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let request_id = response
                .headers()
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            let retryable = matches!(status, 429 | 503 | 504);
            let wait = retry_after.unwrap_or_else(|| backoff(attempt)).max(backoff(attempt));
            if retryable && attempt < MAX_ATTEMPTS && started.elapsed() + wait < MAX_TOTAL && wait <= MAX_RETRY_AFTER {
                tracing::warn!(status, attempt, wait_ms = wait.as_millis() as u64, %request_id, "Graph throttled or busy; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("unknown").to_owned();
            return Err(GraphError::Status {
                status,
                code,
                request_id,
            });
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(5)))
}
