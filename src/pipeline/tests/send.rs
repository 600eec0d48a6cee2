//! `Sender::send_all` against librdkafka's mock cluster: a record the broker can never take is
//! dead-lettered (cut to fit) and the rest of the batch goes through; a batch the broker does not
//! acknowledge for longer than `kafka.stall_timeout` makes the stage not ready, with the reason,
//! until it does.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::kafka::{OutRecord, Sender, producer};
use crate::pipeline::send::TRUNCATED_HEADER;
use crate::telemetry::{Health, Metrics};

fn config(brokers: &str) -> Config {
    let mut c = Config::default();
    c.kafka.brokers = brokers.to_string();
    c.kafka.stall_timeout = Duration::from_secs(1);
    c
}

fn record(topic: &str, payload: Vec<u8>) -> OutRecord {
    OutRecord {
        topic: topic.into(),
        partition: None,
        key: b"k".to_vec(),
        payload,
        headers: Vec::new(),
        timestamp: None,
    }
}

/// A record read back: payload and headers.
pub(super) type Read = (Vec<u8>, Vec<(String, String)>);

/// Every record of partition 0 of `topic`, until `n` were read or 20 s passed: (payload,
/// headers). Blocking.
pub(super) fn read(brokers: &str, topic: &str, n: usize) -> Vec<Read> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "send-test")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n && std::time::Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_string(), v.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_limit_is_dead_lettered_and_the_batch_goes_on() {
    let cluster = MockCluster::new(1).unwrap();
    for t in ["out", "d2c.dlq"] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let brokers = cluster.bootstrap_servers();
    let cfg = config(&brokers);
    let (metrics, health) = (Metrics::new(&Default::default()), Health::default());
    let p = producer(&cfg.kafka, &metrics, &health).unwrap();
    let sender = Sender::new(&cfg, p, &metrics, &health, "test");
    let big = vec![b'x'; 1_200_000];
    let batch = [
        record("out", b"before".to_vec()),
        record("out", big),
        record("out", b"after".to_vec()),
    ];
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        sender.send_all(&batch, &CancellationToken::new()),
    )
    .await
    .expect("a refused record does not stall the batch");
    assert!(sent.is_ok(), "{sent:?}");
    let b = brokers.clone();
    let out = tokio::task::spawn_blocking(move || read(&b, "out", 2))
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = out.iter().map(|(p, _)| p.as_slice()).collect();
    assert_eq!(payloads, vec![&b"before"[..], b"after"]);
    let dlq = tokio::task::spawn_blocking(move || read(&brokers, "d2c.dlq", 1))
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1);
    let (payload, headers) = &dlq[0];
    assert!(payload.len() < 1_000_000 && payload.len() > 990_000);
    let header = |k: &str| {
        headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("d2c.reason"), Some("produce_refused"));
    assert_eq!(header("d2c.target.topic"), Some("out"));
    assert_eq!(header(TRUNCATED_HEADER), Some("1200000"));
    assert!(
        header("d2c.error").unwrap().contains("too large"),
        "{headers:?}"
    );
    assert!(health.reasons().iter().all(|r| !r.contains("stalled")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_broker_does_not_acknowledge_makes_the_stage_unready_until_it_does() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let cfg = config(&brokers);
    let (metrics, health) = (Metrics::new(&Default::default()), Health::default());
    health.set_ready(true);
    let p = producer(&cfg.kafka, &metrics, &health).unwrap();
    let sender = Sender::new(&cfg, p, &metrics, &health, "test");
    // Connected first, so the outage is of an established broker.
    sender
        .send_all(&[record("out", b"one".to_vec())], &CancellationToken::new())
        .await
        .unwrap();
    cluster.broker_down(1).unwrap();
    let task = {
        let sender = sender.clone();
        tokio::spawn(async move {
            sender
                .send_all(&[record("out", b"two".to_vec())], &CancellationToken::new())
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!health.is_ready());
    let reasons = health.reasons();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("test.stalled: the broker has not acknowledged a batch")),
        "{reasons:?}"
    );
    cluster.broker_up(1).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the batch goes through once the broker is back")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(
        health
            .reasons()
            .iter()
            .all(|r| !r.starts_with("test.stalled")),
        "{:?}",
        health.reasons()
    );
}
