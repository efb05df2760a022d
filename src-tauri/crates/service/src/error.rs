use attache_core::{BackendError, ErrorCode, ErrorPayload};

use crate::thumbnails::ThumbnailError;
use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Demo site could not start: {0}")]
    Sandbox(#[from] attache_sandbox::SiteError),
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    /// The user's input was refused (a bad rule, a file already being filed, a folder that
    /// is not one).
    #[error("{0}")]
    Invalid(String),
    /// The account's CRM cannot do this (see [`attache_core::Capabilities`]).
    #[error("{0}")]
    Unsupported(String),
    /// A file a click would run (a program, script or launcher from the CRM).
    #[error("{0}")]
    UnsafeToOpen(String),
    /// A background task (a file check, a conversion) ended without an answer: a bug.
    #[error("{0} stopped unexpectedly")]
    TaskFailed(&'static str),
    #[error("settings: {0}")]
    Config(String),
    #[error(transparent)]
    Vault(#[from] attache_vault::VaultError),
}

impl ServiceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::Backend(e) => e.code,
            ServiceError::Store(_) => ErrorCode::Storage,
            ServiceError::Io(_) => ErrorCode::Io,
            ServiceError::Sandbox(_) => ErrorCode::Unavailable,
            ServiceError::Thumbnail(e) => match e {
                ThumbnailError::NoPicture(_) => ErrorCode::NotFound,
                // Too slow or unreadable for this picture: asking again renders no better.
                ThumbnailError::TimedOut(_) | ThumbnailError::Unrenderable { .. } => {
                    ErrorCode::InvalidInput
                }
                ThumbnailError::RenderPanicked(_) => ErrorCode::Internal,
            },
            ServiceError::NotFound(_) => ErrorCode::NotFound,
            ServiceError::Ambiguous(_) | ServiceError::Invalid(_) => ErrorCode::InvalidInput,
            ServiceError::Unsupported(_) => ErrorCode::Unsupported,
            ServiceError::UnsafeToOpen(_) => ErrorCode::UnsafeToOpen,
            ServiceError::TaskFailed(_) => ErrorCode::Internal,
            ServiceError::Config(_) => ErrorCode::Io,
            ServiceError::Vault(e) => e.code(),
        }
    }
}

impl From<ServiceError> for ErrorPayload {
    fn from(e: ServiceError) -> Self {
        ErrorPayload::new(e.code(), e.to_string())
    }
}
