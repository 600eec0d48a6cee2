//! Named events of the shell's failure handling (the Kafka clients, the producers' permanent
//! errors, dead letters, stuck stages, the HTTP server's connections) and the sizes of the
//! correlation state's maps, with the metrics they move. Same manner as [`super::events`].

use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::Metrics;
use super::events::TelemetryEvent;

/// The shell's metrics, registered with the others by [`Metrics::new`].
#[derive(Debug, Clone)]
pub struct ShellMetrics {
    kafka_client_errors: IntCounterVec,
    produce_failures: IntCounterVec,
    dlq_truncated: IntCounter,
    stage_stalls: IntCounterVec,
    http_connections: IntGauge,
    http_connection_errors: IntCounterVec,
    state_entries: IntGaugeVec,
    kafka_queued_bytes: IntGaugeVec,
}

/// The maps of the correlation state, the `map` label of `d2c_state_entries`.
pub const STATE_MAPS: [&str; 12] = [
    "alerts",
    "incidents",
    "open_index",
    "timers",
    "changes",
    "published",
    "rfcs",
    "origins",
    "suppressed",
    "silences",
    "security_incidents",
    "security_timers",
];

fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl ShellMetrics {
    pub fn new(r: &Registry) -> ShellMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let m = ShellMetrics {
            kafka_client_errors: counter(
                "d2c_kafka_client_errors_total",
                "Errors librdkafka reported, by problem (authentication, tls, brokers_down, transport, other).",
                &["problem"],
            ),
            produce_failures: counter(
                "d2c_produce_failures_total",
                "Records the broker refused for good (too large, not authorised, unknown topic…), by topic and what d2c did instead (dead_lettered to topics.dlq, or dropped).",
                &["topic", "action"],
            ),
            dlq_truncated: register(
                r,
                IntCounter::new(
                    "d2c_dlq_truncated_total",
                    "Dead letters whose payload was cut to fit the producer's message.max.bytes (the d2c.truncated header holds the original size).",
                )
                .expect("valid metric"),
            ),
            stage_stalls: counter(
                "d2c_stage_stalls_total",
                "Times a stage's batch went unacknowledged by the broker for longer than kafka.stall_timeout, by stage.",
                &["stage"],
            ),
            http_connections: register(
                r,
                IntGauge::new(
                    "d2c_http_connections",
                    "HTTP connections open (at most http.max_connections).",
                )
                .expect("valid metric"),
            ),
            http_connection_errors: counter(
                "d2c_http_connection_errors_total",
                "HTTP connections closed on an error, by kind (header_timeout: headers not received within http.header_timeout; other).",
                &["kind"],
            ),
            state_entries: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_state_entries",
                        "Entries in each map of the correlation state, summed over the partitions this instance owns.",
                    ),
                    &["map"],
                )
                .expect("valid metric"),
            ),
            kafka_queued_bytes: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_kafka_queued_bytes",
                        "Bytes of records librdkafka holds in this process, by client (librdkafka's name of it) and queue (produce: records not yet acknowledged by the broker; fetch: records prefetched and not yet read by the stage), from its statistics every 5 s.",
                    ),
                    &["client", "queue"],
                )
                .expect("valid metric"),
            ),
        };
        for p in [
            "authentication",
            "tls",
            "brokers_down",
            "transport",
            "other",
        ] {
            m.kafka_client_errors.with_label_values(&[p]);
        }
        for s in [
            "ingest",
            "correlate",
            "checkpoint",
            "delivery",
            "automation",
        ] {
            m.stage_stalls.with_label_values(&[s]);
        }
        for k in ["header_timeout", "other"] {
            m.http_connection_errors.with_label_values(&[k]);
        }
        for map in STATE_MAPS {
            m.state_entries.with_label_values(&[map]);
        }
        m
    }
}

impl Metrics {
    /// Sets `d2c_state_entries`: `sizes` in the order of [`STATE_MAPS`].
    pub fn set_state_entries(&self, sizes: &[usize; STATE_MAPS.len()]) {
        for (map, n) in STATE_MAPS.iter().zip(sizes) {
            self.shell
                .state_entries
                .with_label_values(&[map])
                .set(*n as i64);
        }
    }

    /// `d2c_state_entries` by map, as last set.
    pub fn state_entries(&self) -> Vec<(&'static str, i64)> {
        STATE_MAPS
            .iter()
            .map(|m| (*m, self.shell.state_entries.with_label_values(&[m]).get()))
            .collect()
    }

    /// The sum of `d2c_consumer_lag` over the partitions of `topic`: records not yet read.
    pub fn consumer_lag(&self, topic: &str) -> i64 {
        sum_where(&self.consumer_lag, "topic", topic)
    }

    /// `d2c_kafka_queued_bytes` summed over the clients: (produce, fetch).
    pub fn kafka_queued_bytes(&self) -> (i64, i64) {
        let q = &self.shell.kafka_queued_bytes;
        (
            sum_where(q, "queue", "produce"),
            sum_where(q, "queue", "fetch"),
        )
    }

    /// Open HTTP connections, up or down by one.
    pub fn http_connection(&self, opened: bool) {
        if opened {
            self.shell.http_connections.inc();
        } else {
            self.shell.http_connections.dec();
        }
    }
}

/// librdkafka reported an error (logged by the client context, see `pipeline::client`).
#[derive(Debug)]
pub struct KafkaClientError {
    /// `authentication`, `tls`, `brokers_down`, `transport` or `other`.
    pub problem: &'static str,
}

impl TelemetryEvent for KafkaClientError {
    fn emit(self, m: &Metrics) {
        m.shell
            .kafka_client_errors
            .with_label_values(&[self.problem])
            .inc();
    }
}

/// The sum of the series of `gauges` whose label `name` is `value`.
fn sum_where(gauges: &IntGaugeVec, name: &str, value: &str) -> i64 {
    use prometheus::core::Collector;
    gauges
        .collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == name && l.value() == value)
        })
        .map(|m| m.get_gauge().get_value() as i64)
        .sum()
}

/// The bytes librdkafka holds for one client, from its statistics.
#[derive(Debug)]
pub struct KafkaQueues<'a> {
    /// librdkafka's name of the client (`<client.id>#<type>-<n>`).
    pub client: &'a str,
    /// Records produced and not yet acknowledged (0 for a consumer).
    pub produce: i64,
    /// Records fetched and not yet read by the stage (0 for a producer).
    pub fetch: i64,
}

impl TelemetryEvent for KafkaQueues<'_> {
    fn emit(self, m: &Metrics) {
        let g = &m.shell.kafka_queued_bytes;
        g.with_label_values(&[self.client, "produce"])
            .set(self.produce.max(0));
        g.with_label_values(&[self.client, "fetch"])
            .set(self.fetch.max(0));
    }
}

/// The broker refused a record for good; it was dead-lettered instead, or dropped.
#[derive(Debug)]
pub struct ProduceFailed<'a> {
    pub topic: &'a str,
    pub error: &'a dyn std::error::Error,
    /// `dead_lettered` or `dropped`.
    pub action: &'static str,
    pub bytes: usize,
}

impl TelemetryEvent for ProduceFailed<'_> {
    fn emit(self, m: &Metrics) {
        if self.action == "dropped" {
            tracing::error!(topic = %self.topic, error = %self.error, bytes = self.bytes, "the broker refused a record for good and it cannot be dead-lettered either; it is dropped");
        } else {
            tracing::error!(topic = %self.topic, error = %self.error, bytes = self.bytes, "the broker refused a record for good; it goes to the DLQ instead and the stage goes on");
        }
        m.shell
            .produce_failures
            .with_label_values(&[self.topic, self.action])
            .inc();
    }
}

/// A dead letter's payload was cut to fit the producer's limit.
#[derive(Debug)]
pub struct DeadLetterTruncated {
    pub original: usize,
    pub kept: usize,
}

impl TelemetryEvent for DeadLetterTruncated {
    fn emit(self, m: &Metrics) {
        tracing::debug!(
            original = self.original,
            kept = self.kept,
            "dead letter truncated to fit message.max.bytes"
        );
        m.shell.dlq_truncated.inc();
    }
}

/// A stage's batch has gone unacknowledged for longer than `kafka.stall_timeout`.
#[derive(Debug)]
pub struct StageStalled<'a> {
    pub stage: &'static str,
    pub waited: Duration,
    pub last_error: Option<&'a str>,
}

impl TelemetryEvent for StageStalled<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(stage = self.stage, waited = ?self.waited, last_error = self.last_error.unwrap_or("none"), "the broker has not acknowledged a batch for too long; the stage is not ready until it does");
        m.shell.stage_stalls.with_label_values(&[self.stage]).inc();
    }
}

/// The HTTP server closed a connection on an error.
#[derive(Debug)]
pub struct HttpConnectionFailed<'a> {
    pub header_timeout: bool,
    pub error: &'a dyn std::error::Error,
}

impl TelemetryEvent for HttpConnectionFailed<'_> {
    fn emit(self, m: &Metrics) {
        let kind = if self.header_timeout {
            "header_timeout"
        } else {
            "other"
        };
        tracing::debug!(kind, error = %self.error, "HTTP connection closed on an error");
        m.shell
            .http_connection_errors
            .with_label_values(&[kind])
            .inc();
    }
}

/// The correlate stage dead-lettered one element of an events record it cannot decode.
#[derive(Debug)]
pub struct EventDeadLettered {
    pub reason: &'static str,
}

impl TelemetryEvent for EventDeadLettered {
    fn emit(self, m: &Metrics) {
        m.dlq_records.with_label_values(&[self.reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_bytes_are_kept_per_client_and_summed_by_queue() {
        let m = Metrics::new(&Default::default());
        for (client, produce, fetch) in [
            ("d2c#producer-1", 4096, 0),
            ("d2c#consumer-2", 0, 1 << 20),
            ("d2c#producer-1", 1024, 0), // a later statistic replaces the first
            ("d2c#producer-3", 512, -1), // never negative
        ] {
            m.emit(KafkaQueues {
                client,
                produce,
                fetch,
            });
        }
        assert_eq!(m.kafka_queued_bytes(), (1024 + 512, 1 << 20));
        let text = m.render();
        assert!(
            text.contains(
                "d2c_kafka_queued_bytes{client=\"d2c#consumer-2\",queue=\"fetch\"} 1048576"
            ),
            "{text}"
        );
    }
}
