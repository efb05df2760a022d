//! The contacts room: the account's contacts and their attachments as the window paints them
//! (the SQLite cache and the in-memory search index), refreshed from the CRM, and the local
//! copies of attachments behind previews, "Open" and "Save as…".

mod cache;
mod runnable;
mod search;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use attache_core::{AppHome, Attachment, BackendError, Contact, ContactPage, CrmBackend};
use futures::StreamExt;

pub use cache::{DownloadVariant, Store};
pub use search::ContactIndex;

use crate::{safe_file_name, ServiceError};

/// How many HEAD requests run at once when learning attachment sizes.
const SIZE_PROBES_IN_FLIGHT: usize = 8;

pub struct Contacts {
    /// The account's name: every cached row is keyed by it.
    account: String,
    backend: Arc<dyn CrmBackend>,
    store: Store,
    /// The cached contacts, indexed for typing-speed search; swapped whole on refresh.
    index: RwLock<Arc<ContactIndex>>,
    files_dir: PathBuf,
    previews_dir: PathBuf,
}

impl Contacts {
    pub fn open(
        home: &AppHome,
        account: &str,
        backend: Arc<dyn CrmBackend>,
    ) -> Result<Self, ServiceError> {
        let store = Store::open(&home.cache_db())?;
        let index = RwLock::new(Arc::new(ContactIndex::new(store.all_contacts(account)?)));
        Ok(Self {
            account: account.to_owned(),
            backend,
            store,
            index,
            files_dir: home.files_dir().join(safe_file_name(account)),
            previews_dir: home.previews_dir().join(safe_file_name(account)),
        })
    }

    fn key(&self) -> &str {
        &self.account
    }

    /// Searches the cached contacts (never the network), so typing stays instant: `limit`
    /// matches from `offset`, with the match count for the list's scrollbar.
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> ContactPage {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner()).clone();
        index.search(query, offset, limit)
    }

    /// Whether the cache has ever been filled for this account (the UI shows a loading state
    /// rather than "no contacts" until then).
    pub fn cached(&self) -> Result<bool, ServiceError> {
        Ok(self.store.refreshed_at(self.key(), "contacts")?.is_some())
    }

    /// Fetches every contact from the CRM and replaces the cache; returns how many.
    pub async fn refresh(&self) -> Result<usize, ServiceError> {
        let contacts = self.backend.list_contacts().await?;
        self.store.replace_contacts(self.key(), &contacts)?;
        let count = contacts.len();
        let index = Arc::new(ContactIndex::new(contacts));
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index;
        Ok(count)
    }

    /// Fills the contact cache if it was never filled (the inbox matches against it).
    pub async fn ensure_cached(&self) -> Result<(), ServiceError> {
        if !self.cached()? {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Every cached contact of the account.
    pub fn all_cached(&self) -> Result<Vec<Contact>, ServiceError> {
        Ok(self.store.all_contacts(self.key())?)
    }

    /// Identifies the contact index in use: it changes when the contacts are refreshed, so a
    /// matcher built from the contacts knows when to be rebuilt.
    pub fn generation(&self) -> usize {
        Arc::as_ptr(&self.index.read().unwrap_or_else(|p| p.into_inner())) as usize
    }

    /// Finds a contact by id or e-mail address, refreshing the cache once if it is not there.
    pub async fn resolve(&self, id_or_email: &str) -> Result<Contact, ServiceError> {
        let needle = id_or_email.trim();
        for attempt in 0..2 {
            if attempt == 1 || !self.cached()? {
                self.refresh().await?;
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

    pub fn cached_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, ServiceError> {
        Ok(self.store.attachments(self.key(), contact_id)?)
    }

    /// The contact that holds a cached attachment, when the cache knows it.
    pub fn contact_of_attachment(
        &self,
        attachment_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self
            .store
            .contact_of_attachment(self.key(), attachment_id)?)
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
                // Shown and saved without the characters that make a name read otherwise
                // (`Invoice\u{202E}fdp.exe` shows as "Invoiceexe.pdf").
                a.file_name = crate::names::display_name(&a.file_name);
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
                        None => backend.file_size(&a).await.ok().flatten(),
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

    pub fn cached_attachment(
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

    /// The local path of the attachment's preview image (the CRM's rendition), downloading it
    /// once.
    pub async fn preview(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<PathBuf, ServiceError> {
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        if !attachment.has_preview() {
            return Err(ServiceError::NotFound(format!(
                "{} has no preview",
                attachment.file_name
            )));
        }
        let dest = self
            .previews_dir
            .join(format!("{}.img", safe_file_name(attachment_id)));
        self.local_copy(attachment, DownloadVariant::Preview, dest)
            .await
    }

    /// Downloads the attachment into the cache (once) and returns the local path, named as the
    /// CRM names the file so the system's default application shows a sensible title.
    pub async fn download(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<PathBuf, ServiceError> {
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        let dest = self
            .files_dir
            .join(safe_file_name(attachment_id))
            .join(safe_file_name(&attachment.file_name));
        self.local_copy(attachment, DownloadVariant::File, dest)
            .await
    }

    /// A local copy to hand to the desktop's opener: [`Contacts::download`], refused with a
    /// plain reason (`UNSAFE_TO_OPEN`) when the file is a program, script or launcher, whatever
    /// its name (Save as still works).
    pub async fn copy_to_open(
        &self,
        contact_id: &str,
        attachment_id: &str,
    ) -> Result<PathBuf, ServiceError> {
        let attachment = self.cached_attachment(contact_id, attachment_id)?;
        let path = self.download(contact_id, attachment_id).await?;
        match runnable::refuses_to_open(&path, &attachment.file_name) {
            Some(why) => Err(ServiceError::UnsafeToOpen(why)),
            None => Ok(path),
        }
    }

    /// The one download path behind previews and files: the recorded copy when there is one,
    /// else streamed into a unique temporary file beside `dest` and renamed into place, so a
    /// crash or two concurrent requests never leave a torn file under the final name.
    async fn local_copy(
        &self,
        attachment: Attachment,
        variant: DownloadVariant,
        dest: PathBuf,
    ) -> Result<PathBuf, ServiceError> {
        if let Some((path, _)) = self.store.download(self.key(), &attachment.id, variant)? {
            return Ok(path);
        }
        let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
        let fetched: Result<u64, BackendError> = match variant {
            DownloadVariant::File => self.backend.download_file(&attachment, &tmp).await,
            DownloadVariant::Preview => self.backend.download_preview(&attachment, &tmp).await,
        };
        let size = match fetched {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
        };
        tokio::fs::rename(&tmp, &dest).await?;
        self.store
            .record_download(self.key(), &attachment.id, variant, &dest, size)?;
        Ok(dest)
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
}
