//! The admin HTTP API and live web page of a [hotconf](hotconf) reloader: what is live, who
//! changed it and why a reload failed, reload and rollback buttons, a config `PUT`, a
//! server-sent event stream and Prometheus metrics. It works over
//! [`hotconf::Control`], the reloader's handle that is not generic over the config type,
//! so one router serves any reloader.
//!
//! Work in progress: the security rules, the conditional-request parsing, the error
//! mapping and the web page; the routes land with the reloader's `Control` handle.
#![deny(missing_docs)]
// The routes that use these land with the reloader's Control handle.
#![allow(dead_code)]

mod conditional;
mod error;
mod security;

pub use error::AdminError;

mod routes {
    /// A JSON body with its content type.
    pub(crate) fn json_body(
        value: &serde_json::Value,
    ) -> impl axum::response::IntoResponse + use<> {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
    }
}
