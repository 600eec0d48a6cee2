//! The fuzz suite: no input may panic d2c, and every input it rejects comes out as a DLQ record
//! with a reason. Structure-aware generators (proptest) build payloads of every input format
//! and the control lines (tick, ack, silence, decision, problem, run), mostly well-formed with one field at a
//! time wrong, extreme or missing; every fixture of `tests/fixtures/ingest/` is mutated (a field
//! deleted, retyped, set to an extreme number or date, a huge string, deep nesting) and its
//! bytes flipped and cut. All of it runs through ingest and one engine via the library (`d2c`'s
//! `replay::run`, plus the engine's control inputs directly), and one batch through the
//! `d2c replay` binary.
//!
//! A panic anywhere would show as a DLQ record with reason `internal_error` (ingest and the
//! engine catch them per input), so "no panics" is "no `internal_error`".
//!
//! The default run takes well under a minute; a release check runs more cases:
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use d2c::engine::{Input, Refusal, Settings};
use d2c::ingest::{IngestError, Limits, parse};
use d2c::model::{Ack, ChangeDecision, DecisionStatus, Output};
use d2c::suppress::{MatcherStrings, Silence};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{Map, Value, json};

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings::load(&root().join("config/d2c.toml")).unwrap())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cases per property: `PROPTEST_CASES` when set, else `default` (sized so the whole suite
/// stays well under a minute in a debug build).
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ------------------------------------------------------------------ values

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-zA-Z0-9_.:/-]{1,16}",
        1 => Just(String::new()),
        1 => "\\PC{0,12}",
        1 => Just("\u{0}\u{feff}\u{202e}é漢🙂".to_owned()),
        1 => (1usize..300_000).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

fn date() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (0u32..60, 0u32..60).prop_map(|(m, s)| format!("2026-11-28T10:{m:02}:{s:02}Z")),
        1 => Just("2026-11-28T10:00:00.123456789+01:00".to_owned()),
        1 => Just("2026-11-28T10:00:00.000000+0000".to_owned()),
        1 => Just("1970-01-01T00:00:00Z".to_owned()),
        1 => Just("1969-12-31T23:59:59Z".to_owned()),
        1 => Just("0001-01-01T00:00:00Z".to_owned()),
        1 => Just("9999-12-31T23:59:59Z".to_owned()),
        1 => Just("+262142-12-31T23:59:59Z".to_owned()),
        1 => Just("-262143-01-01T00:00:00Z".to_owned()),
        1 => Just("2026-02-30T10:00:00Z".to_owned()),
        1 => Just("2036-11-28T10:00:00Z".to_owned()),
        1 => text(),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (0i64..100).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => Just(json!(i64::MIN)),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(1e308)),
        1 => Just(json!(-1.5)),
        1 => Just(json!(8_000_000_000_000_000i64)),
    ]
    .boxed()
}

fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z.@_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A field: mostly what `typical` gives, sometimes any JSON, sometimes absent (`None`).
fn field(typical: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        8 => typical.prop_map(Some),
        1 => any_json().prop_map(Some),
        1 => Just(None),
    ]
    .boxed()
}

fn s(strategy: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    strategy.prop_map(Value::String).boxed()
}

fn one_of(words: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(words).prop_map(Value::from).boxed()
}

/// An object of the fields present.
fn obj(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect::<Map<_, _>>(),
    )
}

fn labels() -> BoxedStrategy<Value> {
    prop::collection::btree_map("[a-z_]{1,8}", text().prop_map(Value::String), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

const SEVERITIES: &[&str] = &[
    "critical", "major", "warning", "info", "error", "p1", "sev9",
];
const STATUSES: &[&str] = &["firing", "resolved", "ok", "problem", "pending"];

// ------------------------------------------------------------------ formats

fn native() -> BoxedStrategy<Value> {
    (
        field(s(text())),
        field(s(date())),
        field(one_of(SEVERITIES)),
        field(one_of(STATUSES)),
        field(s(text())),
        field(one_of(&["availability", "security", "change", "db"])),
        field(labels()),
        field(any_json()),
    )
        .prop_map(|(name, time, sev, status, ci, cat, labels, attrs)| {
            obj(vec![
                ("name", name),
                ("time", time),
                ("severity", sev),
                ("status", status),
                ("ci", ci),
                ("category", cat),
                ("labels", labels),
                ("attributes", attrs),
            ])
        })
        .boxed()
}

fn alert() -> BoxedStrategy<Value> {
    (
        field(one_of(STATUSES)),
        field(
            labels()
                .prop_map(|mut l| {
                    l["alertname"] = json!("HighLoad");
                    l
                })
                .boxed(),
        ),
        field(labels()),
        field(s(date())),
        field(s(date())),
        field(s(text())),
    )
        .prop_map(|(status, labels, annotations, starts, ends, fp)| {
            obj(vec![
                ("status", status),
                ("labels", labels),
                ("annotations", annotations),
                ("startsAt", starts),
                ("endsAt", ends),
                ("fingerprint", fp),
            ])
        })
        .boxed()
}

fn alertmanager(version: &'static str) -> BoxedStrategy<Value> {
    (
        field(Just(json!(version)).boxed()),
        field(one_of(STATUSES)),
        field(s(text())),
        field(s(text())),
        field(
            prop::collection::vec(alert(), 0..6)
                .prop_map(Value::Array)
                .boxed(),
        ),
    )
        .prop_map(move |(v, status, receiver, url, alerts)| {
            let mut o = obj(vec![
                ("version", v),
                ("status", status),
                ("receiver", receiver),
                ("externalURL", url),
                ("alerts", alerts),
                ("groupKey", Some(json!("{}:{}"))),
            ]);
            if version == "1" {
                o["orgId"] = json!(1);
            }
            o
        })
        .boxed()
}

fn pagerduty() -> BoxedStrategy<Value> {
    (
        field(one_of(&["trigger", "acknowledge", "resolve", "snooze"])),
        field(s(text())),
        field(s(text())),
        field(s(text())),
        field(one_of(SEVERITIES)),
        field(s(date())),
        field(any_json()),
    )
        .prop_map(|(action, key, summary, source, sev, ts, details)| {
            let payload = obj(vec![
                ("summary", summary),
                ("source", source),
                ("severity", sev),
                ("timestamp", ts),
                ("custom_details", details),
            ]);
            obj(vec![
                ("routing_key", Some(json!("r"))),
                ("event_action", action),
                ("dedup_key", key),
                ("payload", Some(payload)),
            ])
        })
        .boxed()
}

fn cloudevent() -> BoxedStrategy<Value> {
    (
        field(one_of(&["1.0", "0.3"])),
        field(s(text())),
        field(s(text())),
        field(one_of(&[
            "com.example.deployment.finished",
            "alert.fired",
            "",
        ])),
        field(s(date())),
        field(native()),
    )
        .prop_map(|(v, id, source, kind, time, data)| {
            obj(vec![
                ("specversion", v),
                ("id", id),
                ("source", source),
                ("type", kind),
                ("time", time),
                ("data", data),
            ])
        })
        .boxed()
}

fn cloudevents() -> BoxedStrategy<Value> {
    prop_oneof![
        cloudevent(),
        prop::collection::vec(cloudevent(), 0..5).prop_map(Value::Array),
    ]
    .boxed()
}

fn zabbix() -> BoxedStrategy<Value> {
    (
        field(s(text())),
        field(one_of(&["1", "0", "2"])),
        field(one_of(&["High", "Disaster", "Average", "Nope"])),
        field(one_of(&[
            "2026.11.28",
            "9999.12.31",
            "0000.01.01",
            "2026-11-28T10:00:00+01:00",
        ])),
        field(one_of(&["10:00:00", "25:61:61", ""])),
        field(one_of(&[
            "+01:00",
            "-0500",
            "UTC",
            "Europe/Berlin",
            "+99:99",
        ])),
        field(s(text())),
        field(s(text())),
        field(any_json()),
    )
        .prop_map(|(name, value, sev, d, t, tz, host, id, tags)| {
            obj(vec![
                ("event_name", name),
                ("event_value", value),
                ("event_severity", sev),
                ("event_date", d),
                ("event_time", t),
                ("event_tz", tz),
                ("host_name", host),
                ("event_id", id),
                ("event_tags", tags),
            ])
        })
        .boxed()
}

fn key_values() -> BoxedStrategy<Value> {
    let value = prop_oneof![
        s(text()).prop_map(|v| json!({"stringValue": v})),
        number().prop_map(|n| json!({"intValue": n})),
        number().prop_map(|n| json!({"doubleValue": n})),
        any_json().prop_map(|v| json!({"kvlistValue": {"values": [{"key": "k", "value": v}]}})),
        any_json(),
    ];
    prop::collection::vec(
        (
            prop::sample::select(
                &["service.name", "host.name", "event.name", "d2c.status", "x"][..],
            ),
            value,
        )
            .prop_map(|(k, v)| json!({"key": k, "value": v})),
        0..5,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn otel() -> BoxedStrategy<Value> {
    let nanos = prop_oneof![
        Just(json!("1795860000000000000")),
        Just(json!("0")),
        Just(json!("18446744073709551615")),
        number(),
        s(text()),
    ]
    .boxed();
    let record = (
        field(nanos.clone()),
        field(nanos),
        field(number()),
        field(s(text()).prop_map(|b| json!({"stringValue": b})).boxed()),
        field(key_values()),
    )
        .prop_map(|(t, o, sev, body, attrs)| {
            obj(vec![
                ("timeUnixNano", t),
                ("observedTimeUnixNano", o),
                ("severityNumber", sev),
                ("body", body),
                ("attributes", attrs),
            ])
        });
    (key_values(), prop::collection::vec(record, 0..5))
        .prop_map(|(resource, records)| {
            json!({"resourceLogs": [{"resource": {"attributes": resource},
                   "scopeLogs": [{"scope": {"name": "s"}, "logRecords": records}]}]})
        })
        .boxed()
}

fn ecs() -> BoxedStrategy<Value> {
    (
        field(s(date())),
        field(one_of(&["alert", "signal", "metric"])),
        field(s(text())),
        field(one_of(&["active", "recovered", "open"])),
        field(s(text())),
        field(any_json()),
        field(any_json()),
    )
        .prop_map(|(ts, kind, name, status, host, threat, extra)| {
            obj(vec![
                ("@timestamp", ts),
                ("event", Some(obj(vec![("kind", kind)]))),
                ("rule.name", name),
                ("kibana.alert.status", status),
                ("host", Some(obj(vec![("name", host)]))),
                ("threat", threat),
                ("event.kind", extra),
            ])
        })
        .boxed()
}

fn falco() -> BoxedStrategy<Value> {
    (
        field(s(text())),
        field(s(date())),
        field(one_of(&["Critical", "Notice", "Bogus"])),
        field(any_json()),
    )
        .prop_map(|(rule, time, prio, fields)| {
            obj(vec![
                ("rule", rule),
                ("time", time),
                ("priority", prio),
                ("output_fields", Some(fields.unwrap_or(json!({})))),
                ("tags", Some(json!(["mitre_execution", "T1059"]))),
            ])
        })
        .boxed()
}

fn suricata() -> BoxedStrategy<Value> {
    (
        field(s(date())),
        field(one_of(&["alert", "flow"])),
        field(s(text())),
        field(number()),
        field(any_json()),
    )
        .prop_map(|(ts, kind, sig, sev, meta)| {
            obj(vec![
                ("timestamp", ts),
                ("event_type", kind),
                ("src_ip", Some(json!("203.0.113.7"))),
                (
                    "alert",
                    Some(obj(vec![
                        ("signature", sig),
                        ("severity", sev),
                        ("metadata", meta),
                    ])),
                ),
            ])
        })
        .boxed()
}

fn wazuh() -> BoxedStrategy<Value> {
    (
        field(s(date())),
        field(s(text())),
        field(number()),
        field(any_json()),
    )
        .prop_map(|(ts, desc, level, mitre)| {
            obj(vec![
                ("timestamp", ts),
                (
                    "rule",
                    Some(obj(vec![
                        ("description", desc),
                        ("level", level),
                        ("mitre", mitre),
                    ])),
                ),
                ("agent", Some(json!({"name": "db-2", "ip": "10.0.2.2"}))),
                ("manager", Some(json!({"name": "wazuh"}))),
            ])
        })
        .boxed()
}

fn ocsf() -> BoxedStrategy<Value> {
    (
        field(number()),
        field(number()),
        field(s(text())),
        field(s(date())),
        field(number()),
        field(any_json()),
    )
        .prop_map(|(class, time, title, time_dt, sev, attacks)| {
            obj(vec![
                ("class_uid", Some(class.unwrap_or(json!(2004)))),
                ("time", time),
                ("time_dt", time_dt),
                ("severity_id", sev),
                (
                    "finding_info",
                    Some(obj(vec![("title", title), ("attacks", attacks)])),
                ),
            ])
        })
        .boxed()
}

fn payload() -> BoxedStrategy<Value> {
    prop_oneof![
        native(),
        prop::collection::vec(native(), 0..4).prop_map(Value::Array),
        alertmanager("4"),
        alertmanager("1"),
        pagerduty(),
        cloudevents(),
        zabbix(),
        otel(),
        ecs(),
        falco(),
        suricata(),
        wazuh(),
        ocsf(),
    ]
    .boxed()
}

// ------------------------------------------------------------------ control lines

fn control_line() -> BoxedStrategy<Value> {
    let silence = (
        field(s(text())),
        field(s(date())),
        field(s(date())),
        field(s(text())),
    )
        .prop_map(|(matchers, start, end, id)| {
            obj(vec![
                ("matchers", matchers.map(|m| json!(format!("{{ci={m:?}}}")))),
                ("starts_at", start),
                ("ends_at", end),
                ("id", id),
            ])
        });
    prop_oneof![
        date().prop_map(|t| json!({"tick": t})),
        (s(text()), field(s(date())))
            .prop_map(|(i, t)| json!({"ack": obj(vec![("incident", Some(i)), ("by", Some(json!("alice"))), ("time", t)])})),
        silence.prop_map(|s| json!({"silence": s})),
        (s(text()), one_of(&["approved", "rejected", "maybe"]), field(s(date())))
            .prop_map(|(c, d, t)| json!({"decision": obj(vec![("change", Some(c)), ("decision", Some(d)), ("by", Some(json!("cab"))), ("time", t)])})),
        (
            one_of(&["open", "known_error", "resolve", "reopen"]),
            s(text()),
            field(s(text())),
            field(s(date()))
        )
            .prop_map(|(action, problem, text, t)| json!({"problem": obj(vec![
                ("action", Some(action)),
                ("problem", Some(problem)),
                ("title", text.clone()),
                ("service", Some(json!("payments-db"))),
                ("workaround", text),
                ("by", Some(json!("alice"))),
                ("time", t),
            ])})),
        (
            s(text()),
            one_of(&["implementing", "implemented", "failed", "dry_run", "exploded"]),
            field(s(date()))
        )
            .prop_map(|(change, outcome, t)| json!({"run": obj(vec![
                ("change", Some(change)),
                ("outcome", Some(outcome)),
                ("time", t),
            ])})),
    ]
    .boxed()
}

fn line() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => payload().prop_map(|v| v.to_string().into_bytes()),
        2 => control_line().prop_map(|v| v.to_string().into_bytes()),
    ]
    .boxed()
}

// ------------------------------------------------------------------ fixtures, mutated

fn fixtures() -> &'static [(String, Value)] {
    static FIXTURES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = root().join("tests/fixtures/ingest");
        let mut all: Vec<(String, Value)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    serde_json::from_str(&text).unwrap(),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(all.len() >= 16, "every fixture is fuzzed");
        all
    })
}

/// Every path of `v` (keys of objects, indices of arrays), parents before children.
fn paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(Step::Key(k.clone()));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Replace(Value),
    /// The value wrapped in this many arrays (past 128, serde_json's nesting limit).
    Nest(usize),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        2 => Just(Mutation::Delete),
        2 => any_json().prop_map(Mutation::Replace),
        2 => number().prop_map(Mutation::Replace),
        2 => date().prop_map(|d| Mutation::Replace(Value::String(d))),
        1 => (100_000usize..400_000).prop_map(|n| Mutation::Replace(Value::String("y".repeat(n)))),
        1 => prop::sample::select(&[10usize, 126, 127, 128, 129, 5000][..]).prop_map(Mutation::Nest),
    ]
    .boxed()
}

impl Step {
    fn get<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        match self {
            Step::Key(k) => &mut v[k.as_str()],
            Step::Index(i) => &mut v[*i],
        }
    }
}

fn mutate(doc: &Value, path: &[Step], m: &Mutation) -> Value {
    let mut doc = doc.clone();
    let Some((last, parents)) = path.split_last() else {
        return doc;
    };
    let at = parents.iter().fold(&mut doc, |v, step| step.get(v));
    match (m, last) {
        (Mutation::Delete, Step::Key(k)) => {
            at.as_object_mut().map(|o| o.remove(k));
        }
        (Mutation::Delete, Step::Index(i)) => {
            at.as_array_mut().map(|a| a.remove(*i));
        }
        (Mutation::Replace(v), step) => *step.get(at) = v.clone(),
        (Mutation::Nest(n), step) => {
            let slot = step.get(at);
            *slot = (0..*n).fold(slot.take(), |v, _| Value::Array(vec![v]));
        }
    }
    doc
}

/// A fixture with one mutation, as a line.
fn mutated_fixture() -> BoxedStrategy<Vec<u8>> {
    (
        0..fixtures().len(),
        any::<prop::sample::Index>(),
        mutation(),
    )
        .prop_map(|(f, at, m)| {
            let doc = &fixtures()[f].1;
            let mut all = Vec::new();
            paths(doc, &mut Vec::new(), &mut all);
            let path = at.get(&all).clone();
            match m {
                // Deep nesting is written as text: a tree that deep is not built here either.
                Mutation::Nest(n) if n > 100 => {
                    let marker = json!("\u{1}NEST\u{1}");
                    let text = mutate(doc, &path, &Mutation::Replace(marker.clone())).to_string();
                    let deep = format!("{}1{}", "[".repeat(n), "]".repeat(n));
                    text.replacen(&marker.to_string(), &deep, 1).into_bytes()
                }
                _ => mutate(doc, &path, &m).to_string().into_bytes(),
            }
        })
        .boxed()
}

/// A fixture's bytes with some flipped, cut or duplicated.
fn mangled_fixture() -> BoxedStrategy<Vec<u8>> {
    (
        0..fixtures().len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(f, flips, cut)| {
            let mut bytes = fixtures()[f].1.to_string().into_bytes();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            let cut = cut.index(bytes.len() + 1);
            bytes.truncate(cut.max(1));
            bytes.retain(|b| *b != b'\n');
            bytes
        })
        .boxed()
}

// ------------------------------------------------------------------ the checks

/// Replays `lines` in-process (ingest and one engine) and checks: no panic (no
/// `internal_error`), every DLQ record has a known reason and a sentence, and every line ingest
/// rejects (that is no control line) is one.
fn check(lines: &[Vec<u8>]) -> Result<Vec<Value>, TestCaseError> {
    let mut input = Vec::new();
    for l in lines {
        input.extend_from_slice(l);
        input.push(b'\n');
    }
    let mut out = Vec::new();
    d2c::replay::run(settings(), &input[..], &mut out).unwrap();
    let out: Vec<Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let known: BTreeSet<&str> = IngestError::REASONS
        .iter()
        .chain(&Refusal::REASONS)
        .copied()
        .collect();
    let limits = settings().config.ingest.limits();
    let mut rejected = 0;
    for l in lines
        .iter()
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        if is_control(l) {
            continue;
        }
        if let Err(e) = parse(l, &limits) {
            prop_assert_ne!(
                e.reason(),
                "internal_error",
                "parse panicked on {:?}",
                String::from_utf8_lossy(&l[..l.len().min(300)])
            );
            rejected += 1;
        }
    }
    let dlq: Vec<&Value> = out.iter().filter(|o| o["type"] == "dlq").collect();
    for d in &dlq {
        let reason = d["reason"].as_str().unwrap_or_default();
        prop_assert_ne!(reason, "internal_error", "{}", d);
        prop_assert!(known.contains(reason), "unknown reason {}", reason);
        prop_assert!(d["detail"].as_str().is_some_and(|s| s.len() > 10), "{}", d);
    }
    let from_ingest = dlq
        .iter()
        .filter(|d| IngestError::REASONS.contains(&d["reason"].as_str().unwrap_or_default()))
        .count();
    prop_assert!(
        from_ingest >= rejected,
        "{} rejected lines, {} ingest dlq records",
        rejected,
        from_ingest
    );
    Ok(out)
}

/// Whether replay reads `line` as a control line (the same test as `replay.rs`'s).
fn is_control(line: &[u8]) -> bool {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(line) else {
        return false;
    };
    m.len() == 1
        && ["tick", "ack", "silence", "decision", "problem", "run"]
            .iter()
            .any(|k| line.starts_with(format!("{{\"{k}\"").as_bytes()))
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn generated_payloads_and_control_lines(lines in prop::collection::vec(line(), 1..8)) {
        check(&lines)?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_fixtures(lines in prop::collection::vec(mutated_fixture(), 1..4)) {
        check(&lines)?;
    }

    #[test]
    fn mangled_fixtures(lines in prop::collection::vec(mangled_fixture(), 1..4)) {
        check(&lines)?;
    }
}

fn time() -> BoxedStrategy<DateTime<Utc>> {
    prop_oneof![
        (0i64..7200).prop_map(|s| DateTime::from_timestamp(1_795_860_000 + s, 0).unwrap()),
        Just(DateTime::<Utc>::MAX_UTC),
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::UNIX_EPOCH),
        // Milliseconds anywhere in chrono's range (years -262,143 to 262,142).
        (-8_200_000_000_000_000i64..8_200_000_000_000_000)
            .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Control {
    Tick(DateTime<Utc>),
    Ack(Ack),
    Silence(Silence),
    Decision(ChangeDecision),
    Fixture(usize),
}

fn control() -> BoxedStrategy<Control> {
    prop_oneof![
        time().prop_map(Control::Tick),
        (text(), time()).prop_map(|(incident, time)| Control::Ack(Ack {
            incident,
            by: "alice".into(),
            time
        })),
        (text(), time(), time(), text()).prop_map(|(m, starts_at, ends_at, id)| Control::Silence(
            Silence {
                id,
                matchers: MatcherStrings::from(format!("{{ci=~{m:?}}}").as_str()),
                starts_at,
                ends_at,
                created_by: String::new(),
                comment: String::new(),
            }
        )),
        (text(), any::<bool>(), time()).prop_map(|(change, ok, time)| Control::Decision(
            ChangeDecision {
                change,
                decision: if ok {
                    DecisionStatus::Approved
                } else {
                    DecisionStatus::Rejected
                },
                by: "cab".into(),
                comment: None,
                time,
            }
        )),
        (0..fixtures().len()).prop_map(Control::Fixture),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// The control inputs straight into the engine (as the correlate stage applies them), with
    /// times anywhere in chrono's range, between the fixtures' events.
    #[test]
    fn control_inputs_in_the_engine(inputs in prop::collection::vec(control(), 1..12)) {
        let mut engine = settings().engine();
        let limits = Limits::default();
        for c in &inputs {
            let events = match c {
                Control::Fixture(f) => parse(fixtures()[*f].1.to_string().as_bytes(), &limits).unwrap().1,
                _ => Vec::new(),
            };
            let mut applied = Vec::new();
            match c {
                Control::Tick(t) => applied.push(engine.try_apply(Input::Tick(*t))),
                Control::Ack(a) => applied.push(engine.try_apply(Input::Ack(a))),
                Control::Silence(s) => applied.push(engine.try_apply(Input::Silence(s))),
                Control::Decision(d) => applied.push(engine.try_apply(Input::Decision(d))),
                Control::Fixture(_) => applied.extend(events.iter().map(|e| engine.try_apply(e))),
            }
            for a in applied {
                let a = a.map_err(|p| TestCaseError::fail(format!("panicked on {c:?}: {}", p.message)))?;
                if let Some(r) = &a.refused {
                    let dlq = a.outputs.iter().any(|o| matches!(o, Output::Dlq(d) if d.reason == r.reason));
                    prop_assert!(dlq, "a refused input is a DLQ record: {:?}", a);
                }
            }
        }
    }
}

/// One batch of generated lines through the `d2c replay` binary: it exits cleanly, writes no
/// `internal_error`, and prints exactly what the library's replay gives.
#[test]
fn a_batch_through_the_replay_binary() {
    let mut runner = TestRunner::new_with_rng(
        config(1),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = prop::collection::vec(
        prop_oneof![3 => line(), 1 => mutated_fixture(), 1 => mangled_fixture()],
        200,
    );
    let lines = strategy.new_tree(&mut runner).unwrap().current();
    let expected = check(&lines).unwrap();
    let got = common::replay_records(&root().join("config/d2c.toml"), &lines, &[]);
    assert_eq!(got, expected);
    assert!(
        got.iter().any(|o| o["type"] == "dlq"),
        "the batch has bad input"
    );
    assert!(
        got.iter().any(|o| o["type"] == "incident"),
        "and good input"
    );
}

// ------------------------------------------------------------------ found by attacking (issue 14)

/// Timestamps chrono holds but no timer on them could be computed from: each one used to end
/// `d2c replay` (and the correlate stage, on every restart) with a panic.
#[test]
fn far_future_times_are_dlq_lines_in_replay() {
    let lines: Vec<Vec<u8>> = [
        r#"{"class_uid":2004,"time":8000000000000000,"finding_info":{"title":"X"},"device":{"hostname":"web-1"}}"#,
        r#"{"name":"DiskFull","ci":"db-1","status":"resolved","time":"+262142-01-01T00:00:00Z"}"#,
        r#"{"tick":"+262142-01-01T00:00:00Z"}"#,
        r#"{"name":"DiskFull","ci":"db-1","time":"2026-11-28T10:00:00Z"}"#,
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    // The last event's incident is published at once (no group wait: nothing comes after it).
    let out = common::replay_records(
        &root().join("config/d2c.toml"),
        &lines,
        &[("D2C_CORRELATION__GROUP_WAIT", "0s")],
    );
    let reasons: Vec<&str> = out
        .iter()
        .filter(|o| o["type"] == "dlq")
        .map(|o| o["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["time_out_of_range"; 3], "{out:#?}");
    assert_eq!(
        out.iter().filter(|o| o["type"] == "incident").count(),
        1,
        "{out:#?}"
    );
}
