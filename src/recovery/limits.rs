//! Rate limits that cannot be raced: a slot is reserved atomically *before* anything is created.
//!
//! Each limited key (`tap.issue` for one target, `mfa.reset` for one caller, ...) is one small
//! document listing the attempts inside its window. Reserving reads it, drops attempts older than
//! the window, refuses when the limit is reached, else appends this attempt and writes the
//! document back *only if nobody wrote it since* (`If-Match` on the blob's ETag, or the local
//! store's compare-and-swap). A writer that loses the race reads again, so N parallel requests
//! for one key reserve at most the limit, on every instance. Attempts are counted, not only
//! successes, and a slot that was used is not given back (but for a caller's slot when the user's
//! own limit refuses the same attempt: nothing was tried on anyone). The cost of a check is one read and
//! one write, whatever the size of the audit trail.
//!
//! The same attempt (a queued request retried after a crash) finds its own slot and reserves
//! nothing more.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::storage::records::{RecordStore, Update, UpdateError, update};

/// Why a slot could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitError {
    /// The limit is reached; a slot frees up after `retry_after`.
    #[error("the limit is reached")]
    Exceeded { retry_after: Duration },
    /// The store could not be read or written: refuse (fail closed).
    #[error("the rate-limit store is unavailable: {0}")]
    Unavailable(String),
}

/// One limited key: who or what, for which action, how many in which window.
#[derive(Debug, Clone)]
pub struct Limit {
    /// A readable name, used for the document's path (`tap.issue/target/{id}`).
    pub key: String,
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// The per-target limit of `action` for `user`.
    pub(crate) fn per_target(action: &str, user: &Uuid, max: u32, window: Duration) -> Limit {
        Limit {
            key: format!("{action}/target/{user}"),
            max,
            window,
        }
    }

    /// The per-caller limit of `action`; the caller is named by a hash of how it called and who
    /// it is (ids only, but the path needs no more than a stable name).
    pub(crate) fn per_caller(action: &str, via: &str, object_id: Option<&str>, max: u32, window: Duration) -> Limit {
        let digest = Sha256::digest(format!("{via}|{}", object_id.unwrap_or("-")).as_bytes());
        Limit {
            key: format!("{action}/caller/{}", hex::encode(&digest[..16])),
            max,
            window,
        }
    }

    fn name(&self) -> String {
        format!("{}.json", self.key)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Slots {
    attempts: Vec<Attempt>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    id: Uuid,
}

/// How many times a writer that lost the race reads again before giving up (fail closed).
const MAX_ROUNDS: u32 = 64;

/// Rate-limit slots over a conditional record store (Blob Storage, or a directory in `dev`).
pub struct Limits {
    store: Arc<dyn RecordStore>,
}

impl Limits {
    pub fn new(store: Arc<dyn RecordStore>) -> Limits {
        Limits { store }
    }

    /// Reserve a slot of `limit` for attempt `id` at `now`.
    ///
    /// # Errors
    /// `Exceeded` with the wait until the oldest attempt leaves the window, or `Unavailable`.
    pub(crate) async fn reserve(&self, limit: &Limit, id: Uuid, now: OffsetDateTime) -> Result<(), LimitError> {
        let name = limit.name();
        let window = time::Duration::try_from(limit.window).unwrap_or(time::Duration::DAY);
        let decided = update(&*self.store, &name, MAX_ROUNDS, |current: Option<Slots>| {
            let mut slots = current.unwrap_or_default();
            slots.attempts.retain(|a| a.at > now - window);
            if slots.attempts.iter().any(|a| a.id == id) {
                return Ok(Update::Keep(()));
            }
            if slots.attempts.len() >= limit.max as usize {
                let oldest = slots.attempts.iter().map(|a| a.at).min().unwrap_or(now);
                let wait = (oldest + window - now).max(time::Duration::SECOND);
                return Err(LimitError::Exceeded {
                    retry_after: Duration::from_secs(wait.whole_seconds().max(1) as u64),
                });
            }
            slots.attempts.push(Attempt { at: now, id });
            Ok(Update::Write(slots, ()))
        })
        .await;
        match decided {
            Ok(()) => Ok(()),
            Err(UpdateError::Refused(e)) => Err(e),
            Err(UpdateError::Storage(e)) => Err(LimitError::Unavailable(format!(
                "the rate-limit record {name} could not be reserved ({e}); try again"
            ))),
        }
    }

    /// Give back the slot of attempt `id` when nothing was done with it (a later limit of the
    /// same attempt refused it). Best effort: a slot that stays only makes the limit stricter.
    pub async fn release(&self, limit: &Limit, id: Uuid) {
        let _ = update(&*self.store, &limit.name(), MAX_ROUNDS, |current: Option<Slots>| {
            let Some(mut slots) = current else {
                return Ok::<_, ()>(Update::Keep(()));
            };
            let before = slots.attempts.len();
            slots.attempts.retain(|a| a.id != id);
            Ok(if slots.attempts.len() == before {
                Update::Keep(())
            } else {
                Update::Write(slots, ())
            })
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::records::FileRecords;

    fn limits() -> (Limits, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("limits-unit-{}", Uuid::new_v4()));
        (Limits::new(Arc::new(FileRecords::new(dir.clone()))), dir)
    }

    #[tokio::test]
    async fn parallel_reservations_never_exceed_the_limit() {
        let (limits, dir) = limits();
        let limits = Arc::new(limits);
        let limit = Limit::per_target("tap.issue", &Uuid::new_v4(), 2, Duration::from_secs(86_400));
        let now = OffsetDateTime::now_utc();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limits, limit) = (limits.clone(), limit.clone());
                tokio::spawn(async move { limits.reserve(&limit, Uuid::new_v4(), now).await })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => granted += 1,
                Err(LimitError::Exceeded { retry_after }) => {
                    assert!(retry_after > Duration::from_secs(86_000), "{retry_after:?}")
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(granted, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_same_attempt_reserves_once_and_old_attempts_leave_the_window() {
        let (limits, dir) = limits();
        let limit = Limit::per_caller("mfa.reset", "token", Some("x"), 1, Duration::from_secs(3600));
        let id = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        limits.reserve(&limit, id, now).await.unwrap();
        limits.reserve(&limit, id, now).await.unwrap();
        assert!(matches!(
            limits.reserve(&limit, Uuid::new_v4(), now).await,
            Err(LimitError::Exceeded { .. })
        ));
        // An hour later the slot is free again.
        limits
            .reserve(&limit, Uuid::new_v4(), now + time::Duration::minutes(61))
            .await
            .unwrap();
        // A released slot is free at once.
        let other = Limit::per_caller("mfa.reset", "token", Some("y"), 1, Duration::from_secs(3600));
        let first = Uuid::new_v4();
        limits.reserve(&other, first, now).await.unwrap();
        limits.release(&other, first).await;
        limits.reserve(&other, Uuid::new_v4(), now).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_unreadable_store_refuses() {
        // A file where the store's directory should be: every read fails.
        let path = std::env::temp_dir().join(format!("limits-file-{}", Uuid::new_v4()));
        std::fs::write(&path, b"not a directory").unwrap();
        let limits = Limits::new(Arc::new(FileRecords::new(path.clone())));
        let limit = Limit::per_target("tap.issue", &Uuid::new_v4(), 2, Duration::from_secs(60));
        let result = limits.reserve(&limit, Uuid::new_v4(), OffsetDateTime::now_utc()).await;
        assert!(matches!(result, Err(LimitError::Unavailable(_))), "{result:?}");
        let _ = std::fs::remove_file(path);
    }
}
