//! The one HTTP stack every CRM client sends through (Wix, its Media Manager and upload hosts,
//! EspoCRM). What it adds to reqwest, each once:
//!
//! - **timeouts**: connecting (10 s) and stalling (no byte read for 60 s: a transfer that stops
//!   moving fails and is retried rather than hanging); callers add a per-call deadline where a
//!   call has one;
//! - **redirects**: followed only within the same origin (scheme, host and port), at most five.
//!   reqwest drops `Authorization` on a cross-host redirect but not the CRMs' own credential
//!   headers (`X-Api-Key`, `X-Hmac-Authorization`, `wix-site-id`), and follows https → http;
//!   stopping there keeps a login on the host it was given to;
//! - **uploads that stop moving**: reqwest's stall timeout covers reading answers only; a peer
//!   that stops taking our bytes would hold an upload for ever. [`send_body`] counts the body's
//!   bytes as they are taken and fails the request as [`TransportKind::Stalled`] when none moved
//!   within the stall timeout;
//! - **errors**: a typed [`TransportKind`] (a TLS failure is a kind, not a message to search)
//!   and a text that names the host and the cause, never the URL (upload URLs carry tokens).
//!
//! Retrying is the other half of the stack: [`attache_core::retry`] holds the one policy and
//! the one loop every client uses. Hand-written because these are a few lines of policy over
//! reqwest, not a missing library.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::redirect;
use url::Url;

/// No byte moving for this long fails a transfer (answers and request bodies alike).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of a client; [`HttpSettings::default`] is what the apps use.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// The longest wait for the next byte of an answer.
    pub stall_timeout: Duration,
    pub max_redirects: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // `ATTACHE_STALL_TIMEOUT_MS` shortens it for a process (the soak's stalled uploads).
            stall_timeout: std::env::var("ATTACHE_STALL_TIMEOUT_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(STALL_TIMEOUT, Duration::from_millis),
            max_redirects: 5,
        }
    }
}

/// A client with the default settings.
pub fn client() -> Result<reqwest::Client, TransportError> {
    client_with(HttpSettings::default())
}

pub fn client_with(settings: HttpSettings) -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.stall_timeout)
        .redirect(same_origin_redirects(settings.max_redirects))
        .user_agent(concat!("Attache/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| classify(&e, "the HTTP client"))
}

/// The most a JSON answer may weigh. The largest real page (1,000 Wix contacts) is a few MB;
/// a server that sends more is broken or hostile, and is not read into memory.
pub const JSON_LIMIT: usize = 32 << 20;
/// How much of an error answer is read: enough for any message the CRMs send.
pub const ERROR_BODY_LIMIT: usize = 64 << 10;

/// An answer's body, read up to a limit.
#[derive(Debug, Default)]
pub struct Capped {
    /// The first bytes of the body, at most the limit.
    pub bytes: Bytes,
    /// The body went on past the limit (and was not read further).
    pub truncated: bool,
}

/// Why a JSON answer was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {} MiB, which no CRM answer is; not read", JSON_LIMIT >> 20)]
    TooLarge,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A JSON answer's body, whole: one past [`JSON_LIMIT`] is refused, not read into memory.
pub async fn read_json(resp: reqwest::Response) -> Result<Bytes, BodyError> {
    let body = read_capped(resp, JSON_LIMIT).await?;
    if body.truncated {
        return Err(BodyError::TooLarge);
    }
    Ok(body.bytes)
}

/// Reads `resp`'s body, but never more than `limit` bytes of it into memory: a body announced
/// as larger is not read at all; one that grows past the limit is cut there. Either way the
/// connection is dropped, not drained.
pub async fn read_capped(resp: reqwest::Response, limit: usize) -> Result<Capped, TransportError> {
    let host = resp.url().host_str().unwrap_or_default().to_owned();
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(Capped {
            bytes: Bytes::new(),
            truncated: true,
        });
    }
    let mut stream = resp.bytes_stream();
    let mut body = bytes::BytesMut::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| classify(&e, &host))?;
        let room = limit - body.len();
        if piece.len() > room {
            body.extend_from_slice(&piece[..room]);
            return Ok(Capped {
                bytes: body.freeze(),
                truncated: true,
            });
        }
        body.extend_from_slice(&piece);
    }
    Ok(Capped {
        bytes: body.freeze(),
        truncated: false,
    })
}

/// Sends `request` with `body` (`total` bytes) as its streamed body, failing it as
/// [`TransportKind::Stalled`] when no byte of the body is taken for `stall` (the peer stopped
/// reading, or the link died without a reset). Once the whole body is out, the client's own
/// read timeout watches the answer. `host` names the peer in errors.
pub async fn send_body<S, E>(
    request: reqwest::RequestBuilder,
    body: S,
    total: u64,
    stall: Duration,
    host: &str,
) -> Result<reqwest::Response, TransportError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let taken = Arc::new(AtomicU64::new(0));
    let counter = taken.clone();
    let counted = body.inspect(move |piece| {
        if let Ok(bytes) = piece {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    });
    let send = request.body(reqwest::Body::wrap_stream(counted)).send();
    let answer = watch_progress(send, || taken.load(Ordering::Relaxed), total, stall).await;
    match answer {
        Some(Ok(resp)) => Ok(resp),
        Some(Err(e)) => Err(classify(&e, host)),
        None => Err(TransportError::new(
            TransportKind::Stalled,
            host,
            format!("the upload stopped moving (nothing sent for {stall:?})"),
        )),
    }
}

/// An in-memory body as a stream of pieces, so [`send_body`] can watch it move.
pub fn pieces(bytes: impl Into<Bytes>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    const PIECE: usize = 256 << 10;
    let bytes: Bytes = bytes.into();
    let count = bytes.len().div_ceil(PIECE);
    futures::stream::iter(
        (0..count).map(move |i| Ok(bytes.slice(i * PIECE..((i + 1) * PIECE).min(bytes.len())))),
    )
}

/// Runs `work` until it ends (`Some`) or `moved()` stays below `total` without changing for
/// `stall` (`None`).
async fn watch_progress<T>(
    work: impl Future<Output = T>,
    moved: impl Fn() -> u64,
    total: u64,
    stall: Duration,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval((stall / 8).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last, mut last_move) = (moved(), tokio::time::Instant::now());
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = tick.tick() => {
                let now = moved();
                if now != last || now >= total {
                    (last, last_move) = (now, tokio::time::Instant::now());
                } else if last_move.elapsed() >= stall {
                    return None;
                }
            }
        }
    }
}

/// Follows a redirect only to the origin the request was sent to; any other is not followed,
/// and its 3xx answer reaches the caller as an error of the CRM's.
fn same_origin_redirects(max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > max {
            attempt.error(TooManyRedirects)
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

#[derive(Debug, thiserror::Error)]
#[error("more than the allowed number of redirects")]
struct TooManyRedirects;

/// What kind of failure stopped a request before the CRM answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The host name could not be resolved.
    Dns,
    /// Nothing listens there (connection refused).
    Refused,
    /// The TLS handshake failed: a certificate not valid for the host, expired, self-signed,
    /// or a server not speaking TLS. Trying again does not help.
    Tls,
    /// Connecting, or the whole call, took longer than allowed.
    Timeout,
    /// The connection stopped moving (no byte within the stall timeout).
    Stalled,
    /// The connection was cut mid-request or mid-answer.
    Cut,
    /// Anything else (the client could not be built, a redirect loop, ...).
    Other,
}

impl TransportKind {
    /// Whether the same request may get through if simply tried again.
    pub fn is_transient(self) -> bool {
        !matches!(self, TransportKind::Tls | TransportKind::Other)
    }
}

/// A request that got no answer from the CRM. Its text names the host, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not reach {host}: {reason}")]
pub struct TransportError {
    pub kind: TransportKind,
    pub host: String,
    pub reason: String,
}

impl TransportError {
    pub fn new(kind: TransportKind, host: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind,
            host: host.into(),
            reason: reason.into(),
        }
    }
}

/// Types and explains a reqwest failure. `fallback_host` names the host when the error carries
/// no URL.
pub fn classify(e: &reqwest::Error, fallback_host: &str) -> TransportError {
    let host = e
        .url()
        .and_then(Url::host_str)
        .unwrap_or(fallback_host)
        .to_owned();
    let causes = causes(e);
    let io_kind = causes
        .iter()
        .find_map(|c| c.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
    let tls = causes.iter().any(|c| is_tls(*c));
    // The innermost cause is the most precise text, and never holds the request's URL (only
    // reqwest's own Display adds it).
    let innermost = causes
        .last()
        .map(|c| c.to_string())
        .filter(|_| causes.len() > 1);
    let (kind, reason) = if tls {
        (
            TransportKind::Tls,
            format!(
                "the secure connection failed ({})",
                innermost.unwrap_or_default()
            ),
        )
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        (
            TransportKind::Refused,
            "the connection was refused".to_owned(),
        )
    } else if e.is_timeout() && e.is_connect() {
        (
            TransportKind::Timeout,
            "connecting took too long".to_owned(),
        )
    } else if e.is_timeout() && (e.is_body() || e.is_decode()) {
        (
            TransportKind::Stalled,
            "the answer stopped coming".to_owned(),
        )
    } else if e.is_timeout() {
        (TransportKind::Timeout, "the request timed out".to_owned())
    } else if e.is_connect() && is_dns(&causes) {
        (
            TransportKind::Dns,
            format!(
                "the name could not be resolved ({})",
                innermost.unwrap_or_default()
            ),
        )
    } else if e.is_connect() {
        (
            TransportKind::Refused,
            format!(
                "the connection could not be made ({})",
                innermost.unwrap_or_default()
            ),
        )
    } else if e.is_request() || e.is_body() || e.is_decode() {
        (
            TransportKind::Cut,
            format!(
                "the connection was cut ({})",
                innermost.unwrap_or_else(|| "no answer".into())
            ),
        )
    } else {
        (
            TransportKind::Other,
            innermost.unwrap_or_else(|| "the request failed".into()),
        )
    };
    TransportError { kind, host, reason }
}

/// The error and its causes, outermost first.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = vec![e];
    while let Some(next) = out.last().and_then(|c| c.source()) {
        out.push(next);
    }
    out
}

/// rustls's error reaches us inside io::Errors (one in another), whose `source()` skips the
/// error they wrap: unwrap them by hand.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        Some(inner) => is_tls(inner),
        None => false,
    }
}

/// hyper-util's resolver failure is a private type; its text is stable ("dns error").
fn is_dns(causes: &[&(dyn std::error::Error + 'static)]) -> bool {
    causes
        .iter()
        .any(|c| c.to_string().starts_with("dns error"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A loopback server answering each connection with `reply(request_text)`, in a thread.
    fn serve(
        reply: impl Fn(&str) -> Vec<u8> + Send + 'static,
    ) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, requests) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = vec![0u8; 16 * 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = seen.send(text.clone());
                let _ = stream.write_all(&reply(&text));
            }
        });
        (format!("127.0.0.1:{}", addr.port()), requests)
    }

    fn redirect_to(location: String) -> impl Fn(&str) -> Vec<u8> {
        move |_| {
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
        }
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed_and_the_credentials_stay_home() {
        let (elsewhere, reached) = serve(|_| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()
        });
        // 127.0.0.1 and localhost are different hosts to a browser and to this policy.
        let other = elsewhere.replace("127.0.0.1", "localhost");
        let (home, _) = serve(redirect_to(format!("http://{other}/steal")));
        let resp = client()
            .unwrap()
            .get(format!("http://{home}/api/v1/Contact"))
            .header("X-Api-Key", "k-123")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            302,
            "the redirect is handed back, not followed"
        );
        assert!(
            reached.recv_timeout(Duration::from_millis(300)).is_err(),
            "the other host saw no request"
        );
    }

    #[tokio::test]
    async fn a_redirect_within_the_same_origin_is_followed_with_its_headers() {
        let (home, seen) = serve(|request| {
            if request.starts_with("GET /old") {
                b"HTTP/1.1 301 Moved\r\nLocation: /new\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()
            }
        });
        let resp = client()
            .unwrap()
            .get(format!("http://{home}/old"))
            .header("X-Api-Key", "k-123")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.unwrap(), "ok");
        let _first = seen.recv().unwrap();
        let second = seen.recv().unwrap();
        assert!(second.starts_with("GET /new"), "{second}");
        assert!(second.to_ascii_lowercase().contains("x-api-key: k-123"));
    }

    #[tokio::test]
    async fn https_to_plain_http_is_not_followed() {
        // The downgrade is refused by the policy whatever the first hop spoke; the first hop
        // here is plain http to a different port, which is another origin too.
        let (target, reached) = serve(|_| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        });
        let (home, _) = serve(redirect_to(format!("http://{target}/")));
        let resp = client()
            .unwrap()
            .get(format!("http://{home}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 302);
        assert!(reached.recv_timeout(Duration::from_millis(300)).is_err());
    }

    #[tokio::test]
    async fn a_server_that_does_not_speak_tls_is_a_tls_failure_and_not_retried() {
        let (plain, _) =
            serve(|_| b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec());
        let e = client()
            .unwrap()
            .get(format!("https://{plain}/upload/secret-token-42?sig=abc"))
            .send()
            .await
            .unwrap_err();
        let t = classify(&e, "?");
        assert_eq!(t.kind, TransportKind::Tls, "{t}");
        assert!(!t.kind.is_transient());
        assert_eq!(t.host, "127.0.0.1");
        assert!(!t.to_string().contains("secret-token-42"), "{t}");
        assert!(!t.to_string().contains("sig=abc"), "{t}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_typed_and_its_url_stays_out_of_the_text() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = client()
            .unwrap()
            .put(format!("http://127.0.0.1:{port}/upload?token=tok-secret"))
            .send()
            .await
            .unwrap_err();
        let t = classify(&e, "?");
        assert_eq!(t.kind, TransportKind::Refused, "{t}");
        assert!(t.kind.is_transient());
        assert_eq!(
            t.to_string(),
            "could not reach 127.0.0.1: the connection was refused"
        );
    }

    #[tokio::test]
    async fn an_upload_the_peer_stops_reading_fails_as_stalled_instead_of_hanging() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (got, read) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Reads the headers and a little of the body, then stops reading with the
            // connection open: the socket buffers fill and the sender can write no more.
            let mut buf = vec![0u8; 64 << 10];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = got.send(n);
            std::thread::sleep(Duration::from_secs(10));
        });
        let body = vec![7u8; 64 << 20];
        let request = client()
            .unwrap()
            .put(format!("http://127.0.0.1:{port}/upload?token=tok-secret"));
        let started = std::time::Instant::now();
        let e = send_body(
            request,
            pieces(body),
            64 << 20,
            Duration::from_millis(500),
            "127.0.0.1",
        )
        .await
        .unwrap_err();
        assert!(
            read.recv().unwrap() > 0,
            "the peer saw the start of the upload"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(e.kind, TransportKind::Stalled, "{e}");
        assert_eq!(
            e.to_string(),
            "could not reach 127.0.0.1: the upload stopped moving (nothing sent for 500ms)"
        );
    }

    #[tokio::test]
    async fn a_slow_upload_that_keeps_moving_is_not_cut_and_arrives_whole() {
        let (home, seen) = serve(|_| {
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        });
        // Pieces with pauses longer than a tick but shorter than the stall limit.
        let body = futures::stream::iter(0..4).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, std::io::Error>(Bytes::from(format!("piece{i};")))
        });
        let request = client()
            .unwrap()
            .post(format!("http://{home}/"))
            .header("Content-Length", 24);
        let resp = send_body(request, body, 24, Duration::from_millis(400), "127.0.0.1")
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let _ = seen.recv().unwrap();
    }

    #[test]
    fn pieces_cover_the_bytes_exactly_once() {
        let bytes: Vec<u8> = (0..(600u32 << 10)).map(|i| i as u8).collect();
        let joined = futures::executor::block_on(
            pieces(bytes.clone())
                .map(|p| p.unwrap())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            joined.iter().map(Bytes::len).collect::<Vec<_>>(),
            [256 << 10, 256 << 10, 88 << 10]
        );
        assert_eq!(joined.concat(), bytes);
        assert_eq!(futures::executor::block_on(pieces(Vec::new()).count()), 0);
    }

    #[tokio::test]
    async fn an_answer_that_stops_moving_fails_as_stalled_instead_of_hanging() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            // Headers and half the body, then silence with the connection open.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.");
            std::thread::sleep(Duration::from_secs(5));
        });
        let http = client_with(HttpSettings {
            stall_timeout: Duration::from_millis(300),
            ..HttpSettings::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let resp = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        let e = resp.bytes().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        let t = classify(&e, "127.0.0.1");
        assert_eq!(t.kind, TransportKind::Stalled, "{t:?}");
        assert!(t.kind.is_transient());
    }

    /// A server that answers with headers and then body bytes without end.
    fn endless(content_length: Option<u64>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let length =
                content_length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
            let _ = write!(stream, "HTTP/1.1 500 Oops\r\n{length}\r\n");
            let block = [b'x'; 64 * 1024];
            // Stops when the client hangs up; 1 GiB at most.
            for _ in 0..16 * 1024 {
                if stream.write_all(&block).is_err() {
                    return;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn a_body_past_its_limit_is_cut_there_without_reading_the_rest() {
        for announced in [None, Some(1u64 << 30)] {
            let port = endless(announced);
            let resp = client()
                .unwrap()
                .get(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .unwrap();
            let capped = read_capped(resp, 100_000).await.unwrap();
            assert!(capped.truncated, "{announced:?}");
            let expected = if announced.is_some() { 0 } else { 100_000 };
            assert_eq!(capped.bytes.len(), expected, "{announced:?}");
        }
        let (addr, _) = serve(|_| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec()
        });
        let resp = client()
            .unwrap()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        let capped = read_capped(resp, 5).await.unwrap();
        assert_eq!(
            (&capped.bytes[..], capped.truncated),
            (&b"hello"[..], false)
        );
    }
}
