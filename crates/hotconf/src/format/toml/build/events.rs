//! The parser's events, and the values of scalars.

use std::borrow::Cow;

use toml_parser::decoder::{Encoding, ScalarKind};
use toml_parser::parser::EventReceiver;
use toml_parser::{ErrorSink, ParseError, Raw};

use super::{At, Builder, Frame};
use crate::error::{Problem, ProblemKind};
use crate::format::toml::KEY_PARTS;
use crate::tree::{Node, Value};

impl Builder<'_> {
    /// A scalar's node, or `None` after an error.
    fn scalar_node(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<Encoding>,
        error: &mut dyn ErrorSink,
    ) -> Option<Node> {
        let range = span.start()..span.end();
        let written = self.text.get(range.clone()).unwrap_or_default();
        let raw = Raw::new_unchecked(written, encoding, span);
        let mut decoded = Cow::Borrowed("");
        let kind = raw.decode_scalar(&mut decoded, error);
        if !self.live() {
            return None;
        }
        let value = match kind {
            ScalarKind::String => Value::String(decoded.into()),
            ScalarKind::Boolean(b) => Value::Bool(b),
            // The canonical text (`T` between date and time), as the crate's serde gives it.
            ScalarKind::DateTime => match decoded.parse::<toml::value::Datetime>() {
                Ok(datetime) => Value::String(datetime.to_string().into()),
                Err(err) => {
                    error.report_error(ParseError::new(err.to_string()).with_unexpected(span));
                    return None;
                }
            },
            ScalarKind::Integer(radix) => match i64::from_str_radix(&decoded, radix.value()) {
                Ok(i) => Value::Integer(i),
                Err(_) => {
                    let message = format!(
                        "integer `{written}` does not fit in 64 bits (TOML integers are signed \
                         64-bit)"
                    );
                    let problem = Problem::error(ProblemKind::Syntax, message);
                    self.fail_here(problem, range.start, self.trail());
                    return None;
                }
            },
            ScalarKind::Float => match decoded.parse::<f64>() {
                // TOML writes infinity and NaN as `inf` and `nan`, signed or not; a number
                // too large for f64 (`1e500`) would also read as infinity, but it is a
                // mistake rather than a wish.
                Ok(f) if f.is_finite() || is_non_finite_word(&decoded) => Value::Float(f),
                _ => {
                    let message = format!("float `{written}` is out of range for a 64-bit float");
                    let problem = Problem::error(ProblemKind::Syntax, message);
                    self.fail_here(problem, range.start, self.trail());
                    return None;
                }
            },
        };
        Some(Node::new(
            value,
            self.index.span(self.doc, range.start, range),
        ))
    }
}

impl EventReceiver for Builder<'_> {
    fn std_table_open(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) {
        self.end_table();
        self.key.clear();
        self.at = At::Header {
            array: false,
            open: span.start(),
        };
        self.key_start = span.start();
    }

    fn std_table_close(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) {
        if let (true, At::Header { array, open }) = (self.live(), self.at) {
            self.at = At::Line;
            self.header(array, open..span.end());
        }
    }

    fn array_table_open(&mut self, span: toml_parser::Span, error: &mut dyn ErrorSink) {
        self.std_table_open(span, error);
        self.at = At::Header {
            array: true,
            open: span.start(),
        };
    }

    fn array_table_close(&mut self, span: toml_parser::Span, error: &mut dyn ErrorSink) {
        self.std_table_close(span, error);
    }

    fn inline_table_open(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) -> bool {
        self.open_value(span, false)
    }

    fn inline_table_close(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) {
        self.close_value(span);
    }

    fn array_open(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) -> bool {
        self.open_value(span, true)
    }

    fn array_close(&mut self, span: toml_parser::Span, _error: &mut dyn ErrorSink) {
        self.close_value(span);
    }

    fn simple_key(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<Encoding>,
        error: &mut dyn ErrorSink,
    ) {
        if !self.live() {
            return;
        }
        if self.frames.is_empty() && self.at == At::Line {
            self.at = At::Key;
            self.key.clear();
            self.key_start = span.start();
        }
        let part = self.decode_key(span, encoding, error);
        let start = match self.frames.last() {
            Some(Frame::Inline { key, .. }) => key.first().map_or(span.start(), |p| p.span.start),
            _ => self.key_start,
        };
        let Some(key) = self.key_mut() else { return };
        key.push(part);
        // The crate's bound on dotted keys (80 parts after the first).
        if key.len() > KEY_PARTS {
            let error = ParseError::new("recursion limit")
                .with_unexpected(toml_parser::Span::new_unchecked(start, start));
            self.fail_parse(&error);
        }
    }

    fn key_val_sep(&mut self, _span: toml_parser::Span, _error: &mut dyn ErrorSink) {
        if self.frames.is_empty() && self.at == At::Key {
            self.at = At::Value;
        }
    }

    fn scalar(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<Encoding>,
        error: &mut dyn ErrorSink,
    ) {
        if !self.live() {
            return;
        }
        if let Some(node) = self.scalar_node(span, encoding, error) {
            self.deliver(node);
        }
    }
}

/// Whether a float's text is TOML's `inf` or `nan`, with or without a sign.
fn is_non_finite_word(text: &str) -> bool {
    matches!(text.trim_start_matches(['+', '-']), "inf" | "nan")
}
