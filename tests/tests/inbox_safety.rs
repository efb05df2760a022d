//! The inbox never touches what it may not: links in a watched folder (to a file, or a folder
//! named after a client) are reported and left alone, with their targets, whether they arrive
//! as events or are found by a scan; and "already attached" is what the CRM says, not what an
//! old local job remembers. Real inotify and polling, real HTTP to the sandbox.

use std::sync::Arc;
use std::time::Duration;

use attache_core::inbox::{InboxItem, InboxState};
use attache_service::Attache;
use attache_tests::fixtures::{
    attachment_counts, contact_named, demo_sandbox, demo_wix, inbox_items_until, open_demo,
    pdf_bytes, watch_settings as settings, Crm,
};

async fn until(app: &Attache, what: &str, done: impl Fn(&[InboxItem]) -> bool) -> Vec<InboxItem> {
    inbox_items_until(app, what, Duration::from_secs(30), done).await
}

fn state_of(items: &[InboxItem], name: &str) -> Option<InboxState> {
    items.iter().find(|i| i.file_name == name).map(|i| i.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_reported_and_left_alone_with_their_targets() {
    // Found by the first scan (links made before watching), and by events (made after), with
    // inotify and with polling.
    for (poll, made_before) in [(None, false), (None, true), (Some(true), false)] {
        let root = tempfile::tempdir().unwrap();
        let sandbox = demo_sandbox(&root.path().join("site")).await;
        let app =
            Arc::new(open_demo(&root.path().join("home"), &sandbox.base_url(), Crm::Wix).await);
        app.contacts().refresh().await.unwrap();
        app.uploads().start();
        let ana = contact_named(&app, "Ana Silva");
        let chloe = contact_named(&app, "Chloé Dubois");
        let ana_before = attachment_counts(&sandbox.base_url(), &ana.id).await;
        let chloe_before = attachment_counts(&sandbox.base_url(), &chloe.id).await;

        // Someone's private folder and file, outside the inbox.
        let private = root.path().join("private");
        std::fs::create_dir_all(&private).unwrap();
        std::fs::write(private.join("id_rsa.pdf"), pdf_bytes("private key")).unwrap();
        std::fs::write(private.join("tax return.pdf"), pdf_bytes("tax")).unwrap();
        let inbox = root.path().join("Inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let make_links = || {
            // A folder named after a client that is a link to the private folder, and a file
            // named after another client that is a link to a private file.
            std::os::unix::fs::symlink(&private, inbox.join("Ana Silva")).unwrap();
            std::os::unix::fs::symlink(
                private.join("tax return.pdf"),
                inbox.join("Chloé Dubois tax return.pdf"),
            )
            .unwrap();
            // A plain file beside them, to know the watcher has looked.
            std::fs::write(
                inbox.join("Grace Whitfield listing.pdf"),
                pdf_bytes("listing"),
            )
            .unwrap();
        };
        if made_before {
            make_links();
        }
        let watching = app.inbox().watch(settings(&inbox, poll)).await.unwrap();
        if !made_before {
            make_links();
        }
        let case = format!("poll {poll:?}, links made before watching: {made_before}");
        let items = until(&app, &case, |items| {
            state_of(items, "Grace Whitfield listing.pdf") == Some(InboxState::Filed)
                && state_of(items, "Ana Silva") == Some(InboxState::Failed)
                && state_of(items, "Chloé Dubois tax return.pdf") == Some(InboxState::Failed)
        })
        .await;
        for name in ["Ana Silva", "Chloé Dubois tax return.pdf"] {
            let item = items.iter().find(|i| i.file_name == name).unwrap();
            let why = &item.error.as_ref().unwrap().message;
            assert!(
                why.contains("is a link") && why.contains("leaves links alone"),
                "{case}: {why}"
            );
        }
        // A watcher that lists a linked folder's files (polling does) has them refused too.
        for item in items
            .iter()
            .filter(|i| i.path.starts_with(inbox.join("Ana Silva")))
        {
            assert_eq!(item.state, InboxState::Failed, "{case}: {item:#?}");
            let why = &item.error.as_ref().unwrap().message;
            assert!(why.contains("Ana Silva is a link"), "{case}: {why}");
        }
        // Nothing through a link was read into the CRM, moved or deleted.
        assert_eq!(
            attachment_counts(&sandbox.base_url(), &ana.id).await,
            ana_before,
            "{case}"
        );
        assert_eq!(
            attachment_counts(&sandbox.base_url(), &chloe.id).await,
            chloe_before,
            "{case}"
        );
        assert_eq!(
            std::fs::read(private.join("id_rsa.pdf")).unwrap(),
            pdf_bytes("private key")
        );
        assert_eq!(
            std::fs::read(private.join("tax return.pdf")).unwrap(),
            pdf_bytes("tax")
        );
        assert!(std::fs::symlink_metadata(inbox.join("Ana Silva"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(
            std::fs::symlink_metadata(inbox.join("Chloé Dubois tax return.pdf"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!inbox.join("Filed/Ana Silva").exists(), "{case}");
        watching.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_attachment_was_deleted_in_the_crm_is_attached_again() {
    let root = tempfile::tempdir().unwrap();
    let sandbox = demo_sandbox(&root.path().join("site")).await;
    let app = Arc::new(open_demo(&root.path().join("home"), &sandbox.base_url(), Crm::Wix).await);
    app.contacts().refresh().await.unwrap();
    app.uploads().start();
    let james = contact_named(&app, "James O'Connor");
    let inbox = root.path().join("Inbox");
    let folder = inbox.join("James O'Connor");
    std::fs::create_dir_all(&folder).unwrap();
    let watching = app.inbox().watch(settings(&inbox, None)).await.unwrap();

    std::fs::write(folder.join("contract.pdf"), pdf_bytes("contract")).unwrap();
    let items = until(&app, "the first copy filed", |items| {
        state_of(items, "contract.pdf") == Some(InboxState::Filed)
    })
    .await;
    let first_job = items
        .iter()
        .find(|i| i.file_name == "contract.pdf")
        .unwrap()
        .job_id;

    // Someone removes it in the CRM; the same bytes arrive again.
    let wix = demo_wix(&sandbox.base_url());
    let attached = wix.all_attachments(&james.id).await.unwrap();
    let contract_id = attached
        .iter()
        .find(|a| a.file_name == "contract.pdf")
        .map(|a| a.id.clone())
        .expect("contract.pdf attached");
    wix.delete_attachment(&james.id, &contract_id)
        .await
        .unwrap();
    std::fs::write(folder.join("contract again.pdf"), pdf_bytes("contract")).unwrap();
    let items = until(&app, "the second copy filed", |items| {
        state_of(items, "contract again.pdf") == Some(InboxState::Filed)
    })
    .await;
    let second = items
        .iter()
        .find(|i| i.file_name == "contract again.pdf")
        .unwrap();
    assert_ne!(
        second.job_id, first_job,
        "a new upload, not the old job's word"
    );
    let names = attachment_counts(&sandbox.base_url(), &james.id).await;
    assert_eq!(names.get("contract again.pdf"), Some(&1), "{names:?}");
    assert_eq!(names.get("contract.pdf"), None, "{names:?}");
    assert!(inbox
        .join("Filed/James O'Connor/contract again.pdf")
        .is_file());
    watching.stop().await;
}

/// A scanner emptying more files into the inbox than the watcher follows at once, while its
/// event queue overflows: every file is still filed, exactly once, in turns, well before the
/// minute's periodic rescan would have found the ones turned away; and `--once` does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_files_is_taken_in_turns_and_each_is_filed_once() {
    use attache_service::inbox::InboxLimits;
    const FILES: usize = 60;
    let root = tempfile::tempdir().unwrap();
    let sandbox = demo_sandbox(&root.path().join("site")).await;
    let app = Arc::new(open_demo(&root.path().join("home"), &sandbox.base_url(), Crm::Wix).await);
    app.contacts().refresh().await.unwrap();
    app.uploads().start();
    app.inbox().set_limits(InboxLimits {
        followed: 8,
        event_batches: 1,
        ..InboxLimits::default()
    });
    let ana = contact_named(&app, "Ana Silva");
    let name = |n: usize| format!("Ana Silva flood {n:03}.pdf");

    let inbox = root.path().join("Inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let watching = app.inbox().watch(settings(&inbox, None)).await.unwrap();
    for n in 0..FILES {
        std::fs::write(inbox.join(name(n)), pdf_bytes(&name(n))).unwrap();
    }
    let items = inbox_items_until(&app, "flood", Duration::from_secs(45), |items| {
        items
            .iter()
            .filter(|i| i.state == InboxState::Filed)
            .count()
            == FILES
    })
    .await;
    assert!(
        items.iter().all(|i| i.state == InboxState::Filed),
        "{items:#?}"
    );
    watching.stop().await;
    let counts = attachment_counts(&sandbox.base_url(), &ana.id).await;
    for n in 0..FILES {
        assert_eq!(counts.get(&name(n)), Some(&1), "{}", name(n));
    }

    // `attache watch --once` over a folder holding more than it follows: all of them.
    let batch = root.path().join("Batch");
    std::fs::create_dir_all(&batch).unwrap();
    let later = |n: usize| format!("Ana Silva batch {n:03}.pdf");
    for n in 0..30 {
        std::fs::write(batch.join(later(n)), pdf_bytes(&later(n))).unwrap();
    }
    let summary = app.inbox().file_once(settings(&batch, None)).await.unwrap();
    assert_eq!(
        (
            summary.filed.len(),
            summary.needs_filing.len(),
            summary.failed.len()
        ),
        (30, 0, 0)
    );
    let counts = attachment_counts(&sandbox.base_url(), &ana.id).await;
    for n in 0..30 {
        assert_eq!(counts.get(&later(n)), Some(&1), "{}", later(n));
    }
}

/// A scan written again while its first version is on its way (the scanner re-scans under the
/// same name): the new version is filed once, by its own item; the first version's job does
/// not switch to the new content (which would send it twice) and leaves no failure behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_written_again_while_on_its_way_is_filed_once() {
    let root = tempfile::tempdir().unwrap();
    let sandbox = demo_sandbox(&root.path().join("site")).await;
    let app = Arc::new(open_demo(&root.path().join("home"), &sandbox.base_url(), Crm::Wix).await);
    app.contacts().refresh().await.unwrap();
    app.uploads().start();
    let ana = contact_named(&app, "Ana Silva");
    let inbox = root.path().join("Inbox");
    std::fs::create_dir_all(inbox.join("Ana Silva")).unwrap();
    let watching = app.inbox().watch(settings(&inbox, None)).await.unwrap();
    // Every request takes 0.4 s: the first version is still being prepared when the
    // second arrives.
    attache_tests::fixtures::set_faults(
        &sandbox.base_url(),
        &serde_json::json!({"latencyMs": 1000}),
    )
    .await;
    let path = inbox.join("Ana Silva").join("Scan.pdf");
    let first = pdf_bytes("the first scan");
    let second = pdf_bytes("the second scan, which is longer than the first one was");
    let write = |bytes: &[u8]| {
        let part = inbox.join("Ana Silva").join("Scan.pdf.part");
        std::fs::write(&part, bytes).unwrap();
        std::fs::rename(&part, &path).unwrap();
    };
    write(&first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(&second);
    let filed = inbox.join("Filed").join("Ana Silva");
    let items = inbox_items_until(
        &app,
        "the second version filed",
        Duration::from_secs(90),
        |items| {
            std::fs::read(filed.join("Scan.pdf")).ok().as_deref() == Some(&second[..])
                && items.iter().all(|i| i.state != InboxState::Uploading)
        },
    )
    .await;
    watching.stop().await;
    attache_tests::fixtures::set_faults(&sandbox.base_url(), &serde_json::json!({})).await;
    assert!(
        items.iter().all(|i| i.state != InboxState::Failed),
        "no failure left behind: {items:#?}"
    );
    let wix = demo_wix(&sandbox.base_url());
    let mut sizes = Vec::new();
    for a in attache_core::CrmBackend::list_attachments(&wix, &ana.id)
        .await
        .unwrap()
    {
        if a.file_name == "Scan.pdf" {
            sizes.push(
                attache_core::CrmBackend::file_size(&wix, &a)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
    }
    let second_copies = sizes.iter().filter(|s| **s == second.len() as u64).count();
    assert_eq!(second_copies, 1, "the second version once: {sizes:?}");
    assert!(sizes.len() <= 2, "the first at most once: {sizes:?}");
}
