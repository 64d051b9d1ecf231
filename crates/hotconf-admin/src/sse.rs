//! `GET /events`: server-sent events, live, resumable with `Last-Event-ID`.
//!
//! The broadcast is subscribed to before the backlog is read, so nothing falls between the
//! two; every event whose `seq` is not above the last one sent is skipped, so nothing is
//! sent twice. A subscriber that lags behind the broadcast is filled in from the kept
//! events instead of losing them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event as SseEvent;
use futures_util::Stream;
use hotconf::{Control, Event, Outcome};
use tokio::sync::{broadcast, watch};

/// One event as a server-sent event: `id: <seq>`, `event: <outcome>`, `data: <event JSON>`.
pub(crate) fn format(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.seq.to_string())
        .event(event.outcome.as_str())
        .data(event.to_json())
}

/// Whether the query asks for every event (`?events=all`), `detected` ones included.
pub(crate) fn wants_detected(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair == "events=all")
}

/// The `Last-Event-ID` a client sent: a `seq`. Anything else starts live.
pub(crate) fn last_event_id(value: Option<&str>) -> Option<u64> {
    value?.trim().parse().ok()
}

/// Where a stream is: what it still has to send, and the last `seq` it sent.
struct Feed {
    control: Arc<dyn Control>,
    backlog: VecDeque<Event>,
    live: broadcast::Receiver<Event>,
    last: u64,
    shutdown: watch::Receiver<bool>,
    opened: bool,
    detected: bool,
}

/// The stream for one client: the events after `resume_after` (when given), then live ones;
/// `detected` events only when asked for (as `hotconf watch --events all` prints them).
pub(crate) fn stream(
    control: Arc<dyn Control>,
    resume_after: Option<u64>,
    detected: bool,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    // Subscribe first, then read the backlog: an event sent in between is in both, and the
    // seq filter drops the second copy.
    let live = control.events();
    let (backlog, last) = match resume_after {
        Some(seq) => (control.events_since(seq).into(), seq),
        None => (VecDeque::new(), 0),
    };
    let feed = Feed {
        control,
        backlog,
        live,
        last,
        shutdown,
        opened: false,
        detected,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    })
}

impl Feed {
    async fn next(&mut self) -> Option<SseEvent> {
        if !self.opened {
            // Tells the client the subscription is in place before anything happens.
            self.opened = true;
            return Some(SseEvent::default().comment("connected"));
        }
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if let Some(sse) = self.take(&event) {
                    return Some(sse);
                }
                continue;
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                () = shutdown(&mut self.shutdown) => return None,
            };
            match received {
                Ok(event) => {
                    if let Some(sse) = self.take(&event) {
                        return Some(sse);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "event stream lagged; filling in from history");
                    self.backlog = self.control.events_since(self.last).into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The event to send, unless it was sent already or is not asked for.
    fn take(&mut self, event: &Event) -> Option<SseEvent> {
        if event.outcome == Outcome::Detected && !self.detected {
            return None;
        }
        (event.seq > self.last).then(|| {
            self.last = event.seq;
            format(event)
        })
    }
}

/// Resolves when the server shuts down; never when nobody can shut it down.
async fn shutdown(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_are_seqs() {
        assert_eq!(last_event_id(Some("42")), Some(42));
        assert_eq!(last_event_id(Some(" 7 ")), Some(7));
        assert_eq!(last_event_id(Some("x")), None);
        assert_eq!(last_event_id(Some("-1")), None);
        assert_eq!(last_event_id(None), None);
    }

    #[test]
    fn detected_events_are_asked_for() {
        assert!(wants_detected(Some("events=all")));
        assert!(wants_detected(Some("x=1&events=all")));
        assert!(!wants_detected(Some("events=attempts")));
        assert!(!wants_detected(Some("events=allx")));
        assert!(!wants_detected(None));
    }
}
