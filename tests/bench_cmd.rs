//! `d2c bench` runs end to end against a real broker and reports every figure (small sizes:
//! the real measurements are in BENCHMARKS.md).

mod common;

use common::*;

#[test]
fn bench_reports_throughput_latency_memory_and_the_bare_consumer_ratio() {
    let broker = Tansu::start();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"))
        .args(["bench", "--config", &format!("{root}/config/d2c.toml")])
        .args(["--brokers", &broker.brokers()])
        .args(["--events", "3000", "--rate", "1000", "--duration", "2s"])
        .env("D2C_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("phase 4/4"), "progress is shown: {stderr}");
    let value = |row: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {row}")))
            .unwrap_or_else(|| panic!("no row `{row}` in:\n{stdout}"));
        line.trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap()
            .trim()
            .split(' ')
            .next()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    assert_eq!(value("events"), 3000.0);
    assert!(value("pipeline (events/s") > 0.0);
    assert!(value("bare rdkafka consumer") > 0.0);
    assert!(value("pipeline / bare consumer") > 0.0);
    assert!(value("peak resident memory") > 0.0);
    assert!(
        stdout.contains("event-to-incident latency at 1000 events/s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("one broker hop at the same rate"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("(ms, 0 samples)"),
        "both latency phases measured something: {stdout}"
    );
}
