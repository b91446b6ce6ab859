//! Per-invocation context: the `X-Azure-Functions-InvocationId` the host sends (or a fresh id
//! for calls that did not come through a host) goes into a span around the whole request, so
//! every log line of the invocation carries it, and back to the caller in `x-invocation-id`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub(crate) const INVOCATION_HEADER: &str = "x-azure-functions-invocationid";

tokio::task_local! {
    static INVOCATION_ID: String;
}

/// The id of the invocation being served, if any.
pub(crate) fn current_invocation_id() -> Option<String> {
    INVOCATION_ID.try_with(Clone::clone).ok()
}

/// Accept only ids that look like ids, so a caller cannot inject text into log lines.
fn sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(INVOCATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Caller fields are filled in by `auth` once the caller is known.
    let span = tracing::info_span!(
        "invocation",
        invocation_id = %id,
        caller_app = tracing::field::Empty,
        caller_oid = tracing::field::Empty,
        caller_name = tracing::field::Empty,
        source_ip = tracing::field::Empty,
    );
    let started = Instant::now();
    let id_for_header = id.clone();
    let mut response = INVOCATION_ID
        .scope(id, async move {
            let response = next.run(request).await;
            // The readiness probe (`GET /`) is polled every 25 ms during start-up: not logged.
            if path != "/" {
                tracing::info!(
                    %method,
                    path = %redact_path(&path),
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "invocation finished"
                );
            }
            response
        })
        .instrument(span)
        .await;
    if let Ok(v) = HeaderValue::from_str(&id_for_header) {
        response.headers_mut().insert("x-invocation-id", v);
    }
    response
}

/// Paths carry user ids or UPNs; a UPN is personal data, so it is replaced by a placeholder.
/// Object ids (GUIDs) are kept: they are the ids an operator correlates on.
pub(crate) fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.contains('@') || seg.contains("%40") {
                "{upn}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upns_in_paths_are_redacted_and_object_ids_kept() {
        assert_eq!(
            redact_path("/api/users/adele.vance@contoso.test/tap"),
            "/api/users/{upn}/tap"
        );
        assert_eq!(
            redact_path("/api/users/adele%40contoso.test/tap"),
            "/api/users/{upn}/tap"
        );
        assert_eq!(
            redact_path("/api/users/b0000001-0000-4000-8000-000000000001/tap"),
            "/api/users/b0000001-0000-4000-8000-000000000001/tap"
        );
    }

    #[test]
    fn invocation_ids_that_could_inject_text_are_replaced() {
        assert!(sane("7f0c5d0e-1d7b-4d8c-9c55-0e3b3f2c1a10"));
        assert!(!sane("x\nfake log line"));
        assert!(!sane(""));
    }
}
