//! The desktop room: what the installed app needs around its window, decided here so it is
//! tested without one. Its settings (close to the tray, start at login, which notifications,
//! what is paused) live in `config.json`; [`Digest`] turns the upload and inbox events into
//! the tray's state at a glance and the notifications worth showing: one summary per batch
//! (never one per file), each file that needs filing (many at once: one notice), a refused
//! login once until it works again. [`Launch`] reads what the app was started with ("Open
//! With" files, `--hidden` from the autostart entry); [`tray_icon`] draws the tray's icons.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use attache_core::desktop::{
    plural, DesktopSettings, Notice, NoticeKind, NoticeTarget, NotifySettings, TrayLook, TrayStatus,
};
use attache_core::inbox::{InboxEvent, InboxItem, InboxState};
use attache_core::upload::{JobState, UploadEvent};
use attache_core::{AppHome, ErrorCode};

use crate::accounts::Config;
use crate::ServiceError;

/// The saved desktop settings (defaults when none were saved).
pub fn settings(home: &AppHome) -> Result<DesktopSettings, ServiceError> {
    Ok(Config::load(home)?.desktop)
}

/// Changes the saved desktop settings and returns them as saved.
pub fn update(
    home: &AppHome,
    change: impl FnOnce(&mut DesktopSettings),
) -> Result<DesktopSettings, ServiceError> {
    let mut config = Config::load(home)?;
    change(&mut config.desktop);
    config.save(home)?;
    Ok(config.desktop)
}

/// What the app was started with: `attache-desktop [--hidden] [FILE | file://URL]...` (a file
/// manager's "Open With" passes paths or URLs; the autostart entry passes `--hidden`). The
/// running instance receives a later launch's arguments the same way.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// Start with the window hidden (start at login).
    pub hidden: bool,
    /// Files to file, absolute; what names no local file is dropped with a warning.
    pub files: Vec<PathBuf>,
}

impl Launch {
    /// `args` without the program name; relative paths are taken from `cwd` (the launching
    /// process's, which differs from ours when the running instance receives them).
    pub fn parse<I: IntoIterator<Item = String>>(args: I, cwd: &Path) -> Launch {
        let mut launch = Launch::default();
        for arg in args {
            match arg.as_str() {
                "--hidden" => launch.hidden = true,
                // Other options are the toolkit's or a later version's: not files.
                a if a.starts_with("--") => {}
                a if a.starts_with("file:") => match url::Url::parse(a).map(|u| u.to_file_path()) {
                    Ok(Ok(path)) => launch.files.push(path),
                    _ => tracing::warn!("not a local file: {a}"),
                },
                a if a.contains("://") => tracing::warn!("not a local file: {a}"),
                a => launch.files.push(cwd.join(a)),
            }
        }
        launch
    }
}

/// The tray icon for `look`: the app's icon with a coloured dot in its lower right corner
/// (none when idle), as RGBA; drawn at start-up rather than shipped as four more files.
pub fn tray_icon(app_icon: &[u8], look: TrayLook) -> Result<image::RgbaImage, image::ImageError> {
    let mut icon = image::load_from_memory(app_icon)?.to_rgba8();
    let colour = match look {
        TrayLook::Idle => return Ok(icon),
        TrayLook::Busy => [0x25, 0x63, 0xeb, 0xff],
        TrayLook::Paused => [0x9c, 0xa3, 0xaf, 0xff],
        TrayLook::Problem => [0xdc, 0x26, 0x26, 0xff],
    };
    let (w, h) = icon.dimensions();
    let r = w.min(h) as f32 * 0.22;
    let (cx, cy) = (w as f32 - r - 0.5, h as f32 - r - 0.5);
    for (x, y, px) in icon.enumerate_pixels_mut() {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        if d <= r {
            // A white ring a pixel wide keeps the dot visible on a dark or light panel.
            *px = image::Rgba(if d > r - 1.2 { [0xff; 4] } else { colour });
        }
    }
    Ok(icon)
}

/// Failed jobs remembered as told (then forgotten all at once: a failure told twice after
/// ten thousand others is no flood).
const TOLD_FAILURES_KEPT: usize = 10_000;

/// How many file names a notice lists before "and N more".
const NAMES_LISTED: usize = 3;

/// Follows a session's events; see the module header.
#[derive(Debug, Default)]
pub struct Digest {
    notify: NotifySettings,
    status: TrayStatus,
    /// Inbox files waiting for a client, by id: counted for the tray, each told once.
    needs_filing: HashSet<i64>,
    /// Jobs of the running batch that failed for good (each counted once), and the names of
    /// those never told before.
    failed: HashSet<i64>,
    failed_names: Vec<String>,
    /// Jobs whose failure was told: one retried (by the inbox, or the agent) that fails again
    /// is not announced again.
    told_failed: HashSet<i64>,
    /// Where the running batch's files went, for the summary.
    attached_to: BTreeSet<String>,
    /// A refused login was told; told again only after an upload worked meanwhile.
    login_refused: bool,
    inbox_problem: Option<String>,
}

impl Digest {
    pub fn new(notify: NotifySettings) -> Self {
        Self {
            notify,
            ..Self::default()
        }
    }

    pub fn set_notify(&mut self, notify: NotifySettings) {
        self.notify = notify;
    }

    /// The inbox's files as the session opened: those waiting are counted, not announced
    /// (the agent sees them in the window).
    pub fn seed(&mut self, items: &[InboxItem]) {
        for item in items.iter().filter(|i| i.state == InboxState::NeedsFiling) {
            self.needs_filing.insert(item.id);
        }
        self.status.needs_filing = self.needs_filing.len() as u32;
    }

    pub fn set_watching_paused(&mut self, paused: bool) {
        self.status.watching_paused = paused;
    }

    pub fn status(&self) -> &TrayStatus {
        &self.status
    }

    /// An upload event: the tray's counts, and the notices it brings.
    pub fn uploads(&mut self, event: &UploadEvent) -> Vec<Notice> {
        self.status.uploading = event.active;
        self.status.waiting = event.waiting;
        self.status.uploads_paused = event.paused;
        let mut notices = Vec::new();
        for job in &event.jobs {
            match job.state {
                JobState::Done => {
                    self.attached_to.insert(job.contact_name.clone());
                    self.login_refused = false;
                }
                JobState::Failed if self.failed.insert(job.id) => {
                    let why = job.error.as_ref();
                    if why.map(|e| e.code) == Some(ErrorCode::Unauthenticated)
                        && !self.login_refused
                    {
                        self.login_refused = true;
                        notices.push(Notice {
                            kind: NoticeKind::LoginRefused,
                            title: "The CRM refused the login".into(),
                            body: "Uploads stop until you sign in again.".into(),
                            target: NoticeTarget::Accounts,
                        });
                    }
                    if self.told_failed.len() >= TOLD_FAILURES_KEPT {
                        self.told_failed.clear();
                    }
                    if self.told_failed.insert(job.id) {
                        self.failed_names.push(match why {
                            Some(e) => format!("{}: {}", job.file_name, e.message),
                            None => job.file_name.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(batch) = event.finished_batch {
            let to = std::mem::take(&mut self.attached_to);
            let failed = std::mem::take(&mut self.failed_names);
            self.failed.clear();
            let newly_failed = failed.len() as u32;
            if newly_failed > 0 {
                let mut title = format!("{newly_failed} upload{} failed", plural(newly_failed));
                if batch.attached > 0 {
                    title += &format!(", {} attached", batch.attached);
                }
                notices.push(Notice {
                    kind: NoticeKind::Failed,
                    title,
                    body: listed(&failed, failed.len(), "\n"),
                    target: NoticeTarget::Uploads,
                });
            } else if batch.attached > 0 {
                let names: Vec<String> = to.into_iter().collect();
                notices.push(Notice {
                    kind: NoticeKind::Batch,
                    title: format!("{} file{} attached", batch.attached, plural(batch.attached)),
                    body: match names.len() {
                        0 => "Each one verified on the CRM.".into(),
                        1 => format!("To {}, each one verified on the CRM.", names[0]),
                        n => format!("To {}.", listed(&names, n, ", ")),
                    },
                    target: NoticeTarget::Uploads,
                });
            }
        }
        self.status.problem = self.problem();
        self.allowed(notices)
    }

    /// An inbox event: files that now need filing, folders that cannot be watched.
    pub fn inbox(&mut self, event: &InboxEvent) -> Vec<Notice> {
        let mut new = Vec::new();
        for item in &event.items {
            if item.state == InboxState::NeedsFiling {
                if self.needs_filing.insert(item.id) {
                    new.push(item);
                }
            } else {
                self.needs_filing.remove(&item.id);
            }
        }
        self.status.needs_filing = self.needs_filing.len() as u32;
        self.inbox_problem = event.problems.first().cloned();
        self.status.problem = self.problem();
        let notice = match new.as_slice() {
            [] => None,
            [item] => Some(Notice {
                kind: NoticeKind::NeedsFiling,
                title: format!("{} needs filing", item.file_name),
                body: match item.suggestions.first() {
                    Some(s) => format!("Is it {}'s? Choose its client in Attaché.", s.contact_name),
                    None => "Choose its client in Attaché.".into(),
                },
                target: NoticeTarget::InboxItem { id: item.id },
            }),
            many => {
                let names: Vec<String> = many.iter().map(|i| i.file_name.clone()).collect();
                Some(Notice {
                    kind: NoticeKind::NeedsFiling,
                    title: format!("{} files need filing", many.len()),
                    body: listed(&names, names.len(), ", "),
                    target: NoticeTarget::Inbox,
                })
            }
        };
        self.allowed(notice.into_iter().collect())
    }

    fn problem(&self) -> Option<String> {
        if self.login_refused {
            return Some("the CRM refused the login".into());
        }
        self.inbox_problem.clone()
    }

    fn allowed(&self, notices: Vec<Notice>) -> Vec<Notice> {
        notices
            .into_iter()
            .filter(|n| self.notify.allows(n.kind))
            .collect()
    }
}

/// The first few of `names` joined by `sep`, and how many more there were (of `total`).
fn listed(names: &[String], total: usize, sep: &str) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(NAMES_LISTED)
        .map(String::as_str)
        .collect();
    let mut text = shown.join(sep);
    let more = total.saturating_sub(shown.len());
    if more > 0 {
        text += &format!("{sep}and {more} more");
    }
    text
}

#[cfg(test)]
mod tests;
