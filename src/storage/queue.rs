//! The service's queues: a Storage queue in Azure (azure_storage_queue with the managed
//! identity), or, in `dev`, an in-process channel that a pump drains the way the host would.
//!
//! `recovery-requests` (`RequestQueue`): messages are the JSON text `{"requestId": "<uuid>"}`,
//! unencoded (`messageEncoding: none` in host.json); the request itself lives in its record.
//! `recovery-notices` (`MessageQueue`): the notices a recovery sends after its answer, each message
//! `{"noticeId": "<uuid>"}` (the notice itself is a record: `recovery::notice`).

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Transport;
use azure_storage_queue::models::QueueMessage as SdkMessage;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use tokio::sync::mpsc;
use url::Url;
use uuid::Uuid;

use super::StorageError;

#[async_trait]
pub trait RequestQueue: Send + Sync {
    /// Put a request on the queue.
    async fn send(&self, request_id: Uuid) -> Result<(), StorageError>;
    /// Put a request on the queue, invisible until `delay` has passed (at most 7 days): how a
    /// request waiting for an approver comes back to expire.
    async fn send_after(&self, request_id: Uuid, delay: std::time::Duration) -> Result<(), StorageError>;
}

/// A queue that carries whole messages (the notice outbox).
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Put `text` on the queue.
    async fn post(&self, text: String) -> Result<(), StorageError>;
}

/// The message text for a request.
pub fn message_text(request_id: Uuid) -> String {
    serde_json::json!({ "requestId": request_id }).to_string()
}

/// A Storage queue through azure_storage_queue.
pub struct StorageQueue {
    client: QueueClient,
}

fn azure(e: azure_core::Error) -> StorageError {
    StorageError::Unavailable(format!("queue storage: {e}"))
}

impl StorageQueue {
    /// A client for `{service_uri}/{queue}`.
    ///
    /// # Errors
    /// The URL is not usable with a credential (not https).
    pub fn new(
        service_uri: &Url,
        queue: &str,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Transport>,
    ) -> Result<StorageQueue, StorageError> {
        let mut url = service_uri.clone();
        url.path_segments_mut()
            .map_err(|_| StorageError::Unavailable("bad queue URL".into()))?
            .pop_if_empty()
            .push(queue);
        let options = QueueClientOptions {
            client_options: crate::azure::client_options(transport),
            ..Default::default()
        };
        let client = QueueClient::new(url, Some(credential), Some(options)).map_err(azure)?;
        Ok(StorageQueue { client })
    }

    /// Create the queue if it does not exist (the templates create it; this covers a fresh account).
    ///
    /// # Errors
    /// Storage is unreachable or refuses the identity.
    pub(crate) async fn ensure_queue(&self) -> Result<(), StorageError> {
        match self.client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::Conflict) => Ok(()),
            Err(e) => Err(azure(e)),
        }
    }
}

#[async_trait]
impl RequestQueue for StorageQueue {
    async fn send(&self, request_id: Uuid) -> Result<(), StorageError> {
        self.put(message_text(request_id), None).await
    }
    async fn send_after(&self, request_id: Uuid, delay: std::time::Duration) -> Result<(), StorageError> {
        // The service's bounds: 1 second to 7 days.
        let seconds = delay.as_secs().clamp(1, 7 * 86_400);
        self.put(
            message_text(request_id),
            Some(i32::try_from(seconds).unwrap_or(i32::MAX)),
        )
        .await
    }
}

#[async_trait]
impl MessageQueue for StorageQueue {
    async fn post(&self, text: String) -> Result<(), StorageError> {
        self.put(text, None).await
    }
}

impl StorageQueue {
    /// Put Message, with a visibility timeout when `invisible_for` is set.
    /// https://learn.microsoft.com/rest/api/storageservices/put-message
    async fn put(&self, text: String, invisible_for: Option<i32>) -> Result<(), StorageError> {
        let send = || async {
            let message = SdkMessage {
                message_text: Some(text.clone()),
            };
            let options = invisible_for.map(|seconds| azure_storage_queue::models::QueueClientSendMessageOptions {
                visibility_timeout: Some(seconds),
                ..Default::default()
            });
            self.client.send_message(message.try_into()?, options).await.map(|_| ())
        };
        match send().await {
            // The queue is made on first use, not at start-up.
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                self.ensure_queue().await?;
                send().await.map_err(azure)
            }
            other => other.map_err(azure),
        }
    }
}

/// `dev`: an in-process queue; `host::pump_local_queue` and `host::pump_local_notices` play the
/// host's part.
pub(crate) struct LocalQueue<T> {
    tx: mpsc::UnboundedSender<T>,
}

impl<T> LocalQueue<T> {
    pub fn new() -> (LocalQueue<T>, mpsc::UnboundedReceiver<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LocalQueue { tx }, rx)
    }
}

#[async_trait]
impl MessageQueue for LocalQueue<String> {
    async fn post(&self, text: String) -> Result<(), StorageError> {
        super::local_round_trip().await;
        self.tx
            .send(text)
            .map_err(|_| StorageError::Unavailable("the local queue is closed".into()))
    }
}

#[async_trait]
impl RequestQueue for LocalQueue<Uuid> {
    async fn send(&self, request_id: Uuid) -> Result<(), StorageError> {
        super::local_round_trip().await;
        self.tx
            .send(request_id)
            .map_err(|_| StorageError::Unavailable("the local queue is closed".into()))
    }
    async fn send_after(&self, request_id: Uuid, delay: std::time::Duration) -> Result<(), StorageError> {
        super::local_round_trip().await;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(request_id);
        });
        Ok(())
    }
}
