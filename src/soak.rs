//! `d2c soak`: the whole pipeline at a steady rate for a long time, watching memory. A
//! generator writes `rate` events per second of a rolling set of alerts (every `generation`,
//! a new set of hosts starts firing, and the previous set resolves), so alerts and incidents
//! keep opening, resolving, closing and being forgotten; every `sample` the resident memory and
//! the size of every map of the correlation state are printed. Memory bounded by input means:
//! after the warm-up (a generation plus `resolve_hold`, `reopen_window` and `retention`), the
//! resident memory stays flat and no map grows.
//!
//! The correlation timers are shortened so the state turns over within minutes:
//! `resolve_hold` 10s, `reopen_window` 1m, `retention` 2m; ticks every second. Fresh topics
//! (`d2c.soak.<run id>.*`) per run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::bench::BenchError;
use crate::engine::Settings;
use crate::pipeline::kafka::KafkaContext;
use crate::telemetry::Metrics;

/// Options of `d2c soak`.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Events per second.
    pub rate: u64,
    pub duration: Duration,
    /// Time between two samples.
    pub sample: Duration,
    /// Hosts per generation (each has two alerts and becomes one incident).
    pub hosts: u64,
    /// How long one set of hosts lives: three quarters firing, the last quarter resolving.
    pub generation: Duration,
}

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    pub rss_mib: f64,
    pub correlated: u64,
    /// Consumer lag of the raw and the events topic: records not read yet. A pipeline that
    /// falls behind holds more of them in librdkafka's prefetch queues (up to
    /// `queued.max.messages.kbytes`, 64 MiB per consumer by default), which shows in RSS.
    pub lag: (i64, i64),
    /// Records the generator's producer (in this process) has not had acknowledged.
    pub unacked: i32,
    /// `d2c_kafka_queued_bytes` summed over the clients, the generator's producer included,
    /// in MiB: (produce, fetch). librdkafka's statistics, up to 5 s old.
    pub queued_mib: (f64, f64),
    /// `d2c_state_entries` by map.
    pub maps: Vec<(&'static str, i64)>,
}

/// Resident memory of this process now (VmRSS), in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Raw native event `k` at `now`, of generation `generation` of hosts.
fn event(k: u64, generation: u64, opts: &SoakOptions, resolving: bool) -> Vec<u8> {
    let host = k % opts.hosts;
    let name = if (k / opts.hosts).is_multiple_of(2) {
        "DiskFull"
    } else {
        "HighLoad"
    };
    serde_json::json!({
        "name": name, "ci": format!("soak-{generation}-{host}"), "severity": "major",
        "status": if resolving { "resolved" } else { "firing" },
        "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "source": "soak", "labels": {"team": "sre", "env": "soak"},
    })
    .to_string()
    .into_bytes()
}

/// Runs the soak; prints a line per sample on standard error and returns the samples.
pub async fn run(mut settings: Settings, opts: SoakOptions) -> Result<Vec<Sample>, BenchError> {
    let id = Utc::now().timestamp_millis();
    let cfg = &mut settings.config;
    cfg.topics.security = None;
    cfg.topics.prefixed(&format!("d2c.soak.{id}"));
    cfg.kafka.group_id = format!("d2c-soak-{id}");
    cfg.kafka.create_topics = true;
    cfg.ingest.tick_interval = Duration::from_secs(1);
    cfg.correlation.resolve_hold = Duration::from_secs(10);
    cfg.correlation.reopen_window = Duration::from_secs(60);
    cfg.correlation.retention = Duration::from_secs(120);
    let settings = Arc::new(settings);
    let cfg = &settings.config;
    eprintln!(
        "soak {id} on {}: {} events/s for {:?}, {} hosts per {:?} generation, a sample every {:?}",
        cfg.kafka.brokers, opts.rate, opts.duration, opts.hosts, opts.generation, opts.sample
    );
    let stop = CancellationToken::new();
    let pipeline =
        crate::app::start(settings.clone(), crate::app::Parts::STAGES, stop.clone()).await?;
    // With d2c's context, so that what it holds shows in `d2c_kafka_queued_bytes` too.
    let mut generator_config = crate::pipeline::kafka::base_config(&cfg.kafka)?;
    generator_config.set("linger.ms", "5");
    let producer: FutureProducer<KafkaContext> = crate::pipeline::kafka::create(
        generator_config,
        &cfg.kafka,
        &pipeline.metrics,
        &pipeline.health,
    )?;
    let generator = tokio::spawn(generate(
        producer.clone(),
        cfg.topics.raw.clone(),
        opts.clone(),
    ));
    let topics = (cfg.topics.raw.clone(), cfg.topics.events.clone());
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = started;
    while started.elapsed() < opts.duration {
        if pipeline.is_finished() {
            return Err(BenchError::Timeout("the pipeline stopped early".into()));
        }
        if Instant::now() >= next {
            let s = sample(&pipeline.metrics, &topics, &producer, started.elapsed());
            eprintln!("{}", render_line(&s));
            samples.push(s);
            next += opts.sample;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = sample(&pipeline.metrics, &topics, &producer, started.elapsed());
    eprintln!("{}", render_line(&s));
    samples.push(s);
    generator.abort();
    stop.cancel();
    pipeline.wait().await?;
    Ok(samples)
}

async fn generate(producer: FutureProducer<KafkaContext>, topic: String, opts: SoakOptions) {
    let per_tick = (opts.rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut k = 0u64;
    loop {
        tick.tick().await;
        let age = started.elapsed();
        let generation = (age.as_millis() / opts.generation.as_millis().max(1)) as u64;
        let into = age.as_millis() % opts.generation.as_millis().max(1);
        let resolving = into * 4 >= opts.generation.as_millis() * 3;
        for _ in 0..per_tick {
            let payload = event(k, generation, &opts, resolving);
            let key = format!("soak-{}", k % 64);
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            // Not awaited: librdkafka's queue absorbs the rate; an error is a lost sample event.
            if let Err((e, _)) = producer.send_result(record) {
                tracing::debug!(error = %e, "soak generator could not enqueue an event");
            }
            k += 1;
        }
    }
}

fn sample(
    metrics: &Metrics,
    (raw, events): &(String, String),
    producer: &FutureProducer<KafkaContext>,
    at: Duration,
) -> Sample {
    use rdkafka::producer::Producer;
    let (produce, fetch) = metrics.kafka_queued_bytes();
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    Sample {
        at,
        rss_mib: rss_mib(),
        correlated: metrics.events_correlated_total(),
        lag: (metrics.consumer_lag(raw), metrics.consumer_lag(events)),
        unacked: producer.in_flight_count(),
        queued_mib: (mib(produce), mib(fetch)),
        maps: metrics.state_entries(),
    }
}

fn render_line(s: &Sample) -> String {
    let maps: Vec<String> = s.maps.iter().map(|(m, n)| format!("{m}={n}")).collect();
    format!(
        "t={:>5}s rss={:.1}MiB correlated={} lag={}/{} unacked={} queued={:.1}/{:.1}MiB {}",
        s.at.as_secs(),
        s.rss_mib,
        s.correlated,
        s.lag.0,
        s.lag.1,
        s.unacked,
        s.queued_mib.0,
        s.queued_mib.1,
        maps.join(" ")
    )
}

/// The samples as a Markdown table (minute, RSS, events correlated per second since the last
/// sample, every map).
pub fn render(samples: &[Sample]) -> String {
    let Some(first) = samples.first() else {
        return String::new();
    };
    let mut out = String::from(
        "| t (min) | RSS MiB | events/s | lag raw / events | unacked | queued MiB produce / fetch |",
    );
    for (m, _) in &first.maps {
        out.push_str(&format!(" {m} |"));
    }
    out.push_str("\n|---|---|---|---|---|---|");
    out.push_str(&"---|".repeat(first.maps.len()));
    out.push('\n');
    let mut prev: Option<&Sample> = None;
    for s in samples {
        let rate = prev.map_or(0.0, |p| {
            (s.correlated - p.correlated) as f64 / (s.at - p.at).as_secs_f64().max(1e-9)
        });
        out.push_str(&format!(
            "| {:.1} | {:.1} | {:.0} | {} / {} | {} | {:.1} / {:.1} |",
            s.at.as_secs_f64() / 60.0,
            s.rss_mib,
            rate,
            s.lag.0,
            s.lag.1,
            s.unacked,
            s.queued_mib.0,
            s.queued_mib.1
        ));
        for (_, n) in &s.maps {
            out.push_str(&format!(" {n} |"));
        }
        out.push('\n');
        prev = Some(s);
    }
    out
}
