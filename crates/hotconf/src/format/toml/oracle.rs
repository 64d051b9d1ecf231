//! The parse this module replaced, kept as the tests' oracle: the `toml` crate's
//! `DeTable::parse`, then a conversion of its tree into ours.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::Segment;
use crate::tree::{LineIndex, Node, Span, Table, Value};

pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let mut index = LineIndex::new(text);
    let root = DeTable::parse(text).map_err(|err| from_toml_error(&err, text, &mut index))?;
    let mut convert = Convert {
        text,
        index,
        doc,
        limits,
        trail: Vec::new(),
    };
    let span = root.span();
    convert
        .table(root.into_inner(), span, 1)
        .map_err(|mut problem| {
            if !convert.trail.is_empty() {
                // The trail is innermost first.
                problem.path = Some(convert.trail.drain(..).rev().collect());
            }
            problem
        })
}

/// Turns the crate's tree into ours: byte spans into lines and columns, raw numbers into
/// checked ones.
///
/// The crate's spans are byte ranges: a scalar's whole token (quotes and `"""` included), an
/// inline table's or array's brackets and all between, a `[table]`'s or `[[array]]` item's
/// header alone, a dotted key's table the key alone, and the root `0..0`. A table's or
/// array's range here is the smallest one that holds its own span, its keys and its values'
/// ranges: a `[table]` runs from its header to its last value, the root from its first key.
/// A table written in parts (`[a.b]` before `[a]`) gets the hull of the parts, which takes in
/// whatever was written between them.
struct Convert<'a> {
    text: &'a str,
    /// Tables and arrays are located before their contents, so that the index moves forward.
    index: LineIndex<'a>,
    doc: u32,
    limits: &'a Limits,
    /// Path segments from a failing value up to the root, collected while the error unwinds.
    trail: Vec<Segment>,
}

impl Convert<'_> {
    /// The table the crate located at `own`, which sits `depth` levels deep (the root is 1).
    fn table(
        &mut self,
        table: DeTable<'_>,
        own: Range<usize>,
        depth: usize,
    ) -> Result<Node, Problem> {
        self.check_depth(own.start, depth)?;
        let (line, column) = self.index.locate(own.start);
        let mut covered = own.clone();
        let mut entries: Vec<(Spanned<DeString<'_>>, Spanned<DeValue<'_>>)> =
            table.into_iter().collect();
        // The crate keeps keys sorted by name; the config keeps the order they were written.
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut out = Table::with_capacity_and_hasher(entries.len(), Default::default());
        for (key, value) in entries {
            covered = hull(covered, key.span());
            let key = key.into_inner().into_owned();
            match self.value(value, depth + 1) {
                Ok(node) => {
                    covered = hull(covered, node.span.range());
                    out.insert(key.into(), node);
                }
                Err(problem) => {
                    self.trail.push(Segment::Key(key));
                    return Err(problem);
                }
            }
        }
        Ok(self.node(Value::Table(Box::new(out)), (line, column), covered))
    }

    /// A table or an array located at its start, `(line, column)`, that spans `covered`:
    /// its own text and that of everything in it.
    fn node(&self, value: Value, (line, column): (u32, u32), covered: Range<usize>) -> Node {
        let span = Span {
            doc: self.doc,
            line,
            column,
            start: Span::offset(covered.start),
            end: Span::offset(covered.end),
        };
        Node::new(value, span)
    }

    /// A value; were it a table or an array, it would sit `depth` levels deep.
    fn value(&mut self, value: Spanned<DeValue<'_>>, depth: usize) -> Result<Node, Problem> {
        let span = value.span();
        let mut covered = span.clone();
        let value = match value.into_inner() {
            DeValue::Table(table) => return self.table(table, span, depth),
            DeValue::Array(array) => {
                self.check_depth(span.start, depth)?;
                let (line, column) = self.index.locate(span.start);
                let mut items = Vec::with_capacity(array.len());
                for item in array {
                    match self.value(item, depth + 1) {
                        Ok(node) => {
                            // The items of an array of tables sit below its first header.
                            covered = hull(covered, node.span.range());
                            items.push(node);
                        }
                        Err(problem) => {
                            self.trail.push(Segment::Index(items.len()));
                            return Err(problem);
                        }
                    }
                }
                return Ok(self.node(Value::Array(items), (line, column), covered));
            }
            DeValue::String(s) => Value::String(s.into()),
            DeValue::Boolean(b) => Value::Bool(b),
            // The canonical text (`T` between date and time), as the crate's serde gives it.
            DeValue::Datetime(datetime) => Value::String(datetime.to_string().into()),
            DeValue::Integer(integer) => {
                match i64::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => {
                        return Err(self.error(
                            format!(
                                "integer `{}` does not fit in 64 bits (TOML integers are signed \
                                 64-bit)",
                                self.source(&span)
                            ),
                            span.start,
                        ));
                    }
                }
            }
            DeValue::Float(float) => match float.as_str().parse::<f64>() {
                // TOML writes infinity and NaN as `inf` and `nan`, signed or not; a number
                // too large for f64 (`1e500`) would also read as infinity, but it is a
                // mistake rather than a wish.
                Ok(f) if f.is_finite() || is_non_finite_word(float.as_str()) => Value::Float(f),
                _ => {
                    return Err(self.error(
                        format!(
                            "float `{}` is out of range for a 64-bit float",
                            self.source(&span)
                        ),
                        span.start,
                    ));
                }
            },
        };
        Ok(Node::new(
            value,
            self.index.span(self.doc, span.start, covered),
        ))
    }

    fn check_depth(&mut self, start: usize, depth: usize) -> Result<(), Problem> {
        if depth > self.limits.max_depth {
            let (line, column) = self.index.locate(start);
            return Err(crate::format::depth_problem(self.limits).at_location(
                String::new(),
                line,
                column,
            ));
        }
        Ok(())
    }

    fn source(&self, span: &std::ops::Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or_default()
    }

    fn error(&mut self, message: String, offset: usize) -> Problem {
        let (line, column) = self.index.locate(offset);
        Problem::error(ProblemKind::Syntax, message).at_location(String::new(), line, column)
    }
}

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

/// Whether a float's text is TOML's `inf` or `nan`, with or without a sign.
fn is_non_finite_word(text: &str) -> bool {
    matches!(text.trim_start_matches(['+', '-']), "inf" | "nan")
}

/// The crate's error as a problem: its short message (the long form repeats the location and
/// draws a snippet), a name for the duplicate key, and the depth guard as a limit.
fn from_toml_error(err: &toml::de::Error, text: &str, index: &mut LineIndex<'_>) -> Problem {
    let span = err.span();
    let written = span
        .clone()
        .and_then(|span| text.get(span))
        .unwrap_or_default();
    let message = err.message();
    let (kind, message) = match message {
        "duplicate key" if !written.is_empty() => {
            (ProblemKind::Syntax, format!("duplicate key `{written}`"))
        }
        // The crate's guard on nesting (80 levels), in keys and in values.
        "recursion limit" => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        m if m.starts_with("cannot recurse further") => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        _ => (ProblemKind::Syntax, message.to_owned()),
    };
    let (line, column) = span.map_or((1, 1), |span| index.locate(span.start));
    Problem::error(kind, message).at_location(String::new(), line, column)
}

const TOO_DEEP: &str = "nesting deeper than the TOML parser allows (80 levels)";
