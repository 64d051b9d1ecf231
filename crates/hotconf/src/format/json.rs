//! Strict JSON (RFC 8259), parsed by hand: serde_json gives no positions and silently keeps
//! the last of duplicate keys, and a config needs both.
//!
//! A recursive-descent parser over bytes. Positions are tracked as it goes: whitespace counts
//! lines, and columns are counted forward from the last position located, so locating every
//! value costs O(n) over the document even when it is one long line.

use std::hash::BuildHasher;

use indexmap::map::RawEntryApiV1;
use indexmap::map::raw_entry_v1::RawEntryMut;

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::{ConfigPath, Segment};
use crate::tree::{Node, Span, Table, Text, Value, saturate};

pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        doc,
        limits,
        line: 1,
        line_start: 0,
        counted_to: 0,
        column: 0,
        trail: Vec::new(),
        sizes: Vec::new(),
    };
    parser.document().map_err(|mut problem| {
        if !parser.trail.is_empty() {
            // The trail is innermost first.
            problem.path = Some(parser.trail.drain(..).rev().collect());
        }
        problem
    })
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    doc: u32,
    limits: &'a Limits,
    /// The 1-based line of `pos` and the byte where that line starts.
    line: u32,
    line_start: usize,
    /// The 0-based character column of byte `counted_to` on the current line.
    counted_to: usize,
    column: u32,
    /// Path segments from a failing value up to the root, collected while the error unwinds.
    trail: Vec<Segment>,
    /// The sizes of the last object and array finished at each depth. The next one at that
    /// depth starts at that size (up to [`SIZE_HINT_CAP`]): a config repeats its shapes (a
    /// list of routes), and a table grown from nothing by doubling is copied and rehashed
    /// on the way.
    sizes: Vec<Sizes>,
}

/// The most entries a table or an array is allocated for before it has them.
const SIZE_HINT_CAP: usize = 32;

/// See [`Parser::sizes`].
#[derive(Clone, Copy, Default)]
struct Sizes {
    object: u8,
    array: u8,
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Node, Problem> {
        self.skip_whitespace();
        let node = self.value(1)?;
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(self.unexpected("end of input after the top-level value"));
        }
        Ok(node)
    }

    /// A value; were it an object or an array, it would sit `depth` levels deep.
    fn value(&mut self, depth: usize) -> Result<Node, Problem> {
        let start = self.pos;
        let (line, column) = self.here();
        let value = match self.bytes.get(self.pos) {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.text()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.unexpected("a value")),
        };
        let span = Span {
            doc: self.doc,
            line,
            column,
            // Every value ends where the parser stands after it: past the closing quote,
            // bracket or brace, or the last character of a number or literal.
            start: Span::offset(start),
            end: Span::offset(self.pos),
        };
        Ok(Node::new(value, span))
    }

    fn object(&mut self, depth: usize) -> Result<Value, Problem> {
        self.check_depth(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(b'}') {
            self.sized(depth).object = 0;
            return Ok(Value::Table(Box::default()));
        }
        let hint = usize::from(self.sized(depth).object);
        let mut table = Table::with_capacity_and_hasher(hint, Default::default());
        loop {
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(if table.is_empty() {
                    self.unexpected("a string key or '}'")
                } else {
                    self.unexpected_after_comma("a string key", b'}')
                });
            }
            let (line, column) = self.here();
            let key = self.text()?;
            // The key is hashed once, for the look-up and the insert.
            let hash = table.hasher().hash_one(key.as_str());
            if let Some((_, first)) = table
                .raw_entry_v1()
                .from_key_hashed_nocheck(hash, key.as_str())
            {
                let message = format!(
                    "duplicate key `{}` (first set on line {})",
                    ConfigPath::root().key(key.as_str()),
                    self.key_line(first.span.range().start)
                );
                self.trail.push(Segment::Key(key.into()));
                return Err(Problem::error(ProblemKind::Syntax, message).at_location(
                    String::new(),
                    line,
                    column,
                ));
            }
            self.skip_whitespace();
            if !self.eat(b':') {
                return Err(self.unexpected("':' after an object key"));
            }
            self.skip_whitespace();
            match self.value(depth + 1) {
                Ok(node) => {
                    // Always vacant: the key was looked up above and nothing was inserted
                    // since.
                    if let RawEntryMut::Vacant(entry) =
                        table.raw_entry_mut_v1().from_hash(hash, |k| *k == key)
                    {
                        entry.insert_hashed_nocheck(hash, key, node);
                    }
                }
                Err(problem) => {
                    self.trail.push(Segment::Key(key.into()));
                    return Err(problem);
                }
            }
            self.skip_whitespace();
            if self.eat(b'}') {
                self.sized(depth).object = hint_of(table.len());
                return Ok(Value::Table(Box::new(table)));
            }
            if !self.eat(b',') {
                return Err(self.unexpected("',' or '}' after an object entry"));
            }
            self.skip_whitespace();
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Problem> {
        self.check_depth(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(b']') {
            self.sized(depth).array = 0;
            return Ok(Value::Array(Vec::new()));
        }
        let mut items = Vec::with_capacity(usize::from(self.sized(depth).array));
        loop {
            if !items.is_empty() && self.bytes.get(self.pos) == Some(&b']') {
                return Err(self.unexpected_after_comma("a value", b']'));
            }
            match self.value(depth + 1) {
                Ok(node) => items.push(node),
                Err(problem) => {
                    self.trail.push(Segment::Index(items.len()));
                    return Err(problem);
                }
            }
            self.skip_whitespace();
            if self.eat(b']') {
                self.sized(depth).array = hint_of(items.len());
                return Ok(Value::Array(items));
            }
            if !self.eat(b',') {
                return Err(self.unexpected("',' or ']' after an array item"));
            }
            self.skip_whitespace();
        }
    }

    /// A string or an object key: straight from the document when it has no escape, so a
    /// short one is kept inline, with no allocation.
    fn text(&mut self) -> Result<Text, Problem> {
        let start = self.pos + 1;
        let run = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(self.bytes.len() - start);
        if self.bytes.get(start + run) == Some(&b'"') {
            self.pos = start + run + 1;
            return Ok(Text::new(&self.text[start..start + run]));
        }
        self.string().map(Text::from)
    }

    /// A string, from its opening quote. Runs without escapes are copied whole.
    fn string(&mut self) -> Result<String, Problem> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.bytes.len() - self.pos);
            out.push_str(&self.text[self.pos..self.pos + run]);
            self.pos += run;
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(&b) => {
                    let message = if b == b'\n' {
                        "unterminated string: a line break inside a string must be written \\n"
                            .to_owned()
                    } else {
                        format!(
                            "control character U+{b:04X} inside a string must be escaped, as \
                             \\u{b:04X}"
                        )
                    };
                    return Err(self.error_here(ProblemKind::Syntax, message));
                }
                None => return Err(self.unexpected("'\"' to close the string")),
            }
        }
    }

    /// One escape sequence, from its backslash; a surrogate pair makes one character.
    fn escape(&mut self) -> Result<char, Problem> {
        let at = self.here();
        let c = match self.bytes.get(self.pos + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(at),
            _ => {
                self.pos += 1;
                return Err(self.unexpected("an escape after '\\' (one of \" \\ / b f n r t u)"));
            }
        };
        self.pos += 2;
        Ok(c)
    }

    fn unicode_escape(&mut self, at: (u32, u32)) -> Result<char, Problem> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                let low = if self.bytes[self.pos..].starts_with(b"\\u") {
                    Some(self.hex4()?)
                } else {
                    None
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    _ => {
                        return Err(lone_surrogate(
                            high,
                            "a high surrogate must be followed by a low one (\\uDC00-\\uDFFF)",
                            at,
                        ));
                    }
                }
            }
            0xDC00..=0xDFFF => {
                return Err(lone_surrogate(
                    high,
                    "a low surrogate must follow a high one (\\uD800-\\uDBFF)",
                    at,
                ));
            }
            _ => u32::from(high),
        };
        // Surrogates are excluded above, so every code left is a scalar value.
        char::from_u32(code).ok_or_else(|| lone_surrogate(high, "not a character", at))
    }

    /// The four hex digits of a `\uXXXX` escape, from its backslash.
    fn hex4(&mut self) -> Result<u16, Problem> {
        self.pos += 2;
        let mut code = 0u16;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.pos)
                .and_then(|&b| char::from(b).to_digit(16));
            let Some(digit) = digit.and_then(|d| u16::try_from(d).ok()) else {
                return Err(self.unexpected("4 hex digits after \\u"));
            };
            code = code << 4 | digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn number(&mut self) -> Result<Value, Problem> {
        let start = self.pos;
        self.eat(b'-');
        match self.bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error_here(
                        ProblemKind::Syntax,
                        "numbers cannot have leading zeros".to_owned(),
                    ));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit after '-'")),
        }
        let mut integer = true;
        if self.eat(b'.') {
            integer = false;
            if !self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.unexpected("a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        let written = &self.text[start..self.pos];
        if integer {
            if let Ok(i) = written.parse::<i64>() {
                return Ok(Value::Integer(i));
            }
            if let Ok(u) = written.parse::<u64>() {
                return Ok(Value::Unsigned(u));
            }
        }
        match written.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => {
                let (line, column) = self.locate(start);
                Err(Problem::error(
                    ProblemKind::Syntax,
                    format!("number {written} is out of range for a 64-bit float"),
                )
                .at_location(String::new(), line, column))
            }
        }
    }

    /// The line of the key of the entry whose value starts at byte `value`, found again
    /// rather than kept for every key (only a duplicate asks): only whitespace and the `:`
    /// stand between the key's closing quote and its value, and a key is on one line (a line
    /// break inside a string must be escaped).
    fn key_line(&self, value: usize) -> usize {
        let before = &self.bytes[..value];
        let colon = before.iter().rposition(|&b| b == b':').unwrap_or(0);
        let quote = before[..colon]
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        before[..quote].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Problem> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected("a value"))
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line = self.line.saturating_add(1);
                    self.line_start = self.pos;
                    self.counted_to = self.pos;
                    self.column = 0;
                }
                _ => break,
            }
        }
    }

    /// The sizes last seen at `depth` (see [`Parser::sizes`]).
    fn sized(&mut self, depth: usize) -> &mut Sizes {
        if self.sizes.len() <= depth {
            self.sizes.resize(depth + 1, Sizes::default());
        }
        &mut self.sizes[depth]
    }

    fn check_depth(&mut self, depth: usize) -> Result<(), Problem> {
        if depth > self.limits.max_depth {
            let (line, column) = self.here();
            return Err(super::depth_problem(self.limits).at_location(String::new(), line, column));
        }
        Ok(())
    }

    fn here(&mut self) -> (u32, u32) {
        self.locate(self.pos)
    }

    /// The line and column of byte `at` of the current line, counting on from the last
    /// position located.
    fn locate(&mut self, at: usize) -> (u32, u32) {
        if at < self.counted_to {
            self.counted_to = self.line_start;
            self.column = 0;
        }
        let chars = self.bytes[self.counted_to..at]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        self.column = self.column.saturating_add(saturate(chars));
        self.counted_to = at;
        (self.line, self.column.saturating_add(1))
    }

    fn error_here(&mut self, kind: ProblemKind, message: String) -> Problem {
        let (line, column) = self.here();
        Problem::error(kind, message).at_location(String::new(), line, column)
    }

    /// "expected X, found Y" at the current position.
    fn unexpected(&mut self, expected: &str) -> Problem {
        let message = format!("expected {expected}, found {}", self.found());
        self.error_here(ProblemKind::Syntax, message)
    }

    /// The error for a closing bracket where an entry should follow a comma.
    fn unexpected_after_comma(&mut self, expected: &str, close: u8) -> Problem {
        if self.bytes.get(self.pos) == Some(&close) {
            let message = format!(
                "expected {expected} after ',', found '{}' (JSON allows no trailing comma)",
                char::from(close)
            );
            self.error_here(ProblemKind::Syntax, message)
        } else {
            self.unexpected(expected)
        }
    }

    /// What is at the current position, for a message: a word whole, a comment named.
    fn found(&self) -> String {
        let rest = &self.text[self.pos..];
        let Some(c) = rest.chars().next() else {
            return "end of input".to_owned();
        };
        if rest.starts_with("//") || rest.starts_with("/*") {
            return "a comment (JSON has none)".to_owned();
        }
        if c.is_ascii_alphabetic() {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(20)
                .collect();
            return format!("'{word}'");
        }
        if c.is_control() {
            format!("'{}'", c.escape_debug())
        } else {
            format!("'{c}'")
        }
    }
}

/// A size as a hint for the next table or array (see [`Parser::sizes`]).
fn hint_of(len: usize) -> u8 {
    u8::try_from(len.min(SIZE_HINT_CAP)).unwrap_or(u8::MAX)
}

fn lone_surrogate(code: u16, why: &str, (line, column): (u32, u32)) -> Problem {
    Problem::error(
        ProblemKind::Syntax,
        format!("lone surrogate \\u{code:04X} in a string: {why}"),
    )
    .at_location(String::new(), line, column)
}

#[cfg(test)]
mod tests;
