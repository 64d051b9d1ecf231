//! What an attempt is done with, freed after the worker has answered.

use std::sync::Arc;

use crate::engine::history::Record;
use crate::layer::{Layers, ParseCache};

/// What an attempt is done with, but which takes time to free: the history record it
/// pushed out (a whole config and its tree) and its layers (the merged tree, and the trees
/// lent by the parse cache). The worker settles them after answering, so that time is
/// not in any caller's wait.
pub(super) struct Leftovers<T> {
    pub(super) record: Option<Record<T>>,
    pub(super) layers: Option<Arc<Layers>>,
}

impl<T> Default for Leftovers<T> {
    fn default() -> Self {
        Self {
            record: None,
            layers: None,
        }
    }
}

impl<T> Leftovers<T> {
    /// Gives the lent trees back to `cache` (unless a validation that overran still holds
    /// the layers) and frees the rest.
    pub(super) fn settle(&mut self, cache: &ParseCache) {
        if let Some(layers) = self.layers.take().and_then(|l| Arc::try_unwrap(l).ok()) {
            layers.give_back(Some(cache));
        }
        self.record = None;
    }
}
