//! The inbox room: watched folders whose events become actions (`events`, a pure function),
//! whose files are matched to a contact (`matching`), taken on once complete (`settle`), queued on the uploads room's engine and put away once verified
//! (`runner`), with a durable record of each file (`store`). [`Inbox`] is what the window and
//! the CLI call; its settings and rules belong to one account.

pub mod claims;
mod events;
mod matching;
mod runner;
mod safety;
mod settle;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use attache_core::inbox::{InboxItem, InboxRule, InboxSettings, InboxState, Suggestion};
use attache_core::AppHome;

pub use crate::names::contact_folder_name;
pub use matching::{validate as validate_rule, BadRule, FileMatch, Matcher};
pub use runner::{network_file_system, InboxSummary, InboxWatch};
pub use settle::{Settled, Settling, FOLLOWED_MAX, QUIET_CLOSED, QUIET_OPEN, QUIET_UNKNOWN};
pub use store::{FoundFile, InboxStore};

use crate::accounts::Config;
use crate::contacts::Contacts;
use crate::uploads::Uploads;
use crate::ServiceError;

pub struct Inbox {
    account: String,
    home: AppHome,
    store: InboxStore,
    contacts: Arc<Contacts>,
    uploads: Arc<Uploads>,
    limits: std::sync::Mutex<InboxLimits>,
}

/// How much a watcher holds in memory at once, whatever arrives: a scanner emptying ten
/// thousand files into a folder, or a storm of file events.
#[derive(Debug, Clone, Copy)]
pub struct InboxLimits {
    /// Files followed until complete; more wait for a catch-up read of the folders.
    pub followed: usize,
    /// Batches of file events waiting for the runner; past it events are dropped and the
    /// folders are read again instead, which loses nothing.
    pub event_batches: usize,
    /// How long a machine sharing a watched folder may be silent before its claims are taken
    /// over (`ATTACHE_INBOX_CLAIM_LEASE_MS` sets it for a process; tests shorten it).
    pub claim_lease: std::time::Duration,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            followed: settle::FOLLOWED_MAX,
            event_batches: 256,
            claim_lease: std::env::var("ATTACHE_INBOX_CLAIM_LEASE_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(claims::LEASE, std::time::Duration::from_millis),
        }
    }
}

impl Inbox {
    pub fn open(
        home: &AppHome,
        account: &str,
        contacts: Arc<Contacts>,
        uploads: Arc<Uploads>,
    ) -> Result<Self, ServiceError> {
        Ok(Self {
            account: account.to_owned(),
            home: home.clone(),
            store: InboxStore::open(&home.inbox_db())?,
            contacts,
            uploads,
            limits: Default::default(),
        })
    }

    /// Sets the limits watchers started from now on use (tests make them small).
    pub fn set_limits(&self, limits: InboxLimits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn limits(&self) -> InboxLimits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The durable record of the files taken on (tests and benchmarks read it).
    pub fn store(&self) -> &InboxStore {
        &self.store
    }

    /// Starts watching `settings.folders` for this account. The upload engine must be started
    /// for files to go anywhere.
    pub async fn watch(
        self: &Arc<Self>,
        settings: InboxSettings,
    ) -> Result<InboxWatch, ServiceError> {
        runner::watch(self.clone(), settings).await
    }

    /// Files what is in the folders now and returns once every file is filed, waiting for
    /// review or failed (`attache watch --once`).
    pub async fn file_once(
        self: &Arc<Self>,
        settings: InboxSettings,
    ) -> Result<InboxSummary, ServiceError> {
        runner::file_once(self.clone(), settings).await
    }

    /// A matcher over the cached contacts and `rules`, and which index it was built from.
    fn matcher(&self, rules: &[InboxRule]) -> Result<(Matcher, usize), ServiceError> {
        let generation = self.contacts.generation();
        let contacts = self.contacts.all_cached()?;
        let matcher =
            Matcher::new(&contacts, rules).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Ok((matcher, generation))
    }

    /// The clients files opened with Attaché (from a file manager's "Open With") may belong
    /// to, best first: each file is matched as if it had arrived in the inbox inside its own
    /// folder (folder name, e-mail, the saved rules, names in the file name); a client the
    /// matcher would file to ranks before one it only suggests, and more files before fewer.
    pub fn suggest_for(&self, paths: &[PathBuf]) -> Result<Vec<Suggestion>, ServiceError> {
        let (matcher, _) = self.matcher(&self.settings()?.rules)?;
        // (rank, first seen) per client: a decided match counts 1,000 per file.
        let mut ranked: Vec<(Suggestion, u32)> = Vec::new();
        let mut add = |s: Suggestion, weight: u32| match ranked
            .iter_mut()
            .find(|(r, _)| r.contact_id == s.contact_id)
        {
            Some((_, rank)) => *rank += weight,
            None => ranked.push((s, weight)),
        };
        for path in paths {
            let inside: PathBuf =
                match (path.parent().and_then(|p| p.file_name()), path.file_name()) {
                    (Some(folder), Some(name)) => Path::new(folder).join(name),
                    (None, Some(name)) => PathBuf::from(name),
                    _ => continue,
                };
            match matcher.match_file(&inside) {
                FileMatch::Contact {
                    contact_id,
                    contact_name,
                    reason,
                } => add(
                    Suggestion {
                        contact_id,
                        contact_name,
                        why: reason.explain(),
                    },
                    1_000,
                ),
                FileMatch::NeedsFiling { suggestions } => {
                    for s in suggestions {
                        add(s, 1);
                    }
                }
            }
        }
        // Stable: equal ranks keep the order they were first seen in.
        ranked.sort_by_key(|(_, rank)| std::cmp::Reverse(*rank));
        Ok(ranked.into_iter().map(|(s, _)| s).collect())
    }

    /// The latest rows, newest change first.
    pub fn items(&self, limit: usize) -> Result<Vec<InboxItem>, ServiceError> {
        Ok(self.store.recent(&self.account, limit)?)
    }

    fn item(&self, id: i64) -> Result<InboxItem, ServiceError> {
        self.store
            .item(id)?
            .filter(|i| i.account == self.account)
            .ok_or_else(|| ServiceError::NotFound(format!("no inbox file {id}")))
    }

    /// Files a file that waits for review (or failed) onto the contact the user chose; with
    /// `remember`, also saves a rule so the next such file files itself.
    pub async fn file_item(
        &self,
        id: i64,
        contact_id: &str,
        remember: Option<InboxRule>,
    ) -> Result<InboxItem, ServiceError> {
        let item = self.item(id)?;
        if item.state == InboxState::Filed || item.state == InboxState::Uploading {
            return Err(ServiceError::Invalid(format!(
                "{} is already being filed",
                item.file_name
            )));
        }
        let contact = self.contacts.resolve(contact_id).await?;
        if let Some(rule) = remember {
            self.add_rule(InboxRule {
                contact_id: contact.id.clone(),
                ..rule
            })?;
        }
        match self
            .uploads
            .enqueue_path(&contact.id, &contact.display_name, &item.path, false)
            .await?
        {
            Ok(job_id) => {
                self.store
                    .mark_chosen(id, (&contact.id, &contact.display_name), job_id)?
            }
            Err(rejection) => return Err(ServiceError::Invalid(rejection.message)),
        }
        self.item(id)
    }

    /// Tries a failed inbox file again now.
    pub fn retry_item(&self, id: i64) -> Result<(), ServiceError> {
        let item = self.item(id)?;
        if item.state != InboxState::Failed {
            return Ok(());
        }
        match item.job_id {
            Some(job_id) => {
                self.uploads.retry(job_id)?;
                self.store.mark_uploading(id)?;
            }
            // Refused before it had a job: forgotten, so the watcher takes it on afresh.
            None => self.store.forget(id)?,
        }
        Ok(())
    }

    /// This account's saved inbox settings.
    pub fn settings(&self) -> Result<InboxSettings, ServiceError> {
        Ok(Config::load(&self.home)?.inbox_of(&self.account))
    }

    /// Saves this account's inbox settings, refusing a rule that does not compile.
    pub fn save_settings(&self, settings: &InboxSettings) -> Result<(), ServiceError> {
        for rule in &settings.rules {
            validate_rule(rule).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        }
        let mut config = Config::load(&self.home)?;
        config
            .inboxes
            .insert(self.account.clone(), settings.clone());
        config.save(&self.home)
    }

    fn add_rule(&self, rule: InboxRule) -> Result<(), ServiceError> {
        let mut settings = self.settings()?;
        if !settings.rules.contains(&rule) {
            settings.rules.push(rule);
        }
        self.save_settings(&settings)
    }
}
