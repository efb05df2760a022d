//! The application core on a fresh home folder: first launch starts and seeds the Demo site,
//! the cache fills, search runs locally, previews and downloads land in the cache once.

use attache_core::{AccountKind, AppHome, ErrorCode, ErrorPayload};
use attache_service::Attache;

async fn open(home: &std::path::Path) -> Attache {
    Attache::open(AppHome::at(home.to_path_buf()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn first_launch_is_on_the_demo_site_and_paints_from_cache() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path()).await;
    assert_eq!(app.account().kind, AccountKind::Demo);
    assert!(!app.contacts().cached().unwrap());
    assert!(app.contacts().search("", 0, 100).contacts.is_empty());

    let n = app.contacts().refresh().await.unwrap();
    assert!(n >= 12);
    assert!(app.contacts().cached().unwrap());
    assert_eq!(app.contacts().search("", 0, 100).contacts.len(), n);
    let by_prefix = app.contacts().search("sil", 0, 100).contacts;
    assert_eq!(by_prefix.len(), 1);
    assert_eq!(by_prefix[0].display_name, "Ana Silva");
    let by_phone = app.contacts().search("4155550132", 0, 100).contacts;
    assert_eq!(by_phone.len(), 1);
    let accent_free = app.contacts().search("chloe", 0, 100).contacts;
    assert_eq!(accent_free[0].display_name, "Chloé Dubois");

    // The demo site persists in the home folder: a second open sees the same contacts.
    let ids: Vec<String> = app
        .contacts()
        .search("", 0, 100)
        .contacts
        .into_iter()
        .map(|c| c.id)
        .collect();
    drop(app);
    let app = open(home.path()).await;
    assert!(
        app.contacts().cached().unwrap(),
        "the cache survives a restart"
    );
    app.contacts().refresh().await.unwrap();
    let again: Vec<String> = app
        .contacts()
        .search("", 0, 100)
        .contacts
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, again);
}

#[tokio::test]
async fn attachments_sizes_previews_and_downloads() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path()).await;
    let ana = app
        .contacts()
        .resolve("ANA.SILVA@example.com")
        .await
        .unwrap();
    assert_eq!(ana.display_name, "Ana Silva");
    assert!(app
        .contacts()
        .cached_attachments(&ana.id)
        .unwrap()
        .is_empty());

    let files = app.contacts().refresh_attachments(&ana.id).await.unwrap();
    assert_eq!(files.len(), 5);
    assert!(
        files.iter().all(|a| a.size_bytes.is_some_and(|s| s > 0)),
        "sizes learnt by HEAD: {files:?}"
    );
    assert_eq!(app.contacts().cached_attachments(&ana.id).unwrap(), files);

    let photo = files
        .iter()
        .find(|a| a.file_name == "Front elevation.jpg")
        .unwrap();
    let preview = app.contacts().preview(&ana.id, &photo.id).await.unwrap();
    assert!(preview.starts_with(home.path()));
    let img = image::ImageReader::open(&preview)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .decode()
        .unwrap();
    assert!(img.width() > 100);
    // Served from the cache the second time: same path, even if the server were gone.
    assert_eq!(
        app.contacts().preview(&ana.id, &photo.id).await.unwrap(),
        preview
    );

    let pdf = files.iter().find(|a| a.extension == "pdf").unwrap();
    let err = app.contacts().preview(&ana.id, &pdf.id).await.unwrap_err();
    assert_eq!(ErrorPayload::from(err).code, ErrorCode::NotFound);

    let local = app.contacts().download(&ana.id, &pdf.id).await.unwrap();
    assert_eq!(local.file_name().unwrap().to_str().unwrap(), pdf.file_name);
    assert_eq!(
        std::fs::metadata(&local).unwrap().len(),
        pdf.size_bytes.unwrap()
    );
    assert!(std::fs::read(&local).unwrap().starts_with(b"%PDF"));

    let target = home.path().join("saved copy.pdf");
    app.contacts()
        .save_as(&ana.id, &pdf.id, &target)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&local).unwrap()
    );

    // No stray temporary files are left in the cache.
    let leftovers: Vec<_> = walk(home.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn unknown_contacts_are_a_clear_not_found() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path()).await;
    for who in ["nobody@example.com", "00000000-0000-4000-8000-000000000000"] {
        let err = ErrorPayload::from(app.contacts().resolve(who).await.unwrap_err());
        assert_eq!(err.code, ErrorCode::NotFound, "{who}");
        assert!(err.message.contains(who));
    }
    let err = ErrorPayload::from(app.contacts().download("x", "y").await.unwrap_err());
    assert_eq!(err.code, ErrorCode::NotFound);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_for_photos_and_pdf_first_pages_render_once_then_come_from_the_cache() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path()).await;
    app.contacts().refresh().await.unwrap();
    let ana = app.contacts().search("Ana Silva", 0, 1).contacts.remove(0);
    let files = app.contacts().refresh_attachments(&ana.id).await.unwrap();
    let photo = files.iter().find(|a| a.has_preview()).expect("a photo");
    let pdf = files
        .iter()
        .find(|a| a.mime_type == "application/pdf")
        .expect("a PDF");
    let other = files
        .iter()
        .find(|a| !a.can_thumbnail())
        .expect("a document with no thumbnail");

    let (path, mime) = app
        .thumbnails()
        .of_attachment(&ana.id, &photo.id, 256)
        .await
        .unwrap();
    assert_eq!(mime, "image/jpeg");
    let img = image::open(&path).unwrap();
    assert_eq!(img.width().max(img.height()), 256);

    let (page_path, mime) = app
        .thumbnails()
        .of_attachment(&ana.id, &pdf.id, 256)
        .await
        .unwrap();
    assert_eq!(mime, "image/png");
    let page = image::open(&page_path).unwrap().to_rgb8();
    assert_eq!(page.height(), 256, "a portrait page fills the long side");
    let dark = page
        .pixels()
        .filter(|p| p.0.iter().all(|c| *c < 128))
        .count();
    assert!(
        dark > 50,
        "the first page's text is drawn ({dark} dark pixels)"
    );

    // The larger preview is its own size; a second ask is the cached file, not a new render.
    let (big, _) = app
        .thumbnails()
        .of_attachment(&ana.id, &pdf.id, 1024)
        .await
        .unwrap();
    assert_eq!(image::open(&big).unwrap().height(), 1024);
    let modified = std::fs::metadata(&page_path).unwrap().len();
    let (again, _) = app
        .thumbnails()
        .of_attachment(&ana.id, &pdf.id, 256)
        .await
        .unwrap();
    assert_eq!(
        (again.clone(), std::fs::metadata(&again).unwrap().len()),
        (page_path, modified)
    );

    let err = app
        .thumbnails()
        .of_attachment(&ana.id, &other.id, 256)
        .await
        .unwrap_err();
    assert_eq!(ErrorPayload::from(err).code, ErrorCode::NotFound);

    // A file queued for upload shows its thumbnail at once, from the local file.
    let local = home.path().join("porch.jpg");
    image::RgbImage::from_fn(900, 600, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 40])
    })
    .save(&local)
    .unwrap();
    let report = app
        .uploads()
        .queue_files(&ana, vec![local], false)
        .await
        .unwrap();
    let (queued_thumb, mime) = app
        .thumbnails()
        .of_upload(report.queued[0].id, 256)
        .await
        .unwrap();
    assert_eq!(mime, "image/jpeg");
    assert_eq!(image::open(&queued_thumb).unwrap().width(), 256);
    let err = app.thumbnails().of_upload(999_999, 256).await.unwrap_err();
    assert_eq!(ErrorPayload::from(err).code, ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_asks_for_one_thumbnail_render_it_once() {
    let home = tempfile::tempdir().unwrap();
    let app = std::sync::Arc::new(open(home.path()).await);
    app.contacts().refresh().await.unwrap();
    let ana = app.contacts().search("Ana Silva", 0, 1).contacts.remove(0);
    let files = app.contacts().refresh_attachments(&ana.id).await.unwrap();
    let photo = files.iter().find(|a| a.has_preview()).unwrap().id.clone();
    let pdf = files
        .iter()
        .find(|a| a.mime_type == "application/pdf")
        .unwrap()
        .id
        .clone();

    // The grid, Quick Look and a second view all ask at once, for two pictures in two sizes.
    let asks = (0..8).map(|i| {
        let (app, contact) = (app.clone(), ana.id.clone());
        let id = if i % 2 == 0 {
            photo.clone()
        } else {
            pdf.clone()
        };
        let size = if i % 4 < 2 { 256 } else { 1024 };
        tokio::spawn(async move {
            app.thumbnails()
                .of_attachment(&contact, &id, size)
                .await
                .unwrap()
        })
    });
    let answers: Vec<_> = futures::future::join_all(asks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(app.thumbnails().rendered(), 4, "two pictures × two sizes");
    let distinct: std::collections::HashSet<_> = answers.iter().map(|(p, _)| p).collect();
    assert_eq!(distinct.len(), 4);
    app.thumbnails()
        .of_attachment(&ana.id, &photo, 256)
        .await
        .unwrap();
    assert_eq!(
        app.thumbnails().rendered(),
        4,
        "later asks come from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_over_its_time_limit_is_given_up_with_a_reason() {
    let home = tempfile::tempdir().unwrap();
    // No picture renders in a microsecond: every render here overruns its limit.
    let app = open(home.path())
        .await
        .with_thumb_time_limit(std::time::Duration::from_micros(1));
    app.contacts().refresh().await.unwrap();
    let ana = app.contacts().search("Ana Silva", 0, 1).contacts.remove(0);
    let big = home.path().join("facade.jpg");
    image::RgbImage::from_fn(4000, 3000, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&big)
    .unwrap();
    let report = app
        .uploads()
        .queue_files(&ana, vec![big], false)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = app
        .thumbnails()
        .of_upload(report.queued[0].id, 256)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    let payload = ErrorPayload::from(err);
    assert_eq!(payload.code, ErrorCode::InvalidInput);
    assert!(
        payload.message.contains("took too long"),
        "{}",
        payload.message
    );
    // Nothing half-written is left in the cache to be served later.
    let thumbs = home.path().join("thumbs");
    let cached = if thumbs.exists() {
        walk(&thumbs)
    } else {
        Vec::new()
    };
    assert!(cached.is_empty(), "{cached:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_site_opens_as_espocrm_with_the_same_clients_files_and_thumbnails() {
    let home = tempfile::tempdir().unwrap();
    let app_home = AppHome::at(home.path().to_path_buf()).unwrap();
    attache_service::accounts::use_account(&app_home, "demo-espo").unwrap();
    let app = open(home.path()).await;
    assert_eq!(app.account().kind, AccountKind::DemoEspo);
    assert!(app.account().is_demo());
    let n = app.contacts().refresh().await.unwrap();
    assert!(n >= 12);
    let ana = app.contacts().search("Ana Silva", 0, 1).contacts.remove(0);
    assert_eq!(ana.email.as_deref().map(|e| e.contains('@')), Some(true));
    let files = app.contacts().refresh_attachments(&ana.id).await.unwrap();
    let photo = files.iter().find(|a| a.has_preview()).expect("a photo");
    let pdf = files
        .iter()
        .find(|a| a.mime_type == "application/pdf")
        .expect("a PDF");
    assert!(photo.size_bytes.is_some(), "EspoCRM lists sizes");

    let (path, _) = app
        .thumbnails()
        .of_attachment(&ana.id, &photo.id, 256)
        .await
        .unwrap();
    let img = image::open(&path).unwrap();
    assert_eq!(img.width().max(img.height()), 256);
    let (page, mime) = app
        .thumbnails()
        .of_attachment(&ana.id, &pdf.id, 256)
        .await
        .unwrap();
    assert_eq!(mime, "image/png");
    assert_eq!(image::open(&page).unwrap().height(), 256);
    let saved = app.contacts().download(&ana.id, &pdf.id).await.unwrap();
    assert!(std::fs::read(saved).unwrap().starts_with(b"%PDF-"));

    // The Wix view of the Demo site is a separate cache with the same clients.
    drop(app);
    attache_service::accounts::use_account(&app_home, "demo").unwrap();
    let wix = open(home.path()).await;
    assert_eq!(wix.account().kind, AccountKind::Demo);
    assert!(
        wix.contacts().search("", 0, 100).contacts.is_empty(),
        "caches are per account"
    );
    assert_eq!(wix.contacts().refresh().await.unwrap(), n);
}

/// The Demo site the app starts for itself answers only the app: the published key, the admin
/// side without this run's token and a browser page that reached it through its own host name
/// (DNS rebinding) are all refused, while the app goes on working.
#[tokio::test]
async fn the_in_app_demo_site_answers_only_the_app() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path()).await;
    let base = app.account().base_url.clone();
    let port = base.rsplit(':').next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let status_and_code = |request: reqwest::RequestBuilder| async move {
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        (
            status,
            body["details"]["applicationError"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let contacts = format!("{base}/contacts/v4/contacts");

    let published = http
        .get(&contacts)
        .header("Authorization", attache_sandbox::DEMO_API_KEY)
        .header("wix-site-id", attache_sandbox::DEMO_SITE_ID);
    assert_eq!(
        status_and_code(published).await,
        (401, "UNAUTHENTICATED".into())
    );
    let espo_published = http
        .get(format!("{base}/api/v1/Contact"))
        .header("X-Api-Key", attache_sandbox::DEMO_API_KEY);
    assert_eq!(espo_published.send().await.unwrap().status().as_u16(), 401);

    for request in [
        http.get(format!("{base}/_admin/faults")),
        http.put(format!("{base}/_admin/faults"))
            .json(&serde_json::json!({"errorRate": 1.0})),
        http.get(format!("{base}/_admin/requests")),
        http.put(format!("{base}/_admin/webhooks"))
            .json(&serde_json::json!({"callbackUrl": "http://127.0.0.1:9/"})),
        http.get(format!("{base}/_admin/faults")).header(
            "Authorization",
            format!("Bearer {}", attache_sandbox::DEMO_API_KEY),
        ),
    ] {
        assert_eq!(
            status_and_code(request).await,
            (401, "ADMIN_TOKEN_REQUIRED".into())
        );
    }

    for foreign in [
        format!("attacker.example:{port}"),
        "attacker.example".to_owned(),
        format!("127.0.0.1.attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
    ] {
        let rebound = http.get(&contacts).header("Host", &foreign);
        assert_eq!(
            status_and_code(rebound).await,
            (421, "FOREIGN_HOST".into()),
            "Host: {foreign}"
        );
    }
    // Loopback names pass the host check (and then need the key like anyone else).
    for local in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".to_owned(),
    ] {
        let request = http.get(&contacts).header("Host", &local);
        assert_eq!(
            status_and_code(request).await,
            (401, "UNAUTHENTICATED".into()),
            "Host: {local}"
        );
    }

    // None of that touched the app: it lists the Demo site's clients as always.
    assert!(app.contacts().refresh().await.unwrap() >= 12);
}

/// Renders given up for their time still hold their turn until their thread ends, so a grid of
/// slow pictures never has more renders running than there are turns; and a picture that could
/// not be made is not rendered again on the next repaint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_renders_keep_their_turn_and_failures_are_remembered() {
    let home = tempfile::tempdir().unwrap();
    let app = open(home.path())
        .await
        .with_thumb_time_limit(std::time::Duration::from_micros(1));
    app.contacts().refresh().await.unwrap();
    let ana = app.contacts().search("Ana Silva", 0, 1).contacts.remove(0);
    let mut photo = Vec::new();
    image::RgbImage::from_fn(3000, 2000, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .write_to(
        &mut std::io::Cursor::new(&mut photo),
        image::ImageFormat::Png,
    )
    .unwrap();
    // Six different files (bytes after the end of a PNG are ignored by decoders).
    let files: Vec<std::path::PathBuf> = (0..6u8)
        .map(|n| {
            let path = home.path().join(format!("facade {n}.png"));
            let mut bytes = photo.clone();
            bytes.push(n);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    let report = app.uploads().queue_files(&ana, files, false).await.unwrap();
    let ids: Vec<i64> = report.queued.iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 6);

    let ask_all =
        || futures::future::join_all(ids.iter().map(|id| app.thumbnails().of_upload(*id, 256)));
    for answer in ask_all().await {
        let message = ErrorPayload::from(answer.unwrap_err()).message;
        assert!(message.contains("took too long"), "{message}");
    }
    assert_eq!(app.thumbnails().rendered(), 6);
    // The next repaint: answered from memory, nothing rendered again.
    let started = std::time::Instant::now();
    for answer in ask_all().await {
        assert!(answer.is_err());
    }
    assert!(started.elapsed() < std::time::Duration::from_millis(200));
    assert_eq!(app.thumbnails().rendered(), 6);
    // Let the abandoned threads end, then look at how many ever ran at once.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let turns = std::thread::available_parallelism().map_or(2, |n| n.get());
    let peak = app.thumbnails().renders_peak();
    assert!(
        peak >= 1 && peak <= turns,
        "{peak} renders at once, {turns} turns"
    );
}
