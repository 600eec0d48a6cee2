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
//! `payload.rs` is the one JSON pass they share. [`parse`] detects the format; [`parse_as`] is for callers that
//! already know it (HTTP ingest).
//!
//! Order of checks, cheapest first: size ([`Limits::max_record_bytes`], before any parsing),
//! UTF-8, emptiness, one JSON pass into typed structs, format detection, the number of events
//! ([`Limits::max_events_per_record`]), then each event's fields (for the formats `payload.rs`
//! only notes, after a second pass over the text). A record is all or nothing: one bad event in
//! a batch sends the whole record to the DLQ, so no part of it is lost silently.
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
mod falco;
mod grafana;
mod native;
mod ocsf;
mod otel;
mod pagerduty;
mod payload;
mod suricata;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_formats;
#[cfg(test)]
mod tests_security;
mod wazuh;
mod zabbix;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use crate::model::Event;
use crate::model::{Category, DlqRecord, StableHasher, Status, format_rfc3339, parse_rfc3339};
use payload::{Envelope, Object, Text, TextMap, Top};

/// An input format d2c reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// d2c's own JSON event, or an array of them; its fields are documented in `native.rs`.
    Native,
    /// Prometheus Alertmanager's webhook payload, version 4.
    Alertmanager,
    /// Grafana alerting's webhook payload (version 1): Alertmanager's, with a few more keys.
    Grafana,
    /// A PagerDuty Events API v2 alert event (trigger, acknowledge or resolve).
    PagerDuty,
    /// A CloudEvents 1.0 event in JSON (structured mode), or a JSON batch of them.
    CloudEvents,
    /// A Zabbix webhook media type's parameters, as a JSON object.
    Zabbix,
    /// OpenTelemetry log records, OTLP's JSON encoding (`resourceLogs`).
    Otel,
    /// An Elastic Common Schema alert document (Kibana alerting, Elastic Security).
    Ecs,
    /// A Falco alert in Falco's JSON output.
    Falco,
    /// A Suricata EVE JSON record (alerts become events; other event types are skipped).
    Suricata,
    /// A Wazuh alert as written to `alerts.json`.
    Wazuh,
    /// An OCSF Detection Finding (class 2004).
    Ocsf,
}

impl Format {
    /// Every format d2c reads.
    pub const ALL: [Format; 12] = [
        Format::Native,
        Format::Alertmanager,
        Format::Grafana,
        Format::PagerDuty,
        Format::CloudEvents,
        Format::Zabbix,
        Format::Otel,
        Format::Ecs,
        Format::Falco,
        Format::Suricata,
        Format::Wazuh,
        Format::Ocsf,
    ];

    /// The name used in URLs (`POST /api/v1/events/{format}`), metrics labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Alertmanager => "alertmanager",
            Format::Grafana => "grafana",
            Format::PagerDuty => "pagerduty",
            Format::CloudEvents => "cloudevents",
            Format::Zabbix => "zabbix",
            Format::Otel => "otel",
            Format::Ecs => "ecs",
            Format::Falco => "falco",
            Format::Suricata => "suricata",
            Format::Wazuh => "wazuh",
            Format::Ocsf => "ocsf",
        }
    }

    /// The format with this name (as [`as_str`](Self::as_str) gives it, any letter case).
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds on what one record may cost; what exceeds them goes to the DLQ.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Records larger than this are refused before parsing (`oversize`). Default: 1 MiB.
    pub max_record_bytes: usize,
    /// Records carrying more events than this (a native or CloudEvents batch, an Alertmanager
    /// or Grafana group, OTLP log records) are refused (`too_many_events`). Default: 10,000.
    pub max_events_per_record: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1 << 20,
            max_events_per_record: 10_000,
        }
    }
}

/// Why a record could not become events. The message is written for the person reading the
/// DLQ: it names the field, what was expected and what to do.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The bytes are not UTF-8; `offset` is where the first invalid byte is.
    #[error(
        "the record is not UTF-8 text (invalid byte at offset {offset}); \
         d2c reads JSON encoded as UTF-8"
    )]
    NotUtf8 { offset: usize },

    /// The text is not one JSON document (syntax error, trailing text, a key given twice).
    #[error("the record is not valid JSON: {detail}; send exactly one JSON document per record")]
    MalformedJson { detail: String },

    /// The record is longer than [`Limits::max_record_bytes`]; nothing of it was read.
    #[error(
        "the record is {size} bytes, over the limit of {limit} bytes; split the payload into \
         smaller records or raise ingest.max_record_bytes"
    )]
    Oversize { size: usize, limit: usize },

    /// A required field is absent, `null` or `""`; `field` is its path, e.g. `[2].time`.
    #[error("{format} payload: {field} is missing; {hint}", hint = missing_hint(*.format, .field))]
    MissingField { format: Format, field: String },

    /// A field has the wrong JSON type or a value outside its set; `detail` says what was
    /// expected and what was found.
    #[error("{format} payload: {field} is invalid: {detail}")]
    InvalidValue {
        format: Format,
        field: String,
        detail: String,
    },

    /// Detection found no format; `found` says what the record is instead.
    #[error(
        "the record is {found}, which is no format d2c reads; send a native event (a JSON object \
         with name and time) or an array of them, an Alertmanager or Grafana webhook payload (an \
         object with alerts and version), a PagerDuty event (event_action), a CloudEvent \
         (specversion) or an array of them, a Zabbix webhook (event_value or event_status), OTLP \
         JSON logs (resourceLogs), an ECS alert (@timestamp), a Falco alert (output_fields), a \
         Suricata EVE record (event_type), a Wazuh alert (rule and manager) or an OCSF \
         Detection Finding (class_uid)"
    )]
    UnknownFormat { found: &'static str },

    /// More events than [`Limits::max_events_per_record`] in one record.
    #[error(
        "{format} payload: the record carries {count} events, over the limit of {limit} per record; \
         {hint}",
        hint = match .format {
            Format::Alertmanager => "set max_alerts in the Alertmanager webhook_config \
                                     or raise ingest.max_events_per_record",
            Format::Otel => "lower the exporter's batch size (send_batch_max_size of the \
                             collector's batch processor) or raise ingest.max_events_per_record",
            Format::Native | Format::CloudEvents => {
                "send smaller batches or raise ingest.max_events_per_record"
            }
            Format::Grafana
            | Format::PagerDuty
            | Format::Zabbix
            | Format::Ecs
            | Format::Falco
            | Format::Suricata
            | Format::Wazuh
            | Format::Ocsf => {
                "raise ingest.max_events_per_record"
            }
        }
    )]
    TooManyEvents {
        format: Format,
        count: usize,
        limit: usize,
    },
}

impl IngestError {
    /// Every value [`IngestError::reason`] can return: the label set of the DLQ metric.
    pub const REASONS: [&'static str; 7] = [
        "not_utf8",
        "malformed_json",
        "oversize",
        "missing_field",
        "invalid_value",
        "unknown_format",
        "too_many_events",
    ];

    /// The format the record was detected as, when detection got that far.
    pub fn format(&self) -> Option<Format> {
        match self {
            IngestError::MissingField { format, .. }
            | IngestError::InvalidValue { format, .. }
            | IngestError::TooManyEvents { format, .. } => Some(*format),
            _ => None,
        }
    }

    /// The machine-readable reason, stable for DLQ records and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::NotUtf8 { .. } => "not_utf8",
            IngestError::MalformedJson { .. } => "malformed_json",
            IngestError::Oversize { .. } => "oversize",
            IngestError::MissingField { .. } => "missing_field",
            IngestError::InvalidValue { .. } => "invalid_value",
            IngestError::UnknownFormat { .. } => "unknown_format",
            IngestError::TooManyEvents { .. } => "too_many_events",
        }
    }

    /// The DLQ record for the payload `raw` that failed with this error.
    pub fn to_dlq_record(&self, raw: &[u8]) -> DlqRecord {
        DlqRecord {
            reason: self.reason().to_owned(),
            detail: self.to_string(),
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

/// What to do about a missing field, by the field's last path segment.
fn missing_hint(format: Format, field: &str) -> &'static str {
    let last = field.rsplit(['.', ']']).next().unwrap_or(field);
    match (format, last) {
        (Format::Native, "name") => "every native event needs a name, e.g. \"HighErrorRate\"",
        (Format::Native, "time") => {
            "every native event needs a time, an RFC 3339 timestamp such as 2026-11-28T10:00:00Z"
        }
        (Format::Alertmanager | Format::Grafana, "alertname") => {
            "every alert needs an alertname label"
        }
        (Format::Alertmanager | Format::Grafana, "alerts") => {
            "a webhook payload carries its alerts in an array named alerts"
        }
        (Format::Alertmanager | Format::Grafana, "startsAt") => {
            "a firing alert needs startsAt, the RFC 3339 time it started"
        }
        (Format::Alertmanager | Format::Grafana, "endsAt") => {
            "a resolved alert needs endsAt (or startsAt), an RFC 3339 timestamp"
        }
        (Format::PagerDuty, "timestamp") => {
            "d2c orders events by the time they happened and cannot invent one: set \
             payload.timestamp (RFC 3339) on every event, acknowledge and resolve included"
        }
        (Format::PagerDuty, "dedup_key") => {
            "acknowledge and resolve events name the alert they update by its dedup_key"
        }
        (Format::PagerDuty, "event_action") => {
            "set event_action to trigger, acknowledge or resolve"
        }
        (Format::PagerDuty, "summary" | "source" | "severity") => {
            "a trigger event needs payload.summary, payload.source and payload.severity"
        }
        (Format::CloudEvents, "time") => {
            "d2c needs the time of the occurrence: set the CloudEvents attribute time (RFC 3339)"
        }
        (Format::CloudEvents, "id" | "source" | "type" | "specversion") => {
            "id, source, type and specversion are required CloudEvents attributes"
        }
        (Format::Zabbix, "event_id") => "add the webhook parameter event_id = {EVENT.ID}",
        (Format::Zabbix, "event_name") => "add the webhook parameter event_name = {EVENT.NAME}",
        (Format::Zabbix, "event_value") => {
            "add the webhook parameter event_value = {EVENT.VALUE} (1 problem, 0 recovery)"
        }
        (Format::Zabbix, "event_date" | "event_time") => {
            "add the webhook parameters event_date = {EVENT.DATE} and event_time = {EVENT.TIME}"
        }
        (Format::Otel, "timeUnixNano") => {
            "a log record needs timeUnixNano or observedTimeUnixNano, nanoseconds since 1970"
        }
        (Format::Otel, "body") => {
            "name the log record with an event.name attribute, eventName, or a string body"
        }
        (Format::Ecs, "@timestamp") => "every ECS document needs @timestamp, an RFC 3339 time",
        (Format::Ecs, "name") => "an ECS alert is named by rule.name or kibana.alert.rule.name",
        (Format::Ecs, "kind") => {
            "d2c reads ECS alerts: set event.kind to alert (or signal), or send a Kibana alert \
             with its kibana.alert fields"
        }
        (Format::Falco, "rule" | "time") => {
            "Falco's JSON output has rule and time; send the alert as Falco writes it"
        }
        (Format::Suricata, "signature" | "alert") => {
            "an EVE alert record carries alert.signature; send eve.json lines as they are"
        }
        (Format::Suricata | Format::Wazuh, "timestamp") => {
            "every record needs timestamp, e.g. 2026-11-28T10:00:00.000000+0000"
        }
        (Format::Wazuh, "description") => {
            "a Wazuh alert names its rule in rule.description; send alerts.json lines as they are"
        }
        (Format::Ocsf, "title") => {
            "a Detection Finding is named by finding_info.title or finding_info.analytic.name"
        }
        (Format::Ocsf, "time") => "set time, milliseconds since 1970, or time_dt (RFC 3339)",
        (Format::Ocsf, "class_uid") => "a Detection Finding has class_uid 2004",
        _ => "add it to the payload",
    }
}

/// Detects the format of `raw` and parses it. Never panics on any input.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<(Format, Vec<Event>), IngestError> {
    let (text, top) = read(raw, limits)?;
    let format = detect(&top)?;
    Ok((format, events(format, top, text, limits)?))
}

/// Parses `raw` as `format`, without detection (HTTP ingest `POST /api/v1/events/{format}`).
/// Never panics on any input.
pub fn parse_as(format: Format, raw: &[u8], limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let (text, top) = read(raw, limits)?;
    events(format, top, text, limits)
}

/// `text` is the record again, for the formats that read it a second time.
fn events(
    format: Format,
    top: Top,
    text: &str,
    limits: &Limits,
) -> Result<Vec<Event>, IngestError> {
    match format {
        Format::Native => native::events(top, limits),
        Format::Alertmanager => alertmanager::events(top, limits),
        Format::Grafana => grafana::events(top, limits),
        Format::PagerDuty => pagerduty::events(text, limits),
        Format::CloudEvents => cloudevents::events(&top, text, limits),
        Format::Zabbix => zabbix::events(text, limits),
        Format::Otel => otel::events(&top, text, limits),
        Format::Ecs => ecs::events(text, limits),
        Format::Falco => falco::events(text, limits),
        Format::Suricata => suricata::events(text, limits),
        Format::Wazuh => wazuh::events(text, limits),
        Format::Ocsf => ocsf::events(text, limits),
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

fn detect(top: &Top) -> Result<Format, IngestError> {
    let unknown = |found| Err(IngestError::UnknownFormat { found });
    match top {
        Top::Object(e) if e.alerts.is_some() => {
            if e.org_id.is_some() || e.version.as_ref().is_some_and(grafana::is_version) {
                Ok(Format::Grafana)
            } else if e.version.is_some() || e.group_key.is_some() {
                Ok(Format::Alertmanager)
            } else {
                unknown("a JSON object with alerts but neither version nor groupKey")
            }
        }
        Top::Object(e) => object_format(e).map_or_else(
            || unknown("a JSON object with none of the keys that identify a format"),
            Ok,
        ),
        Top::Array(a) if a.total == 0 => Ok(Format::Native),
        Top::Array(a) => {
            let any = |f: fn(&Envelope) -> bool| a.items.iter().any(|o| o.0.as_ref().is_ok_and(f));
            if any(|e| e.marks.specversion) {
                Ok(Format::CloudEvents)
            } else if any(looks_native) {
                Ok(Format::Native)
            } else {
                unknown(
                    "a JSON array with no event object (a native event with name and time, or \
                     a CloudEvent with specversion) in it",
                )
            }
        }
        Top::Other(found) => unknown(found.json()),
    }
}

/// The format of an object without `alerts`, by the order the module docs give.
fn object_format(e: &Envelope) -> Option<Format> {
    let marks = &e.marks;
    Some(if marks.specversion {
        Format::CloudEvents
    } else if marks.pagerduty {
        Format::PagerDuty
    } else if e.log_records.is_some() {
        Format::Otel
    } else if marks.falco {
        Format::Falco
    } else if marks.ocsf {
        Format::Ocsf
    } else if looks_native(e) {
        Format::Native
    } else if marks.suricata {
        Format::Suricata
    } else if marks.rule && marks.wazuh {
        Format::Wazuh
    } else if marks.timestamp {
        Format::Ecs
    } else if marks.zabbix {
        Format::Zabbix
    } else {
        return None;
    })
}

/// Has a key only native events have, and not the key only Alertmanager payloads have.
fn looks_native(e: &Envelope) -> bool {
    e.alerts.is_none() && (e.name.is_some() || e.time.is_some())
}

/// Where in a payload an event's fields are, so errors can name them (`alerts[3].startsAt`).
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    format: Format,
    /// The array holding the event (`alerts`, or `""` for a native batch) and its index.
    item: Option<(&'a str, usize)>,
}

impl<'a> At<'a> {
    fn top(format: Format) -> At<'a> {
        At { format, item: None }
    }

    fn item(format: Format, array: &'a str, index: usize) -> At<'a> {
        At {
            format,
            item: Some((array, index)),
        }
    }

    /// The path of `field` (`"name"`, `"[2].name"`, `"alerts[2].labels"`); `""` is the item.
    fn path(self, field: &str) -> String {
        match (self.item, field) {
            (None, "") => "the top level".to_owned(),
            (None, _) => field.to_owned(),
            (Some((array, i)), "") => format!("{array}[{i}]"),
            (Some((array, i)), _) => format!("{array}[{i}].{field}"),
        }
    }

    fn missing(self, field: &str) -> IngestError {
        IngestError::MissingField {
            format: self.format,
            field: self.path(field),
        }
    }

    fn invalid(self, field: &str, detail: String) -> IngestError {
        IngestError::InvalidValue {
            format: self.format,
            field: self.path(field),
            detail,
        }
    }

    fn too_many(self, count: usize, limits: &Limits) -> Result<(), IngestError> {
        if count <= limits.max_events_per_record {
            return Ok(());
        }
        Err(IngestError::TooManyEvents {
            format: self.format,
            count,
            limit: limits.max_events_per_record,
        })
    }

    /// An optional string field; the empty string counts as absent.
    fn string(self, field: &str, value: Option<Text>) -> Result<Option<String>, IngestError> {
        match value.map(Text::into_string) {
            None => Ok(None),
            Some(Ok(s)) => Ok(Some(s).filter(|s| !s.is_empty())),
            Some(Err(found)) => {
                Err(self.invalid(field, format!("expected a string, found {found}")))
            }
        }
    }

    fn required(self, field: &str, value: Option<Text>) -> Result<String, IngestError> {
        self.string(field, value)?
            .ok_or_else(|| self.missing(field))
    }

    /// An RFC 3339 timestamp, read as chrono's serde support reads `DateTime<Utc>`.
    fn time(self, field: &str, value: Option<Text>) -> Result<Option<DateTime<Utc>>, IngestError> {
        let expected = "expected an RFC 3339 timestamp such as 2026-11-28T10:00:00Z";
        match value.map(Text::into_string) {
            None => Ok(None),
            Some(Ok(s)) => match parse_rfc3339(&s) {
                Ok(t) => Ok(Some(t)),
                Err(e) => Err(self.invalid(field, format!("{expected}, found {s:?} ({e})"))),
            },
            Some(Err(found)) => Err(self.invalid(field, format!("{expected}, found {found}"))),
        }
    }

    /// A string-to-string map (labels, annotations); numbers and booleans become their text.
    fn labels(
        self,
        field: &str,
        value: Option<Object<TextMap>>,
    ) -> Result<BTreeMap<String, String>, IngestError> {
        match value {
            None => Ok(BTreeMap::new()),
            Some(Object(Ok(TextMap {
                bad: Some((k, found)),
                ..
            }))) => {
                let detail = format!("expected a string, found {found}");
                Err(self.invalid(&format!("{field}.{k}"), detail))
            }
            Some(Object(Ok(TextMap { map, bad: None }))) => Ok(map),
            Some(Object(Err(found))) => {
                let detail = format!("expected an object of string values, found {found}");
                Err(self.invalid(field, detail))
            }
        }
    }

    /// An optional status word; see [`status_word`].
    fn status(self, field: &str, value: Option<Text>) -> Result<Option<Status>, IngestError> {
        let Some(word) = self.string(field, value)? else {
            return Ok(None);
        };
        match status_word(&word) {
            Some(status) => Ok(Some(status)),
            None => Err(self.invalid(
                field,
                format!("expected firing, resolved, problem or ok, found {word:?}"),
            )),
        }
    }
}

/// The status words tools use: `firing`/`problem` and `resolved`/`ok`, any letter case.
fn status_word(word: &str) -> Option<Status> {
    match word.trim().to_ascii_lowercase().as_str() {
        "firing" | "problem" => Some(Status::Firing),
        "resolved" | "ok" => Some(Status::Resolved),
        _ => None,
    }
}

/// A category by its lowercase name, any letter case.
fn category_word(word: &str) -> Option<Category> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "availability" => Category::Availability,
        "performance" => Category::Performance,
        "capacity" => Category::Capacity,
        "security" => Category::Security,
        "change" => Category::Change,
        "other" => Category::Other,
        _ => return None,
    })
}

/// The id of an event that brought none: the same alert, time and status give the same id, so
/// a record consumed twice gives the same event twice, which dedup recognises.
fn event_id(fingerprint: &str, time: DateTime<Utc>, status: Status) -> String {
    let status = match status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    };
    let mut h = StableHasher::default();
    h.part(fingerprint)
        .part(format_rfc3339(time).as_str())
        .part(status);
    h.hex()
}

/// The fingerprint of an alert whose tool gave none: a hash of `parts` (the format's name and
/// what names the alert, e.g. name and ci) and `k=v` for each label in key order. The same as
/// `stable_hash` of those strings, without building them.
fn derived_fingerprint(parts: &[&str], labels: &BTreeMap<String, String>) -> String {
    let mut h = StableHasher::default();
    for part in parts {
        h.part(part);
    }
    for (k, v) in labels {
        h.part_of(&[k, "=", v]);
    }
    h.hex()
}
