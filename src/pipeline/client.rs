//! The context every Kafka client of d2c runs with: librdkafka's errors and logs turned into one
//! clear log line per problem and a readiness condition with its reason (a refused password or
//! an untrusted certificate is retried by librdkafka every few seconds; logging each retry would
//! bury the reason), consumer lag from librdkafka's statistics, and rebalances.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::telemetry::events::ConsumerLag;
use crate::telemetry::shell::{KafkaClientError, KafkaQueues};
use crate::telemetry::{Health, Metrics};

/// Readiness conditions the clients open (all under this prefix, see [`Health`]).
pub const CONDITION_PREFIX: &str = "kafka.";
const AUTHENTICATION: &str = "kafka.authentication";
const TLS: &str = "kafka.tls";
const BROKERS: &str = "kafka.brokers";

/// How often a librdkafka warning of one kind is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Context of every d2c Kafka client (producers, consumers, admin).
#[derive(Debug, Clone)]
pub struct KafkaContext {
    metrics: Metrics,
    health: Health,
    /// `kafka.brokers` and `[kafka.security]` in words, for the messages.
    brokers: String,
    security: String,
    /// Partitions revoked since the stage last looked; the stage drops their state.
    pub revoked: Arc<Mutex<Vec<i32>>>,
    /// Partitions assigned since the stage last looked (with cooperative assignment, only the
    /// new ones); the stage restores their state.
    pub assigned: Arc<Mutex<Vec<i32>>>,
    /// When each kind of warning was last logged, shared by the clones of one client.
    warned: Arc<Mutex<HashMap<String, Instant>>>,
}

impl KafkaContext {
    pub fn new(k: &crate::config::KafkaConfig, metrics: &Metrics, health: &Health) -> Self {
        KafkaContext {
            metrics: metrics.clone(),
            health: health.clone(),
            brokers: k.brokers.clone(),
            security: k.security.describe(),
            revoked: Arc::default(),
            assigned: Arc::default(),
            warned: Arc::default(),
        }
    }

    /// Whether a warning of `kind` is due (not logged within [`WARN_EVERY`]).
    fn due(&self, kind: &str) -> bool {
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match w.get(kind) {
            Some(t) if now.duration_since(*t) < WARN_EVERY => false,
            _ => {
                if w.len() > 64 {
                    w.clear();
                }
                w.insert(kind.to_string(), now);
                true
            }
        }
    }
}

/// What an error reported by librdkafka means for d2c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProblem {
    /// The broker refused the credentials: retrying will not help until they change.
    Authentication,
    /// The TLS handshake failed (an untrusted or mismatched certificate, a protocol mismatch).
    Tls,
    /// No broker answers.
    BrokersDown,
    /// A connection dropped or timed out: librdkafka reconnects by itself.
    Transport,
    Other,
}

impl ClientProblem {
    pub fn of(code: Option<RDKafkaErrorCode>) -> ClientProblem {
        match code {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                ClientProblem::Authentication
            }
            Some(RDKafkaErrorCode::SSL) => ClientProblem::Tls,
            Some(RDKafkaErrorCode::AllBrokersDown) => ClientProblem::BrokersDown,
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut,
            ) => ClientProblem::Transport,
            _ => ClientProblem::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientProblem::Authentication => "authentication",
            ClientProblem::Tls => "tls",
            ClientProblem::BrokersDown => "brokers_down",
            ClientProblem::Transport => "transport",
            ClientProblem::Other => "other",
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // librdkafka logs every failed connection attempt (facility FAIL) besides reporting it
        // through `error` below, which says what it means once; the lines stay at DEBUG.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
                if fac != "FAIL" =>
            {
                if self.due(fac) {
                    tracing::warn!(target: "librdkafka", facility = fac, "{log_message}");
                } else {
                    tracing::debug!(target: "librdkafka", facility = fac, "{log_message}");
                }
            }
            RDKafkaLogLevel::Notice => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            _ => tracing::debug!(target: "librdkafka", facility = fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let problem = ClientProblem::of(error.rdkafka_error_code());
        self.metrics.emit(KafkaClientError {
            problem: problem.as_str(),
        });
        match problem {
            ClientProblem::Authentication => {
                let why = format!(
                    "the brokers refuse d2c's credentials ({}): {reason}; check kafka.security.username and kafka.security.password (or the user on the broker)",
                    self.security
                );
                if self.health.set_condition(AUTHENTICATION, &why) {
                    tracing::error!(brokers = %self.brokers, error = %reason, "cannot authenticate to Kafka; d2c keeps retrying quietly and is not ready until the brokers accept its credentials");
                }
            }
            ClientProblem::Tls => {
                let why = format!(
                    "TLS with the brokers fails ({}): {reason}; check kafka.security.ca_file (the CA that signed the brokers' certificates), the client certificate and verify_hostname",
                    self.security
                );
                if self.health.set_condition(TLS, &why) {
                    tracing::error!(brokers = %self.brokers, error = %reason, "cannot connect to Kafka over TLS; d2c keeps retrying quietly and is not ready until the handshake succeeds");
                }
            }
            ClientProblem::BrokersDown => {
                let why = format!("no broker of {} answers: {reason}", self.brokers);
                if self.health.set_condition(BROKERS, why) {
                    tracing::warn!(brokers = %self.brokers, error = %reason, "no Kafka broker reachable; retrying");
                }
            }
            ClientProblem::Transport => {
                tracing::debug!(error = %error, reason, "Kafka connection problem; librdkafka reconnects")
            }
            ClientProblem::Other => {
                if self.due(&format!("error:{error}")) {
                    tracing::warn!(error = %error, reason, "Kafka client error");
                } else {
                    tracing::debug!(error = %error, reason, "Kafka client error");
                }
            }
        }
    }

    fn stats(&self, stats: Statistics) {
        // A broker connection that is up and authenticated ends the problems above.
        if stats.brokers.values().any(|b| b.state == "UP") {
            for key in [AUTHENTICATION, TLS, BROKERS] {
                if self.health.clear_condition(key) {
                    tracing::info!(condition = key, "Kafka connection works again");
                }
            }
        }
        // Every partition's fetch queue forwards to the consumer's one queue, and librdkafka
        // reports that queue's size for each: the largest is the queue's.
        let mut fetch = 0;
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 {
                    fetch = fetch.max(part.fetchq_size);
                }
                // Partition -1 is librdkafka's internal "unassigned" bucket. Lag -1 means no
                // position yet (nothing consumed or committed): then everything from the log
                // start to its end is still to be read. Producers have no fetch state.
                if *p < 0 || part.fetch_state == "none" || part.hi_offset < 0 {
                    continue;
                }
                let lag = if part.consumer_lag >= 0 {
                    part.consumer_lag
                } else {
                    part.hi_offset - part.lo_offset.max(0)
                };
                self.metrics.emit(ConsumerLag {
                    topic,
                    partition: *p,
                    lag,
                });
            }
        }
        // msg_size counts every record a producer holds (queued, in flight, awaiting its
        // acknowledgement); a consumer's records wait in its partitions' fetch queues.
        self.metrics.emit(KafkaQueues {
            client: &stats.name,
            produce: stats.msg_size as i64,
            fetch: fetch as i64,
        });
    }
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            record(&self.revoked, tpl);
        }
    }

    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                record(&self.assigned, tpl);
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

/// Adds the partitions of `tpl` to `list`, each once: only the correlate stage takes them
/// out, so the lists of other stages' consumers stay bounded by their partitions.
fn record(list: &Mutex<Vec<i32>>, tpl: &TopicPartitionList) {
    let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
    for e in tpl.elements() {
        if !list.contains(&e.partition()) {
            list.push(e.partition());
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_password_opens_one_condition_however_often_librdkafka_reports_it() {
        let health = Health::default();
        health.set_ready(true);
        let metrics = Metrics::new(&Default::default());
        let ctx = KafkaContext::new(&Default::default(), &metrics, &health);
        for _ in 0..5 {
            ctx.error(
                KafkaError::Global(RDKafkaErrorCode::Authentication),
                "SASL SCRAM authentication failed: broker responded with invalid-proof",
            );
        }
        let reasons = health.reasons();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("kafka.authentication: the brokers refuse"));
        assert!(reasons[0].contains("invalid-proof"));
        assert!(!health.is_ready());
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(
            ClientProblem::of(Some(RDKafkaErrorCode::SSL)),
            ClientProblem::Tls
        );
        assert_eq!(
            ClientProblem::of(Some(RDKafkaErrorCode::BrokerTransportFailure)),
            ClientProblem::Transport
        );
        assert_eq!(ClientProblem::of(None), ClientProblem::Other);
    }
}
