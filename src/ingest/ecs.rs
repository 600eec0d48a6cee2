//! Alert documents in the Elastic Common Schema: what Kibana alerting and Elastic Security
//! write to their alert indices and what their webhook connectors and Logstash forward. ECS
//! fields: <https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html> (`event.kind`:
//! <https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-kind.html>); Kibana's
//! alert fields: <https://www.elastic.co/guide/en/security/current/alert-schema.html>.
//!
//! A field may be nested (`{"rule": {"name": "x"}}`), dotted (`{"rule.name": "x"}`) or both
//! (`{"kibana.alert": {"rule.name": "x"}}`); d2c reads them alike, and refuses a field it reads
//! or keeps given both ways (which one would be meant is unknowable). Errors name fields by their dotted name.
//!
//! | field | becomes |
//! |---|---|
//! | `event.kind` | must be `alert` or `signal` (Kibana's alert documents); may be absent when a `kibana.alert.*` field is there |
//! | `kibana.alert.rule.name`, else `rule.name` | `name` (required) |
//! | `kibana.alert.status` | `active` firing, `recovered` or `untracked` resolved; when absent, `event.action` `close` is resolved, anything else firing |
//! | `@timestamp` (required) | `time`, RFC 3339; `kibana.alert.start` instead for a firing alert and `kibana.alert.end` for a resolved one, when present |
//! | `kibana.alert.severity`, else `event.severity`, else `log.level` | `severity`, a word read loosely (`low` warning, `medium` minor, `high` major, `critical`); default and unknown words warning. A numeric `event.severity` is not read: ECS leaves its scale to each source |
//! | `host.name`, else `host.hostname` | `ci` |
//! | `service.name` | label `service` |
//! | `labels.*` | labels (ECS's own custom labels) |
//! | `kibana.alert.uuid` | fingerprint: a hash of `ecs` and the uuid, the same for an alert's active and recovered documents; without it, a hash of `ecs`, name, ci and labels |
//! | `event.id` | `id`; default a hash of fingerprint, time and status |
//! | `message`, `event.*`, `rule.*`, `kibana.alert.*`, `threat.*` | attributes under their dotted names, as sent |
//!
//! Category: `security` when a `threat.*` field is there, `event.category` holds
//! `intrusion_detection`, `malware` or `threat`, or `kibana.alert.rule.producer` is `siem`;
//! else availability.
//!
//! A security alert also gets the labels and attributes every security event carries (see
//! `detection.rs`): labels `host` (`host.name`), `host_ip` (`host.ip`, the first when a list),
//! `user` (`user.name`), `src_ip` (`source.ip`), `dest_ip` (`destination.ip`), `process`
//! (`process.name`), `container` (`container.name`, else `container.id`); attribute `attack`
//! with the ATT&CK tactics of `threat.tactic.id` and `threat.tactic.name` and the techniques of
//! `threat.technique.id` and `threat.technique.subtechnique.id` (a string or a list each), and
//! of Kibana's `kibana.alert.rule.threat` list (`[{tactic: {id, name}, technique: [{id,
//! subtechnique: [{id}]}]}]`); attribute `tool` `ecs`.
//!
//! Second pass: `payload.rs` only notes `@timestamp`; this parser reads the text again into a
//! JSON tree and flattens it to dotted names. Not typed structs as for the other formats:
//! a struct cannot say that `rule.name` and `rule: {name}` are one field. Only the fields read
//! or kept (above) are flattened, and names are built in one buffer, so a subtree d2c does not
//! read costs no names; the names that are built count against the record's expansion budget
//! (`ingest.max_expansion`), as deep nesting of long keys repeats every parent key in every
//! name below it.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use serde_json::{Map, Value};

use super::payload::{Object, Text};
use super::sink::{Sink, value_cost};
use super::{At, Event, Format, IngestError, Limits, derived_fingerprint, event_id, reread};
use crate::model::{Category, Severity, Status, attack, stable_hash};

/// The prefixes of the fields kept as attributes (and `message`).
const ATTRIBUTE_PREFIXES: [&str; 4] = ["event.", "rule.", "kibana.alert.", "threat."];

/// The prefixes of every field read or kept: everything below them is flattened.
const READ_PREFIXES: [&str; 5] = ["event.", "rule.", "kibana.alert.", "threat.", "labels."];

/// The other fields read, by their dotted names.
const READ_FIELDS: [&str; 13] = [
    "@timestamp",
    "message",
    "log.level",
    "host.name",
    "host.hostname",
    "host.ip",
    "service.name",
    "user.name",
    "source.ip",
    "destination.ip",
    "process.name",
    "container.name",
    "container.id",
];

/// `event.category` values that make an alert a security one.
const SECURITY_CATEGORIES: [&str; 3] = ["intrusion_detection", "malware", "threat"];

pub(super) fn events(text: &str, limits: &Limits, out: &mut Sink) -> Result<(), IngestError> {
    let at = At::top(Format::Ecs);
    let doc = match reread::<Object<Map<String, Value>>>(text)? {
        Object(Ok(doc)) => doc,
        Object(Err(found)) => {
            let detail = format!("expected a JSON object (one ECS document), found {found}");
            return Err(at.invalid("", detail));
        }
    };
    // The tree is held while names are built from it: both count against the budget.
    let tree: usize = doc.iter().map(|(k, v)| k.len() + value_cost(v)).sum();
    out.spend(tree)?;
    let mut flat = Flat {
        fields: BTreeMap::new(),
        twice: None,
        name: String::new(),
        out,
    };
    flat.object(doc, false)?;
    if let Some(field) = flat.twice {
        let detail = "given twice, nested and dotted; send it once".to_owned();
        return Err(at.invalid(&field, detail));
    }
    at.too_many(1, limits)?;
    let fields = flat.fields;
    out.push(event(fields, at)?)
}

/// What flattening builds: the leaves read or kept under their dotted names, the first name
/// seen twice, and the name being built (one buffer for the whole walk).
struct Flat<'s> {
    fields: BTreeMap<String, Value>,
    twice: Option<String>,
    name: String,
    out: &'s mut Sink,
}

/// Whether the field `name` is read or kept, or may have such fields below it.
#[derive(PartialEq)]
enum Wanted {
    Keep,
    Descend,
    Skip,
}

fn wanted(name: &str) -> Wanted {
    if READ_FIELDS.contains(&name) || READ_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Wanted::Keep;
    }
    let below = |full: &str| {
        full.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    if READ_FIELDS.iter().chain(&READ_PREFIXES).any(|f| below(f)) {
        Wanted::Descend
    } else {
        Wanted::Skip
    }
}

impl Flat<'_> {
    /// Moves the leaves of `map` (below `self.name`) that are read or kept into `fields`;
    /// `keep`: everything below is (a parent is a read prefix).
    fn object(&mut self, map: Map<String, Value>, keep: bool) -> Result<(), IngestError> {
        let parent = self.name.len();
        for (key, value) in map {
            if parent > 0 {
                self.name.push('.');
            }
            self.name.push_str(&key);
            let here = if keep {
                Wanted::Keep
            } else {
                wanted(&self.name)
            };
            match (here, value) {
                (Wanted::Skip, _) => {}
                (here, Value::Object(inner)) if !inner.is_empty() => {
                    self.object(inner, here == Wanted::Keep)?;
                }
                (Wanted::Descend, _) => {}
                (Wanted::Keep, value) => {
                    self.out
                        .spend(self.name.len() + std::mem::size_of::<String>())?;
                    match self.fields.entry(self.name.clone()) {
                        Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                        Entry::Occupied(given) => {
                            self.twice.get_or_insert_with(|| given.key().clone());
                        }
                    }
                }
            }
            self.name.truncate(parent);
        }
        Ok(())
    }
}

fn event(mut fields: BTreeMap<String, Value>, at: At) -> Result<Event, IngestError> {
    let text =
        |fields: &BTreeMap<String, Value>, key: &str| -> Result<Option<String>, IngestError> {
            at.string(key, fields.get(key).cloned().and_then(Text::from_value))
        };
    let is_kibana_alert = fields.keys().any(|k| k.starts_with("kibana.alert."));
    match text(&fields, "event.kind")? {
        Some(kind) if kind == "alert" || kind == "signal" => {}
        Some(kind) => {
            let detail = format!("d2c reads ECS alerts: expected alert or signal, found {kind:?}");
            return Err(at.invalid("event.kind", detail));
        }
        None if is_kibana_alert => {}
        None => return Err(at.missing("event.kind")),
    }
    let name = match text(&fields, "kibana.alert.rule.name")? {
        Some(name) => name,
        None => text(&fields, "rule.name")?.ok_or_else(|| at.missing("rule.name"))?,
    };
    let status = match text(&fields, "kibana.alert.status")? {
        Some(s) if s == "active" => Status::Firing,
        Some(s) if s == "recovered" || s == "untracked" => Status::Resolved,
        Some(s) => {
            let detail = format!("expected active, recovered or untracked, found {s:?}");
            return Err(at.invalid("kibana.alert.status", detail));
        }
        None => match text(&fields, "event.action")? {
            Some(action) if action == "close" => Status::Resolved,
            _ => Status::Firing,
        },
    };
    let timestamp = at.time(
        "@timestamp",
        fields.get("@timestamp").cloned().and_then(Text::from_value),
    )?;
    let time_of = |key: &str| at.time(key, fields.get(key).cloned().and_then(Text::from_value));
    let time = match status {
        Status::Firing => time_of("kibana.alert.start")?,
        Status::Resolved => time_of("kibana.alert.end")?,
    }
    .or(timestamp)
    .ok_or_else(|| at.missing("@timestamp"))?;
    let mut severity = None;
    for key in ["kibana.alert.severity", "event.severity", "log.level"] {
        // event.severity is often a number, whose scale only its source knows: not read.
        if let Some(Value::String(word)) = fields.get(key) {
            severity = Severity::parse_loose(word);
            break;
        }
    }
    let ci = match text(&fields, "host.name")? {
        Some(host) => Some(host),
        None => text(&fields, "host.hostname")?,
    };
    let mut labels = BTreeMap::new();
    for (key, value) in with_prefix(&fields, "labels.") {
        let label = &key["labels.".len()..];
        let value = Text::from_value(value.clone()).map(Text::into_scalar);
        match value {
            None => {}
            Some(Ok(value)) => {
                labels.insert(label.to_owned(), value);
            }
            Some(Err(found)) => {
                return Err(at.invalid(key, format!("expected a string, found {found}")));
            }
        }
    }
    if let Some(service) = text(&fields, "service.name")? {
        labels.insert("service".to_owned(), service);
    }
    let category = if is_security(&fields) {
        Category::Security
    } else {
        Category::default()
    };
    let mut attack = None;
    if category == Category::Security {
        attack = security_details(&fields, at, ci.as_deref(), &mut labels)?;
    }
    let fingerprint = match text(&fields, "kibana.alert.uuid")? {
        Some(uuid) => stable_hash(&["ecs", &uuid]),
        None => derived_fingerprint(&["ecs", &name, ci.as_deref().unwrap_or("")], &labels),
    };
    let id = match text(&fields, "event.id")? {
        Some(id) => id,
        None => event_id(&fingerprint, time, status),
    };
    fields
        .retain(|key, _| key == "message" || ATTRIBUTE_PREFIXES.iter().any(|p| key.starts_with(p)));
    if category == Category::Security {
        fields.extend(attack.map(|a| ("attack".to_owned(), a)));
        fields.insert("tool".to_owned(), Value::from(Format::Ecs.as_str()));
    }
    Ok(Event {
        id,
        source: Format::Ecs.as_str().to_owned(),
        time,
        ci,
        name,
        severity: severity.unwrap_or(Severity::Warning),
        status,
        category,
        fingerprint,
        labels,
        attributes: fields,
    })
}

/// The entity labels and the ATT&CK attribute of a security alert; see the module docs.
fn security_details(
    fields: &BTreeMap<String, Value>,
    at: At,
    host: Option<&str>,
    labels: &mut BTreeMap<String, String>,
) -> Result<Option<Value>, IngestError> {
    let first = |key: &str| -> Option<String> {
        match fields.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items.first()?.as_str().map(str::to_owned),
            _ => None,
        }
        .filter(|s| !s.trim().is_empty())
    };
    let entities = [
        ("host_ip", "host.ip"),
        ("user", "user.name"),
        ("src_ip", "source.ip"),
        ("dest_ip", "destination.ip"),
        ("process", "process.name"),
        ("container", "container.name"),
        ("container", "container.id"),
    ];
    if let Some(host) = host {
        labels.insert("host".to_owned(), host.to_owned());
    }
    for (label, key) in entities {
        if let Some(v) = first(key)
            && !labels.contains_key(label)
        {
            labels.insert(label.to_owned(), v);
        }
    }
    let mut tactics = std::collections::BTreeSet::new();
    let mut techniques = std::collections::BTreeSet::new();
    let strings = |key: &str| super::detection::strings(at, key, fields.get(key));
    for key in ["threat.tactic.id", "threat.tactic.name"] {
        tactics.extend(strings(key)?.iter().filter_map(|t| attack::tactic(t)));
    }
    for key in ["threat.technique.id", "threat.technique.subtechnique.id"] {
        techniques.extend(strings(key)?.iter().filter_map(|t| attack::technique_id(t)));
    }
    // Kibana's rule threat list: objects inside arrays, which `flatten` leaves as they are.
    if let Some(Value::Array(threats)) = fields.get("kibana.alert.rule.threat") {
        for threat in threats {
            for key in ["id", "name"] {
                let t = threat
                    .pointer(&format!("/tactic/{key}"))
                    .and_then(Value::as_str);
                tactics.extend(t.and_then(attack::tactic));
            }
            let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
            for technique in list(threat.get("technique")) {
                let mut ids = vec![technique.get("id").cloned()];
                ids.extend(
                    list(technique.get("subtechnique"))
                        .iter()
                        .map(|s| s.get("id").cloned()),
                );
                for id in ids.into_iter().flatten() {
                    techniques.extend(id.as_str().and_then(attack::technique_id));
                }
            }
        }
    }
    if tactics.is_empty() && techniques.is_empty() {
        return Ok(None);
    }
    let mut tactics: Vec<&attack::Tactic> = tactics.into_iter().collect();
    tactics.sort_by_key(|t| t.order);
    let ids: Vec<&str> = tactics.iter().map(|t| t.id).collect();
    Ok(Some(
        serde_json::json!({"tactics": ids, "techniques": techniques}),
    ))
}

/// The fields whose names start with `prefix`.
fn with_prefix<'f>(
    fields: &'f BTreeMap<String, Value>,
    prefix: &'f str,
) -> impl Iterator<Item = (&'f String, &'f Value)> {
    let from: (Bound<&str>, Bound<&str>) = (Bound::Included(prefix), Bound::Unbounded);
    fields
        .range::<str, _>(from)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

/// Whether the document describes a security threat; see the module docs.
fn is_security(fields: &BTreeMap<String, Value>) -> bool {
    let threat = with_prefix(fields, "threat.").next().is_some();
    let category = match fields.get("event.category") {
        Some(Value::String(c)) => SECURITY_CATEGORIES.contains(&c.as_str()),
        Some(Value::Array(cs)) => cs
            .iter()
            .any(|c| c.as_str().is_some_and(|c| SECURITY_CATEGORIES.contains(&c))),
        _ => false,
    };
    let siem = fields.get("kibana.alert.rule.producer") == Some(&Value::String("siem".to_owned()));
    threat || category || siem
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::ingest::parse;

    fn one(raw: &str) -> Event {
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::Ecs);
        let [e] = <[Event; 1]>::try_from(events).unwrap();
        e
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    #[test]
    fn nested_and_dotted_fields_read_alike() {
        let nested = one(
            r#"{"@timestamp":"2026-11-28T10:05:00Z","event":{"kind":"alert","severity":"high"},
                "rule":{"name":"Brute force"},"host":{"name":"vpn-1"},"service":{"name":"vpn"},
                "labels":{"site":"fra","rack":7}}"#,
        );
        let dotted = one(
            r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","event.severity":"high",
                "rule.name":"Brute force","host.name":"vpn-1","service.name":"vpn",
                "labels.site":"fra","labels":{"rack":7}}"#,
        );
        assert_eq!(nested, dotted);
        assert_eq!(nested.name, "Brute force");
        assert_eq!(nested.severity, Severity::Major);
        assert_eq!(nested.ci.as_deref(), Some("vpn-1"));
        assert_eq!(nested.labels["service"], "vpn");
        assert_eq!(nested.labels["rack"], "7");
        assert_eq!(nested.time, utc(10, 5));
        assert_eq!(nested.attributes["event.kind"], json!("alert"));
        assert!(!nested.attributes.contains_key("host.name"));
    }

    #[test]
    fn kibana_alerts_active_and_recovered_are_one_alert() {
        let doc = |status: &str, end: &str| {
            format!(
                r#"{{"@timestamp":"2026-11-28T10:30:00Z","kibana.alert.rule.name":"CPU high",
                    "kibana.alert.status":"{status}","kibana.alert.uuid":"u-1",
                    "kibana.alert.start":"2026-11-28T10:00:00Z"{end}}}"#
            )
        };
        let active = one(&doc("active", ""));
        assert_eq!((active.status, active.time), (Status::Firing, utc(10, 0)));
        let recovered = one(&doc(
            "recovered",
            r#","kibana.alert.end":"2026-11-28T10:20:00Z""#,
        ));
        assert_eq!(
            (recovered.status, recovered.time),
            (Status::Resolved, utc(10, 20))
        );
        assert_eq!(active.fingerprint, recovered.fingerprint);
        assert_eq!(active.fingerprint, stable_hash(&["ecs", "u-1"]));
        assert_ne!(active.id, recovered.id);
        let closed = one(
            r#"{"@timestamp":"2026-11-28T10:30:00Z","event.kind":"signal","event.action":"close",
                "rule.name":"X"}"#,
        );
        assert_eq!(
            (closed.status, closed.time),
            (Status::Resolved, utc(10, 30))
        );
    }

    #[test]
    fn threats_make_security_alerts() {
        let e = one(
            r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","rule.name":"X",
                "threat":{"tactic":{"name":"Credential Access"}},"event.severity":73}"#,
        );
        assert_eq!(e.category, Category::Security);
        assert_eq!(
            e.attributes["threat.tactic.name"],
            json!("Credential Access")
        );
        assert_eq!(e.severity, Severity::Warning, "a number is not read");
        let e = one(
            r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","rule.name":"X",
                "event.category":["network","intrusion_detection"]}"#,
        );
        assert_eq!(e.category, Category::Security);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let missing = [
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","rule.name":"X"}"#,
                "event.kind",
            ),
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert"}"#,
                "rule.name",
            ),
            (
                r#"{"@timestamp":null,"event.kind":"alert","rule.name":"X"}"#,
                "@timestamp",
            ),
        ];
        for (raw, field) in missing {
            let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, IngestError::MissingField { format: Format::Ecs, field: f } if f == field),
                "{raw}: {e}"
            );
        }
        let invalid = [
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"metric","rule.name":"X"}"#,
                "event.kind",
            ),
            (
                r#"{"@timestamp":"today","event.kind":"alert","rule.name":"X"}"#,
                "@timestamp",
            ),
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","rule":{"name":"X"},"rule.name":"Y"}"#,
                "rule.name",
            ),
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","kibana.alert.status":"open","rule.name":"X"}"#,
                "kibana.alert.status",
            ),
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","rule.name":["X"]}"#,
                "rule.name",
            ),
            (
                r#"{"@timestamp":"2026-11-28T10:05:00Z","event.kind":"alert","rule.name":"X","labels":{"a":[1]}}"#,
                "labels.a",
            ),
        ];
        for (raw, field) in invalid {
            let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, IngestError::InvalidValue { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
    }
}
