//! Where audit chains are kept: append blobs in Azure Blob Storage (with the managed identity),
//! or a directory with the same layout for `mfa-recovery dev`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode, Transport};
use azure_storage_blob::BlobContainerClient;
use azure_storage_blob::models::{AppendBlobClientAppendBlockOptions, AppendBlobClientCreateOptions};
use url::Url;

pub use super::StorageError;
use super::{azure, conflict_or, container_client, create_container};

/// Append-only storage of named chains.
#[async_trait]
pub trait AuditStorage: Send + Sync {
    /// Create an empty chain; fails with `Conflict` when it exists.
    async fn create(&self, name: &str) -> Result<(), StorageError>;
    /// Append `data` at `offset`, which must be the chain's current length (a conditional append).
    async fn append(&self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError>;
    /// Append `data` wherever the end is now, creating the blob if needed: for logs several
    /// writers share (the anchors). Each append lands whole.
    async fn append_shared(&self, name: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Names of the chains under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    async fn read(&self, name: &str) -> Result<Vec<u8>, StorageError>;
}

/// A directory tree, one file per chain (`dev`).
pub(crate) struct FileStorage {
    root: PathBuf,
}

impl FileStorage {
    pub fn new(root: PathBuf) -> FileStorage {
        FileStorage { root }
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("audit directory: {e}"))
}

impl FileStorage {
    /// Run `op` on the file of `name` on the blocking pool: one hop for the whole operation, not
    /// one per file system call.
    async fn on_file<T: Send + 'static>(
        &self,
        name: &str,
        op: impl FnOnce(&std::path::Path) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        super::local_round_trip().await;
        let path = self.root.join(name);
        tokio::task::spawn_blocking(move || op(&path))
            .await
            .map_err(|e| StorageError::Unavailable(format!("audit directory: {e}")))?
    }
}

fn parent_dir(path: &std::path::Path) -> Result<(), StorageError> {
    match path.parent() {
        Some(parent) if !parent.is_dir() => std::fs::create_dir_all(parent).map_err(io),
        _ => Ok(()),
    }
}

#[async_trait]
impl AuditStorage for FileStorage {
    async fn create(&self, name: &str) -> Result<(), StorageError> {
        let name = name.to_owned();
        self.on_file(&name.clone(), move |path| {
            parent_dir(path)?;
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StorageError::Conflict(name)),
                Err(e) => Err(io(e)),
            }
        })
        .await
    }

    async fn append(&self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        use std::io::Write;
        let (name, data) = (name.to_owned(), data.to_vec());
        self.on_file(&name.clone(), move |path| {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
            if file.metadata().map_err(io)?.len() != offset {
                return Err(StorageError::Conflict(name));
            }
            file.write_all(&data).map_err(io)?;
            file.sync_data().map_err(io)
        })
        .await
    }

    async fn append_shared(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        use std::io::Write;
        let data = data.to_vec();
        self.on_file(name, move |path| {
            parent_dir(path)?;
            // O_APPEND: each write lands whole at the end, whoever else appends.
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(io)?;
            file.write_all(&data).map_err(io)?;
            file.sync_data().map_err(io)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        super::local_round_trip().await;
        let dir = self.root.join(prefix);
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.ends_with(".jsonl") {
                out.push(format!("{prefix}{file}"));
            }
        }
        Ok(out)
    }

    async fn read(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        super::local_round_trip().await;
        tokio::fs::read(self.root.join(name)).await.map_err(io)
    }
}

/// Append blobs in one container, through azure_storage_blob and an Entra token credential.
pub struct BlobStorage {
    container: BlobContainerClient,
}

impl BlobStorage {
    /// A client for `{service_uri}/{container}`. `transport` is for tests that must trust a
    /// local certificate authority; production passes `None`.
    ///
    /// # Errors
    /// The URL is not usable (for example not https with a credential).
    pub fn new(
        service_uri: &Url,
        container: &str,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Transport>,
    ) -> Result<BlobStorage, StorageError> {
        Ok(BlobStorage {
            container: container_client(service_uri, container, credential, transport)?,
        })
    }

    /// Create the container if it does not exist (the templates create it with its immutability
    /// policy; this covers a fresh account).
    ///
    /// # Errors
    /// Storage is unreachable or refuses the identity.
    pub async fn ensure_container(&self) -> Result<(), StorageError> {
        create_container(&self.container).await
    }
}

#[async_trait]
impl AuditStorage for BlobStorage {
    async fn create(&self, name: &str) -> Result<(), StorageError> {
        let attempt = || async {
            let options = AppendBlobClientCreateOptions {
                if_none_match: Some("*".into()),
                ..Default::default()
            };
            self.container
                .blob_client(name)
                .append_blob_client()
                .create(Some(options))
                .await
                .map(|_| ())
        };
        match attempt().await {
            // The container is made on first use (the templates make it; a fresh account may not
            // have it), not at start-up: a cold start makes no storage call.
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                self.ensure_container().await?;
                attempt().await.map_err(|e| conflict_or(name, e))
            }
            other => other.map_err(|e| conflict_or(name, e)),
        }
    }

    async fn append(&self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let options = AppendBlobClientAppendBlockOptions {
            append_position: Some(offset as i64),
            ..Default::default()
        };
        self.container
            .blob_client(name)
            .append_blob_client()
            .append_block(RequestContent::from(data.to_vec()), data.len() as u64, Some(options))
            .await
            .map(|_| ())
            .map_err(|e| conflict_or(name, e))
    }

    async fn append_shared(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let append = || async {
            self.container
                .blob_client(name)
                .append_blob_client()
                .append_block(RequestContent::from(data.to_vec()), data.len() as u64, None)
                .await
                .map(|_| ())
        };
        match append().await {
            // No blob yet (the first record of the day): create it (another writer may have just
            // done so), then append.
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                match self.create(name).await {
                    Ok(()) | Err(StorageError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                append().await.map_err(azure)
            }
            other => other.map_err(azure),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        super::list_names(&self.container, prefix).await
    }

    async fn read(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        let response = self.container.blob_client(name).download(None).await.map_err(azure)?;
        Ok(response.body.collect().await.map_err(azure)?.to_vec())
    }
}
