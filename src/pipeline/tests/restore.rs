//! Restoring several partitions side by side ([`Restorers::read`]) against librdkafka's mock
//! cluster gives each partition exactly the checkpoint a restore of that partition alone gives:
//! the newest complete one (an older one behind a torn tail, none on an empty partition), with
//! the deltas after it that fit applied.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::EngineState;
use crate::pipeline::checkpoint::{self, Checkpoint, FORMAT};
use crate::pipeline::kafka::{Sender, producer};
use crate::pipeline::restore::Restorers;
use crate::telemetry::{Health, Metrics};

const PARTITIONS: i32 = 5;

fn checkpoint(partition: i32, watermark: i64) -> Checkpoint {
    Checkpoint {
        format: FORMAT,
        topic: "d2c.events".into(),
        partition,
        watermark,
        state: EngineState::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_restored_side_by_side_get_what_each_restored_alone_gets() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("d2c.state", PARTITIONS, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let mut cfg = Config::default();
    cfg.kafka.brokers = brokers.clone();
    let (metrics, health) = (Metrics::new(&Default::default()), Health::default());
    let sender = Sender::new(
        &cfg,
        producer(&cfg.kafka, &metrics, &health).unwrap(),
        &metrics,
        &health,
        "test",
    );
    // Small chunks: every checkpoint is several records.
    let records = |p, w| checkpoint::records(checkpoint(p, w), "d2c.state", 64);
    let mut all = Vec::new();
    for p in 0..3 {
        all.extend(records(p, 100 + i64::from(p)));
    }
    // Partition 1 has a newer checkpoint too; partition 2 one torn by a writer that died.
    all.extend(records(1, 200));
    let torn = records(2, 300);
    assert!(torn.len() > 1);
    all.push(torn[0].clone());
    // Partition 4 has a full checkpoint, two deltas and a torn third one, of a real state.
    let (chain, chain_state) = super::changelog::chain(4, 64);
    all.extend(chain);
    // Partition 3 has a checkpoint of another events partition's key only.
    let mut foreign = records(0, 7);
    for r in &mut foreign {
        r.partition = Some(3);
    }
    all.extend(foreign);
    let sent = sender.send_all(&all, &CancellationToken::new()).await;
    assert!(sent.is_ok(), "{sent:?}");

    let everything: Vec<i32> = (0..PARTITIONS).collect();
    let mut restorers = Restorers::new(&cfg.kafka).unwrap();
    let side_by_side = tokio::time::timeout(
        Duration::from_secs(120),
        restorers.read(
            ("d2c.state", "d2c.events"),
            &everything,
            |_| true,
            &CancellationToken::new(),
        ),
    )
    .await
    .expect("restores finish")
    .unwrap();
    let side_by_side: BTreeMap<i32, Option<Checkpoint>> = side_by_side
        .into_iter()
        .map(|(p, (cp, _))| (p, cp.map(|r| r.checkpoint)))
        .collect();

    let alone = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "restore-test")
            .create()
            .unwrap();
        (0..PARTITIONS)
            .map(|p| {
                let cp =
                    checkpoint::restore(&c, "d2c.state", "d2c.events", p, Duration::from_secs(30));
                (p, cp.unwrap().map(|r| r.checkpoint))
            })
            .collect::<BTreeMap<_, _>>()
    })
    .await
    .unwrap();
    assert_eq!(side_by_side, alone);
    let watermarks: Vec<Option<i64>> = side_by_side
        .values()
        .map(|cp| cp.as_ref().map(|cp| cp.watermark))
        .collect();
    assert_eq!(
        watermarks,
        vec![Some(100), Some(200), Some(102), None, Some(3)]
    );
    assert_eq!(side_by_side[&4].as_ref().unwrap().state, chain_state);
}
