//! CloudEvents 1.0 in the JSON event format, structured mode (`application/cloudevents+json`),
//! one event per record, or a JSON array of them (batch mode,
//! `application/cloudevents-batch+json`), as specified at
//! <https://github.com/cloudevents/spec/blob/v1.0/json-format.md> (attributes:
//! <https://github.com/cloudevents/spec/blob/v1.0/spec.md>).
//!
//! CloudEvents says how an event is wrapped, not what it means: d2c reads its own fields from
//! `data` when `data` is a JSON object, with the meaning native events give them.
//!
//! | key | becomes |
//! |---|---|
//! | `specversion` (required) | must be `"1.0"` |
//! | `id`, `source` (required) | `id`: a hash of `cloudevents`, `source` and `id` (the spec makes only the pair unique); both also attributes `cloudevents.id`, `cloudevents.source` |
//! | `type` (required) | `name` when `data.name` is absent; decides the category (below); attribute `cloudevents.type` |
//! | `time` | `time`, RFC 3339. Optional in CloudEvents, required here: d2c cannot invent when something happened |
//! | `subject` | `ci` when `data.ci` is absent; attribute `cloudevents.subject` |
//! | `data.name`, `data.ci`, `data.fingerprint` | as in a native event |
//! | `data.severity` | as in a native event; default `warning`, `info` for a change |
//! | `data.status` | as in a native event; default `firing` |
//! | `data.category` | as in a native event; default by the rule below |
//! | `data.labels` | labels, as in a native event; `data.service` becomes label `service` |
//! | `data.attributes` | attributes (an object) |
//! | other keys of `data` | attributes, as sent (a deployment's `version`, `commit`, …) |
//! | `data` that is not an object | attribute `data`, as sent |
//!
//! Change rule: without `data.category`, an event is a `change` when one of the words of its
//! `type` (split at `.`, `/` and `:`) is `change`, `changed`, `deploy`, `deployed`,
//! `deployment`, `release`, `config` or `configuration`, any letter case
//! (`com.example.deployment.finished`, CDEvents' `dev.cdevents.service.deployed.0.1.1`,
//! `com.example.config.updated`); otherwise `availability`.
//!
//! Not read: extension attributes, `dataschema`, `data_base64`.
//!
//! Second pass: `payload.rs` notes `specversion` and counts a batch's elements; this parser
//! checks the count against the limit, then reads the text again into [`CloudEvent`]s.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::payload::{Found, Object, Seq, Text, TextMap, Top};
use super::sink::Sink;
use super::{At, Event, Format, IngestError, Limits, category_word, derived_fingerprint, reread};
use crate::model::{Category, Severity, Status, stable_hash};

/// The CloudEvents version this parser reads.
const SPEC_VERSION: &str = "1.0";

/// The words of a `type` that make an event a change; see the module docs.
const CHANGE_WORDS: [&str; 8] = [
    "change",
    "changed",
    "deploy",
    "deployed",
    "deployment",
    "release",
    "config",
    "configuration",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CloudEvent {
    specversion: Option<Text>,
    id: Option<Text>,
    source: Option<Text>,
    #[serde(rename = "type")]
    kind: Option<Text>,
    time: Option<Text>,
    subject: Option<Text>,
    data: Option<Value>,
}

pub(super) fn events(
    top: &Top,
    text: &str,
    limits: &Limits,
    out: &mut Sink,
) -> Result<(), IngestError> {
    let at = At::top(Format::CloudEvents);
    match top {
        Top::Object(_) => {
            at.too_many(1, limits)?;
            match reread::<Object<CloudEvent>>(text)? {
                Object(Ok(ce)) => out.push(event(ce, at)?),
                Object(Err(found)) => Err(not_an_event(at, found)),
            }
        }
        Top::Array(batch) => {
            // Counted by the first pass: the second never builds more than the limit allows.
            at.too_many(batch.total, limits)?;
            let batch = match reread::<Seq<Object<CloudEvent>>>(text)? {
                Seq(Ok(batch)) => batch,
                Seq(Err(found)) => return Err(not_an_event(at, found)),
            };
            out.reserve(batch.len());
            for (i, Object(ce)) in batch.into_iter().enumerate() {
                let at = At::item(Format::CloudEvents, "", i);
                out.push(event(ce.map_err(|found| not_an_event(at, found))?, at)?)?;
            }
            Ok(())
        }
        Top::Other(found) => Err(not_an_event(at, *found)),
    }
}

fn not_an_event(at: At, found: Found) -> IngestError {
    let detail =
        format!("expected a CloudEvent (a JSON object) or an array of them, found {found}");
    at.invalid("", detail)
}

fn event(ce: CloudEvent, at: At) -> Result<Event, IngestError> {
    let version = at.required("specversion", ce.specversion)?;
    if version != SPEC_VERSION {
        let detail = format!("d2c reads CloudEvents {SPEC_VERSION}, found {version:?}");
        return Err(at.invalid("specversion", detail));
    }
    let ce_id = at.required("id", ce.id)?;
    let ce_source = at.required("source", ce.source)?;
    let kind = at.required("type", ce.kind)?;
    let time = at
        .time("time", ce.time)?
        .ok_or_else(|| at.missing("time"))?;
    let subject = at.string("subject", ce.subject)?;

    let mut attributes = BTreeMap::new();
    let mut data = match ce.data {
        Some(Value::Object(data)) => data,
        Some(Value::Null) | None => Map::new(),
        Some(other) => {
            attributes.insert("data".to_owned(), other);
            Map::new()
        }
    };
    let mut take = |key: &str| data.remove(key);
    let name = at.string("data.name", take("name").and_then(Text::from_value))?;
    let severity = at.string("data.severity", take("severity").and_then(Text::from_value))?;
    let status = at.status("data.status", take("status").and_then(Text::from_value))?;
    let ci = at.string("data.ci", take("ci").and_then(Text::from_value))?;
    let service = at.string("data.service", take("service").and_then(Text::from_value))?;
    let category = at.string("data.category", take("category").and_then(Text::from_value))?;
    let fingerprint = at.string(
        "data.fingerprint",
        take("fingerprint").and_then(Text::from_value),
    )?;
    let mut labels = at.labels("data.labels", take("labels").and_then(labels_of))?;
    match take("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => attributes.extend(map),
        Some(other) => {
            let detail = format!("expected a JSON object, found {}", Found::of(&other));
            return Err(at.invalid("data.attributes", detail));
        }
    }
    attributes.extend(data);

    let category = match category {
        Some(word) => category_word(&word).ok_or_else(|| {
            let detail = format!(
                "expected availability, performance, capacity, security, change or other, \
                 found {word:?}"
            );
            at.invalid("data.category", detail)
        })?,
        None if is_change_type(&kind) => Category::Change,
        None => Category::default(),
    };
    let severity = match severity {
        Some(word) => Severity::parse_loose(&word).ok_or_else(|| {
            let detail = format!(
                "expected critical, major, minor, warning or info (or a synonym such as error, \
                 high, p1), found {word:?}"
            );
            at.invalid("data.severity", detail)
        })?,
        None if category == Category::Change => Severity::Info,
        None => Severity::Warning,
    };
    if let Some(service) = service {
        labels.insert("service".to_owned(), service);
    }
    let ci = ci.or_else(|| subject.clone());
    let name = name.unwrap_or_else(|| kind.clone());
    let fingerprint = fingerprint.unwrap_or_else(|| {
        derived_fingerprint(
            &["cloudevents", &name, ci.as_deref().unwrap_or("")],
            &labels,
        )
    });
    let id = stable_hash(&["cloudevents", &ce_source, &ce_id]);
    for (key, value) in [
        ("cloudevents.type", Some(kind)),
        ("cloudevents.source", Some(ce_source)),
        ("cloudevents.id", Some(ce_id)),
        ("cloudevents.subject", subject),
    ] {
        if let Some(value) = value {
            attributes.insert(key.to_owned(), Value::String(value));
        }
    }
    Ok(Event {
        id,
        source: Format::CloudEvents.as_str().to_owned(),
        time,
        ci,
        name,
        severity,
        status: status.unwrap_or(Status::Firing),
        category,
        fingerprint,
        labels,
        attributes,
    })
}

/// `data.labels` as the lenient reader would have read it: a map of values, or the type found.
fn labels_of(value: Value) -> Option<Object<TextMap>> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let null = || Text::Other(Found::Null);
            let mut out = TextMap::default();
            for (k, v) in map {
                out.insert(k, Text::from_value(v).unwrap_or_else(null));
            }
            Some(Object(Ok(out)))
        }
        other => Some(Object(Err(Found::of(&other)))),
    }
}

/// Whether a CloudEvents `type` names a change; see the module docs.
fn is_change_type(kind: &str) -> bool {
    kind.split(['.', '/', ':'])
        .any(|word| CHANGE_WORDS.iter().any(|c| word.eq_ignore_ascii_case(c)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ingest::parse;

    fn one(raw: &str) -> Event {
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::CloudEvents);
        let [e] = <[Event; 1]>::try_from(events).unwrap();
        e
    }

    fn ce(kind: &str, data: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"e-1","source":"/ci/pipelines","type":"{kind}",
                "time":"2026-11-28T10:00:00Z","subject":"payments-api","data":{data}}}"#
        )
    }

    #[test]
    fn change_types_become_change_events() {
        for kind in [
            "com.example.deployment.finished",
            "dev.cdevents.service.deployed.0.1.1",
            "com.example.Config.updated",
            "io.example:change",
        ] {
            let e = one(&ce(kind, r#"{"version":"1.4.2"}"#));
            assert_eq!(e.category, Category::Change, "{kind}");
            assert_eq!(e.severity, Severity::Info, "{kind}");
            assert_eq!(e.name, kind);
            assert_eq!(e.ci.as_deref(), Some("payments-api"), "from subject");
            assert_eq!(e.attributes["version"], json!("1.4.2"));
        }
        for kind in [
            "com.github.pull_request.opened",
            "com.example.changes",
            "x.redeploy",
        ] {
            let e = one(&ce(kind, "null"));
            assert_eq!(e.category, Category::Availability, "{kind}");
        }
        let e = one(&ce("com.example.alert", r#"{"category":"change"}"#));
        assert_eq!(e.category, Category::Change, "data.category wins");
    }

    #[test]
    fn data_carries_native_fields() {
        let e = one(&ce(
            "com.example.alert.fired",
            r#"{"name":"HighErrorRate","severity":"p1","status":"resolved","ci":"db1",
                "service":"payments","labels":{"env":"prod"},"attributes":{"runbook":"r"},
                "extra":[1,2]}"#,
        ));
        assert_eq!(e.name, "HighErrorRate");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(e.ci.as_deref(), Some("db1"));
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.labels["env"], "prod");
        assert_eq!(e.attributes["runbook"], json!("r"));
        assert_eq!(e.attributes["extra"], json!([1, 2]));
        assert_eq!(
            e.attributes["cloudevents.type"],
            json!("com.example.alert.fired")
        );
        assert_eq!(e.id, stable_hash(&["cloudevents", "/ci/pipelines", "e-1"]));
        assert_eq!(
            e.fingerprint,
            derived_fingerprint(&["cloudevents", "HighErrorRate", "db1"], &e.labels)
        );
        let text = one(&ce("com.example.note", r#""plain text""#));
        assert_eq!(text.attributes["data"], json!("plain text"));
    }

    #[test]
    fn errors_name_the_attribute_and_the_batch_element() {
        let raw = r#"[{"specversion":"1.0","id":"1","source":"s","type":"t",
                       "time":"2026-11-28T10:00:00Z"},
                      {"specversion":"1.0","id":"2","source":"s","type":"t"}]"#;
        let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, IngestError::MissingField { format: Format::CloudEvents, field }
                if field == "[1].time"),
            "{e}"
        );
        let cases = [
            (
                r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
                "specversion",
            ),
            (&ce("t", r#"{"severity":"urgent"}"#), "data.severity"),
            (&ce("t", r#"{"labels":{"a":{}}}"#), "data.labels.a"),
            (&ce("t", r#"{"labels":"x"}"#), "data.labels"),
            (&ce("t", r#"{"attributes":1}"#), "data.attributes"),
            (&ce("t", r#"{"status":"open"}"#), "data.status"),
            (&format!("[{},3]", ce("t", "null")), "[1]"),
        ];
        for (raw, field) in cases {
            let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, IngestError::InvalidValue { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn a_batch_over_the_limit_is_refused_before_the_second_pass() {
        let limits = Limits {
            max_events_per_record: 1,
            ..Limits::default()
        };
        let e = parse(br#"[{"specversion":"1.0"},{}]"#, &limits).unwrap_err();
        assert_eq!(e.reason(), "too_many_events");
        assert!(e.to_string().contains("send smaller batches"), "{e}");
    }
}
