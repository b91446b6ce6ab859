//! Unauthenticated refusals, counted and recorded in aggregate: one audit record per source and
//! action per interval (`AUDIT_REFUSAL_SECONDS`), with the count, the first and last time and the
//! last reason. A flood of requests without valid credentials therefore writes a bounded number of
//! records (at most `MAX_SOURCES` per interval, the rest under `other`), so it can neither slow the
//! recoveries that share the audit writer nor fill the immutable store. Callers that are known
//! (a valid token without the role) are still recorded one by one, with their identity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::{Action, AuditEvent, AuditTrail, CallerRecord, Outcome, Phase, rfc3339_millis};

/// Sources recorded one by one per interval; the rest are added up as `other`.
pub const MAX_SOURCES: usize = 100;

#[derive(Debug)]
struct Tally {
    count: u64,
    first: OffsetDateTime,
    last: OffsetDateTime,
    reason: String,
}

/// The refusals since the last flush, by (source address, action).
#[derive(Default)]
pub struct RefusalTally {
    counts: Mutex<HashMap<(Option<String>, Action), Tally>>,
}

impl RefusalTally {
    /// Count one refusal. Never blocks on storage.
    pub fn add(&self, source_ip: Option<String>, action: Action, reason: &str) {
        let now = OffsetDateTime::now_utc();
        let mut counts = self.counts.lock().expect("tally lock");
        let entry = counts.entry((source_ip, action)).or_insert(Tally {
            count: 0,
            first: now,
            last: now,
            reason: String::new(),
        });
        entry.count += 1;
        entry.last = now;
        reason.clone_into(&mut entry.reason);
    }

    /// Write one record per source and action counted since the last flush.
    pub async fn flush(&self, audit: &AuditTrail) {
        let drained: Vec<((Option<String>, Action), Tally)> = self.counts.lock().expect("tally lock").drain().collect();
        if drained.is_empty() {
            return;
        }
        let mut sorted = drained;
        sorted.sort_by_key(|e| std::cmp::Reverse(e.1.count));
        let mut records: Vec<((Option<String>, Action), Tally)> = Vec::new();
        let mut other: HashMap<Action, Tally> = HashMap::new();
        for (i, (key, tally)) in sorted.into_iter().enumerate() {
            if i < MAX_SOURCES {
                records.push((key, tally));
            } else {
                let o = other.entry(key.1).or_insert(Tally {
                    count: 0,
                    first: tally.first,
                    last: tally.last,
                    reason: tally.reason.clone(),
                });
                o.count += tally.count;
                o.first = o.first.min(tally.first);
                o.last = o.last.max(tally.last);
            }
        }
        records.extend(
            other
                .into_iter()
                .map(|(action, t)| ((Some("other".to_owned()), action), t)),
        );
        for ((source_ip, action), tally) in records {
            let event = AuditEvent {
                caller: CallerRecord {
                    via: "anonymous".into(),
                    source_ip,
                    ..Default::default()
                },
                action,
                target: None,
                ticket: None,
                request_id: None,
                phase: Phase::Outcome,
                outcome: Some(Outcome::Refused("unauthenticated".into())),
                details: json!({"count": tally.count, "firstAt": rfc3339_millis(tally.first),
                    "lastAt": rfc3339_millis(tally.last), "reason": tally.reason}),
            };
            if let Err(e) = audit.record(event).await {
                tracing::error!(error = %e, "could not record the refused calls");
            }
        }
    }
}

/// Flush every `interval`, for as long as the process runs.
pub async fn run(tally: std::sync::Arc<RefusalTally>, audit: std::sync::Arc<AuditTrail>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        tally.flush(&audit).await;
    }
}
