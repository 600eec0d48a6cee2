//! What the security parsers (`falco.rs`, `suricata.rs`, `wazuh.rs`, `ocsf.rs`, and `ecs.rs`
//! for documents with `threat.*`) share: a [`Detection`] they fill from their tool's fields,
//! turned into an [`Event`] with one set of documented keys, and helpers to read JSON trees.
//!
//! Every security event has category `security` and carries:
//! - labels (each only when the tool gave it): `host` (the host the detection is about; also
//!   the event's `ci`), `host_ip` (that host's own address), `container`, `user`, `process`,
//!   `src_ip`, `dest_ip`, `rule_id` (the tool's id of the rule or signature);
//! - attribute `attack`: `{"tactics": ["TA0001", …], "techniques": ["T1190", …]}`, tactic ids
//!   of the built-in ATT&CK table ([`crate::model::attack`]) in kill-chain order, technique ids
//!   sorted; absent when the tool named none;
//! - attribute `tool`: the format's name, and whatever else the parser documents.
//!
//! The fingerprint is a hash of the tool, the rule (id, else name) and the entity labels, so
//! the same rule firing again on the same entities is one alert.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::payload::Text;
use super::{At, Event, Format, IngestError, event_id};
use crate::model::attack::{self, Tactic};
use crate::model::{Category, Severity, StableHasher, Status, parse_rfc3339};

/// The entity labels, in the order they are hashed into the fingerprint.
pub const ENTITY_LABELS: [&str; 7] = [
    "host",
    "host_ip",
    "container",
    "user",
    "process",
    "src_ip",
    "dest_ip",
];

/// One detection of a security tool, before it becomes an [`Event`].
#[derive(Debug)]
pub(super) struct Detection {
    pub format: Format,
    /// The rule or signature name: the event's `name`.
    pub rule: String,
    pub rule_id: Option<String>,
    pub time: DateTime<Utc>,
    pub severity: Severity,
    pub status: Status,
    /// The tool's id of this detection, when it has one.
    pub id: Option<String>,
    /// Entity labels by their names in [`ENTITY_LABELS`].
    pub entities: BTreeMap<&'static str, String>,
    pub tactics: BTreeSet<(u8, &'static str)>,
    pub techniques: BTreeSet<String>,
    pub attributes: BTreeMap<String, Value>,
}

impl Detection {
    pub fn new(format: Format, rule: String, time: DateTime<Utc>, severity: Severity) -> Self {
        Detection {
            format,
            rule,
            rule_id: None,
            time,
            severity,
            status: Status::Firing,
            id: None,
            entities: BTreeMap::new(),
            tactics: BTreeSet::new(),
            techniques: BTreeSet::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// Sets entity `label` unless `value` is absent or empty, or the label is set already.
    pub fn entity(&mut self, label: &'static str, value: Option<String>) {
        if let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            self.entities.entry(label).or_insert(v);
        }
    }

    pub fn tactic(&mut self, t: &'static Tactic) {
        self.tactics.insert((t.order, t.id));
    }

    /// Adds a tactic given by id or name; words that name no tactic are ignored (tools have
    /// their own categories besides ATT&CK's).
    pub fn tactic_text(&mut self, text: &str) {
        if let Some(t) = attack::tactic(text) {
            self.tactic(t);
        }
    }

    /// Adds a technique id; anything that is not one is ignored.
    pub fn technique_text(&mut self, text: &str) {
        if let Some(t) = attack::technique_id(text) {
            self.techniques.insert(t);
        }
    }

    pub fn into_event(mut self) -> Event {
        let tool = self.format.as_str();
        let mut h = StableHasher::default();
        h.part(tool)
            .part(self.rule_id.as_deref().unwrap_or(&self.rule));
        for label in ENTITY_LABELS {
            h.part(self.entities.get(label).map_or("", String::as_str));
        }
        let fingerprint = h.hex();
        let id = self
            .id
            .take()
            .unwrap_or_else(|| event_id(&fingerprint, self.time, self.status));
        let mut labels: BTreeMap<String, String> = self
            .entities
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if let Some(rule_id) = self.rule_id {
            labels.insert("rule_id".to_owned(), rule_id);
        }
        if !self.tactics.is_empty() || !self.techniques.is_empty() {
            let tactics: Vec<&str> = self.tactics.iter().map(|(_, id)| *id).collect();
            self.attributes.insert(
                "attack".to_owned(),
                json!({"tactics": tactics, "techniques": self.techniques}),
            );
        }
        self.attributes.insert("tool".to_owned(), json!(tool));
        Event {
            id,
            source: tool.to_owned(),
            time: self.time,
            ci: labels.get("host").cloned(),
            name: self.rule,
            severity: self.severity,
            status: self.status,
            category: Category::Security,
            fingerprint,
            labels,
            attributes: self.attributes,
        }
    }
}

/// The value at `path` (keys of nested objects) below `v`.
pub(super) fn at_path<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, key| v.as_object()?.get(*key))
}

/// A JSON object as the record's top level, or an error naming what it was instead.
pub(super) fn object(at: At, value: Value, what: &str) -> Result<Map<String, Value>, IngestError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(at.invalid(
            "",
            format!(
                "expected a JSON object ({what}), found {}",
                super::payload::Found::of(&other)
            ),
        )),
    }
}

/// An optional string at `path`, named `field` in errors; numbers and booleans are read as
/// their text (rule ids are numbers in some tools, strings in others).
pub(super) fn scalar(
    at: At,
    field: &str,
    v: Option<&Value>,
) -> Result<Option<String>, IngestError> {
    match v.cloned().and_then(Text::from_value).map(Text::into_scalar) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s).filter(|s| !s.trim().is_empty())),
        Some(Err(found)) => Err(at.invalid(field, format!("expected a string, found {found}"))),
    }
}

/// Strings at `v`: one string, or an array of them (tools use both for tactics and techniques).
/// Other values in an array are an error naming `field`.
pub(super) fn strings(at: At, field: &str, v: Option<&Value>) -> Result<Vec<String>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(at.invalid(
                    field,
                    format!(
                        "expected strings, found {}",
                        super::payload::Found::of(other)
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(at.invalid(
            field,
            format!(
                "expected a string or an array of strings, found {}",
                super::payload::Found::of(other)
            ),
        )),
    }
}

/// A timestamp as security tools write them: RFC 3339, or ISO 8601 with an offset without a
/// colon (`2026-11-28T10:00:00.123456+0000`, Suricata and Wazuh), or without any offset (UTC).
pub(super) fn loose_time(
    at: At,
    field: &str,
    v: Option<&Value>,
) -> Result<Option<DateTime<Utc>>, IngestError> {
    let Some(s) = scalar(at, field, v)? else {
        return Ok(None);
    };
    if let Ok(t) = parse_rfc3339(&s) {
        return Ok(Some(t));
    }
    if let Ok(t) = DateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(Some(t.and_utc()));
    }
    Err(at.invalid(
        field,
        format!("expected a timestamp such as 2026-11-28T10:00:00.000000+0000, found {s:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_a_colon_in_the_offset_read_alike() {
        let at = At::top(Format::Suricata);
        let read = |s: &str| {
            loose_time(at, "timestamp", Some(&json!(s)))
                .unwrap()
                .unwrap()
        };
        let t = read("2026-11-28T10:00:00Z");
        assert_eq!(read("2026-11-28T11:00:00.000000+0100"), t);
        assert_eq!(read("2026-11-28T10:00:00.000+0000"), t);
        assert_eq!(read("2026-11-28T10:00:00"), t);
        let e = loose_time(at, "timestamp", Some(&json!("yesterday"))).unwrap_err();
        assert_eq!(e.reason(), "invalid_value");
    }

    #[test]
    fn the_same_rule_on_the_same_entities_is_one_alert() {
        let t = parse_rfc3339("2026-11-28T10:00:00Z").unwrap();
        let detection = |host: &str, sev| {
            let mut d = Detection::new(Format::Falco, "Shell".into(), t, sev);
            d.entity("host", Some(host.into()));
            d.tactic_text("execution");
            d.technique_text("T1059");
            d.technique_text("not a technique");
            d.into_event()
        };
        let a = detection("web-1", Severity::Warning);
        let b = detection("web-1", Severity::Critical);
        let c = detection("web-2", Severity::Warning);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.category, Category::Security);
        assert_eq!(a.ci.as_deref(), Some("web-1"));
        assert_eq!(
            a.attributes["attack"],
            json!({"tactics": ["TA0002"], "techniques": ["T1059"]})
        );
    }
}
