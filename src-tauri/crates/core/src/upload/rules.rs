//! What a CRM allows an upload to be, and what the checks before queueing conclude about a
//! file. The checks themselves (sniffing, hashing, walking folders) live in the service crate's
//! uploads room.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What the engine needs to know about a CRM's upload rules, without knowing the CRM.
pub trait UploadRules {
    /// The CRM's name as the user knows it ("Wix", "EspoCRM"), for messages.
    fn crm_name(&self) -> &str;
    fn accepts_mime(&self, mime: &str) -> bool;
    fn max_upload_bytes(&self) -> u64;
}

/// Why a file was not queued. `kind` is stable (the UI branches on it); `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
#[error("{message}")]
pub struct Rejection {
    pub path: String,
    pub kind: RejectionKind,
    pub message: String,
    /// Set when the file can be converted to a type the CRM accepts (the user is asked first).
    pub convert_to: Option<ConvertTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum RejectionKind {
    /// The file disappeared between being chosen and being read.
    Vanished,
    /// It exists but cannot be read (permissions, a device error...).
    Unreadable,
    Empty,
    TooLarge,
    /// The content is not what the extension says (a `.pdf` that is really a JPEG).
    TypeMismatch,
    /// The CRM does not accept this type.
    Unsupported,
    /// A folder that contains itself through a link.
    FolderLoop,
    /// The file changed while it was being read; it is probably still being written.
    Changing,
}

/// A lossless-enough image conversion offered for types the CRM refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ConvertTarget {
    Png,
    Jpeg,
}

/// A file that passed every check, with what its upload job is keyed and verified by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedFile {
    pub path: PathBuf,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch: with `size`, how a change is noticed.
    pub modified_ns: i64,
    /// BLAKE3 of the content, hex.
    pub content_hash: String,
    /// Filed as a document record of its own, linked to the contact (EspoCRM's Documents),
    /// rather than as an attachment of the contact. Set by the caller after the checks.
    pub as_document: bool,
}

impl ConvertTarget {
    pub fn extension(self) -> &'static str {
        match self {
            ConvertTarget::Png => "png",
            ConvertTarget::Jpeg => "jpg",
        }
    }
}
