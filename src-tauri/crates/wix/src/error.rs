use attache_core::{BackendError, ErrorCode, ErrorPayload};

/// One violated field, from `details.validationError.fieldViolations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
    pub rule: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WixError {
    /// Wix answered with a status other than 200.
    #[error("{}", api_message(*.status, .message, .description, .violations))]
    Api {
        status: u16,
        message: String,
        /// `details.applicationError.code`, e.g. `CONTACT_NOT_FOUND`.
        application_code: Option<String>,
        description: Option<String>,
        /// `details.applicationError.data`: the error's structured details, when Wix sends any.
        application_data: Option<serde_json::Value>,
        violations: Vec<FieldViolation>,
        /// `X-Wix-Request-Id`, for support requests.
        request_id: Option<String>,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<std::time::Duration>,
    },
    #[error(transparent)]
    Transport(#[from] attache_transport::TransportError),
    #[error("Wix sent an answer Attaché cannot read: {0}")]
    Decode(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the Wix address {0:?} is not a valid http(s) URL")]
    BaseUrl(String),
}

fn api_message(
    status: u16,
    message: &str,
    description: &Option<String>,
    violations: &[FieldViolation],
) -> String {
    let mut text = match description.as_deref() {
        Some(d) if !d.is_empty() && d != message => format!("{message}: {d}"),
        _ => message.to_owned(),
    };
    if text.is_empty() {
        text = format!("Wix answered HTTP {status}");
    }
    for v in violations {
        text.push_str(&format!("; {} {}", v.field, v.description));
    }
    text
}

impl WixError {
    pub fn status(&self) -> Option<u16> {
        match self {
            WixError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The stable code the UI branches on.
    pub fn code(&self) -> ErrorCode {
        match self {
            WixError::Api { status, .. } => match status {
                401 => ErrorCode::Unauthenticated,
                403 => ErrorCode::PermissionDenied,
                404 => ErrorCode::NotFound,
                429 => ErrorCode::RateLimited,
                400..=499 => ErrorCode::InvalidInput,
                _ => ErrorCode::Unavailable,
            },
            WixError::Transport(_) => ErrorCode::Unavailable,
            WixError::Decode(_) => ErrorCode::BadResponse,
            WixError::Io(_) => ErrorCode::Io,
            WixError::BaseUrl(_) => ErrorCode::InvalidInput,
        }
    }
}

impl From<WixError> for BackendError {
    fn from(e: WixError) -> Self {
        let retry_after = match &e {
            WixError::Api { retry_after, .. } => *retry_after,
            _ => None,
        };
        BackendError {
            code: e.code(),
            status: e.status(),
            message: e.to_string(),
            retry_after,
        }
    }
}

impl From<WixError> for ErrorPayload {
    fn from(e: WixError) -> Self {
        ErrorPayload::new(e.code(), e.to_string())
    }
}
