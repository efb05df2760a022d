use attache_core::{BackendError, ErrorCode, ErrorPayload, StoreError};

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
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    Invalid(String),
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
            ServiceError::NotFound(_) => ErrorCode::NotFound,
            ServiceError::Ambiguous(_) | ServiceError::Invalid(_) => ErrorCode::InvalidInput,
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
