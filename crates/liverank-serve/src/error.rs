//! The crate's one error type, and its mapping to an HTTP status.
//!
//! Every error is classified where it is created (whose fault it is); the HTTP edge maps
//! each variant to a status in one exhaustive `match` ([`ServeError::status`]), with no
//! catch-all arm, and never echoes internals: a client sees the reason of its own mistake,
//! and only "internal error" for ours.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What can go wrong in serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The settings are invalid (startup only).
    #[error("invalid serve settings: {0}")]
    Config(String),
    /// The body is not JSON at all (syntax error, wrong content type, bad UTF-8).
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// The body is JSON but not a valid request: unknown field, wrong type, a value
    /// out of range.
    #[error("invalid request: {0}")]
    Unprocessable(String),
    /// The body is larger than `serve.max_body_bytes`.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A write or admin endpoint without the right bearer token.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The path names something we do not hold (a live room, a route).
    #[error("not found: {0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No model is loaded yet, or the pipeline is shutting down.
    #[error("not ready: {0}")]
    NotReady(String),
    /// A model version not newer than the one serving, or one that failed to load.
    #[error("model version refused: {0}")]
    ModelRefused(String),
    /// The ranker failed on a batch (our bug or a broken model).
    #[error("ranker: {0}")]
    Model(#[from] liverank_model::ModelError),
    /// The history store failed (an external service, or a damaged file).
    #[error("history store: {0}")]
    History(#[from] liverank_history::HistoryError),
    /// Reading or writing a file, a socket.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A handler panicked (caught by the panic layer) or an invariant broke.
    #[error("internal: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ServeError> = std::result::Result<T, E>;

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code (`bad_request`, `unprocessable`, `unauthorized`, …).
    pub error: &'static str,
    /// Human-readable reason; for our own faults only "internal error".
    pub reason: String,
}

impl ServeError {
    /// The status and the code of this error: one exhaustive match, no catch-all.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ServeError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ServeError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ServeError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ServeError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ServeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServeError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ServeError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ServeError::ModelRefused(_) => (StatusCode::CONFLICT, "model_refused"),
            ServeError::Config(_)
            | ServeError::Model(_)
            | ServeError::History(_)
            | ServeError::Io(_)
            | ServeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What the client is told: its own mistake in full, ours as "internal error".
    pub fn public_reason(&self) -> String {
        match self {
            ServeError::BadRequest(_)
            | ServeError::Unprocessable(_)
            | ServeError::PayloadTooLarge { .. }
            | ServeError::Unauthorized
            | ServeError::NotFound(_)
            | ServeError::MethodNotAllowed
            | ServeError::NotReady(_)
            | ServeError::ModelRefused(_) => self.to_string(),
            ServeError::Config(_)
            | ServeError::Model(_)
            | ServeError::History(_)
            | ServeError::Io(_)
            | ServeError::Internal(_) => "internal error".to_string(),
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if status.is_server_error() {
            metrics::counter!("liverank_serve_internal_errors_total", "code" => code).increment(1);
            eprintln!("serve: {code}: {self}");
        }
        let body = ErrorBody {
            error: code,
            reason: self.public_reason(),
        };
        (status, Json(body)).into_response()
    }
}
