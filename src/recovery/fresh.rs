//! Facts about the tenant that change rarely, kept at most `FRESH_FOR` (60 s) so a busy helpdesk
//! does not read them for every recovery: the Temporary Access Pass policy, and who owns this API
//! and which groups hold its app roles (`privilege::ApiFacts`: facts about this API, not about
//! any user). Nothing about the user is kept: their memberships, roles, eligibilities, app roles,
//! risk and methods, and the owners of every group that can hold roles, of each protected group
//! and of each group holding this API's roles, are read by every recovery. A fact older than 60 s
//! is read again; a read that fails refuses, as before (nothing older is used instead).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a fact is used.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// One fact, read at most once per `FRESH_FOR` (concurrent readers wait for one read).
pub struct Fresh<T> {
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Fresh<T> {
    fn default() -> Self {
        Fresh {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T> Fresh<T> {
    /// The fact, read by `fetch` when it is older than `FRESH_FOR` or was never read.
    ///
    /// # Errors
    /// `fetch`'s: nothing is kept.
    pub async fn get<E, F, Fut>(&self, fetch: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((read_at, fact)) = &*slot
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(fact.clone());
        }
        // The age counts from when the read was sent.
        let read_at = Instant::now();
        let fact = Arc::new(fetch().await?);
        *slot = Some((read_at, fact.clone()));
        Ok(fact)
    }
}

/// The tenant's facts a recovery may take from `Fresh` (one per process).
#[derive(Default)]
pub struct TenantFacts {
    pub tap_policy: Fresh<crate::graph::models::TapPolicy>,
}

#[cfg(test)]
mod tests {
    use super::Fresh;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_fact_is_read_once_while_fresh_and_a_failed_read_keeps_nothing() {
        let fresh: Fresh<u32> = Fresh::default();
        let reads = AtomicU32::new(0);
        let failed: Result<_, &str> = fresh
            .get(|| async {
                reads.fetch_add(1, Ordering::SeqCst);
                Err("Graph is down")
            })
            .await;
        assert_eq!(failed, Err("Graph is down"));
        for _ in 0..3 {
            let fact = fresh
                .get(|| async {
                    reads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, &str>(7)
                })
                .await
                .unwrap();
            assert_eq!(*fact, 7);
        }
        // The failed read, then one read that is kept.
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
