//! The EspoCRM API (`/api/v1/…`) and its `image` entry point (`/?entryPoint=image`), over the
//! same site data the Wix routes serve: one Demo site, two CRMs' views of it.
//!
//! Strict where `../shared/specs/espocrm-api.md` documents a rule: `X-Api-Key` or HMAC over
//! `METHOD /path` (hex, or the legacy raw bytes), 401 with an empty body, a 403 with no reason
//! after ten denied logins a minute, `maxSize` above 200 refused with 403, errors as an
//! `X-Status-Reason` header over an empty body, JSON bodies read only with
//! `Content-Type: application/json`, 200 on create, `true` on delete, chunks appended in arrival
//! order and checked against the declared size.

// Handlers return `Result<Response, Response>`: the error is the finished refusal, answered at
// once, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{json, Map, Value};

use crate::api::Shared;
use crate::faults::Faults;
use crate::site::{self, EspoFile, StoredAttachment, StoredDocument, StoredNote};

const API_BASE: &str = "/api/v1";
/// `recordListMaxSizeLimit`.
const MAX_SIZE: u64 = 200;
/// `attachmentUploadMaxSize` and `attachmentUploadChunkSize`, in MB.
const UPLOAD_MAX_MB: u64 = 256;
const CHUNK_MB: u64 = 4;
/// `authMaxFailedAttemptNumber` within `authFailedAttemptsPeriod`.
const MAX_DENIALS: usize = 10;
const DENIAL_PERIOD: Duration = Duration::from_secs(60);
/// Document.file's default accept list (spec §3(b)).
const DOCUMENT_ACCEPT: &[&str] = &[
    "pdf", "odt", "ods", "odp", "docx", "xlsx", "pptx", "doc", "xls", "ppt", "rtf", "csv", "md",
    "txt",
];

pub fn is_espo_path(uri: &Uri) -> bool {
    uri.path().starts_with(API_BASE) || uri.query().is_some_and(|q| q.contains("entryPoint="))
}

/// An EspoCRM refusal: the status, the reason in `X-Status-Reason`, an empty body.
pub fn refusal(status: StatusCode, reason: &str) -> Response {
    let mut resp = status.into_response();
    // The server replaces control characters by spaces (spec §6.2).
    let clean: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&clean) {
        resp.headers_mut().insert("x-status-reason", v);
    }
    resp
}

type EspoResult = Result<Response, Response>;

fn bad_request(reason: &str) -> Response {
    refusal(StatusCode::BAD_REQUEST, reason)
}

fn forbidden(reason: &str) -> Response {
    refusal(StatusCode::FORBIDDEN, reason)
}

fn not_found(reason: &str) -> Response {
    refusal(StatusCode::NOT_FOUND, reason)
}

fn internal(reason: &str) -> Response {
    refusal(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

/// A field validation failure: the log message in the header, `messageTranslation` in the body.
fn validation_failure(entity: &str, field: &str, kind: &str) -> Response {
    let mut resp = (
        StatusCode::BAD_REQUEST,
        Json(
            json!({"messageTranslation": {"label": "validationFailure", "scope": null,
            "data": {"field": field, "type": kind}}}),
        ),
    )
        .into_response();
    let reason =
        format!("Field validation failure; entityType: {entity}, field: {field}, type: {kind}.");
    if let Ok(v) = HeaderValue::from_str(&reason) {
        resp.headers_mut().insert("x-status-reason", v);
    }
    resp
}

fn storage(e: impl std::fmt::Display) -> Response {
    tracing::error!("sandbox EspoCRM storage: {e}");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Denied logins in the last minute.
#[derive(Default)]
pub struct Denials(Mutex<VecDeque<Instant>>);

impl Denials {
    fn recent(&self) -> usize {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while q.front().is_some_and(|t| t.elapsed() > DENIAL_PERIOD) {
            q.pop_front();
        }
        q.len()
    }

    fn record(&self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Instant::now());
    }
}

pub fn router(state: Shared) -> Router<Shared> {
    let api = Router::new()
        .route("/api/v1/App/user", get(app_user))
        .route("/api/v1/Contact", get(list_contacts))
        .route("/api/v1/Contact/{id}", get(get_contact))
        .route(
            "/api/v1/Contact/{id}/streamAttachments",
            get(stream_attachments),
        )
        .route("/api/v1/Contact/{id}/documents", get(contact_documents))
        .route("/api/v1/Attachment", post(create_attachment))
        .route("/api/v1/Attachment/chunk/{id}", post(post_chunk))
        .route(
            "/api/v1/Attachment/{id}",
            get(get_attachment).delete(delete_attachment),
        )
        .route("/api/v1/Attachment/file/{id}", get(download))
        .route("/api/v1/Note", post(create_note))
        .route("/api/v1/Document", post(create_document))
        .route("/api/v1/{*rest}", axum::routing::any(unknown_route))
        .route("/", get(entry_point));
    api.route_layer(middleware::from_fn_with_state(state, require_login))
}

async fn unknown_route(Path(rest): Path<String>) -> Response {
    let controller = rest.split('/').next().unwrap_or_default();
    not_found(&format!("Controller '{controller}' does not exist."))
}

// ---------------------------------------------------------------------------------------------
// Authentication (spec §1)

async fn require_login(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if state.espo_denials.recent() > MAX_DENIALS {
        // The lockout answers 403 with no reason (the message is dropped by processForbidden).
        return StatusCode::FORBIDDEN.into_response();
    }
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(espo) = header("espo-authorization") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(espo.trim())
            .unwrap_or_default();
        if !decoded.contains(&b':') {
            return bad_request("Auth: Bad authorization string provided.");
        }
        // Only API users exist here; user/password logins are refused like a wrong password.
        state.espo_denials.record();
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let signed_path = req
        .uri()
        .path()
        .strip_prefix(API_BASE)
        .unwrap_or(req.uri().path())
        .to_owned();
    let ok = if let Some(key) = header("x-api-key") {
        crate::api::same_secret(key, &state.config.api_key)
    } else if let Some(hmac) = header("x-hmac-authorization") {
        hmac_ok(
            &state.config.api_key,
            state.config.hmac_secret.as_deref(),
            hmac,
            req.method(),
            &signed_path,
        )
    } else {
        false
    };
    if !ok {
        state.espo_denials.record();
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(req).await
}

/// `base64(apiKey + ":" + sig)` where sig is HMAC-SHA256(secret, "METHOD /path") as lower-case
/// hex, or (legacy) the raw 32 bytes.
fn hmac_ok(api_key: &str, secret: Option<&str>, header: &str, method: &Method, path: &str) -> bool {
    let Some(secret) = secret else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (key, sig) = (&decoded[..colon], &decoded[colon + 1..]);
    if key != api_key.as_bytes() {
        return false;
    }
    let mac = || {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{method} {path}").as_bytes());
        mac
    };
    let hex_ok = std::str::from_utf8(sig)
        .ok()
        .and_then(|s| hex::decode(s).ok())
        .is_some_and(|raw| raw.len() == 32 && mac().verify_slice(&raw).is_ok())
        && sig.iter().all(|b| !b.is_ascii_uppercase());
    hex_ok || (sig.len() == 32 && mac().verify_slice(sig).is_ok())
}

// ---------------------------------------------------------------------------------------------
// App

async fn app_user(State(state): State<Shared>) -> Response {
    Json(json!({
        "user": {"id": "66a0c0ffee0000001", "userName": "attache-api", "name": "Attaché API",
                 "type": "api", "isAdmin": false},
        "acl": {"table": {"Contact": {"read": "all", "edit": "all", "stream": "all"},
                          "Document": {"create": "yes", "read": "all", "edit": "all"}}},
        "preferences": {},
        "token": null,
        "settings": {
            "attachmentUploadMaxSize": UPLOAD_MAX_MB,
            "attachmentUploadChunkSize": CHUNK_MB,
            "siteUrl": state.config.site_id,
        },
        "language": "en_US",
        "appParams": {"maxUploadSize": 64},
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Contacts (spec §4)

/// A Wix contact as EspoCRM shows it.
fn contact_json(c: &Value) -> Value {
    let s = |path: &[&str]| {
        let mut v = c;
        for p in path {
            v = &v[*p];
        }
        v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let first = s(&["info", "name", "first"]);
    let last = s(&["info", "name", "last"]);
    let name = [first.clone(), last.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let address = &c["info"]["addresses"]["items"][0]["address"];
    let street = match (
        &address["streetAddress"]["number"],
        &address["streetAddress"]["name"],
    ) {
        (Value::String(n), Value::String(s)) => Some(format!("{n} {s}")),
        _ => address["addressLine"].as_str().map(str::to_owned),
    };
    let state = address["subdivision"]
        .as_str()
        .map(|s| s.rsplit('-').next().unwrap_or(s).to_owned());
    json!({
        "id": s(&["id"]),
        "name": name,
        "salutationName": null,
        "firstName": first,
        "lastName": last,
        "emailAddress": s(&["primaryInfo", "email"]),
        "phoneNumber": s(&["primaryInfo", "phone"]),
        "accountName": s(&["info", "company"]),
        "title": s(&["info", "jobTitle"]),
        "addressStreet": street,
        "addressCity": address["city"].as_str(),
        "addressState": state,
        "addressPostalCode": address["postalCode"].as_str(),
        "addressCountry": address["country"].as_str(),
        "createdAt": s(&["createdDate"]).map(|d| espo_time(&d)),
        "modifiedAt": s(&["updatedDate"]).map(|d| espo_time(&d)),
    })
}

/// ISO-8601 as EspoCRM writes times: `YYYY-MM-DD HH:mm:ss`, UTC.
fn espo_time(iso: &str) -> String {
    let t = iso.replace('T', " ");
    t.get(..19).unwrap_or(&t).to_owned()
}

fn now() -> String {
    espo_time(&site::now_iso())
}

/// An EspoCRM-style id: 17 lower-case hex characters.
fn new_id() -> String {
    site::new_token()[..17].to_owned()
}

struct ListParams {
    max_size: u64,
    offset: u64,
    order_by: Option<String>,
    desc: bool,
    select: Option<Vec<String>>,
    text_filter: Option<String>,
    conditions: Vec<Condition>,
}

/// One `where[i][type|attribute|value]` item.
#[derive(Debug, Default)]
struct Condition {
    kind: String,
    attribute: String,
    value: Option<String>,
}

impl Condition {
    fn holds(&self, record: &Value) -> bool {
        let field = &record[self.attribute.as_str()];
        let text = field.as_str().unwrap_or_default().to_lowercase();
        let value = self.value.clone().unwrap_or_default().to_lowercase();
        match self.kind.as_str() {
            "equals" => text == value,
            "notEquals" => text != value,
            "contains" => text.contains(&value),
            "startsWith" => text.starts_with(&value),
            "isNull" => field.is_null() || text.is_empty(),
            "isNotNull" => !(field.is_null() || text.is_empty()),
            _ => false,
        }
    }
}

const WHERE_KINDS: &[&str] = &[
    "equals",
    "notEquals",
    "contains",
    "startsWith",
    "isNull",
    "isNotNull",
];

fn list_params(params: &[(String, String)]) -> Result<ListParams, Response> {
    let mut p = ListParams {
        max_size: MAX_SIZE,
        offset: 0,
        order_by: None,
        desc: false,
        select: None,
        text_filter: None,
        conditions: Vec::new(),
    };
    for (k, v) in params {
        // where[0][type]=contains&where[0][attribute]=lastName&where[0][value]=mi
        if let Some(rest) = k.strip_prefix("where[") {
            let parsed = rest
                .split_once("][")
                .and_then(|(i, part)| Some((i.parse::<usize>().ok()?, part.strip_suffix(']')?)));
            let Some((i, part)) = parsed else {
                return Err(bad_request("Bad where item."));
            };
            if i > 100 {
                return Err(bad_request("Bad where item."));
            }
            if p.conditions.len() <= i {
                p.conditions.resize_with(i + 1, Condition::default);
            }
            match part {
                "type" => p.conditions[i].kind = v.clone(),
                "attribute" => p.conditions[i].attribute = v.clone(),
                "value" => p.conditions[i].value = Some(v.clone()),
                _ => return Err(bad_request("Bad where item.")),
            }
            continue;
        }
        match k.as_str() {
            // The plain query string is intval()-ed, so junk reads as 0.
            "maxSize" => p.max_size = v.trim().parse().unwrap_or(0),
            "offset" => p.offset = v.trim().parse().unwrap_or(0),
            "orderBy" | "sortBy" => p.order_by = Some(v.clone()),
            "order" => match v.to_ascii_lowercase().as_str() {
                "asc" => p.desc = false,
                "desc" => p.desc = true,
                _ => return Err(bad_request("order value is bad.")),
            },
            "select" | "attributeSelect" => {
                p.select = Some(v.split(',').map(str::to_owned).collect())
            }
            "textFilter" => p.text_filter = Some(v.clone()).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    if p.conditions
        .iter()
        .any(|c| !WHERE_KINDS.contains(&c.kind.as_str()) || c.attribute.is_empty())
    {
        return Err(bad_request("Bad where item."));
    }
    if p.max_size > MAX_SIZE {
        return Err(forbidden(&format!(
            "Max size should not exceed {MAX_SIZE}. Use offset and limit."
        )));
    }
    Ok(p)
}

/// Starts-with, case-insensitive; `*` is a wildcard (`*foo` = contains).
fn text_matches(pattern: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    let pattern = pattern.to_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    if !value.starts_with(first) {
        return false;
    }
    let mut rest = &value[first.len()..];
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn page(items: Vec<Value>, p: &ListParams) -> Response {
    let mut items = items;
    if let Some(field) = &p.order_by {
        items.sort_by(|a, b| {
            let (x, y) = (&a[field.as_str()], &b[field.as_str()]);
            let o = x
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .cmp(&y.as_str().unwrap_or_default().to_lowercase())
                .then_with(|| {
                    x.as_u64()
                        .unwrap_or_default()
                        .cmp(&y.as_u64().unwrap_or_default())
                });
            if p.desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let total = items.len();
    let list: Vec<Value> = items
        .into_iter()
        .skip(p.offset as usize)
        .take(p.max_size as usize)
        .map(|v| match &p.select {
            Some(fields) => {
                let mut out = Map::new();
                out.insert("id".into(), v["id"].clone());
                for f in fields {
                    if let Some(x) = v.get(f) {
                        out.insert(f.clone(), x.clone());
                    }
                }
                Value::Object(out)
            }
            None => v,
        })
        .collect();
    Json(json!({"total": total, "list": list})).into_response()
}

async fn list_contacts(
    State(state): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
) -> EspoResult {
    let mut p = list_params(&params)?;
    if p.order_by.is_none() {
        // The collection default (spec §4).
        p.order_by = Some("createdAt".into());
        p.desc = true;
    }
    let contacts: Vec<Value> = {
        let data = state.site.lock();
        data.contacts
            .iter()
            .filter(|c| {
                !data
                    .merged
                    .contains_key(c["id"].as_str().unwrap_or_default())
            })
            .map(contact_json)
            .filter(|c| match &p.text_filter {
                None => true,
                Some(f) => ["name", "firstName", "lastName", "emailAddress"]
                    .iter()
                    .any(|k| text_matches(f, c[*k].as_str().unwrap_or_default())),
            })
            .filter(|c| p.conditions.iter().all(|w| w.holds(c)))
            .collect()
    };
    Ok(page(contacts, &p))
}

fn require_contact(state: &Shared, id: &str) -> Result<Value, Response> {
    state
        .site
        .lock()
        .contacts
        .iter()
        .find(|c| c["id"].as_str() == Some(id))
        .map(contact_json)
        .ok_or_else(|| not_found(&format!("Record {id} does not exist.")))
}

async fn get_contact(State(state): State<Shared>, Path(id): Path<String>) -> EspoResult {
    Ok(Json(require_contact(&state, &id)?).into_response())
}

/// A stored attachment as an Attachment record of a stream Note.
fn stored_json(a: &StoredAttachment) -> Value {
    json!({
        "id": a.id,
        "name": a.file_name,
        "type": a.mime_type,
        "size": a.size_bytes,
        "role": "Attachment",
        "parentType": "Note",
        "parentId": a.note_id.clone().unwrap_or_else(|| format!("n{}", &a.id[..a.id.len().min(16)])),
        "relatedType": null,
        "relatedId": null,
        "field": "attachments",
        "isBeingUploaded": false,
        "storage": "EspoUploadDir",
        "global": false,
        "createdAt": espo_time(&a.created_date),
        "createdById": "66a0c0ffee0000001",
        "createdByName": "Attaché API",
    })
}

fn pending_json(f: &EspoFile) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "type": f.mime_type,
        "size": if f.being_uploaded { f.declared_size } else { Some(f.received) },
        "role": "Attachment",
        "parentType": f.parent_type,
        "parentId": null,
        "relatedType": f.related_type,
        "relatedId": null,
        "field": f.field,
        "isBeingUploaded": f.being_uploaded,
        "storage": "EspoUploadDir",
        "global": false,
        "createdAt": f.created_at,
        "createdById": "66a0c0ffee0000001",
    })
}

async fn stream_attachments(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> EspoResult {
    let p = list_params(&params)?;
    require_contact(&state, &id)?;
    let items: Vec<Value> = {
        let data = state.site.lock();
        let in_documents: std::collections::HashSet<&str> =
            data.documents.iter().map(|d| d.file_id.as_str()).collect();
        data.attachments
            .iter()
            .filter(|a| a.contact_id == id && !in_documents.contains(a.id.as_str()))
            .map(stored_json)
            .collect()
    };
    Ok(page(items, &p))
}

async fn contact_documents(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> EspoResult {
    let p = list_params(&params)?;
    require_contact(&state, &id)?;
    let items: Vec<Value> = state
        .site
        .lock()
        .documents
        .iter()
        .filter(|d| d.contact_ids.contains(&id))
        .map(document_json)
        .collect();
    Ok(page(items, &p))
}

fn document_json(d: &StoredDocument) -> Value {
    json!({
        "id": d.id, "name": d.name, "fileId": d.file_id, "fileName": d.file_name,
        "status": "Active", "publishDate": d.publish_date, "createdAt": d.created_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Attachments (spec §2)

/// The JSON body, read only when the request says it is JSON (spec §6.3); otherwise `{}`.
async fn json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Map<String, Value>, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    if !is_json {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        // A top-level array is wrapped as {"list": [...]}.
        Ok(Value::Array(list)) => Ok(Map::from_iter([("list".to_owned(), Value::Array(list))])),
        Ok(_) => Err(bad_request("Body is not a JSON object.")),
        // Malformed JSON: a bare 500 (UNCONFIRMED, follows the source).
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A list of ids in the body (`attachmentsIds`, `contactsIds`); anything else in it is ignored.
fn str_list(body: &Map<String, Value>, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// PHP's non-strict `base64_decode`: characters outside the alphabet are skipped.
fn lenient_base64(text: &str) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(clean.as_bytes())
        .or_else(|_| {
            // A trailing partial quantum is dropped, as PHP does.
            let whole = clean.len() / 4 * 4;
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean.as_bytes()[..whole])
        })
        .unwrap_or_default()
}

async fn create_attachment(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> EspoResult {
    let limit = (UPLOAD_MAX_MB << 20) as usize / 3 * 4 + (1 << 20);
    let body = json_body(&headers, body, limit).await?;
    let being_uploaded = body
        .get("isBeingUploaded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Checks in the server's order (spec §2.2).
    let file = if being_uploaded {
        None
    } else {
        match body.get("file") {
            None | Some(Value::Null) => return Err(bad_request("No file contents.")),
            Some(Value::String(s)) => match s.split_once(',') {
                Some((_, b64)) => Some(lenient_base64(b64)),
                None => return Err(bad_request("Bad file contents.")),
            },
            Some(_) => return Err(bad_request("Non-string file contents.")),
        }
    };
    let parent_type = str_field(&body, "parentType").map(str::to_owned);
    let related_type = if parent_type.is_some() {
        None
    } else {
        str_field(&body, "relatedType").map(str::to_owned)
    };
    let field = str_field(&body, "field").map(str::to_owned);
    let (Some(entity), Some(field)) = (parent_type.clone().or(related_type.clone()), field) else {
        return Err(bad_request("No `field` and `parentType`."));
    };
    let role = str_field(&body, "role").unwrap_or("Attachment");
    if role != "Attachment" && role != "Inline Attachment" {
        return Err(forbidden("Role not allowed."));
    }
    match (entity.as_str(), field.as_str()) {
        ("Note", "attachments") | ("Document", "file") => {}
        ("Note" | "Document" | "Contact", _) => {
            return Err(forbidden(&format!("Field '{field}' does not exist.")))
        }
        _ => return Err(forbidden(&format!("No access to {entity}."))),
    }
    let Some(name) = str_field(&body, "name").map(str::to_owned) else {
        return Err(validation_failure("Attachment", "name", "required"));
    };
    let declared = body.get("size").and_then(Value::as_u64);
    if declared.is_some_and(|s| s > UPLOAD_MAX_MB << 20) {
        return Err(forbidden(
            "Attachment size exceeds `attachmentUploadMaxSize`.",
        ));
    }
    if entity == "Document" && !DOCUMENT_ACCEPT.contains(&extension(&name).as_str()) {
        return Err(forbidden("Not allowed file type."));
    }
    if being_uploaded && declared.is_none() {
        // Completion is detected against the declared size; without it nothing could finish.
        return Err(bad_request("No size for a being-uploaded attachment."));
    }
    let id = new_id();
    let bytes = file.unwrap_or_default();
    let path = state.site.file_path(&id);
    tokio::fs::write(&path, &bytes).await.map_err(storage)?;
    let record = EspoFile {
        id: id.clone(),
        name: state.faults().rename.apply(&name),
        mime_type: str_field(&body, "type").map(str::to_owned),
        declared_size: declared,
        received: bytes.len() as u64,
        being_uploaded,
        parent_type,
        related_type,
        field,
        created_at: now(),
    };
    let json = pending_json(&record);
    let change = {
        let mut data = state.site.lock();
        data.espo_files.push(record);
        state.site.changed(&data)
    };
    state.site.commit(change).await.map_err(storage)?;
    Ok(Json(json).into_response())
}

async fn post_chunk(State(state): State<Shared>, Path(id): Path<String>, body: Body) -> EspoResult {
    let raw = axum::body::to_bytes(body, 64 << 20)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    if raw.is_empty() {
        return Err(bad_request(""));
    }
    let text = String::from_utf8_lossy(&raw);
    let Some((_, b64)) = text.split_once(";base64,") else {
        return Err(bad_request("Bad file data."));
    };
    let mut bytes = lenient_base64(b64);
    // A connection cut mid-body: part of the chunk is stored, and the client cannot know how
    // much (the `reset` fault).
    let cut = Faults::roll(state.faults().reset_rate);
    if cut {
        bytes.truncate(bytes.len() / 2);
    }
    {
        let data = state.site.lock();
        let Some(f) = data.espo_files.iter().find(|f| f.id == id) else {
            return Err(if data.attachments.iter().any(|a| a.id == id) {
                forbidden("Attachment is not being-uploaded.")
            } else {
                not_found("")
            });
        };
        if !f.being_uploaded {
            return Err(forbidden("Attachment is not being-uploaded."));
        }
    }
    // Appended in arrival order; the size checks come after (spec §2.5).
    {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(state.site.file_path(&id))
            .await
            .map_err(storage)?;
        file.write_all(&bytes).await.map_err(storage)?;
        file.sync_data().await.map_err(storage)?;
    }
    let (change, verdict) = {
        let mut data = state.site.lock();
        let Some(f) = data.espo_files.iter_mut().find(|f| f.id == id) else {
            return Err(not_found(""));
        };
        f.received += bytes.len() as u64;
        let declared = f.declared_size.unwrap_or(0);
        let verdict = if f.received > UPLOAD_MAX_MB << 20 {
            Err(forbidden("Max attachment size exceeded."))
        } else if f.received > declared {
            Err(internal("File size mismatch."))
        } else {
            if f.received == declared {
                f.being_uploaded = false;
            }
            Ok(())
        };
        (state.site.changed(&data), verdict)
    };
    state.site.commit(change).await.map_err(storage)?;
    verdict?;
    if cut {
        return Err(internal("connection reset"));
    }
    Ok(Json(json!(true)).into_response())
}

async fn get_attachment(State(state): State<Shared>, Path(id): Path<String>) -> EspoResult {
    let data = state.site.lock();
    if let Some(f) = data.espo_files.iter().find(|f| f.id == id) {
        return Ok(Json(pending_json(f)).into_response());
    }
    if let Some(a) = data.attachments.iter().find(|a| a.id == id) {
        let mut v = stored_json(a);
        if let Some(d) = data.documents.iter().find(|d| d.file_id == id) {
            v["parentType"] = Value::Null;
            v["parentId"] = Value::Null;
            v["relatedType"] = json!("Document");
            v["relatedId"] = json!(d.id);
            v["field"] = json!("file");
        }
        return Ok(Json(v).into_response());
    }
    Err(not_found(&format!("Record {id} does not exist.")))
}

async fn delete_attachment(State(state): State<Shared>, Path(id): Path<String>) -> EspoResult {
    let change = {
        let mut data = state.site.lock();
        let before = data.espo_files.len() + data.attachments.len();
        data.espo_files.retain(|f| f.id != id);
        data.attachments.retain(|a| a.id != id);
        for n in &mut data.notes {
            n.attachment_ids.retain(|a| *a != id);
        }
        if data.espo_files.len() + data.attachments.len() == before {
            return Err(not_found(&format!("Record {id} does not exist.")));
        }
        state.site.changed(&data)
    };
    state.site.commit(change).await.map_err(storage)?;
    let _ = tokio::fs::remove_file(state.site.file_path(&id)).await;
    let _ = tokio::fs::remove_file(state.site.preview_path(&id)).await;
    Ok(Json(json!(true)).into_response())
}

/// `GET Attachment/file/{id}`: the bytes, with the record's type (spec §2.6; the sandbox quotes
/// the name safely where EspoCRM inserts it raw).
async fn download(State(state): State<Shared>, Path(id): Path<String>) -> EspoResult {
    let (name, mime) = {
        let data = state.site.lock();
        if let Some(a) = data.attachments.iter().find(|a| a.id == id) {
            (a.file_name.clone(), a.mime_type.clone())
        } else if let Some(f) = data.espo_files.iter().find(|f| f.id == id) {
            (
                f.name.clone(),
                f.mime_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            )
        } else {
            return Err(not_found(""));
        }
    };
    let mut resp = crate::api::serve_file(&state.site.file_path(&id), &mime, Some(&name))
        .await
        .map_err(|_| not_found(""))?;
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', "'"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// Notes and Documents (spec §3)

/// A complete upload, now one of `contact_id`'s attachments (seen through Wix too).
fn stored_from(f: &EspoFile, contact_id: &str, note_id: Option<String>) -> StoredAttachment {
    StoredAttachment {
        id: f.id.clone(),
        contact_id: contact_id.to_owned(),
        file_name: f.name.clone(),
        mime_type: f
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        size_bytes: f.received,
        created_date: site::now_iso(),
        token: site::new_token(),
        width: None,
        height: None,
        preview: None,
        note_id,
    }
}

async fn create_note(State(state): State<Shared>, headers: HeaderMap, body: Body) -> EspoResult {
    let body = json_body(&headers, body, 1 << 20).await?;
    if let Some(t) = str_field(&body, "type") {
        if t != "Post" {
            return Err(forbidden("Only 'Post' type allowed."));
        }
    }
    if str_field(&body, "parentType") != Some("Contact") {
        return Err(forbidden("No create access."));
    }
    let contact_id = str_field(&body, "parentId").unwrap_or_default().to_owned();
    if require_contact(&state, &contact_id).is_err() {
        return Err(forbidden("No access to parent."));
    }
    if body.get("isInternal").and_then(Value::as_bool) == Some(true) {
        return Err(forbidden("Internal note is not allowed."));
    }
    let ids = str_list(&body, "attachmentsIds");
    let note_id = new_id();
    let linked = {
        let data = state.site.lock();
        let mut linked = Vec::new();
        for id in &ids {
            if let Some(f) = data.espo_files.iter().find(|f| f.id == *id) {
                if f.parent_type.as_deref() != Some("Note") {
                    return Err(forbidden(&format!(
                        "Can't relate with non-existing record. entityType: Attachment, id: {id}."
                    )));
                }
                linked.push(f.clone());
            } else if !data.attachments.iter().any(|a| a.id == *id) {
                return Err(forbidden(&format!(
                    "Can't relate with non-existing record. entityType: Attachment, id: {id}."
                )));
            }
        }
        linked
    };
    // New files become the contact's attachments (with the preview Wix would show for images).
    let mut records = Vec::new();
    for f in &linked {
        let mut record = stored_from(f, &contact_id, Some(note_id.clone()));
        if record.is_image() {
            let (src, dest) = (state.site.file_path(&f.id), state.site.preview_path(&f.id));
            let facts =
                tokio::task::spawn_blocking(move || crate::files::make_preview(&src, &dest))
                    .await
                    .ok()
                    .flatten();
            if let Some(facts) = facts {
                record.width = Some(facts.width);
                record.height = Some(facts.height);
                record.preview = Some(facts.preview);
            }
        }
        records.push(record);
    }
    let (note, change) = {
        let mut data = state.site.lock();
        // Re-checked under the lock: two notes racing for one file link it once.
        data.espo_files
            .retain(|f| !linked.iter().any(|l| l.id == f.id));
        for id in &ids {
            if let Some(a) = data.attachments.iter_mut().find(|a| a.id == *id) {
                a.note_id = Some(note_id.clone());
                a.contact_id = contact_id.clone();
            }
        }
        for r in records {
            if !data.attachments.iter().any(|a| a.id == r.id) {
                data.attachments.push(r);
            }
        }
        let number = data.notes.iter().map(|n| n.number).max().unwrap_or(0) + 1;
        let note = StoredNote {
            id: note_id.clone(),
            contact_id: contact_id.clone(),
            post: str_field(&body, "post").unwrap_or_default().to_owned(),
            attachment_ids: ids.clone(),
            created_at: now(),
            number,
        };
        data.notes.push(note.clone());
        let names: Map<String, Value> = data
            .attachments
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| (a.id.clone(), json!(a.file_name)))
            .collect();
        let types: Map<String, Value> = data
            .attachments
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| (a.id.clone(), json!(a.mime_type)))
            .collect();
        let json = json!({
            "id": note.id, "type": "Post", "post": note.post, "parentType": "Contact",
            "parentId": contact_id, "attachmentsIds": ids, "attachmentsNames": names,
            "attachmentsTypes": types, "createdAt": note.created_at, "number": number,
            "isInternal": false,
        });
        (json, state.site.changed(&data))
    };
    state.site.commit(change).await.map_err(storage)?;
    if Faults::roll(state.faults().lost_response_rate) {
        // Linked, but the client never hears so: the case that tempts it to post twice.
        return Err(refusal(StatusCode::SERVICE_UNAVAILABLE, "connection lost"));
    }
    Ok(Json(note).into_response())
}

async fn create_document(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> EspoResult {
    let body = json_body(&headers, body, 1 << 20).await?;
    for field in ["name", "fileId", "publishDate"] {
        if str_field(&body, field).is_none() {
            let kind = "required";
            return Err(validation_failure(
                "Document",
                if field == "fileId" { "file" } else { field },
                kind,
            ));
        }
    }
    let contacts = str_list(&body, "contactsIds");
    if contacts.len() > 1 {
        return Err(forbidden(
            "Cannot set multiple IDs for link 'contacts' as there's no link-multiple field.",
        ));
    }
    for c in &contacts {
        require_contact(&state, c).map_err(|_| forbidden("No access to parent."))?;
    }
    let file_id = str_field(&body, "fileId").unwrap_or_default().to_owned();
    let doc_id = new_id();
    let (json, change) = {
        let mut data = state.site.lock();
        let Some(i) = data.espo_files.iter().position(|f| {
            f.id == file_id && f.related_type.as_deref() == Some("Document") && !f.being_uploaded
        }) else {
            return Err(forbidden(&format!(
                "Can't relate with non-existing record. entityType: Attachment, id: {file_id}."
            )));
        };
        let f = data.espo_files.remove(i);
        let doc = StoredDocument {
            id: doc_id,
            name: str_field(&body, "name").unwrap_or_default().to_owned(),
            file_id: f.id.clone(),
            file_name: f.name.clone(),
            contact_ids: contacts.clone(),
            publish_date: str_field(&body, "publishDate")
                .unwrap_or_default()
                .to_owned(),
            created_at: now(),
        };
        // Its file is one of the contact's attachments (as Wix would list it too).
        if let Some(contact) = contacts.first() {
            data.attachments.push(stored_from(&f, contact, None));
        }
        let json = document_json(&doc);
        data.documents.push(doc);
        (json, state.site.changed(&data))
    };
    state.site.commit(change).await.map_err(storage)?;
    Ok(Json(json).into_response())
}

// ---------------------------------------------------------------------------------------------
// The `image` entry point (spec §5)

fn size_box(name: &str) -> Option<u32> {
    Some(match name {
        "xxx-small" => 18,
        "xx-small" => 32,
        "x-small" => 64,
        "small" => 128,
        "medium" => 256,
        "large" => 512,
        "x-large" => 864,
        "xx-large" => 1024,
        _ => return None,
    })
}

/// Entry points answer errors with an HTML body.
fn html_error(status: StatusCode, reason: &str) -> Response {
    let mut resp = refusal(status, reason);
    *resp.body_mut() = Body::from(format!(
        "<h1>{} {}</h1>{reason}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

async fn entry_point(
    State(state): State<Shared>,
    Query(params): Query<Vec<(String, String)>>,
) -> EspoResult {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("entryPoint").as_deref() != Some("image") {
        return Err(html_error(StatusCode::NOT_FOUND, "Page not found."));
    }
    let id = get("id").unwrap_or_default();
    let Some(a) = state
        .site
        .lock()
        .attachments
        .iter()
        .find(|a| a.id == id)
        .cloned()
    else {
        return Err(html_error(StatusCode::NOT_FOUND, "Attachment not found."));
    };
    let resizable = ["image/jpeg", "image/png", "image/gif", "image/webp"];
    if !resizable.contains(&a.mime_type.as_str())
        && !["image/svg+xml", "image/avif"].contains(&a.mime_type.as_str())
    {
        return Err(html_error(
            StatusCode::FORBIDDEN,
            &format!("Not allowed file type '{}'.", a.mime_type),
        ));
    }
    let path = state.site.file_path(&a.id);
    let Some(size) = get("size") else {
        return crate::api::serve_file(&path, &a.mime_type, None)
            .await
            .map_err(|_| html_error(StatusCode::NOT_FOUND, "Attachment not found."));
    };
    if !resizable.contains(&a.mime_type.as_str()) {
        return crate::api::serve_file(&path, &a.mime_type, None)
            .await
            .map_err(|_| html_error(StatusCode::NOT_FOUND, "Attachment not found."));
    }
    let Some(side) = size_box(&size) else {
        return Err(html_error(StatusCode::INTERNAL_SERVER_ERROR, "Bad size."));
    };
    let jpeg = a.mime_type == "image/jpeg";
    let scaled = tokio::task::spawn_blocking(move || -> Option<Vec<u8>> {
        let img = image::ImageReader::open(&path)
            .ok()?
            .with_guessed_format()
            .ok()?
            .decode()
            .ok()?;
        // Never enlarged.
        let img = if img.width().max(img.height()) > side {
            img.thumbnail(side, side)
        } else {
            img
        };
        let mut out = std::io::Cursor::new(Vec::new());
        if jpeg {
            img.to_rgb8()
                .write_to(&mut out, image::ImageFormat::Jpeg)
                .ok()?;
        } else {
            img.write_to(&mut out, image::ImageFormat::Png).ok()?;
        }
        Some(out.into_inner())
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not read the image.",
        )
    })?;
    let mime = if jpeg { "image/jpeg" } else { "image/png" };
    let mut resp = Response::new(Body::from(scaled));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=864000, immutable"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_filter_is_starts_with_and_star_is_a_wildcard() {
        assert!(text_matches("ana", "Ana Silva"));
        assert!(!text_matches("silva", "Ana Silva"));
        assert!(text_matches("*silva", "Ana Silva"));
        assert!(text_matches("a*va", "Ana Silva"));
        assert!(!text_matches("b*", "Ana"));
    }

    #[test]
    fn hmac_accepts_hex_and_legacy_raw_signatures_only_for_the_right_path() {
        let (key, secret) = (
            "0123456789abcdef0123456789abcdef",
            "fedcba9876543210fedcba9876543210",
        );
        let header = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY6NjkwNDc3NWYwNTFjZDUwM2FjZGY4MzExZWZjM2U1ZGZmYmM5YzcyMjZiMWVhNjNhNzNjZmM1NDlkMTQ0NGIxNg==";
        assert!(hmac_ok(key, Some(secret), header, &Method::GET, "/Contact"));
        assert!(!hmac_ok(
            key,
            Some(secret),
            header,
            &Method::POST,
            "/Contact"
        ));
        assert!(!hmac_ok(
            key,
            Some(secret),
            header,
            &Method::GET,
            "/Attachment"
        ));
        assert!(!hmac_ok(key, None, header, &Method::GET, "/Contact"));
        assert!(!hmac_ok(
            key,
            Some("other"),
            header,
            &Method::GET,
            "/Contact"
        ));
        let raw = hex::decode("6904775f051cd503acdf8311efc3e5dffbc9c7226b1ea63a73cfc549d1444b16")
            .unwrap();
        let mut legacy = format!("{key}:").into_bytes();
        legacy.extend_from_slice(&raw);
        let legacy = base64::engine::general_purpose::STANDARD.encode(legacy);
        assert!(hmac_ok(
            key,
            Some(secret),
            &legacy,
            &Method::GET,
            "/Contact"
        ));
    }

    #[test]
    fn php_style_base64_skips_junk() {
        assert_eq!(lenient_base64("aGVs\nbG8="), b"hello");
        assert_eq!(lenient_base64("\"aGVsbG8=\""), b"hello");
    }
}
