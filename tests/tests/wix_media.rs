//! The Media Manager Files API, client against sandbox over real HTTP on loopback: every
//! operation, the documented validation failures, the simple upload, and the resumable tus
//! upload resuming after cuts and after a lost run.

use std::path::Path;

use attache_sandbox::{DEMO_API_KEY, DEMO_SITE_ID};
use attache_tests::fixtures::{demo_sandbox, demo_wix, set_faults};
use attache_tests::upload_source as source;
use attache_wix::media::{
    FileFilter, FileListing, GenerateFileUploadUrlRequest, ImportFileRequest, TusSession,
};
use attache_wix::{RetryPolicy, WixError};
use futures::TryStreamExt;
use serde_json::json;

fn write_bytes(dir: &Path, name: &str, len: usize, seed: u8) -> std::path::PathBuf {
    let bytes: Vec<u8> = (0..len).map(|i| ((i * 31) as u8) ^ seed).collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn rule_of(e: &WixError) -> Option<String> {
    match e {
        WixError::Api { violations, .. } => violations.first().and_then(|v| v.rule.clone()),
        _ => None,
    }
}

fn request(mime: &str, name: &str, size: u64) -> GenerateFileUploadUrlRequest {
    GenerateFileUploadUrlRequest {
        mime_type: mime.into(),
        file_name: Some(name.into()),
        size_in_bytes: Some(size.to_string()),
        ..Default::default()
    }
}

async fn fetch(url: &str) -> Vec<u8> {
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn every_files_operation_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let wix = demo_wix(&sb.base_url());
    let pdf = write_bytes(dir.path(), "Deed 12 Elm St.pdf", 40_000, 1);
    let src = source(&pdf, "application/pdf");

    // Simple upload: URL, then PUT with ?filename=.
    let file = wix.upload_media(&src, None).await.unwrap();
    assert_eq!(file.display_name.as_deref(), Some("Deed 12 Elm St.pdf"));
    assert_eq!(file.size(), Some(40_000));
    assert_eq!(file.media_type.as_deref(), Some("DOCUMENT"));
    assert_eq!(file.operation_status.as_deref(), Some("READY"));
    assert!(file.id.contains("~mv2."), "{}", file.id);
    assert_eq!(
        fetch(file.url.as_deref().unwrap()).await,
        std::fs::read(&pdf).unwrap()
    );

    // Get one, get many, and the wix: URI form of the id.
    assert_eq!(wix.get_file(&file.id).await.unwrap().id, file.id);
    let uri = format!("wix:document://v1/{}/Deed.pdf", file.id);
    assert_eq!(wix.get_file(&uri).await.unwrap().id, file.id);
    let many = wix.get_files(std::slice::from_ref(&file.id)).await.unwrap();
    assert_eq!(many.len(), 1);

    // More files, so listing spans pages.
    let mut ids = vec![file.id.clone()];
    for i in 0..5 {
        let p = write_bytes(dir.path(), &format!("photo-{i}.png"), 100 + i, 2);
        let f = wix
            .upload_media(&source(&p, "image/png"), None)
            .await
            .unwrap();
        assert_eq!(f.media_type.as_deref(), Some("IMAGE"));
        ids.push(f.id);
    }
    let all = FileListing::Files(FileFilter {
        sort_field: Some("displayName".into()),
        sort_order: Some("ASC".into()),
        ..Default::default()
    });
    let first = wix.list_files_page(&all, 2, None).await.unwrap();
    assert_eq!(first.files.len(), 2);
    assert!(first.next().is_some(), "a next cursor after a full page");
    let listed: Vec<_> = wix.files_stream(&all, 2).try_collect().await.unwrap();
    assert_eq!(listed.len(), 6, "three pages of two, nothing twice");
    let names: Vec<_> = listed
        .iter()
        .filter_map(|f| f.display_name.clone())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);

    // Search by name.
    let search = FileListing::Search {
        text: "elm".into(),
        trash: false,
        filter: FileFilter::default(),
    };
    let found: Vec<_> = wix.files_stream(&search, 100).try_collect().await.unwrap();
    assert_eq!(found.len(), 1);

    // Update.
    let renamed = wix
        .update_file(
            &file.id,
            Some("Deed (signed).pdf"),
            None,
            Some(&["closing".into()]),
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name.as_deref(), Some("Deed (signed).pdf"));
    assert_eq!(renamed.labels, vec!["closing".to_string()]);

    // Trash, list the trash, restore, delete for good.
    wix.delete_files(&ids[..2], false).await.unwrap();
    let trash: Vec<_> = wix
        .files_stream(&FileListing::Trash(FileFilter::default()), 100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(trash.len(), 2);
    assert!(trash.iter().all(|f| f.state.as_deref() == Some("DELETED")));
    let left: Vec<_> = wix.files_stream(&all, 100).try_collect().await.unwrap();
    assert_eq!(left.len(), 4);
    wix.restore_files(&ids[..2]).await.unwrap();
    let back: Vec<_> = wix.files_stream(&all, 100).try_collect().await.unwrap();
    assert_eq!(back.len(), 6);
    wix.delete_files(&ids[5..], true).await.unwrap();
    let e = wix.get_file(&ids[5]).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    // Restoring what is not in the trash is refused and changes nothing.
    assert_eq!(
        wix.restore_files(&ids[..1]).await.unwrap_err().status(),
        Some(404)
    );

    // Download links: one file, and a zip of several.
    let links = wix
        .file_download_urls(&file.id, Some("deed.pdf"), Some(5))
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(fetch(&links[0].url).await, std::fs::read(&pdf).unwrap());
    let zip_url = wix.zip_download_url(&ids[..3]).await.unwrap();
    let zip = fetch(&zip_url).await;
    assert_eq!(&zip[..2], b"PK", "a zip archive");

    // Import from a URL: PENDING at once, READY once the sandbox has fetched it.
    let imported = wix
        .import_file(&ImportFileRequest {
            url: file.url.clone().unwrap(),
            display_name: Some("copy.pdf".into()),
            mime_type: Some("application/pdf".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(imported.operation_status.as_deref(), Some("PENDING"));
    let mut ready = None;
    for _ in 0..100 {
        let f = wix.get_file(&imported.id).await.unwrap();
        if f.operation_status.as_deref() != Some("PENDING") {
            ready = Some(f);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ready = ready.expect("the import finished");
    assert_eq!(ready.operation_status.as_deref(), Some("READY"));
    assert_eq!(ready.size(), Some(40_000));
    assert_eq!(ready.hash, wix.get_file(&file.id).await.unwrap().hash);

    // An import the sandbox cannot fetch ends FAILED.
    let broken = wix
        .import_file(&ImportFileRequest {
            url: format!("{}/_files/media/nothing/here", sb.base_url()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut status = None;
    for _ in 0..100 {
        let f = wix.get_file(&broken.id).await.unwrap();
        if f.operation_status.as_deref() != Some("PENDING") {
            status = f.operation_status;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status.as_deref(), Some("FAILED"));
}

#[tokio::test]
async fn bad_requests_get_the_documented_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();
    let wix = demo_wix(&base).with_retry(RetryPolicy::none());

    let e = wix
        .generate_file_upload_url(&request("application/pdf", "a.pdf", 0))
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e).as_deref(), Some("ZERO_FILE_SIZE"), "{e}");
    let e = wix
        .generate_file_upload_url(&request("application/pdf", "a.pdf", 5 << 30))
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e).as_deref(), Some("FILE_SIZE_OVER_LIMIT"));
    let e = wix
        .generate_file_upload_url(&request("application/x-msdownload", "setup.exe", 10))
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e).as_deref(), Some("UNSUPPORTED_FILE_FORMAT"));

    // Sizes are int64-as-string on the wire: a bare number is refused.
    let raw = reqwest::Client::new()
        .post(format!("{base}/site-media/v1/files/generate-upload-url"))
        .header("Authorization", DEMO_API_KEY)
        .header("wix-site-id", DEMO_SITE_ID)
        .json(&json!({"mimeType": "application/pdf", "sizeInBytes": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    let bad_sort = FileListing::Files(FileFilter {
        sort_field: Some("createdDate".into()),
        ..Default::default()
    });
    let e = wix.list_files_page(&bad_sort, 10, None).await.unwrap_err();
    assert_eq!(rule_of(&e).as_deref(), Some("UNSUPPORTED_SORT_VALUE"));
    let bad_type = FileListing::Files(FileFilter {
        media_types: vec!["HOLOGRAM".into()],
        ..Default::default()
    });
    let e = wix.list_files_page(&bad_type, 10, None).await.unwrap_err();
    assert_eq!(rule_of(&e).as_deref(), Some("UNSUPPORTED_MEDIA_TYPE"));
    let over = reqwest::Client::new()
        .get(format!("{base}/site-media/v1/files?paging.limit=101"))
        .header("Authorization", DEMO_API_KEY)
        .header("wix-site-id", DEMO_SITE_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 400, "pages hold at most 100");
    let e = wix
        .list_files_page(
            &FileListing::Files(FileFilter::default()),
            10,
            Some("forged"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    assert_eq!(
        wix.get_file("5f0c1e_nope~mv2.pdf")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let e = wix
        .update_file("5f0c1e_nope~mv2.pdf", None, None, None)
        .await
        .unwrap_err();
    assert_eq!(
        rule_of(&e).as_deref(),
        Some("FIELD_MASK_IS_EMPTY_OR_MISSING")
    );
    let e = wix
        .delete_files(&["5f0c1e_nope~mv2.pdf".into()], false)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));

    // Without a site id or a key, like every site-level API.
    let anon = reqwest::get(format!("{base}/site-media/v1/files"))
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    // The upload host: the type must match, the Authorization header must not be sent, and
    // the URL is single use.
    let pdf = write_bytes(dir.path(), "c.pdf", 1000, 3);
    let url = wix
        .generate_file_upload_url(&request("application/pdf", "c.pdf", 1000))
        .await
        .unwrap()
        .upload_url;
    let put = |ct: &'static str, auth: bool| {
        let mut r = reqwest::Client::new()
            .put(format!("{url}?filename=c.pdf"))
            .header("Content-Type", ct)
            .body(std::fs::read(&pdf).unwrap());
        if auth {
            r = r.header("Authorization", DEMO_API_KEY);
        }
        r.send()
    };
    let r = put("image/png", false).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("MISMATCH_MIME_TYPE"));
    assert_eq!(put("application/pdf", true).await.unwrap().status(), 400);
    assert_eq!(put("application/pdf", false).await.unwrap().status(), 200);
    assert_eq!(
        put("application/pdf", false).await.unwrap().status(),
        429,
        "single use"
    );
}

#[tokio::test]
async fn a_tus_upload_survives_cut_connections_and_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();
    let wix = demo_wix(&base).with_retry(RetryPolicy {
        max_attempts: 8,
        base_delay: std::time::Duration::from_millis(5),
        ..RetryPolicy::default()
    });
    let big = write_bytes(dir.path(), "walkthrough.mp4", 24 * 1024 * 1024 + 123, 9);
    let src = source(&big, "video/mp4");
    // Every finalise answer is lost too: the client must find the file it made, not fail.
    set_faults(
        &base,
        &json!({"resetRate": 0.5, "errorRate": 0.1, "lostResponseRate": 1.0}),
    )
    .await;
    let file = wix.upload_media(&src, None).await.unwrap();
    set_faults(&base, &json!({})).await;
    assert_eq!(file.size(), Some(src.size));
    assert_eq!(file.media_type.as_deref(), Some("VIDEO"));
    assert_eq!(
        fetch(file.url.as_deref().unwrap()).await,
        std::fs::read(&big).unwrap()
    );
    let all: Vec<_> = wix
        .files_stream(&FileListing::Files(FileFilter::default()), 100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "one file, never two");
}

#[tokio::test]
async fn a_tus_upload_resumes_from_the_servers_offset_not_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();
    let wix = demo_wix(&base);
    let big = write_bytes(dir.path(), "survey.pdf", 12 * 1024 * 1024, 4);
    let src = source(&big, "application/pdf");
    let url = wix
        .generate_resumable_upload_url(&request("application/pdf", "survey.pdf", src.size))
        .await
        .unwrap();
    assert_eq!(url.upload_protocol.as_deref(), Some("TUS"));

    // A previous run created the upload and sent the first 5 MB, then died. It sent zeros,
    // so the final file shows whether the resumed run sent those bytes again.
    let http = reqwest::Client::new();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let created = http
        .post(&url.upload_url)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", src.size)
        .header(
            "Upload-Metadata",
            format!(
                "filename {},contentType {},token {}",
                b64("survey.pdf"),
                b64("application/pdf"),
                b64(&url.upload_token)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with('/'), "a relative Location: {location}");
    let location = format!("{base}{location}");
    let first = 5 * 1024 * 1024;
    let patched = http
        .patch(&location)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", 0)
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![0u8; first])
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);
    // The protocol's own refusals: wrong offset, wrong content type, no version.
    let wrong = http
        .patch(&location)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", 0)
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 409);
    let wrong = http
        .patch(&location)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", first)
        .header("Content-Type", "application/octet-stream")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 415);
    let wrong = http.head(&location).send().await.unwrap();
    assert_eq!(wrong.status(), 412);
    // Finalising before the last byte is refused.
    let early = http
        .put(format!(
            "{}/{}?filename=survey.pdf",
            url.upload_url, url.upload_token
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 400);

    let mut session = TusSession {
        location: Some(location),
        ..TusSession::new(&url, src.size)
    };
    let file = wix.tus_upload(&mut session, &src, |_| {}).await.unwrap();
    let stored = fetch(file.url.as_deref().unwrap()).await;
    let original = std::fs::read(&big).unwrap();
    assert_eq!(stored.len(), original.len());
    assert!(
        stored[..first].iter().all(|b| *b == 0),
        "the first 5 MB were not sent again"
    );
    assert_eq!(
        &stored[first..],
        &original[first..],
        "the rest came from the file"
    );

    // The token is spent: finalising again is refused.
    let again = http
        .put(format!(
            "{}/{}?filename=survey.pdf",
            url.upload_url, url.upload_token
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
}

#[tokio::test]
async fn a_file_changed_during_a_tus_upload_is_not_finalised() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let wix = demo_wix(&sb.base_url());
    let big = write_bytes(dir.path(), "plan.pdf", 11 * 1024 * 1024, 5);
    let src = source(&big, "application/pdf");
    // Changed after it was checked: same size, new content and time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_bytes(dir.path(), "plan.pdf", 11 * 1024 * 1024, 6);
    let e = wix.upload_media(&src, None).await.unwrap_err();
    assert!(src.progress.file_changed(), "{e}");
    let all: Vec<_> = wix
        .files_stream(&FileListing::Files(FileFilter::default()), 100)
        .try_collect()
        .await
        .unwrap();
    assert!(all.is_empty(), "nothing finalised from a torn file");
}

#[tokio::test]
async fn simple_uploads_recover_from_lost_answers_and_expired_urls_without_copies() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let base = sb.base_url();
    // Random faults (below): with 10 attempts one of the ten files failed every attempt in
    // about one run of 16 (0.6^10 per file), which made this test fail now and then. 40 short
    // attempts make that about once in a billion while the always-expired case still ends fast.
    let wix = demo_wix(&base).with_retry(RetryPolicy {
        max_attempts: 40,
        base_delay: std::time::Duration::from_millis(2),
        max_delay: std::time::Duration::from_millis(20),
    });
    // The same name and size already on the site: not to be mistaken for ours.
    let older = write_bytes(dir.path(), "floorplan.png", 5_000, 7);
    wix.upload_media(&source(&older, "image/png"), None)
        .await
        .unwrap();

    // Every PUT is stored, then answered 503 (the answer "lost").
    set_faults(&base, &json!({"lostResponseRate": 1.0})).await;
    let file = write_bytes(dir.path(), "floorplan.png", 5_000, 8);
    let got = wix
        .upload_media(&source(&file, "image/png"), None)
        .await
        .unwrap();
    set_faults(&base, &json!({})).await;
    assert_eq!(
        fetch(got.url.as_deref().unwrap()).await,
        std::fs::read(&file).unwrap(),
        "ours, not the older one"
    );

    // Half the URLs are found expired, a fifth of calls fail: fresh URLs, retries.
    set_faults(&base, &json!({"expiredUrlRate": 0.5, "errorRate": 0.2})).await;
    for i in 0..10 {
        let p = write_bytes(dir.path(), &format!("room-{i}.png"), 300 + i, 3);
        wix.upload_media(&source(&p, "image/png"), None)
            .await
            .unwrap();
    }
    set_faults(&base, &json!({})).await;
    let all: Vec<_> = wix
        .files_stream(&FileListing::Files(FileFilter::default()), 100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 12, "every file once: none lost, none twice");

    // A URL that always expires ends in a clear error, not a loop.
    set_faults(&base, &json!({"expiredUrlRate": 1.0})).await;
    let p = write_bytes(dir.path(), "never.png", 100, 1);
    let e = wix
        .upload_media(&source(&p, "image/png"), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
}
