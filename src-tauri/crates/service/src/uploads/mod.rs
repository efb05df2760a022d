//! The uploads room: files checked before anything touches the network (`inspect`), the
//! one-click conversion of images a CRM refuses (`convert`), the durable SQLite queue (`queue`)
//! and the engine that sends, verifies and retries (`engine`). [`Uploads`] is what the window,
//! the CLI and the inbox call.

mod convert;
mod engine;
mod inspect;
mod queue;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use attache_core::upload::{
    QueueReport, Rejection, RejectionKind, UploadEvent, UploadJob, UploadView,
};
use attache_core::{AppHome, Contact, CrmBackend};
use tokio::sync::broadcast;

pub use convert::{convert_image, ConvertError};
pub use engine::UploadEngine;
pub use inspect::{
    describe_mime, display_name, expand, hash_file, human_size, inspect, is_ignored_name,
};
pub use queue::{now_ms, Enqueued, ResumableKey, UploadQueue};

use crate::{ServiceError, StoreError};

/// Transfers at once unless `ATTACHE_UPLOADS_IN_FLIGHT` says otherwise.
const DEFAULT_TRANSFERS: usize = 3;

pub struct Uploads {
    account: String,
    backend: Arc<dyn CrmBackend>,
    queue: Arc<UploadQueue>,
    engine: UploadEngine,
    /// Where one-click conversions are written before they are queued.
    converted_dir: PathBuf,
}

impl Uploads {
    pub fn open(
        home: &AppHome,
        account: &str,
        backend: Arc<dyn CrmBackend>,
    ) -> Result<Self, ServiceError> {
        let queue = Arc::new(UploadQueue::open(&home.queue_db())?);
        let transfers = std::env::var("ATTACHE_UPLOADS_IN_FLIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_TRANSFERS);
        let engine = UploadEngine::new(
            queue.clone(),
            backend.clone(),
            account,
            home.queue_lock(),
            transfers,
        );
        Ok(Self {
            account: account.to_owned(),
            backend,
            queue,
            engine,
            converted_dir: home.converted_dir().join(crate::safe_file_name(account)),
        })
    }

    /// The durable queue (the Media Manager keeps its resumable sessions there too).
    pub fn queue(&self) -> &Arc<UploadQueue> {
        &self.queue
    }

    /// Starts running the queue (pending jobs resume) and publishing events. Idempotent.
    pub fn start(&self) {
        self.engine.start()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UploadEvent> {
        self.engine.subscribe()
    }

    /// Changes whenever a job run by this process ends (done, failed or cancelled).
    pub fn finished_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.engine.finished_signal()
    }

    /// Pauses or resumes every upload of this account: paused, no job starts and the jobs in
    /// flight stop where they are (each resumes on Resume, looking first for what it had
    /// sent, so nothing is sent twice). Not saved: see `Background::pause_uploads`.
    pub fn set_paused(&self, paused: bool) {
        self.engine.set_paused(paused)
    }

    pub fn is_paused(&self) -> bool {
        self.engine.is_paused()
    }

    /// Whether this process runs the queue (another `attache` or the app may).
    pub fn is_runner(&self) -> bool {
        self.engine.is_runner()
    }

    pub fn cancel(&self, id: i64) -> Result<bool, StoreError> {
        self.engine.cancel(id)
    }

    pub fn retry(&self, id: i64) -> Result<bool, StoreError> {
        self.engine.retry(id)
    }

    /// Waits until every job in `ids` is finished, whichever process runs them.
    pub async fn wait_for(&self, ids: &[i64]) -> Result<Vec<UploadJob>, StoreError> {
        self.engine.wait_for(ids).await
    }

    /// One job of this account.
    pub fn job(&self, id: i64) -> Result<UploadJob, ServiceError> {
        self.queue
            .job(id)?
            .filter(|j| j.account == self.account)
            .ok_or_else(|| ServiceError::NotFound(format!("no upload {id}")))
    }

    /// Checks and queues files (folders expanded) for a contact; the engine picks them up.
    /// Nothing touches the network here: each refused file comes back with its reason.
    pub async fn queue_files(
        &self,
        contact: &Contact,
        paths: Vec<PathBuf>,
        force: bool,
    ) -> Result<QueueReport, ServiceError> {
        self.queue_files_as(contact, paths, force, false).await
    }

    /// [`Uploads::queue_files`], choosing how the files are filed: `as_document` files each
    /// one as a document record linked to the contact (EspoCRM's Documents), after checking
    /// the CRM takes that type there.
    pub async fn queue_files_as(
        &self,
        contact: &Contact,
        paths: Vec<PathBuf>,
        force: bool,
        as_document: bool,
    ) -> Result<QueueReport, ServiceError> {
        let backend = self.backend.clone();
        let (accepted, rejected) = tokio::task::spawn_blocking(move || {
            let (files, mut rejected) = expand(&paths);
            let mut accepted = Vec::new();
            for path in files {
                match inspect(&path, &*backend) {
                    Ok(mut f) if as_document => match backend.accepts_as_document(&f.file_name) {
                        Ok(()) => {
                            f.as_document = true;
                            accepted.push(f)
                        }
                        Err(why) => rejected.push(Rejection {
                            path: path.to_string_lossy().into_owned(),
                            kind: RejectionKind::Unsupported,
                            message: format!("{}: {why}", f.file_name),
                            convert_to: None,
                        }),
                    },
                    Ok(f) => accepted.push(f),
                    Err(r) => rejected.push(r),
                }
            }
            (accepted, rejected)
        })
        .await
        .map_err(|_| ServiceError::TaskFailed("checking the files"))?;
        let mut report = QueueReport {
            rejected,
            ..QueueReport::default()
        };
        let enqueued = self.queue.enqueue_all(
            &self.account,
            &contact.id,
            &contact.display_name,
            &accepted,
            force,
        )?;
        for outcome in enqueued {
            match outcome {
                Enqueued::New(job) => report.queued.push(UploadView::of(&job)),
                Enqueued::AlreadyQueued(job) => report.already_queued.push(UploadView::of(&job)),
                Enqueued::AlreadyAttached(job) => {
                    report.already_attached.push(UploadView::of(&job))
                }
            }
        }
        self.engine.poke();
        Ok(report)
    }

    /// The one-click conversion the check offered: converts each refused WebP/BMP/TIFF image
    /// (to PNG, every pixel kept) into the app's `converted` folder and queues the copies.
    /// Files that cannot be converted come back as rejections with the reason.
    pub async fn convert_and_queue(
        &self,
        contact: &Contact,
        paths: Vec<PathBuf>,
    ) -> Result<QueueReport, ServiceError> {
        let backend = self.backend.clone();
        let out_dir = self.converted_dir.clone();
        let (converted, mut rejected) = tokio::task::spawn_blocking(move || {
            let (files, mut rejected) = expand(&paths);
            let mut converted = Vec::new();
            for path in files {
                let target = match inspect(&path, &*backend) {
                    Err(Rejection {
                        convert_to: Some(target),
                        ..
                    }) => target,
                    // Already acceptable: queued as it is.
                    Ok(_) => {
                        converted.push(path);
                        continue;
                    }
                    Err(other) => {
                        rejected.push(other);
                        continue;
                    }
                };
                match convert_image(&path, target, &out_dir) {
                    Ok(copy) => converted.push(copy),
                    Err(e) => rejected.push(Rejection {
                        path: path.display().to_string(),
                        kind: match e {
                            ConvertError::TooLarge { .. } => RejectionKind::TooLarge,
                            _ => RejectionKind::Unreadable,
                        },
                        message: e.to_string(),
                        convert_to: None,
                    }),
                }
            }
            (converted, rejected)
        })
        .await
        .map_err(|_| ServiceError::TaskFailed("converting the images"))?;
        let mut report = self.queue_files(contact, converted, false).await?;
        rejected.append(&mut report.rejected);
        report.rejected = rejected;
        Ok(report)
    }

    /// Checks one file and queues it for a contact: the job's id (a new job, or the one that
    /// already has, or had, the same content there), or why the file was refused.
    /// `taken_over`: the file was claimed by another machine that vanished, which may have sent
    /// it already (see [`UploadQueue::mark_inbox_job`]).
    pub async fn enqueue_path(
        &self,
        contact_id: &str,
        contact_name: &str,
        path: &Path,
        taken_over: bool,
    ) -> Result<Result<i64, Rejection>, ServiceError> {
        let backend = self.backend.clone();
        let owned = path.to_owned();
        let checked = tokio::task::spawn_blocking(move || inspect(&owned, &*backend))
            .await
            .map_err(|_| ServiceError::TaskFailed("checking the file"))?;
        let file = match checked {
            Ok(file) => file,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut job = self
            .queue
            .enqueue(&self.account, contact_id, contact_name, &file, false)?;
        if let Enqueued::AlreadyAttached(done) = &job {
            // The queue remembers attaching this content here, but the CRM is what counts: the
            // attachment may have been deleted there since. Only one still listed makes the
            // file "attached" (and lets the inbox put it away).
            if !self.still_attached(done).await? {
                tracing::info!(
                    job = done.id,
                    "{} was attached to {} before, but is no longer there: attaching it again",
                    file.file_name,
                    contact_name
                );
                job = self
                    .queue
                    .enqueue(&self.account, contact_id, contact_name, &file, true)?;
            }
        }
        // The inbox files this content; if the file is written again, the new version is a new
        // file of the inbox's, so this job must not switch to it (it would be sent twice).
        if let Enqueued::New(new) = &job {
            self.queue.mark_inbox_job(new.id, taken_over)?;
        }
        self.engine.poke();
        Ok(Ok(job.job().id))
    }

    /// Whether the attachment a finished job made is still on its contact in the CRM.
    async fn still_attached(&self, done: &UploadJob) -> Result<bool, ServiceError> {
        let Some(attachment_id) = done.attachment_id.as_deref() else {
            return Ok(false);
        };
        let listed = self.backend.list_attachments(&done.contact_id).await?;
        Ok(listed.iter().any(|a| a.id == attachment_id))
    }

    /// The most recent upload jobs of this account as the tray shows them, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<UploadView>, ServiceError> {
        Ok(self
            .recent_jobs(limit)?
            .iter()
            .map(UploadView::of)
            .collect())
    }

    /// The same jobs as stored (paths, attachment ids), newest first.
    pub fn recent_jobs(&self, limit: usize) -> Result<Vec<UploadJob>, ServiceError> {
        Ok(self.queue.recent(&self.account, limit)?)
    }

    /// The tray's "Cancel all": every job of this account not yet finished is cancelled (one
    /// in flight stops where it is); returns how many.
    pub fn cancel_all(&self) -> Result<usize, ServiceError> {
        let mut cancelled = 0;
        for job in self.queue.pending(&self.account)? {
            if self.engine.cancel(job.id)? {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    pub fn clear_finished(&self) -> Result<usize, ServiceError> {
        Ok(self.queue.clear_finished(&self.account)?)
    }
}
