//! The fixtures of the formats added after native and Alertmanager (`tests/fixtures/ingest/`,
//! each written after its tool's documented example): what they parse into, that detection picks
//! their format, and that broken variants of each go to the DLQ with a reason.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::model::{Category, Severity, Status, stable_hash};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/ingest/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(name: &str, format: Format) -> Vec<Event> {
    let (detected, events) =
        parse(&fixture(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(detected, format, "{name}");
    events
}

fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
}

/// Every fixture of this file, with its format.
pub(super) const FIXTURES: [(&str, Format); 14] = [
    ("pagerduty_trigger.json", Format::PagerDuty),
    ("pagerduty_resolve.json", Format::PagerDuty),
    ("cloudevents_batch.json", Format::CloudEvents),
    ("zabbix_problem.json", Format::Zabbix),
    ("zabbix_recovery.json", Format::Zabbix),
    ("grafana_webhook.json", Format::Grafana),
    ("otel_logs.json", Format::Otel),
    ("ecs_kibana_alert.json", Format::Ecs),
    // The security formats, checked in `tests_security.rs`.
    ("falco_alert.json", Format::Falco),
    ("suricata_alert.json", Format::Suricata),
    ("wazuh_alert.json", Format::Wazuh),
    ("ocsf_detection_finding.json", Format::Ocsf),
    ("ecs_threat_alert.json", Format::Ecs),
    // The older formats, so the loops below cover every format.
    ("alertmanager_v4.json", Format::Alertmanager),
];

#[test]
fn fixture_pagerduty_trigger_and_resolve() {
    let [trigger] =
        <[Event; 1]>::try_from(parsed("pagerduty_trigger.json", Format::PagerDuty)).unwrap();
    assert_eq!(trigger.name, "disk usage");
    assert_eq!(trigger.source, "pagerduty");
    assert_eq!(trigger.status, Status::Firing);
    assert_eq!(trigger.severity, Severity::Major, "error");
    assert_eq!(trigger.ci.as_deref(), Some("pay-db-1"));
    assert_eq!(
        trigger.time,
        utc(10, 0, 0) + chrono::Duration::milliseconds(250)
    );
    assert_eq!(trigger.labels["component"], "postgres");
    assert_eq!(trigger.labels["group"], "payments");
    assert_eq!(
        trigger.attributes["summary"],
        json!("Disk /var/lib/postgresql at 97% on pay-db-1")
    );
    assert_eq!(
        trigger.attributes["custom_details"]["used_percent"],
        json!(97)
    );
    assert_eq!(
        trigger.attributes["links"][0]["text"],
        json!("Host in Checkmk")
    );
    assert!(trigger.attributes["images"].is_array());
    let kept = serde_json::to_string(&trigger).unwrap();
    assert!(
        !kept.contains("0123456789abcdef"),
        "the routing key is a secret: {kept}"
    );

    let [resolve] =
        <[Event; 1]>::try_from(parsed("pagerduty_resolve.json", Format::PagerDuty)).unwrap();
    assert_eq!(
        (resolve.status, resolve.time),
        (Status::Resolved, utc(10, 40, 0))
    );
    assert_eq!(resolve.fingerprint, trigger.fingerprint, "one alert");
    assert_ne!(resolve.id, trigger.id);
}

#[test]
fn fixture_cloudevents_batch() {
    let events = parsed("cloudevents_batch.json", Format::CloudEvents);
    let [alert, deploy] = <[Event; 2]>::try_from(events).unwrap();
    assert_eq!(alert.name, "CheckoutSlow");
    assert_eq!(alert.source, "cloudevents");
    assert_eq!(alert.time, utc(10, 0, 0));
    assert_eq!(alert.severity, Severity::Major);
    assert_eq!(alert.status, Status::Firing);
    assert_eq!(alert.category, Category::Availability);
    assert_eq!(alert.ci.as_deref(), Some("checkout-web"), "the subject");
    assert_eq!(alert.labels["service"], "checkout");
    assert_eq!(alert.labels["probe"], "fra-1");
    assert_eq!(alert.attributes["p95_ms"], json!(2300));

    assert_eq!(deploy.category, Category::Change);
    assert_eq!(deploy.name, "com.example.ci.deployment.finished");
    assert_eq!(deploy.severity, Severity::Info);
    assert_eq!(deploy.time, utc(9, 55, 0));
    assert_eq!(deploy.ci.as_deref(), Some("payments-api"));
    assert_eq!(deploy.labels["service"], "payments");
    assert_eq!(deploy.attributes["version"], json!("2.14.0"));
    assert_eq!(
        deploy.attributes["cloudevents.source"],
        json!("/ci/pipelines/payments-api")
    );
    assert_ne!(alert.id, deploy.id);
}

#[test]
fn a_cloudevents_deployment_is_a_change_event() {
    let raw = br#"{"specversion":"1.0","type":"dev.cdevents.service.deployed.0.1.1",
        "source":"/argo","id":"d-1","time":"2026-11-28T10:00:00Z","subject":"payments-api"}"#;
    let (format, events) = parse(raw, &Limits::default()).unwrap();
    assert_eq!(format, Format::CloudEvents);
    assert_eq!(events[0].category, Category::Change);
    assert_eq!(events[0].ci.as_deref(), Some("payments-api"));
}

#[test]
fn fixture_zabbix_problem_and_recovery() {
    let [problem] = <[Event; 1]>::try_from(parsed("zabbix_problem.json", Format::Zabbix)).unwrap();
    assert_eq!(problem.name, "High CPU utilization (over 90% for 5m)");
    assert_eq!(problem.source, "zabbix");
    assert_eq!(
        (problem.status, problem.time),
        (Status::Firing, utc(10, 0, 0))
    );
    assert_eq!(problem.severity, Severity::Major, "High");
    assert_eq!(problem.category, Category::Performance, "the scope tag");
    assert_eq!(problem.ci.as_deref(), Some("web-1"));
    assert_eq!(problem.labels["service"], "shop");
    assert_eq!(problem.labels["host_ip"], "192.0.2.15");
    assert_eq!(
        problem.attributes["event_opdata"],
        json!("Current utilization: 96.2 %")
    );
    assert!(
        !problem.attributes.contains_key("event_recovery_id"),
        "an unfilled macro is absent"
    );

    let [recovery] =
        <[Event; 1]>::try_from(parsed("zabbix_recovery.json", Format::Zabbix)).unwrap();
    assert_eq!(
        (recovery.status, recovery.time),
        (Status::Resolved, utc(10, 20, 0))
    );
    assert_eq!(recovery.fingerprint, problem.fingerprint, "one alert");
    assert_ne!(recovery.id, problem.id);
}

#[test]
fn fixture_grafana_webhook() {
    let [firing, resolved] =
        <[Event; 2]>::try_from(parsed("grafana_webhook.json", Format::Grafana)).unwrap();
    for e in [&firing, &resolved] {
        assert_eq!(e.name, "High memory usage");
        assert_eq!(e.source, "grafana");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.attributes["orgId"], json!("1"));
        assert_eq!(
            e.attributes["externalURL"],
            json!("https://grafana.example/")
        );
    }
    assert_eq!(
        (firing.status, firing.time),
        (Status::Firing, utc(10, 0, 0))
    );
    assert_eq!(firing.ci.as_deref(), Some("pay-1"));
    assert_eq!(firing.attributes["values"], json!({"B": 93.5, "C": 1}));
    assert_eq!(
        firing.attributes["panelURL"],
        json!("https://grafana.example/d/node?viewPanel=4")
    );
    assert_eq!(
        (resolved.status, resolved.time),
        (Status::Resolved, utc(9, 50, 0))
    );
    assert!(
        !resolved.attributes.contains_key("values"),
        "null is absent"
    );
    assert!(
        !resolved.attributes.contains_key("panelURL"),
        "\"\" is absent"
    );
    assert_ne!(firing.fingerprint, resolved.fingerprint, "two alerts");
}

#[test]
fn fixture_otel_logs() {
    let [timeout, crash, recovered] =
        <[Event; 3]>::try_from(parsed("otel_logs.json", Format::Otel)).unwrap();
    assert_eq!(timeout.name, "payment.timeout");
    assert_eq!(timeout.source, "otel");
    assert_eq!(
        (timeout.status, timeout.time),
        (Status::Firing, utc(10, 0, 0))
    );
    assert_eq!(timeout.severity, Severity::Major, "17 is ERROR");
    assert_eq!(timeout.ci.as_deref(), Some("node-7"));
    assert_eq!(timeout.labels["service"], "checkout");
    assert_eq!(timeout.labels["service.namespace"], "shop");
    assert!(!timeout.labels.contains_key("service.instance.id"));
    assert_eq!(timeout.attributes["attempts"], json!(3));
    assert_eq!(timeout.attributes["order"], json!({"id": "o-981"}));
    assert_eq!(timeout.attributes["tags"], json!(["pci", "eu"]));
    assert_eq!(
        timeout.attributes["traceId"],
        json!("5b8efff798038103d269b633813fc60c")
    );

    assert_eq!(
        crash.name, "checkout worker crashed: out of memory",
        "from the body"
    );
    assert_eq!(crash.severity, Severity::Critical, "21 is FATAL");
    assert_eq!(crash.time, utc(10, 1, 0));

    assert_eq!(
        (recovered.status, recovered.time),
        (Status::Resolved, utc(10, 10, 0))
    );
    assert_eq!(recovered.fingerprint, timeout.fingerprint, "one alert");
    assert_ne!(recovered.id, timeout.id);
}

#[test]
fn fixture_ecs_kibana_alert() {
    let [e] = <[Event; 1]>::try_from(parsed("ecs_kibana_alert.json", Format::Ecs)).unwrap();
    assert_eq!(e.name, "Multiple failed logins");
    assert_eq!(e.source, "ecs");
    assert_eq!((e.status, e.time), (Status::Firing, utc(10, 5, 30)));
    assert_eq!(e.severity, Severity::Major, "kibana.alert.severity high");
    assert_eq!(e.category, Category::Security);
    assert_eq!(e.ci.as_deref(), Some("vpn-gw-1"));
    assert_eq!(e.labels["service"], "vpn");
    assert_eq!(e.labels["site"], "fra");
    assert_eq!(
        e.fingerprint,
        stable_hash(&["ecs", "b3f2c1d0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0"])
    );
    assert_eq!(
        e.attributes["threat.tactic.name"],
        json!("Credential Access")
    );
    assert_eq!(e.attributes["threat.technique.id"], json!(["T1110"]));
    assert_eq!(
        e.attributes["kibana.alert.original_time"],
        json!("2026-11-28T10:05:12.000Z")
    );
    assert_eq!(e.attributes["event.severity"], json!(73));
    assert!(
        e.attributes["message"]
            .as_str()
            .unwrap()
            .starts_with("5 failed logins")
    );
    assert!(
        !e.attributes.contains_key("user.name"),
        "only the documented prefixes"
    );

    // The same alert recovered: the same uuid, so the same alert.
    let text = String::from_utf8(fixture("ecs_kibana_alert.json")).unwrap();
    let recovered = text.replace(
        r#""kibana.alert.status": "active","#,
        r#""kibana.alert.status": "recovered", "kibana.alert.end": "2026-11-28T10:25:00Z","#,
    );
    let (_, events) = parse(recovered.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        (events[0].status, events[0].time),
        (Status::Resolved, utc(10, 25, 0))
    );
    assert_eq!(events[0].fingerprint, e.fingerprint);
}

#[test]
fn every_format_has_a_fixture_and_each_parses_the_same_twice() {
    for format in Format::ALL {
        let covered = FIXTURES.iter().any(|(_, f)| *f == format) || format == Format::Native;
        assert!(covered, "{format} has no fixture");
    }
    for (name, format) in FIXTURES {
        let raw = fixture(name);
        let first = parse(&raw, &Limits::default()).unwrap();
        assert_eq!(first, parse(&raw, &Limits::default()).unwrap(), "{name}");
        assert_eq!(
            first.1,
            parse_as(format, &raw, &Limits::default()).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn detection_follows_the_documented_order() {
    let detect = |raw: &str| parse(raw.as_bytes(), &Limits::default()).map(|(f, _)| f);
    // Log shippers add @timestamp to native events: they stay native.
    let native =
        r#"{"name":"X","time":"2026-11-28T10:00:00Z","@timestamp":"2026-11-28T10:00:01Z"}"#;
    assert_eq!(detect(native).unwrap(), Format::Native);
    // A stray host_name does not make a native event a Zabbix one.
    let native = r#"{"name":"X","time":"2026-11-28T10:00:00Z","host_name":"h"}"#;
    assert_eq!(detect(native).unwrap(), Format::Native);
    // CloudEvents have time too; specversion decides.
    let ce =
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2026-11-28T10:00:00Z"}"#;
    assert_eq!(detect(ce).unwrap(), Format::CloudEvents);
    // Grafana without orgId but with its version.
    let grafana = r#"{"version":"1","groupKey":"g","alerts":[]}"#;
    assert_eq!(detect(grafana).unwrap(), Format::Grafana);
    let am = r#"{"version":"4","groupKey":"g","alerts":[]}"#;
    assert_eq!(detect(am).unwrap(), Format::Alertmanager);
    // The keys alone pick the format; what is missing is then named by that format.
    let cases = [
        (r#"{"event_action":"trigger"}"#, Format::PagerDuty),
        (r#"{"routing_key":"k"}"#, Format::PagerDuty),
        (r#"{"resourceLogs":[]}"#, Format::Otel),
        (r#"{"@timestamp":"2026-11-28T10:00:00Z"}"#, Format::Ecs),
        (r#"{"event_value":"1"}"#, Format::Zabbix),
        (r#"{"trigger_id":"1"}"#, Format::Zabbix),
        (r#"{"specversion":null}"#, Format::CloudEvents),
        (
            r#"[{"specversion":"1.0"},{"name":"X"}]"#,
            Format::CloudEvents,
        ),
    ];
    for (raw, format) in cases {
        match parse(raw.as_bytes(), &Limits::default()) {
            Ok((f, _)) => assert_eq!(f, format, "{raw}"),
            Err(e) => assert_eq!(e.format(), Some(format), "{raw}: {e}"),
        }
    }
}

#[test]
fn broken_variants_of_each_fixture_go_to_the_dlq_with_a_reason() {
    // (fixture, text to replace, replacement, reason)
    let cases = [
        (
            "pagerduty_trigger.json",
            r#""event_action": "trigger""#,
            r#""event_action": "page""#,
            "invalid_value",
        ),
        (
            "pagerduty_trigger.json",
            r#""source": "pay-db-1","#,
            "",
            "missing_field",
        ),
        (
            "pagerduty_resolve.json",
            r#""payload": {"timestamp": "2026-11-28T10:40:00Z"}"#,
            r#""payload": {}"#,
            "missing_field",
        ),
        (
            "cloudevents_batch.json",
            r#""time": "2026-11-28T09:55:00Z","#,
            "",
            "missing_field",
        ),
        (
            "cloudevents_batch.json",
            r#""specversion": "1.0","#,
            r#""specversion": "0.3","#,
            "invalid_value",
        ),
        (
            "cloudevents_batch.json",
            r#""severity": "major""#,
            r#""severity": "urgent""#,
            "invalid_value",
        ),
        (
            "zabbix_problem.json",
            r#""event_time": "10:00:00""#,
            r#""event_time": "ten""#,
            "invalid_value",
        ),
        (
            "zabbix_problem.json",
            r#""event_severity": "High""#,
            r#""event_severity": "Meh""#,
            "invalid_value",
        ),
        (
            "zabbix_recovery.json",
            r#""event_value": "0""#,
            r#""event_value": "7""#,
            "invalid_value",
        ),
        (
            "grafana_webhook.json",
            r#""version": "1""#,
            r#""version": "2""#,
            "invalid_value",
        ),
        (
            "grafana_webhook.json",
            r#""startsAt": "2026-11-28T11:00:00+01:00","#,
            "",
            "missing_field",
        ),
        (
            "otel_logs.json",
            r#""severityNumber": 21"#,
            r#""severityNumber": 99"#,
            "invalid_value",
        ),
        (
            "otel_logs.json",
            r#""timeUnixNano": "1795860060000000000","#,
            "",
            "missing_field",
        ),
        (
            "ecs_kibana_alert.json",
            r#""kibana.alert.rule.name": "Multiple failed logins","#,
            "",
            "missing_field",
        ),
        (
            "ecs_kibana_alert.json",
            r#""kind": "signal""#,
            r#""kind": "metric""#,
            "invalid_value",
        ),
        (
            "ecs_kibana_alert.json",
            r#""service.name": "vpn","#,
            r#""service.name": "vpn", "service": {"name": "vpn"},"#,
            "invalid_value",
        ),
    ];
    for (name, from, to, reason) in cases {
        let text = String::from_utf8(fixture(name)).unwrap();
        assert!(text.contains(from), "{name}: {from}");
        let broken = text.replacen(from, to, 1);
        let e = parse(broken.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), reason, "{name} with {to:?}: {e}");
        let record = e.to_dlq_record(broken.as_bytes());
        assert_eq!(record.raw, broken);
        assert!(
            record.detail.contains(e.format().unwrap().as_str()),
            "{}",
            record.detail
        );
    }
    // Cut short, every fixture is malformed JSON.
    for (name, _) in FIXTURES {
        let raw = fixture(name);
        let e = parse(&raw[..raw.len() / 2], &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), "malformed_json", "{name}");
    }
    // A key given twice deep inside, which only the second pass reads, is malformed JSON too.
    let e = parse(
        br#"{"event_action":"resolve","dedup_key":"k","payload":{"timestamp":"2026-11-28T10:00:00Z","timestamp":"2026-11-28T10:00:00Z"}}"#,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.reason(), "malformed_json", "{e}");
}
