//! The site's data and how it persists under the data directory:
//! `site.json` (contacts as wire JSON, attachment records, pending upload tokens),
//! `files/<attachment id>` (the bytes) and `previews/<attachment id>.jpg`.
//!
//! `site.json` is rewritten whole through a temporary file and a rename, so a crash leaves either
//! the old or the new state, never a torn file. The Demo site is small; this is plenty.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("sandbox data folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("sandbox site.json is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("could not generate the demo data: {0}")]
    Seed(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAttachment {
    pub id: String,
    pub contact_id: String,
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub created_date: String,
    /// Secret part of the file and preview URLs, as Wix media URLs carry their own token.
    pub token: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Preview rendition size, when one was generated (images only, as on Wix).
    pub preview: Option<(u32, u32)>,
    /// Seen through the EspoCRM API, the Note of the contact's stream that carries this file
    /// (files attached through the Wix API or seeded get one made up from their id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<String>,
}

impl StoredAttachment {
    pub fn is_image(&self) -> bool {
        self.mime_type.starts_with("image/")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpload {
    pub token: String,
    pub contact_id: String,
    pub file_name: String,
    pub mime_type: String,
    /// When the URL was generated (ms since the epoch), for the `url-ttl` fault.
    #[serde(default)]
    pub created_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteData {
    /// Contacts exactly as the wire shows them (Contact v4 JSON), in creation order.
    pub contacts: Vec<serde_json::Value>,
    pub attachments: Vec<StoredAttachment>,
    /// Upload URLs handed out and not used yet. Kept in memory only, like a real upload host's
    /// short-lived tokens: after a restart they are unknown (404) and clients ask for new ones.
    #[serde(skip)]
    pub uploads: Vec<PendingUpload>,
    /// Tokens of upload URLs already used: one-time, a second PUT is refused.
    #[serde(default)]
    pub spent_upload_tokens: std::collections::BTreeSet<String>,
    /// Ids of contacts merged into another: GetContact on them answers `MERGED`.
    #[serde(default)]
    pub merged: BTreeMap<String, String>,
    /// Attachments made through the EspoCRM API and not linked to a record yet (being filled
    /// chunk by chunk, or complete and waiting for their Note or Document).
    #[serde(default)]
    pub espo_files: Vec<EspoFile>,
    /// Stream Notes made through the EspoCRM API.
    #[serde(default)]
    pub notes: Vec<StoredNote>,
    /// EspoCRM Documents (a named file linked to contacts).
    #[serde(default)]
    pub documents: Vec<StoredDocument>,
    /// The Media Manager's files (trashed ones included, `state: DELETED`).
    #[serde(default)]
    pub media_files: Vec<crate::media::StoredMediaFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EspoFile {
    pub id: String,
    pub name: String,
    pub mime_type: Option<String>,
    /// The `size` the client declared (required for chunked uploads).
    pub declared_size: Option<u64>,
    /// Bytes stored so far.
    pub received: u64,
    pub being_uploaded: bool,
    pub parent_type: Option<String>,
    pub related_type: Option<String>,
    pub field: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredNote {
    pub id: String,
    pub contact_id: String,
    pub post: String,
    pub attachment_ids: Vec<String>,
    pub created_at: String,
    pub number: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDocument {
    pub id: String,
    pub name: String,
    pub file_id: String,
    pub file_name: String,
    pub contact_ids: Vec<String>,
    pub publish_date: String,
    pub created_at: String,
}

pub struct Site {
    dir: PathBuf,
    data: Mutex<SiteData>,
    /// Changes made to `data` (bumped under its lock) and the last change on disk: requests
    /// that change the site at about the same time share one write and fsync ("group commit"),
    /// and each still answers only once its change is durable.
    changes: AtomicU64,
    saved: AtomicU64,
    writer: tokio::sync::Mutex<()>,
}

impl Site {
    pub fn open(dir: &Path) -> Result<Self, SiteError> {
        fs::create_dir_all(dir.join("files"))?;
        fs::create_dir_all(dir.join("previews"))?;
        fs::create_dir_all(dir.join("media").join("tus"))?;
        let json = dir.join("site.json");
        let data = if json.exists() {
            serde_json::from_slice(&fs::read(&json)?)?
        } else {
            let data = crate::seed::seed(dir)?;
            write_atomically(&json, &serde_json::to_vec_pretty(&data)?)?;
            data
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            data: Mutex::new(data),
            changes: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, SiteData> {
        // A panic while holding the lock leaves data that is still consistent enough to serve.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `data` (this site's, still locked by the caller) changed; pass the number
    /// to [`Site::commit`] once the lock is released.
    pub fn changed(&self, _data: &MutexGuard<'_, SiteData>) -> u64 {
        self.changes.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once change `change` is on disk: written by this call, together with whatever
    /// else changed meanwhile, or by a concurrent call that already covered it.
    pub async fn commit(&self, change: u64) -> Result<(), SiteError> {
        let _writing = self.writer.lock().await;
        if self.saved.load(Ordering::SeqCst) >= change {
            return Ok(());
        }
        let (bytes, covered) = {
            let data = self.lock();
            (
                serde_json::to_vec(&*data)?,
                self.changes.load(Ordering::SeqCst),
            )
        };
        let path = self.dir.join("site.json");
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| SiteError::Io(std::io::Error::other(e.to_string())))??;
        self.saved.store(covered, Ordering::SeqCst);
        Ok(())
    }

    pub fn file_path(&self, attachment_id: &str) -> PathBuf {
        file_path(&self.dir, attachment_id)
    }

    pub fn preview_path(&self, attachment_id: &str) -> PathBuf {
        preview_path(&self.dir, attachment_id)
    }

    /// Bytes of a Media Manager file (by its storage key, never by a client-chosen name).
    pub fn media_path(&self, key: &str) -> PathBuf {
        self.dir.join("media").join(key)
    }

    /// A tus upload's bytes so far.
    pub fn tus_path(&self, upload_id: &str) -> PathBuf {
        self.dir.join("media").join("tus").join(upload_id)
    }
}

pub fn file_path(dir: &Path, attachment_id: &str) -> PathBuf {
    dir.join("files").join(attachment_id)
}

pub fn preview_path(dir: &Path, attachment_id: &str) -> PathBuf {
    dir.join("previews").join(format!("{attachment_id}.jpg"))
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SiteError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

pub fn now_iso() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
