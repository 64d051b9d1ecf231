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
    /// Where a lagging stream that started live fills in from: the last attempt when it
    /// connected (it did not ask for anything older).
    floor: u64,
    shutdown: watch::Receiver<bool>,
    opened: bool,
    detected: bool,
}

/// What a stream sends: first a comment once the subscription is in place, then events.
#[derive(Debug)]
enum Item {
    Connected,
    Event(Box<Event>),
}

/// The stream for one client: the events after `resume_after` (when given), then live ones;
/// `detected` events only when asked for (as `hotconf watch --events all` prints them).
pub(crate) fn stream(
    control: Arc<dyn Control>,
    resume_after: Option<u64>,
    detected: bool,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let feed = Feed::new(control, resume_after, detected, shutdown);
    futures_util::stream::unfold(feed, |mut feed| async move {
        let sse = match feed.next().await? {
            // Tells the client the subscription is in place before anything happens.
            Item::Connected => SseEvent::default().comment("connected"),
            Item::Event(event) => format(&event),
        };
        Some((Ok(sse), feed))
    })
}

impl Feed {
    fn new(
        control: Arc<dyn Control>,
        resume_after: Option<u64>,
        detected: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        // Subscribe first, then read the backlog: an event sent in between is in both, and
        // the seq filter drops the second copy.
        let live = control.events();
        let (backlog, last, floor) = match resume_after {
            Some(seq) => (control.events_since(seq).into(), seq, seq),
            None => {
                let floor = control.status().last.map_or(0, |event| event.seq);
                (VecDeque::new(), 0, floor)
            }
        };
        Self {
            control,
            backlog,
            live,
            last,
            floor,
            shutdown,
            opened: false,
            detected,
        }
    }

    async fn next(&mut self) -> Option<Item> {
        if !self.opened {
            self.opened = true;
            return Some(Item::Connected);
        }
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if self.take(&event) {
                    return Some(Item::Event(Box::new(event)));
                }
                continue;
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                () = shutdown(&mut self.shutdown) => return None,
            };
            match received {
                Ok(event) => {
                    if self.take(&event) {
                        return Some(Item::Event(Box::new(event)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "event stream lagged; filling in from history");
                    let from = self.last.max(self.floor);
                    self.backlog = self.control.events_since(from).into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Whether to send the event: not if it was sent already or is not asked for.
    fn take(&mut self, event: &Event) -> bool {
        if event.outcome == Outcome::Detected && !self.detected {
            return false;
        }
        if event.seq <= self.last {
            return false;
        }
        self.last = event.seq;
        true
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
    use hotconf::source::Format;
    use hotconf::{ConfigView, Plan, Reloader, Status};

    /// A real reloader's control whose broadcast is scripted: `events()` subscribes and then
    /// receives `live` (as if they were sent between the subscription and the backlog
    /// read), and `events_since` sees only the attempts up to `kept`.
    struct Scripted {
        inner: Arc<dyn Control>,
        live: Vec<Event>,
        capacity: usize,
        kept: u64,
    }

    impl Control for Scripted {
        fn name(&self) -> String {
            self.inner.name()
        }
        fn config(&self) -> ConfigView {
            self.inner.config()
        }
        fn status(&self) -> Status {
            self.inner.status()
        }
        fn attempts(&self) -> Vec<Event> {
            self.inner.attempts()
        }
        fn attempt(&self, seq: u64) -> Option<Event> {
            self.inner.attempt(seq)
        }
        fn events_since(&self, seq: u64) -> Vec<Event> {
            let mut events = self.inner.events_since(seq);
            events.retain(|event| event.seq <= self.kept);
            events
        }
        fn reload(&self, by: Option<String>) -> hotconf::Result<Event> {
            self.inner.reload(by)
        }
        fn rollback_to(&self, version: u64, by: Option<String>) -> hotconf::Result<Event> {
            self.inner.rollback_to(version, by)
        }
        fn plan(&self) -> Plan {
            self.inner.plan()
        }
        fn plan_document(&self, format: Format, bytes: Vec<u8>) -> Plan {
            self.inner.plan_document(format, bytes)
        }
        fn put(
            &self,
            format: Format,
            bytes: Vec<u8>,
            if_match: Option<(u64, u64)>,
            by: Option<String>,
        ) -> hotconf::Result<Event> {
            self.inner.put(format, bytes, if_match, by)
        }
        fn events(&self) -> broadcast::Receiver<Event> {
            // The sender is dropped: the stream ends once it has read what was sent.
            let (tx, rx) = broadcast::channel(self.capacity);
            for event in &self.live {
                let _ = tx.send(event.clone());
            }
            rx
        }
        fn enable(&self) {}
        fn disable(&self) {}
        fn is_enabled(&self) -> bool {
            true
        }

        fn is_running(&self) -> bool {
            true
        }
    }

    /// A reloader with six attempts: the first load and five PUTs.
    fn six_attempts() -> (Reloader<serde_json::Value>, Vec<Event>) {
        let reloader = Reloader::<serde_json::Value>::builder()
            .defaults(Format::Json, r#"{"rpm": 0}"#)
            .build()
            .unwrap();
        let control = reloader.control();
        for rpm in 1..=5 {
            let body = format!(r#"{{"rpm": {rpm}}}"#).into_bytes();
            control.put(Format::Json, body, None, None).unwrap();
        }
        let attempts = reloader.attempts();
        assert_eq!(attempts.len(), 6);
        (reloader, attempts)
    }

    /// Every seq the feed sends until its broadcast closes.
    fn drain(control: Scripted, resume_after: Option<u64>) -> Vec<u64> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_stop, stopped) = watch::channel(false);
        runtime.block_on(async move {
            let mut feed = Feed::new(Arc::new(control), resume_after, false, stopped);
            assert!(matches!(feed.next().await, Some(Item::Connected)));
            let mut seqs = Vec::new();
            while let Some(item) = feed.next().await {
                match item {
                    Item::Event(event) => seqs.push(event.seq),
                    Item::Connected => panic!("connected twice"),
                }
            }
            seqs
        })
    }

    #[test]
    fn a_resumed_feed_sends_the_backlog_then_live_without_duplicates() {
        let (reloader, all) = six_attempts();
        let seqs: Vec<u64> = all.iter().map(|event| event.seq).collect();
        // Resumes after the second attempt; the backlog read sees up to the fifth, the
        // broadcast holds the fourth to the sixth.
        let scripted = Scripted {
            inner: reloader.control(),
            live: all[3..].to_vec(),
            capacity: 16,
            kept: seqs[4],
        };
        assert_eq!(drain(scripted, Some(seqs[1])), seqs[2..]);
    }

    #[test]
    fn a_lagging_feed_fills_in_from_the_kept_events() {
        let (reloader, all) = six_attempts();
        let seqs: Vec<u64> = all.iter().map(|event| event.seq).collect();
        // The broadcast keeps only the last of five sent: the feed lags, reads the kept
        // events after what it sent, and still sends each once.
        let scripted = Scripted {
            inner: reloader.control(),
            live: all[1..].to_vec(),
            capacity: 1,
            kept: seqs[5],
        };
        assert_eq!(drain(scripted, Some(seqs[0])), seqs[1..]);
        // Started live: a lag fills in nothing older than the connection; what the broadcast
        // still holds is sent.
        let scripted = Scripted {
            inner: reloader.control(),
            live: all[1..].to_vec(),
            capacity: 1,
            kept: seqs[5],
        };
        assert_eq!(drain(scripted, None), [seqs[5]]);
    }

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
