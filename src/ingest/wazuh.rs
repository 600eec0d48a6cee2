//! Wazuh alerts as the manager writes them to `alerts.json` (and forwards them to integrations):
//! <https://documentation.wazuh.com/current/user-manual/manager/alert-management.html>, MITRE
//! mapping in `rule.mitre`. Detected by `rule` together with `manager` or `decoder`, keys that
//! ECS documents (which also have `rule` and `agent`) do not have at their top level.
//!
//! | field | becomes |
//! |---|---|
//! | `rule.description` (required) | `name` |
//! | `rule.id` | label `rule_id` |
//! | `timestamp` (required), else `@timestamp` (added when forwarded through the indexer) | `time`; Wazuh writes `2026-11-28T10:00:00.123+0000` |
//! | `rule.level` | `severity`: 0–3 info, 4–6 warning, 7–9 minor, 10–12 major, 13–15 critical; default warning |
//! | `agent.name` | label `host` (and `ci`) |
//! | `agent.ip` | label `host_ip` |
//! | `data.srcip` / `data.dstip` | labels `src_ip` / `dest_ip` |
//! | `data.dstuser`, else `data.srcuser` | label `user` (the account acted on) |
//! | `rule.mitre.tactic` | ATT&CK tactics (names such as `Credential Access`) |
//! | `rule.mitre.id` | ATT&CK techniques |
//! | `id` | `id`; default a hash of fingerprint, time and status |
//! | `full_log`, `location`, `rule.groups`, `rule.mitre`, `decoder.name` | attributes `full_log`, `location`, `rule_groups`, `rule_mitre`, `decoder` |

use serde_json::{Map, Value};

use super::detection::{Detection, at_path, loose_time, object, scalar, strings};
use super::{At, Event, Format, IngestError, Limits, reread};
use crate::model::Severity;

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::Wazuh);
    let doc = object(at, reread::<Value>(text)?, "one Wazuh alert")?;
    at.too_many(1, limits)?;
    Ok(vec![event(doc, at)?])
}

fn severity(level: u64) -> Severity {
    match level {
        0..=3 => Severity::Info,
        4..=6 => Severity::Warning,
        7..=9 => Severity::Minor,
        10..=12 => Severity::Major,
        _ => Severity::Critical,
    }
}

fn event(mut doc: Map<String, Value>, at: At) -> Result<Event, IngestError> {
    let tree = Value::Object(std::mem::take(&mut doc));
    let get = |path: &[&str]| at_path(&tree, path);
    let rule = scalar(at, "rule.description", get(&["rule", "description"]))?
        .ok_or_else(|| at.missing("rule.description"))?;
    let time = match loose_time(at, "timestamp", get(&["timestamp"]))? {
        Some(t) => t,
        None => loose_time(at, "@timestamp", get(&["@timestamp"]))?
            .ok_or_else(|| at.missing("timestamp"))?,
    };
    let severity = match get(&["rule", "level"]) {
        None | Some(Value::Null) => Severity::Warning,
        Some(v) => {
            let level = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|l| *l <= 16)
                .ok_or_else(|| {
                    at.invalid(
                        "rule.level",
                        format!("expected a level from 0 to 15, found {v}"),
                    )
                })?;
            severity(level)
        }
    };
    let mut d = Detection::new(Format::Wazuh, rule, time, severity);
    d.rule_id = scalar(at, "rule.id", get(&["rule", "id"]))?;
    d.id = scalar(at, "id", get(&["id"]))?;
    d.entity("host", scalar(at, "agent.name", get(&["agent", "name"]))?);
    d.entity("host_ip", scalar(at, "agent.ip", get(&["agent", "ip"]))?);
    d.entity("src_ip", scalar(at, "data.srcip", get(&["data", "srcip"]))?);
    d.entity(
        "dest_ip",
        scalar(at, "data.dstip", get(&["data", "dstip"]))?,
    );
    d.entity(
        "user",
        scalar(at, "data.dstuser", get(&["data", "dstuser"]))?,
    );
    d.entity(
        "user",
        scalar(at, "data.srcuser", get(&["data", "srcuser"]))?,
    );
    for t in strings(at, "rule.mitre.tactic", get(&["rule", "mitre", "tactic"]))? {
        d.tactic_text(&t);
    }
    for t in strings(at, "rule.mitre.id", get(&["rule", "mitre", "id"]))? {
        d.technique_text(&t);
    }
    for (path, to) in [
        (&["full_log"][..], "full_log"),
        (&["location"][..], "location"),
        (&["rule", "groups"][..], "rule_groups"),
        (&["rule", "mitre"][..], "rule_mitre"),
        (&["decoder", "name"][..], "decoder"),
    ] {
        if let Some(v) = get(path) {
            d.attributes.insert(to.into(), v.clone());
        }
    }
    Ok(d.into_event())
}
