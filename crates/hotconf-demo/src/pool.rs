//! A pool of (pretend) backend connections whose size follows `pool.size`: a [`Resource`]
//! built beside the live pool, reusing its connections, and published in the same swap as
//! the config it was built from. Opening more than the database allows fails the build,
//! and with it the whole reload: the old config and the old pool stay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hotconf::{PrepareError, Resource};

use crate::config::Demo;

/// How many connections the pretend database accepts.
pub(crate) const MAX_CONNECTIONS: usize = 32;

/// Numbers connections across pools, so reuse shows.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// One open connection.
#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
}

/// The connections of one config version.
#[derive(Debug)]
pub(crate) struct Pool {
    connections: Vec<Arc<Connection>>,
    next: AtomicUsize,
}

impl Pool {
    /// How many connections it holds.
    pub(crate) fn size(&self) -> usize {
        self.connections.len()
    }

    /// The id of the next connection, round robin.
    pub(crate) fn next_id(&self) -> u64 {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len().max(1);
        self.connections.get(i).map_or(0, |c| c.id)
    }
}

/// Builds the pool from `pool.size`.
#[derive(Debug)]
pub(crate) struct PoolResource;

impl Resource<Demo> for PoolResource {
    type Output = Pool;

    fn name(&self) -> &str {
        "pool"
    }

    fn paths(&self) -> Vec<String> {
        vec!["pool.**".into()]
    }

    fn build(&self, config: &Demo, live: Option<&Pool>) -> Result<Pool, PrepareError> {
        build(config.pool.size, live)
    }
}

fn build(size: usize, live: Option<&Pool>) -> Result<Pool, PrepareError> {
    if size > MAX_CONNECTIONS {
        return Err(format!(
            "cannot open {size} connections: the demo database allows at most {MAX_CONNECTIONS}"
        )
        .into());
    }
    let kept = live.map_or(&[][..], |pool| &pool.connections[..size.min(pool.size())]);
    let mut connections = kept.to_vec();
    while connections.len() < size {
        let id = OPENED.fetch_add(1, Ordering::Relaxed) + 1;
        connections.push(Arc::new(Connection { id }));
    }
    Ok(Pool {
        connections,
        next: AtomicUsize::new(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pool: &Pool) -> Vec<u64> {
        pool.connections.iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_resize_keeps_the_live_connections_it_can() {
        let first = build(3, None).unwrap();
        let bigger = build(5, Some(&first)).unwrap();
        assert_eq!(ids(&bigger)[..3], ids(&first)[..]);
        assert_eq!(bigger.size(), 5);
        let smaller = build(2, Some(&bigger)).unwrap();
        assert_eq!(ids(&smaller), ids(&first)[..2]);
    }

    #[test]
    fn more_than_the_database_allows_fails_the_build() {
        let error = build(MAX_CONNECTIONS + 1, None).unwrap_err();
        assert!(error.to_string().contains("at most 32"), "{error}");
        assert!(build(MAX_CONNECTIONS, None).is_ok());
    }

    #[test]
    fn connections_are_handed_out_round_robin() {
        let pool = build(2, None).unwrap();
        let (a, b, c) = (pool.next_id(), pool.next_id(), pool.next_id());
        assert_ne!(a, b);
        assert_eq!(a, c);
    }
}
