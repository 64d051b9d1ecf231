//! The demo's HTTP API. Every request loads the config snapshot once and uses it to the
//! end (routes, backends, flags, the pool built with it), and answers its version in
//! `X-Config-Version`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotconf::{Handle, ResourceKey, Snapshot};
use serde_json::{Value, json};

use crate::config::{Backend, Demo, Kind};
use crate::limiter::Limiter;
use crate::pool::Pool;

/// The header that names the config version that served a response.
pub(crate) const VERSION_HEADER: &str = "x-config-version";

/// What every request shares.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) handle: Handle<Demo>,
    pub(crate) pool: ResourceKey<Pool>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) calls: Arc<AtomicU64>,
    pub(crate) stats: Arc<Mutex<BTreeMap<String, [u64; 3]>>>,
}

/// The router: one handler for every path, so that every answer, a 404 too, carries the
/// version of the snapshot it was made from.
pub(crate) fn router(app: App) -> Router {
    Router::new().fallback(serve).with_state(app)
}

async fn serve(State(app): State<App>, request: Request) -> Response {
    // One snapshot per request: held across the awaits below, never loaded again.
    let snapshot = app.handle.load_full();
    let path = request.uri().path().to_owned();
    let message = query(request.uri().query(), "msg").unwrap_or_else(|| "hello".to_owned());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (route, mut response) = match path.as_str() {
        "/" => ("index", index(&snapshot)),
        "/api/flags" => (
            "flags",
            json_response(StatusCode::OK, json!(snapshot.flags)),
        ),
        "/api/stats" => ("stats", stats(&app, &snapshot, authorization.as_deref())),
        _ => match path.strip_prefix("/api/") {
            Some(name) if snapshot.routes.contains_key(name) => {
                let response = call_route(&app, &snapshot, name, &message).await;
                (name, response)
            }
            _ => (
                "unknown",
                error(StatusCode::NOT_FOUND, &format!("no route {path}")),
            ),
        },
    };
    let status = response.status();
    record(&app, route, status);
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(snapshot.version()));
    response
}

fn index(snapshot: &Snapshot<Demo>) -> Response {
    let routes: Vec<String> = snapshot
        .routes
        .keys()
        .map(|r| format!("/api/{r}"))
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "version": snapshot.version(),
            "routes": routes,
            "flags": "/api/flags",
            "stats": "/api/stats (flags.stats, with Authorization: Bearer <server.admin_token>)",
            "try": "?msg=hi",
        }),
    )
}

fn stats(app: &App, snapshot: &Snapshot<Demo>, authorization: Option<&str>) -> Response {
    if !snapshot.flags.stats {
        return error(StatusCode::NOT_FOUND, "flags.stats is off (features.toml)");
    }
    let token = &snapshot.server.admin_token;
    let given = authorization.and_then(|a| a.strip_prefix("Bearer "));
    if given != Some(token.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "needs Authorization: Bearer <server.admin_token>",
        );
    }
    let stats = app.stats.lock().unwrap_or_else(PoisonError::into_inner);
    let body: BTreeMap<&String, Value> = stats
        .iter()
        .map(|(route, [ok, limited, failed])| {
            (
                route,
                json!({"ok": ok, "limited": limited, "failed": failed}),
            )
        })
        .collect();
    json_response(StatusCode::OK, json!(body))
}

async fn call_route(app: &App, snapshot: &Snapshot<Demo>, name: &str, message: &str) -> Response {
    let Some(route) = snapshot.routes.get(name) else {
        return error(StatusCode::NOT_FOUND, &format!("no route /api/{name}"));
    };
    let limit = snapshot.limits.of(name);
    let pool = snapshot.resource(&app.pool);
    let chain: Vec<&str> = route.chain().collect();
    let mut answer = json!({
        "version": snapshot.version(),
        "route": name,
        "chain": chain,
        "limit": {"rpm": limit.rpm, "burst": limit.burst},
        // The pool was built from this snapshot's config: the two sizes always agree.
        "pool": {"size": pool.size(), "config": snapshot.pool.size},
    });
    if let Err(wait) = app.limiter.take(name, Instant::now()) {
        answer["error"] = json!("rate limited");
        let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, answer);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let mut tried = Vec::new();
    for backend_name in chain {
        // Validation made sure every name in a chain is a backend.
        let Some(backend) = snapshot.backends.get(backend_name) else {
            continue;
        };
        match call(app, pool, backend, message).await {
            Ok(text) => {
                let text = if snapshot.flags.shout {
                    text.to_uppercase()
                } else {
                    text
                };
                answer["backend"] = json!(backend_name);
                answer["message"] = json!(text);
                if snapshot.flags.trace {
                    answer["tried"] = json!(tried);
                }
                return json_response(StatusCode::OK, answer);
            }
            Err(why) => tried.push(json!({"backend": backend_name, "error": why})),
        }
    }
    answer["error"] = json!("every backend of the chain failed");
    answer["tried"] = json!(tried);
    json_response(StatusCode::BAD_GATEWAY, answer)
}

async fn call(app: &App, pool: &Pool, backend: &Backend, message: &str) -> Result<String, String> {
    match backend.kind {
        Kind::Echo => Ok(format!("echo: {message}")),
        Kind::Delay => {
            let ms = backend.ms.unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(format!("after {ms} ms: {message}"))
        }
        Kind::Fail => Err("this backend always fails".to_owned()),
        Kind::Flaky => {
            let call = app.calls.fetch_add(1, Ordering::Relaxed) + 1;
            let every = backend.every.unwrap_or(2).max(1);
            if call.is_multiple_of(every) {
                Err(format!("call {call} failed (fails every {every})"))
            } else {
                Ok(format!("flaky: {message}"))
            }
        }
        Kind::Static => Ok(backend.body.clone().unwrap_or_default()),
        Kind::Pool => Ok(format!(
            "connection #{} of {}: {message}",
            pool.next_id(),
            pool.size()
        )),
    }
}

fn record(app: &App, route: &str, status: StatusCode) {
    let class = if status.is_success() {
        0
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        1
    } else {
        2
    };
    let mut stats = app.stats.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(counts) = stats.get_mut(route) {
        counts[class] += 1;
    } else {
        let mut counts = [0; 3];
        counts[class] = 1;
        stats.insert(route.to_owned(), counts);
    }
    drop(stats);
    metrics::counter!(
        "demo_requests_total",
        "route" => route.to_owned(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Body::from(body.to_string())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }))
}

/// The value of `name` in a query string, with `+` and `%XX` decoded.
fn query(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match (byte, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_and_decoded() {
        assert_eq!(
            query(Some("a=1&msg=hi+there%21"), "msg").as_deref(),
            Some("hi there!")
        );
        assert_eq!(query(Some("msg"), "msg").as_deref(), Some(""));
        assert_eq!(query(Some("a=1"), "msg"), None);
        assert_eq!(query(None, "msg"), None);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
