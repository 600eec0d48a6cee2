//! Criterion benchmark of checkpoint encoding (issue 18): the bytes/s at which one partition's
//! engine state is written as a full checkpoint (`pipeline::checkpoint::records_of`, as the
//! correlate stage's serialising thread does) and read back (`checkpoint::assemble`'s parse),
//! beside a reference measured in the same run: `serde_json::Value` written and parsed from the
//! same bytes, so figures from different machines compare as ratios.
//!
//! State: the new-alert shape of `benches/scale.rs` (bursts of 10 alerts on one of 1,000
//! dependency trees, one incident each), `D2C_BENCH_CHECKPOINT_ALERTS` active alerts (default
//! 100,000), the size of one partition's state in a `d2c bench` run of 45 s at 10,000 new
//! alerts/s over six partitions is ~75,000. `D2C_BENCH_CHECKPOINT_DUMP=<file>` writes the
//! checkpoint's document there, to look at what it holds.

mod support;

/// The allocator of the `d2c` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use d2c::change::ChangePolicy;
use d2c::config::CorrelationConfig;
use d2c::engine::Engine;
use d2c::pipeline::checkpoint::{Checkpoint, Taken, records_of};
use support::{burst_events, t0, topology_of};

const TREES: usize = 1_000;
const BURST: usize = 10;

fn checkpoint_encoding(c: &mut Criterion) {
    let alerts: usize = std::env::var("D2C_BENCH_CHECKPOINT_ALERTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    let topo = Arc::new(topology_of(TREES));
    let cfg = CorrelationConfig {
        max_alerts: alerts * 2,
        max_incidents: alerts * 2,
        ..CorrelationConfig::default()
    };
    let mut engine = Engine::new(topo, Arc::new(ChangePolicy::default()), cfg);
    let mut one = Vec::with_capacity(BURST);
    for b in 0..alerts / BURST {
        burst_events(TREES, b, BURST, t0(), &mut one);
        for ev in &one {
            black_box(engine.apply(ev));
        }
    }
    let state = engine.checkpoint_state().clone();
    let write = |state| {
        records_of(
            Taken::Copy(Box::new(state)),
            ("d2c.events", 0, 1),
            "d2c.state",
            1 << 20,
        )
    };
    let doc: Vec<u8> = write(state.clone())
        .into_iter()
        .flat_map(|r| r.payload)
        .collect();
    eprintln!(
        "checkpoint_encoding: {alerts} active alerts, a full checkpoint of {:.1} MB",
        doc.len() as f64 / 1e6
    );

    if let Ok(path) = std::env::var("D2C_BENCH_CHECKPOINT_DUMP") {
        std::fs::write(&path, &doc).expect("the dump writes");
    }
    let mut g = c.benchmark_group("checkpoint_encoding");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("write_full", |b| {
        b.iter_batched(
            || state.clone(),
            |s| black_box(write(s)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("read_full", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Checkpoint>(&doc).expect("it reads")))
    });
    let value: serde_json::Value = serde_json::from_slice(&doc).expect("it reads");
    g.bench_function("reference_value_write", |b| {
        b.iter(|| black_box(serde_json::to_vec(&value).expect("it writes")))
    });
    g.bench_function("reference_value_read", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&doc).expect("it reads")))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = support::as_the_binary();
    targets = checkpoint_encoding
}
criterion_main!(benches);
