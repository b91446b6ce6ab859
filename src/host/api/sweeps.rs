//! `/api/sweeps…`: the compliance sweep's summary, reports, progress and history, and "run now".
//! What is shown comes from `sweep::view`; this file renders it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::host::AppState;
use crate::host::error::ApiError;
use crate::sweep::view::{self, NotNow, ViewError};
use crate::vocab::Refusal;

use super::caller::*;

/// A view that could not be read, as the caller is told.
fn unreadable(e: ViewError) -> ApiError {
    match e {
        ViewError::NotFound => ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepNotFound,
            e.to_string(),
        )),
        ViewError::Unavailable(why) => ApiError::DependencyUnavailable(why),
        ViewError::Corrupt(why) => ApiError::Unexpected(anyhow::anyhow!(why)),
    }
}

fn sweeps_off() -> ApiError {
    ApiError::DependencyUnavailable("the sweep has no storage: set AzureWebJobsStorage__* (or SWEEP_DIR)".into())
}

/// `GET /api/sweeps/latest` (or a run id, `current`, `history`): the sweep's summary and links to
/// its reports, the run in progress, or the last runs. Needs `Audit.Read`.
pub(crate) async fn sweep_summary(
    State(state): State<AppState>,
    _who: Authorized<SweepRead>,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    let shown = match run.as_str() {
        "current" => view::progress(store.as_ref()).await.map(|v| json!(v)),
        "history" => view::history(store.as_ref()).await.map(|v| json!(v)),
        _ => view::summary(store.as_ref(), &run).await.map(|v| json!(v)),
    };
    shown.map(Json).map_err(unreadable)
}

/// `GET /api/sweeps/{run}/report.{html,csv,json}`: a report of the latest run.
pub(crate) async fn sweep_file(
    State(state): State<AppState>,
    _who: Authorized<SweepRead>,
    Path((run, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    let (data, content_type) = view::file(store.as_ref(), &run, &file).await.map_err(unreadable)?;
    let mut response = data.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/sweeps` (`Audit.Read`): run the sweep now ("run now" in the console), whatever
/// `SWEEP_MIN_INTERVAL_HOURS` says, at the usual pace, within the usual time budget (a run cut
/// off resumes at the next timer or run). One at a time: `409 sweep_running` while one runs.
/// Audited as `sweep.run` with who asked.
pub(crate) async fn start_sweep(
    State(state): State<AppState>,
    who: Authorized<SweepRun>,
) -> Result<Response, ApiError> {
    let store = state.sweeps.clone().ok_or_else(sweeps_off)?;
    let running = |run: Option<&str>| {
        let which = run.map_or_else(|| "a sweep".to_owned(), |id| format!("sweep {id}"));
        ApiError::Recovery(crate::recovery::RecoveryError::refused(
            Refusal::SweepRunning,
            format!("{which} is running; follow it at /api/sweeps/current"),
        ))
    };
    let wait = i64::from(state.settings.sweep.run_now_min_minutes);
    let release = match view::begin_run_now(&state.sweep_started, store.as_ref(), wait, &state.audit, who.record())
        .await
    {
        Ok(slot) => slot,
        Err(NotNow::Running { run_id }) => return Err(running(run_id.as_deref())),
        Err(NotNow::TooSoon { wait, retry_after }) => {
            return Err(ApiError::Recovery(
                crate::recovery::RecoveryError::refused(
                    Refusal::SweepTooSoon,
                    format!(
                        "the last sweep finished less than {wait} minutes ago (SWEEP_RUN_NOW_MIN_MINUTES); its report is current. Try again in {} minutes",
                        retry_after.div_ceil(60)
                    ),
                )
                .with_retry_after(retry_after),
            ));
        }
        Err(NotNow::Unrecorded) => {
            return Err(ApiError::Recovery(crate::recovery::RecoveryError::failed(
                crate::vocab::Fault::AuditUnavailable,
                "the audit trail is unavailable, so the sweep was not started; try again later",
            )));
        }
    };
    let run = state.clone();
    tokio::spawn(async move {
        // The flag stays up until the run ends.
        let _release = release;
        let Some(sweep) = run.sweep() else { return };
        match sweep.run(crate::sweep::Trigger::Api, &|_| {}).await {
            Ok(crate::sweep::RunOutcome::Finished(summary)) => {
                tracing::info!(run_id = %summary.run_id, "sweep started from the API finished");
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
