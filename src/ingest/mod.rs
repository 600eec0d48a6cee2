//! Ingest, the stateless first stage: the raw bytes of one Kafka record become normalised
//! [`Event`]s, or an [`IngestError`] whose [`reason`](IngestError::reason) and message go to the
//! DLQ with the original bytes. No input makes it panic.
//!
//! One file per format, each documenting its field mapping: `native.rs` (d2c's own JSON),
//! `alertmanager.rs` (the Prometheus Alertmanager webhook, version 4), `grafana.rs` (Grafana's
//! alerting webhook, read by the Alertmanager parser), `pagerduty.rs` (PagerDuty Events API v2),
//! `cloudevents.rs` (CloudEvents 1.0, JSON), `zabbix.rs` (a Zabbix webhook), `otel.rs`
//! (OpenTelemetry logs, OTLP JSON) and `ecs.rs` (Elastic Common Schema alerts, security ones
//! with `threat.*` too); the security tools `falco.rs` (Falco JSON output), `suricata.rs`
//! (Suricata EVE alerts), `wazuh.rs` (Wazuh alerts) and `ocsf.rs` (OCSF Detection Findings),
//! which share `detection.rs` (the labels and ATT&CK attribute every security event carries);
//! `payload/` is the one JSON pass they share. [`parse`] detects the format; [`parse_as`] is for
//! callers that already know it (HTTP ingest). Around them: `format.rs` ([`Format`] and its
//! detection, by the rules below), `error.rs` ([`IngestError`], its DLQ reasons and hints) and
//! `fields.rs` (the field reader every parser uses, and the ids and fingerprints they derive).
//!
//! Order of checks, cheapest first: size ([`Limits::max_record_bytes`], before any parsing),
//! UTF-8, emptiness, one JSON pass into typed structs, format detection, the number of events
//! ([`Limits::max_events_per_record`]), then each event's fields (for the formats `payload/`
//! only notes, after a second pass over the text), and as each event is built, its time (years
//! 1970 to 9999, and at most [`Limits::max_ahead`] ahead of the caller's wall clock) and what
//! the events cost so far ([`Limits::max_expansion`] times the record's size; `sink.rs`). A record is all or nothing: one bad event in a batch sends the whole
//! record to the DLQ, so no part of it is lost silently. A panic while parsing (a bug) is
//! caught: the record goes to the DLQ with reason `internal_error`.
//!
//! Detection, from the top-level keys, first match wins:
//! - an object with `alerts` is a Grafana payload if it has `orgId` or `version` `"1"`, an
//!   Alertmanager payload if it has another `version` or `groupKey`;
//! - an object with `specversion` is a CloudEvent;
//! - an object with `routing_key` or `event_action` is a PagerDuty event;
//! - an object with `resourceLogs` is an OTLP logs payload;
//! - an object with `output_fields` is a Falco alert, one with `class_uid` an OCSF event (both
//!   before native: they have `time` too);
//! - an object that has `name` or `time` is a native event (a missing or bad field then gets an
//!   error naming it, rather than "unknown format");
//! - an object with `@timestamp` is an ECS document (after native, because log shippers add
//!   `@timestamp` to whatever they forward, native events included);
//!   before it: an object with `event_type` is a Suricata EVE record, and one with `rule` and
//!   `manager` or `decoder` a Wazuh alert (ECS documents have `rule` and `agent`, not those);
//! - an object with `event_id`, `event_name`, `event_value`, `event_status`, `event_severity`,
//!   `trigger_id` or `host_name` is a Zabbix webhook payload;
//! - an array is a CloudEvents batch if an element has `specversion`, else a native batch if it
//!   is empty or holds at least one native-looking object;
//! - anything else is `unknown_format`.

mod alertmanager;
mod cloudevents;
mod detection;
mod ecs;
mod error;
mod falco;
mod fields;
mod format;
mod grafana;
mod native;
mod ocsf;
mod otel;
mod pagerduty;
mod payload;
mod sink;
mod suricata;
mod wazuh;
mod zabbix;

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Deserialize;

pub use crate::model::Event;
pub use error::IngestError;
use fields::{At, category_word, derived_fingerprint, event_id, status_word};
pub use format::Format;
use format::detect;
use payload::Top;
use sink::Sink;

/// Bounds on what one record may cost; what exceeds them goes to the DLQ.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Records larger than this are refused before parsing (`oversize`). Default: 1 MiB.
    pub max_record_bytes: usize,
    /// Records carrying more events than this (a native or CloudEvents batch, an Alertmanager
    /// or Grafana group, OTLP log records) are refused (`too_many_events`). Default: 10,000.
    pub max_events_per_record: usize,
    /// The events of one record may cost at most this many times the record's size (at least
    /// 64 KiB), estimated as they are built; past it the record is refused
    /// (`expansion_limit`). Default: 20.
    pub max_expansion: usize,
    /// A record with an event more than this ahead of [`now`](Self::now) is refused
    /// (`clock_ahead`); zero turns the check off. Default: 1 hour.
    pub max_ahead: std::time::Duration,
    /// The wall clock to measure [`max_ahead`](Self::max_ahead) against, set by the caller
    /// for each record or batch (the ingest stage, HTTP ingest); `None` (replay, which has no
    /// wall clock) checks nothing. Default: `None`.
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1 << 20,
            max_events_per_record: 10_000,
            max_expansion: 20,
            max_ahead: std::time::Duration::from_secs(3600),
            now: None,
        }
    }
}

/// Detects the format of `raw` and parses it. Never panics on any input.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<(Format, Vec<Event>), IngestError> {
    guarded(raw, || {
        let (text, top) = read(raw, limits)?;
        let format = detect(&top)?;
        let mut sink = Sink::new(format, raw.len(), limits, true);
        events(format, top, text, limits, &mut sink)?;
        Ok((format, sink.finish().0))
    })
}

/// Parses `raw` as `format`, without detection (HTTP ingest `POST /api/v1/events/{format}`).
/// Never panics on any input.
pub fn parse_as(format: Format, raw: &[u8], limits: &Limits) -> Result<Vec<Event>, IngestError> {
    run_as(format, raw, limits, true).map(|(events, _)| events)
}

/// How many events `raw` holds as `format`, with every check [`parse_as`] makes, but keeping
/// no event: each is dropped once checked (HTTP ingest, which writes the raw bytes and answers
/// with the count). Never panics on any input.
pub fn count_as(format: Format, raw: &[u8], limits: &Limits) -> Result<usize, IngestError> {
    run_as(format, raw, limits, false).map(|(_, count)| count)
}

fn run_as(
    format: Format,
    raw: &[u8],
    limits: &Limits,
    keep: bool,
) -> Result<(Vec<Event>, usize), IngestError> {
    guarded(raw, || {
        let (text, top) = read(raw, limits)?;
        let mut sink = Sink::new(format, raw.len(), limits, keep);
        events(format, top, text, limits, &mut sink)?;
        Ok(sink.finish())
    })
}

/// Runs `parse` with a panic caught: a bug in a parser sends the record to the DLQ
/// (`internal_error`) instead of stopping the stage on every restart.
fn guarded<T>(
    raw: &[u8],
    parse: impl FnOnce() -> Result<T, IngestError>,
) -> Result<T, IngestError> {
    catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "failpoints")]
        failpoint(raw);
        parse()
    }))
    .unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        tracing::error!(error = %detail, bytes = raw.len(), "a parser failed on a record (a bug, please report it); the record goes to the DLQ");
        Err(IngestError::Internal { detail })
    })
}

/// Test-only (feature `failpoints`): failpoint `ingest-parse` set to `return(TEXT)` makes
/// parsing a record that contains `TEXT` panic, as a bug would.
#[cfg(feature = "failpoints")]
fn failpoint(raw: &[u8]) {
    fail::fail_point!("ingest-parse", |text: Option<String>| {
        let text = text.unwrap_or_default();
        if raw.windows(text.len().max(1)).any(|w| w == text.as_bytes()) {
            panic!("failpoint ingest-parse: injected panic");
        }
    });
}

/// Puts the events of `raw` (as `format`) into `out`; `text` is the record again, for the
/// formats that read it a second time.
fn events(
    format: Format,
    top: Top,
    text: &str,
    limits: &Limits,
    out: &mut Sink,
) -> Result<(), IngestError> {
    let one = |out: &mut Sink, events: Vec<Event>| events.into_iter().try_for_each(|e| out.push(e));
    match format {
        Format::Native => native::events(top, limits, out),
        Format::Alertmanager => alertmanager::events(top, limits, out),
        Format::Grafana => grafana::events(top, limits, out),
        Format::CloudEvents => cloudevents::events(&top, text, limits, out),
        Format::Otel => otel::events(&top, text, limits, out),
        Format::Ecs => ecs::events(text, limits, out),
        // One event at most: nothing of the record is copied into more than one.
        Format::PagerDuty => one(out, pagerduty::events(text, limits)?),
        Format::Zabbix => one(out, zabbix::events(text, limits)?),
        Format::Falco => one(out, falco::events(text, limits)?),
        Format::Suricata => one(out, suricata::events(text, limits)?),
        Format::Wazuh => one(out, wazuh::events(text, limits)?),
        Format::Ocsf => one(out, ocsf::events(text, limits)?),
    }
}

/// The second pass of a format the first pass only noted: the record's text again, into `T`.
/// The first pass found the JSON valid, so only a key given twice deeper down can fail here.
fn reread<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, IngestError> {
    payload::reread(text).map_err(|e| IngestError::MalformedJson {
        detail: e.to_string(),
    })
}

/// Everything before the formats differ: size, encoding, emptiness, the one JSON pass. Returns
/// the text too, for the formats that read it a second time.
fn read<'r>(raw: &'r [u8], limits: &Limits) -> Result<(&'r str, Top), IngestError> {
    if raw.len() > limits.max_record_bytes {
        return Err(IngestError::Oversize {
            size: raw.len(),
            limit: limits.max_record_bytes,
        });
    }
    let text = std::str::from_utf8(raw).map_err(|e| IngestError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    // Editors on Windows like to start UTF-8 files with a byte order mark; JSON forbids it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(IngestError::UnknownFormat {
            found: "empty (no bytes, or only white space)",
        });
    }
    let top = payload::read(text, limits.max_events_per_record).map_err(|e| {
        IngestError::MalformedJson {
            detail: e.to_string(),
        }
    })?;
    Ok((text, top))
}

#[cfg(test)]
mod tests;
