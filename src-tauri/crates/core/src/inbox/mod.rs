//! The watched inbox folders as the window and the CLI see them: settings, rules, what happened
//! to each file and why. The inbox room in the service crate (store, matcher, settling, runner)
//! produces these.

mod items;
mod rules;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use items::{InboxItem, InboxState};
pub use rules::{InboxRule, MatchReason, RuleKind, Suggestion, FILED_FOLDER};

/// What happens to a file once its upload is verified. Nothing is moved or deleted before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum AfterFiling {
    /// Into `<inbox>/Filed/<contact name>/`.
    #[default]
    Move,
    /// Left where it is (a rescan knows it is filed).
    Keep,
    Delete,
}

/// One watched folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxFolder {
    pub path: PathBuf,
    /// Poll rather than wait for events; `None` decides by the file system (network shares
    /// are polled).
    #[serde(default)]
    pub poll: Option<bool>,
}

/// The inbox settings (saved with the app's settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxSettings {
    #[serde(default)]
    pub folders: Vec<InboxFolder>,
    #[serde(default)]
    pub after: AfterFiling,
    #[serde(default)]
    pub rules: Vec<InboxRule>,
}

/// What the Inbox panel hears: rows that changed, and how many files are still being written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxEvent {
    pub items: Vec<InboxItem>,
    pub settling: u32,
    /// Folders that could not be watched, with why.
    pub problems: Vec<String>,
}

/// Everything the Inbox panel shows when it opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxOverview {
    pub settings: InboxSettings,
    /// The latest files, newest change first.
    pub items: Vec<InboxItem>,
    /// Whether this window is watching the folders now.
    pub watching: bool,
    /// Why it is not (or not fully), in words.
    pub problem: Option<String>,
}
