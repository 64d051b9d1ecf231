//! `hotconf audit-hash`: the HMAC the audit log writes for a known value, so that an
//! operator can tell which value a secret in a record has, without the log ever holding it.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hotconf::audit::{AuditError, AuditKey, hash_value};

use crate::trouble::{Kind, Trouble};

#[derive(Debug, Args)]
pub(crate) struct AuditHashArgs {
    /// The audit log's key file: `<log path>.key` beside the log, unless the service named
    /// another.
    #[arg(long, value_name = "K")]
    key_file: PathBuf,
}

/// Reads the value from standard input (never from the command line, where other users
/// and shell histories see it), less one trailing newline, and prints its HMAC.
pub(crate) fn run(args: &AuditHashArgs) -> anyhow::Result<ExitCode> {
    let key = AuditKey::load(&args.key_file).map_err(|error| {
        let kind = match &error {
            AuditError::Key { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Kind::NotFound
            }
            AuditError::InvalidKey { .. } => Kind::Usage,
            _ => Kind::Io,
        };
        Trouble::new(kind, format!("--key-file: {error}"))
    })?;
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|error| Trouble::new(Kind::Io, format!("cannot read standard input: {error}")))?;
    let value = String::from_utf8(strip_newline(input))
        .map_err(|_| Trouble::new(Kind::Usage, "the value on standard input is not UTF-8 text"))?;
    let hmac = hash_value(&key, &serde_json::Value::String(value));
    writeln!(io::stdout().lock(), "{hmac}")?;
    Ok(ExitCode::SUCCESS)
}

/// `echo value |` adds one newline, Windows tools a CRLF: neither belongs to the value.
/// Only one is removed, so a value that ends in a newline can still be given.
fn strip_newline(mut input: Vec<u8>) -> Vec<u8> {
    if input.ends_with(b"\r\n") {
        input.truncate(input.len() - 2);
    } else if input.ends_with(b"\n") {
        input.truncate(input.len() - 1);
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_trailing_newline_is_stripped() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"value", b"value"),
            (b"value\n", b"value"),
            (b"value\r\n", b"value"),
            (b"value\n\n", b"value\n"),
            (b"value\r", b"value\r"),
            (b"\n", b""),
            (b"", b""),
        ];
        for (input, stripped) in cases {
            assert_eq!(strip_newline(input.to_vec()), stripped, "{input:?}");
        }
    }
}
