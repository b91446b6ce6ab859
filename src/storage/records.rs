//! Request records: one JSON document per request, written only conditionally (`If-None-Match: *`
//! to create, `If-Match: <etag>` to change), so two workers can never both claim a request and a
//! stale writer can never overwrite a newer state. Blob Storage in Azure; a directory in `dev`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, StatusCode, Transport};
use azure_storage_blob::BlobContainerClient;
use azure_storage_blob::models::BlobClientUploadOptions;
use sha2::{Digest, Sha256};
use url::Url;

pub use super::StorageError;

/// A record as read: its bytes and the version to make the next write conditional on.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub data: Vec<u8>,
    pub etag: String,
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Create `name`; `Conflict` when it exists. Returns the new version.
    async fn create(&self, name: &str, data: &[u8]) -> Result<String, StorageError>;
    /// Replace `name` if it is still at `etag`; `Conflict` when someone wrote it since.
    async fn replace(&self, name: &str, data: &[u8], etag: &str) -> Result<String, StorageError>;
    async fn read(&self, name: &str) -> Result<Option<Versioned>, StorageError>;
    /// Delete `name`; nothing to do when it is gone already.
    async fn delete(&self, name: &str) -> Result<(), StorageError>;
    /// The names that begin with `prefix` (a folder: `open/`), in no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
}

/// A directory, one file per record; a lock per record makes compare-and-swap atomic within the
/// process (`dev` runs one process). The locks are striped by the record's name: writes to
/// different records seldom wait on each other, writes to one record always do.
pub(crate) struct FileRecords {
    root: PathBuf,
    locks: Vec<Arc<tokio::sync::Mutex<()>>>,
}

/// How many locks a directory store stripes its records over.
const STRIPES: usize = 64;

impl FileRecords {
    pub fn new(root: PathBuf) -> FileRecords {
        FileRecords {
            root,
            locks: (0..STRIPES).map(|_| Arc::new(tokio::sync::Mutex::new(()))).collect(),
        }
    }

    /// The lock of the record `name`, held until the file operation it is given to has ended,
    /// even when the caller goes away first (the operation runs to its end on the blocking pool).
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let stripe = Sha256::digest(name.as_bytes())[0] as usize % STRIPES;
        self.locks[stripe].clone().lock_owned().await
    }

    /// Run `op` on the file of `name`: after the store's round trip (`dev --store-delay-ms`), under
    /// the record's lock, held until `op` has ended even when the caller goes away first, on the
    /// blocking pool in one hop for the whole operation (a check, a write and its swap), not one
    /// per file system call. Reads too: a replace rewrites the file the one before swapped out.
    async fn on_record<T: Send + 'static>(
        &self,
        name: &str,
        op: impl FnOnce(&std::path::Path) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        super::local_round_trip().await;
        let guard = self.lock(name).await;
        let path = self.root.join(name);
        tokio::task::spawn_blocking(move || {
            let done = op(&path);
            drop(guard);
            done
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("request directory: {e}")))?
    }
}

/// Write `data` to `path` whole: into its temporary file, then renamed into place, so a reader
/// (or a crash) finds the old version or the new one, never a part.
///
/// A replace swaps the two files (`renameat2` with `RENAME_EXCHANGE`, Linux and macOS) and keeps
/// the old version in the temporary file, whose inode the next replace writes again: a rename over
/// the record would free its inode and the next write allocate one, and on ext4 that churn (the
/// allocator skipping recently freed inodes, under the directory's lock) was most of the CPU an
/// intake took under load (`benches/intake.last.txt`). Where the file system cannot swap, a plain
/// rename. Since the next replace rewrites the file an earlier reader may still hold, `read` takes
/// the record's lock too. The version before the last replace stays beside the record until its
/// next replace or its delete (records never hold a pass, a code or a secret: keyed hashes only).
fn write_file(path: &std::path::Path, data: &[u8], replace: bool) -> Result<String, StorageError> {
    if let Some(parent) = path.parent()
        && !parent.is_dir()
    {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temp = temp_of(path);
    std::fs::write(&temp, data).map_err(io)?;
    if !(replace && swap(&temp, path)) {
        std::fs::rename(&temp, path).map_err(io)?;
    }
    Ok(version(data))
}

/// Exchange `a` and `b` atomically; `false` where the platform or the file system cannot.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn swap(a: &std::path::Path, b: &std::path::Path) -> bool {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn swap(_: &std::path::Path, _: &std::path::Path) -> bool {
    false
}

/// Where `path`'s next version is written: its whole name and `.tmp` (`list` skips it).
fn temp_of(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    name.into()
}

fn read_file(path: &std::path::Path) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("request directory: {e}"))
}

fn version(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..12])
}

#[async_trait]
impl RecordStore for FileRecords {
    async fn create(&self, name: &str, data: &[u8]) -> Result<String, StorageError> {
        let (owned, data) = (name.to_owned(), data.to_vec());
        self.on_record(name, move |path| {
            if read_file(path)?.is_some() {
                return Err(StorageError::Conflict(owned));
            }
            write_file(path, &data, false)
        })
        .await
    }

    async fn replace(&self, name: &str, data: &[u8], etag: &str) -> Result<String, StorageError> {
        let (owned, data, etag) = (name.to_owned(), data.to_vec(), etag.to_owned());
        self.on_record(name, move |path| match read_file(path)? {
            Some(current) if version(&current) == etag => write_file(path, &data, true),
            _ => Err(StorageError::Conflict(owned)),
        })
        .await
    }

    async fn read(&self, name: &str) -> Result<Option<Versioned>, StorageError> {
        Ok(self.on_record(name, read_file).await?.map(|data| Versioned {
            etag: version(&data),
            data,
        }))
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.on_record(name, |path| {
            // The record, and the earlier version its replaces left beside it.
            for file in [temp_of(path), path.to_owned()] {
                match std::fs::remove_file(file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                    _ => {}
                }
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        super::local_round_trip().await;
        let (folder, start) = prefix.rsplit_once('/').map_or(("", prefix), |(f, s)| (f, s));
        let mut entries = match tokio::fs::read_dir(self.root.join(folder)).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let file = entry.file_name().to_string_lossy().into_owned();
            // `<name>.tmp`: a write in progress, or the version before the last replace.
            if file.starts_with(start) && !file.ends_with(".tmp") {
                names.push(if folder.is_empty() {
                    file
                } else {
                    format!("{folder}/{file}")
                });
            }
        }
        Ok(names)
    }
}

/// Block blobs in one container, through azure_storage_blob with an Entra token credential.
pub(crate) struct BlobRecords {
    container: BlobContainerClient,
}

use super::{azure, conflict_or, container_client, create_container};

impl BlobRecords {
    /// # Errors
    /// The URL is not usable with a credential (not https).
    pub fn new(
        service_uri: &Url,
        container: &str,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Transport>,
    ) -> Result<BlobRecords, StorageError> {
        Ok(BlobRecords {
            container: container_client(service_uri, container, credential, transport)?,
        })
    }

    /// Create the container if it does not exist (the templates create it; this covers a fresh
    /// account).
    ///
    /// # Errors
    /// Storage is unreachable or refuses the identity.
    pub async fn ensure_container(&self) -> Result<(), StorageError> {
        create_container(&self.container).await
    }

    async fn upload(
        &self,
        name: &str,
        data: &[u8],
        options: BlobClientUploadOptions<'static>,
    ) -> Result<String, StorageError> {
        let options = BlobClientUploadOptions {
            blob_content_type: Some("application/json".into()),
            ..options
        };
        let upload = |options: BlobClientUploadOptions<'static>| async {
            self.container
                .blob_client(name)
                .upload(RequestContent::from(data.to_vec()), Some(options))
                .await
        };
        let result = match upload(options.clone()).await {
            // The container is made on first use, not at start-up (see the audit store).
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
                self.ensure_container().await?;
                upload(options).await
            }
            other => other,
        }
        .map_err(|e| conflict_or(name, e))?;
        result
            .etag
            .map(|e| e.to_string())
            .ok_or_else(|| StorageError::Unavailable("blob storage returned no ETag".into()))
    }
}

#[async_trait]
impl RecordStore for BlobRecords {
    async fn create(&self, name: &str, data: &[u8]) -> Result<String, StorageError> {
        self.upload(name, data, BlobClientUploadOptions::default().if_not_exists())
            .await
    }

    async fn replace(&self, name: &str, data: &[u8], etag: &str) -> Result<String, StorageError> {
        let options = BlobClientUploadOptions {
            if_match: Some(etag.into()),
            ..Default::default()
        };
        self.upload(name, data, options).await
    }

    async fn read(&self, name: &str) -> Result<Option<Versioned>, StorageError> {
        let response = match self.container.blob_client(name).download(None).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(azure(e)),
        };
        let etag = response
            .properties
            .etag
            .as_ref()
            .map(ToString::to_string)
            .ok_or_else(|| StorageError::Unavailable("blob storage returned no ETag".into()))?;
        let data = response.body.collect().await.map_err(azure)?.to_vec();
        Ok(Some(Versioned { data, etag }))
    }

    /// https://learn.microsoft.com/rest/api/storageservices/delete-blob
    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match self.container.blob_client(name).delete(None).await {
            Err(e) if e.http_status() != Some(StatusCode::NotFound) => Err(azure(e)),
            _ => Ok(()),
        }
    }

    /// https://learn.microsoft.com/rest/api/storageservices/list-blobs (up to 5,000 a page).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        super::list_names(&self.container, prefix).await
    }
}

/// What a change made of a record: write this new value (and answer `R`), or leave it (and answer
/// `R`).
pub enum Update<T, R> {
    Write(T, R),
    Keep(R),
}

/// Why `update` stopped.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The store failed, the record is not readable JSON of its type, or `rounds` writers won.
    Storage(StorageError),
    /// The change itself said no.
    Refused(E),
}

/// Read `name`, let `change` decide on it, and write its decision conditionally (create when
/// absent, replace at the version read), again from the read when another writer won, at most
/// `rounds` times: the one compare-and-swap loop of the crate.
///
/// # Errors
/// `Refused` with the change's own error, or `Storage` (including a record that is not readable
/// as `T`, and `Conflict` after `rounds` lost races).
pub async fn update<T, R, E>(
    store: &dyn RecordStore,
    name: &str,
    rounds: u32,
    change: impl FnMut(Option<T>) -> Result<Update<T, R>, E>,
) -> Result<R, UpdateError<E>>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    update_versioned(store, name, rounds, change)
        .await
        .map(|(answer, _)| answer)
}

/// `update`, with the record's version after it (the one written, or the one read when the
/// change kept it; `None` when there is no record): what the next conditional write needs.
///
/// # Errors
/// As `update`.
pub(crate) async fn update_versioned<T, R, E>(
    store: &dyn RecordStore,
    name: &str,
    rounds: u32,
    mut change: impl FnMut(Option<T>) -> Result<Update<T, R>, E>,
) -> Result<(R, Option<String>), UpdateError<E>>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    for round in 0..rounds {
        if round > 0 {
            // Lost a race: let the winner finish, with jitter so the losers spread out.
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
            tokio::time::sleep(std::time::Duration::from_millis(
                2 + jitter + u64::from(round.min(10)) * 2,
            ))
            .await;
        }
        let current = store.read(name).await.map_err(UpdateError::Storage)?;
        let (value, etag) = match current {
            None => (None, None),
            Some(v) => {
                let value = serde_json::from_slice::<T>(&v.data).map_err(|e| {
                    UpdateError::Storage(StorageError::Unavailable(format!("{name} is not readable: {e}")))
                })?;
                (Some(value), Some(v.etag))
            }
        };
        let (next, answer) = match change(value).map_err(UpdateError::Refused)? {
            Update::Keep(answer) => return Ok((answer, etag)),
            Update::Write(next, answer) => (next, answer),
        };
        let data = serde_json::to_vec(&next).expect("records serialize");
        let written = match etag {
            None => store.create(name, &data).await,
            Some(etag) => store.replace(name, &data, &etag).await,
        };
        match written {
            Ok(version) => return Ok((answer, Some(version))),
            Err(StorageError::Conflict(_)) => continue,
            Err(e) => return Err(UpdateError::Storage(e)),
        }
    }
    Err(UpdateError::Storage(StorageError::Conflict(format!(
        "{rounds} writers raced for {name}"
    ))))
}

#[cfg(test)]
mod tests {
    use super::{FileRecords, RecordStore, StorageError};

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A replace swaps the record with its temporary file (no new inode), yet a read finds the
    /// newest version, `list` only the record, a stale version still conflicts, and a delete
    /// leaves nothing behind, not the earlier version either.
    #[tokio::test]
    async fn a_replace_swaps_in_place_and_a_delete_leaves_no_version_behind() {
        let dir = std::env::temp_dir().join(format!("records-swap-{}", uuid::Uuid::new_v4()));
        let store = FileRecords::new(dir.clone());
        let first = store.create("open/r1", b"{\"v\":1}").await.unwrap();
        assert_eq!(files(&dir.join("open")), ["r1"]);
        let second = store.replace("open/r1", b"{\"v\":2}", &first).await.unwrap();
        let third = store.replace("open/r1", b"{\"v\":3}", &second).await.unwrap();
        let read = store.read("open/r1").await.unwrap().unwrap();
        assert_eq!(
            (read.data.as_slice(), read.etag.as_str()),
            (&b"{\"v\":3}"[..], third.as_str())
        );
        // The version before the last replace is kept beside it, for the next replace to reuse
        // (Linux swaps; elsewhere the platform may only rename).
        if cfg!(target_os = "linux") {
            assert_eq!(files(&dir.join("open")), ["r1", "r1.tmp"]);
            assert_eq!(std::fs::read(dir.join("open/r1.tmp")).unwrap(), b"{\"v\":2}");
        }
        assert_eq!(store.list("open/").await.unwrap(), ["open/r1"]);
        assert!(matches!(
            store.replace("open/r1", b"{\"v\":4}", &second).await,
            Err(StorageError::Conflict(_))
        ));
        assert_eq!(store.read("open/r1").await.unwrap().unwrap().data, b"{\"v\":3}");
        store.delete("open/r1").await.unwrap();
        assert!(files(&dir.join("open")).is_empty(), "{:?}", files(&dir.join("open")));
        assert!(store.read("open/r1").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Why `read` takes the record's lock: a file opened before two replaces holds the second
    /// one's bytes (each replace rewrites the file the one before swapped out), so a read that a
    /// replace could overtake twice might return a part. With the lock, no replace runs while a
    /// read has the file open.
    #[tokio::test]
    async fn a_read_waits_for_the_records_lock_since_replaces_reuse_files() {
        use std::io::Read;
        let dir = std::env::temp_dir().join(format!("records-reuse-{}", uuid::Uuid::new_v4()));
        let store = std::sync::Arc::new(FileRecords::new(dir.clone()));
        let first = store.create("r", b"{\"v\":0}").await.unwrap();
        let mut held = std::fs::File::open(dir.join("r")).unwrap();
        let second = store.replace("r", b"{\"v\":1}", &first).await.unwrap();
        store.replace("r", b"{\"v\":2}", &second).await.unwrap();
        let mut seen = String::new();
        held.read_to_string(&mut seen).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(seen, "{\"v\":2}", "the file opened at version 0 was rewritten in place");
        }
        // A read does not run while the record's lock is held.
        let guard = store.lock("r").await;
        let reading = {
            let store = store.clone();
            tokio::spawn(async move { store.read("r").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!reading.is_finished(), "a read ran while the record's lock was held");
        drop(guard);
        let read = reading.await.unwrap().unwrap().unwrap();
        assert_eq!(read.data, b"{\"v\":2}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
