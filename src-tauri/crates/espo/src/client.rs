use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attache_core::retry::{is_retryable_status, retrying, Retry, RetryPolicy};
use attache_core::upload::{verified_body, UploadSource};
use base64::Engine;
use futures::StreamExt;
use reqwest::{header, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::EspoError;
use crate::wire::*;
use crate::EspoAuth;

/// `recordListMaxSizeLimit`: a larger `maxSize` is refused with 403, not clamped (trap 7).
pub const MAX_PAGE: u32 = 200;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const MB: f64 = 1024.0 * 1024.0;

/// The upload limits of the instance (`GET App/user` settings), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadSettings {
    /// `attachmentUploadMaxSize`.
    pub max_bytes: u64,
    /// `attachmentUploadChunkSize`: the size of each `POST Attachment/chunk/{id}`.
    pub chunk_bytes: u64,
}

impl Default for UploadSettings {
    /// EspoCRM's defaults: 256 MB and 4 MB.
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            chunk_bytes: 4 << 20,
        }
    }
}

#[derive(Clone)]
pub struct EspoClient {
    http: reqwest::Client,
    /// The site root (`https://crm.example.com/`), where entry points like `?entryPoint=image` live.
    site: Url,
    /// `{site}api/v1/`.
    api: Url,
    auth: EspoAuth,
    retry: RetryPolicy,
    settings: Arc<tokio::sync::OnceCell<UploadSettings>>,
    /// The upload limit as last read (the default until then), for checks that cannot wait.
    max_bytes: Arc<AtomicU64>,
    /// Upload targets prepared by this process that no byte was sent to yet. Only these may be
    /// filled without a look first: any other may hold part of an earlier, interrupted send.
    pub(crate) fresh_targets: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for EspoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EspoClient")
            .field("site", &self.site)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl EspoClient {
    /// `site_url` is the address the agent opens EspoCRM at (`https://crm.example.com`, or with a
    /// sub-folder); a trailing `/api/v1` is accepted and removed.
    pub fn new(site_url: &str, auth: EspoAuth) -> Result<Self, EspoError> {
        let mut site =
            Url::parse(site_url.trim()).map_err(|_| EspoError::BaseUrl(site_url.into()))?;
        if !matches!(site.scheme(), "http" | "https") || site.host_str().is_none() {
            return Err(EspoError::BaseUrl(site_url.into()));
        }
        site.set_query(None);
        site.set_fragment(None);
        let path = site.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path).to_owned();
        site.set_path(&format!("{path}/"));
        let api = site.join("api/v1/").expect("a valid relative path");
        let http = attache_transport::client()?;
        Ok(Self {
            http,
            site,
            api,
            auth,
            retry: RetryPolicy::default(),
            settings: Default::default(),
            max_bytes: Arc::new(AtomicU64::new(UploadSettings::default().max_bytes)),
            fresh_targets: Default::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn site_url(&self) -> &Url {
        &self.site
    }

    pub(crate) fn known_max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// The API URL for `segments` (each percent-encoded as one path segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("http URLs have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// The path HMAC signs: the URL path after `/api/v1`, without the query (spec §1.2).
    fn resource_path(&self, url: &Url) -> String {
        let base = self.api.path().trim_end_matches('/');
        let path = url.path();
        path.strip_prefix(base).unwrap_or(path).to_owned()
    }

    fn request(&self, method: Method, url: Url, signed_path: &str) -> reqwest::RequestBuilder {
        let (name, value) = self.auth.header(method.as_str(), signed_path);
        self.http
            .request(method, url)
            .header(name, value)
            .header(header::ACCEPT, "application/json")
    }

    /// One API call, decoded from a 200. Idempotent calls (`retry`) are retried on transient
    /// failures; creating calls are not (a retried create could make a second record, and a
    /// retried chunk would be appended twice). A 401 is never retried: EspoCRM locks out an
    /// address after ten denied logins a minute (trap 10).
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: bool,
    ) -> Result<T, EspoError> {
        let url = self.url(segments);
        let signed = self.resource_path(&url);
        retrying(
            &self.retry,
            |_| async {
                let mut req = self
                    .request(method.clone(), url.clone(), &signed)
                    .timeout(CALL_TIMEOUT);
                if !query.is_empty() {
                    req = req.query(query);
                }
                if let Some(body) = body {
                    // `.json` sets `Content-Type: application/json`, without which EspoCRM
                    // reads the body as `{}` (trap 1).
                    req = req.json(body);
                }
                match req.send().await {
                    Ok(resp) if resp.status() == StatusCode::OK => decode(resp).await,
                    Ok(resp) => Err(error_from(&method, &signed, resp)),
                    Err(e) => Err(self.transport(&e)),
                }
            },
            |err, attempt| {
                let (retryable, retry_after) = match err {
                    EspoError::Api {
                        status,
                        retry_after,
                        ..
                    } => (is_retryable_status(*status), *retry_after),
                    EspoError::Transport(t) => (t.kind.is_transient(), None),
                    _ => (false, None),
                };
                if !retry || !retryable {
                    return Retry::Stop;
                }
                tracing::debug!(%signed, attempt, error = %err, "retrying EspoCRM call");
                Retry::Again { retry_after }
            },
        )
        .await
    }

    fn transport(&self, e: &reqwest::Error) -> EspoError {
        EspoError::Transport(attache_transport::classify(
            e,
            self.site.host_str().unwrap_or(""),
        ))
    }

    // ---- App ----

    /// `GET App/user`: checks the login and reads the upload limits (remembered for uploads).
    pub async fn app_user(&self) -> Result<AppUser, EspoError> {
        let user: AppUser = self
            .call(Method::GET, &["App", "user"], &[], None, true)
            .await?;
        let settings = settings_of(&user);
        self.max_bytes.store(settings.max_bytes, Ordering::Relaxed);
        let _ = self.settings.set(settings);
        Ok(user)
    }

    /// The instance's upload limits, read once.
    pub async fn upload_settings(&self) -> Result<UploadSettings, EspoError> {
        if let Some(s) = self.settings.get() {
            return Ok(*s);
        }
        self.app_user().await?;
        Ok(self.settings.get().copied().unwrap_or_default())
    }

    // ---- Contacts ----

    /// One page of `GET Contact`, oldest first. `text_filter` is EspoCRM's quick search
    /// (starts-with on name and e-mail; `*` is a wildcard).
    pub async fn list_contacts(
        &self,
        offset: u64,
        max_size: u32,
        text_filter: Option<&str>,
    ) -> Result<ListResponse<Contact>, EspoError> {
        let search = ContactSearch {
            text: text_filter.map(str::to_owned),
            ..ContactSearch::default()
        };
        self.search_contacts(&search, offset, max_size).await
    }

    /// One page of `GET Contact` narrowed by `search`: the quick text filter and `where[]`
    /// conditions (PHP-style bracket parameters), in the order it asks for.
    pub async fn search_contacts(
        &self,
        search: &ContactSearch,
        offset: u64,
        max_size: u32,
    ) -> Result<ListResponse<Contact>, EspoError> {
        let order_by = search.order_by.as_deref().unwrap_or("createdAt");
        let mut query: Vec<(String, String)> =
            page_query(offset, max_size, order_by, search.descending)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain([("select".to_owned(), CONTACT_SELECT.to_owned())])
                .collect();
        if let Some(text) = &search.text {
            query.push(("textFilter".to_owned(), text.clone()));
        }
        for (i, w) in search.conditions.iter().enumerate() {
            query.push((format!("where[{i}][type]"), w.kind.as_str().to_owned()));
            query.push((format!("where[{i}][attribute]"), w.attribute.clone()));
            if let Some(value) = &w.value {
                query.push((format!("where[{i}][value]"), value.clone()));
            }
        }
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        self.call(Method::GET, &["Contact"], &query, None, true)
            .await
    }

    pub async fn get_contact(&self, id: &str) -> Result<Contact, EspoError> {
        self.call(Method::GET, &["Contact", id], &[], None, true)
            .await
    }

    /// Every contact, page after page.
    pub async fn all_contacts(&self) -> Result<Vec<Contact>, EspoError> {
        self.all_pages(|offset| self.list_contacts(offset, MAX_PAGE, None))
            .await
    }

    async fn all_pages<T, F, Fut>(&self, page: F) -> Result<Vec<T>, EspoError>
    where
        F: Fn(u64) -> Fut,
        Fut: std::future::Future<Output = Result<ListResponse<T>, EspoError>>,
    {
        let mut out = Vec::new();
        loop {
            let resp = page(out.len() as u64).await?;
            let n = resp.list.len();
            out.extend(resp.list);
            let total_reached = resp.total.is_some_and(|t| t >= 0 && out.len() as i64 >= t);
            if n < MAX_PAGE as usize || total_reached || resp.total == Some(-2) {
                return Ok(out);
            }
        }
    }

    // ---- A contact's files ----

    /// One page of the attachments of every Note in the contact's stream (EspoCRM ≥ 9.1).
    pub async fn stream_attachments(
        &self,
        contact_id: &str,
        offset: u64,
        max_size: u32,
        newest_first: bool,
    ) -> Result<ListResponse<AttachmentRecord>, EspoError> {
        let query = page_query(offset, max_size, "createdAt", newest_first);
        self.call(
            Method::GET,
            &["Contact", contact_id, "streamAttachments"],
            &query,
            None,
            true,
        )
        .await
    }

    pub async fn all_stream_attachments(
        &self,
        contact_id: &str,
    ) -> Result<Vec<AttachmentRecord>, EspoError> {
        self.all_pages(|offset| self.stream_attachments(contact_id, offset, MAX_PAGE, false))
            .await
    }

    /// One page of the Documents linked to the contact.
    pub async fn documents(
        &self,
        contact_id: &str,
        offset: u64,
        max_size: u32,
        newest_first: bool,
    ) -> Result<ListResponse<Document>, EspoError> {
        let mut query = page_query(offset, max_size, "createdAt", newest_first);
        query.push(("select", DOCUMENT_SELECT.to_owned()));
        self.call(
            Method::GET,
            &["Contact", contact_id, "documents"],
            &query,
            None,
            true,
        )
        .await
    }

    pub async fn all_documents(&self, contact_id: &str) -> Result<Vec<Document>, EspoError> {
        self.all_pages(|offset| self.documents(contact_id, offset, MAX_PAGE, false))
            .await
    }

    // ---- Attachments ----

    pub async fn get_attachment(&self, id: &str) -> Result<AttachmentRecord, EspoError> {
        self.call(Method::GET, &["Attachment", id], &[], None, true)
            .await
    }

    /// `DELETE Attachment/{id}` (answers `true`).
    pub async fn delete_attachment(&self, id: &str) -> Result<(), EspoError> {
        let _: Value = self
            .call(Method::DELETE, &["Attachment", id], &[], None, true)
            .await?;
        Ok(())
    }

    /// Step 1 of the chunked upload: an empty attachment for `owner` that will receive `size`
    /// bytes (`isBeingUploaded`, spec §2.5).
    pub async fn begin_attachment(
        &self,
        owner: AttachmentFor,
        file_name: &str,
        mime_type: &str,
        size: u64,
    ) -> Result<AttachmentRecord, EspoError> {
        let mut body = owner.fields(file_name, mime_type);
        body.insert("isBeingUploaded".into(), json!(true));
        body.insert("size".into(), json!(size));
        self.call(
            Method::POST,
            &["Attachment"],
            &[],
            Some(&Value::Object(body)),
            false,
        )
        .await
    }

    /// An attachment for `owner` in one request: the whole file as a data URL in the JSON body
    /// (spec §2.2), for files no larger than a chunk.
    pub async fn create_attachment(
        &self,
        owner: AttachmentFor,
        file_name: &str,
        mime_type: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRecord, EspoError> {
        let mut file = format!("data:{mime_type};base64,");
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut file);
        let mut body = owner.fields(file_name, mime_type);
        // Sent so the server's declared-size check applies (trap 11).
        body.insert("size".into(), json!(bytes.len()));
        body.insert("file".into(), json!(file));
        self.call(
            Method::POST,
            &["Attachment"],
            &[],
            Some(&Value::Object(body)),
            false,
        )
        .await
    }

    /// Reads the whole file through the verified body (a file that changes fails).
    pub async fn read_verified(&self, source: &UploadSource) -> Result<Vec<u8>, EspoError> {
        let mut out = Vec::with_capacity(source.size as usize);
        let mut body = std::pin::pin!(verified_body(source));
        while let Some(piece) = body.next().await {
            let piece =
                piece.map_err(|e| EspoError::Invalid(format!("{}: {e}", source.file_name)))?;
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    /// The same for a Document's file (`relatedType: Document`, `field: file`).
    pub async fn begin_document_file(
        &self,
        file_name: &str,
        mime_type: &str,
        size: u64,
    ) -> Result<AttachmentRecord, EspoError> {
        let body = json!({
            "name": file_name,
            "type": mime_type,
            "role": "Attachment",
            "relatedType": "Document",
            "field": "file",
            "isBeingUploaded": true,
            "size": size,
        });
        self.call(Method::POST, &["Attachment"], &[], Some(&body), false)
            .await
    }

    /// Step 2: appends one piece. The server appends in arrival order, so pieces go one at a
    /// time and a failed one is never resent (the attachment is abandoned instead).
    pub async fn post_chunk(
        &self,
        id: &str,
        mime_type: &str,
        bytes: &[u8],
    ) -> Result<(), EspoError> {
        let url = self.url(&["Attachment", "chunk", id]);
        let signed = self.resource_path(&url);
        let mut body = format!("data:{mime_type};base64,");
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut body);
        let total = body.len() as u64;
        let request = self
            .request(Method::POST, url, &signed)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, total);
        let resp = attache_transport::send_body(
            request,
            attache_transport::pieces(body),
            total,
            attache_transport::STALL_TIMEOUT,
            self.site.host_str().unwrap_or(""),
        )
        .await?;
        if resp.status() == StatusCode::OK {
            Ok(())
        } else {
            Err(error_from(&Method::POST, &signed, resp))
        }
    }

    /// Sends the whole file as chunks of the instance's chunk size, from the verified body
    /// (constant memory; a file that changes fails before its last piece is released).
    pub async fn send_chunks(&self, id: &str, source: &UploadSource) -> Result<(), EspoError> {
        let chunk = self.upload_settings().await?.chunk_bytes.max(64 << 10) as usize;
        let mut body = std::pin::pin!(verified_body(source));
        let mut pending = bytes::BytesMut::with_capacity(chunk.min(source.size as usize + 1));
        while let Some(piece) = body.next().await {
            let piece =
                piece.map_err(|e| EspoError::Invalid(format!("{}: {e}", source.file_name)))?;
            pending.extend_from_slice(&piece);
            while pending.len() >= chunk {
                let out = pending.split_to(chunk);
                self.post_chunk(id, &source.mime_type, &out).await?;
            }
        }
        if !pending.is_empty() {
            self.post_chunk(id, &source.mime_type, &pending).await?;
        }
        Ok(())
    }

    /// Step 3 for stream files: a Post note on the contact carrying the attachment.
    pub async fn post_note(
        &self,
        contact_id: &str,
        attachment_ids: &[String],
    ) -> Result<Note, EspoError> {
        let body = json!({
            "type": "Post",
            "parentType": "Contact",
            "parentId": contact_id,
            "post": "",
            "attachmentsIds": attachment_ids,
        });
        self.call(Method::POST, &["Note"], &[], Some(&body), false)
            .await
    }

    /// Step 3 for documents: a Document on the file, linked to the contact in the same call
    /// (`contactsIds` with one id, spec §3(b)). `publishDate` is required over the API (trap 5).
    pub async fn create_document(
        &self,
        contact_id: &str,
        name: &str,
        file_id: &str,
        publish_date: &str,
    ) -> Result<Document, EspoError> {
        let body = json!({
            "name": name,
            "fileId": file_id,
            "publishDate": publish_date,
            "status": "Active",
            "contactsIds": [contact_id],
        });
        self.call(Method::POST, &["Document"], &[], Some(&body), false)
            .await
    }

    /// Streams `GET Attachment/file/{id}` into `dest`; returns the byte count.
    pub async fn download_attachment(&self, id: &str, dest: &Path) -> Result<u64, EspoError> {
        let url = self.url(&["Attachment", "file", id]);
        let signed = self.resource_path(&url);
        let resp = self
            .request(Method::GET, url, &signed)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !resp.status().is_success() {
            return Err(error_from(&Method::GET, &signed, resp));
        }
        write_body(resp, dest).await
    }

    /// The `image` entry point on the site root (not under /api/v1, trap 14), for an image
    /// attachment scaled to fit `size` (`small` 128, `medium` 256, `large` 512, `xx-large` 1024).
    pub fn image_url(&self, id: &str, size: &str) -> Url {
        let mut url = self.site.clone();
        url.query_pairs_mut()
            .append_pair("entryPoint", "image")
            .append_pair("id", id)
            .append_pair("size", size);
        url
    }

    /// Whether the `image` entry point can be used with this login. It is signed like any
    /// other request only with `X-Api-Key`; what an HMAC signature would cover there is
    /// UNCONFIRMED (spec §5), so HMAC logins render thumbnails from the file itself.
    pub fn serves_image_previews(&self) -> bool {
        matches!(self.auth, EspoAuth::ApiKey { .. })
    }

    pub async fn download_image(
        &self,
        id: &str,
        size: &str,
        dest: &Path,
    ) -> Result<u64, EspoError> {
        let url = self.image_url(id, size);
        let resp = self
            .request(Method::GET, url, "/")
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !resp.status().is_success() {
            return Err(error_from(&Method::GET, "/?entryPoint=image", resp));
        }
        write_body(resp, dest).await
    }
}

/// Which record an uploaded attachment is for (spec §2.3): a stream Note's `attachments`
/// (`parentType`, trap 2), or a Document's `file` (`relatedType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentFor {
    Note,
    Document,
}

impl AttachmentFor {
    fn fields(self, file_name: &str, mime_type: &str) -> serde_json::Map<String, Value> {
        let (link, entity, field) = match self {
            AttachmentFor::Note => ("parentType", "Note", "attachments"),
            AttachmentFor::Document => ("relatedType", "Document", "file"),
        };
        serde_json::Map::from_iter([
            ("name".to_owned(), json!(file_name)),
            ("type".to_owned(), json!(mime_type)),
            ("role".to_owned(), json!("Attachment")),
            (link.to_owned(), json!(entity)),
            ("field".to_owned(), json!(field)),
        ])
    }
}

/// A contact search: EspoCRM's quick text filter plus `where[]` conditions, all of which must
/// hold.
#[derive(Debug, Clone, Default)]
pub struct ContactSearch {
    pub text: Option<String>,
    pub conditions: Vec<Where>,
    pub order_by: Option<String>,
    pub descending: bool,
}

/// One `where[]` item.
#[derive(Debug, Clone)]
pub struct Where {
    pub kind: WhereKind,
    pub attribute: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhereKind {
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    IsNull,
    IsNotNull,
}

impl WhereKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WhereKind::Equals => "equals",
            WhereKind::NotEquals => "notEquals",
            WhereKind::Contains => "contains",
            WhereKind::StartsWith => "startsWith",
            WhereKind::IsNull => "isNull",
            WhereKind::IsNotNull => "isNotNull",
        }
    }
}

impl Where {
    pub fn new(kind: WhereKind, attribute: &str, value: &str) -> Self {
        Self {
            kind,
            attribute: attribute.to_owned(),
            value: Some(value.to_owned()),
        }
    }
}

/// The paging and order parameters every list takes (`maxSize` capped at 200, trap 7).
fn page_query(
    offset: u64,
    max_size: u32,
    order_by: &str,
    descending: bool,
) -> Vec<(&'static str, String)> {
    vec![
        ("maxSize", max_size.min(MAX_PAGE).to_string()),
        ("offset", offset.to_string()),
        ("orderBy", order_by.to_owned()),
        ("order", if descending { "desc" } else { "asc" }.to_owned()),
    ]
}

fn settings_of(user: &AppUser) -> UploadSettings {
    let default = UploadSettings::default();
    let mb = |v: Option<f64>| {
        v.filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| (v * MB) as u64)
    };
    let s = user.settings.clone().unwrap_or_default();
    UploadSettings {
        max_bytes: mb(s.attachment_upload_max_size).unwrap_or(default.max_bytes),
        chunk_bytes: mb(s.attachment_upload_chunk_size).unwrap_or(default.chunk_bytes),
    }
}

async fn write_body(resp: Response, dest: &Path) -> Result<u64, EspoError> {
    let mut out = tokio::fs::File::create(dest).await?;
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| attache_transport::classify(&e, ""))?;
        out.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    out.flush().await?;
    Ok(written)
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, EspoError> {
    let bytes = attache_transport::read_json(resp)
        .await
        .map_err(|e| match e {
            attache_transport::BodyError::Transport(e) => {
                EspoError::Decode(format!("the answer was cut: {e}"))
            }
            too_large => EspoError::Decode(too_large.to_string()),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        EspoError::Decode(format!("{e} in {head:?}"))
    })
}

/// EspoCRM's refusals carry their reason in `X-Status-Reason` (control characters already
/// replaced by the server; the bytes may be UTF-8), rarely in the body.
fn error_from(method: &Method, path: &str, resp: Response) -> EspoError {
    let headers = resp.headers();
    let reason = headers
        .get("x-status-reason")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|r| !r.is_empty());
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    EspoError::Api {
        status: resp.status().as_u16(),
        reason,
        path: format!("{method} {path}"),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attache_core::Sensitive;

    fn client(site: &str) -> EspoClient {
        EspoClient::new(
            site,
            EspoAuth::ApiKey {
                key: Sensitive::new("k".into()),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_its_limit_with_a_reason() {
        use futures::StreamExt;
        let blocks =
            futures::stream::iter(std::iter::once(bytes::Bytes::from_static(b"{\"list\": [")))
                .chain(futures::stream::repeat_with(|| {
                    bytes::Bytes::from_static(&[b' '; 64 * 1024])
                }))
                .map(Ok::<_, std::io::Error>);
        let resp = http::Response::builder()
            .status(200)
            .body(reqwest::Body::wrap_stream(blocks))
            .unwrap();
        match decode::<serde_json::Value>(Response::from(resp)).await {
            Err(EspoError::Decode(why)) => assert!(why.contains("larger than 32 MiB"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn site_and_api_urls_and_signed_paths() {
        for site in [
            "https://crm.example.com",
            "https://crm.example.com/",
            "https://crm.example.com/api/v1",
            "https://crm.example.com/api/v1/",
        ] {
            let c = client(site);
            assert_eq!(c.site.as_str(), "https://crm.example.com/");
            assert_eq!(c.api.as_str(), "https://crm.example.com/api/v1/");
        }
        let c = client("https://example.com/espo");
        let url = c.url(&["Contact", "abc", "streamAttachments"]);
        assert_eq!(
            url.as_str(),
            "https://example.com/espo/api/v1/Contact/abc/streamAttachments"
        );
        assert_eq!(c.resource_path(&url), "/Contact/abc/streamAttachments");
        let odd = c.url(&["Attachment", "a/b c"]);
        assert_eq!(c.resource_path(&odd), "/Attachment/a%2Fb%20c");
        assert_eq!(
            c.image_url("a1", "xx-large").as_str(),
            "https://example.com/espo/?entryPoint=image&id=a1&size=xx-large"
        );
        assert!(EspoClient::new(
            "ftp://x",
            EspoAuth::ApiKey {
                key: Sensitive::new("k".into())
            }
        )
        .is_err());
    }

    #[test]
    fn settings_are_megabytes_with_defaults() {
        let user: AppUser = serde_json::from_value(json!({
            "settings": {"attachmentUploadMaxSize": 10, "attachmentUploadChunkSize": 0.5}
        }))
        .unwrap();
        assert_eq!(
            settings_of(&user),
            UploadSettings {
                max_bytes: 10 << 20,
                chunk_bytes: 512 << 10
            }
        );
        assert_eq!(settings_of(&AppUser::default()), UploadSettings::default());
    }

    // Fuzzing by property: whatever EspoCRM (or something in front of it) answers, the client
    // gets an error with the status and a readable reason, or a value; never a panic.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_answer_is_an_error_or_a_value(
            status in 400u16..600,
            reason in proptest::collection::vec(32u8..=255, 0..120),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            list in "\\{\"total\": -?[0-9]{0,12}, \"list\": \\[\\PC{0,80}\\]\\}",
        ) {
            let mut answer = http::Response::builder().status(status);
            if let Ok(value) = http::HeaderValue::from_bytes(&reason) {
                answer = answer.header("x-status-reason", value);
            }
            let resp = answer.body(body.clone()).unwrap();
            match error_from(&Method::GET, "Contact", Response::from(resp)) {
                EspoError::Api { status: got, .. } => proptest::prop_assert_eq!(got, status),
                other => proptest::prop_assert!(false, "{:?}", other),
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for body in [body, list.into_bytes()] {
                let resp = http::Response::builder().status(200).body(body).unwrap();
                let _ = runtime.block_on(decode::<crate::wire::ListResponse<crate::wire::Contact>>(Response::from(resp)));
            }
        }
    }
}
