//! The parse cache: the last load's tree of each document, so that a reload of several
//! documents parses only those whose bytes changed.
//!
//! A tree is either kept as a copy, or lent: a document mounted under a section that no other
//! document writes ([`Dir::sections`](crate::source::Dir::sections)) is the merged root's
//! entry under that name, untouched, so the merge takes the tree itself and
//! [`give_back`](ParseCache::give_back) takes it out of the root when the load is done with
//! it. Nothing is copied or freed for the documents that did not change.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::source::Document;
use crate::tree::{Node, Value};

/// The parsed tree of each document of the last load, by position: a reload of several
/// documents parses only those whose bytes changed. (A tree's spans name its document's
/// position: a document that moved is parsed again.)
#[derive(Default)]
pub(crate) struct ParseCache {
    pub(super) state: Mutex<State>,
}

/// One entry per document of the last load, by position: `None` where it did not parse;
/// its tree, or `None` while the tree is lent to that load's merge.
pub(super) type Entries = Vec<Option<(Document, Option<Node>)>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) entries: Entries,
    /// The load whose merge holds the lent trees: only its layers give them back.
    lease: u64,
}

/// The trees a load may take, taken out of the cache whole: one lock per load, not one per
/// document. (A load that runs at the same time finds none and parses everything.)
#[derive(Default)]
pub(super) struct Known(Entries);

impl Known {
    /// Takes the tree of `document` at position `index`, when its bytes (and everything
    /// else the parse depends on) are those parsed last time.
    pub(super) fn take(&mut self, document: &Document, index: usize) -> Option<Node> {
        let (parsed, tree) = self.0.get_mut(index)?.as_mut()?;
        if parsed == document {
            tree.take()
        } else {
            None
        }
    }
}

impl ParseCache {
    /// Takes every tree out, for one load.
    pub(super) fn take_all(&self) -> Known {
        Known(std::mem::take(&mut self.lock().entries))
    }

    /// Keeps exactly these entries, by position: documents no longer read are forgotten.
    /// Returns the lease under which the load gives its lent trees back.
    pub(super) fn replace(&self, entries: Entries) -> u64 {
        let mut state = self.lock();
        state.entries = entries;
        state.lease += 1;
        state.lease
    }

    /// Takes back from the merged `root` of the load that holds `lease` the trees it was
    /// lent: each is the root's entry under its document's section. One that is not there
    /// any more (taken out as the settings table) stays missing, and is parsed next time.
    pub(super) fn give_back(&self, lease: u64, documents: &[Document], mut root: Node) {
        let Value::Table(table) = &mut root.value else {
            return;
        };
        let mut state = self.lock();
        if state.lease != lease {
            // A later load replaced the entries: its own layers give its trees back.
            return;
        }
        for (entry, document) in state.entries.iter_mut().zip(documents) {
            if let Some((kept, tree @ None)) = entry
                && kept == document
                && let Some(section) = &document.section
            {
                *tree = table.swap_remove(section.as_str());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Assigned whole: a panic while holding it cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many trees are kept (lent ones not counted).
    #[cfg(all(test, feature = "json"))]
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .entries
            .iter()
            .flatten()
            .filter(|(_, tree)| tree.is_some())
            .count()
    }
}

impl fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseCache").finish_non_exhaustive()
    }
}
