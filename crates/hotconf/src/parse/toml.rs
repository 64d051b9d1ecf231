//! Placeholder: replaced by the real parser in this same change.

use crate::error::{Problem, ProblemKind};
use crate::parse::Limits;
use crate::tree::Node;

pub(super) fn parse(_text: &str, _doc: u32, _limits: &Limits) -> Result<Node, Problem> {
    Err(Problem::error(ProblemKind::Syntax, "not implemented"))
}
