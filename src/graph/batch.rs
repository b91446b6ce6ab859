//! One recovery's reads, sent together: a scoped client (`GraphClient::scoped`) that answers each
//! read once per recovery and gathers the reads issued at the same moment into JSON batches.
//!
//! - **Once per recovery.** A scoped client remembers every GET's answer (or its failure) by URL
//!   and headers, so the stages that need the same fact (the user's memberships for the policy's
//!   scope and for the privilege check) read it once. Any write through the scoped client forgets
//!   them all: nothing read before a change is trusted after it. Nothing is kept beyond the
//!   recovery: membership and roles are read fresh by every recovery.
//! - **Together.** `GraphClient::drive` runs a recovery; whenever it waits, the reads it has
//!   asked for since it last waited go out at once: one alone as itself, several as `$batch`
//!   requests of at most 20 (https://learn.microsoft.com/graph/json-batching), sent side by side.
//!   So `tokio::join!` of independent reads costs one round trip to Graph, not one each.
//! - **Failing closed.** A sub-request answers with its own status, taken as the read alone would
//!   have had it: anything but 2xx is the same `GraphError` (so a 403 names its permission). A 429 or
//!   503/504 sub-request, or a `$batch` that fails as a whole, is sent again on its own with the
//!   client's retry policy; what still fails is a failed read. A sub-request missing from the
//!   answer is a failed read too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{OnceCell, oneshot};
use url::Url;

use super::{GraphClient, GraphError, Raw};

/// At most this many requests per `$batch` (json-batching: "currently limited to 20").
const BATCH_LIMIT: usize = 20;

type Answer = Result<Raw, GraphError>;

/// A read waiting for the next send.
pub(super) struct Queued {
    url: Url,
    headers: Vec<(String, String)>,
    reply: oneshot::Sender<Answer>,
}

/// What a scoped client shares with its copies: the answers so far and the reads not yet sent.
#[derive(Default)]
pub(crate) struct Scope {
    answers: Mutex<HashMap<String, Arc<OnceCell<Answer>>>>,
    queue: Mutex<Vec<Queued>>,
    /// Set while `drive` runs the recovery (outside it a read goes out at once).
    driving: std::sync::atomic::AtomicBool,
}

impl Scope {
    fn cell(&self, key: &str) -> Arc<OnceCell<Answer>> {
        self.answers
            .lock()
            .expect("answers lock")
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Forget every answer: a write went out.
    pub(super) fn forget(&self) {
        self.answers.lock().expect("answers lock").clear();
    }

    fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queue.lock().expect("queue lock"))
    }
}

fn key(url: &Url, headers: &[(&str, &str)]) -> String {
    let mut k = url.as_str().to_owned();
    for (n, v) in headers {
        k.push('\n');
        k.push_str(&n.to_ascii_lowercase());
        k.push(':');
        k.push_str(v);
    }
    k
}

impl GraphClient {
    /// A client for one recovery: its reads are answered once and sent together (run the
    /// recovery with `drive`). On a scoped client, the same scope (a step of a recovery).
    pub fn scoped(&self) -> GraphClient {
        if self.scope_state.is_some() {
            return GraphClient {
                scope_state: self.scope_state.clone(),
                ..self.unscoped()
            };
        }
        GraphClient {
            scope_state: Some(Arc::new(Scope::default())),
            ..self.unscoped()
        }
    }

    /// The same client outside any recovery's scope (a read another recovery may share).
    pub(crate) fn unscoped(&self) -> GraphClient {
        GraphClient {
            http: self.http.clone(),
            base: self.base.clone(),
            credential: self.credential.clone(),
            scope: self.scope.clone(),
            scope_state: None,
        }
    }

    /// Run `work`, sending the reads it asks for together each time it waits. On an unscoped
    /// client, just `work`.
    pub async fn drive<F: Future>(&self, work: F) -> F::Output {
        let Some(scope) = self.scope_state.clone() else {
            return work.await;
        };
        // A step of a recovery already driven: the recovery's drive sends its reads.
        if scope.driving.load(std::sync::atomic::Ordering::SeqCst) {
            return work.await;
        }
        let sender = self.unscoped();
        scope.driving.store(true, std::sync::atomic::Ordering::SeqCst);
        // On the heap: a recovery's future is large, and a step may drive another.
        let mut work = Box::pin(work);
        let out = std::future::poll_fn(|cx| {
            let polled = work.as_mut().poll(cx);
            if polled.is_pending() {
                let reads = scope.take();
                if !reads.is_empty() {
                    let sender = sender.unscoped();
                    tokio::spawn(async move { sender.send_together(reads).await });
                }
            }
            polled
        })
        .await;
        scope.driving.store(false, std::sync::atomic::Ordering::SeqCst);
        // Reads asked for by work that finished without waiting for them: send them now, so
        // nothing waits forever.
        let left = scope.take();
        if !left.is_empty() {
            tokio::spawn(async move { sender.send_together(left).await });
        }
        out
    }

    /// A GET through the scope: the recovery's earlier answer, or the next send's.
    pub(super) async fn scoped_get(&self, scope: &Scope, url: &Url, headers: &[(&str, &str)]) -> Answer {
        let cell = scope.cell(&key(url, headers));
        cell.get_or_init(|| async {
            if !scope.driving.load(std::sync::atomic::Ordering::SeqCst) {
                return self.get_raw_direct(url, headers).await;
            }
            let (reply, answer) = oneshot::channel();
            scope.queue.lock().expect("queue lock").push(Queued {
                url: url.clone(),
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                reply,
            });
            answer
                .await
                .unwrap_or_else(|_| Err(GraphError::Unreachable("a batched read was dropped".into())))
        })
        .await
        .clone()
    }

    /// Send `reads`: one alone as itself, more as `$batch` requests side by side.
    async fn send_together(self, reads: Vec<Queued>) {
        if reads.len() == 1 {
            let read = reads.into_iter().next().expect("one read");
            let answer = self.alone(&read).await;
            let _ = read.reply.send(answer);
            return;
        }
        let mut chunks: Vec<Vec<Queued>> = Vec::new();
        for read in reads {
            let version = self.version_of(&read.url).0;
            match chunks
                .iter_mut()
                .find(|c| c.len() < BATCH_LIMIT && self.version_of(&c[0].url).0 == version)
            {
                Some(chunk) => chunk.push(read),
                None => chunks.push(vec![read]),
            }
        }
        futures::future::join_all(chunks.into_iter().map(|c| self.batch(c))).await;
    }

    async fn alone(&self, read: &Queued) -> Answer {
        let headers: Vec<(&str, &str)> = read.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.get_raw_direct(&read.url, &headers).await
    }

    /// `v1.0` or `beta`, and the rest of the URL relative to it (`/users/…?…`).
    fn version_of(&self, url: &Url) -> (String, String) {
        let base = self.base.path().trim_end_matches('/');
        let path = url.path().strip_prefix(base).unwrap_or(url.path());
        let path = path.trim_start_matches('/');
        let (version, rest) = path.split_once('/').unwrap_or((path, ""));
        let mut relative = format!("/{rest}");
        if let Some(q) = url.query() {
            relative.push('?');
            relative.push_str(q);
        }
        (version.to_owned(), relative)
    }

    /// One `$batch` of reads of one version. A batch that fails as a whole sends each read alone.
    async fn batch(&self, reads: Vec<Queued>) {
        if reads.len() == 1 {
            let read = reads.into_iter().next().expect("one read");
            let answer = self.alone(&read).await;
            let _ = read.reply.send(answer);
            return;
        }
        let version = self.version_of(&reads[0].url).0;
        let requests: Vec<Value> = reads
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let headers: serde_json::Map<String, Value> =
                    r.headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
                let mut item = json!({"id": i.to_string(), "method": "GET", "url": self.version_of(&r.url).1});
                if !headers.is_empty() {
                    item["headers"] = Value::Object(headers);
                }
                item
            })
            .collect();
        let url = self.url(&version, &["$batch"], &[]);
        let answered = self.post_batch(&url, &json!({"requests": requests})).await;
        let mut by_id: HashMap<String, Value> = match answered {
            Some(body) => body["responses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Some((r["id"].as_str()?.to_owned(), r.clone())))
                .collect(),
            None => HashMap::new(),
        };
        let whole_failed = by_id.is_empty();
        let mut again = Vec::new();
        for (i, read) in reads.into_iter().enumerate() {
            match by_id.remove(&i.to_string()) {
                Some(item) => match item_answer(&item) {
                    ItemAnswer::Done(answer) => {
                        let _ = read.reply.send(answer);
                    }
                    ItemAnswer::Again => again.push(read),
                },
                None if whole_failed => again.push(read),
                None => {
                    let _ = read.reply.send(Err(GraphError::Unreachable(
                        "the $batch answer left out a request".into(),
                    )));
                }
            }
        }
        // Throttled or busy parts (or the whole batch): each alone, with the retry policy.
        futures::future::join_all(again.into_iter().map(|read| async move {
            let answer = self.alone(&read).await;
            let _ = read.reply.send(answer);
        }))
        .await;
    }

    /// POST the batch (a batch of reads, or of `in_order`'s writes, is safe to repeat); `None`
    /// when it failed as a whole.
    async fn post_batch(&self, url: &Url, body: &Value) -> Option<Value> {
        let response = match self
            .send_retrying_with(reqwest::Method::POST, url, Some(body), &[])
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "a Graph $batch failed; sending its requests one by one"
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a Graph $batch failed; sending its requests one by one");
                return None;
            }
        };
        response.json().await.ok()
    }
}

/// One write of a chain sent with `GraphClient::in_order`.
pub(crate) struct Write {
    pub method: &'static str,
    pub url: Url,
    pub body: Option<Value>,
}

impl GraphClient {
    /// `writes` (all of one version) as one `$batch`, each after the one before (`dependsOn`):
    /// writes that must go in order in one round trip (json-batching: "If an individual request
    /// fails, any request that depends on that request fails with status code 424"). Only writes
    /// with the same effect twice (a delete, a PATCH to a value, a deactivate): a batch that
    /// fails as a whole is sent again by the retry policy, and a caller that goes on one by one
    /// finds what went through answered 404. Each write's answer in order: `Some(status)` when it
    /// ran, `None` when it did not (424) or the answer left it out; `None` for the whole when
    /// the batch failed.
    pub(crate) async fn in_order(&self, writes: &[Write]) -> Option<Vec<Option<u16>>> {
        let first = writes.first()?;
        if writes.len() > BATCH_LIMIT {
            return None;
        }
        let version = self.version_of(&first.url).0;
        if writes.iter().any(|w| self.version_of(&w.url).0 != version) {
            return None;
        }
        let requests: Vec<Value> = writes
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut item = json!({"id": i.to_string(), "method": w.method, "url": self.version_of(&w.url).1});
                if let Some(body) = &w.body {
                    item["body"] = body.clone();
                    item["headers"] = json!({"Content-Type": "application/json"});
                }
                if i > 0 {
                    item["dependsOn"] = json!([(i - 1).to_string()]);
                }
                item
            })
            .collect();
        if let Some(scope) = &self.scope_state {
            scope.forget();
        }
        let url = self.url(&version, &["$batch"], &[]);
        let answered = self.post_batch(&url, &json!({"requests": requests})).await;
        if let Some(scope) = &self.scope_state {
            scope.forget();
        }
        let by_id: HashMap<String, u16> = answered?["responses"]
            .as_array()?
            .iter()
            .filter_map(|r| Some((r["id"].as_str()?.to_owned(), u16::try_from(r["status"].as_u64()?).ok()?)))
            .collect();
        Some(
            (0..writes.len())
                .map(|i| by_id.get(&i.to_string()).copied().filter(|s| *s != 424))
                .collect(),
        )
    }
}

enum ItemAnswer {
    Done(Answer),
    /// Throttled or busy: send it again alone.
    Again,
}

/// A sub-request's answer as the read alone would have had it.
fn item_answer(item: &Value) -> ItemAnswer {
    let status = item["status"].as_u64().unwrap_or(0) as u16;
    if matches!(status, 429 | 503 | 504) {
        return ItemAnswer::Again;
    }
    let request_id = item["headers"]
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("request-id")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("-")
        .to_owned();
    if status == 0 {
        return ItemAnswer::Done(Err(GraphError::Unreachable("a $batch part without a status".into())));
    }
    // A read answered 2xx carries a JSON object (Graph base64-encodes a body that is not JSON);
    // anything else is unreadable, as the same answer alone would be, never an empty list.
    if (200..300).contains(&status) && !item.get("body").is_some_and(Value::is_object) {
        return ItemAnswer::Done(Err(GraphError::Unreachable(
            "a $batch part answered without a JSON body".into(),
        )));
    }
    ItemAnswer::Done(Ok(Raw {
        status,
        request_id,
        body: item.get("body").cloned().unwrap_or(Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::{ItemAnswer, item_answer};
    use serde_json::json;

    fn answer(item: serde_json::Value) -> Result<u16, String> {
        match item_answer(&item) {
            ItemAnswer::Done(Ok(raw)) => Ok(raw.status),
            ItemAnswer::Done(Err(e)) => Err(e.to_string()),
            ItemAnswer::Again => Err("again".into()),
        }
    }

    #[test]
    fn a_part_is_taken_as_the_read_alone_would_be_and_never_as_an_empty_answer() {
        assert_eq!(
            answer(json!({"id": "0", "status": 200, "body": {"value": []}})),
            Ok(200)
        );
        // 2xx without a JSON object (absent, or base64 text) is unreadable, not "nothing found".
        assert!(answer(json!({"id": "0", "status": 200})).is_err());
        assert!(answer(json!({"id": "0", "status": 200, "body": "eyJ2YWx1ZSI6W119"})).is_err());
        assert!(answer(json!({"id": "0"})).is_err());
        // A refusal is the read's own status (the caller names the permission).
        assert_eq!(
            answer(json!({"id": "0", "status": 403, "body": {"error": {"code": "Authorization_RequestDenied"}}})),
            Ok(403)
        );
        // Throttled or busy: sent again alone.
        for status in [429, 503, 504] {
            assert_eq!(answer(json!({"id": "0", "status": status})), Err("again".into()));
        }
    }
}
