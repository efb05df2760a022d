//! The Rust tus client against an independent tus 1.0.0 server, `@tus/server` with
//! `@tus/file-store` from npm (tests/peers, installed by `make test`), with the connection cut
//! mid-upload by a proxy in between: the client must ask the server's offset and continue from
//! there, and the stored bytes must be exactly the file's.

use std::path::Path;
use std::sync::atomic::Ordering;

use attache_core::Sensitive;
use attache_wix::media::TusSession;
use attache_wix::{RetryPolicy, WixAuth, WixClient};
use tokio::io::{AsyncBufReadExt, BufReader};

fn peers_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Starts `node tus-server.mjs DIR` and returns it with its port.
async fn tus_server(dir: &Path) -> (tokio::process::Child, u16) {
    let peers = peers_dir();
    assert!(
        peers.join("node_modules/@tus/server").is_dir(),
        "tests/peers is not installed: run ./.ci/deps.sh (make test does)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(peers.join("tus-server.mjs"))
        .arg(dir)
        .current_dir(&peers)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (Node.js 20.19+) is needed");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the tus server started in time")
        .unwrap()
        .expect("the tus server printed its port");
    let port = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, port)
}

#[tokio::test]
async fn resumes_against_tus_server_after_a_cut_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let (_server, port) = tus_server(&store).await;
    let size: usize = 20 * 1024 * 1024 + 77;
    let proxy = attache_tests::proxy::start(
        port,
        attache_tests::proxy::Behaviour {
            cut_after: Some(7 * 1024 * 1024),
            ..Default::default()
        },
    )
    .await;

    let path = dir.path().join("inspection.pdf");
    let bytes: Vec<u8> = (0..size)
        .map(|i| (i % 241) as u8 ^ (i >> 16) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let source = attache_tests::upload_source(&path, "application/pdf");
    let len = source.size;
    // The base URL only matters for API calls, which a tus transfer makes none of.
    let client = WixClient::new(
        "http://127.0.0.1:9",
        WixAuth::ApiKey {
            key: Sensitive::new("unused".into()),
            site_id: "unused".into(),
        },
    )
    .unwrap()
    .with_retry(RetryPolicy {
        base_delay: std::time::Duration::from_millis(10),
        ..RetryPolicy::default()
    });
    let mut session = TusSession {
        upload_url: format!("http://127.0.0.1:{}/files", proxy.port),
        upload_token: "token-for-wix".into(),
        location: None,
        length: len,
        baseline: Vec::new(),
    };
    let mut saves = Vec::new();
    client
        .tus_transfer(&mut session, &source, |s| saves.push(s.clone()))
        .await
        .unwrap();

    assert!(
        proxy.cut.load(Ordering::SeqCst),
        "the connection was cut mid-upload"
    );
    let location = session.location.clone().expect("created");
    assert_eq!(
        saves.last(),
        Some(&session),
        "the session was saved once created"
    );
    let id = location.rsplit('/').next().unwrap();
    let stored = std::fs::read(store.join(id)).unwrap();
    assert_eq!(stored.len(), size);
    assert!(stored == bytes, "the server holds exactly the file");
    // Resumed from the server's offset: the bytes sent overall are the file plus what was lost
    // in the cut request, far from twice the file.
    let sent = proxy.upstream_bytes.load(Ordering::SeqCst);
    assert!(
        sent < (size as u64) + 3 * 1024 * 1024,
        "{sent} bytes went upstream for a {size}-byte file"
    );
    // The server's metadata came from the client's Upload-Metadata (filename, type, token).
    let meta = std::fs::read_to_string(store.join(format!("{id}.json"))).unwrap();
    assert!(
        meta.contains("inspection.pdf") && meta.contains("token-for-wix"),
        "{meta}"
    );
}
