//! The one pass over a record's JSON that every parser starts from: a typed, lenient mirror of
//! the native, Alertmanager and Grafana payloads, filled by `serde_json` straight from the text,
//! which also notes the keys that identify the other formats (see "Second passes" below).
//!
//! Why typed structs and not `serde_json::Value`: the record is read once, with no intermediate
//! tree. Keys d2c does not use (Alertmanager's `groupLabels`, `commonLabels`, …) are skipped
//! without allocating, known keys are matched without allocating, and string values are moved
//! into the `Event` as they are. Going through `Value` would allocate every key and value of the
//! payload and then walk the tree a second time. Measured (release build, the Alertmanager
//! fixture of 1.8 kB with 3 alerts): this pass takes 3.9 µs where `serde_json::from_str::<Value>`
//! alone takes 5.6 µs; the whole `parse` to three `Event`s takes 9 µs.
//!
//! Why lenient: every field the parsers read keeps whatever JSON type it had ([`Text`],
//! [`Object`], [`Items`]), so a wrong type becomes an error that names the field
//! (`alerts[3].labels.team`) instead of serde's "invalid type at line 1 column 80". Only broken
//! JSON (and duplicate keys) fails the pass itself.
//!
//! Why arrays take a limit: an array keeps at most `max` elements and only counts the rest, so a
//! 1 MiB record of `[{},{},…]` cannot grow into hundreds of megabytes of structs before the
//! `too_many_events` check sees it.
//!
//! Second passes: PagerDuty, CloudEvents, Zabbix, OpenTelemetry, ECS and the security formats
//! (Falco, Suricata, Wazuh, OCSF) payloads share no keys
//! with the envelope worth mirroring here, and mirroring them would make every native and
//! Alertmanager record pay for their fields. So this pass only notes that their distinctive
//! top-level keys are there ([`Marks`], costing a flag and no allocation) and, for OTLP logs,
//! counts the log records without keeping them; the format's own parser then reads the text a
//! second time into its own lenient structs built from [`Text`], [`Object`] and [`Seq`]
//! ([`reread`]). Those formats pay one more pass; the two that carry many events per record
//! (a CloudEvents batch, OTLP) have been counted by this pass first, so the second pass never
//! builds more than `max_events_per_record` of them.
//!
//! Files: this one holds the pass itself ([`read`], [`Top`], [`Envelope`] and its seed);
//! `text.rs` the lenient scalars ([`Text`], [`TextMap`], [`Found`]); `visit.rs` the generic seeds
//! and visitors ([`Object`], [`Seq`], [`Items`], the counting seeds).

mod text;
mod visit;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use text::found_instead;
pub(super) use text::{Found, Text, TextMap};
use visit::{ArraySeed, CountSeed, ObjectSeed, collect};
pub(super) use visit::{Items, Object, Seq};

/// Reads one record. `max_items` caps the elements kept of the top-level array or of `alerts`.
pub(super) fn read(text: &str, max_items: usize) -> Result<Top, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopSeed { max_items }.deserialize(&mut de)?;
    de.end()?;
    Ok(top)
}

/// What a record is at its top level.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one Top per record, moved once; boxing would only add an allocation"
)]
pub(super) enum Top {
    Object(Envelope),
    /// A batch; elements are read as envelopes too, with their own `alerts` counted, not kept.
    Array(Items<Object<Envelope>>),
    Other(Found),
}

/// Every top-level key the native, Alertmanager and Grafana parsers read, and markers for the
/// keys that identify the other formats, so one pass serves detection and those parsers.
#[derive(Debug, Default)]
pub(super) struct Envelope {
    // native
    pub name: Option<Text>,
    pub time: Option<Text>,
    pub severity: Option<Text>,
    /// Native: the event's status. Alertmanager: the group's status.
    pub status: Option<Text>,
    pub ci: Option<Text>,
    pub source: Option<Text>,
    pub category: Option<Text>,
    pub fingerprint: Option<Text>,
    pub id: Option<Text>,
    pub labels: Option<Object<TextMap>>,
    pub attributes: Option<Object<BTreeMap<String, Value>>>,
    // alertmanager
    pub version: Option<Text>,
    pub group_key: Option<Text>,
    pub receiver: Option<Text>,
    pub external_url: Option<Text>,
    pub alerts: Option<Result<Items<Object<Alert>>, Found>>,
    // grafana
    pub org_id: Option<Text>,
    // the formats read in a second pass
    pub marks: Marks,
    /// OTLP logs: how many log records `resourceLogs[].scopeLogs[].logRecords[]` holds.
    pub log_records: Option<usize>,
}

/// Keys only one of the formats read in a second pass has at its top level: noted, not kept.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Marks {
    /// `specversion`: CloudEvents.
    pub specversion: bool,
    /// `routing_key` or `event_action`: PagerDuty Events API v2.
    pub pagerduty: bool,
    /// `@timestamp`: Elastic Common Schema.
    pub timestamp: bool,
    /// `event_id`, `event_name`, `event_value`, `event_status`, `event_severity`, `trigger_id`
    /// or `host_name`: a Zabbix webhook.
    pub zabbix: bool,
    /// `output_fields`: a Falco alert.
    pub falco: bool,
    /// `class_uid`: an OCSF event.
    pub ocsf: bool,
    /// `event_type`: a Suricata EVE record.
    pub suricata: bool,
    /// `manager` or `decoder`: with `rule`, a Wazuh alert.
    pub wazuh: bool,
    /// `rule`: Wazuh and ECS documents have it.
    pub rule: bool,
}

/// One element of an Alertmanager payload's `alerts`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Alert {
    pub status: Option<Text>,
    pub labels: Option<Object<TextMap>>,
    pub annotations: Option<Object<TextMap>>,
    pub starts_at: Option<Text>,
    pub ends_at: Option<Text>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<Text>,
    pub fingerprint: Option<Text>,
    // grafana
    #[serde(rename = "silenceURL")]
    pub silence_url: Option<Text>,
    #[serde(rename = "dashboardURL")]
    pub dashboard_url: Option<Text>,
    #[serde(rename = "panelURL")]
    pub panel_url: Option<Text>,
    pub values: Option<Value>,
    pub value_string: Option<Text>,
}

/// Reads `text` again, into the lenient structs of a format this pass only noted.
pub(super) fn reread<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

// ---- Envelope ----

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Key {
    Name,
    Time,
    Severity,
    Status,
    Ci,
    Source,
    Category,
    Fingerprint,
    Id,
    Labels,
    Attributes,
    Version,
    #[serde(rename = "groupKey")]
    Group,
    Receiver,
    #[serde(rename = "externalURL")]
    ExternalUrl,
    Alerts,
    #[serde(rename = "orgId")]
    OrgId,
    #[serde(rename = "specversion")]
    SpecVersion,
    #[serde(rename = "routing_key")]
    PagerDutyRouting,
    #[serde(rename = "event_action")]
    PagerDutyAction,
    #[serde(rename = "resourceLogs")]
    ResourceLogs,
    #[serde(rename = "@timestamp")]
    Timestamp,
    #[serde(rename = "event_id")]
    ZabbixEventId,
    #[serde(rename = "event_name")]
    ZabbixEventName,
    #[serde(rename = "event_value")]
    ZabbixEventValue,
    #[serde(rename = "event_status")]
    ZabbixEventStatus,
    #[serde(rename = "event_severity")]
    ZabbixEventSeverity,
    #[serde(rename = "trigger_id")]
    ZabbixTriggerId,
    #[serde(rename = "host_name")]
    ZabbixHostName,
    #[serde(rename = "output_fields")]
    FalcoOutputFields,
    #[serde(rename = "class_uid")]
    OcsfClassUid,
    #[serde(rename = "event_type")]
    SuricataEventType,
    #[serde(rename = "manager")]
    WazuhManager,
    #[serde(rename = "decoder")]
    WazuhDecoder,
    #[serde(rename = "rule")]
    Rule,
    #[serde(other)]
    Other,
}

/// Reads an envelope; `max_items` caps the `alerts` kept (0 in batch elements, where `alerts`
/// means nothing and must not cost memory).
#[derive(Clone, Copy)]
struct EnvelopeSeed {
    max_items: usize,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

/// Stores the value of a key, refusing a key seen twice as serde's derived structs do.
fn set<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    key: &'static str,
) -> Result<(), A::Error> {
    let value: Option<T> = map.next_value()?;
    if value.is_some() {
        if slot.is_some() {
            return Err(de::Error::duplicate_field(key));
        }
        *slot = value;
    }
    Ok(())
}

/// Notes that a key is there and skips its value; its own parser reads it in a second pass.
fn mark<'de, A: MapAccess<'de>>(map: &mut A, marker: &mut bool) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>()?;
    *marker = true;
    Ok(())
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut e = Envelope::default();
        while let Some(key) = map.next_key::<Key>()? {
            let m = &mut map;
            match key {
                Key::Name => set(m, &mut e.name, "name")?,
                Key::Time => set(m, &mut e.time, "time")?,
                Key::Severity => set(m, &mut e.severity, "severity")?,
                Key::Status => set(m, &mut e.status, "status")?,
                Key::Ci => set(m, &mut e.ci, "ci")?,
                Key::Source => set(m, &mut e.source, "source")?,
                Key::Category => set(m, &mut e.category, "category")?,
                Key::Fingerprint => set(m, &mut e.fingerprint, "fingerprint")?,
                Key::Id => set(m, &mut e.id, "id")?,
                Key::Labels => set(m, &mut e.labels, "labels")?,
                Key::Attributes => set(m, &mut e.attributes, "attributes")?,
                Key::Version => set(m, &mut e.version, "version")?,
                Key::Group => set(m, &mut e.group_key, "groupKey")?,
                Key::Receiver => set(m, &mut e.receiver, "receiver")?,
                Key::ExternalUrl => set(m, &mut e.external_url, "externalURL")?,
                Key::Alerts => {
                    if e.alerts.is_some() {
                        return Err(de::Error::duplicate_field("alerts"));
                    }
                    let element = PhantomData::<Object<Alert>>;
                    let max = self.max_items;
                    e.alerts = Some(map.next_value_seed(ArraySeed { element, max })?);
                }
                Key::OrgId => set(m, &mut e.org_id, "orgId")?,
                Key::ResourceLogs => {
                    if e.log_records.is_some() {
                        return Err(de::Error::duplicate_field("resourceLogs"));
                    }
                    let records = map.next_value_seed(CountSeed(&["scopeLogs", "logRecords"]))?;
                    e.log_records = Some(records);
                }
                Key::SpecVersion => mark(m, &mut e.marks.specversion)?,
                Key::PagerDutyRouting | Key::PagerDutyAction => mark(m, &mut e.marks.pagerduty)?,
                Key::Timestamp => mark(m, &mut e.marks.timestamp)?,
                Key::ZabbixEventId
                | Key::ZabbixEventName
                | Key::ZabbixEventValue
                | Key::ZabbixEventStatus
                | Key::ZabbixEventSeverity
                | Key::ZabbixTriggerId
                | Key::ZabbixHostName => mark(m, &mut e.marks.zabbix)?,
                Key::FalcoOutputFields => mark(m, &mut e.marks.falco)?,
                Key::OcsfClassUid => mark(m, &mut e.marks.ocsf)?,
                Key::SuricataEventType => mark(m, &mut e.marks.suricata)?,
                Key::WazuhManager | Key::WazuhDecoder => mark(m, &mut e.marks.wazuh)?,
                Key::Rule => mark(m, &mut e.marks.rule)?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

// ---- Top ----

struct TopSeed {
    max_items: usize,
}

impl TopSeed {
    fn wrong(found: Found) -> Top {
        Top::Other(found)
    }
}

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
        let max_items = self.max_items;
        EnvelopeSeed { max_items }.visit_map(map).map(Top::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
        let element = ObjectSeed(EnvelopeSeed { max_items: 0 });
        collect(seq, element, self.max_items).map(Top::Array)
    }

    found_instead!(string number boolean null);
}

#[cfg(test)]
mod tests;
