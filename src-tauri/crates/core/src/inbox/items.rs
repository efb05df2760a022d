//! What the inbox records about each file it took on, as the Inbox panel shows it. The store
//! that keeps these rows lives in the service crate's inbox room.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{MatchReason, Suggestion};
use crate::ErrorPayload;

/// Where an inbox file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum InboxState {
    /// Matched and queued; the upload job says how far it got.
    Uploading,
    /// Attached (verified) and then moved, kept or deleted as configured.
    Filed,
    /// No confident match: waits for the user, with suggestions.
    NeedsFiling,
    /// Could not be filed; retried later when the reason may pass (see `retry_at`).
    Failed,
}

impl InboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Uploading => "uploading",
            InboxState::Filed => "filed",
            InboxState::NeedsFiling => "needsFiling",
            InboxState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "uploading" => InboxState::Uploading,
            "filed" => InboxState::Filed,
            "needsFiling" => InboxState::NeedsFiling,
            _ => InboxState::Failed,
        }
    }
}

/// One inbox file as stored and as the Inbox panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct InboxItem {
    #[ts(type = "number")]
    pub id: i64,
    #[serde(skip)]
    #[ts(skip)]
    pub account: String,
    pub inbox: PathBuf,
    /// Where the file was found.
    pub path: PathBuf,
    pub file_name: String,
    #[ts(type = "number")]
    pub size: u64,
    #[ts(type = "number")]
    pub modified_ns: i64,
    pub state: InboxState,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    pub reason: Option<MatchReason>,
    /// `reason`, in words.
    pub reason_text: Option<String>,
    pub suggestions: Vec<Suggestion>,
    #[ts(type = "number | null")]
    pub job_id: Option<i64>,
    /// Where the file was moved after filing (none when kept or deleted).
    pub filed_path: Option<PathBuf>,
    pub error: Option<ErrorPayload>,
    pub failures: u32,
    /// When a failed file is tried again by itself (ms since the epoch); none when only the
    /// user can help (an unsupported type).
    #[ts(type = "number | null")]
    pub retry_at: Option<i64>,
    #[ts(type = "number")]
    pub updated_at: i64,
}
