//! Wix as an Attaché [`CrmBackend`]: maps the wire types onto the neutral domain model.

use std::path::Path;

use async_trait::async_trait;
use attache_core::upload::{UploadRules, UploadSource};
use attache_core::{
    Attachment, AttachmentKind, BackendError, Capabilities, Contact, CrmBackend, ErrorCode,
    SendError,
};

use crate::wire::{self, Paging};
use crate::WixClient;

#[async_trait]
impl CrmBackend for WixClient {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            documents: false,
            media_manager: true,
            webhooks: true,
            // Wix serves image renditions at any size (`wix:image` URLs).
            server_thumbnails: true,
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

    async fn list_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        Ok(self
            .all_attachments(contact_id)
            .await?
            .into_iter()
            .map(|a| attachment_from_wire(contact_id, a))
            .collect())
    }

    /// The first page and, when there are more, the last: the list's order is UNCONFIRMED
    /// (wix-api.md §2), and the newest attachment sits at one end in either order. Two calls
    /// whatever the contact's history, instead of one per hundred attachments.
    async fn recent_attachments(&self, contact_id: &str) -> Result<Vec<Attachment>, BackendError> {
        let page = crate::client::ATTACHMENTS_PAGE;
        let first = self
            .list_attachments(
                contact_id,
                Paging {
                    limit: Some(page),
                    offset: Some(0),
                },
            )
            .await?;
        let total = first.metadata.as_ref().and_then(|m| m.total);
        let mut items = first.attachments;
        match total {
            Some(total) if total > page => {
                let tail = self
                    .list_attachments(
                        contact_id,
                        Paging {
                            limit: Some(page),
                            offset: Some(total - page),
                        },
                    )
                    .await?;
                items.extend(tail.attachments);
            }
            Some(_) => {}
            // No total: the whole list is the only sure answer.
            None => return CrmBackend::list_attachments(self, contact_id).await,
        }
        Ok(items
            .into_iter()
            .map(|a| attachment_from_wire(contact_id, a))
            .collect())
    }

    async fn download_file(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError> {
        self.download_fresh(attachment, dest, |a| a.file_url.clone())
            .await
    }

    async fn download_preview(
        &self,
        attachment: &Attachment,
        dest: &Path,
    ) -> Result<u64, BackendError> {
        self.download_fresh(attachment, dest, |a| a.preview_url.clone())
            .await
    }

    async fn file_size(&self, attachment: &Attachment) -> Result<Option<u64>, BackendError> {
        match attachment.file_url.as_deref() {
            Some(url) => Ok(self.content_length(url).await?),
            None => Ok(None),
        }
    }

    async fn prepare_upload(
        &self,
        contact_id: &str,
        source: &UploadSource,
    ) -> Result<String, BackendError> {
        let mime = &source.mime_type;
        if !crate::mime::is_supported_attachment_type(mime) {
            return Err(BackendError::new(
                ErrorCode::InvalidInput,
                format!("Wix does not accept {mime} files as contact attachments"),
            ));
        }
        Ok(self
            .generate_attachment_upload_url(contact_id, &source.file_name, mime)
            .await?
            .upload_url)
    }

    async fn send_upload(&self, target: &str, source: &UploadSource) -> Result<(), SendError> {
        match self.upload_to_url(target, source).await {
            Ok(()) => Ok(()),
            Err(e) if upload_url_spent(&e) && !source.progress.file_changed() => {
                Err(SendError::TargetGone(e.into()))
            }
            Err(e) => Err(SendError::Failed(e.into())),
        }
    }
}

/// An upload URL that takes no more bytes: refused (expired, unknown) or already used. Upload
/// hosts answer this differently (UNCONFIRMED, wix-api.md §2a), so every such answer counts.
fn upload_url_spent(e: &crate::WixError) -> bool {
    match e {
        crate::WixError::Api {
            status: 401 | 403 | 404 | 410,
            ..
        } => true,
        crate::WixError::Api {
            status: 429,
            application_code,
            ..
        } => application_code.as_deref() == Some("RESOURCE_EXHAUSTED"),
        _ => false,
    }
}

/// Wix documents no size limit for attachments (UNCONFIRMED, wix-api.md §6); this is the limit
/// Attaché applies, beyond which its Media Manager path is meant for.
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 30;

impl UploadRules for WixClient {
    fn crm_name(&self) -> &str {
        "Wix"
    }
    fn accepts_mime(&self, mime: &str) -> bool {
        crate::mime::is_supported_attachment_type(mime)
    }
    fn max_upload_bytes(&self) -> u64 {
        MAX_ATTACHMENT_BYTES
    }
}

impl WixClient {
    /// Downloads from the listed URL; only when the file host refuses it (expired signature,
    /// moved file) is the attachment re-read for a current URL. Re-reading first would spend one
    /// API call per thumbnail out of the site's 200-a-minute budget.
    async fn download_fresh(
        &self,
        attachment: &Attachment,
        dest: &Path,
        pick: impl Fn(&Attachment) -> Option<String>,
    ) -> Result<u64, BackendError> {
        if let Some(url) = pick(attachment) {
            match self.download_url(&url, dest).await {
                Ok(n) => return Ok(n),
                Err(crate::WixError::Api {
                    status: 401 | 403 | 404 | 410,
                    ..
                }) => {
                    tracing::debug!("file URL refused; re-reading the attachment for a fresh one");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let url = self.fresh_url(attachment, pick).await?;
        Ok(self.download_url(&url, dest).await?)
    }

    /// Attachment URLs may be signed and expire; re-read the attachment to get a current one.
    /// Falls back to the cached URL when the re-read fails for a reason other than "gone".
    async fn fresh_url(
        &self,
        attachment: &Attachment,
        pick: impl Fn(&Attachment) -> Option<String>,
    ) -> Result<String, BackendError> {
        let fresh = match self
            .get_attachment(&attachment.contact_id, &attachment.id)
            .await
        {
            Ok(r) => Some(attachment_from_wire(&attachment.contact_id, r.attachment)),
            Err(e) if e.code() == ErrorCode::NotFound => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh attachment URL; using cached one");
                None
            }
        };
        fresh
            .as_ref()
            .and_then(&pick)
            .or_else(|| pick(attachment))
            .ok_or_else(|| {
                BackendError::new(
                    ErrorCode::NotFound,
                    "Wix offers no file for this attachment",
                )
            })
    }
}

pub(crate) fn contact_from_wire(c: wire::Contact) -> Contact {
    let info = c.info.unwrap_or_default();
    let primary = c.primary_info.unwrap_or_default();
    let name = info.name.unwrap_or_default();
    let email = primary.email.filter(|e| !e.is_empty()).or_else(|| {
        let items = info
            .emails
            .as_ref()
            .map(|e| e.items.as_slice())
            .unwrap_or_default();
        pick_primary(items, |e| e.primary, |e| e.email.clone())
    });
    let phone = primary.phone.filter(|p| !p.is_empty()).or_else(|| {
        let items = info
            .phones
            .as_ref()
            .map(|p| p.items.as_slice())
            .unwrap_or_default();
        pick_primary(
            items,
            |p| p.primary,
            |p| p.phone.clone().or(p.e164_phone.clone()),
        )
    });
    let address = info
        .addresses
        .and_then(|a| a.items.into_iter().find_map(|i| i.address))
        .map(format_address)
        .filter(|a| !a.is_empty());
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let first = non_empty(name.first);
    let last = non_empty(name.last);
    Contact {
        display_name: Contact::display_name_from(
            first.as_deref(),
            last.as_deref(),
            email.as_deref(),
            phone.as_deref(),
        ),
        id: c.id,
        first_name: first,
        last_name: last,
        email,
        phone,
        company: non_empty(info.company),
        address,
        created_at: c.created_date,
    }
}

fn pick_primary<T>(
    items: &[T],
    is_primary: impl Fn(&T) -> Option<bool>,
    value: impl Fn(&T) -> Option<String>,
) -> Option<String> {
    items
        .iter()
        .find(|i| is_primary(i) == Some(true))
        .and_then(&value)
        .or_else(|| items.iter().find_map(&value))
}

fn format_address(a: wire::Address) -> String {
    let street = match (a.street_address, a.address_line) {
        (Some(s), _) => [s.number, s.name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        (None, Some(line)) => line,
        (None, None) => String::new(),
    };
    let region = [
        a.subdivision
            .map(|s| s.rsplit('-').next().unwrap_or(&s).to_owned()),
        a.postal_code,
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    [Some(street), a.address_line2, a.city, Some(region)]
        .into_iter()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn attachment_from_wire(contact_id: &str, a: wire::ContactAttachment) -> Attachment {
    let is_image = a.attachment_type.as_deref() == Some("IMAGE")
        || (a.attachment_type.is_none() && a.image.is_some());
    let file_url = a
        .image
        .as_ref()
        .and_then(|m| m.url.clone())
        .or_else(|| a.document.as_ref().and_then(|m| m.url.clone()));
    let preview_url = a.preview_image.as_ref().and_then(|m| m.url.clone());
    Attachment {
        extension: Attachment::extension_of(&a.file_name),
        id: a.id,
        contact_id: contact_id.to_owned(),
        file_name: a.file_name,
        mime_type: a.mime_type,
        kind: if is_image {
            AttachmentKind::Image
        } else {
            AttachmentKind::Document
        },
        size_bytes: None,
        file_url,
        preview_url,
        created_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_mapping_uses_primary_info_then_items() {
        let c: wire::Contact = serde_json::from_value(serde_json::json!({
            "id": "c1", "revision": 3,
            "info": {
                "name": {"first": "Ana", "last": "Silva"},
                "emails": {"items": [{"email": "old@x.com"}, {"email": "ana@x.com", "primary": true}]},
                "phones": {"items": [{"phone": "207-555-0142", "tag": "MOBILE"}]},
                "addresses": {"items": [{"tag": "HOME", "address": {
                    "streetAddress": {"number": "12", "name": "Harbor Lane"},
                    "city": "Portland", "subdivision": "US-ME", "postalCode": "04101"}}]},
                "company": "  "
            }
        }))
        .unwrap();
        let c = contact_from_wire(c);
        assert_eq!(c.display_name, "Ana Silva");
        assert_eq!(c.email.as_deref(), Some("ana@x.com"));
        assert_eq!(c.phone.as_deref(), Some("207-555-0142"));
        assert_eq!(
            c.address.as_deref(),
            Some("12 Harbor Lane, Portland, ME 04101")
        );
        assert_eq!(c.company, None);
    }

    #[test]
    fn attachment_mapping_handles_images_documents_and_unknown_types() {
        let img = attachment_from_wire("c", serde_json::from_value(serde_json::json!({
            "id": "a", "fileName": "Kitchen.JPG", "mimeType": "image/jpeg", "attachmentType": "IMAGE",
            "image": {"url": "http://h/full"}, "previewImage": {"url": "http://h/small"}
        })).unwrap());
        assert_eq!(img.kind, AttachmentKind::Image);
        assert_eq!(img.extension, "jpg");
        assert_eq!(img.preview_url.as_deref(), Some("http://h/small"));

        let doc = attachment_from_wire("c", serde_json::from_value(serde_json::json!({
            "id": "b", "fileName": "deed.pdf", "mimeType": "application/pdf", "attachmentType": "SOMETHING_NEW",
            "document": {"url": "http://h/doc"}
        })).unwrap());
        assert_eq!(doc.kind, AttachmentKind::Document);
        assert_eq!(doc.file_url.as_deref(), Some("http://h/doc"));
        assert!(!doc.has_preview());
    }
}
