//! The compliance sweep: its store, schedule, pace, groups, nudges and report.

#[allow(unused_imports)]
use super::*;

/// Where sweep reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepStore {
    /// `SWEEP_CONTAINER` in the storage account.
    Blob { service_uri: Url, container: String },
    /// `SWEEP_DIR`: a local directory with the same layout.
    Directory(std::path::PathBuf),
}

/// The compliance sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSettings {
    /// `None`: neither storage nor `SWEEP_DIR`; the sweep can only run from the CLI with `--out`.
    pub store: Option<SweepStore>,
    /// `SWEEP_HELPDESK_GROUPS`: groups the helpdesk serves; each must be in the TAP policy's scope.
    pub helpdesk_groups: Vec<Uuid>,
    /// `SWEEP_KEY_USER_GROUPS`: groups whose members need a backup phone or a FIDO2 key.
    pub key_user_groups: Vec<Uuid>,
    /// `SWEEP_REQUESTS_PER_10S`: the pace of report reads (Graph allows 5 per 10 s per app).
    pub requests_per_10s: u32,
    /// `SWEEP_TIME_BUDGET_SECONDS`: stop and save before the Functions timeout; the next run resumes.
    pub time_budget_seconds: u32,
    /// `SWEEP_MIN_INTERVAL_HOURS`: a timer run within this many hours of the last finished one is skipped.
    pub min_interval_hours: u32,
    /// `SWEEP_NUDGE`: email at-risk users how to add a backup method.
    pub nudge: bool,
    /// `SWEEP_NUDGE_MAX_PER_RUN` and `SWEEP_NUDGE_PERIOD_DAYS`.
    pub nudge_max_per_run: u32,
    pub nudge_period_days: u32,
    /// `SWEEP_HTML_MAX_ROWS`: at-risk users listed in the HTML report (all are in the CSV).
    pub html_max_rows: u32,
    /// `SWEEP_EXCLUDE_GROUPS`: members (transitively) are not assessed (break-glass accounts, shared
    /// devices' accounts, service accounts).
    pub exclude_groups: Vec<Uuid>,
    /// `SWEEP_INCLUDE_DISABLED`: assess disabled accounts too (off: nobody signs in with one).
    pub include_disabled: bool,
    /// `MAIL_SENDER`: the service's own mailbox, never assessed.
    pub service_mailbox: Option<String>,
    /// `SWEEP_RUN_NOW_MIN_MINUTES`: "run now" waits this long after the last finished run (the
    /// reports API's allowance is the tenant's, shared with the recoveries' audit-log reads).
    pub run_now_min_minutes: u32,
}

pub(super) fn group_list<'a>(get: &impl Fn(&str) -> Option<&'a str>, key: &str) -> Result<Vec<Uuid>, ConfigError> {
    match get(key) {
        None => Ok(Vec::new()),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|g| guid(key, g))
            .collect(),
    }
}

pub(super) fn sweep_settings<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    storage: Option<&StorageSettings>,
) -> Result<SweepSettings, ConfigError> {
    let store = match (get("SWEEP_DIR"), storage) {
        (Some(dir), _) => Some(SweepStore::Directory(dir.into())),
        (None, Some(s)) => Some(SweepStore::Blob {
            service_uri: s.blob_service_uri.clone(),
            container: container_name(get, "SWEEP_CONTAINER", "sweeps")?.to_owned(),
        }),
        (None, None) => None,
    };
    let nudge = flag(get, "SWEEP_NUDGE", false)?;
    Ok(SweepSettings {
        store,
        helpdesk_groups: group_list(get, "SWEEP_HELPDESK_GROUPS")?,
        key_user_groups: group_list(get, "SWEEP_KEY_USER_GROUPS")?,
        requests_per_10s: number(get, "SWEEP_REQUESTS_PER_10S", 5, 1..=10_000)?,
        time_budget_seconds: number(get, "SWEEP_TIME_BUDGET_SECONDS", 540, 10..=86_400)?,
        min_interval_hours: number(get, "SWEEP_MIN_INTERVAL_HOURS", 20, 0..=720)?,
        nudge,
        nudge_max_per_run: number(get, "SWEEP_NUDGE_MAX_PER_RUN", 100, 0..=100_000)?,
        nudge_period_days: number(get, "SWEEP_NUDGE_PERIOD_DAYS", 30, 1..=365)?,
        html_max_rows: number(get, "SWEEP_HTML_MAX_ROWS", 2000, 0..=100_000)?,
        exclude_groups: group_list(get, "SWEEP_EXCLUDE_GROUPS")?,
        include_disabled: flag(get, "SWEEP_INCLUDE_DISABLED", false)?,
        service_mailbox: get("MAIL_SENDER").map(str::to_ascii_lowercase),
        run_now_min_minutes: number(get, "SWEEP_RUN_NOW_MIN_MINUTES", 15, 0..=1440)?,
    })
}

/// The host accepts 6-field NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`).
pub(super) fn validate_schedule(value: &str) -> Result<(), ConfigError> {
    let fields = value.split_whitespace().count();
    if fields != 6 {
        return Err(ConfigError::new(
            "SWEEP_SCHEDULE",
            format!("'{value}' has {fields} fields; use 6-field NCRONTAB such as '0 0 2 * * *' (02:00 UTC daily)"),
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(value)
        .map(|_| ())
        .map_err(|e| {
            ConfigError::new(
                "SWEEP_SCHEDULE",
                format!("'{value}' is not a valid NCRONTAB expression ({e})"),
            )
        })
}
