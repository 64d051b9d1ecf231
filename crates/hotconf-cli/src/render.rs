//! Human output: problems rendered like compiler diagnostics, with the offending line.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use hotconf::source::{Document, Format, Origin};
use hotconf::{Problem, Secrets, Severity};

/// A problem as a compiler-style diagnostic. When the file can be read again, the line is
/// shown with a caret under the column; otherwise the plain `file:line:col: message`.
/// `secrets` are the built-in names and the user's `--secret` patterns: the line of a
/// secret value is never shown.
pub(crate) fn problem(problem: &Problem, secrets: &Secrets) -> String {
    let title = match &problem.path {
        Some(path) if !path.is_root() => format!("{path}: {}", problem.message),
        _ => problem.message.clone(),
    };
    let level = match problem.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let renderer = if std::env::var_os("NO_COLOR").is_none() && is_terminal() {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    // The offending line of a secret value would show the secret; so would the line of a
    // value the library kept out of the message (a scalar where a table belongs).
    let secret = problem
        .path
        .as_ref()
        .is_some_and(|path| secrets.is_secret(path))
        || problem.message.contains("(secret, not shown)");
    let located = match (&problem.file, problem.line, problem.column) {
        (Some(file), Some(line), Some(column)) if line > 0 && !secret => {
            source_line(file, line, secrets).map(|text| (file, line, column, text))
        }
        _ => None,
    };
    let report = match located {
        Some((file, line, column, text)) => {
            let span = highlight(&text, column);
            let group = level.primary_title(&title).element(
                Snippet::source(&text)
                    .line_start(line as usize)
                    .path(file.as_str())
                    .annotation(AnnotationKind::Primary.span(span)),
            );
            renderer.render(&[group])
        }
        None => {
            let mut header = String::new();
            if let Some(file) = &problem.file {
                header.push_str(file);
                if let (Some(line), Some(column)) = (problem.line, problem.column) {
                    header.push_str(&format!(":{line}:{column}"));
                }
                header.push_str(": ");
            }
            let group = Group::with_title(level.primary_title(format!("{header}{title}")));
            renderer.render(&[group])
        }
    };
    format!("{report}\n\n")
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Line `line` (1-based) of a file that can be read as text, unless it shows part of a
/// secret value (a multi-line string, an inline table, anything under a secret key; when
/// the file does not parse, any line naming a secret key and what continues it).
fn source_line(file: &str, line: u32, secrets: &Secrets) -> Option<String> {
    let bytes = std::fs::read(file).ok()?;
    let path = std::path::Path::new(file);
    let format = Format::from_path(path).unwrap_or(Format::Toml);
    let document = Document::new(Origin::File(path.to_path_buf()), format, bytes);
    if secrets.line_is_secret(&document, line) {
        return None;
    }
    let text = String::from_utf8_lossy(&document.bytes);
    text.lines().nth(line as usize - 1).map(str::to_owned)
}

/// The byte range to underline: from the column (in characters) to the end of the token.
fn highlight(text: &str, column: u32) -> std::ops::Range<usize> {
    let start = text
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(text.len(), |(i, _)| i);
    let token = &text[start..];
    let len = match token.chars().next() {
        Some(quote @ ('"' | '\'')) => token[1..].find(quote).map_or(token.len(), |end| end + 2),
        Some(_) => token
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ']' | ':' | '='))
            .unwrap_or(token.len())
            .max(1),
        None => 0,
    };
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_covers_the_token_at_the_column() {
        assert_eq!(highlight("rpm = \"fast\"", 7), 6..12);
        assert_eq!(highlight("rpm = 120 # x", 7), 6..9);
        assert_eq!(highlight("a: [1, 2]", 5), 4..5);
        assert_eq!(highlight("", 1), 0..0);
    }
}
