//! What a YAML scalar and a node's tag mean: the rules serde-saphyr applies with the options
//! hotconf used with it (YAML 1.2 core schema, `strict_booleans`, numbers with `_` or a
//! leading zero kept as text, `.inf` and `.nan` passed through, unsupported tags refused).
//!
//! - Null: a plain `~`, `null`, `Null`, `NULL` or nothing; any scalar tagged `!!null`.
//! - Booleans: a plain `true`, `True`, `TRUE`, `false`, `False`, `FALSE` (not `yes`, `on`).
//! - Integers: decimal without a redundant leading zero, `0x`, `0o` and `0b` forms, with a
//!   sign; a plain one with `_` or a leading zero (`1_000`, `0755`) stays text. Above
//!   `u64::MAX`, a float.
//! - Floats: what Rust reads as a finite `f64`, plus `.inf`, `.nan` and their spellings; a
//!   number too large for `f64` (`1e999`) is infinite here and refused by the builder.
//! - Anything else, and every quoted or block scalar, is a string, unless a core tag
//!   (`!!int`, `!!float`, `!!bool`, `!!null`) says how to read it. `!!str` and `!` keep the
//!   text; `!!binary` is base64 of UTF-8 text; other tags are refused.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{ScalarStyle, Tag as ParserTag};

use crate::tree::Value;

const CORE: &str = "tag:yaml.org,2002:";

/// What a node's tag asks for, as far as hotconf supports tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    /// No tag, or one that changes nothing here (`!` or `!!seq` on a collection).
    None,
    Null,
    Bool,
    Int,
    Float,
    /// `!!str`, or the non-specific `!` on a scalar: the text as written.
    Str,
    Binary,
    Timestamp,
    /// `!!merge`, allowed only on a `<<` key, which it makes a merge key.
    Merge,
}

/// The kind of node a tag is written on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Scalar,
    Sequence,
    Mapping,
}

/// serde-saphyr's reading of a tag (its `SfTag`), narrowed to what matters here: the
/// robotics, include and time tags are all unsupported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Null,
    Bool,
    Int,
    Float,
    Str,
    NonSpecific,
    Seq,
    Map,
    Binary,
    Timestamp,
    Merge,
    Value,
    Other,
}

impl Tag {
    /// The meaning of `tag` on a node of `kind`; `key` is the text of a scalar in a mapping
    /// key's place. `Err` holds the tag as written when it is not supported there.
    pub(super) fn of(
        tag: Option<&ParserTag>,
        kind: Kind,
        key: Option<&str>,
    ) -> Result<Tag, String> {
        let Some(tag) = tag else {
            return Ok(Tag::None);
        };
        let meaning = classify(tag);
        let required = match meaning {
            Meaning::Seq => Some(Kind::Sequence),
            Meaning::Map => Some(Kind::Mapping),
            Meaning::NonSpecific | Meaning::Other => None,
            _ => Some(Kind::Scalar),
        };
        let supported = match meaning {
            Meaning::Other => false,
            Meaning::Merge => key == Some("<<"),
            Meaning::Value => key == Some("="),
            _ => true,
        };
        if required.is_some_and(|required| required != kind) || !supported {
            return Err(tag.original());
        }
        Ok(match meaning {
            Meaning::Null => Tag::Null,
            Meaning::Bool => Tag::Bool,
            Meaning::Int => Tag::Int,
            Meaning::Float => Tag::Float,
            Meaning::Str => Tag::Str,
            Meaning::NonSpecific if kind == Kind::Scalar => Tag::Str,
            Meaning::Binary => Tag::Binary,
            Meaning::Timestamp => Tag::Timestamp,
            Meaning::Merge => Tag::Merge,
            _ => Tag::None,
        })
    }
}

fn classify(tag: &ParserTag) -> Meaning {
    // `!include`, in any spelling, with or without a fragment.
    for prefix in [
        "!include",
        "tag:yaml.org,2002:include",
        "tag:yaml.org,2002:!include",
    ] {
        if let Some(rest) = tag.suffix_in_namespace(prefix)
            && (rest.is_empty() || rest.starts_with('#'))
        {
            return Meaning::Other;
        }
    }
    if let Some(core) = tag.core_suffix() {
        return by_core_name(core).unwrap_or(Meaning::Other);
    }
    if let Some(suffix) = tag.suffix_in_namespace(CORE) {
        return match suffix.as_ref() {
            "merge" => Meaning::Merge,
            "value" => Meaning::Value,
            name => by_name(name.strip_prefix('!').unwrap_or(name)),
        };
    }
    let Some(suffix) = tag.suffix_in_namespace("!") else {
        return Meaning::Other;
    };
    match suffix.as_ref() {
        "" | "!" => Meaning::NonSpecific,
        "!timestamp" => Meaning::Timestamp,
        "!binary" => Meaning::Binary,
        name => match name.strip_prefix('!') {
            Some(name) => by_core_name(name).unwrap_or(Meaning::Other),
            None => by_name(name),
        },
    }
}

/// The seven core schema names.
fn by_core_name(name: &str) -> Option<Meaning> {
    Some(match name {
        "null" => Meaning::Null,
        "bool" => Meaning::Bool,
        "int" => Meaning::Int,
        "float" => Meaning::Float,
        "str" => Meaning::Str,
        "seq" => Meaning::Seq,
        "map" => Meaning::Map,
        _ => return None,
    })
}

fn by_name(name: &str) -> Meaning {
    match name {
        "timestamp" => Meaning::Timestamp,
        "binary" => Meaning::Binary,
        name => by_core_name(name).unwrap_or(Meaning::Other),
    }
}

/// The value of a scalar written as `text` in `style` with `tag`, or the message of why it
/// has none. A message never quotes the scalar, which may be a secret.
pub(super) fn resolve(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Tag,
) -> Result<Value, &'static str> {
    let plain = matches!(style, ScalarStyle::Plain);
    match tag {
        Tag::Null => return Ok(Value::Null),
        Tag::Bool => {
            return bool12(&text)
                .map(Value::Bool)
                .ok_or("invalid boolean (true or false expected)");
        }
        Tag::Int if trim(&text).starts_with('-') => {
            return signed(trim(&text)).map(Value::Integer).ok_or("invalid i64");
        }
        Tag::Int => return unsigned(trim(&text)).map(integer).ok_or("invalid u64"),
        Tag::Float => {
            return float(&text)
                .map(Value::Float)
                .ok_or("invalid floating point");
        }
        Tag::Str => return Ok(Value::String(text.into())),
        Tag::Binary => return binary(&text).map(|text| Value::String(text.into())),
        Tag::Timestamp => return Err("cannot deserialize tagged scalar into string"),
        Tag::None | Tag::Merge => {}
    }
    if !plain {
        return Ok(Value::String(text.into()));
    }
    if matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(b) = bool12(&text) {
        return Ok(Value::Bool(b));
    }
    let t = trim(&text);
    // Core-schema integers have no `_` and no redundant leading zero.
    if leading_zero(t) || t.contains('_') {
        return Ok(Value::String(text.into()));
    }
    let number = if t.starts_with('-') {
        signed(t).map(Value::Integer)
    } else {
        unsigned(t).map(integer)
    };
    if let Some(number) = number.or_else(|| float(&text).map(Value::Float)) {
        return Ok(number);
    }
    Ok(Value::String(text.into()))
}

/// Whether `text` reads as a number too large for `f64` (`1e999`), not as `.inf`.
pub(super) fn overflows(text: &str) -> bool {
    let t = trim(text);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    unsigned.starts_with(|c: char| c.is_ascii_digit())
}

fn integer(n: u64) -> Value {
    i64::try_from(n).map_or(Value::Unsigned(n), Value::Integer)
}

fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\r', '\n'])
}

fn bool12(text: &str) -> Option<bool> {
    match trim(text) {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A decimal integer with a redundant leading zero (`0755`, `-01`).
fn leading_zero(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The radix and digits of an unsigned integer's text.
fn radix(rest: &str) -> (u32, &str) {
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = rest.strip_prefix(prefix) {
            return (radix, digits);
        }
    }
    (10, rest)
}

/// The magnitude of an integer's text without its sign; `_` may separate digits.
fn magnitude(rest: &str) -> Option<u128> {
    let (radix, digits) = radix(rest);
    if radix == 10 && digits.starts_with('0') && digits != "0" {
        return None;
    }
    let bytes = digits.as_bytes();
    let mut value: u128 = 0;
    let mut saw = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let between =
                i > 0 && bytes[i - 1] != b'_' && bytes.get(i + 1).is_some_and(|&n| n != b'_');
            if !between {
                return None;
            }
            continue;
        }
        let digit = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(digit))?;
        saw = true;
    }
    saw.then_some(value)
}

fn signed(t: &str) -> Option<i64> {
    let (negative, rest) = match t.strip_prefix('+') {
        Some(rest) => (false, rest),
        None => t.strip_prefix('-').map_or((false, t), |rest| (true, rest)),
    };
    let magnitude = i128::try_from(magnitude(rest)?).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

fn unsigned(t: &str) -> Option<u64> {
    if t.starts_with('-') {
        return None;
    }
    u64::try_from(magnitude(t.strip_prefix('+').unwrap_or(t))?).ok()
}

/// A YAML 1.2 float: `.inf`, `.nan` and their spellings, a finite number Rust reads, or a
/// number too large for `f64`, which is infinite.
fn float(text: &str) -> Option<f64> {
    let t = trim(text);
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match unsigned {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" if negative => return Some(f64::NEG_INFINITY),
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    let value = t.parse::<f64>().ok()?;
    (value.is_finite() || overflows(t)).then_some(value)
}

/// The text that `!!binary` base64 encodes; whitespace is ignored.
fn binary(text: &str) -> Result<String, &'static str> {
    const INVALID: &str = "invalid !!binary base64";
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(4) {
        return Err(INVALID);
    }
    let sextet = |b: u8| -> Result<u32, &'static str> {
        Ok(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(INVALID),
        }
        .into())
    };
    let chunks = clean.chunks_exact(4);
    let count = chunks.len();
    let mut out = Vec::with_capacity(count * 3);
    for (i, chunk) in chunks.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if (pad > 0 && i + 1 != count) || pad > 2 {
            return Err(INVALID);
        }
        let (a, b) = (sextet(chunk[0])?, sextet(chunk[1])?);
        let c = if chunk[2] == b'=' {
            0
        } else {
            sextet(chunk[2])?
        };
        let d = if chunk[3] == b'=' {
            0
        } else {
            sextet(chunk[3])?
        };
        if (chunk[2] == b'=' && pad < 2)
            || (pad == 2 && b & 0x0F != 0)
            || (pad == 1 && c & 0x03 != 0)
        {
            return Err(INVALID);
        }
        let triple = (a << 18) | (b << 12) | (c << 6) | d;
        let bytes = triple.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    String::from_utf8(out)
        .map_err(|_| "!!binary scalar is not valid UTF-8 so cannot be stored into string.")
}
