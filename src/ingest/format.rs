//! Ingest: which format a record is, by the top-level keys the first JSON pass noted, in the
//! order the module docs give, and the names formats go by in URLs, metrics and messages.

use std::fmt;

use super::IngestError;
use super::grafana;
use super::payload::{Envelope, Top};

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

pub(super) fn detect(top: &Top) -> Result<Format, IngestError> {
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
