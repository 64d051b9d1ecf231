//! Alerts: an [`Observer`] that tells people when a reload is rejected, a component fails
//! to apply, or the file watcher degrades, through a Slack-compatible webhook and/or
//! Prometheus Alertmanager. Behind the `alerts` feature (`alerts-tls` for https webhooks).
//!
//! ```
//! use std::time::Duration;
//! use hotconf::{Reloader, alert::Alerts, source::Format};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alerts = Alerts::builder()
//!     .config_name("app")
//!     .slack("http://chat.internal:8065/hooks/xyz") // Slack, Mattermost, Rocket.Chat…
//!     .alertmanager("http://alertmanager.internal:9093")
//!     .timeout(Duration::from_secs(5))
//!     .retries(3)
//!     .build()?;
//! let reloader = Reloader::<serde_json::Value>::builder()
//!     .defaults(Format::Toml, "rpm = 60")
//!     .alerts(alerts.clone())
//!     .build()?;
//! # drop(reloader);
//! assert_eq!(alerts.dropped(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # What alerts, and when it resolves
//!
//! | alert (`alertname`, `kind`) | fires on | resolves on |
//! |---|---|---|
//! | `HotconfReloadRejected`, `reload` | a rejected reload: "config app reload rejected at stage validate", the first three located errors as description | the next reload that goes through: applied, unchanged, restart required |
//! | `HotconfComponentFailed`, `component` (label `component`) | a component that failed to prepare (the reload is rejected) or panicked while committing (severity `critical`: the config is live, the component may not have taken it) | the next reload that goes through without that component failing |
//! | `HotconfWatcherDegraded`, `watcher` | the watcher failed, or fell back to polling because native events failed ([`Reloader::watch_polling`](crate::Reloader::watch_polling) chosen on purpose is no degradation) | the watcher reports no error again, or is stopped with [`Reloader::unwatch`](crate::Reloader::unwatch) |
//!
//! Every alert carries the labels `alertname`, `config` (the [`config_name`](AlertsBuilder::config_name)),
//! `severity` and `kind`. The description holds the engine's located errors, in which secret
//! values are already redacted; alerts add no config value of their own.
//!
//! Slack gets one message when an alert starts firing and one when it resolves.
//! Alertmanager gets `POST {base}/api/v2/alerts` with the alert when it fires or its words
//! change, again every [`repeat_interval`](AlertsBuilder::repeat_interval) while it fires
//! (Alertmanager resolves an alert that stops being posted), and once with `endsAt` when it
//! resolves.
//!
//! # Never blocking the reload
//!
//! [`Observer::observe`] decides what to post and only `try_send`s it into a bounded queue.
//! One thread, `hotconf-alerts`, posts with the timeout and retries with exponential
//! backoff (doubling, at most 10 s between tries). What does not fit in the queue, or is
//! given up after the retries, is dropped and counted ([`Alerts::dropped`]); the last reason
//! is in [`Alerts::last_error`]. Dropping the last clone of [`Alerts`] (usually with the
//! reloader) stops the thread and waits for it: at most one timeout when a post hangs.
//!
//! [`Observer::health`] reports `{"name": "alerts", "ok", "error", "detail": {"sent",
//! "dropped", "active"}}` in [`Status::observers`](crate::Status): not ok from a dropped
//! post until the next one is delivered.
//!
//! A Slack webhook URL's path is its secret: errors and logs show only its scheme and host.
//! Posts go through the proxy named by `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`, minus the
//! hosts in `NO_PROXY`, as ureq reads them; redirects are not followed.
//!
//! # Known problems
//!
//! - A dropped post is not sent again. A dropped Alertmanager resolution is repaired by
//!   Alertmanager itself (an alert no longer re-posted resolves after its
//!   `resolve_timeout`); a dropped Slack message is simply missing from the channel.
//! - A component that fails to prepare fires two alerts, the rejected reload and the
//!   component's own, so that each resolves on its own terms.
//! - One [`Alerts`] serves one reloader: its state (what fires) is that reloader's.

mod payload;
mod sender;
mod state;

use std::fmt;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::sender::{Endpoint, Post, Settings, Shared, Sink};
use self::state::{ComponentFailure, Input, Notice, Phase, Tracker};
use crate::engine::{Observer, ObserverHealth, ReloaderBuilder};
use crate::error::{Problem, ProblemKind, Stage};
use crate::event::{Event, Outcome};
use crate::trigger::WatcherState;
use crate::validate::Validate;

/// Why [`AlertsBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// A webhook URL cannot be used. The URL is shown without its path when the path may be
    /// a secret (a Slack webhook's).
    #[error("{sink} URL `{url}` is not usable: {reason}")]
    Url {
        /// `slack webhook` or `alertmanager`.
        sink: &'static str,
        /// The URL as it may be shown.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An https URL, but TLS is not compiled in.
    #[error(
        "{sink} URL `{url}` is https, but hotconf was built without TLS: enable its `alerts-tls` feature"
    )]
    TlsNotCompiled {
        /// `slack webhook` or `alertmanager`.
        sink: &'static str,
        /// The URL as it may be shown.
        url: String,
    },
    /// Neither [`slack`](AlertsBuilder::slack) nor [`alertmanager`](AlertsBuilder::alertmanager)
    /// was given.
    #[error("alerts need somewhere to go: give a slack() webhook or an alertmanager() URL")]
    NoSink,
    /// A setting is out of its range.
    #[error("alerts setting {setting}: {reason}")]
    Setting {
        /// The builder method.
        setting: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
    /// The `hotconf-alerts` thread could not be started.
    #[error("cannot start the hotconf-alerts thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Builds [`Alerts`]; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct AlertsBuilder {
    slack: Option<String>,
    alertmanager: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    queue: usize,
    repeat: Duration,
    /// Set by `config_name`; else the reloader's name.
    config: Option<String>,
    generator_url: Option<String>,
}

impl Default for AlertsBuilder {
    fn default() -> Self {
        Self {
            slack: None,
            alertmanager: None,
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(250),
            queue: 64,
            repeat: Duration::from_secs(60),
            config: None,
            generator_url: None,
        }
    }
}

impl AlertsBuilder {
    /// Posts a Slack-compatible `{"text": "…"}` message to this incoming-webhook URL
    /// (Slack, Mattermost, Rocket.Chat, Discord's `/slack` endpoint, …).
    pub fn slack(mut self, url: impl Into<String>) -> Self {
        self.slack = Some(url.into());
        self
    }

    /// Posts to Alertmanager at this base URL (`http://alertmanager:9093`): `POST
    /// {base}/api/v2/alerts`.
    pub fn alertmanager(mut self, base_url: impl Into<String>) -> Self {
        self.alertmanager = Some(base_url.into());
        self
    }

    /// How long one try of one post may take, connecting included. Default: 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a failed post is tried again (transport errors, 5xx, 429) before it
    /// is dropped. Default: 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The wait before the first retry; each next wait doubles, up to 10 s. Default: 250 ms.
    pub fn backoff(mut self, initial: Duration) -> Self {
        self.backoff = initial;
        self
    }

    /// How many posts may wait for the sender thread; more are dropped and counted.
    /// Default: 64.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// How often a firing alert is posted again to Alertmanager. Default: 60 s; keep it
    /// below Alertmanager's `resolve_timeout` (5 min by default).
    pub fn repeat_interval(mut self, interval: Duration) -> Self {
        self.repeat = interval;
        self
    }

    /// The `config` label and the name in every summary. Default: the name the reloader
    /// was given with [`ReloaderBuilder::name`] before [`ReloaderBuilder::alerts`], else
    /// `config`.
    pub fn config_name(mut self, name: impl Into<String>) -> Self {
        self.config = Some(name.into());
        self
    }

    /// Alertmanager's `generatorURL`: where an operator looks next (the admin page).
    pub fn generator_url(mut self, url: impl Into<String>) -> Self {
        self.generator_url = Some(url.into());
        self
    }

    /// Checks the URLs and settings and starts the `hotconf-alerts` thread.
    ///
    /// # Errors
    ///
    /// [`AlertError::NoSink`] without a URL, [`AlertError::Url`] for a URL that is not
    /// `http(s)://host…`, [`AlertError::TlsNotCompiled`] for https without the `alerts-tls`
    /// feature, [`AlertError::Setting`] for a zero queue, timeout or repeat interval.
    pub fn build(self) -> Result<Alerts, AlertError> {
        let slack = self
            .slack
            .as_deref()
            .map(|url| endpoint(Sink::Slack, url.to_owned()))
            .transpose()?;
        let alertmanager = self
            .alertmanager
            .as_deref()
            .map(|base| {
                let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
                endpoint(Sink::Alertmanager, url)
            })
            .transpose()?;
        if slack.is_none() && alertmanager.is_none() {
            return Err(AlertError::NoSink);
        }
        let positive = |setting, value: bool| match value {
            true => Ok(()),
            false => Err(AlertError::Setting {
                setting,
                reason: "must be greater than zero",
            }),
        };
        positive("queue", self.queue > 0)?;
        positive("timeout", !self.timeout.is_zero())?;
        positive("repeat_interval", !self.repeat.is_zero())?;

        let named = self.config.is_some();
        let config = self.config.unwrap_or_else(|| "config".into());
        let shared = Arc::new(Shared::new(
            Tracker::new(config.clone(), self.repeat),
            config,
            self.generator_url,
        ));
        let settings = Settings {
            slack,
            alertmanager,
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
        };
        let (queue, receiver) = std::sync::mpsc::sync_channel(self.queue);
        let thread = {
            let shared = Arc::clone(&shared);
            let settings = settings.clone();
            std::thread::Builder::new()
                .name("hotconf-alerts".into())
                .spawn(move || sender::run(&shared, &settings, &receiver))
                .map_err(AlertError::Thread)?
        };
        Ok(Alerts {
            inner: Arc::new(Inner {
                shared,
                settings,
                named,
                queue: Some(queue),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// Checks a webhook URL: `http://` or, with `alerts-tls`, `https://`, and a host.
fn endpoint(sink: Sink, url: String) -> Result<Endpoint, AlertError> {
    let shown = shown(sink, &url);
    let bad = |reason: &str| AlertError::Url {
        sink: sink.as_str(),
        url: shown.clone(),
        reason: reason.to_owned(),
    };
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| bad("not a URL (expected http://host[:port]/path)"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if cfg!(feature = "alerts-tls") => {}
        Some("https") => {
            return Err(AlertError::TlsNotCompiled {
                sink: sink.as_str(),
                url: shown,
            });
        }
        Some(_) => return Err(bad("the scheme must be http or https")),
        None => return Err(bad("no scheme (expected http://host[:port]/path)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(Endpoint { sink, url, shown })
}

/// A URL as errors and logs may show it: never a password, and for a Slack webhook not its
/// path, which is the webhook's secret.
fn shown(sink: Sink, url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = match sink {
        Sink::Slack if !path.is_empty() && path != "/" => "/…",
        Sink::Slack => path,
        Sink::Alertmanager => path.split(['?', '#']).next().unwrap_or_default(),
    };
    format!("{scheme}{host}{path}")
}

/// Sends alerts for a reloader's events; see the [module docs](self). Cheap to clone: the
/// clones share one queue and one thread, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    settings: Settings,
    /// The config's name was given: the reloader's name does not replace it.
    named: bool,
    /// Taken on drop, which tells the thread to end.
    queue: Option<SyncSender<Post>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Alerts {
    /// A builder with the defaults: 5 s timeout, 3 retries, a queue of 64, re-posting
    /// every 60 s, config name `config`.
    pub fn builder() -> AlertsBuilder {
        AlertsBuilder::default()
    }

    /// Posts delivered.
    pub fn sent(&self) -> u64 {
        self.inner.shared.sent()
    }

    /// Posts dropped: the queue was full, the retries ran out, the server refused it, or
    /// alerts stopped before it was sent.
    pub fn dropped(&self) -> u64 {
        self.inner.shared.dropped()
    }

    /// Alerts firing now.
    pub fn active(&self) -> usize {
        self.inner.shared.tracker().active()
    }

    /// Why the last post was dropped, until a post is delivered again.
    pub fn last_error(&self) -> Option<String> {
        self.inner.shared.last_error()
    }

    /// Turns what the tracker decided into posts and queues them without waiting.
    fn queue(&self, notices: Vec<Notice>) {
        let shared = &self.inner.shared;
        let config = shared.config();
        for notice in notices {
            if self.inner.settings.slack.is_some()
                && let Some(body) = payload::slack(&notice)
            {
                self.post(Post {
                    sink: Sink::Slack,
                    body,
                });
            }
            if self.inner.settings.alertmanager.is_some() {
                let alert = match notice {
                    Notice::Firing(alert) | Notice::Updated(alert) | Notice::Resolved(alert) => {
                        alert
                    }
                };
                let body =
                    payload::alertmanager(&[alert], &config, shared.generator_url.as_deref());
                self.post(Post {
                    sink: Sink::Alertmanager,
                    body,
                });
            }
        }
    }

    fn post(&self, post: Post) {
        let Some(queue) = &self.inner.queue else {
            return;
        };
        let sink = post.sink.as_str();
        match queue.try_send(post) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self
                .inner
                .shared
                .drop_post(format!("{sink}: the alert queue is full")),
            Err(TrySendError::Disconnected(_)) => self
                .inner
                .shared
                .drop_post(format!("{sink}: the hotconf-alerts thread has ended")),
        }
    }

    fn input(&self, input: Input) {
        let shared = &self.inner.shared;
        let notices = shared.tracker().input(input, shared.now());
        self.queue(notices);
    }
}

impl Observer for Alerts {
    fn observe(&self, event: &Event) {
        if let Some(input) = input_of(event) {
            self.input(input);
        }
    }

    /// A watcher with an error (it failed, or fell back to polling) fires the watcher
    /// alert; one without (healthy, or stopped on purpose) resolves it. Polling chosen
    /// with `watch_polling` is no error.
    fn watcher(&self, state: &WatcherState) {
        self.input(Input::Watcher {
            error: state.error.clone(),
            at: state.at,
        });
    }

    /// `alerts`: not ok while the last post was dropped (until one is delivered again);
    /// detail `{"sent", "dropped", "active"}`.
    fn health(&self) -> Option<ObserverHealth> {
        let error = self.last_error();
        Some(
            ObserverHealth::new("alerts", error.is_none(), error).with_detail(serde_json::json!({
                "sent": self.sent(),
                "dropped": self.dropped(),
                "active": self.active(),
            })),
        )
    }
}

/// What an event means for alerting; `None` for events that change nothing (deferred,
/// detected).
fn input_of(event: &Event) -> Option<Input> {
    match event.outcome {
        Outcome::Rejected => Some(Input::Rejected {
            stage: stage_of(event).to_owned(),
            errors: event.errors.iter().map(ToString::to_string).collect(),
            failed: failures(&event.errors, Phase::Prepare),
            at: event.at,
        }),
        Outcome::Applied | Outcome::Unchanged | Outcome::RestartRequired | Outcome::Loaded => {
            Some(Input::Succeeded {
                failed: failures(&event.warnings, Phase::Commit),
                at: event.at,
            })
        }
        _ => None,
    }
}

/// The stage that refused a rejected event, named as in metrics.
fn stage_of(event: &Event) -> &'static str {
    event
        .stage
        .or_else(|| event.errors.first().map(|problem| problem.kind.stage()))
        .map_or("unknown", Stage::as_str)
}

/// The components named by `problems`, once each.
fn failures(problems: &[Problem], phase: Phase) -> Vec<ComponentFailure> {
    let mut failed: Vec<ComponentFailure> = Vec::new();
    for problem in problems {
        let Some(name) = component_of(problem) else {
            continue;
        };
        if failed.iter().all(|f| f.name != name) {
            failed.push(ComponentFailure {
                name: name.to_owned(),
                phase,
                message: problem.to_string(),
            });
        }
    }
    failed
}

/// The component a problem is about.
fn component_of(problem: &Problem) -> Option<&str> {
    match problem.kind {
        ProblemKind::Component => problem.component.as_deref(),
        _ => None,
    }
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.settings;
        f.debug_struct("Alerts")
            .field("config", &self.inner.shared.config())
            .field("slack", &settings.slack.as_ref().map(|e| &e.shown))
            .field(
                "alertmanager",
                &settings.alertmanager.as_ref().map(|e| &e.shown),
            )
            .field("sent", &self.sent())
            .field("dropped", &self.dropped())
            .field("active", &self.active())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.request_stop();
        // Closing the queue wakes a thread waiting for posts.
        drop(self.queue.take());
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(target: "hotconf::alert", "the hotconf-alerts thread panicked");
        }
    }
}

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Sends [`Alerts`] for this reloader's events (registered as an [`Observer`]). Unless
    /// the alerts were given a [`config_name`](AlertsBuilder::config_name), they take this
    /// reloader's [`name`](Self::name) as set so far.
    #[must_use]
    pub fn alerts(self, alerts: Alerts) -> Self {
        if !alerts.inner.named {
            alerts.inner.shared.rename(self.config_name());
        }
        self.observer(alerts)
    }
}

#[cfg(test)]
mod tests;
