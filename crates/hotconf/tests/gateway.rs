//! The gateway example, run: it must load, apply, refuse and hold back what its walk-through
//! says, so that the example cannot rot unnoticed.

#![cfg(all(feature = "toml", feature = "yaml", feature = "json"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The example's `main` only calls `run`, which the test calls with a buffer.
#[allow(dead_code)]
#[path = "../examples/gateway.rs"]
mod gateway;

/// Asserts that each of `expected` is a whole line of `lines`, in this order.
fn assert_lines_in_order(lines: &[String], expected: &[&str]) {
    let mut rest = lines.iter();
    for want in expected {
        assert!(
            rest.any(|line| line == want),
            "no line {want:?} (in order) in:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn the_gateway_example_reports_each_step() {
    let mut out = Vec::new();
    gateway::run(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // The example works in a temp dir: its path is left out of the located error.
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.find("/20-routes.yaml:") {
            Some(at) if line.starts_with('/') => format!("<dir>{}", &line[at..]),
            _ => line.to_owned(),
        })
        .collect();
    assert_lines_in_order(
        &lines,
        &[
            // The first load committed the limiter's bucket: it is no longer (0, 0).
            "loaded version 1, limiter bucket (600, 80)",
            "1. a valid edit, previewed first",
            "  would change ~ limits.rpm: 600 -> 900 (hot)",
            "  applied -> version 2",
            "    ~ limits.rpm: 600 -> 900",
            "  limiter bucket: (900, 80)",
            // The component refuses the burst; nothing applies.
            "2. the rate limiter refuses a burst above rpm (set in the JSON layer)",
            "  config rejected:",
            "component 'rate-limiter' refused the config: a burst of 5000 cannot exceed 900 requests per minute",
            // The cross-file rule's error points into the YAML file.
            "3. a route to an unknown upstream, in the YAML file",
            "  config rejected:",
            "<dir>/20-routes.yaml:14:15: routes[1].upstream: no upstream named 'invoices'",
            // The hot part applies as version 3; the listen address waits for a restart.
            "4. the listen address needs a restart: the rest applies",
            "  applied -> version 3",
            "    ~ server.workers: 4 -> 8",
            "  listening on 0.0.0.0:8080 (pending a restart: server.listen)",
        ],
    );
    assert!(
        !text.contains("version 4"),
        "the refused edits made no version:\n{text}"
    );
}
