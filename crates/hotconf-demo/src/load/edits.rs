//! The rewrites of the load test: a fixed cycle of valid, invalid, restart-required and
//! reverting saves across the four files, each through a different kind of writer, and
//! what each must lead to.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How a save reaches the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Writer {
    /// A temp file beside it, renamed over it (most editors and config tools).
    Rename,
    /// Truncated and rewritten in place (`>` in a shell, many IDEs).
    InPlace,
    /// `cp` over it.
    Copy,
    /// `sed -i` (a temp file renamed over it).
    Sed,
    /// `vim -es`: an editor with its own backup and write strategy (`sed -i` without vim).
    Editor,
}

impl Writer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rename => "rename",
            Self::InPlace => "in place",
            Self::Copy => "cp",
            Self::Sed => "sed -i",
            Self::Editor => "vim -es",
        }
    }
}

/// What a save must lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A new version.
    Applied,
    /// Refused, the old version keeps serving; `located`: the errors name the file and line.
    Rejected { located: bool },
    /// The bytes changed back to what is live: no new version.
    Unchanged,
    /// Only a restart-required path changed: pending, no new version.
    RestartRequired,
}

impl Expect {
    /// The outcome's name in events, the admin API and the audit log.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Rejected { .. } => "rejected",
            Self::Unchanged => "unchanged",
            Self::RestartRequired => "restart_required",
        }
    }
}

/// A request whose answer shows whether the live config is the expected one.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) path: &'static str,
    pub(crate) pointer: &'static str,
    pub(crate) value: Value,
}

/// One save.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    pub(crate) label: String,
    pub(crate) file: &'static str,
    pub(crate) text: String,
    pub(crate) writer: Writer,
    pub(crate) expect: Expect,
    /// What `/status` lists as pending after it.
    pub(crate) pending: &'static [&'static str],
    pub(crate) probe: Option<Probe>,
}

/// The state the files describe; every edit is a render of a state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Files {
    limited_rpm: u32,
    chat_slow: bool,
    shout: bool,
    pool: usize,
}

/// The first rate of the limited route and its burst.
pub(crate) const LIMITED: (u32, u32) = (600, 5);

impl Files {
    /// The state the test starts from.
    pub(crate) fn start() -> Self {
        Self {
            limited_rpm: LIMITED.0,
            chat_slow: false,
            shout: false,
            pool: 4,
        }
    }

    /// Every file of this state, to start from.
    pub(crate) fn all(&self) -> [(&'static str, String); 4] {
        [
            ("server.toml", server(2, self.pool)),
            ("limits.yaml", limits(self.limited_rpm, false)),
            ("routes.json", routes(self.chat_slow, false)),
            ("features.toml", features(self.shout, 0)),
        ]
    }

    fn chain(&self) -> Value {
        if self.chat_slow {
            json!(["slow", "echo"])
        } else {
            json!(["flaky", "echo"])
        }
    }

    fn probe_limited(&self) -> Option<Probe> {
        Some(Probe {
            path: "/api/limited",
            pointer: "/limit/rpm",
            value: json!(self.limited_rpm),
        })
    }

    fn probe_chat(&self) -> Option<Probe> {
        Some(Probe {
            path: "/api/chat",
            pointer: "/chain",
            value: self.chain(),
        })
    }

    fn probe_flags(&self) -> Option<Probe> {
        Some(Probe {
            path: "/api/flags",
            pointer: "/shout",
            value: json!(self.shout),
        })
    }

    fn probe_pool(&self) -> Option<Probe> {
        Some(Probe {
            path: "/api/pool",
            pointer: "/pool/size",
            value: json!(self.pool),
        })
    }

    /// The `i`-th save of the cycle, and the state after it.
    pub(crate) fn edit(&mut self, i: usize) -> Edit {
        const NONE: &[&str] = &[];
        let round = i / CYCLE;
        let edit = |label: &str, file, text, writer, expect, probe| Edit {
            label: label.to_owned(),
            file,
            text,
            writer,
            expect,
            pending: NONE,
            probe,
        };
        let invalid = Expect::Rejected { located: true };
        match i % CYCLE {
            0 => {
                self.limited_rpm = if self.limited_rpm == LIMITED.0 {
                    1200
                } else {
                    LIMITED.0
                };
                let text = limits(self.limited_rpm, false);
                let probe = self.probe_limited();
                edit(
                    "limited rpm",
                    "limits.yaml",
                    text,
                    Writer::Rename,
                    Expect::Applied,
                    probe,
                )
            }
            1 => {
                self.chat_slow = !self.chat_slow;
                let text = routes(self.chat_slow, false);
                let probe = self.probe_chat();
                edit(
                    "chat chain",
                    "routes.json",
                    text,
                    Writer::InPlace,
                    Expect::Applied,
                    probe,
                )
            }
            2 => {
                self.shout = !self.shout;
                let text = features(self.shout, 0);
                let probe = self.probe_flags();
                edit(
                    "flags.shout",
                    "features.toml",
                    text,
                    Writer::Copy,
                    Expect::Applied,
                    probe,
                )
            }
            3 => {
                let text = routes(self.chat_slow, true);
                let probe = self.probe_chat();
                edit(
                    "unknown backend",
                    "routes.json",
                    text,
                    Writer::Sed,
                    invalid,
                    probe,
                )
            }
            4 => {
                let text = routes(self.chat_slow, false);
                let probe = self.probe_chat();
                edit(
                    "revert routes",
                    "routes.json",
                    text,
                    Writer::Rename,
                    Expect::Unchanged,
                    probe,
                )
            }
            5 => {
                let text = limits(self.limited_rpm, true);
                let probe = self.probe_limited();
                edit(
                    "rpm 0",
                    "limits.yaml",
                    text,
                    Writer::InPlace,
                    invalid,
                    probe,
                )
            }
            6 => {
                let text = limits(self.limited_rpm, false);
                let probe = self.probe_limited();
                edit(
                    "revert limits",
                    "limits.yaml",
                    text,
                    Writer::Copy,
                    Expect::Unchanged,
                    probe,
                )
            }
            7 => {
                let text = server(3, self.pool);
                let mut edit = edit(
                    "workers (restart)",
                    "server.toml",
                    text,
                    Writer::Editor,
                    Expect::RestartRequired,
                    self.probe_pool(),
                );
                edit.pending = &["server.workers"];
                edit
            }
            8 => {
                self.pool = if self.pool == 4 { 6 } else { 4 };
                let text = server(2, self.pool);
                let probe = self.probe_pool();
                edit(
                    "pool size",
                    "server.toml",
                    text,
                    Writer::Rename,
                    Expect::Applied,
                    probe,
                )
            }
            9 => {
                // A flag that needs a token that is not set, or a syntax error.
                let text = features(self.shout, 1 + round % 2);
                let probe = self.probe_flags();
                edit(
                    "bad flags",
                    "features.toml",
                    text,
                    Writer::InPlace,
                    invalid,
                    probe,
                )
            }
            10 => {
                let text = features(self.shout, 0);
                let probe = self.probe_flags();
                edit(
                    "revert flags",
                    "features.toml",
                    text,
                    Writer::Sed,
                    Expect::Unchanged,
                    probe,
                )
            }
            11 => {
                // Valid, but the pool cannot be built: refused at prepare, not at a line.
                let text = server(2, 40);
                let probe = self.probe_pool();
                let expect = Expect::Rejected { located: false };
                edit(
                    "pool of 40",
                    "server.toml",
                    text,
                    Writer::Copy,
                    expect,
                    probe,
                )
            }
            _ => {
                let text = server(2, self.pool);
                let probe = self.probe_pool();
                edit(
                    "revert pool",
                    "server.toml",
                    text,
                    Writer::Editor,
                    Expect::Unchanged,
                    probe,
                )
            }
        }
    }
}

/// How many saves one round of the cycle takes.
pub(crate) const CYCLE: usize = 13;

fn server(workers: usize, pool: usize) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = {workers}\nadmin_token = \"\"\n\n\
         [pool]\nsize = {pool}\n\n[hot_reload]\ndebounce_ms = 150\n"
    )
}

fn limits(limited_rpm: u32, zero: bool) -> String {
    let default = if zero { 0 } else { 600_000 };
    format!(
        "limits:\n  default:\n    rpm: {default}\n    burst: 10000\n  routes:\n    limited:\n      \
         rpm: {limited_rpm}\n      burst: {}\n",
        LIMITED.1
    )
}

fn routes(chat_slow: bool, unknown: bool) -> String {
    let chat = match (chat_slow, unknown) {
        (_, true) => r#"{ "primary": "flaky", "fallbacks": ["echo", "nope"] }"#,
        (true, false) => r#"{ "primary": "slow", "fallbacks": ["echo"] }"#,
        (false, false) => r#"{ "primary": "flaky", "fallbacks": ["echo"] }"#,
    };
    format!(
        r#"{{
  "backends": {{
    "echo": {{ "kind": "echo" }},
    "slow": {{ "kind": "delay", "ms": 1 }},
    "flaky": {{ "kind": "flaky", "every": 3 }},
    "down": {{ "kind": "fail" }},
    "db": {{ "kind": "pool" }}
  }},
  "routes": {{
    "chat": {chat},
    "search": {{ "primary": "down", "fallbacks": ["echo"] }},
    "limited": {{ "primary": "echo" }},
    "pool": {{ "primary": "db" }}
  }}
}}
"#
    )
}

/// `bad`: 0 valid, 1 a flag that needs a token that is not set, 2 a syntax error.
fn features(shout: bool, bad: usize) -> String {
    let stats = match bad {
        0 => "false",
        1 => "true",
        _ => "maybe",
    };
    format!("[flags]\nshout = {shout}\ntrace = false\nstats = {stats}\n")
}

/// Saves `text` as `path` the way `writer` does; `scratch` is a directory outside the
/// watched one for the tools' input.
pub(crate) fn write(writer: Writer, path: &Path, text: &str, scratch: &Path) -> anyhow::Result<()> {
    let source = scratch.join("next");
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("a config file without a name")?;
    match writer {
        Writer::Rename => {
            let temp = path.with_file_name(format!(".{file_name}.tmp"));
            std::fs::write(&temp, text)?;
            std::fs::rename(&temp, path)?;
        }
        Writer::InPlace => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            file.write_all(text.as_bytes())?;
        }
        Writer::Copy => {
            std::fs::write(&source, text)?;
            run(Command::new("cp").arg(&source).arg(path))?;
        }
        Writer::Sed => {
            std::fs::write(&source, text)?;
            sed(&source, path)?;
        }
        Writer::Editor => {
            std::fs::write(&source, text)?;
            if vim_available() {
                run(Command::new("vim")
                    .args(["-Nu", "NONE", "-i", "NONE", "-es", "-c", "%d", "-c"])
                    .arg(format!("0r {}", source.display()))
                    .args(["-c", "wq"])
                    .arg(path))?;
            } else {
                sed(&source, path)?;
            }
        }
    }
    Ok(())
}

/// Replaces the file's content with `source`'s: read it in at line 1, delete every line.
fn sed(source: &Path, path: &Path) -> anyhow::Result<()> {
    run(Command::new("sed")
        .arg("-i")
        .arg("-e")
        .arg(format!("1r {}", source.display()))
        .args(["-e", "d"])
        .arg(path))
}

/// Whether `vim` runs here.
pub(crate) fn vim_available() -> bool {
    Command::new("vim")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_leaves_exactly_the_text() {
        let dir = std::env::temp_dir().join(format!("hotconf-demo-edits-{}", std::process::id()));
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let path = dir.join("a.toml");
        for (i, writer) in [
            Writer::Rename,
            Writer::InPlace,
            Writer::Copy,
            Writer::Sed,
            Writer::Editor,
        ]
        .into_iter()
        .enumerate()
        {
            std::fs::write(&path, "old = 1\nmore = 2\nlines = 3\n").unwrap();
            let text = format!("[flags]\nshout = true\nn = {i}\n");
            write(writer, &path, &text, &scratch).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{writer:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_cycle_reverts_every_invalid_save_before_touching_another_file() {
        let mut files = Files::start();
        let edits: Vec<Edit> = (0..CYCLE * 2).map(|i| files.edit(i)).collect();
        for pair in edits.windows(2) {
            if let Expect::Rejected { .. } = pair[0].expect {
                assert_eq!(pair[1].file, pair[0].file);
                assert_eq!(pair[1].expect, Expect::Unchanged);
            }
        }
        let writers: std::collections::BTreeSet<Writer> = edits.iter().map(|e| e.writer).collect();
        assert_eq!(writers.len(), 5);
        // Two rounds come back to the state they started from.
        let start = Files::start().all();
        assert_eq!(files.all(), start);
    }
}
