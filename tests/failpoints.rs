//! A bug that panics on one input must not stop d2c: the input goes to the DLQ with reason
//! `internal_error` and everything else goes on, in `d2c replay` and in the pipeline alike.
//! The panics are injected with failpoints (the `fail` crate), compiled in only with the
//! `failpoints` feature, which the test command turns on:
//! `cargo test --features failpoints --test failpoints`.
//!
//! - `ingest-parse=return(TEXT)`: parsing a record that contains TEXT panics;
//! - `engine-apply=return(NAME)`: applying an event named NAME panics halfway (its alert is in
//!   the state, nothing is published), so the engine must be rebuilt without it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml")
}

fn outage() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/outage.jsonl");
    std::fs::read(path)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn internal_errors(out: &[Value]) -> Vec<&Value> {
    out.iter()
        .filter(|o| o["type"] == "dlq" && o["reason"] == "internal_error")
        .collect()
}

#[test]
fn replay_dead_letters_an_input_the_engine_panics_on_and_goes_on_as_without_it() {
    let lines = outage();
    let poisoned = |l: &Vec<u8>| String::from_utf8_lossy(l).contains("\"QueueBacklog\"");
    assert_eq!(lines.iter().filter(|l| poisoned(l)).count(), 1);
    let env = [("FAILPOINTS", "engine-apply=return(QueueBacklog)")];
    let faulty = replay_records(&config(), &lines, &env);
    let errors = internal_errors(&faulty);
    assert_eq!(errors.len(), 1, "{faulty:#?}");
    let raw: Value = serde_json::from_str(errors[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["name"], "QueueBacklog");
    assert!(errors[0]["detail"].as_str().unwrap().contains("a bug"));

    // The rest is exactly what replaying without that line gives: the half-applied event left
    // nothing behind in the rebuilt engine.
    let without: Vec<Vec<u8>> = lines.iter().filter(|l| !poisoned(l)).cloned().collect();
    let expected = replay_records(&config(), &without, &[]);
    let rest: Vec<&Value> = faulty
        .iter()
        .filter(|o| o["reason"] != "internal_error")
        .collect();
    assert_eq!(rest, expected.iter().collect::<Vec<_>>());
    assert!(
        !rest.iter().any(|o| o.to_string().contains("email-worker")),
        "no incident of the poisoned event"
    );
}

#[test]
fn replay_dead_letters_a_record_the_parser_panics_on() {
    let mut lines = outage();
    lines.insert(
        3,
        br#"{"name":"X","time":"2026-11-28T10:00:30Z","attributes":{"note":"PANIC-ME"}}"#.to_vec(),
    );
    let env = [("FAILPOINTS", "ingest-parse=return(PANIC-ME)")];
    let faulty = replay_records(&config(), &lines, &env);
    let errors = internal_errors(&faulty);
    assert_eq!(errors.len(), 1, "{faulty:#?}");
    assert!(errors[0]["raw"].as_str().unwrap().contains("PANIC-ME"));
    let expected = replay_records(&config(), &outage(), &[]);
    let rest: Vec<&Value> = faulty
        .iter()
        .filter(|o| o["reason"] != "internal_error")
        .collect();
    assert_eq!(rest, expected.iter().collect::<Vec<_>>());
}

fn native(name: &str, ci: &str, t: &str, note: &str) -> Vec<u8> {
    json!({"name": name, "ci": ci, "severity": "critical", "time": t,
           "attributes": {"note": note}})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_dead_letters_panicking_records_and_goes_on() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let mut d2c = D2c::start(
        &brokers,
        &[
            (
                "FAILPOINTS",
                "engine-apply=return(QueueBacklog);ingest-parse=return(PANIC-ME)",
            ),
            // Ticks are off and the events stop at 10:00:15: a group wait would never end.
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
            ("D2C_CORRELATION__GROUP_INTERVAL", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let raw = vec![
        native("PostgresDown", "pg-payments-1", "2026-11-28T10:00:00Z", ""),
        native("QueueBacklog", "email-worker-1", "2026-11-28T10:00:05Z", ""),
        native("Whatever", "web-1", "2026-11-28T10:00:06Z", "PANIC-ME"),
        native("QueueStuck", "email-worker-1", "2026-11-28T10:00:10Z", ""),
        native(
            "HighLatency",
            "checkout-api-5c1a",
            "2026-11-28T10:00:15Z",
            "",
        ),
    ];
    produce_all(&producer(&brokers), "d2c.events.raw", &raw).await;

    let within = Duration::from_secs(90);
    let b = brokers.clone();
    let dlq = tokio::task::spawn_blocking(move || {
        read_until(&b, "d2c.dlq", 3, within, |rs| rs.len() >= 2)
    })
    .await
    .unwrap();
    assert_eq!(dlq.len(), 2, "{dlq:#?}");
    assert!(
        dlq.iter()
            .all(|r| r.header("d2c.reason").as_deref() == Some("internal_error"))
    );
    let payloads: Vec<String> = dlq
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect();
    assert!(
        payloads.iter().any(|p| p.contains("PANIC-ME")),
        "the raw record, from ingest: {payloads:?}"
    );
    assert!(
        payloads
            .iter()
            .any(|p| serde_json::from_str::<Value>(p).is_ok_and(|e| e["name"] == "QueueBacklog")),
        "the event, from correlate: {payloads:?}"
    );

    // Both stages went on: the events after the panics became incidents, and the rebuilt
    // engine has no trace of the event it panicked on.
    let b = brokers.clone();
    let incidents = tokio::task::spawn_blocking(move || {
        read_until(&b, "d2c.incidents", 3, within, |rs| {
            let all: Vec<Value> = rs.iter().map(Record::json).collect();
            let has = |s: &str| all.iter().any(|i| i.to_string().contains(s));
            has("QueueStuck") && has("HighLatency")
        })
    })
    .await
    .unwrap();
    let versions: Vec<Value> = incidents.iter().map(Record::json).collect();
    let email: Vec<&Value> = versions
        .iter()
        .filter(|i| i.to_string().contains("QueueStuck"))
        .collect();
    assert!(!email.is_empty(), "{versions:#?}");
    assert!(
        email
            .iter()
            .all(|i| !i.to_string().contains("QueueBacklog")),
        "{email:#?}"
    );
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&d2c.http, "/metrics").1;
        if metric(&text, "d2c_dlq_records_total{reason=\"internal_error\"}") == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(&text, "d2c_dlq_records_total{reason=\"internal_error\"}"),
        Some(2.0),
        "{text}"
    );
    assert!(d2c.child.try_wait().unwrap().is_none(), "still running");
    d2c.terminate(Duration::from_secs(30));
}
