//! Injected faults (`POST /sim/faults`) and the request log (`GET /sim/requests`).
//!
//! A fault matches a method and a path glob (`*` within a segment, `**` across segments) and
//! applies to the next `count` matching calls: added latency, then either an error status
//! instead of the call (`after: false`, the default) or after it (`after: true`: the call takes
//! effect but the client sees an error, which is how an "outcome unknown" create looks).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::SimState;
use crate::error::graph_body;
use crate::state::RequestRecord;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(default)]
    pub id: String,
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path glob, e.g. `/v1.0/users/*/authentication/temporaryAccessPassMethods`.
    pub route: String,
    /// Status to answer with (429, 503, 504, ...). Latency only when absent.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds to send with the status.
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Apply after the call ran (its effect stays).
    #[serde(default)]
    pub after: bool,
    /// How many matching calls it applies to.
    #[serde(default = "one")]
    pub count: u32,
    /// Apply to every `every`-th matching call only (5: one call in five, for a load run with
    /// a share of failures); the others pass on to the next fault or the endpoint.
    #[serde(default = "one")]
    pub every: u32,
    /// Matching calls seen so far (for `every`).
    #[serde(default, skip_deserializing)]
    pub seen: u32,
}

fn one() -> u32 {
    1
}

/// Match `path` against a glob where `*` stays within a segment and `**` spans segments.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => {
                let seg_end = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=seg_end).any(|i| go(rest, &s[i..]))
            }
            [c, rest @ ..] => s.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

fn take_fault(state: &SimState, method: &str, path: &str) -> Option<Fault> {
    let mut faults = state.faults.lock().unwrap();
    let mut hit = None;
    for (i, f) in faults.iter_mut().enumerate() {
        let matches = f.count > 0
            && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob_match(&f.route, path);
        if !matches {
            continue;
        }
        f.seen += 1;
        if f.seen % f.every.max(1) == 0 {
            hit = Some(i);
            break;
        }
    }
    let idx = hit?;
    let fault = faults[idx].clone();
    faults[idx].count -= 1;
    if faults[idx].count == 0 {
        faults.remove(idx);
    }
    Some(fault)
}

fn fault_response(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = match status.as_u16() {
        429 => "TooManyRequests",
        503 => "serviceNotAvailable",
        504 => "gatewayTimeout",
        500 => "generalException",
        _ => "generalException",
    };
    let mut response = (status, Json(graph_body(code, "Injected by the simulator."))).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(secs));
    }
    response
}

/// Applies faults to every remote-party route and records each request.
pub async fn middleware(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let headers: std::collections::BTreeMap<String, String> = ["consistencylevel", "prefer", "content-type"]
        .iter()
        .filter_map(|h| {
            request
                .headers()
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*h).to_owned(), v.to_owned()))
        })
        .collect();
    let graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
    let in_batch = request.headers().contains_key(crate::graph::BATCH_ITEM);
    let started_us = state.epoch.elapsed().as_micros() as u64;
    let (request, body) = if graph {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 4 << 20).await.unwrap_or_default();
        let json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        (Request::from_parts(parts, axum::body::Body::from(bytes)), json)
    } else {
        (request, None)
    };
    let far = state.graph_latency_ms.load(std::sync::atomic::Ordering::Relaxed);
    if graph && !in_batch && far > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(far)).await;
    }
    let fault = take_fault(&state, &method, &path);
    let (response, faulted) = match fault {
        None => (next.run(request).await, false),
        Some(f) => {
            if let Some(ms) = f.latency_ms {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            match (f.status, f.after) {
                (None, _) => (next.run(request).await, false),
                (Some(status), false) => (fault_response(status, f.retry_after), true),
                (Some(status), true) => {
                    let _ = next.run(request).await;
                    (fault_response(status, f.retry_after), true)
                }
            }
        }
    };
    let (response, answered) = if graph && response.status().is_success() {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
        let json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        (Response::from_parts(parts, axum::body::Body::from(bytes)), json)
    } else {
        (response, None)
    };
    state.requests.lock().unwrap().push(RequestRecord {
        method,
        path,
        query,
        headers,
        body,
        response: answered,
        status: response.status().as_u16(),
        faulted,
        in_batch,
        started_us,
        ended_us: state.epoch.elapsed().as_micros() as u64,
    });
    response
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_within_and_across_segments() {
        let tap = "/v1.0/users/*/authentication/temporaryAccessPassMethods";
        assert!(glob_match(
            tap,
            "/v1.0/users/abc/authentication/temporaryAccessPassMethods"
        ));
        assert!(!glob_match(
            tap,
            "/v1.0/users/a/b/authentication/temporaryAccessPassMethods"
        ));
        assert!(glob_match("/v1.0/**", "/v1.0/users/a/b"));
        assert!(!glob_match("/v1.0/users/*", "/beta/users/a"));
        assert!(glob_match("/v1.0/users/*", "/v1.0/users/a"));
    }
}
