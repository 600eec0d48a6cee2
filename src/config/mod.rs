//! Typed configuration: the settings file (`config/d2c.toml`), environment overrides, and
//! validation that names the file, the line and what is wrong. Loaded once at start-up.

mod assignment;
mod automation;
mod backstage;
mod http;
mod kafka;
mod kafka_security;
pub(crate) mod load;
mod notify;
mod problem;
pub mod secret;
mod security;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use secret::SecretRef;

pub use assignment::Assignment;
pub use automation::{AutomationConfig, KubernetesOperation, RunbookConfig, RunbookKind};
pub use backstage::BackstageConfig;
pub use http::{HttpConfigError, MIN_TOKEN_CHARS, Role, TokenConfig, ViewConfig, valid_name};
pub use kafka::{
    DEFAULT_MAX_RECORD_BYTES, KafkaConfig, LIBRDKAFKA_MESSAGE_MAX_BYTES, RECORD_KEY_ROOM,
    output_room,
};
pub use kafka_security::{KafkaSecurity, Protocol, SaslMechanism, SecurityError};
pub use load::{ConfigError, Loaded, line_of, load, load_str};
pub use notify::{
    ConnectorConfig, ConnectorKind, NotifyConfig, NotifyConfigError, RecordType, RetryConfig,
    RouteCategory, RouteConfig,
};
pub use problem::{ProblemConfig, SignatureMode};
pub use security::{SecurityConfig, SecurityPartition};

/// The whole settings file. Every field has a default, so an empty file is a valid config that
/// talks to a broker on `127.0.0.1:9092`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Path of the topology file (services, capabilities, CIs). Relative paths are resolved
    /// against the directory of the settings file. Default: `topology.toml`.
    pub topology: PathBuf,
    /// Path of the change policy file (rules that turn incidents into RFCs). Relative paths are
    /// resolved against the directory of the settings file. Default: `change-policy.toml`.
    pub change_policy: PathBuf,
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub http: HttpConfig,
    pub ingest: IngestConfig,
    pub correlation: CorrelationConfig,
    /// Silences, recurring maintenance windows and inhibition rules (`[[suppression.silences]]`,
    /// `[[suppression.maintenance]]`, `[[suppression.inhibit]]`); see README "Suppression".
    pub suppression: crate::suppress::SuppressionConfig,
    pub state: StateConfig,
    /// Delivery of incidents and RFCs to ITSM and paging tools (`[[notify.connectors]]`,
    /// `[[notify.routes]]`, `[notify.retry]`); see README "Delivery to ITSM tools". Without
    /// connectors the delivery stage does not run.
    pub notify: NotifyConfig,
    /// The Backstage software catalog as a second service-model source (off unless `url` is
    /// set); see README "Service model from Backstage".
    pub backstage: BackstageConfig,
    /// When recurring incidents become problems (`[problem]`); see README "Problems".
    pub problem: ProblemConfig,
    /// Running approved RFCs (`[automation]`, `[[automation.runbooks]]`); see README
    /// "Automation". Without runbooks the automation stage does not run.
    pub automation: AutomationConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            topology: PathBuf::from("topology.toml"),
            change_policy: PathBuf::from("change-policy.toml"),
            kafka: KafkaConfig::default(),
            topics: TopicsConfig::default(),
            http: HttpConfig::default(),
            ingest: IngestConfig::default(),
            correlation: CorrelationConfig::default(),
            suppression: Default::default(),
            state: StateConfig::default(),
            notify: Default::default(),
            backstage: BackstageConfig::default(),
            problem: ProblemConfig::default(),
            automation: AutomationConfig::default(),
        }
    }
}

/// Names of the topics d2c reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Raw payloads from monitoring and security tools, any supported format, one per record.
    /// Default: `d2c.events.raw`.
    pub raw: String,
    /// Normalised events, keyed by correlation domain. Default: `d2c.events`.
    pub events: String,
    /// Incident versions, keyed by incident id. Default: `d2c.incidents`.
    pub incidents: String,
    /// Change requests (RFCs), keyed by RFC id. Default: `d2c.changes`.
    pub changes: String,
    /// Raw payloads that could not be parsed, with the reason in headers. Default: `d2c.dlq`.
    pub dlq: String,
    /// Compacted changelog of the correlation state per partition of `events`, with the input
    /// offset it covers. Needs at least as many partitions as `events`. Default: `d2c.state`.
    pub state: String,
    /// Records a delivery connector refused for good (a 4xx other than 408/429, or retries
    /// given up per `notify.retry`), with the tool's answer. Default: `d2c.delivery.dlq`.
    pub delivery_dlq: String,
    /// When set, security incident records (those with a `security` section) are also written
    /// here, keyed by incident id, besides `incidents`. Default: none.
    pub security: Option<String>,
    /// Problem versions (recurring incidents, known errors), keyed by problem id.
    /// Default: `d2c.problems`.
    pub problems: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            raw: "d2c.events.raw".into(),
            events: "d2c.events".into(),
            incidents: "d2c.incidents".into(),
            changes: "d2c.changes".into(),
            dlq: "d2c.dlq".into(),
            state: "d2c.state".into(),
            delivery_dlq: "d2c.delivery.dlq".into(),
            security: None,
            problems: "d2c.problems".into(),
        }
    }
}

impl TopicsConfig {
    /// Renames every topic to `<prefix>.<its part>` (`raw`, `events`, …): fresh topics for one
    /// run of `d2c bench` or `d2c soak`, never mixed with another's.
    pub fn prefixed(&mut self, prefix: &str) {
        for (name, t) in [
            ("raw", &mut self.raw),
            ("events", &mut self.events),
            ("incidents", &mut self.incidents),
            ("changes", &mut self.changes),
            ("dlq", &mut self.dlq),
            ("state", &mut self.state),
            ("delivery-dlq", &mut self.delivery_dlq),
            ("problems", &mut self.problems),
        ] {
            *t = format!("{prefix}.{name}");
        }
        if let Some(t) = &mut self.security {
            *t = format!("{prefix}.security");
        }
    }

    /// All topic names with the key they are configured under, in a fixed order (the
    /// security topic last, when set).
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![
            ("topics.raw", self.raw.as_str()),
            ("topics.events", &self.events),
            ("topics.incidents", &self.incidents),
            ("topics.changes", &self.changes),
            ("topics.dlq", &self.dlq),
            ("topics.state", &self.state),
            ("topics.delivery_dlq", self.delivery_dlq.as_str()),
            ("topics.problems", self.problems.as_str()),
        ];
        all.extend(self.security.as_deref().map(|s| ("topics.security", s)));
        all
    }
}

/// The HTTP server: `/metrics`, `/healthz`, `/readyz`, the `/api/v1` endpoints and the console.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Default: `127.0.0.1:9464` (use `0.0.0.0:9464` in a container).
    pub listen: String,
    /// Bearer token every `/api/v1/…` request must carry (`Authorization: Bearer <token>`):
    /// `env:NAME` or `file:PATH`, read at start-up. `/metrics`, `/healthz` and `/readyz` stay
    /// open. It also signs in to the console, as `admin` with the `security` role.
    /// Default: none (the API is open: keep it on a trusted network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// Longest wait for a request's headers, from the connection opening (or the previous
    /// answer on a kept-alive connection); past it the connection is closed. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest time to receive a request body (and to answer it, broker acknowledgement
    /// included); past it the answer is `408 Request Timeout`. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Most connections open at once; more wait in the listen queue until one closes.
    /// Default: `1024`.
    pub max_connections: usize,
    /// Named tokens with a role (`[[http.tokens]]`: `name`, `role`, `token`), for the API and
    /// the console's sign-in; the name is recorded as the actor of each action. Default: none.
    pub tokens: Vec<TokenConfig>,
    /// When true, only the `security` role (and `http.token`) sees security incidents, in the
    /// console and the read API. Default: `false`.
    pub restrict_security: bool,
    /// How long a console sign-in lasts. Default: `12h`.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Serve the incident console at `/`. Default: `true`.
    pub console: bool,
    /// Bounds of the incident view behind the console and the read API (`[http.view]`).
    pub view: ViewConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
            token: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            tokens: Vec::new(),
            restrict_security: false,
            session_lifetime: Duration::from_secs(12 * 3600),
            console: true,
            view: ViewConfig::default(),
        }
    }
}

/// Limits of the ingest stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Records larger than this go to the DLQ with reason `oversize`, and HTTP ingest answers
    /// 413 for them. At most the producer's `message.max.bytes` (librdkafka's 1,000,000 unless
    /// `kafka.properties` raises it) minus 1 KiB for the record key. Default: `983040` (960 KiB).
    pub max_record_bytes: usize,
    /// A payload carrying more events than this (e.g. a huge Alertmanager group) goes to the DLQ
    /// with reason `too_many_events`. Default: `10000`.
    pub max_events_per_record: usize,
    /// How often the ingest stage writes a tick (its wall-clock time) to every partition of
    /// the events topic. Ticks move the correlation clock when no events arrive, so resolve
    /// holds, reopen windows, flapping and resolve timeouts end on time on quiet partitions.
    /// They are records like events, so a restart replays them exactly. `0s` turns them off
    /// (time then moves only with event times). Default: `1s`.
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// The events parsed from one record may take at most this many times the record's size in
    /// memory (at least 64 KiB), estimated as they are built; a record past it goes to the DLQ
    /// with reason `expansion_limit` before it can fill memory (a small payload whose parts are
    /// copied into thousands of events). Default: `20`.
    pub max_expansion: usize,
    /// A record with an event more than this ahead of the wall clock of the ingest stage (or of
    /// HTTP ingest) goes to the DLQ with reason `clock_ahead`. One future-dated event would
    /// otherwise move its partition's correlation clock ahead for good (it never goes back):
    /// every timer would run at once, open incidents close and later events open new ones.
    /// Refused, not clamped: a clamped time would be wrong silently, and the sender's clock
    /// needs fixing. Checked here, against the wall clock, because the correlation engine has
    /// only event times and ticks: between sparse ticks it cannot tell a future-dated event from
    /// the first event after a quiet hour. `d2c replay` has no wall clock and does not check it.
    /// `0s` turns the check off. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub max_ahead: Duration,
    /// HTTP ingest writes a payload's events straight to their `topics.events` partitions,
    /// parsed once and routed as the ingest stage routes them (one broker hop), instead of the
    /// payload to `topics.raw` (two hops, parsed twice). The 202 answer then lists the events
    /// records written. Default: `false` (the raw topic keeps every payload as it was sent).
    pub http_direct: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        // The parsers' own defaults, written once.
        let limits = crate::ingest::Limits::default();
        IngestConfig {
            // Below librdkafka's `message.max.bytes` (1,000,000, key and headers included), so
            // every record HTTP ingest accepts can be written to the raw topic.
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES.min(limits.max_record_bytes),
            max_events_per_record: limits.max_events_per_record,
            tick_interval: Duration::from_secs(1),
            max_expansion: limits.max_expansion,
            max_ahead: limits.max_ahead,
            http_direct: false,
        }
    }
}

impl IngestConfig {
    /// The parsers' limits these settings give: the same for the ingest stage, HTTP ingest and
    /// replay.
    pub fn limits(&self) -> crate::ingest::Limits {
        crate::ingest::Limits {
            max_record_bytes: self.max_record_bytes,
            max_events_per_record: self.max_events_per_record,
            max_expansion: self.max_expansion,
            max_ahead: self.max_ahead,
            now: None,
        }
    }
}

/// How alerts are grouped into incidents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// An alert joins an open incident on the same or a dependency-linked service only if the
    /// incident saw an event at most this long before. Default: `5m`.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Labels whose values must be equal for two alerts to share an incident (on top of the
    /// topology), e.g. `["env"]` keeps production and staging apart. A missing label counts as
    /// the empty value. Default: none.
    pub group_by: Vec<String>,
    /// How long every alert of an incident must stay resolved before the incident resolves. A
    /// re-fire within the hold keeps it open without a new version. Default: `1m`.
    #[serde(with = "humantime_serde")]
    pub resolve_hold: Duration,
    /// After resolving, an incident reopens (same id, new version) if one of its alerts fires
    /// again within this time; after it, the incident is closed for good. Default: `30m`.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// An alert that changes state (firing ↔ resolved) this many times within `flap_window` is
    /// flapping: it stays on its incident as firing, marked `flapping`, until it has been quiet
    /// for `flap_window`. `0` turns flapping detection off. Default: `4`.
    pub flap_threshold: u32,
    /// See `flap_threshold`. Default: `10m`.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// A change event (category `change`) at most this long before an incident, on one of its
    /// services, a dependency of one, or one of its CIs, is listed in the incident's
    /// `related_changes`. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub change_lookback: Duration,
    /// How long a closed incident and its alerts stay in memory (so late duplicates of its
    /// alerts are recognised) before they are forgotten. Default: `1h`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most alerts kept per input partition. Past it, d2c forgets state down to 90% of the cap:
    /// first resolves that matched no alert, then resolved incidents (oldest first), then open
    /// incidents (least recently active first), counted in `d2c_state_evictions_total`.
    /// Default: `200000`.
    pub max_alerts: usize,
    /// Most incidents kept per input partition, evicted as for `max_alerts`. Default: `50000`.
    pub max_incidents: usize,
    /// An event (or acknowledgement, decision, problem action, run report) more than this
    /// behind the partition's clock (the latest event or tick time) is refused: it goes to the
    /// DLQ with reason `clock_behind` and changes nothing. Refused, not clamped: clamping would
    /// reorder history. Late events are normal after an outage of a sender and do no harm to the
    /// clock (it never goes back), so this is off unless set. `0s` turns it off. Default: `0s`.
    #[serde(with = "humantime_serde")]
    pub max_behind: Duration,
    /// A new incident's first version waits until its root cause has not moved for this long
    /// (on event time: the events' times, ended by a later event or tick), so causes that alert after their
    /// symptoms are in it before it pages anyone. A root cause that could still move (its
    /// service has dependencies in the model) keeps it waiting up to `group_wait_max`. `0s`
    /// publishes the first version at once. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub group_wait: Duration,
    /// The longest a first version waits (from the incident's opening). Default: `2m`.
    #[serde(with = "humantime_serde")]
    pub group_wait_max: Duration,
    /// Later changes of an incident are published at most this often, coalesced; a higher
    /// priority, a status change (resolved, reopened, closed, merged) and an acknowledgement
    /// are published at once. `0s` publishes every change at once. Default: `1m`.
    #[serde(with = "humantime_serde")]
    pub group_interval: Duration,
    /// For alerts whose service the model does not know: labels whose values, when the alert
    /// carries any of them, group it with other such alerts of the same values within the
    /// window (one namespace of one cluster is one incident), instead of one incident per CI.
    /// The earliest of the most severe alerts of such an incident is named its probable cause,
    /// marked as a guess. Empty turns this off. Default: `["cluster", "namespace"]`.
    pub fallback_group_by: Vec<String>,
    /// Services whose alerts opened and resolved together (within `window` of each other) in
    /// this many incidents are linked for grouping, although the model declares no dependency
    /// between them (`GET /api/v1/topology/learned` lists them). `0` turns learning off.
    /// Default: `3`.
    pub learn_after: u32,
    /// Rules per source (the event's `source`, e.g. `alertmanager`, `zabbix`), overriding the
    /// ones above for that source's events: `[correlation.sources.zabbix]`.
    pub sources: std::collections::BTreeMap<String, SourceRules>,
    /// How security events (category `security`) are grouped into security incidents:
    /// `[correlation.security]`. See README "Security triage".
    pub security: SecurityConfig,
}

/// Correlation rules for the events of one source. Every field is optional; unset ones take the
/// `[correlation]` value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SourceRules {
    /// Fields that identify an alert of this source, replacing the fingerprint the event came
    /// with: label names, or `alertname` (the event's name) and `ci`. E.g. `["alertname",
    /// "instance"]` makes one alert per name and instance, whatever other labels change.
    pub fingerprint: Option<Vec<String>>,
    /// Resolve an alert of this source when no event for it arrived for this long: for tools
    /// that never send a resolve. Default: none (wait for the resolve).
    #[serde(default, with = "humantime_serde::option")]
    pub resolve_timeout: Option<Duration>,
    /// `window` for alerts of this source.
    #[serde(default, with = "humantime_serde::option")]
    pub window: Option<Duration>,
    /// `group_by` for alerts of this source.
    pub group_by: Option<Vec<String>>,
}

impl CorrelationConfig {
    /// The rules of `source`, or `None` when it has no overrides.
    pub fn source(&self, source: &str) -> Option<&SourceRules> {
        self.sources.get(source)
    }

    /// The window for alerts of `source`.
    pub fn window_for(&self, source: &str) -> Duration {
        self.source(source)
            .and_then(|r| r.window)
            .unwrap_or(self.window)
    }

    /// The group-by labels for alerts of `source`.
    pub fn group_by_for(&self, source: &str) -> &[String] {
        self.source(source)
            .and_then(|r| r.group_by.as_deref())
            .unwrap_or(&self.group_by)
    }

    /// The resolve timeout of `source`, if it has one.
    pub fn resolve_timeout_for(&self, source: &str) -> Option<Duration> {
        self.source(source).and_then(|r| r.resolve_timeout)
    }
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            window: Duration::from_secs(300),
            group_by: Vec::new(),
            resolve_hold: Duration::from_secs(60),
            reopen_window: Duration::from_secs(1800),
            flap_threshold: 4,
            flap_window: Duration::from_secs(600),
            change_lookback: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
            max_alerts: 200_000,
            max_incidents: 50_000,
            max_behind: Duration::ZERO,
            group_wait: Duration::from_secs(30),
            group_wait_max: Duration::from_secs(120),
            group_interval: Duration::from_secs(60),
            fallback_group_by: vec!["cluster".into(), "namespace".into()],
            learn_after: 3,
            sources: Default::default(),
            security: SecurityConfig::default(),
        }
    }
}

/// Checkpoints of the correlation state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Longest time between checkpoints of a partition that received events. After a crash,
    /// input since the last checkpoint is processed again (giving the same outputs), so this
    /// bounds the work of a restart; shorter costs more writes and, with large states, latency
    /// (see BENCHMARKS.md). A partition's first checkpoint (full) comes after 1 s, or after
    /// this if shorter. Default: `30s` (as Kafka Streams' commit interval).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Largest record written to the state topic; bigger states are split into chunks.
    /// Keep it below the broker's `message.max.bytes`. Default: `524288` (512 KiB).
    pub chunk_bytes: usize,
    /// Write deltas (what changed since the previous checkpoint) between full checkpoints,
    /// instead of the whole state every time: a checkpoint then costs the changes, not the
    /// state. `false` writes every checkpoint whole, as d2c did before. Either way the state
    /// topic restores (a delta-writing d2c reads full-only partitions, and the reverse reads
    /// the newest full checkpoint and ignores the deltas after it). Default: `true`
    /// (BENCHMARKS.md, round 3d: 3.6× fewer bytes and a lower p99 at 5 s checkpoints).
    pub incremental: bool,
    /// With `incremental`, a full checkpoint after this many deltas (or sooner, once a restore
    /// would read more than 1.5 entries per entry of the state: deltas that keep rewriting the
    /// same keys): a restore reads one full checkpoint and at most this many deltas. Default:
    /// `60` (five minutes of deltas at a 5 s interval, half an hour at 30 s).
    pub full_every: u32,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            checkpoint_interval: Duration::from_secs(30),
            chunk_bytes: 512 * 1024,
            incremental: true,
            full_every: 60,
        }
    }
}
