//! Ingest, first JSON pass: the generic serde seeds and visitors that read a value as the shape
//! expected or note the type found instead ([`Object`], [`Seq`], [`Items`]), and count arrays
//! without keeping them.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::text::{Found, found_instead};

/// A value where a JSON object is expected, or the JSON type found instead.
#[derive(Debug)]
pub(in crate::ingest) struct Object<T>(pub Result<T, Found>);

/// A value where a JSON array is expected: all its elements, or the JSON type found instead.
/// Only for second passes ([`reread`](super::reread)), whose event arrays this pass has already
/// counted.
#[derive(Debug)]
pub(in crate::ingest) struct Seq<T>(pub Result<Vec<T>, Found>);

/// The first elements of a JSON array, at most the cap given to the reader, and how many it had.
#[derive(Debug)]
pub(in crate::ingest) struct Items<T> {
    pub items: Vec<T>,
    pub total: usize,
}

// ---- Object ----

/// Reads a JSON object with the inner seed, or notes the type found instead.
#[derive(Clone, Copy)]
pub(super) struct ObjectSeed<S>(pub(super) S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for ObjectSeed<S> {
    type Value = Object<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<S> ObjectSeed<S> {
    fn wrong<T>(found: Found) -> Object<T> {
        Object(Err(found))
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for ObjectSeed<S> {
    type Value = Object<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0
            .deserialize(MapAccessDeserializer::new(map))
            .map(|v| Object(Ok(v)))
    }

    found_instead!(string number boolean null array);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectSeed(PhantomData::<T>).deserialize(d)
    }
}

// ---- Seq ----

struct SeqVisitor<T>(PhantomData<T>);

impl<T> SeqVisitor<T> {
    fn wrong(found: Found) -> Seq<T> {
        Seq(Err(found))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
    type Value = Seq<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Seq(Ok(items)))
    }

    found_instead!(string number boolean null object);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SeqVisitor(PhantomData))
    }
}

// ---- Count ----

/// Counts, keeping nothing, the elements of the arrays reached from an array of objects through
/// the keys of `path`: `["scopeLogs", "logRecords"]` below OTLP's `resourceLogs` counts its log
/// records. A value of another shape counts nothing; the second pass names it.
#[derive(Clone, Copy)]
pub(super) struct CountSeed(pub(super) &'static [&'static str]);

impl CountSeed {
    fn wrong(_: Found) -> usize {
        0
    }
}

impl<'de> DeserializeSeed<'de> for CountSeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountSeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        match self.0.split_first() {
            None => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
            }
            Some((&key, rest)) => {
                let inner = CountBelowKey { key, rest };
                while let Some(n) = seq.next_element_seed(inner)? {
                    count = count.saturating_add(n);
                }
            }
        }
        Ok(count)
    }

    found_instead!(string number boolean null object);
}

/// In an object, counts what [`CountSeed`] counts under the value of `key`.
#[derive(Clone, Copy)]
struct CountBelowKey {
    key: &'static str,
    rest: &'static [&'static str],
}

impl CountBelowKey {
    fn wrong(_: Found) -> usize {
        0
    }
}

impl<'de> DeserializeSeed<'de> for CountBelowKey {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountBelowKey {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.key))? {
            if is_key {
                count = count.saturating_add(map.next_value_seed(CountSeed(self.rest))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(count)
    }

    found_instead!(string number boolean null array);
}

/// Whether an object key is the given one, compared without allocating.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

// ---- Items ----

/// Reads a JSON array, keeping at most `max` elements, or notes the type found instead.
pub(super) struct ArraySeed<S> {
    pub(super) element: S,
    pub(super) max: usize,
}

impl<S> ArraySeed<S> {
    fn wrong<T>(found: Found) -> Result<Items<T>, Found> {
        Err(found)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for ArraySeed<S> {
    type Value = Result<Items<S::Value>, Found>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for ArraySeed<S> {
    type Value = Result<Items<S::Value>, Found>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        collect(seq, self.element, self.max).map(Ok)
    }

    found_instead!(string number boolean null object);
}

pub(super) fn collect<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de> + Copy>(
    mut seq: A,
    element: S,
    max: usize,
) -> Result<Items<S::Value>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max).min(1024));
    let mut total = 0;
    loop {
        let more = if items.len() < max {
            seq.next_element_seed(element)?.map(|v| items.push(v))
        } else {
            seq.next_element::<IgnoredAny>()?.map(drop)
        };
        if more.is_none() {
            return Ok(Items { items, total });
        }
        total += 1;
    }
}
