//! Ingest: what every parser reads its fields with: [`At`], which names a field's path in errors,
//! and the words, ids and fingerprints the formats share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::payload::{Object, Text, TextMap};
use super::{Format, IngestError, Limits};
use crate::model::{Category, StableHasher, Status, format_rfc3339, parse_rfc3339};

/// Where in a payload an event's fields are, so errors can name them (`alerts[3].startsAt`).
#[derive(Debug, Clone, Copy)]
pub(super) struct At<'a> {
    format: Format,
    /// The array holding the event (`alerts`, or `""` for a native batch) and its index.
    item: Option<(&'a str, usize)>,
}

impl<'a> At<'a> {
    pub(super) fn top(format: Format) -> At<'a> {
        At { format, item: None }
    }

    pub(super) fn item(format: Format, array: &'a str, index: usize) -> At<'a> {
        At {
            format,
            item: Some((array, index)),
        }
    }

    /// The path of `field` (`"name"`, `"[2].name"`, `"alerts[2].labels"`); `""` is the item.
    pub(super) fn path(self, field: &str) -> String {
        match (self.item, field) {
            (None, "") => "the top level".to_owned(),
            (None, _) => field.to_owned(),
            (Some((array, i)), "") => format!("{array}[{i}]"),
            (Some((array, i)), _) => format!("{array}[{i}].{field}"),
        }
    }

    pub(super) fn missing(self, field: &str) -> IngestError {
        IngestError::MissingField {
            format: self.format,
            field: self.path(field),
        }
    }

    pub(super) fn invalid(self, field: &str, detail: String) -> IngestError {
        IngestError::InvalidValue {
            format: self.format,
            field: self.path(field),
            detail,
        }
    }

    pub(super) fn too_many(self, count: usize, limits: &Limits) -> Result<(), IngestError> {
        if count <= limits.max_events_per_record {
            return Ok(());
        }
        Err(IngestError::TooManyEvents {
            format: self.format,
            count,
            limit: limits.max_events_per_record,
        })
    }

    /// An optional string field; the empty string counts as absent.
    pub(super) fn string(
        self,
        field: &str,
        value: Option<Text>,
    ) -> Result<Option<String>, IngestError> {
        match value.map(Text::into_string) {
            None => Ok(None),
            Some(Ok(s)) => Ok(Some(s).filter(|s| !s.is_empty())),
            Some(Err(found)) => {
                Err(self.invalid(field, format!("expected a string, found {found}")))
            }
        }
    }

    pub(super) fn required(self, field: &str, value: Option<Text>) -> Result<String, IngestError> {
        self.string(field, value)?
            .ok_or_else(|| self.missing(field))
    }

    /// An RFC 3339 timestamp, read as chrono's serde support reads `DateTime<Utc>`.
    pub(super) fn time(
        self,
        field: &str,
        value: Option<Text>,
    ) -> Result<Option<DateTime<Utc>>, IngestError> {
        let expected = "expected an RFC 3339 timestamp such as 2026-11-28T10:00:00Z";
        match value.map(Text::into_string) {
            None => Ok(None),
            Some(Ok(s)) => match parse_rfc3339(&s) {
                Ok(t) => Ok(Some(t)),
                Err(e) => Err(self.invalid(field, format!("{expected}, found {s:?} ({e})"))),
            },
            Some(Err(found)) => Err(self.invalid(field, format!("{expected}, found {found}"))),
        }
    }

    /// A string-to-string map (labels, annotations); numbers and booleans become their text.
    pub(super) fn labels(
        self,
        field: &str,
        value: Option<Object<TextMap>>,
    ) -> Result<BTreeMap<String, String>, IngestError> {
        match value {
            None => Ok(BTreeMap::new()),
            Some(Object(Ok(TextMap {
                bad: Some((k, found)),
                ..
            }))) => {
                let detail = format!("expected a string, found {found}");
                Err(self.invalid(&format!("{field}.{k}"), detail))
            }
            Some(Object(Ok(TextMap { map, bad: None }))) => Ok(map),
            Some(Object(Err(found))) => {
                let detail = format!("expected an object of string values, found {found}");
                Err(self.invalid(field, detail))
            }
        }
    }

    /// An optional status word; see [`status_word`].
    pub(super) fn status(
        self,
        field: &str,
        value: Option<Text>,
    ) -> Result<Option<Status>, IngestError> {
        let Some(word) = self.string(field, value)? else {
            return Ok(None);
        };
        match status_word(&word) {
            Some(status) => Ok(Some(status)),
            None => Err(self.invalid(
                field,
                format!("expected firing, resolved, problem or ok, found {word:?}"),
            )),
        }
    }
}

/// The status words tools use: `firing`/`problem` and `resolved`/`ok`, any letter case.
pub(super) fn status_word(word: &str) -> Option<Status> {
    match word.trim().to_ascii_lowercase().as_str() {
        "firing" | "problem" => Some(Status::Firing),
        "resolved" | "ok" => Some(Status::Resolved),
        _ => None,
    }
}

/// A category by its lowercase name, any letter case.
pub(super) fn category_word(word: &str) -> Option<Category> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "availability" => Category::Availability,
        "performance" => Category::Performance,
        "capacity" => Category::Capacity,
        "security" => Category::Security,
        "change" => Category::Change,
        "other" => Category::Other,
        _ => return None,
    })
}

/// The id of an event that brought none: the same alert, time and status give the same id, so
/// a record consumed twice gives the same event twice, which dedup recognises.
pub(super) fn event_id(fingerprint: &str, time: DateTime<Utc>, status: Status) -> String {
    let status = match status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    };
    let mut h = StableHasher::default();
    h.part(fingerprint)
        .part(format_rfc3339(time).as_str())
        .part(status);
    h.hex()
}

/// The fingerprint of an alert whose tool gave none: a hash of `parts` (the format's name and
/// what names the alert, e.g. name and ci) and `k=v` for each label in key order. The same as
/// `stable_hash` of those strings, without building them.
pub(super) fn derived_fingerprint(parts: &[&str], labels: &BTreeMap<String, String>) -> String {
    let mut h = StableHasher::default();
    for part in parts {
        h.part(part);
    }
    for (k, v) in labels {
        h.part_of(&[k, "=", v]);
    }
    h.hex()
}
