//! `/api/sweeps…`: the compliance sweep's summary, reports, progress and history, and "run now".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit::{Action, AuditEvent, Phase};
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::vocab::CallerRecord;
use crate::vocab::Refusal;

use super::caller::*;

/// `GET /api/sweeps/latest` (or a run id): the sweep's summary and links to its reports.
/// Needs `Audit.Read`.
pub async fn sweep_summary(
    State(state): State<AppState>,
    _who: Authorized<SweepRead>,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    match run.as_str() {
        "current" => return sweep_progress(store.as_ref()).await.map(Json),
        "history" => return sweep_history(store.as_ref()).await.map(Json),
        _ => {}
    }
    let mut summary = latest_summary(store.as_ref()).await?;
    if run != "latest" && summary["runId"] != run.as_str() {
        return Err(sweep_not_found());
    }
    let id = summary["runId"].as_str().unwrap_or_default().to_owned();
    summary["links"] = json!({
        "html": format!("/api/sweeps/{id}/report.html"),
        "csv": format!("/api/sweeps/{id}/report.csv"),
        "json": format!("/api/sweeps/{id}/report.json"),
    });
    Ok(Json(summary))
}

/// `GET /api/sweeps/{run}/report.{html,csv,json}`: a report of the latest run.
pub async fn sweep_file(
    State(state): State<AppState>,
    _who: Authorized<SweepRead>,
    Path((run, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    if !["report.html", "report.csv", "report.json"].contains(&file.as_str()) {
        return Err(sweep_not_found());
    }
    let run = if run == "latest" {
        latest_summary(store.as_ref()).await?["runId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        run
    };
    if run.is_empty() || !run.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(sweep_not_found());
    }
    let name = format!("runs/{run}/{file}");
    let data = store
        .get(&name)
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    let mut response = data.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::storage::reports::content_type(&name)),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/sweeps/current`: the run in progress, or the last one (finished).
pub(super) async fn sweep_progress(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let data = store
        .get("current.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    let c: Value =
        serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("current.json: {e}")))?;
    // Unfinished and saved recently: running. Unfinished and quiet: stopped (the instance was
    // recycled, or the time budget ran out), and the next run resumes it.
    let last_saved = c["savedAt"]
        .as_str()
        .or(c["startedAt"].as_str())
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
    let running = c["finishedAt"].is_null()
        && last_saved
            .is_some_and(|t| OffsetDateTime::now_utc() - t < time::Duration::minutes(crate::sweep::STALE_MINUTES));
    Ok(json!({
        "runId": c["runId"], "startedAt": c["startedAt"], "finishedAt": c["finishedAt"],
        "running": running, "savedAt": c["savedAt"], "pages": c["pages"], "users": c["totals"]["users"],
        "byRisk": c["totals"]["byRisk"], "excluded": c["totals"]["excluded"],
    }))
}

/// `GET /api/sweeps/history`: the last runs, newest first, each with the change from the one
/// before it.
pub(super) async fn sweep_history(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let runs: Vec<Value> = match store
        .get("history.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
    {
        Some(data) => {
            serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("history.json: {e}")))?
        }
        None => Vec::new(),
    };
    let value: Vec<Value> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut run = run.clone();
            if let Some(before) = runs.get(i + 1) {
                run["change"] = crate::sweep::report::change(before, &run);
            }
            run
        })
        .collect();
    Ok(json!({"value": value}))
}

/// `POST /api/sweeps` (`Audit.Read`): run the sweep now ("run now" in the console), whatever
/// `SWEEP_MIN_INTERVAL_HOURS` says, at the usual pace, within the usual time budget (a run cut
/// off resumes at the next timer or run). One at a time: `409 sweep_running` while one runs.
/// Audited as `sweep.run` with who asked.
pub async fn start_sweep(State(state): State<AppState>, who: Authorized<SweepRun>) -> Result<Response, ApiError> {
    let caller = who.caller;
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    let running = || {
        ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepRunning,
            "a sweep is running; follow it at /api/sweeps/current",
        ))
    };
    // Two "run now" calls at once in this instance: only one starts (the checkpoint below covers
    // a run started elsewhere).
    if state.sweep_started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(running());
    }
    let release = ReleaseOnDrop(state.sweep_started.clone());
    let wait = i64::from(state.settings.sweep.run_now_min_minutes);
    if let Ok(latest) = latest_summary(store.as_ref()).await
        && let Some(finished) = latest["finishedAt"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        && OffsetDateTime::now_utc() - finished < time::Duration::minutes(wait)
    {
        let left = (finished + time::Duration::minutes(wait) - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        return Err(ApiError::Recovery(
            crate::recovery::RecoveryError::refused(
                Refusal::SweepTooSoon,
                format!(
                    "the last sweep finished less than {wait} minutes ago (SWEEP_RUN_NOW_MIN_MINUTES); its report is current. Try again in {} minutes",
                    (left + 59) / 60
                ),
            )
            .with_retry_after(left.unsigned_abs()),
        ));
    }
    if let Ok(progress) = sweep_progress(store.as_ref()).await
        && progress["running"] == true
    {
        return Err(ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepRunning,
            format!(
                "sweep {} is running; follow it at /api/sweeps/current",
                progress["runId"].as_str().unwrap_or_default()
            ),
        )));
    }
    let event = AuditEvent {
        caller: CallerRecord::from(&caller),
        action: Action::SweepRun,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Intent,
        outcome: None,
        details: json!({"trigger": "api"}),
    };
    state.audit.record(event).await.map_err(|e| {
        tracing::error!(error = %e, "the sweep's intent could not be recorded");
        ApiError::Recovery(crate::recovery::RecoveryError::failed(
            crate::vocab::Fault::AuditUnavailable,
            "the audit trail is unavailable, so the sweep was not started; try again later",
        ))
    })?;
    let run = state.clone();
    tokio::spawn(async move {
        // The flag stays up until the run ends.
        let _release = release;
        let sweep = crate::sweep::Sweep {
            graph: &run.graph,
            store,
            settings: &run.settings.sweep,
            deliverer: Some(&run.deliverer),
            audit: Some(&run.audit),
            budget: Some(std::time::Duration::from_secs(u64::from(
                run.settings.sweep.time_budget_seconds,
            ))),
        };
        match sweep.run(crate::sweep::Trigger::Api, &|_| {}).await {
            Ok(crate::sweep::RunOutcome::Finished(summary)) => {
                tracing::info!(run_id = %summary["runId"], "sweep started from the API finished");
            }
            Ok(_) => tracing::info!("sweep started from the API paused or was up to date; the next run resumes"),
            Err(e) => tracing::error!(error = %e, "sweep started from the API failed"),
        }
    });
    Ok((
        axum::http::StatusCode::ACCEPTED,
        [(header::LOCATION, "/api/sweeps/current")],
        Json(json!({"status": "started", "statusUrl": "/api/sweeps/current"})),
    )
        .into_response())
}

/// Lowers the flag when dropped (the run ended, or the call was refused or failed).
struct ReleaseOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

pub(super) async fn latest_summary(store: &dyn crate::storage::reports::ReportStore) -> Result<Value, ApiError> {
    let data = store
        .get("latest.json")
        .await
        .map_err(|e| ApiError::DependencyUnavailable(e.to_string()))?
        .ok_or_else(sweep_not_found)?;
    serde_json::from_slice(&data).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("latest.json: {e}")))
}

pub(super) fn sweeps_off() -> ApiError {
    ApiError::DependencyUnavailable("the sweep has no storage: set AzureWebJobsStorage__* (or SWEEP_DIR)".into())
}

pub(super) fn sweep_not_found() -> ApiError {
    ApiError::Recovery(crate::recovery::RecoveryError::refused(
        Refusal::SweepNotFound,
        "no finished sweep (run the compliance-sweep function, or mfa-recovery sweep)",
    ))
}
