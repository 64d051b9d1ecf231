//! The structural diff of two configs: what a reload changed, path by path.
//!
//! The diff is pure (no I/O, no policy): it compares two configs as [`serde_json::Value`]s so
//! that every format and every target type diff the same way. Policy (restart required,
//! denied, secrets) is applied to its output afterwards, in [`crate::policy`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::path::{ConfigPath, Pattern, Segment};

mod trees;
pub(crate) use trees::{Step, diff_at, diff_trees, patched, path_of, path_to};

/// What happened at a [`Change`]'s path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChangeKind {
    /// The path exists only in the new config.
    Added,
    /// The path exists only in the old config.
    Removed,
    /// The path exists in both with different values (a change of type included).
    Modified,
}

/// One entry of a diff: a path, what happened there, and the values on either side.
///
/// The shape is part of the contract that scripts read (`diff --json`, `watch --json`):
/// `added` has only `new`, `removed` has only `old`, `modified` has both, and the missing side
/// is left out of the JSON rather than written as `null` (which is a value a config can hold).
///
/// ```
/// use hotconf::diff;
/// use serde_json::json;
///
/// let changes = diff(&json!({"limits": {"rpm": 60}}), &json!({"limits": {"rpm": 120}}));
/// assert_eq!(changes[0].to_string(), "~ limits.rpm: 60 -> 120");
/// assert_eq!(
///     serde_json::to_string(&changes[0]).unwrap(),
///     r#"{"path":"limits.rpm","kind":"modified","old":60,"new":120}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Where the change is; the root path when the whole config changed type.
    pub path: ConfigPath,
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The whole old value at `path`; `None` for an addition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The whole new value at `path`; `None` for a removal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Change {
    /// A value that only the new config has.
    pub(crate) fn added(path: ConfigPath, new: Value) -> Self {
        Self {
            path,
            kind: ChangeKind::Added,
            old: None,
            new: Some(new),
        }
    }

    /// A value that only the old config has.
    pub(crate) fn removed(path: ConfigPath, old: Value) -> Self {
        Self {
            path,
            kind: ChangeKind::Removed,
            old: Some(old),
            new: None,
        }
    }

    /// A value that both configs have, differently.
    pub(crate) fn modified(path: ConfigPath, old: Value, new: Value) -> Self {
        Self {
            path,
            kind: ChangeKind::Modified,
            old: Some(old),
            new: Some(new),
        }
    }
}

/// One human line per change, as `hotconf diff` and the logs print it:
/// `~ limits.rpm: 60 -> 120`, `+ routes[2]: {"path":"/x"}`, `- labels.env: "prod"`.
/// Values are compact JSON so that a line never breaks, whatever a string holds.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.kind {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => '~',
        };
        if self.path.is_root() {
            // The root path prints as nothing; a key named "(root)" would print quoted.
            write!(f, "{sign} (root)")?;
        } else {
            write!(f, "{sign} {}", self.path)?;
        }
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => write!(f, ": {old} -> {new}"),
            (Some(value), None) | (None, Some(value)) => write!(f, ": {value}"),
            (None, None) => Ok(()),
        }
    }
}

/// The changes that turn `old` into `new`, in a stable order.
///
/// Tables compare key by key (the old config's keys in their order, then keys only the new
/// one has, in its order). Arrays compare by position, with no alignment heuristics, so that
/// `a[i]` means the same item on both sides and the result is predictable: common positions
/// compare recursively, extra new items are `added` and extra old items `removed` at their
/// index. Anything else that differs, a change of type included (`1` → `1.0`, a table → a
/// string), is one `modified` with both whole values.
///
/// ```
/// use hotconf::{diff, ChangeKind};
/// use serde_json::json;
///
/// let old = json!({"limits": {"rpm": 60}, "routes": ["/a"]});
/// let new = json!({"limits": {"rpm": 120}, "routes": ["/a", "/b"]});
/// let changes = diff(&old, &new);
/// assert_eq!(changes.len(), 2);
/// assert_eq!(changes[0].path.to_string(), "limits.rpm");
/// assert_eq!(changes[0].kind, ChangeKind::Modified);
/// assert_eq!(changes[1].to_string(), r#"+ routes[1]: "/b""#);
/// assert!(diff(&old, &old).is_empty());
/// ```
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut path = ConfigPath::root();
    diff_into(&mut path, old, new, &mut changes);
    changes
}

/// Recursion of [`diff`]; `path` is a scratch buffer pushed and popped on the way.
fn diff_into(path: &mut ConfigPath, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            for (key, old_value) in old_map {
                path.push(Segment::Key(key.clone()));
                match new_map.get(key) {
                    Some(new_value) => diff_into(path, old_value, new_value, out),
                    None => out.push(Change::removed(path.clone(), old_value.clone())),
                }
                path.pop();
            }
            for (key, new_value) in new_map {
                if !old_map.contains_key(key) {
                    out.push(Change::added(
                        path.clone().key(key.clone()),
                        new_value.clone(),
                    ));
                }
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => {
            for (index, (old_item, new_item)) in old_items.iter().zip(new_items).enumerate() {
                path.push(Segment::Index(index));
                diff_into(path, old_item, new_item, out);
                path.pop();
            }
            let common = old_items.len().min(new_items.len());
            for (index, new_item) in new_items.iter().enumerate().skip(common) {
                out.push(Change::added(path.clone().index(index), new_item.clone()));
            }
            for (index, old_item) in old_items.iter().enumerate().skip(common) {
                out.push(Change::removed(path.clone().index(index), old_item.clone()));
            }
        }
        _ if old == new => {}
        _ => out.push(Change::modified(path.clone(), old.clone(), new.clone())),
    }
}

/// Whether any change touches any of `patterns` (see [`Pattern::touches`]).
pub(crate) fn touches(patterns: &[Pattern], changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|change| patterns.iter().any(|pattern| pattern.touches(&change.path)))
}

/// `base` with `changes` applied: `apply(a, &diff(a, b)) == b`.
///
/// This is how a diff is replayed, for instance to keep the old value at restart-required
/// paths while applying the rest. Additions and modifications are applied in order, then
/// removals from the last to the first, so that removing several items at the tail of an
/// array does not shift the indexes of those still to remove. A change that does not fit
/// `base` (its parent is missing or of another type) is skipped: `apply` is meant for diffs
/// computed against `base` or a config of the same shape.
pub fn apply(base: &Value, changes: &[Change]) -> Value {
    let mut result = base.clone();
    for change in changes {
        match (change.kind, &change.new) {
            (ChangeKind::Added, Some(new)) => insert_at(&mut result, &change.path, new.clone()),
            (ChangeKind::Modified, Some(new)) => replace_at(&mut result, &change.path, new.clone()),
            _ => {}
        }
    }
    for change in changes.iter().rev() {
        if change.kind == ChangeKind::Removed {
            remove_at(&mut result, &change.path);
        }
    }
    result
}

/// The value at `segments` under `value`, if every step exists.
fn get_mut<'a>(mut value: &'a mut Value, segments: &[Segment]) -> Option<&'a mut Value> {
    for segment in segments {
        value = match (value, segment) {
            (Value::Object(map), Segment::Key(key)) => map.get_mut(key)?,
            (Value::Array(items), Segment::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The parent of `path` and `path`'s last segment; `None` for the root or a missing parent.
fn parent_mut<'a>(
    root: &'a mut Value,
    path: &'a ConfigPath,
) -> Option<(&'a mut Value, &'a Segment)> {
    let (last, parents) = path.segments().split_last()?;
    Some((get_mut(root, parents)?, last))
}

fn insert_at(root: &mut Value, path: &ConfigPath, new: Value) {
    if path.is_root() {
        *root = new;
        return;
    }
    match parent_mut(root, path) {
        Some((Value::Object(map), Segment::Key(key))) => {
            map.insert(key.clone(), new);
        }
        Some((Value::Array(items), Segment::Index(index))) if *index <= items.len() => {
            items.insert(*index, new);
        }
        _ => {}
    }
}

fn replace_at(root: &mut Value, path: &ConfigPath, new: Value) {
    if let Some(slot) = get_mut(root, path.segments()) {
        *slot = new;
    }
}

fn remove_at(root: &mut Value, path: &ConfigPath) {
    match parent_mut(root, path) {
        Some((Value::Object(map), Segment::Key(key))) => {
            // shift_remove keeps the other keys in their written order.
            map.shift_remove(key);
        }
        Some((Value::Array(items), Segment::Index(index))) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
