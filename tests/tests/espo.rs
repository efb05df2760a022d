//! The EspoCRM client against the sandbox's EspoCRM API over real HTTP: logins (API key, HMAC,
//! the lockout), the wire's rules and error shape, chunked uploads, and every state a crash can
//! leave an upload in. The app-level scenarios shared with Wix (uploads, inbox, thumbnails) run
//! on both CRMs in `uploads.rs`, `inbox.rs` and `service.rs`.

use std::path::{Path, PathBuf};

use attache_core::upload::UploadSource;
use attache_core::{CrmBackend, ErrorCode, SendError, Sensitive};
use attache_espo::{hmac_authorization, AttachmentFor, EspoAuth, EspoClient};
use attache_sandbox::{Sandbox, SandboxConfig, DEMO_API_KEY};
use attache_tests::fixtures::{demo_espo, sandbox_with};

const HMAC_SECRET: &str = "fedcba9876543210fedcba9876543210";

async fn sandbox(dir: &Path) -> Sandbox {
    let mut config = SandboxConfig::demo(dir.to_path_buf());
    config.hmac_secret = Some(HMAC_SECRET.into());
    sandbox_with(config).await
}

fn client(sandbox: &Sandbox) -> EspoClient {
    demo_espo(&sandbox.base_url())
}

fn hmac_client(sandbox: &Sandbox, secret: &str) -> EspoClient {
    EspoClient::new(
        &sandbox.base_url(),
        EspoAuth::Hmac {
            key: Sensitive::new(DEMO_API_KEY.into()),
            secret: Sensitive::new(secret.into()),
        },
    )
    .unwrap()
    .with_retry(attache_core::retry::RetryPolicy::none())
}

fn source(path: PathBuf, mime: &str) -> UploadSource {
    attache_tests::upload_source(&path, mime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_errors_and_paging_follow_espocrm() {
    let site = tempfile::tempdir().unwrap();
    let sandbox = sandbox(site.path()).await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1", sandbox.base_url());

    // API key and HMAC both read the same contacts.
    let by_key = client(&sandbox);
    let user = by_key.app_user().await.unwrap();
    assert_eq!(user.user.unwrap().user_type.as_deref(), Some("api"));
    let contacts = by_key.all_contacts().await.unwrap();
    assert!(contacts.len() >= 12);
    let by_hmac = hmac_client(&sandbox, HMAC_SECRET);
    assert_eq!(by_hmac.all_contacts().await.unwrap().len(), contacts.len());

    // The signature covers the method and the path after /api/v1, not the query.
    let signed = hmac_authorization(DEMO_API_KEY, HMAC_SECRET, "GET", "/Contact");
    let ok = http
        .get(format!("{api}/Contact?maxSize=1"))
        .header("X-Hmac-Authorization", &signed)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong_path = http
        .get(format!("{api}/App/user"))
        .header("X-Hmac-Authorization", &signed)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_path.status(), 401);
    assert!(
        wrong_path.bytes().await.unwrap().is_empty(),
        "401s have no body"
    );

    // A wrong secret: 401, plain words, never retried.
    let err = hmac_client(&sandbox, "0000")
        .all_contacts()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated);
    assert!(err.to_string().contains("API key"), "{err}");

    // maxSize above 200 is refused, not clamped; the reason is in X-Status-Reason.
    let too_big = http
        .get(format!("{api}/Contact?maxSize=201"))
        .header("X-Api-Key", DEMO_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 403);
    assert_eq!(
        too_big.headers()["x-status-reason"],
        "Max size should not exceed 200. Use offset and limit."
    );
    // Paging by offset, and the quick search is starts-with with `*` as a wildcard.
    let first = by_key.list_contacts(0, 5, None).await.unwrap();
    assert_eq!(first.list.len(), 5);
    assert_eq!(first.total, Some(contacts.len() as i64));
    let second = by_key.list_contacts(5, 5, None).await.unwrap();
    assert_ne!(first.list[0].id, second.list[0].id);
    let ana = by_key.list_contacts(0, 10, Some("ana")).await.unwrap();
    assert!(ana
        .list
        .iter()
        .any(|c| c.last_name.as_deref() == Some("Silva")));
    assert!(by_key
        .list_contacts(0, 10, Some("ilva"))
        .await
        .unwrap()
        .list
        .is_empty());
    assert!(!by_key
        .list_contacts(0, 10, Some("*ilva"))
        .await
        .unwrap()
        .list
        .is_empty());

    // Without Content-Type: application/json the body is not read (trap 1).
    let as_text = http
        .post(format!("{api}/Attachment"))
        .header("X-Api-Key", DEMO_API_KEY)
        .body(r#"{"name":"a.pdf","file":"data:application/pdf;base64,JVBERg=="}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(as_text.status(), 400);
    assert_eq!(as_text.headers()["x-status-reason"], "No file contents.");
    // The common mistake: a Contact has no `attachments` field (spec §2.3).
    let wrong_field = http
        .post(format!("{api}/Attachment"))
        .header("X-Api-Key", DEMO_API_KEY)
        .json(
            &serde_json::json!({"name": "a.pdf", "parentType": "Contact", "field": "attachments",
            "file": "data:application/pdf;base64,JVBERg=="}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_field.status(), 403);
    assert_eq!(
        wrong_field.headers()["x-status-reason"],
        "Field 'attachments' does not exist."
    );
    // Documents refuse images by default; the client's error says so as invalid input.
    let err = by_key
        .begin_attachment(AttachmentFor::Document, "kitchen.jpg", "image/jpeg", 10)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(err.reason(), Some("Not allowed file type."));
    // Unknown records: 404 with the reason.
    let err = by_key.get_contact("nope").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("does not exist"), "{err}");

    // More than ten denied logins a minute lock the address out: 403 with no reason, even
    // for a correct key.
    for _ in 0..11 {
        let _ = http
            .get(format!("{api}/App/user"))
            .header("X-Api-Key", "wrong")
            .send()
            .await
            .unwrap();
    }
    let err = by_key.app_user().await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.reason(), None);
    assert!(err.to_string().contains("too many failed logins"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_chunked_linked_by_a_note_and_read_back_exactly() {
    let site = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let sandbox = sandbox(site.path()).await;
    let espo = client(&sandbox);
    let contacts = CrmBackend::list_contacts(&espo).await.unwrap();
    let ana = contacts
        .iter()
        .find(|c| c.display_name == "Ana Silva")
        .unwrap();
    let before = CrmBackend::list_attachments(&espo, &ana.id).await.unwrap();
    assert!(
        !before.is_empty(),
        "the demo data shows through EspoCRM too"
    );
    assert!(
        before.iter().any(|a| a.has_preview()),
        "images get the image entry point"
    );

    // 9 MiB: three chunks of the instance's 4 MB.
    let big = files.path().join("Inspection report.pdf");
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend((0..9 * 1024 * 1024).map(|i| (i % 251) as u8));
    std::fs::write(&big, &bytes).unwrap();
    let src = source(big, "application/pdf");
    let target = espo.prepare_upload(&ana.id, &src).await.unwrap();
    espo.send_upload(&target, &src).await.unwrap();

    let after = CrmBackend::list_attachments(&espo, &ana.id).await.unwrap();
    let landed = after
        .iter()
        .find(|a| a.file_name == "Inspection report.pdf")
        .expect("listed in the contact's stream");
    assert_eq!(landed.size_bytes, Some(bytes.len() as u64));
    assert!(
        target.ends_with(&landed.id),
        "the prepared id is the attachment"
    );
    let recent = espo.recent_attachments(&ana.id).await.unwrap();
    assert_eq!(recent[0].id, landed.id, "newest first");
    let back = files.path().join("back.pdf");
    assert_eq!(
        espo.download_file(landed, &back).await.unwrap(),
        bytes.len() as u64
    );
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    // A photo gets a scaled preview from the image entry point.
    let photo = files.path().join("porch.png");
    image::RgbImage::from_fn(1600, 1200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 9])
    })
    .save(&photo)
    .unwrap();
    let src = source(photo, "image/png");
    espo.attach_file(&ana.id, &src).await.unwrap();
    let listed = CrmBackend::list_attachments(&espo, &ana.id).await.unwrap();
    let porch = listed.iter().find(|a| a.file_name == "porch.png").unwrap();
    assert!(porch.has_preview());
    let preview = files.path().join("preview.png");
    espo.download_preview(porch, &preview).await.unwrap();
    let img = image::open(&preview).unwrap();
    assert_eq!((img.width(), img.height()), (1024, 768));

    // "Attach as Document": the File field's flow, linked to the contact.
    let contract = files.path().join("Purchase agreement.pdf");
    std::fs::write(&contract, b"%PDF-1.4\nsigned\n%%EOF\n").unwrap();
    let src = source(contract, "application/pdf");
    let file = espo
        .begin_attachment(
            AttachmentFor::Document,
            &src.file_name,
            &src.mime_type,
            src.size,
        )
        .await
        .unwrap();
    espo.send_chunks(&file.id, &src).await.unwrap();
    let doc = espo
        .create_document(&ana.id, "Purchase agreement", &file.id, "2026-12-01")
        .await
        .unwrap();
    assert_eq!(doc.file_id.as_deref(), Some(file.id.as_str()));
    let listed = CrmBackend::list_attachments(&espo, &ana.id).await.unwrap();
    assert!(listed
        .iter()
        .any(|a| a.id == file.id && a.file_name == "Purchase agreement.pdf"));
    let err = espo
        .create_document(&ana.id, "No date", "whatever", "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_upload_never_attaches_twice_whatever_state_it_was_left_in() {
    let site = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let sandbox = sandbox(site.path()).await;
    let before_crash = client(&sandbox);
    let contacts = CrmBackend::list_contacts(&before_crash).await.unwrap();
    let noah = contacts
        .iter()
        .find(|c| c.display_name.starts_with("Noah"))
        .unwrap();
    let count = |list: &[attache_core::Attachment], name: &str| {
        list.iter().filter(|a| a.file_name == name).count()
    };
    // Above the 4 MB chunk size: the chunked path, whose states these are.
    let pdf = |name: &str| {
        let p = files.path().join(name);
        let mut bytes = format!("%PDF-1.4\n{name}\n").into_bytes();
        bytes.resize(4_500_000, b'.');
        std::fs::write(&p, bytes).unwrap();
        source(p, "application/pdf")
    };

    // 1. Landed and linked, but the process died before writing "done": a new process (a new
    //    client, so the target is not fresh) is told the target is gone, and sends nothing.
    let landed = pdf("landed.pdf");
    let target = before_crash
        .prepare_upload(&noah.id, &landed)
        .await
        .unwrap();
    before_crash.send_upload(&target, &landed).await.unwrap();
    let after_restart = client(&sandbox);
    assert!(matches!(
        after_restart.send_upload(&target, &landed).await,
        Err(SendError::TargetGone(_))
    ));

    // 2. All bytes stored, the Note never made: only the Note is posted.
    let unlinked = pdf("unlinked.pdf");
    let target = before_crash
        .prepare_upload(&noah.id, &unlinked)
        .await
        .unwrap();
    let id = target.rsplit(':').next().unwrap().to_owned();
    before_crash.send_chunks(&id, &unlinked).await.unwrap();
    after_restart.send_upload(&target, &unlinked).await.unwrap();

    // 3. Cut in the middle of its chunks: discarded (deleted), so a fresh target is needed.
    let torn = pdf("torn.pdf");
    let target = before_crash.prepare_upload(&noah.id, &torn).await.unwrap();
    let id = target.rsplit(':').next().unwrap().to_owned();
    before_crash
        .post_chunk(
            &id,
            "application/pdf",
            &std::fs::read(&torn.path).unwrap()[..100],
        )
        .await
        .unwrap();
    assert!(matches!(
        after_restart.send_upload(&target, &torn).await,
        Err(SendError::Discarded(_))
    ));
    assert_eq!(
        after_restart
            .get_attachment(&id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let fresh = after_restart.prepare_upload(&noah.id, &torn).await.unwrap();
    after_restart.send_upload(&fresh, &torn).await.unwrap();

    let list = CrmBackend::list_attachments(&after_restart, &noah.id)
        .await
        .unwrap();
    for name in ["landed.pdf", "unlinked.pdf", "torn.pdf"] {
        assert_eq!(count(&list, name), 1, "{name}");
    }
    let torn_back = files.path().join("torn-back.pdf");
    let a = list.iter().find(|a| a.file_name == "torn.pdf").unwrap();
    after_restart.download_file(a, &torn_back).await.unwrap();
    assert_eq!(
        std::fs::read(&torn_back).unwrap(),
        std::fs::read(&torn.path).unwrap(),
        "the resent file is whole"
    );

    // A small file goes whole, in one request, and lands as one attachment.
    let small = files.path().join("small.pdf");
    std::fs::write(&small, b"%PDF-1.4\nsmall\n%%EOF\n").unwrap();
    let small = source(small, "application/pdf");
    let target = after_restart
        .prepare_upload(&noah.id, &small)
        .await
        .unwrap();
    assert!(target.starts_with("espo-note-whole:"), "{target}");
    after_restart.send_upload(&target, &small).await.unwrap();
    let list = CrmBackend::list_attachments(&after_restart, &noah.id)
        .await
        .unwrap();
    assert_eq!(count(&list, "small.pdf"), 1);

    // A target from another CRM is refused as gone, not sent to.
    assert!(matches!(
        after_restart
            .send_upload("http://127.0.0.1:1/_upload/attachments/x", &torn)
            .await,
        Err(SendError::TargetGone(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_searched_with_where_conditions_and_ordered() {
    use attache_espo::{ContactSearch, Where, WhereKind};
    let site = tempfile::tempdir().unwrap();
    let sandbox = sandbox(site.path()).await;
    let espo = client(&sandbox);
    let by = |conditions: Vec<Where>| ContactSearch {
        conditions,
        ..ContactSearch::default()
    };
    let silva = espo
        .search_contacts(
            &by(vec![Where::new(WhereKind::Contains, "lastName", "ilv")]),
            0,
            50,
        )
        .await
        .unwrap();
    assert_eq!(silva.list.len(), 1);
    assert_eq!(silva.list[0].first_name.as_deref(), Some("Ana"));
    let exact = espo
        .search_contacts(
            &by(vec![Where::new(
                WhereKind::Equals,
                "emailAddress",
                "ANA.SILVA@example.com",
            )]),
            0,
            50,
        )
        .await
        .unwrap();
    assert_eq!(exact.list.len(), 1, "e-mail comparison ignores case");
    let none = espo
        .search_contacts(
            &by(vec![
                Where::new(WhereKind::StartsWith, "firstName", "Ana"),
                Where::new(WhereKind::Equals, "lastName", "Nobody"),
            ]),
            0,
            50,
        )
        .await
        .unwrap();
    assert!(none.list.is_empty(), "every condition must hold");
    let by_name = espo
        .search_contacts(
            &ContactSearch {
                order_by: Some("lastName".into()),
                descending: true,
                ..ContactSearch::default()
            },
            0,
            200,
        )
        .await
        .unwrap();
    let last: Vec<String> = by_name
        .list
        .iter()
        .map(|c| c.last_name.clone().unwrap_or_default().to_lowercase())
        .collect();
    let mut sorted = last.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(last, sorted);

    let bad = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/Contact?where[0][type]=resembles&where[0][attribute]=lastName&where[0][value]=x",
            sandbox.base_url()
        ))
        .header("X-Api-Key", DEMO_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
