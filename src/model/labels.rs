//! [`Labels`]: the labels an alert keeps for as long as it is active, packed into one
//! allocation. An active alert lives in memory until it resolves, so with a million of them the
//! usual `BTreeMap<String, String>` (a 544-byte B-tree node plus a heap string per key and value,
//! about 600 bytes for 4 labels) was the largest part of the state. Packed, the same 4 labels take
//! the length of their text plus a few bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Label pairs in key order, read-only once built. Serialises as a JSON object, exactly like the
/// `BTreeMap<String, String>` it is built from.
///
/// Encoding (private): for each pair, `<key length>:<key><value length>:<value>`, lengths in
/// bytes as decimal digits.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<str>);

impl Labels {
    /// Packs `labels`; keys stay in the map's order.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Labels {
        let size = labels.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let mut packed = String::with_capacity(size);
        // The lengths by `itoa`, not `write!`: the formatting machinery was 4% of a new alert's
        // cost in the scale bench (BENCHMARKS.md, round 3l).
        let mut digits = itoa::Buffer::new();
        for (k, v) in labels {
            for text in [k, v] {
                packed.push_str(digits.format(text.len()));
                packed.push(':');
                packed.push_str(text);
            }
        }
        Labels(packed.into_boxed_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(&self.0)
    }

    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The labels as a map again.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(labels: &BTreeMap<String, String>) -> Labels {
        Labels::from_map(labels)
    }
}

/// Iterator over the pairs of [`Labels`].
#[derive(Debug, Clone)]
pub struct Iter<'a>(&'a str);

impl<'a> Iter<'a> {
    /// Takes one length-prefixed string off the front.
    fn take(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_once(':')?;
        // Not `str::parse`: this runs twice per label of every alert of every published
        // version.
        let len = usize::try_from(super::digits(len.as_bytes())?).ok()?;
        let text = rest.get(..len)?;
        self.0 = rest.get(len..)?;
        Some(text)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.take().zip(self.take());
        if pair.is_none() {
            self.0 = "";
        }
        pair
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(|m| Labels::from_map(&m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_pairs_in_key_order_and_serialises_as_an_object() {
        let map: BTreeMap<String, String> = [("service", "checkout"), ("env", "prod"), ("x", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let labels = Labels::from_map(&map);
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("env", "prod"), ("service", "checkout"), ("x", "")]
        );
        assert_eq!(labels.get("service"), Some("checkout"));
        assert_eq!(labels.get("nope"), None);
        assert_eq!(
            serde_json::to_string(&labels).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert!(Labels::default().is_empty());
    }

    proptest! {
        #[test]
        fn round_trips_any_labels(map in proptest::collection::btree_map(".{0,12}", ".{0,24}", 0..8)) {
            let labels = Labels::from_map(&map);
            prop_assert_eq!(labels.to_map(), map.clone());
            let json = serde_json::to_string(&labels).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&map).unwrap());
            let back: Labels = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, labels);
        }
    }
}
