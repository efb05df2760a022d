//! The upload engine the window, the CLI and the inbox share. It runs the durable queue
//! ([`UploadQueue`]) against the current account's [`CrmBackend`]:
//!
//! - bounded concurrency (default 3 transfers at once; a job whose bytes are sent gives its
//!   slot to the next while it waits to see its attachment listed), never two jobs with the
//!   same name for the same contact at once (their attachments could not be told apart);
//! - before the first byte of a job leaves, the contact's same-named attachments are recorded
//!   (the baseline) and the job is marked `sending`; any later attempt, or a restart after a
//!   crash, first looks for an attachment beyond that baseline, so a job is never sent twice
//!   (one of another size, where the CRM tells sizes, is someone else's and does not count);
//! - after the CRM accepts the bytes, the attachment must appear in the contact's list (polled
//!   with a deadline) before the job is `done`;
//! - transient failures are retried with exponential backoff and full jitter, honouring
//!   `Retry-After`; a file that changed is re-read and sent as it now is;
//! - one process at a time runs the queue (an OS file lock, released by the kernel even on
//!   SIGKILL); others only add jobs and watch them.
//!
//! Progress reaches the front ends as [`UploadEvent`]s, at most five a second.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attache_core::normalize::file_name_key;
use attache_core::retry::RetryPolicy;
use attache_core::upload::{
    stat, BatchSummary, InspectedFile, JobState, Progress, UploadEvent, UploadJob, UploadSource,
    UploadView,
};
use attache_core::{Attachment, BackendError, CrmBackend, ErrorCode, ErrorPayload, SendError};
use tokio::sync::{broadcast, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::inspect::inspect;
use super::queue::{now_ms, UploadQueue};
use crate::StoreError;

/// Attempts per job before it is marked failed (the user can retry it); with [`JOB_RETRY`]'s
/// pauses that is several minutes of patience for a flaky connection.
const MAX_ATTEMPTS: u32 = 10;
/// The pauses between a job's attempts: full jitter up to 1 s × 2^(attempt-1), at most 30 s.
/// The job loop itself stays in [`Inner::run_job`] rather than in
/// [`attache_core::retry::retrying`]: besides retrying it re-reads a file that changed and gives
/// its transfer slot up while it waits, which a generic loop cannot see.
const JOB_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: MAX_ATTEMPTS,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
};
/// How long an accepted upload may take to appear in the contact's list.
const VERIFY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a spent upload target is given to show an earlier send's attachment.
const TARGET_GONE_GRACE: Duration = Duration::from_secs(3);
/// How old a contact listing may be to serve as a job's baseline.
const BASELINE_FRESHNESS: Duration = Duration::from_secs(30);
/// How often the tray hears about progress.
const EVENT_INTERVAL: Duration = Duration::from_millis(200);
/// A queue run by another process is looked at this often.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Jobs that may wait for their attachment to be listed on top of the transfers: a CRM slow to
/// list new attachments then holds back the queue only when this many are waiting.
const VERIFYING_AT_MOST: usize = 32;

pub struct UploadEngine {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Inner {
    queue: Arc<UploadQueue>,
    backend: Arc<dyn CrmBackend>,
    account: String,
    concurrency: usize,
    /// One permit per transfer allowed at once (`concurrency` of them).
    transfers: Arc<Semaphore>,
    lock_path: PathBuf,
    /// Held while this process runs the queue.
    runner: Mutex<Option<std::fs::File>>,
    active: Mutex<HashMap<i64, Active>>,
    wake: Notify,
    /// Wakes the tray's publisher when it idles (see [`Inner::publish`]).
    news: Notify,
    events: broadcast::Sender<UploadEvent>,
    /// Per contact: the last full listing and when its fetch started (see [`Inner::listing`]).
    listings: SharedReads,
    /// Per contact: the last look at its newest attachments (see [`Inner::find_landed`]).
    recents: SharedReads,
    /// Bumped whenever a job of this process ends, so waiters need not wait for the next event.
    finished: tokio::sync::watch::Sender<u64>,
    /// Paused by the user (the tray): no job starts, none is in flight.
    paused: std::sync::atomic::AtomicBool,
}

struct Active {
    progress: Arc<Progress>,
    task: tokio::task::AbortHandle,
    same_name_key: (String, String),
}

impl UploadEngine {
    pub fn new(
        queue: Arc<UploadQueue>,
        backend: Arc<dyn CrmBackend>,
        account: &str,
        lock_path: PathBuf,
        concurrency: usize,
    ) -> Self {
        let (events, _) = broadcast::channel(64);
        UploadEngine {
            inner: Arc::new(Inner {
                queue,
                backend,
                account: account.to_owned(),
                concurrency: concurrency.max(1),
                transfers: Arc::new(Semaphore::new(concurrency.max(1))),
                lock_path,
                runner: Mutex::new(None),
                active: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                news: Notify::new(),
                events,
                listings: SharedReads::default(),
                recents: SharedReads::default(),
                finished: tokio::sync::watch::channel(0).0,
                paused: Default::default(),
            }),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts running the queue (pending jobs resume) and publishing events. Idempotent.
    pub fn start(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if !tasks.is_empty() {
            return;
        }
        tasks.push(tokio::spawn(self.inner.clone().run()));
        tasks.push(tokio::spawn(self.inner.clone().publish()));
    }

    /// Changes whenever a job run by this process ends (done, failed or cancelled).
    pub fn finished_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.finished.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UploadEvent> {
        self.inner.events.subscribe()
    }

    /// New jobs are in the queue: look now rather than at the next tick.
    pub fn poke(&self) {
        self.inner.wake.notify_one();
        self.inner.news.notify_one();
    }

    /// Pauses or resumes every upload of this engine. Pausing stops the jobs in flight where
    /// they are, as quitting would (the queue already survives that at any instant): each
    /// resumes on Resume, looking first for what it had sent, so nothing is sent twice.
    pub fn set_paused(&self, paused: bool) {
        use std::sync::atomic::Ordering;
        if self.inner.paused.swap(paused, Ordering::SeqCst) == paused {
            return;
        }
        if paused {
            self.inner.stop_in_flight();
        }
        tracing::info!(paused, "uploads");
        self.poke();
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether this process holds the queue (another `attache` or the app may).
    pub fn is_runner(&self) -> bool {
        self.inner
            .runner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Cancels a job; one in flight is stopped where it is (its bytes, if any reached the CRM,
    /// stay there; "Retry" would find them rather than send again).
    pub fn cancel(&self, id: i64) -> Result<bool, StoreError> {
        let cancelled = self.inner.queue.cancel(id)?;
        if let Some(active) = self
            .inner
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
        {
            active.task.abort();
        }
        self.inner.finished.send_modify(|n| *n += 1);
        self.poke();
        Ok(cancelled)
    }

    pub fn retry(&self, id: i64) -> Result<bool, StoreError> {
        let retried = self.inner.queue.retry(id)?;
        self.poke();
        Ok(retried)
    }

    /// Waits until every job in `ids` is finished (done, failed or cancelled), whichever
    /// process runs them; returns them as they ended.
    pub async fn wait_for(&self, ids: &[i64]) -> Result<Vec<UploadJob>, StoreError> {
        let mut finished = self.inner.finished.subscribe();
        // Only the states are read while waiting (one query, not one per job: a batch of a
        // thousand would otherwise read a million rows by its end); the jobs once at the end.
        let mut unfinished: HashSet<i64> = ids.iter().copied().collect();
        loop {
            unfinished = self.inner.queue.unfinished_among(&unfinished)?;
            if unfinished.is_empty() {
                let jobs: Vec<UploadJob> = ids
                    .iter()
                    .filter_map(|id| self.inner.queue.job(*id).transpose())
                    .collect::<Result<_, _>>()?;
                // One finished and then retried (from the tray, or the inbox's own retries)
                // is waited for again.
                unfinished = jobs
                    .iter()
                    .filter(|j| !j.state.is_finished())
                    .map(|j| j.id)
                    .collect();
                if unfinished.is_empty() {
                    return Ok(jobs);
                }
            }
            // Jobs this process runs say when they end; another process's are polled.
            tokio::select! {
                _ = finished.changed() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
}

impl Drop for UploadEngine {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        self.inner.stop_in_flight();
    }
}

impl Inner {
    /// Stops every job in flight where it is (a quit, a pause); each resumes, looking first for
    /// what it had sent, the next time the queue runs. Under the `active` lock, as in `finish`:
    /// a job ending now either wrote its outcome already or finds itself gone and writes none.
    fn stop_in_flight(&self) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        for (_, job) in active.drain() {
            job.task.abort();
        }
    }

    fn try_become_runner(&self) -> bool {
        let mut runner = self.runner.lock().unwrap_or_else(|p| p.into_inner());
        if runner.is_some() {
            return true;
        }
        let file = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the upload queue lock");
                return false;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                *runner = Some(file);
                true
            }
            Err(_) => false,
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            if self.try_become_runner() {
                if let Err(e) = self.schedule() {
                    tracing::error!(error = %e, "upload queue unreadable");
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }

    fn try_transfer_slot(self: &Arc<Self>) -> Option<TransferSlot> {
        let permit = self.transfers.clone().try_acquire_owned().ok()?;
        Some(TransferSlot {
            _permit: permit,
            engine: Arc::downgrade(self),
        })
    }

    async fn transfer_slot(self: &Arc<Self>) -> TransferSlot {
        let permit = self.transfers.clone().acquire_owned().await;
        TransferSlot {
            _permit: permit.expect("the transfer semaphore is never closed"),
            engine: Arc::downgrade(self),
        }
    }

    /// Starts as many pending jobs as there are free transfer slots.
    fn schedule(self: &Arc<Self>) -> Result<(), StoreError> {
        if self.paused.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        // Read under the `active` lock: a job that ends writes its outcome under that lock too,
        // so a job seen pending here and not active has really not started (or ended). Reading
        // first would let a job that ended meanwhile start again (a cancel undone).
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        // Enough to fill every slot even when some waiting jobs share a name with running ones.
        let pending = self
            .queue
            .pending_first(&self.account, 2 * self.concurrency + VERIFYING_AT_MOST + 64)?;
        let mut busy: HashSet<(String, String)> =
            active.values().map(|a| a.same_name_key.clone()).collect();
        for job in pending {
            if active.len() >= self.concurrency + VERIFYING_AT_MOST {
                break;
            }
            // Two files whose names a CRM could store alike go one after the other.
            let key = (job.contact_id.clone(), file_name_key(&job.file_name));
            if active.contains_key(&job.id) || busy.contains(&key) {
                continue;
            }
            let Some(slot) = self.try_transfer_slot() else {
                break;
            };
            busy.insert(key.clone());
            let progress = Arc::new(Progress::default());
            let id = job.id;
            let me = self.clone();
            let task_progress = progress.clone();
            let task = tokio::spawn(async move {
                let outcome = me.run_job(job, task_progress, slot).await;
                me.finish(id, outcome);
            });
            active.insert(
                id,
                Active {
                    progress,
                    task: task.abort_handle(),
                    same_name_key: key,
                },
            );
        }
        Ok(())
    }

    fn finish(&self, id: i64, outcome: Result<String, ErrorPayload>) {
        // The outcome is written before the job leaves `active`, under its lock: otherwise the
        // scheduler could see the job still pending, not active, and start it a second time.
        // A job cancelled meanwhile is no longer in `active` and stays cancelled.
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active.contains_key(&id) {
            let written = match &outcome {
                Ok(attachment_id) => self.queue.mark_done(id, attachment_id),
                Err(e) => {
                    tracing::warn!(job = id, code = ?e.code, "upload failed: {}", e.message);
                    self.queue.mark_failed(id, e)
                }
            };
            if let Err(e) = written {
                tracing::error!(job = id, error = %e, "could not record the upload's outcome");
            }
            active.remove(&id);
        }
        drop(active);
        self.finished.send_modify(|n| *n += 1);
        self.wake.notify_one();
    }

    async fn run_job(
        self: &Arc<Self>,
        mut job: UploadJob,
        progress: Arc<Progress>,
        slot: TransferSlot,
    ) -> Result<String, ErrorPayload> {
        let mut slot = Some(slot);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.attempt(&mut job, &progress, &mut slot).await {
                Ok(id) => return Ok(id),
                Err(e) if progress.file_changed() && attempt < MAX_ATTEMPTS * 2 => {
                    tracing::info!(job = job.id, "{}; sending it as it is now", e.message);
                }
                Err(e) if e.code.is_transient() && attempt < MAX_ATTEMPTS => {
                    // The server's Retry-After is honoured in full here (a job can wait; a
                    // call cannot), else the shared policy's pause.
                    let wait = e
                        .retry_after
                        .unwrap_or_else(|| JOB_RETRY.delay(attempt, None));
                    // Others may transfer while this one waits out its backoff.
                    slot.take();
                    tracing::info!(
                        job = job.id,
                        attempt,
                        ?wait,
                        "transient upload failure: {}",
                        e.message
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One try: look for an earlier attempt's attachment, check the file, send (to the same
    /// single-use target as any earlier attempt), verify. A transfer slot is held until the
    /// bytes are sent (taken again by a try after one that had given it up).
    async fn attempt(
        self: &Arc<Self>,
        job: &mut UploadJob,
        progress: &Arc<Progress>,
        slot: &mut Option<TransferSlot>,
    ) -> Result<String, BackendError> {
        if slot.is_none() {
            *slot = Some(self.transfer_slot().await);
        }
        if let Some(baseline) = job.baseline.clone() {
            if let Some(id) = self
                .find_landed(job, &baseline, Look::Everything, Instant::now())
                .await?
            {
                tracing::info!(job = job.id, attachment = %id, "an earlier attempt had landed; not sending again");
                return Ok(id);
            }
        }
        self.ensure_unchanged(job).await?;
        let source = UploadSource {
            path: job.path.clone(),
            file_name: job.file_name.clone(),
            mime_type: job.mime_type.clone(),
            size: job.size,
            modified_ns: job.modified_ns,
            content_hash: job.content_hash.clone(),
            progress: progress.clone(),
        };
        let baseline = match job.baseline.clone() {
            Some(b) => b,
            None => {
                // A recent reading will do: what it misses that our own jobs added since is
                // theirs (claimed), and only a same-named upload by someone else in those few
                // seconds could be mistaken for ours.
                let not_before = Instant::now()
                    .checked_sub(BASELINE_FRESHNESS)
                    .unwrap_or_else(Instant::now);
                let listed = self.listing(&job.contact_id, not_before).await?;
                listed
                    .iter()
                    .filter(|a| same_name(&a.file_name, &job.file_name))
                    .map(|a| a.id.clone())
                    .collect()
            }
        };
        let target = match job.target.clone() {
            Some(t) => t,
            None if job.as_document => {
                self.backend
                    .prepare_document_upload(&job.contact_id, &source)
                    .await?
            }
            None => {
                self.backend
                    .prepare_upload(&job.contact_id, &source)
                    .await?
            }
        };
        // Written before the first byte leaves: from here on a restart looks before it sends.
        let wanted = self
            .queue
            .begin_sending(job.id, &baseline, &target)
            .map_err(store_error)?;
        if !wanted {
            // Cancelled while it was being prepared (its task is being stopped).
            return Err(BackendError::new(
                ErrorCode::InvalidInput,
                format!("{} was cancelled", job.file_name),
            ));
        }
        job.baseline = Some(baseline);
        job.target = Some(target.clone());
        match self.backend.send_upload(&target, &source).await {
            Ok(()) => {}
            Err(SendError::Failed(e)) => return Err(e),
            Err(SendError::Discarded(mut e)) => {
                self.queue.drop_target(job.id).map_err(store_error)?;
                job.target = None;
                e.code = ErrorCode::Unavailable;
                return Err(e);
            }
            Err(SendError::TargetGone(e)) => {
                // Used up or expired. If an earlier send used it, its attachment is (or is about
                // to be) there: give it a moment before preparing a new target.
                if let Some(id) = self.await_landed(job, TARGET_GONE_GRACE).await? {
                    return Ok(id);
                }
                self.queue.drop_target(job.id).map_err(store_error)?;
                job.target = None;
                let mut e = e;
                e.code = ErrorCode::Unavailable;
                return Err(e);
            }
        }
        self.queue.mark_verifying(job.id).map_err(store_error)?;
        // The bytes are sent: the next job may transfer while this one looks for its attachment.
        slot.take();
        match self.await_landed(job, VERIFY_DEADLINE).await? {
            Some(id) => Ok(id),
            None => Err(BackendError::new(
                ErrorCode::Unavailable,
                format!(
                    "{} accepted {} but it has not appeared on {} yet; a retry looks for it before sending again",
                    self.backend.crm_name(),
                    job.file_name,
                    job.contact_name
                ),
            )),
        }
    }

    /// Polls the contact's newest attachments until the job's shows up or `within` passes; the
    /// last look before giving up reads the whole list.
    async fn await_landed(
        &self,
        job: &UploadJob,
        within: Duration,
    ) -> Result<Option<String>, BackendError> {
        let baseline = job.baseline.clone().unwrap_or_default();
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(100);
        // Any look that starts from now on may serve (the bytes were accepted before it).
        let mut since = Instant::now();
        loop {
            let last = Instant::now() + pause > deadline;
            let look = if last { Look::Everything } else { Look::Newest };
            if let Some(id) = self.find_landed(job, &baseline, look, since).await? {
                return Ok(Some(id));
            }
            if last {
                return Ok(None);
            }
            // That look missed it: only a later one can tell more.
            since = Instant::now();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        }
    }

    /// The attachment this job created, if one exists (see [`Inner::first_ours`]); looked for in
    /// reads that started no earlier than `since`.
    async fn find_landed(
        &self,
        job: &UploadJob,
        baseline: &[String],
        look: Look,
        since: Instant,
    ) -> Result<Option<String>, BackendError> {
        let claimed = self
            .queue
            .claimed_attachments(&job.account, &job.contact_id, job.id)
            .map_err(store_error)?;
        let newest = self
            .recents
            .read(&job.contact_id, since, || {
                self.backend.recent_attachments(&job.contact_id)
            })
            .await?;
        if let Some(id) = self.first_ours(job, baseline, &claimed, &newest).await {
            return Ok(Some(id));
        }
        if look == Look::Newest {
            return Ok(None);
        }
        let listed = self.listing(&job.contact_id, since).await?;
        Ok(self.first_ours(job, baseline, &claimed, &listed).await)
    }

    /// The first listed attachment that can be this job's: same name, new since the job's
    /// baseline, owned by no other job, and of the job's size wherever the CRM tells the size
    /// (in its listing, or asked for: a same-named file someone else attached meanwhile must
    /// not complete this job unsent). A size the CRM cannot tell is taken on trust.
    async fn first_ours(
        &self,
        job: &UploadJob,
        baseline: &[String],
        claimed: &HashSet<String>,
        listed: &[Attachment],
    ) -> Option<String> {
        let candidates = listed.iter().filter(|a| {
            same_name(&a.file_name, &job.file_name)
                && !baseline.contains(&a.id)
                && !claimed.contains(&a.id)
        });
        for a in candidates {
            let size = match a.size_bytes {
                Some(size) => Some(size),
                None => match self.backend.file_size(a).await {
                    Ok(size) => size,
                    Err(e) => {
                        // Not known now is not "cannot be known": a later look decides.
                        tracing::info!(job = job.id, attachment = %a.id, "size not read ({}); looked at again later", e.message);
                        continue;
                    }
                },
            };
            match size {
                Some(size) if size != job.size => {
                    tracing::info!(
                        job = job.id,
                        attachment = %a.id,
                        size,
                        expected = job.size,
                        "a same-named attachment of another size is not this job's"
                    );
                }
                _ => return Some(a.id.clone()),
            }
        }
        None
    }

    /// The contact's whole list, as read by a fetch that started no earlier than `not_before`
    /// (a contact with thousands of attachments costs one call per hundred).
    async fn listing(
        &self,
        contact_id: &str,
        not_before: Instant,
    ) -> Result<Arc<Vec<Attachment>>, BackendError> {
        self.listings
            .read(contact_id, not_before, || {
                self.backend.list_attachments(contact_id)
            })
            .await
    }

    /// Re-reads the file when its size or time changed since it was queued: the job then
    /// carries the new content (or fails plainly when the file is gone or no longer valid).
    async fn ensure_unchanged(&self, job: &mut UploadJob) -> Result<(), BackendError> {
        let path = job.path.clone();
        match tokio::task::spawn_blocking({
            let path = path.clone();
            move || stat(&path)
        })
        .await
        {
            Ok(Ok((size, modified))) if size == job.size && modified == job.modified_ns => {
                return Ok(())
            }
            _ => {}
        }
        let backend = self.backend.clone();
        let inspected: Result<InspectedFile, _> =
            tokio::task::spawn_blocking(move || inspect(&path, &*backend))
                .await
                .map_err(|e| {
                    BackendError::new(ErrorCode::Internal, format!("file check stopped: {e}"))
                })?;
        let file = inspected.map_err(|r| BackendError::new(ErrorCode::InvalidInput, r.message))?;
        let changed = file.content_hash != job.content_hash;
        if changed && self.queue.is_pinned(job.id).map_err(store_error)? {
            return Err(BackendError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{} was written again after it was queued; the new version is filed on its own",
                    job.file_name
                ),
            ));
        }
        if changed {
            tracing::info!(
                job = job.id,
                "{} changed since it was queued; sending the new content",
                job.file_name
            );
        }
        self.queue
            .update_content(job.id, &file)
            .map_err(store_error)?;
        if changed {
            // What earlier attempts sent was other content: its attachment, landed or landing,
            // is not this content's, and its target is spent. A fresh baseline and target.
            job.baseline = None;
            job.target = None;
        }
        job.size = file.size;
        job.modified_ns = file.modified_ns;
        job.content_hash = file.content_hash;
        job.mime_type = file.mime_type;
        Ok(())
    }

    /// Sends the tray what changed, throttled; progress of running jobs included.
    async fn publish(self: Arc<Self>) {
        let mut last_sent: HashMap<i64, UploadView> = HashMap::new();
        let mut speed: HashMap<i64, (Instant, u64, f64)> = HashMap::new();
        // Jobs that moved since the batch began, with their latest state: the summary's source.
        let mut batch: HashMap<i64, JobState> = HashMap::new();
        let began = now_ms();
        // Rows written just before a query may commit just after it: look back a little and
        // let the comparison with what was last sent drop repeats.
        let mut since = began - 2_000;
        let mut was_paused = false;
        let mut tick = tokio::time::interval(EVENT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // With nothing to report, the queue is looked at once a second (another process may
        // add jobs) or when this one adds some, not five times a second for hours.
        let mut idle = false;
        loop {
            if idle {
                tokio::select! {
                    _ = self.news.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            } else {
                tick.tick().await;
            }
            let started = now_ms();
            let changed = match self.queue.changed_since(&self.account, since) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "upload queue unreadable");
                    continue;
                }
            };
            since = started - 2_000;
            let progress: HashMap<i64, Arc<Progress>> = self
                .active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(id, a)| (*id, a.progress.clone()))
                .collect();
            let mut views: HashMap<i64, UploadView> =
                changed.iter().map(|j| (j.id, UploadView::of(j))).collect();
            for id in progress.keys() {
                if let Some(v) = last_sent.get(id) {
                    views.entry(*id).or_insert_with(|| v.clone());
                }
            }
            let now = Instant::now();
            for (id, view) in views.iter_mut() {
                if let (Some(p), JobState::Sending) = (progress.get(id), view.state) {
                    view.sent = p.sent().min(view.size);
                    let (at, before, rate) = speed.entry(*id).or_insert((now, view.sent, 0.0));
                    let dt = now.duration_since(*at).as_secs_f64();
                    if dt > 0.0 {
                        let instant = view.sent.saturating_sub(*before) as f64 / dt;
                        *rate = if *rate == 0.0 {
                            instant
                        } else {
                            0.7 * *rate + 0.3 * instant
                        };
                        *at = now;
                        *before = view.sent;
                    }
                    if *rate > 0.0 {
                        view.bytes_per_second = Some(*rate as u64);
                        view.seconds_left = Some(
                            (view.size.saturating_sub(view.sent) as f64 / *rate).ceil() as u64,
                        );
                    }
                } else {
                    speed.remove(id);
                }
            }
            let fresh: Vec<UploadView> = views
                .into_values()
                .filter(|v| last_sent.get(&v.id) != Some(v))
                .collect();
            let paused = self.paused.load(std::sync::atomic::Ordering::SeqCst);
            // Paused, the jobs stopped mid-send wait too.
            let waiting = if paused {
                self.queue.unfinished_count(&self.account)
            } else {
                self.queue.waiting(&self.account)
            }
            .unwrap_or(0);
            let active = progress.len() as u32;
            let busy = active > 0 || waiting > 0;
            // Only what moved while this engine ran belongs to a batch (not old rows seen at
            // start), and only news: the look-back re-reads rows already counted, which would
            // otherwise start a new batch of already-finished jobs (the summary said again, a
            // notification per tick).
            let news: HashSet<i64> = fresh.iter().map(|v| v.id).collect();
            for job in changed
                .iter()
                .filter(|j| j.updated_at >= began && news.contains(&j.id))
            {
                batch.insert(job.id, job.state);
            }
            // A batch ends when nothing is left to do; jobs fast enough to start and finish
            // between two ticks count too.
            let finished_batch = if !busy && batch.values().any(|s| s.is_finished()) {
                let mut summary = BatchSummary::default();
                for state in batch.drain().map(|(_, s)| s) {
                    match state {
                        JobState::Done => summary.attached += 1,
                        JobState::Failed => summary.failed += 1,
                        JobState::Cancelled => summary.cancelled += 1,
                        _ => {}
                    }
                }
                Some(summary)
            } else {
                None
            };
            idle = !busy && batch.is_empty();
            if fresh.is_empty() && finished_batch.is_none() && paused == was_paused {
                continue;
            }
            was_paused = paused;
            for v in &fresh {
                last_sent.insert(v.id, v.clone());
            }
            let mut jobs = fresh;
            jobs.sort_by_key(|v| v.id);
            // Nobody listening is fine: the queue is the record, events are only news.
            let _ = self.events.send(UploadEvent {
                jobs,
                active,
                waiting,
                finished_batch,
                paused,
            });
        }
    }
}

/// The right to transfer (one of `concurrency`). Giving it up, however that happens (the bytes
/// sent, a backoff, a cancelled task), wakes the scheduler so the next job starts at once.
struct TransferSlot {
    _permit: OwnedSemaphorePermit,
    engine: std::sync::Weak<Inner>,
}

impl Drop for TransferSlot {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.wake.notify_one();
        }
    }
}

/// Attachments read from a contact's list and when the fetch that read them started.
type Listing = (Instant, Arc<Vec<Attachment>>);

/// Per contact, the latest read of one kind. Jobs asking at about the same time share one
/// fetch: a job may use any read that started after the moment it names (e.g. once its bytes
/// were accepted), so a dozen jobs verifying on one contact cost one call, not a dozen
/// (Wix allows 200 calls a minute per site).
#[derive(Default)]
struct SharedReads(Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Listing>>>>>);

impl SharedReads {
    async fn read<F, Fut>(
        &self,
        contact_id: &str,
        not_before: Instant,
        fetch: F,
    ) -> Result<Arc<Vec<Attachment>>, BackendError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Attachment>, BackendError>>,
    {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(contact_id.to_owned())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some((started, items)) = slot.as_ref() {
            if *started >= not_before {
                return Ok(items.clone());
            }
        }
        let started = Instant::now();
        let items = Arc::new(fetch().await?);
        *slot = Some((started, items.clone()));
        Ok(items)
    }
}

/// How hard [`Inner::find_landed`] looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    /// The CRM's cheap view of the newest attachments.
    Newest,
    /// That, then the whole list.
    Everything,
}

/// Whether a listed attachment's name can be the file queued under `queued`: the same name
/// up to what CRMs do to names they store (case, Unicode normalisation, accents, characters
/// they replace or drop; see [`file_name_key`]). The size check and the baseline keep a foreign
/// file from passing for ours.
fn same_name(listed: &str, queued: &str) -> bool {
    listed == queued || file_name_key(listed) == file_name_key(queued)
}

fn store_error(e: StoreError) -> BackendError {
    BackendError::new(ErrorCode::Storage, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_crm_tidied_are_still_the_same_name() {
        for (sent, stored) in [
            ("Cafe\u{301} offer.pdf", "Caf\u{e9} offer.pdf"),
            ("Deed #4: plan.pdf", "Deed _4_ plan.pdf"),
            ("Scan.PDF", "scan.pdf"),
            ("Résumé.pdf", "Resume.pdf"),
            ("Договор.pdf", "Dogovor.pdf"),
            ("★.pdf", "★.pdf"),
        ] {
            assert!(same_name(stored, sent), "{sent:?} stored as {stored:?}");
        }
        for (a, b) in [("Scan 1.pdf", "Scan 2.pdf"), ("Offer.pdf", "Offer.png")] {
            assert!(!same_name(a, b), "{a:?} vs {b:?}");
        }
    }
}
