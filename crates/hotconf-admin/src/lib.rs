//! The admin HTTP API and live web page of a [`hotconf`] reloader: what is live, who
//! changed it and why a reload failed, reload and rollback buttons, a config `PUT`, a
//! server-sent event stream and Prometheus metrics. It works over
//! [`hotconf::Control`], the reloader's handle that is not generic over the config type,
//! so one router serves any reloader.
//!
//! # Quick start
//!
//! A service with a tokio runtime mounts [`Admin::router`] or calls [`Admin::serve`]; a
//! service without one calls [`Admin::spawn`], which runs a small runtime on a thread of its
//! own:
//!
//! ```
//! use std::io::{Read, Write};
//!
//! # #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
//! # struct AppConfig { limits: Limits }
//! # #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
//! # struct Limits { rpm: u32 }
//! # impl hotconf::Validate for AppConfig {}
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.toml");
//! # std::fs::write(&path, "[limits]\nrpm = 60\n")?;
//! let reloader = hotconf::Reloader::<AppConfig>::builder().file(&path).build()?;
//! let server = hotconf_admin::Admin::new(reloader.control())
//!     .spawn("127.0.0.1:0".parse()?)?; // loopback, a free port
//!
//! let mut stream = std::net::TcpStream::connect(server.addr())?;
//! write!(
//!     stream,
//!     "GET /config HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
//!     server.addr()
//! )?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains(r#"{"limits":{"rpm":60}}"#));
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the web page |
//! | `GET /config` | the effective config, secrets as `"***"`, with an `ETag` (`"v3-<hash>"`, [`hotconf::etag`]); `If-None-Match` gives 304 |
//! | `PUT /config` | a whole config in the body (`Content-Type` `application/toml`, `application/json`, `application/yaml` or `text/yaml`; else 415), validated like a file save; `If-Match` with the live `ETag` (412 when it is stale); a secret sent back as `"***"` keeps its live value; a rejected config is 422 with located errors |
//! | `GET /status` | [`hotconf::Status`] |
//! | `GET /history` | the kept attempts, every outcome, oldest first: a JSON array of events |
//! | `GET /history/{seq}` | one attempt with its diff; 404 when it is not kept |
//! | `POST /reload` | reloads the sources; answers the event |
//! | `POST /rollback/{version}` | re-applies an earlier version; answers the event |
//! | `POST /plan` | a dry run: of the files on disk (empty body) or of a submitted config (a body, formats as for `PUT`); answers a [`hotconf::Plan`] |
//! | `GET /events` | server-sent events of every attempt: `id: <seq>`, `event: <outcome>`, `data: <event JSON>`; `?events=all` adds `detected` (live only: the kept events are attempts); send `Last-Event-ID` to get the missed ones first; a `:connected` comment once subscribed, then a keep-alive comment every 15 s |
//! | `GET /metrics` | the Prometheus text of the handle given to [`Admin::metrics`]; 404 without one |
//! | `GET /healthz` | `ok` while the reloader runs; 503 once it was shut down |
//!
//! A `PUT` or a rollback is a local override: it lasts until the sources next change (the
//! sources win), and `GET /status` shows it (`local_override`) while it is live. The events
//! of API calls carry `"by": "api <peer address>"`.
//!
//! Every failure answers the JSON error object the command line prints,
//! `{"error":{"kind":"…","message":"…"}}`, with these kinds and statuses:
//!
//! | status | kind | when |
//! |---|---|---|
//! | 400 | `usage` | a malformed path parameter or an empty `PUT` body |
//! | 401 | `unauthorized` | the token is missing or wrong (with `WWW-Authenticate: Bearer`) |
//! | 403 | `forbidden` | the `Host` is not the bound address, or a state change is cross-site |
//! | 404 | `not_found` | no such route, attempt or version; no metrics handle |
//! | 405 | `method_not_allowed` | a method the route does not take (a `GET` on a state change) |
//! | 412 | `conflict` | `If-Match` does not match the live config (adds `expected` and `actual`) |
//! | 413 | `too_large` | a body over axum's default limit (2 MiB) |
//! | 415 | `unsupported_media_type` | a body whose `Content-Type` is not a config format |
//! | 422 | `invalid` | the config was rejected: `errors` lists every problem with `file`, `line`, `column`, `path` |
//! | 500 | `rollback_failed`, `io`, `internal` | the reloader failed |
//! | 503 | `stopped` | the reloader was shut down |
//!
//! # Security
//!
//! - **Loopback by default.** A non-loopback address is refused without a token
//!   ([`AdminError::TokenRequired`]); with one, every route requires
//!   `Authorization: Bearer <token>`, except `GET /` (the page holds no data, and a browser
//!   cannot send a header when it navigates: the page asks for the token on its first 401).
//!   On loopback with a token, state changes (`POST`, `PUT`) require it and reads do not.
//!   Tokens are compared in constant time.
//! - **DNS rebinding.** Every request's `Host` must name the bound address
//!   (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT` as bound), or a name given to
//!   [`Admin::allow_host`]; else 403. A page on another site whose name resolves to
//!   127.0.0.1 sends its own name and is refused, reads included.
//! - **Cross-site requests.** A state change with an `Origin` that is not the bound address
//!   (or `null`), or with `Sec-Fetch-Site: cross-site`, is refused with 403. No CORS
//!   headers are sent.
//! - **State changes are POST or PUT only**; a `GET` on them is 405.
//! - **Secrets**: the reloader redacts every secret value before anything leaves it; the
//!   API adds no value of its own. The page is served with a strict Content-Security-Policy
//!   and inserts every piece of data as text, never as HTML.
//!
//! # The web page
//!
//! `GET /` serves one HTML file (inline CSS and script, no build step, no CDN): name,
//! version, last outcome, status (pending restarts, a live local override, deferral,
//! watcher mode, sources, observers' health), a live event list, the history with old → new
//! diffs and what triggered each, a Reload button and a Rollback button per applied
//! version, and the located errors of rejected attempts. Its element ids are stable and
//! listed at the top of `assets/index.html`.
//!
//! # Metrics
//!
//! The admin API renders the [`PrometheusHandle`](metrics_exporter_prometheus::PrometheusHandle)
//! it is given and never installs a global recorder: the service decides how metrics are
//! recorded.
//!
//! # Known problems
//!
//! - Behind a reverse proxy, `Host` is the proxy's name for the service: list it with
//!   [`Admin::allow_host`].
//! - The admin API holds a [`Control`](hotconf::Control), which is a clone of the reloader:
//!   the reloader keeps running while the server does, even after the service dropped its
//!   own handle. Stop the server (drop the [`AdminServer`]) or call
//!   [`Reloader::shutdown`](hotconf::Reloader::shutdown).
//! - A router served without connect info (plain `axum::serve(listener, router)`) records
//!   `"by": "api"` without the caller's address.
//! - The event stream is fed by the reloader's broadcast; a client too slow for it is
//!   filled in from the kept events, which go back [`hotconf::Reloader::attempts`]'s limit.
#![deny(missing_docs)]

mod conditional;
mod error;
mod routes;
mod security;
mod server;
mod sse;

pub use error::AdminError;
pub use server::{Admin, AdminServer};
