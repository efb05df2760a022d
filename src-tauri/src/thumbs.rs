//! The `thumb:` protocol: `thumb://localhost/<contact id>/<attachment id>?size=256` answers a
//! thumbnail of that attachment (an image's preview, a PDF's first page), from the core's
//! disk cache or rendered on demand; `thumb://localhost/job/<upload id>` one of a queued
//! upload's local file. The webview names attachments and jobs, never file paths, so it can
//! read nothing but thumbnails.

use tauri::http::{header, Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::core::Core;

pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    let path = request.uri().path().to_string();
    let size = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("size=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(attache_service::thumbnails::GRID_SIZE);
    tauri::async_runtime::spawn(async move {
        responder.respond(answer(&app, &path, size).await);
    });
}

async fn answer<R: Runtime>(app: &tauri::AppHandle<R>, path: &str, size: u32) -> Response<Vec<u8>> {
    let decoded =
        percent_encoding::percent_decode_str(path.trim_start_matches('/')).decode_utf8_lossy();
    let core = match app.state::<Core>().get().await {
        Ok(core) => core,
        Err(e) => return status(StatusCode::SERVICE_UNAVAILABLE, &e.message),
    };
    // `job/<id>`: a queued upload's local file, for the tray.
    if let Some(job) = decoded.strip_prefix("job/") {
        let Ok(id) = job.parse::<i64>() else {
            return status(StatusCode::BAD_REQUEST, "expected /job/<upload id>");
        };
        return reply(core.thumbnails().of_upload(id, size).await, job).await;
    }
    let mut parts = decoded.split('/');
    let (Some(contact), Some(attachment), None) = (parts.next(), parts.next(), parts.next()) else {
        return status(
            StatusCode::BAD_REQUEST,
            "expected /<contact id>/<attachment id>",
        );
    };
    reply(
        core.thumbnails()
            .of_attachment(contact, attachment, size)
            .await,
        attachment,
    )
    .await
}

async fn reply(
    found: Result<(std::path::PathBuf, &'static str), attache_service::ServiceError>,
    what: &str,
) -> Response<Vec<u8>> {
    let (file, mime) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("no thumbnail for {what}: {e}");
            return status(StatusCode::NOT_FOUND, &e.to_string());
        }
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => Response::builder()
            .header(header::CONTENT_TYPE, mime)
            .header(header::CACHE_CONTROL, "max-age=3600")
            .body(bytes)
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        Err(e) => status(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

fn status(code: StatusCode, message: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(message.as_bytes().to_vec())
        .expect("static response parts are valid")
}
