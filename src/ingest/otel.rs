//! OpenTelemetry log records in OTLP's JSON encoding, the body of `POST /v1/logs` (an
//! `ExportLogsServiceRequest`): `resourceLogs[].scopeLogs[].logRecords[]`, one event per log
//! record. Structure: <https://github.com/open-telemetry/opentelemetry-proto/blob/main/examples/logs.json>
//! and `opentelemetry/proto/logs/v1/logs.proto`; JSON rules (camelCase keys, 64-bit integers
//! as strings, enums as numbers): <https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>;
//! severities: <https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-severitynumber>.
//!
//! | OTLP | becomes |
//! |---|---|
//! | `timeUnixNano` | `time` (nanoseconds since 1970, a string or a number); when absent or `0`, `observedTimeUnixNano`; one is required |
//! | `severityNumber` | 21–24 (FATAL) critical, 17–20 (ERROR) major, 13–16 (WARN) warning, 1–12 (INFO, DEBUG, TRACE) info; when absent or 0, `severityText` read loosely (`error`, `warn`, …), else info |
//! | attribute `event.name` | `name`; else the record's `eventName`; else the first line of a string `body`, at most 120 characters. One is required |
//! | attribute `d2c.status` | `status`: `firing`/`problem` or `resolved`/`ok`. Default firing: a log record reports that something happened |
//! | resource `host.name` | `ci` |
//! | resource `service.name` | label `service` |
//! | resource `service.namespace`, `deployment.environment`, `deployment.environment.name` | labels of those names |
//! | the record's `attributes` | attributes under their keys, values as JSON (`intValue` a number, `kvlistValue` an object, …) |
//! | `body`, `severityText`, `traceId`, `spanId`, scope `name` | attributes `body`, `severityText`, `traceId`, `spanId`, `scope` |
//! | all resource attributes | attribute `resource`, an object: in key order, as many as fit in 16 KiB ([`MAX_RESOURCE_COPY`]); when some do not, `d2c.omitted_attributes` counts them |
//!
//! The resource is copied into the event of every log record below it, hence the 16 KiB: a
//! large resource over thousands of records would make a small payload expand a thousandfold.
//!
//! Only those few resource attributes are labels because labels make the fingerprint (a hash of
//! `otel`, name, ci and labels): a process id or instance id there would make every restart a
//! new alert. Category is availability.
//!
//! Second pass: `payload.rs` counts the log records while skipping `resourceLogs`, so a record
//! with more than `max_events_per_record` of them is refused before anything is built; this
//! parser then reads the text again into [`LogsData`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::payload::{Object, Seq, Text, Top};
use super::sink::{Sink, value_cost};
use super::{
    At, Event, Format, IngestError, Limits, derived_fingerprint, event_id, reread, status_word,
};
use crate::model::{Category, Severity, Status};

/// The longest name taken from a log body, in characters.
const MAX_BODY_NAME: usize = 120;

/// Most bytes (estimated, as `ingest.max_expansion` counts them) of resource attributes copied
/// into each log record's event.
pub(super) const MAX_RESOURCE_COPY: usize = 16 << 10;

/// Resource attributes that become labels (besides `service.name`, which becomes `service`).
const RESOURCE_LABELS: [&str; 3] = [
    "service.namespace",
    "deployment.environment",
    "deployment.environment.name",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LogsData {
    resource_logs: Option<Seq<Object<ResourceLogs>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ResourceLogs {
    resource: Option<Object<Resource>>,
    scope_logs: Option<Seq<Object<ScopeLogs>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resource {
    attributes: Option<Seq<Object<KeyValue>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ScopeLogs {
    scope: Option<Object<Scope>>,
    log_records: Option<Seq<Object<LogRecord>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Scope {
    name: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LogRecord {
    time_unix_nano: Option<Text>,
    observed_time_unix_nano: Option<Text>,
    severity_number: Option<Text>,
    severity_text: Option<Text>,
    body: Option<Object<AnyValue>>,
    attributes: Option<Seq<Object<KeyValue>>>,
    trace_id: Option<Text>,
    span_id: Option<Text>,
    event_name: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyValue {
    key: Option<Text>,
    value: Option<Object<AnyValue>>,
}

/// OTLP's `AnyValue`: exactly one of these is set (none: an empty value).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<Text>,
    bool_value: Option<Text>,
    int_value: Option<Text>,
    double_value: Option<Text>,
    bytes_value: Option<Text>,
    array_value: Option<Object<Values<AnyValue>>>,
    kvlist_value: Option<Object<Values<KeyValue>>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct Values<T> {
    #[serde(default = "Option::default")]
    values: Option<Seq<Object<T>>>,
}

/// The elements of an `arrayValue` or `kvlistValue` (`field`), or what was wrong with it.
fn values_of<T>(field: &str, v: Object<Values<T>>) -> Result<Vec<Object<T>>, String> {
    match v {
        Object(Ok(Values { values: None })) => Ok(Vec::new()),
        Object(Ok(Values {
            values: Some(Seq(Ok(values))),
        })) => Ok(values),
        Object(Ok(Values {
            values: Some(Seq(Err(found))),
        })) => Err(format!("{field}.values: expected an array, found {found}")),
        Object(Err(found)) => Err(format!("{field}: expected an object, found {found}")),
    }
}

/// What every record of one `resourceLogs` element shares.
struct Shared {
    ci: Option<String>,
    labels: BTreeMap<String, String>,
    resource: Map<String, Value>,
}

pub(super) fn events(
    top: &Top,
    text: &str,
    limits: &Limits,
    out: &mut Sink,
) -> Result<(), IngestError> {
    let at = At::top(Format::Otel);
    let count = match top {
        Top::Object(e) => e.log_records.ok_or_else(|| at.missing("resourceLogs"))?,
        Top::Array(_) => return Err(not_logs(at, "an array")),
        Top::Other(found) => return Err(not_logs(at, &found.to_string())),
    };
    // Counted by the first pass: the second never builds more records than the limit allows.
    at.too_many(count, limits)?;
    // The records' structs are held while events are built from them: both count.
    out.spend(count.saturating_mul(std::mem::size_of::<Object<LogRecord>>()))?;
    let resource_logs = match reread::<Object<LogsData>>(text)? {
        Object(Ok(LogsData {
            resource_logs: Some(Seq(Ok(r))),
        })) => r,
        Object(Ok(LogsData {
            resource_logs: Some(Seq(Err(found))),
        })) => {
            let detail = format!("expected an array, found {found}");
            return Err(at.invalid("resourceLogs", detail));
        }
        Object(Ok(LogsData {
            resource_logs: None,
        })) => return Err(at.missing("resourceLogs")),
        Object(Err(found)) => return Err(not_logs(at, &found.to_string())),
    };
    out.reserve(count);
    for (r, Object(rl)) in resource_logs.into_iter().enumerate() {
        let path = format!("resourceLogs[{r}]");
        let rl =
            rl.map_err(|found| at.invalid(&path, format!("expected an object, found {found}")))?;
        let shared = shared(at, &path, rl.resource)?;
        for (s, Object(sl)) in seq(at, &format!("{path}.scopeLogs"), rl.scope_logs)?.enumerate() {
            let path = format!("{path}.scopeLogs[{s}]");
            let sl = sl
                .map_err(|found| at.invalid(&path, format!("expected an object, found {found}")))?;
            let scope = match sl.scope {
                Some(Object(Ok(scope))) => at.string(&format!("{path}.scope.name"), scope.name)?,
                Some(Object(Err(found))) => {
                    let detail = format!("expected an object, found {found}");
                    return Err(at.invalid(&format!("{path}.scope"), detail));
                }
                None => None,
            };
            let array = format!("{path}.logRecords");
            for (i, Object(record)) in seq(at, &array, sl.log_records)?.enumerate() {
                let at = At::item(Format::Otel, &array, i);
                let record = record.map_err(|found| {
                    at.invalid("", format!("expected a log record object, found {found}"))
                })?;
                out.push(event(record, at, &shared, scope.as_deref())?)?;
            }
        }
    }
    Ok(())
}

fn not_logs(at: At, found: &str) -> IngestError {
    let detail =
        format!("expected a JSON object with resourceLogs (OTLP JSON logs), found {found}");
    at.invalid("", detail)
}

/// The elements of an optional array at `path`; absent is empty.
fn seq<T>(at: At, path: &str, value: Option<Seq<T>>) -> Result<std::vec::IntoIter<T>, IngestError> {
    match value {
        None => Ok(Vec::new().into_iter()),
        Some(Seq(Ok(items))) => Ok(items.into_iter()),
        Some(Seq(Err(found))) => Err(at.invalid(path, format!("expected an array, found {found}"))),
    }
}

fn shared(at: At, path: &str, resource: Option<Object<Resource>>) -> Result<Shared, IngestError> {
    let attributes = match resource {
        None => None,
        Some(Object(Ok(resource))) => resource.attributes,
        Some(Object(Err(found))) => {
            let detail = format!("expected an object, found {found}");
            return Err(at.invalid(&format!("{path}.resource"), detail));
        }
    };
    let resource = key_values(at, &format!("{path}.resource.attributes"), attributes)?;
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut labels = BTreeMap::new();
    if let Some(service) = text("service.name") {
        labels.insert("service".to_owned(), service);
    }
    for key in RESOURCE_LABELS {
        if let Some(value) = text(key) {
            labels.insert(key.to_owned(), value);
        }
    }
    Ok(Shared {
        ci: text("host.name").filter(|h| !h.is_empty()),
        labels,
        resource: capped(resource),
    })
}

/// The resource attributes copied into each event: in key order, as many as fit in
/// [`MAX_RESOURCE_COPY`]; the rest are counted in `d2c.omitted_attributes`.
fn capped(resource: Map<String, Value>) -> Map<String, Value> {
    let mut spent = 0;
    let mut omitted = 0u64;
    let mut kept = Map::new();
    for (key, value) in resource {
        let cost = key.len() + value_cost(&value);
        if spent + cost <= MAX_RESOURCE_COPY {
            spent += cost;
            kept.insert(key, value);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        kept.insert("d2c.omitted_attributes".to_owned(), Value::from(omitted));
    }
    kept
}

fn event(r: LogRecord, at: At, shared: &Shared, scope: Option<&str>) -> Result<Event, IngestError> {
    let time = match nanos(at, "timeUnixNano", r.time_unix_nano)? {
        Some(t) => t,
        None => nanos(at, "observedTimeUnixNano", r.observed_time_unix_nano)?
            .ok_or_else(|| at.missing("timeUnixNano"))?,
    };
    let severity_text = at.string("severityText", r.severity_text)?;
    let severity = match r.severity_number.map(Text::into_scalar) {
        None => None,
        Some(Ok(n)) => match n.parse::<i64>() {
            Ok(0) => None,
            Ok(1..=12) => Some(Severity::Info),
            Ok(13..=16) => Some(Severity::Warning),
            Ok(17..=20) => Some(Severity::Major),
            Ok(21..=24) => Some(Severity::Critical),
            _ => {
                let detail = format!("expected a number from 0 to 24, found {n:?}");
                return Err(at.invalid("severityNumber", detail));
            }
        },
        Some(Err(found)) => {
            let detail = format!("expected a number from 0 to 24, found {found}");
            return Err(at.invalid("severityNumber", detail));
        }
    };
    let severity = severity
        .or_else(|| severity_text.as_deref().and_then(Severity::parse_loose))
        .unwrap_or(Severity::Info);
    let mut attributes = key_values(at, "attributes", r.attributes)?;
    let body = match r.body {
        None => None,
        Some(Object(Ok(body))) => Some(any_value(body).map_err(|d| at.invalid("body", d))?),
        Some(Object(Err(found))) => {
            return Err(at.invalid(
                "body",
                format!("expected an AnyValue object, found {found}"),
            ));
        }
    };
    let event_name = at.string("eventName", r.event_name)?;
    let name = match attributes.get("event.name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => event_name
            .or_else(|| match &body {
                Some(Value::String(body)) => body_name(body),
                _ => None,
            })
            .ok_or_else(|| at.missing("body"))?,
    };
    let status = match attributes.get("d2c.status") {
        None => Status::Firing,
        Some(value) => value.as_str().and_then(status_word).ok_or_else(|| {
            let detail = format!("expected firing, resolved, problem or ok, found {value}");
            at.invalid("attributes.d2c.status", detail)
        })?,
    };
    let ci = shared.ci.clone();
    let labels = shared.labels.clone();
    let fingerprint = derived_fingerprint(&["otel", &name, ci.as_deref().unwrap_or("")], &labels);
    let texts = [
        ("severityText", severity_text),
        ("traceId", at.string("traceId", r.trace_id)?),
        ("spanId", at.string("spanId", r.span_id)?),
        ("scope", scope.map(str::to_owned)),
    ];
    for (key, value) in texts {
        if let Some(value) = value {
            attributes.insert(key.to_owned(), Value::String(value));
        }
    }
    if let Some(body) = body {
        attributes.insert("body".to_owned(), body);
    }
    if !shared.resource.is_empty() {
        attributes.insert(
            "resource".to_owned(),
            Value::Object(shared.resource.clone()),
        );
    }
    Ok(Event {
        id: event_id(&fingerprint, time, status),
        source: Format::Otel.as_str().to_owned(),
        time,
        ci,
        name,
        severity,
        status,
        category: Category::default(),
        fingerprint,
        labels,
        attributes: attributes.into_iter().collect(),
    })
}

/// A `*UnixNano` field: nanoseconds since 1970 as a string or a number; `0` is unknown.
fn nanos(at: At, field: &str, value: Option<Text>) -> Result<Option<DateTime<Utc>>, IngestError> {
    let expected = "expected nanoseconds since 1970 such as \"1795860000000000000\"";
    match value.map(Text::into_scalar) {
        None => Ok(None),
        Some(Ok(n)) => match n.parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => match i64::try_from(n) {
                Ok(n) => Ok(Some(DateTime::from_timestamp_nanos(n))),
                Err(_) => Err(at.invalid(field, format!("{expected}, found {n} (after 2262)"))),
            },
            Err(_) => Err(at.invalid(field, format!("{expected}, found {n:?}"))),
        },
        Some(Err(found)) => Err(at.invalid(field, format!("{expected}, found {found}"))),
    }
}

/// The first line of a log body, at most [`MAX_BODY_NAME`] characters; `None` if blank.
fn body_name(body: &str) -> Option<String> {
    let line = body.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MAX_BODY_NAME).collect())
}

/// OTLP `attributes` (`[{"key": …, "value": {…}}]`) as a JSON object; `path` names the array.
fn key_values(
    at: At,
    path: &str,
    value: Option<Seq<Object<KeyValue>>>,
) -> Result<Map<String, Value>, IngestError> {
    let mut map = Map::new();
    for (j, Object(kv)) in seq(at, path, value)?.enumerate() {
        let kv = kv.map_err(|found| {
            let detail = format!("expected a {{\"key\", \"value\"}} object, found {found}");
            at.invalid(&format!("{path}[{j}]"), detail)
        })?;
        let (key, value) =
            key_value(kv).map_err(|detail| at.invalid(&format!("{path}[{j}]"), detail))?;
        map.insert(key, value);
    }
    Ok(map)
}

fn key_value(kv: KeyValue) -> Result<(String, Value), String> {
    let key = match kv.key.map(Text::into_string) {
        Some(Ok(key)) if !key.is_empty() => key,
        Some(Err(found)) => return Err(format!("key: expected a string, found {found}")),
        _ => return Err("key is missing".to_owned()),
    };
    let value = match kv.value {
        None => Value::Null,
        Some(Object(Ok(value))) => any_value(value).map_err(|d| format!("value: {d}"))?,
        Some(Object(Err(found))) => {
            return Err(format!("value: expected an AnyValue object, found {found}"));
        }
    };
    Ok((key, value))
}

/// An `AnyValue` as the JSON value it stands for; the error says what was wrong.
fn any_value(v: AnyValue) -> Result<Value, String> {
    let scalar = |name: &str, text: Text| {
        text.into_scalar()
            .map_err(|found| format!("{name}: expected a scalar, found {found}"))
    };
    if let Some(s) = v.string_value {
        return s
            .into_string()
            .map(Value::String)
            .map_err(|found| format!("stringValue: expected a string, found {found}"));
    }
    if let Some(b) = v.bool_value {
        return match b {
            Text::Bool(b) => Ok(Value::Bool(b)),
            Text::Str(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            other => Err(format!(
                "boolValue: expected true or false, found {other:?}"
            )),
        };
    }
    if let Some(n) = v.int_value {
        let n = scalar("intValue", n)?;
        return n
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("intValue: expected an integer, found {n:?}"));
    }
    if let Some(n) = v.double_value {
        let n = scalar("doubleValue", n)?;
        // "NaN" and "Infinity" have no JSON number: kept as the text.
        return Ok(n
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::String(n), Value::Number));
    }
    if let Some(b) = v.bytes_value {
        return scalar("bytesValue", b).map(Value::String);
    }
    if let Some(array) = v.array_value {
        let values = values_of("arrayValue", array)?;
        return values
            .into_iter()
            .map(|Object(v)| {
                v.map_err(|found| format!("arrayValue: expected AnyValue objects, found {found}"))
                    .and_then(any_value)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(kvlist) = v.kvlist_value {
        let values = values_of("kvlistValue", kvlist)?;
        return values
            .into_iter()
            .map(|Object(kv)| {
                kv.map_err(|found| {
                    format!("kvlistValue: expected key-value objects, found {found}")
                })
                .and_then(key_value)
            })
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object);
    }
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::ingest::parse;

    fn logs(records: &str) -> String {
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"checkout"}}}},
                {{"key":"host.name","value":{{"stringValue":"node-7"}}}},
                {{"key":"process.pid","value":{{"intValue":"4242"}}}}]}},
              "scopeLogs":[{{"scope":{{"name":"app"}},"logRecords":[{records}]}}]}}]}}"#
        )
    }

    fn events(records: &str) -> Result<Vec<Event>, IngestError> {
        let (format, events) = parse(logs(records).as_bytes(), &Limits::default())?;
        assert_eq!(format, Format::Otel);
        Ok(events)
    }

    fn one(record: &str) -> Event {
        let [e] = <[Event; 1]>::try_from(events(record).unwrap()).unwrap();
        e
    }

    #[test]
    fn severity_numbers_map_by_range() {
        let sev = |n: &str| {
            one(&format!(
                r#"{{"timeUnixNano":"1795860000000000000","severityNumber":{n},"body":{{"stringValue":"x"}}}}"#
            ))
            .severity
        };
        for (n, expected) in [
            ("24", Severity::Critical),
            ("21", Severity::Critical),
            ("17", Severity::Major),
            ("\"20\"", Severity::Major),
            ("13", Severity::Warning),
            ("12", Severity::Info),
            ("1", Severity::Info),
        ] {
            assert_eq!(sev(n), expected, "{n}");
        }
        let e = one(
            r#"{"observedTimeUnixNano":"1795860000000000000","severityText":"ERROR","body":{"stringValue":"x"}}"#,
        );
        assert_eq!(e.severity, Severity::Major, "severityText when no number");
        assert_eq!(
            e.time,
            Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap(),
            "observed time when no time"
        );
    }

    #[test]
    fn name_status_ci_and_labels() {
        let e = one(
            r#"{"timeUnixNano":"1795860000000000000","timeUnixNano2":"ignored",
                "body":{"stringValue":"payment failed\nstack..."},
                "attributes":[{"key":"event.name","value":{"stringValue":"payment.failed"}},
                              {"key":"d2c.status","value":{"stringValue":"resolved"}},
                              {"key":"n","value":{"intValue":"3"}},
                              {"key":"m","value":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}],
                "traceId":"5b8efff798038103d269b633813fc60c"}"#,
        );
        assert_eq!(e.name, "payment.failed");
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(e.ci.as_deref(), Some("node-7"));
        assert_eq!(e.labels.len(), 1, "process.pid is no label: {:?}", e.labels);
        assert_eq!(e.labels["service"], "checkout");
        assert_eq!(e.attributes["n"], json!(3));
        assert_eq!(e.attributes["m"], json!({"a": true}));
        assert_eq!(e.attributes["body"], json!("payment failed\nstack..."));
        assert_eq!(e.attributes["scope"], json!("app"));
        assert_eq!(e.attributes["resource"]["process.pid"], json!(4242));
        let from_body = one(
            r#"{"timeUnixNano":"1795860000000000000","body":{"stringValue":"\n  payment failed\nstack"}}"#,
        );
        assert_eq!(from_body.name, "payment failed");
        assert_eq!(from_body.status, Status::Firing);
        assert_eq!(
            from_body.fingerprint,
            derived_fingerprint(&["otel", "payment failed", "node-7"], &from_body.labels)
        );
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let at = "resourceLogs[0].scopeLogs[0].logRecords";
        let cases = [
            (
                r#"{"body":{"stringValue":"x"}}"#,
                format!("{at}[0].timeUnixNano"),
                "missing_field",
            ),
            (
                r#"{"timeUnixNano":"1795860000000000000"}"#,
                format!("{at}[0].body"),
                "missing_field",
            ),
            (
                r#"{"timeUnixNano":"1795860000000000000","body":{"kvlistValue":{}}}"#,
                format!("{at}[0].body"),
                "missing_field",
            ),
            (
                r#"{"timeUnixNano":"yesterday"}"#,
                format!("{at}[0].timeUnixNano"),
                "invalid_value",
            ),
            (
                r#"{"timeUnixNano":"18446744073709551615"}"#,
                format!("{at}[0].timeUnixNano"),
                "invalid_value",
            ),
            (
                r#"{"timeUnixNano":"1","severityNumber":25,"body":{"stringValue":"x"}}"#,
                format!("{at}[0].severityNumber"),
                "invalid_value",
            ),
            (
                r#"{"timeUnixNano":"1","body":{"stringValue":"x"},"attributes":[{"key":"a","value":{"intValue":"x"}}]}"#,
                format!("{at}[0].attributes[0]"),
                "invalid_value",
            ),
            (
                r#"{"timeUnixNano":"1","body":{"stringValue":"x"},"attributes":{}}"#,
                format!("{at}[0].attributes"),
                "invalid_value",
            ),
            (
                r#"{"timeUnixNano":"1","body":{"stringValue":"x"},"attributes":[{"key":"d2c.status","value":{"stringValue":"open"}}]}"#,
                format!("{at}[0].attributes.d2c.status"),
                "invalid_value",
            ),
            ("7", format!("{at}[0]"), "invalid_value"),
        ];
        for (record, field, reason) in cases {
            let e = events(record).unwrap_err();
            assert_eq!(e.reason(), reason, "{record}: {e}");
            let f = match &e {
                IngestError::MissingField { field, .. }
                | IngestError::InvalidValue { field, .. } => field,
                _ => unreachable!(),
            };
            assert_eq!(f, &field, "{record}: {e}");
        }
        let e = parse(br#"{"resourceLogs":[{"scopeLogs":3}]}"#, &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, IngestError::InvalidValue { field, .. } if field == "resourceLogs[0].scopeLogs"),
            "{e}"
        );
    }

    #[test]
    fn log_records_over_the_limit_are_refused_before_the_second_pass() {
        let limits = Limits {
            max_events_per_record: 2,
            ..Limits::default()
        };
        let raw = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{}]},{"logRecords":[7]}]},
                                      {"scopeLogs":[{"logRecords":[]}]}]}"#;
        let e = parse(raw.as_bytes(), &limits).unwrap_err();
        assert!(
            matches!(
                e,
                IngestError::TooManyEvents {
                    count: 3,
                    limit: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("send_batch_max_size"), "{e}");
        assert_eq!(
            parse(br#"{"resourceLogs":[]}"#, &limits).unwrap(),
            (Format::Otel, vec![])
        );
    }
}
