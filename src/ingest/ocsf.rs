//! OCSF Detection Finding events (class 2004, OCSF 1.1 and later), as Amazon Security Lake,
//! AWS Security Hub and other OCSF producers emit them:
//! <https://schema.ocsf.io/classes/detection_finding>. Detected by `class_uid`; a record of
//! another class is refused with a reason (d2c reads findings, not every OCSF event).
//!
//! | field | becomes |
//! |---|---|
//! | `class_uid` (required) | must be `2004` |
//! | `finding_info.title`, else `finding_info.analytic.name` (one required) | `name` |
//! | `finding_info.analytic.uid` | label `rule_id` |
//! | `time` (required) | `time`: milliseconds since 1970 (OCSF's `timestamp_t`); `time_dt` (RFC 3339) is read when `time` is absent |
//! | `severity_id` | `severity`: 1 info, 2 warning (Low), 3 minor (Medium), 4 major (High), 5 and 6 critical (Critical, Fatal); 0, 99 or absent: the `severity` word read loosely, else warning |
//! | `status_id` 4 or `status` `Resolved` | status resolved; else firing |
//! | `device.hostname`, else `device.name` | label `host` (and `ci`) |
//! | `device.ip` | label `host_ip` |
//! | `actor.user.name` | label `user` |
//! | `actor.process.name`, else `process.name` | label `process` |
//! | `device.container.name`, else `container.name` | label `container` |
//! | `src_endpoint.ip` / `dst_endpoint.ip` | labels `src_ip` / `dest_ip` |
//! | `finding_info.attacks[]` (also a top-level `attacks[]`, OCSF 1.0) | `tactic.uid` or `tactic.name` (and `tactics[]`) ATT&CK tactics; `technique.uid`, `sub_technique.uid` techniques |
//! | `finding_info.uid`, else `metadata.uid` | `id` |
//! | `message`, `finding_info.desc`, `metadata.product.name` | attributes `message`, `description`, `product` |

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::detection::{Detection, at_path, loose_time, object, scalar};
use super::{At, Event, Format, IngestError, Limits, reread};
use crate::model::{Severity, Status};

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::Ocsf);
    let doc = object(at, reread::<Value>(text)?, "one OCSF event")?;
    at.too_many(1, limits)?;
    Ok(vec![event(doc, at)?])
}

fn event(doc: Map<String, Value>, at: At) -> Result<Event, IngestError> {
    let tree = Value::Object(doc);
    let get = |path: &[&str]| at_path(&tree, path);
    match scalar(at, "class_uid", get(&["class_uid"]))? {
        Some(c) if c.trim() == "2004" => {}
        Some(c) => {
            let detail = format!(
                "d2c reads OCSF Detection Findings (class_uid 2004), found class {c}; filter \
                 other classes out before d2c"
            );
            return Err(at.invalid("class_uid", detail));
        }
        None => return Err(at.missing("class_uid")),
    }
    let rule = match scalar(at, "finding_info.title", get(&["finding_info", "title"]))? {
        Some(title) => title,
        None => scalar(
            at,
            "finding_info.analytic.name",
            get(&["finding_info", "analytic", "name"]),
        )?
        .ok_or_else(|| at.missing("finding_info.title"))?,
    };
    let time = match get(&["time"]) {
        None | Some(Value::Null) => loose_time(at, "time_dt", get(&["time_dt"]))?,
        Some(v) => Some(
            v.as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .ok_or_else(|| {
                    at.invalid(
                        "time",
                        format!("expected milliseconds since 1970 (OCSF timestamp_t), found {v}"),
                    )
                })?,
        ),
    }
    .ok_or_else(|| at.missing("time"))?;
    let by_word = scalar(at, "severity", get(&["severity"]))?
        .and_then(|w| Severity::parse_loose(&w))
        .unwrap_or(Severity::Warning);
    let severity = match get(&["severity_id"]).and_then(Value::as_u64) {
        Some(1) => Severity::Info,
        Some(2) => Severity::Warning,
        Some(3) => Severity::Minor,
        Some(4) => Severity::Major,
        Some(5 | 6) => Severity::Critical,
        _ => by_word,
    };
    let mut d = Detection::new(Format::Ocsf, rule, time, severity);
    let resolved = get(&["status_id"]).and_then(Value::as_u64) == Some(4)
        || get(&["status"])
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("resolved"));
    if resolved {
        d.status = Status::Resolved;
    }
    d.rule_id = scalar(
        at,
        "finding_info.analytic.uid",
        get(&["finding_info", "analytic", "uid"]),
    )?;
    d.id = match scalar(at, "finding_info.uid", get(&["finding_info", "uid"]))? {
        Some(uid) => Some(uid),
        None => scalar(at, "metadata.uid", get(&["metadata", "uid"]))?,
    };
    for (label, field) in [
        ("host", "device.hostname"),
        ("host", "device.name"),
        ("host_ip", "device.ip"),
        ("user", "actor.user.name"),
        ("process", "actor.process.name"),
        ("process", "process.name"),
        ("container", "device.container.name"),
        ("container", "container.name"),
        ("src_ip", "src_endpoint.ip"),
        ("dest_ip", "dst_endpoint.ip"),
    ] {
        let path: Vec<&str> = field.split('.').collect();
        d.entity(label, scalar(at, field, get(&path))?);
    }
    let attacks = match get(&["finding_info", "attacks"]) {
        Some(a) => Some(("finding_info.attacks", a)),
        None => get(&["attacks"]).map(|a| ("attacks", a)),
    };
    if let Some((field, attacks)) = attacks {
        let Some(attacks) = attacks.as_array() else {
            let found = super::payload::Found::of(attacks);
            return Err(at.invalid(field, format!("expected an array, found {found}")));
        };
        for a in attacks {
            let mut tactics: Vec<&Value> = a
                .get("tactics")
                .and_then(Value::as_array)
                .map_or_else(Vec::new, |t| t.iter().collect());
            tactics.extend(a.get("tactic"));
            for t in tactics {
                for key in ["uid", "name"] {
                    if let Some(s) = t.get(key).and_then(Value::as_str) {
                        d.tactic_text(s);
                    }
                }
            }
            for key in ["technique", "sub_technique"] {
                if let Some(s) = a
                    .get(key)
                    .and_then(|t| t.get("uid"))
                    .and_then(Value::as_str)
                {
                    d.technique_text(s);
                }
            }
        }
    }
    for (path, to) in [
        (&["message"][..], "message"),
        (&["finding_info", "desc"][..], "description"),
        (&["metadata", "product", "name"][..], "product"),
    ] {
        if let Some(v) = get(path) {
            d.attributes.insert(to.into(), v.clone());
        }
    }
    Ok(d.into_event())
}
