//! `d2c bench`'s report as a Markdown table, for a terminal or BENCHMARKS.md.

use super::BenchReport;

/// The report as a table for a terminal or BENCHMARKS.md.
pub fn render(r: &BenchReport) -> String {
    let ratio = if r.bare_per_sec > 0.0 {
        r.pipeline_per_sec / r.bare_per_sec * 100.0
    } else {
        0.0
    };
    let mut s = String::new();
    s.push_str("| figure | value |\n|---|---|\n");
    s.push_str(&format!("| events | {} |\n", r.events));
    s.push_str(&format!(
        "| produce rate (raw records/s) | {:.0} |\n",
        r.produce_per_sec
    ));
    s.push_str(&format!(
        "| pipeline (events/s, ingest + correlate) | {:.0} |\n",
        r.pipeline_per_sec
    ));
    s.push_str(&format!(
        "| bare rdkafka consumer (records/s) | {:.0} |\n",
        r.bare_per_sec
    ));
    // Two significant digits below 10% (on the mock cluster the bare consumer reads from
    // memory, so the ratio is tiny there and would print as 0%).
    let places = if ratio >= 10.0 {
        0
    } else if ratio >= 1.0 {
        1
    } else {
        2
    };
    s.push_str(&format!(
        "| pipeline / bare consumer | {ratio:.places$}% |\n"
    ));
    if r.latency_rate > 0 {
        s.push_str(&format!(
            "| event-to-incident latency at {} events/s: p50 / p99 / max (ms, {} samples) | {:.0} / {:.0} / {:.0} |\n",
            r.latency_rate, r.latency_samples, r.latency_p50_ms, r.latency_p99_ms, r.latency_max_ms
        ));
        s.push_str(&format!(
            "| one broker hop at the same rate, no d2c: p50 / p99 / max (ms, {} samples) | {:.0} / {:.0} / {:.0} |\n",
            r.hop_samples, r.hop_p50_ms, r.hop_p99_ms, r.hop_max_ms
        ));
        s.push_str(&format!(
            "| the same events' raw hop, read beside the pipeline: p50 / p99 (ms, {} samples) | {:.0} / {:.0} |\n",
            r.beside_samples, r.beside_p50_ms, r.beside_p99_ms
        ));
        s.push_str(&format!(
            "| the same raw hop as the ingest stage receives it (each batch's mean record age), p50 / p99 (ms) | {:.0} / {:.0} |\n",
            r.ingest_age_ms.0, r.ingest_age_ms.1
        ));
        // The pipeline makes two hops (raw → events → incidents); what is left is d2c's. An
        // estimate: percentiles of skewed hops do not subtract.
        s.push_str(&format!(
            "| d2c's own share, estimated: latency minus two hops read beside it, p50 / p99 (ms) | {:.0} / {:.0} |\n",
            r.latency_p50_ms - 2.0 * r.beside_p50_ms,
            r.latency_p99_ms - 2.0 * r.beside_p99_ms
        ));
        let (i, c) = (r.held_ingest_ms, r.held_correlate_ms);
        s.push_str(&format!(
            "| d2c's own time, measured: each stage's hold of a batch (first record received → outputs to the producer), per event, ingest / correlate: p50 / p99 (ms; {} / {} batches) | {:.1} / {:.1}, {:.1} / {:.1} |\n",
            r.held_batches.0, r.held_batches.1, i.0, i.1, c.0, c.1
        ));
        s.push_str(&format!(
            "| d2c's own share, measured: the two holds added, p50 / p99 (ms) | {:.1} / {:.1} |\n",
            i.0 + c.0,
            i.1 + c.1
        ));
    }
    s.push_str(&format!(
        "| peak resident memory (MiB) | {:.0} |\n",
        r.peak_rss_mib
    ));
    s.push_str(&format!(
        "| resident memory: load generator alone / pipeline running, before its final checkpoint (MiB) | {:.0} / {:.0} |\n",
        r.generator_rss_mib, r.running_rss_mib
    ));
    s.push_str(&format!(
        "| checkpoints written while running: all / deltas, MiB | {} / {}, {:.1} |\n",
        r.checkpoints,
        r.checkpoint_deltas,
        r.checkpoint_bytes / (1024.0 * 1024.0)
    ));
    let mean_ms = |(n, s): (u64, f64)| if n == 0 { 0.0 } else { s * 1000.0 / n as f64 };
    let [full, delta] = r.checkpoint_takes;
    let [full_ser, delta_ser] = r.checkpoint_serialised;
    s.push_str(&format!(
        "| checkpoints, mean ms to take (the stage's thread: events wait) / serialise (beside it): full (n = {}) / deltas (n = {}) | {:.1} / {:.1}, {:.1} / {:.1} |\n",
        full.0,
        delta.0,
        mean_ms(full),
        mean_ms(full_ser),
        mean_ms(delta),
        mean_ms(delta_ser)
    ));
    s
}
