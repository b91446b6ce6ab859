//! What the API shows of the sweep, read from its report store: the latest run's summary, one of
//! its reports, the run in progress, the history with the change between runs, and whether a
//! "run now" may start. The HTTP layer only renders what these return.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::Checkpoint;
use super::report::{Files, HistoryEntry, RunSummary};
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
pub(crate) enum NotNow {
    /// The last run finished less than `wait` minutes ago; `retry_after` seconds to go.
    TooSoon { wait: i64, retry_after: u64 },
    /// A run is in progress (`None`: one started in this process a moment ago).
    Running { run_id: Option<String> },
    /// Who asked could not be recorded (logged): nothing starts.
    Unrecorded,
}

/// A "run now" admitted: this process starts no other until it is dropped (the run ended, or
/// failed to start).
pub(crate) struct RunNowSlot(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for RunNowSlot {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// "Run now" (`POST /api/sweeps`): one at a time in this process (`started` is its flag), none
/// while a run is in progress anywhere (the checkpoint), none within `wait` minutes of the last
/// finished run; who asked is recorded before it starts. The slot is held for the run.
///
/// # Errors
/// `NotNow`: nothing was started.
pub(crate) async fn begin_run_now(
    started: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    store: &dyn ReportStore,
    wait: i64,
    audit: &crate::audit::AuditTrail,
    caller: crate::vocab::CallerRecord,
) -> Result<RunNowSlot, NotNow> {
    if started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(NotNow::Running { run_id: None });
    }
    let slot = RunNowSlot(started.clone());
    may_start_now(store, wait).await?;
    super::record_run_now(audit, caller).await.map_err(|e| {
        tracing::error!(error = %e, "the sweep's intent could not be recorded");
        NotNow::Unrecorded
    })?;
    Ok(slot)
}

async fn read<T: serde::de::DeserializeOwned>(store: &dyn ReportStore, name: &str) -> Result<T, ViewError> {
    let data = store
        .get(name)
        .await
        .map_err(|e| ViewError::Unavailable(e.to_string()))?
        .ok_or(ViewError::NotFound)?;
    serde_json::from_slice(&data).map_err(|e| ViewError::Corrupt(format!("{name}: {e}")))
}

/// The latest finished run's summary (`latest`, or that run's id), with links to its reports.
pub async fn summary(store: &dyn ReportStore, run: &str) -> Result<RunSummary, ViewError> {
    let mut summary: RunSummary = read(store, "latest.json").await?;
    if run != "latest" && summary.run_id != run {
        return Err(ViewError::NotFound);
    }
    let id = summary.run_id.clone();
    summary.links = Some(Files {
        html: paths::sweep_file(&id, "report.html"),
        csv: paths::sweep_file(&id, "report.csv"),
        json: paths::sweep_file(&id, "report.json"),
    });
    Ok(summary)
}

/// One report of a run (`latest` or its id): its bytes and content type.
pub async fn file(store: &dyn ReportStore, run: &str, file: &str) -> Result<(Vec<u8>, &'static str), ViewError> {
    if !["report.html", "report.csv", "report.json"].contains(&file) {
        return Err(ViewError::NotFound);
    }
    let run = if run == "latest" {
        read::<RunSummary>(store, "latest.json").await?.run_id
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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub running: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub saved_at: Option<OffsetDateTime>,
    pub pages: u32,
    pub users: u64,
    pub by_risk: BTreeMap<String, u64>,
    pub excluded: BTreeMap<String, u64>,
}

/// The run in progress, or the last one (finished).
pub async fn progress(store: &dyn ReportStore) -> Result<Progress, ViewError> {
    let c: Checkpoint = read(store, "current.json").await?;
    // Unfinished and saved recently: running. Unfinished and quiet: stopped (the instance was
    // recycled, or the time budget ran out), and the next run resumes it.
    let last_saved = c.saved_at.unwrap_or(c.started_at);
    let running = c.finished_at.is_none()
        && OffsetDateTime::now_utc() - last_saved < time::Duration::minutes(super::STALE_MINUTES);
    Ok(Progress {
        run_id: c.run_id,
        started_at: c.started_at,
        finished_at: c.finished_at,
        running,
        saved_at: c.saved_at,
        pages: c.pages,
        users: c.totals.users,
        by_risk: c.totals.by_risk,
        excluded: c.totals.excluded,
    })
}

/// The last runs, newest first, each with the change from the one before it.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub value: Vec<HistoryEntry>,
}

/// The last runs, newest first, each with the change from the one before it.
pub async fn history(store: &dyn ReportStore) -> Result<History, ViewError> {
    let runs: Vec<HistoryEntry> = match read(store, "history.json").await {
        Ok(runs) => runs,
        Err(ViewError::NotFound) => Vec::new(),
        Err(e) => return Err(e),
    };
    let value = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut run = run.clone();
            if let Some(before) = runs.get(i + 1) {
                run.change = Some(super::report::change(before, &run));
            }
            run
        })
        .collect();
    Ok(History { value })
}

/// Whether "run now" may start: not within `wait` minutes of the last finished run (its report is
/// current), and not while a run is in progress. A store that cannot be read does not stop it
/// (the run itself will say).
pub(crate) async fn may_start_now(store: &dyn ReportStore, wait: i64) -> Result<(), NotNow> {
    if let Ok(latest) = read::<RunSummary>(store, "latest.json").await
        && let Ok(finished) = OffsetDateTime::parse(&latest.finished_at, &time::format_description::well_known::Rfc3339)
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
        && p.running
    {
        return Err(NotNow::Running { run_id: Some(p.run_id) });
    }
    Ok(())
}
