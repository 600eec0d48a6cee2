//! Start-up and shutdown whatever the broker does, over real processes: `d2c run` with the
//! shipped settings against `d2c mock-broker` (whose controller librdkafka's admin client never
//! finds) gets ready; against a broker that is not there yet it stays up, says why on `/readyz`,
//! and gets ready when the broker comes; SIGTERM with the broker gone exits within
//! `kafka.shutdown_deadline`.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn run_with_the_shipped_settings_gets_ready_against_the_mock_broker() {
    // The mock broker creates every topic itself (6 partitions, as config/d2c.toml); asking it
    // to create them again times out waiting for a controller, which stopped d2c for good.
    let broker = MockBroker::start(6);
    let mut d2c = D2c::start_defaults(&broker.bootstrap, &[]);
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = d2c.child.try_wait().unwrap() {
            panic!("d2c exited ({status}) instead of getting ready");
        }
        if http_get(&d2c.http, "/readyz").0 == 200 {
            break;
        }
        assert!(
            Instant::now() < end,
            "not ready: {:?}",
            http_get(&d2c.http, "/readyz")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        wait_owning(&d2c.http, Duration::from_secs(60)),
        "correlates partitions"
    );
    let status = d2c.terminate(Duration::from_secs(40));
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[test]
fn a_broker_that_is_not_there_yet_is_waited_for_with_the_reason_on_readyz() {
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let mut d2c = D2c::start_defaults(&brokers, &[("D2C_KAFKA__PARTITIONS", "3")]);
    let end = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = http_get(&d2c.http, "/readyz");
        assert_eq!(status, 503, "{body}");
        if body.contains("not ready: startup.topics: cannot create the topics yet") {
            break body;
        }
        assert!(Instant::now() < end, "the reason is on /readyz: {body}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        body.contains("cannot read the cluster's metadata"),
        "{body}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        d2c.child.try_wait().unwrap().is_none(),
        "d2c must not exit on a broker that is away"
    );
    let _broker = Tansu::start_with_port(port);
    d2c.wait_ready(Duration::from_secs(120));
    let status = d2c.terminate(Duration::from_secs(40));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_unreachable_exits_within_the_shutdown_deadline() {
    let broker = MockBroker::start(3);
    let mut d2c = D2c::start(
        &broker.bootstrap,
        &[
            ("D2C_KAFKA__CREATE_TOPICS", "false"),
            ("D2C_KAFKA__SHUTDOWN_DEADLINE", "5s"),
            ("D2C_STATE__CHECKPOINT_INTERVAL", "300ms"),
            // Ticks reach every partition, so the correlate stage takes them all.
            ("D2C_INGEST__TICK_INTERVAL", "200ms"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let http = d2c.http.clone();
    let owning = tokio::task::spawn_blocking(move || wait_owning(&http, Duration::from_secs(60)));
    assert!(owning.await.unwrap(), "in its groups");
    // Events flow up to the moment the broker stops answering, so both stages hold offsets
    // they have not committed yet.
    let flowing = tokio::spawn({
        let brokers = broker.bootstrap.clone();
        async move {
            let p = producer(&brokers);
            for i in 0.. {
                let raw = format!(
                    "{{\"name\":\"DiskFull\",\"ci\":\"host-{}\",\"severity\":\"major\",\"status\":\"firing\",\"time\":\"2026-11-28T10:00:00Z\"}}",
                    i % 50
                );
                produce_all(&p, "d2c.events.raw", &[raw.into_bytes()]).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.freeze();
    flowing.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    // Before: the final commit and the consumers' close waited for the broker on the runtime
    // thread, the deadline timer never fired, and d2c hung far past it.
    let status = tokio::task::spawn_blocking(move || d2c.terminate(Duration::from_secs(60)))
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("exited {status} {took:?} after SIGTERM");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}
