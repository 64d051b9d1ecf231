//! The diff and its replay on located trees, the engine's own form of a config.
//!
//! [`diff_trees`] gives exactly what [`diff`](super::diff) gives on the trees' diff JSON views
//! ([`Node::to_diff_json`]), without building those views: the engine diffs every attempt
//! against the effective config, and building two whole JSON copies of a config to compare
//! them cost more than the comparison. Only the values at a change are converted.

use super::{Change, ChangeKind};
use crate::path::{ConfigPath, Segment};
use crate::tree::{Node, Table, Value};

/// The changes that turn `old` into `new`, the same as [`diff`](super::diff) of their diff
/// JSON views.
pub(crate) fn diff_trees(old: &Node, new: &Node) -> Vec<Change> {
    let mut changes = Vec::new();
    diff_at(&mut Vec::new(), old, new, &mut changes);
    changes
}

/// A step of the path to the nodes being compared, borrowed from the trees: a
/// [`ConfigPath`] is only built where there is a change.
#[derive(Clone, Copy)]
pub(crate) enum Step<'a> {
    /// A table's key.
    Key(&'a str),
    /// An array's index.
    Index(usize),
}

impl Step<'_> {
    fn segment(self) -> Segment {
        match self {
            Step::Key(key) => Segment::Key(key.to_owned()),
            Step::Index(index) => Segment::Index(index),
        }
    }
}

pub(crate) fn path_of(steps: &[Step<'_>]) -> ConfigPath {
    steps.iter().map(|step| step.segment()).collect()
}

/// `steps` and one more, as a path.
pub(crate) fn path_to(steps: &[Step<'_>], last: Step<'_>) -> ConfigPath {
    let mut path = path_of(steps);
    path.push(last.segment());
    path
}

/// Recursion of [`diff_trees`]: the changes from `old` to `new`, which are at `steps`, pushed
/// to `out`. `steps` is a scratch path pushed and popped on the way; its keys are `old`'s.
pub(crate) fn diff_at<'a>(
    steps: &mut Vec<Step<'a>>,
    old: &'a Node,
    new: &Node,
    out: &mut Vec<Change>,
) {
    match (&old.value, &new.value) {
        (Value::Table(old_table), Value::Table(new_table)) => {
            for (index, (key, old_child)) in old_table.iter().enumerate() {
                match entry(new_table, index, key) {
                    Some(new_child) => {
                        steps.push(Step::Key(key));
                        diff_at(steps, old_child, new_child, out);
                        steps.pop();
                    }
                    None => out.push(Change::removed(
                        path_to(steps, Step::Key(key)),
                        old_child.to_diff_json(),
                    )),
                }
            }
            for (index, (key, new_child)) in new_table.iter().enumerate() {
                if entry(old_table, index, key).is_none() {
                    out.push(Change::added(
                        path_to(steps, Step::Key(key)),
                        new_child.to_diff_json(),
                    ));
                }
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => {
            for (index, (old_item, new_item)) in old_items.iter().zip(new_items).enumerate() {
                steps.push(Step::Index(index));
                diff_at(steps, old_item, new_item, out);
                steps.pop();
            }
            let common = old_items.len().min(new_items.len());
            for (index, new_item) in new_items.iter().enumerate().skip(common) {
                out.push(Change::added(
                    path_to(steps, Step::Index(index)),
                    new_item.to_diff_json(),
                ));
            }
            for (index, old_item) in old_items.iter().enumerate().skip(common) {
                out.push(Change::removed(
                    path_to(steps, Step::Index(index)),
                    old_item.to_diff_json(),
                ));
            }
        }
        _ if same_leaf(old, new) => {}
        _ => out.push(Change::modified(
            path_of(steps),
            old.to_diff_json(),
            new.to_diff_json(),
        )),
    }
}

/// The value under `key`, looked for first at `index` (two versions of a config mostly have
/// their keys in the same order), then by hash.
fn entry<'a>(table: &'a Table, index: usize, key: &str) -> Option<&'a Node> {
    table
        .get_index(index)
        .filter(|(k, _)| *k == key)
        .map(|(_, node)| node)
        .or_else(|| table.get(key))
}

/// Whether two nodes that are not both tables nor both arrays have equal diff JSON views.
fn same_leaf(old: &Node, new: &Node) -> bool {
    match (&old.value, &new.value) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Integer(a), Value::Integer(b)) => a == b,
        (Value::Unsigned(a), Value::Unsigned(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        // Both views of NaN are "nan"; infinities compare as themselves.
        (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        // Mixed kinds: the views decide (`1` as i64 and u64 are one JSON number, `inf` is
        // the string "inf"); rare, so the conversion does not matter.
        (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => {
            old.to_diff_json() == new.to_diff_json()
        }
        // Two tables or two arrays are compared entry by entry, never here.
        _ => false,
    }
}

/// `base` with `changes` applied, their new values taken from `from` (the tree they were
/// diffed against): [`apply`](super::apply) on trees, so that values JSON cannot hold
/// survive. Additions and modifications in order, then removals from the last to the
/// first; a change that does not fit is skipped.
pub(crate) fn patched(base: &Node, changes: &[Change], from: &Node) -> Node {
    let mut result = base.clone();
    for change in changes {
        let Some(new) = from.get(&change.path) else {
            continue;
        };
        match change.kind {
            ChangeKind::Added => insert_at(&mut result, &change.path, new.clone()),
            ChangeKind::Modified => {
                if let Some(slot) = get_mut(&mut result, change.path.segments()) {
                    *slot = new.clone();
                }
            }
            ChangeKind::Removed => {}
        }
    }
    for change in changes.iter().rev() {
        if change.kind == ChangeKind::Removed {
            remove_at(&mut result, &change.path);
        }
    }
    result
}

fn get_mut<'a>(mut node: &'a mut Node, segments: &[Segment]) -> Option<&'a mut Node> {
    for segment in segments {
        node = match (&mut node.value, segment) {
            (Value::Table(table), Segment::Key(key)) => table.get_mut(key.as_str())?,
            (Value::Array(items), Segment::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(node)
}

fn insert_at(root: &mut Node, path: &ConfigPath, new: Node) {
    let Some((last, parents)) = path.segments().split_last() else {
        *root = new;
        return;
    };
    match (get_mut(root, parents).map(|p| &mut p.value), last) {
        (Some(Value::Table(table)), Segment::Key(key)) => {
            table.insert(key.as_str().into(), new);
        }
        (Some(Value::Array(items)), Segment::Index(index)) if *index <= items.len() => {
            items.insert(*index, new);
        }
        _ => {}
    }
}

fn remove_at(root: &mut Node, path: &ConfigPath) {
    let Some((last, parents)) = path.segments().split_last() else {
        return;
    };
    match (get_mut(root, parents).map(|p| &mut p.value), last) {
        (Some(Value::Table(table)), Segment::Key(key)) => {
            table.shift_remove(key.as_str());
        }
        (Some(Value::Array(items)), Segment::Index(index)) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::diff::diff;
    use crate::testing::trees::pair;
    use crate::tree::Span;

    fn node(value: Value) -> Node {
        Node::new(value, Span::default())
    }

    proptest! {
        #[test]
        fn diff_trees_equals_the_diff_of_the_json_views((a, b) in pair()) {
            let expected = diff(&a.to_diff_json(), &b.to_diff_json());
            prop_assert_eq!(diff_trees(&a, &b), expected);
        }

        #[test]
        fn patched_replays_a_diff_of_trees((a, b) in pair()) {
            let changes = diff_trees(&a, &b);
            let patched = patched(&a, &changes, &b);
            prop_assert_eq!(patched.to_diff_json(), b.to_diff_json());
        }
    }

    #[test]
    fn patched_skips_changes_that_do_not_fit_the_base() {
        let items = |n: i64| {
            node(Value::Array(
                (0..n).map(|i| node(Value::Integer(i))).collect(),
            ))
        };
        let at = |index: usize| ConfigPath::root().index(index);
        let changes = [
            Change::added(at(5), serde_json::json!(5)),
            Change::removed(at(3), serde_json::json!(3)),
            Change::removed(at(1), serde_json::json!(1)),
        ];
        let patched = patched(&items(1), &changes, &items(6));
        assert_eq!(patched.to_diff_json(), serde_json::json!([0]));
    }

    #[test]
    fn floats_differ_as_their_views_do() {
        let float = |f: f64| node(Value::Float(f));
        let nan = f64::NAN;
        let (inf, ninf) = (f64::INFINITY, f64::NEG_INFINITY);
        for (a, b, changed) in [
            (nan, nan, false),
            (nan, 1.0, true),
            (1.0, nan, true),
            (inf, inf, false),
            (inf, ninf, true),
            (0.0, -0.0, false),
            (1.5, 2.5, true),
        ] {
            let changes = diff_trees(&float(a), &float(b));
            assert_eq!(!changes.is_empty(), changed, "{a} -> {b}");
        }
    }

    #[test]
    fn keys_in_another_order_are_no_change() {
        let table = |keys: &[&str]| {
            let entries = keys
                .iter()
                .map(|k| ((*k).into(), node(Value::Integer(k.len() as i64))));
            node(Value::Table(Box::new(entries.collect())))
        };
        assert!(diff_trees(&table(&["a", "bb"]), &table(&["bb", "a"])).is_empty());
        let changes = diff_trees(&table(&["a", "bb"]), &table(&["bb", "ccc"]));
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["- a: 1", "+ ccc: 3"]);
    }
}
