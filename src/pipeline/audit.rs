//! `d2c audit`: reads the incidents topic from the start and checks the delivery guarantee as a
//! downstream consumer sees it: every `(id, version)` present once or as byte-identical
//! duplicates, and every incident's versions running 1..n without a gap.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::config::Config;

use super::kafka::{base_config, read_to_end};

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub records: u64,
    pub incidents: u64,
    /// Distinct `(id, version)` pairs.
    pub versions: u64,
    /// Records repeating a pair with identical bytes (expected after restarts).
    pub duplicates: u64,
    /// Pairs published with different contents: a broken guarantee.
    pub conflicts: Vec<(String, u64)>,
    /// Incidents with missing versions, and which.
    pub gaps: Vec<(String, Vec<u64>)>,
    /// Records that are not incident JSON.
    pub unreadable: u64,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.conflicts.is_empty() && self.gaps.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read `{topic}`: {source}")]
    Kafka { topic: String, source: KafkaError },
    #[error("timed out reading `{0}` to its end")]
    Timeout(String),
}

/// Reads the whole incidents topic (to the end offsets seen at the start).
pub fn audit(cfg: &Config, timeout: Duration) -> Result<AuditReport, AuditError> {
    let topic = cfg.topics.incidents.clone();
    let kafka = |source| AuditError::Kafka {
        topic: topic.clone(),
        source,
    };
    let mut c = base_config(&cfg.kafka).map_err(kafka)?;
    c.set("group.id", format!("{}-audit", cfg.kafka.group_id))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().map_err(kafka)?;
    let md = consumer
        .fetch_metadata(Some(&topic), timeout)
        .map_err(kafka)?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut seen: BTreeMap<(String, u64), Vec<u8>> = BTreeMap::new();
    let mut report = AuditReport::default();
    let complete = read_to_end(&consumer, &topic, &partitions, timeout, |m| {
        report.records += 1;
        let payload = m.payload().unwrap_or(&[]);
        let v: serde_json::Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(_) => {
                report.unreadable += 1;
                return;
            }
        };
        let (Some(id), Some(version)) = (v["id"].as_str(), v["version"].as_u64()) else {
            report.unreadable += 1;
            return;
        };
        let key = (id.to_string(), version);
        match seen.get(&key) {
            Some(prev) if prev.as_slice() == payload => report.duplicates += 1,
            Some(_) => report.conflicts.push(key),
            None => {
                seen.insert(key, payload.to_vec());
            }
        }
    })
    .map_err(kafka)?;
    if !complete {
        return Err(AuditError::Timeout(topic));
    }
    let mut versions: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for (id, v) in seen.keys() {
        versions.entry(id).or_default().insert(*v);
    }
    report.versions = seen.len() as u64;
    report.incidents = versions.len() as u64;
    for (id, vs) in versions {
        let max = vs.iter().max().copied().unwrap_or(0);
        let missing: Vec<u64> = (1..=max).filter(|v| !vs.contains(v)).collect();
        if !missing.is_empty() {
            report.gaps.push((id.to_string(), missing));
        }
    }
    Ok(report)
}
