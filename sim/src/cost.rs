//! What an operation cost in Graph: how many calls (each sub-request of a `$batch` counts, as
//! Graph throttles each on its own: concepts/json-batching.md, "Requests in a batch are evaluated
//! individually against the applicable throttling limits") and how many round trips waited one
//! on another (the critical path). With Graph far away (`POST /sim/latency`), the round trips
//! are what a caller waits for: 50 to 150 ms each from a Functions region.
//!
//! Round trips come from the request log's clock: a request is one round trip after the latest
//! request that had answered before it was sent. With a latency well above the simulator's own
//! work (tests use 40 ms or more), requests sent together overlap and count once.
//!
//! `POST /sim/scale` grows the tenant along the dimensions the cost must not depend on:
//! role-assignable groups (owned by somebody else), groups a user is in, and holders of this
//! API's app roles.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::SimState;
use crate::seed::{AppRoleAssignmentSeed, GroupSeed};
use crate::state::RequestRecord;

/// Graph calls and sequential round trips of what the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphCost {
    /// Every Graph request, a `$batch`'s sub-requests counted one by one and the `$batch`
    /// envelope not at all.
    pub calls: usize,
    /// HTTP requests to Graph one after another (the longest chain of requests each sent after
    /// the previous one answered).
    pub round_trips: usize,
    /// `$batch` requests sent.
    pub batches: usize,
}

fn is_graph(r: &RequestRecord) -> bool {
    r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/")
}

fn is_batch(r: &RequestRecord) -> bool {
    r.path.ends_with("/$batch")
}

/// The cost of `log` (Graph requests only).
pub fn graph_cost(log: &[RequestRecord]) -> GraphCost {
    let graph: Vec<&RequestRecord> = log.iter().filter(|r| is_graph(r)).collect();
    let calls = graph.iter().filter(|r| !is_batch(r)).count();
    let batches = graph.iter().filter(|r| is_batch(r)).count();
    // HTTP round trips: every request that went over the wire (a `$batch` once, not its parts).
    let mut wire: Vec<&RequestRecord> = graph.into_iter().filter(|r| !r.in_batch).collect();
    wire.sort_by_key(|r| r.started_us);
    let mut depth: Vec<usize> = Vec::with_capacity(wire.len());
    for (i, r) in wire.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| wire[j].ended_us <= r.started_us)
            .map(|j| depth[j])
            .max()
            .unwrap_or(0);
        depth.push(before + 1);
    }
    GraphCost {
        calls,
        round_trips: depth.into_iter().max().unwrap_or(0),
        batches,
    }
}

/// GET /sim/cost: the Graph calls and round trips of the request log so far.
pub(crate) async fn cost_route(State(state): State<Arc<SimState>>) -> Response {
    Json(graph_cost(&state.requests.lock().expect("requests lock"))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Latency {
    graph_ms: u64,
}

/// POST /sim/latency `{"graphMs": 50}`: every Graph answer waits that long (0: none).
pub(crate) async fn set_latency(State(state): State<Arc<SimState>>, Json(l): Json<Latency>) -> Response {
    state.graph_latency_ms.store(l.graph_ms, Ordering::Relaxed);
    Json(json!({"graphMs": l.graph_ms})).into_response()
}

/// How to grow the tenant (`POST /sim/scale`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scale {
    /// Role-assignable groups to add, each owned by a synthetic service principal (Entra allows
    /// at most 500 per tenant).
    #[serde(default)]
    pub role_assignable_groups: usize,
    /// Ordinary security groups to add with `member` in each.
    #[serde(default)]
    pub groups_of: Option<(String, usize)>,
    /// Users (synthetic ids) to give `Recovery.Tap` of this API.
    #[serde(default)]
    pub api_role_holders: usize,
}

/// Apply `scale` to the live tenant.
///
/// # Errors
/// `groups_of` names no user.
pub(crate) fn apply_scale(state: &SimState, scale: &Scale) -> Result<(), String> {
    let mut tenant = state.tenant();
    let synthetic = |kind: u32, i: usize| format!("5ca1e{kind:03x}-0000-4000-8000-{i:012x}");
    for i in 0..scale.role_assignable_groups {
        tenant.groups.push(GroupSeed {
            id: synthetic(1, i),
            display_name: format!("Role group {i}"),
            is_assignable_to_role: true,
            members: Vec::new(),
            owners: vec![synthetic(2, i)],
        });
    }
    if let Some((member, n)) = &scale.groups_of {
        let id = tenant
            .user(member)
            .map(|u| u.id.clone())
            .ok_or_else(|| format!("no user {member}"))?;
        for i in 0..*n {
            tenant.groups.push(GroupSeed {
                id: synthetic(3, i),
                display_name: format!("Team {i}"),
                is_assignable_to_role: false,
                members: vec![id.clone()],
                owners: Vec::new(),
            });
        }
    }
    for i in 0..scale.api_role_holders {
        tenant.app_role_assignments.push(AppRoleAssignmentSeed {
            principal_id: synthetic(4, i),
            principal_type: "User".into(),
            principal_display_name: Some(format!("Agent {i}")),
            app_role: "Recovery.Tap".into(),
        });
    }
    Ok(())
}

/// POST /sim/scale `{"roleAssignableGroups": 500, "groupsOf": ["lee.gu@contoso.test", 30],
/// "apiRoleHolders": 5000}`.
pub(crate) async fn scale(State(state): State<Arc<SimState>>, Json(s): Json<Scale>) -> Response {
    match apply_scale(&state, &s) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}
