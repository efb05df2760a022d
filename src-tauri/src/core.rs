//! The one [`Attache`] the window uses: opened on first need, reopened when the user switches
//! or signs out of an account.

use std::sync::{Arc, OnceLock};

use attache_core::{AppHome, ErrorCode, ErrorPayload};
use attache_service::Attache;
use tauri::{AppHandle, Emitter};
use tokio::sync::RwLock;

type Opened = Result<Arc<Attache>, ErrorPayload>;

/// The event the upload tray listens to (payload: `UploadEvent`).
pub const UPLOADS_EVENT: &str = "uploads";

#[derive(Default)]
pub struct Core {
    slot: RwLock<Option<Opened>>,
    /// Set once the app is built; upload events go to its windows.
    handle: OnceLock<AppHandle>,
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
            let mut events = app.uploads().subscribe();
            tauri::async_runtime::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match events.recv().await {
                        Ok(event) => {
                            let _ = handle.emit(UPLOADS_EVENT, event);
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        }
        Ok(app)
    }

    /// The opened core; the first caller opens it, the others wait for that.
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

    /// Closes the current account (stopping the Demo site if it ran) and opens the one the
    /// config now names.
    pub async fn reopen(&self) -> Opened {
        let mut slot = self.slot.write().await;
        // Drop the old core first: the Demo site's server must stop (and the old account's
        // uploads pause, to resume when it is current again) before another opens.
        *slot = None;
        let opened = self.open().await;
        *slot = Some(opened.clone());
        opened
    }
}
