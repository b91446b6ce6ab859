//! The trail in Log Analytics: every record, and each chain's head, sent once to a custom table
//! through the Azure Monitor **Logs Ingestion API** (a data collection rule's `logsIngestion`
//! endpoint, a stream `Custom-…`, Monitoring Metrics Publisher for the identity).
//! https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview
//!
//! The trail itself is the queue: the `audit-export` timer reads each chain beyond its mark
//! (`export/{chain}.json` in the request store: the last `seq` and `hash` sent) and sends the rest
//! in batches under the 1 MB limit, then moves the mark (a conditional write). Nothing is on a
//! recovery's path. A 429 or 5xx waits its `Retry-After` and is tried again (a few times; the
//! next run goes on from the mark); a 413 splits the batch. A mark not moved after a send (a
//! crash between the two) sends those records again: each row carries its record's `Hash`, so a
//! query keeps one per hash (docs/audit.md). Failing and recovering are audited
//! (`audit.export`) and shown by `GET /api/health`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{AuditRecord, AuditTrail};
use crate::storage::StorageError;
use crate::storage::records::RecordStore;
use crate::vocab::ports::{IngestError, Ingested, LogSink};

/// A call's body stays under this (the limit is 1 MB; rows are about 1 KB).
const MAX_BODY: usize = 900 * 1024;
/// Tries of one batch before the run stops (the next run goes on from the mark).
const TRIES: u32 = 4;
/// The longest `Retry-After` waited within a run.
const MAX_WAIT_SECONDS: u64 = 30;
/// The outcome code of an `audit.export` record when the export starts failing.
pub const FAILING: &str = "audit_export_failing";
/// The status record.
const STATUS: &str = "export/status.json";

/// Where a chain's export stands: the last record sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Mark {
    seq: u64,
    hash: String,
}

/// How the export stands, for the health answer and the trail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// `ok` or `failing`.
    pub state: String,
    /// When it last sent everything it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// Since when it fails, and why (no secret: a status and a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportRun {
    pub chains: usize,
    pub records: usize,
    pub calls: usize,
    pub failed: Option<String>,
}

pub struct Exporter {
    sink: Arc<dyn LogSink>,
    store: Arc<dyn RecordStore>,
}

fn mark_name(chain: &str) -> String {
    format!("export/{}.json", chain.replace('/', "_"))
}

/// A record as a row of the table (`MfaRecoveryAudit_CL`, docs/audit.md).
fn row(r: &AuditRecord) -> Value {
    let outcome = r.outcome.as_ref();
    let target = r.target.as_ref();
    json!({
        "TimeGenerated": r.time,
        "Kind": "record",
        "RecordId": r.id,
        "Chain": r.chain,
        "Seq": r.seq,
        "Hash": r.hash,
        "PrevHash": r.prev_hash,
        "Action": r.action,
        "Phase": r.phase,
        "Outcome": outcome.map(super::Outcome::name),
        "OutcomeCode": outcome.and_then(super::Outcome::code),
        "CallerVia": r.caller.via,
        "CallerObjectId": r.caller.object_id,
        "CallerName": r.caller.name,
        "OnBehalfOf": r.caller.on_behalf_of.as_ref().map(|p| p.object_id.clone()),
        "TargetObjectId": target.and_then(|t| t.object_id.clone()),
        "TargetUpn": target.and_then(|t| t.upn.clone()),
        "TicketSystem": r.ticket.as_ref().map(|t| t.system.clone()),
        "TicketId": r.ticket.as_ref().map(|t| t.id.clone()),
        "RequestId": r.request_id,
        "Details": r.details,
    })
}

/// A chain's head after a batch: its last record sent. A shorter chain in storage than its head
/// in Log Analytics is a removed tail (`audit verify --compare-export`).
fn head(last: &AuditRecord) -> Value {
    json!({
        "TimeGenerated": super::rfc3339_millis(OffsetDateTime::now_utc()),
        "Kind": "head",
        "Chain": last.chain,
        "Seq": last.seq,
        "Hash": last.hash,
    })
}

/// Consecutive runs of records whose rows (and the head) fit in one call.
fn batches(records: &[AuditRecord]) -> Vec<&[AuditRecord]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let len = row(r).to_string().len() + 1;
        if i > start && size + len > MAX_BODY - 1024 {
            out.push(&records[start..i]);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

impl Exporter {
    /// An exporter to `sink`, its marks in `store`.
    pub fn new(sink: Arc<dyn LogSink>, store: Arc<dyn RecordStore>) -> Exporter {
        Exporter { sink, store }
    }

    /// Send what every chain of the last two days holds beyond its mark; the status kept, and a
    /// change between working and failing audited.
    pub async fn run(&self, trail: &AuditTrail) -> ExportRun {
        let now = OffsetDateTime::now_utc();
        let mut run = ExportRun::default();
        match trail.chains(now - time::Duration::days(2), now).await {
            Ok(chains) => {
                // A chain that fails (a record over the limit, its mark taken) does not hold up
                // the others; the run reports the first failure.
                for name in chains {
                    run.chains += 1;
                    if let Err(e) = self.chain(trail, &name, &mut run).await {
                        run.failed.get_or_insert(e);
                    }
                }
            }
            Err(e) => run.failed = Some(format!("the trail cannot be read: {e}")),
        }
        self.settle(trail, &run).await;
        run
    }

    /// Send one chain beyond its mark, batch by batch, moving the mark after each.
    async fn chain(&self, trail: &AuditTrail, name: &str, run: &mut ExportRun) -> Result<(), String> {
        let chain = name.trim_end_matches(".jsonl");
        let stored = self.store.read(&mark_name(chain)).await.map_err(|e| e.to_string())?;
        let (mut mark, mut etag) = match &stored {
            Some(v) => (
                serde_json::from_slice::<Mark>(&v.data).unwrap_or_default(),
                Some(v.etag.clone()),
            ),
            None => (Mark::default(), None),
        };
        let lines = trail.read_chain(name).await.map_err(|e| e.to_string())?;
        // Up to the first line that is not a record (audit verify reports it).
        let all: Vec<AuditRecord> = lines.into_iter().map_while(Result::ok).collect();
        // A mark is storage's word only: it must name a record of the chain with its hash. One
        // that does not (moved ahead to stop the export, or the chain rewritten) sends the
        // chain again from the start; Log Analytics then holds both, by hash.
        if mark.seq > 0 && !all.iter().any(|r| r.seq == mark.seq && r.hash == mark.hash) {
            tracing::error!(
                chain,
                seq = mark.seq,
                "an export mark names no record of its chain; the chain is sent again"
            );
            mark = Mark::default();
        }
        let records: Vec<AuditRecord> = all.into_iter().filter(|r| r.seq > mark.seq).collect();
        for batch in batches(&records) {
            let last = batch.last().expect("batches are not empty");
            let mut rows: Vec<Value> = batch.iter().map(row).collect();
            rows.push(head(last));
            run.calls += self.send(&rows).await?;
            run.records += batch.len();
            mark = Mark {
                seq: last.seq,
                hash: last.hash.clone(),
            };
            let data = serde_json::to_vec(&mark).expect("a mark serializes");
            let written = match &etag {
                Some(e) => self.store.replace(&mark_name(chain), &data, e).await,
                None => self.store.create(&mark_name(chain), &data).await,
            };
            etag = Some(written.map_err(|e| match e {
                StorageError::Conflict(_) => format!("another export moved the mark of {chain}"),
                e => format!("the mark of {chain} could not be written: {e}"),
            })?);
        }
        Ok(())
    }

    /// Post `rows`; one too large for a call is split in two. The calls made.
    async fn send(&self, rows: &[Value]) -> Result<usize, String> {
        let body = serde_json::to_vec(rows).expect("rows serialize");
        match self.post(body).await? {
            Ingested::Accepted => Ok(1),
            Ingested::TooLarge if rows.len() > 1 => {
                let (a, b) = rows.split_at(rows.len() / 2);
                Ok(1 + Box::pin(self.send(a)).await? + Box::pin(self.send(b)).await?)
            }
            Ingested::TooLarge => Err("one row is over the Logs Ingestion API's 1 MB".into()),
        }
    }

    /// One batch, tried again when the sink says so (after the wait it asks for).
    async fn post(&self, body: Vec<u8>) -> Result<Ingested, String> {
        let mut last = String::new();
        for attempt in 1..=TRIES {
            match self.sink.ingest(body.clone()).await {
                Ok(taken) => return Ok(taken),
                Err(IngestError::Refused(why)) => return Err(why),
                Err(IngestError::Retry { after, why }) => {
                    last = why;
                    if attempt < TRIES {
                        let wait = after.unwrap_or(u64::from(attempt)).min(MAX_WAIT_SECONDS);
                        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    }
                }
            }
        }
        Err(last)
    }

    /// The export's status as last kept.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn state(&self) -> Result<Option<ExportStatus>, StorageError> {
        Ok(self
            .store
            .read(STATUS)
            .await?
            .and_then(|v| serde_json::from_slice(&v.data).ok()))
    }

    /// Keep the status; audit a change between working and failing (not every failed run).
    async fn settle(&self, trail: &AuditTrail, run: &ExportRun) {
        let now = super::rfc3339_millis(OffsetDateTime::now_utc());
        let before = self.state().await.ok().flatten().unwrap_or_default();
        let after = match &run.failed {
            None => ExportStatus {
                state: "ok".into(),
                last_success: Some(now),
                failing_since: None,
                last_error: None,
            },
            Some(e) => ExportStatus {
                state: "failing".into(),
                last_success: before.last_success.clone(),
                failing_since: before.failing_since.clone().or(Some(now)),
                last_error: Some(e.clone()),
            },
        };
        let data = serde_json::to_vec(&after).expect("a status serializes");
        let kept = match self.store.read(STATUS).await {
            Ok(Some(v)) => self.store.replace(STATUS, &data, &v.etag).await.map(|_| ()),
            Ok(None) => self.store.create(STATUS, &data).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = kept {
            tracing::warn!(error = %e, "the audit export's status could not be kept");
        }
        // The first run that works is no change: only failing, and working again, are recorded.
        if before.state != after.state && !(before.state.is_empty() && after.state == "ok") {
            let outcome = match &run.failed {
                None => super::Outcome::Succeeded,
                Some(_) => super::Outcome::Failed(FAILING.into()),
            };
            if let Some(e) = &run.failed {
                tracing::error!(error = %e, "the audit export to Log Analytics fails");
            }
            let event = super::AuditEvent {
                caller: crate::vocab::CallerRecord {
                    via: "service".into(),
                    ..Default::default()
                },
                action: super::Action::AuditExport,
                target: None,
                ticket: None,
                request_id: None,
                phase: super::Phase::Outcome,
                outcome: Some(outcome),
                details: json!({"state": after.state, "error": after.last_error, "records": run.records}),
            };
            if let Err(e) = trail.record(event).await {
                tracing::error!(error = %e, "the audit export's change of state could not be recorded");
            }
        }
    }
}

/// What `audit verify --compare-export` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compared {
    /// Records in the export that storage holds the same.
    pub records: usize,
    /// Chain heads in the export that storage still reaches.
    pub heads: usize,
    /// Records in storage past every head the export has of their chain (not sent yet).
    pub not_yet: usize,
    /// The first disagreement.
    pub problem: Option<String>,
}

/// A cell of an exported row: `az monitor log-analytics query -o json` gives every value as
/// text; a query result read another way gives numbers.
fn cell<'a>(row: &'a Value, column: &str) -> Option<std::borrow::Cow<'a, str>> {
    match &row[column] {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Hold the trail in `[from, to]` against `rows`, a query result of the table exported as JSON
/// (an array of objects with at least `Kind`, `Chain`, `Seq` and `Hash`): every exported record
/// must be in storage with its hash, every chain must still reach its exported head, and every
/// stored record up to that head must have been exported.
///
/// # Errors
/// The trail cannot be read.
pub async fn compare(
    trail: &AuditTrail,
    rows: &[Value],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Compared, super::AuditError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut stored: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for name in trail.chains(from, to).await? {
        let records = trail.read_chain(&name).await?.into_iter().map_while(Result::ok);
        stored.insert(
            name.trim_end_matches(".jsonl").to_owned(),
            records.map(|r| (r.seq, r.hash)).collect(),
        );
    }
    let mut out = Compared::default();
    let mut exported: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut heads: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let (Some(kind), Some(chain), Some(seq), Some(hash)) = (
            cell(row, "Kind"),
            cell(row, "Chain"),
            cell(row, "Seq"),
            cell(row, "Hash"),
        ) else {
            continue;
        };
        let Ok(seq) = seq.parse::<u64>() else { continue };
        let Some(records) = stored.get(chain.as_ref()) else {
            // A chain of another range, or one deleted: only the range's days are held.
            if trail_day_in(&chain, from, to) && out.problem.is_none() {
                out.problem = Some(format!(
                    "chain {chain} is in Log Analytics but gone from storage: it was deleted"
                ));
            }
            continue;
        };
        let here = records.iter().find(|(s, _)| *s == seq).map(|(_, h)| h.as_str());
        match kind.as_ref() {
            "record" if !exported.contains(&(chain.to_string(), seq)) => {
                if here == Some(hash.as_ref()) {
                    out.records += 1;
                    exported.insert((chain.to_string(), seq));
                } else if out.problem.is_none() {
                    out.problem = Some(match here {
                        None => format!("record {chain} #{seq} is in Log Analytics but not in storage: it was removed"),
                        Some(_) => {
                            format!("record {chain} #{seq} differs between Log Analytics and storage: it was rewritten")
                        }
                    });
                }
            }
            "head" => {
                let h = heads.entry(chain.to_string()).or_default();
                *h = (*h).max(seq);
                if here.is_none() && out.problem.is_none() {
                    out.problem = Some(format!(
                        "chain {chain} reached #{seq} in Log Analytics, but storage has {} records: its tail was removed",
                        records.len()
                    ));
                }
            }
            _ => {}
        }
    }
    out.heads = heads.len();
    for (chain, records) in &stored {
        let head = heads.get(chain).copied().unwrap_or(0);
        for (seq, _) in records {
            if *seq > head {
                out.not_yet += 1;
            } else if !exported.contains(&(chain.clone(), *seq)) && out.problem.is_none() {
                out.problem = Some(format!(
                    "record {chain} #{seq} is in storage but not in Log Analytics, though the export reached #{head}"
                ));
            }
        }
    }
    Ok(out)
}

/// Whether chain `chain` (`yyyy/mm/dd/…`) is of a day within `[from, to]`.
fn trail_day_in(chain: &str, from: OffsetDateTime, to: OffsetDateTime) -> bool {
    let mut parts = chain.splitn(4, '/');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let day = format!("{y}/{m}/{d}");
    day >= super::day_of(from) && day <= super::day_of(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, details: usize) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::new_v4(),
            time: "2026-12-07T00:00:00.000Z".into(),
            chain: "2026/12/07/abc".into(),
            seq,
            caller: crate::vocab::CallerRecord::default(),
            action: "tap.issue".into(),
            target: None,
            ticket: None,
            request_id: None,
            phase: crate::audit::Phase::Outcome,
            outcome: None,
            details: json!({"pad": "x".repeat(details)}),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn batches_stay_under_the_limit_and_keep_every_record_in_order() {
        let records: Vec<AuditRecord> = (1..=300).map(|n| record(n, 8_000)).collect();
        let split = batches(&records);
        assert!(split.len() >= 3, "{}", split.len());
        assert!(split.iter().all(|b| {
            serde_json::to_vec(&b.iter().map(row).collect::<Vec<_>>())
                .unwrap()
                .len()
                < MAX_BODY
        }));
        let seqs: Vec<u64> = split.iter().flat_map(|b| b.iter().map(|r| r.seq)).collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    }
}
