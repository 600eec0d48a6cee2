//! Peak memory of parsing one record, per format: large but ordinary records of every format,
//! the worst shapes for a JSON tree (many tiny keys), and the three memory bombs of issue 14 (an
//! ECS document with a long key over many fields, an OTLP payload with a large resource over
//! thousands of log records, an Alertmanager group with a long `externalURL` over 5,000 alerts).
//! Each is parsed as the ingest stage parses it (`parse`, events kept) and as HTTP ingest checks
//! it (`count_as`, events dropped once checked); the table gives the peak heap above what was
//! in use before, and that divided by the record's size (the factor).
//!
//! Heap, not resident memory: a counting global allocator (`peak_alloc`, which needs no
//! `unsafe` here) gives the peak of one call exactly, where RSS only grows. Run with
//! `cargo bench --bench parse_memory`; results in BENCHMARKS.md ("Round 3: memory per record").

use d2c::ingest::{Format, Limits, count_as, parse};
use peak_alloc::PeakAlloc;
use serde_json::json;

#[global_allocator]
static PEAK: PeakAlloc = PeakAlloc;

/// Peak heap bytes above the starting point while `f` runs, and its result.
fn peak<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = PEAK.current_usage();
    PEAK.reset_peak_usage();
    let out = f();
    (PEAK.peak_usage().saturating_sub(before), out)
}

fn alert(i: usize) -> serde_json::Value {
    json!({"status": "firing", "labels": {"alertname": "HighLoad", "instance": format!("h{i}:9100"),
           "severity": "critical", "job": "node"}, "annotations": {"summary": "load high"},
           "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
           "generatorURL": "http://prometheus:9090/graph", "fingerprint": format!("{i:016x}")})
}

fn cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    let mut push =
        |format, case, v: serde_json::Value| out.push((format, case, v.to_string().into_bytes()));

    // Ordinary, large records.
    let natives: Vec<_> = (0..2500)
        .map(|i| {
            json!({"name": "HighErrorRate", "time": "2026-11-28T10:00:00Z", "ci": format!("db-{i}"),
                        "severity": "critical", "labels": {"service": "payments", "env": "prod"},
                        "attributes": {"summary": "5xx above 5% for 5 minutes", "n": i}})
        })
        .collect();
    push("native", "batch of 2,500 events", json!(natives));
    let alerts: Vec<_> = (0..3000).map(alert).collect();
    push(
        "alertmanager",
        "group of 3,000 alerts",
        json!({"version": "4", "groupKey": "g", "status": "firing",
        "receiver": "d2c", "externalURL": "http://alertmanager:9093", "alerts": alerts}),
    );
    let alerts: Vec<_> = (0..3000).map(alert).collect();
    push(
        "grafana",
        "group of 3,000 alerts",
        json!({"version": "1", "orgId": 1, "status": "firing",
        "receiver": "d2c", "externalURL": "http://grafana:3000/", "alerts": alerts}),
    );
    push(
        "pagerduty",
        "trigger with 600 KB of custom_details",
        json!({"routing_key": "r", "event_action": "trigger",
        "dedup_key": "k", "payload": {"summary": "disk", "source": "db-1", "severity": "error",
        "timestamp": "2026-11-28T10:00:00Z", "custom_details": {"log": "x".repeat(600_000)}}}),
    );
    let ces: Vec<_> = (0..2500)
        .map(|i| json!({"specversion": "1.0", "id": format!("{i}"), "source": "ci", "type": "com.example.deployment.finished",
                        "time": "2026-11-28T10:00:00Z", "subject": format!("svc-{i}"), "data": {"version": "1.2.3"}}))
        .collect();
    push("cloudevents", "batch of 2,500 events", json!(ces));
    push(
        "zabbix",
        "problem with a 600 KB message",
        json!({"event_id": "1", "event_name": "CPU", "event_value": "1",
        "event_date": "2026.11.28", "event_time": "10:00:00", "host_name": "web-1", "trigger_id": "7",
        "alert_message": "m".repeat(600_000)}),
    );
    let records: Vec<_> = (0..5000)
        .map(|i| {
            json!({"timeUnixNano": "1795860000000000000", "severityNumber": 17,
                        "body": {"stringValue": format!("payment {i} failed")},
                        "attributes": [{"key": "order", "value": {"intValue": i}}]})
        })
        .collect();
    push(
        "otel",
        "5,000 log records",
        json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "host.name", "value": {"stringValue": "node-7"}}]},
        "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}]}]}),
    );
    let mut ecs = serde_json::Map::new();
    for i in 0..20_000 {
        ecs.insert(format!("event.f{i:05}"), json!("value"));
    }
    ecs.insert("@timestamp".into(), json!("2026-11-28T10:00:00Z"));
    ecs.insert("event.kind".into(), json!("alert"));
    ecs.insert("rule.name".into(), json!("X"));
    push("ecs", "20,000 kept fields", json!(ecs));
    let fields: serde_json::Map<_, _> = (0..30_000).map(|i| (format!("f{i}"), json!(i))).collect();
    push(
        "falco",
        "30,000 output_fields",
        json!({"rule": "Shell", "time": "2026-11-28T10:00:00Z",
        "priority": "Critical", "output_fields": fields}),
    );
    push(
        "suricata",
        "alert with 600 KB payload",
        json!({"timestamp": "2026-11-28T10:00:00.000000+0000",
        "event_type": "alert", "src_ip": "203.0.113.7", "alert": {"signature": "X", "severity": 1},
        "payload_printable": "p".repeat(600_000)}),
    );
    push(
        "wazuh",
        "alert with 600 KB full_log",
        json!({"timestamp": "2026-11-28T10:00:00.000+0000",
        "rule": {"description": "ssh", "level": 10}, "agent": {"name": "db-2"}, "manager": {"name": "m"},
        "full_log": "l".repeat(600_000)}),
    );
    push(
        "ocsf",
        "finding with 600 KB message",
        json!({"class_uid": 2004, "time": 1795860000000i64,
        "finding_info": {"title": "X"}, "message": "m".repeat(600_000)}),
    );

    // The worst shape for a JSON tree: 1 MiB of tiny keys.
    let tiny: serde_json::Map<_, _> = (0..100_000).map(|i| (format!("{i:x}"), json!(1))).collect();
    push(
        "native",
        "attributes: 100,000 tiny keys",
        json!({"name": "X", "time": "2026-11-28T10:00:00Z", "attributes": tiny}),
    );
    let tiny: serde_json::Map<_, _> = (0..100_000).map(|i| (format!("{i:x}"), json!(1))).collect();
    push(
        "wazuh",
        "data: 100,000 tiny keys",
        json!({"timestamp": "2026-11-28T10:00:00.000+0000",
        "rule": {"description": "ssh", "level": 10}, "manager": {"name": "m"}, "data": tiny}),
    );

    // The bombs of issue 14, at the sizes reported there.
    for (case, key_bytes, leaves) in [
        ("229 KB: a long key over many kept fields", 115_000, 16_000),
        ("589 KB: the same, larger", 290_000, 40_000),
    ] {
        let leaves: serde_json::Map<_, _> =
            (0..leaves).map(|i| (format!("{i:x}"), json!(1))).collect();
        push(
            "ecs",
            case,
            json!({"@timestamp": "2026-11-28T10:00:00Z", "event.kind": "alert", "rule.name": "X",
            "threat": {"x".repeat(key_bytes): leaves}}),
        );
    }
    let resource: Vec<_> = (0..300)
        .map(|i| json!({"key": format!("a{i:05}"), "value": {"stringValue": "v".repeat(1000)}}))
        .collect();
    let records =
        vec![json!({"timeUnixNano": "1795860000000000000", "body": {"stringValue": "boom"}}); 4000];
    push(
        "otel",
        "594 KB: a 300 KB resource over 4,000 records",
        json!({"resourceLogs": [{"resource": {"attributes": resource},
        "scopeLogs": [{"logRecords": records}]}]}),
    );
    let alerts: Vec<_> = (0..5000)
        .map(|i| json!({"labels": {"alertname": format!("A{i}")}, "startsAt": "2026-11-28T10:00:00Z"}))
        .collect();
    push(
        "alertmanager",
        "634 KB: a 350 KB externalURL over 5,000 alerts",
        json!({"version": "4", "receiver": "d2c",
        "externalURL": format!("http://am/{}", "x".repeat(350_000)), "alerts": alerts}),
    );
    out
}

fn main() {
    let limits = Limits::default();
    println!(
        "| format | record | size | parse: result | parse: peak | factor | HTTP count: peak | factor |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|");
    let mut worst: f64 = 0.0;
    for (name, case, raw) in cases() {
        let format = Format::from_name(name).unwrap();
        let (parse_peak, parsed) = peak(|| parse(&raw, &limits).map(|(_, events)| events.len()));
        let (count_peak, counted) = peak(|| count_as(format, &raw, &limits));
        assert_eq!(parsed.as_ref().ok(), counted.as_ref().ok(), "{name} {case}");
        let result = match parsed {
            Ok(n) => format!("{n} events"),
            Err(e) => format!("DLQ `{}`", e.reason()),
        };
        let mb = |b: usize| format!("{:.1} MB", b as f64 / 1e6);
        let factor = |b: usize| b as f64 / raw.len() as f64;
        worst = worst.max(factor(parse_peak)).max(factor(count_peak));
        println!(
            "| {name} | {case} | {} KB | {result} | {} | {:.1}× | {} | {:.1}× |",
            raw.len() / 1000,
            mb(parse_peak),
            factor(parse_peak),
            mb(count_peak),
            factor(count_peak)
        );
    }
    println!("\nworst factor: {worst:.1}× the record's size");
}
