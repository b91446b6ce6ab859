//! The compliance sweep: is the TAP policy ready, and who would be locked out by losing one
//! device? Streams `userRegistrationDetails` page by page (never one call per user), at the pace
//! the reports API allows, keeping only counters in memory: at-risk users go to one file per page,
//! and the reports are written from those files at the end. A checkpoint after every page lets a
//! run cut off by the Functions timeout resume from its last page.
//!
//! Layout (a blob container, or a directory):
//! - `current.json`: the checkpoint of the run in progress (or the last one, finished).
//! - `runs/{run}/pages/{n}.jsonl`: the at-risk users of page n.
//! - `runs/{run}/report.json`, `report.csv`, `report.html`: the reports.
//! - `latest.json`: the summary of the last finished run, with links to its files.
//! - `nudges/{user id}.json`: when a user was last nudged.

pub mod classify;
pub mod report;
pub mod view;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit::{Action, AuditEvent, AuditTrail, Outcome, Phase};
use crate::config::SweepSettings;
use crate::delivery::Deliverer;
use crate::graph::GraphClient;
use crate::storage::StorageError;
use crate::storage::reports::ReportStore;
use crate::vocab::CallerRecord;
use classify::{Assessment, Finding, Registration, Risk};

/// Counters over the whole tenant: the only state that grows with the run, and it does not grow
/// with the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub users: u64,
    pub members: u64,
    pub guests: u64,
    pub admins: u64,
    pub mfa_registered: u64,
    pub phishing_resistant: u64,
    /// Members by risk level.
    pub by_risk: BTreeMap<String, u64>,
    /// Members by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Members with each method registered.
    pub methods: BTreeMap<String, u64>,
    /// Users not assessed, by why: `disabled`, `excludedGroup` (`SWEEP_EXCLUDE_GROUPS`),
    /// `serviceMailbox` (`MAIL_SENDER`).
    #[serde(default)]
    pub excluded: BTreeMap<String, u64>,
}

impl Totals {
    pub fn at_risk(&self) -> u64 {
        Risk::AT_RISK
            .iter()
            .map(|r| self.by_risk.get(r.as_str()).copied().unwrap_or(0))
            .sum()
    }
}

/// A run's checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// Pages done; the next page is written as `pages/{pages}.jsonl`.
    pub pages: u32,
    /// Where to go on; `None` before the first page and after the last.
    pub next_link: Option<String>,
    pub totals: Totals,
    pub findings: Vec<Finding>,
    pub nudged: u32,
    /// Invocations that worked on this run.
    pub invocations: u32,
    /// Graph requests made (all invocations).
    pub requests: u64,
    /// When the checkpoint was last saved (after every page): a run not saved for
    /// `STALE_MINUTES` is not running any more, whatever `finishedAt` says.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub saved_at: Option<OffsetDateTime>,
}

/// A checkpoint not saved for this long belongs to a run that stopped (a page takes seconds).
pub(crate) const STALE_MINUTES: i64 = 10;

/// The intent of a run someone asked for now ("run now"): who asked, before it starts.
///
/// # Errors
/// The audit trail cannot be written: the run must not start.
pub(crate) async fn record_run_now(audit: &AuditTrail, caller: CallerRecord) -> Result<(), crate::audit::AuditError> {
    let event = AuditEvent {
        caller,
        action: Action::SweepRun,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Intent,
        outcome: None,
        details: json!({"trigger": "api"}),
    };
    audit.record(event).await.map(|_| ())
}

/// Who started the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Timer {
        past_due: bool,
    },
    Admin,
    Cli,
    /// `POST /api/sweeps` ("run now" in the console): not held back by `SWEEP_MIN_INTERVAL_HOURS`.
    Api,
}

impl Trigger {
    fn via(self) -> &'static str {
        match self {
            Trigger::Timer { .. } => "timer",
            Trigger::Admin => "admin",
            Trigger::Cli => "cli",
            Trigger::Api => "api",
        }
    }
}

/// How an invocation ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The run finished; its summary (`latest.json`).
    Finished(Box<report::RunSummary>),
    /// The time budget ran out; the next invocation resumes after page `pages`.
    Paused { run_id: String, pages: u32 },
    /// The last finished run is recent enough (`SWEEP_MIN_INTERVAL_HOURS`).
    UpToDate { run_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("sweep storage: {0}")]
    Storage(#[from] StorageError),
    #[error("Microsoft Graph: {0} (the run is saved and resumes from its last page)")]
    Graph(#[from] crate::graph::GraphError),
}

/// Progress, for a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    pub pages: u32,
    pub users: u64,
    pub at_risk: u64,
}

/// Who a run leaves out, by object id (lower case).
pub(crate) struct Exclusions {
    pub disabled: HashSet<String>,
    pub groups: HashSet<String>,
}

impl Exclusions {
    /// Why this user is not assessed, if they are not.
    fn why(&self, id: &str, upn: &str, settings: &SweepSettings) -> Option<&'static str> {
        if settings
            .service_mailbox
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(upn))
        {
            return Some("serviceMailbox");
        }
        if self.groups.contains(id) {
            return Some("excludedGroup");
        }
        if !settings.include_disabled && self.disabled.contains(id) {
            return Some("disabled");
        }
        None
    }
}

/// Keeps report reads within `limit` per window (Graph: 5 per 10 s per app per tenant).
pub(crate) struct Pacer {
    limit: usize,
    window: Duration,
    sent: std::collections::VecDeque<Instant>,
}

impl Pacer {
    pub fn new(limit: u32, window: Duration) -> Pacer {
        Pacer {
            limit: limit.max(1) as usize,
            window,
            sent: std::collections::VecDeque::new(),
        }
    }

    /// Wait until one more request fits in the window, and count it.
    pub async fn wait(&mut self) {
        // A little slack: the server's clock starts its window when the request arrives.
        let margin = Duration::from_millis(60);
        loop {
            let now = Instant::now();
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window + margin)
            {
                self.sent.pop_front();
            }
            if self.sent.len() < self.limit {
                self.sent.push_back(now);
                return;
            }
            let oldest = *self.sent.front().expect("full window");
            tokio::time::sleep((oldest + self.window + margin).saturating_duration_since(now)).await;
        }
    }
}

/// Everything a sweep needs.
pub struct Sweep<'a> {
    pub graph: &'a GraphClient,
    pub store: Arc<dyn ReportStore>,
    pub settings: &'a SweepSettings,
    pub deliverer: Option<&'a Deliverer>,
    pub audit: Option<&'a AuditTrail>,
    /// Stop and save after this long (`None`: run to the end, as the CLI does).
    pub budget: Option<Duration>,
}

fn page_name(run: &str, page: u32) -> String {
    format!("runs/{run}/pages/{page:06}.jsonl")
}

impl Sweep<'_> {
    async fn load(&self, name: &str) -> Result<Option<Value>, SweepError> {
        Ok(self
            .store
            .get(name)
            .await?
            .and_then(|d| serde_json::from_slice(&d).ok()))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), SweepError> {
        let mut checkpoint = checkpoint.clone();
        checkpoint.saved_at = Some(OffsetDateTime::now_utc());
        let data = serde_json::to_vec(&checkpoint).expect("a checkpoint serializes");
        Ok(self.store.put("current.json", &data).await?)
    }

    /// Run (or resume) a sweep until it finishes or the budget runs out.
    ///
    /// # Errors
    /// Storage or Graph failed; what was done is saved, and the next run resumes.
    pub async fn run(
        &self,
        trigger: Trigger,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<RunOutcome, SweepError> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        if let Trigger::Timer { past_due: true } = trigger {
            tracing::info!("the sweep's schedule was missed (IsPastDue); running now");
        }
        let mut checkpoint = match self.start_or_resume(trigger, now).await? {
            Ok(checkpoint) => checkpoint,
            Err(up_to_date) => return Ok(up_to_date),
        };
        checkpoint.invocations += 1;
        let key_users = self.key_users().await?;
        let excluded = self.exclusions().await?;
        let mut pacer = Pacer::new(self.settings.requests_per_10s, Duration::from_secs(10));
        let first_page = checkpoint.pages;
        loop {
            // Every invocation does at least one page, so a run always gets somewhere.
            if checkpoint.pages > first_page && self.budget.is_some_and(|b| started.elapsed() >= b) {
                self.save(&checkpoint).await?;
                tracing::info!(run_id = %checkpoint.run_id, pages = checkpoint.pages, "time budget spent; the next run resumes");
                return Ok(RunOutcome::Paused {
                    run_id: checkpoint.run_id,
                    pages: checkpoint.pages,
                });
            }
            pacer.wait().await;
            checkpoint.requests += 1;
            let (rows, next) = match self.graph.registration_page(checkpoint.next_link.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    self.save(&checkpoint).await?;
                    return Err(e.into());
                }
            };
            let lines = self.assess_page(&mut checkpoint, rows, &key_users, &excluded).await;
            // The page's file first, then the checkpoint that counts it: a crash in between
            // repeats the page, which rewrites the same file.
            self.store
                .put(&page_name(&checkpoint.run_id, checkpoint.pages), &lines)
                .await?;
            checkpoint.pages += 1;
            checkpoint.next_link = next;
            let done = checkpoint.next_link.is_none();
            self.save(&checkpoint).await?;
            progress(&Progress {
                pages: checkpoint.pages,
                users: checkpoint.totals.users,
                at_risk: checkpoint.totals.at_risk(),
            });
            if done {
                break;
            }
        }
        checkpoint.finished_at = Some(OffsetDateTime::now_utc());
        let mut summary = report::write(self.store.as_ref(), &checkpoint, self.settings.html_max_rows).await?;
        let (history, since) = self.record_history(trigger, &checkpoint).await?;
        if let Some((previous, change)) = since {
            summary.previous = Some(previous);
            summary.change = Some(change);
        }
        self.store
            .put("latest.json", &serde_json::to_vec(&summary).expect("serializes"))
            .await?;
        self.store
            .put("history.json", &serde_json::to_vec(&history).expect("serializes"))
            .await?;
        self.save(&checkpoint).await?;
        self.record_run(trigger, &checkpoint).await;
        tracing::info!(run_id = %checkpoint.run_id, users = checkpoint.totals.users, at_risk = checkpoint.totals.at_risk(), "sweep finished");
        Ok(RunOutcome::Finished(Box::new(summary)))
    }

    /// The run to continue: an unfinished one from the last 24 hours, or a new one (its policy
    /// findings first). `Err` when a timer run finds the last run recent enough.
    async fn start_or_resume(
        &self,
        trigger: Trigger,
        now: OffsetDateTime,
    ) -> Result<Result<Checkpoint, RunOutcome>, SweepError> {
        let current: Option<Checkpoint> = self
            .load("current.json")
            .await?
            .and_then(|v| serde_json::from_value(v).ok());
        let resumable = current.filter(|c| c.finished_at.is_none() && now - c.started_at < time::Duration::hours(24));
        if let Some(c) = resumable {
            tracing::info!(run_id = %c.run_id, pages = c.pages, "resuming the sweep");
            return Ok(Ok(c));
        }
        if matches!(trigger, Trigger::Timer { .. })
            && let Some(latest) = self
                .load("latest.json")
                .await?
                .and_then(|v| serde_json::from_value::<report::RunSummary>(v).ok())
            && let Ok(finished) =
                OffsetDateTime::parse(&latest.finished_at, &time::format_description::well_known::Rfc3339)
            && now - finished < time::Duration::hours(i64::from(self.settings.min_interval_hours))
        {
            return Ok(Err(RunOutcome::UpToDate { run_id: latest.run_id }));
        }
        let policy = self.graph.tap_policy().await?;
        let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]-[subsecond digits:3]");
        Ok(Ok(Checkpoint {
            run_id: now.format(&fmt).unwrap_or_default(),
            started_at: now,
            finished_at: None,
            pages: 0,
            next_link: None,
            totals: Totals::default(),
            findings: classify::check_policy(&policy, &self.settings.helpdesk_groups),
            nudged: 0,
            invocations: 0,
            requests: 1,
            saved_at: None,
        }))
    }

    /// Count a page's users and return the lines of those at risk (nudging them, if set). The
    /// excluded are counted by why, and not assessed.
    async fn assess_page(
        &self,
        checkpoint: &mut Checkpoint,
        rows: Vec<Value>,
        key_users: &HashSet<String>,
        excluded: &Exclusions,
    ) -> Vec<u8> {
        let mut lines = Vec::new();
        for row in rows {
            let Ok(row) = serde_json::from_value::<Registration>(row) else {
                continue;
            };
            let id = row.id.to_ascii_lowercase();
            if let Some(why) = excluded.why(&id, &row.user_principal_name, self.settings) {
                checkpoint.totals.users += 1;
                *checkpoint.totals.excluded.entry(why.into()).or_default() += 1;
                continue;
            }
            let key_user = key_users.contains(&id);
            let assessment = self.count(&mut checkpoint.totals, &row, key_user);
            if assessment.risk > Risk::None {
                self.nudge(checkpoint, &row, &assessment).await;
                let enabled = !excluded.disabled.contains(&id);
                serde_json::to_writer(
                    &mut lines,
                    &classify::at_risk_line(&row, key_user, enabled, &assessment),
                )
                .expect("a line serializes");
                lines.push(b'\n');
            }
        }
        lines
    }

    /// Who is not assessed: disabled accounts (read every invocation, so a run sees the tenant
    /// as it is) and members of `SWEEP_EXCLUDE_GROUPS`.
    async fn exclusions(&self) -> Result<Exclusions, SweepError> {
        let mut groups = HashSet::new();
        for group in &self.settings.exclude_groups {
            groups.extend(self.graph.group_user_ids(group).await?);
        }
        Ok(Exclusions {
            disabled: self.graph.disabled_user_ids().await?,
            groups,
        })
    }

    /// Add this run to `history.json` (newest first, the last 100); with the run before and what
    /// changed since, for the summary.
    async fn record_history(
        &self,
        trigger: Trigger,
        checkpoint: &Checkpoint,
    ) -> Result<
        (
            Vec<report::HistoryEntry>,
            Option<(report::HistoryEntry, report::Change)>,
        ),
        SweepError,
    > {
        let mut history: Vec<report::HistoryEntry> = self
            .load("history.json")
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let entry = report::history_entry(checkpoint, trigger.via());
        let since = history
            .first()
            .map(|previous| (previous.clone(), report::change(previous, &entry)));
        history.insert(0, entry);
        history.truncate(100);
        Ok((history, since))
    }

    /// The run's outcome record (best effort: the report is written already).
    async fn record_run(&self, trigger: Trigger, checkpoint: &Checkpoint) {
        if let Some(audit) = self.audit {
            let event = AuditEvent {
                caller: CallerRecord {
                    via: trigger.via().into(),
                    ..Default::default()
                },
                action: Action::SweepRun,
                target: None,
                ticket: None,
                request_id: None,
                phase: Phase::Outcome,
                outcome: Some(Outcome::Succeeded),
                details: json!({"runId": checkpoint.run_id, "users": checkpoint.totals.users,
                    "atRisk": checkpoint.totals.by_risk, "findings": checkpoint.findings.iter().map(|f| &f.id).collect::<Vec<_>>(),
                    "pages": checkpoint.pages, "invocations": checkpoint.invocations, "nudged": checkpoint.nudged}),
            };
            if let Err(e) = audit.record(event).await {
                tracing::error!(error = %e, "the sweep's audit record could not be written");
            }
        }
    }

    async fn key_users(&self) -> Result<HashSet<String>, SweepError> {
        let mut out = HashSet::new();
        for group in &self.settings.key_user_groups {
            out.extend(self.graph.group_user_ids(group).await?);
        }
        Ok(out)
    }

    fn count(&self, totals: &mut Totals, row: &Registration, key_user: bool) -> Assessment {
        totals.users += 1;
        if row.is_guest() {
            totals.guests += 1;
            return Assessment {
                risk: Risk::None,
                reasons: Vec::new(),
            };
        }
        totals.members += 1;
        totals.admins += u64::from(row.is_admin);
        let mfa: Vec<&String> = row
            .methods_registered
            .iter()
            .filter(|m| classify::is_mfa_method(m))
            .collect();
        totals.mfa_registered += u64::from(row.is_mfa_registered && !mfa.is_empty());
        totals.phishing_resistant += u64::from(mfa.iter().any(|m| classify::is_phishing_resistant(m)));
        for m in &row.methods_registered {
            *totals.methods.entry(m.clone()).or_default() += 1;
        }
        let a = classify::classify(row, key_user);
        *totals.by_risk.entry(a.risk.as_str().into()).or_default() += 1;
        for r in &a.reasons {
            *totals.by_reason.entry((*r).into()).or_default() += 1;
        }
        a
    }

    /// Email an at-risk member how to add a backup method: off unless `SWEEP_NUDGE`, at most
    /// `SWEEP_NUDGE_MAX_PER_RUN` per run and once per `SWEEP_NUDGE_PERIOD_DAYS` per user.
    async fn nudge(&self, checkpoint: &mut Checkpoint, row: &Registration, a: &Assessment) {
        let s = self.settings;
        let Some(deliverer) = self.deliverer.filter(|_| s.nudge) else {
            return;
        };
        if checkpoint.nudged >= s.nudge_max_per_run || a.risk < Risk::Medium || row.user_principal_name.is_empty() {
            return;
        }
        let record = format!("nudges/{}.json", row.id.to_ascii_lowercase());
        let now = OffsetDateTime::now_utc();
        if let Ok(Some(last)) = self.store.get(&record).await
            && let Ok(v) = serde_json::from_slice::<Value>(&last)
            && let Some(at) = v["at"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
            && now - at < time::Duration::days(i64::from(s.nudge_period_days))
        {
            return;
        }
        let text = SecretString::from(nudge_text(row, a));
        match deliverer
            .send_mail(
                &row.user_principal_name,
                "Add a backup sign-in method before you need it",
                &text,
            )
            .await
        {
            Ok(_) => {
                checkpoint.nudged += 1;
                let at = now
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let _ = self.store.put(&record, json!({"at": at}).to_string().as_bytes()).await;
            }
            Err(e) => tracing::warn!(error = %e, "a nudge could not be sent"),
        }
    }
}

fn nudge_text(row: &Registration, a: &Assessment) -> String {
    let why: Vec<&str> = a.reasons.iter().map(|r| classify::describe(r)).collect();
    format!(
        "Hello {},\n\nIf you lost your phone today, you could be locked out of your work account: {}.\n\nIt takes two minutes to prevent:\n1. Open https://mysignins.microsoft.com/security-info and sign in.\n2. Select \"Add sign-in method\" and add a second method: another phone number, or a security key.\n3. In Microsoft Authenticator, turn on cloud backup (iOS: Settings > Backup > iCloud backup; Android: Settings > Backup > Cloud backup), so a new phone gets your accounts back.\n\nThank you.",
        row.user_display_name.as_deref().unwrap_or(&row.user_principal_name),
        why.join("; ")
    )
}
