//! The one place where kho's error codes become HTTP statuses and response bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kho_core::{Detail, Error, ErrorCode};
use serde::Serialize;

pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        BadRequest | InvalidJson | InvalidQuery | SqlNotReadOnly => StatusCode::BAD_REQUEST,
        // The request was understood; it asks for more than one query may take.
        QueryLimit => StatusCode::UNPROCESSABLE_ENTITY,
        InvalidFile => StatusCode::UNPROCESSABLE_ENTITY,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ValidationFailed
        | InvalidTableSchema
        | UnknownDictionaryTerm
        | UnknownAdminUnit
        | UnknownAgency
        | PersonalDataInOpenDataset
        | InvalidSlug => StatusCode::UNPROCESSABLE_ENTITY,
        SlugTaken | UsernameTaken | TermVersionExists | Conflict => StatusCode::CONFLICT,
        NotFound => StatusCode::NOT_FOUND,
        AuthenticationRequired | InvalidCredentials | InvalidToken | TokenExpired | TokenRevoked => {
            StatusCode::UNAUTHORIZED
        }
        CsrfFailed | Forbidden | PasswordChangeRequired => StatusCode::FORBIDDEN,
        TooManyAttempts | RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body of every API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code; see the API description for the list.
    pub code: String,
    /// Human-readable explanation (English).
    pub message: String,
    /// Field-level problems, each with the path of the offending field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// An error returned from a JSON API handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.code);
        if status.is_server_error() {
            // The message may carry internals (SQL, paths): log it, hide it.
            tracing::error!(code = %e.code, message = %e.message, "internal error");
        }
        let body = ErrorBody {
            code: e.code.as_str().to_string(),
            // An unavailable store's message is kho's own words, safe to show.
            message: if status.is_server_error() && e.code != ErrorCode::Unavailable {
                "internal error; it has been logged".into()
            } else {
                e.message
            },
            details: e.details,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kho\""));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_status() {
        for code in ErrorCode::ALL {
            let s = status_of(*code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
        }
    }
}
