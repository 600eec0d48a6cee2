//! Criterion benchmark of the correlation engine's new-alert path as its state grows (issue 18):
//! new alerts/s per core into an engine already holding 10k, 100k and 1M active alerts (1k,
//! 10k and 100k open incidents) over a 10,000-service topology, and a reference measured in the
//! same run (a bare `BTreeMap` insert of the same fingerprints into a map of the same size), so
//! figures from different machines compare as ratios. Writes the curve as an SVG plot.
//!
//! Shape: outage bursts of 10 alerts on one dependency tree (one incident each), 10 ms apart,
//! a burst every 2 s on another of the 1,000 trees (see `support::burst_events`). The measured
//! alerts are the bursts after the preloaded ones; after every `N / 10` of them (at least
//! 1,000) the engine is put back to its preloaded clone (not timed), so the state stays between
//! N and 1.1 N active alerts however long criterion measures.
//!
//! A second group, `one_incident_grows`, measures new alerts/s into the one incident of a mass
//! outage that already has 1k, 10k and 30k alerts.
//!
//! `D2C_BENCH_SCALE_MAX` leaves out the sizes above it (e.g. `100000` for a quick run); the plot
//! (`D2C_BENCH_PLOT`, default `docs/new-alert-path.svg`) is written only when every size ran.

mod support;

/// The allocator of the `d2c` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use d2c::change::ChangePolicy;
use d2c::config::CorrelationConfig;
use d2c::engine::Engine;
use d2c::model::Event;
use support::{burst_events, outage_events, t0, topology_of};

/// 1,000 trees of 10 services: 10,000 services, 50,000 CIs.
const TREES: usize = 1_000;
/// Alerts per burst, so per incident.
const BURST: usize = 10;
const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// The target of issue 18, drawn on the plot.
const TARGET: f64 = 250_000.0;

/// The events of bursts `from..to`, in order.
fn bursts(from: usize, to: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity((to - from) * BURST);
    let mut one = Vec::with_capacity(BURST);
    for b in from..to {
        burst_events(TREES, b, BURST, t0(), &mut one);
        out.append(&mut one);
    }
    out
}

/// Applies `pool[cursor..]` for `iters` events to `work`, putting `work` back to `base` (not
/// timed) whenever the pool runs out; returns the time spent applying.
fn run<S: Clone>(
    iters: u64,
    base: &S,
    work: &mut S,
    cursor: &mut usize,
    len: usize,
    mut apply: impl FnMut(&mut S, usize),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        if *cursor == len {
            *work = base.clone();
            *cursor = 0;
        }
        let take = left.min(len - *cursor);
        let start = Instant::now();
        for i in *cursor..*cursor + take {
            apply(work, i);
        }
        total += start.elapsed();
        *cursor += take;
        left -= take;
    }
    total
}

/// Measures `engine/n`: the events of `pool` applied to a copy of `base`, put back to `base`
/// whenever the pool runs out (see [`run`]). Returns the events applied and the time it took.
fn bench_engine(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    base: &Engine,
    pool: &[Event],
) -> (u64, Duration) {
    let (mut work, mut cursor) = (base.clone(), 0);
    let mut spent = (0u64, Duration::ZERO);
    g.bench_with_input(BenchmarkId::new("engine", n), &n, |b, _| {
        b.iter_custom(|iters| {
            let d = run(iters, base, &mut work, &mut cursor, pool.len(), |e, i| {
                black_box(e.apply(&pool[i]));
            });
            spent = (spent.0 + iters, spent.1 + d);
            d
        })
    });
    spent
}

fn new_alerts_as_state_grows(c: &mut Criterion) {
    let max: usize = std::env::var("D2C_BENCH_SCALE_MAX")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(usize::MAX);
    let topo = Arc::new(topology_of(TREES));
    let policy = Arc::new(ChangePolicy::default());
    // (active alerts, engine events/s, reference inserts/s)
    let curve: RefCell<Vec<(usize, f64, f64)>> = RefCell::default();

    let mut g = c.benchmark_group("new_alerts_as_state_grows");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(1));
    for &n in SIZES.iter().filter(|&&n| n <= max) {
        let cfg = CorrelationConfig {
            max_alerts: n * 2,
            max_incidents: n * 2,
            ..CorrelationConfig::default()
        };
        let mut base = Engine::new(topo.clone(), policy.clone(), cfg);
        let loading = Instant::now();
        for ev in &bursts(0, n / BURST) {
            black_box(base.apply(ev));
        }
        let pool = bursts(n / BURST, (n + (n / 10).max(1_000)) / BURST);
        eprintln!(
            "new_alerts_as_state_grows: {n} active alerts, {} open incidents (loaded in {:.1} s); \
             measuring {} more new alerts per round",
            base.state()
                .correlation
                .open
                .values()
                .map(|s| s.len())
                .sum::<usize>(),
            loading.elapsed().as_secs_f64(),
            pool.len(),
        );
        let spent = bench_engine(&mut g, n, &base, &pool);
        drop(base);

        // The reference: the same fingerprints into a map already holding n of them.
        let keys: BTreeMap<String, u64> = bursts(0, n / BURST)
            .into_iter()
            .map(|e| (e.fingerprint, 0))
            .collect();
        let fresh: Vec<String> = pool.into_iter().map(|e| e.fingerprint).collect();
        let (mut map, mut at) = (keys.clone(), 0);
        let mut reference = (0u64, Duration::ZERO);
        g.bench_with_input(
            BenchmarkId::new("reference_btreemap_insert", n),
            &n,
            |b, _| {
                b.iter_custom(|iters| {
                    let d = run(iters, &keys, &mut map, &mut at, fresh.len(), |m, i| {
                        black_box(m.insert(fresh[i].clone(), i as u64));
                    });
                    reference = (reference.0 + iters, reference.1 + d);
                    d
                })
            },
        );
        let rate = |(k, d): (u64, Duration)| k as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE);
        if spent.0 == 0 || reference.0 == 0 {
            continue; // filtered out on the command line: no point for the curve or the plot
        }
        let (engine, bare) = (rate(spent), rate(reference));
        eprintln!(
            "new_alerts_as_state_grows/{n}: engine {engine:.0} new alerts/s, reference \
             {bare:.0} inserts/s, ratio {:.1}",
            bare / engine
        );
        curve.borrow_mut().push((n, engine, bare));
    }
    g.finish();
    let curve = curve.into_inner();
    if curve.len() == SIZES.len() {
        let path =
            std::env::var("D2C_BENCH_PLOT").unwrap_or_else(|_| "docs/new-alert-path.svg".into());
        match plot(&path, &curve) {
            Ok(()) => eprintln!("new_alerts_as_state_grows: plot written to {path}"),
            Err(e) => eprintln!("new_alerts_as_state_grows: no plot: {e}"),
        }
    }
}

/// New alerts/s against active alerts (log scale), with the target.
fn plot(path: &str, curve: &[(usize, f64, f64)]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let top = curve
        .iter()
        .map(|p| p.1)
        .fold(TARGET, f64::max)
        .mul_add(1.2, 0.0);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "d2c new-alert path: new alerts/s per core as the state grows",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((5_000f64..2_000_000f64).log_scale(), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("active alerts in the engine (open incidents: a tenth)")
        .y_desc("new alerts/s")
        .x_label_formatter(&|x| format!("{:.0}k", x / 1000.0))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;
    let points: Vec<(f64, f64)> = curve.iter().map(|p| (p.0 as f64, p.1)).collect();
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))?
        .label("engine (measured)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    chart
        .draw_series(LineSeries::new(
            vec![(5_000f64, TARGET), (2_000_000f64, TARGET)],
            RED,
        ))?
        .label("target: 250k/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::MiddleRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Alerts already on the one incident of a mass outage, for [`one_incident_grows`].
const OUTAGE_SIZES: [usize; 3] = [1_000, 10_000, 30_000];

/// New alerts/s into one incident that already has N alerts (a mass outage: a zone lost), so
/// that a new alert's cost can be seen not to grow with its incident (it grew with it until
/// round 3f: 40 s for 32,000 alerts). The incident's first version is out; every measured
/// alert joins it; after 1,000 of them the engine is put back to its preloaded clone (not
/// timed).
fn one_incident_grows(c: &mut Criterion) {
    let topo = Arc::new(topology_of(TREES));
    let policy = Arc::new(ChangePolicy::default());
    let mut g = c.benchmark_group("one_incident_grows");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(1));
    for &n in &OUTAGE_SIZES {
        let mut base = Engine::new(topo.clone(), policy.clone(), CorrelationConfig::default());
        let loading = Instant::now();
        for ev in &outage_events(0, 0, n, t0()) {
            black_box(base.apply(ev));
        }
        // Its first version goes out at the end of its group wait (the tick), and its second
        // with the next alert (a group interval later): the measured alerts after it each
        // change the incident, and its next version waits for the group interval, as in an
        // outage that goes on.
        let later = t0() + chrono::Duration::minutes(3);
        let mut published = base.tick(later).len();
        // Alert `n` arrives at `later`, the rest 1 ms apart.
        let mut pool = outage_events(
            0,
            n,
            n + 1_001,
            later - chrono::Duration::milliseconds(n as i64),
        );
        published += base.apply(&pool.remove(0)).outputs.len();
        let incidents = base.state().correlation.groups.len();
        eprintln!(
            "one_incident_grows: {n} alerts on {incidents} incident(s) (loaded in {:.1} s, \
             {published} records published)",
            loading.elapsed().as_secs_f64()
        );
        let spent = bench_engine(&mut g, n, &base, &pool);
        if spent.0 == 0 {
            continue; // filtered out on the command line: nothing was measured
        }
        let rate = spent.0 as f64 / spent.1.as_secs_f64().max(f64::MIN_POSITIVE);
        eprintln!("one_incident_grows/{n}: engine {rate:.0} new alerts/s");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = support::as_the_binary();
    targets = new_alerts_as_state_grows, one_incident_grows
}
criterion_main!(benches);
