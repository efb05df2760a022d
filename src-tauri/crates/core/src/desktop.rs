//! The installed app around its window: how it behaves when the window closes, whether it starts
//! at login, what the agent is told while the window is hidden (notifications), and the state
//! the tray shows at a glance. Shared by the shell (which shows them) and the service (which
//! decides them), so the rules are tested without a window.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

fn yes() -> bool {
    true
}

/// Which notifications the agent wants; each kind can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct NotifySettings {
    /// A batch of uploads finished (one summary per batch, never one per file).
    #[serde(default = "yes")]
    pub batches: bool,
    /// A file in a watched folder needs the agent to choose its client.
    #[serde(default = "yes")]
    pub needs_filing: bool,
    /// Uploads failed for good (retries exhausted, or refused).
    #[serde(default = "yes")]
    pub failures: bool,
    /// The CRM refused the saved login.
    #[serde(default = "yes")]
    pub login_refused: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            batches: true,
            needs_filing: true,
            failures: true,
            login_refused: true,
        }
    }
}

impl NotifySettings {
    pub fn allows(&self, kind: NoticeKind) -> bool {
        match kind {
            NoticeKind::Batch => self.batches,
            NoticeKind::NeedsFiling => self.needs_filing,
            NoticeKind::Failed => self.failures,
            NoticeKind::LoginRefused => self.login_refused,
        }
    }
}

/// The app's desktop settings (app-wide, saved in `config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct DesktopSettings {
    /// Closing the window hides it while uploads are pending or folders are watched; the tray's
    /// Quit ends the app. Off: closing the window quits.
    #[serde(default = "yes")]
    pub close_to_tray: bool,
    /// The one-time hint ("Attaché keeps working in the background") was shown.
    #[serde(default)]
    pub close_hint_shown: bool,
    /// An autostart entry starts the app hidden when the agent logs in.
    #[serde(default)]
    pub start_at_login: bool,
    #[serde(default)]
    pub notify: NotifySettings,
    /// Paused from the tray: no upload traffic until resumed (survives a restart).
    #[serde(default)]
    pub uploads_paused: bool,
    /// Paused from the tray: the inbox folders are not watched until resumed.
    #[serde(default)]
    pub watching_paused: bool,
}

impl Default for DesktopSettings {
    fn default() -> Self {
        Self {
            close_to_tray: true,
            close_hint_shown: false,
            start_at_login: false,
            notify: NotifySettings::default(),
            uploads_paused: false,
            watching_paused: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum NoticeKind {
    Batch,
    NeedsFiling,
    Failed,
    LoginRefused,
}

/// What a click on a notification opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[ts(export)]
pub enum NoticeTarget {
    /// The upload tray.
    Uploads,
    /// The Inbox panel, at this file's row.
    InboxItem {
        #[ts(type = "number")]
        id: i64,
    },
    /// The Inbox panel.
    Inbox,
    /// The accounts dialog (to sign in again).
    Accounts,
}

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Notice {
    pub kind: NoticeKind,
    pub title: String,
    pub body: String,
    pub target: NoticeTarget,
}

/// The state at a glance, for the tray icon and its menu.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TrayStatus {
    /// Uploads sending or being verified.
    pub uploading: u32,
    /// Uploads waiting their turn.
    pub waiting: u32,
    /// Inbox files waiting for the agent to choose a client.
    pub needs_filing: u32,
    /// Something the agent must fix (a refused login, a folder that cannot be watched).
    pub problem: Option<String>,
    pub uploads_paused: bool,
    pub watching_paused: bool,
}

impl TrayStatus {
    /// One line for the tray's tooltip and the first (disabled) item of its menu.
    pub fn headline(&self) -> String {
        if let Some(problem) = &self.problem {
            return format!("Problem: {problem}");
        }
        let mut parts = Vec::new();
        let pending = self.uploading + self.waiting;
        if pending > 0 {
            parts.push(if self.uploads_paused {
                format!("{pending} upload{} paused", plural(pending))
            } else {
                format!("{pending} uploading")
            });
        } else if self.uploads_paused {
            parts.push("Uploads paused".to_owned());
        }
        if self.needs_filing > 0 {
            parts.push(format!(
                "{} need{} filing",
                self.needs_filing,
                if self.needs_filing == 1 { "s" } else { "" }
            ));
        }
        if self.watching_paused {
            parts.push("watching paused".to_owned());
        }
        if parts.is_empty() {
            return "Idle: everything is filed".to_owned();
        }
        let mut line = parts.join(", ");
        line[..1].make_ascii_uppercase();
        line
    }

    /// Which of the tray's icons fits: a problem wins over work, work over idle.
    pub fn look(&self) -> TrayLook {
        if self.problem.is_some() {
            TrayLook::Problem
        } else if self.uploads_paused || self.watching_paused {
            TrayLook::Paused
        } else if self.uploading + self.waiting > 0 || self.needs_filing > 0 {
            TrayLook::Busy
        } else {
            TrayLook::Idle
        }
    }
}

/// Files handed to the app from outside ("Open With", `attache-desktop FILE...`) that wait for
/// the agent to choose their client, and the clients they may belong to, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct OpenedFiles {
    pub files: Vec<String>,
    pub suggestions: Vec<crate::inbox::Suggestion>,
}

/// The desktop panel's view: the settings and the state at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct DesktopState {
    pub settings: DesktopSettings,
    pub status: TrayStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayLook {
    Idle,
    Busy,
    Paused,
    Problem,
}

pub fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_says_what_is_going_on() {
        let mut s = TrayStatus::default();
        assert_eq!(s.headline(), "Idle: everything is filed");
        assert_eq!(s.look(), TrayLook::Idle);
        s.uploading = 2;
        s.waiting = 1;
        s.needs_filing = 1;
        assert_eq!(s.headline(), "3 uploading, 1 needs filing");
        assert_eq!(s.look(), TrayLook::Busy);
        s.uploads_paused = true;
        s.needs_filing = 4;
        assert_eq!(s.headline(), "3 uploads paused, 4 need filing");
        assert_eq!(s.look(), TrayLook::Paused);
        s.problem = Some("the CRM refused the login".into());
        assert_eq!(s.headline(), "Problem: the CRM refused the login");
        assert_eq!(s.look(), TrayLook::Problem);
        let paused_only = TrayStatus {
            uploads_paused: true,
            watching_paused: true,
            ..TrayStatus::default()
        };
        assert_eq!(paused_only.headline(), "Uploads paused, watching paused");
    }

    #[test]
    fn settings_missing_from_an_older_config_mean_the_defaults() {
        let s: DesktopSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, DesktopSettings::default());
        assert!(s.close_to_tray && s.notify.batches && !s.start_at_login);
        let s: DesktopSettings = serde_json::from_str(r#"{"notify": {"batches": false}}"#).unwrap();
        assert!(!s.notify.batches && s.notify.failures);
    }
}
