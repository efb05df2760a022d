//! tus 1.0.0 (core protocol + creation) for the Media Manager's resumable uploads, then Wix's
//! finalising `PUT {uploadUrl}/{uploadToken}?filename=`.

use super::*;

const TUS_VERSION: &str = "1.0.0";

fn tus_response(status: StatusCode) -> Response {
    let mut resp = status.into_response();
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    resp
}

fn tus_error(status: StatusCode, why: &str) -> Response {
    let mut resp = (status, why.to_owned()).into_response();
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    resp
}

/// Every tus request but OPTIONS must say `Tus-Resumable: 1.0.0`: the 412 when it does not.
fn tus_version_refusal(headers: &HeaderMap) -> Option<Response> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => None,
        _ => {
            let mut resp = tus_error(
                StatusCode::PRECONDITION_FAILED,
                "Tus-Resumable: 1.0.0 required",
            );
            resp.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Some(resp)
        }
    }
}

pub(super) async fn tus_options() -> Response {
    let mut resp = tus_response(StatusCode::NO_CONTENT);
    let h = resp.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static("creation"));
    h.insert("tus-max-size", HeaderValue::from(MAX_TUS_BYTES));
    resp
}

/// `Upload-Metadata: key base64,key base64,…` (a key may have no value).
fn parse_metadata(v: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, b64) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| format!("metadata {k:?} is not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("metadata {k:?} is not UTF-8"))?;
        out.insert(k.to_owned(), text);
    }
    Ok(out)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub(super) async fn tus_create(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refusal) = tus_version_refusal(&headers) {
        return refusal;
    }
    if no_authorization(&headers).is_err() {
        return tus_error(
            StatusCode::BAD_REQUEST,
            "do not send Authorization to the upload host",
        );
    }
    let Some(length) = header_u64(&headers, "upload-length") else {
        return tus_error(StatusCode::BAD_REQUEST, "Upload-Length is required");
    };
    if length > MAX_TUS_BYTES {
        return tus_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Upload-Length is over Tus-Max-Size",
        );
    }
    if length == 0 {
        return tus_error(StatusCode::BAD_REQUEST, "ZERO_FILE_SIZE: the file is empty");
    }
    let meta = match headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .map(parse_metadata)
        .unwrap_or_else(|| Ok(HashMap::new()))
    {
        Ok(m) => m,
        Err(why) => return tus_error(StatusCode::BAD_REQUEST, &why),
    };
    let Some(token) = meta.get("token").filter(|t| !t.is_empty()) else {
        return tus_error(
            StatusCode::BAD_REQUEST,
            "Upload-Metadata must carry the upload token",
        );
    };
    let pending = match claim(&state, token, true) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if pending.declared_size.is_some_and(|d| d != length) {
        return tus_error(
            StatusCode::BAD_REQUEST,
            "Upload-Length differs from sizeInBytes",
        );
    }
    let file_name = meta
        .get("filename")
        .filter(|n| !n.is_empty())
        .cloned()
        .or(pending.file_name.clone());
    let Some(file_name) = file_name else {
        return tus_error(
            StatusCode::BAD_REQUEST,
            "Upload-Metadata must carry filename",
        );
    };
    let id = site::new_token();
    if let Err(e) = tokio::fs::write(state.site.tus_path(&id), b"").await {
        tracing::error!("sandbox tus create: {e}");
        return tus_error(StatusCode::INTERNAL_SERVER_ERROR, "storage error");
    }
    lock(&state.media.tus).insert(
        id.clone(),
        TusUpload {
            token: token.clone(),
            length,
            offset: 0,
            file_name,
            content_type: meta.get("contentType").cloned(),
            busy: false,
        },
    );
    let mut resp = tus_response(StatusCode::CREATED);
    // Relative, as tus allows: the client resolves it against the upload URL.
    if let Ok(v) = HeaderValue::from_str(&format!("/_tus/media/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub(super) async fn tus_head(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = tus_version_refusal(&headers) {
        return refusal;
    }
    let Some(up) = lock(&state.media.tus).get(&id).cloned() else {
        return tus_error(StatusCode::NOT_FOUND, "no such upload");
    };
    // While a PATCH is still arriving, what is on disk so far.
    let offset = if up.busy {
        tokio::fs::metadata(state.site.tus_path(&id))
            .await
            .map(|m| m.len().min(up.length))
            .unwrap_or(up.offset)
    } else {
        up.offset
    };
    let mut resp = tus_response(StatusCode::OK);
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(offset));
    h.insert("upload-length", HeaderValue::from(up.length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(super) async fn tus_patch(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refusal) = tus_version_refusal(&headers) {
        return refusal;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/offset+octet-stream" {
        return tus_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/offset+octet-stream",
        );
    }
    let Some(claimed) = header_u64(&headers, "upload-offset") else {
        return tus_error(StatusCode::BAD_REQUEST, "Upload-Offset is required");
    };
    let up = {
        let mut all = lock(&state.media.tus);
        let Some(up) = all.get_mut(&id) else {
            return tus_error(StatusCode::NOT_FOUND, "no such upload");
        };
        if up.busy || up.offset != claimed {
            return tus_error(
                StatusCode::CONFLICT,
                "Upload-Offset does not match the upload",
            );
        }
        up.busy = true;
        up.clone()
    };
    let path = state.site.tus_path(&id);
    let faults = state.faults();
    let result = if Faults::roll(faults.reset_rate) {
        // Keep the first piece that arrived, then hang up: the client must HEAD and resume.
        let mut stream = body.into_data_stream();
        let first = stream.next().await.and_then(Result::ok).unwrap_or_default();
        let room = (up.length - up.offset) as usize;
        match append_bytes(&path, &first[..first.len().min(room)]).await {
            Ok(()) => Err(ApiError::application(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UPLOAD_INTERRUPTED",
                "connection reset",
            )),
            Err(e) => Err(e),
        }
    } else {
        receive(body, &path, up.length - up.offset, true)
            .await
            .map(|_| ())
    };
    // Whatever reached the disk counts, so a HEAD after a cut tells the true offset.
    let on_disk = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(up.offset);
    let on_disk = on_disk.min(up.length);
    {
        let mut all = lock(&state.media.tus);
        if let Some(u) = all.get_mut(&id) {
            u.offset = on_disk;
            u.busy = false;
        }
    }
    match result {
        Ok(_) => {
            let mut resp = tus_response(StatusCode::NO_CONTENT);
            resp.headers_mut()
                .insert("upload-offset", HeaderValue::from(on_disk));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn append_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<(), ApiError> {
    let mut f = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await
        .map_err(|_| ApiError::internal())?;
    f.write_all(bytes).await.map_err(|_| ApiError::internal())?;
    f.sync_all().await.map_err(|_| ApiError::internal())
}

/// `PUT {uploadUrl}/{uploadToken}?filename=`: turns the finished tus upload into a media file.
pub(super) async fn tus_finalise(
    State(state): State<Shared>,
    Path(token): Path<String>,
    Query(q): Query<FileNameQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    no_authorization(&headers)?;
    let pending = claim(&state, &token, true)?;
    // A creation whose answer was lost leaves a second upload with the same token: the
    // finished one is the one to keep.
    let (id, up) = lock(&state.media.tus)
        .iter()
        .filter(|(_, u)| u.token == token)
        .max_by_key(|(_, u)| (u.offset == u.length, u.offset))
        .map(|(id, u)| (id.clone(), u.clone()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "UPLOAD_NOT_STARTED",
                "No tus upload was made with this token",
            )
        })?;
    if up.busy || up.offset < up.length {
        return Err(ApiError::bad_request(
            "UPLOAD_NOT_COMPLETE",
            format!("{} of {} bytes received", up.offset, up.length),
        ));
    }
    if let Some(ct) = up.content_type.as_deref().filter(|c| !c.is_empty()) {
        if ct != pending.mime_type && ct != "application/octet-stream" {
            return Err(rule(
                "contentType",
                format!("{ct:?} does not match {}", pending.mime_type),
                "MISMATCH_MIME_TYPE",
            ));
        }
    }
    if lock(&state.media.pending).remove(&token).is_none() {
        return Err(ApiError::upload_url_spent());
    }
    lock(&state.media.spent).insert(token.clone());
    let abandoned: Vec<String> = {
        let mut all = lock(&state.media.tus);
        all.remove(&id);
        let others: Vec<String> = all
            .iter()
            .filter(|(_, u)| u.token == token)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &others {
            all.remove(k);
        }
        others
    };
    for k in abandoned {
        let _ = tokio::fs::remove_file(state.site.tus_path(&k)).await;
    }
    let name = q.filename.filter(|n| !n.is_empty()).unwrap_or(up.file_name);
    let key = site::new_token();
    let file = store(
        &state,
        &key,
        &state.site.tus_path(&id),
        &name,
        &pending,
        up.length,
    )
    .await?;
    if Faults::roll(state.faults().lost_response_rate) {
        return Err(ApiError::connection_lost());
    }
    Ok(file_answer(&state, &headers, &file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_base64_pairs() {
        let m = parse_metadata("filename ZmlsZS5wZGY=,token dG9r,empty").unwrap();
        assert_eq!(m["filename"], "file.pdf");
        assert_eq!(m["token"], "tok");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("filename !!").is_err());
    }
}
