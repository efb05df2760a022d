//! The installed app around the window: the tray icon and its menu, closing to the tray,
//! notifications (and what their click opens), files handed over by "Open With" or a second
//! launch, start at login. What to show and when is decided in `attache_service::desktop`;
//! this file only shows it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;

use attache_core::desktop::{DesktopSettings, Notice, NoticeTarget, TrayLook, TrayStatus};
use attache_core::ErrorPayload;
use attache_service::desktop::{tray_icon, Digest, Launch};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt;

use crate::core::{home, Core, Session};

/// The window heard a notification's click (payload: `NoticeTarget`).
pub const NOTICE_OPENED_EVENT: &str = "notice-opened";
/// Files arrived from outside; the window asks for them with `take_opened_files`.
pub const FILES_OPENED_EVENT: &str = "files-opened";
/// The tray changed a setting (a pause): the window re-reads `desktop_state`.
pub const DESKTOP_CHANGED_EVENT: &str = "desktop-changed";

/// The app's icon, which the tray's icons are drawn from.
const APP_ICON: &[u8] = include_bytes!("../../icons/128x128.png");
/// How many notifications at most wait for a click at once (each waits on a thread until the
/// notification closes); more are still shown, without a click action.
const CLICKS_AWAITED: usize = 16;
/// How often the tray re-reads what cannot send events (whether folders are watched).
const TRAY_TICK: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Desktop {
    settings: Mutex<DesktopSettings>,
    status: Mutex<TrayStatus>,
    /// The folders are watched now (closing the window then hides it).
    watching: AtomicBool,
    /// Files handed over and not yet taken by the window.
    opened: Mutex<Vec<PathBuf>>,
    tray: OnceLock<Tray>,
    clicks_awaited: AtomicUsize,
    quitting: AtomicBool,
}

struct Tray {
    status: MenuItem<tauri::Wry>,
    uploads: MenuItem<tauri::Wry>,
    watching: MenuItem<tauri::Wry>,
    icon: TrayIcon,
    /// What the tray shows now (none before the first status).
    shown: Mutex<Option<TrayStatus>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Desktop {
    pub fn settings(&self) -> DesktopSettings {
        lock(&self.settings).clone()
    }

    pub fn status(&self) -> TrayStatus {
        lock(&self.status).clone()
    }

    /// Reads the saved settings and makes the autostart entry agree with them.
    pub fn load(&self, app: &AppHandle) {
        let settings = home()
            .and_then(|h| attache_service::desktop::settings(&h).map_err(ErrorPayload::from))
            .unwrap_or_default();
        *lock(&self.settings) = settings.clone();
        if let Err(e) = apply_autostart(app, settings.start_at_login) {
            tracing::warn!("start at login: {}", e.message);
        }
    }

    /// Saves changed settings (the window's desktop panel) and applies them.
    pub fn save(
        &self,
        app: &AppHandle,
        wanted: DesktopSettings,
    ) -> Result<DesktopSettings, ErrorPayload> {
        apply_autostart(app, wanted.start_at_login)?;
        let saved = attache_service::desktop::update(&home()?, |s| {
            // Pauses belong to the tray (and are saved by pausing); the rest is the panel's.
            *s = DesktopSettings {
                uploads_paused: s.uploads_paused,
                watching_paused: s.watching_paused,
                ..wanted
            }
        })?;
        *lock(&self.settings) = saved.clone();
        Ok(saved)
    }

    /// Whether closing the window should hide it rather than quit.
    fn keeps_running(&self) -> bool {
        let status = self.status();
        self.settings().close_to_tray
            && !self.quitting.load(Ordering::SeqCst)
            && (status.uploading + status.waiting > 0 || self.watching.load(Ordering::SeqCst))
    }

    /// Files handed over from outside: kept for the window, which is shown and told.
    pub fn open_files(&self, app: &AppHandle, files: Vec<PathBuf>) {
        if files.is_empty() {
            return;
        }
        tracing::info!(count = files.len(), "files handed to Attaché");
        lock(&self.opened).extend(files);
        show_window(app);
        let _ = app.emit(FILES_OPENED_EVENT, ());
    }

    pub fn take_opened(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *lock(&self.opened))
    }

    fn set_status(&self, status: TrayStatus) {
        *lock(&self.status) = status.clone();
        let Some(tray) = self.tray.get() else { return };
        let mut shown = lock(&tray.shown);
        if shown.as_ref() == Some(&status) {
            return;
        }
        let headline = status.headline();
        let look = status.look();
        if shown.as_ref().map(|s| s.look()) != Some(look) {
            match tray_image(look) {
                Ok(image) => {
                    let _ = tray.icon.set_icon(Some(image));
                }
                Err(e) => tracing::warn!("tray icon: {e}"),
            }
        }
        let _ = tray.status.set_text(&headline);
        let _ = tray.icon.set_tooltip(Some(format!("Attaché: {headline}")));
        let _ = tray.uploads.set_text(if status.uploads_paused {
            "Resume uploads"
        } else {
            "Pause uploads"
        });
        let _ = tray.watching.set_text(if status.watching_paused {
            "Resume watching"
        } else {
            "Pause watching"
        });
        *shown = Some(status);
    }
}

/// The tray's icon for `look`, as tauri takes it.
fn tray_image(look: TrayLook) -> tauri::Result<tauri::image::Image<'static>> {
    let img = tray_icon(APP_ICON, look)
        .map_err(|e| tauri::Error::InvalidIcon(std::io::Error::other(e)))?;
    let (w, h) = img.dimensions();
    Ok(tauri::image::Image::new_owned(img.into_raw(), w, h))
}

fn apply_autostart(app: &AppHandle, on: bool) -> Result<(), ErrorPayload> {
    let autostart = app.autolaunch();
    let result = match (on, autostart.is_enabled().unwrap_or(false)) {
        (true, false) => autostart.enable(),
        (false, true) => autostart.disable(),
        _ => Ok(()),
    };
    result.map_err(|e| {
        ErrorPayload::new(
            attache_core::ErrorCode::Io,
            format!("the autostart entry could not be changed: {e}"),
        )
    })
}

/// Shows the window (it may be hidden in the tray or minimised) and brings it forward.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// What the app does with its own start: hidden at login, files from "Open With".
pub fn on_launch(app: &AppHandle, launch: Launch) {
    if !launch.hidden || !launch.files.is_empty() {
        show_window(app);
    }
    app.state::<Desktop>().open_files(app, launch.files);
}

/// A second `attache-desktop` started while this one runs: it hands over its arguments and
/// exits; the window is shown (the tray may be invisible, e.g. on stock GNOME).
pub fn on_second_launch(app: &AppHandle, args: Vec<String>, cwd: String) {
    let launch = Launch::parse(args.into_iter().skip(1), std::path::Path::new(&cwd));
    show_window(app);
    app.state::<Desktop>().open_files(app, launch.files);
}

/// The close button: hidden to the tray while work is pending or folders are watched (a
/// setting), with a one-time hint; otherwise the app quits as usual.
pub fn on_close_requested(window: &tauri::Window, api: &tauri::CloseRequestApi) {
    let app = window.app_handle();
    let desktop = app.state::<Desktop>();
    if !desktop.keeps_running() {
        return;
    }
    api.prevent_close();
    let _ = window.hide();
    if !desktop.settings().close_hint_shown {
        notify(
            app,
            Notice {
                kind: attache_core::desktop::NoticeKind::Batch,
                title: "Attaché keeps working in the background".into(),
                body: "Watched folders are filed and uploads finish. Quit from the tray menu; \
                       starting Attaché again shows the window."
                    .into(),
                target: NoticeTarget::Uploads,
            },
        );
        if let Ok(h) = home() {
            let saved = attache_service::desktop::update(&h, |s| s.close_hint_shown = true);
            if let Ok(saved) = saved {
                *lock(&desktop.settings) = saved;
            }
        }
    }
}

/// Builds the tray icon and its menu.
pub fn build_tray(app: &AppHandle) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Starting…", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Attaché", true, None::<&str>)?;
    let uploads = MenuItem::with_id(app, "uploads", "Pause uploads", true, None::<&str>)?;
    let watching = MenuItem::with_id(app, "watching", "Pause watching", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Attaché", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &uploads,
            &watching,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let icon = TrayIconBuilder::with_id("main")
        .icon(tray_image(TrayLook::Idle)?)
        .tooltip("Attaché")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()))
        .build(app)?;
    let desktop = app.state::<Desktop>();
    let _ = desktop.tray.set(Tray {
        status,
        uploads,
        watching,
        icon,
        shown: Mutex::new(None),
    });
    Ok(())
}

fn on_menu(app: &AppHandle, id: &str) {
    match id {
        "open" => show_window(app),
        "quit" => {
            app.state::<Desktop>()
                .quitting
                .store(true, Ordering::SeqCst);
            app.exit(0);
        }
        "uploads" | "watching" => {
            let app = app.clone();
            let which = if id == "uploads" {
                Pausable::Uploads
            } else {
                Pausable::Watching
            };
            tauri::async_runtime::spawn(async move {
                if let Err(e) = toggle_pause(&app, which).await {
                    tracing::warn!("{which:?}: {}", e.message);
                }
            });
        }
        _ => {}
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Pausable {
    Uploads,
    Watching,
}

/// Pause or resume (the tray's items and the window's buttons); saved, so a restart keeps it.
pub async fn set_paused(
    app: &AppHandle,
    which: Pausable,
    paused: bool,
) -> Result<(), ErrorPayload> {
    let session = app.state::<Core>().get().await?;
    match which {
        Pausable::Uploads => session.background.pause_uploads(paused)?,
        Pausable::Watching => session.background.pause_watching(paused).await?,
    }
    let desktop = app.state::<Desktop>();
    let mut status = desktop.status();
    {
        let mut settings = lock(&desktop.settings);
        let (setting, shown) = match which {
            Pausable::Uploads => (&mut settings.uploads_paused, &mut status.uploads_paused),
            Pausable::Watching => (&mut settings.watching_paused, &mut status.watching_paused),
        };
        *setting = paused;
        *shown = paused;
    }
    desktop.set_status(status);
    let _ = app.emit(DESKTOP_CHANGED_EVENT, ());
    Ok(())
}

async fn toggle_pause(app: &AppHandle, which: Pausable) -> Result<(), ErrorPayload> {
    let status = app.state::<Desktop>().status();
    let paused = match which {
        Pausable::Uploads => status.uploads_paused,
        Pausable::Watching => status.watching_paused,
    };
    set_paused(app, which, !paused).await
}

enum News {
    Uploads(attache_core::upload::UploadEvent),
    Inbox(attache_core::inbox::InboxEvent),
    Nothing,
}

/// Follows a session's events for the tray and the notifications, until the session closes.
pub fn follow(app: AppHandle, session: Weak<Session>) {
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let Some(opened) = session.upgrade() else {
            return;
        };
        let mut uploads = opened.background.subscribe_uploads();
        let mut inbox = opened.background.subscribe_inbox();
        let desktop = app.state::<Desktop>();
        let mut digest = Digest::new(desktop.settings().notify);
        digest.seed(&opened.inbox().items(1_000).unwrap_or_default());
        drop(opened);
        let mut tick = tokio::time::interval(TRAY_TICK);
        loop {
            let news = tokio::select! {
                event = uploads.recv() => match event {
                    Ok(event) => News::Uploads(event),
                    Err(RecvError::Lagged(_)) => News::Nothing,
                    Err(RecvError::Closed) => return,
                },
                event = inbox.recv() => match event {
                    Ok(event) => News::Inbox(event),
                    Err(RecvError::Lagged(_)) => News::Nothing,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => News::Nothing,
            };
            // The settings as they are now (Settings may have turned a kind off meanwhile).
            digest.set_notify(desktop.settings().notify);
            let notices = match news {
                News::Uploads(event) => digest.uploads(&event),
                News::Inbox(event) => digest.inbox(&event),
                News::Nothing => Vec::new(),
            };
            let Some(session) = session.upgrade() else {
                return;
            };
            let paused = session.background.watching_paused().await;
            let (watching, _) = session.background.inbox_status().await;
            drop(session);
            digest.set_watching_paused(paused);
            desktop.watching.store(watching, Ordering::SeqCst);
            desktop.set_status(digest.status().clone());
            for notice in notices {
                notify(&app, notice);
            }
        }
    });
}

/// Shows a native notification; a click on it opens its target in the window.
pub fn notify(app: &AppHandle, notice: Notice) {
    let app = app.clone();
    std::thread::spawn(move || {
        let desktop = app.state::<Desktop>();
        let mut note = notify_rust::Notification::new();
        note.appname("Attaché")
            .summary(&notice.title)
            .body(&notice.body)
            .icon("attache-desktop");
        let awaited = desktop.clicks_awaited.fetch_add(1, Ordering::SeqCst) < CLICKS_AWAITED;
        if awaited {
            note.action("default", "Open");
        }
        match note.show() {
            Ok(handle) if awaited => handle.wait_for_action(|action| {
                if action == "default" {
                    show_window(&app);
                    let _ = app.emit(NOTICE_OPENED_EVENT, notice.target.clone());
                }
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("notification not shown: {e}"),
        }
        desktop.clicks_awaited.fetch_sub(1, Ordering::SeqCst);
    });
}

/// Registers what the shell needs besides the window; called from `setup`.
pub fn setup(app: &AppHandle) {
    let desktop = app.state::<Desktop>();
    desktop.load(app);
    if let Err(e) = build_tray(app) {
        // No tray (no StatusNotifier host, no X): the window still works, and a second launch
        // still shows it.
        tracing::warn!("no tray icon: {e}");
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    on_launch(app, Launch::parse(std::env::args().skip(1), &cwd));
}
