//! The application error type and its one mapping to HTTP (`{"error": {code, message}}`).

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 400: the request cannot be read (bad JSON, unknown field, wrong type). `code` is snake_case.
    BadRequest { code: &'static str, message: String },
    /// 422: a field's value is not acceptable; names the field.
    Invalid { field: String, message: String },
    /// 422 with a code of its own: the field is well-formed but cannot be used as sent (an
    /// `Idempotency-Key` reused for another body).
    Unprocessable {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// 422 `content_risky`: WeChat's content security (`msgSecCheck`) found `field`'s text
    /// unfit to publish; `label` is WeChat's label (20001 politics, 20003 abuse, …). Nothing was
    /// written.
    ContentRisky { field: String, label: i64 },
    /// 401: no valid session.
    Unauthorized(&'static str),
    /// 403: known to exist, but not the caller's to act on.
    Forbidden(String),
    /// 403 with a code of its own: the caller is known but may not do this (`not_staff`: no
    /// staff role; `forbidden_role`: their staff role does not allow this route).
    Denied { code: &'static str, message: String },
    /// 403 `blocked`: the member acted on has blocked the caller (no follows, orders or reviews).
    Blocked,
    /// 404: not found, or not the caller's to see.
    NotFound(&'static str),
    /// 405
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    Conflict { code: &'static str, message: String },
    /// 409 `deletion_blocked`: an account cannot be deleted while these (orders that are not
    /// final, open disputes) are open; `error.blocking` lists them.
    DeletionBlocked(Vec<serde_json::Value>),
    /// 413
    PayloadTooLarge { limit: usize },
    /// 415
    UnsupportedMediaType,
    /// 429 with `Retry-After` seconds.
    TooManyRequests { retry_after_secs: u64 },
    /// 503: a dependency is down or busy; safe to retry.
    Unavailable(String),
    /// A configuration problem found at start-up.
    Config(String),
    /// 500: a bug. The detail is logged, never sent.
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Invalid { .. } | Error::Unprocessable { .. } | Error::ContentRisky { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::Denied { .. } | Error::Blocked => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict { .. } | Error::DeletionBlocked(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code clients branch on.
    pub fn code(&self) -> &str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Denied { code, .. }
            | Error::Unprocessable { code, .. } => code,
            Error::Invalid { .. } => "invalid_field",
            Error::ContentRisky { .. } => "content_risky",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Blocked => "blocked",
            Error::DeletionBlocked(_) => "deletion_blocked",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Unavailable(_) => "service_unavailable",
            Error::Config(_) | Error::Internal(_) => "internal_error",
        }
    }

    /// The human-readable message; never carries internals for 5xx.
    pub fn message(&self) -> String {
        match self {
            Error::BadRequest { message, .. }
            | Error::Conflict { message, .. }
            | Error::Denied { message, .. }
            | Error::Unprocessable { message, .. } => message.clone(),
            Error::Invalid { field, message } => format!("{field}: {message}"),
            Error::ContentRisky { field, label } => format!(
                "{field}: this text cannot be published ({}); please change it",
                crate::domain::moderation::label_name(*label)
            ),
            Error::Unauthorized(why) => (*why).to_owned(),
            Error::Forbidden(why) => why.clone(),
            Error::Blocked => "this member has blocked you".into(),
            Error::DeletionBlocked(_) => {
                "the account cannot be deleted while an order is not final or a dispute is open"
                    .into()
            }
            Error::NotFound(what) => format!("{what} not found"),
            Error::MethodNotAllowed => "method not allowed on this path".into(),
            Error::PayloadTooLarge { limit } => format!("request body is over {limit} bytes"),
            Error::UnsupportedMediaType => "request body must be application/json (UTF-8)".into(),
            Error::TooManyRequests { .. } => "too many requests; retry later".into(),
            Error::Unavailable(_) => "a service we depend on is unavailable; retry later".into(),
            Error::Config(_) | Error::Internal(_) => "internal error".into(),
        }
    }

    /// The one place an error becomes an HTTP response. 5xx details go to the log only.
    pub fn to_response(&self) -> Response<Body> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(
                code = self.code(),
                status = status.as_u16(),
                "request refused"
            );
        }
        let mut error = json!({ "code": self.code(), "message": self.message() });
        match self {
            Error::Invalid { field, .. } => error["field"] = json!(field),
            Error::Unprocessable { field, .. } => error["field"] = json!(field),
            Error::ContentRisky { field, label } => {
                error["field"] = json!(field);
                error["label"] = json!(label);
                error["category"] = json!(crate::domain::moderation::label_name(*label));
            }
            Error::DeletionBlocked(blocking) => error["blocking"] = json!(blocking),
            _ => {}
        }
        let mut response = crate::http::json_response(status, &json!({ "error": error }));
        let retry_after = match self {
            Error::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            Error::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // A refused configuration says so (its HTTP code is an internal error's).
            Error::Config(m) => write!(f, "configuration: {m}"),
            Error::Internal(m) | Error::Unavailable(m) => write!(f, "{}: {m}", self.code()),
            other => write!(f, "{}: {}", other.code(), other.message()),
        }
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            // The adapter has already retried (with new attempts); the whole request may be.
            StoreError::Conflict => Error::Conflict {
                code: "write_conflict",
                message: "another request changed the same data at the same time; retry".into(),
            },
            StoreError::IdempotentMismatch => Error::Conflict {
                code: "idempotency_conflict",
                message: "this request repeats an earlier one's token with other content".into(),
            },
            // 503 with Retry-After, not 429: throttling is the table's capacity running short for
            // everyone, not this client going too fast; 429 stays the per-client limits' answer,
            // so a client can tell "slow down" from "we are busy".
            StoreError::Throttled => Error::Unavailable("store throttled".into()),
            StoreError::Unavailable(m) => Error::Unavailable(m),
            // A condition the domain did not expect, or a malformed request: both are bugs here.
            other => Error::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_store_error_has_one_clear_answer() {
        let cases = [
            (StoreError::Conflict, 409, "write_conflict"),
            (StoreError::IdempotentMismatch, 409, "idempotency_conflict"),
            (StoreError::Throttled, 503, "service_unavailable"),
            (
                StoreError::Unavailable("down".into()),
                503,
                "service_unavailable",
            ),
            (
                StoreError::ConditionFailed {
                    label: "unexpected",
                },
                500,
                "internal_error",
            ),
            (StoreError::Invalid("bug".into()), 500, "internal_error"),
        ];
        for (store_error, status, code) in cases {
            let error = Error::from(store_error.clone());
            assert_eq!(
                (error.status().as_u16(), error.code()),
                (status, code),
                "{store_error:?}"
            );
        }
        // Throttling says when to come back.
        let response = Error::from(StoreError::Throttled).to_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
