//! Simulated Microsoft Graph: `/auditLogs/directoryAudits`: the directory audit log.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- directory audits

pub(crate) const AUDIT_FIELDS: &[&str] = &[
    "activityDateTime",
    "activityDisplayName",
    "category",
    "loggedByService",
    "result",
    "correlationId",
    "id",
];

/// GET /auditLogs/directoryAudits — needs AuditLog.Read.All and Directory.Read.All; `$filter`
/// with eq/ge/le and `targetResources/any(t:t/id eq '…')`, `$top`, `$orderby=activityDateTime`.
/// https://learn.microsoft.com/graph/api/directoryaudit-list: `targetResources` filters on `id`
/// and `displayName` only (another property answers 400, as an unsupported filter does). The docs
/// state no order without `$orderby`: the simulator gives the oldest first then (the order it
/// keeps), so a caller that needs the newest first must ask for it.
pub(crate) async fn directory_audits(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_AUDIT)?;
    p.require(READ_DIRECTORY)?;
    let q = odata::query(&uri);
    if let Some(f) = q.get("$filter") {
        target_filter_documented(f)?;
    }
    let newest_first = match q.get("$orderby").map(String::as_str) {
        None | Some("activityDateTime asc") | Some("activityDateTime") => false,
        Some("activityDateTime desc") => true,
        Some(other) => {
            return Err(GraphError::bad_request(format!("Unsupported $orderby '{other}'.")));
        }
    };
    let filter = match q.get("$filter") {
        Some(f) => Some(Filter::parse_with_ranges(
            f,
            AUDIT_FIELDS,
            &["activityDateTime"],
            &["targetResources"],
        )?),
        None => None,
    };
    let mut items: Vec<Value> = state
        .tenant()
        .directory_audits
        .iter()
        .filter(|e| filter.as_ref().is_none_or(|f| f.matches(e)))
        .cloned()
        .collect();
    items.sort_by(|a, b| {
        a["activityDateTime"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["activityDateTime"].as_str().unwrap_or_default())
    });
    if newest_first {
        items.reverse();
    }
    page_of(&state, v, items, &uri, "auditLogs/directoryAudits")
}

/// `targetResources/any(t:t/<property> …)` names `id` or `displayName`, the two the docs list.
fn target_filter_documented(filter: &str) -> Result<(), GraphError> {
    let mut rest = filter;
    while let Some(at) = rest.find("targetResources/any(") {
        rest = &rest[at + "targetResources/any(".len()..];
        let inner = rest.split(')').next().unwrap_or_default();
        let property = inner
            .split_once(':')
            .and_then(|(_, body)| body.trim().split_once('/'))
            .map(|(_, p)| p.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default())
            .unwrap_or_default();
        if !matches!(property, "id" | "displayName") {
            return Err(GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!("Unsupported filter on targetResources/{property}: only id and displayName can be filtered."),
            ));
        }
    }
    Ok(())
}
