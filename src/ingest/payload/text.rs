//! Ingest, first JSON pass: the lenient scalars every parser reads fields as ([`Text`],
//! [`TextMap`]) and [`Found`], the JSON type a value had where another was expected.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The JSON type a value had where another was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::ingest) enum Found {
    String,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

impl Found {
    /// The type with "JSON" in it, for where the whole record is meant: "a JSON string".
    pub fn json(self) -> &'static str {
        match self {
            Found::String => "a JSON string",
            Found::Number => "a JSON number",
            Found::Boolean => "a JSON boolean",
            Found::Null => "JSON null",
            Found::Array => "a JSON array",
            Found::Object => "a JSON object",
        }
    }
}

/// As words for an error message: "a string", "null".
impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Found::String => "a string",
            Found::Number => "a number",
            Found::Boolean => "a boolean",
            Found::Null => "null",
            Found::Array => "an array",
            Found::Object => "an object",
        })
    }
}

/// A JSON value where a string (or another scalar) is expected, kept whatever it was.
/// A JSON `null` in an `Option<Text>` field reads as absent.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::ingest) enum Text {
    Str(String),
    /// A number, as its JSON text.
    Number(String),
    Bool(bool),
    /// `null`, an array or an object.
    Other(Found),
}

impl Text {
    /// The string, or the JSON type found instead.
    pub fn into_string(self) -> Result<String, Found> {
        match self {
            Text::Str(s) => Ok(s),
            Text::Number(_) => Err(Found::Number),
            Text::Bool(_) => Err(Found::Boolean),
            Text::Other(found) => Err(found),
        }
    }

    /// The string, or a number or boolean as its JSON text (`8080`, `true`): label values that
    /// a hand-written producer sent unquoted still mean what they say.
    pub fn into_scalar(self) -> Result<String, Found> {
        match self {
            Text::Str(s) | Text::Number(s) => Ok(s),
            Text::Bool(b) => Ok(b.to_string()),
            Text::Other(found) => Err(found),
        }
    }
}

impl Text {
    /// A value taken out of a JSON tree (CloudEvents' `data`); `null` is absent, as in a struct.
    pub fn from_value(value: Value) -> Option<Text> {
        Some(match value {
            Value::Null => return None,
            Value::String(s) => Text::Str(s),
            Value::Number(n) => Text::Number(n.to_string()),
            Value::Bool(b) => Text::Bool(b),
            other => Text::Other(Found::of(&other)),
        })
    }
}

impl Found {
    /// The JSON type of a value taken out of a JSON tree.
    pub fn of(value: &Value) -> Found {
        match value {
            Value::Null => Found::Null,
            Value::Bool(_) => Found::Boolean,
            Value::Number(_) => Found::Number,
            Value::String(_) => Found::String,
            Value::Array(_) => Found::Array,
            Value::Object(_) => Found::Object,
        }
    }
}

/// Visitor methods that accept each listed JSON type as "found instead" (`Self::wrong`),
/// draining arrays and objects so the pass continues after them.
macro_rules! found_instead {
    ($($kind:ident)*) => { $(found_instead!(@ $kind);)* };
    (@ string) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::String))
        }
    };
    (@ number) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
    };
    (@ boolean) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Boolean))
        }
    };
    (@ null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Null))
        }
    };
    (@ array) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq)?;
            Ok(Self::wrong(Found::Array))
        }
    };
    (@ object) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_map(map)?;
            Ok(Self::wrong(Found::Object))
        }
    };
}
pub(super) use found_instead;

// ---- Text ----

struct TextVisitor;

impl TextVisitor {
    fn wrong(found: Found) -> Text {
        Text::Other(found)
    }
}

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text::Bool(v))
    }

    found_instead!(null array object);
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// A JSON object of scalars (labels, annotations), read straight into strings: numbers and
/// booleans become their text. The first key whose value is not a scalar is kept with the type
/// found, so the error can name it; reading goes on, as for [`Text`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(in crate::ingest) struct TextMap {
    pub map: BTreeMap<String, String>,
    pub bad: Option<(String, Found)>,
}

impl TextMap {
    pub fn insert(&mut self, key: String, value: Text) {
        match value.into_scalar() {
            Ok(v) => {
                self.map.insert(key, v);
            }
            Err(found) => {
                // The first bad key in key order, as a map would list them.
                if self.bad.as_ref().is_none_or(|(k, _)| key < *k) {
                    self.bad = Some((key, found));
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for TextMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TextMap, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<TextMap, A::Error> {
                let mut out = TextMap::default();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Text = access.next_value()?;
                    out.insert(key, value);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}
