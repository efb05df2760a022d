//! The parts of the watched inbox folders that need neither a watcher nor a network: which
//! contact a file belongs to (and why), when a file is complete, and the durable record of what
//! happened to each file. The service crate's inbox runner drives them.

mod items;
mod matching;
mod settle;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use items::{FoundFile, InboxItem, InboxState, InboxStore};
pub use matching::{
    BadRule, FileMatch, InboxRule, MatchReason, Matcher, RuleKind, Suggestion, FILED_FOLDER,
};
pub use settle::{Settled, Settling, QUIET_CLOSED, QUIET_OPEN, QUIET_UNKNOWN};

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
