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
/// with eq/ge/le and `targetResources/any(t:t/id eq '…')`, `$top`, newest first.
/// https://learn.microsoft.com/graph/api/directoryaudit-list
pub(crate) async fn directory_audits(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_AUDIT)?;
    p.require(READ_DIRECTORY)?;
    let q = odata::query(&uri);
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
    items.reverse();
    page_of(&state, v, items, &uri, "auditLogs/directoryAudits")
}
