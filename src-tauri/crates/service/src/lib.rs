//! The application core both front ends drive: which account is current, the local cache the
//! window paints from, background refreshes, and the downloads behind previews, "Open" and
//! "Save as…". The desktop commands and the CLI are thin calls into [`Attache`].

pub mod accounts;
mod error;
pub mod inbox;
pub mod media;
mod names;
pub mod uploads;
pub mod webhooks;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use attache_core::inbox::{InboxItem, InboxRule, InboxSettings, InboxState, InboxStore, Matcher};
use attache_core::store::DownloadVariant;
use attache_core::thumbnail::{self, ThumbCache};
use attache_core::upload::{self, Enqueued, QueueReport, Rejection, UploadQueue, UploadView};
use attache_core::{
    AccountInfo, AccountKind, AppHome, Attachment, Contact, ContactIndex, ContactPage, CrmBackend,
    Sensitive, Store,
};
use attache_sandbox::{Sandbox, SandboxConfig};
use attache_vault::Vault;
use attache_wix::{WixAuth, WixClient};
use futures::StreamExt;

pub use error::ServiceError;
pub use names::safe_file_name;
pub use uploads::UploadEngine;

/// Points the Demo account at a running sandbox instead of starting one in-process.
pub const DEMO_URL_ENV: &str = "ATTACHE_DEMO_URL";

/// The Demo site's client budget: effectively unlimited.
const DEMO_REQUESTS_PER_MINUTE: u32 = 1_000_000;

/// Disk space thumbnails may take before the least recently used go.
const THUMB_CACHE_BYTES: u64 = 256 << 20;
/// A render that takes longer is given up (a pathological PDF); the type icon shows instead.
const THUMB_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The two sizes thumbnails are made in: the grid's, or the larger preview's.
fn thumb_size(asked: u32) -> u32 {
    if asked > thumbnail::GRID_SIZE {
        thumbnail::PREVIEW_SIZE
    } else {
        thumbnail::GRID_SIZE
    }
}

/// How many HEAD requests run at once when learning attachment sizes.
const SIZE_PROBES_IN_FLIGHT: usize = 8;

/// Held while one thumbnail (cache key, size) renders.
type RenderLock = Arc<tokio::sync::Mutex<()>>;

/// Which protocol the Demo site is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DemoCrm {
    Wix,
    Espo,
}

pub struct Attache {
    home: AppHome,
    store: Store,
    /// The cached contacts, indexed for typing-speed search; swapped whole on refresh.
    index: RwLock<Arc<ContactIndex>>,
    account: AccountInfo,
    backend: Arc<dyn CrmBackend>,
    /// The same Wix client, for the Media Manager (`None` on EspoCRM accounts).
    media: Option<WixClient>,
    queue: Arc<UploadQueue>,
    uploads: UploadEngine,
    inbox: InboxStore,
    thumbs: ThumbCache,
    /// Thumbnail renders running at once (each takes a core).
    renders: tokio::sync::Semaphore,
    /// One lock per thumbnail being rendered, so simultaneous asks for the same picture (the
    /// grid and Quick Look, two windows) wait for one render instead of making two.
    rendering: std::sync::Mutex<HashMap<(String, u32), RenderLock>>,
    /// Renders actually run (cache misses), for tests and benchmarks.
    renders_done: std::sync::atomic::AtomicU64,
    /// A render that takes longer is given up; see [`THUMB_TIME_LIMIT`].
    thumb_time_limit: std::time::Duration,
    /// The in-process Demo site, kept alive as long as the app uses it.
    _demo: Option<Sandbox>,
}

impl Attache {
    /// Opens the app's state under `home` on the current account: a saved CRM account (its
    /// secret read from the OS keyring), or, with none, the built-in Demo site, started on a
    /// free loopback port with a real Wix client pointed at it, so the Demo site exercises
    /// exactly the code a Wix site does. Must be called inside a tokio runtime.
    pub async fn open(home: AppHome) -> Result<Self, ServiceError> {
        Self::open_account(home, None).await
    }

    /// Opens `home` on the account called `name` ("demo", "demo-espo" or a saved one) instead
    /// of the current one, for `attache --account NAME`.
    pub async fn open_account(home: AppHome, name: Option<&str>) -> Result<Self, ServiceError> {
        let store = Store::open(&home.cache_db())?;
        let config = accounts::Config::load(&home)?;
        let wanted = name.or(config.current.as_deref()).unwrap_or(accounts::DEMO);
        let saved = match wanted {
            accounts::DEMO | accounts::DEMO_ESPO => None,
            other => match config.find(other) {
                Some(saved) => Some(saved.clone()),
                None if name.is_some() => {
                    return Err(ServiceError::NotFound(format!(
                        "no account named {other:?}; see `attache accounts`"
                    )))
                }
                // A current account that is gone from the config: back to the Demo site.
                None => None,
            },
        };
        let Some(saved) = saved else {
            let running = std::env::var(DEMO_URL_ENV).ok().filter(|u| !u.is_empty());
            let crm = if wanted == accounts::DEMO_ESPO {
                DemoCrm::Espo
            } else {
                DemoCrm::Wix
            };
            return Self::open_demo(home, store, running, crm).await;
        };
        let vault = Vault::system().await?;
        let secret = vault.read_secret(&saved.name).await?;
        let (backend, media) = accounts::backend_for(&saved, secret)?;
        Self::assemble(home, store, saved.info(), (backend, media), None)
    }

    fn assemble(
        home: AppHome,
        store: Store,
        account: AccountInfo,
        (backend, media): (Arc<dyn CrmBackend>, Option<WixClient>),
        demo: Option<Sandbox>,
    ) -> Result<Self, ServiceError> {
        let index = RwLock::new(Arc::new(ContactIndex::new(
            store.all_contacts(&account.name)?,
        )));
        let queue = Arc::new(UploadQueue::open(&home.queue_db())?);
        let concurrency = std::env::var("ATTACHE_UPLOADS_IN_FLIGHT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let uploads = UploadEngine::new(
            queue.clone(),
            backend.clone(),
            &account.name,
            home.queue_lock(),
            concurrency,
        );
        let inbox = InboxStore::open(&home.inbox_db())?;
        let home_thumbs = home.thumbs_dir();
        Ok(Self {
            home,
            store,
            index,
            account,
            backend,
            media,
            queue,
            uploads,
            inbox,
            thumbs: ThumbCache::new(home_thumbs, THUMB_CACHE_BYTES),
            renders: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            rendering: Default::default(),
            renders_done: Default::default(),
            thumb_time_limit: THUMB_TIME_LIMIT,
            _demo: demo,
        })
    }

    /// Opens `home` on the Demo account served by an already running sandbox at `base_url`
    /// (tests use this to inject faults; the saved accounts are ignored).
    pub async fn open_demo_at(home: AppHome, base_url: &str) -> Result<Self, ServiceError> {
        let store = Store::open(&home.cache_db())?;
        Self::open_demo(home, store, Some(base_url.to_owned()), DemoCrm::Wix).await
    }

    /// The same, through the Demo site's EspoCRM API (tests run one scenario on both CRMs).
    pub async fn open_demo_espo_at(home: AppHome, base_url: &str) -> Result<Self, ServiceError> {
        let store = Store::open(&home.cache_db())?;
        Self::open_demo(home, store, Some(base_url.to_owned()), DemoCrm::Espo).await
    }

    async fn open_demo(
        home: AppHome,
        store: Store,
        running: Option<String>,
        crm: DemoCrm,
    ) -> Result<Self, ServiceError> {
        let config = SandboxConfig::demo(home.demo_dir());
        let (api_key, site_id) = (config.api_key.clone(), config.site_id.clone());
        // A Demo site already running elsewhere (`attache sandbox`), e.g. one a test kills the
        // client under, or one shared by several machines on a training day.
        let (demo, base_url) = match running {
            Some(url) => (None, url),
            None => {
                let demo =
                    Sandbox::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
                let url = demo.base_url();
                (Some(demo), url)
            }
        };
        if crm == DemoCrm::Espo {
            let client = attache_espo::EspoClient::new(
                &base_url,
                attache_espo::EspoAuth::ApiKey {
                    key: Sensitive::new(api_key),
                },
            )
            .map_err(attache_core::BackendError::from)?;
            let account = AccountInfo {
                name: accounts::DEMO_ESPO.into(),
                kind: AccountKind::DemoEspo,
                label: "Demo site (EspoCRM)".into(),
                base_url,
                site_id: None,
            };
            return Self::assemble(home, store, account, (Arc::new(client), None), demo);
        }
        // Wix's 200-a-minute budget belongs to Wix's servers; the Demo site is local and only
        // limits requests when told to (`--faults rate=200`).
        let client = WixClient::new(
            &base_url,
            WixAuth::ApiKey {
                key: Sensitive::new(api_key),
                site_id: site_id.clone(),
            },
        )
        .map_err(attache_core::BackendError::from)?
        .with_rate_limit(DEMO_REQUESTS_PER_MINUTE);
        let account = AccountInfo {
            name: accounts::DEMO.into(),
            kind: AccountKind::Demo,
            label: "Demo site".into(),
            base_url,
            site_id: Some(site_id),
        };
        let media = Some(client.clone());
        Self::assemble(home, store, account, (Arc::new(client), media), demo)
    }

    pub fn account(&self) -> &AccountInfo {
        &self.account
    }

    pub fn home(&self) -> &AppHome {
        &self.home
    }

    fn key(&self) -> &str {
        &self.account.name
    }

    /// Searches the cached contacts (never the network), so typing stays instant: `limit`
    /// matches from `offset`, with the match count for the list's scrollbar.
    pub fn search_contacts(&self, query: &str, offset: usize, limit: usize) -> ContactPage {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner()).clone();
        index.search(query, offset, limit)
    }

    /// Whether the cache has ever been filled for this account (the UI shows a loading state
    /// rather than "no contacts" until then).
    pub fn contacts_cached(&self) -> Result<bool, ServiceError> {
        Ok(self.store.refreshed_at(self.key(), "contacts")?.is_some())
    }

    /// Fetches every contact from the CRM and replaces the cache; returns how many.
    pub async fn refresh_contacts(&self) -> Result<usize, ServiceError> {
        let contacts = self.backend.list_contacts().await?;
        self.store.replace_contacts(self.key(), &contacts)?;
        let count = contacts.len();
        let index = Arc::new(ContactIndex::new(contacts));
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index;
        Ok(count)
    }

    pub fn cached_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, ServiceError> {
        Ok(self.store.attachments(self.key(), contact_id)?)
    }

    /// Fetches the contact's attachments, fills in sizes the CRM does not list (from earlier
    /// downloads, else a HEAD request), and replaces the cache.
    pub async fn refresh_attachments(
        &self,
        contact_id: &str,
    ) -> Result<Vec<Attachment>, ServiceError> {
        let listed = self.backend.list_attachments(contact_id).await?;
        let cached = self.store.attachments(self.key(), contact_id)?;
        let backend = self.backend.clone();
        let mut with_sizes: Vec<Attachment> =
            futures::stream::iter(listed.into_iter().map(|mut a| {
                let backend = backend.clone();
                let known = a.size_bytes.or_else(|| {
                    cached
                        .iter()
                        .find(|c| c.id == a.id)
                        .and_then(|c| c.size_bytes)
                });
                let downloaded = self.store.known_size(self.key(), &a.id).ok().flatten();
                async move {
                    a.size_bytes = match known.or(downloaded) {
                        Some(size) => Some(size),
                        None => backend.file_size(&a).await,
                    };
                    a
                }
            }))
            .buffered(SIZE_PROBES_IN_FLIGHT)
            .collect()
            .await;
        with_sizes.shrink_to_fit();
        self.store
            .replace_attachments(self.key(), contact_id, &with_sizes)?;
        Ok(with_sizes)
    }

    fn cached_attachment(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<Attachment, ServiceError> {
        self.store
            .attachment(self.key(), contact_id, attachment_id)?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "attachment {attachment_id} is not known; refresh the contact"
                ))
            })
    }

    /// The local path of the attachment's preview image, downloading it once.
    /// A thumbnail of an attachment, at most `size` pixels on its long side, from the disk
    /// cache or rendered now (images from the CRM's preview, PDFs from their first page), off
    /// the async threads, a few at a time, each within [`THUMB_TIME_LIMIT`].
    pub async fn thumbnail(
        &self,
        contact_id: &str,
        attachment_id: &str,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let key = format!("{}-{attachment_id}", self.key());
        if let Some(hit) = self.thumbs.get(&key, thumb_size(size)) {
            return Ok(hit);
        }
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        let source = if attachment.has_preview() {
            self.preview(contact_id, attachment_id).await?
        } else if attachment.can_thumbnail() {
            self.download(contact_id, attachment_id).await?
        } else {
            return Err(ServiceError::NotFound(format!(
                "no thumbnail for {}",
                attachment.file_name
            )));
        };
        self.render_cached(&key, source, &attachment.file_name, size)
            .await
    }

    /// A thumbnail of a queued upload's local file, so the tray shows what is on its way
    /// before it lands (keyed by content hash: the same bytes render once).
    pub async fn job_thumbnail(
        &self,
        job_id: i64,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let job = self
            .queue
            .job(job_id)?
            .filter(|j| j.account == self.key())
            .ok_or_else(|| ServiceError::NotFound(format!("no upload {job_id}")))?;
        let key = format!("file-{}", job.content_hash);
        self.render_cached(&key, job.path, &job.file_name, size)
            .await
    }

    /// Renders `source` into the thumbnail cache under `key` unless it is there already: one
    /// render per picture however many ask at once, a few pictures at a time, off the async
    /// threads, each within the time limit.
    async fn render_cached(
        &self,
        key: &str,
        source: PathBuf,
        file_name: &str,
        size: u32,
    ) -> Result<(PathBuf, &'static str), ServiceError> {
        let size = thumb_size(size);
        if let Some(hit) = self.thumbs.get(key, size) {
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
        let result = async {
            let _same_picture = flight.lock().await;
            // Another ask may have rendered it while this one waited.
            if let Some(hit) = self.thumbs.get(key, size) {
                return Ok(hit);
            }
            let _turn = self
                .renders
                .acquire()
                .await
                .map_err(|e| ServiceError::Invalid(e.to_string()))?;
            self.renders_done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let render = tokio::task::spawn_blocking(move || thumbnail::render_file(&source, size));
            // On time-out the blocking thread is left to finish on its own (a thread cannot be
            // stopped safely); its result is dropped and the caller shows the type icon.
            let thumb = tokio::time::timeout(self.thumb_time_limit, render)
                .await
                .map_err(|_| {
                    tracing::warn!(file = %file_name, "thumbnail render exceeded its time limit");
                    ServiceError::Invalid(format!("{file_name} took too long to render"))
                })?
                .map_err(|e| ServiceError::Invalid(format!("rendering stopped: {e}")))?
                .map_err(|e| {
                    tracing::info!(file = %file_name, "no thumbnail: {e}");
                    ServiceError::Invalid(format!("{file_name}: {e}"))
                })?;
            let path = self.thumbs.put(key, size, &thumb)?;
            Ok((path, thumb.mime))
        }
        .await;
        // The last ask out removes the lock, so the map holds only renders in progress.
        let mut rendering = self.rendering.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&flight) == 2 {
            rendering.remove(&flight_key);
        }
        result
    }

    /// How many thumbnails were rendered (not served from the cache) since opening.
    pub fn thumbnails_rendered(&self) -> u64 {
        self.renders_done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the time one thumbnail render may take before it is given up (default 10 s).
    pub fn with_thumb_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.thumb_time_limit = limit;
        self
    }

    pub async fn preview(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<PathBuf, ServiceError> {
        if let Some((path, _)) =
            self.store
                .download(self.key(), attachment_id, DownloadVariant::Preview)?
        {
            return Ok(path);
        }
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        if !attachment.has_preview() {
            return Err(ServiceError::NotFound(format!(
                "{} has no preview",
                attachment.file_name
            )));
        }
        let dir = self.home.previews_dir().join(safe_file_name(self.key()));
        let dest = dir.join(format!("{}.img", safe_file_name(attachment_id)));
        let size = self
            .fetch(&dir, &dest, |tmp| {
                let backend = self.backend.clone();
                let attachment = attachment.clone();
                async move { backend.download_preview(&attachment, &tmp).await }
            })
            .await?;
        self.store.record_download(
            self.key(),
            attachment_id,
            DownloadVariant::Preview,
            &dest,
            size,
        )?;
        Ok(dest)
    }

    /// Downloads the attachment into the cache (once) and returns the local path, named as the
    /// CRM names the file so the system's default application shows a sensible title.
    pub async fn download(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<PathBuf, ServiceError> {
        if let Some((path, _)) =
            self.store
                .download(self.key(), attachment_id, DownloadVariant::File)?
        {
            return Ok(path);
        }
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        let dir = self
            .home
            .files_dir()
            .join(safe_file_name(self.key()))
            .join(safe_file_name(attachment_id));
        let dest = dir.join(safe_file_name(&attachment.file_name));
        let size = self
            .fetch(&dir, &dest, |tmp| {
                let backend = self.backend.clone();
                let attachment = attachment.clone();
                async move { backend.download_file(&attachment, &tmp).await }
            })
            .await?;
        self.store.record_download(
            self.key(),
            attachment_id,
            DownloadVariant::File,
            &dest,
            size,
        )?;
        Ok(dest)
    }

    /// Downloads into a unique temporary file beside `dest` and renames it into place, so a
    /// crash or two concurrent requests never leave a torn file under the final name.
    async fn fetch<F, Fut>(&self, dir: &Path, dest: &Path, download: F) -> Result<u64, ServiceError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<u64, attache_core::BackendError>>,
    {
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
        match download(tmp.clone()).await {
            Ok(size) => {
                tokio::fs::rename(&tmp, dest).await?;
                Ok(size)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e.into())
            }
        }
    }

    /// Copies a downloaded attachment to where the user chose ("Save as…").
    pub async fn save_as(
        &self,
        contact_id: &str,
        attachment_id: &str,
        target: &Path,
    ) -> Result<u64, ServiceError> {
        let local = self.download(contact_id, attachment_id).await?;
        Ok(tokio::fs::copy(&local, target).await?)
    }

    /// Finds a contact by id or e-mail address, refreshing the cache once if it is not there.
    pub async fn resolve_contact(&self, id_or_email: &str) -> Result<Contact, ServiceError> {
        let needle = id_or_email.trim();
        for attempt in 0..2 {
            if attempt == 1 || !self.contacts_cached()? {
                self.refresh_contacts().await?;
            }
            let found = if needle.contains('@') {
                self.store.contacts_by_email(self.key(), needle)?
            } else {
                self.store
                    .contact(self.key(), needle)?
                    .into_iter()
                    .collect()
            };
            match found.len() {
                0 => continue,
                1 => return Ok(found.into_iter().next().expect("one element")),
                n => {
                    return Err(ServiceError::Ambiguous(format!(
                        "{n} contacts have the e-mail {needle}; use the contact id instead"
                    )))
                }
            }
        }
        Err(ServiceError::NotFound(format!(
            "no contact with id or e-mail {needle:?}"
        )))
    }

    /// The upload engine of the current account (not running until [`UploadEngine::start`]).
    pub fn uploads(&self) -> &UploadEngine {
        &self.uploads
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

    /// [`Attache::queue_files`], choosing how the files are filed: `as_document` files each one
    /// as a document record linked to the contact (EspoCRM's Documents), after checking the
    /// CRM takes that type there.
    pub async fn queue_files_as(
        &self,
        contact: &Contact,
        paths: Vec<PathBuf>,
        force: bool,
        as_document: bool,
    ) -> Result<QueueReport, ServiceError> {
        let backend = self.backend.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let (files, mut rejected) = upload::expand(&paths);
            let mut accepted = Vec::new();
            for path in files {
                match upload::inspect(&path, &*backend) {
                    Ok(mut f) if as_document => match backend.accepts_as_document(&f.file_name) {
                        Ok(()) => {
                            f.as_document = true;
                            accepted.push(f)
                        }
                        Err(why) => rejected.push(Rejection {
                            path: path.to_string_lossy().into_owned(),
                            kind: upload::RejectionKind::Unsupported,
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
        .map_err(|e| ServiceError::Invalid(format!("file check stopped: {e}")))?;
        let (accepted, rejected) = checked;
        let mut report = QueueReport {
            rejected,
            ..QueueReport::default()
        };
        let enqueued = self.queue.enqueue_all(
            self.key(),
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
        self.uploads.poke();
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
        let out_dir = self.home.converted_dir();
        let (converted, mut rejected) = tokio::task::spawn_blocking(move || {
            let (files, mut rejected) = upload::expand(&paths);
            let mut converted = Vec::new();
            for path in files {
                let target = match upload::inspect(&path, &*backend) {
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
                match upload::convert_image(&path, target, &out_dir) {
                    Ok(copy) => converted.push(copy),
                    Err(e) => rejected.push(Rejection {
                        path: path.display().to_string(),
                        kind: match e {
                            upload::ConvertError::TooLarge { .. } => {
                                upload::RejectionKind::TooLarge
                            }
                            _ => upload::RejectionKind::Unreadable,
                        },
                        message: e.to_string(),
                        convert_to: None,
                    }),
                }
            }
            (converted, rejected)
        })
        .await
        .map_err(|e| ServiceError::Invalid(format!("conversion stopped: {e}")))?;
        let mut report = self.queue_files(contact, converted, false).await?;
        rejected.append(&mut report.rejected);
        report.rejected = rejected;
        Ok(report)
    }

    /// The most recent upload jobs of this account, newest first.
    pub fn recent_uploads(&self, limit: usize) -> Result<Vec<UploadView>, ServiceError> {
        Ok(self
            .queue
            .recent(self.key(), limit)?
            .iter()
            .map(UploadView::of)
            .collect())
    }

    /// The tray's "Cancel all": every job of this account not yet finished is cancelled (one
    /// in flight stops where it is); returns how many.
    pub fn cancel_all_uploads(&self) -> Result<usize, ServiceError> {
        let mut cancelled = 0;
        for job in self.queue.pending(self.key())? {
            if self.uploads.cancel(job.id)? {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    pub fn clear_finished_uploads(&self) -> Result<usize, ServiceError> {
        Ok(self.queue.clear_finished(self.key())?)
    }

    pub(crate) fn upload_queue(&self) -> &UploadQueue {
        &self.queue
    }

    /// Fills the contact cache if it was never filled (the inbox matches against it).
    pub async fn ensure_contacts(&self) -> Result<(), ServiceError> {
        if !self.contacts_cached()? {
            self.refresh_contacts().await?;
        }
        Ok(())
    }

    /// Identifies the contact index in use: it changes when the contacts are refreshed.
    pub(crate) fn index_generation(&self) -> usize {
        Arc::as_ptr(&self.index.read().unwrap_or_else(|p| p.into_inner())) as usize
    }

    /// A matcher over the cached contacts and `rules`, and which index it was built from.
    pub(crate) fn inbox_matcher(
        &self,
        rules: &[InboxRule],
    ) -> Result<(Matcher, usize), ServiceError> {
        let generation = self.index_generation();
        let contacts = self.store.all_contacts(self.key())?;
        let matcher =
            Matcher::new(&contacts, rules).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok((matcher, generation))
    }

    /// Checks one file and queues it for a contact: the job's id (a new job, or the one that
    /// already has, or had, the same content there), or why the file was refused.
    pub(crate) async fn enqueue_path(
        &self,
        contact_id: &str,
        contact_name: &str,
        path: &Path,
    ) -> Result<Result<i64, Rejection>, ServiceError> {
        let backend = self.backend.clone();
        let owned = path.to_owned();
        let checked = tokio::task::spawn_blocking(move || upload::inspect(&owned, &*backend))
            .await
            .map_err(|e| ServiceError::Invalid(format!("file check stopped: {e}")))?;
        let file = match checked {
            Ok(file) => file,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let job = self
            .queue
            .enqueue(self.key(), contact_id, contact_name, &file, false)?;
        self.uploads.poke();
        Ok(Ok(job.job().id))
    }

    pub(crate) fn inbox_store(&self) -> &InboxStore {
        &self.inbox
    }

    /// The inbox's latest rows, newest change first.
    pub fn inbox_items(&self, limit: usize) -> Result<Vec<InboxItem>, ServiceError> {
        Ok(self.inbox.recent(self.key(), limit)?)
    }

    /// Files a file that waits for review (or failed) onto the contact the user chose; with
    /// `remember`, also saves a rule so the next such file files itself.
    pub async fn file_inbox_item(
        &self,
        id: i64,
        contact_id: &str,
        remember: Option<InboxRule>,
    ) -> Result<InboxItem, ServiceError> {
        let item = self.inbox_item(id)?;
        if item.state == InboxState::Filed || item.state == InboxState::Uploading {
            return Err(ServiceError::Invalid(format!(
                "{} is already being filed",
                item.file_name
            )));
        }
        let contact = self.resolve_contact(contact_id).await?;
        if let Some(rule) = remember {
            self.add_inbox_rule(InboxRule {
                contact_id: contact.id.clone(),
                ..rule
            })?;
        }
        match self
            .enqueue_path(&contact.id, &contact.display_name, &item.path)
            .await?
        {
            Ok(job_id) => {
                self.inbox
                    .mark_chosen(id, (&contact.id, &contact.display_name), job_id)?
            }
            Err(rejection) => return Err(ServiceError::Invalid(rejection.message)),
        }
        self.inbox_item(id)
    }

    /// Tries a failed inbox file again now.
    pub fn retry_inbox_item(&self, id: i64) -> Result<(), ServiceError> {
        let item = self.inbox_item(id)?;
        if item.state != InboxState::Failed {
            return Ok(());
        }
        match item.job_id {
            Some(job_id) => {
                self.uploads.retry(job_id)?;
                self.inbox.mark_uploading(id)?;
            }
            // Refused before it had a job: forgotten, so the watcher takes it on afresh.
            None => self.inbox.forget(id)?,
        }
        Ok(())
    }

    fn inbox_item(&self, id: i64) -> Result<InboxItem, ServiceError> {
        self.inbox
            .item(id)?
            .filter(|i| i.account == self.key())
            .ok_or_else(|| ServiceError::NotFound(format!("no inbox file {id}")))
    }

    /// The saved inbox settings.
    pub fn inbox_settings(&self) -> Result<InboxSettings, ServiceError> {
        Ok(accounts::Config::load(&self.home)?.inbox)
    }

    pub fn save_inbox_settings(&self, settings: &InboxSettings) -> Result<(), ServiceError> {
        for rule in &settings.rules {
            rule.validate()
                .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        }
        let mut config = accounts::Config::load(&self.home)?;
        config.inbox = settings.clone();
        config.save(&self.home)
    }

    fn add_inbox_rule(&self, rule: InboxRule) -> Result<(), ServiceError> {
        let mut settings = self.inbox_settings()?;
        if !settings.rules.contains(&rule) {
            settings.rules.push(rule);
        }
        self.save_inbox_settings(&settings)
    }
}
