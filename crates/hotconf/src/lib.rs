//! hotconf: hot-reload a running service's configuration.
#![deny(missing_docs)]

mod error;
pub mod parse;
mod path;
pub mod source;
mod tree;

pub use error::{Error, Problem, ProblemKind, Problems, Result, Severity};
pub use parse::Limits;
pub use path::{ConfigPath, Pattern, Segment};
pub use tree::{Node, Span, Table, Value};
