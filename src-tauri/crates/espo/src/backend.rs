//! EspoCRM as an Attaché [`CrmBackend`]. A contact's files are the attachments of the Notes in
//! its stream plus the files of the Documents linked to it; uploads become a stream Note
//! carrying the file, the way a user posts one in EspoCRM's own interface.
//!
//! A file no larger than the instance's chunk size goes in one `POST Attachment` (the data URL
//! in JSON), then a Note; a resend after a crash is prevented by the upload queue, which looks
//! for the landed attachment before it sends again. Larger files take the chunked path (spec
//! §2.5): the attachment record is created empty first, so the queue holds its id *before* any
//! byte leaves. After a crash the queue sends to the same id again, and that id's state says
//! what happened: linked to a Note (it landed: nothing is sent twice), complete but unlinked
//! (only the Note is missing), or partly filled (discarded, and a fresh one is made).

use std::path::Path;

use async_trait::async_trait;
use attache_core::upload::{UploadRules, UploadSource};
use attache_core::{
    Attachment, AttachmentKind, BackendError, Capabilities, Contact, CrmBackend, ErrorCode,
    SendError,
};

use crate::wire::{self, iso_timestamp};
use crate::{AttachmentFor, EspoClient, EspoError};

/// Document.file's default accept list (spec §3(b)): images are refused there.
const DOCUMENT_ACCEPT: &[&str] = &[
    "pdf", "odt", "ods", "odp", "docx", "xlsx", "pptx", "doc", "xls", "ppt", "rtf", "csv", "md",
    "txt",
];

/// Today (UTC) as `YYYY-MM-DD`, a Document's required `publishDate`.
fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

/// Image types the `image` entry point scales (spec §5); others are served as they are.
const SCALED_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// What carries a file on the contact: a Note in its stream, or a Document linked to it.
type Holder = AttachmentFor;

/// A prepared upload: which contact and holder, and, for the chunked path, the empty attachment
/// that receives the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// One request with the whole file, then its holder.
    Whole { holder: Holder, contact_id: String },
    /// Chunks into an attachment created beforehand, then its holder.
    Chunked {
        holder: Holder,
        contact_id: String,
        attachment_id: String,
    },
}

/// Target prefixes, whole then chunked.
fn prefixes(holder: Holder) -> (&'static str, &'static str) {
    match holder {
        Holder::Note => ("espo-note-whole:", "espo-note:"),
        Holder::Document => ("espo-doc-whole:", "espo-doc:"),
    }
}

impl Target {
    fn encode(&self) -> String {
        match self {
            Target::Whole { holder, contact_id } => format!("{}{contact_id}", prefixes(*holder).0),
            Target::Chunked {
                holder,
                contact_id,
                attachment_id,
            } => format!("{}{contact_id}:{attachment_id}", prefixes(*holder).1),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        for holder in [Holder::Note, Holder::Document] {
            let (whole, chunked) = prefixes(holder);
            if let Some(contact_id) = s.strip_prefix(whole) {
                return (!contact_id.is_empty() && !contact_id.contains(':')).then(|| {
                    Target::Whole {
                        holder,
                        contact_id: contact_id.into(),
                    }
                });
            }
            if let Some(rest) = s.strip_prefix(chunked) {
                let (contact_id, attachment_id) = rest.split_once(':')?;
                return (!contact_id.is_empty() && !attachment_id.is_empty()).then(|| {
                    Target::Chunked {
                        holder,
                        contact_id: contact_id.into(),
                        attachment_id: attachment_id.into(),
                    }
                });
            }
        }
        None
    }
}

#[async_trait]
impl CrmBackend for EspoClient {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            documents: true,
            media_manager: false,
            webhooks: false,
            server_thumbnails: self.serves_image_previews(),
        }
    }

    async fn list_contacts(&self) -> Result<Vec<Contact>, BackendError> {
        Ok(self
            .all_contacts()
            .await?
            .into_iter()
            .map(contact_from_wire)
            .collect())
    }

    /// Stream files first (oldest first), then Documents' files not already listed.
    async fn list_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        let mut out: Vec<Attachment> = self
            .all_stream_attachments(contact_id)
            .await?
            .into_iter()
            .map(|a| self.attachment_from_record(contact_id, a))
            .collect();
        for doc in self.all_documents(contact_id).await? {
            if let Some(a) = self.attachment_from_document(contact_id, doc) {
                if !out.iter().any(|o| o.id == a.id) {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    /// The newest page of the stream's files and of the Documents: where an upload lands.
    async fn recent_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        let mut out: Vec<Attachment> = self
            .stream_attachments(contact_id, 0, crate::client::MAX_PAGE, true)
            .await?
            .list
            .into_iter()
            .map(|a| self.attachment_from_record(contact_id, a))
            .collect();
        let documents = self
            .documents(contact_id, 0, crate::client::MAX_PAGE, true)
            .await?
            .list;
        out.extend(
            documents
                .into_iter()
                .filter_map(|d| self.attachment_from_document(contact_id, d)),
        );
        Ok(out)
    }

    async fn download_file(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError> {
        Ok(self.download_attachment(&attachment.id, dest).await?)
    }

    async fn download_preview(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError> {
        if !attachment.has_preview() {
            return Err(BackendError::new(
                ErrorCode::NotFound,
                format!("{} has no preview", attachment.file_name),
            ));
        }
        // Built from the id, never from a stored URL: credentials only go to this site.
        Ok(self
            .download_image(&attachment.id, "xx-large", dest)
            .await?)
    }

    async fn prepare_upload(
        &self,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError> {
        self.prepare(Holder::Note, contact_id, source).await
    }

    fn accepts_as_document(&self, file_name: &str) -> Result<(), String> {
        let ext = Attachment::extension_of(file_name);
        if DOCUMENT_ACCEPT.contains(&ext.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "EspoCRM Documents take only {} files by default (an administrator can widen this under Entity Manager → Document → File); attach it to the contact's stream instead",
                DOCUMENT_ACCEPT.join(", ").to_uppercase()
            ))
        }
    }

    async fn prepare_document_upload(
        &self,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError> {
        self.accepts_as_document(&source.file_name)
            .map_err(|why| BackendError::new(ErrorCode::InvalidInput, why))?;
        self.prepare(Holder::Document, contact_id, source).await
    }

    async fn send_upload(&self, target: &str, source: &UploadSource) -> Result<(), SendError> {
        let (holder, contact_id, id) = match Target::decode(target) {
            Some(Target::Whole { holder, contact_id }) => {
                return self.send_whole(holder, &contact_id, source).await
            }
            Some(Target::Chunked {
                holder,
                contact_id,
                attachment_id,
            }) => (holder, contact_id, attachment_id),
            None => {
                // Not one of ours (e.g. an account's kind changed under a queued job): start over.
                return Err(SendError::TargetGone(BackendError::new(
                    ErrorCode::InvalidInput,
                    "the upload was prepared for another kind of CRM",
                )));
            }
        };
        let id = &id;
        let fresh = self
            .fresh_targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if !fresh {
            match self.get_attachment(id).await {
                Ok(record) if record.parent_id.is_some() || record.related_id.is_some() => {
                    return Err(gone("the file was already attached"));
                }
                Ok(record)
                    if record.is_being_uploaded == Some(false)
                        && record.size == Some(source.size) =>
                {
                    // Complete, only its Note or Document is missing.
                    return self.link(holder, &contact_id, id, source).await;
                }
                Ok(_) => {
                    // Partly filled by an interrupted send; nobody can tell how far it got.
                    // Never linked, so it cannot have landed: discard it and start afresh.
                    if let Err(e) = self.delete_attachment(id).await {
                        tracing::debug!(error = %e, "could not delete an abandoned upload");
                    }
                    return Err(SendError::Discarded(BackendError::new(
                        ErrorCode::Unavailable,
                        "an interrupted upload is started again",
                    )));
                }
                Err(e) if e.status() == Some(404) => return Err(gone("the upload target is gone")),
                Err(e) => return Err(SendError::Failed(e.into())),
            }
        }
        if let Err(e) = self.send_chunks(id, source).await {
            // Whatever part of the file went out is of no use: throw the attachment away (if
            // this fails too, the next attempt finds it partly filled and does it then).
            if let Err(d) = self.delete_attachment(id).await {
                tracing::debug!(error = %d, "could not delete an interrupted upload");
            }
            return Err(if source.progress.file_changed() {
                SendError::Failed(e.into())
            } else {
                SendError::Discarded(e.into())
            });
        }
        self.link(holder, &contact_id, id, source).await
    }
}

fn gone(why: &str) -> SendError {
    SendError::TargetGone(BackendError::new(ErrorCode::Unavailable, why))
}

impl EspoClient {
    /// Gets somewhere to send `source` for `holder`: nothing yet for a file that goes whole,
    /// an empty attachment for one sent in chunks.
    async fn prepare(
        &self,
        holder: Holder,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError> {
        let limits = self.upload_settings().await?;
        if source.size > limits.max_bytes {
            return Err(BackendError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{} is {} MB; this EspoCRM accepts files up to {} MB (Administration > Settings > Attachment upload max size)",
                    source.file_name,
                    source.size.div_ceil(1 << 20),
                    limits.max_bytes >> 20
                ),
            ));
        }
        let contact_id = contact_id.to_owned();
        if source.size <= limits.chunk_bytes {
            return Ok(Target::Whole { holder, contact_id }.encode());
        }
        let record = self
            .begin_attachment(holder, &source.file_name, &source.mime_type, source.size)
            .await?;
        if record.id.is_empty() {
            return Err(EspoError::Decode("the new attachment has no id".into()).into());
        }
        self.fresh_targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.id.clone());
        Ok(Target::Chunked {
            holder,
            contact_id,
            attachment_id: record.id,
        }
        .encode())
    }

    /// Makes the holder that puts the complete attachment on the contact: a stream Note, or a
    /// Document named after the file, published today.
    async fn link(
        &self,
        holder: Holder,
        contact_id: &str,
        attachment_id: &str,
        source: &UploadSource,
    ) -> Result<(), SendError> {
        let made = match holder {
            Holder::Note => self
                .post_note(contact_id, &[attachment_id.to_owned()])
                .await
                .map(|_| ()),
            Holder::Document => {
                let name = std::path::Path::new(&source.file_name)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or(&source.file_name);
                self.create_document(contact_id, name, attachment_id, &today())
                    .await
                    .map(|_| ())
            }
        };
        made.map_err(|e| SendError::Failed(e.into()))
    }

    /// One `POST Attachment` with the file, then its holder. If the holder fails the attachment
    /// is deleted (an unlinked one would be an orphan until EspoCRM's cleanup job).
    async fn send_whole(
        &self,
        holder: Holder,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<(), SendError> {
        let failed = |e: EspoError| SendError::Failed(e.into());
        let bytes = self.read_verified(source).await.map_err(failed)?;
        let record = self
            .create_attachment(holder, &source.file_name, &source.mime_type, &bytes)
            .await
            .map_err(failed)?;
        drop(bytes);
        let linked = self.link(holder, contact_id, &record.id, source).await;
        if linked.is_err() {
            // The holder may have been made with its answer lost: only an unlinked file goes.
            if let Ok(now) = self.get_attachment(&record.id).await {
                if now.parent_id.is_none() && now.related_id.is_none() {
                    let _ = self.delete_attachment(&record.id).await;
                }
            }
        }
        linked
    }

    fn attachment_from_record(&self, contact_id: &str, a: wire::AttachmentRecord) -> Attachment {
        let file_name = a.name.unwrap_or_else(|| a.id.clone());
        let mime_type = a
            .mime_type
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| guess_mime(&file_name));
        self.attachment(contact_id, a.id, file_name, mime_type, a.size, a.created_at)
    }

    fn attachment_from_document(&self, contact_id: &str, d: wire::Document) -> Option<Attachment> {
        let id = d.file_id.filter(|f| !f.is_empty())?;
        let file_name = d.file_name.or(d.name).unwrap_or_else(|| id.clone());
        let mime_type = guess_mime(&file_name);
        Some(self.attachment(contact_id, id, file_name, mime_type, None, d.created_at))
    }

    fn attachment(
        &self,
        contact_id: &str,
        id: String,
        file_name: String,
        mime_type: String,
        size: Option<u64>,
        created_at: Option<String>,
    ) -> Attachment {
        let is_image = mime_type.starts_with("image/");
        let preview_url = (self.serves_image_previews()
            && SCALED_IMAGE_TYPES.contains(&mime_type.as_str()))
        .then(|| self.image_url(&id, "xx-large").to_string());
        Attachment {
            extension: Attachment::extension_of(&file_name),
            contact_id: contact_id.to_owned(),
            kind: if is_image {
                AttachmentKind::Image
            } else {
                AttachmentKind::Document
            },
            size_bytes: size,
            file_url: None,
            preview_url,
            created_at: created_at.as_deref().map(iso_timestamp),
            id,
            file_name,
            mime_type,
        }
    }
}

fn guess_mime(file_name: &str) -> String {
    mime_guess::from_path(file_name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

/// EspoCRM accepts any type on a stream note (no accept list by default); the size limit is
/// the instance's `attachmentUploadMaxSize`, checked again once read.
impl UploadRules for EspoClient {
    fn crm_name(&self) -> &str {
        "EspoCRM"
    }
    fn accepts_mime(&self, _mime: &str) -> bool {
        true
    }
    fn max_upload_bytes(&self) -> u64 {
        self.known_max_bytes()
    }
}

pub(crate) fn contact_from_wire(c: wire::Contact) -> Contact {
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let first = non_empty(c.first_name);
    let last = non_empty(c.last_name);
    let email = non_empty(c.email_address);
    let phone = non_empty(c.phone_number);
    let mut display_name = Contact::display_name_from(
        first.as_deref(),
        last.as_deref(),
        email.as_deref(),
        phone.as_deref(),
    );
    if first.is_none() && last.is_none() {
        if let Some(name) = non_empty(c.name.clone()) {
            display_name = name;
        }
    }
    let region = [non_empty(c.address_state), non_empty(c.address_postal_code)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let address = [
        non_empty(c.address_street).map(|s| s.replace('\n', ", ")),
        non_empty(c.address_city),
        Some(region).filter(|r| !r.is_empty()),
        non_empty(c.address_country),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    Contact {
        id: c.id,
        display_name,
        first_name: first,
        last_name: last,
        email,
        phone,
        company: non_empty(c.account_name),
        address: Some(address).filter(|a| !a.is_empty()),
        created_at: c.created_at.as_deref().map(iso_timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_and_foreign_ones_are_refused() {
        let t = Target::Chunked {
            holder: Holder::Note,
            contact_id: "c1".into(),
            attachment_id: "a1".into(),
        };
        assert_eq!(Target::decode(&t.encode()), Some(t));
        let w = Target::Whole {
            holder: Holder::Note,
            contact_id: "c1".into(),
        };
        assert_eq!(Target::decode(&w.encode()), Some(w));
        for holder in [Holder::Note, Holder::Document] {
            let t = Target::Chunked {
                holder,
                contact_id: "c1".into(),
                attachment_id: "a1".into(),
            };
            assert_eq!(Target::decode(&t.encode()), Some(t));
            let w = Target::Whole {
                holder,
                contact_id: "c1".into(),
            };
            assert_eq!(Target::decode(&w.encode()), Some(w));
        }
        assert!(today().len() == 10 && today().starts_with("20"));
        assert_eq!(Target::decode("http://upload.wix.com/x"), None);
        assert_eq!(Target::decode("espo-note:c1:"), None);
        assert_eq!(Target::decode("espo-note-whole:"), None);
    }

    #[test]
    fn contact_mapping() {
        let c: wire::Contact = serde_json::from_value(serde_json::json!({
            "id": "c1", "name": "Ms. Ana Silva", "firstName": "Ana", "lastName": "Silva",
            "emailAddress": "ana@x.com", "phoneNumber": "+1 207 555 0142", "accountName": "",
            "addressStreet": "12 Harbor Lane", "addressCity": "Portland", "addressState": "ME",
            "addressPostalCode": "04101", "addressCountry": null, "createdAt": "2026-07-02 10:00:00"
        }))
        .unwrap();
        let c = contact_from_wire(c);
        assert_eq!(c.display_name, "Ana Silva");
        assert_eq!(c.company, None);
        assert_eq!(
            c.address.as_deref(),
            Some("12 Harbor Lane, Portland, ME 04101")
        );
        assert_eq!(c.created_at.as_deref(), Some("2026-07-02T10:00:00Z"));
        let nameless = contact_from_wire(wire::Contact {
            id: "c2".into(),
            name: Some("Bayview Realty".into()),
            ..Default::default()
        });
        assert_eq!(nameless.display_name, "Bayview Realty");
    }
}
