//! One error type for every EspoCRM call, mapped onto Attaché's stable codes.

use attache_core::{BackendError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum EspoError {
    /// The server answered with a non-success status. EspoCRM puts its reason in the
    /// `X-Status-Reason` header (often empty) and usually sends no body.
    #[error("{}", describe(*.status, .reason.as_deref(), .path))]
    Api {
        status: u16,
        reason: Option<String>,
        /// `METHOD /path`, so a log line says which call failed.
        path: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error(transparent)]
    Transport(#[from] attache_transport::TransportError),
    #[error("EspoCRM answered something unexpected: {0}")]
    Decode(String),
    #[error("{0:?} is not an EspoCRM address (https://crm.example.com)")]
    BaseUrl(String),
    #[error("{0}")]
    Invalid(String),
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
}

fn describe(status: u16, reason: Option<&str>, path: &str) -> String {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match (status, reason) {
        (401, _) => "EspoCRM refused the login: check the API key (and the HMAC secret) of the API user".into(),
        (403, None) => "EspoCRM refused access without a reason: too many failed logins from this computer, or its address is not allowed".into(),
        (403, Some(r)) => format!("EspoCRM refused: {r}"),
        (404, Some(r)) => format!("EspoCRM: {r}"),
        (404, None) => format!("EspoCRM has no such record ({path})"),
        (_, Some(r)) => format!("EspoCRM answered {status}: {r}"),
        (_, None) => format!("EspoCRM answered {status} to {path}"),
    }
}

impl EspoError {
    pub fn status(&self) -> Option<u16> {
        match self {
            EspoError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            EspoError::Api { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EspoError::Api { status, reason, .. } => match status {
                401 => ErrorCode::Unauthenticated,
                // Limits and type checks come back as 403 too; they are the user's input, not
                // a missing permission.
                403 if reason.as_deref().is_some_and(is_input_refusal) => ErrorCode::InvalidInput,
                403 => ErrorCode::PermissionDenied,
                404 => ErrorCode::NotFound,
                400 | 409 | 413 => ErrorCode::InvalidInput,
                429 => ErrorCode::RateLimited,
                _ => ErrorCode::Unavailable,
            },
            EspoError::Transport(_) => ErrorCode::Unavailable,
            EspoError::Decode(_) => ErrorCode::BadResponse,
            EspoError::BaseUrl(_) | EspoError::Invalid(_) => ErrorCode::InvalidInput,
            EspoError::Io(_) => ErrorCode::Io,
        }
    }
}

/// 403 reasons that refuse the request's content rather than the user's rights (spec §2.2
/// rows 13–17, §2.5, §4).
fn is_input_refusal(reason: &str) -> bool {
    [
        "size exceeds",
        "Max attachment size",
        "Not allowed file type",
        "does not correspond",
        "Max size should not exceed",
    ]
    .iter()
    .any(|needle| reason.contains(needle))
}

impl From<EspoError> for BackendError {
    fn from(e: EspoError) -> Self {
        let code = e.code();
        let (status, retry_after) = match &e {
            EspoError::Api {
                status,
                retry_after,
                ..
            } => (Some(*status), *retry_after),
            _ => (None, None),
        };
        BackendError {
            code,
            message: e.to_string(),
            status,
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, reason: Option<&str>) -> EspoError {
        EspoError::Api {
            status,
            reason: reason.map(str::to_owned),
            path: "GET /Contact".into(),
            retry_after: None,
        }
    }

    #[test]
    fn codes_follow_status_and_reason() {
        assert_eq!(api(401, None).code(), ErrorCode::Unauthenticated);
        assert_eq!(
            api(403, Some("No read access.")).code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            api(403, Some("Not allowed file type.")).code(),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            api(
                403,
                Some("Max size should not exceed 200. Use offset and limit.")
            )
            .code(),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            api(404, Some("Record x does not exist.")).code(),
            ErrorCode::NotFound
        );
        assert_eq!(api(500, None).code(), ErrorCode::Unavailable);
        assert!(api(403, None)
            .to_string()
            .contains("too many failed logins"));
        assert!(api(403, Some("No create access."))
            .to_string()
            .contains("No create access."));
    }
}
