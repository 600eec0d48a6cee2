//! `d2c bench`: the whole pipeline against a real broker, measured side by side with a bare
//! consumer on the same broker in the same run.
//!
//! 1. **Backlog throughput.** Produce N raw events, then run the pipeline (ingest and correlate,
//!    in this process) until every event is correlated: events/s, timed from the first correlated
//!    event to the last (start-up, such as joining the consumer groups, is printed apart).
//! 2. **Steady-rate latency.** With the pipeline running, produce events at a fixed rate for a
//!    while; every event adds an alert to an incident. An event's latency = the Kafka timestamp
//!    of the first incident record that lists its alert (stamped when d2c produced it) minus
//!    the event's `time` (stamped by the generator when it produced the raw record): one
//!    sample per event, even where several events of an incident make one version; p50, p99,
//!    max.
//! 3. **Bare consumer.** A consumer that does nothing with the records reads the same N raw
//!    records, timed from its first record to its last: the broker's limit on this machine. The
//!    ratio pipeline / bare is the figure to watch.
//! 4. **One broker hop.** With the pipeline stopped, the same steady rate is produced to the raw
//!    topic while a bare consumer (the pipeline's fetch settings) reads it: the latency of one
//!    produce → fetch hop, record timestamp to receipt. The pipeline makes two such hops (raw →
//!    `d2c.events` → incident), so twice this is the floor the broker sets for phase 2.
//!
//! During phase 2 a bare reader of the raw topic (phase 4's reader) measures the first hop of
//! the very events whose latency is measured, at the same time: the pipeline's p99 minus two of
//! those hops is d2c's own share of the latency.
//!
//! The generator of phases 2 and 4 produces with `linger.ms` = 1, so its own batching adds at
//! most 1 ms to what is measured.
//!
//! Each run uses fresh topics (`d2c.bench.<run id>.*`) so runs never mix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::engine::Settings;
use crate::telemetry::Metrics;
use crate::telemetry::held::{HeldSample, now_ms};

mod readers;
mod render;

use readers::{bare_consume, hop_latencies, incident_latencies};
pub use render::render;

/// Options of `d2c bench`.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Events in the backlog phase.
    pub events: usize,
    /// Events per second in the latency phase (0 skips it).
    pub rate: u64,
    /// Length of the latency phase.
    pub duration: Duration,
    /// Fraction (0–100) of backlog events that repeat an existing alert (the dedup path).
    pub repeat_percent: u8,
    /// Use the configured topics (which must exist and be empty) instead of fresh ones.
    pub existing_topics: bool,
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub events: usize,
    pub produce_per_sec: f64,
    pub pipeline_per_sec: f64,
    pub bare_per_sec: f64,
    pub latency_rate: u64,
    pub latency_samples: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub hop_samples: usize,
    pub hop_p50_ms: f64,
    pub hop_p99_ms: f64,
    pub hop_max_ms: f64,
    /// The raw hop of the latency phase's own events, read beside the pipeline.
    pub beside_samples: usize,
    pub beside_p50_ms: f64,
    pub beside_p99_ms: f64,
    /// d2c's own time in the latency phase, measured directly (`telemetry::held`): each stage's
    /// hold of a batch, from its first record received to its outputs handed to the producer,
    /// p50 / p99 per event (a batch counts once per event in it).
    pub held_ingest_ms: (f64, f64),
    pub held_correlate_ms: (f64, f64),
    /// Batches behind those figures: ingest, correlate.
    pub held_batches: (usize, usize),
    /// The raw hop as the ingest stage receives it (each batch's mean record age), p50 / p99
    /// per event: beside the raw hop read by a bare reader, it shows how long records waited in
    /// the stage's consumer before the stage took them.
    pub ingest_age_ms: (f64, f64),
    pub peak_rss_mib: f64,
    /// Resident memory after the backlog was produced, before the pipeline started: the load
    /// generator's own share (its producers and buffers).
    pub generator_rss_mib: f64,
    /// Resident memory with the pipeline running, just before it is stopped (its state after
    /// both phases), without the final checkpoint written on shutdown.
    pub running_rss_mib: f64,
    /// Checkpoints acknowledged while the pipeline ran (before the final one on shutdown), how
    /// many were deltas, and their bytes.
    pub checkpoints: u64,
    pub checkpoint_deltas: u64,
    pub checkpoint_bytes: f64,
    /// Checkpoints taken on the correlate stage's thread and serialised beside it, full and
    /// delta: (how many, seconds).
    pub checkpoint_takes: [(u64, f64); 2],
    pub checkpoint_serialised: [(u64, f64); 2],
}

/// p50 and p99 of weighted `samples` (value, weight), sorted in place: each counts `weight`
/// times.
fn weighted_percentiles(samples: &mut [(f64, usize)]) -> (f64, f64) {
    samples.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let total: usize = samples.iter().map(|s| s.1).sum();
    let at = |p: f64| {
        let rank = (total as f64 * p).ceil() as usize;
        let mut seen = 0;
        for &(v, w) in samples.iter() {
            seen += w;
            if seen >= rank {
                return v;
            }
        }
        samples.last().map_or(0.0, |s| s.0)
    };
    (at(0.50), at(0.99))
}

/// The latency phase's holds per stage, and the raw hop as the ingest stage saw it, from the
/// probe's samples.
fn held_figures(report: &mut BenchReport, samples: &[HeldSample]) {
    let of = |stage: &str| -> Vec<&HeldSample> {
        samples
            .iter()
            .filter(|s| s.stage == stage && s.records > 0)
            .collect()
    };
    let pct = |batches: &[&HeldSample], value: fn(&HeldSample) -> Option<f64>| {
        let mut v: Vec<(f64, usize)> = batches
            .iter()
            .filter_map(|s| Some((value(s)?, s.records)))
            .collect();
        weighted_percentiles(&mut v)
    };
    let held = |s: &HeldSample| Some(s.held.as_secs_f64() * 1000.0);
    let (ingest, correlate) = (of("ingest"), of("correlate"));
    report.held_ingest_ms = pct(&ingest, held);
    report.held_correlate_ms = pct(&correlate, held);
    report.ingest_age_ms = pct(&ingest, |s| s.age_ms.map(|a| a as f64));
    report.held_batches = (ingest.len(), correlate.len());
}

/// p50, p99 and max of `samples` (sorted in place).
fn percentiles(samples: &mut [i64]) -> (f64, f64, f64) {
    samples.sort_unstable();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0) as f64
    };
    (pct(0.50), pct(0.99), pct(1.0))
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Raw native event `k` of the backlog: distinct alerts on many hosts, with `repeat_percent`
/// of the events repeating an alert seen before.
fn backlog_event(k: usize, repeat_percent: u8, t: DateTime<Utc>) -> Vec<u8> {
    let distinct = if (k * 37 % 100) < repeat_percent as usize {
        k % 64
    } else {
        k
    };
    let host = distinct / 8 % 5000;
    event(
        &format!("Alert{}", distinct % 8),
        &format!("bench-host-{host}"),
        t,
    )
}

fn event(name: &str, ci: &str, t: DateTime<Utc>) -> Vec<u8> {
    serde_json::json!({
        "name": name, "ci": ci, "severity": "major", "status": "firing",
        "time": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "source": "bench", "labels": {"team": "sre", "env": "bench", "region": "eu-1"},
    })
    .to_string()
    .into_bytes()
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident memory of this process now (VmRSS), in MiB.
fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn progress(what: &str, done: usize, total: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "  {what}: {done}/{total} ({:.0}%, {:.0}/s)",
        done as f64 * 100.0 / total.max(1) as f64,
        done as f64 / secs
    );
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    payloads: impl Iterator<Item = Vec<u8>>,
    total: usize,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let mut last = Instant::now();
    let mut inflight = Vec::with_capacity(1024);
    let mut done = 0;
    for (i, p) in payloads.enumerate() {
        let key = format!("k{}", i % 64);
        let fut = producer.send_result(FutureRecord::to(topic).key(&key).payload(&p));
        match fut {
            Ok(f) => inflight.push(f),
            Err((e, _)) => return Err(BenchError::Kafka(e)),
        }
        if inflight.len() >= 1000 {
            for f in inflight.drain(..) {
                f.await
                    .map_err(|_| BenchError::Timeout("delivery canceled".into()))?
                    .map_err(|(e, _)| e)?;
                done += 1;
            }
            if last.elapsed() > Duration::from_secs(1) {
                progress("produced", done, total, started);
                last = Instant::now();
            }
        }
    }
    for f in inflight {
        f.await
            .map_err(|_| BenchError::Timeout("delivery canceled".into()))?
            .map_err(|(e, _)| e)?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

fn correlated(m: &Metrics) -> u64 {
    m.events_correlated_total()
}

/// Runs the three phases against `settings.config.kafka.brokers`.
pub async fn run(mut settings: Settings, opts: BenchOptions) -> Result<BenchReport, BenchError> {
    let id = now_ms();
    let cfg = &mut settings.config;
    if !opts.existing_topics {
        cfg.topics.prefixed(&format!("d2c.bench.{id}"));
    }
    cfg.kafka.group_id = format!("d2c-bench-{id}");
    cfg.kafka.create_topics = !opts.existing_topics;
    // Event-to-incident latency is the pipeline's own: versions are published at once, not
    // after the group wait and interval an operator chose.
    cfg.correlation.group_wait = Duration::ZERO;
    cfg.correlation.group_interval = Duration::ZERO;
    let settings = Arc::new(settings);
    let cfg = &settings.config;
    if !opts.existing_topics {
        crate::pipeline::kafka::ensure_topics(
            cfg,
            &Metrics::new(&settings.topology),
            &crate::telemetry::Health::default(),
            &CancellationToken::new(),
        )
        .await?;
    }
    let mut report = BenchReport {
        events: opts.events,
        latency_rate: opts.rate,
        ..Default::default()
    };

    eprintln!(
        "bench run {id} on {}: {} events",
        cfg.kafka.brokers, opts.events
    );
    eprintln!("phase 1/4: producing the backlog");
    let steady_producer: FutureProducer = crate::pipeline::kafka::base_config(&cfg.kafka)?
        .set("linger.ms", "1")
        .create()?;
    let producer: FutureProducer = crate::pipeline::kafka::base_config(&cfg.kafka)?
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let t0 = Utc::now() - chrono::Duration::hours(1);
    report.produce_per_sec = produce(
        &producer,
        &cfg.topics.raw,
        (0..opts.events).map(|k| {
            backlog_event(
                k,
                opts.repeat_percent,
                t0 + chrono::Duration::milliseconds(k as i64),
            )
        }),
        opts.events,
    )
    .await?;
    eprintln!("  produced at {:.0} events/s", report.produce_per_sec);
    report.generator_rss_mib = rss_mib();

    eprintln!("phase 1/4: the pipeline over the backlog");
    let stop = CancellationToken::new();
    let pipeline =
        crate::app::start(settings.clone(), crate::app::Parts::STAGES, stop.clone()).await?;
    let metrics = pipeline.metrics.clone();
    let started = Instant::now();
    let mut last = Instant::now();
    let target = opts.events as u64;
    let mut first: Option<(Instant, u64)> = None;
    while correlated(&metrics) < target {
        if pipeline.is_finished() {
            return Err(BenchError::Timeout("the pipeline stopped early".into()));
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Timeout(format!(
                "{} of {target} events correlated after 10 minutes",
                correlated(&metrics)
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        if first.is_none() {
            let n = correlated(&metrics);
            if n > 0 {
                first = Some((Instant::now(), n));
            }
        }
        if last.elapsed() > Duration::from_secs(1) {
            progress(
                "correlated",
                correlated(&metrics) as usize,
                opts.events,
                started,
            );
            last = Instant::now();
        }
    }
    // From the first correlated event to the last: start-up (group join, checkpoint lookup) is
    // left out, as it is for the bare consumer.
    let (mut since, mut before) = first.unwrap_or((started, 0));
    if before * 2 > target {
        // The first look already saw most events (a backlog of about one batch): the steady
        // rate cannot be told apart from start-up, so time the whole phase.
        (since, before) = (started, 0);
    }
    report.pipeline_per_sec = (target - before) as f64 / since.elapsed().as_secs_f64();
    eprintln!(
        "  pipeline: {:.0} events/s ({:.2} s from start to the first correlated event)",
        report.pipeline_per_sec,
        (since - started).as_secs_f64()
    );

    if opts.rate > 0 {
        eprintln!(
            "phase 2/4: {} events/s for {:?}, measuring event-to-incident latency",
            opts.rate, opts.duration
        );
        let phase_start = now_ms();
        metrics.held_probe().start();
        let total = (opts.rate as f64 * opts.duration.as_secs_f64()) as usize;
        // A bare reader of the raw topic beside the pipeline: the first broker hop of the very
        // events whose latency is measured, under the same load at the same time.
        let (kafka, topic) = (cfg.kafka.clone(), cfg.topics.raw.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let beside =
            tokio::task::spawn_blocking(move || hop_latencies(&kafka, &topic, total, ready_tx));
        let _ = ready_rx.await;
        steady(&steady_producer, &cfg.topics.raw, opts.rate, total, "lat").await?;
        let mut hop = beside
            .await
            .map_err(|e| BenchError::Timeout(e.to_string()))??;
        report.beside_samples = hop.len();
        (report.beside_p50_ms, report.beside_p99_ms, _) = percentiles(&mut hop);
        // Wait for the pipeline to catch up, then read the incident records of this phase.
        let want = target + total as u64;
        let catch_up = Instant::now();
        while correlated(&metrics) < want && catch_up.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let brokers = cfg.kafka.brokers.clone();
        let topic = cfg.topics.incidents.clone();
        let partitions = cfg.kafka.partitions;
        let mut lat = tokio::task::spawn_blocking(move || {
            incident_latencies(&brokers, &topic, partitions, phase_start)
        })
        .await
        .map_err(|e| BenchError::Timeout(e.to_string()))??;
        held_figures(&mut report, &metrics.held_probe().take());
        report.latency_samples = lat.len();
        if lat.len() * 100 < total * 99 {
            // librdkafka's mock cluster keeps about the last 5 MiB of each partition, so a
            // long phase's first records are gone before they are read.
            eprintln!(
                "  note: latency of {} of the phase's {total} events only: the broker no longer \
                 holds the incident records of the others (retention; the mock cluster keeps \
                 about 5 MiB a partition), or the pipeline had not published them within 120 s",
                lat.len()
            );
        }
        (
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
        ) = percentiles(&mut lat);
    }
    report.running_rss_mib = rss_mib();
    (
        report.checkpoints,
        report.checkpoint_deltas,
        report.checkpoint_bytes,
    ) = metrics.checkpoints_written();
    report.checkpoint_takes = metrics.checkpoint_steps("take");
    report.checkpoint_serialised = metrics.checkpoint_steps("serialise");
    stop.cancel();
    let _ = pipeline.wait().await;
    report.peak_rss_mib = peak_rss_mib();

    eprintln!(
        "phase 3/4: a bare consumer over the same {} raw records",
        opts.events
    );
    let brokers = cfg.kafka.brokers.clone();
    let topic = cfg.topics.raw.clone();
    let (partitions, n) = (cfg.kafka.partitions, opts.events);
    report.bare_per_sec =
        tokio::task::spawn_blocking(move || bare_consume(&brokers, &topic, partitions, n))
            .await
            .map_err(|e| BenchError::Timeout(e.to_string()))??;

    if opts.rate > 0 {
        let secs = opts.duration.as_secs_f64().min(10.0);
        let total = (opts.rate as f64 * secs) as usize;
        eprintln!(
            "phase 4/4: one broker hop at {} events/s for {secs:.0} s (pipeline stopped)",
            opts.rate
        );
        let (kafka, topic) = (cfg.kafka.clone(), cfg.topics.raw.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let reader =
            tokio::task::spawn_blocking(move || hop_latencies(&kafka, &topic, total, ready_tx));
        // The reader is positioned at the end of every partition before the first record.
        let _ = ready_rx.await;
        steady(&steady_producer, &cfg.topics.raw, opts.rate, total, "hop").await?;
        let mut hop = reader
            .await
            .map_err(|e| BenchError::Timeout(e.to_string()))??;
        report.hop_samples = hop.len();
        (report.hop_p50_ms, report.hop_p99_ms, report.hop_max_ms) = percentiles(&mut hop);
    }
    Ok(report)
}

/// Produces `total` new-alert events at `rate` per second, in 10 ms ticks, every event's
/// `time` stamped when it is produced. `tag` keeps the alerts of different phases apart.
async fn steady(
    producer: &FutureProducer,
    topic: &str,
    rate: u64,
    total: usize,
    tag: &str,
) -> Result<(), BenchError> {
    let tick = Duration::from_millis(10);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0) as usize;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0usize;
    let mut pending = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    while sent < total {
        interval.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            // Every event a new alert: 8 per host, then the next host.
            let k = sent;
            let p = event(
                &format!("Latency{}", k % 8),
                &format!("{tag}-host-{}", k / 8),
                Utc::now(),
            );
            let key = format!("k{}", k % 64);
            let record = FutureRecord::to(topic).key(&key).payload(&p);
            match producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(BenchError::Kafka(e)),
            }
            sent += 1;
        }
        if pending.len() > 5000 {
            for f in pending.drain(..) {
                let _ = f.await;
            }
        }
        if last.elapsed() > Duration::from_secs(1) {
            progress("sent at steady rate", sent, total, started);
            last = Instant::now();
        }
    }
    for f in pending {
        let _ = f.await;
    }
    Ok(())
}
