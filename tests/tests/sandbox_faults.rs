//! The sandbox's behaviour under each fault it can inject, one at a time and deterministic
//! (share 1.0), seen on the wire; and the Wix client's recovery where recovery is possible.
//! (Batches through all faults at once are in `uploads.rs` and `wix_media.rs`.)

use std::time::{Duration, Instant};

use attache_core::upload::UploadSource;
use attache_core::CrmBackend;
use attache_sandbox::faults::Faults;
use attache_sandbox::{SandboxConfig, DEMO_API_KEY, DEMO_SITE_ID};
use attache_tests::fixtures::{demo_sandbox, demo_wix, sandbox_with, set_faults};
use attache_wix::{RetryPolicy, WixClient};
use serde_json::{json, Value};

fn client(base: &str, retry: RetryPolicy) -> WixClient {
    demo_wix(base).with_retry(retry)
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

async fn recording(base: &str) {
    reqwest::Client::new()
        .delete(format!("{base}/_admin/requests"))
        .send()
        .await
        .unwrap();
}

async fn recorded(base: &str, path_part: &str) -> usize {
    let v: Value = reqwest::get(format!("{base}/_admin/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").contains(path_part))
        .count()
}

fn contacts_get(base: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("{base}/contacts/v4/contacts?paging.limit=1"))
        .header("Authorization", DEMO_API_KEY)
        .header("wix-site-id", DEMO_SITE_ID)
}

fn pdf_source(dir: &std::path::Path, name: &str) -> UploadSource {
    let path = dir.join(name);
    std::fs::write(&path, format!("%PDF-1.4\n% {name}\n%%EOF\n")).unwrap();
    attache_tests::upload_source(&path, "application/pdf")
}

#[tokio::test]
async fn each_fault_looks_on_the_wire_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();

    // Latency: every request waits.
    set_faults(&base, &json!({"latencyMs": 150})).await;
    let started = Instant::now();
    assert_eq!(contacts_get(&base).send().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    // 5xx: 500/503/504 with Wix's error body, before any work.
    set_faults(&base, &json!({"errorRate": 1.0})).await;
    let r = contacts_get(&base).send().await.unwrap();
    assert!(
        [500, 503, 504].contains(&r.status().as_u16()),
        "{}",
        r.status()
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["details"]["applicationError"]["code"],
        "INJECTED_FAULT"
    );

    // 429 bursts carry Retry-After.
    set_faults(&base, &json!({"throttleRate": 1.0})).await;
    let r = contacts_get(&base).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");

    // The per-site rate limit: the sixth request in the minute is refused with a wait.
    set_faults(&base, &json!({"rateLimitPerMinute": 5})).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = contacts_get(&base).send().await.unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").cloned()));
    }
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    assert_eq!(statuses[5].0, 429);
    let wait: u64 = statuses[5]
        .1
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    set_faults(&base, &json!({})).await;

    // The upload host's faults, on a real attachment upload.
    let wix = client(&base, RetryPolicy::none());
    let ana = wix.all_contacts().await.unwrap()[0].id.clone();
    let before = wix.all_attachments(&ana).await.unwrap().len();
    let put = |url: String, src: UploadSource| {
        let wix = wix.clone();
        async move { wix.upload_to_url(&url, &src).await }
    };
    let url_for = |name: &'static str| {
        let wix = wix.clone();
        let ana = ana.clone();
        async move {
            wix.generate_attachment_upload_url(&ana, name, "application/pdf")
                .await
                .unwrap()
                .upload_url
        }
    };

    // reset: the body is cut off, nothing is stored.
    set_faults(&base, &json!({"resetRate": 1.0})).await;
    let url = url_for("cut.pdf").await;
    assert!(put(url, pdf_source(dir.path(), "cut.pdf")).await.is_err());
    set_faults(&base, &json!({})).await;
    assert_eq!(
        wix.all_attachments(&ana).await.unwrap().len(),
        before,
        "nothing stored"
    );

    // lost: stored, then answered 503.
    set_faults(&base, &json!({"lostResponseRate": 1.0})).await;
    let url = url_for("lost.pdf").await;
    let e = put(url, pdf_source(dir.path(), "lost.pdf"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    set_faults(&base, &json!({})).await;
    let now = wix.all_attachments(&ana).await.unwrap();
    assert_eq!(
        now.len(),
        before + 1,
        "stored although the answer was an error"
    );
    assert!(now.iter().any(|a| a.file_name == "lost.pdf"));

    // expired: 403 UPLOAD_URL_EXPIRED; url-ttl: expires after its time.
    set_faults(&base, &json!({"expiredUrlRate": 1.0})).await;
    let url = url_for("old.pdf").await;
    let e = put(url, pdf_source(dir.path(), "old.pdf"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    set_faults(&base, &json!({"uploadUrlTtlMs": 50})).await;
    let url = url_for("slow.pdf").await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let e = put(url, pdf_source(dir.path(), "slow.pdf"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    let url = url_for("quick.pdf").await;
    put(url, pdf_source(dir.path(), "quick.pdf")).await.unwrap();
    set_faults(&base, &json!({})).await;

    // Faults given at start (`--faults`) are in force from the first request.
    let dir2 = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        faults: Faults::parse("429=1").unwrap(),
        ..SandboxConfig::demo(dir2.path().to_path_buf())
    };
    let sb2 = sandbox_with(config).await;
    assert_eq!(
        contacts_get(&sb2.base_url()).send().await.unwrap().status(),
        429
    );
}

#[tokio::test]
async fn the_client_retries_what_is_transient_honours_retry_after_and_gives_up_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();

    // 5xx all the time: exactly max_attempts tries, then the error.
    set_faults(&base, &json!({"errorRate": 1.0})).await;
    recording(&base).await;
    let wix = client(&base, fast_retry(3));
    let e = CrmBackend::list_contacts(&wix).await.unwrap_err();
    assert!(
        matches!(e.status, Some(500) | Some(503) | Some(504)),
        "{e:?}"
    );
    assert_eq!(recorded(&base, "/contacts/v4/contacts").await, 3);

    // 429 with Retry-After: 1, lifted after a moment: the retry waits the second and succeeds.
    set_faults(&base, &json!({"throttleRate": 1.0})).await;
    let lift = {
        let base = base.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            set_faults(&base, &json!({})).await;
        })
    };
    recording(&base).await;
    let started = Instant::now();
    let contacts = wix.all_contacts().await.unwrap();
    lift.await.unwrap();
    assert!(!contacts.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured ({:?})",
        started.elapsed()
    );
    assert_eq!(
        recorded(&base, "/contacts/v4/contacts").await,
        2,
        "one refused, one served"
    );

    // Other 4xx (here a 404) are never retried.
    recording(&base).await;
    let e = wix.get_contact("not-a-guid").await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(recorded(&base, "/contacts/v4/contacts/").await, 1);
}

/// The record holds what clients send, nothing else: an import's own fetch of its URL (which
/// the sandbox runs in the background, at any moment) is left out, so a recording taken
/// around one operation never catches the tail of another's.
#[tokio::test]
async fn the_recorder_leaves_out_the_sandboxs_own_import_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();
    let wix = client(&base, fast_retry(1));
    let source = pdf_source(dir.path(), "deed.pdf");
    let file = wix.upload_media(&source, None).await.unwrap();

    recording(&base).await;
    let imported = wix
        .import_file(&attache_wix::media::ImportFileRequest {
            url: file.url.clone().unwrap(),
            display_name: Some("copy.pdf".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while wix
        .get_file(&imported.id)
        .await
        .unwrap()
        .operation_status
        .as_deref()
        == Some("PENDING")
    {
        assert!(Instant::now() < deadline, "the import never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(recorded(&base, "/files/import").await, 1);
    assert!(
        recorded(&base, "/site-media/v1/files/get-file-by-id").await >= 1,
        "the status polls were recorded"
    );
    assert_eq!(
        recorded(&base, "/_files/media/").await,
        0,
        "the sandbox's own fetch is not a client request"
    );
}

/// With an admin token, faults are switched only by whoever holds it (`attache sandbox
/// --admin-token`); the Wix and EspoCRM sides are unchanged.
#[tokio::test]
async fn an_admin_token_guards_the_admin_side() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        admin_token: Some("admin-secret-1".into()),
        loopback_only: true,
        ..SandboxConfig::demo(dir.path().to_path_buf())
    };
    let sb = sandbox_with(config).await;
    let base = sb.base_url();
    let http = reqwest::Client::new();
    let faults = |token: Option<&str>| {
        let request = http
            .put(format!("{base}/_admin/faults"))
            .json(&json!({"throttleRate": 1.0}));
        match token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    };
    for refused in [None, Some("admin-secret-2"), Some("admin-secret-")] {
        assert_eq!(faults(refused).send().await.unwrap().status(), 401);
    }
    assert_eq!(contacts_get(&base).send().await.unwrap().status(), 200);
    assert_eq!(
        faults(Some("admin-secret-1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(contacts_get(&base).send().await.unwrap().status(), 429);
}
