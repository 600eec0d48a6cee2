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

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Reads one record. `max_items` caps the elements kept of the top-level array or of `alerts`.
pub(super) fn read(text: &str, max_items: usize) -> Result<Top, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopSeed { max_items }.deserialize(&mut de)?;
    de.end()?;
    Ok(top)
}

/// The JSON type a value had where another was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    String,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

impl Found {
    /// The type with "JSON" in it, for where the whole record is meant: "a JSON string".
    pub fn json(self) -> &'static str {
        match self {
            Found::String => "a JSON string",
            Found::Number => "a JSON number",
            Found::Boolean => "a JSON boolean",
            Found::Null => "JSON null",
            Found::Array => "a JSON array",
            Found::Object => "a JSON object",
        }
    }
}

/// As words for an error message: "a string", "null".
impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Found::String => "a string",
            Found::Number => "a number",
            Found::Boolean => "a boolean",
            Found::Null => "null",
            Found::Array => "an array",
            Found::Object => "an object",
        })
    }
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

/// A JSON value where a string (or another scalar) is expected, kept whatever it was.
/// A JSON `null` in an `Option<Text>` field reads as absent.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Text {
    Str(String),
    /// A number, as its JSON text.
    Number(String),
    Bool(bool),
    /// `null`, an array or an object.
    Other(Found),
}

impl Text {
    /// The string, or the JSON type found instead.
    pub fn into_string(self) -> Result<String, Found> {
        match self {
            Text::Str(s) => Ok(s),
            Text::Number(_) => Err(Found::Number),
            Text::Bool(_) => Err(Found::Boolean),
            Text::Other(found) => Err(found),
        }
    }

    /// The string, or a number or boolean as its JSON text (`8080`, `true`): label values that
    /// a hand-written producer sent unquoted still mean what they say.
    pub fn into_scalar(self) -> Result<String, Found> {
        match self {
            Text::Str(s) | Text::Number(s) => Ok(s),
            Text::Bool(b) => Ok(b.to_string()),
            Text::Other(found) => Err(found),
        }
    }
}

impl Text {
    /// A value taken out of a JSON tree (CloudEvents' `data`); `null` is absent, as in a struct.
    pub fn from_value(value: Value) -> Option<Text> {
        Some(match value {
            Value::Null => return None,
            Value::String(s) => Text::Str(s),
            Value::Number(n) => Text::Number(n.to_string()),
            Value::Bool(b) => Text::Bool(b),
            other => Text::Other(Found::of(&other)),
        })
    }
}

impl Found {
    /// The JSON type of a value taken out of a JSON tree.
    pub fn of(value: &Value) -> Found {
        match value {
            Value::Null => Found::Null,
            Value::Bool(_) => Found::Boolean,
            Value::Number(_) => Found::Number,
            Value::String(_) => Found::String,
            Value::Array(_) => Found::Array,
            Value::Object(_) => Found::Object,
        }
    }
}

/// A value where a JSON object is expected, or the JSON type found instead.
#[derive(Debug)]
pub(super) struct Object<T>(pub Result<T, Found>);

/// A value where a JSON array is expected: all its elements, or the JSON type found instead.
/// Only for second passes ([`reread`]), whose event arrays this pass has already counted.
#[derive(Debug)]
pub(super) struct Seq<T>(pub Result<Vec<T>, Found>);

/// Reads `text` again, into the lenient structs of a format this pass only noted.
pub(super) fn reread<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

/// The first elements of a JSON array, at most the cap given to the reader, and how many it had.
#[derive(Debug)]
pub(super) struct Items<T> {
    pub items: Vec<T>,
    pub total: usize,
}

/// Visitor methods that accept each listed JSON type as "found instead" (`Self::wrong`),
/// draining arrays and objects so the pass continues after them.
macro_rules! found_instead {
    ($($kind:ident)*) => { $(found_instead!(@ $kind);)* };
    (@ string) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::String))
        }
    };
    (@ number) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Number))
        }
    };
    (@ boolean) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Boolean))
        }
    };
    (@ null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Self::wrong(Found::Null))
        }
    };
    (@ array) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq)?;
            Ok(Self::wrong(Found::Array))
        }
    };
    (@ object) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_map(map)?;
            Ok(Self::wrong(Found::Object))
        }
    };
}

// ---- Text ----

struct TextVisitor;

impl TextVisitor {
    fn wrong(found: Found) -> Text {
        Text::Other(found)
    }
}

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text::Number(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text::Bool(v))
    }

    found_instead!(null array object);
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// A JSON object of scalars (labels, annotations), read straight into strings: numbers and
/// booleans become their text. The first key whose value is not a scalar is kept with the type
/// found, so the error can name it; reading goes on, as for [`Text`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TextMap {
    pub map: BTreeMap<String, String>,
    pub bad: Option<(String, Found)>,
}

impl TextMap {
    pub fn insert(&mut self, key: String, value: Text) {
        match value.into_scalar() {
            Ok(v) => {
                self.map.insert(key, v);
            }
            Err(found) => {
                // The first bad key in key order, as a map would list them.
                if self.bad.as_ref().is_none_or(|(k, _)| key < *k) {
                    self.bad = Some((key, found));
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for TextMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TextMap, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<TextMap, A::Error> {
                let mut out = TextMap::default();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Text = access.next_value()?;
                    out.insert(key, value);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

// ---- Object ----

/// Reads a JSON object with the inner seed, or notes the type found instead.
#[derive(Clone, Copy)]
struct ObjectSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for ObjectSeed<S> {
    type Value = Object<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<S> ObjectSeed<S> {
    fn wrong<T>(found: Found) -> Object<T> {
        Object(Err(found))
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for ObjectSeed<S> {
    type Value = Object<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0
            .deserialize(MapAccessDeserializer::new(map))
            .map(|v| Object(Ok(v)))
    }

    found_instead!(string number boolean null array);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectSeed(PhantomData::<T>).deserialize(d)
    }
}

// ---- Seq ----

struct SeqVisitor<T>(PhantomData<T>);

impl<T> SeqVisitor<T> {
    fn wrong(found: Found) -> Seq<T> {
        Seq(Err(found))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
    type Value = Seq<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Seq(Ok(items)))
    }

    found_instead!(string number boolean null object);
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SeqVisitor(PhantomData))
    }
}

// ---- Count ----

/// Counts, keeping nothing, the elements of the arrays reached from an array of objects through
/// the keys of `path`: `["scopeLogs", "logRecords"]` below OTLP's `resourceLogs` counts its log
/// records. A value of another shape counts nothing; the second pass names it.
#[derive(Clone, Copy)]
struct CountSeed(&'static [&'static str]);

impl CountSeed {
    fn wrong(_: Found) -> usize {
        0
    }
}

impl<'de> DeserializeSeed<'de> for CountSeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountSeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        match self.0.split_first() {
            None => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
            }
            Some((&key, rest)) => {
                let inner = CountBelowKey { key, rest };
                while let Some(n) = seq.next_element_seed(inner)? {
                    count = count.saturating_add(n);
                }
            }
        }
        Ok(count)
    }

    found_instead!(string number boolean null object);
}

/// In an object, counts what [`CountSeed`] counts under the value of `key`.
#[derive(Clone, Copy)]
struct CountBelowKey {
    key: &'static str,
    rest: &'static [&'static str],
}

impl CountBelowKey {
    fn wrong(_: Found) -> usize {
        0
    }
}

impl<'de> DeserializeSeed<'de> for CountBelowKey {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountBelowKey {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.key))? {
            if is_key {
                count = count.saturating_add(map.next_value_seed(CountSeed(self.rest))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(count)
    }

    found_instead!(string number boolean null array);
}

/// Whether an object key is the given one, compared without allocating.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

// ---- Items ----

/// Reads a JSON array, keeping at most `max` elements, or notes the type found instead.
struct ArraySeed<S> {
    element: S,
    max: usize,
}

impl<S> ArraySeed<S> {
    fn wrong<T>(found: Found) -> Result<Items<T>, Found> {
        Err(found)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for ArraySeed<S> {
    type Value = Result<Items<S::Value>, Found>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for ArraySeed<S> {
    type Value = Result<Items<S::Value>, Found>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        collect(seq, self.element, self.max).map(Ok)
    }

    found_instead!(string number boolean null object);
}

fn collect<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de> + Copy>(
    mut seq: A,
    element: S,
    max: usize,
) -> Result<Items<S::Value>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max).min(1024));
    let mut total = 0;
    loop {
        let more = if items.len() < max {
            seq.next_element_seed(element)?.map(|v| items.push(v))
        } else {
            seq.next_element::<IgnoredAny>()?.map(drop)
        };
        if more.is_none() {
            return Ok(Items { items, total });
        }
        total += 1;
    }
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
mod tests {
    use super::*;

    fn read_ok(text: &str) -> Top {
        read(text, 3).unwrap()
    }

    #[test]
    fn keeps_wrongly_typed_fields_with_their_type() {
        let Top::Object(e) = read_ok(r#"{"name":5,"time":null,"ci":[1],"labels":"x","alerts":{}}"#)
        else {
            panic!("expected an object")
        };
        assert_eq!(e.name, Some(Text::Number("5".into())));
        assert_eq!(e.time, None, "null reads as absent");
        assert_eq!(e.ci, Some(Text::Other(Found::Array)));
        assert!(matches!(e.labels, Some(Object(Err(Found::String)))));
        assert!(matches!(e.alerts, Some(Err(Found::Object))));
    }

    #[test]
    fn arrays_keep_at_most_the_cap_and_count_the_rest() {
        let Top::Array(items) = read_ok(r#"[{},{},1,{},{"name":"x"},[]]"#) else {
            panic!("expected an array")
        };
        assert_eq!(items.total, 6);
        assert_eq!(items.items.len(), 3);
        assert!(matches!(items.items[2], Object(Err(Found::Number))));
    }

    #[test]
    fn alerts_inside_batch_elements_are_counted_not_kept() {
        let Top::Array(items) = read_ok(r#"[{"alerts":[{},{}]}]"#) else {
            panic!("expected an array")
        };
        let Object(Ok(e)) = &items.items[0] else {
            panic!("expected an object")
        };
        let Some(Ok(alerts)) = &e.alerts else {
            panic!("expected alerts")
        };
        assert_eq!((alerts.items.len(), alerts.total), (0, 2));
    }

    #[test]
    fn other_formats_keys_are_marked_and_log_records_counted_not_kept() {
        let Top::Object(e) = read_ok(
            r#"{"specversion":"1.0","event_action":{"x":1},"@timestamp":null,"trigger_id":5,
                "resourceLogs":[{"scopeLogs":[{"logRecords":[{},{},1]},{"logRecords":"x"}]},
                                {"scopeLogs":[{"logRecords":[{}]}],"logRecords":[{}]},7]}"#,
        ) else {
            panic!("expected an object")
        };
        let m = e.marks;
        assert!(m.specversion && m.pagerduty && m.timestamp && m.zabbix);
        assert_eq!(
            e.log_records,
            Some(4),
            "only resourceLogs[].scopeLogs[].logRecords[]"
        );
        let Top::Object(e) = read_ok(r#"{"name":"x","orgId":1}"#) else {
            panic!("expected an object")
        };
        let m = e.marks;
        assert!(!(m.specversion || m.pagerduty || m.timestamp || m.zabbix));
        assert_eq!(
            (e.log_records, e.org_id),
            (None, Some(Text::Number("1".into())))
        );
        assert!(read(r#"{"resourceLogs":[],"resourceLogs":[]}"#, 3).is_err());
    }

    #[test]
    fn duplicate_keys_and_trailing_text_are_json_errors() {
        assert!(read(r#"{"name":"a","name":"b"}"#, 3).is_err());
        assert!(read(r#"{"alerts":[],"alerts":[]}"#, 3).is_err());
        assert!(read(r#"{"a":1} {"b":2}"#, 3).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(read(&deep, 3).is_err());
        let deep = format!("{{\"attributes\":{}", "{\"a\":".repeat(100_000));
        assert!(read(&deep, 3).is_err());
    }
}
