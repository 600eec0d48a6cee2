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

use crate::model::Event;
use crate::pipeline::kafka::KafkaProducer;
use crate::pipeline::records::{EVENTS_RECORD_BYTES, RoutedEvent, partition_of};
use crate::topology::Topology;

/// What the one-hop path needs besides the producer.
#[derive(Debug)]
pub(super) struct Direct {
    pub(super) events_topic: String,
    /// `correlation.fallback_group_by`, as the ingest stage uses it.
    pub(super) fallback: Vec<String>,
    /// The service model when no view gives the one the engines use now.
    pub(super) topology: Arc<Topology>,
    /// Partitions of `topics.events`, read from the broker on first use.
    partitions: tokio::sync::OnceCell<i32>,
}

impl Direct {
    pub(super) fn new(
        events_topic: String,
        fallback: Vec<String>,
        topology: Arc<Topology>,
    ) -> Self {
        Direct {
            events_topic,
            fallback,
            topology,
            partitions: tokio::sync::OnceCell::new(),
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

    /// The events records of `events`, by partition, each a JSON array of [`RoutedEvent`] of
    /// at most about [`EVENTS_RECORD_BYTES`]. `None` when one event alone is over `max_bytes`:
    /// the payload then takes the raw topic, where the ingest stage dead-letters that event.
    pub(super) fn records(
        &self,
        events: Vec<Event>,
        topology: &Topology,
        partitions: i32,
        max_bytes: usize,
    ) -> Option<Vec<(i32, Vec<u8>)>> {
        let mut open: std::collections::BTreeMap<i32, Vec<u8>> = Default::default();
        let mut closed = Vec::new();
        for event in events {
            let res = topology.resolve(&event);
            let p = partition_of(&topology.domain(&event, &res, &self.fallback), partitions);
            let routed = RoutedEvent {
                origin: None,
                event,
            };
            let json = serde_json::to_vec(&routed).expect("events always serialise");
            if json.len() + crate::config::RECORD_KEY_ROOM > max_bytes {
                return None;
            }
            let buf = open.entry(p).or_default();
            if buf.len() > 1 && buf.len() + json.len() > EVENTS_RECORD_BYTES {
                closed.push((p, close(std::mem::take(buf))));
            }
            buf.push(if buf.is_empty() { b'[' } else { b',' });
            buf.extend_from_slice(&json);
        }
        closed.extend(open.into_iter().map(|(p, buf)| (p, close(buf))));
        Some(closed)
    }

    /// Writes `records` and waits for the broker: their `(partition, offset)`s, or the first
    /// error (the others may have been written).
    pub(super) async fn send(
        &self,
        producer: &KafkaProducer,
        records: &[(i32, Vec<u8>)],
        timestamp: i64,
        queue_timeout: std::time::Duration,
    ) -> Result<Vec<(i32, i64)>, KafkaError> {
        let sends = records.iter().map(|(p, payload)| {
            let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.events_topic)
                .partition(*p)
                .payload(payload.as_slice())
                .timestamp(timestamp);
            producer.send(record, Timeout::After(queue_timeout))
        });
        join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
            .collect()
    }
}

/// Ends a JSON array of events started with `[`.
fn close(mut buf: Vec<u8>) -> Vec<u8> {
    buf.push(b']');
    buf
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
        let d = Direct::new("e".into(), vec![], topo.clone());
        let events: Vec<Event> = (0..20).map(|i| event("A", &format!("h{i}"))).collect();
        let want: Vec<i32> = events
            .iter()
            .map(|e| partition_of(&topo.domain(e, &topo.resolve(e), &[]), 6))
            .collect();
        let recs = d.records(events.clone(), &topo, 6, 1 << 20).unwrap();
        let mut got = Vec::new();
        for (p, payload) in &recs {
            let (evs, rejected) = decode_events(payload, None).unwrap();
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
        let d = Direct::new("e".into(), vec![], topo.clone());
        assert!(d.records(vec![event("A", "h")], &topo, 6, 1100).is_none());
    }
}
