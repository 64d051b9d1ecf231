//! The typed config back into a tree: the inverse of [`deserialize`](crate::Layers::deserialize).
//!
//! The engine keeps the effective config as a [`Node`] tree so that what JSON cannot hold
//! (`inf`, `nan`) survives a rollback and a reload that holds restart-required changes
//! back. Spans are unknown here (line 0).

use std::fmt;

use serde::ser::{self, Serialize};

use crate::tree::{Key, Node, Span, Table, Text, Value};

mod against;

pub(crate) use against::diff_against;

/// Why a config does not serialize into a tree.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Self(message.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// `value` as a tree.
pub(crate) fn to_node<T: Serialize + ?Sized>(value: &T) -> Result<Node> {
    value.serialize(Serializer).map(node)
}

fn node(value: Value) -> Node {
    Node::new(value, Span::default())
}

fn one(key: &str, value: Value) -> Value {
    let mut table = Table::default();
    table.insert(key.into(), node(value));
    Value::Table(Box::new(table))
}

struct Serializer;

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Integer(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value> {
        i64::try_from(v)
            .map(Value::Integer)
            .or_else(|_| u64::try_from(v).map(Value::Unsigned))
            .map_err(|_| Error(format!("{v} does not fit 64 bits")))
    }

    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value> {
        Ok(i64::try_from(v).map_or(Value::Unsigned(v), Value::Integer))
    }

    fn serialize_u128(self, v: u128) -> Result<Value> {
        u64::try_from(v)
            .map_err(|_| Error(format!("{v} does not fit 64 bits")))
            .and_then(|v| self.serialize_u64(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::String(Text::from(v.encode_utf8(&mut [0; 4]))))
    }

    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::String(Text::new(v)))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Array(
            v.iter()
                .map(|b| node(Value::Integer((*b).into())))
                .collect(),
        ))
    }

    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(Value::String(Text::new_static(variant)))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value> {
        Ok(one(variant, value.serialize(Serializer)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq> {
        Ok(Seq {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq> {
        Ok(Seq {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map> {
        Ok(Map {
            table: Table::with_capacity_and_hasher(len.unwrap_or(0), Default::default()),
            key: None,
            variant: None,
        })
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map> {
        Ok(Map {
            table: Table::with_capacity_and_hasher(len, Default::default()),
            key: None,
            variant: Some(variant),
        })
    }
}

struct Seq {
    items: Vec<Node>,
    variant: Option<&'static str>,
}

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(to_node(value)?);
        Ok(())
    }

    fn done(self) -> Value {
        let array = Value::Array(self.items);
        match self.variant {
            Some(variant) => one(variant, array),
            None => array,
        }
    }
}

/// The four sequence kinds collect the same way.
macro_rules! collect_items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq {
            type Ok = Value;
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }

            fn end(self) -> Result<Value> {
                Ok(self.done())
            }
        }
    )*};
}

collect_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

struct Map {
    table: Table,
    key: Option<Key>,
    variant: Option<&'static str>,
}

impl Map {
    fn done(self) -> Value {
        let table = Value::Table(Box::new(self.table));
        match self.variant {
            Some(variant) => one(variant, table),
            None => table,
        }
    }
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value came before its key".into()))?;
        self.table.insert(key, to_node(value)?);
        Ok(())
    }

    fn end(self) -> Result<Value> {
        Ok(self.done())
    }
}

/// Structs and struct variants collect their fields the same way.
macro_rules! collect_fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Map {
            type Ok = Value;
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                self.table.insert(Key::new_static(key), to_node(value)?);
                Ok(())
            }

            fn end(self) -> Result<Value> {
                Ok(self.done())
            }
        }
    )*};
}

collect_fields!(SerializeStruct, SerializeStructVariant);

/// Map keys are strings, as in every config format; numbers and booleans are written out
/// (as serde_json does).
struct KeySerializer;

fn not_a_key<T>(what: &str) -> Result<T> {
    Err(Error(format!("a map key must be a string, not {what}")))
}

impl ser::Serializer for KeySerializer {
    type Ok = Key;
    type Error = Error;
    type SerializeSeq = ser::Impossible<Key, Error>;
    type SerializeTuple = ser::Impossible<Key, Error>;
    type SerializeTupleStruct = ser::Impossible<Key, Error>;
    type SerializeTupleVariant = ser::Impossible<Key, Error>;
    type SerializeMap = ser::Impossible<Key, Error>;
    type SerializeStruct = ser::Impossible<Key, Error>;
    type SerializeStructVariant = ser::Impossible<Key, Error>;

    fn serialize_bool(self, v: bool) -> Result<Key> {
        Ok(Key::new_static(if v { "true" } else { "false" }))
    }
    fn serialize_i8(self, v: i8) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_i128(self, v: i128) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_u8(self, v: u8) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_u128(self, v: u128) -> Result<Key> {
        Ok(Key::new(itoa::Buffer::new().format(v)))
    }
    fn serialize_f32(self, _: f32) -> Result<Key> {
        not_a_key("a float")
    }
    fn serialize_f64(self, _: f64) -> Result<Key> {
        not_a_key("a float")
    }
    fn serialize_char(self, v: char) -> Result<Key> {
        Ok(Key::from(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<Key> {
        Ok(Key::new(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Key> {
        not_a_key("bytes")
    }
    fn serialize_none(self) -> Result<Key> {
        not_a_key("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Key> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Key> {
        not_a_key("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Key> {
        not_a_key("null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Key> {
        Ok(Key::new_static(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Key> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Key> {
        not_a_key("an enum with content")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        not_a_key("a list")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        not_a_key("a tuple")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        not_a_key("a tuple")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        not_a_key("a tuple")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        not_a_key("a map")
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        not_a_key("a struct")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        not_a_key("a struct")
    }
}

#[cfg(test)]
mod tests;
