//! Criterion benchmark of security triage spread over partitions (issue 18): security
//! detections routed by the entity they are about (`correlation.security.partition =
//! "entity"`, [`d2c::correlate::route::domain`]) to 1 or 3 events partitions, each partition's
//! detections applied to its own engine, as separate instances would. Every figure is
//! detections/s of the whole workload:
//! - `1`: one partition, one engine, all detections;
//! - `3/busiest`: the busiest of 3 partitions alone on one engine, i.e. what 3 instances with a
//!   core each handle together (the busiest sets the pace; its share is printed);
//! - `3/threads`: the 3 partitions on 3 threads of this machine at once (bounded by its cores).
//!
//! Workload: 3,000 attacks on 3,000 hosts, one starting every 200 ms of event time. Each is a
//! network sensor's alert on the host's address (known to `assets`), then 9 detections on the
//! host itself over 9 s: Initial Access, Execution and Persistence, each detection seen three
//! times. 30,000 detections, 3,000 security incidents.

mod support;

/// The allocator of the `d2c` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use chrono::Duration;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use d2c::change::ChangePolicy;
use d2c::config::{CorrelationConfig, SecurityPartition};
use d2c::engine::Engine;
use d2c::model::{Category, Event, Severity, Status};
use d2c::pipeline::partition_of;
use d2c::topology::Topology;
use support::t0;

const ATTACKS: usize = 3_000;

fn address(h: usize) -> String {
    format!("10.{}.{}.{}", h / 65_536, (h / 256) % 256, h % 256)
}

fn detection(tool: &str, rule: &str, labels: &[(&str, String)], tactic: &str, at: i64) -> Event {
    Event {
        id: format!("{tool}-{rule}-{at}"),
        source: tool.into(),
        time: t0() + Duration::milliseconds(at),
        ci: None,
        name: rule.into(),
        severity: Severity::Major,
        status: Status::Firing,
        category: Category::Security,
        fingerprint: format!("{tool}-{rule}"),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        attributes: [(
            "attack".to_owned(),
            serde_json::json!({"tactics": [tactic], "techniques": []}),
        )]
        .into_iter()
        .collect(),
    }
}

/// The workload, in event-time order.
fn workload() -> Vec<Event> {
    let mut events = Vec::with_capacity(ATTACKS * 10);
    for a in 0..ATTACKS {
        let start = a as i64 * 200;
        let host = format!("host-{a}");
        let attacker = format!("203.0.{}.{}", (a / 256) % 256, a % 256);
        let network = [("dest_ip", address(a)), ("src_ip", attacker.clone())];
        events.push(detection("suricata", "exploit", &network, "TA0001", start));
        let on_host = [("host", host), ("src_ip", attacker)];
        for (step, (rule, tactic)) in [("web", "TA0001"), ("shell", "TA0002"), ("cron", "TA0003")]
            .into_iter()
            .enumerate()
        {
            for seen in 0..3 {
                let at = start + 1_000 * (step as i64 * 3 + seen + 1);
                events.push(detection("edr", rule, &on_host, tactic, at));
            }
        }
    }
    events.sort_by_key(|e| e.time);
    events
}

fn config() -> CorrelationConfig {
    let mut cfg = CorrelationConfig::default();
    cfg.security.partition = SecurityPartition::Entity;
    for a in 0..ATTACKS {
        cfg.security.assets.insert(address(a), format!("host-{a}"));
    }
    cfg
}

/// The workload split by events partition, as the ingest stage routes it.
fn partitioned(events: &[Event], cfg: &CorrelationConfig, partitions: i32) -> Vec<Vec<Event>> {
    let topo = Topology::default();
    let mut out = vec![Vec::new(); partitions as usize];
    for ev in events {
        let domain = d2c::correlate::route::domain(&topo, cfg, ev);
        out[partition_of(&domain, partitions) as usize].push(ev.clone());
    }
    out
}

fn security_partitions(c: &mut Criterion) {
    let events = workload();
    let cfg = config();
    let topo = Arc::new(Topology::default());
    let policy = Arc::new(ChangePolicy::default());
    let mut g = c.benchmark_group("security_partitions");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    for partitions in [1, 3] {
        let split = partitioned(&events, &cfg, partitions);
        let busiest = split.iter().map(Vec::len).max().unwrap_or(0);
        eprintln!(
            "security_partitions/{partitions}: {} detections, busiest partition {busiest} ({:.0}%)",
            events.len(),
            100.0 * busiest as f64 / events.len() as f64
        );
        let engine = Engine::new(topo.clone(), policy.clone(), cfg.clone());
        let apply = |engine: &mut Engine, part: &[Event]| {
            for ev in part {
                black_box(engine.apply(ev));
            }
        };
        if partitions == 1 {
            g.bench_function(BenchmarkId::from_parameter(1), |b| {
                b.iter_batched(
                    || engine.clone(),
                    |mut e| {
                        apply(&mut e, &split[0]);
                        e
                    },
                    BatchSize::PerIteration,
                )
            });
            continue;
        }
        let busiest_part = split.iter().max_by_key(|p| p.len()).expect("3 partitions");
        g.bench_function(BenchmarkId::new(partitions.to_string(), "busiest"), |b| {
            b.iter_batched(
                || engine.clone(),
                |mut e| {
                    apply(&mut e, busiest_part);
                    e
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new(partitions.to_string(), "threads"), |b| {
            b.iter_batched(
                || vec![engine.clone(); split.len()],
                |mut engines| {
                    std::thread::scope(|s| {
                        for (engine, part) in engines.iter_mut().zip(&split) {
                            s.spawn(move || apply(engine, part));
                        }
                    });
                    engines
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, security_partitions);
criterion_main!(benches);
