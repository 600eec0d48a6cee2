//! Tests of what all formats share: detection, limits, the error reasons, the fixtures in
//! `tests/fixtures/ingest/`, and that no input makes `parse` panic.

mod formats;
mod limits;
mod security;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::model::{Category, Severity, Status};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/ingest/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn reason(raw: &[u8]) -> &'static str {
    match parse(raw, &Limits::default()) {
        Ok(parsed) => panic!("{:?} parsed as {parsed:?}", String::from_utf8_lossy(raw)),
        Err(e) => e.reason(),
    }
}

#[test]
fn fixture_native_single() {
    let (format, events) = parse(&fixture("native_single.json"), &Limits::default()).unwrap();
    assert_eq!(format, Format::Native);
    let [e] = &events[..] else {
        panic!("expected one event, got {events:?}")
    };
    assert_eq!(e.name, "HighErrorRate");
    assert_eq!(e.source, "nagios");
    assert_eq!(e.ci.as_deref(), Some("db-primary-1"));
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(e.labels["check"], "check_pgsql");
    assert_eq!(e.attributes["attempts"], json!(3));
}

#[test]
fn fixture_native_batch() {
    let (format, events) = parse(&fixture("native_batch.json"), &Limits::default()).unwrap();
    assert_eq!(format, Format::Native);
    assert_eq!(events.len(), 3);
    let [fired, resolved, login] = &events[..] else {
        unreachable!()
    };
    // The same disk alert firing then resolved: one fingerprint, two ids, time in UTC.
    assert_eq!(fired.fingerprint, resolved.fingerprint);
    assert_ne!(fired.id, resolved.id);
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(
        resolved.time,
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 20, 0).unwrap()
    );
    assert_eq!(resolved.severity, Severity::Warning);
    assert_eq!(
        (login.source.as_str(), login.severity),
        ("wazuh", Severity::Major)
    );
    assert_eq!(
        (login.id.as_str(), login.fingerprint.as_str()),
        ("wazuh-17", "wazuh-rule-5712")
    );
    assert_eq!(login.category, Category::Security);
    assert_eq!(login.attributes["rule"], json!({"id": 5712, "level": 10}));
}

#[test]
fn fixture_alertmanager_v4() {
    let (format, events) = parse(&fixture("alertmanager_v4.json"), &Limits::default()).unwrap();
    assert_eq!(format, Format::Alertmanager);
    let cis: Vec<_> = events.iter().map(|e| e.ci.as_deref().unwrap()).collect();
    assert_eq!(cis, ["pay-1", "pay-2", "pay-3"]);
    let firing_at = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
    assert_eq!(
        (events[0].status, events[0].time),
        (Status::Firing, firing_at)
    );
    assert_eq!(events[1].severity, Severity::Warning);
    let resolved_at = Utc.with_ymd_and_hms(2026, 11, 28, 9, 55, 0).unwrap();
    assert_eq!(
        (events[2].status, events[2].time),
        (Status::Resolved, resolved_at)
    );
    for e in &events {
        assert_eq!(e.name, "HighErrorRate");
        assert_eq!(e.source, "alertmanager");
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.attributes["receiver"], json!("d2c"));
        assert_eq!(
            e.attributes["externalURL"],
            json!("http://alertmanager:9093")
        );
        let summary = e.attributes["summary"].as_str().unwrap();
        assert!(summary.ends_with(e.ci.as_deref().unwrap()), "{summary}");
    }
    assert_eq!(
        events[0].attributes["runbook_url"],
        json!("https://runbooks.example/high-error-rate")
    );
    let fingerprints: std::collections::BTreeSet<_> =
        events.iter().map(|e| &e.fingerprint).collect();
    assert_eq!(fingerprints.len(), 3, "one alert each");
}

#[test]
fn parsing_twice_gives_identical_events() {
    for name in ALL_FIXTURES {
        let raw = fixture(name);
        let first = parse(&raw, &Limits::default()).unwrap();
        assert_eq!(first, parse(&raw, &Limits::default()).unwrap(), "{name}");
        assert_eq!(
            first.1,
            parse_as(first.0, &raw, &Limits::default()).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn records_in_no_known_format_are_unknown_format() {
    for raw in [
        &br#"{"foo":1}"#[..],
        br#"{}"#,
        br#"[1,2]"#,
        br#"[{"foo":1}]"#,
        br#""str""#,
        b"42",
        b"true",
        b"null",
        b"",
        b"  \n\t ",
        br#"{"alerts":[]}"#,
    ] {
        assert_eq!(
            reason(raw),
            "unknown_format",
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let e = parse(br#"{"foo":1}"#, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the record is a JSON object with none of the keys that identify a format, which is no \
         format d2c reads; send a native event (a JSON object with name and time) or an array \
         of them, an Alertmanager or Grafana webhook payload (an object with alerts and \
         version), a PagerDuty event (event_action), a CloudEvent (specversion) or an array of \
         them, a Zabbix webhook (event_value or event_status), OTLP JSON logs (resourceLogs), \
         an ECS alert (@timestamp), a Falco alert (output_fields), a Suricata EVE record \
         (event_type), a Wazuh alert (rule and manager) or an OCSF Detection Finding (class_uid)"
    );
}

#[test]
fn broken_json_is_malformed_json_with_its_position() {
    for raw in [
        &b"{"[..],
        br#"{"name":"X","time":"2026-11-28T10:00:00Z""#,
        b"{'name':'X'}",
        br#"{"name":"X"} trailing"#,
        br#"{"name":"a","name":"b","time":"2026-11-28T10:00:00Z"}"#,
        b"[1,]",
    ] {
        assert_eq!(
            reason(raw),
            "malformed_json",
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let e = parse(b"{\n  \"name\": X\n}", &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("line 2 column"), "{e}");
}

#[test]
fn bytes_that_are_not_utf8_are_not_utf8() {
    let e = parse(b"{\"name\":\"caf\xe9\"}", &Limits::default()).unwrap_err();
    assert_eq!(e.reason(), "not_utf8");
    assert!(e.to_string().contains("offset 12"), "{e}");
    assert_eq!(reason(b"\xff\xfe{\x00}\x00"), "not_utf8");
}

#[test]
fn a_byte_order_mark_is_tolerated() {
    let raw = "\u{feff}{\"name\":\"X\",\"time\":\"2026-11-28T10:00:00Z\"}";
    assert_eq!(
        parse(raw.as_bytes(), &Limits::default()).unwrap().1.len(),
        1
    );
}

#[test]
fn oversize_is_checked_before_anything_else() {
    let limits = Limits {
        max_record_bytes: 10,
        ..Limits::default()
    };
    // Not even UTF-8, but too big is what the DLQ reader learns first.
    let e = parse(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", &limits).unwrap_err();
    assert_eq!(e.reason(), "oversize");
    assert!(
        e.to_string()
            .contains("11 bytes, over the limit of 10 bytes"),
        "{e}"
    );
    assert!(parse_as(Format::Native, b"[          ]", &limits).is_err());
    assert_eq!(
        parse(b"[        ]", &limits).unwrap().1,
        vec![],
        "exactly the limit is fine"
    );
    assert_eq!(Limits::default().max_record_bytes, 1024 * 1024);
}

#[test]
fn too_many_events_in_one_record() {
    let limits = Limits {
        max_events_per_record: 2,
        ..Limits::default()
    };
    let ev = r#"{"name":"X","time":"2026-11-28T10:00:00Z"}"#;
    assert_eq!(
        parse(format!("[{ev},{ev}]").as_bytes(), &limits)
            .unwrap()
            .1
            .len(),
        2
    );
    let e = parse(format!("[{ev},{ev},{ev}]").as_bytes(), &limits).unwrap_err();
    assert_eq!(e.reason(), "too_many_events");
    assert!(
        e.to_string()
            .contains("carries 3 events, over the limit of 2"),
        "{e}"
    );

    let alert = r#"{"labels":{"alertname":"X"},"startsAt":"2026-11-28T10:00:00Z"}"#;
    let am = format!(r#"{{"version":"4","alerts":[{alert},{alert},{alert}]}}"#);
    let e = parse(am.as_bytes(), &limits).unwrap_err();
    assert_eq!(e.reason(), "too_many_events");
    assert!(e.to_string().contains("max_alerts"), "{e}");
    assert_eq!(Limits::default().max_events_per_record, 10_000);
}

#[test]
fn a_huge_batch_is_refused_by_count() {
    let raw = format!("[{}{{}}]", r#"{"name":"X"},"#.repeat(80_000));
    assert!(raw.len() < Limits::default().max_record_bytes);
    let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            e,
            IngestError::TooManyEvents {
                count: 80_001,
                limit: 10_000,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn every_reason_is_a_distinct_snake_case_word() {
    let errors = [
        IngestError::NotUtf8 { offset: 0 },
        IngestError::MalformedJson {
            detail: String::new(),
        },
        IngestError::Oversize { size: 2, limit: 1 },
        IngestError::MissingField {
            format: Format::Native,
            field: "name".into(),
        },
        IngestError::InvalidValue {
            format: Format::Native,
            field: "time".into(),
            detail: String::new(),
        },
        IngestError::UnknownFormat { found: "x" },
        IngestError::TooManyEvents {
            format: Format::Native,
            count: 2,
            limit: 1,
        },
    ];
    let reasons: Vec<_> = errors.iter().map(IngestError::reason).collect();
    assert_eq!(
        reasons,
        [
            "not_utf8",
            "malformed_json",
            "oversize",
            "missing_field",
            "invalid_value",
            "unknown_format",
            "too_many_events"
        ]
    );
}

#[test]
fn dlq_record_carries_reason_sentence_and_payload() {
    let raw = br#"{"foo":1}"#;
    let record = parse(raw, &Limits::default())
        .unwrap_err()
        .to_dlq_record(raw);
    assert_eq!(record.reason, "unknown_format");
    assert!(record.detail.starts_with("the record is a JSON object"));
    assert_eq!(record.raw, r#"{"foo":1}"#);
}

#[test]
fn format_names_round_trip() {
    for format in Format::ALL {
        assert_eq!(Format::from_name(format.as_str()), Some(format));
        assert_eq!(format.to_string(), format.as_str());
    }
    assert_eq!(
        Format::from_name("Alertmanager"),
        Some(Format::Alertmanager)
    );
    assert_eq!(Format::from_name("nagios"), None);
}

#[test]
fn detection_prefers_alertmanager_only_with_its_keys() {
    let native = br#"{"name":"X","time":"2026-11-28T10:00:00Z","version":"7"}"#;
    assert_eq!(parse(native, &Limits::default()).unwrap().0, Format::Native);
    let am = br#"{"groupKey":"g","name":"X","alerts":[]}"#;
    assert_eq!(
        parse(am, &Limits::default()).unwrap().0,
        Format::Alertmanager
    );
    // An object that looks native but lacks time is a native error, not an unknown format.
    assert_eq!(reason(br#"{"name":"X"}"#), "missing_field");
    assert_eq!(
        reason(br#"[{"name":"X","time":"2026-11-28T10:00:00Z"},"x"]"#),
        "invalid_value"
    );
}

#[test]
fn extreme_timestamps_do_not_panic() {
    for time in [
        "+262143-12-31T23:59:59Z",
        "-262144-01-01T00:00:00+23:59",
        "+262143-12-31T23:59:59-23:59",
        "9999-12-31T23:59:60.999999999Z",
        "0000-01-01T00:00:00Z",
    ] {
        let raw = format!(r#"{{"name":"X","time":"{time}"}}"#);
        let _ = parse(raw.as_bytes(), &Limits::default());
        let raw = format!(
            r#"{{"version":"4","alerts":[{{"status":"resolved","labels":{{"alertname":"X"}},
                "startsAt":"{time}","endsAt":"{time}"}}]}}"#
        );
        let _ = parse(raw.as_bytes(), &Limits::default());
    }
}

/// Strings built from JSON's own punctuation and the keys the parsers look for, so proptest
/// reaches the parsers and not only the JSON syntax check.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("-1.5e3".to_owned()),
        Just("\"2026-11-28T10:00:00Z\"".to_owned()),
        Just("\"0001-01-01T00:00:00Z\"".to_owned()),
        Just("\"resolved\"".to_owned()),
        Just("\"4\"".to_owned()),
        Just("\"1.0\"".to_owned()),
        Just("\"trigger\"".to_owned()),
        Just("\"2026.11.28\"".to_owned()),
        Just("\"1795860000000000000\"".to_owned()),
        prop::sample::select(vec![
            "name",
            "time",
            "status",
            "severity",
            "ci",
            "source",
            "category",
            "fingerprint",
            "id",
            "labels",
            "attributes",
            "version",
            "groupKey",
            "alerts",
            "alertname",
            "startsAt",
            "endsAt",
            "annotations",
            "instance",
            "receiver",
            "externalURL",
            "generatorURL",
            "orgId",
            "specversion",
            "type",
            "data",
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "summary",
            "timestamp",
            "resourceLogs",
            "scopeLogs",
            "logRecords",
            "timeUnixNano",
            "severityNumber",
            "body",
            "stringValue",
            "key",
            "value",
            "@timestamp",
            "event.kind",
            "rule.name",
            "kibana.alert.status",
            "event_id",
            "event_value",
            "event_date",
            "event_time",
            "event_tags",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        "\"[^\"\\\\]{0,8}\"",
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

/// Valid JSON values of any shape, including the shapes the formats use.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(|s| json!(s)),
        Just(json!("2026-11-28T10:00:00Z")),
        Just(json!("4")),
        Just(json!("1.0")),
        Just(json!("resolve")),
        Just(json!("1795860000000000000")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "name",
            "time",
            "status",
            "severity",
            "labels",
            "attributes",
            "version",
            "alerts",
            "alertname",
            "startsAt",
            "endsAt",
            "annotations",
            "fingerprint",
            "orgId",
            "specversion",
            "type",
            "data",
            "event_action",
            "dedup_key",
            "payload",
            "timestamp",
            "resourceLogs",
            "scopeLogs",
            "logRecords",
            "timeUnixNano",
            "attributes",
            "stringValue",
            "@timestamp",
            "event",
            "kind",
            "rule.name",
            "event_value",
            "event_date",
            "event_time",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key.prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&raw, &Limits::default());
    }

    #[test]
    fn parse_never_panics_on_jsonish_text(text in jsonish()) {
        let limits = Limits { max_record_bytes: 1 << 20, max_events_per_record: 3, ..Limits::default() };
        let _ = parse(text.as_bytes(), &limits);
        for format in Format::ALL {
            let _ = parse_as(format, text.as_bytes(), &limits);
        }
    }

    #[test]
    fn parse_never_panics_on_json_and_errors_are_not_malformed(value in json_value()) {
        let raw = serde_json::to_vec(&value).unwrap();
        if let Err(e) = parse(&raw, &Limits::default()) {
            // Valid JSON is never blamed on its syntax.
            prop_assert_ne!(e.reason(), "malformed_json", "{}", e);
        }
        for format in Format::ALL {
            if let Err(e) = parse_as(format, &raw, &Limits::default()) {
                prop_assert_ne!(e.reason(), "malformed_json", "{}: {}", format, e);
            }
        }
    }

    /// Every fixture with one value somewhere inside replaced by another JSON value: whatever
    /// comes out, `parse` and every `parse_as` return, and parsing is deterministic.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..ALL_FIXTURES.len(),
        target in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let mut value: serde_json::Value =
            serde_json::from_slice(&fixture(ALL_FIXTURES[which])).unwrap();
        let n = target.index(count_values(&value));
        replace_nth(&mut value, n, &mut 0, &mut Some(replacement));
        let raw = serde_json::to_vec(&value).unwrap();
        let first = parse(&raw, &Limits::default());
        if let Err(e) = &first {
            prop_assert_ne!(e.reason(), "malformed_json", "{}", e);
        }
        prop_assert_eq!(
            format!("{first:?}"),
            format!("{:?}", parse(&raw, &Limits::default())),
            "deterministic"
        );
        for format in Format::ALL {
            let _ = parse_as(format, &raw, &Limits::default());
        }
    }
}

/// The fixtures of every format.
const ALL_FIXTURES: [&str; 16] = [
    "native_single.json",
    "native_batch.json",
    "alertmanager_v4.json",
    "grafana_webhook.json",
    "pagerduty_trigger.json",
    "pagerduty_resolve.json",
    "cloudevents_batch.json",
    "zabbix_problem.json",
    "zabbix_recovery.json",
    "otel_logs.json",
    "ecs_kibana_alert.json",
    "falco_alert.json",
    "suricata_alert.json",
    "wazuh_alert.json",
    "ocsf_detection_finding.json",
    "ecs_threat_alert.json",
];

/// How many values a JSON tree holds, the root included: the places a mutation can hit.
fn count_values(value: &serde_json::Value) -> usize {
    1 + match value {
        serde_json::Value::Array(items) => items.iter().map(count_values).sum(),
        serde_json::Value::Object(map) => map.values().map(count_values).sum(),
        _ => 0,
    }
}

/// Replaces the value numbered `n` in depth-first order (the root is 0); `next` counts.
fn replace_nth(
    value: &mut serde_json::Value,
    n: usize,
    next: &mut usize,
    replacement: &mut Option<serde_json::Value>,
) {
    if *next == n {
        if let Some(r) = replacement.take() {
            *value = r;
        }
        return;
    }
    *next += 1;
    match value {
        serde_json::Value::Array(items) => {
            for v in items {
                replace_nth(v, n, next, replacement);
            }
        }
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                replace_nth(v, n, next, replacement);
            }
        }
        _ => {}
    }
}
