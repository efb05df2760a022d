//! The Media Manager Files API (`/site-media/v1`, spec §3) and its upload hosts: the simple
//! upload URL (one PUT), and a real tus 1.0.0 endpoint for resumable uploads (creation, HEAD,
//! PATCH, then the finalising `PUT {uploadUrl}/{uploadToken}?filename=`).
//!
//! Strict where the spec leaves room: `sizeInBytes` is a string, paging is cursor-only with at
//! most 100 per page, `update-file-descriptor` is a PATCH on a fixed path with `file.id` in the
//! body, validation failures carry the documented `ruleName`s, and upload tokens are single use.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::api::{origin, serve_file, urlencode, Shared};
use crate::errors::ApiError;
use crate::faults::Faults;
use crate::site;

/// The largest file the sandbox takes through the simple upload URL and through tus.
const MAX_SIMPLE_BYTES: u64 = 1 << 30;
const MAX_TUS_BYTES: u64 = 4 << 30;
const PAGE_MAX: usize = 100;
const PAGE_DEFAULT: usize = 50;
/// Display names: the docs' object page says 200 (the SDK 255); the sandbox holds to 200.
const DISPLAY_NAME_MAX: usize = 200;
const BULK_MAX: usize = 1000;
const GET_MANY_MAX: usize = 100;
const MEDIA_ROOT: &str = "media-root";

/// A file in the site's Media Manager, as stored in `site.json`; its bytes are under
/// `media/<key>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMediaFile {
    /// The wire id: `<site prefix>_<key>~mv2.<ext>`.
    pub id: String,
    pub key: String,
    pub display_name: String,
    pub mime_type: String,
    pub parent_folder_id: String,
    pub size_bytes: u64,
    pub hash: String,
    pub private: bool,
    pub labels: Vec<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `READY`, `PENDING` (an import still fetching) or `FAILED`.
    pub operation_status: String,
    /// `OK`, or `DELETED` while in the trash bin.
    pub state: String,
    pub source_url: Option<String>,
    pub created_date: String,
    pub updated_date: String,
}

/// What a generated upload URL (simple or resumable) will create.
#[derive(Debug, Clone)]
struct PendingMedia {
    mime_type: String,
    file_name: Option<String>,
    parent_folder_id: String,
    private: bool,
    labels: Vec<String>,
    declared_size: Option<u64>,
    created_ms: u64,
    resumable: bool,
}

/// One tus upload in progress: bytes so far in `media/tus/<id>`.
#[derive(Debug, Clone)]
struct TusUpload {
    token: String,
    length: u64,
    offset: u64,
    file_name: String,
    content_type: Option<String>,
    /// A PATCH is being applied; a second one at the same time is refused (409).
    busy: bool,
}

/// Media state that lives in memory only, like a real upload host's short-lived tokens.
#[derive(Default)]
pub struct MediaHosts {
    pending: Mutex<HashMap<String, PendingMedia>>,
    spent: Mutex<std::collections::HashSet<String>>,
    tus: Mutex<HashMap<String, TusUpload>>,
    /// Download tokens: token → (file keys, expiry in ms since the epoch, name, disposition).
    downloads: Mutex<HashMap<String, Download>>,
}

#[derive(Debug, Clone)]
struct Download {
    keys: Vec<String>,
    expires_ms: u64,
    name: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The API (behind the API-key check).
pub fn api_router() -> Router<Shared> {
    Router::new()
        .route(
            "/site-media/v1/files/generate-upload-url",
            post(generate_upload_url),
        )
        .route(
            "/site-media/v1/files/generate-resumable-upload-url",
            post(generate_resumable_upload_url),
        )
        .route("/site-media/v1/files/import", post(import_file))
        .route("/site-media/v1/files/get-file-by-id", get(get_file))
        .route("/site-media/v1/files/get-files", post(get_files))
        .route("/site-media/v1/files", get(list_files))
        .route("/site-media/v1/files/search", post(search_files))
        .route("/site-media/v1/trash-bin/files", get(list_deleted_files))
        .route(
            "/site-media/v1/files/update-file-descriptor",
            axum::routing::patch(update_file),
        )
        .route("/site-media/v1/bulk/files/delete", post(bulk_delete))
        .route(
            "/site-media/v1/bulk/trash-bin/files/restore",
            post(bulk_restore),
        )
        .route(
            "/site-media/v1/files/generate-file-download-url",
            post(file_download_url),
        )
        .route(
            "/site-media/v1/files/generate-download-url",
            post(zip_download_url),
        )
}

/// The upload and download hosts (tokens in the URL, no Authorization).
pub fn host_router() -> Router<Shared> {
    Router::new()
        .route("/_upload/media/{token}", axum::routing::put(simple_upload))
        .route("/_tus/media", post(tus_create).options(tus_options))
        .route(
            "/_tus/media/{id}",
            axum::routing::head(tus_head)
                .patch(tus_patch)
                .put(tus_finalise)
                .options(tus_options),
        )
        .route("/_files/media/{key}/{name}", get(serve_media))
        .route("/_download/media/{token}", get(serve_download))
}

// ---------------------------------------------------------------------------------------------
// Descriptors

fn media_type(mime: &str) -> &'static str {
    let mime = mime.to_ascii_lowercase();
    match mime.as_str() {
        "image/svg+xml" => "VECTOR",
        m if m.starts_with("image/") => "IMAGE",
        m if m.starts_with("video/") => "VIDEO",
        m if m.starts_with("audio/") => "AUDIO",
        "application/zip"
        | "application/x-zip-compressed"
        | "application/x-rar-compressed"
        | "application/x-7z-compressed"
        | "application/gzip" => "ARCHIVE",
        "model/gltf-binary" | "model/gltf+json" => "MODEL3D",
        m if m == "application/pdf"
            || m.starts_with("text/")
            || m.starts_with("application/msword")
            || m.starts_with("application/vnd.ms-")
            || m.starts_with("application/vnd.openxmlformats-officedocument") =>
        {
            "DOCUMENT"
        }
        _ => "OTHER",
    }
}

/// Types the Media Manager refuses (`UNSUPPORTED_FILE_FORMAT`): programs and scripts.
fn format_refused(mime: &str) -> bool {
    const REFUSED: &[&str] = &[
        "application/x-msdownload",
        "application/x-executable",
        "application/x-sh",
        "application/x-msi",
        "application/vnd.microsoft.portable-executable",
        "application/java-archive",
    ];
    REFUSED.contains(&mime.trim().to_ascii_lowercase().as_str())
}

pub(crate) fn descriptor(f: &StoredMediaFile, origin: &str, site_id: &str) -> Value {
    let url = format!(
        "{origin}/_files/media/{}/{}",
        f.key,
        urlencode(&f.display_name)
    );
    let kind = media_type(&f.mime_type);
    let media = match kind {
        "IMAGE" | "VECTOR" => json!({"image": {"image": {
            "id": f.id, "url": url, "height": f.height, "width": f.width,
            "filename": f.display_name, "sizeInBytes": f.size_bytes.to_string()},
            "faces": [], "caption": null}}),
        "ARCHIVE" => json!({"archive": {"id": f.id, "url": url,
            "sizeInBytes": f.size_bytes.to_string(), "filename": f.display_name}}),
        "DOCUMENT" => json!({"document": {"id": f.id, "url": url, "filename": f.display_name}}),
        _ => json!({}),
    };
    json!({
        "id": f.id,
        "displayName": f.display_name,
        "url": url,
        "parentFolderId": f.parent_folder_id,
        "hash": f.hash,
        "sizeInBytes": f.size_bytes.to_string(),
        "private": f.private,
        "mediaType": kind,
        "media": media,
        "operationStatus": f.operation_status,
        "sourceUrl": f.source_url,
        "thumbnailUrl": if kind == "IMAGE" { Value::String(url.clone()) } else { Value::Null },
        "labels": f.labels,
        "createdDate": f.created_date,
        "updatedDate": f.updated_date,
        "siteId": site_id,
        "state": f.state,
    })
}

/// `{"file": FileDescriptor}`, the answer of uploads, import, get and update.
fn file_answer(state: &Shared, headers: &HeaderMap, file: &StoredMediaFile) -> Response {
    Json(json!({"file": descriptor(file, &origin(headers), &state.config.site_id)})).into_response()
}

/// `rule` in `ruleName`, the key the Media API documents for its validation failures.
fn rule(field: &str, description: impl Into<String>, rule_name: &str) -> ApiError {
    ApiError::field_rule(field, description, rule_name)
}

/// A stored file by wire id (trashed ones included), or the 404 Wix answers.
fn find_file<'a>(files: &'a [StoredMediaFile], id: &str) -> Result<&'a StoredMediaFile, ApiError> {
    files
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("RESOURCE_NOT_FOUND", format!("File {id} not found"))
}

/// Accepts the media id or the `wix:image://v1/<id>/<name>#…` form (spec §3).
fn normalise_id(id: &str) -> String {
    let id = id.trim();
    if let Some(rest) = id.strip_prefix("wix:") {
        if let Some((_, after)) = rest.split_once("://v1/") {
            return after
                .split(['/', '#'])
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    }
    id.to_owned()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::violation("body", format!("malformed JSON: {e}"), "FORMAT"))
}

// ---------------------------------------------------------------------------------------------
// Upload URLs

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UploadUrlRequest {
    mime_type: Option<String>,
    file_name: Option<String>,
    /// A string on the wire (int64 as JSON string).
    size_in_bytes: Option<Value>,
    parent_folder_id: Option<String>,
    private: Option<bool>,
    labels: Option<Vec<String>>,
    upload_protocol: Option<String>,
}

fn pending_from(req: UploadUrlRequest, resumable: bool) -> Result<PendingMedia, ApiError> {
    let mime_type = req.mime_type.unwrap_or_default().trim().to_owned();
    if mime_type.is_empty() {
        return Err(rule("mimeType", "is required", "REQUIRED_FIELD"));
    }
    if format_refused(&mime_type) {
        return Err(rule(
            "mimeType",
            format!("{mime_type} files are not supported"),
            "UNSUPPORTED_FILE_FORMAT",
        ));
    }
    let declared_size = match req.size_in_bytes {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse::<u64>()
                .map_err(|_| rule("sizeInBytes", "must be a whole number of bytes", "FORMAT"))?,
        ),
        // int64 travels as a JSON string; a bare number is what a hand-rolled client sends.
        Some(_) => return Err(rule("sizeInBytes", "must be a string (int64)", "FORMAT")),
    };
    let limit = if resumable {
        MAX_TUS_BYTES
    } else {
        MAX_SIMPLE_BYTES
    };
    match declared_size {
        Some(0) => return Err(rule("sizeInBytes", "the file is empty", "ZERO_FILE_SIZE")),
        Some(n) if n > limit => {
            return Err(rule(
                "sizeInBytes",
                format!("{n} bytes is over the {limit}-byte limit"),
                "FILE_SIZE_OVER_LIMIT",
            ))
        }
        _ => {}
    }
    if let Some(name) = &req.file_name {
        if name.chars().count() > DISPLAY_NAME_MAX {
            return Err(rule(
                "fileName",
                "must be at most 200 characters",
                "MAX_LENGTH",
            ));
        }
    }
    let labels = req.labels.unwrap_or_default();
    check_labels(&labels)?;
    Ok(PendingMedia {
        mime_type,
        file_name: req.file_name.filter(|n| !n.is_empty()),
        parent_folder_id: req
            .parent_folder_id
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| MEDIA_ROOT.into()),
        private: req.private.unwrap_or(false),
        labels,
        declared_size,
        created_ms: site::now_ms(),
        resumable,
    })
}

fn check_labels(labels: &[String]) -> Result<(), ApiError> {
    if labels.len() > 100 || labels.iter().any(|l| l.chars().count() > 200) {
        return Err(rule(
            "labels",
            "at most 100 labels of 200 characters",
            "MAX_LENGTH",
        ));
    }
    Ok(())
}

async fn generate_upload_url(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let pending = pending_from(parse_json(&body)?, false)?;
    let token = site::new_token();
    lock(&state.media.pending).insert(token.clone(), pending);
    let url = format!("{}/_upload/media/{token}", origin(&headers));
    Ok(Json(json!({ "uploadUrl": url })).into_response())
}

async fn generate_resumable_upload_url(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: UploadUrlRequest = parse_json(&body)?;
    match req.upload_protocol.as_deref() {
        Some("TUS") => {}
        other => {
            return Err(rule(
                "uploadProtocol",
                format!("must be TUS, not {other:?}"),
                "FORMAT",
            ))
        }
    }
    let pending = pending_from(req, true)?;
    let token = site::new_token();
    lock(&state.media.pending).insert(token.clone(), pending);
    Ok(Json(json!({
        "uploadProtocol": "TUS",
        "uploadUrl": format!("{}/_tus/media", origin(&headers)),
        "uploadToken": token,
    }))
    .into_response())
}

/// Takes a pending upload for good (single use), or says why it cannot be used.
fn claim(state: &Shared, token: &str, resumable: bool) -> Result<PendingMedia, ApiError> {
    if lock(&state.media.spent).contains(token) {
        return Err(ApiError::upload_url_spent());
    }
    let pending = lock(&state.media.pending)
        .get(token)
        .cloned()
        .filter(|p| p.resumable == resumable)
        .ok_or_else(|| {
            ApiError::not_found("UPLOAD_URL_NOT_FOUND", "Unknown or expired upload URL")
        })?;
    let faults = state.faults();
    let too_old = faults
        .upload_url_ttl_ms
        .is_some_and(|ttl| site::now_ms().saturating_sub(pending.created_ms) > ttl);
    // A resumable token lives as long as its upload; only simple URLs expire in the sandbox.
    if !resumable && (too_old || Faults::roll(faults.expired_url_rate)) {
        return Err(ApiError::application(
            StatusCode::FORBIDDEN,
            "UPLOAD_URL_EXPIRED",
            "This upload URL has expired",
        ));
    }
    Ok(pending)
}

fn no_authorization(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::application(
            StatusCode::BAD_REQUEST,
            "AUTHORIZATION_NOT_EXPECTED",
            "Upload URLs carry their own token; do not send Authorization",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct FileNameQuery {
    filename: Option<String>,
}

async fn simple_upload(
    State(state): State<Shared>,
    Path(token): Path<String>,
    Query(q): Query<FileNameQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pending = claim(&state, &token, false)?;
    no_authorization(&headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if content_type != pending.mime_type && content_type != "application/octet-stream" {
        return Err(rule(
            "Content-Type",
            format!("{content_type:?} does not match {}", pending.mime_type),
            "MISMATCH_MIME_TYPE",
        ));
    }
    let name = q
        .filename
        .or_else(|| pending.file_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| rule("filename", "a file name is required", "REQUIRED_FIELD"))?;
    let key = site::new_token();
    let part = state.site.media_path(&key).with_extension("part");
    let faults = state.faults();
    if Faults::roll(faults.reset_rate) {
        let mut stream = body.into_data_stream();
        let _ = stream.next().await;
        return Err(ApiError::application(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UPLOAD_INTERRUPTED",
            "connection reset",
        ));
    }
    let size = match receive(body, &part, MAX_SIMPLE_BYTES, false).await {
        Ok(0) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(rule("file", "the uploaded file is empty", "ZERO_FILE_SIZE"));
        }
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    // Single use: the first upload to finish takes the token.
    if lock(&state.media.pending).remove(&token).is_none() {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(ApiError::upload_url_spent());
    }
    lock(&state.media.spent).insert(token);
    let file = store(&state, &key, &part, &name, &pending, size).await?;
    if Faults::roll(faults.lost_response_rate) {
        return Err(ApiError::connection_lost());
    }
    Ok(file_answer(&state, &headers, &file))
}

/// Streams a body into `dest` (appending when `append`); returns the bytes written. Over
/// `limit` → 400 `FILE_SIZE_OVER_LIMIT`. A body cut off mid-way keeps what arrived when
/// appending (tus), and is an error otherwise.
async fn receive(
    body: Body,
    dest: &std::path::Path,
    limit: u64,
    append: bool,
) -> Result<u64, ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(dest)
        .await
        .map_err(|e| {
            tracing::error!("sandbox media create: {e}");
            ApiError::internal()
        })?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    let mut cut = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                cut = Some(e.to_string());
                break;
            }
        };
        if size + chunk.len() as u64 > limit {
            return Err(rule(
                "file",
                "the file is over the size limit",
                "FILE_SIZE_OVER_LIMIT",
            ));
        }
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| {
            tracing::error!("sandbox media write: {e}");
            ApiError::internal()
        })?;
    }
    file.sync_all().await.map_err(|_| ApiError::internal())?;
    match cut {
        Some(e) if !append => Err(ApiError::bad_request(
            "UPLOAD_INTERRUPTED",
            format!("upload body: {e}"),
        )),
        _ => Ok(size),
    }
}

/// Moves finished bytes into place and records the file (durably) before answering.
async fn store(
    state: &Shared,
    key: &str,
    part: &std::path::Path,
    name: &str,
    pending: &PendingMedia,
    size: u64,
) -> Result<StoredMediaFile, ApiError> {
    let dest = state.site.media_path(key);
    tokio::fs::rename(part, &dest).await.map_err(|e| {
        tracing::error!("sandbox media rename: {e}");
        ApiError::internal()
    })?;
    let (hash, dims) = {
        let dest = dest.clone();
        let image = pending.mime_type.starts_with("image/");
        tokio::task::spawn_blocking(move || {
            let hash = hash_file(&dest).unwrap_or_default();
            let dims = if image {
                image::ImageReader::open(&dest)
                    .ok()
                    .and_then(|r| r.with_guessed_format().ok())
                    .and_then(|r| r.into_dimensions().ok())
            } else {
                None
            };
            (hash, dims)
        })
        .await
        .unwrap_or_default()
    };
    let now = site::now_iso();
    let file = StoredMediaFile {
        id: media_id(&state.config.site_id, key, name, &pending.mime_type),
        key: key.to_owned(),
        display_name: name.to_owned(),
        mime_type: pending.mime_type.clone(),
        parent_folder_id: pending.parent_folder_id.clone(),
        size_bytes: size,
        hash,
        private: pending.private,
        labels: pending.labels.clone(),
        width: dims.map(|d| d.0),
        height: dims.map(|d| d.1),
        operation_status: "READY".into(),
        state: "OK".into(),
        source_url: None,
        created_date: now.clone(),
        updated_date: now,
    };
    let change = {
        let mut data = state.site.lock();
        data.media_files.push(file.clone());
        state.site.changed(&data)
    };
    state.site.commit(change).await?;
    Ok(file)
}

fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// `<site prefix>_<key>~mv2.<ext>`, the shape of Wix media ids.
fn media_id(site_id: &str, key: &str, name: &str, mime: &str) -> String {
    let prefix: String = site_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(6)
        .collect();
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| mime.rsplit('/').next().unwrap_or("bin").to_owned());
    format!("{prefix}_{key}~mv2.{ext}")
}

mod listing;
mod tus;

use listing::{list_deleted_files, list_files, search_files};
use tus::{tus_create, tus_finalise, tus_head, tus_options, tus_patch};

// ---------------------------------------------------------------------------------------------
// Import

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportRequest {
    url: Option<String>,
    display_name: Option<String>,
    parent_folder_id: Option<String>,
    private: Option<bool>,
    labels: Option<Vec<String>>,
    mime_type: Option<String>,
}

/// Answers at once with a `PENDING` file and fetches in the background, as Wix does; the file
/// turns `READY` (or `FAILED`) and callers poll `get-file-by-id`.
async fn import_file(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: ImportRequest = parse_json(&body)?;
    let url = req.url.unwrap_or_default();
    let parsed =
        url::Url::parse(&url).map_err(|_| rule("url", "must be an absolute URL", "FORMAT"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(rule("url", "must be http or https", "FORMAT"));
    }
    let labels = req.labels.unwrap_or_default();
    check_labels(&labels)?;
    let name = req
        .display_name
        .filter(|n| !n.is_empty())
        .or_else(|| {
            parsed
                .path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "imported".into());
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(rule(
            "displayName",
            "must be at most 200 characters",
            "MAX_LENGTH",
        ));
    }
    let mime = req
        .mime_type
        .unwrap_or_else(|| "application/octet-stream".into());
    let key = site::new_token();
    let now = site::now_iso();
    let file = StoredMediaFile {
        id: media_id(&state.config.site_id, &key, &name, &mime),
        key: key.clone(),
        display_name: name,
        mime_type: mime,
        parent_folder_id: req.parent_folder_id.unwrap_or_else(|| MEDIA_ROOT.into()),
        size_bytes: 0,
        hash: String::new(),
        private: req.private.unwrap_or(false),
        labels,
        width: None,
        height: None,
        operation_status: "PENDING".into(),
        state: "OK".into(),
        source_url: Some(url.clone()),
        created_date: now.clone(),
        updated_date: now,
    };
    let change = {
        let mut data = state.site.lock();
        data.media_files.push(file.clone());
        state.site.changed(&data)
    };
    state.site.commit(change).await?;
    tokio::spawn(fetch_import(state.clone(), key, url));
    Ok(file_answer(&state, &headers, &file))
}

async fn fetch_import(state: Shared, key: String, url: String) {
    let dest = state.site.media_path(&key);
    let fetched: Result<(u64, Option<String>), String> = async {
        // Marked as the sandbox's own request so the request recorder (which holds what
        // *clients* send) leaves it out, however late the fetch runs.
        let resp = reqwest::Client::new()
            .get(&url)
            .header(crate::api::SANDBOX_OWN_REQUEST, "import")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mime = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let mut out = tokio::fs::File::create(&dest)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            n += chunk.len() as u64;
            if n > MAX_SIMPLE_BYTES {
                return Err("over the size limit".into());
            }
            out.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        out.sync_all().await.map_err(|e| e.to_string())?;
        Ok((n, mime))
    }
    .await;
    let hash = match &fetched {
        Ok(_) => {
            let d = dest.clone();
            tokio::task::spawn_blocking(move || hash_file(&d).unwrap_or_default())
                .await
                .unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    let change = {
        let mut data = state.site.lock();
        let Some(f) = data.media_files.iter_mut().find(|f| f.key == key) else {
            return;
        };
        match fetched {
            Ok((size, mime)) if size > 0 => {
                f.size_bytes = size;
                f.hash = hash;
                if f.mime_type == "application/octet-stream" {
                    if let Some(m) = mime.filter(|m| !m.is_empty()) {
                        f.mime_type = m;
                    }
                }
                f.operation_status = "READY".into();
            }
            other => {
                tracing::info!("sandbox import of {url} failed: {:?}", other.err());
                f.operation_status = "FAILED".into();
            }
        }
        f.updated_date = site::now_iso();
        state.site.changed(&data)
    };
    let _ = state.site.commit(change).await;
}

// ---------------------------------------------------------------------------------------------
// Reading

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetFileQuery {
    file_id: Option<String>,
}

async fn get_file(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<GetFileQuery>,
) -> Result<Response, ApiError> {
    let id = normalise_id(&q.file_id.unwrap_or_default());
    if id.is_empty() {
        return Err(rule("fileId", "is required", "REQUIRED_FIELD"));
    }
    let file = find_file(&state.site.lock().media_files, &id)?.clone();
    Ok(file_answer(&state, &headers, &file))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileIds {
    #[serde(default)]
    file_ids: Vec<String>,
    #[serde(default)]
    permanent: Option<bool>,
}

fn check_ids(ids: &[String], max: usize) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() || ids.len() > max {
        return Err(rule(
            "fileIds",
            format!("between 1 and {max} ids"),
            "MAX_SIZE",
        ));
    }
    Ok(ids.iter().map(|i| normalise_id(i)).collect())
}

async fn get_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: FileIds = parse_json(&body)?;
    let ids = check_ids(&req.file_ids, GET_MANY_MAX)?;
    let data = state.site.lock();
    let origin = origin(&headers);
    let files = ids
        .iter()
        .map(|id| {
            find_file(&data.media_files, id).map(|f| descriptor(f, &origin, &state.config.site_id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "files": files })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Changing

async fn update_file(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: Value = parse_json(&body)?;
    let file = body
        .get("file")
        .and_then(Value::as_object)
        .ok_or_else(|| rule("file", "is required", "REQUIRED_FIELD"))?;
    let id = normalise_id(file.get("id").and_then(Value::as_str).unwrap_or_default());
    if id.is_empty() {
        return Err(rule("file.id", "is required", "REQUIRED_FIELD"));
    }
    let display_name = file.get("displayName").and_then(Value::as_str);
    let parent = file.get("parentFolderId").and_then(Value::as_str);
    let labels: Option<Vec<String>> = match file.get("labels") {
        None => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|_| rule("file.labels", "must be a list of strings", "FORMAT"))?,
        ),
    };
    if display_name.is_none() && parent.is_none() && labels.is_none() {
        return Err(rule(
            "file",
            "nothing to update (displayName, parentFolderId or labels)",
            "FIELD_MASK_IS_EMPTY_OR_MISSING",
        ));
    }
    if let Some(n) = display_name {
        if n.trim().is_empty() || n.chars().count() > DISPLAY_NAME_MAX {
            return Err(rule(
                "file.displayName",
                "1 to 200 characters",
                "MAX_LENGTH",
            ));
        }
    }
    if let Some(l) = &labels {
        check_labels(l)?;
    }
    let (updated, change) = {
        let mut data = state.site.lock();
        let f = data
            .media_files
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| not_found(&id))?;
        if let Some(n) = display_name {
            f.display_name = n.to_owned();
        }
        if let Some(p) = parent {
            f.parent_folder_id = p.to_owned();
        }
        if let Some(l) = labels {
            f.labels = l;
        }
        f.updated_date = site::now_iso();
        let updated = f.clone();
        (updated, state.site.changed(&data))
    };
    state.site.commit(change).await?;
    Ok(file_answer(&state, &headers, &updated))
}

async fn bulk_delete(
    State(state): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: FileIds = parse_json(&body)?;
    let ids = check_ids(&req.file_ids, BULK_MAX)?;
    let permanent = req.permanent.unwrap_or(false);
    let (removed, change) = {
        let mut data = state.site.lock();
        // All or nothing: an unknown id changes nothing.
        if let Some(missing) = ids
            .iter()
            .find(|id| !data.media_files.iter().any(|f| &f.id == *id))
        {
            return Err(not_found(missing));
        }
        let mut removed = Vec::new();
        if permanent {
            data.media_files.retain(|f| {
                let hit = ids.contains(&f.id);
                if hit {
                    removed.push(f.key.clone());
                }
                !hit
            });
        } else {
            let now = site::now_iso();
            for f in data.media_files.iter_mut().filter(|f| ids.contains(&f.id)) {
                f.state = "DELETED".into();
                f.updated_date = now.clone();
            }
        }
        (removed, state.site.changed(&data))
    };
    state.site.commit(change).await?;
    for key in removed {
        let _ = tokio::fs::remove_file(state.site.media_path(&key)).await;
    }
    Ok(Json(json!({})).into_response())
}

async fn bulk_restore(
    State(state): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: FileIds = parse_json(&body)?;
    let ids = check_ids(&req.file_ids, BULK_MAX)?;
    let change = {
        let mut data = state.site.lock();
        if let Some(missing) = ids.iter().find(|id| {
            !data
                .media_files
                .iter()
                .any(|f| &f.id == *id && f.state == "DELETED")
        }) {
            return Err(ApiError::not_found(
                "RESOURCE_NOT_FOUND",
                format!("File {missing} is not in the trash bin"),
            ));
        }
        let now = site::now_iso();
        for f in data.media_files.iter_mut().filter(|f| ids.contains(&f.id)) {
            f.state = "OK".into();
            f.updated_date = now.clone();
        }
        state.site.changed(&data)
    };
    state.site.commit(change).await?;
    Ok(Json(json!({})).into_response())
}

// ---------------------------------------------------------------------------------------------
// Downloads

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownloadRequest {
    file_id: Option<String>,
    download_file_name: Option<String>,
    expiration_in_minutes: Option<u64>,
    asset_keys: Option<Vec<String>>,
}

async fn file_download_url(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: DownloadRequest = parse_json(&body)?;
    let id = normalise_id(&req.file_id.unwrap_or_default());
    let minutes = req.expiration_in_minutes.unwrap_or(600);
    if !(1..=525_600).contains(&minutes) {
        return Err(rule("expirationInMinutes", "between 1 and 525600", "MAX"));
    }
    if let Some(bad) = req
        .asset_keys
        .iter()
        .flatten()
        .find(|k| k.as_str() != "src")
    {
        return Err(rule(
            "assetKeys",
            format!("no asset {bad}"),
            "INVALID_ASSET_KEY",
        ));
    }
    let file = find_file(&state.site.lock().media_files, &id)?.clone();
    let name = req.download_file_name.unwrap_or(file.display_name);
    let url = new_download(&state, &headers, vec![file.key], minutes, Some(name));
    Ok(Json(json!({"downloadUrls": [{"url": url, "assetKey": "src"}]})).into_response())
}

async fn zip_download_url(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: FileIds = parse_json(&body)?;
    let ids = check_ids(&req.file_ids, BULK_MAX)?;
    let keys = {
        let data = state.site.lock();
        ids.iter()
            .map(|id| find_file(&data.media_files, id).map(|f| f.key.clone()))
            .collect::<Result<Vec<_>, _>>()?
    };
    let url = new_download(&state, &headers, keys, 600, None);
    Ok(Json(json!({ "downloadUrl": url })).into_response())
}

fn new_download(
    state: &Shared,
    headers: &HeaderMap,
    keys: Vec<String>,
    minutes: u64,
    name: Option<String>,
) -> String {
    let token = site::new_token();
    lock(&state.media.downloads).insert(
        token.clone(),
        Download {
            keys,
            expires_ms: site::now_ms() + minutes * 60_000,
            name,
        },
    );
    format!("{}/_download/media/{token}", origin(headers))
}

async fn serve_media(
    State(state): State<Shared>,
    Path((key, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let file = state
        .site
        .lock()
        .media_files
        .iter()
        .find(|f| f.key == key && f.state == "OK" && !f.private)
        .cloned()
        .ok_or_else(|| ApiError::not_found("NOT_FOUND", "No such file"))?;
    serve_file(
        &state.site.media_path(&file.key),
        &file.mime_type,
        Some(&file.display_name),
    )
    .await
}

async fn serve_download(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let dl = lock(&state.media.downloads)
        .get(&token)
        .cloned()
        .filter(|d| d.expires_ms > site::now_ms())
        .ok_or_else(|| {
            ApiError::application(
                StatusCode::FORBIDDEN,
                "URL_EXPIRED",
                "This download URL has expired",
            )
        })?;
    let files: Vec<StoredMediaFile> = {
        let data = state.site.lock();
        dl.keys
            .iter()
            .filter_map(|k| data.media_files.iter().find(|f| &f.key == k).cloned())
            .collect()
    };
    if let (Some(name), [file]) = (&dl.name, files.as_slice()) {
        return serve_file(
            &state.site.media_path(&file.key),
            &file.mime_type,
            Some(name),
        )
        .await;
    }
    // Several files: one zip, built in memory (the sandbox's files are small).
    let paths: Vec<(String, std::path::PathBuf)> = files
        .iter()
        .map(|f| (f.display_name.clone(), state.site.media_path(&f.key)))
        .collect();
    let bytes = tokio::task::spawn_blocking(move || zip_files(&paths))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!("sandbox zip: {e}");
            ApiError::internal()
        })?;
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    Ok(resp)
}

fn zip_files(paths: &[(String, std::path::PathBuf)]) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let mut seen = std::collections::HashSet::new();
    for (name, path) in paths {
        let mut entry = name.clone();
        let mut n = 1;
        while !seen.insert(entry.clone()) {
            n += 1;
            entry = format!("{n}-{name}");
        }
        zip.start_file(entry, options)
            .map_err(std::io::Error::other)?;
        std::io::copy(&mut std::fs::File::open(path)?, &mut zip)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_wix_uri_form() {
        assert_eq!(
            normalise_id("wix:image://v1/5f0c1e_ab~mv2.jpg/x.jpg#originWidth=1&originHeight=2"),
            "5f0c1e_ab~mv2.jpg"
        );
        assert_eq!(normalise_id(" 5f0c1e_ab~mv2.jpg "), "5f0c1e_ab~mv2.jpg");
    }

    #[test]
    fn media_ids_look_like_wix_ones() {
        let id = media_id("5f0c1e2a-7d3b", "abc", "Deed.PDF", "application/pdf");
        assert_eq!(id, "5f0c1e_abc~mv2.pdf");
        assert_eq!(
            media_id("5f0c1e2a", "k", "noext", "image/png"),
            "5f0c1e_k~mv2.png"
        );
    }
}
