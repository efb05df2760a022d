//! Watched inbox folders on the real file system (inotify through notify, or polling) against
//! the sandbox over real HTTP: every way a file can arrive, files that are not complete yet,
//! review and rules, duplicates, and a restart in the middle of a burst.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attache_core::inbox::{InboxItem, InboxRule, InboxState, MatchReason, RuleKind};
use attache_core::Contact;
use attache_sandbox::Sandbox;
use attache_service::Attache;
use attache_tests::fixtures::{
    attachment_counts, contact_named, demo_sandbox, inbox_items_until, open_demo, pdf_bytes,
    watch_settings as settings, Crm,
};

struct World {
    crm: Crm,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    home: PathBuf,
    inbox: PathBuf,
    outside: PathBuf,
    sandbox: Sandbox,
    app: Arc<Attache>,
}

async fn world() -> World {
    world_on(Crm::Wix).await
}

async fn world_on(crm: Crm) -> World {
    let site = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let sandbox = demo_sandbox(site.path()).await;
    let home = root.path().join("home");
    let app = open_app(&home, &sandbox, crm).await;
    let inbox = root.path().join("Inbox");
    let outside = root.path().join("elsewhere");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    World {
        crm,
        _dirs: (site, root),
        home,
        inbox,
        outside,
        sandbox,
        app,
    }
}

async fn open_app(home: &Path, sandbox: &Sandbox, crm: Crm) -> Arc<Attache> {
    let app = open_demo(home, &sandbox.base_url(), crm).await;
    app.contacts().refresh().await.unwrap();
    app.uploads().start();
    Arc::new(app)
}

impl World {
    fn contact(&self, name: &str) -> Contact {
        contact_named(&self.app, name)
    }

    /// What is really on the site, read by a fresh client.
    async fn names_on(&self, contact: &Contact) -> HashMap<String, usize> {
        attachment_counts(&self.sandbox.base_url(), &contact.id).await
    }

    /// Waits until `done` holds for the inbox rows (newest first), or fails with them.
    async fn until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[InboxItem]) -> bool,
    ) -> Vec<InboxItem> {
        inbox_items_until(&self.app, what, within, done).await
    }
}

fn by_name<'a>(items: &'a [InboxItem], name: &str) -> Option<&'a InboxItem> {
    items.iter().find(|i| i.file_name == name)
}

fn filed(items: &[InboxItem], name: &str) -> bool {
    by_name(items, name).is_some_and(|i| i.state == InboxState::Filed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_arriving_every_way_are_filed_onto_the_right_contact() {
    files_arriving_every_way_are_filed_on(Crm::Wix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_arriving_every_way_are_filed_onto_the_right_espocrm_contact() {
    files_arriving_every_way_are_filed_on(Crm::Espo).await;
}

async fn files_arriving_every_way_are_filed_on(crm: Crm) {
    let w = world_on(crm).await;
    let grace = w.contact("Grace Whitfield");
    let chloe = w.contact("Chloé Dubois");
    let marcus = w.contact("Marcus Okafor");
    let mateo = w.contact("Mateo García");
    let (grace_before, chloe_before, marcus_before, mateo_before) = (
        w.names_on(&grace).await,
        w.names_on(&chloe).await,
        w.names_on(&marcus).await,
        w.names_on(&mateo).await,
    );
    let watching = w.app.inbox().watch(settings(&w.inbox, None)).await.unwrap();

    // Written in place (create, write, close): Grace's full name in the file name.
    std::fs::write(
        w.inbox.join("Offer - grace_whitfield (signed).pdf"),
        pdf_bytes("offer"),
    )
    .unwrap();
    // A download finishing: written under a partial name, renamed when complete; the name
    // holds Marcus's e-mail.
    let partial = w.inbox.join("deed.pdf.crdownload");
    std::fs::write(&partial, pdf_bytes("deed")).unwrap();
    let email = marcus.email.clone().unwrap();
    std::fs::rename(&partial, w.inbox.join(format!("{email} deed.pdf"))).unwrap();
    // A whole folder moved in, named after Chloé in NFD (as macOS writes names), two files.
    let folder = w.outside.join("Chloe\u{301} Dubois");
    std::fs::create_dir_all(folder.join("2026")).unwrap();
    std::fs::write(folder.join("listing.pdf"), pdf_bytes("listing")).unwrap();
    std::fs::write(
        folder.join("2026").join("disclosure.pdf"),
        pdf_bytes("disclosure"),
    )
    .unwrap();
    std::fs::rename(&folder, w.inbox.join("Chloe\u{301} Dubois")).unwrap();
    // A folder made inside the inbox, then a file copied into it.
    std::fs::create_dir_all(w.inbox.join("mateo garcia")).unwrap();
    std::fs::write(w.outside.join("photo.pdf"), pdf_bytes("mateo")).unwrap();
    std::fs::copy(
        w.outside.join("photo.pdf"),
        w.inbox.join("mateo garcia").join("inspection.pdf"),
    )
    .unwrap();
    // Litter that must be left alone.
    for name in [
        ".hidden.pdf",
        "~$draft.docx",
        "scan.tmp",
        "movie.part",
        "Thumbs.db",
        ".DS_Store",
    ] {
        std::fs::write(w.inbox.join(name), pdf_bytes(name)).unwrap();
    }
    // A file deleted before it was complete.
    {
        let mut gone = std::fs::File::create(w.inbox.join("Grace Whitfield draft.pdf")).unwrap();
        gone.write_all(b"%PDF-1.4\n").unwrap();
        std::fs::remove_file(w.inbox.join("Grace Whitfield draft.pdf")).unwrap();
    }

    let names = [
        "Offer - grace_whitfield (signed).pdf",
        &format!("{email} deed.pdf"),
        "listing.pdf",
        "disclosure.pdf",
        "inspection.pdf",
    ];
    let items = w
        .until("five files filed", Duration::from_secs(30), |items| {
            names.iter().all(|n| filed(items, n))
        })
        .await;
    assert_eq!(
        items.len(),
        5,
        "only the five real files were taken on: {items:#?}"
    );

    let reason = |name: &str| by_name(&items, name).unwrap().reason.clone().unwrap();
    assert_eq!(
        reason("Offer - grace_whitfield (signed).pdf"),
        MatchReason::Name {
            name: grace.display_name.clone()
        }
    );
    assert_eq!(
        reason(&format!("{email} deed.pdf")),
        MatchReason::Email {
            email: email.clone()
        }
    );
    assert!(matches!(
        reason("disclosure.pdf"),
        MatchReason::Folder { .. }
    ));
    assert_eq!(
        by_name(&items, "disclosure.pdf")
            .unwrap()
            .contact_id
            .as_deref(),
        Some(chloe.id.as_str())
    );
    assert_eq!(
        by_name(&items, "inspection.pdf")
            .unwrap()
            .contact_id
            .as_deref(),
        Some(mateo.id.as_str())
    );

    // Attached exactly once each, and moved to Filed/<contact>/ only after that.
    let added = |after: &HashMap<String, usize>, before: &HashMap<String, usize>, name: &str| {
        after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)
    };
    assert_eq!(
        added(
            &w.names_on(&grace).await,
            &grace_before,
            "Offer - grace_whitfield (signed).pdf"
        ),
        1
    );
    assert_eq!(
        added(
            &w.names_on(&marcus).await,
            &marcus_before,
            &format!("{email} deed.pdf")
        ),
        1
    );
    let chloe_after = w.names_on(&chloe).await;
    assert_eq!(
        added(&chloe_after, &chloe_before, "listing.pdf")
            + added(&chloe_after, &chloe_before, "disclosure.pdf"),
        2
    );
    assert_eq!(
        added(&w.names_on(&mateo).await, &mateo_before, "inspection.pdf"),
        1
    );
    let filed_dir = w.inbox.join("Filed").join(&grace.display_name);
    assert!(filed_dir
        .join("Offer - grace_whitfield (signed).pdf")
        .is_file());
    assert!(!w
        .inbox
        .join("Offer - grace_whitfield (signed).pdf")
        .exists());
    assert_eq!(
        by_name(&items, "Offer - grace_whitfield (signed).pdf")
            .unwrap()
            .filed_path
            .as_deref(),
        Some(
            filed_dir
                .join("Offer - grace_whitfield (signed).pdf")
                .as_path()
        )
    );
    for name in [
        ".hidden.pdf",
        "~$draft.docx",
        "scan.tmp",
        "movie.part",
        "Thumbs.db",
        ".DS_Store",
    ] {
        assert!(w.inbox.join(name).is_file(), "{name} was left alone");
    }
    watching.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_writer_is_not_taken_before_it_closes_the_file() {
    let w = world().await;
    let ana = w.contact("Ana Silva");
    let before = w.names_on(&ana).await;
    let watching = w.app.inbox().watch(settings(&w.inbox, None)).await.unwrap();
    let path = w.inbox.join("Ana Silva inspection.pdf");
    let body = pdf_bytes(&"slow ".repeat(2000));
    let writer = {
        let (path, body) = (path.clone(), body.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(&path).unwrap();
            for chunk in body.chunks(body.len() / 3 + 1) {
                f.write_all(chunk).unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
    };
    // Pauses of 1.5 s are longer than any quiet spell a scan would trust: only the close counts.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        w.app.inbox().items(10).unwrap().is_empty(),
        "taken while still being written"
    );
    writer.join().unwrap();
    let items = w
        .until("the file filed", Duration::from_secs(20), |items| {
            filed(items, "Ana Silva inspection.pdf")
        })
        .await;
    assert_eq!(
        items[0].size,
        body.len() as u64,
        "the whole file, not a torn one"
    );
    let after = w.names_on(&ana).await;
    assert_eq!(
        after["Ana Silva inspection.pdf"]
            - before.get("Ana Silva inspection.pdf").copied().unwrap_or(0),
        1
    );
    let filed_copy = w
        .inbox
        .join("Filed")
        .join(&ana.display_name)
        .join("Ana Silva inspection.pdf");
    assert_eq!(std::fs::read(filed_copy).unwrap(), body);
    watching.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclear_files_wait_for_review_and_a_choice_can_become_a_rule() {
    let w = world().await;
    let olivia = w.contact("Olivia Bennett");
    let watching = w.app.inbox().watch(settings(&w.inbox, None)).await.unwrap();
    std::fs::write(
        w.inbox.join("bennett appraisal.pdf"),
        pdf_bytes("appraisal"),
    )
    .unwrap();
    std::fs::write(w.inbox.join("IMG_0042.pdf"), pdf_bytes("img")).unwrap();
    let items = w
        .until("two files to review", Duration::from_secs(20), |items| {
            items.len() == 2 && items.iter().all(|i| i.state == InboxState::NeedsFiling)
        })
        .await;
    let appraisal = by_name(&items, "bennett appraisal.pdf").unwrap();
    assert_eq!(
        appraisal.suggestions[0].contact_id, olivia.id,
        "{:?}",
        appraisal.suggestions
    );
    assert!(by_name(&items, "IMG_0042.pdf")
        .unwrap()
        .suggestions
        .is_empty());
    assert!(
        w.inbox.join("bennett appraisal.pdf").is_file(),
        "nothing moves before it is filed"
    );

    // One click files it, and remembers: the next appraisal files itself.
    let rule = InboxRule {
        pattern: "*appraisal*".into(),
        kind: RuleKind::Glob,
        contact_id: String::new(),
    };
    w.app
        .inbox()
        .file_item(appraisal.id, &olivia.id, Some(rule))
        .await
        .unwrap();
    w.until("the chosen file filed", Duration::from_secs(20), |items| {
        filed(items, "bennett appraisal.pdf")
    })
    .await;
    assert_eq!(
        w.app.inbox().settings().unwrap().rules[0].contact_id,
        olivia.id
    );
    watching.stop().await;

    // Rules are read when watching starts.
    let mut with_rules = settings(&w.inbox, None);
    with_rules.rules = w.app.inbox().settings().unwrap().rules;
    let watching = w.app.inbox().watch(with_rules).await.unwrap();
    std::fs::write(
        w.inbox.join("second appraisal.pdf"),
        pdf_bytes("appraisal 2"),
    )
    .unwrap();
    let items = w
        .until("the rule to file it", Duration::from_secs(20), |items| {
            filed(items, "second appraisal.pdf")
        })
        .await;
    assert_eq!(
        by_name(&items, "second appraisal.pdf").unwrap().reason,
        Some(MatchReason::Rule {
            pattern: "*appraisal*".into()
        })
    );
    let names = w.names_on(&olivia).await;
    assert_eq!(names.get("bennett appraisal.pdf"), Some(&1));
    assert_eq!(names.get("second appraisal.pdf"), Some(&1));
    // A refused type waits in Failed with the reason, and is not moved.
    std::fs::write(w.inbox.join("Olivia Bennett notes.txt"), "plain text").unwrap();
    let items = w
        .until("the refusal", Duration::from_secs(20), |items| {
            by_name(items, "Olivia Bennett notes.txt")
                .is_some_and(|i| i.state == InboxState::Failed)
        })
        .await;
    let refused = by_name(&items, "Olivia Bennett notes.txt").unwrap();
    assert!(
        refused.error.as_ref().unwrap().message.contains("Wix"),
        "{refused:?}"
    );
    assert!(w.inbox.join("Olivia Bennett notes.txt").is_file());
    watching.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_twice_is_attached_once_and_polling_works_without_events() {
    let w = world().await;
    let james = w.contact("James O'Connor");
    let before = w.names_on(&james).await;
    let watching = w
        .app
        .inbox()
        .watch(settings(&w.inbox, Some(true)))
        .await
        .unwrap();
    let folder = w.inbox.join("James O'Connor");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("contract.pdf"), pdf_bytes("contract")).unwrap();
    w.until("the first copy filed", Duration::from_secs(20), |items| {
        filed(items, "contract.pdf")
    })
    .await;
    std::fs::write(folder.join("contract copy.pdf"), pdf_bytes("contract")).unwrap();
    let items = w
        .until("the second copy filed", Duration::from_secs(20), |items| {
            filed(items, "contract copy.pdf")
        })
        .await;
    let names = w.names_on(&james).await;
    assert_eq!(
        names.get("contract.pdf").copied().unwrap_or(0)
            - before.get("contract.pdf").copied().unwrap_or(0),
        1
    );
    assert_eq!(
        names.get("contract copy.pdf"),
        None,
        "the same bytes are not attached a second time"
    );
    // Both are put away; the second says it is the first's upload.
    assert_eq!(
        by_name(&items, "contract copy.pdf").unwrap().job_id,
        by_name(&items, "contract.pdf").unwrap().job_id
    );
    assert!(w
        .inbox
        .join("Filed")
        .join("James O'Connor")
        .join("contract copy.pdf")
        .is_file());
    watching.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_files_survives_a_restart_in_the_middle() {
    let mut w = world().await;
    let daniel = w.contact("Daniel Kim");
    let before = w.names_on(&daniel).await;
    let folder = w.inbox.join("Daniel Kim");
    std::fs::create_dir_all(&folder).unwrap();
    let watching = w.app.inbox().watch(settings(&w.inbox, None)).await.unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("page-{i:04}.pdf")).collect();
    for name in &names {
        std::fs::write(folder.join(name), pdf_bytes(name)).unwrap();
    }
    w.until("a good part filed", Duration::from_secs(120), |items| {
        items
            .iter()
            .filter(|i| i.state == InboxState::Filed)
            .count()
            >= 200
    })
    .await;

    // Quit in the middle and start again on the same home.
    watching.stop().await;
    drop(w.app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.app = open_app(&w.home, &w.sandbox, w.crm).await;
    let watching = w.app.inbox().watch(settings(&w.inbox, None)).await.unwrap();
    let items = w
        .until("all filed", Duration::from_secs(300), |items| {
            items
                .iter()
                .filter(|i| i.state == InboxState::Filed)
                .count()
                == 1000
        })
        .await;
    assert_eq!(items.len(), 1000);
    let after = w.names_on(&daniel).await;
    for name in &names {
        let added = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
        assert_eq!(added, 1, "{name} attached {added} times");
    }
    let left: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
    assert!(
        left.is_empty(),
        "every file moved to Filed: {} left",
        left.len()
    );
    watching.stop().await;
}
