//! YAML 1.2 §7.4: a flow collection written in a block collection continues on lines
//! indented more than that block collection. The parser accepts less (yaml-test-suite
//! 9C9N, `flow: [a,\nb]`), so the ranges of the parsed tree are checked here.

use crate::error::{Problem, ProblemKind};
use crate::tree::{Node, Value};

/// The first line of a flow collection that is indented no more than its block parent.
pub(super) fn misindented_flow(root: &Node, text: &str) -> Option<Problem> {
    walk(root, None, text.as_bytes())
}

fn walk(node: &Node, parent_indent: Option<usize>, bytes: &[u8]) -> Option<Problem> {
    if !matches!(node.value, Value::Array(_) | Value::Table(_)) {
        return None;
    }
    let flow =
        node.span.has_range() && matches!(bytes.get(node.span.range().start), Some(b'[' | b'{'));
    if flow {
        // Everything inside a flow collection is flow: its own lines are all there is.
        return parent_indent.and_then(|indent| check(node, indent, bytes));
    }
    // A block collection is indented as far as its first key or dash.
    let indent = usize::try_from(node.span.column.saturating_sub(1)).unwrap_or(usize::MAX);
    let mut check_child = |child: &Node| walk(child, Some(indent), bytes);
    match &node.value {
        Value::Array(items) => items.iter().find_map(&mut check_child),
        Value::Table(table) => table.values().find_map(&mut check_child),
        _ => None,
    }
}

fn check(node: &Node, indent: usize, bytes: &[u8]) -> Option<Problem> {
    let range = node.span.range();
    let text = bytes.get(range.start..range.end.min(bytes.len()))?;
    let mut line = node.span.line;
    for continued in text.split(|&b| b == b'\n').skip(1) {
        line += 1;
        let spaces = continued.iter().take_while(|&&b| b == b' ').count();
        let blank = continued[spaces..].iter().all(u8::is_ascii_whitespace);
        if !blank && spaces <= indent {
            let message = format!(
                "this line continues a flow collection but is indented {spaces} space(s), \
                 not more than the {indent} of the block that holds it"
            );
            return Some(Problem::error(ProblemKind::Syntax, message).at_location(
                String::new(),
                line,
                u32::try_from(spaces + 1).unwrap_or(u32::MAX),
            ));
        }
    }
    None
}
