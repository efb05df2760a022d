//! Attaché's core: the domain model shared by every CRM, the one backend trait each CRM client
//! implements, the stable error codes the UI branches on, where state lives on disk, and the
//! local SQLite cache the window paints from.
//!
//! Nothing here knows about Tauri, Wix or EspoCRM.

pub mod backend;
pub mod domain;
mod durable;
pub mod error;
pub mod home;
pub mod inbox;
pub mod normalize;
pub mod retry;
pub mod search;
pub mod secret;
pub mod store;
pub mod thumbnail;
pub mod upload;

pub use backend::{CrmBackend, SendError};
pub use domain::*;
pub use error::{BackendError, ErrorCode, ErrorPayload};
pub use home::AppHome;
pub use search::ContactIndex;
pub use secret::Sensitive;
pub use store::{Store, StoreError};
