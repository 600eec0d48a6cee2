//! The state changelog: checkpoints of one partition's engine state with the input offset they
//! cover (the watermark), written to the state topic's partition of the same number, and read
//! back when the partition is assigned.
//!
//! A checkpoint is one JSON document split into records of at most `state.chunk_bytes`, written
//! consecutively by the partition's only owner. Headers: `d2c.watermark` (the next input offset
//! to process), `d2c.chunk` (`i/n`) and, on a delta, `d2c.base`. Two kinds:
//! - **full** ([`Checkpoint`], the document d2c always wrote, so older checkpoints restore):
//!   the whole state, keyed `<events topic>/<partition>/<chunk>`;
//! - **delta** ([`Delta`], `state.incremental`): what changed since the checkpoint at `base`
//!   (the new values of the changed keys, the keys removed, the small parts whole), keyed
//!   `<events topic>/<partition>.d<slot>/<chunk>`, slot = the delta's number since the last
//!   full one (1..=`state.full_every`). Outside the full checkpoints' key prefix on purpose:
//!   a d2c from before deltas reads only full checkpoints, so going back to one restores the
//!   newest full checkpoint (and reads the input since again) instead of failing on a delta.
//!
//! Restore takes the newest complete full checkpoint, then the complete deltas after it in log
//! order, each only if its base is the watermark reached so far, and stops at the first that
//! does not fit (a torn or missing delta): the input from there is read again. The writer keeps
//! the chain whole: a new owner writes a full checkpoint first, a delta is taken only after the
//! previous checkpoint was acknowledged (its base), and a delta that was not acknowledged makes
//! the next checkpoint full (the changes it took are gone from the dirty sets).
//!
//! Keys under compaction: each key keeps its newest record, so a compacted partition holds at
//! most one full checkpoint's chunks and `full_every` delta slots. A slot left from an earlier
//! cycle (the previous full was followed by more deltas than the current one so far) is older
//! than the newest full checkpoint, since every cycle starts with a full one, and restore never
//! applies a delta that sits before the newest full: stale slots are never read back. (As
//! before, a torn full checkpoint can shadow chunks of the previous full one under per-key
//! compaction; retention, not compaction, is the safe setting for the state topic.)

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::engine::{EngineDelta, EngineState};
use crate::telemetry::events::Restore;

use super::kafka::OutRecord;

/// What a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format of this document; bumped on incompatible changes.
    pub format: u32,
    /// Events topic and partition the state belongs to.
    pub topic: String,
    pub partition: i32,
    /// The next input offset to process: everything below it is reflected in `state`.
    pub watermark: i64,
    pub state: EngineState,
}

pub const FORMAT: u32 = 1;

/// What a delta checkpoint holds: the changes from the state at `base` to the one at
/// `watermark`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub format: u32,
    pub topic: String,
    pub partition: i32,
    /// The watermark of the checkpoint this one applies on.
    pub base: i64,
    pub watermark: i64,
    pub delta: EngineDelta,
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read the state topic `{topic}` partition {partition}: {source}")]
    Kafka {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error(
        "timed out reading the state topic `{topic}` partition {partition} (offsets {from}..{to})"
    )]
    Timeout {
        topic: String,
        partition: i32,
        from: i64,
        to: i64,
    },
    #[error("the checkpoint in `{topic}` partition {partition} is not readable: {detail}")]
    Corrupt {
        topic: String,
        partition: i32,
        detail: String,
    },
}

/// Collects serialised bytes straight into chunk-sized buffers, so a checkpoint is never held
/// as one whole document beside its chunks (that copy was the peak of d2c's memory).
struct ChunkWriter {
    size: usize,
    chunks: Vec<Vec<u8>>,
}

impl ChunkWriter {
    /// `buf` across the end of the last chunk, or into a new one.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, mut buf: &[u8]) -> usize {
        let n = buf.len();
        while !buf.is_empty() {
            if self.chunks.last().is_none_or(|c| c.len() >= self.size) {
                self.chunks.push(Vec::with_capacity(self.size));
            }
            let Some(last) = self.chunks.last_mut() else {
                break;
            };
            let take = (self.size - last.len()).min(buf.len());
            last.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
        }
        n
    }
}

impl std::io::Write for ChunkWriter {
    /// The serialiser writes a token at a time: most fit the last chunk, and take only a copy.
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(last) = self.chunks.last_mut()
            && self.size - last.len() >= buf.len()
        {
            last.extend_from_slice(buf);
            return Ok(buf.len());
        }
        Ok(self.spill(buf))
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.write(buf).map(drop)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a checkpoint is taken of: a copy of the state (the stage goes on with its engine), or a
/// copy of it taken a few keys at a time (a delta of every collection whole, see
/// `EngineState::begin_full`), for the last checkpoint on shutdown the engine itself, or the
/// changes since the checkpoint at `base`, to be written to delta slot `slot`. All but `Delta`
/// are written as a full checkpoint.
#[derive(Debug)]
pub enum Taken {
    Copy(Box<EngineState>),
    Whole(Box<EngineDelta>),
    Engine(Box<crate::engine::Engine>),
    Delta {
        delta: Box<EngineDelta>,
        base: i64,
        slot: u32,
    },
}

/// A [`Delta`] serialised from a borrowed delta: the same document.
#[derive(Serialize)]
struct DeltaRef<'a> {
    format: u32,
    topic: &'a str,
    partition: i32,
    base: i64,
    watermark: i64,
    delta: &'a EngineDelta,
}

/// A [`Checkpoint`] serialised from a borrowed state: the same document.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    format: u32,
    topic: &'a str,
    partition: i32,
    watermark: i64,
    state: &'a EngineState,
}

/// The records of a checkpoint of `taken` for events partition `(topic, partition)` at
/// `watermark`. Takes the state by value so that it is freed as soon as it is serialised, before
/// the records are sent.
pub fn records_of(
    taken: Taken,
    (topic, partition, watermark): (&str, i32, i64),
    state_topic: &str,
    chunk_bytes: usize,
) -> Vec<OutRecord> {
    let mut w = ChunkWriter {
        size: chunk_bytes.max(1),
        chunks: Vec::new(),
    };
    let mut taken = match taken {
        // Made a state again here, beside the stage.
        Taken::Whole(d) => Taken::Copy(Box::new(EngineState::of_whole(*d))),
        taken => taken,
    };
    let mut kind = None;
    match &mut taken {
        Taken::Delta { delta, base, slot } => {
            // Taken a few keys at a time on the stage's thread, put in order here.
            delta.sort();
            let doc = DeltaRef {
                format: FORMAT,
                topic,
                partition,
                base: *base,
                watermark,
                delta,
            };
            serde_json::to_writer(&mut w, &doc).expect("a delta always serialises");
            kind = Some((*base, *slot));
        }
        Taken::Copy(_) | Taken::Engine(_) | Taken::Whole(_) => {
            let state: &EngineState = match &mut taken {
                Taken::Copy(state) => state,
                // With the suppressor's inhibition state copied in, as for a copy.
                Taken::Engine(e) => e.checkpoint_state(),
                Taken::Delta { .. } | Taken::Whole(_) => unreachable!("matched above"),
            };
            let cp = CheckpointRef {
                format: FORMAT,
                topic,
                partition,
                watermark,
                state,
            };
            serde_json::to_writer(&mut w, &cp).expect("engine state always serialises");
        }
    }
    drop(taken);
    let (n, watermark) = (w.chunks.len(), watermark.to_string());
    let part = kind.map_or(format!("{partition}/"), |(_, slot)| {
        format!("{partition}.d{slot}/")
    });
    w.chunks
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut headers = vec![
                ("d2c.watermark", watermark.clone().into_bytes()),
                ("d2c.chunk", format!("{i}/{n}").into_bytes()),
            ];
            if let Some((base, _)) = kind {
                headers.push(("d2c.base", base.to_string().into_bytes()));
            }
            OutRecord {
                topic: state_topic.to_string(),
                partition: Some(partition),
                key: format!("{topic}/{part}{i}").into_bytes(),
                payload,
                headers,
                timestamp: None,
            }
        })
        .collect()
}

/// The records of one checkpoint.
pub fn records(cp: Checkpoint, state_topic: &str, chunk_bytes: usize) -> Vec<OutRecord> {
    let at = (cp.topic.clone(), cp.partition, cp.watermark);
    records_of(
        Taken::Copy(Box::new(cp.state)),
        (&at.0, at.1, at.2),
        state_topic,
        chunk_bytes,
    )
}

pub(super) struct Chunk {
    pub(super) offset: i64,
    pub(super) watermark: i64,
    /// The base watermark of a delta; `None` for a full checkpoint.
    pub(super) base: Option<i64>,
    pub(super) index: usize,
    pub(super) count: usize,
    pub(super) payload: Vec<u8>,
}

fn header(m: &impl Message, key: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Reads the records of `[from, to)` of one partition.
fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    prefixes: &[String],
    from: i64,
    to: i64,
    timeout: Duration,
) -> Result<Vec<Chunk>, RestoreError> {
    let kafka = |source| RestoreError::Kafka {
        topic: topic.to_string(),
        partition,
        source,
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))
        .map_err(kafka)?;
    consumer.assign(&tpl).map_err(kafka)?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut last = from - 1;
    while last < to - 1 {
        if Instant::now() > deadline {
            return Err(RestoreError::Timeout {
                topic: topic.to_string(),
                partition,
                from,
                to,
            });
        }
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            // Connection errors queued while the broker was away arrive here after it is back;
            // they are not about this read. A read that cannot finish ends in `Timeout`.
            Some(Err(e)) => {
                tracing::debug!(error = %e, "error while reading the state topic");
                continue;
            }
            Some(Ok(m)) => m,
        };
        last = m.offset();
        if m.offset() >= to {
            break;
        }
        if !m
            .key()
            .is_some_and(|k| prefixes.iter().any(|p| k.starts_with(p.as_bytes())))
        {
            continue;
        }
        let (Some(w), Some(c)) = (header(&m, "d2c.watermark"), header(&m, "d2c.chunk")) else {
            continue;
        };
        let Some((i, n)) = c.split_once('/') else {
            continue;
        };
        let (Ok(watermark), Ok(index), Ok(count)) = (w.parse(), i.parse(), n.parse()) else {
            continue;
        };
        let base = match header(&m, "d2c.base").map(|b| b.parse()) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(_)) => continue,
        };
        out.push(Chunk {
            offset: m.offset(),
            watermark,
            base,
            index,
            count,
            payload: m.payload().unwrap_or(&[]).to_vec(),
        });
    }
    let _ = consumer.unassign();
    Ok(out)
}

/// The complete checkpoints among `chunks` (in offset order), in order: `count` consecutive
/// chunks `0..count` with one watermark and base.
fn complete_runs(chunks: &[Chunk]) -> Vec<&[Chunk]> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let first = &chunks[i];
        let end = i + first.count;
        if first.index != 0 || first.count == 0 || end > chunks.len() {
            i += 1;
            continue;
        }
        let run = &chunks[i..end];
        let whole = run.iter().enumerate().all(|(k, c)| {
            c.index == k
                && c.count == first.count
                && c.watermark == first.watermark
                && c.base == first.base
        }) && run.windows(2).all(|w| w[1].offset == w[0].offset + 1);
        if whole {
            runs.push(run);
            i = end;
        } else {
            i += 1;
        }
    }
    runs
}

fn joined(run: &[Chunk]) -> Vec<u8> {
    run.iter().flat_map(|c| c.payload.iter().copied()).collect()
}

/// Whether `chunks` hold a complete full checkpoint.
fn has_full(chunks: &[Chunk]) -> bool {
    complete_runs(chunks).iter().any(|r| r[0].base.is_none())
}

/// A partition's state as read back: the newest full checkpoint with the deltas that fit
/// applied, and what was read.
#[derive(Debug)]
pub struct Restored {
    pub checkpoint: Checkpoint,
    pub read: Restore,
}

/// The state `chunks` (in offset order) restore: the newest complete full checkpoint, then the
/// complete deltas after it in order while each applies on the watermark reached. `None` when
/// there is no complete full checkpoint.
pub(super) fn assemble(
    chunks: &[Chunk],
    state_topic: &str,
    events_topic: &str,
    partition: i32,
) -> Result<Option<Restored>, RestoreError> {
    let corrupt = |detail: String| RestoreError::Corrupt {
        topic: state_topic.to_string(),
        partition,
        detail,
    };
    let runs = complete_runs(chunks);
    let Some(newest) = runs.iter().rposition(|r| r[0].base.is_none()) else {
        return Ok(None);
    };
    let doc = joined(runs[newest]);
    let mut cp: Checkpoint = serde_json::from_slice(&doc).map_err(|e| corrupt(e.to_string()))?;
    if cp.format != FORMAT || cp.partition != partition || cp.topic != events_topic {
        return Err(corrupt(format!(
            "it is format {} for {}/{}, expected format {FORMAT} for {events_topic}/{partition}",
            cp.format, cp.topic, cp.partition
        )));
    }
    let mut read = Restore {
        full_bytes: doc.len(),
        ..Restore::default()
    };
    drop(doc);
    for run in &runs[newest + 1..] {
        if run[0].base != Some(cp.watermark) {
            break;
        }
        let doc = joined(run);
        let d: Delta = match serde_json::from_slice(&doc) {
            Ok(d) => d,
            Err(e) => {
                // The state up to here is right; the input from here is read again.
                tracing::warn!(partition, watermark = cp.watermark, error = %e, "a delta checkpoint does not read; restoring up to the one before it");
                break;
            }
        };
        if d.format != FORMAT
            || d.partition != partition
            || d.topic != events_topic
            || d.base != cp.watermark
            || d.watermark != run[0].watermark
        {
            tracing::warn!(
                partition,
                watermark = cp.watermark,
                "a delta checkpoint is not for this partition or does not follow; restoring up to the one before it"
            );
            break;
        }
        cp.state.apply_delta(d.delta);
        cp.watermark = d.watermark;
        read.deltas += 1;
        read.delta_bytes += doc.len();
    }
    read.watermark = cp.watermark;
    read.incidents = cp.state.published.len();
    Ok(Some(Restored {
        checkpoint: cp,
        read,
    }))
}

/// Records a first look at the tail reads when its last record does not end a full
/// checkpoint: a cycle of small deltas fits.
const FIRST_WINDOW: i64 = 256;

/// Reads the newest checkpoint of events partition `partition` from the state topic, with the
/// deltas after it applied. `None` when there is none (a new deployment, or a new partition).
/// Reads back from the end of the partition in growing windows until one holds a complete full
/// checkpoint (the newest: any newer one would be in the window too).
pub fn restore(
    consumer: &BaseConsumer,
    state_topic: &str,
    events_topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Option<Restored>, RestoreError> {
    let (low, high) = consumer
        .fetch_watermarks(state_topic, partition, timeout)
        .map_err(|source| RestoreError::Kafka {
            topic: state_topic.to_string(),
            partition,
            source,
        })?;
    if high <= low {
        return Ok(None);
    }
    let prefixes = [
        format!("{events_topic}/{partition}/"),
        format!("{events_topic}/{partition}.d"),
    ];
    let read = |from: i64| {
        read_range(
            consumer,
            state_topic,
            partition,
            &prefixes,
            from,
            high,
            timeout,
        )
    };
    // Fast path: the last record says how many chunks the newest checkpoint has, when it ends
    // a full one.
    let tail = read(high - 1)?;
    let mut window = match tail.last() {
        Some(c) if c.base.is_none() && c.index + 1 == c.count => c.count as i64,
        _ => FIRST_WINDOW,
    };
    loop {
        let from = high.saturating_sub(window).max(low);
        let chunks = read(from)?;
        if from == low || has_full(&chunks) {
            return assemble(&chunks, state_topic, events_topic, partition);
        }
        window = window.saturating_mul(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: i64, watermark: i64, index: usize, count: usize, p: &[u8]) -> Chunk {
        Chunk {
            offset,
            watermark,
            base: None,
            index,
            count,
            payload: p.to_vec(),
        }
    }

    fn newest_complete(chunks: &[Chunk]) -> Option<Vec<u8>> {
        let runs = complete_runs(chunks);
        runs.iter()
            .rev()
            .find(|r| r[0].base.is_none())
            .map(|r| joined(r))
    }

    #[test]
    fn newest_complete_skips_a_torn_tail() {
        let chunks = vec![
            chunk(0, 10, 0, 2, b"ab"),
            chunk(1, 10, 1, 2, b"cd"),
            chunk(2, 20, 0, 3, b"xx"), // writer died after the first chunk
        ];
        assert_eq!(newest_complete(&chunks).unwrap(), b"abcd");
        let chunks = vec![chunk(5, 30, 0, 1, b"z")];
        assert_eq!(newest_complete(&chunks).unwrap(), b"z");
        assert!(newest_complete(&[chunk(0, 1, 1, 2, b"q")]).is_none());
    }

    #[test]
    fn records_split_into_chunks_that_reassemble() {
        let cp = Checkpoint {
            format: FORMAT,
            topic: "d2c.events".into(),
            partition: 2,
            watermark: 42,
            state: EngineState::default(),
        };
        let recs = records(cp.clone(), "d2c.state", 16);
        assert!(recs.len() > 1);
        assert!(
            recs.iter()
                .all(|r| r.partition == Some(2) && r.payload.len() <= 16)
        );
        assert_eq!(recs[0].key, b"d2c.events/2/0");
        let doc: Vec<u8> = recs.iter().flat_map(|r| r.payload.clone()).collect();
        let back: Checkpoint = serde_json::from_slice(&doc).unwrap();
        assert_eq!(back, cp);
    }
}
