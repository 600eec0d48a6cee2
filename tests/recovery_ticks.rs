//! Effectively once with the clock running: kill -9 of d2c while wall-clock ticks drive group
//! waits, group intervals and resolve holds. Versions held back at a checkpoint must come out
//! after a restart exactly as an uninterrupted engine gives them. The reference is the events
//! topic itself (events and ticks, per partition, in order) applied to one fresh engine per
//! partition: every `(id, version)` on `d2c.incidents` must be what that gives, byte for byte,
//! and nothing it gives may be missing. Runs on the mock cluster in a process of its own (its
//! group coordinator hands a dead member's partitions over).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

const PARTITIONS: i32 = 3;

/// Timers short enough to fire many times in a run of seconds.
const TIMING: [(&str, &str); 6] = [
    ("D2C_CORRELATION__GROUP_WAIT", "2s"),
    ("D2C_CORRELATION__GROUP_WAIT_MAX", "5s"),
    ("D2C_CORRELATION__GROUP_INTERVAL", "3s"),
    ("D2C_CORRELATION__RESOLVE_HOLD", "2s"),
    ("D2C_CORRELATION__REOPEN_WINDOW", "5s"),
    ("D2C_CORRELATION__RETENTION", "5m"),
];

fn env(ticks: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![
        ("D2C_STATE__CHECKPOINT_INTERVAL", "300ms"),
        // Whole checkpoints only (tests/recovery.rs kills with the changelog, the default).
        ("D2C_STATE__INCREMENTAL", "false"),
        ("D2C_KAFKA__SESSION_TIMEOUT", "3s"),
        ("D2C_KAFKA__PARTITIONS", "3"),
        ("D2C_KAFKA__CREATE_TOPICS", "false"),
        ("D2C_KAFKA__GROUP_INSTANCE_ID", "ticks-a"),
        ("D2C_INGEST__TICK_INTERVAL", ticks),
        ("D2C_LOG", "warn,d2c::pipeline::correlate=info"),
    ];
    env.extend(TIMING);
    env
}

/// One step of a paced storm at wall-clock time: symptoms before their causes, flapping hosts,
/// recoveries, so every kind of held-back version is pending at some point.
fn step(k: u64) -> Vec<Vec<u8>> {
    let t = Utc::now().to_rfc3339();
    let native = |name: &str, ci: &str, sev: &str, status: &str| {
        json!({"name": name, "ci": ci, "severity": sev, "status": status, "time": t})
            .to_string()
            .into_bytes()
    };
    let mut out = Vec::new();
    let phase = k % 40;
    // An outage of the payments chain, the symptom first.
    if (2..20).contains(&phase) {
        out.push(native(
            "HighErrorRate",
            "payments-api-7f9c",
            "critical",
            "firing",
        ));
    }
    if (6..20).contains(&phase) {
        out.push(native(
            "PostgresDown",
            "pg-payments-1",
            "critical",
            "firing",
        ));
    }
    if phase == 20 {
        out.push(native(
            "PostgresDown",
            "pg-payments-1",
            "critical",
            "resolved",
        ));
        out.push(native(
            "HighErrorRate",
            "payments-api-7f9c",
            "critical",
            "resolved",
        ));
    }
    // Hosts no service claims, each down for 2 s of every 7.5 s (longer than the resolve hold
    // when up, so their incidents resolve, reopen and close).
    for h in 0..6 {
        match (k + h * 5) % 30 {
            0..8 => out.push(native("DiskFull", &format!("host-{h}"), "major", "firing")),
            8 => out.push(native(
                "DiskFull",
                &format!("host-{h}"),
                "major",
                "resolved",
            )),
            _ => {}
        }
    }
    // The tracking API flapping now and then.
    if k % 60 < 12 {
        let status = if k % 4 < 2 { "firing" } else { "resolved" };
        out.push(native(
            "HighErrorRate",
            "tracking-api-1",
            "critical",
            status,
        ));
    }
    out
}

/// A record as read: payload and headers.
type Read = (Vec<u8>, Vec<(String, Vec<u8>)>);

/// Every record of `topic` partition `p`, in order.
fn read_partition(brokers: &str, topic: &str, p: i32) -> Vec<Read> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("ticks-reader-{}", free_port()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = c
        .fetch_watermarks(topic, p, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < high && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            next = m.offset() + 1;
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or(&[]).to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or(&[]).to_vec(), headers));
        }
    }
    assert_eq!(next, high, "{topic}[{p}] read to its end");
    out
}

/// What an uninterrupted engine per partition publishes for the events topic as it stands.
fn reference(brokers: &str) -> BTreeMap<(String, u64), Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut settings =
        d2c::engine::Settings::load(std::path::Path::new(&format!("{root}/config/d2c.toml")))
            .unwrap();
    let c = &mut settings.config.correlation;
    c.group_wait = Duration::from_secs(2);
    c.group_wait_max = Duration::from_secs(5);
    c.group_interval = Duration::from_secs(3);
    c.resolve_hold = Duration::from_secs(2);
    c.reopen_window = Duration::from_secs(5);
    c.retention = Duration::from_secs(300);
    let mut out = BTreeMap::new();
    let mut ticks = 0;
    for p in 0..PARTITIONS {
        let mut engine = settings.engine();
        for (payload, headers) in read_partition(brokers, "d2c.events", p) {
            let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v);
            let records = if let Some(t) = header("d2c.tick") {
                ticks += 1;
                let t = d2c::model::parse_rfc3339(std::str::from_utf8(t).unwrap()).unwrap();
                engine.apply(d2c::engine::Input::Tick(t)).outputs
            } else {
                assert!(
                    headers
                        .iter()
                        .all(|(h, _)| !h.starts_with("d2c.") || h == "d2c.origin"),
                    "only events and ticks in this test: {headers:?}"
                );
                let (events, rejected) =
                    d2c::pipeline::records::decode_events(&payload, None).unwrap();
                assert!(rejected.is_empty(), "every element reads: {rejected:?}");
                events
                    .iter()
                    .flat_map(|(ev, o)| engine.apply(d2c::engine::Input::Event(ev, *o)).outputs)
                    .collect()
            };
            for o in records {
                if let d2c::model::Output::Incident(i) = &o {
                    out.insert((i.id.clone(), i.version as u64), o.to_json().into_bytes());
                }
            }
        }
    }
    assert!(ticks > 100, "the clock ran on ticks: {ticks}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_ticks_driving_group_waits_loses_and_doubles_nothing() {
    let broker = MockBroker::start(PARTITIONS as u32);
    let mut rng = Rng(0x5eed_0015 | 1);
    let mut d2c = D2c::start(&broker.bootstrap, &env("200ms"));
    let producing = {
        let brokers = broker.bootstrap.clone();
        tokio::spawn(async move {
            let p = producer(&brokers);
            for k in 0..160 {
                produce_all(&p, "d2c.events.raw", &step(k)).await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut kills = 0;
    while !producing.is_finished() && kills < 4 {
        let http = d2c.http.clone();
        let owning =
            tokio::task::spawn_blocking(move || wait_owning(&http, Duration::from_secs(30)))
                .await
                .unwrap();
        assert!(owning, "restarted instance never took its partitions");
        tokio::time::sleep(rng.millis(1500, 5000)).await;
        d2c.child.kill().unwrap();
        d2c.child.wait().unwrap();
        kills += 1;
        eprintln!("kill -9 #{kills}");
        d2c = D2c::start(&broker.bootstrap, &env("200ms"));
    }
    assert!(kills >= 3, "only {kills} kills while events flowed");
    producing.await.unwrap();
    // Let the held-back versions come out on ticks, then stop cleanly; a last instance without
    // ticks reads whatever the stopped one left on the events topic.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let status = tokio::task::block_in_place(|| d2c.terminate(Duration::from_secs(40)));
    assert!(status.success());
    let mut rest = env("0s");
    rest.push(("D2C_KAFKA__GROUP_INSTANCE_ID", "ticks-last"));
    let mut last = D2c::start(&broker.bootstrap, &rest);
    tokio::task::block_in_place(|| {
        // Without ticks or events it has nothing to count owned partitions by: give it time to
        // join, restore and read the rest.
        last.wait_ready(Duration::from_secs(60));
        std::thread::sleep(Duration::from_secs(15));
        assert!(last.terminate(Duration::from_secs(40)).success());
    });

    let expected = tokio::task::spawn_blocking({
        let b = broker.bootstrap.clone();
        move || reference(&b)
    })
    .await
    .unwrap();
    let mut published: BTreeMap<(String, u64), Vec<u8>> = BTreeMap::new();
    let mut records = 0;
    for p in 0..PARTITIONS {
        for (payload, _) in
            tokio::task::block_in_place(|| read_partition(&broker.bootstrap, "d2c.incidents", p))
        {
            records += 1;
            let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            let key = (
                v["id"].as_str().unwrap().to_string(),
                v["version"].as_u64().unwrap(),
            );
            if let Some(first) = published.get(&key) {
                assert_eq!(first, &payload, "{key:?} published with different contents");
            }
            published.insert(key, payload);
        }
    }
    eprintln!(
        "{} (id, version) expected, {} published in {records} records ({} duplicates)",
        expected.len(),
        published.len(),
        records - published.len()
    );
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !published.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = published
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing (first 5): {missing:?}; unexpected (first 5): {extra:?}"
    );
    for (k, v) in &expected {
        assert_eq!(
            String::from_utf8_lossy(&published[k]),
            String::from_utf8_lossy(v),
            "{k:?}"
        );
    }
    assert!(
        expected.len() > 40,
        "too few versions to mean anything: {}",
        expected.len()
    );
    let mut by_id: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (id, v) in published.keys() {
        by_id.entry(id).or_default().push(*v);
    }
    for (id, vs) in &by_id {
        assert_eq!(
            *vs,
            (1..=vs.len() as u64).collect::<Vec<_>>(),
            "{id}: versions {vs:?}; {:#?}",
            vs.iter()
                .map(|v| String::from_utf8_lossy(&published[&(id.to_string(), *v)]))
                .collect::<Vec<_>>()
        );
    }
}
