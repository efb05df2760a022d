//! The `attache` binary as a user or script runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use attache_tests::workspace_binary;
use serde_json::Value;

fn attache(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(workspace_binary("attache"))
        .args(args)
        .env("ATTACHE_HOME", home)
        .output()
        .unwrap()
}

#[test]
fn sandbox_prints_its_address_first_and_serves_the_wix_api() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(workspace_binary("attache"))
        .args(["sandbox", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--api-key", "k-123", "--site-id", "site-9"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .expect(&first)
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let http = reqwest::blocking::Client::new();
    let ok = http
        .get(format!("{base}/contacts/v4/contacts"))
        .header("Authorization", "k-123")
        .header("wix-site-id", "site-9")
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().unwrap();
    assert!(body["contacts"].as_array().unwrap().len() >= 12);
    let denied = http
        .get(format!("{base}/contacts/v4/contacts"))
        .header("Authorization", "demo-api-key")
        .header("wix-site-id", "site-9")
        .send()
        .unwrap();
    assert_eq!(denied.status(), 401, "only the configured key is accepted");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        data.path().join("site.json").exists(),
        "persists under --data"
    );
}

#[test]
fn contacts_and_attachments_on_the_demo_site() {
    let home = tempfile::tempdir().unwrap();
    let out = attache(home.path(), &["contacts", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(all.len() >= 12);

    let out = attache(home.path(), &["contacts", "--search", "okaf"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Marcus Okafor") && !text.contains("Ana Silva"),
        "{text}"
    );

    let ana = all
        .iter()
        .find(|c| c["displayName"] == "Ana Silva")
        .unwrap();
    for who in [ana["id"].as_str().unwrap(), "ana.silva@example.com"] {
        let out = attache(home.path(), &["attachments", who, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(files.len(), 5);
        assert!(files
            .iter()
            .any(|f| f["kind"] == "image" && f["previewUrl"].is_string()));
    }

    let out = attache(home.path(), &["attachments", "ana.silva@example.com"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Front elevation.jpg") && text.contains("KB"),
        "{text}"
    );

    // All state lives under ATTACHE_HOME.
    assert!(home.path().join("cache.sqlite3").exists());
    assert!(home.path().join("demo").join("site.json").exists());
}

#[test]
fn unknown_contact_fails_with_a_stable_code() {
    let home = tempfile::tempdir().unwrap();
    let out = attache(home.path(), &["attachments", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("error [NOT_FOUND]") && err.contains("nobody@example.com"),
        "{err}"
    );
    let usage = attache(home.path(), &["attachments"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn watch_once_files_what_is_there_and_exits() {
    let home = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let pdf = |seed: &str| format!("%PDF-1.4\n% {seed}\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n");
    std::fs::create_dir_all(inbox.path().join("Ana Silva")).unwrap();
    std::fs::write(
        inbox.path().join("Ana Silva").join("offer.pdf"),
        pdf("offer"),
    )
    .unwrap();
    std::fs::write(inbox.path().join("unknown scan.pdf"), pdf("unknown")).unwrap();
    std::fs::write(inbox.path().join("download.pdf.part"), pdf("partial")).unwrap();

    let dir = inbox.path().to_str().unwrap();
    let out = attache(
        home.path(),
        &["watch", dir, "--once", "--after", "keep", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["filed"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["filed"][0]["contactName"], "Ana Silva");
    assert_eq!(summary["filed"][0]["reason"]["kind"], "folder");
    assert_eq!(summary["needsFiling"][0]["fileName"], "unknown scan.pdf");
    // Kept in place as asked; the partial download untouched.
    assert!(inbox.path().join("Ana Silva").join("offer.pdf").is_file());
    assert!(inbox.path().join("download.pdf.part").is_file());

    let out = attache(home.path(), &["attachments", "ana.silva@example.com"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("offer.pdf"));

    // A second run finds nothing new: the kept file is known, so it is not attached again.
    let out = attache(
        home.path(),
        &["watch", dir, "--once", "--after", "keep", "--json"],
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(again["filed"].as_array().unwrap().is_empty(), "{again}");

    // No folder at all is a clear usage error.
    let out = attache(home.path(), &["watch", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no inbox folder"));
}

#[test]
fn thumbnail_writes_one_picture_per_input_and_names_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("kitchen.jpg");
    image::RgbImage::from_fn(1600, 1200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&photo)
    .unwrap();
    let pdf = dir.path().join("agreement.pdf");
    std::fs::write(
        &pdf,
        attache_sandbox::pdf::document(
            "Purchase agreement",
            "12 Harbor Lane",
            &["Price: $1"],
            &["Ana Silva"],
        ),
    )
    .unwrap();
    let empty = dir.path().join("empty.pdf");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("thumbs");
    let run = attache(
        dir.path(),
        &[
            "thumbnail",
            photo.to_str().unwrap(),
            pdf.to_str().unwrap(),
            empty.to_str().unwrap(),
            "--size",
            "200",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(1), "one input failed");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("empty.pdf: the file is empty"), "{err}");
    let jpg = image::open(out.join("kitchen.jpg")).unwrap();
    assert_eq!((jpg.width(), jpg.height()), (200, 150));
    let page = image::open(out.join("agreement.png")).unwrap();
    assert_eq!(page.height(), 200, "a portrait page fills the long side");
    assert!(page.width() < 200);
}
