//! Ingest: where a parser puts the events it builds, one at a time: kept (the ingest stage,
//! replay) or only counted (HTTP ingest, which answers with the count and writes the raw bytes),
//! under two checks that hold for every format alike:
//! - an event's time must be in the years d2c accepts (1970 to 9999, `time_out_of_range`), so
//!   no timer on it can overflow later, and at most [`Limits::max_ahead`] ahead of the wall
//!   clock the caller gives (`clock_ahead`), so it cannot move a correlation clock ahead;
//! - the events of one record may cost at most [`Limits::max_expansion`] times the record's size
//!   (`expansion_limit`): a small payload whose parts are copied into many events (a long
//!   `externalURL` into 10,000 alerts, an OTLP resource into every log record, deep ECS keys
//!   into every flattened name) is refused while it is being read, not after it filled memory.
//!
//! Costs are estimates of the heap an event holds (strings, map entries, JSON values with
//! their headers), computed as the event is handed over, so the check costs one walk over
//! what was just built.

use serde_json::Value;

use super::{Event, Format, IngestError, Limits};
use crate::model::in_range;

/// The budget every record has at least, however small: one event with its struct, a few
/// labels and a short description costs a few KiB.
const FLOOR_BYTES: usize = 64 << 10;

/// Estimated bytes of a map entry besides its key and value (tree node share, pointers).
const ENTRY_BYTES: usize = 32;

/// Where the events of one record go; see the module docs.
#[derive(Debug)]
pub(super) struct Sink {
    format: Format,
    /// The events, when they are kept.
    kept: Option<Vec<Event>>,
    count: usize,
    spent: usize,
    budget: usize,
    /// The latest event time accepted, when the record is checked against a wall clock.
    latest: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
    max_ahead: std::time::Duration,
}

impl Sink {
    /// A sink for a record of `size` bytes in `format` that keeps its events (`keep`) or only
    /// counts them.
    pub(super) fn new(format: Format, size: usize, limits: &Limits, keep: bool) -> Sink {
        Sink {
            format,
            kept: keep.then(Vec::new),
            count: 0,
            spent: 0,
            budget: size.saturating_mul(limits.max_expansion).max(FLOOR_BYTES),
            latest: limits
                .now
                .filter(|_| !limits.max_ahead.is_zero())
                .map(|now| (now, crate::model::later(now, limits.max_ahead))),
            max_ahead: limits.max_ahead,
        }
    }

    /// Takes one event: checks its time, charges its cost, keeps it or counts it.
    pub(super) fn push(&mut self, ev: Event) -> Result<(), IngestError> {
        if !in_range(ev.time) {
            return Err(IngestError::TimeOutOfRange {
                format: self.format,
                index: self.count,
                time: crate::model::format_rfc3339(ev.time).as_str().to_owned(),
            });
        }
        if let Some((now, latest)) = self.latest
            && ev.time > latest
        {
            let text = |t| crate::model::format_rfc3339(t).as_str().to_owned();
            return Err(IngestError::ClockAhead {
                format: self.format,
                index: self.count,
                time: text(ev.time),
                now: text(now),
                max: humantime::format_duration(self.max_ahead).to_string(),
            });
        }
        self.spend(event_cost(&ev))?;
        self.count += 1;
        if let Some(kept) = &mut self.kept {
            kept.push(ev);
        }
        Ok(())
    }

    /// Charges `bytes` built while reading the record (before they are in an event, e.g. ECS's
    /// flattened names) to its budget.
    pub(super) fn spend(&mut self, bytes: usize) -> Result<(), IngestError> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.budget {
            return Err(IngestError::ExpansionLimit {
                format: self.format,
                budget: self.budget,
            });
        }
        Ok(())
    }

    /// Room for `n` more events, when they are kept (a parser that knows how many come).
    pub(super) fn reserve(&mut self, n: usize) {
        if let Some(kept) = &mut self.kept {
            kept.reserve(n.min(1024));
        }
    }

    /// The events kept (none when only counted), and how many there were.
    pub(super) fn finish(self) -> (Vec<Event>, usize) {
        (self.kept.unwrap_or_default(), self.count)
    }
}

/// The estimated heap bytes of an event (see the module docs).
pub(super) fn event_cost(ev: &Event) -> usize {
    let text = |s: &str| s.len() + std::mem::size_of::<String>();
    let mut n = std::mem::size_of::<Event>()
        + ev.id.len()
        + ev.source.len()
        + ev.name.len()
        + ev.fingerprint.len()
        + ev.ci.as_deref().map_or(0, str::len);
    for (k, v) in &ev.labels {
        n += text(k) + text(v) + ENTRY_BYTES;
    }
    for (k, v) in &ev.attributes {
        n += text(k) + value_cost(v) + ENTRY_BYTES;
    }
    n
}

/// The estimated heap bytes of a JSON value, its own header included.
pub(super) fn value_cost(v: &Value) -> usize {
    let header = std::mem::size_of::<Value>();
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => header,
        Value::String(s) => header + s.len(),
        Value::Array(items) => header + items.iter().map(value_cost).sum::<usize>(),
        Value::Object(map) => {
            header
                + map
                    .iter()
                    .map(|(k, v)| {
                        k.len() + std::mem::size_of::<String>() + ENTRY_BYTES + value_cost(v)
                    })
                    .sum::<usize>()
        }
    }
}
