//! The upload engine end to end against the sandbox over real HTTP: batches, duplicates, bad
//! inputs, faults, crashes between "the bytes landed" and "we wrote that down", and files that
//! change under it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use attache_core::upload::{ConvertTarget, JobState, RejectionKind, UploadEvent, UploadSource};
use attache_core::{Contact, CrmBackend};
use attache_sandbox::faults::Faults;
use attache_sandbox::Sandbox;
use attache_service::Attache;
use attache_tests::fixtures::{
    self, attachment_counts, contact_named, demo_espo, demo_sandbox, demo_wix, open_demo,
    write_pdf, Crm,
};

struct World {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    files: PathBuf,
    sandbox: Sandbox,
    app: Attache,
}

async fn world() -> World {
    world_on(Crm::Wix).await
}

async fn world_on(crm: Crm) -> World {
    let site = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = demo_sandbox(site.path()).await;
    let app = open_demo(&home.path().join("home"), &sandbox.base_url(), crm).await;
    let files = home.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    World {
        files,
        sandbox,
        app,
        _dirs: (site, home),
    }
}

impl World {
    async fn contact(&self, name: &str) -> Contact {
        self.app.contacts().refresh().await.unwrap();
        contact_named(&self.app, name)
    }

    /// Queues one file for `contact`, which must be accepted: its job's id.
    async fn queue_one(&self, contact: &Contact, path: &Path) -> i64 {
        let report = self
            .app
            .uploads()
            .queue_files(contact, vec![path.to_path_buf()], false)
            .await
            .unwrap();
        assert_eq!(report.queued.len(), 1, "{report:?}");
        report.queued[0].id
    }

    /// What is really on the site, with the faults switched off first.
    async fn names_on(&self, contact: &Contact) -> HashMap<String, usize> {
        set_faults(&self.sandbox, &Faults::default()).await;
        attachment_counts(&self.sandbox.base_url(), &contact.id).await
    }
}

async fn set_faults(sandbox: &Sandbox, faults: &Faults) {
    fixtures::set_faults(&sandbox.base_url(), faults).await
}

fn pdf(dir: &Path, name: &str, seed: &str) -> PathBuf {
    write_pdf(dir, name, seed)
}

async fn run_until_done(app: &Attache, ids: &[i64]) -> Vec<attache_core::upload::UploadJob> {
    app.uploads().start();
    tokio::time::timeout(Duration::from_secs(300), app.uploads().wait_for(ids))
        .await
        .expect("uploads finish")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_checked_attached_verified_and_never_doubled() {
    a_batch_is_checked_attached_verified_and_never_doubled_on(Crm::Wix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_espocrm_is_checked_attached_verified_and_never_doubled() {
    a_batch_is_checked_attached_verified_and_never_doubled_on(Crm::Espo).await;
}

async fn a_batch_is_checked_attached_verified_and_never_doubled_on(crm: Crm) {
    let w = world_on(crm).await;
    let ana = w.contact("Ana Silva").await;
    let before = w.names_on(&ana).await;
    let mut events = w.app.uploads().subscribe();
    let folder = w.files.join("Closing docs");
    std::fs::create_dir_all(&folder).unwrap();
    let good: Vec<PathBuf> = (0..5)
        .map(|i| pdf(&folder, &format!("page {i}.pdf"), &format!("p{i}")))
        .collect();
    std::fs::write(folder.join("notes.txt"), "hello").unwrap();
    std::fs::write(folder.join("empty.pdf"), "").unwrap();
    std::fs::write(folder.join(".DS_Store"), "x").unwrap();
    std::fs::write(
        folder.join("fake.pdf"),
        [0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0],
    )
    .unwrap();

    let report = w
        .app
        .uploads()
        .queue_files(&ana, vec![folder.clone()], false)
        .await
        .unwrap();
    // Wix refuses plain text as a contact attachment; EspoCRM's stream takes any type.
    let (queued, refused) = match crm {
        Crm::Wix => (5, vec![RejectionKind::Unsupported]),
        Crm::Espo => (6, vec![]),
    };
    assert_eq!(report.queued.len(), queued, "{report:?}");
    let kinds: Vec<RejectionKind> = report.rejected.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.len(), refused.len() + 2, "{:?}", report.rejected);
    for kind in refused
        .into_iter()
        .chain([RejectionKind::Empty, RejectionKind::TypeMismatch])
    {
        assert!(kinds.contains(&kind), "{kind:?} in {:?}", report.rejected);
    }

    // Dropped twice before the first upload finished: still one job each.
    let again = w
        .app
        .uploads()
        .queue_files(&ana, good.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        again.already_queued.len() + again.already_attached.len(),
        5,
        "{again:?}"
    );
    assert!(again.queued.is_empty());

    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let ended = run_until_done(&w.app, &ids).await;
    assert!(
        ended
            .iter()
            .all(|j| j.state == JobState::Done && j.attachment_id.is_some()),
        "{ended:?}"
    );

    let after = w.names_on(&ana).await;
    for i in 0..5 {
        let name = format!("page {i}.pdf");
        assert_eq!(
            after.get(&name).copied().unwrap_or(0) - before.get(&name).copied().unwrap_or(0),
            1,
            "{name}"
        );
    }

    // Afterwards the same content is "already attached", unless forced.
    let later = w
        .app
        .uploads()
        .queue_files(&ana, vec![good[0].clone()], false)
        .await
        .unwrap();
    assert_eq!(later.already_attached.len(), 1);
    let forced = w
        .app
        .uploads()
        .queue_files(&ana, vec![good[0].clone()], true)
        .await
        .unwrap();
    assert_eq!(forced.queued.len(), 1);
    run_until_done(&w.app, &[forced.queued[0].id]).await;
    assert_eq!(
        w.names_on(&ana).await["page 0.pdf"],
        before.get("page 0.pdf").copied().unwrap_or(0) + 2
    );

    // The tray heard about it, in batches, with a summary at the end.
    let mut seen_done = 0;
    let mut summaries = 0;
    // (Jobs end before the tray's next tick, so wait for the ticks that report them.)
    while seen_done < 5 || summaries == 0 {
        let next = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
        let Ok(Ok(UploadEvent {
            jobs,
            finished_batch,
            ..
        })) = next
        else {
            break;
        };
        seen_done += jobs.iter().filter(|v| v.state == JobState::Done).count();
        summaries += finished_batch.is_some() as usize;
    }
    assert!(seen_done >= 5, "done events: {seen_done}");
    assert!(summaries >= 1, "a batch summary was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_files_through_every_fault_end_attached_exactly_once() {
    hundreds_of_files_through_every_fault_on(Crm::Wix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_files_to_espocrm_through_every_fault_end_attached_exactly_once() {
    hundreds_of_files_through_every_fault_on(Crm::Espo).await;
}

async fn hundreds_of_files_through_every_fault_on(crm: Crm) {
    let w = world_on(crm).await;
    let contact = w.contact("Noah").await;
    let before = w.names_on(&contact).await;
    let files: Vec<PathBuf> = (0..200)
        .map(|i| pdf(&w.files, &format!("scan-{i:03}.pdf"), &format!("scan {i}")))
        .collect();
    let report = w
        .app
        .uploads()
        .queue_files(&contact, files, false)
        .await
        .unwrap();
    assert_eq!(report.queued.len(), 200);
    set_faults(
        &w.sandbox,
        &Faults::parse(
            "5xx=0.08,429=0.01,reset=0.1,lost=0.1,expired=0.1,latency=2ms,list-lag=300ms",
        )
        .unwrap(),
    )
    .await;
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let ended = run_until_done(&w.app, &ids).await;
    let failed: Vec<_> = ended.iter().filter(|j| j.state != JobState::Done).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let retried = ended.iter().filter(|j| j.attempts > 1).count();
    assert!(
        retried > 10,
        "the faults were exercised ({retried} jobs needed more than one attempt)"
    );

    let names: Vec<String> = (0..200).map(|i| format!("scan-{i:03}.pdf")).collect();
    assert_each_added_once(&before, &w.names_on(&contact).await, &names);
}

/// Each of `names` is on the contact exactly once more than `before`.
fn assert_each_added_once(
    before: &HashMap<String, usize>,
    after: &HashMap<String, usize>,
    names: &[String],
) {
    for name in names {
        let added = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
        assert_eq!(added, 1, "{name} attached {added} times");
    }
}

/// Three transfers at most (the default), and a job whose bytes are sent gives its slot to the
/// next while it waits for its attachment to be listed: with a listing that lags, the batch
/// does not stall three at a time behind it, and still every file is attached once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_transfers_at_most_and_a_job_waiting_to_be_listed_frees_its_slot() {
    let w = world().await;
    let contact = w.contact("Noah").await;
    let before = w.names_on(&contact).await;
    let files: Vec<PathBuf> = (0..15)
        .map(|i| pdf(&w.files, &format!("lot-{i:02}.pdf"), &format!("lot {i}")))
        .collect();
    let report = w
        .app
        .uploads()
        .queue_files(&contact, files, false)
        .await
        .unwrap();
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    set_faults(
        &w.sandbox,
        &Faults::parse("latency=100ms,list-lag=1500ms").unwrap(),
    )
    .await;
    let in_flight = format!("{}/_admin/uploads-in-flight", w.sandbox.base_url());
    reqwest::Client::new()
        .delete(&in_flight)
        .send()
        .await
        .unwrap();

    // The most jobs seen verifying at once, from the engine's own events.
    let most_verifying = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut events = w.app.uploads().subscribe();
    let watcher = tokio::spawn({
        let most = most_verifying.clone();
        async move {
            let mut states = HashMap::new();
            loop {
                match events.recv().await {
                    Ok(event) => {
                        for job in event.jobs {
                            states.insert(job.id, job.state);
                        }
                        let verifying = states
                            .values()
                            .filter(|s| **s == JobState::Verifying)
                            .count();
                        most.fetch_max(verifying, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        }
    });
    let ended = run_until_done(&w.app, &ids).await;
    watcher.abort();
    assert!(ended.iter().all(|j| j.state == JobState::Done), "{ended:?}");

    let seen: serde_json::Value = reqwest::get(&in_flight)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let peak = seen["peak"].as_u64().unwrap();
    assert!(
        (2..=3).contains(&peak),
        "at most three uploads at once, and more than one: {peak}"
    );
    let most = most_verifying.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        most > 3,
        "jobs waiting to be listed held the transfer slots (at most {most} verifying at once)"
    );
    let names: Vec<String> = (0..15).map(|i| format!("lot-{i:02}.pdf")).collect();
    assert_each_added_once(&before, &w.names_on(&contact).await, &names);
}

/// Cancelling: one job in flight, one still queued, then all the rest. Cancelled jobs stay
/// cancelled (never started again by the scheduler), a queued one sends nothing, one in flight
/// stops where it is (attached at most once), and the jobs that ended before are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_uploads_stay_cancelled_and_nothing_is_attached_twice() {
    let w = world().await;
    let contact = w.contact("Noah").await;
    let before = w.names_on(&contact).await;
    let names: Vec<String> = (0..12).map(|i| format!("deed-{i:02}.pdf")).collect();
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| pdf(&w.files, n, &format!("deed {n}")))
        .collect();
    // Slow enough that jobs are seen queued and in flight.
    set_faults(&w.sandbox, &Faults::parse("latency=300ms").unwrap()).await;
    let report = w
        .app
        .uploads()
        .queue_files(&contact, files, false)
        .await
        .unwrap();
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    w.app.uploads().start();

    let state_of = |id: i64| {
        w.app
            .uploads()
            .recent(100)
            .unwrap()
            .into_iter()
            .find(|v| v.id == id)
            .map(|v| v.state)
    };
    let in_flight = loop {
        if let Some(v) = w
            .app
            .uploads()
            .recent(100)
            .unwrap()
            .into_iter()
            .find(|v| v.state == JobState::Sending)
        {
            break v.id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let last_queued = *ids.last().unwrap();
    assert_eq!(state_of(last_queued), Some(JobState::Queued));
    assert!(w.app.uploads().cancel(in_flight).unwrap());
    assert!(w.app.uploads().cancel(last_queued).unwrap());
    assert!(
        !w.app.uploads().cancel(last_queued).unwrap(),
        "cancelling twice changes nothing"
    );

    // Let a few others end, then cancel everything left.
    let mut finished = w.app.uploads().finished_signal();
    while ids
        .iter()
        .filter(|id| state_of(**id) == Some(JobState::Done))
        .count()
        < 3
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), finished.changed()).await;
    }
    let cancelled_all = w.app.uploads().cancel_all().unwrap();
    assert!(cancelled_all > 0, "some jobs were still waiting");
    let ended = run_until_done(&w.app, &ids).await;
    // A few scheduler rounds later (it looks at least once a second), still cancelled.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let after = w.names_on(&contact).await;
    let mut done = 0;
    for job in &ended {
        let name = &job.file_name;
        let now = state_of(job.id).unwrap();
        assert_eq!(now, job.state, "{name} moved after it ended");
        let added = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
        match job.state {
            JobState::Done => {
                done += 1;
                assert_eq!(added, 1, "{name} done, attached {added} times");
            }
            JobState::Cancelled if job.id == last_queued => {
                assert_eq!(
                    added, 0,
                    "{name} was cancelled before sending, yet attached"
                )
            }
            // Stopped wherever it was: its bytes may have reached the site, once at most.
            JobState::Cancelled => assert!(added <= 1, "{name} attached {added} times"),
            other => panic!("{name} ended {other:?}: {:?}", job.error),
        }
    }
    assert!(done >= 3, "{done} done");
    assert_eq!(state_of(last_queued), Some(JobState::Cancelled));
    assert!(
        ended
            .iter()
            .any(|j| j.state == JobState::Cancelled && j.id != last_queued),
        "cancel all stopped jobs that had not ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_landed_before_a_crash_are_found_not_sent_again() {
    bytes_that_landed_before_a_crash_on(Crm::Wix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_reached_espocrm_before_a_crash_is_found_not_sent_again() {
    bytes_that_landed_before_a_crash_on(Crm::Espo).await;
}

async fn bytes_that_landed_before_a_crash_on(crm: Crm) {
    let w = world_on(crm).await;
    let ana = w.contact("Ana Silva").await;
    let path = pdf(&w.files, "Offer.pdf", "offer");
    let id = w.queue_one(&ana, &path).await;

    // What a crashed run leaves: the job marked sending with its baseline and upload target,
    // the bytes accepted by Wix, and the process gone before it could write "done".
    let queue = attache_service::uploads::UploadQueue::open(&w.app.home().queue_db()).unwrap();
    let job = queue.job(id).unwrap().unwrap();
    let crm_client: Box<dyn CrmBackend> = match crm {
        Crm::Wix => Box::new(demo_wix(&w.sandbox.base_url())),
        Crm::Espo => Box::new(demo_espo(&w.sandbox.base_url())),
    };
    let source = UploadSource {
        path: path.clone(),
        file_name: job.file_name.clone(),
        mime_type: job.mime_type.clone(),
        size: job.size,
        modified_ns: job.modified_ns,
        content_hash: job.content_hash.clone(),
        progress: Default::default(),
    };
    let target = crm_client.prepare_upload(&ana.id, &source).await.unwrap();
    queue.begin_sending(id, &[], &target).unwrap();
    crm_client.send_upload(&target, &source).await.unwrap();
    if crm == Crm::Wix {
        // A resend to the same target is refused: the target is single-use.
        assert!(matches!(
            crm_client.send_upload(&target, &source).await,
            Err(attache_core::SendError::TargetGone(_))
        ));
    }

    let ended = run_until_done(&w.app, &[id]).await;
    assert_eq!(ended[0].state, JobState::Done);
    assert_eq!(ended[0].attempts, 1, "no second send");
    assert_eq!(w.names_on(&ana).await["Offer.pdf"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_edited_after_queuing_is_sent_as_it_is_now_and_a_vanished_one_fails_plainly() {
    let w = world().await;
    let ana = w.contact("Ana Silva").await;
    let edited = pdf(&w.files, "Draft.pdf", "v1");
    let vanished = pdf(&w.files, "Gone.pdf", "gone");
    let report = w
        .app
        .uploads()
        .queue_files(&ana, vec![edited.clone(), vanished.clone()], false)
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &edited,
        "%PDF-1.4\n% version two, longer than the first\n%%EOF\n",
    )
    .unwrap();
    std::fs::remove_file(&vanished).unwrap();

    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let ended = run_until_done(&w.app, &ids).await;
    let by_name: HashMap<&str, _> = ended.iter().map(|j| (j.file_name.as_str(), j)).collect();
    assert_eq!(by_name["Draft.pdf"].state, JobState::Done);
    assert_eq!(
        by_name["Draft.pdf"].content_hash,
        attache_service::uploads::hash_file(&edited).unwrap()
    );
    let gone = by_name["Gone.pdf"];
    assert_eq!(gone.state, JobState::Failed);
    assert!(
        gone.error
            .as_ref()
            .unwrap()
            .message
            .contains("no longer there"),
        "{:?}",
        gone.error
    );

    let contact_id = ana.id.clone();
    let listed = w
        .app
        .contacts()
        .refresh_attachments(&contact_id)
        .await
        .unwrap();
    let draft = listed.iter().find(|a| a.file_name == "Draft.pdf").unwrap();
    let local = w
        .app
        .contacts()
        .download(&contact_id, &draft.id)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(local).unwrap(),
        std::fs::read(&edited).unwrap(),
        "the new content was sent"
    );
    assert!(!w.names_on(&ana).await.contains_key("Gone.pdf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_image_is_converted_only_when_asked_then_attached() {
    let w = world().await;
    let ana = w.contact("Ana Silva").await;
    let bmp = w.files.join("floor plan.bmp");
    let pixels =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    pixels.save(&bmp).unwrap();

    // Refused, with the conversion offered and nothing done yet.
    let report = w
        .app
        .uploads()
        .queue_files(&ana, vec![bmp.clone()], false)
        .await
        .unwrap();
    assert!(report.queued.is_empty());
    let refusal = &report.rejected[0];
    assert_eq!(
        (refusal.kind, refusal.convert_to),
        (RejectionKind::Unsupported, Some(ConvertTarget::Png))
    );
    assert!(
        refusal.message.contains("converted to PNG"),
        "{}",
        refusal.message
    );
    assert!(
        !w.app.home().converted_dir().exists(),
        "never converted silently"
    );

    // The one click: converted to PNG (every pixel kept) and attached under the same name.
    let report = w
        .app
        .uploads()
        .convert_and_queue(&ana, vec![bmp.clone()])
        .await
        .unwrap();
    assert_eq!(report.queued.len(), 1, "{report:?}");
    assert_eq!(report.queued[0].file_name, "floor plan.png");
    let ended = run_until_done(&w.app, &[report.queued[0].id]).await;
    assert_eq!(ended[0].state, JobState::Done);
    assert_eq!(w.names_on(&ana).await.get("floor plan.png"), Some(&1));
    assert!(bmp.is_file(), "the original is left as it was");
    let copy = &ended[0].path;
    assert_eq!(image::open(copy).unwrap().to_rgb8(), pixels);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_filed_as_espocrm_documents_are_checked_then_linked_as_documents() {
    let w = world_on(Crm::Espo).await;
    let ana = w.contact("Ana Silva").await;
    let contract = pdf(&w.files, "Listing agreement.pdf", "listing");
    // Above the 4 MB chunk size: the chunked path, then the Document.
    let survey = w.files.join("Survey plan.pdf");
    let mut bytes = b"%PDF-1.4\n% survey\n".to_vec();
    bytes.resize(4_600_000, b' ');
    std::fs::write(&survey, &bytes).unwrap();
    let photo = w.files.join("Kitchen.jpg");
    image::RgbImage::new(40, 30).save(&photo).unwrap();

    let report = w
        .app
        .uploads()
        .queue_files_as(&ana, vec![contract, survey, photo], false, true)
        .await
        .unwrap();
    assert_eq!(report.queued.len(), 2, "{report:?}");
    assert_eq!(report.rejected.len(), 1);
    let refused = &report.rejected[0];
    assert_eq!(refused.kind, RejectionKind::Unsupported);
    assert!(
        refused.message.contains("Kitchen.jpg") && refused.message.contains("Documents take only"),
        "{}",
        refused.message
    );
    let ids: Vec<i64> = report.queued.iter().map(|v| v.id).collect();
    let ended = run_until_done(&w.app, &ids).await;
    assert!(ended.iter().all(|j| j.state == JobState::Done), "{ended:?}");

    let espo = demo_espo(&w.sandbox.base_url());
    let documents = espo.all_documents(&ana.id).await.unwrap();
    let names: Vec<_> = documents.iter().filter_map(|d| d.name.clone()).collect();
    assert!(
        names.contains(&"Listing agreement".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"Survey plan".to_string()), "{names:?}");
    let stream = espo.all_stream_attachments(&ana.id).await.unwrap();
    assert!(
        !stream
            .iter()
            .any(|a| a.name.as_deref() == Some("Survey plan.pdf")),
        "not posted to the stream as well"
    );
    let listed = w.app.contacts().refresh_attachments(&ana.id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|a| a.file_name == "Survey plan.pdf")
            .count(),
        1
    );

    // Wix has no such records: the same request is refused there, before anything is sent.
    let wix = world_on(Crm::Wix).await;
    let ana = wix.contact("Ana Silva").await;
    let report = wix
        .app
        .uploads()
        .queue_files_as(&ana, vec![pdf(&wix.files, "Deed.pdf", "deed")], false, true)
        .await
        .unwrap();
    assert!(report.queued.is_empty());
    assert!(report.rejected[0]
        .message
        .contains("Wix keeps no separate document records"));
}

/// A CRM that stores a file under a tidied name (NFC, or with the characters servers refuse
/// replaced) still has each file attached once: the engine recognises its file under the new
/// name instead of resending it forever, even when the answer to the upload is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_renames_files_still_gets_each_once() {
    use attache_sandbox::faults::Renaming;
    for crm in [Crm::Wix, Crm::Espo] {
        for rename in [Renaming::Nfc, Renaming::Cleaned] {
            let w = world_on(crm).await;
            let ana = w.contact("Ana Silva").await;
            let before = w.names_on(&ana).await;
            let sent = [
                "Cafe\u{301} offer.pdf",
                "Deed #4 & plan {lot 12}.pdf",
                "Re\u{301}sume\u{301} 100%.pdf",
            ];
            let paths: Vec<PathBuf> = sent.iter().map(|n| pdf(&w.files, n, n)).collect();
            set_faults(
                &w.sandbox,
                &Faults {
                    rename,
                    lost_response_rate: if crm == Crm::Wix { 0.5 } else { 0.0 },
                    ..Faults::default()
                },
            )
            .await;
            let report = w
                .app
                .uploads()
                .queue_files(&ana, paths, false)
                .await
                .unwrap();
            let ids: Vec<i64> = report.queued.iter().map(|j| j.id).collect();
            assert_eq!(ids.len(), sent.len(), "{crm:?} {rename:?}: {report:?}");
            let ended = run_until_done(&w.app, &ids).await;
            let case = format!("{crm:?} {rename:?}");
            for job in &ended {
                assert_eq!(job.state, JobState::Done, "{case}: {job:#?}");
            }
            let after = w.names_on(&ana).await;
            let added: HashMap<&String, usize> = after
                .iter()
                .map(|(name, n)| (name, n - before.get(name).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect();
            let stored: Vec<String> = sent.iter().map(|n| rename.apply(n)).collect();
            assert_eq!(added.len(), sent.len(), "{case}: {added:?}");
            for name in &stored {
                assert_eq!(added.get(name), Some(&1), "{case}: {name:?} in {added:?}");
            }
        }
    }
}

/// A queued file replaced by a link to a private file before it is sent (the window between
/// the check and the send): the engine does not read through the link; the job fails saying
/// why, and nothing of the private file reaches the CRM.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_link_after_queuing_is_not_read_through() {
    for crm in [Crm::Wix, Crm::Espo] {
        let w = world_on(crm).await;
        let ana = w.contact("Ana Silva").await;
        let path = pdf(&w.files, "Scan.pdf", "scan");
        let id = w.queue_one(&ana, &path).await;
        let secret = w.files.join("id_rsa");
        std::fs::write(&secret, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&secret, &path).unwrap();

        let ended = run_until_done(&w.app, &[id]).await;
        assert_eq!(ended[0].state, JobState::Failed, "{crm:?}: {:#?}", ended[0]);
        let why = &ended[0].error.as_ref().unwrap().message;
        assert!(why.contains("is a link"), "{crm:?}: {why}");
        assert!(!w.names_on(&ana).await.contains_key("Scan.pdf"), "{crm:?}");
    }
}
