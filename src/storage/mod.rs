//! Storage: the one place that talks to Azure Blob Storage (and its directory twin for `dev`).
//!
//! - `chains`: append-only chains for the audit trail (append blobs; conditional appends);
//! - `records`: JSON documents written only conditionally (request records, rate-limit slots);
//! - `reports`: the sweep's files (block blobs, streamed);
//! - `queue`: the intake's queue (Azure Queue Storage, or a channel in `dev`).
//!
//! This module imports nothing of the crate but `azure` (the SDK's client options); the audit
//! trail, the intake, the limits and the sweep use it, never each other's plumbing.

pub mod chains;
pub mod queue;
pub mod records;
pub mod reports;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::{StatusCode, Transport};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use url::Url;

/// How far away the local stores are (`dev --store-delay-ms`): unset, they answer at once.
static LOCAL_DISTANCE: OnceLock<Duration> = OnceLock::new();

/// Make every operation of the local stores (`FileRecords`, `FileStorage`, `LocalQueue`) wait
/// `delay` first, as a storage account's round trip would: how `benches/intake.sh` shows that
/// concurrent requests wait on storage side by side, not one after another. Set once, by `dev`
/// (a process of its own), before any store is used; tests never set it.
pub fn place_local_stores_away(delay: Duration) {
    let _ = LOCAL_DISTANCE.set(delay);
}

/// The round trip of one local store operation, before the operation takes its lock.
pub(crate) async fn local_round_trip() {
    if let Some(delay) = LOCAL_DISTANCE.get() {
        tokio::time::sleep(*delay).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The blob exists already, or another writer appended first.
    #[error("{0}: a conditional write was refused")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

/// A client for the container `{service_uri}/{container}`, with the app's client options. Shared
/// by the audit trail, the request records and the sweeps.
///
/// # Errors
/// The URL is not usable with a credential (not https).
pub(crate) fn container_client(
    service_uri: &Url,
    container: &str,
    credential: Arc<dyn TokenCredential>,
    transport: Option<Transport>,
) -> Result<BlobContainerClient, StorageError> {
    let mut url = service_uri.clone();
    url.path_segments_mut()
        .map_err(|_| StorageError::Unavailable("bad blob URL".into()))?
        .pop_if_empty()
        .push(container);
    let options = BlobContainerClientOptions {
        client_options: crate::azure::client_options(transport),
        ..Default::default()
    };
    BlobContainerClient::new(url, Some(credential), Some(options)).map_err(azure)
}

/// Create the container if it does not exist (the templates create it; this covers a fresh
/// account). Called on first use, when a write finds no container.
///
/// # Errors
/// Storage is unreachable or refuses the identity.
pub(crate) async fn create_container(container: &BlobContainerClient) -> Result<(), StorageError> {
    match container.create(None).await {
        Ok(_) => Ok(()),
        Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
        Err(e) => Err(azure(e)),
    }
}

pub fn azure(e: azure_core::Error) -> StorageError {
    StorageError::Unavailable(format!("blob storage: {e}"))
}

pub(crate) fn conflict_or(name: &str, e: azure_core::Error) -> StorageError {
    match e.http_status() {
        Some(StatusCode::Conflict | StatusCode::PreconditionFailed) => StorageError::Conflict(name.into()),
        _ => azure(e),
    }
}

/// The names of the blobs under `prefix` (every page; a missing container has none).
/// https://learn.microsoft.com/rest/api/storageservices/list-blobs
pub(crate) async fn list_names(container: &BlobContainerClient, prefix: &str) -> Result<Vec<String>, StorageError> {
    use futures::TryStreamExt;
    let options = azure_storage_blob::models::BlobContainerClientListBlobsOptions {
        prefix: Some(prefix.to_owned()),
        ..Default::default()
    };
    let mut pages = container.list_blobs(Some(options)).map_err(azure)?.into_pages();
    let mut names = Vec::new();
    loop {
        let page = match pages.try_next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => break,
            Err(e) => return Err(azure(e)),
        };
        let page = page.into_model().map_err(azure)?;
        names.extend(page.blob_items.into_iter().filter_map(|b| b.name));
    }
    Ok(names)
}
