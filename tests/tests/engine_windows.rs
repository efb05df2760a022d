//! The upload engine stopped at each call it makes to the CRM, once before the call's effect
//! and once after it with the answer lost, then started again on the same queue and the same
//! CRM: every file ends attached exactly once, and each job names its own attachment.
//!
//! Deterministic: the scripted CRM (`attache_tests::scripted`) stops the world at the call the
//! script names, and dropping the engine's runtime there is a crash as far as the durable queue
//! can tell (every task stops at its await point; what SQLite committed stays). The process-kill
//! tests (`upload_crash.rs`, `inbox_crash.rs`) complement this with real SIGKILLs at random
//! moments against the real wire.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use attache_core::upload::{JobState, UploadJob};
use attache_core::{AppHome, Contact};
use attache_service::uploads::Uploads;
use attache_tests::scripted::{Moment, Op, ScriptedCrm};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the queue in `home` on `crm`, queues `files` for `contact` (if any), and runs every
/// job until all have ended (`Some`) or the CRM stopped the world (`None`, after which the
/// runtime is dropped: the crash).
fn run(
    home: &Path,
    crm: &ScriptedCrm,
    queue: Option<(&Contact, Vec<PathBuf>)>,
) -> Option<Vec<UploadJob>> {
    let rt = runtime();
    let home = AppHome::at(home.to_path_buf()).unwrap();
    let uploads = Uploads::open(&home, "scripted", Arc::new(crm.clone())).unwrap();
    let outcome = rt.block_on(async {
        if let Some((contact, files)) = queue {
            let report = uploads.queue_files(contact, files, false).await.unwrap();
            assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        }
        let ids: Vec<i64> = uploads
            .recent_jobs(100)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        uploads.start();
        tokio::select! {
            jobs = uploads.wait_for(&ids) => Some(jobs.unwrap()),
            _ = crm.stopped() => None,
        }
    });
    drop(rt);
    drop(uploads);
    outcome
}

/// Two files of one name for one client (a scanner's `Scan.pdf`, twice): the engine sends
/// them one after the other, and the second must not mistake the first's attachment for its own.
fn two_scans(dir: &Path) -> Vec<PathBuf> {
    ["first", "second"]
        .iter()
        .map(|which| {
            let folder = dir.join(which);
            std::fs::create_dir_all(&folder).unwrap();
            let path = folder.join("Scan.pdf");
            std::fs::write(&path, format!("%PDF-1.4\n% the {which} scan\n%%EOF\n")).unwrap();
            path
        })
        .collect()
}

fn check_each_attached_once(
    crm: &ScriptedCrm,
    contact: &Contact,
    jobs: &[UploadJob],
    window: &str,
) {
    let held = crm.attachments_of(&contact.id);
    assert_eq!(held.len(), jobs.len(), "{window}: the CRM holds {held:?}");
    for job in jobs {
        assert_eq!(job.state, JobState::Done, "{window}: {job:?}");
        let own = job
            .attachment_id
            .as_deref()
            .expect("a done job names its attachment");
        let attachment = held.iter().find(|a| a.id == own).expect(own);
        assert_eq!(attachment.file_name, "Scan.pdf", "{window}");
        assert_eq!(
            attachment.size_bytes,
            Some(job.size),
            "{window}: {} took another job's attachment",
            job.id
        );
    }
    let mut ids: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.attachment_id.as_deref())
        .collect();
    ids.dedup();
    assert_eq!(
        ids.len(),
        jobs.len(),
        "{window}: two jobs claim one attachment"
    );
}

#[test]
fn a_crash_at_any_call_of_the_engine_attaches_each_file_exactly_once() {
    // A clean run first: which calls the engine makes for two same-named files.
    let clean = ScriptedCrm::with_contacts(&["Noah Brooks"]);
    let contact = clean.contact("Noah Brooks");
    let dir = tempfile::tempdir().unwrap();
    let jobs = run(
        &dir.path().join("home"),
        &clean,
        Some((&contact, two_scans(dir.path()))),
    )
    .expect("no stop was scripted");
    check_each_attached_once(&clean, &contact, &jobs, "the clean run");
    let calls = clean.calls();
    for op in [
        Op::ListAttachments,
        Op::Prepare,
        Op::Send,
        Op::RecentAttachments,
    ] {
        assert!(
            calls.contains(&op),
            "the engine never called {op:?}: {calls:?}"
        );
    }
    assert_eq!(
        calls.iter().filter(|op| **op == Op::Send).count(),
        2,
        "{calls:?}"
    );

    for n in 0..calls.len() {
        for moment in [Moment::Before, Moment::AfterEffect] {
            let window = format!("stopped at call {n} ({:?}) {moment:?}", calls[n]);
            let crm = ScriptedCrm::with_contacts(&["Noah Brooks"]);
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("home");
            crm.stop_at(n, moment);
            let first = run(&home, &crm, Some((&contact, two_scans(dir.path()))));
            assert!(first.is_none(), "{window}: the run ended before the stop");
            crm.go_on();
            let jobs = run(&home, &crm, None).expect("no stop is scripted any more");
            check_each_attached_once(&crm, &contact, &jobs, &window);
            let sends = crm.calls().iter().filter(|op| **op == Op::Send).count();
            // A send stopped before it reached the CRM is made again; one whose answer was
            // lost is found on restart, not made again; no other stop costs a send.
            let resent = moment == Moment::Before && calls[n] == Op::Send;
            assert_eq!(
                sends,
                2 + usize::from(resent),
                "{window}: {:?}",
                crm.calls()
            );
        }
    }
}

#[test]
fn a_same_named_file_attached_by_someone_else_meanwhile_does_not_complete_the_job() {
    // The engine stops just before its first send; meanwhile someone attaches their own
    // `Scan.pdf` to the client (from the CRM's site, another machine). On restart that file is
    // new since the job's baseline and has the job's name, but not its size: it is not ours,
    // so ours is still sent.
    let crm = ScriptedCrm::with_contacts(&["Noah Brooks"]);
    let contact = crm.contact("Noah Brooks");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first_send = {
        let clean = ScriptedCrm::with_contacts(&["Noah Brooks"]);
        let probe = tempfile::tempdir().unwrap();
        run(
            &probe.path().join("home"),
            &clean,
            Some((&contact, two_scans(probe.path()))),
        );
        clean.calls().iter().position(|op| *op == Op::Send).unwrap()
    };
    crm.stop_at(first_send, Moment::Before);
    assert!(run(&home, &crm, Some((&contact, two_scans(dir.path())))).is_none());
    let theirs = crm.attach_elsewhere(&contact.id, "Scan.pdf", 7);
    crm.go_on();
    let jobs = run(&home, &crm, None).unwrap();

    let held = crm.attachments_of(&contact.id);
    assert_eq!(held.len(), 3, "theirs and our two: {held:?}");
    assert!(held.iter().any(|a| a.id == theirs));
    for job in &jobs {
        assert_eq!(job.state, JobState::Done, "{job:?}");
        let own = job.attachment_id.as_deref().unwrap();
        assert_ne!(
            own, theirs,
            "job {} took someone else's file as its own",
            job.id
        );
        let attachment = held.iter().find(|a| a.id == own).unwrap();
        assert_eq!(attachment.size_bytes, Some(job.size));
    }
}

/// The hole the soak found: a file sent, its answer lost, then written again (a new scan under
/// the same name) before the retry, on a CRM whose lists leave sizes out and whose size reads
/// fail for a while. The first content's attachment must not pass for the second's: the
/// second is sent, and the job names the attachment of what it sent.
#[test]
fn an_earlier_contents_attachment_never_completes_the_job_for_new_content() {
    let probe = ScriptedCrm::with_contacts(&["Noah Brooks"]);
    let contact = probe.contact("Noah Brooks");
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("Scan.pdf");
    std::fs::write(&scan, "%PDF-1.4\n% first\n%%EOF\n").unwrap();
    run(
        &dir.path().join("probe"),
        &probe,
        Some((&contact, vec![scan.clone()])),
    )
    .unwrap();
    let send = probe.calls().iter().position(|op| *op == Op::Send).unwrap();

    let crm = ScriptedCrm::with_contacts(&["Noah Brooks"]);
    crm.hide_sizes();
    crm.stop_at(send, Moment::AfterEffect);
    let home = dir.path().join("home");
    assert!(run(&home, &crm, Some((&contact, vec![scan.clone()]))).is_none());
    assert_eq!(
        crm.attachments_of(&contact.id).len(),
        1,
        "the first scan landed"
    );

    let second = "%PDF-1.4\n% the second scan, longer than the first\n%%EOF\n";
    std::fs::write(&scan, second).unwrap();
    crm.go_on();
    crm.fail_size_reads(3);
    let jobs = run(&home, &crm, None).expect("no stop");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Done, "{:?}", jobs[0]);
    assert_eq!(jobs[0].size, second.len() as u64);
    let held = crm.attachments_of(&contact.id);
    assert_eq!(held.len(), 2, "the second content was sent: {held:?}");
    let own = held
        .iter()
        .find(|a| Some(a.id.as_str()) == jobs[0].attachment_id.as_deref())
        .unwrap();
    assert_eq!(own.size_bytes, Some(second.len() as u64));
}
