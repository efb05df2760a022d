//! The one [`Attache`] the window uses: opened on first need, reopened when the user switches
//! or signs out of an account.

use std::sync::{Arc, OnceLock};

use attache_core::{AppHome, ErrorCode, ErrorPayload};
use attache_service::inbox::{self, InboxWatch};
use attache_service::Attache;
use tauri::{AppHandle, Emitter};
use tokio::sync::RwLock;

type Opened = Result<Arc<Attache>, ErrorPayload>;

/// The event the upload tray listens to (payload: `UploadEvent`).
pub const UPLOADS_EVENT: &str = "uploads";
/// The event the Inbox panel listens to (payload: `InboxEvent`).
pub const INBOX_EVENT: &str = "inbox";
/// A verified webhook changed a contact's attachments (payload: the contact id, or null when
/// the event did not say which).
pub const CONTACT_CHANGED_EVENT: &str = "contact-changed";

#[derive(Default)]
pub struct Core {
    slot: RwLock<Option<Opened>>,
    /// Set once the app is built; upload events go to its windows.
    handle: OnceLock<AppHandle>,
    /// The inbox watcher of the open account, when folders are set; and why not, when it failed.
    inbox: tokio::sync::Mutex<(Option<InboxWatch>, Option<String>)>,
    /// The webhook receiver of the open account, when one is configured.
    webhooks: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub fn home() -> Result<AppHome, ErrorPayload> {
    AppHome::discover().map_err(|e| ErrorPayload::new(ErrorCode::Io, e.to_string()))
}

impl Core {
    pub fn attach(&self, handle: AppHandle) {
        let _ = self.handle.set(handle);
    }

    /// Opens the current account and starts its upload queue (pending jobs resume), forwarding
    /// the queue's events to the window until this core is replaced.
    async fn open(&self) -> Opened {
        let app = Arc::new(Attache::open(home()?).await?);
        app.uploads().start();
        if let Some(handle) = self.handle.get().cloned() {
            forward(handle, UPLOADS_EVENT, app.uploads().subscribe());
        }
        self.start_webhooks(&app).await;
        Ok(app)
    }

    /// Serves the configured webhook receiver for this account (Wix sites only); each verified
    /// event tells the window to refresh the contact it concerns. A receiver that cannot
    /// start is logged: the window's polling still keeps the grid current.
    async fn start_webhooks(&self, app: &Arc<Attache>) {
        if let Some(old) = self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            old.abort();
        }
        let Ok(config) = attache_service::accounts::Config::load(app.home()) else {
            return;
        };
        let Some(settings) = config.webhooks else {
            return;
        };
        if app.media().is_err() {
            return;
        }
        let verifier = match std::fs::read_to_string(&settings.public_key_file)
            .map_err(|e| e.to_string())
            .and_then(|k| {
                attache_wix::webhooks::WebhookVerifier::new(&k).map_err(|e| e.to_string())
            }) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("webhook receiver not started: {e}");
                return;
            }
        };
        let handle = self.handle.get().cloned();
        let started =
            attache_service::webhooks::listen(app.clone(), settings.addr, verifier, move |o| {
                // A created event names only the attachment; when its contact is not known here
                // the payload is null and the window re-reads the contact it shows.
                if let (Some(handle), Some(_)) = (&handle, &o.event) {
                    let _ = handle.emit(CONTACT_CHANGED_EVENT, o.contact_id.clone());
                }
            })
            .await;
        match started {
            Ok((addr, task)) => {
                tracing::info!("webhook receiver on http://{addr}");
                *self.webhooks.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            }
            Err(e) => tracing::warn!("webhook receiver not started: {e}"),
        }
    }

    /// The opened core; the first caller opens it, the others wait for that.
    pub async fn get(&self) -> Opened {
        if let Some(opened) = self.slot.read().await.as_ref() {
            return opened.clone();
        }
        let mut slot = self.slot.write().await;
        if slot.is_none() {
            let opened = self.open().await;
            if let Ok(app) = &opened {
                self.restart_inbox(app).await;
            }
            *slot = Some(opened);
        }
        slot.as_ref().expect("just filled").clone()
    }

    /// Closes the current account (stopping the Demo site if it ran) and opens the one the
    /// config now names.
    pub async fn reopen(&self) -> Opened {
        let mut slot = self.slot.write().await;
        // The watcher holds the old core: stop it before anything else.
        self.stop_inbox().await;
        // Drop the old core first: the Demo site's server must stop (and the old account's
        // uploads pause, to resume when it is current again) before another opens.
        *slot = None;
        let opened = self.open().await;
        *slot = Some(opened.clone());
        if let Ok(app) = &opened {
            self.restart_inbox(app).await;
        }
        opened
    }

    async fn stop_inbox(&self) {
        let mut inbox = self.inbox.lock().await;
        if let Some(watch) = inbox.0.take() {
            watch.stop().await;
        }
        inbox.1 = None;
    }

    /// (Re)starts watching the saved inbox folders, if any; a failure is kept for the panel.
    pub async fn restart_inbox(&self, app: &Arc<Attache>) {
        self.stop_inbox().await;
        let settings = match app.inbox_settings() {
            Ok(s) if s.folders.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                self.inbox.lock().await.1 = Some(e.to_string());
                return;
            }
        };
        let mut inbox = self.inbox.lock().await;
        match inbox::watch(app.clone(), settings).await {
            Ok(watch) => {
                if let Some(handle) = self.handle.get().cloned() {
                    forward(handle, INBOX_EVENT, watch.subscribe());
                }
                *inbox = (Some(watch), None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbox not watched");
                *inbox = (None, Some(e.to_string()));
            }
        }
    }

    /// Whether the folders are watched, and the problem when they are not.
    pub async fn inbox_status(&self) -> (bool, Option<String>) {
        let inbox = self.inbox.lock().await;
        (inbox.0.is_some(), inbox.1.clone())
    }
}

/// Emits every event of a core channel to the window as `name`, until the channel closes (its
/// account was closed). A window too slow to keep up skips what it missed rather than stall
/// the core; the tray and the Inbox panel re-read their state when opened.
fn forward<T: serde::Serialize + Clone + Send + 'static>(
    handle: AppHandle,
    name: &'static str,
    mut events: tokio::sync::broadcast::Receiver<T>,
) {
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(event) => {
                    let _ = handle.emit(name, event);
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
}
