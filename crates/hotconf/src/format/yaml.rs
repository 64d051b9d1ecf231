//! YAML 1.2: one document, string keys, no custom tags, and aliases bounded so that a small
//! file cannot expand into a huge config.
//!
//! The tree is built straight from the events of serde-saphyr's parser (granit-parser) by
//! [`build`]: a loop with an explicit stack of open collections, no serde and no
//! thread-local state. Scalars are read by [`scalar`] with the rules serde-saphyr applied
//! to hotconf's options before (YAML 1.2 core schema, strict booleans), and [`budget`] keeps
//! its bounds on size and on alias expansion.
//!
//! The byte range of a node's first event is all the parser gives; [`range`] widens it to
//! the whole value once the tree is built.

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::ConfigPath;
use crate::tree::Node;

/// Parses on this thread when it was spawned with a stack that fits `limits.max_depth`
/// levels (the reload worker is), else on a pooled thread whose stack does.
pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let stack = stack::stack_for(limits);
    if stack::fits(stack) {
        return parse_here(text, doc, limits);
    }
    let owned = text.to_owned();
    let limits = *limits;
    stack::run(stack, move || parse_here(&owned, doc, &limits)).unwrap_or_else(|err| {
        Err(Problem::error(
            ProblemKind::Limit,
            format!("cannot start a thread to parse YAML: {err}"),
        )
        .at_location(String::new(), 1, 1))
    })
}

fn parse_here(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let build::Built { mut root, overflow } = build::build(text, doc, limits)?;
    range::cover(&mut root, text);
    match indent::misindented_flow(&root, text).or(overflow) {
        Some(problem) => Err(problem),
        None => Ok(root),
    }
}

/// A float too large for `f64` (`1e999`), written as a number rather than as `.inf`.
fn out_of_range_problem(text: &str) -> Problem {
    Problem::error(
        ProblemKind::Syntax,
        format!(
            "float `{}` is out of range for a 64-bit float",
            printable(text)
        ),
    )
}

/// A key for a message: as a JSON string when it needs quoting, like paths print it.
fn quoted(key: &str) -> String {
    ConfigPath::root().key(key).to_string()
}

/// Text from the document or the parser, with control characters escaped for terminals.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

mod budget;
mod build;
#[cfg(test)]
mod corpus;
mod indent;
mod range;
mod scalar;
pub(crate) mod stack;
#[cfg(test)]
mod tests;
