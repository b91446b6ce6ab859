//! What the API shows of the sweep, read from its report store: the latest run's summary, one of
//! its reports, the run in progress, the history with the change between runs, and whether a
//! "run now" may start. The HTTP layer only renders what these return.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::storage::reports::{ReportStore, content_type};
use crate::vocab::paths;

/// Why a view could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// No finished sweep (or no such run or file).
    #[error("no finished sweep (run the compliance-sweep function, or mfa-recovery sweep)")]
    NotFound,
    /// The store could not be read.
    #[error("{0}")]
    Unavailable(String),
    /// A file the sweep wrote does not parse.
    #[error("{0}")]
    Corrupt(String),
}

/// Why "run now" may not start.
#[derive(Debug)]
pub enum NotNow {
    /// The last run finished less than `wait` minutes ago; `retry_after` seconds to go.
    TooSoon { wait: i64, retry_after: u64 },
    /// A run is in progress.
    Running { run_id: String },
}

async fn read(store: &dyn ReportStore, name: &str) -> Result<Value, ViewError> {
    let data = store
        .get(name)
        .await
        .map_err(|e| ViewError::Unavailable(e.to_string()))?
        .ok_or(ViewError::NotFound)?;
    serde_json::from_slice(&data).map_err(|e| ViewError::Corrupt(format!("{name}: {e}")))
}

/// The latest finished run's summary (`latest`, or that run's id), with links to its reports.
pub async fn summary(store: &dyn ReportStore, run: &str) -> Result<Value, ViewError> {
    let mut summary = read(store, "latest.json").await?;
    if run != "latest" && summary["runId"] != run {
        return Err(ViewError::NotFound);
    }
    let id = summary["runId"].as_str().unwrap_or_default().to_owned();
    summary["links"] = json!({
        "html": paths::sweep_file(&id, "report.html"),
        "csv": paths::sweep_file(&id, "report.csv"),
        "json": paths::sweep_file(&id, "report.json"),
    });
    Ok(summary)
}

/// One report of a run (`latest` or its id): its bytes and content type.
pub async fn file(store: &dyn ReportStore, run: &str, file: &str) -> Result<(Vec<u8>, &'static str), ViewError> {
    if !["report.html", "report.csv", "report.json"].contains(&file) {
        return Err(ViewError::NotFound);
    }
    let run = if run == "latest" {
        read(store, "latest.json").await?["runId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        run.to_owned()
    };
    if run.is_empty() || !run.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(ViewError::NotFound);
    }
    let name = format!("runs/{run}/{file}");
    let data = store
        .get(&name)
        .await
        .map_err(|e| ViewError::Unavailable(e.to_string()))?
        .ok_or(ViewError::NotFound)?;
    Ok((data, content_type(&name)))
}

/// The run in progress, or the last one (finished).
pub async fn progress(store: &dyn ReportStore) -> Result<Value, ViewError> {
    let c = read(store, "current.json").await?;
    // Unfinished and saved recently: running. Unfinished and quiet: stopped (the instance was
    // recycled, or the time budget ran out), and the next run resumes it.
    let last_saved = c["savedAt"]
        .as_str()
        .or(c["startedAt"].as_str())
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
    let running = c["finishedAt"].is_null()
        && last_saved.is_some_and(|t| OffsetDateTime::now_utc() - t < time::Duration::minutes(super::STALE_MINUTES));
    Ok(json!({
        "runId": c["runId"], "startedAt": c["startedAt"], "finishedAt": c["finishedAt"],
        "running": running, "savedAt": c["savedAt"], "pages": c["pages"], "users": c["totals"]["users"],
        "byRisk": c["totals"]["byRisk"], "excluded": c["totals"]["excluded"],
    }))
}

/// The last runs, newest first, each with the change from the one before it.
pub async fn history(store: &dyn ReportStore) -> Result<Value, ViewError> {
    let runs: Vec<Value> = match read(store, "history.json").await {
        Ok(v) => serde_json::from_value(v).map_err(|e| ViewError::Corrupt(format!("history.json: {e}")))?,
        Err(ViewError::NotFound) => Vec::new(),
        Err(e) => return Err(e),
    };
    let value: Vec<Value> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut run = run.clone();
            if let Some(before) = runs.get(i + 1) {
                run["change"] = super::report::change(before, &run);
            }
            run
        })
        .collect();
    Ok(json!({"value": value}))
}

/// Whether "run now" may start: not within `wait` minutes of the last finished run (its report is
/// current), and not while a run is in progress. A store that cannot be read does not stop it
/// (the run itself will say).
pub async fn may_start_now(store: &dyn ReportStore, wait: i64) -> Result<(), NotNow> {
    if let Ok(latest) = read(store, "latest.json").await
        && let Some(finished) = latest["finishedAt"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        && OffsetDateTime::now_utc() - finished < time::Duration::minutes(wait)
    {
        let left = (finished + time::Duration::minutes(wait) - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        return Err(NotNow::TooSoon {
            wait,
            retry_after: left.unsigned_abs(),
        });
    }
    if let Ok(p) = progress(store).await
        && p["running"] == true
    {
        return Err(NotNow::Running {
            run_id: p["runId"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(())
}
