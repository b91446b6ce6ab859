//! Where sweep runs are kept: checkpoints, one file of at-risk users per page, and the reports.
//! Blob Storage (block blobs; the reports are written in staged 4 MiB blocks, so memory stays
//! flat however large the tenant) or a directory (`dev`, `mfa-recovery sweep --out`).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode, Transport};
use azure_storage_blob::BlobContainerClient;
use azure_storage_blob::models::{BlobClientUploadOptions, BlockBlobClientCommitBlockListOptions, BlockLookupList};
use tokio::io::AsyncWriteExt;
use url::Url;

pub use super::StorageError;

/// A file being written piece by piece.
#[async_trait]
pub trait ReportFile: Send {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;
    async fn finish(self: Box<Self>) -> Result<(), StorageError>;
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Write a small object whole (replacing it).
    async fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError>;
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Start writing a large object.
    async fn open(&self, name: &str) -> Result<Box<dyn ReportFile>, StorageError>;
}

pub(crate) fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("csv") => "text/csv; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A directory with the same layout.
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: PathBuf) -> DirStore {
        DirStore { root }
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("sweep directory: {e}"))
}

struct DirFile {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp: PathBuf,
    path: PathBuf,
}

#[async_trait]
impl ReportFile for DirFile {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(data).await.map_err(io)
    }
    async fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        self.file.flush().await.map_err(io)?;
        tokio::fs::rename(&self.temp, &self.path).await.map_err(io)
    }
}

#[async_trait]
impl ReportStore for DirStore {
    async fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let mut file = self.open(name).await?;
        file.write(data).await?;
        file.finish().await
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match tokio::fs::read(self.root.join(name)).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn open(&self, name: &str) -> Result<Box<dyn ReportFile>, StorageError> {
        let path = self.root.join(name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut temp = path.clone().into_os_string();
        temp.push(".partial");
        let temp = PathBuf::from(temp);
        let file = tokio::fs::File::create(&temp).await.map_err(io)?;
        Ok(Box::new(DirFile {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            temp,
            path,
        }))
    }
}

/// Block blobs in one container, through azure_storage_blob with an Entra token credential.
pub(crate) struct BlobStore {
    container: Arc<BlobContainerClient>,
}

use super::{azure, container_client, create_container};

impl BlobStore {
    /// # Errors
    /// The URL is not usable with a credential (not https).
    pub fn new(
        service_uri: &Url,
        container: &str,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Transport>,
    ) -> Result<BlobStore, StorageError> {
        Ok(BlobStore {
            container: Arc::new(container_client(service_uri, container, credential, transport)?),
        })
    }

    /// # Errors
    /// Storage is unreachable or refuses the identity.
    pub async fn ensure_container(&self) -> Result<(), StorageError> {
        create_container(&self.container).await
    }
}

/// Staged blocks of up to 4 MiB, committed at the end.
struct BlobFile {
    container: Arc<BlobContainerClient>,
    client: azure_storage_blob::BlockBlobClient,
    name: String,
    buffer: Vec<u8>,
    blocks: Vec<Vec<u8>>,
}

const BLOCK: usize = 4 * 1024 * 1024;

impl BlobFile {
    async fn stage(&mut self) -> Result<(), StorageError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let id = format!("block-{:08}", self.blocks.len()).into_bytes();
        let data = std::mem::take(&mut self.buffer);
        let result = self
            .client
            .stage_block(&id, data.len() as u64, RequestContent::from(data.clone()), None)
            .await;
        match result {
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                create_container(&self.container).await?;
                self.client
                    .stage_block(&id, data.len() as u64, RequestContent::from(data), None)
                    .await
                    .map_err(azure)?;
            }
            other => {
                other.map_err(azure)?;
            }
        }
        self.blocks.push(id);
        Ok(())
    }
}

#[async_trait]
impl ReportFile for BlobFile {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= BLOCK {
            self.stage().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        self.stage().await?;
        let list = BlockLookupList {
            latest: Some(std::mem::take(&mut self.blocks)),
            ..Default::default()
        };
        let options = BlockBlobClientCommitBlockListOptions {
            blob_content_type: Some(content_type(&self.name).into()),
            ..Default::default()
        };
        self.client
            .commit_block_list(list.try_into().map_err(azure)?, Some(options))
            .await
            .map(|_| ())
            .map_err(azure)
    }
}

#[async_trait]
impl ReportStore for BlobStore {
    async fn put(&self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        let upload = || async {
            let options = BlobClientUploadOptions {
                blob_content_type: Some(content_type(name).into()),
                ..Default::default()
            };
            self.container
                .blob_client(name)
                .upload(RequestContent::from(data.to_vec()), Some(options))
                .await
                .map(|_| ())
        };
        match upload().await {
            // The container is made on first use, not at start-up.
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                self.ensure_container().await?;
                upload().await.map_err(azure)
            }
            other => other.map_err(azure),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self.container.blob_client(name).download(None).await {
            Ok(r) => Ok(Some(r.body.collect().await.map_err(azure)?.to_vec())),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(azure(e)),
        }
    }

    async fn open(&self, name: &str) -> Result<Box<dyn ReportFile>, StorageError> {
        Ok(Box::new(BlobFile {
            container: self.container.clone(),
            client: self.container.blob_client(name).block_blob_client(),
            name: name.to_owned(),
            buffer: Vec::with_capacity(BLOCK),
            blocks: Vec::new(),
        }))
    }
}
