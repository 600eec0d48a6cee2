//! `InFlight` against librdkafka's mock cluster: batches in flight complete oldest first and
//! land in order; at most `depth` stay unacknowledged; a record the producer gave up is sent
//! again followed by every later batch, so the newest copy of every record is in order; a full
//! producer queue waits instead of reordering.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::inflight::InFlight;
use crate::pipeline::kafka::{OutRecord, Sender, producer};
use crate::telemetry::{Health, Metrics};

fn sender(brokers: &str, properties: &[(&str, &str)]) -> (Sender, Metrics) {
    let mut c = Config::default();
    c.kafka.brokers = brokers.to_string();
    c.kafka.stall_timeout = Duration::from_secs(30);
    for (k, v) in properties {
        c.kafka.properties.insert(k.to_string(), v.to_string());
    }
    let (metrics, health) = (Metrics::new(&Default::default()), Health::default());
    let p = producer(&c.kafka, &metrics, &health).unwrap();
    (Sender::new(&c, p, &metrics, &health, "test"), metrics)
}

fn batch(names: &[&str]) -> Vec<OutRecord> {
    names
        .iter()
        .map(|n| OutRecord {
            topic: "out".into(),
            partition: Some(0),
            key: Vec::new(),
            payload: n.as_bytes().to_vec(),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect()
}

/// The payloads of partition 0 of `out`, until `n` were read (or 20 s passed).
async fn read(brokers: &str, n: usize) -> Vec<String> {
    let brokers = brokers.to_string();
    tokio::task::spawn_blocking(move || super::send::read(&brokers, "out", n))
        .await
        .unwrap()
        .into_iter()
        .map(|(payload, _)| String::from_utf8_lossy(&payload).into_owned())
        .collect()
}

/// The last copy of every payload, in the order those copies come.
fn newest_copies(read: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in read {
        out.retain(|x| x != r);
        out.push(r.clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_complete_oldest_first_and_land_in_order() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (sender, _) = sender(&brokers, &[]);
    let never = CancellationToken::new();
    let mut flights: InFlight<usize> = InFlight::new(sender, 2);
    let mut done = Vec::new();
    let mut names = Vec::new();
    for b in 0..20 {
        let batch_names: Vec<String> = (0..5).map(|i| format!("b{b}r{i}")).collect();
        names.extend(batch_names.iter().cloned());
        let refs: Vec<&str> = batch_names.iter().map(String::as_str).collect();
        done.extend(flights.send(batch(&refs), b, false, &never).await.unwrap());
        assert!(
            b + 1 - done.len() <= 2,
            "at most 2 batches stay unacknowledged, {} after batch {b}",
            b + 1 - done.len()
        );
    }
    done.extend(flights.drain(&never).await.unwrap());
    assert!(flights.is_empty());
    assert_eq!(
        done,
        (0..20).collect::<Vec<_>>(),
        "completions oldest first"
    );
    assert_eq!(read(&brokers, 100).await, names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_producer_gave_up_is_sent_again_before_every_later_batch() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (sender, metrics) = sender(&brokers, &[("message.timeout.ms", "1000")]);
    let never = CancellationToken::new();
    let mut flights: InFlight<&str> = InFlight::new(sender, 4);
    // Connected first, so the outage is of an established broker.
    let first = flights
        .send(batch(&["zero"]), "zero", false, &never)
        .await
        .unwrap();
    let first = [first, flights.drain(&never).await.unwrap()].concat();
    assert_eq!(first, ["zero"]);
    cluster.broker_down(1).unwrap();
    let done = flights
        .send(batch(&["a1", "a2"]), "a", false, &never)
        .await
        .unwrap();
    assert!(done.is_empty());
    // The producer gives "a" up (message.timeout.ms) while the broker is away ...
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.broker_up(1).unwrap();
    // ... and "b", sent after it, may land first: "a" is sent again, then "b" again.
    let mut done = flights
        .send(batch(&["b1", "b2"]), "b", false, &never)
        .await
        .unwrap();
    done.extend(flights.drain(&never).await.unwrap());
    assert_eq!(done, ["a", "b"], "completions oldest first");
    let landed = read(&brokers, 5).await;
    // Give copies sent twice time to arrive, then read everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let landed = read(&brokers, landed.len() + 2)
        .await
        .into_iter()
        .collect::<Vec<_>>();
    assert_eq!(
        newest_copies(&landed),
        ["zero", "a1", "a2", "b1", "b2"],
        "landed: {landed:?}"
    );
    // "a1" and "a2" at least; under load "b" may time out too before the broker is back.
    let rendered = metrics.render();
    let retried: u64 = rendered
        .lines()
        .find_map(|l| l.strip_prefix("d2c_produce_retries_total{topic=\"out\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(retried >= 2, "{rendered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_waits_and_keeps_order() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (sender, _) = sender(&brokers, &[("queue.buffering.max.messages", "3")]);
    let never = CancellationToken::new();
    for depth in [0, 3] {
        let mut flights: InFlight<()> = InFlight::new(sender.clone(), depth);
        for b in 0..4 {
            let names: Vec<String> = (0..5).map(|i| format!("d{depth}b{b}r{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            flights.send(batch(&refs), (), false, &never).await.unwrap();
        }
        flights.drain(&never).await.unwrap();
    }
    let expected: Vec<String> = [0, 3]
        .iter()
        .flat_map(|d| (0..4).flat_map(move |b| (0..5).map(move |i| format!("d{d}b{b}r{i}"))))
        .collect();
    assert_eq!(read(&brokers, 40).await, expected);
}

/// What a checkpoint taken after a batch waits for before it is written: the batch's
/// completion handed back by the stage (not merely the broker's acknowledgement); shutdown or
/// the stage gone interrupts the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_counts_the_completions_the_stage_handed_back() {
    use crate::pipeline::PipelineError;
    use crate::pipeline::inflight::acknowledged;

    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let (sender, _) = sender(&brokers, &[]);
    let never = CancellationToken::new();
    let mut flights: InFlight<usize> = InFlight::new(sender, 4);
    assert_eq!(flights.sent(), 0);
    let done = flights.send(batch(&["a"]), 0, false, &never).await.unwrap();
    assert_eq!(flights.sent(), 1);
    let mut acked = flights.acknowledged();
    let waiter = tokio::spawn(async move { acknowledged(&mut acked, 1, &never).await });
    if done.is_empty() {
        // The broker acknowledges meanwhile, but the completion is not handed back yet.
        assert_eq!(read(&brokers, 1).await, ["a"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiter.is_finished(),
            "written before the stage saw the batch complete"
        );
        let never = CancellationToken::new();
        assert_eq!(flights.drain(&never).await.unwrap(), [0]);
    }
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("released once the completion is handed back")
        .unwrap()
        .unwrap();

    // A wait for a batch not acknowledged yet ends on shutdown ...
    let stop = CancellationToken::new();
    let mut acked = flights.acknowledged();
    let (waiting, s) = (stop.clone(), flights.sent() + 1);
    let waiter = tokio::spawn(async move { acknowledged(&mut acked, s, &waiting).await });
    stop.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(r, Ok(Ok(Err(PipelineError::Interrupted)))));
    // ... and when the stage is gone.
    let mut acked = flights.acknowledged();
    let s = flights.sent() + 1;
    let never = CancellationToken::new();
    let waiter = tokio::spawn(async move { acknowledged(&mut acked, s, &never).await });
    drop(flights);
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(r, Ok(Ok(Err(PipelineError::Interrupted)))));
}

/// A checkpoint of a partition revoked while it waits for the outputs before it is dropped,
/// not written after the new owner's; one whose outputs were acknowledged first is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_waiting_when_its_partition_is_revoked_is_not_written() {
    use crate::pipeline::inflight::acknowledged_unless_revoked;

    let never = CancellationToken::new();
    let (ack, mut acked) = tokio::sync::watch::channel(0u64);
    // Revoked while it waits: released at once, not to be written.
    let revoked = CancellationToken::new();
    let waiting = revoked.clone();
    let mut rx = acked.clone();
    let stop = never.clone();
    let waiter =
        tokio::spawn(async move { acknowledged_unless_revoked(&mut rx, 1, &waiting, &stop).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiter.is_finished(),
        "written before its outputs were acknowledged"
    );
    revoked.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(matches!(r, Ok(Ok(Ok(false)))), "{r:?}");
    // Revoked before it waits, its outputs acknowledged too: still not written.
    ack.send(1).unwrap();
    let r = acknowledged_unless_revoked(&mut acked, 1, &revoked, &never).await;
    assert!(matches!(r, Ok(false)), "{r:?}");
    // Its outputs acknowledged and the partition still owned: written.
    let owned = CancellationToken::new();
    let r = acknowledged_unless_revoked(&mut acked, 1, &owned, &never).await;
    assert!(matches!(r, Ok(true)), "{r:?}");
    // Shutdown still interrupts the wait.
    let stop = CancellationToken::new();
    stop.cancel();
    let r = acknowledged_unless_revoked(&mut acked, 2, &owned, &stop).await;
    assert!(
        matches!(r, Err(crate::pipeline::PipelineError::Interrupted)),
        "{r:?}"
    );
}
