//! Alerts against a real local HTTP server.
