//! The delivery stage: retries, `Retry-After`, dead letters, shutdown, and which connectors a
//! route selects.

use super::connectors::{Snow, servicenow};
use super::*;
use crate::config::NotifyConfig;
use crate::notify::{Done, Notify};
use crate::telemetry::Metrics;

// ---- the stage: retries, Retry-After, dead letters ----------------------------------------------

fn notify_config(connectors: &str, retry: &str) -> NotifyConfig {
    let cfg: NotifyConfig = toml::from_str(&format!("{connectors}\n[retry]\n{retry}")).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn stage(cfg: &NotifyConfig, brokers: &str) -> Notify {
    let kafka = crate::config::KafkaConfig {
        brokers: brokers.into(),
        ..Default::default()
    };
    let metrics = Metrics::new(&crate::topology::Topology::default());
    Notify::new(cfg, &kafka, "d2c.delivery.dlq", metrics).unwrap()
}

fn deliveries(n: &Notify, connector: &str, outcome: &str) -> u64 {
    n.metrics.deliveries(connector, outcome)
}

/// Answers 429 with `Retry-After: 2` to the first request, then accepts.
fn too_many_once(_: &Seen, calls: &mut u32) -> Reply {
    *calls += 1;
    if *calls == 1 {
        (429, vec![("retry-after", "2".into())], "slow down".into())
    } else {
        ok(200, json!({}))
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_before_the_next_attempt() {
    let (url, fake) = start(None, 0u32, too_many_once).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"20ms\"\nmax_backoff = \"100ms\"",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    let done = n
        .deliver(0, &incident("INC-1", 1, "open"), &CancellationToken::new())
        .await;
    assert!(matches!(done, Done::Finished));
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(4),
        "waited {gap:?}, Retry-After asked for 2s (backoff alone would be ≤100ms)"
    );
    assert_eq!(deliveries(&n, "hook", "retried"), 1);
    assert_eq!(deliveries(&n, "hook", "delivered"), 1);
    assert_eq!(n.metrics.delivery_retries("hook"), 1);
}

#[tokio::test]
async fn an_endpoint_down_for_a_while_gets_each_record_once_when_it_is_back_and_old_versions_are_skipped()
 {
    // Take a port, then close it: connections are refused until the fake listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"snow\"\nkind = \"servicenow\"\nurl = \"http://127.0.0.1:{port}\"\nconnect_timeout = \"200ms\"\n[[routes]]\nconnector = \"snow\""
        ),
        "initial_backoff = \"50ms\"\nmax_backoff = \"300ms\"",
    );
    let n = Arc::new(stage(&cfg, "127.0.0.1:9"));
    let items = [
        incident("INC-1", 1, "open"),
        rfc("RFC-1", 1),
        incident("INC-2", 1, "open"),
    ];
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let tasks: Vec<_> = items
        .iter()
        .cloned()
        .map(|item| {
            let (n, shutdown) = (n.clone(), shutdown.clone());
            tokio::spawn(
                async move { matches!(n.deliver(0, &item, &shutdown).await, Done::Finished) },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (_, fake) = start(Some(listener), Snow::default(), servicenow).await;
    for t in tasks {
        assert!(
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap()
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        deliveries(&n, "snow", "retried") >= 3,
        "every record was retried while it was down"
    );
    // The old version arriving late is skipped, and the same version is not sent twice.
    assert!(matches!(
        n.deliver(0, &incident("INC-1", 1, "open"), &shutdown).await,
        Done::Finished
    ));
    let state = fake.state.lock().unwrap();
    let mut ids: Vec<&str> = state
        .rows
        .values()
        .map(|(_, r)| r["correlation_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["INC-1", "INC-2", "RFC-1"],
        "each record created exactly once"
    );
    assert_eq!(deliveries(&n, "snow", "delivered"), 3);
    assert_eq!(deliveries(&n, "snow", "skipped"), 1);
}

fn refuse(_: &Seen, _: &mut ()) -> Reply {
    ok(422, json!({"error": "field project is required"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_sends_the_record_to_the_delivery_dead_letter_topic_with_the_answer() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("d2c.delivery.dlq", 1, 1).unwrap();
    let (url, fake) = start(None, (), refuse).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"20ms\"",
    );
    let n = stage(&cfg, &cluster.bootstrap_servers());
    let item = incident("INC-4", 2, "open");
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        n.deliver(0, &item, &CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(matches!(done, Done::Finished));
    assert_eq!(fake.seen().len(), 1, "a 4xx is not retried");
    assert_eq!(deliveries(&n, "hook", "dead_lettered"), 1);

    let bootstrap = cluster.bootstrap_servers();
    let letter = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "dlq-reader")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("d2c.delivery.dlq", 0, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                return Some((m.key().map(<[u8]>::to_vec), m.payload().unwrap().to_vec()));
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("a dead letter within 20s");
    assert_eq!(letter.0.as_deref(), Some(&b"INC-4"[..]));
    let v: Value = serde_json::from_slice(&letter.1).unwrap();
    assert_eq!(v["connector"], "hook");
    assert_eq!(v["status"], 422);
    assert_eq!(v["response"], "{\"error\":\"field project is required\"}");
    assert_eq!(v["id"], "INC-4");
    assert_eq!(v["version"], 2);
    assert_eq!(v["record"]["title"], "payments-db is down");
}

fn unavailable(_: &Seen, _: &mut ()) -> Reply {
    ok(503, json!({"error": "maintenance"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_max_attempts_and_the_record_is_dead_lettered_not_dropped() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("d2c.delivery.dlq", 1, 1).unwrap();
    let (url, fake) = start(None, (), unavailable).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "max_attempts = 3\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"",
    );
    let n = stage(&cfg, &cluster.bootstrap_servers());
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        n.deliver(0, &rfc("RFC-2", 1), &CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(matches!(done, Done::Finished));
    assert_eq!(fake.seen().len(), 3, "exactly max_attempts attempts");
    assert_eq!(deliveries(&n, "hook", "retried"), 2);
    assert_eq!(deliveries(&n, "hook", "dead_lettered"), 1);
}

#[tokio::test]
async fn shutdown_interrupts_a_delivery_that_waits_for_the_tool() {
    let (url, _fake) = start(None, (), unavailable).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"10s\"\nmax_backoff = \"10s\"",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let t0 = Instant::now();
    let done = n.deliver(0, &incident("INC-1", 1, "open"), &shutdown).await;
    assert!(
        matches!(done, Done::Interrupted),
        "not reported as done: its offset stays unstored"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(deliveries(&n, "hook", "delivered"), 0);
}

// ---- routing ------------------------------------------------------------------------------------

#[test]
fn routes_select_by_type_priority_capability_category_and_status() {
    let cfg = notify_config(
        "[[connectors]]\nname = \"snow\"\nkind = \"servicenow\"\nurl = \"http://x\"\n\
         [[connectors]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl = \"http://x\"\nrouting_key = \"k\"\n\
         [[connectors]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://x\"\n\
         [[routes]]\nconnector = \"snow\"\n\
         [[routes]]\nconnector = \"pd\"\ntypes = [\"incident\"]\npriorities = [\"P1\"]\ncapabilities = [\"online-payments\"]\n\
         [[routes]]\nconnector = \"chat\"\ntypes = [\"incident\"]\ncategories = [\"security\"]\nstatuses = [\"open\"]",
        "",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    assert_eq!(n.targets_of(&incident("INC-1", 1, "open")), vec![0, 1]);
    assert_eq!(
        n.targets_of(&rfc("RFC-1", 1)),
        vec![0],
        "pd takes incidents only"
    );
    let mut sec: Value = serde_json::from_slice(&incident("INC-2", 1, "open").raw).unwrap();
    sec["category"] = json!("security");
    sec["priority"] = json!("P3");
    let sec = Item::decode(sec.to_string().as_bytes()).unwrap();
    assert_eq!(n.targets_of(&sec), vec![0, 2]);
}
