//! A client for the Wix REST APIs Attaché uses: Contacts v4, Contact Attachments v4 and the
//! Media Manager's Files API (with resumable tus uploads).
//!
//! Typed requests and responses follow the REST wire types (not the JS SDK's renamed ones), and
//! decoding tolerates unknown fields and enum values. The client's base URL is configurable, so
//! the same code talks to `https://www.wixapis.com` or to the local sandbox.

// `WixError::Api` carries everything the UI shows about a refusal (status, codes, field
// violations, request id); errors are rare next to the network time of a call, so boxing it
// would only add noise at every match.
#![allow(clippy::result_large_err)]

mod backend;
mod client;
mod error;
pub mod media;
pub mod mime;
pub mod webhooks;
pub mod wire;

pub use attache_core::retry::RetryPolicy;
pub use client::{WixAuth, WixClient, DEFAULT_BASE_URL, REQUESTS_PER_MINUTE};
pub use error::{FieldViolation, WixError};
