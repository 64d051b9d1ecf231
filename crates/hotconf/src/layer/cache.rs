//! The parse cache: the last load's tree of each document, so that a reload of several
//! documents parses only those whose bytes changed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::source::Document;
use crate::tree::Node;

/// The parsed tree of each document of the last load, by origin: a reload of several
/// documents parses only those whose bytes changed.
#[derive(Default)]
pub(crate) struct ParseCache {
    pub(super) trees: Mutex<HashMap<crate::source::Origin, (Document, u32, Node)>>,
}

impl ParseCache {
    /// Takes the tree of `document` at position `index`, when its bytes (and everything
    /// else the parse depends on) are those parsed last time.
    pub(super) fn take(&self, document: &Document, index: u32) -> Option<Node> {
        let mut trees = self.trees.lock().unwrap_or_else(PoisonError::into_inner);
        let (parsed, at, _) = trees.get(&document.origin)?;
        if *at != index || parsed != document {
            return None;
        }
        trees.remove(&document.origin).map(|(_, _, tree)| tree)
    }

    /// Keeps exactly these trees: documents no longer read are forgotten.
    pub(super) fn replace(&self, kept: Vec<(Document, u32, Node)>) {
        let trees = kept
            .into_iter()
            .map(|(document, index, tree)| (document.origin.clone(), (document, index, tree)))
            .collect();
        *self.trees.lock().unwrap_or_else(PoisonError::into_inner) = trees;
    }

    /// How many trees are kept.
    #[cfg(all(test, feature = "yaml", feature = "json"))]
    pub(super) fn len(&self) -> usize {
        self.trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseCache").finish_non_exhaustive()
    }
}
