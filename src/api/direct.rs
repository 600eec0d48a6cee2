//! HTTP ingest's one-hop path (`ingest.http_direct`): a payload parsed once in the handler goes
//! straight to the `topics.events` partitions of its events' correlation domains, routed as the
//! ingest stage routes them, instead of through `topics.raw` and a second broker hop.
//!
//! The events carry no raw origin: an origin lets the correlate stage skip the events the ingest
//! stage writes again after it re-reads a raw record, and this path has no re-read. A record the
//! idempotent producer retries is written once; a payload a client sends again after a `503` is
//! applied again, and a repeated alert changes no incident.

use std::sync::Arc;

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::{mpsc, oneshot};

use crate::config::CorrelationConfig;
use crate::model::Event;
use crate::pipeline::kafka::KafkaProducer;
use crate::pipeline::records::{EVENTS_RECORD_BYTES, RoutedEvent, partition_of};
use crate::topology::Topology;

/// What the one-hop path needs besides the producer.
#[derive(Debug)]
pub(super) struct Direct {
    pub(super) events_topic: String,
    /// `[correlation]`, for routing events as the ingest stage routes them.
    pub(super) correlation: CorrelationConfig,
    /// The service model when no view gives the one the engines use now.
    pub(super) topology: Arc<Topology>,
    /// Partitions of `topics.events`, read from the broker on first use.
    partitions: tokio::sync::OnceCell<i32>,
    /// Where requests hand their events to the writer task (started on first use).
    writer: tokio::sync::OnceCell<mpsc::Sender<Job>>,
}

/// One request's events, by partition (JSON array elements joined by commas), and where its
/// answer goes.
type Job = (
    Vec<(i32, Vec<u8>)>,
    oneshot::Sender<Result<Vec<(i32, i64)>, KafkaError>>,
);

/// Longest wait for room in librdkafka's local queue before answering 503, here and on the
/// raw-topic path (`super::write`).
pub(super) const QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Requests waiting for the writer at most; past it a request waits for room.
const QUEUED_REQUESTS: usize = 1024;

impl Direct {
    pub(super) fn new(
        events_topic: String,
        correlation: CorrelationConfig,
        topology: Arc<Topology>,
    ) -> Self {
        Direct {
            events_topic,
            correlation,
            topology,
            partitions: tokio::sync::OnceCell::new(),
            writer: tokio::sync::OnceCell::new(),
        }
    }

    /// Partitions of `topics.events` (read once; a failure is tried again on the next request).
    pub(super) async fn partitions(&self, producer: &KafkaProducer) -> Result<i32, String> {
        self.partitions
            .get_or_try_init(|| async {
                let (producer, topic) = (producer.clone(), self.events_topic.clone());
                let n = tokio::task::spawn_blocking(move || -> Result<usize, KafkaError> {
                    let md = producer.client().fetch_metadata(
                        Some(&topic),
                        Timeout::After(std::time::Duration::from_secs(5)),
                    )?;
                    Ok(md.topics().first().map_or(0, |t| t.partitions().len()))
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
                match i32::try_from(n) {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!(
                        "topic `{}` has no partitions yet",
                        self.events_topic
                    )),
                }
            })
            .await
            .copied()
    }

    /// The events of one payload by partition, as JSON array elements of [`RoutedEvent`] joined
    /// by commas. `None` when one event alone is over `max_bytes`: the payload then takes the
    /// raw topic, where the ingest stage dead-letters that event.
    pub(super) fn fragments(
        &self,
        events: Vec<Event>,
        topology: &Topology,
        partitions: i32,
        max_bytes: usize,
    ) -> Option<Vec<(i32, Vec<u8>)>> {
        let mut by: std::collections::BTreeMap<i32, Vec<u8>> = Default::default();
        for event in events {
            let domain = crate::correlate::route::domain(topology, &self.correlation, &event);
            let p = partition_of(&domain, partitions);
            let routed = RoutedEvent {
                origin: None,
                event,
            };
            let json = serde_json::to_vec(&routed).expect("events always serialise");
            if json.len() + crate::config::RECORD_KEY_ROOM > max_bytes {
                return None;
            }
            let buf = by.entry(p).or_default();
            if !buf.is_empty() {
                buf.push(b',');
            }
            buf.extend_from_slice(&json);
        }
        Some(by.into_iter().collect())
    }

    /// Hands one payload's `fragments` to the writer task and waits until the records holding
    /// them are acknowledged: their `(partition, offset)`s, or the first error (the other
    /// records may have been written).
    pub(super) async fn write(
        &self,
        producer: &KafkaProducer,
        fragments: Vec<(i32, Vec<u8>)>,
    ) -> Result<Vec<(i32, i64)>, KafkaError> {
        let writer = self
            .writer
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(QUEUED_REQUESTS);
                tokio::spawn(writer(producer.clone(), self.events_topic.clone(), rx));
                tx
            })
            .await;
        let (answer, answered) = oneshot::channel();
        let gone = || KafkaError::Canceled;
        writer.send((fragments, answer)).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// The writer task: takes every request waiting (no wait for more: requests that arrive while
/// a write is acknowledged form the next one), writes their events as one record per partition
/// (split at [`EVENTS_RECORD_BYTES`]), waits for the broker and answers each request with the
/// records holding its events. Concurrent requests so share records and broker round trips,
/// as the ingest stage's batches do.
async fn writer(producer: KafkaProducer, topic: String, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::new();
    while rx.recv_many(&mut jobs, QUEUED_REQUESTS).await > 0 {
        // Records by id (the order they were opened in), and the open one of each partition.
        let mut records: Vec<(i32, Vec<u8>)> = Vec::new();
        let mut open: std::collections::BTreeMap<i32, usize> = Default::default();
        let mut used: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
        for (fragments, _) in &jobs {
            let mut mine = Vec::with_capacity(fragments.len());
            for (p, elements) in fragments {
                let full = open
                    .get(p)
                    .is_some_and(|&id| records[id].1.len() + elements.len() > EVENTS_RECORD_BYTES);
                let id = match open.get(p) {
                    Some(&id) if !full => {
                        records[id].1.push(b',');
                        id
                    }
                    _ => {
                        records.push((*p, vec![b'[']));
                        open.insert(*p, records.len() - 1);
                        records.len() - 1
                    }
                };
                records[id].1.extend_from_slice(elements);
                mine.push(id);
            }
            used.push(mine);
        }
        for (_, buf) in &mut records {
            buf.push(b']');
        }
        let now = chrono::Utc::now().timestamp_millis();
        let result = send(&producer, &topic, &records, now).await;
        for ((_, answer), ids) in jobs.drain(..).zip(used) {
            let mine = match &result {
                Ok(written) => Ok(ids.iter().map(|&id| written[id]).collect()),
                Err(e) => Err(e.clone()),
            };
            let _ = answer.send(mine);
        }
    }
}

/// Writes `records` to `topic` and waits for the broker: their `(partition, offset)`s, or the
/// first error (the others may have been written).
async fn send(
    producer: &KafkaProducer,
    topic: &str,
    records: &[(i32, Vec<u8>)],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, KafkaError> {
    let sends = records.iter().map(|(p, payload)| {
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(*p)
            .payload(payload.as_slice())
            .timestamp(timestamp);
        producer.send(record, Timeout::After(QUEUE_TIMEOUT))
    });
    join_all(sends)
        .await
        .into_iter()
        .map(|r| r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::records::decode_events;

    fn event(name: &str, ci: &str) -> Event {
        let raw = serde_json::json!({"name": name, "ci": ci, "severity": "major",
            "status": "firing", "time": "2026-01-01T00:00:00Z", "source": "test"})
        .to_string();
        crate::ingest::parse(raw.as_bytes(), &crate::ingest::Limits::default())
            .unwrap()
            .1
            .remove(0)
    }

    #[test]
    fn events_are_routed_to_their_domain_partition_and_read_back_without_origin() {
        let topo = Arc::new(Topology::default());
        let correlation = CorrelationConfig {
            fallback_group_by: vec![],
            ..Default::default()
        };
        let d = Direct::new("e".into(), correlation, topo.clone());
        let events: Vec<Event> = (0..20).map(|i| event("A", &format!("h{i}"))).collect();
        let want: Vec<i32> = events
            .iter()
            .map(|e| partition_of(&topo.domain(e, &[]), 6))
            .collect();
        let frags = d.fragments(events.clone(), &topo, 6, 1 << 20).unwrap();
        let mut got = Vec::new();
        for (p, elements) in &frags {
            let payload = [b"[".as_slice(), elements, b"]"].concat();
            let (evs, rejected) = decode_events(&payload, None).unwrap();
            assert!(rejected.is_empty());
            for (e, origin) in evs {
                assert_eq!(origin, None);
                let i = events.iter().position(|x| *x == e).unwrap();
                assert_eq!(want[i], *p, "event {i} on the partition of its domain");
                got.push(i);
            }
        }
        got.sort_unstable();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_over_the_producer_limit_sends_the_payload_the_raw_way() {
        let topo = Arc::new(Topology::default());
        let correlation = CorrelationConfig {
            fallback_group_by: vec![],
            ..Default::default()
        };
        let d = Direct::new("e".into(), correlation, topo.clone());
        assert!(d.fragments(vec![event("A", "h")], &topo, 6, 1100).is_none());
    }
}
