//! Errors that cross into the UI. Each crate has its own `thiserror` enum; all of them map onto
//! one [`ErrorCode`], which is what the UI branches on (never the message text).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A stable, machine-readable error class. Adding a variant is fine; renaming one breaks the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[ts(export)]
pub enum ErrorCode {
    /// The CRM refused the credentials (wrong or revoked key, expired token).
    Unauthenticated,
    /// The credentials are valid but lack a permission, or the site id is missing.
    PermissionDenied,
    /// The contact, attachment or site does not exist (any more).
    NotFound,
    /// The request was refused as invalid (a limit, a type the CRM does not accept...).
    InvalidInput,
    /// Too many requests; try again later.
    RateLimited,
    /// The CRM could not be reached or failed on its side; retrying may help.
    Unavailable,
    /// The CRM answered something we could not understand.
    BadResponse,
    /// The local cache could not be read or written.
    Storage,
    /// A local file could not be read or written.
    Io,
    /// The app is still starting, or no account is open.
    NotReady,
    /// No system keyring (Secret Service, Keychain, Credential Manager) is reachable.
    KeyringUnavailable,
    /// The system keyring is locked and could not be unlocked.
    KeyringLocked,
    /// No application on this computer opens this kind of file (opening, not downloading, failed).
    NoApplication,
    /// The file would run if opened (a program, script or launcher); saving it is still offered.
    UnsafeToOpen,
    /// The account's CRM cannot do this (an EspoCRM account has no Media Manager).
    Unsupported,
    /// A bug: the message says what.
    Internal,
}

impl ErrorCode {
    /// Whether the same request may succeed if simply tried again later.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Unavailable)
    }
}

/// What an error looks like to the UI: `{ code, message }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorPayload {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// The error every [`crate::CrmBackend`] returns: CRM-neutral, with the code already decided by
/// the client that knows its wire protocol.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub code: ErrorCode,
    pub message: String,
    /// The HTTP status, when the failure was an HTTP answer.
    pub status: Option<u16>,
    /// How long the server asked us to wait (`Retry-After`), when it did.
    pub retry_after: Option<std::time::Duration>,
}

impl BackendError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }
}

impl From<BackendError> for ErrorPayload {
    fn from(e: BackendError) -> Self {
        ErrorPayload::new(e.code, e.message)
    }
}
