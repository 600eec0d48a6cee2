//! `[kafka]`: how d2c reaches the brokers, and how its stages batch, wait and stop.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Assignment, KafkaSecurity};

/// How d2c reaches Kafka.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated `host:port`. Default: `127.0.0.1:9092`.
    pub brokers: String,
    /// Consumer group prefix: the ingest stage joins `<group_id>-ingest`, the correlate stage
    /// `<group_id>-correlate` (delivery `-notify`, automation `-automation`). Default: `d2c`.
    pub group_id: String,
    /// `client.id` sent to the broker, shown in its logs. Default: `d2c`.
    pub client_id: String,
    /// Create missing topics at start-up with `partitions` and `replication_factor`.
    /// Default: `true`.
    pub create_topics: bool,
    /// Partitions of topics d2c creates. Default: `6`.
    pub partitions: i32,
    /// Replication factor of topics d2c creates. Default: `1` (use 3 in production).
    pub replication_factor: i32,
    /// Consumer session timeout: how long a silent member keeps its partitions. Members send a
    /// heartbeat every third of it or every second, whichever is shorter. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How the consumer groups move partitions when members come and go. `cooperative`
    /// (librdkafka's `cooperative-sticky`, KIP-429): a rebalance revokes only the partitions that
    /// move, so the members keep the others and their correlation state (a survivor only gains a
    /// dead member's partitions). `eager` (librdkafka's `range,roundrobin`): every rebalance
    /// revokes every partition of every member, which then restores its state from the
    /// checkpoints. The members of a group cannot mix the two (the broker finds no common
    /// strategy and refuses the newcomer): to change it on a running deployment, or to upgrade
    /// from a d2c without this setting (eager), stop every instance before starting the new
    /// ones, or keep `eager` until all run the new version. Default: `cooperative`.
    pub assignment: Assignment,
    /// Most records handled as one batch; outputs of a batch are awaited together before its
    /// offsets are stored. At a steady rate batches close long before they fill (see
    /// `batch_linger`). Default: `5000`.
    pub batch_max_records: usize,
    /// Batches a stage may have sent and not yet seen acknowledged while it takes and
    /// processes the next one (the ingest and correlate stages). `0`: a stage waits for the
    /// broker to acknowledge each batch before it reads the next, so every event that arrives
    /// meanwhile waits for that round trip too. Input offsets are stored, and checkpoints taken,
    /// only for batches whose outputs are acknowledged, in order; order per partition is kept
    /// (a record the producer gives up is sent again followed by every later batch's records).
    /// A full batch (a backlog: `batch_max_records` raw records, or as many events in the
    /// correlate stage) is awaited with every batch before it, as with `0`: there batches in
    /// flight cost throughput. Default: `4`.
    pub in_flight_batches: usize,
    /// Longest wait for a batch to fill once its first record arrived. Records already
    /// fetched are always taken at once, so under a backlog batches fill without waiting;
    /// `0ms` takes just those, and a batch is whatever arrived while the stage worked on the
    /// previous one. Every event waits up to this long in each of the two stages. Default:
    /// `0ms` (1 ms cost d2c 1–2 ms of its own time per event in BENCHMARKS.md "Round 3e").
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// Static group membership: a stable id per instance (e.g. the pod name). A restarted
    /// instance with the same id gets its partitions back without a rebalance, if it returns
    /// within the session timeout. Stages use `<id>-ingest` and `<id>-correlate`. Default: none.
    pub group_instance_id: Option<String>,
    /// On SIGTERM or SIGINT, how long to wait for the current batch to be flushed, checkpointed
    /// and committed before exiting anyway. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// A stage counts as stuck when the broker has not acknowledged one of its batches for this
    /// long (retrying meanwhile): `/readyz` then answers 503 with the reason until the batch
    /// goes through. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// TLS and SASL: `[kafka.security]`, see README "Secured Kafka". Default: plain TCP, no
    /// authentication.
    pub security: KafkaSecurity,
    /// Extra librdkafka properties passed to every client as they are (e.g.
    /// `"message.max.bytes" = "2000000"`). Default: none.
    pub properties: std::collections::BTreeMap<String, String>,
}

/// Default of `ingest.max_record_bytes`: 960 KiB, below [`LIBRDKAFKA_MESSAGE_MAX_BYTES`] with
/// room for a record key.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 960 << 10;

/// Room [`KafkaConfig::max_message_bytes`] keeps beside `ingest.max_record_bytes` for the key
/// of a raw record (HTTP ingest's `X-Source`, at most 256 bytes) and the record's framing.
pub const RECORD_KEY_ROOM: usize = 1024;

/// librdkafka's default `message.max.bytes`: the largest record its producer writes.
pub const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

impl KafkaConfig {
    /// The largest record d2c's producers write: `message.max.bytes` of `kafka.properties`, or
    /// librdkafka's default. Key, value and headers count towards it.
    pub fn max_message_bytes(&self) -> usize {
        self.properties
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES)
    }

    /// The longest output record (incident, RFC, problem) d2c writes: [`max_message_bytes`]
    /// with room for the key and the record's framing. An incident longer than this lists
    /// only its first alerts (`alerts_omitted`), on Kafka and in `d2c replay` alike.
    ///
    /// [`max_message_bytes`]: Self::max_message_bytes
    pub fn max_output_bytes(&self) -> usize {
        output_room(self.max_message_bytes())
    }
}

/// The longest output record within a producer's `message.max.bytes` of `max_message_bytes`.
pub fn output_room(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_sub(RECORD_KEY_ROOM)
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "d2c".into(),
            client_id: "d2c".into(),
            create_topics: true,
            partitions: 6,
            replication_factor: 1,
            session_timeout: Duration::from_secs(10),
            assignment: Assignment::Cooperative,
            batch_max_records: 5000,
            in_flight_batches: 4,
            batch_linger: Duration::ZERO,
            group_instance_id: None,
            shutdown_deadline: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            security: KafkaSecurity::default(),
            properties: Default::default(),
        }
    }
}
