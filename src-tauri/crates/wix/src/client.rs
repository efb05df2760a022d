use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use attache_core::upload::{verified_body, UploadSource};
use attache_core::Sensitive;
use futures::TryStreamExt;
use reqwest::{header, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::{FieldViolation, WixError};
use crate::wire::*;
use attache_core::retry::{is_retryable_status, retrying, Retry, RetryPolicy};

pub const DEFAULT_BASE_URL: &str = "https://www.wixapis.com";

/// Contacts v4 allows pages of up to 1000.
const CONTACTS_PAGE: u32 = 1000;
/// Attachments v4 allows pages of at most 100.
pub(crate) const ATTACHMENTS_PAGE: u32 = 100;
/// A single API call; transfers of file bytes have no overall limit, only the connect timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How requests are authorised.
#[derive(Debug, Clone)]
pub enum WixAuth {
    /// `Authorization: <key>` (raw, no "Bearer") plus `wix-site-id: <site>`.
    ApiKey {
        key: Sensitive<String>,
        site_id: String,
    },
    /// A Wix app installed on the site: an access token minted by client credentials
    /// (`POST /oauth2/token`, snake_case body, spec §4) and sent raw in `Authorization`. The
    /// token names the installation, so no `wix-site-id` is sent.
    App {
        app_id: String,
        app_secret: Sensitive<String>,
        instance_id: String,
    },
}

/// An app access token and when to stop using it.
#[derive(Debug, Clone)]
struct Minted {
    token: Sensitive<String>,
    /// A little before `expires_in` runs out, so no call goes out with a token about to lapse.
    renew_at: std::time::Instant,
}

/// Wix allows 200 requests per minute per site (spec §5); staying under it on our side means
/// bulk work (refreshing hundreds of contacts' attachments) never trips 429 in the first place.
pub const REQUESTS_PER_MINUTE: u32 = 200;

type Limiter = governor::DefaultDirectRateLimiter;

#[derive(Clone)]
pub struct WixClient {
    http: reqwest::Client,
    base: Url,
    auth: WixAuth,
    retry: RetryPolicy,
    /// Shared by every clone of this client: one budget per site.
    limiter: Arc<Limiter>,
    /// The app token (App auth only), shared by clones; the lock makes concurrent callers wait
    /// for one mint instead of minting one each.
    token: Arc<tokio::sync::Mutex<Option<Minted>>>,
    /// Tokens minted so far (for tests and logs).
    mints: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for WixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixClient")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Offset paging as a stream: `fetch(offset)` returns a page and whether more follow; the next
/// page is requested only when the consumer reaches the end of the previous one.
fn paged<'a, T, F, Fut>(fetch: F) -> impl futures::Stream<Item = Result<T, WixError>> + Send + 'a
where
    T: Send + 'a,
    F: Fn(u32) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<(Vec<T>, bool), WixError>> + Send + 'a,
{
    futures::stream::try_unfold((0u32, true, fetch), |(offset, more, fetch)| async move {
        if !more {
            return Ok::<_, WixError>(None);
        }
        let (items, more) = fetch(offset).await?;
        let next = offset + items.len() as u32;
        // An empty page ends the stream whatever the metadata says (no endless loop).
        let more = more && !items.is_empty();
        let page = futures::stream::iter(items.into_iter().map(Ok));
        Ok(Some((page, (next, more, fetch))))
    })
    .try_flatten()
}

/// `POST /oauth2/token`'s answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn limiter(per_minute: u32) -> Arc<Limiter> {
    let per_minute = std::num::NonZeroU32::new(per_minute.max(1)).expect("at least 1");
    Arc::new(governor::RateLimiter::direct(governor::Quota::per_minute(
        per_minute,
    )))
}

impl WixClient {
    pub fn new(base_url: &str, auth: WixAuth) -> Result<Self, WixError> {
        let mut base = Url::parse(base_url).map_err(|_| WixError::BaseUrl(base_url.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(WixError::BaseUrl(base_url.to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = attache_transport::client()?;
        Ok(Self {
            http,
            base,
            auth,
            retry: RetryPolicy::default(),
            limiter: limiter(REQUESTS_PER_MINUTE),
            token: Default::default(),
            mints: Default::default(),
        })
    }

    /// How many app tokens this client (and its clones) minted.
    pub fn tokens_minted(&self) -> u64 {
        self.mints.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The `Authorization` value and whether `wix-site-id` goes with it.
    async fn authorization(&self) -> Result<(String, Option<String>), WixError> {
        match &self.auth {
            WixAuth::ApiKey { key, site_id } => Ok((key.expose().clone(), Some(site_id.clone()))),
            WixAuth::App { .. } => Ok((self.app_token().await?, None)),
        }
    }

    /// The current app token, minted when there is none or it is due for renewal.
    async fn app_token(&self) -> Result<String, WixError> {
        let WixAuth::App {
            app_id,
            app_secret,
            instance_id,
        } = &self.auth
        else {
            return Err(WixError::Decode("not an app login".into()));
        };
        let mut slot = self.token.lock().await;
        if let Some(m) = slot.as_ref() {
            if std::time::Instant::now() < m.renew_at {
                return Ok(m.token.expose().clone());
            }
        }
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": app_secret.expose(),
            "instance_id": instance_id,
        });
        let resp = self
            .http
            .post(self.url("oauth2/token"))
            .timeout(CALL_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if resp.status() != StatusCode::OK {
            return Err(error_from(resp).await);
        }
        let minted: TokenResponse = decode(resp).await?;
        if minted.access_token.is_empty() {
            return Err(WixError::Decode(
                "the token answer has no access_token".into(),
            ));
        }
        // Renew at 90 % of the lifetime (at most a minute early); 4 h when Wix does not say.
        let life = Duration::from_secs(minted.expires_in.unwrap_or(14_400));
        let early = (life / 10).min(Duration::from_secs(60));
        *slot = Some(Minted {
            token: Sensitive::new(minted.access_token.clone()),
            renew_at: std::time::Instant::now() + life - early,
        });
        self.mints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(minted.access_token)
    }

    /// Drops the app token the server refused, so the next call mints another.
    async fn forget_token(&self, refused: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|m| m.token.expose() == refused) {
            *slot = None;
        }
    }

    /// Changes the request budget (requests per minute, bursts up to that many).
    pub fn with_rate_limit(mut self, per_minute: u32) -> Self {
        self.limiter = limiter(per_minute);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        // Paths are built from our own constants plus URL-encoded ids, so joining cannot fail.
        self.base
            .join(path.trim_start_matches('/'))
            .expect("valid API path")
    }

    /// Sends one API call with auth headers, retrying transient failures, and decodes a 200.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T, WixError> {
        let url = self.url(path);
        retrying(
            &self.retry,
            |_| async {
                let resp = self.send_authorized(&method, &url, query, body).await?;
                decode(resp).await
            },
            |err, attempt| self.retry_decision(err, attempt, &url),
        )
        .await
    }

    /// One authorized request (within the request budget) answered 200, or why not. An app
    /// token refused (revoked, or expired early) is minted again once, at once: the auth layer.
    async fn send_authorized(
        &self,
        method: &Method,
        url: &Url,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Response, WixError> {
        let mut reminted = false;
        loop {
            self.limiter.until_ready().await;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .timeout(CALL_TIMEOUT)
                .header(header::ACCEPT, "application/json");
            if !query.is_empty() {
                req = req.query(query);
            }
            let (authorization, site_id) = self.authorization().await?;
            req = req.header(header::AUTHORIZATION, &authorization);
            if let Some(site_id) = site_id {
                req = req.header("wix-site-id", site_id);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let err = match req.send().await {
                Ok(resp) if resp.status() == StatusCode::OK => return Ok(resp),
                Ok(resp) => error_from(resp).await,
                Err(e) => self.transport(&e),
            };
            if matches!(self.auth, WixAuth::App { .. }) && err.status() == Some(401) && !reminted {
                reminted = true;
                self.forget_token(&authorization).await;
                continue;
            }
            return Err(err);
        }
    }

    /// Whether a failed call is worth another try: the one decision of every Wix retry.
    pub(crate) fn retry_decision(&self, err: &WixError, attempt: u32, url: &Url) -> Retry {
        if !is_transient(err) {
            return Retry::Stop;
        }
        tracing::debug!(host = url.host_str().unwrap_or(""), attempt, error = %err, "retrying Wix call");
        Retry::Again {
            retry_after: retry_after_of(err),
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn transport(&self, e: &reqwest::Error) -> WixError {
        WixError::Transport(attache_transport::classify(
            e,
            self.base.host_str().unwrap_or(""),
        ))
    }

    // ---- Contacts v4 ----

    /// `GET /contacts/v4/contacts`.
    pub async fn list_contacts(
        &self,
        paging: Paging,
        sort: Option<&Sorting>,
    ) -> Result<ListContactsResponse, WixError> {
        let mut query = paging_query(paging);
        if let Some(sort) = sort {
            query.push(("sort.fieldName", sort.field_name.clone()));
            if let Some(order) = &sort.order {
                query.push(("sort.order", order.clone()));
            }
        }
        self.call(Method::GET, "contacts/v4/contacts", &query, None::<&()>)
            .await
    }

    /// `POST /contacts/v4/contacts/query`.
    pub async fn query_contacts(
        &self,
        request: &QueryContactsRequest,
    ) -> Result<ListContactsResponse, WixError> {
        self.call(
            Method::POST,
            "contacts/v4/contacts/query",
            &[],
            Some(request),
        )
        .await
    }

    /// `GET /contacts/v4/contacts/{id}`. Check `response_type`: on `MERGED` the returned
    /// contact's id differs from the one asked for.
    pub async fn get_contact(&self, id: &str) -> Result<GetContactResponse, WixError> {
        let path = format!("contacts/v4/contacts/{}", segment(id));
        // The SDK repeats path parameters in the query (spec trap 5); so do we, byte for byte.
        self.call(Method::GET, &path, &[("id", id.to_owned())], None::<&()>)
            .await
    }

    /// Every contact, in pages of 1000, oldest first (stable under concurrent additions).
    pub async fn all_contacts(&self) -> Result<Vec<Contact>, WixError> {
        self.contacts_stream(CONTACTS_PAGE).try_collect().await
    }

    /// Every contact, oldest first, as an async stream: a page of `page_size` (≤ 1000) is
    /// fetched only when the consumer has taken the previous one.
    pub fn contacts_stream(
        &self,
        page_size: u32,
    ) -> impl futures::Stream<Item = Result<Contact, WixError>> + Send + '_ {
        let page_size = page_size.clamp(1, CONTACTS_PAGE);
        paged(move |offset| async move {
            let sort = Sorting {
                field_name: "createdDate".into(),
                order: Some("ASC".into()),
            };
            let page = self
                .list_contacts(
                    Paging {
                        limit: Some(page_size),
                        offset: Some(offset),
                    },
                    Some(&sort),
                )
                .await?;
            let got = page.contacts.len();
            let more = has_more(page.paging_metadata.as_ref(), offset, got, page_size);
            Ok((page.contacts, more))
        })
    }

    // ---- Contact Attachments v4 ----

    /// `GET /contacts/v4/attachments/{contactId}` (paging key `metadata`, limit ≤ 100).
    pub async fn list_attachments(
        &self,
        contact_id: &str,
        paging: Paging,
    ) -> Result<ListAttachmentsResponse, WixError> {
        let path = format!("contacts/v4/attachments/{}", segment(contact_id));
        let mut query = vec![("contactId", contact_id.to_owned())];
        query.extend(paging_query(paging));
        self.call(Method::GET, &path, &query, None::<&()>).await
    }

    pub async fn all_attachments(
        &self,
        contact_id: &str,
    ) -> Result<Vec<ContactAttachment>, WixError> {
        self.attachments_stream(contact_id, ATTACHMENTS_PAGE)
            .try_collect()
            .await
    }

    /// A contact's attachments as an async stream, `page_size` (≤ 100) per request, each page
    /// fetched only when needed.
    pub fn attachments_stream<'a>(
        &'a self,
        contact_id: &'a str,
        page_size: u32,
    ) -> impl futures::Stream<Item = Result<ContactAttachment, WixError>> + Send + 'a {
        let page_size = page_size.clamp(1, ATTACHMENTS_PAGE);
        paged(move |offset| async move {
            let page = self
                .list_attachments(
                    contact_id,
                    Paging {
                        limit: Some(page_size),
                        offset: Some(offset),
                    },
                )
                .await?;
            let got = page.attachments.len();
            let more = has_more(page.metadata.as_ref(), offset, got, page_size);
            Ok((page.attachments, more))
        })
    }

    /// `GET /contacts/v4/attachments/{contactId}/{attachmentId}`: metadata, not bytes.
    pub async fn get_attachment(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<GetAttachmentResponse, WixError> {
        let path = format!(
            "contacts/v4/attachments/{}/{}",
            segment(contact_id),
            segment(attachment_id)
        );
        let ids = [
            ("attachmentId", attachment_id.to_owned()),
            ("contactId", contact_id.to_owned()),
        ];
        self.call(Method::GET, &path, &ids, None::<&()>).await
    }

    /// `DELETE /contacts/v4/attachments/{contactId}/{attachmentId}`.
    pub async fn delete_attachment(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<(), WixError> {
        let path = format!(
            "contacts/v4/attachments/{}/{}",
            segment(contact_id),
            segment(attachment_id)
        );
        let ids = [
            ("attachmentId", attachment_id.to_owned()),
            ("contactId", contact_id.to_owned()),
        ];
        let _: serde_json::Value = self.call(Method::DELETE, &path, &ids, None::<&()>).await?;
        Ok(())
    }

    /// `POST /contacts/v4/attachments/{contactId}/upload-url`.
    pub async fn generate_attachment_upload_url(
        &self,
        contact_id: &str,
        file_name: &str,
        mime_type: &str,
    ) -> Result<GenerateAttachmentUploadUrlResponse, WixError> {
        let path = format!("contacts/v4/attachments/{}/upload-url", segment(contact_id));
        let body = GenerateAttachmentUploadUrlRequest {
            contact_id: contact_id.to_owned(),
            file_name: file_name.to_owned(),
            mime_type: mime_type.to_owned(),
        };
        self.call(Method::POST, &path, &[], Some(&body)).await
    }

    /// PUTs the file's bytes, streamed and verified (see [`attache_core::upload::verified_body`]),
    /// to an upload URL Wix generated. The URL carries its own token: the Wix `Authorization`
    /// header is never sent to an upload host.
    pub async fn upload_to_url(
        &self,
        upload_url: &str,
        source: &UploadSource,
    ) -> Result<(), WixError> {
        let url = Url::parse(upload_url)
            .map_err(|_| WixError::Decode(format!("bad upload URL {upload_url:?}")))?;
        let resp = self.put_file(url, source).await?;
        // Upload hosts are not the Wix API: any 2xx is success.
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from(resp).await)
        }
    }

    /// `PUT url` with the file as the body, streamed and verified, watched for stalls. For upload
    /// hosts: their URLs carry their own token, so no Wix credentials go with it.
    pub(crate) async fn put_file(
        &self,
        url: Url,
        source: &UploadSource,
    ) -> Result<reqwest::Response, WixError> {
        let host = url.host_str().unwrap_or("the upload host").to_owned();
        let request = self
            .http
            .put(url)
            .header(header::CONTENT_TYPE, &source.mime_type)
            .header(header::CONTENT_LENGTH, source.size);
        Ok(attache_transport::send_body(
            request,
            verified_body(source),
            source.size,
            attache_transport::STALL_TIMEOUT,
            &host,
        )
        .await?)
    }

    /// Streams a file Wix serves (an attachment's `url`) into `dest`. These URLs are public or
    /// signed, so no credentials are sent.
    pub async fn download_url(&self, url: &str, dest: &Path) -> Result<u64, WixError> {
        let url = Url::parse(url).map_err(|_| WixError::Decode(format!("bad file URL {url:?}")))?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let mut out = tokio::fs::File::create(dest).await?;
        let mut stream = resp.bytes_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.try_next().await.map_err(|e| self.transport(&e))? {
            out.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        out.flush().await?;
        out.sync_all().await?;
        Ok(written)
    }
}

impl WixClient {
    /// `Content-Length` of a file URL, by HEAD (no credentials, as for downloads).
    /// The size a file URL answers a HEAD with: `Ok(None)` when the host cannot tell (no
    /// length, HEAD not allowed), an error when it could not be asked (a cut, a 5xx, a 429).
    pub async fn content_length(&self, url: &str) -> Result<Option<u64>, WixError> {
        let resp = self
            .http
            .head(url)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED
            || status == reqwest::StatusCode::NOT_IMPLEMENTED
        {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(error_from(resp).await);
        }
        Ok(resp
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }
}

/// URL-encodes one path segment (ids are GUIDs, but never trust that).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn paging_query(p: Paging) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(limit) = p.limit {
        q.push(("paging.limit", limit.to_string()));
    }
    if let Some(offset) = p.offset {
        q.push(("paging.offset", offset.to_string()));
    }
    q
}

/// Whether another page follows. Trusts `total` when Wix could count; otherwise a full page
/// means "maybe more".
fn has_more(meta: Option<&PagingMetadata>, offset: u32, got: usize, page: u32) -> bool {
    if got == 0 {
        return false;
    }
    match meta {
        Some(PagingMetadata {
            total: Some(total),
            too_many_to_count,
            ..
        }) if *too_many_to_count != Some(true) => (offset as u64 + got as u64) < *total as u64,
        _ => got as u32 >= page,
    }
}

pub(crate) async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, WixError> {
    let bytes = attache_transport::read_json(resp)
        .await
        .map_err(|e| WixError::Decode(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| WixError::Decode(e.to_string()))
}

/// Worth another try: the connection failed, or Wix answered 429/500/503/504.
pub(crate) fn is_transient(err: &WixError) -> bool {
    match err {
        WixError::Api { status, .. } => is_retryable_status(*status),
        WixError::Transport(t) => t.kind.is_transient(),
        _ => false,
    }
}

pub(crate) fn retry_after_of(err: &WixError) -> Option<Duration> {
    match err {
        WixError::Api { retry_after, .. } => *retry_after,
        _ => None,
    }
}

pub(crate) async fn error_from(resp: Response) -> WixError {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-wix-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let reason = resp
        .status()
        .canonical_reason()
        .unwrap_or("error")
        .to_owned();
    // Only the head of an error answer is read; a cut one is parsed as no body at all.
    let body = attache_transport::read_capped(resp, attache_transport::ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let parsed: ErrorBody = serde_json::from_slice(&body.bytes).unwrap_or_default();
    let details = parsed.details.unwrap_or_default();
    let app = details.application_error.unwrap_or_default();
    let violations = details
        .validation_error
        .map(|v| v.field_violations)
        .unwrap_or_default()
        .into_iter()
        .map(|v| FieldViolation {
            field: v.field.unwrap_or_default(),
            description: v.description.unwrap_or_default(),
            rule: v.rule_name.or(v.violated_rule),
        })
        .collect();
    WixError::Api {
        status,
        message: parsed.message.filter(|m| !m.is_empty()).unwrap_or(reason),
        application_code: app.code,
        description: app.description,
        // `{}` is what Wix sends when there is nothing to say.
        application_data: app
            .data
            .filter(|d| !d.is_null() && d.as_object().is_none_or(|o| !o.is_empty())),
        violations,
        request_id,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_stops_on_total_or_short_page() {
        let meta = |total, tmc| PagingMetadata {
            total: Some(total),
            too_many_to_count: Some(tmc),
            ..Default::default()
        };
        assert!(has_more(Some(&meta(250, false)), 100, 100, 100));
        assert!(!has_more(Some(&meta(200, false)), 100, 100, 100));
        assert!(has_more(Some(&meta(10, true)), 0, 100, 100));
        assert!(!has_more(None, 0, 99, 100));
        assert!(!has_more(Some(&meta(500, false)), 0, 0, 100));
    }

    #[tokio::test]
    async fn errors_carry_status_codes_data_violations_request_id_and_retry_after() {
        let body = serde_json::json!({
            "message": "Bad request",
            "details": {
                "applicationError": {"code": "QUOTA", "description": "too many", "data": {"limit": 5}},
                "validationError": {"fieldViolations": [
                    {"field": "fileName", "description": "too long", "ruleName": "MAX_LENGTH"}
                ]}
            }
        });
        let resp = http::Response::builder()
            .status(400)
            .header("x-wix-request-id", "req-1")
            .header("retry-after", "7")
            .body(body.to_string())
            .unwrap();
        match error_from(Response::from(resp)).await {
            WixError::Api {
                status,
                application_code,
                description,
                application_data,
                violations,
                request_id,
                retry_after,
                ..
            } => {
                assert_eq!(status, 400);
                assert_eq!(application_code.as_deref(), Some("QUOTA"));
                assert_eq!(description.as_deref(), Some("too many"));
                assert_eq!(application_data, Some(serde_json::json!({"limit": 5})));
                assert_eq!(violations[0].rule.as_deref(), Some("MAX_LENGTH"));
                assert_eq!(request_id.as_deref(), Some("req-1"));
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
        // Wix's empty `data: {}` is no data.
        let empty = serde_json::json!({"details": {"applicationError": {"code": "X", "data": {}}}});
        let resp = http::Response::builder()
            .status(404)
            .body(empty.to_string())
            .unwrap();
        assert!(matches!(
            error_from(Response::from(resp)).await,
            WixError::Api {
                application_data: None,
                status: 404,
                ..
            }
        ));
    }

    /// A body that never ends: what a broken or hostile server can send.
    fn endless(status: u16, head: &'static [u8]) -> Response {
        use futures::StreamExt;
        let blocks = futures::stream::iter(std::iter::once(bytes::Bytes::from_static(head)))
            .chain(futures::stream::repeat_with(|| {
                bytes::Bytes::from_static(&[b' '; 64 * 1024])
            }))
            .map(Ok::<_, std::io::Error>);
        let resp = http::Response::builder()
            .status(status)
            .body(reqwest::Body::wrap_stream(blocks))
            .unwrap();
        Response::from(resp)
    }

    #[tokio::test]
    async fn endless_answers_are_cut_at_their_limit_with_a_reason() {
        match decode::<serde_json::Value>(endless(200, b"{\"contacts\": [")).await {
            Err(WixError::Decode(why)) => assert!(why.contains("larger than 32 MiB"), "{why}"),
            other => panic!("{other:?}"),
        }
        // An error answer is read up to its limit; its status still says what happened.
        match error_from(endless(503, b"{\"message\": \"busy\"")).await {
            WixError::Api {
                status, message, ..
            } => assert_eq!((status, message.as_str()), (503, "Service Unavailable")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn base_url_must_be_http() {
        let auth = WixAuth::ApiKey {
            key: Sensitive::new("k".into()),
            site_id: "s".into(),
        };
        assert!(WixClient::new("ftp://x", auth.clone()).is_err());
        assert!(WixClient::new("not a url", auth.clone()).is_err());
        let c = WixClient::new("http://127.0.0.1:9/prefix", auth).unwrap();
        assert_eq!(
            c.url("contacts/v4/contacts").as_str(),
            "http://127.0.0.1:9/prefix/contacts/v4/contacts"
        );
    }

    // Fuzzing by property: any error answer becomes an `Api` error with its status, any body a
    // decode error or a value, never a panic.
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_error_answer_keeps_its_status(
            status in 400u16..600,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            json_body in "\\{\"message\": \"\\PC{0,20}\", \"details\": \\{\"(applicationError|validationError)\": \\PC{0,60}\\}\\}",
            retry_after in "\\PC{0,8}",
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for body in [body.clone(), json_body.clone().into_bytes()] {
                let resp = http::Response::builder()
                    .status(status)
                    .header("retry-after", retry_after.as_str().parse::<http::HeaderValue>().unwrap_or(http::HeaderValue::from_static("1")))
                    .body(body)
                    .unwrap();
                match runtime.block_on(error_from(Response::from(resp))) {
                    WixError::Api { status: got, .. } => proptest::prop_assert_eq!(got, status),
                    other => proptest::prop_assert!(false, "{:?}", other),
                }
            }
            let resp = http::Response::builder().status(200).body(body).unwrap();
            let _ = runtime.block_on(decode::<crate::wire::ListContactsResponse>(Response::from(resp)));
        }
    }
}
