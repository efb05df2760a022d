//! The site's Media Manager (Wix accounts only): what `attache media ls|upload|rm|restore|link`
//! does. Files are checked before any network call like attachments are, and large ones go
//! through the resumable tus upload, whose progress is kept on disk so a second run after an
//! interruption continues from the server's offset instead of starting again (the session
//! lives in the durable upload queue's SQLite file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use attache_core::upload::{Rejection, UploadRules, UploadSource};
use attache_wix::media::{
    FileDescriptor, FileFilter, FileListing, GenerateFileUploadUrlRequest, TusSession,
    RESUMABLE_THRESHOLD,
};
use attache_wix::WixClient;
use futures::TryStreamExt;
use serde::Serialize;

use crate::uploads::{inspect, ResumableKey, UploadQueue};
use crate::ServiceError;

/// What the Media Manager takes: anything but programs, up to the sandbox's tus limit (Wix's
/// own byte limits are UNCONFIRMED, spec §6).
struct MediaRules;

impl UploadRules for MediaRules {
    fn crm_name(&self) -> &str {
        "the Wix Media Manager"
    }
    fn accepts_mime(&self, mime: &str) -> bool {
        !matches!(
            mime,
            "application/x-msdownload"
                | "application/x-executable"
                | "application/x-sh"
                | "application/vnd.microsoft.portable-executable"
        )
    }
    fn max_upload_bytes(&self) -> u64 {
        4 << 30
    }
}

/// The outcome of one file of `attache media upload`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUploadOutcome {
    pub path: String,
    pub file: Option<FileDescriptor>,
    /// Whether the tus path carried it (and resumed a previous run's bytes when `resumed`).
    pub resumable: bool,
    pub resumed: bool,
    pub error: Option<String>,
}

/// The Media Manager room of a Wix account: listing, and uploads that resume across runs
/// (their tus sessions are kept in the durable upload queue).
pub struct Media {
    account: String,
    client: WixClient,
    queue: Arc<UploadQueue>,
}

impl Media {
    pub fn new(account: &str, client: WixClient, queue: Arc<UploadQueue>) -> Self {
        Self {
            account: account.to_owned(),
            client,
            queue,
        }
    }

    /// The Media Manager client, for what has no facade yet (trash, restore, links).
    pub fn client(&self) -> &WixClient {
        &self.client
    }

    /// Every file of a listing (media root, trash or a search), all pages.
    pub async fn files(&self, listing: &FileListing) -> Result<Vec<FileDescriptor>, ServiceError> {
        Ok(self
            .client
            .files_stream(listing, attache_wix::media::MEDIA_PAGE)
            .try_collect()
            .await
            .map_err(attache_core::BackendError::from)?)
    }

    /// Uploads files to the Media Manager one after another (each is checked first; a bad
    /// one is reported and the rest go on).
    pub async fn upload(
        &self,
        paths: &[PathBuf],
        folder: Option<&str>,
    ) -> Result<Vec<MediaUploadOutcome>, ServiceError> {
        let client = &self.client;
        let mut out = Vec::new();
        for path in paths {
            let outcome = match self.media_upload_one(client, path, folder).await {
                Ok((file, resumable, resumed)) => MediaUploadOutcome {
                    path: path.display().to_string(),
                    file: Some(file),
                    resumable,
                    resumed,
                    error: None,
                },
                Err(e) => MediaUploadOutcome {
                    path: path.display().to_string(),
                    file: None,
                    resumable: false,
                    resumed: false,
                    error: Some(e.to_string()),
                },
            };
            out.push(outcome);
        }
        Ok(out)
    }

    async fn media_upload_one(
        &self,
        client: &WixClient,
        path: &Path,
        folder: Option<&str>,
    ) -> Result<(FileDescriptor, bool, bool), ServiceError> {
        let owned = path.to_path_buf();
        let checked = tokio::task::spawn_blocking(move || inspect(&owned, &MediaRules))
            .await
            .map_err(|e| ServiceError::Io(std::io::Error::other(e.to_string())))?
            .map_err(|r: Rejection| ServiceError::Invalid(r.message))?;
        let source = UploadSource {
            path: checked.path.clone(),
            file_name: checked.file_name.clone(),
            mime_type: checked.mime_type.clone(),
            size: checked.size,
            modified_ns: checked.modified_ns,
            content_hash: checked.content_hash.clone(),
            progress: Arc::default(),
        };

        let backend = |e| ServiceError::Backend(attache_core::BackendError::from(e));
        if source.size <= RESUMABLE_THRESHOLD {
            let file = client
                .upload_media(&source, folder)
                .await
                .map_err(backend)?;
            return Ok((file, false, false));
        }
        // The same content from the same place, still unfinished: continue that upload.
        let key = ResumableKey {
            account: self.account.clone(),
            content_hash: source.content_hash.clone(),
            path: source.path.display().to_string(),
            folder: folder.unwrap_or_default().to_owned(),
        };
        let previous = self
            .queue
            .resumable(&key, source.size, source.modified_ns)?
            .and_then(|json| serde_json::from_str::<TusSession>(&json).ok());
        let resumed = previous.is_some();
        let mut session = match previous {
            Some(s) => s,
            None => {
                let request = GenerateFileUploadUrlRequest::for_file(&source, folder);
                let url = client
                    .generate_resumable_upload_url(&request)
                    .await
                    .map_err(backend)?;
                let mut session = TusSession::new(&url, source.size);
                session.baseline = client.media_baseline(&source).await.map_err(backend)?;
                session
            }
        };
        let queue = self.queue.clone();
        let save = |session: &TusSession| {
            let saved = serde_json::to_string(session)
                .map_err(|e| e.to_string())
                .and_then(|json| {
                    queue
                        .save_resumable(&key, source.size, source.modified_ns, &json)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = saved {
                tracing::warn!("could not save the resumable upload's state: {e}");
            }
        };
        save(&session);
        let result = client.tus_upload(&mut session, &source, save).await;
        match result {
            Ok(file) => {
                self.queue.forget_resumable(&key)?;
                Ok((file, true, resumed))
            }
            Err(e) => {
                // A token the host no longer knows cannot be resumed: start fresh next time.
                if matches!(e.status(), Some(404) | Some(429)) {
                    self.queue.forget_resumable(&key)?;
                }
                Err(backend(e))
            }
        }
    }
}

/// `--trash` / `--search` to a listing.
pub fn listing(search: Option<String>, trash: bool, folder: Option<String>) -> FileListing {
    let filter = FileFilter {
        parent_folder_id: folder,
        sort_field: Some("displayName".into()),
        sort_order: Some("ASC".into()),
        ..Default::default()
    };
    match (search, trash) {
        (Some(text), trash) => FileListing::Search {
            text,
            trash,
            filter: FileFilter {
                parent_folder_id: None,
                ..filter
            },
        },
        (None, true) => FileListing::Trash(filter),
        (None, false) => FileListing::Files(filter),
    }
}
