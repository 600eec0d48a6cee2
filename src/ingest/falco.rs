//! Falco alerts in its JSON output (`json_output: true`, with `json_include_output_property`
//! and `json_include_tags_property`), as written to stdout, files, `http_output` and
//! Falcosidekick: <https://falco.org/docs/concepts/outputs/formatting/>. Detected by
//! `output_fields`, a key no other format has at its top level.
//!
//! | field | becomes |
//! |---|---|
//! | `rule` (required) | `name` |
//! | `time` (required) | `time`, RFC 3339 (Falco writes nanoseconds) |
//! | `priority` | `severity` on Falco's eight-level scale: `Emergency`, `Alert`, `Critical` critical; `Error` major; `Warning` minor; `Notice` warning; `Informational`, `Info`, `Debug` info. Default warning; another word is refused |
//! | `hostname` | label `host` (and `ci`) |
//! | `output_fields."container.name"`, else `"container.id"` (not when it is `host`: Falco's word for "no container") | label `container` |
//! | `output_fields."user.name"` | label `user` |
//! | `output_fields."proc.name"` | label `process` |
//! | `output_fields."fd.cip"` / `"fd.sip"` | labels `src_ip` / `dest_ip` (client and server of the connection) |
//! | `tags` | `mitre_<tactic>` tags are ATT&CK tactics, `T1059`-style tags techniques; all tags kept as attribute `tags` |
//! | `uuid` | `id`; default a hash of fingerprint, time and status |
//! | `output`, `source`, `output_fields` | attributes `output`, `falco_source`, `output_fields` |
//!
//! Falco sends no resolves: every record is a firing detection.

use serde_json::{Map, Value};

use super::detection::{Detection, loose_time, object, scalar, strings};
use super::{At, Event, Format, IngestError, Limits, reread};
use crate::model::Severity;
use crate::model::attack;

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::Falco);
    let doc = object(at, reread::<Value>(text)?, "one Falco alert")?;
    at.too_many(1, limits)?;
    Ok(vec![event(doc, at)?])
}

/// Falco's priority words, most severe first.
fn severity(word: &str) -> Option<Severity> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "emergency" | "alert" | "critical" => Severity::Critical,
        "error" => Severity::Major,
        "warning" => Severity::Minor,
        "notice" => Severity::Warning,
        "informational" | "info" | "debug" => Severity::Info,
        _ => return None,
    })
}

fn event(mut doc: Map<String, Value>, at: At) -> Result<Event, IngestError> {
    let rule = scalar(at, "rule", doc.get("rule"))?.ok_or_else(|| at.missing("rule"))?;
    let time = loose_time(at, "time", doc.get("time"))?.ok_or_else(|| at.missing("time"))?;
    let severity = match scalar(at, "priority", doc.get("priority"))? {
        None => Severity::Warning,
        Some(word) => severity(&word).ok_or_else(|| {
            at.invalid(
                "priority",
                format!(
                    "expected a Falco priority (Emergency, Alert, Critical, Error, Warning, \
                     Notice, Informational, Debug), found {word:?}"
                ),
            )
        })?,
    };
    let mut d = Detection::new(Format::Falco, rule, time, severity);
    d.id = scalar(at, "uuid", doc.get("uuid"))?;
    d.entity("host", scalar(at, "hostname", doc.get("hostname"))?);
    let fields = match doc.remove("output_fields") {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            let found = super::payload::Found::of(&other);
            return Err(at.invalid(
                "output_fields",
                format!("expected an object, found {found}"),
            ));
        }
    };
    let field = |name: &str| -> Result<Option<String>, IngestError> {
        scalar(at, &format!("output_fields.{name}"), fields.get(name))
    };
    let container = field("container.name")?
        .or(field("container.id")?)
        .filter(|c| c != "host");
    d.entity("container", container);
    d.entity("user", field("user.name")?);
    d.entity("process", field("proc.name")?);
    d.entity("src_ip", field("fd.cip")?);
    d.entity("dest_ip", field("fd.sip")?);
    let tags = strings(at, "tags", doc.get("tags"))?;
    for tag in &tags {
        match attack::tactic_by_tag(tag) {
            Some(t) => d.tactic(t),
            None => d.technique_text(tag),
        }
    }
    if !tags.is_empty() {
        d.attributes.insert("tags".into(), Value::from(tags));
    }
    if let Some(output) = doc.remove("output") {
        d.attributes.insert("output".into(), output);
    }
    if let Some(source) = doc.remove("source") {
        d.attributes.insert("falco_source".into(), source);
    }
    if !fields.is_empty() {
        d.attributes
            .insert("output_fields".into(), Value::Object(fields));
    }
    Ok(d.into_event())
}
