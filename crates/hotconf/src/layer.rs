//! Layering: read every source, parse every document, merge them in order.
//!
//! Later documents override earlier ones; tables merge deeply; arrays and scalars replace.
//! The merged tree keeps each value's span, so a problem found later (a type error, a
//! validation rule) can name the file and line of the layer that set the value.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::document::Limits;
use crate::error::{Problem, ProblemKind, Problems};
use crate::format;
use crate::path::{ConfigPath, Segment};
use crate::policy::{REDACTED, Secrets};
use crate::settings::{self, FileSettings};
use crate::source::{Document, Source};
use crate::tree::{Node, Span, Table, Value};

mod cache;

pub(crate) use cache::ParseCache;

/// The documents of one load and their merged tree: later documents override earlier
/// ones, tables merge key by key, anything else is replaced whole.
pub(crate) struct Layers {
    documents: Vec<Document>,
    root: Node,
    /// Set when the merge took trees lent by a [`ParseCache`]: the lease to give them
    /// back under.
    lease: Option<u64>,
}

impl Layers {
    /// Reads `sources` in order, parses every document and merges them.
    ///
    /// # Errors
    ///
    /// Every problem found: each source that cannot be read and each document that does
    /// not parse is reported, not only the first.
    #[cfg(test)]
    pub fn load<S: Source>(sources: &[S], limits: &Limits) -> Result<Self, Problems> {
        Self::from_documents(read(sources, limits)?, limits)
    }

    /// Parses and merges documents that were already read.
    ///
    /// # Errors
    ///
    /// One problem per document that does not parse.
    pub fn from_documents(documents: Vec<Document>, limits: &Limits) -> Result<Self, Problems> {
        Self::from_documents_cached(documents, limits, None)
    }

    /// Like [`from_documents`](Self::from_documents), taking the tree of a document whose
    /// bytes were parsed last time from `cache` instead of parsing it again, and leaving
    /// this call's trees there for the next. Trees lent to the merge go back to the cache
    /// when the layers are handed to [`give_back`](Self::give_back) (or at once, when the
    /// load fails).
    pub(crate) fn from_documents_cached(
        documents: Vec<Document>,
        limits: &Limits,
        cache: Option<&ParseCache>,
    ) -> Result<Self, Problems> {
        // With one document, a cached tree would only ever save a parse that the worker
        // already skips (unchanged bytes stop at the read); the copy would cost every time.
        let cache = cache.filter(|_| documents.len() > 1);
        let mut known = cache.map(ParseCache::take_all).unwrap_or_default();
        let trees: Vec<Result<Node, Problem>> = documents
            .iter()
            .enumerate()
            .map(|(index, document)| {
                known.take(document, index).map_or_else(
                    || format::parse(document, crate::tree::saturate(index), limits),
                    Ok,
                )
            })
            .collect();
        let lease = cache.map(|cache| {
            let lent = lendable(&documents, &trees);
            cache.replace(
                documents
                    .iter()
                    .zip(&trees)
                    .zip(lent)
                    .map(|((document, tree), lent)| {
                        let tree = tree.as_ref().ok()?;
                        Some((document.clone(), (!lent).then(|| tree.clone())))
                    })
                    .collect(),
            )
        });
        // Until a document is merged, the root has no location.
        let mut root: Option<Node> = None;
        let mut problems = Vec::new();
        for (document, parsed) in documents.iter().zip(trees) {
            match (parsed, &document.section) {
                (Ok(tree), Some(section)) => mount(&mut root, section, tree),
                (Ok(tree), None) => match &mut root {
                    Some(root) => root.merge(tree),
                    // The first document's root locates problems about the whole config.
                    None => root = Some(tree),
                },
                (Err(problem), _) => problems.push(problem),
            }
        }
        let root = root.unwrap_or_else(|| Node::new(Value::Table(Box::default()), Span::default()));
        let layers = Self {
            documents,
            root,
            lease,
        };
        if problems.is_empty() {
            tracing::debug!(target: "hotconf", documents = layers.documents.len(), "merged layers");
            Ok(layers)
        } else {
            // The good documents' trees stay cached for the load that follows the fix.
            layers.give_back(cache);
            Err(Problems(problems))
        }
    }

    /// Ends a load from [`from_documents_cached`](Self::from_documents_cached): the trees
    /// its merge was lent go back to `cache`, so the next load neither parses nor copies
    /// them. Layers that were lent nothing (or another cache) are simply dropped.
    pub(crate) fn give_back(self, cache: Option<&ParseCache>) {
        if let (Some(cache), Some(lease)) = (cache, self.lease) {
            cache.give_back(lease, &self.documents, self.root);
        }
    }

    /// The documents, lowest layer first.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The merged tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The merged config as plain JSON.
    #[cfg(any(all(test, feature = "yaml", feature = "json"), feature = "json-schema"))]
    pub fn to_json(&self) -> serde_json::Value {
        self.root.to_json()
    }

    /// Puts the live value back wherever a secret was sent as [`REDACTED`]: a config read
    /// back from the admin API (`GET /config`) and sent again (`PUT /config`) keeps its
    /// secrets. The value keeps the submitted span, so a later problem still points there.
    ///
    /// # Errors
    ///
    /// Every `***` at a secret path that has no live value to keep.
    pub(crate) fn keep_secrets(&mut self, secrets: &Secrets, live: &Node) -> Result<(), Problems> {
        let mut missing = Vec::new();
        restore(
            &mut self.root,
            &mut ConfigPath::root(),
            secrets,
            live,
            &mut missing,
        );
        let problems: Vec<Problem> = missing
            .into_iter()
            .map(|path| {
                let problem = Problem::error(
                    ProblemKind::Validation,
                    format!("a secret sent as \"{REDACTED}\" keeps its live value, but there is none here"),
                );
                self.locate(problem, &path)
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }

    /// Takes the reloader's settings table `name` out of the merged tree, so the typed
    /// config never sees it: what it says, and in which document (the first layer that
    /// writes the table). `Ok(None)` when no layer has it.
    ///
    /// # Errors
    ///
    /// Every problem of the table, located at its file, line and column; the table is
    /// taken out anyway, so the config's own problems are reported beside them.
    pub(crate) fn take_settings(&mut self, name: &str) -> Result<Option<FileSettings>, Problems> {
        let Some(table) = settings::take(&mut self.root, name) else {
            return Ok(None);
        };
        let origin = |doc: u32| {
            self.documents
                .get(doc as usize)
                .map(|document| document.origin.clone())
        };
        match settings::read(&table, name) {
            Ok(mut found) => {
                let (holder, paths) = settings::holders(&table);
                found.origin = origin(holder);
                found.paths_origin = paths.and_then(origin);
                Ok(Some(found))
            }
            Err(problems) => {
                // Located against the table, which is no longer in the root.
                let problems = problems
                    .into_iter()
                    .map(|problem| {
                        // The problem's path below the table's own name.
                        let mut within = ConfigPath::root();
                        for segment in problem.path.iter().flat_map(|p| p.segments()).skip(1) {
                            within.push(segment.clone());
                        }
                        let node = table.nearest(&within);
                        self.locate_at(problem, node)
                    })
                    .collect();
                Err(Problems(problems))
            }
        }
    }

    /// What [`take_settings`](Self::take_settings) would return, leaving the tree as it is:
    /// only the table is copied.
    pub(crate) fn peek_settings(&self, name: &str) -> Result<Option<FileSettings>, Problems> {
        let Value::Table(root) = &self.root.value else {
            return Ok(None);
        };
        let Some(table) = root.get(name) else {
            return Ok(None);
        };
        let mut only = Table::default();
        only.insert(name.into(), table.clone());
        let mut view = Layers {
            documents: self.documents.clone(),
            root: Node::new(Value::Table(Box::new(only)), self.root.span),
            lease: None,
        };
        view.take_settings(name)
    }

    fn locate_at(&self, mut problem: Problem, node: &Node) -> Problem {
        if let Some(document) = self.documents.get(node.span.doc as usize)
            && node.span.line > 0
        {
            problem = problem.at_location(
                document.origin.to_string(),
                node.span.line,
                node.span.column,
            );
        }
        problem
    }

    /// Locates `problem` at `path`: the file, line and column of the value there, or of the
    /// nearest enclosing value when `path` does not exist (a missing field points at its
    /// table).
    pub fn locate(&self, mut problem: Problem, path: &ConfigPath) -> Problem {
        let node = self.root.nearest(path);
        if let Some(document) = self.documents.get(node.span.doc as usize)
            && node.span.line > 0
        {
            problem = problem.at_location(
                document.origin.to_string(),
                node.span.line,
                node.span.column,
            );
        }
        problem.at_path(path.clone())
    }
}

/// Merges `tree` over `root` under the key `section`, as a document mounted there: the
/// same as merging `{section: tree}`, without building that one-entry table (a directory
/// with sections mounts every file this way).
fn mount(root: &mut Option<Node>, section: &str, tree: Node) {
    // A first document mounted makes the root, located at its tree.
    let root = root.get_or_insert_with(|| Node::new(Value::Table(Box::default()), tree.span));
    match &mut root.value {
        Value::Table(table) => match table.get_mut(section) {
            Some(existing) => existing.merge(tree),
            None => {
                table.insert(section.into(), tree);
            }
        },
        // Every format refuses a top level that is not a table; were one here, the section
        // would replace it, as a merge does.
        _ => {
            let span = tree.span;
            let mut table = Table::default();
            table.insert(section.into(), tree);
            *root = Node::new(Value::Table(Box::new(table)), span);
        }
    }
}

/// Which documents' trees the merge may take without a copy: those mounted under a section
/// that no other document writes (as a section or a top-level key), so that the tree ends
/// up, untouched, as the merged root's entry under that name.
fn lendable(documents: &[Document], trees: &[Result<Node, Problem>]) -> Vec<bool> {
    let mut writers: std::collections::HashMap<&str, usize, foldhash::fast::RandomState> =
        std::collections::HashMap::default();
    for (document, tree) in documents.iter().zip(trees) {
        match (&document.section, tree) {
            (Some(section), _) => *writers.entry(section).or_default() += 1,
            (
                None,
                Ok(Node {
                    value: Value::Table(table),
                    ..
                }),
            ) => {
                for key in table.keys() {
                    *writers.entry(key).or_default() += 1;
                }
            }
            // A scalar root replaces whatever was merged before it, and is replaced by
            // whatever comes after: it never changes a section's tree.
            (None, _) => {}
        }
    }
    documents
        .iter()
        .map(|document| {
            document
                .section
                .as_deref()
                .is_some_and(|section| writers.get(section) == Some(&1))
        })
        .collect()
}

fn restore(
    node: &mut Node,
    path: &mut ConfigPath,
    secrets: &Secrets,
    live: &Node,
    missing: &mut Vec<ConfigPath>,
) {
    match &mut node.value {
        Value::String(text) if text == REDACTED && secrets.is_secret(path) => {
            match live.get(path) {
                Some(value) => node.value = value.value.clone(),
                None => missing.push(path.clone()),
            }
        }
        Value::Table(table) => {
            for (key, child) in table.iter_mut() {
                path.push(Segment::Key(key.as_str().to_owned()));
                restore(child, path, secrets, live, missing);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                path.push(Segment::Index(index));
                restore(child, path, secrets, live, missing);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Layers the files the settings table `name` lists in `watch_paths` right after the
/// document holding the table, in their order: the documents to merge, and the extra files
/// read. A file that is already one of `documents` is not layered twice.
///
/// The table is read from `documents` alone (a first merge); if they do not parse or the
/// table is wrong, nothing is added and the pipeline reports why.
///
/// # Errors
///
/// Every listed file that cannot be read, and every one that sets `watch_paths` itself.
pub(crate) fn with_extras(
    mut documents: Vec<Document>,
    name: Option<&str>,
    limits: &Limits,
    cache: Option<&ParseCache>,
) -> Result<Read, Problems> {
    let Some(name) = name else {
        return Ok(Read::new(documents, Vec::new(), None));
    };
    if !documents.iter().any(may_list_files) {
        // Nothing to parse for: a reload that finds its bytes unchanged stops at the read.
        return Ok(Read::new(documents, Vec::new(), None));
    }
    // Parsed once here; when no file is added, the pipeline takes these layers as they are
    // instead of parsing every document again.
    let parsed = Layers::from_documents_cached(documents.clone(), limits, cache).ok();
    let found = parsed
        .as_ref()
        .and_then(|layers| layers.peek_settings(name).ok().flatten());
    let Some(found) = found else {
        return Ok(Read::new(documents, Vec::new(), parsed));
    };
    let known: Vec<PathBuf> = documents
        .iter()
        .filter_map(|d| d.origin.path().map(identity))
        .collect();
    let mut extras: Vec<PathBuf> = Vec::new();
    for path in settings::extra_files(&found) {
        let id = identity(&path);
        if !known.contains(&id) && !extras.iter().any(|e| identity(e) == id) {
            extras.push(path);
        }
    }
    if extras.is_empty() {
        return Ok(Read::new(documents, Vec::new(), parsed));
    }
    // The pipeline parses the documents again with the extra files among them.
    if let Some(layers) = parsed {
        layers.give_back(cache);
    }
    let mut read = Vec::new();
    let mut problems = Vec::new();
    for path in &extras {
        match crate::source::File::new(path).read(limits) {
            Ok(docs) => {
                for document in docs {
                    problems.extend(nested_watch_paths(&document, name, limits));
                    read.push(document);
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let at = found
        .paths_origin
        .as_ref()
        .and_then(|origin| documents.iter().position(|d| d.origin == *origin))
        .map_or(documents.len(), |index| index + 1);
    documents.splice(at..at, read);
    Ok(Read::new(documents, extras, None))
}

/// What reading the sources gave: the documents, the extra files their settings table
/// listed (already among the documents), and the documents parsed and merged when that was
/// done on the way.
pub(crate) struct Read {
    pub(crate) documents: Vec<Document>,
    pub(crate) extras: Vec<PathBuf>,
    /// The layers of exactly `documents`, when they were parsed to find the settings.
    pub(crate) parsed: Option<Layers>,
}

impl Read {
    fn new(documents: Vec<Document>, extras: Vec<PathBuf>, parsed: Option<Layers>) -> Self {
        Self {
            documents,
            extras,
            parsed,
        }
    }
}

/// Whether a document may set `watch_paths`: its bytes hold the name, or a backslash
/// (an escape such as `\u005f`, or YAML's escaped line break, can spell a key without its
/// letters in a row). A document without either sets no such key in any format.
fn may_list_files(document: &Document) -> bool {
    let bytes = &document.bytes[..];
    if bytes.contains(&b'\\') {
        return true;
    }
    // The string search skips ahead by what it has seen; a byte window comparison is about
    // ten times slower on a large document. Text that is not UTF-8 fails its parse anyway.
    match std::str::from_utf8(bytes) {
        Ok(text) => text.contains("watch_paths"),
        Err(_) => bytes.windows(11).any(|w| w == b"watch_paths"),
    }
}

/// A file listed in `watch_paths` may not list more: only the sources' own files do.
fn nested_watch_paths(document: &Document, name: &str, limits: &Limits) -> Option<Problem> {
    let layers = Layers::from_documents(vec![document.clone()], limits).ok()?;
    let mut path = ConfigPath::root();
    path.push(Segment::Key(name.to_owned()));
    path.push(Segment::Key("watch_paths".to_owned()));
    layers.root.get(&path)?;
    let problem = Problem::error(
        ProblemKind::Validation,
        "a file listed in watch_paths cannot list more files: set watch_paths in the file that lists this one",
    );
    Some(layers.locate(problem, &path))
}

/// The same file under two spellings compares equal (when it exists).
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads every source in order.
///
/// # Errors
///
/// Every source that cannot be read.
pub fn read<S: Source>(sources: &[S], limits: &Limits) -> Result<Vec<Document>, Problems> {
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for source in sources {
        match source.read(limits) {
            Ok(docs) => documents.extend(docs),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(documents)
    } else {
        Err(Problems(problems))
    }
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tree may hold secrets: show only the documents.
        f.debug_struct("Layers")
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
// Every case here reads more than one format.
#[cfg(all(feature = "yaml", feature = "json"))]
mod tests;
