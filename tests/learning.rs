//! Links learned from history, end to end: the d2c binary on a tansu broker is fed the outages
//! of `tests/scenarios/learned.jsonl` (the payments and the user database failing and
//! recovering together, with no dependency between them in the model). After the third, the
//! read API lists the learned link; the fourth outage is one incident.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn get_json(d2c: &D2c, path: &str) -> Value {
    let (status, body) = http_get(&d2c.http, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `f` every 200 ms until it gives a value or `within` passed.
fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_learned_from_repeated_outages_are_listed_and_group_the_next_one() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let d2c = D2c::start(&brokers, &[]);
    tokio::task::block_in_place(|| d2c.wait_ready(Duration::from_secs(60)));
    let input = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/learned.jsonl"
    ))
    .unwrap();
    // Tick lines are replay's; on Kafka, time moves with the events (the test runs without
    // ticks, as `d2c replay` does between them).
    let payloads: Vec<Vec<u8>> = input
        .lines()
        .filter(|l| !l.starts_with("{\"tick\""))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    assert!(
        tokio::task::block_in_place(|| get_json(&d2c, "/api/v1/topology/learned"))["links"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing learned yet"
    );
    produce_all(&producer(&brokers), "d2c.events.raw", &payloads).await;

    let link = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(90), || {
            let v = get_json(&d2c, "/api/v1/topology/learned");
            v["links"].as_array().unwrap().first().cloned()
        })
    })
    .expect("a learned link listed");
    assert_eq!(
        link["services"],
        serde_json::json!(["payments-db", "user-db"])
    );
    assert_eq!(link["learned"], true);
    assert!(link["co_occurrences"].as_u64().unwrap() >= 3, "{link:#}");

    // The service view shows it on the service too.
    let services = tokio::task::block_in_place(|| get_json(&d2c, "/api/v1/services"));
    let db = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "payments-db")
        .unwrap();
    assert_eq!(
        db["linked"],
        serde_json::json!([{"service": "user-db", "learned": true}])
    );
    assert_eq!(db["owner"], "dba-team");

    // The fourth outage: one incident with both databases.
    let both = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(90), || {
            let v = get_json(&d2c, "/api/v1/incidents");
            v["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["failing_services"].as_array().unwrap().len() == 2)
                .cloned()
        })
    })
    .expect("an incident holding both databases");
    assert_eq!(
        both["failing_services"],
        serde_json::json!(["payments-db", "user-db"])
    );
    drop(d2c);
    drop(broker);
}
