//! The one session the window uses: opened on first need, reopened when the user switches or
//! signs out of an account. Opening and background work are the core's one lifecycle
//! ([`Attache::start`]); this file only forwards its events to the window.

use std::sync::{Arc, OnceLock};

use attache_core::{AppHome, ErrorCode, ErrorPayload};
use attache_service::{Attache, Background, Work};
use tauri::{AppHandle, Emitter};
use tokio::sync::RwLock;

/// The event the upload tray listens to (payload: `UploadEvent`).
pub const UPLOADS_EVENT: &str = "uploads";
/// The event the Inbox panel listens to (payload: `InboxEvent`).
pub const INBOX_EVENT: &str = "inbox";
/// A verified webhook changed a contact's attachments (payload: the contact id, or null when
/// the event did not say which).
pub const CONTACT_CHANGED_EVENT: &str = "contact-changed";

/// An open account and its running background work.
pub struct Session {
    pub app: Arc<Attache>,
    pub background: Background,
}

impl std::ops::Deref for Session {
    type Target = Attache;
    fn deref(&self) -> &Attache {
        &self.app
    }
}

type Opened = Result<Arc<Session>, ErrorPayload>;

#[derive(Default)]
pub struct Core {
    slot: RwLock<Option<Opened>>,
    /// Set once the app is built; events go to its windows.
    handle: OnceLock<AppHandle>,
}

pub fn home() -> Result<AppHome, ErrorPayload> {
    AppHome::discover().map_err(|e| ErrorPayload::new(ErrorCode::Io, e.to_string()))
}

impl Core {
    pub fn attach(&self, handle: AppHandle) {
        let _ = self.handle.set(handle);
    }

    /// Opens the current account and starts its background work with the saved settings,
    /// forwarding its events to the window until the session is replaced.
    async fn open(&self) -> Opened {
        let app = Arc::new(Attache::open(home()?).await?);
        let handle = self.handle.get().cloned();
        let emitter = handle.clone();
        let work = Work::saved(&app, move |outcome| {
            // A created event names only the attachment; when its contact is not known here
            // the payload is null and the window re-reads the contact it shows.
            if let (Some(handle), Some(_)) = (&emitter, &outcome.event) {
                let _ = handle.emit(CONTACT_CHANGED_EVENT, outcome.contact_id.clone());
            }
        })?;
        let background = app.start(work).await;
        if let Some(handle) = &handle {
            forward(
                handle.clone(),
                UPLOADS_EVENT,
                background.subscribe_uploads(),
            );
            forward(handle.clone(), INBOX_EVENT, background.subscribe_inbox());
        }
        let session = Arc::new(Session { app, background });
        if let Some(handle) = handle {
            crate::desktop::follow(handle, Arc::downgrade(&session));
        }
        Ok(session)
    }

    /// The open session; the first caller opens it, the others wait for that.
    pub async fn get(&self) -> Opened {
        if let Some(opened) = self.slot.read().await.as_ref() {
            return opened.clone();
        }
        let mut slot = self.slot.write().await;
        if slot.is_none() {
            *slot = Some(self.open().await);
        }
        slot.as_ref().expect("just filled").clone()
    }

    /// Closes the current session (its watcher, receiver and, once the last command using it
    /// returns, its Demo site and queue) and opens the one the config now names.
    pub async fn reopen(&self) -> Opened {
        let mut slot = self.slot.write().await;
        if let Some(Ok(old)) = slot.take() {
            old.background.stop().await;
        }
        let opened = self.open().await;
        *slot = Some(opened.clone());
        opened
    }
}

/// Emits every event of a core channel to the window as `name`, until the channel closes (its
/// session was closed). A window too slow to keep up skips what it missed rather than stall
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
