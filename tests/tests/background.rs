//! The session's background work as the installed app runs it with its window hidden: one
//! summary per batch (the notification's source), Pause from the tray that stops the traffic at
//! once and survives a restart, paused watching that leaves new files for later.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attache_service::{Attache, Work};
use attache_tests::fixtures::{
    attachment_counts, contact_named, demo_sandbox, inbox_items_until, open_demo, watch_settings,
    write_pdf, Crm,
};

/// A large "PDF" (a valid header, then `size` bytes unique to `seed`).
fn big_pdf(dir: &Path, name: &str, size: usize, seed: u8) -> PathBuf {
    let mut bytes = b"%PDF-1.4\n%".to_vec();
    bytes.extend((0..size).map(|i| (i % 251) as u8 ^ seed));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn opened(home: &Path, url: &str) -> Arc<Attache> {
    let app = Arc::new(open_demo(home, url, Crm::Wix).await);
    app.contacts().refresh().await.unwrap();
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_summed_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let app = opened(&dir.path().join("home"), &sb.base_url()).await;
    let ana = contact_named(&app, "Ana Silva");
    let mut events = app.uploads().subscribe();
    let files: Vec<PathBuf> = (0..30)
        .map(|i| {
            write_pdf(
                dir.path(),
                &format!("batch-{i:02}.pdf"),
                &format!("batch {i}"),
            )
        })
        .collect();
    let report = app.uploads().queue_files(&ana, files, false).await.unwrap();
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    assert_eq!(ids.len(), 30);
    app.uploads().start();
    app.uploads().wait_for(&ids).await.unwrap();
    // Events keep coming for a while (the tray's look-back re-reads recent rows): none of them
    // may announce the batch again.
    let quiet_until = Instant::now() + Duration::from_secs(4);
    let mut summaries = Vec::new();
    loop {
        let left = quiet_until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(event)) => summaries.extend(event.finished_batch),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            _ => break,
        }
    }
    assert_eq!(summaries.len(), 1, "one summary per batch: {summaries:?}");
    assert_eq!(summaries[0].attached, 30);
    assert_eq!(summaries[0].failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_stops_the_traffic_at_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    // 24 MB/s between the app and the site, so the uploads are mid-way when paused. Fast
    // enough that what the kernel had already buffered (a few MB on loopback, still delivered
    // after the app closes its sockets) drains well within the two seconds.
    let proxy = attache_tests::proxy::start(
        attache_tests::port_of(&sb.base_url()),
        attache_tests::proxy::Behaviour {
            bytes_per_sec: Some(24 * 1024 * 1024),
            ..Default::default()
        },
    )
    .await;
    let home = dir.path().join("home");
    let app = opened(&home, &proxy.url()).await;
    let ana = contact_named(&app, "Ana Silva");
    let files: Vec<PathBuf> = (0..3)
        .map(|i| {
            big_pdf(
                dir.path(),
                &format!("survey-{i}.pdf"),
                48 * 1024 * 1024,
                i as u8,
            )
        })
        .collect();
    let report = app.uploads().queue_files(&ana, files, false).await.unwrap();
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let background = app.start(Work::default()).await;
    let sent = || proxy.upstream_bytes.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent() < 16 * 1024 * 1024 {
        assert!(Instant::now() < deadline, "the uploads never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    background.pause_uploads(true).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_two_seconds = sent();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sent(),
        at_two_seconds,
        "no byte leaves later than two seconds after Pause"
    );
    assert!(at_two_seconds < 3 * 48 * 1024 * 1024, "paused mid-way");
    for id in &ids {
        assert!(!app.uploads().job(*id).unwrap().state.is_finished());
    }

    // Quit and start again: still paused, still nothing sent.
    background.stop().await;
    drop(background);
    drop(app);
    let app = opened(&home, &proxy.url()).await;
    let background = app.start(Work::saved(&app, |_| {}).unwrap()).await;
    assert!(app.uploads().is_paused(), "the pause was saved");
    let before = sent();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sent(), before, "nothing sent after a restart while paused");

    // Resume: each file ends attached exactly once.
    background.pause_uploads(false).unwrap();
    let jobs = tokio::time::timeout(Duration::from_secs(120), app.uploads().wait_for(&ids))
        .await
        .expect("resumed uploads finish")
        .unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.state == attache_core::upload::JobState::Done),
        "{jobs:?}"
    );
    let counts = attachment_counts(&sb.base_url(), &ana.id).await;
    for i in 0..3 {
        assert_eq!(
            counts.get(&format!("survey-{i}.pdf")),
            Some(&1),
            "{counts:?}"
        );
    }
    let reopened = Work::saved(&app, |_| {}).unwrap();
    assert!(!reopened.uploads_paused, "Resume was saved too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_watching_leaves_new_files_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = demo_sandbox(&dir.path().join("site")).await;
    let app = opened(&dir.path().join("home"), &sb.base_url()).await;
    let inbox = dir.path().join("Scans");
    std::fs::create_dir_all(&inbox).unwrap();
    let background = app
        .start(Work {
            inbox: Some(watch_settings(&inbox, Some(false))),
            ..Work::default()
        })
        .await;
    assert!(background.inbox_status().await.0, "watching");
    background.pause_watching(true).await.unwrap();
    let (watching, problem) = background.inbox_status().await;
    assert!(!watching);
    assert_eq!(
        problem.as_deref(),
        Some("Watching is paused (Resume watching in the tray menu)")
    );
    let name = "Ana Silva - deed.pdf";
    write_pdf(&inbox, name, "deed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(inbox.join(name).is_file(), "left alone while paused");
    assert!(app.inbox().items(10).unwrap().is_empty());

    background.pause_watching(false).await.unwrap();
    inbox_items_until(
        &app,
        "the deed filed after Resume",
        Duration::from_secs(60),
        |items| {
            items
                .iter()
                .any(|i| i.file_name == name && i.state == attache_core::inbox::InboxState::Filed)
        },
    )
    .await;
    assert!(inbox.join("Filed").join("Ana Silva").join(name).is_file());
}
