//! The one lifecycle of a session's background work, shared by the desktop shell and the CLI:
//! the upload queue runs, the watched inbox folders are filed, and the webhook receiver listens,
//! until [`Background::stop`]. What to run is a [`Work`]: the saved settings (the window), or
//! what a command asked for (`attache watch DIR`, `attache webhooks listen`).

use std::net::SocketAddr;
use std::sync::Arc;

use attache_core::inbox::{InboxEvent, InboxSettings};
use attache_core::upload::UploadEvent;
use attache_wix::webhooks::WebhookVerifier;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::accounts::Config;
use crate::inbox::InboxWatch;
use crate::webhooks::{self, WebhookOutcome};
use crate::{Attache, ServiceError};

/// A webhook receiver to serve: where, with which key, and who hears each outcome.
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    pub verifier: WebhookVerifier,
    pub report: Box<dyn Fn(&WebhookOutcome) + Send + Sync>,
}

/// What a session runs in the background besides its upload queue (which always runs).
#[derive(Default)]
pub struct Work {
    /// Folders to watch; none (or no folders) watches nothing.
    pub inbox: Option<InboxSettings>,
    pub webhooks: Option<WebhookReceiver>,
    /// Start with uploads paused (nothing sent until [`Background::pause_uploads`]`(false)`).
    pub uploads_paused: bool,
    /// Start with the folders not watched until [`Background::pause_watching`]`(false)`.
    pub watching_paused: bool,
}

impl Work {
    /// What the window runs: the account's saved inbox folders, and the webhook receiver when
    /// `config.json` configures one (a receiver that cannot be set up is logged, not fatal:
    /// polling keeps the grid current). `report` hears every webhook outcome.
    pub fn saved(
        app: &Attache,
        report: impl Fn(&WebhookOutcome) + Send + Sync + 'static,
    ) -> Result<Self, ServiceError> {
        let config = Config::load(app.home())?;
        let inbox = config.inbox_of(&app.account().name);
        let webhooks = config.webhooks.and_then(|settings| {
            let verifier = std::fs::read_to_string(&settings.public_key_file)
                .map_err(|e| e.to_string())
                .and_then(|key| WebhookVerifier::new(&key).map_err(|e| e.to_string()));
            match verifier {
                Ok(verifier) => Some(WebhookReceiver {
                    addr: settings.addr,
                    verifier,
                    report: Box::new(report),
                }),
                Err(e) => {
                    tracing::warn!("webhook receiver not started: {e}");
                    None
                }
            }
        });
        Ok(Self {
            inbox: Some(inbox),
            webhooks,
            uploads_paused: config.desktop.uploads_paused,
            watching_paused: config.desktop.watching_paused,
        })
    }
}

/// The inbox watcher of a session, or why it is not running.
#[derive(Default)]
struct Watching {
    watch: Option<InboxWatch>,
    problem: Option<String>,
    forward: Option<JoinHandle<()>>,
    /// What to watch (kept while paused, to resume with).
    settings: InboxSettings,
    paused: bool,
}

/// A session's running background work. Events keep flowing through the same channels when
/// the inbox is restarted, so a front end subscribes once.
pub struct Background {
    app: Arc<Attache>,
    inbox: tokio::sync::Mutex<Watching>,
    inbox_events: broadcast::Sender<InboxEvent>,
    webhook_addr: Option<SocketAddr>,
    webhooks: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Attache {
    /// Starts the session's background work: the upload queue (pending jobs resume), then what
    /// `work` asks for. An inbox or a receiver that cannot start is reported by
    /// [`Background::inbox_status`] or the log; the queue runs regardless.
    pub async fn start(self: &Arc<Self>, work: Work) -> Background {
        self.uploads().set_paused(work.uploads_paused);
        self.uploads().start();
        let webhooks = match (work.webhooks, self.webhooks()) {
            (Some(receiver), Ok(room)) => {
                let report = receiver.report;
                match webhooks::listen(room.clone(), receiver.addr, receiver.verifier, report).await
                {
                    Ok((addr, task)) => {
                        tracing::info!("webhook receiver on http://{addr}");
                        Some((addr, task))
                    }
                    Err(e) => {
                        tracing::warn!("webhook receiver not started: {e}");
                        None
                    }
                }
            }
            (Some(_), Err(e)) => {
                tracing::info!("no webhook receiver: {e}");
                None
            }
            (None, _) => None,
        };
        let background = Background {
            app: self.clone(),
            inbox: tokio::sync::Mutex::new(Watching {
                paused: work.watching_paused,
                ..Watching::default()
            }),
            inbox_events: broadcast::channel(64).0,
            webhook_addr: webhooks.as_ref().map(|(addr, _)| *addr),
            webhooks: std::sync::Mutex::new(webhooks.map(|(_, task)| task)),
        };
        if let Some(settings) = work.inbox {
            background.restart_inbox(settings).await;
        }
        background
    }
}

impl Background {
    pub fn subscribe_uploads(&self) -> broadcast::Receiver<UploadEvent> {
        self.app.uploads().subscribe()
    }

    /// The inbox's events, across restarts of the watcher.
    pub fn subscribe_inbox(&self) -> broadcast::Receiver<InboxEvent> {
        self.inbox_events.subscribe()
    }

    /// Where the webhook receiver listens, when one runs.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    /// Ends when the webhook receiver stops (it fails, or [`Background::stop`]); pending
    /// forever when there is none.
    pub async fn webhooks_stopped(&self) {
        let task = self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match task {
            Some(task) => {
                let _ = task.await;
            }
            None => std::future::pending().await,
        }
    }

    /// (Re)starts watching `settings.folders` (none: stops watching); a failure is kept for
    /// [`Background::inbox_status`].
    pub async fn restart_inbox(&self, settings: InboxSettings) {
        let mut inbox = self.inbox.lock().await;
        stop_watching(&mut inbox).await;
        inbox.settings = settings.clone();
        if settings.folders.is_empty() {
            return;
        }
        if inbox.paused {
            inbox.problem = Some("Watching is paused (Resume watching in the tray menu)".into());
            return;
        }
        match self.app.inbox().watch(settings).await {
            Ok(watch) => {
                let mut events = watch.subscribe();
                let into = self.inbox_events.clone();
                inbox.forward = Some(tokio::spawn(async move {
                    use broadcast::error::RecvError;
                    loop {
                        match events.recv().await {
                            Ok(event) => {
                                let _ = into.send(event);
                            }
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => return,
                        }
                    }
                }));
                inbox.watch = Some(watch);
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbox not watched");
                inbox.problem = Some(e.to_string());
            }
        }
    }

    /// Pauses or resumes the upload queue, and saves it so a restart stays paused. In-flight
    /// uploads stop at once; see [`crate::uploads::Uploads::set_paused`].
    pub fn pause_uploads(&self, paused: bool) -> Result<(), ServiceError> {
        crate::desktop::update(self.app.home(), |s| s.uploads_paused = paused)?;
        self.app.uploads().set_paused(paused);
        Ok(())
    }

    /// Pauses or resumes watching the inbox folders (saved, as [`Background::pause_uploads`]).
    /// Files that arrive meanwhile are filed on resume (the first scan finds them).
    pub async fn pause_watching(&self, paused: bool) -> Result<(), ServiceError> {
        crate::desktop::update(self.app.home(), |s| s.watching_paused = paused)?;
        let settings = {
            let mut inbox = self.inbox.lock().await;
            inbox.paused = paused;
            inbox.settings.clone()
        };
        self.restart_inbox(settings).await;
        Ok(())
    }

    pub async fn watching_paused(&self) -> bool {
        self.inbox.lock().await.paused
    }

    /// Whether the folders are watched, and the problem when they are not.
    pub async fn inbox_status(&self) -> (bool, Option<String>) {
        let inbox = self.inbox.lock().await;
        (inbox.watch.is_some(), inbox.problem.clone())
    }

    /// Stops the watcher and the receiver (its address is free again on return). The upload
    /// queue stops with the session (the last [`Attache`] dropped); unfinished jobs resume when
    /// the account is opened again.
    pub async fn stop(&self) {
        stop_watching(&mut *self.inbox.lock().await).await;
        let task = self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn stop_watching(inbox: &mut Watching) {
    if let Some(watch) = inbox.watch.take() {
        watch.stop().await;
    }
    if let Some(forward) = inbox.forward.take() {
        forward.abort();
    }
    inbox.problem = None;
}
