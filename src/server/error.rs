//! The one HTTP error type: a status and a short JSON sentence. Causes are
//! logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    /// The database is away: the client may try again shortly.
    Unavailable(String),
    Internal(String),
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Database(_) => ApiError::Unavailable(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

/// What a 503 asks the client to wait, in seconds.
const RETRY_AFTER: &str = "5";

impl From<crate::query::ReadError> for ApiError {
    fn from(e: crate::query::ReadError) -> Self {
        use crate::query::ReadError;
        match e {
            ReadError::BadRequest(m) => ApiError::BadRequest(m),
            ReadError::NotFound(m) => ApiError::NotFound(m),
            ReadError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: the store is unavailable");
                let body = Json(serde_json::json!({
                    "error": "the store is unavailable for now; try again shortly"
                }));
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, RETRY_AFTER)],
                    body,
                )
                    .into_response();
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the server log has the details".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
