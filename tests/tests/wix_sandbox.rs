//! The Wix client against the sandbox over real HTTP on loopback: every call the walking
//! skeleton makes, the errors Wix documents, and the sandbox's persistence.

use std::net::SocketAddr;

use attache_core::Sensitive;
use attache_core::{CrmBackend, ErrorCode};
use attache_sandbox::{Sandbox, SandboxConfig, DEMO_API_KEY, DEMO_SITE_ID};
use attache_wix::wire::{ContactQuery, Paging, QueryContactsRequest, Sorting};
use attache_wix::{RetryPolicy, WixAuth, WixClient, WixError};
use serde_json::json;

async fn sandbox(dir: &std::path::Path) -> Sandbox {
    Sandbox::start(
        SandboxConfig::demo(dir.to_path_buf()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap()
}

fn client(base: &str, key: &str, site: &str) -> WixClient {
    WixClient::new(
        base,
        WixAuth::ApiKey {
            key: Sensitive::new(key.to_string()),
            site_id: site.to_string(),
        },
    )
    .unwrap()
    .with_retry(RetryPolicy::none())
}

fn app_code(e: &WixError) -> Option<String> {
    match e {
        WixError::Api {
            application_code, ..
        } => application_code.clone(),
        _ => None,
    }
}

fn status(e: &WixError) -> Option<u16> {
    match e {
        WixError::Api { status, .. } => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn lists_all_demo_contacts_and_their_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID);
    let contacts = CrmBackend::list_contacts(&wix).await.unwrap();
    assert!(contacts.len() >= 12, "{} contacts", contacts.len());
    let ana = contacts
        .iter()
        .find(|c| c.display_name == "Ana Silva")
        .expect("Ana Silva");
    assert_eq!(ana.email.as_deref(), Some("ana.silva@example.com"));
    assert!(
        ana.phone.is_some()
            && ana
                .address
                .as_deref()
                .unwrap_or("")
                .contains("San Francisco")
    );

    let mut total = 0;
    for c in &contacts {
        total += CrmBackend::list_attachments(&wix, &c.id)
            .await
            .unwrap()
            .len();
    }
    assert!(total >= 20, "{total} attachments");

    let files = CrmBackend::list_attachments(&wix, &ana.id).await.unwrap();
    let photo = files
        .iter()
        .find(|a| a.file_name == "Front elevation.jpg")
        .unwrap();
    assert_eq!(photo.kind, attache_core::AttachmentKind::Image);
    assert!(photo.preview_url.is_some());
    let pdf = files.iter().find(|a| a.extension == "pdf").unwrap();
    assert!(
        pdf.preview_url.is_none(),
        "Wix gives previews for images only"
    );

    // Files and previews download; the PDF is a real PDF, the preview a real JPEG.
    let out = dir.path().join("dl");
    std::fs::create_dir_all(&out).unwrap();
    let n = CrmBackend::download_file(&wix, pdf, &out.join("a.pdf"))
        .await
        .unwrap();
    let bytes = std::fs::read(out.join("a.pdf")).unwrap();
    assert_eq!(n as usize, bytes.len());
    assert!(bytes.starts_with(b"%PDF-1.4"));
    CrmBackend::download_preview(&wix, photo, &out.join("p.jpg"))
        .await
        .unwrap();
    let preview = image::open(out.join("p.jpg")).unwrap();
    assert!(preview.width() <= 400 && preview.height() <= 400);
    assert_eq!(CrmBackend::file_size(&wix, pdf).await.unwrap(), Some(n));

    // An expired or revoked file URL (here: a wrong token) is refreshed from the API, once.
    let mut stale = pdf.clone();
    stale.file_url = Some(format!(
        "{}/_media/{}/revoked-token/a.pdf",
        sb.base_url(),
        pdf.id
    ));
    let again = CrmBackend::download_file(&wix, &stale, &out.join("b.pdf"))
        .await
        .unwrap();
    assert_eq!(again, n);
}

#[tokio::test]
async fn query_filters_sorts_and_pages_like_wix() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID);

    // Both spellings of the prefix operator are accepted (the docs disagree).
    for op in ["$begins", "$startsWith"] {
        let req = QueryContactsRequest {
            search: None,
            query: Some(ContactQuery {
                filter: Some(json!({"info.name.last": {op: "Sil"}})),
                ..Default::default()
            }),
        };
        let page = wix.query_contacts(&req).await.unwrap();
        assert_eq!(page.contacts.len(), 1, "{op}");
    }

    // Offset paging: pages of 5 cover every contact exactly once, with the total reported.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = wix
            .list_contacts(
                Paging {
                    limit: Some(5),
                    offset: Some(offset),
                },
                None,
            )
            .await
            .unwrap();
        let meta = page.paging_metadata.unwrap();
        assert_eq!(meta.offset, Some(offset));
        assert!(meta.total.unwrap() >= 12);
        if page.contacts.is_empty() {
            break;
        }
        offset += page.contacts.len() as u32;
        seen.extend(page.contacts.into_iter().map(|c| c.id));
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    assert!(seen.len() >= 12);

    // DESC by last name.
    let page = wix
        .list_contacts(
            Paging {
                limit: Some(3),
                offset: None,
            },
            Some(&Sorting {
                field_name: "info.name.last".into(),
                order: Some("DESC".into()),
            }),
        )
        .await
        .unwrap();
    let last: Vec<String> = page
        .contacts
        .iter()
        .map(|c| {
            c.info
                .as_ref()
                .unwrap()
                .name
                .as_ref()
                .unwrap()
                .last
                .clone()
                .unwrap()
        })
        .collect();
    let mut sorted = last.clone();
    sorted.sort_by_key(|name| std::cmp::Reverse(name.to_lowercase()));
    assert_eq!(last, sorted);
}

#[tokio::test]
async fn documented_errors_come_back_typed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let base = sb.base_url();
    let wix = client(&base, DEMO_API_KEY, DEMO_SITE_ID);

    let e = wix
        .list_contacts(
            Paging {
                limit: Some(1001),
                offset: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (status(&e), app_code(&e).as_deref()),
        (Some(400), Some("ILLEGAL_LIMIT"))
    );
    assert_eq!(e.code(), ErrorCode::InvalidInput);

    let e = wix
        .list_contacts(
            Paging::default(),
            Some(&Sorting {
                field_name: "info.locale".into(),
                order: None,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(app_code(&e).as_deref(), Some("UNSUPPORTED_SORT_FIELD"));

    let bad_filter = QueryContactsRequest {
        search: None,
        query: Some(ContactQuery {
            filter: Some(json!({"info.shoeSize": 42})),
            ..Default::default()
        }),
    };
    let e = wix.query_contacts(&bad_filter).await.unwrap_err();
    assert_eq!(
        app_code(&e).as_deref(),
        Some("UNSUPPORTED_FILTER_FIELD_UNKNOWN")
    );

    let e = wix
        .get_contact("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(
        (status(&e), app_code(&e).as_deref()),
        (Some(404), Some("CONTACT_NOT_FOUND"))
    );
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert!(
        matches!(
            &e,
            WixError::Api {
                request_id: Some(_),
                ..
            }
        ),
        "X-Wix-Request-Id is surfaced"
    );

    let e = client(&base, "wrong-key", DEMO_SITE_ID)
        .list_contacts(Paging::default(), None)
        .await
        .unwrap_err();
    assert_eq!(
        (status(&e), e.code()),
        (Some(401), ErrorCode::Unauthenticated)
    );

    let e = client(&base, DEMO_API_KEY, "11111111-2222-4333-8444-555555555555")
        .list_contacts(Paging::default(), None)
        .await
        .unwrap_err();
    assert_eq!(
        (status(&e), app_code(&e).as_deref()),
        (Some(404), Some("SITE_NOT_FOUND"))
    );

    // Attachments page at most 100.
    let ana = CrmBackend::list_contacts(&wix)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.display_name == "Ana Silva")
        .unwrap();
    let e = wix
        .list_attachments(
            &ana.id,
            Paging {
                limit: Some(101),
                offset: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400));
    assert!(
        matches!(&e, WixError::Api { violations, .. } if violations.iter().any(|v| v.field == "paging.limit"))
    );
}

#[tokio::test]
async fn raw_wire_matches_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/contacts/v4/contacts?paging.limit=2", sb.base_url());

    // Missing site header: 403; "Bearer <key>" is not how Wix takes API keys: 401.
    let r = http
        .get(&url)
        .header("Authorization", DEMO_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(&url)
        .header("Authorization", format!("Bearer {DEMO_API_KEY}"))
        .header("wix-site-id", DEMO_SITE_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["details"]["applicationError"]["code"],
        "UNAUTHENTICATED"
    );

    let r = http
        .get(&url)
        .header("Authorization", DEMO_API_KEY)
        .header("wix-site-id", DEMO_SITE_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-wix-request-id"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["contacts"].as_array().unwrap().len(), 2);
    assert_eq!(body["pagingMetadata"]["count"], 2);
    assert!(body["contacts"][0]["revision"].is_number());
    assert!(body["contacts"][0]["info"]["emails"]["items"].is_array());
}

fn source(path: &std::path::Path, name: &str, mime: &str) -> attache_core::upload::UploadSource {
    attache_core::upload::UploadSource {
        path: path.into(),
        file_name: name.into(),
        mime_type: mime.into(),
        size: std::fs::metadata(path).unwrap().len(),
        modified_ns: attache_core::upload::stat(path).unwrap().1,
        content_hash: attache_service::uploads::hash_file(path).unwrap(),
        progress: Default::default(),
    }
}

#[tokio::test]
async fn upload_then_list_then_delete_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID);
    let ana = CrmBackend::list_contacts(&wix)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.display_name == "Ana Silva")
        .unwrap();
    let before = CrmBackend::list_attachments(&wix, &ana.id)
        .await
        .unwrap()
        .len();

    let file = dir.path().join("Counter offer.pdf");
    let body = attache_sandbox::pdf::document(
        "Counter offer",
        "1450 Lombard",
        &["Terms."],
        &["Ana Silva"],
    );
    std::fs::write(&file, &body).unwrap();
    CrmBackend::attach_file(
        &wix,
        &ana.id,
        &source(&file, "Counter offer.pdf", "application/pdf"),
    )
    .await
    .unwrap();

    // An upload URL is single-use.
    let target = wix
        .generate_attachment_upload_url(&ana.id, "Note.csv", "text/csv")
        .await
        .unwrap();
    let csv = dir.path().join("n.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    wix.upload_to_url(&target.upload_url, &source(&csv, "Note.csv", "text/csv"))
        .await
        .unwrap();
    let again = wix
        .upload_to_url(&target.upload_url, &source(&csv, "Note.csv", "text/csv"))
        .await
        .unwrap_err();
    assert_eq!(status(&again), Some(429));

    // Wix refuses types outside its list before any bytes move.
    let e = wix
        .generate_attachment_upload_url(&ana.id, "notes.txt", "text/plain")
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400));
    let e = CrmBackend::attach_file(&wix, &ana.id, &source(&csv, "x.webp", "image/webp"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);

    let after = CrmBackend::list_attachments(&wix, &ana.id).await.unwrap();
    assert_eq!(after.len(), before + 2);
    let uploaded = after
        .iter()
        .find(|a| a.file_name == "Counter offer.pdf")
        .unwrap()
        .clone();

    // Restart on the same folder: the upload is still there, bytes intact.
    sb.shutdown().await;
    let sb = sandbox(dir.path()).await;
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID);
    let listed = CrmBackend::list_attachments(&wix, &ana.id).await.unwrap();
    let again = listed
        .iter()
        .find(|a| a.id == uploaded.id)
        .expect("upload persisted");
    let dest = dir.path().join("back.pdf");
    CrmBackend::download_file(&wix, again, &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);

    wix.delete_attachment(&ana.id, &uploaded.id).await.unwrap();
    let e = wix.get_attachment(&ana.id, &uploaded.id).await.unwrap_err();
    assert_eq!(status(&e), Some(404));
}

#[tokio::test]
async fn get_contact_reports_merged_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let site: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("site.json")).unwrap()).unwrap();
    let (old, survivor) = site["merged"].as_object().unwrap().iter().next().unwrap();
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID);
    let got = wix.get_contact(old).await.unwrap();
    assert_eq!(got.response_type.as_deref(), Some("MERGED"));
    assert_eq!(got.contact.id, survivor.as_str().unwrap());
}

#[tokio::test]
async fn the_client_keeps_under_the_per_site_request_budget() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    // A budget of 3 per minute: three calls go at once, the fourth waits ~20 s for its turn.
    let wix = client(&sb.base_url(), DEMO_API_KEY, DEMO_SITE_ID).with_rate_limit(3);
    let clone = wix.clone(); // clones share one budget, as they talk to the same site
    for c in [&wix, &clone, &wix] {
        c.list_contacts(
            Paging {
                limit: Some(1),
                offset: None,
            },
            None,
        )
        .await
        .unwrap();
    }
    let fourth = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        clone.list_contacts(
            Paging {
                limit: Some(1),
                offset: None,
            },
            None,
        ),
    )
    .await;
    assert!(
        fourth.is_err(),
        "the fourth call must wait for the budget, not go out at once"
    );
    assert_eq!(attache_wix::REQUESTS_PER_MINUTE, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wix_app_mints_tokens_once_renews_them_before_expiry_and_after_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::demo(dir.path().to_path_buf());
    config.app = Some(attache_sandbox::AppCredentials {
        app_id: "app-1".into(),
        app_secret: "app-secret".into(),
        instance_id: "inst-1".into(),
        token_ttl: std::time::Duration::from_secs(2),
    });
    let sandbox = Sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let app = |secret: &str, instance: &str| {
        WixClient::new(
            &sandbox.base_url(),
            WixAuth::App {
                app_id: "app-1".into(),
                app_secret: Sensitive::new(secret.into()),
                instance_id: instance.into(),
            },
        )
        .unwrap()
        .with_retry(RetryPolicy::none())
    };

    // Many calls, some at once: one token.
    let client = app("app-secret", "inst-1");
    let contacts = CrmBackend::list_contacts(&client).await.unwrap();
    assert!(contacts.len() >= 12);
    let lists = contacts
        .iter()
        .take(6)
        .map(|c| CrmBackend::list_attachments(&client, &c.id));
    for listed in futures::future::join_all(lists).await {
        listed.unwrap();
    }
    assert_eq!(client.tokens_minted(), 1);

    // Renewed before `expires_in` runs out: no call is refused on the way.
    tokio::time::sleep(std::time::Duration::from_millis(1900)).await;
    CrmBackend::list_contacts(&client).await.unwrap();
    assert_eq!(client.tokens_minted(), 2);

    // A token the site stops accepting (secret reset) is re-minted once, transparently.
    reqwest::Client::new()
        .delete(format!("{}/_admin/tokens", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    CrmBackend::list_contacts(&client).await.unwrap();
    assert_eq!(client.tokens_minted(), 3);

    // Wrong credentials and a wrong installation are told apart.
    let err = CrmBackend::list_contacts(&app("wrong", "inst-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated, "{err}");
    let err = CrmBackend::list_contacts(&app("app-secret", "inst-2"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");

    // The mint speaks the app body (snake_case), not the headless one.
    let camel = reqwest::Client::new()
        .post(format!("{}/oauth2/token", sandbox.base_url()))
        .json(&json!({"grantType": "client_credentials", "clientId": "app-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(camel.status(), 400);
}

#[tokio::test]
async fn pages_stream_one_request_at_a_time_and_end_where_the_lists_end() {
    use futures::{StreamExt, TryStreamExt};
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path()).await;
    let wix = client(&sandbox.base_url(), DEMO_API_KEY, DEMO_SITE_ID);
    let all = wix.all_contacts().await.unwrap();
    // Pages of 5 over 14 contacts: the same contacts in the same order.
    let streamed: Vec<_> = wix.contacts_stream(5).try_collect().await.unwrap();
    assert_eq!(
        streamed.iter().map(|c| &c.id).collect::<Vec<_>>(),
        all.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    // A consumer may stop early: taking three ends the stream there.
    let first: Vec<_> = wix.contacts_stream(5).take(3).collect().await;
    assert_eq!(first.len(), 3);
    let ana = all
        .iter()
        .find(|c| {
            c.info
                .as_ref()
                .and_then(|i| i.name.as_ref())
                .and_then(|n| n.first.as_deref())
                == Some("Ana")
        })
        .unwrap();
    let attachments: Vec<_> = wix
        .attachments_stream(&ana.id, 2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        attachments.len(),
        wix.all_attachments(&ana.id).await.unwrap().len()
    );
    assert!(attachments.len() > 2, "more than one page");
}
