//! The CRM-neutral model. Every backend maps its wire types onto these; the UI receives them as
//! generated TypeScript types (see `ui/src/lib/bindings`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A client of the agent, as shown in the contact list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Contact {
    pub id: String,
    /// "First Last", or the e-mail / phone when the CRM has no name.
    pub display_name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// One line, e.g. "12 Harbor Lane, Portland, ME 04101".
    pub address: Option<String>,
    /// ISO-8601, when the CRM says.
    pub created_at: Option<String>,
}

impl Contact {
    /// Builds the display name the way agents expect to read it: the person's name first, then
    /// whatever identifies them when the CRM holds no name.
    pub fn display_name_from(
        first: Option<&str>,
        last: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> String {
        let name = [first, last]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !name.is_empty() {
            return name;
        }
        email
            .or(phone)
            .map(str::to_owned)
            .unwrap_or_else(|| "(no name)".to_owned())
    }
}

/// What an attachment is, as far as showing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum AttachmentKind {
    /// A picture the CRM can preview.
    Image,
    /// Anything else: PDF, Office documents, CSV...
    Document,
}

/// A file attached to a contact in the CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Attachment {
    pub id: String,
    pub contact_id: String,
    pub file_name: String,
    pub mime_type: String,
    pub kind: AttachmentKind,
    /// Lower-case extension without the dot ("pdf"), empty when the name has none.
    pub extension: String,
    /// Known once the CRM or a download has told us.
    #[ts(type = "number | null")]
    pub size_bytes: Option<u64>,
    /// Where the CRM serves the file. May be signed and expire; the backend refreshes it.
    pub file_url: Option<String>,
    /// A small rendition the CRM offers (images only on Wix).
    pub preview_url: Option<String>,
    pub created_at: Option<String>,
}

impl Attachment {
    pub fn extension_of(file_name: &str) -> String {
        std::path::Path::new(file_name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    }

    pub fn has_preview(&self) -> bool {
        self.preview_url.is_some()
    }

    /// Whether Attaché can draw a thumbnail: from the CRM's preview of an image, or rendered
    /// locally from the file (an image the CRM offers no preview of, a PDF's first page).
    pub fn can_thumbnail(&self) -> bool {
        self.has_preview()
            || self.kind == AttachmentKind::Image
            || self.mime_type == "application/pdf"
            || self.extension == "pdf"
    }
}

/// Which kind of CRM connection an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum AccountKind {
    /// The built-in local Demo site (a sandbox speaking the Wix protocol on loopback).
    Demo,
    /// The same Demo site, reached through its EspoCRM API.
    DemoEspo,
    /// A Wix site reached with an API key and site id.
    WixApiKey,
    /// A Wix site reached as an installed Wix app (client-credentials OAuth).
    WixApp,
    /// An EspoCRM server reached with an API user's key (`X-Api-Key`).
    EspoApiKey,
    /// An EspoCRM server reached with an API user's key and HMAC secret.
    EspoHmac,
}

impl AccountKind {
    /// Which CRM's protocol the account speaks: "Wix" or "EspoCRM".
    pub fn crm(self) -> &'static str {
        match self {
            AccountKind::Demo | AccountKind::WixApiKey | AccountKind::WixApp => "Wix",
            AccountKind::DemoEspo | AccountKind::EspoApiKey | AccountKind::EspoHmac => "EspoCRM",
        }
    }
}

/// The account the app is working against, as the UI shows it. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct AccountInfo {
    /// The key of this account in the config and the cache.
    pub name: String,
    pub kind: AccountKind,
    /// A human label: "Demo site — local, nothing leaves this computer", or the site's name.
    pub label: String,
    pub base_url: String,
    pub site_id: Option<String>,
}

impl AccountInfo {
    pub fn is_demo(&self) -> bool {
        matches!(self.kind, AccountKind::Demo | AccountKind::DemoEspo)
    }
}

/// One screenful of search results from the local cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ContactPage {
    /// The requested slice of the matches, in list order.
    pub contacts: Vec<Contact>,
    /// Index of `contacts[0]` among the matches.
    #[ts(type = "number")]
    pub offset: u64,
    /// How many contacts match in all.
    #[ts(type = "number")]
    pub matched: u64,
    /// How many contacts the cache holds for the account.
    #[ts(type = "number")]
    pub cached_total: u64,
}

/// The saved accounts and which one is current ("demo" for the built-in Demo site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct AccountList {
    pub current: String,
    pub accounts: Vec<AccountInfo>,
}

/// What an account can do, reported by its CRM client: the window and the shells offer a
/// feature when this says so, never by checking which product the account is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Capabilities {
    /// Files can be filed as document records of their own, linked to the contact (EspoCRM's
    /// Documents), besides attachments.
    pub documents: bool,
    /// The site has a Media Manager (Wix's Media Files API).
    pub media_manager: bool,
    /// The CRM can push attachment changes to a webhook receiver (Wix apps' webhooks).
    pub webhooks: bool,
    /// The CRM renders previews of images itself; other thumbnails are rendered locally.
    pub server_thumbnails: bool,
}

/// What the window needs at start: which account it is on, what that account can do, and
/// whether there is a cache to paint from while the first refresh runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct AppStatus {
    pub account: AccountInfo,
    pub capabilities: Capabilities,
    pub contacts_cached: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_prefers_the_persons_name() {
        assert_eq!(
            Contact::display_name_from(Some(" Ana "), Some("Silva"), Some("a@x.com"), None),
            "Ana Silva"
        );
        assert_eq!(
            Contact::display_name_from(None, Some(""), Some("a@x.com"), Some("1")),
            "a@x.com"
        );
        assert_eq!(
            Contact::display_name_from(None, None, None, Some("555")),
            "555"
        );
        assert_eq!(
            Contact::display_name_from(None, None, None, None),
            "(no name)"
        );
    }

    #[test]
    fn extension_is_lower_case_without_dot() {
        assert_eq!(Attachment::extension_of("Deed.PDF"), "pdf");
        assert_eq!(Attachment::extension_of("README"), "");
        assert_eq!(Attachment::extension_of("a.tar.gz"), "gz");
    }
}
