//! The native format: d2c's own JSON event, for tools that can send any JSON (scripts, log
//! shippers, webhooks with templates). One record holds one event object, or a JSON array of
//! them (a batch; an empty array is a batch of none).
//!
//! ```json
//! {"name":"HighErrorRate","time":"2026-11-28T10:00:00Z","severity":"critical","status":"firing",
//!  "ci":"db-primary-1","source":"nagios","category":"availability",
//!  "labels":{"service":"payments"},"attributes":{"summary":"5xx above 5% for 5 minutes"}}
//! ```
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `name` | yes | Short name of the condition, e.g. `HighErrorRate`. Events with the same `name`, `ci` and `labels` are updates of one alert. |
//! | `time` | yes | When the condition started (firing) or ended (resolved), RFC 3339 with an offset: `2026-11-28T10:00:00Z`, `2026-11-28T11:00:00+01:00`. |
//! | `status` | no | `firing` (also `problem`) or `resolved` (also `ok`), any letter case. Default `firing`. |
//! | `severity` | no | `critical`, `major`, `minor`, `warning` or `info`, or a common synonym (`error`, `high`, `p1`, `crit`, `notice`, …). Default `warning`. An unknown word is refused. |
//! | `ci` | no | The configuration item the event is about, e.g. a host name. Topology can also find it from `labels`. |
//! | `source` | no | The tool that sent the event, e.g. `nagios`. Default `native`. |
//! | `category` | no | `availability`, `performance`, `capacity`, `security`, `change` or `other`. Default `availability`. |
//! | `fingerprint` | no | Identifies the alert this event updates. Default: a hash of `native`, `name`, `ci` and the labels, so leave it out unless the tool has its own alert id. |
//! | `id` | no | The event's id in the sending tool. Default: a hash of fingerprint, time and status, so a record sent twice gives the same id. |
//! | `labels` | no | Object of strings: what topology and correlation match on (`service`, `host`, …). Numbers and booleans are taken as their text. |
//! | `attributes` | no | Object of any JSON: details carried along but not interpreted (summary, runbook URL, …). |
//!
//! `null` counts as absent, and so does `""` for the string fields. Other keys are ignored.

use std::collections::BTreeMap;

use super::payload::{Envelope, Object, Top};
use super::sink::Sink;
use super::{At, Event, Format, IngestError, Limits, category_word, derived_fingerprint, event_id};
use crate::model::{Category, Severity, Status};

pub(super) fn events(top: Top, limits: &Limits, out: &mut Sink) -> Result<(), IngestError> {
    let at = At::top(Format::Native);
    match top {
        Top::Object(envelope) => {
            at.too_many(1, limits)?;
            out.push(event(envelope, at)?)
        }
        Top::Array(batch) => {
            at.too_many(batch.total, limits)?;
            out.reserve(batch.items.len());
            for (i, Object(item)) in batch.items.into_iter().enumerate() {
                let at = At::item(Format::Native, "", i);
                match item {
                    Ok(envelope) => out.push(event(envelope, at)?)?,
                    Err(found) => {
                        return Err(
                            at.invalid("", format!("expected an event object, found {found}"))
                        );
                    }
                }
            }
            Ok(())
        }
        Top::Other(found) => Err(at.invalid(
            "",
            format!("expected a JSON object or an array of objects, found {found}"),
        )),
    }
}

fn event(e: Envelope, at: At) -> Result<Event, IngestError> {
    let name = at.required("name", e.name)?;
    let time = at.time("time", e.time)?.ok_or_else(|| at.missing("time"))?;
    let status = at.status("status", e.status)?.unwrap_or(Status::Firing);
    let severity = match at.string("severity", e.severity)? {
        None => Severity::Warning,
        Some(word) => Severity::parse_loose(&word).ok_or_else(|| {
            let detail = format!(
                "expected critical, major, minor, warning or info (or a synonym such as \
                 error, high, p1), found {word:?}"
            );
            at.invalid("severity", detail)
        })?,
    };
    let category = match at.string("category", e.category)? {
        None => Category::default(),
        Some(word) => category_word(&word).ok_or_else(|| {
            let detail = format!(
                "expected availability, performance, capacity, security, change or other, \
                 found {word:?}"
            );
            at.invalid("category", detail)
        })?,
    };
    let ci = at.string("ci", e.ci)?;
    let source = at.string("source", e.source)?;
    let labels = at.labels("labels", e.labels)?;
    let attributes = match e.attributes {
        None => BTreeMap::new(),
        Some(Object(Ok(map))) => map,
        Some(Object(Err(found))) => {
            let detail = format!("expected a JSON object, found {found}");
            return Err(at.invalid("attributes", detail));
        }
    };
    let fingerprint = match at.string("fingerprint", e.fingerprint)? {
        Some(fingerprint) => fingerprint,
        None => fingerprint_of(&name, ci.as_deref(), &labels),
    };
    let id = match at.string("id", e.id)? {
        Some(id) => id,
        None => event_id(&fingerprint, time, status),
    };
    Ok(Event {
        id,
        source: source.unwrap_or_else(|| Format::Native.as_str().to_owned()),
        time,
        ci,
        name,
        severity,
        status,
        category,
        fingerprint,
        labels,
        attributes,
    })
}

/// The fingerprint of an event that brought none: `native`, name, ci and `k=v` labels.
fn fingerprint_of(name: &str, ci: Option<&str>, labels: &BTreeMap<String, String>) -> String {
    derived_fingerprint(&["native", name, ci.unwrap_or("")], labels)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::ingest::{parse, parse_as};
    use crate::model::stable_hash;

    fn one(json: &str) -> Event {
        let events = parse_as(Format::Native, json.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(events.len(), 1);
        events.into_iter().next().unwrap()
    }

    fn err(json: &str) -> IngestError {
        parse_as(Format::Native, json.as_bytes(), &Limits::default()).unwrap_err()
    }

    const MINIMAL: &str = r#"{"name":"HighErrorRate","time":"2026-11-28T10:00:00Z"}"#;

    #[test]
    fn maps_every_field() {
        let e = one(
            r#"{"name":"HighErrorRate","time":"2026-11-28T11:00:00+01:00","severity":"critical",
                "status":"resolved","ci":"db-primary-1","source":"nagios","category":"capacity",
                "fingerprint":"fp-1","id":"ev-1","labels":{"service":"payments","port":5432},
                "attributes":{"summary":"5xx above 5%","n":[1,2]},"unknown":{"ignored":true}}"#,
        );
        assert_eq!(e.name, "HighErrorRate");
        assert_eq!(
            e.time,
            Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
        );
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(e.ci.as_deref(), Some("db-primary-1"));
        assert_eq!(e.source, "nagios");
        assert_eq!(e.category, Category::Capacity);
        assert_eq!(e.fingerprint, "fp-1");
        assert_eq!(e.id, "ev-1");
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.labels["port"], "5432", "numbers are taken as their text");
        assert_eq!(e.attributes["summary"], json!("5xx above 5%"));
        assert_eq!(e.attributes["n"], json!([1, 2]));
    }

    #[test]
    fn defaults_for_a_minimal_event() {
        let e = one(MINIMAL);
        assert_eq!(e.status, Status::Firing);
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.category, Category::Availability);
        assert_eq!(e.source, "native");
        assert_eq!(e.ci, None);
        assert!(e.labels.is_empty() && e.attributes.is_empty());
        assert_eq!(e.fingerprint, stable_hash(&["native", "HighErrorRate", ""]));
        assert_eq!(e.id, event_id(&e.fingerprint, e.time, Status::Firing));
    }

    #[test]
    fn null_and_empty_strings_count_as_absent() {
        let e = one(
            r#"{"name":"X","time":"2026-11-28T10:00:00Z","ci":"","source":null,"severity":null,
                "fingerprint":"","id":"","labels":null}"#,
        );
        assert_eq!((e.ci, e.source.as_str()), (None, "native"));
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.fingerprint, stable_hash(&["native", "X", ""]));
    }

    #[test]
    fn loose_words_for_status_and_severity() {
        let with = |extra: &str| {
            one(&format!(
                r#"{{"name":"X","time":"2026-11-28T10:00:00Z",{extra}}}"#
            ))
        };
        assert_eq!(with(r#""status":"OK""#).status, Status::Resolved);
        assert_eq!(with(r#""status":"problem""#).status, Status::Firing);
        assert_eq!(with(r#""severity":"P1""#).severity, Severity::Critical);
        assert_eq!(with(r#""severity":"error""#).severity, Severity::Major);
        assert_eq!(
            with(r#""category":"Security""#).category,
            Category::Security
        );
    }

    #[test]
    fn fingerprint_is_stable_and_depends_on_name_ci_and_labels() {
        let fp = |json: &str| one(json).fingerprint;
        let base =
            r#"{"name":"X","time":"2026-11-28T10:00:00Z","ci":"h1","labels":{"a":"1","b":"2"}}"#;
        assert_eq!(fp(base), fp(base));
        // Label order, time, status and severity do not change which alert an event updates.
        assert_eq!(
            fp(base),
            fp(
                r#"{"name":"X","time":"2026-11-29T10:00:00Z","status":"resolved","severity":"info",
                   "ci":"h1","labels":{"b":"2","a":"1"}}"#
            )
        );
        assert_ne!(
            fp(base),
            fp(
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","ci":"h1","labels":{"a":"1","b":"3"}}"#
            )
        );
        assert_ne!(
            fp(base),
            fp(
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","ci":"h2","labels":{"a":"1","b":"2"}}"#
            )
        );
        assert_ne!(
            fp(base),
            fp(
                r#"{"name":"Y","time":"2026-11-28T10:00:00Z","ci":"h1","labels":{"a":"1","b":"2"}}"#
            )
        );
    }

    #[test]
    fn id_differs_between_firing_and_resolved_and_ignores_the_offset_spelling() {
        let a = one(r#"{"name":"X","time":"2026-11-28T10:00:00Z"}"#);
        let b = one(r#"{"name":"X","time":"2026-11-28T11:00:00+01:00"}"#);
        let c = one(r#"{"name":"X","time":"2026-11-28T10:00:00Z","status":"resolved"}"#);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn batch_gives_one_event_per_element_in_order() {
        let raw = r#"[{"name":"A","time":"2026-11-28T10:00:00Z"},
                      {"name":"B","time":"2026-11-28T10:00:01Z","status":"resolved"}]"#;
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::Native);
        let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(
            parse(b"[]", &Limits::default()).unwrap(),
            (Format::Native, vec![])
        );
    }

    #[test]
    fn missing_name_and_time_are_named() {
        let e = err(r#"{"time":"2026-11-28T10:00:00Z"}"#);
        assert_eq!(e.reason(), "missing_field");
        assert_eq!(
            e.to_string(),
            "native payload: name is missing; every native event needs a name, e.g. \"HighErrorRate\""
        );
        let e = err(r#"{"name":"X"}"#);
        assert!(
            matches!(&e, IngestError::MissingField { field, .. } if field == "time"),
            "{e}"
        );
        let e = err(r#"[{"name":"A","time":"2026-11-28T10:00:00Z"},{"name":"B"}]"#);
        assert!(
            matches!(&e, IngestError::MissingField { field, .. } if field == "[1].time"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_named_with_what_was_expected() {
        let cases = [
            (r#"{"name":"X","time":"yesterday"}"#, "time", "RFC 3339"),
            (
                r#"{"name":"X","time":1764324000}"#,
                "time",
                "found a number",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","severity":"urgent"}"#,
                "severity",
                "\"urgent\"",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","status":"open"}"#,
                "status",
                "\"open\"",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","category":"db"}"#,
                "category",
                "\"db\"",
            ),
            (
                r#"{"name":5,"time":"2026-11-28T10:00:00Z"}"#,
                "name",
                "expected a string, found a number",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","labels":{"a":{}}}"#,
                "labels.a",
                "found an object",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","labels":[]}"#,
                "labels",
                "found an array",
            ),
            (
                r#"{"name":"X","time":"2026-11-28T10:00:00Z","attributes":"s"}"#,
                "attributes",
                "found a string",
            ),
            (
                r#"[{"name":"X","time":"2026-11-28T10:00:00Z"},7]"#,
                "[1]",
                "found a number",
            ),
        ];
        for (json, field, detail) in cases {
            let e = err(json);
            assert_eq!(e.reason(), "invalid_value", "{json}");
            let IngestError::InvalidValue { field: f, .. } = &e else {
                unreachable!()
            };
            assert_eq!(f, field, "{json}");
            assert!(e.to_string().contains(detail), "{json}: {e}");
        }
    }

    #[test]
    fn parse_as_native_names_the_problem_with_the_top_level() {
        let e = err(r#""just a string""#);
        assert_eq!(
            e.to_string(),
            "native payload: the top level is invalid: expected a JSON object or an array of \
             objects, found a string"
        );
    }
}
