//! PagerDuty Events API v2 alert events, the JSON a tool posts to
//! `https://events.pagerduty.com/v2/enqueue`, as documented at
//! <https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>: one record is one
//! event, `trigger`, `acknowledge` or `resolve`, about the alert named by its `dedup_key`.
//! d2c accepts it so that a tool already wired to PagerDuty can send the same events here.
//!
//! | key | becomes |
//! |---|---|
//! | `event_action` (required) | `trigger` and `acknowledge`: status `firing`; `resolve`: `resolved`. An acknowledge also sets attribute `acknowledged: true` (d2c's statuses are only firing and resolved) and gets an id of its own |
//! | `dedup_key` | fingerprint: a hash of `pagerduty` and the key. Required for acknowledge and resolve. A trigger without one gets a hash of `pagerduty`, `name`, `ci` and the labels, as native events do |
//! | `payload.timestamp` | `time` (RFC 3339; PagerDuty's `2015-07-17T08:42:58.315+0000` is read too). Required, see below |
//! | `payload.summary` | attribute `summary`; the name when `payload.class` is absent. Required for a trigger |
//! | `payload.class` | `name` (the kind of problem, e.g. `ping failure`), and label `class` |
//! | `payload.source` | `ci` (the affected system, e.g. a host name). Required for a trigger |
//! | `payload.severity` | `critical`, `error` (→ major), `warning` or `info`. Required for a trigger; `warning` on an acknowledge or resolve without one |
//! | `payload.component`, `payload.group` | labels `component`, `group` |
//! | `payload.custom_details`, `links`, `images`, `client`, `client_url` | attributes of those names, as sent |
//! | `routing_key` | not kept: it is the credential of a PagerDuty integration |
//!
//! Time: PagerDuty stamps events on arrival and its resolve and acknowledge events carry only
//! `dedup_key`. d2c orders events by the time they happened and must give the same events for
//! the same record, so it cannot use its clock: every event needs `payload.timestamp` (or, for
//! senders whose resolve has no `payload`, a top-level `timestamp`), and one without is refused
//! with `missing_field` naming `payload.timestamp`.
//!
//! The name of an acknowledge or resolve without `payload` is its `dedup_key`. A trigger sent
//! without `dedup_key` cannot be resolved here later: PagerDuty makes up a key for it, and the
//! resolve carries that key, which d2c never saw. Give triggers a `dedup_key`.
//!
//! Second pass: `payload.rs` only notes `routing_key`/`event_action`; this parser reads the
//! text again into [`Request`] (see `payload.rs` for why).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::payload::{Object, Text};
use super::{At, Event, Format, IngestError, Limits, derived_fingerprint, event_id, reread};
use crate::model::{Severity, Status, stable_hash};

/// The keys d2c reads; others (`routing_key` among them) are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    event_action: Option<Text>,
    dedup_key: Option<Text>,
    payload: Option<Object<Payload>>,
    /// Not PagerDuty's: for resolve and acknowledge events sent without `payload`.
    timestamp: Option<Text>,
    client: Option<Text>,
    client_url: Option<Text>,
    links: Option<Value>,
    images: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    summary: Option<Text>,
    source: Option<Text>,
    severity: Option<Text>,
    timestamp: Option<Text>,
    component: Option<Text>,
    group: Option<Text>,
    class: Option<Text>,
    custom_details: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::PagerDuty);
    let request = match reread::<Object<Request>>(text)? {
        Object(Ok(request)) => request,
        Object(Err(found)) => {
            let detail = format!("expected a JSON object (one PagerDuty event), found {found}");
            return Err(at.invalid("", detail));
        }
    };
    at.too_many(1, limits)?;
    Ok(vec![event(request, at)?])
}

fn event(r: Request, at: At) -> Result<Event, IngestError> {
    let action = match at.required("event_action", r.event_action)?.as_str() {
        a if a.eq_ignore_ascii_case("trigger") => Action::Trigger,
        a if a.eq_ignore_ascii_case("acknowledge") => Action::Acknowledge,
        a if a.eq_ignore_ascii_case("resolve") => Action::Resolve,
        other => {
            let detail = format!("expected trigger, acknowledge or resolve, found {other:?}");
            return Err(at.invalid("event_action", detail));
        }
    };
    let p = match r.payload {
        None => Payload::default(),
        Some(Object(Ok(payload))) => payload,
        Some(Object(Err(found))) => {
            return Err(at.invalid("payload", format!("expected an object, found {found}")));
        }
    };
    let dedup_key = at.string("dedup_key", r.dedup_key)?;
    if action != Action::Trigger && dedup_key.is_none() {
        return Err(at.missing("dedup_key"));
    }
    let trigger = action == Action::Trigger;
    let summary = at.string("payload.summary", p.summary)?;
    let ci = at.string("payload.source", p.source)?;
    let severity = match at.string("payload.severity", p.severity)? {
        Some(word) => severity(&word).ok_or_else(|| {
            let detail = format!("expected critical, error, warning or info, found {word:?}");
            at.invalid("payload.severity", detail)
        })?,
        None if trigger => return Err(at.missing("payload.severity")),
        None => Severity::Warning,
    };
    if trigger && summary.is_none() {
        return Err(at.missing("payload.summary"));
    }
    if trigger && ci.is_none() {
        return Err(at.missing("payload.source"));
    }
    let time = match at.time("payload.timestamp", p.timestamp)? {
        Some(time) => time,
        None => at
            .time("timestamp", r.timestamp)?
            .ok_or_else(|| at.missing("payload.timestamp"))?,
    };
    let class = at.string("payload.class", p.class)?;
    let mut labels = BTreeMap::new();
    for (key, value) in [
        ("component", at.string("payload.component", p.component)?),
        ("group", at.string("payload.group", p.group)?),
        ("class", class.clone()),
    ] {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value);
        }
    }
    // A trigger always has a summary and the others a dedup_key, checked above.
    let name = class
        .or_else(|| summary.clone())
        .or_else(|| dedup_key.clone())
        .unwrap_or_default();
    let status = match action {
        Action::Resolve => Status::Resolved,
        Action::Trigger | Action::Acknowledge => Status::Firing,
    };
    let fingerprint = match &dedup_key {
        Some(key) => stable_hash(&["pagerduty", key]),
        None => derived_fingerprint(&["pagerduty", &name, ci.as_deref().unwrap_or("")], &labels),
    };
    let mut id = event_id(&fingerprint, time, status);
    if action == Action::Acknowledge {
        // Not the trigger's id: dedup must not take the acknowledgement for a repeat of it.
        id = stable_hash(&[&id, "acknowledge"]);
    }
    let mut attributes = BTreeMap::new();
    let texts = [
        ("summary", summary),
        ("dedup_key", dedup_key),
        ("client", at.string("client", r.client)?),
        ("client_url", at.string("client_url", r.client_url)?),
    ];
    for (key, value) in texts {
        if let Some(value) = value {
            attributes.insert(key.to_owned(), Value::String(value));
        }
    }
    let values = [
        ("custom_details", p.custom_details),
        ("links", r.links),
        ("images", r.images),
    ];
    for (key, value) in values {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            attributes.insert(key.to_owned(), value);
        }
    }
    if action == Action::Acknowledge {
        attributes.insert("acknowledged".to_owned(), Value::Bool(true));
    }
    Ok(Event {
        id,
        source: Format::PagerDuty.as_str().to_owned(),
        time,
        ci,
        name,
        severity,
        status,
        category: Default::default(),
        fingerprint,
        labels,
        attributes,
    })
}

/// PagerDuty's four severities, any letter case.
fn severity(word: &str) -> Option<Severity> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "error" => Severity::Major,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ingest::{parse, parse_as};

    fn one(raw: &str) -> Event {
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::PagerDuty);
        let [e] = <[Event; 1]>::try_from(events).unwrap();
        e
    }

    fn err(raw: &str) -> IngestError {
        parse(raw.as_bytes(), &Limits::default()).unwrap_err()
    }

    const TRIGGER: &str = r#"{"routing_key":"r","event_action":"trigger","dedup_key":"disk-db1",
        "payload":{"summary":"disk full on db1","source":"db1","severity":"error",
        "timestamp":"2026-11-28T10:00:00Z"}}"#;

    #[test]
    fn trigger_acknowledge_and_resolve_are_one_alert() {
        let trigger = one(TRIGGER);
        assert_eq!(trigger.status, Status::Firing);
        assert_eq!(trigger.severity, Severity::Major);
        assert_eq!(
            trigger.name, "disk full on db1",
            "the summary, without a class"
        );
        assert_eq!(trigger.fingerprint, stable_hash(&["pagerduty", "disk-db1"]));
        let ack = one(
            r#"{"routing_key":"r","event_action":"acknowledge","dedup_key":"disk-db1",
                "timestamp":"2026-11-28T10:00:00Z"}"#,
        );
        assert_eq!(ack.status, Status::Firing);
        assert_eq!(ack.attributes["acknowledged"], json!(true));
        assert_eq!(ack.fingerprint, trigger.fingerprint);
        assert_ne!(
            ack.id, trigger.id,
            "same time and status, still another event"
        );
        assert_eq!(ack.name, "disk-db1");
        let resolve = one(
            r#"{"routing_key":"r","event_action":"resolve","dedup_key":"disk-db1",
                "payload":{"timestamp":"2026-11-28T10:30:00+00:00"}}"#,
        );
        assert_eq!(resolve.status, Status::Resolved);
        assert_eq!(resolve.fingerprint, trigger.fingerprint);
        assert_eq!(resolve.severity, Severity::Warning);
        assert!(!resolve.attributes.contains_key("acknowledged"));
    }

    #[test]
    fn a_trigger_without_dedup_key_gets_a_derived_fingerprint() {
        let raw = r#"{"event_action":"trigger","payload":{"summary":"s","source":"h1",
            "severity":"info","class":"ping failure","group":"edge",
            "timestamp":"2026-11-28T10:00:00Z"}}"#;
        let e = one(raw);
        assert_eq!(e.name, "ping failure");
        assert_eq!(e.labels["group"], "edge");
        assert_eq!(
            e.fingerprint,
            stable_hash(&[
                "pagerduty",
                "ping failure",
                "h1",
                "class=ping failure",
                "group=edge"
            ])
        );
        assert_eq!(e, one(raw), "the same record gives the same event");
    }

    #[test]
    fn the_time_is_never_invented() {
        let e = err(r#"{"event_action":"resolve","dedup_key":"k"}"#);
        assert_eq!(e.reason(), "missing_field");
        assert!(
            e.to_string()
                .starts_with("pagerduty payload: payload.timestamp is missing; d2c orders"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let missing = [
            (r#"{"routing_key":"r","dedup_key":"k"}"#, "event_action"),
            (
                r#"{"event_action":"resolve","timestamp":"2026-11-28T10:00:00Z"}"#,
                "dedup_key",
            ),
            (
                r#"{"event_action":"trigger","payload":{"source":"h","severity":"info",
                    "timestamp":"2026-11-28T10:00:00Z"}}"#,
                "payload.summary",
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":"h",
                    "timestamp":"2026-11-28T10:00:00Z"}}"#,
                "payload.severity",
            ),
        ];
        for (raw, field) in missing {
            let e = err(raw);
            assert!(
                matches!(&e, IngestError::MissingField { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
        let invalid = [
            (r#"{"event_action":"open","dedup_key":"k"}"#, "event_action"),
            (
                r#"{"event_action":"resolve","dedup_key":"k","payload":[]}"#,
                "payload",
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":"h",
                    "severity":"major","timestamp":"2026-11-28T10:00:00Z"}}"#,
                "payload.severity",
            ),
            (
                r#"{"event_action":"resolve","dedup_key":"k","payload":{"timestamp":"soon"}}"#,
                "payload.timestamp",
            ),
            (r#"{"event_action":"resolve","dedup_key":7}"#, "dedup_key"),
        ];
        for (raw, field) in invalid {
            let e = err(raw);
            assert!(
                matches!(&e, IngestError::InvalidValue { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
        let e = parse_as(Format::PagerDuty, b"[]", &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, IngestError::InvalidValue { field, .. } if field == "the top level"),
            "{e}"
        );
    }
}
