//! `d2c bench` runs end to end against a real broker and reports every figure (small sizes:
//! the real measurements are in BENCHMARKS.md); with `--existing-topics` it also runs on the
//! mock cluster, which cannot create topics.

mod common;

use common::*;

/// Runs `d2c bench` at small sizes against `brokers` with `extra` arguments; returns stdout
/// after checking the run succeeded and showed its progress.
fn bench(brokers: &str, extra: &[&str]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"))
        .args(["bench", "--config", &format!("{root}/config/d2c.toml")])
        .args(["--brokers", brokers])
        .args(["--events", "3000", "--rate", "1000", "--duration", "2s"])
        .args(extra)
        .env("D2C_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("phase 4/4"), "progress is shown: {stderr}");
    stdout
}

/// The first number of row `row` of the report's table.
fn value(stdout: &str, row: &str) -> f64 {
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
}

/// Every figure is there and measured something.
fn assert_complete(stdout: &str) {
    assert_eq!(value(stdout, "events"), 3000.0);
    assert!(value(stdout, "pipeline (events/s") > 0.0, "{stdout}");
    assert!(value(stdout, "bare rdkafka consumer") > 0.0, "{stdout}");
    // On the mock cluster the bare consumer reads from memory: the ratio is tiny but there.
    assert!(value(stdout, "pipeline / bare consumer") >= 0.0, "{stdout}");
    assert!(value(stdout, "peak resident memory") > 0.0, "{stdout}");
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
    // Both stages' holds were recorded in the latency phase.
    let held = stdout
        .lines()
        .find(|l| l.starts_with("| d2c's own time, measured"))
        .unwrap_or_else(|| panic!("no row of the stages' holds in:\n{stdout}"));
    let counts: Vec<usize> = held
        .split("(ms; ")
        .nth(1)
        .and_then(|rest| rest.split(" batches)").next())
        .map(|c| c.split(" / ").map(|n| n.parse().unwrap()).collect())
        .unwrap_or_default();
    assert!(counts.len() == 2 && counts.iter().all(|&n| n > 0), "{held}");
    assert!(value(stdout, "d2c's own share, measured") > 0.0, "{stdout}");
}

#[test]
fn bench_reports_throughput_latency_memory_and_the_bare_consumer_ratio() {
    let broker = Tansu::start();
    assert_complete(&bench(&broker.brokers(), &[]));
}

#[test]
fn bench_runs_on_the_mock_cluster_with_the_topics_it_was_started_with() {
    let broker = MockBroker::start(6);
    assert_complete(&bench(&broker.bootstrap, &["--existing-topics"]));
}
