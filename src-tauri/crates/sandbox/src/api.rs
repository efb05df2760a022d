//! HTTP routes: Contacts v4, Contact Attachments v4, the upload target and the media host.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use crate::errors::ApiError;
use crate::faults::{Faults, RateWindow};
use crate::site::{self, PendingUpload, Site, StoredAttachment};
use crate::{files, SandboxConfig};

const CONTACTS_DEFAULT_LIMIT: u64 = 50;
const CONTACTS_MAX_LIMIT: u64 = 1000;
const ATTACHMENTS_MAX_LIMIT: u64 = 100;
const SEARCH_MAX_CHARS: usize = 100;
/// Upload size cap. Wix documents none for attachments; the sandbox needs one to stay safe.
const MAX_UPLOAD_BYTES: u64 = 1 << 30;

const SORT_FIELDS: &[&str] = &[
    "createdDate",
    "lastActivity.activityDate",
    "primaryInfo.email",
    "info.name.first",
    "info.name.last",
    "info.company",
    "info.jobTitle",
    "info.birthdate",
];

pub struct AppState {
    pub(crate) config: SandboxConfig,
    pub(crate) site: Site,
    faults: std::sync::RwLock<Faults>,
    rate: RateWindow,
    /// Denied EspoCRM logins, for its ten-a-minute lockout.
    pub(crate) espo_denials: crate::espo::Denials,
    /// App access tokens handed out, with when each expires.
    app_tokens: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Media upload tokens, tus uploads and download links (memory only).
    pub(crate) media: crate::media::MediaHosts,
    /// Requests seen since recording was switched on (`DELETE /_admin/requests`), for the
    /// contract tests that compare the Rust client's requests with the Wix JS SDK's.
    recorded: std::sync::Mutex<Option<Vec<Value>>>,
    /// Where attachment webhooks go, if anywhere.
    webhook_url: std::sync::RwLock<Option<String>>,
    /// Uploads to an upload host being answered now, and the most at once since the last
    /// reset (`/_admin/uploads-in-flight`): how tests see a client's concurrency bound.
    uploads_in_flight: std::sync::atomic::AtomicUsize,
    uploads_peak: std::sync::atomic::AtomicUsize,
}

impl AppState {
    pub fn new(config: SandboxConfig, site: Site) -> Self {
        let faults = std::sync::RwLock::new(config.faults.clone());
        let hook = config.webhook_url.clone();
        Self {
            config,
            site,
            faults,
            rate: RateWindow::default(),
            espo_denials: Default::default(),
            app_tokens: Default::default(),
            media: Default::default(),
            recorded: Default::default(),
            webhook_url: std::sync::RwLock::new(hook),
            uploads_in_flight: Default::default(),
            uploads_peak: Default::default(),
        }
    }

    pub(crate) fn webhook_url(&self) -> Option<String> {
        self.webhook_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub(crate) type Shared = Arc<AppState>;
type ApiResult = Result<Response, ApiError>;

pub fn router(state: Shared) -> Router {
    let wix = Router::new()
        .route("/contacts/v4/contacts", get(list_contacts))
        .route("/contacts/v4/contacts/query", post(query_contacts))
        .route("/contacts/v4/contacts/{id}", get(get_contact))
        .route(
            "/contacts/v4/attachments/{contact_id}/upload-url",
            post(generate_upload_url),
        )
        .route(
            "/contacts/v4/attachments/{contact_id}",
            get(list_attachments),
        )
        .route(
            "/contacts/v4/attachments/{contact_id}/{attachment_id}",
            get(get_attachment).delete(delete_attachment),
        )
        .merge(crate::media::api_router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    // Upload and media URLs carry their own token, like Wix's upload and media hosts.
    let hosts = Router::new()
        .route("/_upload/attachments/{token}", put(upload))
        .route("/_media/{id}/{token}/{name}", get(media_file))
        .route("/_preview/{id}/{token}", get(media_preview))
        .merge(crate::media::host_router());
    let admin = Router::new()
        .route("/_admin/faults", get(get_faults).put(set_faults))
        // Revokes every app token, as an app secret reset does (for tests of the re-mint).
        .route("/_admin/tokens", axum::routing::delete(revoke_tokens))
        .route(
            "/_admin/requests",
            get(recorded_requests).delete(start_recording),
        )
        .route("/_admin/webhooks", put(register_webhook))
        .route(
            "/_admin/uploads-in-flight",
            get(uploads_in_flight).delete(reset_uploads_peak),
        )
        .route(
            "/_admin/webhooks/public-key",
            get(|| async { crate::webhooks::PUBLIC_KEY }),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ))
        .route("/oauth2/token", post(mint_token));
    wix.merge(hosts)
        .merge(crate::espo::router(state.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_uploads_in_flight,
        ))
        .merge(admin)
        .fallback(|| async { ApiError::not_found("NOT_FOUND", "No such endpoint") })
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_loopback_host,
        ))
        .with_state(state)
}

/// Counts PUTs to the upload hosts while they are answered (injected latency included).
async fn count_uploads_in_flight(
    State(state): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    if !(req.method() == axum::http::Method::PUT && req.uri().path().starts_with("/_upload/")) {
        return next.run(req).await;
    }
    struct Leaving<'a>(&'a std::sync::atomic::AtomicUsize);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, SeqCst);
        }
    }
    let now = state.uploads_in_flight.fetch_add(1, SeqCst) + 1;
    state.uploads_peak.fetch_max(now, SeqCst);
    // Counted down however the request ends, a dropped connection included.
    let _leaving = Leaving(&state.uploads_in_flight);
    next.run(req).await
}

async fn uploads_in_flight(State(state): State<Shared>) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    Json(json!({
        "now": state.uploads_in_flight.load(SeqCst),
        "peak": state.uploads_peak.load(SeqCst),
    }))
    .into_response()
}

async fn reset_uploads_peak(State(state): State<Shared>) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    state
        .uploads_peak
        .store(state.uploads_in_flight.load(SeqCst), SeqCst);
    Json(json!({})).into_response()
}

async fn get_faults(State(state): State<Shared>) -> Response {
    Json(state.faults()).into_response()
}

async fn set_faults(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| ApiError::violation("body", format!("malformed faults: {e}"), "FORMAT"))?;
    *state.faults.write().unwrap_or_else(|p| p.into_inner()) = faults.clone();
    Ok(Json(faults).into_response())
}

/// Latency, the per-site rate limit, and 5xx / 429 answers given before any work is done.
async fn inject_faults(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let faults = state.faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    let is_api = !req.uri().path().starts_with("/_");
    if let (true, Some(limit)) = (is_api, faults.rate_limit_per_minute) {
        if let Some(wait) = state.rate.admit(limit) {
            return too_many_requests(wait.as_secs().max(1));
        }
    }
    if Faults::roll(faults.throttle_rate) {
        return too_many_requests(1);
    }
    if Faults::roll(faults.error_rate) {
        let status = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ][fastrand::usize(0..3)];
        if crate::espo::is_espo_path(req.uri()) {
            // EspoCRM's shape: a status, a reason header, no body.
            return crate::espo::refusal(status, "injected server error");
        }
        return ApiError::application(status, "INJECTED_FAULT", "injected server error")
            .into_response();
    }
    next.run(req).await
}

/// `{"callbackUrl": "http://…"}` registers where webhooks go; `null` stops them.
async fn register_webhook(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::violation("body", format!("malformed JSON: {e}"), "FORMAT"))?;
    let url = body
        .get("callbackUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    *state.webhook_url.write().unwrap_or_else(|p| p.into_inner()) = url.clone();
    Ok(Json(json!({ "callbackUrl": url })).into_response())
}

/// Header on the requests the sandbox sends to itself (an import fetching its URL), which the
/// request recorder leaves out: the record holds only what clients send.
pub(crate) const SANDBOX_OWN_REQUEST: &str = "x-attache-sandbox-own-request";

/// Clears the record and starts (or keeps) recording.
async fn start_recording(State(state): State<Shared>) -> Response {
    *state.recorded.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    Json(json!({})).into_response()
}

async fn recorded_requests(State(state): State<Shared>) -> Response {
    let list = state
        .recorded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default();
    Json(json!({ "requests": list })).into_response()
}

/// While recording: method, path, query pairs, the auth headers' presence and the JSON body
/// of every API request (upload bodies are bytes, never buffered: only their line is kept).
async fn record_request(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let recording = state
        .recorded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    if !recording || req.headers().contains_key(SANDBOX_OWN_REQUEST) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // Only JSON bodies of a known, modest size are read (and handed on); anything else (file
    // bytes, EspoCRM's data URLs) streams through untouched and is recorded without its body.
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= 1 << 20);
    let is_api = !parts.uri.path().starts_with("/_") && is_json && small;
    let (body, json_body) = if is_api {
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Body::from(bytes), parsed)
    } else {
        (body, Value::Null)
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let entry = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": query,
        "body": json_body,
        "authorization": header("authorization").is_some(),
        "siteId": header("wix-site-id"),
        "contentType": header("content-type"),
    });
    if let Some(list) = state
        .recorded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        list.push(entry);
    }
    next.run(Request::from_parts(parts, body)).await
}

fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut resp = ApiError::application(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
        "Too many requests",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

async fn request_id(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-wix-request-id", v);
    }
    resp
}

async fn revoke_tokens(State(state): State<Shared>) -> Response {
    state
        .app_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    Json(json!({})).into_response()
}

/// Wix app OAuth, client credentials per installation (spec §4): the snake_case body only (the
/// headless camelCase style is a different product and is refused), 200 with `access_token`
/// and `expires_in`.
async fn mint_token(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let Some(app) = state.config.app.clone() else {
        return Err(ApiError::not_found(
            "NOT_FOUND",
            "No app is installed on this site",
        ));
    };
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::violation("body", format!("malformed JSON: {e}"), "FORMAT"))?;
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    if field("grant_type").is_empty() {
        return Err(ApiError::violation(
            "grant_type",
            "is required",
            "REQUIRED_FIELD",
        ));
    }
    if field("grant_type") != "client_credentials" {
        return Err(ApiError::bad_request(
            "UNSUPPORTED_GRANT_TYPE",
            "grant_type must be client_credentials",
        ));
    }
    if field("client_id") != app.app_id || field("client_secret") != app.app_secret {
        return Err(ApiError::application(
            StatusCode::UNAUTHORIZED,
            "INVALID_CLIENT",
            "Invalid app ID or app secret",
        ));
    }
    if field("instance_id") != app.instance_id {
        return Err(ApiError::not_found(
            "INSTANCE_NOT_FOUND",
            "The app is not installed on a site with this instance ID",
        ));
    }
    let token = format!("OAUTH2.{}", site::new_token());
    state
        .app_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(token.clone(), std::time::Instant::now() + app.token_ttl);
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": app.token_ttl.as_secs().max(1),
    }))
    .into_response())
}

/// Wix's API-key auth: the raw key in `Authorization` (no "Bearer"), the site in `wix-site-id`;
/// or an app's access token (raw, or after "Bearer"), which names the site itself.
/// `/_admin/*` with an admin token configured: only for whoever holds it.
async fn require_admin_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = state.config.admin_token.as_deref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|given| same_secret(given, token)) {
        return next.run(req).await;
    }
    ApiError::application(
        StatusCode::UNAUTHORIZED,
        "ADMIN_TOKEN_REQUIRED",
        "This site's admin side needs its admin token",
    )
    .into_response()
}

/// With `loopback_only`, refuses a request whose host is not a loopback name: a browser page
/// on `evil.example` whose DNS answers 127.0.0.1 still sends `Host: evil.example`.
async fn require_loopback_host(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if !state.config.loopback_only {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if host.as_deref().is_some_and(is_loopback_host) {
        return next.run(req).await;
    }
    ApiError::application(
        StatusCode::MISDIRECTED_REQUEST,
        "FOREIGN_HOST",
        "This site answers only on this computer's loopback address",
    )
    .into_response()
}

/// `127.0.0.1`, `[::1]` or `localhost`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compares secrets in constant time, so timing does not tell how much of a guess was right.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

async fn require_api_key(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = key.strip_prefix("Bearer ").unwrap_or(key);
    let token_expiry = state
        .app_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(token)
        .copied();
    if let Some(expires) = token_expiry {
        if std::time::Instant::now() >= expires {
            return ApiError::application(
                StatusCode::UNAUTHORIZED,
                "EXPIRED_TOKEN",
                "The access token has expired",
            )
            .into_response();
        }
        return next.run(req).await;
    }
    if key.is_empty() || !same_secret(key, &state.config.api_key) {
        let why = if key.is_empty() {
            "Missing Authorization header"
        } else {
            "Invalid API key"
        };
        return ApiError::application(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", why)
            .into_response();
    }
    let Some(site_id) = headers.get("wix-site-id").and_then(|v| v.to_str().ok()) else {
        return ApiError::application(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Site-level API requires the wix-site-id header",
        )
        .into_response();
    };
    if site_id != state.config.site_id {
        return ApiError::not_found("SITE_NOT_FOUND", format!("Site {site_id} not found"))
            .into_response();
    }
    next.run(req).await
}

// ---------------------------------------------------------------------------------------------
// Contacts v4

async fn list_contacts(
    State(state): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult {
    let mut sort = None;
    let (mut limit, mut offset) = (None, None);
    let mut fields = Vec::new();
    let mut fieldsets = Vec::new();
    let mut order = None;
    for (k, v) in params {
        match k.as_str() {
            "sort.fieldName" => sort = Some(v),
            "sort.order" => order = Some(v),
            "paging.limit" => limit = Some(parse_u64("paging.limit", &v)?),
            "paging.offset" => offset = Some(parse_u64("paging.offset", &v)?),
            "fields" => fields.push(v),
            "fieldsets" => fieldsets.push(v),
            _ => {} // Wix ignores keys it does not know; so do we.
        }
    }
    let sorting = sort.map(|field_name| Sorting { field_name, order });
    let query = ContactQuery {
        filter: None,
        sort: sorting.into_iter().collect(),
        paging: Some(Paging { limit, offset }),
        fields,
        fieldsets,
    };
    respond_contacts(&state, None, query)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QueryContactsBody {
    search: Option<String>,
    query: Option<ContactQuery>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContactQuery {
    filter: Option<Value>,
    #[serde(default)]
    sort: Vec<Sorting>,
    paging: Option<Paging>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    fieldsets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sorting {
    field_name: String,
    order: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Paging {
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn query_contacts(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let body: QueryContactsBody = if body.is_empty() {
        QueryContactsBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::violation("body", format!("malformed JSON: {e}"), "FORMAT"))?
    };
    if let Some(s) = &body.search {
        if s.chars().count() > SEARCH_MAX_CHARS {
            return Err(ApiError::violation(
                "search",
                "must be at most 100 characters",
                "MAX_LENGTH",
            ));
        }
    }
    respond_contacts(&state, body.search, body.query.unwrap_or_default())
}

fn respond_contacts(state: &AppState, search: Option<String>, query: ContactQuery) -> ApiResult {
    let paging = query.paging.unwrap_or_default();
    let limit = paging.limit.unwrap_or(CONTACTS_DEFAULT_LIMIT);
    if limit > CONTACTS_MAX_LIMIT {
        return Err(ApiError::bad_request(
            "ILLEGAL_LIMIT",
            format!("Limit {limit} is over the maximum of 1000"),
        ));
    }
    let offset = paging.offset.unwrap_or(0);
    if query.sort.len() > 1 {
        return Err(ApiError::violation(
            "query.sort",
            "at most one sort field",
            "MAX_SIZE",
        ));
    }
    let sort = match query.sort.first() {
        Some(s) if !SORT_FIELDS.contains(&s.field_name.as_str()) => {
            return Err(ApiError::bad_request(
                "UNSUPPORTED_SORT_FIELD",
                format!("Sorting by {} is not supported", s.field_name),
            ))
        }
        Some(s) => {
            let desc = match s.order.as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(other) => {
                    return Err(ApiError::violation(
                        "sort.order",
                        format!("unknown order {other}"),
                        "ENUM",
                    ))
                }
            };
            (s.field_name.clone(), desc)
        }
        None => ("createdDate".to_string(), false),
    };
    let filter = match &query.filter {
        Some(f) => Some(crate::api::filter::Filter::parse(f)?),
        None => None,
    };
    let data = state.site.lock();
    let mut matched: Vec<&Value> = data
        .contacts
        .iter()
        .filter(|c| filter.as_ref().is_none_or(|f| f.matches(c)))
        .filter(|c| search.as_deref().is_none_or(|s| search_matches(c, s)))
        .collect();
    matched.sort_by(|a, b| {
        let ord = compare_field(a, b, &sort.0).then_with(|| text(a, "id").cmp(&text(b, "id")));
        if sort.1 {
            ord.reverse()
        } else {
            ord
        }
    });
    let total = matched.len() as u64;
    let page: Vec<Value> = matched
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|c| project(c, &query.fields, &query.fieldsets))
        .collect();
    Ok(Json(json!({
        "contacts": page,
        "pagingMetadata": {"count": page.len(), "offset": offset, "total": total, "tooManyToCount": false}
    }))
    .into_response())
}

async fn get_contact(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult {
    let data = state.site.lock();
    let (target, response_type) = match data.merged.get(&id) {
        Some(survivor) => (survivor.clone(), "MERGED"),
        None => (id.clone(), "REGULAR"),
    };
    let contact = data
        .contacts
        .iter()
        .find(|c| text(c, "id") == target)
        .ok_or_else(|| {
            ApiError::not_found("CONTACT_NOT_FOUND", format!("Contact {id} not found"))
        })?;
    let fields: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.clone())
        .collect();
    let sets: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "fieldsets")
        .map(|(_, v)| v.clone())
        .collect();
    Ok(
        Json(json!({"contact": project(contact, &fields, &sets), "responseType": response_type}))
            .into_response(),
    )
}

/// `search` matches a whole word-prefix of the first name, last name, an e-mail or a phone,
/// case-insensitively.
fn search_matches(contact: &Value, search: &str) -> bool {
    let needle = search.trim().to_lowercase();
    if needle.is_empty() {
        return true;
    }
    let mut haystack = vec![
        field_values(contact, "info.name.first"),
        field_values(contact, "info.name.last"),
    ];
    haystack.push(field_values(contact, "info.emails.email"));
    haystack.push(field_values(contact, "info.phones.phone"));
    let full = format!(
        "{} {}",
        text(contact, "info.name.first"),
        text(contact, "info.name.last")
    )
    .to_lowercase();
    full.starts_with(&needle)
        || haystack.into_iter().flatten().any(|v| match v {
            Value::String(s) => s.to_lowercase().starts_with(&needle),
            _ => false,
        })
}

/// Applies `fields` / `fieldsets` projection; `id` and `revision` are always kept.
fn project(contact: &Value, fields: &[String], fieldsets: &[String]) -> Value {
    let mut keep: Vec<&str> = Vec::new();
    for set in fieldsets {
        match set.as_str() {
            "BASIC" => keep.extend(["primaryInfo", "info.name"]),
            "COMMUNICATION_DETAILS" => keep.extend([
                "primaryInfo",
                "info.name",
                "info.emails",
                "info.phones",
                "info.addresses",
            ]),
            "EXTENDED" => keep.extend([
                "primaryInfo",
                "info.name",
                "info.emails",
                "info.phones",
                "info.addresses",
                "info.extendedFields",
            ]),
            _ => return contact.clone(), // FULL, or unknown: everything
        }
    }
    keep.extend(fields.iter().map(String::as_str));
    if keep.is_empty() {
        return contact.clone();
    }
    let mut out = Map::new();
    for key in ["id", "revision"] {
        if let Some(v) = contact.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for path in keep {
        copy_path(contact, &mut out, path);
    }
    Value::Object(out)
}

fn copy_path(src: &Value, out: &mut Map<String, Value>, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(v) = src.get(head) else { return };
    match rest {
        None => {
            out.insert(head.into(), v.clone());
        }
        Some(rest) => {
            let slot = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = slot {
                copy_path(v, m, rest);
            }
        }
    }
}

/// Values at a dotted path, looking through Wix's `{items: [...]}` wrappers.
pub(crate) fn field_values(v: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![v.clone()];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for c in current {
            let c = match c.get("items") {
                Some(Value::Array(items)) if seg != "items" => {
                    next.extend(items.iter().filter_map(|i| i.get(seg).cloned()));
                    continue;
                }
                _ => c,
            };
            if let Some(x) = c.get(seg) {
                next.push(x.clone());
            }
        }
        current = next;
    }
    current.into_iter().filter(|v| !v.is_null()).collect()
}

fn text(v: &Value, path: &str) -> String {
    field_values(v, path)
        .into_iter()
        .next()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn compare_field(a: &Value, b: &Value, field: &str) -> Ordering {
    text(a, field)
        .to_lowercase()
        .cmp(&text(b, field).to_lowercase())
}

mod filter {
    //! The subset of the Wix API Query Language the Contacts v4 docs list, with their errors.

    use serde_json::Value;

    use super::field_values;
    use crate::errors::ApiError;

    const IDENT_OPS: &[&str] = &["$eq", "$ne", "$in", "$exists"];
    const TEXT_OPS: &[&str] = &["$eq", "$ne", "$in", "$exists", "$begins", "$startsWith"];
    const DATE_OPS: &[&str] = &["$eq", "$ne", "$gt", "$lt", "$gte", "$lte"];

    fn operators_for(field: &str) -> Option<&'static [&'static str]> {
        Some(match field {
            "id" | "info.locale" => IDENT_OPS,
            "createdDate" | "updatedDate" | "lastActivity.activityDate" | "info.birthdate" => {
                DATE_OPS
            }
            "primaryInfo.email"
            | "primaryInfo.phone"
            | "info.name.first"
            | "info.name.last"
            | "info.company"
            | "info.jobTitle"
            | "info.emails.email"
            | "info.phones.phone"
            | "primaryEmail.email"
            | "primaryPhone.phone"
            | "info.addresses.address.city"
            | "info.addresses.address.country"
            | "info.addresses.address.postalCode" => TEXT_OPS,
            "info.labelKeys" => &["$hasSome", "$hasAll"],
            _ => return None,
        })
    }

    pub enum Filter {
        And(Vec<Filter>),
        Or(Vec<Filter>),
        Not(Box<Filter>),
        Field {
            path: String,
            op: String,
            value: Value,
        },
    }

    fn malformed(why: impl Into<String>) -> ApiError {
        ApiError::bad_request("MALFORMED_FILTER", why)
    }

    impl Filter {
        pub fn parse(v: &Value) -> Result<Filter, ApiError> {
            let obj = v
                .as_object()
                .ok_or_else(|| malformed("filter must be an object"))?;
            let mut all = Vec::new();
            for (key, cond) in obj {
                match key.as_str() {
                    "$and" | "$or" => {
                        let list = cond
                            .as_array()
                            .ok_or_else(|| malformed(format!("{key} takes an array")))?
                            .iter()
                            .map(Filter::parse)
                            .collect::<Result<Vec<_>, _>>()?;
                        all.push(if key == "$and" {
                            Filter::And(list)
                        } else {
                            Filter::Or(list)
                        });
                    }
                    "$not" => all.push(Filter::Not(Box::new(Filter::parse(cond)?))),
                    k if k.starts_with('$') => {
                        return Err(ApiError::bad_request(
                            "UNSUPPORTED_FILTER_OPERATOR",
                            format!("Unknown operator {k}"),
                        ))
                    }
                    field => {
                        let ops = operators_for(field).ok_or_else(|| {
                            ApiError::bad_request(
                                "UNSUPPORTED_FILTER_FIELD_UNKNOWN",
                                format!("Filtering on {field} is not supported"),
                            )
                        })?;
                        let conds: Vec<(String, Value)> = match cond {
                            Value::Object(m) if m.keys().all(|k| k.starts_with('$')) => {
                                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                            }
                            Value::Object(_) | Value::Array(_) => {
                                return Err(ApiError::bad_request(
                                    "UNSUPPORTED_FILTER_VALUE",
                                    format!(
                                        "Value for {field} must be a scalar or an operator object"
                                    ),
                                ))
                            }
                            scalar => vec![("$eq".into(), scalar.clone())],
                        };
                        for (op, value) in conds {
                            if !ops.contains(&op.as_str()) {
                                return Err(ApiError::bad_request(
                                    "UNSUPPORTED_FILTER_OPERATOR",
                                    format!("Operator {op} is not supported on {field}"),
                                ));
                            }
                            check_value_type(field, &op, &value)?;
                            all.push(Filter::Field {
                                path: field.to_string(),
                                op,
                                value,
                            });
                        }
                    }
                }
            }
            Ok(Filter::And(all))
        }

        pub fn matches(&self, contact: &Value) -> bool {
            match self {
                Filter::And(list) => list.iter().all(|f| f.matches(contact)),
                Filter::Or(list) => list.iter().any(|f| f.matches(contact)),
                Filter::Not(f) => !f.matches(contact),
                Filter::Field { path, op, value } => {
                    let found = field_values(contact, path);
                    let found: Vec<&Value> = found
                        .iter()
                        .flat_map(|v| match v {
                            Value::Array(a) => a.iter().collect::<Vec<_>>(),
                            other => vec![other],
                        })
                        .collect();
                    match op.as_str() {
                        "$eq" => found.iter().any(|f| eq(f, value)),
                        "$ne" => !found.iter().any(|f| eq(f, value)),
                        "$in" => value.as_array().is_some_and(|opts| {
                            found.iter().any(|f| opts.iter().any(|o| eq(f, o)))
                        }),
                        "$exists" => value.as_bool().unwrap_or(true) != found.is_empty(),
                        "$begins" | "$startsWith" => {
                            let p = value.as_str().unwrap_or_default().to_lowercase();
                            found.iter().any(|f| {
                                f.as_str().is_some_and(|s| s.to_lowercase().starts_with(&p))
                            })
                        }
                        "$gt" | "$lt" | "$gte" | "$lte" => {
                            let v = value.as_str().unwrap_or_default();
                            found.iter().any(|f| {
                                let s = f.as_str().unwrap_or_default();
                                match op.as_str() {
                                    "$gt" => s > v,
                                    "$lt" => s < v,
                                    "$gte" => s >= v,
                                    _ => s <= v,
                                }
                            })
                        }
                        "$hasSome" | "$hasAll" => {
                            let want = value.as_array().cloned().unwrap_or_default();
                            if op == "$hasSome" {
                                want.iter().any(|w| found.iter().any(|f| eq(f, w)))
                            } else {
                                want.iter().all(|w| found.iter().any(|f| eq(f, w)))
                            }
                        }
                        _ => false,
                    }
                }
            }
        }
    }

    fn check_value_type(field: &str, op: &str, value: &Value) -> Result<(), ApiError> {
        let ok = match op {
            "$in" | "$hasSome" | "$hasAll" => value.is_array(),
            "$exists" => value.is_boolean(),
            _ => value.is_string() || value.is_number(),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::bad_request(
                "UNSUPPORTED_FILTER_VALUE_TYPE",
                format!("Wrong value type for {op} on {field}"),
            ))
        }
    }

    /// Strings compare case-insensitively (e-mails are case-insensitive; names as Wix shows).
    fn eq(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::String(x), Value::String(y)) => {
                x.eq_ignore_ascii_case(y) || x.to_lowercase() == y.to_lowercase()
            }
            _ => a == b,
        }
    }
}

fn parse_u64(field: &str, v: &str) -> Result<u64, ApiError> {
    v.parse().map_err(|_| {
        ApiError::violation(
            field,
            format!("'{v}' is not a non-negative integer"),
            "FORMAT",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Contact Attachments v4

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn require_contact(state: &AppState, contact_id: &str) -> Result<(), ApiError> {
    if !is_guid(contact_id) {
        return Err(ApiError::violation(
            "contactId",
            "must be a valid GUID",
            "FORMAT",
        ));
    }
    let known = state
        .site
        .lock()
        .contacts
        .iter()
        .any(|c| text(c, "id") == contact_id);
    if known {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "CONTACT_NOT_FOUND",
            format!("Contact {contact_id} not found"),
        ))
    }
}

/// The base URL the caller reached us on, so returned URLs work through any loopback address.
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn attachment_json(a: &StoredAttachment, origin: &str) -> Value {
    let url = format!(
        "{origin}/_media/{}/{}/{}",
        a.id,
        a.token,
        urlencode(&a.file_name)
    );
    if a.is_image() {
        let mut v = json!({
            "id": a.id,
            "fileName": a.file_name,
            "mimeType": a.mime_type,
            "attachmentType": "IMAGE",
            "image": {"id": format!("{}~mv2", a.id), "url": url, "width": a.width, "height": a.height, "altText": null},
        });
        if let Some((w, h)) = a.preview {
            v["previewImage"] = json!({
                "id": format!("{}~preview", a.id),
                "url": format!("{origin}/_preview/{}/{}", a.id, a.token),
                "width": w, "height": h
            });
        }
        v
    } else {
        json!({
            "id": a.id,
            "fileName": a.file_name,
            "mimeType": a.mime_type,
            "attachmentType": "OTHER",
            "document": {"id": format!("{}~doc", a.id), "url": url},
        })
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn list_attachments(
    State(state): State<Shared>,
    Path(contact_id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult {
    require_contact(&state, &contact_id)?;
    let (mut limit, mut offset) = (ATTACHMENTS_MAX_LIMIT, 0);
    for (k, v) in &params {
        match k.as_str() {
            "paging.limit" => limit = parse_u64("paging.limit", v)?,
            "paging.offset" => offset = parse_u64("paging.offset", v)?,
            _ => {}
        }
    }
    if limit > ATTACHMENTS_MAX_LIMIT {
        return Err(ApiError::violation(
            "paging.limit",
            "must not be greater than 100",
            "MAX",
        ));
    }
    let origin = origin(&headers);
    // A lagging listing leaves out what was stored less than `list_lag_ms` ago.
    let lag = std::time::Duration::from_millis(state.faults().list_lag_ms);
    let listed_by = std::time::SystemTime::now() - lag;
    let data = state.site.lock();
    let all: Vec<&StoredAttachment> = data
        .attachments
        .iter()
        .filter(|a| a.contact_id == contact_id)
        .filter(|a| {
            lag.is_zero()
                || humantime::parse_rfc3339(&a.created_date).is_ok_and(|at| at <= listed_by)
        })
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|a| attachment_json(a, &origin))
        .collect();
    Ok(Json(json!({
        "attachments": page,
        "metadata": {"count": page.len(), "offset": offset, "total": all.len(), "tooManyToCount": false}
    }))
    .into_response())
}

async fn get_attachment(
    State(state): State<Shared>,
    Path((contact_id, attachment_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    require_contact(&state, &contact_id)?;
    let data = state.site.lock();
    let a = data
        .attachments
        .iter()
        .find(|a| a.id == attachment_id && a.contact_id == contact_id)
        .ok_or_else(|| {
            ApiError::not_found(
                "ATTACHMENT_NOT_FOUND",
                format!("Attachment {attachment_id} not found"),
            )
        })?;
    Ok(Json(json!({"attachment": attachment_json(a, &origin(&headers))})).into_response())
}

async fn delete_attachment(
    State(state): State<Shared>,
    Path((contact_id, attachment_id)): Path<(String, String)>,
) -> ApiResult {
    require_contact(&state, &contact_id)?;
    let change = {
        let mut data = state.site.lock();
        let before = data.attachments.len();
        data.attachments
            .retain(|a| !(a.id == attachment_id && a.contact_id == contact_id));
        if data.attachments.len() == before {
            return Err(ApiError::not_found(
                "ATTACHMENT_NOT_FOUND",
                format!("Attachment {attachment_id} not found"),
            ));
        }
        state.site.changed(&data)
    };
    state.site.commit(change).await?;
    // Files go after the record: a crash in between leaves an orphan file, never a dangling record.
    let _ = tokio::fs::remove_file(state.site.file_path(&attachment_id)).await;
    let _ = tokio::fs::remove_file(state.site.preview_path(&attachment_id)).await;
    crate::webhooks::announce(&state, "deleted", &attachment_id, None);
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadUrlBody {
    contact_id: Option<String>,
    file_name: Option<String>,
    mime_type: Option<String>,
}

async fn generate_upload_url(
    State(state): State<Shared>,
    Path(contact_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let body: UploadUrlBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::violation("body", format!("malformed JSON: {e}"), "FORMAT"))?;
    if let Some(in_body) = &body.contact_id {
        if in_body != &contact_id {
            return Err(ApiError::violation(
                "contactId",
                "differs between path and body",
                "FORMAT",
            ));
        }
    }
    require_contact(&state, &contact_id)?;
    let file_name = body.file_name.unwrap_or_default();
    let len = file_name.chars().count();
    if len == 0 || len > 260 {
        return Err(ApiError::violation(
            "fileName",
            "must be 1 to 260 characters",
            "MAX_LENGTH",
        ));
    }
    if !file_name.contains('.') || file_name.ends_with('.') {
        return Err(ApiError::violation(
            "fileName",
            "must include an extension",
            "FORMAT",
        ));
    }
    let mime_type = body.mime_type.unwrap_or_default();
    if mime_type.is_empty() || mime_type.len() > 255 {
        return Err(ApiError::violation(
            "mimeType",
            "must be 1 to 255 characters",
            "MAX_LENGTH",
        ));
    }
    if !mime_supported(&mime_type) {
        return Err(ApiError::bad_request(
            "UNSUPPORTED_MIME_TYPE",
            format!("Attachments of type {mime_type} are not supported"),
        ));
    }
    let token = site::new_token();
    {
        let mut data = state.site.lock();
        data.uploads.push(PendingUpload {
            token: token.clone(),
            contact_id,
            file_name,
            mime_type,
            created_ms: site::now_ms(),
        });
    }
    let url = format!("{}/_upload/attachments/{token}", origin(&headers));
    Ok(
        Json(json!({"uploadUrl": url, "uploadId": uuid::Uuid::new_v4().to_string()}))
            .into_response(),
    )
}

/// The documented list (§2c): a fixed set of office/PDF/CSV types, and images except a blacklist.
fn mime_supported(mime: &str) -> bool {
    const DOCUMENTS: &[&str] = &[
        "text/csv",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.presentationml.template",
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
        "application/pdf",
    ];
    const IMAGES_REFUSED: &[&str] = &[
        "image/tiff",
        "image/svg+xml",
        "image/bmp",
        "image/x-bmp",
        "image/vnd.zbrush.pcx",
        "image/x-pcx",
        "image/x-xcf",
        "image/x-icon",
        "image/ico",
        "image/icon",
        "image/vnd.microsoft.icon",
        "image/x-pict",
        "image/x-portable-bitmap",
        "image/x-portable-graymap",
        "image/x-portable-pixmap",
        "image/x-portable-anymap",
        "image/sgi",
        "image/webp",
    ];
    let mime = mime.trim().to_ascii_lowercase();
    DOCUMENTS.contains(&mime.as_str())
        || (mime.starts_with("image/")
            && mime.len() > 6
            && !IMAGES_REFUSED.contains(&mime.as_str()))
}

async fn upload(
    State(state): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let pending = {
        let data = state.site.lock();
        if data.spent_upload_tokens.contains(&token) {
            return Err(ApiError::upload_url_spent());
        }
        let Some(p) = data.uploads.iter().find(|u| u.token == token) else {
            return Err(ApiError::not_found(
                "UPLOAD_URL_NOT_FOUND",
                "Unknown or expired upload URL",
            ));
        };
        p.clone()
    };
    let faults = state.faults();
    let too_old = faults
        .upload_url_ttl_ms
        .is_some_and(|ttl| site::now_ms().saturating_sub(pending.created_ms) > ttl);
    if too_old || Faults::roll(faults.expired_url_rate) {
        return Err(ApiError::application(
            StatusCode::FORBIDDEN,
            "UPLOAD_URL_EXPIRED",
            "This upload URL has expired",
        ));
    }
    if headers.contains_key(header::AUTHORIZATION) {
        // Wix's upload hosts are a different origin; a client leaking its key here is a bug.
        return Err(ApiError::application(
            StatusCode::BAD_REQUEST,
            "AUTHORIZATION_NOT_EXPECTED",
            "Upload URLs carry their own token; do not send Authorization",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    if content_type != pending.mime_type && content_type != "application/octet-stream" {
        return Err(ApiError::bad_request(
            "MISMATCH_MIME_TYPE",
            format!(
                "Content-Type '{content_type}' does not match {}",
                pending.mime_type
            ),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let final_path = state.site.file_path(&id);
    let part_path = final_path.with_extension("part");
    if Faults::roll(faults.stall_rate) {
        // Take the first piece, then stop reading: the client's body stops moving.
        let mut stream = body.into_data_stream();
        let _ = stream.next().await;
        tokio::time::sleep(crate::faults::STALL_HOLD).await;
        return Err(ApiError::application(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UPLOAD_STALLED",
            "the upload stalled",
        ));
    }
    if Faults::roll(faults.reset_rate) {
        // Take part of the body, then hang up: the client sees the connection fail mid-upload.
        let mut stream = body.into_data_stream();
        let _ = stream.next().await;
        return Err(ApiError::application(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UPLOAD_INTERRUPTED",
            "connection reset",
        ));
    }
    let size = match receive(body, &part_path).await {
        Ok(0) => {
            let _ = tokio::fs::remove_file(&part_path).await;
            return Err(ApiError::bad_request(
                "ZERO_FILE_SIZE",
                "The uploaded file is empty",
            ));
        }
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part_path).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&part_path, &final_path)
        .await
        .map_err(|e| {
            tracing::error!("sandbox upload rename: {e}");
            ApiError::internal()
        })?;
    let mut record = StoredAttachment {
        id: id.clone(),
        contact_id: pending.contact_id.clone(),
        file_name: state.faults().rename.apply(&pending.file_name),
        mime_type: pending.mime_type.clone(),
        size_bytes: size,
        created_date: site::now_iso(),
        token: site::new_token(),
        width: None,
        height: None,
        preview: None,
        note_id: None,
    };
    if record.is_image() {
        let (src, dest) = (final_path.clone(), state.site.preview_path(&id));
        let facts = tokio::task::spawn_blocking(move || files::make_preview(&src, &dest))
            .await
            .ok()
            .flatten();
        if let Some(f) = facts {
            record.width = Some(f.width);
            record.height = Some(f.height);
            record.preview = Some(f.preview);
        }
    }
    let announced = record.clone();
    // Re-check under the lock: two concurrent PUTs on one URL must not both attach.
    let accepted = {
        let mut data = state.site.lock();
        match data.uploads.iter().position(|u| u.token == token) {
            Some(i) => {
                // Spent URLs shrink to their token, so site.json stays small over many uploads.
                data.uploads.swap_remove(i);
                data.spent_upload_tokens.insert(token.clone());
                data.attachments.push(record);
                Some(state.site.changed(&data))
            }
            None => None,
        }
    };
    // Answered only once the attachment is on disk (shared with concurrent uploads).
    if let Some(change) = accepted {
        state.site.commit(change).await?;
    }
    let accepted = accepted.is_some();
    if accepted {
        let entity = attachment_json(&announced, &origin(&headers));
        crate::webhooks::announce(&state, "created", &announced.id, Some(entity));
    }
    if !accepted {
        let _ = tokio::fs::remove_file(&final_path).await;
        return Err(ApiError::upload_url_spent());
    }
    if Faults::roll(faults.lost_response_rate) {
        // Stored, but the client never hears so: the case that tempts a client to send twice.
        return Err(ApiError::connection_lost());
    }
    Ok(Json(json!({})).into_response())
}

async fn receive(body: Body, dest: &std::path::Path) -> Result<u64, ApiError> {
    let mut file = tokio::fs::File::create(dest).await.map_err(|e| {
        tracing::error!("sandbox upload create: {e}");
        ApiError::internal()
    })?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("UPLOAD_INTERRUPTED", format!("upload body: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > MAX_UPLOAD_BYTES {
            return Err(ApiError::bad_request(
                "FILE_SIZE_OVER_LIMIT",
                "The file is over the 1 GiB limit",
            ));
        }
        file.write_all(&chunk).await.map_err(|e| {
            tracing::error!("sandbox upload write: {e}");
            ApiError::internal()
        })?;
    }
    file.sync_all().await.map_err(|_| ApiError::internal())?;
    Ok(size)
}

// ---------------------------------------------------------------------------------------------
// Media host

fn find_by_token(state: &AppState, id: &str, token: &str) -> Result<StoredAttachment, ApiError> {
    state
        .site
        .lock()
        .attachments
        .iter()
        .find(|a| a.id == id && a.token == token)
        .cloned()
        .ok_or_else(|| ApiError::not_found("NOT_FOUND", "No such file"))
}

async fn media_file(
    State(state): State<Shared>,
    Path((id, token, _name)): Path<(String, String, String)>,
) -> ApiResult {
    let a = find_by_token(&state, &id, &token)?;
    serve_file(
        &state.site.file_path(&a.id),
        &a.mime_type,
        Some(&a.file_name),
    )
    .await
}

async fn media_preview(
    State(state): State<Shared>,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult {
    let a = find_by_token(&state, &id, &token)?;
    if a.preview.is_none() {
        return Err(ApiError::not_found(
            "NOT_FOUND",
            "This attachment has no preview",
        ));
    }
    serve_file(&state.site.preview_path(&a.id), "image/jpeg", None).await
}

pub(crate) async fn serve_file(
    path: &std::path::Path,
    mime: &str,
    name: Option<&str>,
) -> ApiResult {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|_| ApiError::not_found("NOT_FOUND", "The file is gone"))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let mut resp = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(name) = name {
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .filter(|c| *c != '"')
            .collect();
        let v = format!(
            "inline; filename=\"{ascii}\"; filename*=UTF-8''{}",
            urlencode(name)
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}
