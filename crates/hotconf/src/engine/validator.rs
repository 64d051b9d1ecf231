//! Validation under a timeout, on one long-lived thread.
//!
//! A service's [`Validate`] rules and the JSON Schema run on this thread while the caller
//! waits at most the timeout. A validation that overruns rejects its attempt; while it is
//! still running, every later attempt is rejected at once ("validation of attempt N still
//! running"), so a stuck rule costs one thread, never a pile of them, and never wedges the
//! reload worker.
//!
//! A config type that keeps the default [`Validate`] has no rules: once a validation has
//! shown that, and with no schema, [`Validator::check`] answers at once on the caller's
//! thread, with no round trip to the validation thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::component::panic_message;
use crate::error::{Problem, ProblemKind, Problems};
use crate::layer::Layers;
use crate::validate::{self, Ran, Validate};

#[cfg(feature = "json-schema")]
pub(crate) type Schema = crate::schema::Schema;
/// Without the `json-schema` feature there is no schema to check.
#[cfg(not(feature = "json-schema"))]
#[derive(Debug)]
pub(crate) enum Schema {}

/// Every schema and validation problem of `config`, located through `layers` when given.
pub(crate) fn checks<T: Serialize + Validate>(
    schema: Option<&Schema>,
    config: &T,
    layers: Option<&Layers>,
) -> Ran {
    let mut problems = schema_problems(schema, config, layers);
    let ran = validate::run(config, layers);
    problems.0.extend(ran.problems.0);
    Ran { problems, ..ran }
}

#[cfg(feature = "json-schema")]
fn schema_problems<T: Serialize>(
    schema: Option<&Schema>,
    config: &T,
    layers: Option<&Layers>,
) -> Problems {
    let Some(schema) = schema else {
        return Problems::default();
    };
    match layers {
        Some(layers) => schema.check(layers),
        None => Problems(
            serde_json::to_value(config)
                .map(|json| schema.violations(&json))
                .unwrap_or_default()
                .into_iter()
                .map(|(path, message)| Problem::error(ProblemKind::Schema, message).at_path(path))
                .collect(),
        ),
    }
}

#[cfg(not(feature = "json-schema"))]
fn schema_problems<T>(schema: Option<&Schema>, _config: &T, _layers: Option<&Layers>) -> Problems {
    match schema {
        Some(never) => match *never {},
        None => Problems::default(),
    }
}

struct Job<T> {
    config: T,
    layers: Option<Arc<Layers>>,
    reply: SyncSender<(T, Ran)>,
}

/// The validation thread's mailbox.
pub(crate) struct Validator<T> {
    /// Held for a whole check: one validation at a time.
    jobs: Mutex<Sender<Job<T>>>,
    /// The attempt whose validation runs now (set by the caller, cleared by the thread).
    running: Arc<Mutex<Option<u64>>>,
    attempts: Mutex<u64>,
    timeout: Duration,
    /// No schema, and a validation has shown that `T` keeps the default rules: there is
    /// nothing to run.
    nothing_to_run: AtomicBool,
    has_schema: bool,
}

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Each guarded value is assigned whole: a panic cannot leave it half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Validator<T>
where
    T: Serialize + Validate + Send + 'static,
{
    /// Starts the thread.
    ///
    /// # Errors
    ///
    /// When the thread cannot be spawned.
    pub(crate) fn start(schema: Option<Arc<Schema>>, timeout: Duration) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel();
        let running = Arc::new(Mutex::new(None));
        let done = Arc::clone(&running);
        let has_schema = schema.is_some();
        std::thread::Builder::new()
            .name("hotconf-validate".into())
            .spawn(move || serve(&inbox, schema.as_deref(), &done))?;
        Ok(Self {
            jobs: Mutex::new(jobs),
            running,
            attempts: Mutex::new(0),
            timeout,
            nothing_to_run: AtomicBool::new(false),
            has_schema,
        })
    }

    /// Runs the schema and `config`'s rules, giving the config back with every problem
    /// found.
    ///
    /// # Errors
    ///
    /// A [`ProblemKind::Timeout`] problem when validation overran the timeout, or an
    /// earlier one is still running.
    pub(crate) fn check(
        &self,
        config: T,
        layers: Option<Arc<Layers>>,
    ) -> Result<(T, Problems), Problem> {
        if self.nothing_to_run.load(Ordering::Acquire) {
            return Ok((config, Problems::default()));
        }
        let jobs = lock(&self.jobs);
        let attempt = {
            let mut attempts = lock(&self.attempts);
            *attempts += 1;
            *attempts
        };
        {
            let mut running = lock(&self.running);
            if let Some(stuck) = *running {
                return Err(Problem::error(
                    ProblemKind::Timeout,
                    format!(
                        "validation of attempt {stuck} still running; this attempt was not validated"
                    ),
                ));
            }
            *running = Some(attempt);
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            config,
            layers,
            reply,
        };
        if jobs.send(job).is_err() {
            *lock(&self.running) = None;
            return Err(Problem::error(
                ProblemKind::Timeout,
                "the validation thread is gone",
            ));
        }
        let (config, ran) = answer.recv_timeout(self.timeout).map_err(|_| {
            tracing::error!(target: "hotconf", attempt, timeout_ms = self.timeout.as_millis() as u64, "validation timed out");
            Problem::error(
                ProblemKind::Timeout,
                format!("validation timed out after {} ms", self.timeout.as_millis()),
            )
        })?;
        if ran.no_rules && !self.has_schema {
            self.nothing_to_run.store(true, Ordering::Release);
        }
        Ok((config, ran.problems))
    }
}

fn serve<T: Serialize + Validate>(
    inbox: &Receiver<Job<T>>,
    schema: Option<&Schema>,
    running: &Mutex<Option<u64>>,
) {
    // Ends when the validator is dropped.
    while let Ok(Job {
        config,
        layers,
        reply,
    }) = inbox.recv()
    {
        let checked = catch_unwind(AssertUnwindSafe(|| {
            checks(schema, &config, layers.as_deref())
        }));
        // Let go of the layers before answering: the caller then holds the only reference,
        // and gives the trees they were lent back to the parse cache.
        drop(layers);
        let ran = checked.unwrap_or_else(|panic| Ran {
            problems: Problems::from(Problem::error(
                ProblemKind::Validation,
                format!("validation panicked: {}", panic_message(panic.as_ref())),
            )),
            no_rules: false,
        });
        *lock(running) = None;
        // The caller may have given up (timeout): the result is dropped with the job.
        let _ = reply.send((config, ran));
    }
}

impl<T> std::fmt::Debug for Validator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Report;

    #[derive(Debug, Serialize)]
    struct Slow {
        #[serde(skip)]
        release: Arc<AtomicBool>,
        rpm: u32,
    }

    impl Validate for Slow {
        fn validate(&self, report: &mut Report) {
            while !self.release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if self.rpm == 0 {
                report.error("rpm", "must be greater than 0");
            }
        }
    }

    #[test]
    fn a_stuck_validation_rejects_its_attempt_and_the_next_ones_until_it_ends() {
        let validator = Validator::start(None, Duration::from_millis(50)).unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let slow = |rpm| Slow {
            release: Arc::clone(&release),
            rpm,
        };
        let timed_out = validator.check(slow(1), None).unwrap_err();
        assert_eq!(timed_out.kind, ProblemKind::Timeout);
        assert_eq!(timed_out.message, "validation timed out after 50 ms");
        let refused = validator.check(slow(1), None).unwrap_err();
        assert_eq!(
            refused.message,
            "validation of attempt 1 still running; this attempt was not validated"
        );
        release.store(true, Ordering::SeqCst);
        // Once the stuck one ends, validation works again (wait for it with a deadline).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (config, problems) = loop {
            match validator.check(slow(0), None) {
                Ok(done) => break done,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(problem) => panic!("validation never recovered: {problem}"),
            }
        };
        assert_eq!(config.rpm, 0);
        assert_eq!(problems.0[0].message, "must be greater than 0");
    }

    fn attempts<T>(validator: &Validator<T>) -> u64 {
        *lock(&validator.attempts)
    }

    #[test]
    fn a_type_without_rules_is_validated_once_then_never_sent_again() {
        let validator =
            Validator::<serde_json::Value>::start(None, Duration::from_secs(10)).unwrap();
        let (config, problems) = validator.check(serde_json::json!({"a": 1}), None).unwrap();
        assert_eq!(config, serde_json::json!({"a": 1}));
        assert!(problems.0.is_empty());
        assert_eq!(attempts(&validator), 1);
        // Answered here: the thread sees no second attempt.
        let (config, problems) = validator.check(serde_json::json!({"a": 2}), None).unwrap();
        assert_eq!(config, serde_json::json!({"a": 2}));
        assert!(problems.0.is_empty());
        assert_eq!(attempts(&validator), 1);
    }

    #[test]
    fn a_type_with_rules_is_always_sent() {
        let validator = Validator::start(None, Duration::from_secs(10)).unwrap();
        let release = Arc::new(AtomicBool::new(true));
        let slow = |rpm| Slow {
            release: Arc::clone(&release),
            rpm,
        };
        assert!(validator.check(slow(1), None).unwrap().1.0.is_empty());
        let (_, problems) = validator.check(slow(0), None).unwrap();
        assert_eq!(problems.0[0].message, "must be greater than 0");
        assert_eq!(attempts(&validator), 2);
    }

    #[cfg(feature = "json-schema")]
    #[test]
    fn a_schema_is_always_checked_even_without_rules() {
        let schema = crate::schema::Schema::from_json(
            &serde_json::json!({"properties": {"a": {"type": "integer"}}}),
        )
        .unwrap();
        let validator =
            Validator::<serde_json::Value>::start(Some(Arc::new(schema)), Duration::from_secs(10))
                .unwrap();
        assert!(
            validator
                .check(serde_json::json!({"a": 1}), None)
                .unwrap()
                .1
                .0
                .is_empty()
        );
        let (_, problems) = validator
            .check(serde_json::json!({"a": "x"}), None)
            .unwrap();
        assert_eq!(problems.0.len(), 1);
        assert_eq!(attempts(&validator), 2);
    }

    #[cfg(feature = "toml")]
    #[test]
    fn the_layers_are_let_go_before_the_answer() {
        use crate::source::{Defaults, Format};
        let layers = Arc::new(
            Layers::load(
                &[Defaults::text(Format::Toml, "rpm = 1\n")],
                &crate::Limits::default(),
            )
            .unwrap(),
        );
        let release = Arc::new(AtomicBool::new(true));
        let validator = Validator::start(None, Duration::from_secs(10)).unwrap();
        // Many times: a reference dropped after the answer is seen only when it loses the race.
        for rpm in (0..50).map(|i| i % 2) {
            let slow = Slow {
                release: Arc::clone(&release),
                rpm,
            };
            validator.check(slow, Some(Arc::clone(&layers))).unwrap();
            // No wait: the thread dropped its reference before it answered.
            assert_eq!(Arc::strong_count(&layers), 1);
        }
    }

    #[test]
    fn debug_shows_the_timeout() {
        let validator =
            Validator::<serde_json::Value>::start(None, Duration::from_millis(7)).unwrap();
        assert_eq!(format!("{validator:?}"), "Validator { timeout: 7ms, .. }");
    }

    #[test]
    fn a_panicking_rule_is_a_problem_not_a_dead_thread() {
        #[derive(Debug, Serialize)]
        struct Panics(bool);
        impl Validate for Panics {
            fn validate(&self, _: &mut Report) {
                assert!(!self.0, "rule bug");
            }
        }
        let validator = Validator::start(None, Duration::from_secs(10)).unwrap();
        let (_, problems) = validator.check(Panics(true), None).unwrap();
        assert_eq!(problems.0[0].message, "validation panicked: rule bug");
        let (_, problems) = validator.check(Panics(false), None).unwrap();
        assert!(problems.0.is_empty());
    }
}
