//! The one trait every CRM client implements. It speaks only the neutral domain model: no Wix
//! paging keys, no EspoCRM entity names.

use std::path::Path;

use async_trait::async_trait;

use crate::upload::{UploadRules, UploadSource};
use crate::{Attachment, BackendError, Capabilities, Contact, ErrorCode};

/// Why a send did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The target refuses any more bytes: already used (perhaps by an earlier send that did
    /// land) or expired. Look for the attachment before preparing a new target.
    #[error("{0}")]
    TargetGone(BackendError),
    /// The target held part of an interrupted send and was thrown away; nothing from it can
    /// land. Prepare a new target (no need to look for the attachment first).
    #[error("{0}")]
    Discarded(BackendError),
    #[error("{0}")]
    Failed(BackendError),
}

#[async_trait]
pub trait CrmBackend: UploadRules + Send + Sync + 'static {
    /// What this CRM can do beyond contacts and attachments; the window offers exactly this.
    fn capabilities(&self) -> Capabilities;

    /// Every contact of the account, all pages fetched.
    async fn list_contacts(&self) -> Result<Vec<Contact>, BackendError>;

    /// Every attachment of one contact, all pages fetched, in the CRM's order.
    async fn list_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError>;

    /// A cheap look at the attachments most likely to be the newest (e.g. the first and last
    /// pages), to confirm an upload landed without paging through a contact's whole history.
    /// May be partial: callers fall back to [`CrmBackend::list_attachments`].
    async fn recent_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        self.list_attachments(contact_id).await
    }

    /// Streams the attachment's bytes into `dest` (created or truncated); returns the byte count.
    async fn download_file(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError>;

    /// Streams the CRM's preview rendition into `dest`, when the attachment has one.
    async fn download_preview(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError>;

    /// The file's size in bytes when the CRM's listing does not carry it (Wix's does not), found
    /// cheaply (e.g. a HEAD request). `Ok(None)` when the CRM cannot tell (the UI then shows no
    /// size); an error when it could not be asked now, which the upload engine must not take
    /// for "cannot tell" (a failed HEAD once let another file's attachment pass for ours).
    async fn file_size(&self, _attachment: &Attachment) -> Result<Option<u64>, BackendError> {
        Ok(None)
    }

    /// Gets somewhere to send a file for this contact (Wix: a generated upload URL). The engine
    /// stores the target before sending, and after a crash sends to the *same* target: upload
    /// targets are single-use, so a send that landed late cannot be doubled by the resend.
    async fn prepare_upload(
        &self,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError>;

    /// Whether a file may be filed as a document record of its own (EspoCRM's Documents), and
    /// if not, why in plain words. Checked before anything is queued.
    fn accepts_as_document(&self, _file_name: &str) -> Result<(), String> {
        Err(format!(
            "{} keeps no separate document records; attach the file to the contact instead",
            self.crm_name()
        ))
    }

    /// Like [`CrmBackend::prepare_upload`], for a file filed as a document record linked to
    /// the contact. Its target is sent to with [`CrmBackend::send_upload`] like any other.
    async fn prepare_document_upload(
        &self,
        _contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError> {
        Err(BackendError::new(
            ErrorCode::InvalidInput,
            self.accepts_as_document(&source.file_name)
                .err()
                .unwrap_or_default(),
        ))
    }

    /// Sends the file's bytes to a prepared target. The body must come from
    /// [`crate::upload::verified_body`] (constant memory, progress, no torn files). Returns once
    /// the CRM accepted the bytes; the caller verifies the attachment appeared.
    async fn send_upload(&self, target: &str, source: &UploadSource) -> Result<(), SendError>;

    /// Prepare and send in one go (no resume): for callers without a durable queue.
    async fn attach_file(
        &self,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<(), BackendError> {
        let target = self.prepare_upload(contact_id, source).await?;
        match self.send_upload(&target, source).await {
            Ok(()) => Ok(()),
            Err(SendError::TargetGone(e) | SendError::Discarded(e) | SendError::Failed(e)) => {
                Err(e)
            }
        }
    }
}
