//! Which lines of a document hold secret values, so that a caret snippet never shows one.
//!
//! A document that parses is walked: every value at a secret path hides every line its
//! byte range covers (a multi-line string, an inline table, a whole secret table). A
//! document that does not parse (the usual reason to show a snippet) is searched line by
//! line instead, and the search errs on the side of hiding: a line that names a secret key
//! hides itself and everything that continues it.

use std::collections::BTreeSet;

use crate::document::{Document, Limits};
use crate::path::{ConfigPath, Segment};
use crate::policy::{Secrets, is_secret_key};
use crate::tree::{Node, Value};

impl Secrets {
    /// Whether line `line` (1-based) of `document` shows (part of) a secret value, by the
    /// built-in secret names and this set's patterns. When the document does not parse,
    /// any line naming a secret key hides itself and its continuation lines: when in
    /// doubt, a line is hidden.
    ///
    /// ```
    /// use hotconf::Secrets;
    /// use hotconf::source::{Document, Format, Origin};
    ///
    /// let text = "name = \"svc\"\n[db]\npassword = \"\"\"\nhunter2\n\"\"\"\nport = = 5\n";
    /// let document = Document::new(Origin::Defaults, Format::Toml, text.as_bytes().to_vec());
    /// let secrets = Secrets::new();
    /// let hidden: Vec<u32> = (1..=6).filter(|&l| secrets.line_is_secret(&document, l)).collect();
    /// assert_eq!(hidden, [3, 4, 5]);
    /// ```
    pub fn line_is_secret(&self, document: &Document, line: u32) -> bool {
        self.secret_lines(document).contains(&line)
    }

    /// Every line of `document` that shows (part of) a secret value.
    pub(crate) fn secret_lines(&self, document: &Document) -> BTreeSet<u32> {
        let mut lines = BTreeSet::new();
        match crate::format::parse(document, 0, &Limits::default()) {
            Ok(tree) => self.walk(&tree, &mut ConfigPath::root(), &document.bytes, &mut lines),
            Err(_) => self.search(&String::from_utf8_lossy(&document.bytes), &mut lines),
        }
        lines
    }

    fn walk(&self, node: &Node, path: &mut ConfigPath, bytes: &[u8], lines: &mut BTreeSet<u32>) {
        if !path.is_root() && self.is_secret(path) {
            lines.extend(node.span.lines(bytes));
            return;
        }
        match &node.value {
            Value::Table(table) => {
                for (key, child) in table.iter() {
                    path.push(Segment::Key(key.as_str().to_owned()));
                    self.walk(child, path, bytes, lines);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    path.push(Segment::Index(index));
                    self.walk(child, path, bytes, lines);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Whether a line of text names a secret key, by the built-in words or the last key of
    /// a pattern.
    fn names_secret(&self, line: &str) -> bool {
        let words = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .filter(|word| !word.is_empty());
        let lowered = line.to_ascii_lowercase();
        words.into_iter().any(is_secret_key)
            || self
                .patterns
                .iter()
                .filter_map(|pattern| pattern.last_key())
                .any(|key| lowered.contains(&key.to_ascii_lowercase()))
    }

    /// Hides each line that names a secret key, and the lines that continue it: an open
    /// multi-line string up to its end, an open bracket up to its close, and the lines
    /// indented deeper than it (a YAML block or nested table).
    fn search(&self, text: &str, lines: &mut BTreeSet<u32>) {
        let all: Vec<&str> = text.lines().collect();
        let mut at = 0;
        while at < all.len() {
            let line = all[at];
            if !self.names_secret(line) {
                at += 1;
                continue;
            }
            let indent = indentation(line);
            let mut open_quotes = ["\"\"\"", "'''"]
                .into_iter()
                .find(|quote| line.matches(quote).count() % 2 == 1);
            let mut depth = brackets(line);
            lines.insert(line_number(at));
            at += 1;
            while let Some(next) = all.get(at) {
                let continues = open_quotes.is_some()
                    || depth > 0
                    || next.trim().is_empty()
                    || indentation(next) > indent;
                if !continues {
                    break;
                }
                if let Some(quote) = open_quotes
                    && next.matches(quote).count() % 2 == 1
                {
                    open_quotes = None;
                }
                depth += brackets(next);
                lines.insert(line_number(at));
                at += 1;
            }
        }
    }
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// How many brackets a line opens and does not close (negative when it closes more).
fn brackets(line: &str) -> i64 {
    line.chars().fold(0, |depth, c| match c {
        '[' | '{' => depth + 1,
        ']' | '}' => depth - 1,
        _ => depth,
    })
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Format, Origin};

    fn hidden(secrets: &Secrets, format: Format, text: &str) -> Vec<u32> {
        let document = Document::new(Origin::Defaults, format, text.as_bytes().to_vec());
        secrets.secret_lines(&document).into_iter().collect()
    }

    #[cfg(all(feature = "toml", feature = "yaml", feature = "json"))]
    #[test]
    fn a_parsed_document_hides_every_line_of_each_secret_value() {
        let secrets = Secrets::new().pattern("providers.*.dsn".parse().unwrap());
        let cases: Vec<(Format, &str, Vec<u32>)> = vec![
            // A multi-line string under a built-in name.
            (
                Format::Toml,
                "a = 1\npassword = \"\"\"\nline\nline\"\"\"\nb = 2\n",
                vec![2, 3, 4],
            ),
            // An inline table under a secret key: everything in it.
            (
                Format::Toml,
                "credentials = { user = \"u\", pass = \"p\" }\nport = 1\n",
                vec![1],
            ),
            // A whole secret table.
            (
                Format::Toml,
                "[secret]\nkey = \"k\"\nother = 2\n\n[server]\nport = 1\n",
                vec![1, 2, 3],
            ),
            // A user pattern.
            (
                Format::Toml,
                "[providers.a]\ndsn = \"pg://x\"\nname = \"a\"\n",
                vec![2],
            ),
            (
                Format::Yaml,
                "db:\n  password: |\n    one\n    two\n  host: h\n",
                vec![2, 3, 4],
            ),
            (
                Format::Json,
                "{\n  \"api_key\": \"k\",\n  \"port\": 1\n}\n",
                vec![2],
            ),
        ];
        for (format, text, expected) in cases {
            assert_eq!(
                hidden(&secrets, format, text),
                expected,
                "{format}: {text:?}"
            );
        }
    }

    #[test]
    fn an_unparseable_document_hides_secret_lines_and_what_continues_them() {
        let secrets = Secrets::new().pattern("db.dsn".parse().unwrap());
        let cases: Vec<(Format, &str, Vec<u32>)> = vec![
            // The syntax error is on the secret's own line.
            (
                Format::Toml,
                "a = 1\npassword = \"hunter2\nb = 2\n",
                vec![2],
            ),
            // An unclosed multi-line string after a secret key, then the error.
            (
                Format::Toml,
                "token = \"\"\"\nabc\ndef\"\"\"\nx = = 1\n",
                vec![1, 2, 3],
            ),
            // A YAML block under a secret key: the deeper lines.
            (
                Format::Yaml,
                "api_key: |\n  abc\n  def\nbad: [\n",
                vec![1, 2, 3],
            ),
            // An open bracket under a user pattern's key.
            (
                Format::Toml,
                "dsn = [\n\"x\",\n\"y\"]\nq = = 1\n",
                vec![1, 2, 3],
            ),
        ];
        for (format, text, expected) in cases {
            assert_eq!(
                hidden(&secrets, format, text),
                expected,
                "{format}: {text:?}"
            );
        }
    }
}
