//! The steady load: one thread per connection, each with its own agent so that its
//! connection is kept alive, recording every answer and checking on the spot what one
//! answer can show (a failure, a version that went back, a pool built for another config).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The route the rate-limit check drives; every other route is limited far above the load.
pub(crate) const LIMITED_PATH: &str = "/api/limited";

/// Where the other connections send their requests, in turn.
const PATHS: [&str; 5] = ["/api/chat", "/api/search", "/api/pool", "/api/flags", "/"];

/// One answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Seconds since the load started, when the request was sent.
    pub(crate) at: f64,
    pub(crate) latency: Duration,
    pub(crate) status: u16,
    /// The limited route's `rpm` in the answer; 0 elsewhere.
    pub(crate) rpm: u32,
}

/// What one connection saw.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    pub(crate) path: String,
    pub(crate) samples: Vec<Sample>,
    pub(crate) versions: Vec<u64>,
    pub(crate) failures: Vec<String>,
    pub(crate) failed: usize,
    pub(crate) went_back: usize,
}

impl Connection {
    fn fail(&mut self, message: String) {
        self.failed += 1;
        if self.failures.len() < 5 {
            self.failures.push(message);
        }
    }
}

/// Starts `count` connection threads against `base` (`http://127.0.0.1:PORT`).
pub(crate) fn start(
    base: &str,
    count: usize,
    pace: Duration,
    start: Instant,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Connection>> {
    (0..count)
        .map(|i| {
            let (base, stop) = (base.to_owned(), Arc::clone(stop));
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || drive(i, &base, pace, start, &stop))
        })
        .filter_map(Result::ok)
        .collect()
}

/// An agent with one kept-alive connection, that answers every status as a response.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn drive(i: usize, base: &str, pace: Duration, start: Instant, stop: &AtomicBool) -> Connection {
    let agent = agent();
    let limited = i == 0;
    let mut seen = Connection {
        path: if limited { LIMITED_PATH } else { "mixed" }.to_owned(),
        ..Connection::default()
    };
    // The limited route is asked far above its rate, but not in a busy loop.
    let pace = if limited {
        pace.max(Duration::from_millis(12))
    } else {
        pace
    };
    let mut n = i;
    let mut last_version = 0;
    while !stop.load(Ordering::Relaxed) {
        let path = if limited {
            LIMITED_PATH
        } else {
            PATHS[n % PATHS.len()]
        };
        n += 1;
        let sent = Instant::now();
        let answer = request(&agent, &format!("{base}{path}?msg=load"));
        let latency = sent.elapsed();
        let at = sent.duration_since(start).as_secs_f64();
        match answer {
            Err(error) => seen.fail(format!("{path}: {error}")),
            Ok((status, version, body)) => {
                if version < last_version {
                    seen.went_back += 1;
                    seen.fail(format!("{path}: version {version} after {last_version}"));
                }
                last_version = last_version.max(version);
                if seen.versions.last() != Some(&version) {
                    seen.versions.push(version);
                }
                let rpm = check(&mut seen, path, status, version, &body);
                seen.samples.push(Sample {
                    at,
                    latency,
                    status,
                    rpm,
                });
            }
        }
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }
    seen
}

/// Checks one answer; answers the limited route's `rpm`.
fn check(seen: &mut Connection, path: &str, status: u16, version: u64, body: &str) -> u32 {
    let limited = path == LIMITED_PATH;
    let ok = (200..300).contains(&status) || (limited && status == 429);
    if !ok {
        seen.fail(format!("{path}: status {status}: {body}"));
    }
    if !limited && path != "/api/pool" {
        return 0;
    }
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        seen.fail(format!("{path}: not JSON: {body}"));
        return 0;
    };
    // One snapshot per request: the header and the body name the same version.
    if json["version"].as_u64() != Some(version) {
        seen.fail(format!("{path}: X-Config-Version {version} on {body}"));
    }
    if path == "/api/pool" && json["pool"]["size"] != json["pool"]["config"] {
        seen.fail(format!("{path}: a pool built for another config: {body}"));
    }
    json["limit"]["rpm"]
        .as_u64()
        .and_then(|rpm| u32::try_from(rpm).ok())
        .unwrap_or(0)
}

/// Sends one GET; answers the status, `X-Config-Version` and the body.
pub(crate) fn request(agent: &ureq::Agent, url: &str) -> Result<(u16, u64, String), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let version = response
        .headers()
        .get("x-config-version")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| format!("status {status} without X-Config-Version"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, version, body))
}

/// The `q`-quantile of `values` (sorted here).
pub(crate) fn quantile(values: &mut [Duration], q: f64) -> Option<Duration> {
    values.sort_unstable();
    let last = values.len().checked_sub(1)?;
    // A rank within 0..=last: the float is bounded by `last`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((last as f64) * q).round() as usize;
    values.get(rank.min(last)).copied()
}

/// How the limited route's accepted rate followed its `rpm`: one line per stretch of one
/// `rpm`, and the problems found.
pub(crate) fn rate_check(samples: &[Sample], burst: u32) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut stretch_start = 0;
    for end in 1..=samples.len() {
        let boundary = end == samples.len() || samples[end].rpm != samples[stretch_start].rpm;
        if !boundary {
            continue;
        }
        let stretch = &samples[stretch_start..end];
        stretch_start = end;
        let (Some(first), Some(last)) = (stretch.first(), stretch.last()) else {
            continue;
        };
        let span = last.at - first.at;
        if first.rpm == 0 || span < 1.0 {
            continue;
        }
        let rate = f64::from(first.rpm) / 60.0;
        let accepted = stretch.iter().filter(|s| s.status == 200).count();
        let (accepted_f, offered) = (accepted as f64, stretch.len() as f64 / span);
        // A bucket lets through at most its burst plus what it earns; the stretch's edges
        // (a commit a moment after the swap) may give one or two more.
        let most = f64::from(burst) + rate * span + 2.0;
        if accepted_f > most {
            problems.push(format!(
                "rpm {}: {accepted} accepted in {span:.1} s, at most {most:.0} allowed",
                first.rpm
            ));
        }
        // Asked for three times the rate for a while: at least half the tokens are taken,
        // even with the asking thread starved now and then on a loaded machine.
        if offered >= 3.0 * rate && span >= 3.0 && accepted_f < 0.5 * rate * span {
            problems.push(format!(
                "rpm {}: only {accepted} accepted in {span:.1} s of {offered:.0} req/s",
                first.rpm
            ));
        }
        lines.push(format!(
            "rpm {:>5}: {:5.1}/s accepted ({:4.1}/s allowed) over {span:4.1} s, {offered:.0}/s asked",
            first.rpm,
            accepted_f / span,
            rate
        ));
    }
    (lines, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(
        rpm: u32,
        from: f64,
        seconds: f64,
        per_second: f64,
        accept_every: usize,
    ) -> Vec<Sample> {
        let n = (seconds * per_second) as usize;
        (0..n)
            .map(|i| Sample {
                at: from + i as f64 / per_second,
                latency: Duration::ZERO,
                status: if i % accept_every == 0 { 200 } else { 429 },
                rpm,
            })
            .collect()
    }

    #[test]
    fn the_rate_check_accepts_a_limiter_that_follows_rpm() {
        // 10/s then 20/s, asked at 80/s.
        let mut all = samples(600, 0.0, 5.0, 80.0, 8);
        all.extend(samples(1200, 5.0, 5.0, 80.0, 4));
        let (lines, problems) = rate_check(&all, 5);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn the_rate_check_refuses_too_many_and_too_few() {
        // 600 rpm (10/s) but 40/s accepted.
        let (_, problems) = rate_check(&samples(600, 0.0, 5.0, 80.0, 2), 5);
        assert_eq!(problems.len(), 1, "{problems:?}");
        // 1200 rpm (20/s) but 2/s accepted while asked at 80/s.
        let (_, problems) = rate_check(&samples(1200, 0.0, 5.0, 80.0, 40), 5);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn quantiles_of_sorted_values() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut values, 0.5), Some(Duration::from_millis(51)));
        assert_eq!(quantile(&mut values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
