//! TOML 1.1 (which accepts 1.0 documents), parsed straight into the located tree.
//!
//! `toml_parser`, the lexer and push parser of the `toml` crate, reads the grammar and
//! reports events; [`build::Builder`] receives them and builds the [`Node`] tree as they
//! come, with the `toml` crate's rules and messages: a table is defined once, headers and
//! dotted keys do not extend each other's tables, inline tables and arrays written with `[…]`
//! are closed, keys and strings are decoded (escapes checked) and dates parsed. It also checks
//! that integers fit `i64` and floats are finite, and `Limits::max_depth` before each level.
//!
//! The text is lexed a slice at a time: tokens up to the end of a line outside any bracket
//! (strings and comments are single tokens) go to the parser, into one reused buffer, so the
//! memory beyond the tree stays small: the tokens of a few lines, not of the document. A line
//! end outside brackets is always between expressions, so each slice parses as it would in
//! the whole document, with spans counted from the start of the text.
//!
//! Nesting is bounded as in the `toml` crate (80 levels of arrays and inline tables, 80 dots
//! in a key) and by `Limits::max_depth`, whichever is less.
//!
//! Spans are byte ranges of the text. A scalar's is its token (quotes and `"""` included), an
//! inline table's or array's its brackets and all between. A table's is the smallest range
//! that holds its own text, its keys and its values' ranges: a `[table]` runs from its header
//! to its last value, a dotted key's table from the key, the root from its first key; a table
//! written in parts (`[a.b]` before `[a]`) gets the hull of the parts, which takes in whatever
//! was written between them. A table is located (line and column) at its own header (the one
//! that defines it), or at the key that implies it; an array of tables at its first header.
//!
//! When a document has several mistakes, the first one in the text is reported; the `toml`
//! crate reports mistakes of the grammar before those of values and tables (it reads the whole
//! document before it decodes any of it).

mod build;
mod tables;

use std::cell::Cell;
use std::ops::Range;

use toml_parser::lexer::{Lexer, Token, TokenKind};
use toml_parser::parser::{RecursionGuard, ValidateWhitespace, parse_document};
use toml_parser::{ErrorSink, Expected, ParseError, Source};

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::tree::{LineIndex, Node};

/// The `toml` crate's bound on arrays and inline tables in one another.
const NESTING: u32 = 80;
/// The `toml` crate's bound on the parts of a dotted key.
const KEY_PARTS: usize = 80;
/// Tokens the parser is given at a time, at least (up to the next line end outside brackets).
const SLICE: usize = 1024;

pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let source = Source::new(text);
    let failed = Cell::new(false);
    let mut sink = Sink {
        first: None,
        failed: &failed,
    };
    let mut builder = build::Builder::new(text, doc, limits, &failed);
    {
        let mut whitespace = ValidateWhitespace::new(&mut builder, source);
        let mut guard = RecursionGuard::new(&mut whitespace, NESTING);
        let mut lexer = source.lex();
        // About 2 tokens in 7 bytes (the lexer's own estimate), up to a slice's worth.
        let mut tokens = Vec::with_capacity((text.len() / 7 * 2 + 16).min(SLICE + 64));
        let mut brackets = 0;
        let mut more = true;
        while more && !failed.get() {
            tokens.clear();
            more = next_slice(&mut lexer, &mut tokens, &mut brackets);
            parse_document(&tokens, &mut guard, &mut sink);
        }
    }
    // Ours came first if we have one: we record none after the parser's.
    if let Some(problem) = builder.take_problem() {
        return Err(problem);
    }
    if let Some(error) = sink.first {
        return Err(builder.problem(&error));
    }
    Ok(builder.finish())
}

/// Moves tokens from the lexer into `tokens` up to the first line end outside brackets once
/// there are `SLICE` of them, or to the end of the text (its `Eof` token included); `false`
/// at the end. `brackets` counts the `[` and `{` not yet closed.
fn next_slice(lexer: &mut Lexer<'_>, tokens: &mut Vec<Token>, brackets: &mut usize) -> bool {
    for token in lexer.by_ref() {
        tokens.push(token);
        match token.kind() {
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => *brackets += 1,
            // One too many closes: the parser reports it.
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                *brackets = brackets.saturating_sub(1);
            }
            TokenKind::Newline if *brackets == 0 && tokens.len() >= SLICE => return true,
            _ => {}
        }
    }
    // The lexer ends with an `Eof` token.
    false
}

/// Keeps the parser's first error and tells the builder that one came.
struct Sink<'c> {
    first: Option<ParseError>,
    failed: &'c Cell<bool>,
}

impl ErrorSink for Sink<'_> {
    fn report_error(&mut self, error: ParseError) {
        if self.first.is_none() {
            self.first = Some(error);
        }
        self.failed.set(true);
    }
}

/// An error of the `toml` crate's kind as a problem: the crate's short message (as its
/// `Error::message` words it), a name for the duplicate key, and the nesting bounds as limits.
fn problem(error: &ParseError, text: &str, index: &mut LineIndex<'_>) -> Problem {
    let span = error.unexpected();
    let written = span
        .and_then(|span| text.get(span.start()..span.end()))
        .unwrap_or_default();
    let message = message(error);
    let (kind, message) = match message.as_str() {
        // Always at the key written again.
        "duplicate key" => (ProblemKind::Syntax, format!("duplicate key `{written}`")),
        "recursion limit" => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        m if m.starts_with("cannot recurse further") => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        _ => (ProblemKind::Syntax, message),
    };
    let (line, column) = span.map_or((1, 1), |span| index.locate(span.start()));
    Problem::error(kind, message).at_location(String::new(), line, column)
}

/// The message the `toml` crate makes of a parser error: what is wrong, then what was
/// expected.
fn message(error: &ParseError) -> String {
    let mut message = error.description().to_owned();
    if let Some(expected) = error.expected() {
        message.push_str(", expected ");
        if expected.is_empty() {
            message.push_str("nothing");
        }
        for (i, expected) in expected.iter().enumerate() {
            if i != 0 {
                message.push_str(", ");
            }
            match expected {
                Expected::Literal(literal) => message.push_str(&literal_name(literal)),
                Expected::Description(description) => message.push_str(description),
                _ => message.push_str("etc"),
            }
        }
    }
    message
}

/// How the crate names an expected literal: the parser expects no other control character
/// than a line end.
fn literal_name(literal: &str) -> String {
    match literal {
        "\n" => "newline".to_owned(),
        s => format!("`{s}`"),
    }
}

const TOO_DEEP: &str = "nesting deeper than the TOML parser allows (80 levels)";

/// The smallest range that holds both; an empty range (the root's `0..0`) holds nothing.
fn hull(a: Range<usize>, b: Range<usize>) -> Range<usize> {
    if a.is_empty() {
        b
    } else if b.is_empty() {
        a
    } else {
        a.start.min(b.start)..a.end.max(b.end)
    }
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
