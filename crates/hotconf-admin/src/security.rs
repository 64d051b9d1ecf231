//! Who may ask what: the `Host` check (DNS rebinding), the cross-site checks (`Origin`,
//! `Sec-Fetch-Site`) and the bearer token. Pure functions of the request's method, path and
//! headers, so every rule is unit-tested without a server.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Method, header};

use crate::error::{AdminError, ApiError};

/// The rules for one bound address.
#[derive(Clone)]
pub(crate) struct Guard {
    /// `(host, port)` pairs a `Host` or `Origin` may name, lowercase.
    hosts: Vec<(String, u16)>,
    /// Bound to every interface: any host name is accepted on the bound port (the token,
    /// required on such a bind, is what protects it).
    any_host_on: Option<u16>,
    loopback: bool,
    token: Option<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hosts", &self.hosts)
            .field("any_host_on", &self.any_host_on)
            .field("loopback", &self.loopback)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Guard {
    /// The rules for `bound`; `extra_hosts` are more `host:port` names the service is
    /// reached by (behind a proxy, a DNS name). Refuses a non-loopback address without a
    /// token.
    pub(crate) fn new(
        bound: SocketAddr,
        token: Option<String>,
        extra_hosts: &[String],
    ) -> Result<Self, AdminError> {
        let loopback = bound.ip().is_loopback();
        if !loopback && token.is_none() {
            return Err(AdminError::TokenRequired(bound));
        }
        let port = bound.port();
        let mut hosts = Vec::new();
        let mut any_host_on = None;
        match bound.ip() {
            ip if ip.is_unspecified() => any_host_on = Some(port),
            IpAddr::V4(ip) => hosts.push((ip.to_string(), port)),
            IpAddr::V6(ip) => hosts.push((format!("[{ip}]"), port)),
        }
        if loopback {
            hosts.push(("localhost".into(), port));
        }
        for extra in extra_hosts {
            if let Some((host, port)) = split_host_port(&extra.to_ascii_lowercase(), port) {
                hosts.push((host.to_string(), port));
            }
        }
        Ok(Self {
            hosts,
            any_host_on,
            loopback,
            token,
        })
    }

    /// The `Host` values this guard accepts, for error messages.
    fn names(&self) -> String {
        let mut names: Vec<String> = self
            .hosts
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect();
        if let Some(port) = self.any_host_on {
            names.push(format!("*:{port}"));
        }
        names.join(", ")
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.any_host_on == Some(port) || self.hosts.iter().any(|(h, p)| h == host && *p == port)
    }

    /// Checks one request; `Err` is the response to send instead.
    pub(crate) fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        // Every route, reads included: a DNS-rebinding page sends its own host name, and the
        // config is what it would read.
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase);
        let host_ok = host
            .as_deref()
            .and_then(|host| split_host_port(host, 80))
            .is_some_and(|(host, port)| self.allows(host, port));
        if !host_ok {
            return Err(ApiError::forbidden(format!(
                "Host {} is not the admin address ({})",
                host.as_deref().unwrap_or("(none)"),
                self.names()
            )));
        }
        let changes_state = is_state_change(method);
        if changes_state {
            self.check_same_site(headers)?;
        }
        // The page itself holds no data; a browser cannot send a header when it navigates,
        // and the page asks for the token when an API call answers 401.
        let page = path == "/" && (method == Method::GET || method == Method::HEAD);
        let token_needed = self.token.is_some() && !page && (changes_state || !self.loopback);
        if token_needed {
            self.check_token(headers)?;
        }
        Ok(())
    }

    fn check_same_site(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let fetch_site = headers
            .get("sec-fetch-site")
            .and_then(|value| value.to_str().ok());
        if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
            return Err(ApiError::forbidden("cross-site request refused"));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            let ok = origin_host_port(&origin).is_some_and(|(host, port)| self.allows(host, port));
            if !ok {
                return Err(ApiError::forbidden(format!(
                    "cross-origin request from {origin} refused"
                )));
            }
        }
        Ok(())
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            });
        match given {
            None => Err(ApiError::unauthorized(
                "this request needs the admin token: Authorization: Bearer <token>",
            )),
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("wrong admin token")),
        }
    }
}

/// Whether a method changes state: everything but GET and HEAD (so also what no route
/// takes: it is refused before it is routed, never let through).
pub(crate) fn is_state_change(method: &Method) -> bool {
    method != Method::GET && method != Method::HEAD
}

/// Checks a token before it is used: it must fit in a header.
pub(crate) fn valid_token(token: &str) -> Result<(), AdminError> {
    if token.trim().is_empty() {
        return Err(AdminError::InvalidToken("it is empty"));
    }
    if token != token.trim() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AdminError::InvalidToken(
            "it must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// `host[:port]` → (host, port); `[v6]:port` keeps its brackets.
fn split_host_port(text: &str, default_port: u16) -> Option<(&str, u16)> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let end = rest.find(']')? + 1;
        let (host, tail) = text.split_at(end + 1);
        match tail {
            "" => (host, None),
            _ => (host, Some(tail.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The host and port of an `Origin` (`scheme://host[:port]`); `None` for `null` or
/// anything that is not http(s).
fn origin_host_port(origin: &str) -> Option<(&str, u16)> {
    let (scheme, authority) = origin.split_once("://")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if authority.contains('/') || authority.contains('@') {
        return None;
    }
    split_host_port(authority, default_port)
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue, StatusCode};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn status(guard: &Guard, method: Method, path: &str, pairs: &[(&str, &str)]) -> u16 {
        match guard.check(&method, path, &headers(pairs)) {
            Ok(()) => 200,
            Err(error) => error.status.as_u16(),
        }
    }

    fn loopback(token: Option<&str>) -> Guard {
        Guard::new(
            "127.0.0.1:8080".parse().unwrap(),
            token.map(Into::into),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn a_public_address_needs_a_token() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(matches!(
            Guard::new(public, None, &[]),
            Err(AdminError::TokenRequired(_))
        ));
        let lan: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        assert!(Guard::new(lan, None, &[]).is_err());
        assert!(Guard::new(lan, Some("t0ken".into()), &[]).is_ok());
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(Guard::new(v6, None, &[]).is_ok());
    }

    #[test]
    fn host_must_name_the_bound_address() {
        let guard = loopback(None);
        let cases = [
            ("127.0.0.1:8080", 200),
            ("localhost:8080", 200),
            ("LOCALHOST:8080", 200),
            ("127.0.0.1:8081", 403),
            ("127.0.0.1", 403),
            ("evil.example:8080", 403),
            ("[::1]:8080", 403),
            ("", 403),
            ("127.0.0.1:notaport", 403),
        ];
        for (host, expected) in cases {
            assert_eq!(
                status(&guard, Method::GET, "/config", &[("host", host)]),
                expected,
                "Host: {host}"
            );
        }
        assert_eq!(status(&guard, Method::GET, "/config", &[]), 403, "no Host");
        let v6 = Guard::new("[::1]:9000".parse().unwrap(), None, &[]).unwrap();
        assert_eq!(
            status(&v6, Method::GET, "/", &[("host", "[::1]:9000")]),
            200
        );
        assert_eq!(
            status(&v6, Method::GET, "/", &[("host", "localhost:9000")]),
            200
        );
        assert_eq!(
            status(&v6, Method::GET, "/", &[("host", "127.0.0.1:9000")]),
            403
        );
        let port80 = Guard::new("127.0.0.1:80".parse().unwrap(), None, &[]).unwrap();
        assert_eq!(
            status(&port80, Method::GET, "/", &[("host", "localhost")]),
            200
        );
    }

    #[test]
    fn extra_hosts_and_any_interface() {
        let guard = Guard::new(
            "127.0.0.1:8080".parse().unwrap(),
            None,
            &["admin.example:443".into()],
        )
        .unwrap();
        assert_eq!(
            status(&guard, Method::GET, "/", &[("host", "admin.example:443")]),
            200
        );
        let any = Guard::new("0.0.0.0:8080".parse().unwrap(), Some("t".into()), &[]).unwrap();
        let auth = ("authorization", "Bearer t");
        assert_eq!(
            status(
                &any,
                Method::GET,
                "/status",
                &[("host", "10.1.2.3:8080"), auth]
            ),
            200
        );
        assert_eq!(
            status(
                &any,
                Method::GET,
                "/status",
                &[("host", "10.1.2.3:8081"), auth]
            ),
            403
        );
    }

    #[test]
    fn state_changes_refuse_cross_site_requests() {
        let guard = loopback(None);
        let host = ("host", "127.0.0.1:8080");
        let cases: &[(&[(&str, &str)], u16)] = &[
            (&[host], 200),
            (&[host, ("origin", "http://127.0.0.1:8080")], 200),
            (&[host, ("origin", "http://localhost:8080")], 200),
            (&[host, ("origin", "http://evil.example")], 403),
            (&[host, ("origin", "http://127.0.0.1:9999")], 403),
            (&[host, ("origin", "https://127.0.0.1:8080/x")], 403),
            (&[host, ("origin", "null")], 403),
            (&[host, ("sec-fetch-site", "cross-site")], 403),
            (&[host, ("sec-fetch-site", "same-origin")], 200),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                status(&guard, Method::POST, "/reload", pairs),
                *expected,
                "{pairs:?}"
            );
        }
        // Reads are not state changes: a link from elsewhere may open the page.
        assert_eq!(
            status(
                &guard,
                Method::GET,
                "/",
                &[host, ("sec-fetch-site", "cross-site")]
            ),
            200
        );
    }

    #[test]
    fn tokens_on_loopback_guard_state_changes_only() {
        let guard = loopback(Some("s3cret-t0ken"));
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(status(&guard, Method::GET, "/config", &[host]), 200);
        assert_eq!(status(&guard, Method::POST, "/reload", &[host]), 401);
        assert_eq!(status(&guard, Method::PUT, "/config", &[host]), 401);
        let cases = [
            ("Bearer s3cret-t0ken", 200),
            ("bearer s3cret-t0ken", 200),
            ("Bearer s3cret-t0kem", 401),
            ("Bearer s3cret-t0ke", 401),
            ("Bearer s3cret-t0ken2", 401),
            ("Basic s3cret-t0ken", 401),
            ("s3cret-t0ken", 401),
            ("Bearer ", 401),
        ];
        for (authorization, expected) in cases {
            assert_eq!(
                status(
                    &guard,
                    Method::POST,
                    "/reload",
                    &[host, ("authorization", authorization)]
                ),
                expected,
                "{authorization}"
            );
        }
    }

    #[test]
    fn tokens_off_loopback_guard_every_route_but_the_page() {
        let guard = Guard::new("192.0.2.7:8080".parse().unwrap(), Some("tk".into()), &[]).unwrap();
        let host = ("host", "192.0.2.7:8080");
        let auth = ("authorization", "Bearer tk");
        for path in [
            "/config", "/status", "/events", "/metrics", "/healthz", "/history",
        ] {
            assert_eq!(status(&guard, Method::GET, path, &[host]), 401, "{path}");
            assert_eq!(
                status(&guard, Method::GET, path, &[host, auth]),
                200,
                "{path}"
            );
        }
        assert_eq!(status(&guard, Method::GET, "/", &[host]), 200);
        assert_eq!(status(&guard, Method::POST, "/", &[host]), 401);
    }

    #[test]
    fn a_403_names_the_accepted_hosts_and_debug_hides_the_token() {
        let guard = loopback(Some("s3cret-t0ken"));
        let error = guard
            .check(
                &Method::GET,
                "/",
                &headers(&[("host", "evil.example:8080")]),
            )
            .unwrap_err();
        assert!(
            error.message.contains("127.0.0.1:8080, localhost:8080"),
            "{}",
            error.message
        );
        let any = Guard::new("0.0.0.0:8080".parse().unwrap(), Some("t".into()), &[]).unwrap();
        let error = any
            .check(&Method::GET, "/", &headers(&[("host", "a:1")]))
            .unwrap_err();
        assert!(error.message.contains("*:8080"), "{}", error.message);
        let debug = format!("{guard:?}");
        assert!(
            debug.contains("localhost") && debug.contains("***"),
            "{debug}"
        );
        assert!(!debug.contains("s3cret-t0ken"), "{debug}");
    }

    #[test]
    fn a_401_names_the_scheme() {
        let guard = loopback(Some("tk"));
        let error = guard
            .check(
                &Method::POST,
                "/reload",
                &headers(&[("host", "127.0.0.1:8080")]),
            )
            .unwrap_err();
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn tokens_must_fit_in_a_header() {
        assert!(valid_token("abc-123_XYZ").is_ok());
        for bad in ["", "  ", "has space", "tab\t", " lead", "é"] {
            assert!(valid_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
        // A prefix of repeated bytes must not pass by wrapping around.
        assert!(!constant_time_eq(b"aaaa", b"aa"));
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(split_host_port("a:1", 80), Some(("a", 1)));
        assert_eq!(split_host_port("a", 80), Some(("a", 80)));
        assert_eq!(split_host_port("[::1]:9", 80), Some(("[::1]", 9)));
        assert_eq!(split_host_port("[::1]", 80), Some(("[::1]", 80)));
        assert_eq!(split_host_port("[::1]x", 80), None);
        assert_eq!(split_host_port(":80", 80), None);
        assert_eq!(
            origin_host_port("https://example.com"),
            Some(("example.com", 443))
        );
        assert_eq!(origin_host_port("ftp://example.com"), None);
        assert_eq!(origin_host_port("http://evil@127.0.0.1:8080"), None);
        assert_eq!(origin_host_port("http://127.0.0.1:8080/"), None);
    }
}
