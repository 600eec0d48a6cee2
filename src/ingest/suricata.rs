//! Suricata's EVE JSON log (`eve.json`, one event per line), alert events:
//! <https://docs.suricata.io/en/latest/output/eve/eve-json-format.html>. Detected by
//! `event_type`.
//!
//! Only `event_type: alert` records are detections. Every other EVE type (`flow`, `dns`,
//! `http`, `tls`, `fileinfo`, `anomaly`, `stats`, …) is traffic metadata, not a finding: the
//! record is accepted and gives no event (counted as consumed, never sent to the DLQ), so a
//! sensor can ship its whole `eve.json` without flooding the correlator.
//!
//! | field | becomes |
//! |---|---|
//! | `alert.signature` (required) | `name` |
//! | `alert.signature_id` | label `rule_id` |
//! | `timestamp` (required) | `time`; Suricata writes `2026-11-28T10:00:00.123456+0000` |
//! | `alert.severity` | `severity`: 1 major, 2 minor, 3 warning, 4 and above info (Suricata's 1 is its highest); default warning |
//! | `src_ip` / `dest_ip` | labels `src_ip` / `dest_ip` |
//! | `alert.metadata.mitre_tactic_id`, `mitre_tactic_name` | ATT&CK tactics (ids or names, e.g. `Initial_Access`) |
//! | `alert.metadata.mitre_technique_id` | ATT&CK techniques |
//! | `alert.category`, `alert.action`, `alert.metadata`, `proto`, `src_port`, `dest_port`, `flow_id`, `app_proto` | attributes of the same names (`alert_category`, `alert_action`, `alert_metadata` for the `alert.*` ones) |
//! | `host` | attribute `sensor`: the name of the Suricata sensor, not of the attacked host |
//!
//! There is no host label: a network sensor sees addresses. The security correlator takes the
//! destination of an alert as the attacked host (see `correlate::security`).

use serde_json::{Map, Value};

use super::detection::{Detection, at_path, loose_time, object, scalar, strings};
use super::{At, Event, Format, IngestError, Limits, reread};
use crate::model::Severity;

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::Suricata);
    let doc = object(at, reread::<Value>(text)?, "one EVE record")?;
    let kind =
        scalar(at, "event_type", doc.get("event_type"))?.ok_or_else(|| at.missing("event_type"))?;
    if kind != "alert" {
        return Ok(Vec::new());
    }
    at.too_many(1, limits)?;
    Ok(vec![event(doc, at)?])
}

fn event(mut doc: Map<String, Value>, at: At) -> Result<Event, IngestError> {
    let alert = match doc.remove("alert") {
        Some(Value::Object(alert)) => Value::Object(alert),
        None | Some(Value::Null) => return Err(at.missing("alert")),
        Some(other) => {
            let found = super::payload::Found::of(&other);
            return Err(at.invalid("alert", format!("expected an object, found {found}")));
        }
    };
    let get = |path: &[&str]| at_path(&alert, path);
    let rule = scalar(at, "alert.signature", get(&["signature"]))?
        .ok_or_else(|| at.missing("alert.signature"))?;
    let time = loose_time(at, "timestamp", doc.get("timestamp"))?
        .ok_or_else(|| at.missing("timestamp"))?;
    let severity = match get(&["severity"]) {
        None | Some(Value::Null) => Severity::Warning,
        Some(v) => match v.as_u64() {
            Some(1) => Severity::Major,
            Some(2) => Severity::Minor,
            Some(3) => Severity::Warning,
            Some(n) if n >= 4 => Severity::Info,
            _ => {
                let detail = format!("expected a number from 1 (highest) to 4, found {v}");
                return Err(at.invalid("alert.severity", detail));
            }
        },
    };
    let mut d = Detection::new(Format::Suricata, rule, time, severity);
    d.rule_id = scalar(at, "alert.signature_id", get(&["signature_id"]))?;
    d.entity("src_ip", scalar(at, "src_ip", doc.get("src_ip"))?);
    d.entity("dest_ip", scalar(at, "dest_ip", doc.get("dest_ip"))?);
    for key in ["mitre_tactic_id", "mitre_tactic_name"] {
        let field = format!("alert.metadata.{key}");
        for t in strings(at, &field, get(&["metadata", key]))? {
            d.tactic_text(&t);
        }
    }
    let field = "alert.metadata.mitre_technique_id";
    for t in strings(at, field, get(&["metadata", "mitre_technique_id"]))? {
        d.technique_text(&t);
    }
    for (from, to) in [
        ("category", "alert_category"),
        ("action", "alert_action"),
        ("metadata", "alert_metadata"),
    ] {
        if let Some(v) = get(&[from]) {
            d.attributes.insert(to.into(), v.clone());
        }
    }
    for key in ["proto", "src_port", "dest_port", "flow_id", "app_proto"] {
        if let Some(v) = doc.remove(key) {
            d.attributes.insert(key.into(), v);
        }
    }
    if let Some(sensor) = doc.remove("host") {
        d.attributes.insert("sensor".into(), sensor);
    }
    Ok(d.into_event())
}
