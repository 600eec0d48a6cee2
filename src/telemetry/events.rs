//! Named telemetry events, in the manner of vector's `internal_events`: each thing worth counting
//! is one type, and emitting it logs (where a person should hear of it) and bumps its metrics
//! together, with fixed label sets. The stages say what happened
//! (`metrics.emit(RecordDeadLettered { .. })`); which series that moves is decided here only.

use std::time::Duration;

use crate::correlate::{Evicted, Outcome};
use crate::engine::Milestone;
use crate::suppress::SuppressReason;

use super::Metrics;
pub use super::changes::{ProblemsCounted, RunFinished};
pub use super::published::{Counted, OutputsPublished};

/// Something that happened in the shell, to be logged and counted.
pub trait TelemetryEvent {
    fn emit(self, m: &Metrics);
}

impl Metrics {
    /// Logs and counts `event`.
    pub fn emit(&self, event: impl TelemetryEvent) {
        event.emit(self);
    }
}

/// The ingest stage turned one raw record into events (counted once the broker has them).
#[derive(Debug)]
pub struct RecordIngested {
    pub format: &'static str,
    pub events: usize,
}

impl TelemetryEvent for RecordIngested {
    fn emit(self, m: &Metrics) {
        m.records_consumed
            .with_label_values(&[self.format, "ok"])
            .inc();
        m.events_normalised
            .with_label_values(&[self.format])
            .inc_by(self.events as u64);
    }
}

/// The ingest stage wrote a raw record it could not read to the DLQ.
#[derive(Debug)]
pub struct RecordDeadLettered {
    /// The detected format, or `unknown`.
    pub format: &'static str,
    pub reason: &'static str,
}

impl TelemetryEvent for RecordDeadLettered {
    fn emit(self, m: &Metrics) {
        m.records_consumed
            .with_label_values(&[self.format, "dlq"])
            .inc();
        m.dlq_records.with_label_values(&[self.reason]).inc();
    }
}

/// A stage finished one batch (its outputs acknowledged).
#[derive(Debug)]
pub struct BatchProcessed {
    pub stage: &'static str,
    pub elapsed: Duration,
}

impl TelemetryEvent for BatchProcessed {
    fn emit(self, m: &Metrics) {
        m.batch_seconds
            .with_label_values(&[self.stage])
            .observe(self.elapsed.as_secs_f64());
    }
}

/// The broker did not acknowledge a record; it is sent again.
#[derive(Debug)]
pub struct ProduceRetried<'a> {
    pub topic: &'a str,
    pub error: &'a dyn std::error::Error,
}

impl TelemetryEvent for ProduceRetried<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(topic = %self.topic, error = %self.error, "broker did not acknowledge a record; sending it again");
        m.produce_retries.with_label_values(&[self.topic]).inc();
    }
}

/// The consumer lag of one partition, from librdkafka's statistics.
#[derive(Debug)]
pub struct ConsumerLag<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl TelemetryEvent for ConsumerLag<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer_lag
            .with_label_values(&[self.topic, &self.partition.to_string()])
            .set(self.lag.max(0));
    }
}

/// Input between a partition's checkpoint and the consumer's position is gone (deleted by
/// retention): the stage continues from the consumer's position.
#[derive(Debug)]
pub struct InputGap {
    pub partition: i32,
    pub expected: i64,
    pub got: i64,
}

impl TelemetryEvent for InputGap {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            partition = self.partition,
            expected = self.expected,
            got = self.got,
            "input between the checkpoint and the consumer position is gone; continuing from the consumer position"
        );
        m.input_gaps.inc();
    }
}

/// A record on the events topic that is not a d2c events record; skipped.
#[derive(Debug)]
pub struct RecordUndecodable<'a> {
    pub partition: i32,
    pub offset: i64,
    pub error: &'a dyn std::error::Error,
}

impl TelemetryEvent for RecordUndecodable<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(partition = self.partition, offset = self.offset, error = %self.error, "record on the events topic is not a d2c events record; skipped");
        m.records_undecodable.inc();
    }
}

/// The correlate stage received a security event of `source` (a source that is no input format,
/// a native event's free-form `source`, counts as `other`, so the label set stays fixed).
#[derive(Debug)]
pub struct SecurityEventReceived<'a> {
    pub source: &'a str,
}

impl TelemetryEvent for SecurityEventReceived<'_> {
    fn emit(self, m: &Metrics) {
        let tool = crate::ingest::Format::from_name(self.source).map_or("other", |f| f.as_str());
        m.security_events.with_label_values(&[tool]).inc();
    }
}

/// What the events of one batch did, by outcome (indexed like [`Outcome::ALL`]): counted once
/// per batch, not with a label lookup per event.
#[derive(Debug)]
pub struct EventsCorrelated<'a> {
    pub counts: &'a [u64; Outcome::ALL.len()],
}

impl TelemetryEvent for EventsCorrelated<'_> {
    fn emit(self, m: &Metrics) {
        for (outcome, n) in Outcome::ALL.iter().zip(self.counts) {
            if *n > 0 {
                m.events_correlated
                    .with_label_values(&[outcome.as_str()])
                    .inc_by(*n);
            }
        }
    }
}

/// An event matched a silence, maintenance window or inhibition rule.
#[derive(Debug)]
pub struct EventSuppressed {
    pub reason: SuppressReason,
}

impl TelemetryEvent for EventSuppressed {
    fn emit(self, m: &Metrics) {
        m.events_suppressed
            .with_label_values(&[self.reason.as_str()])
            .inc();
    }
}

/// The engine forgot state to stay within its caps.
#[derive(Debug)]
pub struct StateEvicted<'a> {
    pub evicted: &'a Evicted,
}

impl TelemetryEvent for StateEvicted<'_> {
    fn emit(self, m: &Metrics) {
        let e = self.evicted;
        if e.alerts == 0 && e.incidents.is_empty() && e.learned_pairs == 0 {
            return;
        }
        let c = &m.state_evictions;
        c.with_label_values(&["learned_pair"])
            .inc_by(e.learned_pairs);
        c.with_label_values(&["alert"]).inc_by(e.alerts);
        c.with_label_values(&["incident"])
            .inc_by(e.incidents.len() as u64 - e.open_incidents);
        c.with_label_values(&["open_incident"])
            .inc_by(e.open_incidents);
    }
}

/// How the engines' build memos answered since the stage last looked.
#[derive(Debug)]
pub struct MemosCounted {
    pub counts: crate::engine::MemoCounts,
}

impl TelemetryEvent for MemosCounted {
    fn emit(self, m: &Metrics) {
        let c = &self.counts;
        for (memo, l) in [("assessment", c.assessment), ("build", c.build)] {
            m.memo_lookups
                .with_label_values(&[memo, "hit"])
                .inc_by(l.hits);
            m.memo_lookups
                .with_label_values(&[memo, "miss"])
                .inc_by(l.misses);
        }
    }
}

/// Suppressed alerts the engines forgot to stay within their cap since the stage last looked.
#[derive(Debug)]
pub struct SuppressedEvicted {
    pub evicted: u64,
}

impl TelemetryEvent for SuppressedEvicted {
    fn emit(self, m: &Metrics) {
        if self.evicted > 0 {
            m.state_evictions
                .with_label_values(&["suppressed"])
                .inc_by(self.evicted);
        }
    }
}

/// The engine refused an input (see `engine::Refusal`): its DLQ record is written with the
/// batch's outputs. Counted by reason; a refused control record (a silence every partition
/// refuses) is also logged, a refused event only at DEBUG (there may be many).
#[derive(Debug)]
pub struct InputRefused<'a> {
    pub p: i32,
    pub o: i64,
    pub refusal: &'a crate::engine::Refusal,
    /// An event (else a control record).
    pub event: bool,
}

impl TelemetryEvent for InputRefused<'_> {
    fn emit(self, m: &Metrics) {
        let (p, o, reason, detail) = (self.p, self.o, self.refusal.reason, &self.refusal.detail);
        if self.event {
            tracing::debug!(
                partition = p,
                offset = o,
                reason,
                detail,
                "event refused; sent to the DLQ"
            );
        } else {
            tracing::warn!(
                partition = p,
                offset = o,
                reason,
                detail,
                "control record refused"
            );
        }
        m.dlq_records.with_label_values(&[reason]).inc();
    }
}

/// Applying an input panicked (a bug): the input went to the DLQ with reason `internal_error`
/// and the partition's engine is rebuilt from its checkpoint without it.
#[derive(Debug)]
pub struct EnginePanicked<'a> {
    pub p: i32,
    pub o: i64,
    pub message: &'a str,
}

impl TelemetryEvent for EnginePanicked<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(
            partition = self.p,
            offset = self.o,
            error = self.message,
            "the engine failed on an input (a bug, please report it); the input goes to the DLQ and the partition's state is rebuilt from its checkpoint without it"
        );
        m.dlq_records.with_label_values(&["internal_error"]).inc();
    }
}

/// A partition's state was restored (from its newest checkpoint, or empty without one).
#[derive(Debug)]
pub struct StateRestored {
    pub partition: i32,
    /// What was read, when there was a checkpoint.
    pub checkpoint: Option<Restore>,
    pub elapsed: Duration,
}

/// What a partition's state was rebuilt from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restore {
    /// The watermark reached (the next input offset to process).
    pub watermark: i64,
    /// Incidents in the restored state.
    pub incidents: usize,
    /// Size of the full checkpoint read.
    pub full_bytes: usize,
    /// Deltas applied after it, and their size.
    pub deltas: usize,
    pub delta_bytes: usize,
}

impl TelemetryEvent for StateRestored {
    fn emit(self, m: &Metrics) {
        match self.checkpoint {
            Some(r) => {
                tracing::info!(
                    partition = self.partition,
                    watermark = r.watermark,
                    incidents = r.incidents,
                    full_bytes = r.full_bytes,
                    deltas = r.deltas,
                    delta_bytes = r.delta_bytes,
                    millis = self.elapsed.as_millis() as u64,
                    "state restored from checkpoint"
                );
                m.restore_deltas.inc_by(r.deltas as u64);
            }
            None => tracing::info!(
                partition = self.partition,
                "no checkpoint; starting with empty state"
            ),
        }
        m.state_restores.inc();
        m.restore_seconds.observe(self.elapsed.as_secs_f64());
    }
}

/// A checkpoint of `bytes` was acknowledged by the broker: a delta (what changed since the
/// previous one) or a full one.
#[derive(Debug)]
pub struct CheckpointWritten {
    pub bytes: usize,
    pub delta: bool,
}

impl TelemetryEvent for CheckpointWritten {
    fn emit(self, m: &Metrics) {
        m.checkpoints.inc();
        m.checkpoint_bytes.observe(self.bytes as f64);
        if self.delta {
            m.checkpoint_deltas.inc();
        }
    }
}

/// A checkpoint of `partition` taken before it was revoked was dropped unwritten: its new owner
/// writes the partition's checkpoints now, and one written after the new owner's first would
/// break its chain of deltas.
#[derive(Debug)]
pub struct CheckpointDropped {
    pub partition: i32,
    pub delta: bool,
}

impl TelemetryEvent for CheckpointDropped {
    fn emit(self, m: &Metrics) {
        m.checkpoints_dropped.inc();
        tracing::info!(
            partition = self.partition,
            delta = self.delta,
            "partition revoked before its checkpoint was written; the checkpoint is dropped (the new owner writes its own)"
        );
    }
}

/// One step of a checkpoint (a delta or a full copy of the state): `take` on the correlate
/// stage's thread (events wait meanwhile), `serialise` on a blocking thread beside it.
#[derive(Debug)]
pub struct CheckpointStep {
    pub delta: bool,
    pub step: &'static str,
    pub elapsed: std::time::Duration,
}

impl TelemetryEvent for CheckpointStep {
    fn emit(self, m: &Metrics) {
        let kind = if self.delta { "delta" } else { "full" };
        m.checkpoint_seconds
            .with_label_values(&[kind, self.step])
            .observe(self.elapsed.as_secs_f64());
    }
}

/// Milestones of incidents (opened, acknowledged, resolved) the engines passed: MTTD, MTTA and
/// MTTR, measured to the wall clock `now` for detection.
#[derive(Debug)]
pub struct MilestonesReached<'a> {
    pub milestones: &'a [Milestone],
    pub now: chrono::DateTime<chrono::Utc>,
}

impl TelemetryEvent for MilestonesReached<'_> {
    fn emit(self, m: &Metrics) {
        for milestone in self.milestones {
            m.business.observe(milestone, self.now);
        }
    }
}

/// One attempt to deliver a record to a tool took `elapsed`.
#[derive(Debug)]
pub struct DeliveryAttempted<'a> {
    pub connector: &'a str,
    pub elapsed: Duration,
}

impl TelemetryEvent for DeliveryAttempted<'_> {
    fn emit(self, m: &Metrics) {
        m.delivery_seconds
            .with_label_values(&[self.connector])
            .observe(self.elapsed.as_secs_f64());
    }
}

/// A record's delivery to a tool ended (`delivered`, `skipped`, `dead_lettered`) or is retried
/// (`retried`, which also counts a retry).
#[derive(Debug)]
pub struct DeliveryFinished<'a> {
    pub connector: &'a str,
    pub outcome: &'static str,
}

impl TelemetryEvent for DeliveryFinished<'_> {
    fn emit(self, m: &Metrics) {
        m.deliveries
            .with_label_values(&[self.connector, self.outcome])
            .inc();
        if self.outcome == "retried" {
            m.delivery_retries
                .with_label_values(&[self.connector])
                .inc();
        }
    }
}

/// Records the delivery stage has read but not finished: `Reset` when it starts, `Read` per
/// batch, `Done` per record finished.
#[derive(Debug)]
pub enum DeliveryBacklog {
    Reset,
    Read(usize),
    Done,
}

impl TelemetryEvent for DeliveryBacklog {
    fn emit(self, m: &Metrics) {
        match self {
            DeliveryBacklog::Reset => m.delivery_backlog.set(0),
            DeliveryBacklog::Read(n) => m.delivery_backlog.add(n as i64),
            DeliveryBacklog::Done => m.delivery_backlog.dec(),
        }
    }
}

/// A read of the service model from the Backstage catalog ended (`ok` or `failed`).
#[derive(Debug)]
pub struct TopologyRefreshed {
    pub result: &'static str,
}

impl TelemetryEvent for TopologyRefreshed {
    fn emit(self, m: &Metrics) {
        m.business
            .topology_refreshes
            .with_label_values(&["backstage", self.result])
            .inc();
    }
}

/// The view behind the console and the read API took a batch of incident, RFC and problem
/// records.
#[derive(Debug)]
pub struct ViewUpdated {
    /// Incidents, RFCs and problems it holds now.
    pub incidents: usize,
    pub changes: usize,
    pub problems: usize,
    /// Dropped to stay within its bounds.
    pub evicted_incidents: usize,
    pub evicted_changes: usize,
    pub evicted_problems: usize,
    /// Publication-to-view delay of each record of the batch.
    pub delays: Vec<Duration>,
}

impl TelemetryEvent for ViewUpdated {
    fn emit(self, m: &Metrics) {
        m.view_size
            .with_label_values(&["incident"])
            .set(self.incidents as i64);
        m.view_size
            .with_label_values(&["change"])
            .set(self.changes as i64);
        m.view_size
            .with_label_values(&["problem"])
            .set(self.problems as i64);
        if self.evicted_incidents + self.evicted_changes + self.evicted_problems > 0 {
            tracing::info!(
                incidents = self.evicted_incidents,
                changes = self.evicted_changes,
                problems = self.evicted_problems,
                "view full; dropped the least recent records (raise http.view.max_incidents / max_changes / max_problems to keep more)"
            );
            m.view_evictions
                .with_label_values(&["problem"])
                .inc_by(self.evicted_problems as u64);
            m.view_evictions
                .with_label_values(&["incident"])
                .inc_by(self.evicted_incidents as u64);
            m.view_evictions
                .with_label_values(&["change"])
                .inc_by(self.evicted_changes as u64);
        }
        for d in self.delays {
            m.view_delay.observe(d.as_secs_f64());
        }
    }
}

/// A record on the incidents, changes or problems topic that the view cannot read; skipped.
#[derive(Debug)]
pub struct ViewRecordSkipped<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub error: &'a dyn std::error::Error,
}

impl TelemetryEvent for ViewRecordSkipped<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(topic = self.topic, partition = self.partition, offset = self.offset, error = %self.error, "record is not a d2c incident or RFC; the view skips it");
        m.view_skipped.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_steps_are_counted_by_kind_and_step_for_the_bench_and_the_metrics() {
        let m = Metrics::new(&Default::default());
        let ms = std::time::Duration::from_millis;
        for (delta, step, elapsed) in [
            (false, "take", 60),
            (true, "take", 7),
            (true, "take", 5),
            (false, "serialise", 300),
            (true, "wait", 20),
        ] {
            m.emit(CheckpointStep {
                delta,
                step,
                elapsed: ms(elapsed),
            });
        }
        let [(full, full_s), (delta, delta_s)] = m.checkpoint_steps("take");
        assert_eq!((full, delta), (1, 2));
        assert!((full_s - 0.060).abs() < 1e-9, "{full_s}");
        assert!((delta_s - 0.012).abs() < 1e-9, "{delta_s}");
        assert_eq!(m.checkpoint_steps("serialise")[0].0, 1);
        assert_eq!(m.checkpoint_steps("wait")[1].0, 1);
        let text = m.render();
        assert!(
            text.contains("d2c_checkpoint_seconds_count{kind=\"delta\",step=\"take\"} 2"),
            "{text}"
        );
    }
}
