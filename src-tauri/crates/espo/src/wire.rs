//! EspoCRM's JSON, as far as Attaché reads it. Every field is optional and unknown fields are
//! ignored: an instance may hide fields from the API user's role or add custom ones.

use serde::Deserialize;

/// Every list: `{total, list}`. `total` is -1 or -2 when the server skips counting.
#[derive(Debug, Clone, Deserialize)]
pub struct ListResponse<T> {
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default = "Vec::new")]
    pub list: Vec<T>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Contact {
    pub id: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_address: Option<String>,
    pub phone_number: Option<String>,
    pub account_name: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_state: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_country: Option<String>,
    pub created_at: Option<String>,
}

/// The attributes `GET Contact` asks for (`select`), so lists carry what the UI shows.
pub const CONTACT_SELECT: &str = "id,name,firstName,lastName,emailAddress,phoneNumber,accountName,\
addressStreet,addressCity,addressState,addressPostalCode,addressCountry,createdAt";

/// An Attachment record (`GET Attachment/{id}`, `POST Attachment`, `streamAttachments`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachmentRecord {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub parent_type: Option<String>,
    pub parent_id: Option<String>,
    pub related_type: Option<String>,
    pub related_id: Option<String>,
    pub field: Option<String>,
    pub is_being_uploaded: Option<bool>,
    pub created_at: Option<String>,
}

/// A Document linked to a contact; its file is the Attachment `file_id`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Document {
    pub id: String,
    pub name: Option<String>,
    pub file_id: Option<String>,
    pub file_name: Option<String>,
    pub created_at: Option<String>,
}

pub const DOCUMENT_SELECT: &str = "id,name,fileId,fileName,createdAt";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Note {
    pub id: String,
    pub parent_id: Option<String>,
    pub attachments_ids: Option<Vec<String>>,
}

/// `GET App/user`: who the API user is and the upload limits that apply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppUser {
    pub user: Option<User>,
    pub settings: Option<Settings>,
    pub app_params: Option<AppParams>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub id: Option<String>,
    pub user_name: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub user_type: Option<String>,
}

/// Sizes are in megabytes (spec §1.4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub attachment_upload_max_size: Option<f64>,
    pub attachment_upload_chunk_size: Option<f64>,
    pub site_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppParams {
    pub max_upload_size: Option<f64>,
}

/// `YYYY-MM-DD HH:mm:ss` (always UTC, spec §0) as ISO-8601 with a zone; other shapes pass through.
pub fn iso_timestamp(espo: &str) -> String {
    let t = espo.trim();
    if t.len() == 19 && t.as_bytes()[10] == b' ' {
        format!("{}T{}Z", &t[..10], &t[11..])
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_records_tolerate_missing_and_unknown_fields() {
        let l: ListResponse<AttachmentRecord> = serde_json::from_value(serde_json::json!({
            "total": -2,
            "list": [{"id": "a1", "name": "deed.pdf", "type": null, "somethingNew": 1}]
        }))
        .unwrap();
        assert_eq!(l.total, Some(-2));
        assert_eq!(l.list[0].mime_type, None);
        let empty: ListResponse<Contact> = serde_json::from_str("{}").unwrap();
        assert!(empty.list.is_empty());
    }

    #[test]
    fn timestamps_become_iso() {
        assert_eq!(iso_timestamp("2026-07-02 10:00:00"), "2026-07-02T10:00:00Z");
        assert_eq!(iso_timestamp("2026-07-02"), "2026-07-02");
    }
}
