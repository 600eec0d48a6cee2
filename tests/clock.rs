//! Clock poisoning, end to end with ticks on: one future-dated event used to move its
//! partition's correlation clock years ahead for good, so the open security incident closed at
//! once and the next detection opened a second one. Now the record goes to the DLQ with reason
//! `clock_ahead` (ingest measures `ingest.max_ahead` against its wall clock, the clock the
//! ticks carry), and over HTTP it is answered 400.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use common::*;
use serde_json::{Value, json};

fn falco(rule: &str, time: chrono::DateTime<Utc>) -> Vec<u8> {
    json!({"rule": rule, "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
           "priority": "Critical", "hostname": "web-1",
           "output_fields": {"container.name": "shop"}, "tags": ["mitre_execution"]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dated_event_goes_to_the_dlq_and_the_open_incident_stays_open() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let mut d2c = D2c::start(&brokers, &[("D2C_INGEST__TICK_INTERVAL", "1s")]);
    d2c.wait_ready(Duration::from_secs(60));

    let now = Utc::now();
    let p = producer(&brokers);
    produce_all(
        &p,
        "d2c.events.raw",
        &[falco(
            "Terminal shell in container",
            now - chrono::Duration::seconds(60),
        )],
    )
    .await;
    let future = falco(
        "Terminal shell in container",
        now + chrono::Duration::days(3650),
    );
    produce_all(&p, "d2c.events.raw", std::slice::from_ref(&future)).await;
    produce_all(
        &p,
        "d2c.events.raw",
        &[falco(
            "Launch suspicious network tool",
            now - chrono::Duration::seconds(30),
        )],
    )
    .await;

    let within = Duration::from_secs(90);
    let b = brokers.clone();
    let dlq = tokio::task::spawn_blocking(move || {
        read_until(&b, "d2c.dlq", 3, within, |rs| !rs.is_empty())
    })
    .await
    .unwrap();
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    assert_eq!(dlq[0].header("d2c.reason").as_deref(), Some("clock_ahead"));
    assert_eq!(dlq[0].payload, future, "the original bytes");
    assert!(
        dlq[0]
            .header("d2c.error")
            .unwrap()
            .contains("ingest.max_ahead")
    );

    let b = brokers.clone();
    let incidents = tokio::task::spawn_blocking(move || {
        read_until(&b, "d2c.incidents", 3, within, |rs| {
            rs.iter().any(|r| {
                r.json()
                    .to_string()
                    .contains("Launch suspicious network tool")
            })
        })
    })
    .await
    .unwrap();
    let versions: Vec<Value> = incidents.iter().map(Record::json).collect();
    let ids: BTreeSet<&str> = versions.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        1,
        "the later detection joined the open incident: {versions:#?}"
    );
    assert!(
        versions.iter().all(|v| v["status"] == "open"),
        "{versions:#?}"
    );

    // HTTP ingest refuses it too, before writing anything.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/v1/events/falco", d2c.http))
        .body(future)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "clock_ahead", "{body}");

    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&d2c.http, "/metrics").1;
        if metric(&text, "d2c_dlq_records_total{reason=\"clock_ahead\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(&text, "d2c_dlq_records_total{reason=\"clock_ahead\"}"),
        Some(1.0),
        "{text}"
    );
    d2c.terminate(Duration::from_secs(30));
}
