//! The crate's error type, and the JSON error object every failed request answers with.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotconf::Problem;

/// What can go wrong setting up or running the admin server. Failed requests are not
/// errors of this type: they are answered with an HTTP status and the JSON error object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The address is not a loopback address and no token was given: anyone who can reach
    /// it could read the config and change it.
    #[error(
        "refusing to serve the admin API on {0} without a token: bind a loopback address or set a token"
    )]
    TokenRequired(SocketAddr),
    /// The token is empty or holds characters a header cannot carry.
    #[error("invalid admin token: {0}")]
    InvalidToken(&'static str),
    /// The address could not be bound or read.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be started.
    #[error("cannot start the admin server: {0}")]
    Start(#[source] std::io::Error),
    /// Serving stopped with an I/O error.
    #[error("the admin server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A failed request: its status and the JSON error object
/// `{"error":{"kind":"…","message":"…"}}` (with `"errors"` for a rejected config).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) errors: Vec<Problem>,
    pub(crate) extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            errors: Vec::new(),
            extra: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "usage", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn precondition_failed(expected: &str, actual: &str) -> Self {
        let mut extra = serde_json::Map::new();
        extra.insert("expected".into(), expected.into());
        extra.insert("actual".into(), actual.into());
        Self {
            extra: Some(Box::new(extra)),
            ..Self::new(
                StatusCode::PRECONDITION_FAILED,
                "conflict",
                format!("If-Match {expected} does not match the live config {actual}"),
            )
        }
    }

    /// The status and body for an error of the reloader.
    pub(crate) fn from_hotconf(error: &hotconf::Error) -> Self {
        use hotconf::Error;
        match error {
            Error::Invalid(problems) => {
                let errors: Vec<Problem> = problems.errors().cloned().collect();
                let count = errors.len();
                Self {
                    errors,
                    ..Self::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!(
                            "config rejected ({count} error{}); the live config is unchanged",
                            if count == 1 { "" } else { "s" }
                        ),
                    )
                }
            }
            Error::RollbackFailed { problems, .. } => Self {
                errors: problems.errors().cloned().collect(),
                ..Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "rollback_failed",
                    error.to_string(),
                )
            },
            Error::Conflict { expected, actual } => Self::precondition_failed(expected, actual),
            Error::UnknownVersion(_) => Self::not_found(error.to_string()),
            Error::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopped",
                error.to_string(),
            ),
            Error::InvalidPath { .. } | Error::InvalidOption { .. } => {
                Self::bad_request(error.to_string())
            }
            Error::Save { .. } | Error::Watch(_) | Error::Thread(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "io", error.to_string())
            }
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                error.to_string(),
            ),
        }
    }

    /// The JSON error object.
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut error = serde_json::Map::new();
        error.insert("kind".into(), self.kind.into());
        error.insert("message".into(), self.message.clone().into());
        if self.status == StatusCode::UNPROCESSABLE_ENTITY || !self.errors.is_empty() {
            error.insert(
                "errors".into(),
                serde_json::to_value(&self.errors).unwrap_or_default(),
            );
        }
        if let Some(extra) = &self.extra {
            error.extend(extra.as_ref().clone());
        }
        serde_json::json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, crate::routes::json_body(&self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hotconf-admin\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloader_errors_map_to_statuses() {
        let problem = Problem::error(hotconf::ProblemKind::Validation, "must be positive")
            .at_path("limits.rpm".parse().unwrap())
            .at_location("app.toml", 2, 7);
        let cases = [
            (
                hotconf::Error::Invalid(problem.into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            ),
            (
                hotconf::Error::Conflict {
                    expected: "\"v1-0\"".into(),
                    actual: "\"v2-0\"".into(),
                },
                StatusCode::PRECONDITION_FAILED,
                "conflict",
            ),
            (
                hotconf::Error::UnknownVersion(9),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                hotconf::Error::Stopped,
                StatusCode::SERVICE_UNAVAILABLE,
                "stopped",
            ),
        ];
        for (error, status, kind) in cases {
            let api = ApiError::from_hotconf(&error);
            assert_eq!((api.status, api.kind), (status, kind), "{error}");
            assert_eq!(api.body()["error"]["kind"], kind);
        }
    }

    #[test]
    fn a_rejected_config_lists_located_errors() {
        let problem = Problem::error(hotconf::ProblemKind::Validation, "must be positive")
            .at_path("limits.rpm".parse().unwrap())
            .at_location("api", 2, 7);
        let body = ApiError::from_hotconf(&hotconf::Error::Invalid(problem.into())).body();
        let error = &body["error"]["errors"][0];
        assert_eq!(error["file"], "api");
        assert_eq!(error["line"], 2);
        assert_eq!(error["column"], 7);
        assert_eq!(error["path"], "limits.rpm");
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let response = ApiError::unauthorized("token required").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"));
    }
}
