//! The bench's bare readers: one broker hop, a bare consumer over the backlog, and the incident
//! records' latencies.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::DateTime;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{BenchError, now_ms, progress};

/// Reads new records of `topic` (from the end of every partition) until `total` arrived or
/// 15 s passed without one; returns receipt time − record timestamp in ms for each.
pub(super) fn hop_latencies(
    kafka: &crate::config::KafkaConfig,
    topic: &str,
    total: usize,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<i64>, BenchError> {
    let mut config = crate::pipeline::kafka::base_config(kafka)?;
    config
        .set("group.id", format!("d2c-bench-hop-{}", now_ms()))
        .set("enable.auto.commit", "false")
        .set(
            "fetch.wait.max.ms",
            crate::pipeline::kafka::FETCH_WAIT_MAX_MS,
        );
    // The user's properties win, as they do for the pipeline's consumers.
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    let c: BaseConsumer = config.create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..kafka.partitions {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(high))?;
    }
    c.assign(&tpl)?;
    let _ = ready.send(());
    let mut out = Vec::with_capacity(total);
    let mut last_record = Instant::now();
    while out.len() < total && last_record.elapsed() < Duration::from_secs(15) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            if let Some(ts) = m.timestamp().to_millis() {
                out.push((now_ms() - ts).max(0));
            }
            last_record = Instant::now();
        }
    }
    Ok(out)
}

/// Reads `n` records from the start of every partition and does nothing with them.
pub(super) fn bare_consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Result<f64, BenchError> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("d2c-bench-bare-{}", now_ms()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let started = Instant::now();
    let mut last = Instant::now();
    let mut got = 0usize;
    // Timed from the first record to the last, like the pipeline.
    let mut first: Option<Instant> = None;
    while got < n {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Timeout(format!(
                "bare consumer read {got} of {n}"
            )));
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            std::hint::black_box(m.payload());
            first.get_or_insert_with(Instant::now);
            got += 1;
        }
        if last.elapsed() > Duration::from_secs(1) {
            progress("bare consumer", got, n, started);
            last = Instant::now();
        }
    }
    let since = first.unwrap_or(started);
    eprintln!(
        "  bare consumer: {:.2} s from start to the first record",
        (since - started).as_secs_f64()
    );
    Ok((n.saturating_sub(1)) as f64 / since.elapsed().as_secs_f64())
}

/// Latency in ms of every event of the phase (its time at or after `since_ms`): the first
/// incident record that lists its alert (each of the phase's events is a new alert) minus the
/// event's time. Counted per event, not per record: where several events of one incident reach
/// the engine in one batch they make one version, and timing only its newest event (its
/// `updated_at`) would leave the others out and undercount the wait of the older ones. A
/// record without its alerts listed counts once, by its `updated_at`.
pub(super) fn incident_latencies(
    brokers: &str,
    topic: &str,
    partitions: i32,
    since_ms: i64,
) -> Result<Vec<i64>, BenchError> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("d2c-bench-lat-{}", now_ms()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let all: Vec<i32> = (0..partitions).collect();
    // A read cut short by the timeout still gives the samples read so far.
    crate::pipeline::kafka::read_to_end(&c, topic, &all, Duration::from_secs(120), |m| {
        let Some(produced) = m.timestamp().to_millis() else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or(&[])) else {
            return;
        };
        record_latencies(&v, produced, since_ms, &mut seen, &mut out);
    })?;
    Ok(out)
}

/// The latency samples of incident record `v`, produced at `produced` (ms), into `out`: one
/// per alert it lists first (`seen` holds the fingerprints listed before) whose first event is
/// at or after `since_ms`; one by its `updated_at` when it lists no alerts.
fn record_latencies(
    v: &serde_json::Value,
    produced: i64,
    since_ms: i64,
    seen: &mut HashSet<String>,
    out: &mut Vec<i64>,
) {
    let ms = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
    };
    let alerts = v["alerts"].as_array().map_or(&[][..], Vec::as_slice);
    if alerts.is_empty() {
        if let Some(event_ms) = ms(&v["updated_at"])
            && event_ms >= since_ms
        {
            out.push((produced - event_ms).max(0));
        }
        return;
    }
    for a in alerts {
        let (Some(f), Some(event_ms)) = (a["fingerprint"].as_str(), ms(&a["first_seen"])) else {
            continue;
        };
        if event_ms >= since_ms && seen.insert(f.to_owned()) {
            out.push((produced - event_ms).max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_event_is_timed_once_by_the_first_record_that_lists_its_alert() {
        let (mut seen, mut out) = (HashSet::new(), Vec::new());
        let t = |s: u32| format!("2026-12-04T10:00:{s:02}Z");
        let at = |s: u32| {
            DateTime::parse_from_rfc3339(&t(s))
                .unwrap()
                .timestamp_millis()
        };
        // Two events of one incident in one version: both timed, the older one longer.
        let v1 = json!({"updated_at": t(2), "alerts": [
            {"fingerprint": "a", "first_seen": t(1)},
            {"fingerprint": "b", "first_seen": t(2)},
        ]});
        record_latencies(&v1, at(3), at(0), &mut seen, &mut out);
        assert_eq!(out, [2000, 1000]);
        // The next version lists them again and one more: only the new one counts.
        let v2 = json!({"updated_at": t(4), "alerts": [
            {"fingerprint": "a", "first_seen": t(1)},
            {"fingerprint": "b", "first_seen": t(2)},
            {"fingerprint": "c", "first_seen": t(4)},
        ]});
        record_latencies(&v2, at(5), at(0), &mut seen, &mut out);
        assert_eq!(out, [2000, 1000, 1000]);
        // Events before the phase are not timed; a record without alerts counts once.
        let old = json!({"alerts": [{"fingerprint": "d", "first_seen": t(0)}]});
        record_latencies(&old, at(6), at(1), &mut seen, &mut out);
        let bare = json!({"updated_at": t(5), "alerts": []});
        record_latencies(&bare, at(7), at(1), &mut seen, &mut out);
        assert_eq!(out, [2000, 1000, 1000, 2000]);
    }
}
