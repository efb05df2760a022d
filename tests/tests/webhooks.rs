//! Wix webhooks end to end: the sandbox signs attachment created/deleted events (RS256 JWTs,
//! nested JSON strings) and POSTs them to `attache webhooks listen`, which verifies them,
//! drops redeliveries, refuses forged, expired and malformed ones, and refreshes the contact.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use attache_sandbox::webhooks::{envelope, sign, sign_claims};
use attache_sandbox::DEMO_SITE_ID;
use attache_tests::{attache_logged, start_sandbox_process, workspace_binary};

use serde_json::{json, Value};

struct Listener {
    child: std::process::Child,
    url: String,
    lines: mpsc::Receiver<Value>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listener {
    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the webhook receiver")
    }
}

fn listen(home: &std::path::Path, sandbox: &str, key: &std::path::Path) -> Listener {
    let mut child = Command::new(workspace_binary("attache"))
        .args([
            "webhooks",
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--public-key",
        ])
        .arg(key)
        .env("ATTACHE_HOME", home)
        .env("ATTACHE_DEMO_URL", sandbox)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect(&first)
        .to_owned();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    Listener { child, url, lines }
}

/// The attachment ids the app's cache in `home` holds for a contact (read-only, beside the
/// running listener: the cache is SQLite in WAL mode).
fn cached_attachment_ids(home: &std::path::Path, contact_id: &str) -> Vec<String> {
    let db = attache_core::AppHome::at(home.to_path_buf())
        .unwrap()
        .cache_db();
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM attachments WHERE contact_id = ?1")
        .unwrap();
    stmt.query_map([contact_id], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_events_refresh_the_contact_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start_sandbox_process(&dir.path().join("site"), &[]);
    let base = sb.base_url.clone();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let http = reqwest::Client::new();
    let key = http
        .get(format!("{base}/_admin/webhooks/public-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key_file = dir.path().join("app-public-key.pem");
    std::fs::write(&key_file, &key).unwrap();

    // The cache knows Ana's attachments (as after opening her in the app).
    let ana = "ana.silva@example.com";
    let (h, b) = (home.clone(), base.clone());
    let listed = tokio::task::spawn_blocking(move || {
        attache_logged(&h, &b)
            .args(["attachments", ana, "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(listed.status.success());
    let before: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let before = before.as_array().unwrap().len();

    let listener = listen(&home, &base, &key_file);
    let registered = http
        .put(format!("{base}/_admin/webhooks"))
        .json(&json!({"callbackUrl": listener.url}))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success());

    // Someone attaches a file to Ana outside Attaché: the created event arrives, verified.
    let wix = attache_tests::fixtures::demo_wix(&base);
    let contacts = wix.all_contacts().await.unwrap();
    let ana_id = contacts
        .iter()
        .find(|c| c.primary_info.as_ref().and_then(|p| p.email.as_deref()) == Some(ana))
        .unwrap()
        .id
        .clone();
    let pdf = dir.path().join("appraisal.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n%appraisal\n").unwrap();
    let url = wix
        .generate_attachment_upload_url(&ana_id, "appraisal.pdf", "application/pdf")
        .await
        .unwrap()
        .upload_url;
    wix.upload_to_url(&url, &attache_tests::upload_source(&pdf, "application/pdf"))
        .await
        .unwrap();
    let created = listener.next();
    assert_eq!(created["event"]["kind"], "attachmentCreated", "{created}");
    assert_eq!(created["event"]["attachment"]["fileName"], "appraisal.pdf");
    let new_id = created["event"]["attachmentId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Deleted: the receiver finds the contact through the cache and refreshes it.
    let seeded = wix.all_attachments(&ana_id).await.unwrap();
    let victim = seeded.iter().find(|a| a.id != new_id).unwrap().id.clone();
    wix.delete_attachment(&ana_id, &victim).await.unwrap();
    let deleted = listener.next();
    assert_eq!(deleted["event"]["kind"], "attachmentDeleted", "{deleted}");
    assert_eq!(deleted["event"]["attachmentId"], victim.as_str());
    assert_eq!(deleted["contactId"], ana_id.as_str(), "{deleted}");
    assert_eq!(
        deleted["attachments"].as_u64().unwrap() as usize,
        before,
        "refreshed: one added, one removed"
    );
    // The cache itself (what the window paints from) holds exactly what the site holds now:
    // the new attachment's id, not the deleted one's.
    let mut on_site: Vec<String> = wix
        .all_attachments(&ana_id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    let mut cached = cached_attachment_ids(&home, &ana_id);
    on_site.sort();
    cached.sort();
    assert!(cached.contains(&new_id), "{cached:?}");
    assert!(!cached.contains(&victim), "{cached:?}");
    assert_eq!(cached, on_site);

    // A redelivery is recognised; forged, expired and malformed bodies are refused.
    let event = json!({"id": "evt-42", "slug": "deleted", "entityId": victim, "deletedEvent": {}});
    let jwt = sign(
        "wix.contacts.v4.attachment_deleted",
        "inst",
        DEMO_SITE_ID,
        &event,
    );
    let post = |body: String| http.post(&listener.url).body(body).send();
    assert_eq!(post(jwt.clone()).await.unwrap().status(), 200);
    let first = listener.next();
    assert_eq!(first["event"]["eventId"], "evt-42");
    assert_eq!(post(jwt.clone()).await.unwrap().status(), 200);
    assert_eq!(listener.next()["duplicate"], "evt-42");

    let mut parts: Vec<&str> = jwt.split('.').collect();
    let other = sign(
        "wix.contacts.v4.attachment_deleted",
        "evil",
        DEMO_SITE_ID,
        &event,
    );
    parts[1] = other.split('.').nth(1).unwrap();
    assert_eq!(post(parts.join(".")).await.unwrap().status(), 401);
    assert!(listener.next()["rejected"]
        .as_str()
        .unwrap()
        .contains("signature"));

    let data = envelope(
        "wix.contacts.v4.attachment_deleted",
        "i",
        DEMO_SITE_ID,
        &event,
    )
    .to_string();
    let expired = sign_claims(&json!({"data": data, "iat": 1000, "exp": 2000}));
    assert_eq!(post(expired).await.unwrap().status(), 401);
    assert!(listener.next()["rejected"]
        .as_str()
        .unwrap()
        .contains("expired"));

    assert_eq!(
        post("{\"not\": \"a jwt\"}".into()).await.unwrap().status(),
        400
    );
    assert!(listener.next()["rejected"].is_string());

    // The listener is bounded: a body far larger than any delivery is refused unread, and a
    // sender that trickles its bytes is cut off instead of holding a connection for ever.
    assert_eq!(post("x".repeat(1 << 20)).await.unwrap().status(), 413);
    let addr = listener
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(addr.split('/').next().unwrap()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        tcp.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\neyJ")
            .unwrap();
        let started = std::time::Instant::now();
        // Up to the status line: the connection may stay open after it.
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        while !reply.windows(2).any(|w| w == b"\r\n") {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&reply).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(answer.1.starts_with("HTTP/1.1 408"), "{:?}", answer.1);
    assert!(answer.0 < Duration::from_secs(20), "{:?}", answer.0);

    // Senders that open connection after connection and never finish their headers: past 64
    // open connections the next is closed at once, each held one is closed after 5 s, and a
    // real delivery gets through as soon as they are gone.
    let host = listener
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let slow = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let started = std::time::Instant::now();
        let conns: Vec<std::net::TcpStream> = (0..100)
            .map(|_| {
                let mut tcp = std::net::TcpStream::connect(&host).unwrap();
                tcp.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                tcp
            })
            .collect();
        // Each connection is closed by the receiver (EOF): when, relative to the start.
        let watchers: Vec<_> = conns
            .into_iter()
            .map(|mut tcp| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 256];
                    while let Ok(n) = tcp.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                    started.elapsed()
                })
            })
            .collect();
        watchers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<Duration>>()
    })
    .await
    .unwrap();
    let quickly = slow.iter().filter(|t| **t < Duration::from_secs(2)).count();
    assert!(
        quickly >= 36,
        "connections past 64 closed at once: {slow:?}"
    );
    assert!(
        slow.iter().all(|t| *t < Duration::from_secs(15)),
        "every trickling connection closed: {slow:?}"
    );
    assert_eq!(post(jwt.clone()).await.unwrap().status(), 200);
}
