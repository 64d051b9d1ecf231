//! The `hotconf-alerts` thread: takes posts from the bounded queue, sends each with a
//! timeout and bounded retries, and re-posts firing Alertmanager alerts on schedule. The
//! reload worker only ever `try_send`s to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::payload;
use super::state::Tracker;

/// The longest wait between two tries of one post.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a post goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sink {
    Slack,
    Alertmanager,
}

impl Sink {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack webhook",
            Self::Alertmanager => "alertmanager",
        }
    }
}

/// A webhook: the URL posted to, and how it may be shown (a Slack URL's path is its secret).
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) sink: Sink,
    pub(crate) url: String,
    pub(crate) shown: String,
}

/// One request body for one sink.
#[derive(Debug)]
pub(crate) struct Post {
    pub(crate) sink: Sink,
    pub(crate) body: String,
}

/// What the observer side and the thread share.
pub(crate) struct Shared {
    pub(crate) tracker: Mutex<Tracker>,
    /// The `config` label; the tracker holds the same name for its summaries.
    config: Mutex<String>,
    pub(crate) generator_url: Option<String>,
    origin: Instant,
    sent: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    pub(crate) fn new(tracker: Tracker, config: String, generator_url: Option<String>) -> Self {
        Self {
            tracker: Mutex::new(tracker),
            config: Mutex::new(config),
            generator_url,
            origin: Instant::now(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// The tracker's monotonic clock.
    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub(crate) fn config(&self) -> String {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Names the config, in labels and summaries alike.
    pub(crate) fn rename(&self, name: &str) {
        let mut tracker = self.tracker();
        name.clone_into(&mut self.config.lock().unwrap_or_else(PoisonError::into_inner));
        tracker.set_config(name);
    }

    pub(crate) fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts a post that will never be sent, and says why.
    pub(crate) fn drop_post(&self, why: String) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        crate::metrics::alert_dropped(&self.config());
        tracing::warn!(target: "hotconf::alert", config = %self.config(), reason = %why, "alert dropped");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    fn delivered(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn request_stop(&self) {
        *self.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    fn stopping(&self) -> bool {
        *self.stop.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits `duration` unless asked to stop first; returns whether to go on.
    fn pause(&self, duration: Duration) -> bool {
        let stop = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        let (stop, _) = self
            .wake
            .wait_timeout_while(stop, duration, |stop| !*stop)
            .unwrap_or_else(PoisonError::into_inner);
        !*stop
    }
}

/// How the thread posts.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) slack: Option<Endpoint>,
    pub(crate) alertmanager: Option<Endpoint>,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
}

/// The wait before try `attempt + 1` of a post (`attempt` counts from 0): doubling from
/// `initial`, never more than [`MAX_BACKOFF`].
pub(crate) fn backoff(initial: Duration, attempt: u32) -> Duration {
    initial
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Why one try failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
}

/// The thread's body: runs until the queue is closed or a stop is requested.
pub(crate) fn run(shared: &Shared, settings: &Settings, queue: &Receiver<Post>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(settings.timeout))
        .http_status_as_error(true)
        // A webhook answers; a redirect of a POST is a misconfiguration to report.
        .max_redirects(0)
        .build()
        .into();
    loop {
        // Firing Alertmanager alerts are re-posted on schedule; a Slack message is not.
        let due = match settings.alertmanager {
            Some(_) => shared.tracker().next_due(),
            None => None,
        };
        let received = match due {
            Some(due) => queue.recv_timeout(due.saturating_sub(shared.now())),
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        if shared.stopping() {
            if received.is_ok() {
                shared.drop_post("alerts stopped before the post was sent".into());
            }
            break;
        }
        match received {
            Ok(post) => deliver(shared, settings, &agent, &post),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if settings.alertmanager.is_some() {
            let repeats = shared.tracker().due(shared.now());
            if !repeats.is_empty() {
                let body = payload::alertmanager(
                    &repeats,
                    &shared.config(),
                    shared.generator_url.as_deref(),
                );
                deliver(
                    shared,
                    settings,
                    &agent,
                    &Post {
                        sink: Sink::Alertmanager,
                        body,
                    },
                );
            }
        }
    }
    // Stopping: what is still queued will not be sent.
    while queue.try_recv().is_ok() {
        shared.drop_post("alerts stopped before the post was sent".into());
    }
}

/// Sends one post, retrying with backoff; counts it as sent or dropped.
fn deliver(shared: &Shared, settings: &Settings, agent: &ureq::Agent, post: &Post) {
    let endpoint = match post.sink {
        Sink::Slack => settings.slack.as_ref(),
        Sink::Alertmanager => settings.alertmanager.as_ref(),
    };
    let Some(endpoint) = endpoint else {
        return;
    };
    let mut attempt = 0;
    loop {
        match send(agent, endpoint, &post.body) {
            Ok(()) => {
                shared.delivered();
                return;
            }
            Err(failure) => {
                let tries = attempt + 1;
                let last = !failure.retry || attempt >= settings.retries;
                if last || !shared.pause(backoff(settings.backoff, attempt)) {
                    shared.drop_post(format!(
                        "{} {}: {} (gave up after {tries} {})",
                        endpoint.sink.as_str(),
                        endpoint.shown,
                        failure.message,
                        if tries == 1 { "try" } else { "tries" },
                    ));
                    return;
                }
                tracing::debug!(target: "hotconf::alert", sink = endpoint.sink.as_str(), url = %endpoint.shown, error = %failure.message, tries, "alert post failed, retrying");
                attempt += 1;
            }
        }
    }
}

fn send(agent: &ureq::Agent, endpoint: &Endpoint, body: &str) -> Result<(), Failure> {
    agent
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .send(body)
        .map(drop)
        .map_err(|error| failure(&error))
}

fn failure(error: &ureq::Error) -> Failure {
    match error {
        ureq::Error::StatusCode(status) => Failure {
            message: format!("HTTP status {status}"),
            // The server is there: only its own trouble or a rate limit may pass.
            retry: *status >= 500 || *status == 429,
        },
        // These carry the URL, and a Slack URL's path is its secret.
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => Failure {
            message: "the URL was refused".into(),
            retry: false,
        },
        other => Failure {
            message: other.to_string(),
            retry: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_bound() {
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(100), 0), ms(100));
        assert_eq!(backoff(ms(100), 1), ms(200));
        assert_eq!(backoff(ms(100), 3), ms(800));
        assert_eq!(backoff(ms(100), 7), MAX_BACKOFF);
        assert_eq!(backoff(ms(100), 40), MAX_BACKOFF, "no overflow");
        assert_eq!(backoff(Duration::MAX, 2), MAX_BACKOFF);
    }

    #[test]
    fn only_server_trouble_and_transport_errors_are_retried() {
        assert!(failure(&ureq::Error::StatusCode(503)).retry);
        assert!(failure(&ureq::Error::StatusCode(429)).retry);
        assert!(!failure(&ureq::Error::StatusCode(404)).retry);
        assert!(!failure(&ureq::Error::StatusCode(400)).retry);
        assert!(failure(&ureq::Error::ConnectionFailed).retry);
        let bad = failure(&ureq::Error::BadUri("http://x/services/SECRET".into()));
        assert!(!bad.retry);
        assert!(!bad.message.contains("SECRET"));
        assert_eq!(
            failure(&ureq::Error::StatusCode(500)).message,
            "HTTP status 500"
        );
    }
}
