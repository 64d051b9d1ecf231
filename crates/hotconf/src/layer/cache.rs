//! The parse cache: the last load's tree of each document, so that a reload of several
//! documents parses only those whose bytes changed.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::source::Document;
use crate::tree::Node;

/// The parsed tree of each document of the last load, by position: a reload of several
/// documents parses only those whose bytes changed. (A tree's spans name its document's
/// position: a document that moved is parsed again.)
#[derive(Default)]
pub(crate) struct ParseCache {
    pub(super) trees: Mutex<Vec<Option<(Document, Node)>>>,
}

/// The trees a load may take, taken out of the cache whole: one lock per load, not one per
/// document. (A load that runs at the same time finds none and parses everything.)
#[derive(Default)]
pub(super) struct Known(Vec<Option<(Document, Node)>>);

impl Known {
    /// Takes the tree of `document` at position `index`, when its bytes (and everything
    /// else the parse depends on) are those parsed last time.
    pub(super) fn take(&mut self, document: &Document, index: usize) -> Option<Node> {
        let slot = self.0.get_mut(index)?;
        if slot.as_ref().is_some_and(|(parsed, _)| parsed == document) {
            slot.take().map(|(_, tree)| tree)
        } else {
            None
        }
    }
}

impl ParseCache {
    /// Takes every tree out, for one load.
    pub(super) fn take_all(&self) -> Known {
        Known(std::mem::take(&mut *self.lock()))
    }

    /// Keeps exactly these trees, by position (`None` where a document did not parse):
    /// documents no longer read are forgotten.
    pub(super) fn replace(&self, kept: Vec<Option<(Document, Node)>>) {
        *self.lock() = kept;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<(Document, Node)>>> {
        // Assigned whole: a panic while holding it cannot leave it half-written.
        self.trees.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many trees are kept.
    #[cfg(all(test, feature = "yaml", feature = "json"))]
    pub(super) fn len(&self) -> usize {
        self.lock().iter().flatten().count()
    }
}

impl fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseCache").finish_non_exhaustive()
    }
}
