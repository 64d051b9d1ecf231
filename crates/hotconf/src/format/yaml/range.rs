//! The byte range of each YAML value.
//!
//! The parser gives each node the byte range of the event that starts it, which is
//! the whole value only for a scalar:
//!
//! - a plain or quoted scalar: its text, quotes included, which is what we keep;
//! - a block scalar (`|`, `>`): its content, from the first content character to the line
//!   break after the last line, trailing blank lines included; we start it at its header
//!   (`|`, `>-`, `|2+`…) and end it at its last non-blank character;
//! - an alias (`*name`): the alias, whatever it stands for; we keep it, and so do the values
//!   it brings in (the entries of an aliased mapping, those of a merge key `<<: *name`),
//!   which [`super::build`] locates at the alias too;
//! - a flow collection: its `{` or `[` alone; we end it past its closing bracket;
//! - a block mapping: an empty range at its first key; we end it with its last value;
//! - a block sequence: an empty range at its first item's content; we start it at the `-`
//!   before that and end it with its last item;
//! - an empty value (`key:` and nothing after it): an empty range at the `:`; we keep it.
//!
//! Every edge but the closing bracket is taken from the ranges of the children, so a range
//! holds the ranges of everything in it.
//!
//! What is read back from the text is a little lexing, not a second parser, so two cases are
//! approximate: a block scalar whose header line holds a comment before the header (only
//! possible with a quoted key holding ` #`) keeps its content start; and a quote in a plain
//! word after a flow collection's last value (`{a: 1, it's}`, the key of an empty value)
//! could hide the closing bracket, when the range ends with the last value instead.

use crate::tree::{Node, Span, Value};

/// Sets the range of `node` and of everything in it from the event ranges they were built
/// with; `text` is the text that was parsed.
pub(super) fn cover(node: &mut Node, text: &str) {
    let bytes = text.as_bytes();
    let std::ops::Range { start, end } = node.span.range();
    let is_array = matches!(node.value, Value::Array(_));
    // The children written in the collection; a child located before it (none is, as
    // what an alias brings in is located at the alias) would not widen it.
    let mut own: Option<(usize, usize)> = None;
    let mut cover_child = |child: &mut Node| {
        let written_here = child.span.range().start >= start && child.span.has_range();
        cover(child, text);
        let range = child.span.range();
        if written_here && range.end <= text.len() {
            own = Some(own.map_or((range.start, range.end), |(first, last)| {
                (first.min(range.start), last.max(range.end))
            }));
        }
    };
    match &mut node.value {
        Value::Table(table) => table.values_mut().for_each(&mut cover_child),
        Value::Array(items) => items.iter_mut().for_each(&mut cover_child),
        _ => {
            let (start, end) = scalar(text, start, end);
            (node.span.start, node.span.end) = (Span::offset(start), Span::offset(end));
            return;
        }
    }
    if node.span.end == 0 && start == 0 && own.is_none() {
        return;
    }
    match bytes.get(start) {
        // An alias stands for a collection written elsewhere.
        Some(b'*') => {}
        Some(b'{' | b'[') => {
            let from = own.map_or(end, |(_, last)| last.max(end));
            node.span.end = Span::offset(flow_end(bytes, from).unwrap_or(from));
        }
        _ => {
            let Some((first, last)) = own else {
                return;
            };
            node.span.end = Span::offset(last.max(end));
            node.span.start = Span::offset(if is_array {
                dash_before(bytes, first)
            } else {
                first.min(start)
            });
        }
    }
}

/// The range of a scalar whose event covers `start..end`.
fn scalar(text: &str, start: usize, end: usize) -> (usize, usize) {
    let Some(written) = text.get(start..end) else {
        return (start, end);
    };
    if written.starts_with(['"', '\'', '*']) {
        return (start, end);
    }
    let end = start + written.trim_end().len();
    (block_header(text, start).unwrap_or(start), end)
}

/// The offset of the header (`|`, `>-`, `|2+`…) of the block scalar whose content starts at
/// `start`, if it is one: its content starts a line, and the last line before it that is not
/// blank ends with the header and maybe a comment.
fn block_header(text: &str, start: usize) -> Option<usize> {
    let before = text.get(..start)?;
    let mut end = before.rfind('\n')?;
    if !before[end + 1..].trim().is_empty() {
        return None;
    }
    loop {
        let begin = before[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = before[begin..end].trim_end_matches('\r');
        if !line.trim().is_empty() {
            return header_in(line).map(|at| begin + at);
        }
        if begin == 0 {
            return None;
        }
        end = begin - 1;
    }
}

/// The offset in `line` of a block scalar header that only a comment may follow.
fn header_in(line: &str) -> Option<usize> {
    let words: Vec<(usize, &str)> = line
        .split([' ', '\t'])
        .scan(0, |offset, word| {
            let at = *offset;
            *offset += word.len() + 1;
            Some((at, word))
        })
        .filter(|(_, word)| !word.is_empty())
        .collect();
    for (i, (at, word)) in words.iter().enumerate() {
        if word.starts_with('#') {
            return None;
        }
        let is_header = word.starts_with(['|', '>'])
            && word.len() <= 3
            && word[1..]
                .bytes()
                .all(|b| b == b'-' || b == b'+' || (b'1'..=b'9').contains(&b));
        let then_comment = words
            .get(i + 1)
            .is_none_or(|(_, next)| next.starts_with('#'));
        if is_header && then_comment {
            return Some(*at);
        }
    }
    None
}

/// The `-` that introduces the block sequence item starting at `at`: back over whitespace
/// and the item's properties (`&anchor`, `!tag`). `at` itself when there is none.
fn dash_before(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    loop {
        while i > 0 && bytes[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        if i == 0 {
            return at;
        }
        if bytes[i - 1] == b'-' && (i == 1 || bytes[i - 2].is_ascii_whitespace()) {
            return i - 1;
        }
        // A property: a word that starts with `&` or `!`, right before the item.
        let word = bytes[..i]
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(0, |w| w + 1);
        if !matches!(bytes[word], b'&' | b'!') {
            return at;
        }
        i = word;
    }
}

/// The offset just past the `}` or `]` that closes the flow collection whose last item ends
/// at `from`: the first closing bracket not nested, quoted or in a comment.
fn flow_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        let token_start = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\r' | b'\n');
        let after_indicator = i > 0 && matches!(bytes[i - 1], b'{' | b'[' | b',' | b':');
        match b {
            b'"' | b'\'' if token_start || after_indicator => i = quote_end(bytes, i),
            b'#' if token_start => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n);
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i + 1),
            b'}' | b']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The offset of the quote that closes the quoted scalar opened at `open`.
fn quote_end(bytes: &[u8], open: usize) -> usize {
    let quote = bytes[open];
    let mut i = open + 1;
    while let Some(&b) = bytes.get(i) {
        if quote == b'"' && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote {
            // A single quote is escaped by doubling it.
            if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    bytes.len()
}
