//! The routes and their handlers. Every answer is JSON in the shared shapes (`Event`,
//! `Status`, `Plan`, the JSON error object), except the page, `/metrics` and `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hotconf::source::Format;
use hotconf::{Control, Event};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::conditional::{self, IfMatch};
use crate::error::ApiError;
use crate::security::Guard;
use crate::sse;

/// The page, one file: inline CSS and script, no build step.
const PAGE: &str = include_str!("../assets/index.html");

/// What the page may load and do: only its own inline code, only requests to this server.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) control: Arc<dyn Control>,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) keep_alive: Duration,
}

/// The router: routes, then JSON error bodies for axum's own answers, then the guard in
/// front of everything.
pub(crate) fn router(state: AppState, guard: Guard) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/config", get(get_config).put(put_config))
        .route("/status", get(status))
        .route("/history", get(history))
        .route("/history/{seq}", get(attempt))
        .route("/reload", post(reload))
        .route("/rollback/{version}", post(rollback))
        .route("/plan", post(plan))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(Arc::new(guard), check))
        .with_state(state)
}

/// A JSON body with its content type.
pub(crate) fn json_body<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    let text = serde_json::to_string(value).unwrap_or_else(|error| {
        format!(r#"{{"error":{{"kind":"internal","message":"cannot serialize: {error}"}}}}"#)
    });
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    json_body(value)
}

async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Answers that axum or an extractor made (a 405 for a method a route does not take, a
/// 413 for a body over the limit) get the JSON error object too, keeping their headers.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (kind, fallback) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "method not allowed: state changes are POST or PUT only",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large"),
        status if status.is_client_error() => ("usage", "bad request"),
        _ => ("internal", "internal error"),
    };
    let message = if text.is_empty() {
        fallback.to_string()
    } else {
        text
    };
    let mut error = ApiError::new(status, kind, message).into_response();
    if let Some(allow) = allow {
        error.headers_mut().insert(header::ALLOW, allow);
    }
    error
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route {}", request.uri().path()))
}

/// Who asked, for the event's `by`: `api <peer address>` when the server was started with
/// connect info (as `serve` and `spawn` do), else `api`.
pub(crate) struct By(String);

impl<S: Send + Sync> FromRequestParts<S> for By {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(By(
            match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(peer)) => format!("api {peer}"),
                None => "api".to_string(),
            },
        ))
    }
}

/// Runs a call that may wait for the reload worker off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the request's task failed: {error}"),
        )
    })
}

fn event_response(result: hotconf::Result<Event>) -> Response {
    match result {
        Ok(event) => {
            let mut response = json(&event);
            if let Ok(tag) = HeaderValue::from_str(&hotconf::etag(event.version, event.hash)) {
                response.headers_mut().insert(header::ETAG, tag);
            }
            response
        }
        Err(error) => ApiError::from_hotconf(&error).into_response(),
    }
}

async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn get_config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // config() waits for a reload in progress: off the async threads.
    let control = state.control.clone();
    let view = match blocking(move || control.config()).await {
        Ok(view) => view,
        Err(error) => return error.into_response(),
    };
    let tag = hotconf::etag(view.version, view.hash);
    let tag_header = HeaderValue::from_str(&tag).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| conditional::if_none_match(value, &tag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json(&view.json)
    };
    let out = response.headers_mut();
    if let Some(tag) = tag_header {
        out.insert(header::ETAG, tag);
    }
    // Revalidate every time: the ETag makes that cheap.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The format a request body declares.
fn body_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Format::Json),
        "application/toml" => Ok(Format::Toml),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Format::Yaml),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not a config format: send application/json, \
                 application/toml or application/yaml",
                content_type
            ),
        )),
    }
}

async fn put_config(
    State(state): State<AppState>,
    By(by): By,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = match body_format(&headers) {
        Ok(format) => format,
        Err(error) => return error.into_response(),
    };
    if body.is_empty() {
        return ApiError::bad_request("PUT /config needs the whole config in the body")
            .into_response();
    }
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(value) => {
            let value = value.to_str().unwrap_or("").to_string();
            let control = state.control.clone();
            let view = match blocking(move || control.config()).await {
                Ok(view) => view,
                Err(error) => return error.into_response(),
            };
            let live = hotconf::etag(view.version, view.hash);
            match conditional::if_match(&value, &live) {
                IfMatch::Any => None,
                IfMatch::Version(version, hash) => Some((version, hash)),
                IfMatch::Never => {
                    return ApiError::precondition_failed(&value, &live).into_response();
                }
            }
        }
    };
    let control = state.control.clone();
    match blocking(move || control.put(format, body.to_vec(), if_match, Some(by))).await {
        Ok(result) => event_response(result),
        Err(error) => error.into_response(),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    json(&state.control.status())
}

async fn history(State(state): State<AppState>) -> Response {
    json(&state.control.attempts())
}

fn parse_number(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} must be a number, not {text:?}")))
}

async fn attempt(State(state): State<AppState>, Path(seq): Path<String>) -> Response {
    let seq = match parse_number(&seq, "seq") {
        Ok(seq) => seq,
        Err(error) => return error.into_response(),
    };
    match state.control.attempt(seq) {
        Some(event) => json(&event),
        None => ApiError::not_found(format!("no attempt with seq {seq} is kept")).into_response(),
    }
}

async fn reload(State(state): State<AppState>, By(by): By) -> Response {
    let control = state.control.clone();
    match blocking(move || control.reload(Some(by))).await {
        Ok(result) => event_response(result),
        Err(error) => error.into_response(),
    }
}

async fn rollback(
    State(state): State<AppState>,
    By(by): By,
    Path(version): Path<String>,
) -> Response {
    let version = match parse_number(&version, "version") {
        Ok(version) => version,
        Err(error) => return error.into_response(),
    };
    let control = state.control.clone();
    match blocking(move || control.rollback_to(version, Some(by))).await {
        Ok(result) => event_response(result),
        Err(error) => error.into_response(),
    }
}

async fn plan(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let control = state.control.clone();
    let result = if body.is_empty() {
        blocking(move || control.plan()).await
    } else {
        let format = match body_format(&headers) {
            Ok(format) => format,
            Err(error) => return error.into_response(),
        };
        blocking(move || control.plan_document(format, body.to_vec())).await
    };
    match result {
        Ok(plan) => json(&plan),
        Err(error) => error.into_response(),
    }
}

async fn events(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers();
    let resume = sse::last_event_id(
        headers
            .get(HeaderName::from_static("last-event-id"))
            .and_then(|value| value.to_str().ok()),
    );
    let detected = sse::wants_detected(request.uri().query());
    let stream = sse::stream(
        state.control.clone(),
        resume,
        detected,
        state.shutdown.clone(),
    );
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.keep_alive))
        .into_response();
    // Proxies must not buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => {
            ApiError::not_found("no metrics: the service gave the admin API no Prometheus handle")
                .into_response()
        }
    }
}

/// Liveness of the admin server and its reloader handle. `Control` has no way yet to tell
/// a reloader that was shut down (its state changes answer 503 then).
async fn healthz(State(state): State<AppState>) -> Response {
    if state.control.is_running() {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "stopped: the reloader was shut down",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_formats_come_from_the_content_type() {
        let cases = [
            ("application/json", Some(Format::Json)),
            ("application/json; charset=utf-8", Some(Format::Json)),
            ("Application/TOML", Some(Format::Toml)),
            ("application/yaml", Some(Format::Yaml)),
            ("text/yaml", Some(Format::Yaml)),
            ("text/plain", None),
            ("", None),
        ];
        for (content_type, expected) in cases {
            let mut headers = HeaderMap::new();
            if !content_type.is_empty() {
                headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            }
            match (body_format(&headers), expected) {
                (Ok(format), Some(expected)) => assert_eq!(format, expected, "{content_type}"),
                (Err(error), None) => {
                    assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE)
                }
                (got, expected) => panic!("{content_type}: {got:?} vs {expected:?}"),
            }
        }
    }
}
