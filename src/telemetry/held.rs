//! How long d2c itself holds the events it passes on: per stage and batch, from the batch's
//! first record received to its outputs handed to the producer. The broker's time (the hops
//! before and after, the acknowledgement) is not in it, so this is d2c's own share of an event's
//! latency, measured directly rather than as a difference of two percentiles.
//!
//! `d2c_batch_held_seconds{stage}` is the metric. `d2c bench` also switches on a [`HeldProbe`],
//! which keeps every batch's figures for the length of its latency phase, to report exact
//! percentiles per event (a batch of 100 events counts 100 times).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, Registry};

use super::Metrics;
use super::events::TelemetryEvent;

/// Samples a probe keeps at most (minutes of batches at 10,000 events/s, ~6 MiB); later
/// batches are not kept.
const PROBE_CAP: usize = 100_000;

/// The metric and the bench's probe, registered with the others by [`Metrics::new`].
#[derive(Debug, Clone)]
pub struct HeldMetrics {
    held: HistogramVec,
    probe: HeldProbe,
}

impl HeldMetrics {
    pub fn new(r: &Registry) -> HeldMetrics {
        let held = HistogramVec::new(
            HistogramOpts::new(
                "d2c_batch_held_seconds",
                "Seconds a stage held a batch: from its first record received to its outputs handed to the producer (the broker's time excluded), by stage.",
            )
            // 0.25 ms to ~2 s.
            .buckets(prometheus::exponential_buckets(0.000_25, 2.0, 14).expect("valid buckets")),
            &["stage"],
        )
        .expect("valid metric");
        r.register(Box::new(held.clone()))
            .expect("metric registered once");
        HeldMetrics {
            held,
            probe: HeldProbe::default(),
        }
    }
}

/// One batch as a stage held it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldSample {
    pub stage: &'static str,
    /// Records (ingest) or events (correlate) in the batch: its weight per event.
    pub records: usize,
    /// From the first record received to the outputs handed to the producer.
    pub held: Duration,
    /// How old the batch's records were, on average, when the stage received it: then minus
    /// their Kafka timestamps, in ms (the hop before the stage, as the stage sees it).
    pub age_ms: Option<i64>,
}

/// Keeps [`HeldSample`]s while switched on (`d2c bench`); off, recording costs one lock.
/// Only batches received after it was switched on are kept: a batch of the backlog that was
/// still being worked on when the latency phase began is not the latency phase's (one such
/// batch of ~50,000 events, weighted by its events, was once the whole p99).
#[derive(Debug, Clone, Default)]
pub struct HeldProbe {
    samples: Arc<Mutex<Kept>>,
}

/// While switched on: since when, and the samples kept.
type Kept = Option<(Instant, Vec<HeldSample>)>;

impl HeldProbe {
    /// Starts keeping samples (forgetting any kept before).
    pub fn start(&self) {
        *self.lock() = Some((Instant::now(), Vec::new()));
    }

    /// Stops keeping samples and returns those kept.
    pub fn take(&self) -> Vec<HeldSample> {
        self.lock().take().map(|(_, v)| v).unwrap_or_default()
    }

    fn record(&self, s: HeldSample) {
        if let Some((since, v)) = self.lock().as_mut()
            && v.len() < PROBE_CAP
            && Instant::now()
                .checked_sub(s.held)
                .is_some_and(|received| received >= *since)
        {
            v.push(s);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic elsewhere while holding it leaves only samples behind: keep using them.
        self.samples.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Metrics {
    /// The probe `d2c bench` switches on.
    pub fn held_probe(&self) -> &HeldProbe {
        &self.held.probe
    }
}

/// A stage handed a batch's outputs to the producer.
#[derive(Debug)]
pub struct BatchHeld(pub HeldSample);

impl TelemetryEvent for BatchHeld {
    fn emit(self, m: &Metrics) {
        m.held
            .held
            .with_label_values(&[self.0.stage])
            .observe(self.0.held.as_secs_f64());
        m.held.probe.record(self.0);
    }
}

/// Milliseconds since the Unix epoch now (wall clock: the unit of Kafka record timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(stage: &'static str, ms: u64) -> HeldSample {
        HeldSample {
            stage,
            records: 10,
            held: Duration::from_millis(ms),
            age_ms: Some(3),
        }
    }

    #[test]
    fn held_batches_are_observed_always_and_kept_only_when_received_while_the_probe_is_on() {
        let m = Metrics::new(&Default::default());
        m.emit(BatchHeld(sample("ingest", 1)));
        assert!(m.held_probe().take().is_empty(), "the probe starts off");
        m.held_probe().start();
        // Received before the probe was switched on: a batch of the phase before.
        m.emit(BatchHeld(sample("correlate", 60_000)));
        std::thread::sleep(Duration::from_millis(20));
        m.emit(BatchHeld(sample("ingest", 2)));
        m.emit(BatchHeld(sample("correlate", 3)));
        let kept = m.held_probe().take();
        assert_eq!(kept, vec![sample("ingest", 2), sample("correlate", 3)]);
        m.emit(BatchHeld(sample("ingest", 4)));
        assert!(m.held_probe().take().is_empty(), "taking switches it off");
        let text = m.render();
        assert!(
            text.contains("d2c_batch_held_seconds_count{stage=\"ingest\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("d2c_batch_held_seconds_count{stage=\"correlate\"} 2"),
            "the histogram counts every batch: {text}"
        );
    }
}
