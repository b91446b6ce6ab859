//! `GET /api/health` and the host's readiness probe `GET /`.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health(axum::extract::State(state): axum::extract::State<crate::host::AppState>) -> Json<Value> {
    let export = match &state.exporter {
        None => json!({"state": "off"}),
        // Anonymous: the state and since when, not the error (the doctor, for Audit.Read, says why).
        Some(e) => match e.state().await {
            Ok(Some(s)) => json!({"state": s.state, "lastSuccess": s.last_success, "failingSince": s.failing_since}),
            Ok(None) => json!({"state": "pending"}),
            Err(_) => json!({"state": "unknown"}),
        },
    };
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION"), "auditExport": export}))
}

/// `GET /api/doctor`: every read the service depends on, run with the function app's identity
/// (`doctor::run`), per feature. Needs `Audit.Read`; writes nothing.
pub(crate) async fn doctor(
    axum::extract::State(state): axum::extract::State<crate::host::AppState>,
    _who: super::caller::Authorized<super::caller::Diagnose>,
) -> Json<Value> {
    let mut report = state.doctor.report(&state.graph, &state.settings).await;
    report.rows.push(export_row(&state).await);
    report.works = report.rows.iter().filter(|r| r.status == Status::Works).count();
    report.problems = report
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                Status::MissingPermission | Status::NotLicensed | Status::Failed
            )
        })
        .count();
    Json(json!(report))
}

use crate::doctor::{Row, Status};

/// The doctor's row for the trail's copy in Log Analytics: how the export's last runs went.
async fn export_row(state: &crate::host::AppState) -> Row {
    let (feature, check) = ("Audit trail in Log Analytics", "the audit-export function's last run");
    let Some(exporter) = &state.exporter else {
        return Row {
            feature,
            check,
            status: Status::NotConfigured,
            permission: None,
            detail: "AUDIT_EXPORT_ENDPOINT and AUDIT_EXPORT_RULE_ID are not set: the SOC has no copy of the trail (logAnalyticsExport, docs/audit.md)".into(),
        };
    };
    let (status, detail) = match exporter.state().await {
        Ok(Some(s)) if s.state == "ok" => (
            Status::Works,
            format!("sent everything it had at {}", s.last_success.unwrap_or_default()),
        ),
        Ok(Some(s)) => (
            Status::Failed,
            format!(
                "failing since {}: {}. Check Monitoring Metrics Publisher on the data collection rule and the rule's endpoint (docs/audit.md); nothing is lost, the next run goes on from where it stopped",
                s.failing_since.unwrap_or_default(),
                s.last_error.unwrap_or_default()
            ),
        ),
        Ok(None) => (Status::NotChecked, "no run yet (it runs every minute)".into()),
        Err(e) => (Status::Failed, format!("its status cannot be read: {e}")),
    };
    Row {
        feature,
        check,
        status,
        permission: Some("Monitoring Metrics Publisher (on the data collection rule)"),
        detail,
    }
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub(crate) async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}
