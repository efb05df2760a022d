//! The `thumb:` protocol: `thumb://localhost/<contact id>/<attachment id>` answers the cached
//! preview image of that attachment. The webview names attachments, never file paths, so it
//! can read nothing but previews.

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
    tauri::async_runtime::spawn(async move {
        responder.respond(answer(&app, &path).await);
    });
}

async fn answer<R: Runtime>(app: &tauri::AppHandle<R>, path: &str) -> Response<Vec<u8>> {
    let decoded =
        percent_encoding::percent_decode_str(path.trim_start_matches('/')).decode_utf8_lossy();
    let mut parts = decoded.split('/');
    let (Some(contact), Some(attachment), None) = (parts.next(), parts.next(), parts.next()) else {
        return status(
            StatusCode::BAD_REQUEST,
            "expected /<contact id>/<attachment id>",
        );
    };
    let core = match app.state::<Core>().get().await {
        Ok(core) => core,
        Err(e) => return status(StatusCode::SERVICE_UNAVAILABLE, &e.message),
    };
    let file = match core.preview(contact, attachment).await {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!("no preview for {attachment}: {e}");
            return status(StatusCode::NOT_FOUND, &e.to_string());
        }
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => Response::builder()
            .header(header::CONTENT_TYPE, sniff(&bytes))
            .header(header::CACHE_CONTROL, "max-age=3600")
            .body(bytes)
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        Err(e) => status(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// Previews come from the CRM; label them by their bytes, not by what the CRM claimed.
fn sniff(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        _ => "application/octet-stream",
    }
}

fn status(code: StatusCode, message: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(message.as_bytes().to_vec())
        .expect("static response parts are valid")
}
