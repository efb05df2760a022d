//! Uploads as every CRM client and both front ends see them: what a CRM allows, the verified
//! request body the clients send, and the jobs and reports the window shows. The uploads room
//! in the service crate (checks, durable queue, engine) produces these.

mod body;
mod rules;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use body::{
    open_plain, stat, verified_body, verified_range, FileChanged, Progress, UploadSource,
};
pub use rules::{ConvertTarget, InspectedFile, Rejection, RejectionKind, UploadRules};

use crate::ErrorPayload;

/// Where a job is. `Sending` is written before the first byte leaves, so after a crash a job in
/// `Sending` or `Verifying` first looks in the CRM for its attachment before sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum JobState {
    Queued,
    Sending,
    Verifying,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Sending => "sending",
            JobState::Verifying => "verifying",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => JobState::Queued,
            "sending" => JobState::Sending,
            "verifying" => JobState::Verifying,
            "done" => JobState::Done,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Failed,
        }
    }

    /// Nothing more will happen to the job unless the user asks (retry, force).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One file on its way to one contact, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    pub id: i64,
    pub account: String,
    pub contact_id: String,
    pub contact_name: String,
    pub path: PathBuf,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
    pub modified_ns: i64,
    pub content_hash: String,
    pub state: JobState,
    pub baseline: Option<Vec<String>>,
    pub attachment_id: Option<String>,
    pub attempts: u32,
    pub error: Option<ErrorPayload>,
    pub forced: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The prepared upload target (single-use), once there is one.
    pub target: Option<String>,
    /// Filed as a document record linked to the contact (see [`InspectedFile::as_document`]).
    pub as_document: bool,
}

/// A job as the upload tray shows it, progress included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct UploadView {
    #[ts(type = "number")]
    pub id: i64,
    pub contact_id: String,
    pub contact_name: String,
    pub file_name: String,
    pub path: String,
    pub mime_type: String,
    #[ts(type = "number")]
    pub size: u64,
    pub state: JobState,
    /// Bytes handed to the network in the current attempt.
    #[ts(type = "number")]
    pub sent: u64,
    #[ts(type = "number | null")]
    pub bytes_per_second: Option<u64>,
    #[ts(type = "number | null")]
    pub seconds_left: Option<u64>,
    pub attachment_id: Option<String>,
    pub error: Option<ErrorPayload>,
    pub attempts: u32,
}

impl UploadView {
    pub fn of(job: &UploadJob) -> Self {
        UploadView {
            id: job.id,
            contact_id: job.contact_id.clone(),
            contact_name: job.contact_name.clone(),
            file_name: job.file_name.clone(),
            path: job.path.display().to_string(),
            mime_type: job.mime_type.clone(),
            size: job.size,
            state: job.state,
            sent: if job.state == JobState::Done || job.state == JobState::Verifying {
                job.size
            } else {
                0
            },
            bytes_per_second: None,
            seconds_left: None,
            attachment_id: job.attachment_id.clone(),
            error: job.error.clone(),
            attempts: job.attempts,
        }
    }
}

/// What the upload tray receives, at most a few times a second however many files move: the
/// jobs that changed (progress included) since the last event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct UploadEvent {
    pub jobs: Vec<UploadView>,
    /// Jobs sending or verifying now.
    pub active: u32,
    /// Jobs waiting their turn.
    pub waiting: u32,
    /// Set once when the last job of a batch finishes: the summary to notify.
    pub finished_batch: Option<BatchSummary>,
    /// Uploads are paused (the tray): nothing is sent until resumed.
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct BatchSummary {
    pub attached: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// What queuing files did: which were queued (or were already), and which were refused why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct QueueReport {
    pub queued: Vec<UploadView>,
    /// Same content already queued for this contact: nothing added.
    pub already_queued: Vec<UploadView>,
    /// Same content already attached to this contact: nothing added unless forced.
    pub already_attached: Vec<UploadView>,
    pub rejected: Vec<Rejection>,
}
