//! `d2c dump-events`: the events topic as replay lines, one file per partition
//! (`partition-<p>.jsonl`), in offset order: ticks as `{"tick":…}`, control records as the
//! replay lines of the same name (`{"ack":…}`, `{"silence":…}`, `{"decision":…}`,
//! `{"problem":…}`, `{"run":…}`), and each events record as
//! `{"events":[{"origin":…,"event":…},…]}` (`origin` null for records written before batches). `d2c replay` of one file applies exactly what the
//! correlate stage applied to that partition (origins included, so redelivered events are
//! skipped the same way): the reference a recovery test compares the incidents topic with.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use serde_json::json;

use crate::config::Config;

use super::kafka::{base_config, read_to_end};
use super::records::EventsRecord;

/// What a dump wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpReport {
    pub partitions: usize,
    pub records: u64,
    pub events: u64,
    pub ticks: u64,
    /// Records (or elements) that do not read; the correlate stage dead-letters them too.
    pub undecodable: u64,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read `{topic}`: {source}")]
    Kafka { topic: String, source: KafkaError },
    #[error("timed out reading `{0}` to its end")]
    Timeout(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes every partition of `topics.events` (to the end offsets seen at the start) into `dir`.
pub fn dump_events(cfg: &Config, dir: &Path, timeout: Duration) -> Result<DumpReport, DumpError> {
    let topic = cfg.topics.events.clone();
    let kafka = |source| DumpError::Kafka {
        topic: topic.clone(),
        source,
    };
    let mut c = base_config(&cfg.kafka).map_err(kafka)?;
    c.set("group.id", format!("{}-dump", cfg.kafka.group_id))
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
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DumpError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut report = DumpReport {
        partitions: partitions.len(),
        ..Default::default()
    };
    let mut files = std::collections::BTreeMap::new();
    for &p in &partitions {
        let path = dir.join(format!("partition-{p}.jsonl"));
        let f = std::fs::File::create(&path).map_err(write_err(&path))?;
        files.insert(p, (path, std::io::BufWriter::new(f), None));
    }
    let complete = read_to_end(&consumer, &topic, &partitions, timeout, |m| {
        use rdkafka::Message;
        let Some((_, out, failed)) = files.get_mut(&m.partition()) else {
            return;
        };
        if failed.is_some() {
            return;
        }
        report.records += 1;
        let line = match EventsRecord::decode(m) {
            Ok((record, rejected)) => {
                report.undecodable += rejected.len() as u64;
                line(&record, &mut report)
            }
            Err(_) => {
                report.undecodable += 1;
                return;
            }
        };
        if let Err(e) = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            *failed = Some(e);
        }
    })
    .map_err(kafka)?;
    for (_, (path, mut out, failed)) in files {
        if let Some(e) = failed {
            return Err(DumpError::Write { path, source: e });
        }
        out.flush().map_err(write_err(&path))?;
        report.files.push(path);
    }
    if !complete {
        return Err(DumpError::Timeout(topic));
    }
    Ok(report)
}

/// The replay line of one events record.
fn line(record: &EventsRecord, report: &mut DumpReport) -> String {
    match record {
        EventsRecord::Tick(t) => {
            report.ticks += 1;
            json!({ "tick": crate::model::format_rfc3339(*t).as_str() }).to_string()
        }
        EventsRecord::Ack(a) => json!({ "ack": a }).to_string(),
        EventsRecord::Silence(s) => json!({ "silence": s }).to_string(),
        EventsRecord::Decision(d) => json!({ "decision": d }).to_string(),
        EventsRecord::Problem(p) => json!({ "problem": p }).to_string(),
        EventsRecord::Run(r) => json!({ "run": r }).to_string(),
        EventsRecord::Events(events) => {
            report.events += events.len() as u64;
            let events: Vec<serde_json::Value> = events
                .iter()
                .map(|(event, origin)| json!({ "origin": origin, "event": event }))
                .collect();
            json!({ "events": events }).to_string()
        }
    }
}
