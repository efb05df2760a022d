//! The watched inbox folders: a file that lands in one is matched to a contact, queued on the
//! upload engine (the same one drag-and-drop uses, so the same bytes never attach twice), and
//! once its upload is verified, moved to `Filed/<contact>/` (or kept, or deleted). A file with
//! no confident match waits for the user with suggestions.
//!
//! Events come from notify through notify-debouncer-full (rename stitching); folders on network
//! file systems, where events do not arrive, are polled. A full scan at start and every
//! [`RESCAN_EVERY`] means a missed event strands nothing. [`Settling`]
//! decides when a file is complete.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use attache_core::inbox::{
    AfterFiling, InboxEvent, InboxItem, InboxSettings, InboxState, FILED_FOLDER,
};
use attache_core::upload::{JobState, RejectionKind, UploadJob};
use attache_core::{ErrorCode, ErrorPayload};
use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, RecommendedCache};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use super::claims::{self, Claim, Claims};
use super::events::{classify, Action, OnDisk};
use super::matching::{FileMatch, Matcher};
use super::safety::{self, NotPlain};
use super::settle::{Settled, Settling};
use super::store::FoundFile;
use super::Inbox;
use crate::names::contact_folder_name;
use crate::uploads::{self as upload, now_ms};
use crate::ServiceError;

/// Even with events flowing, every folder is read in full this often.
const RESCAN_EVERY: Duration = Duration::from_secs(60);
/// Folders watched by polling are looked at this often.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How long notify-debouncer-full holds events to stitch renames together.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often the debouncer's thread looks for events held long enough (at most DEBOUNCE, or
/// it refuses to start). Its default, a quarter of the hold, woke 80 times a second per folder
/// with a 50 ms hold, idle or not: most of an idle app's CPU (0.6 % of a core with two
/// folders). Events now reach the runner 100-200 ms after the last one, against the seconds a
/// file takes to settle.
const DEBOUNCE_TICK: Duration = DEBOUNCE;
/// First retry of reading the contact list when it was never read.
const CONTACTS_RETRY_FIRST: Duration = Duration::from_secs(5);
/// First automatic retry of a failed file; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(60);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// What `attache watch --once` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxSummary {
    pub filed: Vec<InboxItem>,
    pub needs_filing: Vec<InboxItem>,
    pub failed: Vec<InboxItem>,
}

/// A running watcher; dropping it (or [`InboxWatch::stop`]) stops watching.
pub struct InboxWatch {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    events: broadcast::Sender<InboxEvent>,
}

impl InboxWatch {
    pub fn subscribe(&self) -> broadcast::Receiver<InboxEvent> {
        self.events.subscribe()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for InboxWatch {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts watching `settings.folders` for the inbox's account. The upload engine must be started
/// (by the caller) for files to go anywhere.
pub async fn watch(inbox: Arc<Inbox>, settings: InboxSettings) -> Result<InboxWatch, ServiceError> {
    let (stop, stopped) = watch::channel(false);
    let (events, _) = broadcast::channel(64);
    let runner = Runner::new(inbox, settings, events.clone())?;
    let task = tokio::spawn(runner.run(stopped, false));
    Ok(InboxWatch { stop, task, events })
}

/// Files what is in the folders now and returns once every file is filed, waiting for review
/// or failed (`attache watch --once`).
pub async fn file_once(
    inbox: Arc<Inbox>,
    settings: InboxSettings,
) -> Result<InboxSummary, ServiceError> {
    inbox.contacts.ensure_cached().await?;
    let (events, _) = broadcast::channel(64);
    let (_stop, stopped) = watch::channel(false);
    let mut runner = Runner::new(inbox.clone(), settings, events)?;
    runner.scan_all();
    let started = now_ms() - 1;
    let runner = runner.run(stopped, true);
    runner.await;
    let mut summary = InboxSummary::default();
    for item in inbox.store.changed_since(&inbox.account, started)? {
        match item.state {
            InboxState::Filed => summary.filed.push(item),
            InboxState::NeedsFiling => summary.needs_filing.push(item),
            InboxState::Failed => summary.failed.push(item),
            InboxState::Uploading => {}
        }
    }
    Ok(summary)
}

/// Which of the known network file systems a path lives on, if any (Linux: from the mount
/// table; elsewhere none are detected and folders can be set to poll by hand).
pub fn network_file_system(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let path = path.canonicalize().ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (Some(_), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // The mount table escapes spaces and other bytes as octal (`\040`).
        let mount_point = unescape_octal(mount_point);
        if path.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|(len, _)| mount_point.len() > *len)
        {
            best = Some((mount_point.len(), fs_type.to_owned()));
        }
    }
    let fs_type = best?.1;
    let network = [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "davfs",
        "ncpfs",
    ];
    (network.contains(&fs_type.as_str()) || fs_type.starts_with("fuse.")).then_some(fs_type)
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Held only to keep watching: dropping a debouncer stops its watcher.
#[allow(dead_code)]
enum AnyDebouncer {
    Events(Debouncer<RecommendedWatcher, RecommendedCache>),
    Polling(Debouncer<PollWatcher, RecommendedCache>),
}

struct Runner {
    inbox: Arc<Inbox>,
    settings: InboxSettings,
    folders: Vec<PathBuf>,
    matcher: Matcher,
    /// Which index the matcher was built from (rebuilt when the contacts are refreshed).
    matcher_source: usize,
    settling: Settling,
    /// Upload job → inbox rows waiting on it.
    waiting_on: HashMap<i64, BTreeSet<i64>>,
    /// When rows were last re-read for jobs started elsewhere (a file filed by hand).
    reloaded_at: Instant,
    events: broadcast::Sender<InboxEvent>,
    raw: mpsc::Receiver<DebounceEventResult>,
    raw_sender: mpsc::Sender<DebounceEventResult>,
    /// Event batches were dropped because `raw` was full: read the folders instead.
    raw_overflowed: Arc<AtomicBool>,
    _watchers: Vec<AnyDebouncer>,
    problems: Vec<String>,
    published_at: i64,
    published_settling: u32,
    /// Held while watching: two processes filing the same folders would race to move files.
    _lock: std::fs::File,
    /// Which files this machine files, in folders other machines may watch too.
    claims: Claims,
    /// Files another machine holds, looked at again when its claim could have lapsed (a lease
    /// later) rather than at the next rescan.
    held_elsewhere: HashMap<PathBuf, Instant>,
    beaten_at: Option<Instant>,
    beat_every: Duration,
}

impl Runner {
    fn new(
        inbox: Arc<Inbox>,
        settings: InboxSettings,
        events: broadcast::Sender<InboxEvent>,
    ) -> Result<Self, ServiceError> {
        let mut folders = Vec::new();
        for folder in &settings.folders {
            let path = folder.path.canonicalize().map_err(|e| {
                ServiceError::Invalid(format!(
                    "the inbox folder {} cannot be used: {e}",
                    folder.path.display()
                ))
            })?;
            if !path.is_dir() {
                return Err(ServiceError::Invalid(format!(
                    "the inbox {} is not a folder",
                    folder.path.display()
                )));
            }
            folders.push(path);
        }
        let lock = take_inbox_lock(&inbox.home.inbox_lock())?;
        let (matcher, matcher_source) = inbox.matcher(&settings.rules)?;
        let limits = inbox.limits();
        let claims = Claims::new(claims::machine_id(&inbox.home)).with_lease(limits.claim_lease);
        let (raw_sender, raw) = mpsc::channel(limits.event_batches.max(1));
        let mut runner = Self {
            inbox,
            settings,
            folders,
            matcher,
            matcher_source,
            settling: Settling::with_limit(limits.followed),
            waiting_on: HashMap::new(),
            reloaded_at: Instant::now(),
            events,
            raw,
            raw_sender,
            raw_overflowed: Arc::new(AtomicBool::new(false)),
            _watchers: Vec::new(),
            problems: Vec::new(),
            published_at: now_ms(),
            published_settling: 0,
            _lock: lock,
            claims,
            held_elsewhere: HashMap::new(),
            beaten_at: None,
            // Several beats per lease, so a machine that is alive never looks silent.
            beat_every: claims::HEARTBEAT_EVERY.min(limits.claim_lease / 4),
        };
        runner.start_watchers();
        runner.resume_uploading()?;
        Ok(runner)
    }

    fn start_watchers(&mut self) {
        for (folder, setting) in self
            .folders
            .clone()
            .iter()
            .zip(self.settings.folders.clone())
        {
            let poll = setting
                .poll
                .unwrap_or_else(|| network_file_system(folder).is_some());
            let sender = self.raw_sender.clone();
            let overflowed = self.raw_overflowed.clone();
            let handler = move |result: DebounceEventResult| {
                if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(result) {
                    overflowed.store(true, Ordering::Relaxed);
                }
            };
            let started = if poll {
                let config = notify::Config::default().with_poll_interval(POLL_EVERY);
                new_debouncer_opt::<_, PollWatcher, _>(
                    DEBOUNCE,
                    Some(DEBOUNCE_TICK),
                    handler,
                    RecommendedCache::new(),
                    config,
                )
                .and_then(|mut d| {
                    d.watch(folder, RecursiveMode::Recursive)
                        .map(|_| AnyDebouncer::Polling(d))
                })
            } else {
                new_debouncer_opt::<_, RecommendedWatcher, _>(
                    DEBOUNCE,
                    Some(DEBOUNCE_TICK),
                    handler,
                    RecommendedCache::new(),
                    notify::Config::default(),
                )
                .and_then(|mut d| {
                    d.watch(folder, RecursiveMode::Recursive)
                        .map(|_| AnyDebouncer::Events(d))
                })
            };
            match started {
                Ok(w) => {
                    tracing::info!(folder = %folder.display(), poll, "watching inbox");
                    self._watchers.push(w);
                }
                Err(e) => {
                    // Still filed by the periodic rescan; the panel says why it is slower.
                    let problem = format!(
                        "{} is not watched ({e}); it is read every minute instead",
                        folder.display()
                    );
                    tracing::warn!("{problem}");
                    self.problems.push(problem);
                }
            }
        }
    }

    /// Rows left uploading by an earlier run: follow their jobs again.
    fn resume_uploading(&mut self) -> Result<(), ServiceError> {
        for item in self
            .inbox
            .store
            .in_state(&self.inbox.account, InboxState::Uploading)?
        {
            if let Some(job) = item.job_id {
                self.waiting_on.entry(job).or_default().insert(item.id);
            }
        }
        Ok(())
    }

    fn scan_all(&mut self) {
        self.beat();
        for folder in self.folders.clone() {
            self.claims.sweep(&folder);
            self.scan(&folder, Instant::now());
        }
        // Files waiting for review that the user moved, renamed or deleted meanwhile.
        let store = &self.inbox.store;
        for state in [InboxState::NeedsFiling, InboxState::Failed] {
            for item in store
                .in_state(&self.inbox.account, state)
                .unwrap_or_default()
            {
                if item.job_id.is_none() && !item.path.exists() {
                    let _ = store.forget(item.id);
                }
            }
        }
    }

    /// Every file under `dir` becomes a candidate (those already handled are skipped later,
    /// when they are complete: their path, size and time are known).
    fn scan(&mut self, dir: &Path, now: Instant) {
        let walker = walkdir::WalkDir::new(dir).follow_links(false).into_iter();
        for entry in
            walker.filter_entry(|e| e.path() == dir || inbox_of(&self.folders, e.path()).is_some())
        {
            match entry {
                // Links are listed, not followed, so that `take_on` reports them.
                Ok(e) if e.file_type().is_file() || e.path_is_symlink() => {
                    if !self.handled_before(dir, e.path()) {
                        self.settling.found(e.path(), now)
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "inbox scan"),
            }
        }
    }

    /// A file this inbox took on before, unchanged since (kept after filing, waiting for
    /// review, failed): not followed again, so a folder of old files costs no room.
    fn handled_before(&self, dir: &Path, path: &Path) -> bool {
        let Some((size, modified_ns)) = settle_stat(path) else {
            return false;
        };
        let found = FoundFile {
            inbox: dir.to_owned(),
            path: path.to_owned(),
            size,
            modified_ns,
        };
        matches!(
            self.inbox.store.known(&self.inbox.account, &found),
            Ok(Some(_))
        )
    }

    /// Files held by another machine whose claim may have lapsed: followed again.
    fn look_again_at_held_files(&mut self) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .held_elsewhere
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(path, _)| path.clone())
            .collect();
        for path in due {
            self.held_elsewhere.remove(&path);
            self.settling.found(&path, now);
        }
    }

    /// Tells the other machines watching these folders that this one is alive, when due.
    fn beat(&mut self) {
        if self
            .beaten_at
            .is_none_or(|at| at.elapsed() >= self.beat_every)
        {
            self.claims.beat(&self.folders);
            self.beaten_at = Some(Instant::now());
        }
    }

    fn on_events(&mut self, result: DebounceEventResult) {
        let now = Instant::now();
        let events = match result {
            Ok(events) => events,
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "inbox watcher");
                }
                // Events may have been lost: look at everything.
                self.scan_all();
                return;
            }
        };
        for event in events {
            let actions = classify(
                &event,
                |p| inbox_of(&self.folders, p).is_some(),
                // Links are not followed: a link (to a file or a folder) is a file to look at,
                // which `take_on` then refuses and reports.
                |p| match std::fs::symlink_metadata(p) {
                    Ok(m) if m.is_dir() => OnDisk::Folder,
                    Ok(m) if m.is_file() || m.file_type().is_symlink() => OnDisk::File,
                    _ => OnDisk::Other,
                },
            );
            for action in actions {
                match action {
                    Action::RescanAll => self.scan_all(),
                    Action::Scan(dir) => self.scan(&dir, now),
                    Action::Written(path) => self.settling.written(&path, now),
                    Action::Closed(path) => self.settling.closed(&path, now),
                    Action::Removed(path) => self.settling.removed(&path),
                }
            }
        }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>, once: bool) {
        // Matching needs the contacts: with none cached yet (first start, CRM unreachable),
        // files wait rather than all landing in review.
        let mut pause = CONTACTS_RETRY_FIRST;
        while !self.inbox.contacts.cached().unwrap_or(false) {
            match self.inbox.contacts.refresh().await {
                Ok(_) => break,
                Err(e) => {
                    let problem =
                        format!("waiting for the contact list to match files against: {e}");
                    tracing::warn!("{problem}");
                    let _ = self.events.send(InboxEvent {
                        items: vec![],
                        settling: 0,
                        problems: vec![problem],
                    });
                }
            }
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
        if let Err(e) = self.refresh_matcher() {
            tracing::error!(error = %e, "inbox rules");
        }
        if !once {
            self.scan_all();
        }
        let mut rescan =
            tokio::time::interval_at(tokio::time::Instant::now() + RESCAN_EVERY, RESCAN_EVERY);
        let mut finished = self.inbox.uploads.finished_signal();
        loop {
            // Quick looks only while files settle; jobs ending wake it through `finished`.
            let pause = if !self.settling.is_empty() {
                super::settle::QUIET_CLOSED
            } else if !self.waiting_on.is_empty() {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(1)
            };
            tokio::select! {
                _ = stopped.changed() => return,
                Some(result) = self.raw.recv() => {
                    self.on_events(result);
                    // Take whatever else arrived in the same instant before looking.
                    while let Ok(more) = self.raw.try_recv() {
                        self.on_events(more);
                    }
                }
                _ = rescan.tick(), if !once => self.scan_all(),
                _ = finished.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            // Events dropped, or files turned away while the list was full: read the folders.
            if self.raw_overflowed.swap(false, Ordering::Relaxed) | self.settling.take_catch_up() {
                self.scan_all();
            }
            self.beat();
            self.look_again_at_held_files();
            let settled = self.settling.take_settled(Instant::now(), settle_stat);
            for file in settled {
                if let Err(e) = self.take_on(file).await {
                    tracing::error!(error = %e, "inbox");
                }
            }
            if let Err(e) = self.follow_jobs() {
                tracing::error!(error = %e, "inbox");
            }
            if let Err(e) = self.retry_due() {
                tracing::error!(error = %e, "inbox");
            }
            self.publish();
            if once && self.settling.is_empty() && self.waiting_on.is_empty() {
                return;
            }
        }
    }

    /// A complete file: match it and queue it, or set it aside for review.
    async fn take_on(&mut self, file: Settled) -> Result<(), ServiceError> {
        let Some(inbox) = inbox_of(&self.folders, &file.path).cloned() else {
            return Ok(());
        };
        let found = FoundFile {
            inbox: inbox.clone(),
            path: file.path.clone(),
            size: file.size,
            modified_ns: file.modified_ns,
        };
        let room = self.inbox.clone();
        let store = &room.store;
        let account = room.account.clone();
        if store.known(&account, &found)?.is_some() {
            return Ok(()); // handled before (kept after filing, waiting for review, ...)
        }
        match safety::plain_file_inside(&inbox, &file.path) {
            Ok(()) => {}
            Err(NotPlain::Gone(_)) => return Ok(()),
            // A link (or a file in a linked folder) is never read, moved or deleted: it is
            // shown as refused, with why, and left where it is.
            Err(why) => {
                let error = ErrorPayload::new(ErrorCode::InvalidInput, why.to_string());
                store.record_failed(&account, &found, &error, None)?;
                tracing::warn!(file = %file.path.display(), "inbox: {why}");
                return Ok(());
            }
        }
        // Another machine watching the same folder files it (or filed it and kept it).
        let claim = self.claims.claim(&inbox, &found);
        let taken_over = matches!(claim, Claim::TakenOver { .. });
        if let Claim::Theirs { machine } = claim {
            tracing::debug!(file = %file.path.display(), %machine, "inbox: claimed by another machine");
            if self.held_elsewhere.len() < self.settling.limit() {
                let again = Instant::now() + self.claims.lease();
                self.held_elsewhere.insert(file.path.clone(), again);
            }
            return Ok(());
        }
        self.refresh_matcher()?;
        let inside = file
            .path
            .strip_prefix(&inbox)
            .unwrap_or(&file.path)
            .to_owned();
        match self.matcher.match_file(&inside) {
            FileMatch::NeedsFiling { suggestions } => {
                store.record_needs_filing(&account, &found, &suggestions)?;
            }
            FileMatch::Contact {
                contact_id,
                contact_name,
                reason,
            } => {
                match self
                    .inbox
                    .uploads
                    .enqueue_path(&contact_id, &contact_name, &file.path, taken_over)
                    .await?
                {
                    Ok(job_id) => {
                        let item = store.record_uploading(
                            &account,
                            &found,
                            (&contact_id, &contact_name),
                            &reason,
                            job_id,
                        )?;
                        self.waiting_on.entry(job_id).or_default().insert(item.id);
                    }
                    Err(rejection) if rejection.kind == RejectionKind::Vanished => {}
                    // Written to again while being checked: wait for it to settle once more.
                    Err(rejection) if rejection.kind == RejectionKind::Changing => {
                        self.settling.written(&file.path, Instant::now());
                    }
                    Err(rejection) => {
                        // Unreadable may pass (a lock, a permission fixed); a refused type will not.
                        let retry = (rejection.kind == RejectionKind::Unreadable)
                            .then(|| now_ms() + RETRY_FIRST.as_millis() as i64);
                        let error =
                            ErrorPayload::new(ErrorCode::InvalidInput, rejection.message.clone());
                        store.record_failed(&account, &found, &error, retry)?;
                        tracing::info!(file = %file.path.display(), reason = %reason.explain(), "inbox file refused: {}", rejection.message);
                    }
                }
            }
        }
        Ok(())
    }

    fn refresh_matcher(&mut self) -> Result<(), ServiceError> {
        if self.inbox.contacts.generation() != self.matcher_source {
            let (matcher, source) = self.inbox.matcher(&self.settings.rules)?;
            self.matcher = matcher;
            self.matcher_source = source;
        }
        Ok(())
    }

    /// Files whose upload ended: put them away (verified), or mark them failed.
    fn follow_jobs(&mut self) -> Result<(), ServiceError> {
        if self.reloaded_at.elapsed() >= Duration::from_secs(1) {
            self.reloaded_at = Instant::now();
            self.resume_uploading()?;
        }
        let store = &self.inbox.store;
        let queue = self.inbox.uploads.queue();
        let mut ended = Vec::new();
        // Only the jobs that ended are read whole: this runs each time any job ends, and a
        // burst of a thousand files would otherwise read every waiting job each time.
        let waiting: HashSet<i64> = self.waiting_on.keys().copied().collect();
        let unfinished = queue.unfinished_among(&waiting)?;
        for (&job_id, items) in &self.waiting_on {
            if unfinished.contains(&job_id) {
                continue;
            }
            let Some(job) = queue.job(job_id)? else {
                ended.push(job_id);
                for &id in items {
                    store.mark_failed(
                        id,
                        &ErrorPayload::new(
                            ErrorCode::NotFound,
                            "its upload was removed from the queue",
                        ),
                        None,
                    )?;
                }
                continue;
            };
            if !job.state.is_finished() {
                continue;
            }
            ended.push(job_id);
            for &id in items {
                let Some(item) = store.item(id)? else {
                    continue;
                };
                match job.state {
                    JobState::Done => match put_away(&item, &job, self.settings.after) {
                        Ok(PutAway::Done(filed_path)) => {
                            store.mark_filed(id, filed_path.as_deref())?;
                            let claimed = found_of(&item);
                            if self.settings.after == AfterFiling::Keep {
                                self.claims.mark_filed(&item.inbox, &claimed);
                            } else {
                                self.claims.release(&item.inbox, &claimed);
                            }
                        }
                        Ok(PutAway::LeftAlone(why)) => {
                            // The file claimed is no longer there; the one there now is new.
                            self.claims.release(&item.inbox, &found_of(&item));
                            // What was sent is attached; what is there now is another file,
                            // which the inbox takes on as such.
                            tracing::warn!(file = %item.path.display(), "attached, but left in place: {why}");
                            store.mark_filed(id, None)?;
                            self.settling.found(&item.path, Instant::now());
                        }
                        Err(e) => store.mark_failed(
                            id,
                            &ErrorPayload::new(
                                ErrorCode::Io,
                                format!("attached, but could not be put away: {e}"),
                            ),
                            Some(now_ms() + backoff(item.failures).as_millis() as i64),
                        )?,
                    },
                    JobState::Cancelled => store.mark_failed(
                        id,
                        &ErrorPayload::new(ErrorCode::InvalidInput, "its upload was cancelled"),
                        None,
                    )?,
                    // Written again since: the new version is an item of its own, and this
                    // one describes a file that no longer exists.
                    _ if item.path.exists() && !safety::is_the_sent_file(&item.path, &job) => {
                        store.forget(id)?;
                    }
                    _ => {
                        let error = job.error.clone().unwrap_or_else(|| {
                            ErrorPayload::new(ErrorCode::Internal, "upload failed")
                        });
                        let retry = (error.code != ErrorCode::InvalidInput)
                            .then(|| now_ms() + backoff(item.failures).as_millis() as i64);
                        store.mark_failed(id, &error, retry)?
                    }
                }
            }
        }
        for job_id in ended {
            self.waiting_on.remove(&job_id);
        }
        Ok(())
    }

    /// Failed files whose time has come: their upload is retried (or, when they never got one,
    /// they are looked at afresh).
    fn retry_due(&mut self) -> Result<(), ServiceError> {
        let store = &self.inbox.store;
        for item in store.due_retries(&self.inbox.account, now_ms())? {
            self.retry_item(&item)?;
        }
        Ok(())
    }

    fn retry_item(&mut self, item: &InboxItem) -> Result<(), ServiceError> {
        let store = &self.inbox.store;
        // Deleted or moved away by the user meanwhile: nothing left to file.
        if !item.path.exists() {
            store.forget(item.id)?;
            return Ok(());
        }
        match item.job_id {
            Some(job_id) => {
                let job = self.inbox.uploads.queue().job(job_id)?;
                if job
                    .as_ref()
                    .is_some_and(|j| j.state == JobState::Failed || j.state == JobState::Cancelled)
                {
                    self.inbox.uploads.retry(job_id)?;
                }
                store.mark_uploading(item.id)?;
                self.waiting_on.entry(job_id).or_default().insert(item.id);
            }
            None => {
                store.forget(item.id)?;
                self.settling.found(&item.path, Instant::now());
            }
        }
        Ok(())
    }

    /// Sends the rows changed since the last event (a row written in the same millisecond as
    /// the last look may come twice; the panel replaces rows by id) and the settling count
    /// when it moved.
    fn publish(&mut self) {
        let since = self.published_at;
        self.published_at = now_ms();
        let settling = self.settling.len() as u32;
        if self.events.receiver_count() == 0 {
            return;
        }
        let Ok(items) = self
            .inbox
            .store
            .changed_since(&self.inbox.account, since - 1)
        else {
            return;
        };
        if items.is_empty() && settling == self.published_settling {
            return;
        }
        self.published_settling = settling;
        let _ = self.events.send(InboxEvent {
            items,
            settling,
            problems: self.problems.clone(),
        });
    }
}

/// The inbox a path belongs to, unless it is in a `Filed` folder or has an ignored name
/// (hidden, temporary, partial download) anywhere on its way.
fn inbox_of<'a>(folders: &'a [PathBuf], path: &Path) -> Option<&'a PathBuf> {
    let inbox = folders
        .iter()
        .filter(|f| path.starts_with(f))
        .max_by_key(|f| f.as_os_str().len())?;
    let inside = path.strip_prefix(inbox).ok()?;
    let mut parts = inside.components();
    if parts
        .clone()
        .next()
        .is_some_and(|c| c.as_os_str() == FILED_FOLDER)
    {
        return None;
    }
    if parts.any(|c| upload::is_ignored_name(c.as_os_str())) {
        return None;
    }
    Some(inbox)
}

fn take_inbox_lock(path: &Path) -> Result<std::fs::File, ServiceError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServiceError::Invalid(
            "the inbox folders are already being watched by another Attaché (the app or `attache watch`)".into(),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// The file an inbox row was taken on as.
fn found_of(item: &InboxItem) -> FoundFile {
    FoundFile {
        inbox: item.inbox.clone(),
        path: item.path.clone(),
        size: item.size,
        modified_ns: item.modified_ns,
    }
}

fn backoff(failures: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1 << failures.min(10))
        .min(RETRY_MAX)
}

/// Size and time of a candidate as settling watches them: the path's own, so a link's (it is
/// never followed; `take_on` reports it).
fn settle_stat(path: &Path) -> Option<(u64, i64)> {
    attache_core::upload::stat(path).ok()
}

/// What became of a file whose upload was verified.
enum PutAway {
    /// Done as the settings say; where it went when it was moved.
    Done(Option<PathBuf>),
    /// Not touched: it is not (or no longer) the file that was sent, or not one the inbox may
    /// move or delete.
    LeftAlone(String),
}

/// Does what the settings say with a file whose upload `job` verified, once it is sure the file
/// is still exactly the one sent and a plain file inside the watched folder.
fn put_away(item: &InboxItem, job: &UploadJob, after: AfterFiling) -> std::io::Result<PutAway> {
    if after == AfterFiling::Keep {
        return Ok(PutAway::Done(None));
    }
    match safety::plain_file_inside(&item.inbox, &item.path) {
        Ok(()) => {}
        // Moved or deleted already (a crash after the move, before it was recorded) or by the
        // user.
        Err(NotPlain::Gone(_)) => return Ok(PutAway::Done(None)),
        Err(why) => return Ok(PutAway::LeftAlone(why.to_string())),
    }
    if !safety::is_the_sent_file(&item.path, job) {
        return Ok(PutAway::LeftAlone(format!(
            "{} changed after it was sent",
            item.file_name
        )));
    }
    match after {
        AfterFiling::Keep => Ok(PutAway::Done(None)),
        AfterFiling::Delete => match std::fs::remove_file(&item.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(PutAway::Done(None)),
        },
        AfterFiling::Move => {
            let folder = item.inbox.join(FILED_FOLDER).join(contact_folder_name(
                item.contact_name.as_deref().unwrap_or_default(),
                item.contact_id.as_deref().unwrap_or("contact"),
            ));
            std::fs::create_dir_all(&folder)?;
            let target = free_name(&folder, &item.file_name);
            std::fs::rename(&item.path, &target)?;
            Ok(PutAway::Done(Some(target)))
        }
    }
}

/// `name`, or `name (2).ext`, `name (3).ext`... whichever is not taken in `folder`.
fn free_name(folder: &Path, name: &str) -> PathBuf {
    let first = folder.join(name);
    if !first.exists() {
        return first;
    }
    let path = Path::new(name);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (2..)
        .map(|n| folder.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .expect("an unused name")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inbox file in `inbox/Ana Silva/` and the job that sent it, as recorded then.
    fn sent(inbox: &Path, name: &str, bytes: &[u8]) -> (InboxItem, UploadJob) {
        let folder = inbox.join("Ana Silva");
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (size, modified_ns) = attache_core::upload::stat(&path).unwrap();
        let item = InboxItem {
            id: 1,
            account: "demo".into(),
            inbox: inbox.to_path_buf(),
            path: path.clone(),
            file_name: name.into(),
            size,
            modified_ns,
            state: InboxState::Uploading,
            contact_id: Some("c-ana".into()),
            contact_name: Some("Ana Silva".into()),
            reason: None,
            reason_text: None,
            suggestions: vec![],
            job_id: Some(7),
            filed_path: None,
            error: None,
            failures: 0,
            retry_at: None,
            updated_at: 0,
        };
        let job = UploadJob {
            id: 7,
            account: "demo".into(),
            contact_id: "c-ana".into(),
            contact_name: "Ana Silva".into(),
            path: path.clone(),
            file_name: name.into(),
            mime_type: "application/pdf".into(),
            size,
            modified_ns,
            content_hash: crate::uploads::hash_file(&path).unwrap(),
            state: JobState::Done,
            baseline: Some(vec![]),
            attachment_id: Some("att-1".into()),
            attempts: 1,
            error: None,
            forced: false,
            created_at: 0,
            updated_at: 0,
            target: None,
            as_document: false,
        };
        (item, job)
    }

    #[test]
    fn only_the_verified_file_itself_is_moved_or_deleted() {
        for after in [AfterFiling::Move, AfterFiling::Delete, AfterFiling::Keep] {
            let root = tempfile::tempdir().unwrap();
            let inbox = root.path().join("Inbox");

            // The file as sent: put away as the settings say.
            let (item, job) = sent(&inbox, "offer.pdf", b"%PDF-1.4 offer");
            let done = put_away(&item, &job, after).unwrap();
            match after {
                AfterFiling::Move => {
                    let moved = inbox.join("Filed/Ana Silva/offer.pdf");
                    assert!(matches!(done, PutAway::Done(Some(ref p)) if *p == moved));
                    assert_eq!(std::fs::read(&moved).unwrap(), b"%PDF-1.4 offer");
                    assert!(!item.path.exists());
                }
                AfterFiling::Delete => {
                    assert!(matches!(done, PutAway::Done(None)));
                    assert!(!item.path.exists());
                }
                AfterFiling::Keep => {
                    assert!(matches!(done, PutAway::Done(None)));
                    assert_eq!(std::fs::read(&item.path).unwrap(), b"%PDF-1.4 offer");
                }
            }

            // Overwritten by the scanner after the upload (same size, new bytes): left alone.
            let (item, job) = sent(&inbox, "scan.pdf", b"%PDF-1.4 first");
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(&item.path, b"%PDF-1.4 other").unwrap();
            let kept = put_away(&item, &job, after).unwrap();
            if after != AfterFiling::Keep {
                assert!(
                    matches!(kept, PutAway::LeftAlone(ref why) if why.contains("changed")),
                    "{after:?}"
                );
            }
            assert_eq!(
                std::fs::read(&item.path).unwrap(),
                b"%PDF-1.4 other",
                "{after:?}"
            );

            // Replaced by a link to someone's file: neither the link nor its target moves.
            let (item, job) = sent(&inbox, "key.pdf", b"%PDF-1.4 key");
            let secret = root.path().join("id_rsa");
            std::fs::write(&secret, b"%PDF-1.4 key").unwrap();
            std::fs::remove_file(&item.path).unwrap();
            std::os::unix::fs::symlink(&secret, &item.path).unwrap();
            let kept = put_away(&item, &job, after).unwrap();
            if after != AfterFiling::Keep {
                assert!(
                    matches!(kept, PutAway::LeftAlone(ref why) if why.contains("is a link")),
                    "{after:?}"
                );
            }
            assert!(std::fs::symlink_metadata(&item.path)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(std::fs::read(&secret).unwrap(), b"%PDF-1.4 key");
        }
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_octal(r"/mnt/My\040Share"), "/mnt/My Share");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
    }

    #[test]
    fn taken_names_get_a_number() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "a.pdf"), dir.path().join("a.pdf"));
        std::fs::write(dir.path().join("a.pdf"), "x").unwrap();
        std::fs::write(dir.path().join("a (2).pdf"), "x").unwrap();
        assert_eq!(free_name(dir.path(), "a.pdf"), dir.path().join("a (3).pdf"));
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), RETRY_FIRST);
        assert_eq!(backoff(1), RETRY_FIRST * 2);
        assert_eq!(backoff(30), RETRY_MAX);
    }
}
