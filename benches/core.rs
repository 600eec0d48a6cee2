//! Criterion benchmarks of the pure core (ingest parsers and the correlation engine), with no
//! Kafka: events/s per core on the dedup path, on distinct alerts over a large generated
//! topology, on raw payloads including JSON parsing, and parser MB/s. Inputs are generated
//! deterministically here. Every group also measures a reference in the same run (a bare map
//! insert or count of the same keys, a bare `serde_json` parse of the same bytes), so figures
//! from different machines compare as ratios. Results and how to run them: `BENCHMARKS.md`.

mod support;

/// The allocator of the `d2c` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Arc;

use support::*;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use d2c::change::ChangePolicy;
use d2c::config::CorrelationConfig;
use d2c::engine::Engine;
use d2c::engine::Settings;
use d2c::ingest::{self, Limits};
use d2c::model::{Event, Severity, Status, stable_hash};

/// Events in one iteration of the dedup storm.
const STORM_EVENTS: usize = 100_000;
/// Distinct alerts in one iteration of the large-topology bench.
const DISTINCT_ALERTS: usize = 50_000;
/// Event time between two distinct alerts in the large-topology bench: 50,000 alerts span
/// 50,000 s (about 14 h), so a 5-minute correlation window holds about 300 of them.
const DISTINCT_SPACING_MS: i64 = 1_000;
/// Raw payloads in one iteration of the mixed-format bench.
const MIXED_PAYLOADS: usize = 1_000;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A tiny deterministic generator (64-bit LCG), so inputs are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One alert identity: name, CI and labels; the fingerprint is derived as the native parser
/// derives it (a hash of the source, name, CI and labels).
#[derive(Debug, Clone)]
struct AlertSpec {
    name: String,
    ci: String,
    severity: Severity,
    labels: BTreeMap<String, String>,
}

impl AlertSpec {
    fn new(name: &str, ci: &str, severity: Severity, labels: &[(&str, &str)]) -> AlertSpec {
        AlertSpec {
            name: name.to_owned(),
            ci: ci.to_owned(),
            severity,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn fingerprint(&self) -> String {
        let pairs: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut parts = vec!["native", self.name.as_str(), self.ci.as_str()];
        parts.extend(pairs.iter().map(String::as_str));
        stable_hash(&parts)
    }

    fn event(&self, fingerprint: &str, time: DateTime<Utc>, status: Status) -> Event {
        let millis = time.timestamp_millis().to_string();
        Event {
            id: stable_hash(&[fingerprint, &millis]),
            source: "native".into(),
            time,
            ci: Some(self.ci.clone()),
            name: self.name.clone(),
            severity: self.severity,
            status,
            category: Default::default(),
            fingerprint: fingerprint.to_owned(),
            labels: self.labels.clone(),
            attributes: Default::default(),
        }
    }
}

/// Ten alerts on the CIs of the example topology (`config/topology.toml`), 3–5 labels each.
fn example_alerts() -> Vec<AlertSpec> {
    use Severity::*;
    vec![
        AlertSpec::new(
            "PostgresDown",
            "pg-payments-1",
            Critical,
            &[
                ("job", "postgres"),
                ("cluster", "payments"),
                ("team", "dba"),
            ],
        ),
        AlertSpec::new(
            "HighErrorRate",
            "payments-api-7f9c",
            Critical,
            &[
                ("service", "payments-api"),
                ("env", "prod"),
                ("team", "payments"),
                ("region", "eu-west-1"),
            ],
        ),
        AlertSpec::new(
            "HighLatency",
            "checkout-api-5c1a",
            Major,
            &[
                ("service", "checkout-api"),
                ("env", "prod"),
                ("team", "shop"),
            ],
        ),
        AlertSpec::new(
            "Http5xxRate",
            "web-1",
            Critical,
            &[
                ("service", "web-frontend"),
                ("env", "prod"),
                ("team", "web"),
                ("region", "eu-west-1"),
                ("tier", "edge"),
            ],
        ),
        AlertSpec::new(
            "Http5xxRate",
            "web-2",
            Critical,
            &[
                ("service", "web-frontend"),
                ("env", "prod"),
                ("team", "web"),
                ("region", "eu-west-1"),
                ("tier", "edge"),
            ],
        ),
        AlertSpec::new(
            "LoginFailures",
            "auth-6d2b",
            Major,
            &[
                ("service", "auth-service"),
                ("env", "prod"),
                ("team", "identity"),
            ],
        ),
        AlertSpec::new(
            "CacheEvictions",
            "redis-search-1",
            Minor,
            &[("job", "redis"), ("env", "prod"), ("team", "search")],
        ),
        AlertSpec::new(
            "SlowQueries",
            "catalog-api-2b7e",
            Warning,
            &[
                ("service", "catalog-api"),
                ("env", "prod"),
                ("team", "search"),
            ],
        ),
        AlertSpec::new(
            "QueueBacklog",
            "email-worker-1",
            Warning,
            &[
                ("service", "email-worker"),
                ("env", "prod"),
                ("team", "crm"),
            ],
        ),
        AlertSpec::new(
            "SmtpDeferred",
            "smtp-1",
            Minor,
            &[
                ("service", "smtp-relay"),
                ("env", "prod"),
                ("team", "crm"),
                ("queue", "outbound"),
            ],
        ),
    ]
}

fn example_engine() -> Engine {
    let s = Settings::embedded().expect("the embedded example configuration is valid");
    Engine::new(s.topology, s.policy, s.config.correlation)
}

/// (a) An alert storm: ten fingerprints repeated, one event per millisecond of event time.
fn dedup_storm(c: &mut Criterion) {
    let alerts = example_alerts();
    let fingerprints: Vec<String> = alerts.iter().map(AlertSpec::fingerprint).collect();
    let t0 = t0();
    let all: Vec<Event> = (0..alerts.len() + STORM_EVENTS)
        .map(|i| {
            let k = i % alerts.len();
            alerts[k].event(
                &fingerprints[k],
                t0 + Duration::milliseconds(i as i64),
                Status::Firing,
            )
        })
        .collect();
    let (openers, storm) = all.split_at(alerts.len());
    let mut warm = example_engine();
    for ev in openers {
        warm.apply(ev);
    }

    let mut g = c.benchmark_group("dedup_storm");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(storm.len() as u64));
    g.bench_function("warm", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut e| {
                for ev in storm {
                    black_box(e.apply(ev));
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    // Reference measured in the same run: the bare dedup of the same fingerprints (a count
    // per fingerprint in a map), so figures from other machines compare as ratios.
    let counts: HashMap<String, u64> = fingerprints.iter().map(|f| (f.clone(), 0)).collect();
    g.bench_function("reference_hashmap_count", |b| {
        b.iter_batched(
            || counts.clone(),
            |mut m| {
                for ev in storm {
                    if let Some(n) = m.get_mut(black_box(&ev.fingerprint)) {
                        *n += 1;
                    }
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("cold", |b| {
        b.iter_batched(
            example_engine,
            |mut e| {
                for ev in &all {
                    black_box(e.apply(ev));
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

const NAMES: [&str; 5] = [
    "HighErrorRate",
    "HighLatency",
    "DiskFull",
    "MemoryPressure",
    "PodRestarts",
];

/// `n` firing events, each a new alert: distinct (name, CI) pairs spread over every tree,
/// `DISTINCT_SPACING_MS` apart, 4 labels each.
fn distinct_events(n: usize) -> Vec<Event> {
    let cis = TREES * SERVICES_PER_TREE * CIS_PER_SERVICE;
    assert!(
        n <= cis * NAMES.len(),
        "not enough distinct (name, CI) pairs"
    );
    let t0 = t0();
    (0..n)
        .map(|k| {
            // 7919 is prime to 10,000, so k ↦ CI is a permutation within each block of 10,000.
            let ci = (k * 7919) % cis;
            let per_tree = SERVICES_PER_TREE * CIS_PER_SERVICE;
            let (tree, rest) = (ci / per_tree, ci % per_tree);
            let (s, c) = (rest / CIS_PER_SERVICE, rest % CIS_PER_SERVICE);
            let name = NAMES[k / cis];
            let service = service_name(tree, s);
            let team = format!("team-{}", tree % 40);
            let spec = AlertSpec::new(
                name,
                &ci_name(tree, s, c),
                [Severity::Critical, Severity::Major, Severity::Warning][k % 3],
                &[
                    ("service", &service),
                    ("env", "prod"),
                    ("team", &team),
                    ("region", ["eu-west-1", "us-east-1"][tree % 2]),
                ],
            );
            let fp = spec.fingerprint();
            let time = t0 + Duration::milliseconds(k as i64 * DISTINCT_SPACING_MS);
            spec.event(&fp, time, Status::Firing)
        })
        .collect()
}

fn large_config(alerts: usize) -> CorrelationConfig {
    CorrelationConfig {
        max_alerts: alerts * 2,
        max_incidents: alerts * 2,
        ..CorrelationConfig::default()
    }
}

/// (b) Distinct alerts across a large topology: every event creates an alert.
fn distinct_alerts_large_topology(c: &mut Criterion) {
    let topo = Arc::new(large_topology());
    let policy = Arc::new(ChangePolicy::default());
    let cfg = large_config(DISTINCT_ALERTS);
    let events = distinct_events(DISTINCT_ALERTS);
    // What the input makes of the state, for reading the figure: the cost of a new alert
    // grows with the size of the incident it joins.
    let mut once = Engine::new(topo.clone(), policy.clone(), cfg.clone());
    for ev in &events {
        once.apply(ev);
    }
    let groups = &once.state().correlation.groups;
    let largest = groups.values().map(|g| g.alerts.len()).max().unwrap_or(0);
    eprintln!(
        "distinct_alerts_large_topology: {} alerts make {} incidents (mean {:.1}, largest {largest} alerts)",
        events.len(),
        groups.len(),
        events.len() as f64 / groups.len().max(1) as f64,
    );
    drop(once);

    let mut g = c.benchmark_group("distinct_alerts_large_topology");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("50k_alerts", |b| {
        b.iter_batched(
            || Engine::new(topo.clone(), policy.clone(), cfg.clone()),
            |mut e| {
                for ev in &events {
                    black_box(e.apply(ev));
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    // Reference: the same fingerprints into an empty map, the least a new alert costs.
    g.bench_function("reference_btreemap_insert", |b| {
        b.iter_batched(
            BTreeMap::new,
            |mut m| {
                for ev in &events {
                    m.insert(ev.fingerprint.clone(), black_box(ev.time));
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// One native event as JSON, in the shape of `tests/fixtures/ingest/native_single.json`.
fn native_json(a: &AlertSpec, time: DateTime<Utc>, status: Status) -> String {
    let labels = serde_json::to_string(&a.labels).expect("labels serialise");
    let status = if status == Status::Firing {
        "firing"
    } else {
        "resolved"
    };
    format!(
        r#"{{"name":"{}","time":"{}","severity":"{}","status":"{status}","ci":"{}","source":"nagios","category":"availability","labels":{labels},"attributes":{{"summary":"{} on {}","attempts":3}}}}"#,
        a.name,
        rfc3339(time),
        a.severity.as_str(),
        a.ci,
        a.name,
        a.ci,
    )
}

/// One alert of an Alertmanager v4 payload, in the shape of
/// `tests/fixtures/ingest/alertmanager_v4.json`.
fn am_alert_json(a: &AlertSpec, time: DateTime<Utc>, status: Status) -> String {
    let mut labels = a.labels.clone();
    labels.insert("alertname".into(), a.name.clone());
    labels.insert("instance".into(), format!("{}:9100", a.ci));
    labels.insert("severity".into(), a.severity.as_str().into());
    let labels = serde_json::to_string(&labels).expect("labels serialise");
    let (status, starts, ends) = match status {
        Status::Firing => ("firing", time, "0001-01-01T00:00:00Z".to_owned()),
        Status::Resolved => ("resolved", time - Duration::minutes(5), rfc3339(time)),
    };
    format!(
        r#"{{"status":"{status}","labels":{labels},"annotations":{{"summary":"{} on {}","runbook_url":"https://runbooks.example/{}"}},"startsAt":"{}","endsAt":"{ends}","generatorURL":"http://prometheus:9090/graph?g0.expr=up%3D%3D0","fingerprint":"{}"}}"#,
        a.name,
        a.ci,
        a.name,
        rfc3339(starts),
        &a.fingerprint()[..16],
    )
}

fn am_payload(alerts: &[String]) -> String {
    format!(
        r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"HighErrorRate\"}}","truncatedAlerts":0,"status":"firing","receiver":"d2c","groupLabels":{{"alertname":"HighErrorRate"}},"commonLabels":{{"env":"prod"}},"commonAnnotations":{{}},"externalURL":"http://alertmanager:9093","alerts":[{}]}}"#,
        alerts.join(",")
    )
}

/// Alert identities for the mixed bench: the ten example alerts, a second condition on each,
/// and 20 hosts no service claims. Most events repeat one of these 40 alerts.
fn mixed_pool() -> Vec<AlertSpec> {
    let mut pool = example_alerts();
    let again: Vec<AlertSpec> = pool
        .iter()
        .map(|a| AlertSpec {
            name: format!("{}Sustained", a.name),
            ..a.clone()
        })
        .collect();
    pool.extend(again);
    for h in 0..20 {
        let host = format!("host-{h:02}");
        pool.push(AlertSpec::new(
            "NodeFilesystemFull",
            &host,
            Severity::Major,
            &[("job", "node"), ("env", "prod"), ("mount", "/var")],
        ));
    }
    pool
}

/// Raw payloads cycling native single, native single, native batch of 10 and Alertmanager
/// with 5 alerts; 2% of the events are resolves. Returns the payloads and their event count.
fn mixed_payloads(n: usize) -> (Vec<Vec<u8>>, usize) {
    let pool = mixed_pool();
    let mut rng = Lcg(7);
    let mut time = t0();
    let mut events = 0;
    let mut next = |rng: &mut Lcg| {
        time += Duration::milliseconds(10);
        events += 1;
        let status = if rng.below(50) == 0 {
            Status::Resolved
        } else {
            Status::Firing
        };
        (&pool[rng.below(pool.len())], time, status)
    };
    let payloads = (0..n)
        .map(|p| match p % 4 {
            0 | 1 => {
                let (a, t, s) = next(&mut rng);
                native_json(a, t, s)
            }
            2 => {
                let batch: Vec<String> = (0..10)
                    .map(|_| {
                        let (a, t, s) = next(&mut rng);
                        native_json(a, t, s)
                    })
                    .collect();
                format!("[{}]", batch.join(","))
            }
            _ => {
                let alerts: Vec<String> = (0..5)
                    .map(|_| {
                        let (a, t, s) = next(&mut rng);
                        am_alert_json(a, t, s)
                    })
                    .collect();
                am_payload(&alerts)
            }
        })
        .map(String::into_bytes)
        .collect();
    (payloads, events)
}

/// (c) Raw bytes of mixed formats → `ingest::parse` → `Engine::apply`, per event.
fn mixed_formats_with_parsing(c: &mut Criterion) {
    let (payloads, events) = mixed_payloads(MIXED_PAYLOADS);
    let limits = Limits::default();
    // Every payload must parse, or the bench would measure the DLQ path.
    for p in &payloads {
        ingest::parse(p, &limits).expect("generated payloads are valid");
    }
    let mut g = c.benchmark_group("mixed_formats_with_parsing");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events as u64));
    g.bench_function("example_topology", |b| {
        b.iter_batched(
            example_engine,
            |mut e| {
                for p in &payloads {
                    let (_, evs) = ingest::parse(p, &limits).expect("valid");
                    for ev in &evs {
                        black_box(e.apply(ev));
                    }
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    // Reference: a bare `serde_json` parse of the same payloads into a `Value`.
    g.bench_function("reference_serde_json_value", |b| {
        b.iter(|| {
            for p in &payloads {
                black_box(serde_json::from_slice::<serde_json::Value>(p).expect("valid"));
            }
        })
    });
    g.finish();
}

/// (d) Parser throughput in bytes.
fn parse(c: &mut Criterion) {
    let pool = mixed_pool();
    let t0 = t0();
    let at = |i: usize| t0 + Duration::seconds(i as i64);
    let single = native_json(&pool[1], t0, Status::Firing);
    let batch: Vec<String> = (0..100)
        .map(|i| native_json(&pool[i % pool.len()], at(i), Status::Firing))
        .collect();
    let batch = format!("[{}]", batch.join(","));
    let alerts: Vec<String> = (0..20)
        .map(|i| am_alert_json(&pool[i % pool.len()], at(i), Status::Firing))
        .collect();
    let am = am_payload(&alerts);
    let limits = Limits::default();

    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    for (name, raw, events) in [
        ("native_single", single, 1),
        ("native_batch_100", batch, 100),
        ("alertmanager_20", am, 20),
    ] {
        let raw = raw.into_bytes();
        let (_, parsed) = ingest::parse(&raw, &limits).expect("valid payload");
        assert_eq!(parsed.len(), events, "{name}");
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| ingest::parse(black_box(&raw), &limits).expect("valid"))
        });
        // Reference: a bare `serde_json` parse of the same bytes into a `Value`.
        g.bench_function(format!("{name}/reference_serde_json_value"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&raw)).expect("valid"))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = support::as_the_binary();
    targets = dedup_storm, distinct_alerts_large_topology, mixed_formats_with_parsing, parse
}
criterion_main!(benches);
