//! Memory per active alert: loads N distinct firing alerts into one engine (caps raised above
//! N) and reports the growth of the process's resident memory divided by N, and the events/s
//! of that loading. `D2C_BENCH_ALERTS` sets N (default 1,000,000).
//!
//! Resident memory (`VmRSS`/`VmHWM` of `/proc/self/status`) rather than a counting global
//! allocator: a `GlobalAlloc` needs `unsafe`, and the package's `unsafe_code = "forbid"` lint
//! applies to bench targets too. RSS includes the allocator's own overhead (chunk headers,
//! rounding, fragmentation), which is what a deployment pays.
//!
//! Shape of the load: outages ("bursts") of `D2C_BENCH_BURST` alerts (default 50), each on the CIs of one dependency
//! tree of a generated topology (2,000 services, 10,000 CIs), 10 ms apart; a burst starts every
//! 2 s on the next tree (67 steps round 200), so a tree's bursts are 400 s apart, beyond the
//! 5-minute correlation window, and each burst makes its own incident(s).
//! Each alert has 4 labels (`service`, `env`, `team`, `pod`); the `pod` label differs per burst
//! (pods are replaced between outages), so every alert is new.

mod support;

/// The allocator of the `d2c` binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use support::*;

use d2c::change::ChangePolicy;
use d2c::config::CorrelationConfig;
use d2c::engine::Engine;

const DEFAULT_ALERTS: usize = 1_000_000;
/// Alerts per outage burst (so per incident); `D2C_BENCH_BURST` overrides it.
const DEFAULT_BURST: usize = 50;

/// `(VmRSS, VmHWM)` of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; this bench takes no arguments of its own.
    let n: usize = std::env::var("D2C_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_ALERTS);
    let topo = Arc::new(large_topology());
    let cfg = CorrelationConfig {
        max_alerts: n + n / 2 + 10,
        max_incidents: n + 10,
        ..CorrelationConfig::default()
    };
    let mut engine = Engine::new(topo, Arc::new(ChangePolicy::default()), cfg);
    let t0 = t0();

    let burst_size: usize = std::env::var("D2C_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&b| b > 0)
        .unwrap_or(DEFAULT_BURST);
    let mut events = Vec::with_capacity(burst_size);
    let (rss_before, _) = rss();
    let mut applying = StdDuration::ZERO;
    let mut generating = StdDuration::ZERO;
    let mut loaded = 0;
    let mut last_report = (0, StdDuration::ZERO);
    let step = (n / 10).max(1);
    println!("memory: loading {n} distinct firing alerts, bursts of {burst_size} per incident");
    for b in 0.. {
        if loaded >= n {
            break;
        }
        let count = burst_size.min(n - loaded);
        let g = Instant::now();
        burst_events(TREES, b, count, t0, &mut events);
        generating += g.elapsed();
        let a = Instant::now();
        for ev in &events {
            black_box(engine.apply(ev));
        }
        applying += a.elapsed();
        loaded += count;
        if loaded / step > last_report.0 / step || loaded == n {
            let (rss_now, _) = rss();
            let rate = (loaded - last_report.0) as f64 / (applying - last_report.1).as_secs_f64();
            println!(
                "  {loaded:>9} alerts: {rate:>9.0} events/s over the last {} alerts, RSS {:.0} MiB \
                 ({:.0} B/alert)",
                loaded - last_report.0,
                mib(rss_now),
                rss_now.saturating_sub(rss_before) as f64 / loaded as f64,
            );
            last_report = (loaded, applying);
        }
    }
    drop(events);
    let (rss_after, hwm) = rss();
    let state = engine.state();
    let active = engine.summary().active_alerts;
    println!(
        "state: {} alerts ({active} firing), {} incidents, {} published incidents",
        state.correlation.alerts.len(),
        state.correlation.groups.len(),
        state.published.len(),
    );
    println!(
        "an alert: {} B inline (boxed in the map)",
        std::mem::size_of::<d2c::correlate::AlertState>()
    );
    println!(
        "RSS before {:.1} MiB, after {:.1} MiB, peak {:.1} MiB",
        mib(rss_before),
        mib(rss_after),
        mib(hwm)
    );
    println!(
        "bytes per active alert (RSS growth / alerts): {:.0}  (target <= 512)",
        rss_after.saturating_sub(rss_before) as f64 / active.max(1) as f64
    );
    println!(
        "loading: {:.0} events/s on one core (engine only, {:.1} s; generating the events took \
         {:.1} s more)",
        n as f64 / applying.as_secs_f64(),
        applying.as_secs_f64(),
        generating.as_secs_f64()
    );
}
