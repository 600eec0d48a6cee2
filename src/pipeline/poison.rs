//! The correlate stage's memory of poison pills: inputs that made an engine panic (a bug). The
//! stage writes such an input to the DLQ (reason `internal_error`), drops the partition's
//! engine and restores it from its last checkpoint, then applies the input since the
//! checkpoint again: this set makes it skip the input that panicked, so the rebuilt engine is
//! the one that would have applied everything else. Also the stage's outputs as Kafka records,
//! dead letters (inputs the engine refused or failed on) among them.

use std::collections::{BTreeSet, HashMap};

use super::kafka::OutRecord;
use crate::config::TopicsConfig;
use crate::engine::{Applied, Engine, Input};
use crate::model::{DlqRecord, Output};
use crate::telemetry::Metrics;
use crate::telemetry::events::{EnginePanicked, InputRefused};

/// Most poisoned inputs remembered per partition; past it the oldest is forgotten (read again,
/// it would panic again and be dead-lettered again: no loss, one more DLQ record).
const MAX_PER_PARTITION: usize = 1000;

/// Poisoned inputs as (offset, index of the event in its record), per partition.
#[derive(Debug, Default)]
pub(super) struct Poisoned {
    inputs: HashMap<i32, BTreeSet<(i64, usize)>>,
    /// Partitions whose engine was dropped after a panic, with the first offset it applied
    /// (where its rebuild starts when it has no checkpoint).
    pub(super) rebuilding: HashMap<i32, Option<i64>>,
}

impl Poisoned {
    /// Applies input `i` of the record at offset `o` of partition `p` to `engine`, with a panic
    /// caught: `Ok(None)` for an input that panicked before (skipped), `Err` with its DLQ
    /// record when it panics now (the engine must then be dropped and rebuilt). Counts refusals
    /// and panics.
    pub(super) fn apply(
        &mut self,
        engine: &mut Engine,
        metrics: &Metrics,
        (p, o, i): (i32, i64, usize),
        input: Input<'_>,
    ) -> Result<Option<Applied>, DlqRecord> {
        if self.contains(p, o, i) {
            return Ok(None);
        }
        match engine.try_apply(input) {
            Ok(applied) => {
                if let Some(refusal) = &applied.refused {
                    let event = applied.outcome.is_some();
                    metrics.emit(InputRefused {
                        p,
                        o,
                        refusal,
                        event,
                    });
                }
                Ok(Some(applied))
            }
            Err(panicked) => {
                let message = &panicked.message;
                metrics.emit(EnginePanicked { p, o, message });
                self.insert(p, o, i);
                Err(panicked.dlq)
            }
        }
    }

    /// Where restored partition `p` starts: its checkpoint's `watermark`; when it is rebuilt
    /// after a panic and has no checkpoint yet (-1), the first offset its dropped engine applied.
    pub(super) fn start(&mut self, p: i32, watermark: i64) -> i64 {
        match self.rebuilding.remove(&p).flatten() {
            Some(first) if watermark < 0 => first,
            _ => watermark,
        }
    }

    fn contains(&self, partition: i32, offset: i64, index: usize) -> bool {
        self.inputs
            .get(&partition)
            .is_some_and(|s| s.contains(&(offset, index)))
    }

    fn insert(&mut self, partition: i32, offset: i64, index: usize) {
        let set = self.inputs.entry(partition).or_default();
        set.insert((offset, index));
        while set.len() > MAX_PER_PARTITION {
            set.pop_first();
        }
    }

    /// Forgets the inputs below `watermark`: a checkpoint covers them, so they are not read
    /// again.
    pub(super) fn forget_below(&mut self, partition: i32, watermark: i64) {
        if let Some(set) = self.inputs.get_mut(&partition) {
            set.retain(|(o, _)| *o >= watermark);
            if set.is_empty() {
                self.inputs.remove(&partition);
            }
        }
    }
}

/// The record of one output: incidents keyed by id to `topics.incidents`, RFCs to
/// `topics.changes`, problems to `topics.problems`, dead letters as [`dlq_record`] makes them;
/// all cut to fit `max_bytes`, the producer's `message.max.bytes` (an incident by listing
/// fewer alerts, see `Output::to_json_within`).
pub(super) fn output_record(
    topics: &TopicsConfig,
    o: &Output,
    max_bytes: usize,
    metrics: &Metrics,
) -> OutRecord {
    let (topic, key) = match o {
        Output::Incident(i) => (&topics.incidents, i.id.as_bytes()),
        Output::Change(r) => (&topics.changes, r.id.as_bytes()),
        Output::Problem(p) => (&topics.problems, p.id.as_bytes()),
        Output::Dlq(d) => return dlq_record(topics, d, max_bytes, metrics),
    };
    OutRecord {
        topic: topic.clone(),
        partition: None,
        key: key.to_vec(),
        payload: o
            .to_json_within(crate::config::output_room(max_bytes))
            .into_bytes(),
        headers: Vec::new(),
        timestamp: None,
    }
}

/// The DLQ record of an input the engine refused or failed on (or an events record, or an
/// element of one, that does not read), as ingest writes its own: the input's bytes (the event
/// as JSON) with the reason and the sentence in headers, cut to fit `max_bytes`.
fn dlq_record(
    topics: &TopicsConfig,
    d: &DlqRecord,
    max_bytes: usize,
    metrics: &Metrics,
) -> OutRecord {
    let headers = vec![
        ("d2c.reason", d.reason.clone().into_bytes()),
        ("d2c.error", d.detail.clone().into_bytes()),
        ("d2c.source.topic", topics.events.as_bytes().to_vec()),
    ];
    let raw = d.raw.as_bytes();
    super::send::dead_letter(&topics.dlq, &[], raw, headers, None, max_bytes, metrics)
}
