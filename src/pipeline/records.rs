//! The wire contract of `topics.events`, between the ingest stage (and the HTTP control
//! endpoints and the automation stage) that write it and the correlate stage that reads it:
//! batched event records with their raw origins, control records (tick, acknowledgement,
//! silence, decision, problem action, run report) carried in a header with an empty payload, and
//! the partition of a correlation domain. [`EventsRecord`]
//! decodes one record into what the engine takes ([`Input`]).

use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers};

use crate::engine::{Input, Origin};
use crate::model::{Ack, ChangeDecision, Event, ProblemAction, RunReport};
use crate::suppress::Silence;

/// Header on single-event `topics.events` records (the format before batches):
/// `<raw partition>/<raw offset>/<index in the record>`. Still read, no longer written.
pub const ORIGIN_HEADER: &str = "d2c.origin";

/// One event on `topics.events`, with the raw record it came from. A record on `topics.events`
/// is a JSON array of these, all of one partition, in the order ingest read them: one record
/// per partition per ingest batch (up to [`EVENTS_RECORD_BYTES`]), so the second broker hop
/// costs one record per batch rather than one per event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoutedEvent {
    /// The raw record the event came from; none for events HTTP ingest writes straight to
    /// `topics.events` (`ingest.http_direct`), which are never read again from a raw topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    pub event: crate::model::Event,
}

/// Header of a tick record on `topics.events` (empty JSON array payload): the RFC 3339 time
/// the correlation clock of that partition moves to. See `ingest.tick_interval`.
pub const TICK_HEADER: &str = "d2c.tick";

/// Header of an acknowledgement record on `topics.events` (empty JSON array payload): an
/// [`Ack`](crate::model::Ack) as JSON. Written to every partition by `POST /api/v1/incidents/{id}/ack`; the
/// partition whose engine has the incident applies it, the others ignore it.
pub const ACK_HEADER: &str = "d2c.ack";

/// Header of a silence record on `topics.events` (empty JSON array payload): a
/// [`Silence`](crate::suppress::Silence) as JSON, written to every partition by
/// `POST /api/v1/silences`; every engine adds it.
pub const SILENCE_HEADER: &str = "d2c.silence";

/// Header of a change decision record on `topics.events` (empty JSON array payload): a
/// [`ChangeDecision`](crate::model::ChangeDecision) as JSON. Written to every partition by
/// `POST /api/v1/changes/{id}/decision`; the partition whose engine raised the RFC publishes
/// its next version with the decision, the others ignore it.
pub const DECISION_HEADER: &str = "d2c.decision";

/// Header of a problem action record on `topics.events` (empty JSON array payload): a
/// [`ProblemAction`] as JSON. `POST /api/v1/problems` writes an `open` to the partition of the
/// problem's service (the engine that sees its incidents); known-error and resolve actions go
/// to every partition, and the engine that holds the problem applies them.
pub const PROBLEM_HEADER: &str = "d2c.problem";

/// Header of a run report record on `topics.events` (empty JSON array payload): a
/// [`RunReport`] as JSON, written to every partition by the automation stage; the engine that
/// raised the RFC publishes its next version.
pub const RUN_HEADER: &str = "d2c.run";

/// Events records are closed at about this size (below Kafka's default 1 MB record limit); an
/// event larger than this alone still makes one record of its own.
pub const EVENTS_RECORD_BYTES: usize = 256 * 1024;

/// The `topics.events` partition of correlation domain `domain`: a stable hash, so every
/// instance of d2c routes a domain to the same partition.
pub fn partition_of(domain: &str, partitions: i32) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(domain.as_bytes()) % partitions.max(1) as u64) as i32
}

/// An event of a batch with the raw record it came from (if the record says).
pub type EventWithOrigin = (crate::model::Event, Option<Origin>);

/// An element of an events batch that does not read as a [`RoutedEvent`]: dead-lettered alone,
/// the rest of the batch goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Position in the batch.
    pub index: usize,
    /// Why it does not read.
    pub error: String,
    /// The element's JSON text as it was in the record.
    pub raw: String,
}

/// The events of one `topics.events` record, with the elements that do not read: a batch (a
/// JSON array of [`RoutedEvent`], read element by element) or a single event with its origin in
/// [`ORIGIN_HEADER`] (records written before batches). Fails only when the record as a whole is
/// not JSON of that shape.
pub fn decode_events(
    payload: &[u8],
    header_origin: Option<Origin>,
) -> Result<(Vec<EventWithOrigin>, Vec<Rejected>), serde_json::Error> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        // Borrowed slices of the payload: each element is read on its own, and one that does
        // not read costs only its own dead letter.
        let elements: Vec<&serde_json::value::RawValue> = serde_json::from_slice(payload)?;
        let mut events = Vec::with_capacity(elements.len());
        let mut rejected = Vec::new();
        for (index, raw) in elements.into_iter().enumerate() {
            match serde_json::from_str::<RoutedEvent>(raw.get()) {
                Ok(r) => events.push((r.event, r.origin)),
                Err(e) => rejected.push(Rejected {
                    index,
                    error: e.to_string(),
                    raw: raw.get().to_string(),
                }),
            }
        }
        Ok((events, rejected))
    } else {
        Ok((
            vec![(serde_json::from_slice(payload)?, header_origin)],
            Vec::new(),
        ))
    }
}

/// DLQ reason of an events record (or an element of one) the correlate stage cannot read.
pub const UNDECODABLE_EVENT: &str = "undecodable_event";

/// The dead letter of an events record (or element) that does not read.
pub fn undecodable(detail: String, raw: String) -> crate::model::DlqRecord {
    crate::model::DlqRecord {
        reason: UNDECODABLE_EVENT.to_string(),
        detail,
        raw,
    }
}

/// One record of `topics.events`, decoded: a control record, or the events of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsRecord {
    Tick(DateTime<Utc>),
    Ack(Ack),
    Silence(Silence),
    Decision(ChangeDecision),
    Problem(ProblemAction),
    Run(RunReport),
    Events(Vec<(Event, Option<Origin>)>),
}

impl EventsRecord {
    /// Decodes a record read from `topics.events`, with the elements of its batch that do not
    /// read. A control header whose value does not read is passed over (the payload of a
    /// control record is an empty batch).
    pub fn decode(
        m: &BorrowedMessage<'_>,
    ) -> Result<(EventsRecord, Vec<Rejected>), serde_json::Error> {
        if let Some(control) = Self::control(m) {
            return Ok((control, Vec::new()));
        }
        let Some(payload) = m.payload() else {
            return Ok((EventsRecord::Events(Vec::new()), Vec::new()));
        };
        let (events, rejected) = decode_events(payload, origin(m))?;
        Ok((EventsRecord::Events(events), rejected))
    }

    /// The control record `m` carries in a header, if any.
    fn control(m: &BorrowedMessage<'_>) -> Option<EventsRecord> {
        if let Some(now) = header(m, TICK_HEADER)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|t| crate::model::parse_rfc3339(t).ok())
        {
            return Some(EventsRecord::Tick(now));
        }
        if let Some(s) = header_json(m, SILENCE_HEADER) {
            return Some(EventsRecord::Silence(s));
        }
        if let Some(a) = header_json(m, ACK_HEADER) {
            return Some(EventsRecord::Ack(a));
        }
        if let Some(d) = header_json(m, DECISION_HEADER) {
            return Some(EventsRecord::Decision(d));
        }
        if let Some(p) = header_json(m, PROBLEM_HEADER) {
            return Some(EventsRecord::Problem(p));
        }
        header_json(m, RUN_HEADER).map(EventsRecord::Run)
    }

    /// The engine inputs of this record, in order.
    pub fn inputs(&self) -> Vec<Input<'_>> {
        match self {
            EventsRecord::Tick(t) => vec![Input::Tick(*t)],
            EventsRecord::Ack(a) => vec![Input::Ack(a)],
            EventsRecord::Silence(s) => vec![Input::Silence(s)],
            EventsRecord::Decision(d) => vec![Input::Decision(d)],
            EventsRecord::Problem(p) => vec![Input::Problem(p)],
            EventsRecord::Run(r) => vec![Input::Run(r)],
            EventsRecord::Events(events) => {
                events.iter().map(|(ev, o)| Input::Event(ev, *o)).collect()
            }
        }
    }
}

/// The value of header `key`, if the record has it.
fn header<'a>(m: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a [u8]> {
    m.headers()?.iter().find(|h| h.key == key)?.value
}

/// The JSON value of header `key`, if the record has it and it reads as a `T`.
fn header_json<T: serde::de::DeserializeOwned>(m: &BorrowedMessage<'_>, key: &str) -> Option<T> {
    serde_json::from_slice(header(m, key)?).ok()
}

/// The raw origin of a single-event record, from its [`ORIGIN_HEADER`].
fn origin(m: &BorrowedMessage<'_>) -> Option<Origin> {
    let s = std::str::from_utf8(header(m, ORIGIN_HEADER)?).ok()?;
    let mut it = s.split('/');
    Some(Origin {
        partition: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
        index: it.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, Event, Severity, Status};

    fn event(name: &str) -> Event {
        Event {
            id: format!("id-{name}"),
            source: "native".into(),
            time: "2026-11-28T10:00:00Z".parse().unwrap(),
            ci: Some("db-1".into()),
            name: name.into(),
            severity: Severity::Major,
            status: Status::Firing,
            category: Category::Availability,
            fingerprint: format!("fp-{name}"),
            labels: Default::default(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_batch_record_gives_its_events_in_order_with_their_origins() {
        let batch: Vec<RoutedEvent> = (0..3)
            .map(|i| RoutedEvent {
                origin: Some(Origin {
                    partition: 2,
                    offset: 40 + i,
                    index: 0,
                }),
                event: event(&format!("e{i}")),
            })
            .collect();
        let payload = serde_json::to_vec(&batch).unwrap();
        let (decoded, rejected) = decode_events(&payload, None).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(decoded.len(), 3);
        for (i, (ev, origin)) in decoded.iter().enumerate() {
            assert_eq!(ev, &batch[i].event);
            assert_eq!(origin.unwrap().offset, 40 + i as i64);
        }
    }

    #[test]
    fn a_single_event_record_takes_its_origin_from_the_header() {
        let payload = serde_json::to_vec(&event("one")).unwrap();
        let origin = Origin {
            partition: 1,
            offset: 7,
            index: 3,
        };
        let (decoded, _) = decode_events(&payload, Some(origin)).unwrap();
        assert_eq!(decoded, vec![(event("one"), Some(origin))]);
        assert!(decode_events(b"{\"not\":\"an event\"}", None).is_err());
        assert!(decode_events(b"[{\"a\":1}", None).is_err());
    }

    #[test]
    fn one_bad_element_of_a_batch_is_rejected_alone_and_the_rest_kept() {
        let good = |i: i64| RoutedEvent {
            origin: Some(Origin {
                partition: 0,
                offset: i,
                index: 0,
            }),
            event: event(&format!("e{i}")),
        };
        let payload = format!(
            "[{},{{\"not\":\"routed\"}},{}]",
            serde_json::to_string(&good(1)).unwrap(),
            serde_json::to_string(&good(2)).unwrap()
        );
        let (events, rejected) = decode_events(payload.as_bytes(), None).unwrap();
        assert_eq!(events.len(), 2, "the good elements survive");
        assert_eq!(events[1].0, good(2).event);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 1);
        assert_eq!(rejected[0].raw, "{\"not\":\"routed\"}");
        assert!(
            rejected[0].error.contains("missing field"),
            "{}",
            rejected[0].error
        );
    }

    #[test]
    fn a_domain_always_goes_to_the_same_partition_within_range() {
        for d in ["shop", "ci:host-1", "", "payments"] {
            let p = partition_of(d, 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_of(d, 6));
        }
        assert_eq!(
            partition_of("x", 0),
            0,
            "no panic on a topic without partitions"
        );
    }
}
