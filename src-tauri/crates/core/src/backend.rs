//! The one trait every CRM client implements. It speaks only the neutral domain model: no Wix
//! paging keys, no EspoCRM entity names.

use std::path::Path;

use async_trait::async_trait;

use crate::upload::{UploadRules, UploadSource};
use crate::{Attachment, BackendError, Contact};

#[async_trait]
pub trait CrmBackend: UploadRules + Send + Sync + 'static {
    /// Every contact of the account, all pages fetched.
    async fn list_contacts(&self) -> Result<Vec<Contact>, BackendError>;

    /// Every attachment of one contact, all pages fetched, in the CRM's order.
    async fn list_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError>;

    /// Streams the attachment's bytes into `dest` (created or truncated); returns the byte count.
    async fn download_file(&self, attachment: &Attachment, dest: &Path) -> Result<u64, BackendError>;

    /// Streams the CRM's preview rendition into `dest`, when the attachment has one.
    async fn download_preview(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError>;

    /// The file's size in bytes when the CRM's listing does not carry it (Wix's does not), found
    /// cheaply (e.g. a HEAD request). `None` when unknown; the UI then shows no size.
    async fn file_size(&self, _attachment: &Attachment) -> Option<u64> {
        None
    }

    /// Sends a local file to a contact and returns once the CRM has accepted the bytes. The body
    /// must come from [`crate::upload::verified_body`] (constant memory, progress, no torn files).
    /// The caller verifies the attachment appeared; this only sends.
    async fn attach_file(&self, contact_id: &str, source: &UploadSource) -> Result<(), BackendError>;
}
