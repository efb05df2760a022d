//! The thumbnails room: pictures of attachments and of files waiting in the upload tray, from
//! the disk cache or rendered now. One render per picture however many ask at once (the grid
//! and Quick Look, two windows), a few pictures at a time (each takes a core), off the async
//! threads, each within a time limit. Memory is bounded per render (files over 256 MB are not
//! read, pictures and PDF images past their pixel limits are refused before decoding) and in
//! all (a render given up for its time keeps its turn until its thread ends); what could not
//! be made is remembered, not rendered again on every repaint.

mod cache;
pub mod render;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use attache_core::AppHome;

pub use cache::ThumbCache;
pub use render::{render, render_file, ThumbError, Thumbnail, GRID_SIZE, PREVIEW_SIZE};

use crate::contacts::Contacts;
use crate::uploads::Uploads;
use crate::ServiceError;

/// Disk space thumbnails may take before the least recently used go.
const CACHE_BYTES: u64 = 256 << 20;
/// A render that takes longer is given up (a pathological PDF); the type icon shows instead.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// Held while one thumbnail (cache key, size) renders.
type RenderLock = Arc<tokio::sync::Mutex<()>>;

/// The two sizes thumbnails are made in: the grid's, or the larger preview's.
fn thumb_size(asked: u32) -> u32 {
    if asked > GRID_SIZE {
        PREVIEW_SIZE
    } else {
        GRID_SIZE
    }
}

/// Why a thumbnail could not be had; the window shows the type icon instead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ThumbnailError {
    #[error("no thumbnail for {0}")]
    NoPicture(String),
    #[error("{0} took too long to render")]
    TimedOut(String),
    #[error("{file}: {reason}")]
    Unrenderable { file: String, reason: ThumbError },
    /// The blocking render thread panicked (a bug in a decoder).
    #[error("rendering {0} stopped unexpectedly")]
    RenderPanicked(String),
}

pub struct Thumbnails {
    account: String,
    contacts: Arc<Contacts>,
    uploads: Arc<Uploads>,
    cache: ThumbCache,
    /// Renders running at once (each takes a core). A render's permit is held by its thread,
    /// so one given up for its time goes on counting until it really ends.
    renders: Arc<tokio::sync::Semaphore>,
    /// Render threads running now, and the most seen at once (tests read it).
    running: Arc<RunningRenders>,
    /// Pictures that could not be made, with why: asked again (every repaint of the grid),
    /// they fail at once instead of rendering again. Their content never changes (keys are
    /// attachment ids and content hashes); a restart tries once more.
    failed: std::sync::Mutex<HashMap<(String, u32), ThumbnailError>>,
    /// One lock per thumbnail being rendered, so simultaneous asks for the same picture wait
    /// for one render instead of making two.
    rendering: std::sync::Mutex<HashMap<(String, u32), RenderLock>>,
    /// Renders actually run (cache misses), for tests and benchmarks.
    renders_done: AtomicU64,
    time_limit: Duration,
}

/// How many render threads run, and the most that ever ran at once.
#[derive(Default)]
struct RunningRenders {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl RunningRenders {
    fn enter(self: &Arc<Self>) -> impl Drop {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        struct Leaving(Arc<RunningRenders>);
        impl Drop for Leaving {
            fn drop(&mut self) {
                self.0.now.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Leaving(self.clone())
    }
}

/// Failures remembered at most; past it the memory starts over (they are cheap to find again).
const FAILURES_REMEMBERED: usize = 10_000;

/// Renders kept before thumbnails were kept per account lie loose in the cache's root: no one
/// can tell whose documents they show (so sign-out could not delete them), and they are cheap
/// to render again. Removed; the per-account folders are left alone.
fn forget_unattributed_renders(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Thumbnails {
    pub fn new(
        home: &AppHome,
        account: &str,
        contacts: Arc<Contacts>,
        uploads: Arc<Uploads>,
    ) -> Self {
        forget_unattributed_renders(&home.thumbs_dir());
        Self {
            account: account.to_owned(),
            contacts,
            uploads,
            // Per account, so that signing out deletes the account's renders with the rest.
            cache: ThumbCache::new(
                home.thumbs_dir().join(crate::safe_file_name(account)),
                CACHE_BYTES,
            ),
            renders: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            running: Default::default(),
            failed: Default::default(),
            rendering: Default::default(),
            renders_done: Default::default(),
            time_limit: TIME_LIMIT,
        }
    }

    /// Sets the time one render may take before it is given up (default 10 s).
    pub fn set_time_limit(&mut self, limit: Duration) {
        self.time_limit = limit;
    }

    /// A thumbnail of an attachment, at most `size` pixels on its long side: images from the
    /// CRM's preview, PDFs from their first page.
    pub async fn of_attachment(
        &self,
        contact_id: &str,
        attachment_id: &str,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let key = format!("{}-{attachment_id}", self.account);
        if let Some(hit) = self.cache.get(&key, thumb_size(size)) {
            return Ok(hit);
        }
        // Known not to render: not even downloaded again.
        if let Some(failure) = self.failure(&(key.clone(), thumb_size(size))) {
            return Err(failure.into());
        }
        let attachment = self.contacts.cached_attachment(contact_id, attachment_id)?;
        let source = if attachment.has_preview() {
            self.contacts.preview(contact_id, attachment_id).await?
        } else if attachment.can_thumbnail() {
            self.contacts.download(contact_id, attachment_id).await?
        } else {
            return Err(ThumbnailError::NoPicture(attachment.file_name).into());
        };
        Ok(self
            .render_cached(&key, source, &attachment.file_name, size)
            .await?)
    }

    /// A thumbnail of a queued upload's local file, so the tray shows what is on its way
    /// before it lands (keyed by content hash: the same bytes render once).
    pub async fn of_upload(
        &self,
        job_id: i64,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let job = self.uploads.job(job_id)?;
        let key = format!("file-{}", job.content_hash);
        Ok(self
            .render_cached(&key, job.path, &job.file_name, size)
            .await?)
    }

    /// Renders `source` into the cache under `key` unless it is there already.
    async fn render_cached(
        &self,
        key: &str,
        source: PathBuf,
        file_name: &str,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let size = thumb_size(size);
        if let Some(hit) = self.cache.get(key, size) {
            return Ok(hit);
        }
        let flight_key = (key.to_owned(), size);
        let flight = self
            .rendering
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(flight_key.clone())
            .or_default()
            .clone();
        let result: Result<_, ServiceError> = async {
            let _same_picture = flight.lock().await;
            // Another ask may have rendered it, or found it cannot be, while this one waited.
            if let Some(hit) = self.cache.get(key, size) {
                return Ok(hit);
            }
            if let Some(failure) = self.failure(&flight_key) {
                return Err(failure.into());
            }
            let made = self.render_now(source, file_name, size).await;
            match made {
                Ok(thumb) => {
                    let path = self.cache.put(key, size, &thumb)?;
                    Ok((path, thumb.mime))
                }
                Err(failure) => {
                    self.remember_failure(flight_key.clone(), failure.clone());
                    Err(failure.into())
                }
            }
        }
        .await;
        // The last ask out removes the lock, so the map holds only renders in progress.
        let mut rendering = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&flight) == 2 {
            rendering.remove(&flight_key);
        }
        result
    }

    /// Renders `source` on a blocking thread within the time limit. The thread holds its render
    /// permit until it ends, even when it was given up for its time: a slow file cannot make
    /// more renders run than there are permits.
    async fn render_now(
        &self,
        source: PathBuf,
        file_name: &str,
        size: u32,
    ) -> Result<Thumbnail, ThumbnailError> {
        // The semaphore is never closed.
        let turn = self
            .renders
            .clone()
            .acquire_owned()
            .await
            .expect("render semaphore open");
        self.renders_done.fetch_add(1, Ordering::Relaxed);
        let running = self.running.clone();
        let render = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let _running = running.enter();
            render_file(&source, size)
        });
        // On time-out the blocking thread is left to finish on its own (a thread cannot be
        // stopped safely); its result is dropped and the caller shows the type icon.
        tokio::time::timeout(self.time_limit, render)
            .await
            .map_err(|_| {
                tracing::warn!(file = %file_name, "thumbnail render exceeded its time limit");
                ThumbnailError::TimedOut(file_name.to_owned())
            })?
            .map_err(|_| ThumbnailError::RenderPanicked(file_name.to_owned()))?
            .map_err(|reason| {
                tracing::info!(file = %file_name, "no thumbnail: {reason}");
                ThumbnailError::Unrenderable {
                    file: file_name.to_owned(),
                    reason,
                }
            })
    }

    fn failure(&self, key: &(String, u32)) -> Option<ThumbnailError> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.get(key).cloned()
    }

    fn remember_failure(&self, key: (String, u32), failure: ThumbnailError) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.len() >= FAILURES_REMEMBERED {
            failed.clear();
        }
        failed.insert(key, failure);
    }

    /// The most render threads that ran at once since opening (time-outs included).
    pub fn renders_peak(&self) -> usize {
        self.running.peak.load(Ordering::SeqCst)
    }

    /// How many thumbnails were rendered (not served from the cache) since opening.
    pub fn rendered(&self) -> u64 {
        self.renders_done.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loose_renders_of_the_old_layout_go_and_accounts_folders_stay() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("att-1-256.jpg"), "old").unwrap();
        std::fs::create_dir_all(root.path().join("office")).unwrap();
        std::fs::write(root.path().join("office/att-2-256.jpg"), "new").unwrap();
        super::forget_unattributed_renders(root.path());
        assert!(!root.path().join("att-1-256.jpg").exists());
        assert!(root.path().join("office/att-2-256.jpg").is_file());
        super::forget_unattributed_renders(&root.path().join("missing"));
    }
}
