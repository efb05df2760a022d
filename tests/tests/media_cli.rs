//! `attache media …` as a user runs it, against an `attache sandbox` process: every
//! subcommand, and a large upload killed mid-way (SIGKILL) that the next run resumes from the
//! server's offset instead of sending again.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use attache_tests::{attache_logged, port_of, start_sandbox_process};
use serde_json::Value;

fn run(home: &Path, url: &str, args: &[&str]) -> Output {
    attache_logged(home, url).args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the last run printed on stderr (`attache_logged` keeps it in `home/log-NNN.txt`).
fn last_stderr(home: &Path) -> String {
    let mut logs: Vec<_> = std::fs::read_dir(home)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log-"))
        .collect();
    logs.sort();
    std::fs::read_to_string(logs.last().unwrap()).unwrap()
}

#[test]
fn media_subcommands_list_upload_trash_restore_and_link() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start_sandbox_process(&dir.path().join("site"), &[]);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let a = dir.path().join("Listing photo.png");
    let png = {
        let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    std::fs::write(&a, &png).unwrap();
    let b = dir.path().join("notes.txt");
    std::fs::write(&b, "closing checklist\n").unwrap();
    let empty = dir.path().join("empty.pdf");
    std::fs::write(&empty, "").unwrap();

    let out = run(
        &home,
        &sb.base_url,
        &[
            "media",
            "upload",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            empty.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        !out.status.success(),
        "one bad file makes the exit status non-zero"
    );
    let outcomes: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes = outcomes.as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0]["file"]["mediaType"], "IMAGE");
    assert_eq!(outcomes[1]["file"]["mediaType"], "DOCUMENT");
    assert!(
        outcomes[2]["error"].as_str().unwrap().contains("empty"),
        "{}",
        outcomes[2]
    );
    let photo_id = outcomes[0]["file"]["id"].as_str().unwrap().to_owned();

    let listed = json_of(&run(&home, &sb.base_url, &["media", "ls", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let found = json_of(&run(
        &home,
        &sb.base_url,
        &["media", "ls", "--search", "photo", "--json"],
    ));
    assert_eq!(found.as_array().unwrap().len(), 1);

    let text = run(&home, &sb.base_url, &["media", "ls"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Listing photo.png"));

    assert!(run(&home, &sb.base_url, &["media", "rm", &photo_id])
        .status
        .success());
    let trash = json_of(&run(
        &home,
        &sb.base_url,
        &["media", "ls", "--trash", "--json"],
    ));
    assert_eq!(trash[0]["id"], photo_id.as_str());
    assert!(run(&home, &sb.base_url, &["media", "restore", &photo_id])
        .status
        .success());
    let links = json_of(&run(
        &home,
        &sb.base_url,
        &["media", "link", &photo_id, "--json"],
    ));
    let url = links[0]["url"].as_str().unwrap();
    let got = reqwest::blocking::get(url).unwrap().bytes().unwrap();
    assert_eq!(got.as_ref(), png.as_slice(), "the link serves the file");

    let bad = run(
        &home,
        &sb.base_url,
        &["media", "rm", "5f0c1e_nothing~mv2.pdf"],
    );
    assert!(!bad.status.success());
    assert!(
        last_stderr(&home).contains("not found"),
        "{}",
        last_stderr(&home)
    );

    // EspoCRM has no Media Manager: said plainly.
    let espo = run(
        &home,
        &sb.base_url,
        &["--account", "demo-espo", "media", "ls"],
    );
    assert!(!espo.status.success());
    assert!(
        last_stderr(&home).contains("speaks EspoCRM, which has no Media Manager"),
        "{}",
        last_stderr(&home)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_large_upload_resumes_where_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start_sandbox_process(&dir.path().join("site"), &[]);
    // 16 MB/s between the CLI and the sandbox, so the upload is still going when it is killed.
    let proxy = attache_tests::proxy::start(
        port_of(&sb.base_url),
        attache_tests::proxy::Behaviour {
            bytes_per_sec: Some(16 * 1024 * 1024),
            ..Default::default()
        },
    )
    .await;
    let url = proxy.url();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let size = 48 * 1024 * 1024;
    let big = dir.path().join("drone-footage.mp4");
    let bytes: Vec<u8> = (0..size)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();

    let mut child = attache_logged(&home, &url)
        .args(["media", "upload", big.to_str().unwrap(), "--json"])
        .spawn()
        .unwrap();
    // The session is kept in the durable queue (SQLite), read here as a second process would.
    let queue_db = home.join("queue.sqlite3");
    let saved_sessions = move || -> Vec<Value> {
        let Ok(db) = rusqlite::Connection::open(&queue_db) else {
            return Vec::new();
        };
        let Ok(mut stmt) = db.prepare("SELECT session FROM resumable_uploads") else {
            return Vec::new();
        };
        stmt.query_map([], |r| r.get::<_, String>(0))
            .map(|rows| {
                rows.filter_map(Result::ok)
                    .filter_map(|s| serde_json::from_str(&s).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if saved_sessions().iter().any(|s| s["location"].is_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let a good part of the file go, then kill the process without warning.
    while proxy
        .upstream_bytes
        .load(std::sync::atomic::Ordering::SeqCst)
        < 16 * 1024 * 1024
    {
        assert!(Instant::now() < deadline, "the upload stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sessions = saved_sessions();
    assert_eq!(sessions.len(), 1);
    let location = sessions[0]["location"].as_str().unwrap().to_owned();
    // The proxy still forwards what the dead process had written to its socket: wait until
    // the server's offset settles.
    let offset = || async {
        let head = reqwest::Client::new()
            .head(&location)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        head.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let mut held = offset().await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = offset().await;
        if now == held {
            break;
        }
        held = now;
        assert!(Instant::now() < deadline, "the offset never settled");
    }
    assert!(
        held > 0 && held < size as u64,
        "the server kept {held} bytes"
    );

    let sent_before = proxy
        .upstream_bytes
        .load(std::sync::atomic::Ordering::SeqCst);
    // Blocking waits run off the runtime: the proxy needs its threads.
    let mut again = attache_logged(&home, &url);
    again.args(["media", "upload", big.to_str().unwrap(), "--json"]);
    let out = tokio::task::spawn_blocking(move || again.output().unwrap())
        .await
        .unwrap();
    let outcome = json_of(&out);
    assert_eq!(outcome[0]["resumed"], true, "{outcome}");
    assert_eq!(outcome[0]["resumable"], true);
    let sent_again = proxy
        .upstream_bytes
        .load(std::sync::atomic::Ordering::SeqCst)
        - sent_before;
    assert!(
        sent_again < size as u64 - held + 1024 * 1024,
        "the second run sent {sent_again} bytes; only {} were missing",
        size as u64 - held
    );
    assert!(
        saved_sessions().is_empty(),
        "the saved session is gone once the upload is done"
    );

    let (h, u) = (home.clone(), url.clone());
    let listed = json_of(
        &tokio::task::spawn_blocking(move || run(&h, &u, &["media", "ls", "--json"]))
            .await
            .unwrap(),
    );
    let files = listed.as_array().unwrap();
    assert_eq!(files.len(), 1, "one file, not two");
    assert_eq!(files[0]["sizeInBytes"], size.to_string());
    let got = reqwest::get(files[0]["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        got.as_ref() == bytes.as_slice(),
        "the stored file is the file"
    );
}
