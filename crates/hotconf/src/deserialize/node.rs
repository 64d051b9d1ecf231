//! A serde [`Deserializer`] over a located tree: `T` is read straight from the [`Node`]s, and
//! an error leaves with the config path and span of the node that was being read, so no
//! second pass has to find where it happened.
//!
//! The behaviour mirrors `serde_json::Value`'s deserializer (which this replaces): the same
//! visits per kind of value and the same error wording, so messages did not change.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

use crate::path::ConfigPath;
use crate::tree::{Node, Span, Table, Value};

/// A failure to read `T`, with where it happened.
#[derive(Debug)]
pub(crate) struct Error {
    message: String,
    /// The field that a `missing field` error names; the error is located at its table.
    missing: Option<&'static str>,
    /// The path and span of the innermost node that saw the error, set on the way out.
    at: Option<(ConfigPath, Span)>,
}

impl Error {
    /// What went wrong, in serde's words.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The config path of the offending value (for a missing field, the field's path).
    pub(crate) fn path(&self) -> ConfigPath {
        self.at
            .as_ref()
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }

    /// Where the offending value (for a missing field, its table) was written.
    pub(crate) fn span(&self) -> Option<Span> {
        self.at.as_ref().map(|(_, span)| *span)
    }

    /// Locates the error at `node` unless a node below it already did.
    fn at(mut self, trail: &Trail<'_>, span: Span) -> Self {
        if self.at.is_none() {
            let mut path = trail.to_path();
            if let Some(field) = self.missing {
                path = path.key(field);
            }
            self.at = Some((path, span));
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            message: message.to_string(),
            missing: None,
            at: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            missing: Some(field),
            ..Self::custom(format_args!("missing field `{field}`"))
        }
    }

    // serde_json's wording, which the messages had before: `null`, and floats printed short.
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid type: {}, expected {expected}",
            Described(unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid value: {}, expected {expected}",
            Described(unexpected)
        ))
    }
}

/// An unexpected value as serde_json describes it.
struct Described<'a>(Unexpected<'a>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Unit => f.write_str("null"),
            Unexpected::Float(float) => match serde_json::Number::from_f64(float) {
                Some(number) => write!(f, "floating point `{number}`"),
                None => write!(f, "floating point `{float}`"),
            },
            other => other.fmt(f),
        }
    }
}

/// The way from the root to the node being read, kept on the stack: a path is built only
/// when an error needs one.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trail<'p> {
    Root,
    Key(&'p Trail<'p>, &'p str),
    Index(&'p Trail<'p>, usize),
}

impl Trail<'_> {
    fn to_path(self) -> ConfigPath {
        match self {
            Trail::Root => ConfigPath::root(),
            Trail::Key(parent, key) => parent.to_path().key(key),
            Trail::Index(parent, index) => parent.to_path().index(index),
        }
    }
}

/// Reads a value from `node`, which sits at `trail`.
#[derive(Debug)]
pub(crate) struct NodeDeserializer<'de, 'p> {
    node: &'de Node,
    trail: Trail<'p>,
}

impl<'de> NodeDeserializer<'de, 'static> {
    /// A deserializer for the whole config.
    pub(crate) fn root(node: &'de Node) -> Self {
        Self {
            node,
            trail: Trail::Root,
        }
    }
}

impl<'de, 'p> NodeDeserializer<'de, 'p> {
    fn locate<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|error| error.at(&self.trail, self.node.span))
    }

    fn unexpected(&self) -> Unexpected<'de> {
        unexpected(self.node)
    }

    fn visit_array<V: Visitor<'de>>(
        &self,
        items: &'de [Node],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = Items {
            items: items.iter().enumerate(),
            trail: &self.trail,
        };
        let value = visitor.visit_seq(&mut access)?;
        if access.items.len() == 0 {
            Ok(value)
        } else {
            Err(de::Error::invalid_length(
                items.len(),
                &"fewer elements in array",
            ))
        }
    }

    fn visit_table<V: Visitor<'de>>(
        &self,
        table: &'de Table,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = Entries {
            entries: table.iter(),
            value: None,
            trail: &self.trail,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.entries.len() == 0 {
            Ok(value)
        } else {
            Err(de::Error::invalid_length(
                table.len(),
                &"fewer elements in map",
            ))
        }
    }

    fn any<V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            // As serde_json: a non-negative integer is visited as u64.
            Value::Integer(i) => match u64::try_from(*i) {
                Ok(u) => visitor.visit_u64(u),
                Err(_) => visitor.visit_i64(*i),
            },
            Value::Unsigned(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => self.visit_array(items, visitor),
            Value::Table(table) => self.visit_table(table, visitor),
        }
    }
}

fn unexpected(node: &Node) -> Unexpected<'_> {
    match &node.value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Integer(i) => match u64::try_from(*i) {
            Ok(u) => Unexpected::Unsigned(u),
            Err(_) => Unexpected::Signed(*i),
        },
        Value::Unsigned(u) => Unexpected::Unsigned(*u),
        Value::Float(f) => Unexpected::Float(*f),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Table(_) => Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.locate(self.any(visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(NodeDeserializer {
                node: self.node,
                trail: self.trail,
            }),
        };
        self.locate(result)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = visitor.visit_newtype_struct(NodeDeserializer {
            node: self.node,
            trail: self.trail,
        });
        self.locate(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            // A unit variant.
            Value::String(variant) => visitor.visit_enum(Variant {
                name: variant,
                content: None,
                trail: &self.trail,
            }),
            // `{variant = content}`: exactly one key.
            Value::Table(table) => match table.first() {
                Some((variant, content)) if table.len() == 1 => visitor.visit_enum(Variant {
                    name: variant,
                    content: Some(content),
                    trail: &self.trail,
                }),
                _ => Err(de::Error::invalid_value(
                    Unexpected::Map,
                    &"map with a single key",
                )),
            },
            _ => Err(de::Error::invalid_type(self.unexpected(), &"string or map")),
        };
        self.locate(result)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => self.visit_array(items, visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.locate(result)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.locate(visitor.visit_unit())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The items of an array.
struct Items<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    trail: &'p Trail<'p>,
}

impl<'de> SeqAccess<'de> for Items<'de, '_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(NodeDeserializer {
            node,
            trail: Trail::Index(self.trail, index),
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a table; keys are read as strings.
struct Entries<'de, 'p> {
    entries: indexmap::map::Iter<'de, crate::tree::Key, Node>,
    /// The entry whose key was just read.
    value: Option<(&'de str, &'de Node)>,
    trail: &'p Trail<'p>,
}

impl<'de> MapAccess<'de> for Entries<'de, '_> {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, node));
        // A key that is refused (an unknown field) is located at its entry.
        seed.deserialize(KeyDeserializer { key })
            .map(Some)
            .map_err(|error| error.at(&Trail::Key(self.trail, key), node.span))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let Some((key, node)) = self.value.take() else {
            return Err(de::Error::custom("value is missing"));
        };
        seed.deserialize(NodeDeserializer {
            node,
            trail: Trail::Key(self.trail, key),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A table key: a string, which also reads as a number or a bool when the key type asks for
/// one (`HashMap<u16, _>`), as serde_json's object keys do.
struct KeyDeserializer<'de> {
    key: &'de str,
}

macro_rules! parsed_key {
    ($($method:ident => $visit:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.key.parse() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::invalid_type(Unexpected::Str(self.key), &visitor)),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.key)
    }

    parsed_key! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(de::value::BorrowedStrDeserializer::new(self.key))
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum's variant: its name, and its content unless it is a unit variant written as a
/// string.
struct Variant<'de, 'p> {
    name: &'de str,
    content: Option<&'de Node>,
    trail: &'p Trail<'p>,
}

impl<'de, 'p> EnumAccess<'de> for Variant<'de, 'p> {
    type Error = Error;
    type Variant = Content<'de, 'p>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Content<'de, 'p>), Error> {
        let variant = seed.deserialize(KeyDeserializer { key: self.name })?;
        Ok((
            variant,
            Content {
                name: self.name,
                node: self.content,
                trail: self.trail,
            },
        ))
    }
}

/// The content of a variant, which sits under the variant's name in the config path.
struct Content<'de, 'p> {
    name: &'de str,
    node: Option<&'de Node>,
    trail: &'p Trail<'p>,
}

impl<'de> Content<'de, '_> {
    fn deserializer(&self, node: &'de Node) -> NodeDeserializer<'de, '_> {
        NodeDeserializer {
            node,
            trail: Trail::Key(self.trail, self.name),
        }
    }

    /// Content of the wrong kind, located at the content.
    fn refuse(&self, node: &Node, expected: &'static str) -> Error {
        let error: Error = de::Error::invalid_type(unexpected(node), &expected);
        error.at(&Trail::Key(self.trail, self.name), node.span)
    }
}

impl<'de> VariantAccess<'de> for Content<'de, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.node {
            Some(node) => de::Deserialize::deserialize(self.deserializer(node)),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        match self.node {
            Some(node) => seed.deserialize(self.deserializer(node)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Some(
                node @ Node {
                    value: Value::Array(_),
                    ..
                },
            ) => self.deserializer(node).deserialize_any(visitor),
            Some(node) => Err(self.refuse(node, "tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.node {
            Some(
                node @ Node {
                    value: Value::Table(_),
                    ..
                },
            ) => self.deserializer(node).deserialize_any(visitor),
            Some(node) => Err(self.refuse(node, "struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}
