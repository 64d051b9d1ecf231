//! Conditional requests: `If-None-Match` on `GET /config`, `If-Match` on `PUT /config`.
//! The entity tag is [`hotconf::etag`]`(version, hash)`: `"v3-00000000075bcd15"`.

/// What an `If-Match` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// `*`: any live config.
    Any,
    /// The live config must still be this version with this hash.
    Version(u64, u64),
    /// No tag in it can match the live config (stale, weak or malformed).
    Never,
}

/// The tags of a list header, in order.
fn tags(header: &str) -> impl Iterator<Item = &str> {
    header
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
}

/// Reads `If-Match` against the live tag: a tag that equals it is the one passed on to the
/// reloader (which checks again, on its worker, at the moment it applies).
pub(crate) fn if_match(header: &str, live: &str) -> IfMatch {
    if header.trim() == "*" {
        return IfMatch::Any;
    }
    // Strong comparison: a weak tag (W/"…") never matches.
    tags(header)
        .find(|tag| *tag == live)
        .and_then(hotconf::parse_etag)
        .map_or(IfMatch::Never, |(version, hash)| {
            IfMatch::Version(version, hash)
        })
}

/// Whether `If-None-Match` matches the live tag (then the answer is 304).
pub(crate) fn if_none_match(header: &str, live: &str) -> bool {
    let live = live.trim_start_matches("W/");
    // Weak comparison, as RFC 9110 asks for If-None-Match.
    header.trim() == "*" || tags(header).any(|tag| tag.trim_start_matches("W/") == live)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "\"v3-00000000075bcd15\"";

    #[test]
    fn if_match_is_strong_and_takes_lists() {
        assert_eq!(if_match(LIVE, LIVE), IfMatch::Version(3, 123_456_789));
        assert_eq!(if_match(" * ", LIVE), IfMatch::Any);
        assert_eq!(
            if_match(&format!("\"v2-0000000000000001\", {LIVE}"), LIVE),
            IfMatch::Version(3, 123_456_789)
        );
        assert_eq!(if_match("\"v2-0000000000000001\"", LIVE), IfMatch::Never);
        assert_eq!(if_match(&format!("W/{LIVE}"), LIVE), IfMatch::Never);
        assert_eq!(if_match("garbage", LIVE), IfMatch::Never);
        assert_eq!(if_match("", LIVE), IfMatch::Never);
    }

    #[test]
    fn if_none_match_is_weak() {
        assert!(if_none_match(LIVE, LIVE));
        assert!(if_none_match(&format!("W/{LIVE}"), LIVE));
        assert!(if_none_match(&format!("\"x\", {LIVE}"), LIVE));
        assert!(if_none_match("*", LIVE));
        assert!(!if_none_match("\"v2-00000000075bcd15\"", LIVE));
        assert!(!if_none_match("", LIVE));
    }
}
