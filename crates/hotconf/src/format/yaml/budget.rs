//! The bounds on a YAML document's size, counted on the parser's events.
//!
//! They are those serde-saphyr enforced with the options hotconf gave it, so that a document
//! refused before is refused now: its budget on events and nodes (keys included) with
//! headroom over `Limits::max_nodes`, the replay of aliases and the recording of anchors (the
//! work a "billion laughs" document multiplies) held to `max_nodes`, and its fixed caps on
//! aliases, anchors, merge keys and scalar bytes. An alias counts what its anchored value
//! would have replayed, all at once, so a bomb is refused before anything is copied.

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};

/// serde-saphyr's fixed caps (its `Budget::default()`).
const MAX_ALIASES: usize = 50_000;
const MAX_ANCHORS: usize = 50_000;
const MAX_MERGE_KEYS: usize = 10_000;
const MAX_SCALAR_BYTES: usize = 64 << 20;
/// The alias/anchor ratio heuristic: from this many aliases, at most this many per anchor.
const RATIO_MIN_ALIASES: usize = 100;
const RATIO: usize = 10;

/// What a node costs, as serde-saphyr would replay it from an alias.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cost {
    /// Parser events: one per scalar, two per collection, keys included.
    pub(super) events: usize,
    /// Scalars and collections, keys included.
    pub(super) nodes: usize,
    /// Bytes of scalar text and tags.
    pub(super) bytes: usize,
    /// Values, keys excluded: what `Limits::max_nodes` bounds.
    pub(super) values: usize,
    /// Levels of collections.
    pub(super) height: usize,
}

impl Cost {
    pub(super) fn add(&mut self, other: &Cost) {
        self.events = self.events.saturating_add(other.events);
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.values = self.values.saturating_add(other.values);
    }
}

/// The counters of one document.
pub(super) struct Budget {
    max_nodes: usize,
    max_depth: usize,
    events: usize,
    nodes: usize,
    bytes: usize,
    documents: usize,
    aliases: usize,
    anchors: usize,
    merge_keys: usize,
    recorded: usize,
    replayed: usize,
    pub(super) values: usize,
}

/// Why the budget refuses a document.
pub(super) enum Breach {
    /// Too many values (the message of `Limits::max_nodes`), and whether it was counted on
    /// values, when it is about the value at hand (its path is worth giving).
    Nodes {
        at_value: bool,
    },
    Depth,
    SecondDocument,
    /// One of serde-saphyr's fixed caps, described.
    Other(String),
}

impl Budget {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            max_nodes: limits.max_nodes,
            max_depth: limits.max_depth,
            events: 0,
            nodes: 0,
            bytes: 0,
            documents: 0,
            aliases: 0,
            anchors: 0,
            merge_keys: 0,
            recorded: 0,
            replayed: 0,
            values: 0,
        }
    }

    /// An event that is not a node: stream and document markers, collection ends.
    pub(super) fn marker(&mut self) -> Result<(), Breach> {
        self.events += 1;
        self.check_events()
    }

    pub(super) fn document(&mut self) -> Result<(), Breach> {
        self.marker()?;
        self.documents += 1;
        if self.documents > 1 {
            return Err(Breach::SecondDocument);
        }
        Ok(())
    }

    /// A scalar or a collection start with `bytes` of text and tag, at `depth` levels of
    /// collections (its own included), anchored or not.
    pub(super) fn node(
        &mut self,
        bytes: usize,
        depth: usize,
        anchored: bool,
    ) -> Result<(), Breach> {
        self.events += 1;
        self.check_events()?;
        self.nodes += 1;
        if self.nodes > self.max_nodes.saturating_mul(2) {
            return Err(Breach::Nodes { at_value: false });
        }
        if depth > self.max_depth {
            return Err(Breach::Depth);
        }
        self.add_bytes(bytes)?;
        if anchored {
            self.anchors += 1;
            if self.anchors > MAX_ANCHORS {
                return Err(cap(format!("more than {MAX_ANCHORS} anchors")));
            }
        }
        Ok(())
    }

    pub(super) fn merge_key(&mut self) -> Result<(), Breach> {
        self.merge_keys += 1;
        if self.merge_keys > MAX_MERGE_KEYS {
            return Err(cap(format!("more than {MAX_MERGE_KEYS} merge keys")));
        }
        Ok(())
    }

    /// `events` more events copied into the buffers of the anchors being recorded.
    pub(super) fn record(&mut self, events: usize) -> Result<(), Breach> {
        self.recorded = self.recorded.saturating_add(events);
        if self.recorded > self.max_nodes {
            return Err(Breach::Nodes { at_value: false });
        }
        Ok(())
    }

    /// An alias of a value that costs `cost`, at `depth` levels of collections around it.
    pub(super) fn alias(&mut self, cost: &Cost, depth: usize) -> Result<(), Breach> {
        self.events += 1;
        self.check_events()?;
        self.aliases += 1;
        if self.aliases > MAX_ALIASES {
            return Err(cap(format!("more than {MAX_ALIASES} aliases")));
        }
        self.replayed = self.replayed.saturating_add(cost.events);
        self.events = self.events.saturating_add(cost.events);
        self.nodes = self.nodes.saturating_add(cost.nodes);
        if self.replayed > self.max_nodes
            || self.events > self.max_nodes.saturating_mul(3)
            || self.nodes > self.max_nodes.saturating_mul(2)
        {
            return Err(Breach::Nodes { at_value: false });
        }
        if depth.saturating_add(cost.height) > self.max_depth {
            return Err(Breach::Depth);
        }
        self.add_bytes(cost.bytes)
    }

    /// `count` more values; `Limits::max_nodes` bounds them.
    pub(super) fn values(&mut self, count: usize) -> Result<(), Breach> {
        self.values = self.values.saturating_add(count);
        if self.values > self.max_nodes {
            return Err(Breach::Nodes { at_value: true });
        }
        Ok(())
    }

    /// The check serde-saphyr made once the document was read: many aliases of few anchors.
    pub(super) fn finish(&self) -> Result<(), Breach> {
        if self.aliases >= RATIO_MIN_ALIASES
            && (self.anchors == 0 || self.aliases > RATIO.saturating_mul(self.anchors))
        {
            return Err(cap(format!(
                "{} aliases of {} anchors, more than {RATIO} per anchor",
                self.aliases, self.anchors
            )));
        }
        Ok(())
    }

    fn check_events(&self) -> Result<(), Breach> {
        if self.events > self.max_nodes.saturating_mul(3) {
            return Err(Breach::Nodes { at_value: false });
        }
        Ok(())
    }

    fn add_bytes(&mut self, bytes: usize) -> Result<(), Breach> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > MAX_SCALAR_BYTES {
            return Err(cap(format!(
                "more than {} MiB of scalar text",
                MAX_SCALAR_BYTES >> 20
            )));
        }
        Ok(())
    }
}

fn cap(described: String) -> Breach {
    Breach::Other(described)
}

impl Breach {
    /// The problem, without its location.
    pub(super) fn problem(&self, limits: &Limits) -> Problem {
        match self {
            Breach::Nodes { .. } => nodes_problem(limits),
            Breach::Depth => crate::format::depth_problem(limits),
            Breach::SecondDocument => Problem::error(
                ProblemKind::Syntax,
                "a second YAML document ('---'); a config file holds exactly one document",
            ),
            Breach::Other(described) => Problem::error(
                ProblemKind::Limit,
                format!("the YAML document is too large or too complex: {described}"),
            ),
        }
    }
}

pub(super) fn nodes_problem(limits: &Limits) -> Problem {
    Problem::error(
        ProblemKind::Limit,
        format!(
            "more than {} values (Limits::max_nodes); YAML aliases can expand a small file \
             into a huge config",
            limits.max_nodes
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::document::Limits;
    use crate::error::{Problem, ProblemKind};

    fn parse(text: &str, max_nodes: usize) -> Result<(), Problem> {
        let limits = Limits {
            max_nodes,
            ..Limits::default()
        };
        super::super::parse(text, 0, &limits).map(drop)
    }

    fn refused(text: &str, max_nodes: usize) -> (ProblemKind, Option<u32>, Option<u32>, String) {
        let problem = parse(text, max_nodes).unwrap_err();
        let path = problem.path.map(|p| p.to_string()).unwrap_or_default();
        (problem.kind, problem.line, problem.column, path)
    }

    #[test]
    fn many_aliases_of_few_anchors_are_refused_in_words() {
        let aliases = |n: usize| format!("a: &a 1\nl: [{}]\n", vec!["*a"; n].join(", "));
        // Up to ten aliases per anchor, or fewer than a hundred in all, pass.
        assert!(parse(&aliases(99), 10_000).is_ok());
        let problem = parse(&aliases(100), 10_000).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Limit);
        assert_eq!(
            problem.message,
            "the YAML document is too large or too complex: 100 aliases of 1 anchors, \
             more than 10 per anchor"
        );
    }

    /// The problem's message when `text` is refused, `None` when it parses; no bound on
    /// values, so only the caps answer.
    fn capped(text: &str) -> Option<String> {
        parse(text, 100_000_000).err().map(|problem| {
            assert_eq!(problem.kind, ProblemKind::Limit, "{problem}");
            problem.message
        })
    }

    fn too_complex(what: &str) -> Option<String> {
        Some(format!(
            "the YAML document is too large or too complex: more than {what}"
        ))
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_capped_at_serde_saphyrs_numbers() {
        let anchors = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!("&a{i} 0")).collect();
            format!("l: [{}]\n", items.join(","))
        };
        assert_eq!(capped(&anchors(super::MAX_ANCHORS)), None);
        assert_eq!(
            capped(&anchors(super::MAX_ANCHORS + 1)),
            too_complex("50000 anchors")
        );
        // `n` uses of anchors `&a…` holding `value`, ten per anchor at most, so that only the
        // cap on what uses them answers.
        let using = |n: usize, value: &str, reference: fn(usize) -> String| {
            let anchored = n / super::RATIO;
            let anchors: Vec<String> = (0..anchored).map(|i| format!("&a{i} {value}")).collect();
            let uses: Vec<String> = (0..n).map(|i| reference(i % anchored)).collect();
            format!("a: [{}]\nl: [{}]\n", anchors.join(","), uses.join(","))
        };
        let aliases = |n| using(n, "0", |i| format!("*a{i}"));
        assert_eq!(capped(&aliases(super::MAX_ALIASES)), None);
        assert_eq!(
            capped(&aliases(super::MAX_ALIASES + 1)),
            too_complex("50000 aliases")
        );
        let merges = |n| using(n, "{x: 0}", |i| format!("{{<<: *a{i}}}"));
        assert_eq!(capped(&merges(super::MAX_MERGE_KEYS)), None);
        assert_eq!(
            capped(&merges(super::MAX_MERGE_KEYS + 1)),
            too_complex("10000 merge keys")
        );
    }

    #[test]
    fn events_count_stream_and_document_markers_too() {
        // Four values, but thirteen events by the end of the mapping: more than three per
        // value, counting the stream and document starts, as serde-saphyr did.
        let text = "a: []\nb: []\nc: []\n";
        assert!(parse(text, 5).is_ok());
        assert_eq!(
            refused(text, 4),
            (ProblemKind::Limit, Some(4), Some(1), String::new())
        );
    }

    #[test]
    fn what_is_read_inside_an_anchor_is_recorded_once_per_open_anchor() {
        // Six values, but the sequence's start and five items each anchored themselves,
        // so recorded twice, make eleven recorded events at the fifth item.
        let anchored = "&r [&a 1, &b 2, &c 3, &d 4, &e 5]\n";
        assert_eq!(
            refused(anchored, 10),
            (ProblemKind::Limit, Some(1), Some(32), String::new())
        );
        assert!(parse("&r [1, 2, 3, 4, 5]\n", 10).is_ok());
    }

    #[test]
    fn an_alias_adds_the_values_of_its_anchor_but_not_its_keys() {
        // a, its two values, the copy of all three under b, and the root: seven values.
        let text = "a: &a {x: 1, y: 2}\nb: *a\n";
        assert!(parse(text, 7).is_ok());
        let problem = parse(text, 6).unwrap_err();
        assert_eq!((problem.line, problem.column), (Some(2), Some(4)));
        assert!(
            problem.message.starts_with("more than 6 values"),
            "{problem}"
        );
    }

    #[test]
    fn each_alias_is_counted_where_it_is_used() {
        // The sequence, `x`, and its two copies: four values.
        let text = "[&a x, *a, *a]\n";
        assert!(parse(text, 4).is_ok());
        assert_eq!(
            refused(text, 3),
            (ProblemKind::Limit, Some(1), Some(12), "[2]".to_owned())
        );
    }
}
