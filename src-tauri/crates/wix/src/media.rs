//! Media Manager Files (`/site-media/v1`, spec §3): upload URLs (simple PUT and resumable tus
//! 1.0.0), import from a URL, descriptors, cursor-paged listing / search / trash, update, bulk
//! delete and restore, download links.
//!
//! The tus client is hand-written: the Rust tus clients on crates.io are unmaintained, and what
//! Wix needs is small (creation, PATCH from an offset, HEAD to resume) but must share the
//! engine's verified file body and its retry policy.

use std::time::Duration;

use attache_core::normalize::file_name_key;
use attache_core::retry::{retrying, Retry};
use attache_core::upload::{verified_range, UploadSource};
use futures::TryStreamExt;
use reqwest::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::{decode, error_from, is_transient, retry_after_of, WixClient};
use crate::error::WixError;

/// Media list and search pages hold at most 100 files.
pub const MEDIA_PAGE: u32 = 100;
/// Above this size the Media docs recommend the resumable (tus) upload.
pub const RESUMABLE_THRESHOLD: u64 = 10 * 1024 * 1024;
/// Bytes per PATCH: large enough for line rate, small enough that a cut costs little.
pub const TUS_CHUNK: u64 = 64 * 1024 * 1024;
/// Consecutive failed PATCH/HEAD rounds with no progress before a tus upload gives up.
const TUS_MAX_STALLS: u32 = 8;
const TUS_VERSION: &str = "1.0.0";

// ---- wire types ----

/// A Media Manager file (`FileDescriptor`). `sizeInBytes` is a string on the wire; enums stay
/// strings so a new value does not break decoding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileDescriptor {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub hash: Option<String>,
    #[serde(default)]
    pub size_in_bytes: Option<String>,
    #[serde(default)]
    pub private: Option<bool>,
    /// `IMAGE`, `VIDEO`, `AUDIO`, `DOCUMENT`, `VECTOR`, `ARCHIVE`, `MODEL3D`, `OTHER`, ...
    #[serde(default)]
    pub media_type: Option<String>,
    /// `READY`, `PENDING` or `FAILED`.
    #[serde(default)]
    pub operation_status: Option<String>,
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub created_date: Option<String>,
    #[serde(default)]
    pub updated_date: Option<String>,
    /// `OK`, or `DELETED` while in the trash bin.
    #[serde(default)]
    pub state: Option<String>,
}

impl FileDescriptor {
    pub fn size(&self) -> Option<u64> {
        self.size_in_bytes.as_deref()?.parse().ok()
    }
}

/// The body of both upload-URL calls (`generate-upload-url`, `generate-resumable-upload-url`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateFileUploadUrlRequest {
    pub mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// int64 travels as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_in_bytes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_protocol: Option<String>,
}

impl GenerateFileUploadUrlRequest {
    /// The request for uploading `source` (its type, name and size) into `folder` (default:
    /// the media root).
    pub fn for_file(source: &UploadSource, folder: Option<&str>) -> Self {
        Self {
            mime_type: source.mime_type.clone(),
            file_name: Some(source.file_name.clone()),
            size_in_bytes: Some(source.size.to_string()),
            parent_folder_id: folder.map(str::to_owned),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadUrl {
    pub upload_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumableUploadUrl {
    #[serde(default)]
    pub upload_protocol: Option<String>,
    pub upload_url: String,
    /// Single use, up to 2000 characters.
    pub upload_token: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportFileRequest {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_folder_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct FileEnvelope {
    file: FileDescriptor,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FilesEnvelope {
    #[serde(default)]
    files: Vec<FileDescriptor>,
}

/// What to list: the filters `listFiles` / `listDeletedFiles` take as query keys and
/// `searchFiles` in its body.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub parent_folder_id: Option<String>,
    pub media_types: Vec<String>,
    pub private: Option<bool>,
    /// `displayName`, `updatedDate` or `sizeInBytes`.
    pub sort_field: Option<String>,
    /// `ASC` or `DESC`.
    pub sort_order: Option<String>,
}

/// One page of files and the cursor of the next (`nextCursor.cursors.next`; absent on the last).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilePage {
    #[serde(default)]
    pub files: Vec<FileDescriptor>,
    #[serde(default)]
    pub next_cursor: Option<NextCursor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NextCursor {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cursors {
    #[serde(default)]
    pub next: Option<String>,
}

impl FilePage {
    pub fn next(&self) -> Option<&str> {
        self.next_cursor
            .as_ref()?
            .cursors
            .as_ref()?
            .next
            .as_deref()
            .filter(|c| !c.is_empty())
    }
}

/// Where a listing looks.
#[derive(Debug, Clone)]
pub enum FileListing {
    /// `GET /site-media/v1/files`.
    Files(FileFilter),
    /// `GET /site-media/v1/trash-bin/files`.
    Trash(FileFilter),
    /// `POST /site-media/v1/files/search` by display name, in the media root or the trash.
    Search {
        text: String,
        trash: bool,
        filter: FileFilter,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrl {
    pub url: String,
    #[serde(default)]
    pub asset_key: Option<String>,
}

/// A resumable upload's progress as the server knows it: enough to continue after the
/// connection drops or the app restarts (persist it next to the job).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TusSession {
    pub upload_url: String,
    pub upload_token: String,
    /// The tus upload's URL (creation's `Location`, resolved); `None` until created.
    pub location: Option<String>,
    pub length: u64,
    /// Ids of same-name, same-size files that existed before this upload began (see
    /// [`WixClient::media_baseline`]): if the finalise's answer is lost, the new one is ours.
    #[serde(default)]
    pub baseline: Vec<String>,
}

// ---- calls ----

impl WixClient {
    /// `POST /site-media/v1/files/generate-upload-url`.
    pub async fn generate_file_upload_url(
        &self,
        request: &GenerateFileUploadUrlRequest,
    ) -> Result<UploadUrl, WixError> {
        self.call(
            Method::POST,
            "site-media/v1/files/generate-upload-url",
            &[],
            Some(request),
        )
        .await
    }

    /// `POST /site-media/v1/files/generate-resumable-upload-url` (`uploadProtocol: TUS`).
    pub async fn generate_resumable_upload_url(
        &self,
        request: &GenerateFileUploadUrlRequest,
    ) -> Result<ResumableUploadUrl, WixError> {
        let mut request = request.clone();
        request.upload_protocol = Some("TUS".into());
        self.call(
            Method::POST,
            "site-media/v1/files/generate-resumable-upload-url",
            &[],
            Some(&request),
        )
        .await
    }

    /// `POST /site-media/v1/files/import`: Wix fetches the URL itself; the answer is usually
    /// `PENDING` (poll [`WixClient::get_file`]).
    pub async fn import_file(
        &self,
        request: &ImportFileRequest,
    ) -> Result<FileDescriptor, WixError> {
        let env: FileEnvelope = self
            .call(
                Method::POST,
                "site-media/v1/files/import",
                &[],
                Some(request),
            )
            .await?;
        Ok(env.file)
    }

    /// `GET /site-media/v1/files/get-file-by-id?fileId=` (a media id or a `wix:` URI).
    pub async fn get_file(&self, file_id: &str) -> Result<FileDescriptor, WixError> {
        let env: FileEnvelope = self
            .call(
                Method::GET,
                "site-media/v1/files/get-file-by-id",
                &[("fileId", file_id.to_owned())],
                None::<&()>,
            )
            .await?;
        Ok(env.file)
    }

    /// `POST /site-media/v1/files/get-files` (1 to 100 ids).
    pub async fn get_files(&self, file_ids: &[String]) -> Result<Vec<FileDescriptor>, WixError> {
        let env: FilesEnvelope = self
            .call(
                Method::POST,
                "site-media/v1/files/get-files",
                &[],
                Some(&serde_json::json!({ "fileIds": file_ids })),
            )
            .await?;
        Ok(env.files)
    }

    /// One page of a listing; `cursor` is the previous page's [`FilePage::next`].
    pub async fn list_files_page(
        &self,
        listing: &FileListing,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<FilePage, WixError> {
        let limit = limit.clamp(1, MEDIA_PAGE);
        match listing {
            FileListing::Files(filter) | FileListing::Trash(filter) => {
                let path = match listing {
                    FileListing::Trash(_) => "site-media/v1/trash-bin/files",
                    _ => "site-media/v1/files",
                };
                let mut query: Vec<(&str, String)> = Vec::new();
                if let Some(p) = &filter.parent_folder_id {
                    query.push(("parentFolderId", p.clone()));
                }
                for t in &filter.media_types {
                    query.push(("mediaTypes", t.clone()));
                }
                if let Some(p) = filter.private {
                    query.push(("private", p.to_string()));
                }
                if let Some(f) = &filter.sort_field {
                    query.push(("sort.fieldName", f.clone()));
                    query.push((
                        "sort.order",
                        filter.sort_order.clone().unwrap_or_else(|| "ASC".into()),
                    ));
                }
                query.push(("paging.limit", limit.to_string()));
                if let Some(c) = cursor {
                    query.push(("paging.cursor", c.to_owned()));
                }
                self.call(Method::GET, path, &query, None::<&()>).await
            }
            FileListing::Search {
                text,
                trash,
                filter,
            } => {
                let mut body = serde_json::json!({
                    "search": text,
                    "rootFolder": if *trash { "TRASH_ROOT" } else { "MEDIA_ROOT" },
                    "paging": {"limit": limit},
                });
                if !filter.media_types.is_empty() {
                    body["mediaTypes"] = serde_json::json!(filter.media_types);
                }
                if let Some(p) = filter.private {
                    body["private"] = serde_json::json!(p);
                }
                if let Some(f) = &filter.sort_field {
                    body["sort"] = serde_json::json!({
                        "fieldName": f,
                        "order": filter.sort_order.clone().unwrap_or_else(|| "ASC".into()),
                    });
                }
                if let Some(c) = cursor {
                    body["paging"]["cursor"] = serde_json::json!(c);
                }
                self.call(Method::POST, "site-media/v1/files/search", &[], Some(&body))
                    .await
            }
        }
    }

    /// A whole listing as an async stream, page by page (a page is fetched only when the
    /// consumer reaches it; the last page has no next cursor).
    pub fn files_stream<'a>(
        &'a self,
        listing: &'a FileListing,
        page_size: u32,
    ) -> impl futures::Stream<Item = Result<FileDescriptor, WixError>> + Send + 'a {
        futures::stream::try_unfold(Some(None::<String>), move |cursor| async move {
            let Some(cursor) = cursor else {
                return Ok::<_, WixError>(None);
            };
            let page = self
                .list_files_page(listing, page_size, cursor.as_deref())
                .await?;
            // A repeated cursor would loop forever: stop instead.
            let next = page
                .next()
                .filter(|n| Some(*n) != cursor.as_deref())
                .map(str::to_owned);
            let more = next.filter(|_| !page.files.is_empty()).map(Some);
            let items = futures::stream::iter(page.files.into_iter().map(Ok));
            Ok(Some((items, more)))
        })
        .try_flatten()
    }

    /// `PATCH /site-media/v1/files/update-file-descriptor` (`file.id` in the body).
    pub async fn update_file(
        &self,
        file_id: &str,
        display_name: Option<&str>,
        parent_folder_id: Option<&str>,
        labels: Option<&[String]>,
    ) -> Result<FileDescriptor, WixError> {
        let mut file = serde_json::json!({ "id": file_id });
        if let Some(n) = display_name {
            file["displayName"] = n.into();
        }
        if let Some(p) = parent_folder_id {
            file["parentFolderId"] = p.into();
        }
        if let Some(l) = labels {
            file["labels"] = serde_json::json!(l);
        }
        let env: FileEnvelope = self
            .call(
                Method::PATCH,
                "site-media/v1/files/update-file-descriptor",
                &[],
                Some(&serde_json::json!({ "file": file })),
            )
            .await?;
        Ok(env.file)
    }

    /// `POST /site-media/v1/bulk/files/delete`: to the trash bin, or for good with `permanent`.
    pub async fn delete_files(&self, file_ids: &[String], permanent: bool) -> Result<(), WixError> {
        let body = serde_json::json!({ "fileIds": file_ids, "permanent": permanent });
        let _: serde_json::Value = self
            .call(
                Method::POST,
                "site-media/v1/bulk/files/delete",
                &[],
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// `POST /site-media/v1/bulk/trash-bin/files/restore`.
    pub async fn restore_files(&self, file_ids: &[String]) -> Result<(), WixError> {
        let body = serde_json::json!({ "fileIds": file_ids });
        let _: serde_json::Value = self
            .call(
                Method::POST,
                "site-media/v1/bulk/trash-bin/files/restore",
                &[],
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// `POST /site-media/v1/files/generate-file-download-url`: signed links to one file.
    pub async fn file_download_urls(
        &self,
        file_id: &str,
        download_file_name: Option<&str>,
        expiration_in_minutes: Option<u32>,
    ) -> Result<Vec<DownloadUrl>, WixError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default)]
            download_urls: Vec<DownloadUrl>,
        }
        let mut body = serde_json::json!({ "fileId": file_id });
        if let Some(n) = download_file_name {
            body["downloadFileName"] = n.into();
        }
        if let Some(m) = expiration_in_minutes {
            body["expirationInMinutes"] = m.into();
        }
        let a: Answer = self
            .call(
                Method::POST,
                "site-media/v1/files/generate-file-download-url",
                &[],
                Some(&body),
            )
            .await?;
        Ok(a.download_urls)
    }

    /// `POST /site-media/v1/files/generate-download-url`: one link to a zip of the files.
    pub async fn zip_download_url(&self, file_ids: &[String]) -> Result<String, WixError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            download_url: String,
        }
        let a: Answer = self
            .call(
                Method::POST,
                "site-media/v1/files/generate-download-url",
                &[],
                Some(&serde_json::json!({ "fileIds": file_ids })),
            )
            .await?;
        Ok(a.download_url)
    }

    // ---- uploads ----

    /// The whole upload of one file to the Media Manager: the simple PUT for files up to
    /// [`RESUMABLE_THRESHOLD`], tus above it. `folder` defaults to the media root.
    pub async fn upload_media(
        &self,
        source: &UploadSource,
        folder: Option<&str>,
    ) -> Result<FileDescriptor, WixError> {
        let request = GenerateFileUploadUrlRequest::for_file(source, folder);
        // Files of this name and size that exist already: after an answer lost in transit,
        // a new one among them is ours (so a retry never makes a second copy).
        let baseline = self.media_baseline(source).await?;
        if source.size > RESUMABLE_THRESHOLD {
            let url = self.generate_resumable_upload_url(&request).await?;
            let mut session = TusSession::new(&url, source.size);
            session.baseline = baseline;
            return self.tus_upload(&mut session, source, |_| {}).await;
        }
        // Each attempt gets a fresh URL; a failure to get one is final here (the call that
        // asks for it has already been retried).
        let url_refused = std::cell::Cell::new(false);
        retrying(
            self.retry_policy(),
            |_| async {
                let url = self
                    .generate_file_upload_url(&request)
                    .await
                    .inspect_err(|_| url_refused.set(true))?;
                let err = match self.put_media(&url.upload_url, source).await {
                    Ok(file) => return Ok(file),
                    Err(e) => e,
                };
                // Stored but unanswered (5xx after the commit, a dropped connection): look first.
                if is_transient(&err) && !source.progress.file_changed() {
                    if let Some(file) = self.find_new_copy(source, &baseline).await? {
                        return Ok(file);
                    }
                }
                Err(err)
            },
            |err, _| {
                // An expired or spent URL is worth a fresh one; other refusals are final.
                let fresh_url_helps = matches!(err.status(), Some(403) | Some(404) | Some(429));
                if url_refused.get()
                    || source.progress.file_changed()
                    || !(is_transient(err) || fresh_url_helps)
                {
                    return Retry::Stop;
                }
                tracing::debug!(error = %err, "media upload: trying again with a new URL");
                Retry::Again {
                    retry_after: retry_after_of(err),
                }
            },
        )
        .await
    }

    /// Ids of the files already named like `source` with its size.
    pub async fn media_baseline(&self, source: &UploadSource) -> Result<Vec<String>, WixError> {
        Ok(self
            .same_name_and_size(source)
            .await?
            .into_iter()
            .map(|f| f.id)
            .collect())
    }

    async fn same_name_and_size(
        &self,
        source: &UploadSource,
    ) -> Result<Vec<FileDescriptor>, WixError> {
        let listing = FileListing::Search {
            text: source.file_name.clone(),
            trash: false,
            filter: FileFilter::default(),
        };
        let found: Vec<FileDescriptor> = self
            .files_stream(&listing, MEDIA_PAGE)
            .try_collect()
            .await?;
        Ok(found
            .into_iter()
            .filter(|f| {
                // The name as Wix may have tidied it (normalised, characters replaced).
                f.display_name.as_deref().map(file_name_key)
                    == Some(file_name_key(&source.file_name))
                    && f.size() == Some(source.size)
            })
            .collect())
    }

    /// A file named like `source`, of its size, that was not there before the upload began.
    async fn find_new_copy(
        &self,
        source: &UploadSource,
        baseline: &[String],
    ) -> Result<Option<FileDescriptor>, WixError> {
        Ok(self
            .same_name_and_size(source)
            .await?
            .into_iter()
            .find(|f| !baseline.contains(&f.id)))
    }

    /// The simple upload: `PUT <uploadUrl>?filename=` with the raw bytes (no Authorization).
    pub async fn put_media(
        &self,
        upload_url: &str,
        source: &UploadSource,
    ) -> Result<FileDescriptor, WixError> {
        let mut url = Url::parse(upload_url)
            .map_err(|_| WixError::Decode(format!("bad upload URL {upload_url:?}")))?;
        url.query_pairs_mut()
            .append_pair("filename", &source.file_name);
        let resp = self.put_file(url, source).await?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let env: FileEnvelope = decode(resp).await?;
        Ok(env.file)
    }

    /// Sends `source` through tus 1.0.0, from wherever `session` stands: creates the upload if
    /// needed, asks the server's offset (HEAD) before sending, PATCHes in [`TUS_CHUNK`]s, and
    /// after a failure asks again and continues from the server's offset, so no byte is sent
    /// twice on purpose and none is skipped. `saved` is called whenever the session changes
    /// (persist it to resume after a restart). Finishes with the finalising
    /// `PUT {uploadUrl}/{uploadToken}?filename=`.
    pub async fn tus_upload(
        &self,
        session: &mut TusSession,
        source: &UploadSource,
        saved: impl FnMut(&TusSession),
    ) -> Result<FileDescriptor, WixError> {
        self.tus_transfer(session, source, saved).await?;
        self.tus_finalise(session, source).await
    }

    /// The tus part alone (creation, HEAD, PATCH until every byte is on the server), which
    /// any tus 1.0.0 server accepts; Wix then needs [`WixClient::tus_upload`]'s finalise.
    pub async fn tus_transfer(
        &self,
        session: &mut TusSession,
        source: &UploadSource,
        mut saved: impl FnMut(&TusSession),
    ) -> Result<(), WixError> {
        if session.length != source.size {
            return Err(WixError::Decode(format!(
                "the resumable upload was made for {} bytes, the file has {}",
                session.length, source.size
            )));
        }
        let mut stalls = 0u32;
        let mut reached = 0u64;
        loop {
            let before = reached;
            let round = self
                .tus_round(session, source, &mut saved, &mut reached)
                .await;
            let err = match round {
                Ok(()) => break,
                Err(e) => e,
            };
            if source.progress.file_changed() {
                return Err(err);
            }
            // Only rounds that moved nothing count towards giving up.
            stalls = if reached > before { 0 } else { stalls + 1 };
            if err.status() == Some(404) && session.location.is_some() {
                // The upload host forgot the upload (e.g. it restarted): start it again.
                session.location = None;
                reached = 0;
                saved(session);
            } else if !(is_transient(&err) || err.status() == Some(409)) {
                return Err(err);
            }
            if stalls >= TUS_MAX_STALLS {
                return Err(err);
            }
            let wait = self.retry_policy().delay(stalls.max(1), None);
            tracing::debug!(error = %err, ?wait, reached, "tus: resuming after a failure");
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// One attempt: create the upload if needed, ask the server's offset, PATCH to the end.
    /// `reached` records the highest offset the server confirmed.
    async fn tus_round(
        &self,
        session: &mut TusSession,
        source: &UploadSource,
        saved: &mut impl FnMut(&TusSession),
        reached: &mut u64,
    ) -> Result<(), WixError> {
        let location = match &session.location {
            Some(l) => l.clone(),
            None => {
                let l = self.tus_create(session, source).await?;
                session.location = Some(l.clone());
                saved(session);
                l
            }
        };
        let mut offset = self.tus_offset(&location).await?;
        *reached = (*reached).max(offset);
        source.progress.restart_at(offset);
        while offset < session.length {
            let len = (session.length - offset).min(TUS_CHUNK);
            offset = self.tus_patch(&location, source, offset, len).await?;
            *reached = (*reached).max(offset);
        }
        Ok(())
    }

    /// tus creation: `POST <uploadUrl>` with the length and the metadata Wix reads
    /// (`filename`, `contentType`, `token`); returns the upload's URL.
    async fn tus_create(
        &self,
        session: &TusSession,
        source: &UploadSource,
    ) -> Result<String, WixError> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let metadata = format!(
            "filename {},contentType {},token {}",
            b64(&source.file_name),
            b64(&source.mime_type),
            b64(&session.upload_token)
        );
        let base = Url::parse(&session.upload_url)
            .map_err(|_| WixError::Decode(format!("bad upload URL {:?}", session.upload_url)))?;
        let resp = self
            .http()
            .post(base.clone())
            .timeout(Duration::from_secs(30))
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Length", session.length)
            .header("Upload-Metadata", metadata)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if resp.status() != StatusCode::CREATED {
            return Err(error_from(resp).await);
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| WixError::Decode("tus creation answered without Location".into()))?;
        // Location may be relative: resolve it against the upload URL.
        base.join(location)
            .map(String::from)
            .map_err(|_| WixError::Decode(format!("bad tus Location {location:?}")))
    }

    /// `HEAD <location>`: how many bytes the server holds.
    async fn tus_offset(&self, location: &str) -> Result<u64, WixError> {
        let resp = self
            .http()
            .head(location)
            .timeout(Duration::from_secs(30))
            .header("Tus-Resumable", TUS_VERSION)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        upload_offset(resp.headers())
    }

    /// One `PATCH` of `len` bytes from `offset`; returns the server's new offset.
    async fn tus_patch(
        &self,
        location: &str,
        source: &UploadSource,
        offset: u64,
        len: u64,
    ) -> Result<u64, WixError> {
        let host = Url::parse(location)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "the upload host".into());
        let request = self
            .http()
            .patch(location)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Offset", offset)
            .header(header::CONTENT_TYPE, "application/offset+octet-stream")
            .header(header::CONTENT_LENGTH, len);
        let resp = attache_transport::send_body(
            request,
            verified_range(source, offset, len),
            len,
            attache_transport::STALL_TIMEOUT,
            &host,
        )
        .await?;
        if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let new = upload_offset(resp.headers())?;
        if new <= offset {
            return Err(WixError::Decode(format!(
                "the upload host accepted nothing (offset stayed at {offset})"
            )));
        }
        Ok(new)
    }

    /// `PUT {uploadUrl}/{uploadToken}?filename=` once every byte is there.
    async fn tus_finalise(
        &self,
        session: &TusSession,
        source: &UploadSource,
    ) -> Result<FileDescriptor, WixError> {
        let mut url = Url::parse(&format!(
            "{}/{}",
            session.upload_url.trim_end_matches('/'),
            session.upload_token
        ))
        .map_err(|_| WixError::Decode("bad upload URL or token".into()))?;
        url.query_pairs_mut()
            .append_pair("filename", &source.file_name);
        retrying(
            self.retry_policy(),
            |attempt| {
                let url = url.clone();
                async move {
                    let sent = self
                        .http()
                        .put(url)
                        .timeout(Duration::from_secs(60))
                        .header(header::CONTENT_TYPE, "application/json")
                        .body("{}")
                        .send()
                        .await;
                    let err = match sent {
                        Ok(resp) if resp.status().is_success() => {
                            let env: FileEnvelope = decode(resp).await?;
                            return Ok(env.file);
                        }
                        Ok(resp) => error_from(resp).await,
                        Err(e) => self.transport(&e),
                    };
                    // The token is single use: "already used" after an attempt whose answer
                    // was lost means that attempt made the file. Find it rather than fail an
                    // upload that worked.
                    if attempt > 1 && err.status() == Some(429) {
                        if let Some(file) = self.find_new_copy(source, &session.baseline).await? {
                            return Ok(file);
                        }
                    }
                    Err(err)
                }
            },
            |err, _| match is_transient(err) {
                true => Retry::Again {
                    retry_after: retry_after_of(err),
                },
                false => Retry::Stop,
            },
        )
        .await
    }
}

impl TusSession {
    pub fn new(url: &ResumableUploadUrl, length: u64) -> Self {
        Self {
            upload_url: url.upload_url.clone(),
            upload_token: url.upload_token.clone(),
            location: None,
            length,
            baseline: Vec::new(),
        }
    }
}

fn upload_offset(headers: &header::HeaderMap) -> Result<u64, WixError> {
    headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| WixError::Decode("the upload host sent no Upload-Offset".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_decode_the_wire_shape_and_tolerate_novelty() {
        let f: FileDescriptor = serde_json::from_value(serde_json::json!({
            "id": "2acbb8_86~mv2.jpeg", "displayName": "file.jpg", "sizeInBytes": "15359",
            "mediaType": "HOLOGRAM", "operationStatus": "READY", "state": "OK",
            "media": {"image": {"image": {"width": 3}}}, "somethingNew": 1
        }))
        .unwrap();
        assert_eq!(f.size(), Some(15359));
        assert_eq!(f.media_type.as_deref(), Some("HOLOGRAM"));
    }

    #[test]
    fn the_last_page_has_no_next_cursor() {
        let p: FilePage = serde_json::from_value(
            serde_json::json!({"files": [], "nextCursor": {"cursors": {"next": null}}}),
        )
        .unwrap();
        assert_eq!(p.next(), None);
        let p: FilePage = serde_json::from_value(
            serde_json::json!({"files": [], "nextCursor": {"cursors": {"next": "abc"}, "total": 3}}),
        )
        .unwrap();
        assert_eq!(p.next(), Some("abc"));
    }

    #[test]
    fn upload_url_request_sends_size_as_a_string() {
        let r = GenerateFileUploadUrlRequest {
            mime_type: "application/pdf".into(),
            size_in_bytes: Some("12".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"mimeType": "application/pdf", "sizeInBytes": "12"})
        );
    }
}
