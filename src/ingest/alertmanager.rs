//! The Prometheus Alertmanager webhook payload, version 4 (`webhook_config` in Alertmanager's
//! configuration): one record is one notification of one alert group, one event per alert.
//!
//! How an alert becomes an event:
//! - `name` is the `alertname` label (required);
//! - `status` is the alert's `status` (the group's when an alert has none);
//! - `time` is `startsAt` for a firing alert; for a resolved one `endsAt`, or `startsAt` when
//!   `endsAt` is absent or Go's zero time `0001-01-01T00:00:00Z`;
//! - `severity` is the `severity` label read loosely (`critical`, `page`, `error`, `p2`, …),
//!   `warning` when absent or unrecognised: a rule's unusual word must not send the whole
//!   group to the DLQ, and the word itself stays in `labels.severity`;
//! - `category` is the `category` label when it names one, else `availability`;
//! - `ci` is the `ci` label, else `instance` without its `:port`, else `host`, `node` or `pod`;
//! - `fingerprint` is a hash of `alertmanager` and Alertmanager's own fingerprint, or of the
//!   sorted labels when it sent none; `id` is a hash of fingerprint, time and status;
//! - `labels` are the alert's labels; `attributes` are its annotations (as strings), plus
//!   `generatorURL`, `receiver` and `externalURL` unless an annotation has that name.
//!   `receiver` and `externalURL` belong to the whole group and are copied into every alert's
//!   event, so only when at most [`MAX_SHARED_TEXT`] bytes long: a longer one (no URL anyone
//!   follows is that long) would make a small payload of many alerts expand many times over;
//! - `source` is `alertmanager`.
//!
//! Grafana's webhook payload is this one with more keys; `grafana.rs` documents what differs
//! and calls [`group_events`] with its own format and version.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::payload::{Alert, Found, Object, Text, Top};
use super::sink::Sink;
use super::{At, Event, Format, IngestError, Limits, category_word, derived_fingerprint, event_id};
use crate::model::{Severity, Status, stable_hash};

/// The payload version this parser reads.
const VERSION: &str = "4";

/// Longest group-level text (`receiver`, `externalURL`) copied into every alert's event.
pub(super) const MAX_SHARED_TEXT: usize = 2048;

/// What every alert of a notification shares.
struct Group {
    format: Format,
    status: Option<Status>,
    receiver: Option<String>,
    external_url: Option<String>,
    /// Grafana's organisation id.
    org_id: Option<String>,
}

pub(super) fn events(top: Top, limits: &Limits, out: &mut Sink) -> Result<(), IngestError> {
    group_events(Format::Alertmanager, VERSION, top, limits, out)
}

/// One event per alert of an Alertmanager-shaped notification in `format`, whose `version` must
/// be `version` when present.
pub(super) fn group_events(
    format: Format,
    version: &str,
    top: Top,
    limits: &Limits,
    out: &mut Sink,
) -> Result<(), IngestError> {
    let at = At::top(format);
    let e = match top {
        Top::Object(envelope) => envelope,
        Top::Array(_) => return Err(not_a_notification(at, Found::Array)),
        Top::Other(found) => return Err(not_a_notification(at, found)),
    };
    if let Some(sent) = e.version {
        match sent.into_scalar() {
            Ok(v) if v == version => {}
            Ok(v) => {
                let detail = format!(
                    "d2c reads {format} webhook payload version \"{version}\", this payload is \
                     version {v:?}; use a release that sends version {version}"
                );
                return Err(at.invalid("version", detail));
            }
            Err(found) => {
                let detail = format!("expected \"{version}\", found {found}");
                return Err(at.invalid("version", detail));
            }
        }
    }
    let alerts = match e.alerts {
        None => return Err(at.missing("alerts")),
        Some(Ok(alerts)) => alerts,
        Some(Err(found)) => {
            return Err(at.invalid(
                "alerts",
                format!("expected an array of alerts, found {found}"),
            ));
        }
    };
    at.too_many(alerts.total, limits)?;
    let org_id = match e.org_id.map(Text::into_scalar) {
        None => None,
        Some(Ok(id)) => Some(id).filter(|id| !id.is_empty()),
        Some(Err(found)) => {
            return Err(at.invalid("orgId", format!("expected a number, found {found}")));
        }
    };
    let shared = |field: &str, value: Option<Text>| -> Result<Option<String>, IngestError> {
        Ok(at
            .string(field, value)?
            .filter(|s| s.len() <= MAX_SHARED_TEXT))
    };
    let group = Group {
        format,
        status: at.status("status", e.status)?,
        receiver: shared("receiver", e.receiver)?,
        external_url: shared("externalURL", e.external_url)?,
        org_id: org_id.filter(|s| s.len() <= MAX_SHARED_TEXT),
    };
    out.reserve(alerts.items.len());
    for (i, Object(alert)) in alerts.items.into_iter().enumerate() {
        let at = At::item(format, "alerts", i);
        match alert {
            Ok(alert) => out.push(event(alert, at, &group)?)?,
            Err(found) => {
                return Err(at.invalid("", format!("expected an alert object, found {found}")));
            }
        }
    }
    Ok(())
}

fn not_a_notification(at: At, found: Found) -> IngestError {
    let detail = format!("expected a JSON object (one webhook notification), found {found}");
    at.invalid("", detail)
}

fn event(a: Alert, at: At, group: &Group) -> Result<Event, IngestError> {
    let labels = at.labels("labels", a.labels)?;
    let name = match labels.get("alertname") {
        Some(name) if !name.is_empty() => name.clone(),
        _ => return Err(at.missing("labels.alertname")),
    };
    let status = at
        .status("status", a.status)?
        .or(group.status)
        .unwrap_or(Status::Firing);
    let starts_at = at.time("startsAt", a.starts_at)?;
    let ends_at = at.time("endsAt", a.ends_at)?.filter(|t| !is_zero_time(*t));
    let time = match status {
        Status::Firing => starts_at.ok_or_else(|| at.missing("startsAt"))?,
        Status::Resolved => ends_at.or(starts_at).ok_or_else(|| at.missing("endsAt"))?,
    };
    let severity = labels
        .get("severity")
        .and_then(|s| Severity::parse_loose(s))
        .unwrap_or(Severity::Warning);
    let category = labels
        .get("category")
        .and_then(|c| category_word(c))
        .unwrap_or_default();
    let source = group.format.as_str();
    let fingerprint = match at.string("fingerprint", a.fingerprint)? {
        Some(am) => stable_hash(&[source, &am]),
        None => derived_fingerprint(&[source], &labels),
    };
    let mut attributes: BTreeMap<String, Value> = at
        .labels("annotations", a.annotations)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let generator_url = at.string("generatorURL", a.generator_url)?;
    // Grafana's keys; Alertmanager sends none of them.
    let silence_url = at.string("silenceURL", a.silence_url)?;
    let dashboard_url = at.string("dashboardURL", a.dashboard_url)?;
    let panel_url = at.string("panelURL", a.panel_url)?;
    let value_string = at.string("valueString", a.value_string)?;
    for (key, value) in [
        ("generatorURL", generator_url.as_ref()),
        ("receiver", group.receiver.as_ref()),
        ("externalURL", group.external_url.as_ref()),
        ("orgId", group.org_id.as_ref()),
        ("silenceURL", silence_url.as_ref()),
        ("dashboardURL", dashboard_url.as_ref()),
        ("panelURL", panel_url.as_ref()),
        ("valueString", value_string.as_ref()),
    ] {
        if let Some(value) = value {
            let entry = attributes.entry(key.to_owned());
            entry.or_insert_with(|| Value::String(value.clone()));
        }
    }
    if let Some(values) = a.values.filter(|v| !v.is_null()) {
        attributes.entry("values".to_owned()).or_insert(values);
    }
    Ok(Event {
        id: event_id(&fingerprint, time, status),
        source: source.to_owned(),
        time,
        ci: ci_of(&labels),
        name,
        severity,
        status,
        category,
        fingerprint,
        labels,
        attributes,
    })
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`, which Alertmanager sends as `endsAt` when
/// it knows no end (anything earlier means no more).
fn is_zero_time(t: DateTime<Utc>) -> bool {
    const GO_ZERO_UNIX_SECONDS: i64 = -62_135_596_800;
    t.timestamp() <= GO_ZERO_UNIX_SECONDS
}

/// The CI an alert is about, from the labels Prometheus setups commonly carry.
fn ci_of(labels: &BTreeMap<String, String>) -> Option<String> {
    let label = |key: &str| labels.get(key).filter(|v| !v.is_empty());
    if let Some(ci) = label("ci") {
        return Some(ci.clone());
    }
    if let Some(instance) = label("instance") {
        return Some(strip_port(instance).to_owned());
    }
    ["host", "node", "pod"].into_iter().find_map(label).cloned()
}

/// `host:9100` → `host`, `[::1]:9100` → `::1`; anything else (a URL, a bare IPv6) unchanged.
fn strip_port(instance: &str) -> &str {
    if let Some(rest) = instance.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once(']')
            && (port.is_empty() || port.strip_prefix(':').is_some_and(is_port))
        {
            return host;
        }
        return instance;
    }
    match instance.split_once(':') {
        Some((host, port)) if !host.is_empty() && is_port(port) => host,
        _ => instance,
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::ingest::{parse, parse_as};
    use crate::model::Category;

    fn alert_payload(alerts: &str) -> String {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"X\"}}","status":"firing",
                "receiver":"d2c","externalURL":"http://am:9093","alerts":[{alerts}]}}"#
        )
    }

    fn events_of(alerts: &str) -> Result<Vec<Event>, IngestError> {
        let (format, events) = parse(alert_payload(alerts).as_bytes(), &Limits::default())?;
        assert_eq!(format, Format::Alertmanager);
        Ok(events)
    }

    fn one(alert: &str) -> Event {
        let events = events_of(alert).unwrap();
        assert_eq!(events.len(), 1);
        events.into_iter().next().unwrap()
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    #[test]
    fn maps_every_field_of_a_firing_alert() {
        let e = one(
            r#"{"status":"firing","labels":{"alertname":"HighLoad","instance":"h1:9100",
                "severity":"critical","category":"performance","job":"node"},
                "annotations":{"summary":"load high","runbook":"http://rb"},
                "startsAt":"2026-11-28T10:00:00Z","endsAt":"2026-11-28T10:05:00Z",
                "generatorURL":"http://prom/graph","fingerprint":"c4d5e6"}"#,
        );
        assert_eq!(e.name, "HighLoad");
        assert_eq!(e.status, Status::Firing);
        assert_eq!(e.time, utc(10, 0), "a firing alert's time is startsAt");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.category, Category::Performance);
        assert_eq!(e.ci.as_deref(), Some("h1"));
        assert_eq!(e.source, "alertmanager");
        assert_eq!(e.fingerprint, stable_hash(&["alertmanager", "c4d5e6"]));
        assert_eq!(e.id, event_id(&e.fingerprint, e.time, Status::Firing));
        assert_eq!(e.labels.len(), 5);
        assert_eq!(e.labels["job"], "node");
        assert_eq!(e.attributes["summary"], json!("load high"));
        assert_eq!(e.attributes["runbook"], json!("http://rb"));
        assert_eq!(e.attributes["generatorURL"], json!("http://prom/graph"));
        assert_eq!(e.attributes["receiver"], json!("d2c"));
        assert_eq!(e.attributes["externalURL"], json!("http://am:9093"));
    }

    #[test]
    fn resolved_alert_takes_its_time_from_ends_at_unless_it_is_the_zero_time() {
        let resolved = |ends: &str| {
            one(&format!(
                r#"{{"status":"resolved","labels":{{"alertname":"X"}},
                    "startsAt":"2026-11-28T10:00:00Z","endsAt":"{ends}"}}"#
            ))
        };
        let e = resolved("2026-11-28T10:30:00Z");
        assert_eq!((e.status, e.time), (Status::Resolved, utc(10, 30)));
        assert_eq!(resolved("0001-01-01T00:00:00Z").time, utc(10, 0));
        // The same alert firing and resolved: one fingerprint, two ids.
        let firing = one(r#"{"labels":{"alertname":"X"},"startsAt":"2026-11-28T10:00:00Z"}"#);
        assert_eq!(firing.fingerprint, e.fingerprint);
        assert_ne!(firing.id, e.id);
    }

    #[test]
    fn defaults_when_labels_say_little() {
        let e = one(
            r#"{"labels":{"alertname":"X","severity":"sev9","category":"db"},
                       "startsAt":"2026-11-28T10:00:00Z"}"#,
        );
        assert_eq!(e.status, Status::Firing, "the group's status");
        assert_eq!(e.severity, Severity::Warning, "unrecognised severity word");
        assert_eq!(e.labels["severity"], "sev9", "the word is kept");
        assert_eq!(e.category, Category::Availability);
        assert_eq!(e.ci, None);
        assert_eq!(
            e.fingerprint,
            stable_hash(&[
                "alertmanager",
                "alertname=X",
                "category=db",
                "severity=sev9"
            ])
        );
    }

    #[test]
    fn ci_comes_from_the_most_specific_label() {
        let ci = |labels: &str| {
            one(&format!(
                r#"{{"labels":{{"alertname":"X",{labels}}},"startsAt":"2026-11-28T10:00:00Z"}}"#
            ))
            .ci
        };
        assert_eq!(ci(r#""ci":"db1","instance":"h:1""#).as_deref(), Some("db1"));
        assert_eq!(
            ci(r#""instance":"h.example:9100""#).as_deref(),
            Some("h.example")
        );
        assert_eq!(ci(r#""instance":"[::1]:9100""#).as_deref(), Some("::1"));
        assert_eq!(
            ci(r#""instance":"https://shop.example/health""#).as_deref(),
            Some("https://shop.example/health")
        );
        assert_eq!(ci(r#""instance":"","host":"h2""#).as_deref(), Some("h2"));
        assert_eq!(ci(r#""node":"n1","pod":"p1""#).as_deref(), Some("n1"));
        assert_eq!(ci(r#""pod":"p1""#).as_deref(), Some("p1"));
    }

    #[test]
    fn fingerprints_are_stable_and_differ_per_alert() {
        let a = r#"{"labels":{"alertname":"X","instance":"h1:9100"},"startsAt":"2026-11-28T10:00:00Z"}"#;
        let b = r#"{"labels":{"alertname":"X","instance":"h2:9100"},"startsAt":"2026-11-28T10:00:00Z"}"#;
        let events = events_of(&format!("{a},{b}")).unwrap();
        assert_ne!(events[0].fingerprint, events[1].fingerprint);
        assert_eq!(events[0].fingerprint, one(a).fingerprint);
        assert_eq!(events[0], one(a), "the same input gives the same event");
    }

    #[test]
    fn annotations_win_over_metadata_of_the_same_name() {
        let e = one(
            r#"{"labels":{"alertname":"X"},"annotations":{"receiver":"mine","n":3},
                       "startsAt":"2026-11-28T10:00:00Z"}"#,
        );
        assert_eq!(e.attributes["receiver"], json!("mine"));
        assert_eq!(e.attributes["n"], json!("3"));
    }

    #[test]
    fn missing_alertname_names_the_alert() {
        let e = events_of(
            r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-28T10:00:00Z"},
               {"labels":{"alertname":"B"},"startsAt":"2026-11-28T10:00:00Z"},
               {"labels":{"instance":"h"},"startsAt":"2026-11-28T10:00:00Z"}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "missing_field");
        assert_eq!(
            e.to_string(),
            "alertmanager payload: alerts[2].labels.alertname is missing; every alert needs an \
             alertname label"
        );
        let e = events_of(r#"{"startsAt":"2026-11-28T10:00:00Z"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("alerts[0].labels.alertname is missing"),
            "{e}"
        );
    }

    #[test]
    fn missing_times_are_named() {
        let e = events_of(r#"{"labels":{"alertname":"A"}}"#).unwrap_err();
        assert!(
            matches!(&e, IngestError::MissingField { field, .. } if field == "alerts[0].startsAt"),
            "{e}"
        );
        let e = events_of(
            r#"{"status":"resolved","labels":{"alertname":"A"},"endsAt":"0001-01-01T00:00:00Z"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, IngestError::MissingField { field, .. } if field == "alerts[0].endsAt"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-28 25:00"}"#,
                "alerts[0].startsAt",
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-28T10:00:00Z","endsAt":"soon"}"#,
                "alerts[0].endsAt",
            ),
            (
                r#"{"labels":{"alertname":"A"},"startsAt":"2026-11-28T10:00:00Z","status":"pending"}"#,
                "alerts[0].status",
            ),
            (
                r#"{"labels":{"alertname":"A","team":["x"]},"startsAt":"2026-11-28T10:00:00Z"}"#,
                "alerts[0].labels.team",
            ),
            (
                r#"{"labels":{"alertname":"A"},"annotations":[],"startsAt":"2026-11-28T10:00:00Z"}"#,
                "alerts[0].annotations",
            ),
            (r#""not an alert""#, "alerts[0]"),
        ];
        for (alert, field) in cases {
            let e = events_of(alert).unwrap_err();
            assert!(
                matches!(&e, IngestError::InvalidValue { field: f, .. } if f == field),
                "{alert}: {e}"
            );
        }
    }

    #[test]
    fn only_version_4_is_read() {
        let raw = r#"{"version":"3","groupKey":"g","alerts":[]}"#;
        let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_value");
        assert!(e.to_string().contains("version \"3\""), "{e}");
        assert_eq!(
            parse(br#"{"version":4,"alerts":[]}"#, &Limits::default())
                .unwrap()
                .1,
            vec![]
        );
        let e = parse(br#"{"groupKey":"g","alerts":"none"}"#, &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, IngestError::InvalidValue { field, .. } if field == "alerts"),
            "{e}"
        );
    }

    #[test]
    fn parse_as_alertmanager_needs_an_object_with_alerts() {
        let limits = Limits::default();
        let e = parse_as(Format::Alertmanager, br#"{"receiver":"d2c"}"#, &limits).unwrap_err();
        assert_eq!(e.reason(), "missing_field");
        assert!(e.to_string().contains("alerts is missing"), "{e}");
        let e = parse_as(Format::Alertmanager, b"[]", &limits).unwrap_err();
        assert_eq!(e.reason(), "invalid_value");
        // Without version or groupKey detection would not pick it, but the caller said so.
        let raw = br#"{"alerts":[{"labels":{"alertname":"X"},"startsAt":"2026-11-28T10:00:00Z"}]}"#;
        assert_eq!(
            parse_as(Format::Alertmanager, raw, &limits).unwrap().len(),
            1
        );
    }

    #[test]
    fn strip_port_handles_hosts_ipv6_and_urls() {
        assert_eq!(strip_port("h:9100"), "h");
        assert_eq!(strip_port("h"), "h");
        assert_eq!(strip_port("[fe80::1]:9100"), "fe80::1");
        assert_eq!(strip_port("[fe80::1]"), "fe80::1");
        assert_eq!(strip_port("fe80::1"), "fe80::1");
        assert_eq!(strip_port("http://h:80/x"), "http://h:80/x");
        assert_eq!(strip_port(":9100"), ":9100");
    }
}
