//! Wix-shaped error responses: `{message, details: {applicationError | validationError}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    pub fn application(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            status,
            body: json!({
                "message": description,
                "details": {"applicationError": {"code": code, "description": description, "data": {}}}
            }),
        }
    }

    /// A 400 with one field violation, as Wix reports request validation failures.
    pub fn violation(field: &str, description: impl Into<String>, rule: &str) -> Self {
        let description = description.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "message": format!("{field}: {description}"),
                "details": {"validationError": {"fieldViolations": [
                    {"field": field, "description": description, "violatedRule": rule, "data": {}}
                ]}}
            }),
        }
    }

    /// A 400 whose violation names its rule in `ruleName`, the key the Media Manager API
    /// documents (`MISMATCH_MIME_TYPE`, `ZERO_FILE_SIZE`, `UNSUPPORTED_SORT_VALUE`...).
    pub fn field_rule(field: &str, description: impl Into<String>, rule_name: &str) -> Self {
        let description = description.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "message": format!("{field}: {description}"),
                "details": {"validationError": {"fieldViolations": [
                    {"field": field, "description": description, "ruleName": rule_name, "data": {}}
                ]}}
            }),
        }
    }

    pub fn bad_request(code: &str, description: impl Into<String>) -> Self {
        Self::application(StatusCode::BAD_REQUEST, code, description)
    }

    pub fn not_found(code: &str, description: impl Into<String>) -> Self {
        Self::application(StatusCode::NOT_FOUND, code, description)
    }

    /// A single-use upload URL (or token) presented again.
    pub fn upload_url_spent() -> Self {
        Self::application(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "This upload URL was already used",
        )
    }

    /// The `lost` fault: the work was done, the answer says otherwise.
    pub fn connection_lost() -> Self {
        Self::application(
            StatusCode::SERVICE_UNAVAILABLE,
            "INJECTED_FAULT",
            "connection lost",
        )
    }

    /// System errors are "sent empty by design".
    pub fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({"message": "", "details": {}}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<crate::site::SiteError> for ApiError {
    fn from(e: crate::site::SiteError) -> Self {
        tracing::error!("sandbox storage error: {e}");
        Self::internal()
    }
}
