//! Attaché's domain, shared by every CRM client and both front ends: the neutral model
//! (contacts, attachments, accounts, uploads, inbox items), the one backend trait each CRM client
//! implements, the stable error codes the UI branches on, `Sensitive`, the verified upload body
//! and the retry policy. Nothing heavy: no SQLite, no image or PDF codecs, no file walking; those
//! live in the feature rooms of the service crate.
//!
//! Nothing here knows about Tauri, Wix or EspoCRM.

pub mod backend;
pub mod desktop;
pub mod domain;
pub mod error;
pub mod home;
pub mod inbox;
pub mod normalize;
pub mod retry;
pub mod secret;
pub mod upload;

pub use backend::{CrmBackend, SendError};
pub use domain::*;
pub use error::{BackendError, ErrorCode, ErrorPayload};
pub use home::AppHome;
pub use secret::Sensitive;
