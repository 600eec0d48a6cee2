//! The state changelog: checkpoints of one partition's engine state with the input offset they
//! cover (the watermark), written to the state topic's partition of the same number, and read
//! back when the partition is assigned.
//!
//! A checkpoint is one JSON document split into records of at most `state.chunk_bytes`, written
//! consecutively by the partition's only owner, keyed `<events topic>/<partition>/<chunk>` (so
//! compaction keeps one copy of each chunk). Headers: `d2c.watermark` (the next input offset to
//! process) and `d2c.chunk` (`i/n`). Restore reads the newest complete checkpoint from the end of
//! the partition.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::engine::EngineState;

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

impl std::io::Write for ChunkWriter {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
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
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a checkpoint is taken of: a copy of the state (the stage goes on with its engine) or,
/// for the last checkpoint on shutdown, the engine itself.
#[derive(Debug)]
pub enum Taken {
    Copy(Box<EngineState>),
    Engine(Box<crate::engine::Engine>),
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
    let mut taken = taken;
    {
        let state: &EngineState = match &mut taken {
            Taken::Copy(state) => state,
            // With the suppressor's inhibition state copied in, as for a copy.
            Taken::Engine(e) => e.checkpoint_state(),
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
    drop(taken);
    let (n, watermark) = (w.chunks.len(), watermark.to_string());
    w.chunks
        .into_iter()
        .enumerate()
        .map(|(i, payload)| OutRecord {
            topic: state_topic.to_string(),
            partition: Some(partition),
            key: format!("{topic}/{partition}/{i}").into_bytes(),
            payload,
            headers: vec![
                ("d2c.watermark", watermark.clone().into_bytes()),
                ("d2c.chunk", format!("{i}/{n}").into_bytes()),
            ],
            timestamp: None,
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

struct Chunk {
    offset: i64,
    watermark: i64,
    index: usize,
    count: usize,
    payload: Vec<u8>,
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
    prefix: &str,
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
        if !m.key().is_some_and(|k| k.starts_with(prefix.as_bytes())) {
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
        out.push(Chunk {
            offset: m.offset(),
            watermark,
            index,
            count,
            payload: m.payload().unwrap_or(&[]).to_vec(),
        });
    }
    let _ = consumer.unassign();
    Ok(out)
}

/// The newest complete checkpoint among `chunks` (in offset order): `count` consecutive
/// chunks `0..count` with one watermark, ending in the latest such run.
fn newest_complete(chunks: &[Chunk]) -> Option<Vec<u8>> {
    for end in (0..chunks.len()).rev() {
        let last = &chunks[end];
        if last.index + 1 != last.count || end + 1 < last.count {
            continue;
        }
        let run = &chunks[end + 1 - last.count..=end];
        let whole =
            run.iter().enumerate().all(|(i, c)| {
                c.index == i && c.count == last.count && c.watermark == last.watermark
            }) && run.windows(2).all(|w| w[1].offset == w[0].offset + 1);
        if whole {
            return Some(run.iter().flat_map(|c| c.payload.iter().copied()).collect());
        }
    }
    None
}

/// Reads the newest checkpoint of events partition `partition` from the state topic. `None`
/// when there is none (a new deployment, or a new partition).
pub fn restore(
    consumer: &BaseConsumer,
    state_topic: &str,
    events_topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Option<Checkpoint>, RestoreError> {
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
    let prefix = format!("{events_topic}/{partition}/");
    // Fast path: the last record says how many chunks the newest checkpoint has.
    let tail = read_range(
        consumer,
        state_topic,
        partition,
        &prefix,
        high - 1,
        high,
        timeout,
    )?;
    let mut doc = None;
    if let Some(last) = tail.last()
        && last.index + 1 == last.count
        && high - last.count as i64 >= low
    {
        let run = read_range(
            consumer,
            state_topic,
            partition,
            &prefix,
            high - last.count as i64,
            high,
            timeout,
        )?;
        doc = newest_complete(&run);
    }
    if doc.is_none() {
        // Slow path: the end of the partition is not a whole checkpoint (a writer died in the
        // middle of one); scan it all.
        let all = read_range(
            consumer,
            state_topic,
            partition,
            &prefix,
            low,
            high,
            timeout,
        )?;
        doc = newest_complete(&all);
    }
    let Some(doc) = doc else {
        return Ok(None);
    };
    let cp: Checkpoint = serde_json::from_slice(&doc).map_err(|e| RestoreError::Corrupt {
        topic: state_topic.to_string(),
        partition,
        detail: e.to_string(),
    })?;
    if cp.format != FORMAT || cp.partition != partition || cp.topic != events_topic {
        return Err(RestoreError::Corrupt {
            topic: state_topic.to_string(),
            partition,
            detail: format!(
                "it is format {} for {}/{}, expected format {FORMAT} for {events_topic}/{partition}",
                cp.format, cp.topic, cp.partition
            ),
        });
    }
    Ok(Some(cp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: i64, watermark: i64, index: usize, count: usize, p: &[u8]) -> Chunk {
        Chunk {
            offset,
            watermark,
            index,
            count,
            payload: p.to_vec(),
        }
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
