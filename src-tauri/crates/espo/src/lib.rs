//! A client for the EspoCRM REST API (`{site}/api/v1/`), as far as Attaché needs it: contacts,
//! the files in a contact's stream (attachments of its Notes) and its Documents, chunked uploads
//! linked to the contact by a Note, downloads, image thumbnails from the `image` entry point.
//!
//! The contract is `../shared/specs/espocrm-api.md`. Decoding tolerates unknown fields; every
//! refusal surfaces the server's `X-Status-Reason`, which is EspoCRM's only machine-readable
//! error detail.

mod auth;
mod backend;
mod client;
mod error;
pub mod wire;

pub use auth::{hmac_authorization, EspoAuth};
pub use client::{AttachmentFor, ContactSearch, EspoClient, UploadSettings, Where, WhereKind};
pub use error::EspoError;
