//! Wix REST wire types (lowerCamelCase JSON, as sent and received over HTTP).
//!
//! Every field that Wix may omit is optional, unknown fields are ignored, and enums are kept as
//! strings so a value Wix adds tomorrow does not break decoding.

use serde::{Deserialize, Serialize};

/// `{ "items": [...] }`, the one-level wrapper Wix uses for repeated contact fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Items<T> {
    #[serde(default)]
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub revision: Option<i64>,
    pub created_date: Option<String>,
    pub updated_date: Option<String>,
    pub primary_info: Option<PrimaryInfo>,
    pub info: Option<ContactInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrimaryInfo {
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    pub name: Option<Name>,
    pub emails: Option<Items<Email>>,
    pub phones: Option<Items<Phone>>,
    pub addresses: Option<Items<AddressItem>>,
    pub company: Option<String>,
    pub job_title: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Name {
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Email {
    pub id: Option<String>,
    pub tag: Option<String>,
    pub email: Option<String>,
    pub primary: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phone {
    pub id: Option<String>,
    pub tag: Option<String>,
    pub country_code: Option<String>,
    pub phone: Option<String>,
    pub e164_phone: Option<String>,
    pub primary: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddressItem {
    pub id: Option<String>,
    pub tag: Option<String>,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street_address: Option<StreetAddress>,
    pub address_line: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub subdivision: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreetAddress {
    pub number: Option<String>,
    pub name: Option<String>,
}

/// Offset paging, as Contacts v4 and Attachments v4 take it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `pagingMetadata` (contacts) and `metadata` (attachments) share this shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PagingMetadata {
    pub count: Option<u32>,
    pub offset: Option<u32>,
    pub total: Option<u32>,
    pub too_many_to_count: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sorting {
    pub field_name: String,
    /// "ASC" or "DESC".
    pub order: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContactsResponse {
    #[serde(default)]
    pub contacts: Vec<Contact>,
    pub paging_metadata: Option<PagingMetadata>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryContactsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<ContactQuery>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactQuery {
    /// Wix API Query Language, e.g. `{"info.name.last": {"$begins": "Sil"}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sort: Vec<Sorting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetContactResponse {
    pub contact: Contact,
    /// "REGULAR", "IMPLICIT" or "MERGED" (the requested id was merged into `contact.id`).
    pub response_type: Option<String>,
}

/// A file reference inside an attachment (`image`, `previewImage`, `document`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef {
    pub id: Option<String>,
    pub url: Option<String>,
    pub height: Option<u32>,
    pub width: Option<u32>,
    pub alt_text: Option<String>,
    pub url_expiration_date: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactAttachment {
    pub id: String,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub mime_type: String,
    /// "IMAGE", "OTHER" or "UNKNOWN" (kept as a string: unknown values must not fail decoding).
    pub attachment_type: Option<String>,
    pub image: Option<MediaRef>,
    pub preview_image: Option<MediaRef>,
    pub document: Option<MediaRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttachmentsResponse {
    #[serde(default)]
    pub attachments: Vec<ContactAttachment>,
    /// Note: `metadata`, not `pagingMetadata` as in Contacts.
    pub metadata: Option<PagingMetadata>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetAttachmentResponse {
    pub attachment: ContactAttachment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateAttachmentUploadUrlRequest {
    pub contact_id: String,
    pub file_name: String,
    pub mime_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateAttachmentUploadUrlResponse {
    pub upload_url: String,
    pub upload_id: Option<String>,
}

/// The error body: `{"message", "details": {"applicationError" | "validationError"}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: Option<String>,
    pub details: Option<ErrorDetails>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    pub application_error: Option<ApplicationError>,
    pub validation_error: Option<ValidationError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApplicationError {
    pub code: Option<String>,
    pub description: Option<String>,
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationError {
    #[serde(default)]
    pub field_violations: Vec<WireFieldViolation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireFieldViolation {
    pub field: Option<String>,
    pub description: Option<String>,
    pub violated_rule: Option<String>,
    pub rule_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_tolerates_unknown_fields_and_enum_values() {
        let body = r#"{"attachments":[{"id":"a","fileName":"x.heic","mimeType":"image/heic",
            "attachmentType":"HOLOGRAM","futureField":{"x":1},
            "image":{"id":"m","url":"https://x","height":1,"width":2,"urlExpirationDate":"2030-01-01T00:00:00Z"}}],
            "metadata":{"count":1,"offset":0,"total":1,"tooManyToCount":false}}"#;
        let r: ListAttachmentsResponse = serde_json::from_str(body).unwrap();
        assert_eq!(
            r.attachments[0].attachment_type.as_deref(),
            Some("HOLOGRAM")
        );
        assert_eq!(r.metadata.unwrap().total, Some(1));
    }

    #[test]
    fn query_request_omits_empty_parts() {
        let r = QueryContactsRequest {
            search: Some("ana".into()),
            query: None,
        };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"search":"ana"}"#);
    }
}
