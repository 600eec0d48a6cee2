//! The bench's bare readers: one broker hop, a bare consumer over the backlog, and the incident
//! records' latencies.

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

/// Latency in ms of every incident record produced after `since_ms` whose `updated_at` (the
/// causing event's time) is after it too.
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
    let all: Vec<i32> = (0..partitions).collect();
    // A read cut short by the timeout still gives the samples read so far.
    crate::pipeline::kafka::read_to_end(&c, topic, &all, Duration::from_secs(120), |m| {
        let Some(produced) = m.timestamp().to_millis() else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or(&[])) else {
            return;
        };
        let Some(t) = v["updated_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        else {
            return;
        };
        let event_ms = t.timestamp_millis();
        if event_ms >= since_ms {
            out.push((produced - event_ms).max(0));
        }
    })?;
    Ok(out)
}
