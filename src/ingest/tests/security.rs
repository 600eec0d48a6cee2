//! The security formats: each fixture (`tests/fixtures/ingest/`, written after its tool's
//! documented example) and what it normalises to, detection among the other formats, and the
//! broken variants that go to the DLQ with a reason.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::model::{Category, Severity, Status};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/ingest/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn one(raw: &str, format: Format) -> Event {
    let (detected, events) =
        parse(raw.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{raw}: {e}"));
    assert_eq!(detected, format);
    let [e] = <[Event; 1]>::try_from(events).unwrap();
    assert_eq!(e.category, Category::Security);
    assert_eq!(e.source, format.as_str());
    e
}

fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
}

fn label<'e>(e: &'e Event, key: &str) -> Option<&'e str> {
    e.labels.get(key).map(String::as_str)
}

#[test]
fn falco_alert_maps_tags_to_attack_and_output_fields_to_entities() {
    let e = one(&fixture("falco_alert.json"), Format::Falco);
    assert_eq!(e.name, "Terminal shell in container");
    assert_eq!(
        e.time,
        utc(10, 2, 0) + chrono::Duration::nanoseconds(123_456_789)
    );
    assert_eq!(e.severity, Severity::Warning, "Notice");
    assert_eq!(e.ci.as_deref(), Some("web-1"));
    assert_eq!(label(&e, "host"), Some("web-1"));
    assert_eq!(label(&e, "container"), Some("shop-frontend"));
    assert_eq!(label(&e, "user"), Some("www-data"));
    assert_eq!(label(&e, "process"), Some("bash"));
    assert_eq!(e.id, "0b6a2f5e-52c1-4c1e-9d0a-6c2f3e1b7a90");
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0002"], "techniques": ["T1059"]})
    );
    assert_eq!(e.attributes["falco_source"], json!("syscall"));
    // A host process is in no container, whatever its container.id says.
    let host = fixture("falco_alert.json")
        .replace(r#""container.name": "shop-frontend","#, "")
        .replace(
            r#""container.id": "3ad7b26ded6d""#,
            r#""container.id": "host""#,
        );
    assert_eq!(label(&one(&host, Format::Falco), "container"), None);
}

#[test]
fn suricata_alerts_are_read_and_other_eve_records_give_no_event() {
    let e = one(&fixture("suricata_alert.json"), Format::Suricata);
    assert_eq!(
        e.name,
        "ET EXPLOIT Possible Remote Code Execution via crafted HTTP POST"
    );
    assert_eq!(
        e.time,
        utc(10, 0, 0) + chrono::Duration::microseconds(251_547)
    );
    assert_eq!(e.severity, Severity::Major, "severity 1");
    assert_eq!(label(&e, "src_ip"), Some("203.0.113.7"));
    assert_eq!(label(&e, "dest_ip"), Some("10.0.1.5"));
    assert_eq!(label(&e, "rule_id"), Some("2031502"));
    assert_eq!(
        label(&e, "host"),
        None,
        "the sensor is not the attacked host"
    );
    assert_eq!(e.attributes["sensor"], json!("ids-sensor-1"));
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0001"], "techniques": ["T1190"]})
    );
    for kind in ["flow", "dns", "http", "stats"] {
        let raw = format!(
            r#"{{"timestamp":"2026-11-28T10:00:00.000000+0000","event_type":"{kind}","src_ip":"10.0.0.1"}}"#
        );
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!((format, events.len()), (Format::Suricata, 0), "{kind}");
    }
}

#[test]
fn wazuh_alert_maps_rule_mitre_agent_and_data() {
    let e = one(&fixture("wazuh_alert.json"), Format::Wazuh);
    assert_eq!(
        e.name,
        "sshd: brute force trying to get access to the system. Non existent user."
    );
    assert_eq!(e.time, utc(10, 1, 45) + chrono::Duration::milliseconds(512));
    assert_eq!(e.severity, Severity::Major, "level 10");
    assert_eq!(e.id, "1795860105.1093");
    for (key, value) in [
        ("host", "db-2"),
        ("host_ip", "10.0.2.12"),
        ("src_ip", "198.51.100.23"),
        ("user", "oracle"),
        ("rule_id", "5712"),
    ] {
        assert_eq!(label(&e, key), Some(value), "{key}");
    }
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0006"], "techniques": ["T1110"]})
    );
    // Forwarded through the Wazuh indexer, the time may come as @timestamp.
    let indexed = fixture("wazuh_alert.json").replace(r#""timestamp""#, r#""@timestamp""#);
    assert_eq!(one(&indexed, Format::Wazuh).time, e.time);
}

#[test]
fn ocsf_detection_finding_maps_attacks_device_and_actor() {
    let e = one(&fixture("ocsf_detection_finding.json"), Format::Ocsf);
    assert_eq!(e.name, "Cron job created by web server account");
    assert_eq!(e.time, utc(10, 4, 0));
    assert_eq!(e.severity, Severity::Major, "severity_id 4 (High)");
    assert_eq!(e.status, Status::Firing);
    assert_eq!(e.id, "finding-4be1a0");
    for (key, value) in [
        ("host", "web-1"),
        ("host_ip", "10.0.1.5"),
        ("user", "www-data"),
        ("process", "crontab"),
        ("rule_id", "edr-rule-118"),
    ] {
        assert_eq!(label(&e, key), Some(value), "{key}");
    }
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0003"], "techniques": ["T1053", "T1053.003"]})
    );
    let resolved =
        fixture("ocsf_detection_finding.json").replace(r#""status_id": 1"#, r#""status_id": 4"#);
    assert_eq!(one(&resolved, Format::Ocsf).status, Status::Resolved);
}

#[test]
fn ecs_threat_fields_give_the_same_labels_and_attack_attribute() {
    let e = one(&fixture("ecs_threat_alert.json"), Format::Ecs);
    for (key, value) in [
        ("host", "db-2"),
        ("host_ip", "10.0.2.12"),
        ("src_ip", "198.51.100.23"),
        ("user", "oracle"),
    ] {
        assert_eq!(label(&e, key), Some(value), "{key}");
    }
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0006"], "techniques": ["T1110", "T1110.001"]})
    );
    // Kibana's rule threat list reads alike.
    let kibana = r#"{"@timestamp":"2026-11-28T10:05:00Z","kibana.alert.rule.name":"X",
        "kibana.alert.rule.producer":"siem","host.name":"web-1",
        "kibana.alert.rule.threat":[{"framework":"MITRE ATT&CK",
          "tactic":{"id":"TA0002","name":"Execution"},
          "technique":[{"id":"T1059","subtechnique":[{"id":"T1059.004"}]}]}]}"#;
    let e = one(kibana, Format::Ecs);
    assert_eq!(
        e.attributes["attack"],
        json!({"tactics": ["TA0002"], "techniques": ["T1059", "T1059.004"]})
    );
}

#[test]
fn detection_tells_the_security_formats_from_the_others() {
    let detect = |raw: &str| match parse(raw.as_bytes(), &Limits::default()) {
        Ok((f, _)) => Some(f),
        Err(e) => e.format(),
    };
    let cases = [
        // Falco and OCSF have `time`, which alone would make a native event.
        (
            r#"{"time":"2026-11-28T10:00:00Z","rule":"R","output_fields":{}}"#,
            Format::Falco,
        ),
        (r#"{"time":1795860240000,"class_uid":2004}"#, Format::Ocsf),
        (
            r#"{"timestamp":"2026-11-28T10:00:00Z","event_type":"alert"}"#,
            Format::Suricata,
        ),
        (
            r#"{"rule":{"level":3},"manager":{"name":"m"}}"#,
            Format::Wazuh,
        ),
        (
            r#"{"rule":{"level":3},"decoder":{"name":"sshd"}}"#,
            Format::Wazuh,
        ),
        // ECS documents have `rule` and `agent`, not `manager` or `decoder`.
        (
            r#"{"@timestamp":"2026-11-28T10:00:00Z","rule":{"name":"R"},"agent":{"name":"a"},"event":{"kind":"alert"}}"#,
            Format::Ecs,
        ),
        // A native event keeps its format, whatever extra key it carries.
        (
            r#"{"name":"X","time":"2026-11-28T10:00:00Z","event_type":"alert"}"#,
            Format::Native,
        ),
    ];
    for (raw, format) in cases {
        assert_eq!(detect(raw), Some(format), "{raw}");
    }
    let e = parse(br#"{"rule":{"level":3}}"#, &Limits::default()).unwrap_err();
    assert_eq!(e.reason(), "unknown_format");
}

#[test]
fn broken_security_records_go_to_the_dlq_with_a_reason_naming_the_field() {
    // (fixture, text to replace, replacement, reason, field named)
    let cases = [
        (
            "falco_alert.json",
            r#""rule": "Terminal shell in container","#,
            "",
            "missing_field",
            "rule",
        ),
        (
            "falco_alert.json",
            r#""priority": "Notice""#,
            r#""priority": "Loud""#,
            "invalid_value",
            "priority",
        ),
        (
            "falco_alert.json",
            r#""tags": ["container""#,
            r#""tags": [7, "container""#,
            "invalid_value",
            "tags",
        ),
        (
            "suricata_alert.json",
            r#""signature": "ET EXPLOIT"#,
            r#""sig": "ET EXPLOIT"#,
            "missing_field",
            "alert.signature",
        ),
        (
            "suricata_alert.json",
            r#""severity": 1"#,
            r#""severity": "high""#,
            "invalid_value",
            "alert.severity",
        ),
        (
            "suricata_alert.json",
            r#""timestamp": "2026-11-28T11:00:00.251547+0100""#,
            r#""timestamp": "noon""#,
            "invalid_value",
            "timestamp",
        ),
        (
            "wazuh_alert.json",
            r#""level": 10"#,
            r#""level": "loud""#,
            "invalid_value",
            "rule.level",
        ),
        (
            "wazuh_alert.json",
            r#""timestamp": "2026-11-28T10:01:45.512+0000","#,
            "",
            "missing_field",
            "timestamp",
        ),
        (
            "ocsf_detection_finding.json",
            r#""class_uid": 2004"#,
            r#""class_uid": 3002"#,
            "invalid_value",
            "class_uid",
        ),
        (
            "ocsf_detection_finding.json",
            r#""time": 1795860240000"#,
            r#""time": "yesterday""#,
            "invalid_value",
            "time",
        ),
        (
            "ocsf_detection_finding.json",
            r#""finding_info": {"#,
            r#""finding": {"#,
            "missing_field",
            "finding_info.title",
        ),
    ];
    for (name, from, to, reason, field) in cases {
        let text = fixture(name);
        assert!(text.contains(from), "{name}: {from}");
        let broken = text.replacen(from, to, 1);
        let e = parse(broken.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), reason, "{name} with {to:?}: {e}");
        let detail = e.to_dlq_record(broken.as_bytes()).detail;
        assert!(detail.contains(field), "{name}: {detail}");
        assert!(detail.contains(e.format().unwrap().as_str()), "{detail}");
    }
}
