//! A Zabbix webhook media type's parameters, as a flat JSON object: the webhook's script posts
//! its `value` (the parameters Zabbix filled in from macros) as it is. Zabbix lets each
//! installation name its parameters; d2c reads the names below, each filled from the Zabbix
//! macro beside it (webhooks:
//! <https://www.zabbix.com/documentation/current/en/manual/config/notifications/media/webhook>,
//! macros:
//! <https://www.zabbix.com/documentation/current/en/manual/appendix/macros/supported_by_location>).
//! Other keys are ignored.
//!
//! | parameter | macro | becomes |
//! |---|---|---|
//! | `event_name` | `{EVENT.NAME}` | `name`; else `trigger_name` (`{TRIGGER.NAME}`), else `alert_subject` (`{ALERT.SUBJECT}`). One is required |
//! | `event_value` | `{EVENT.VALUE}` | `1` firing (problem), `0` resolved (recovery) |
//! | `event_status` | `{EVENT.STATUS}` | when `event_value` is absent: `PROBLEM` firing, `RESOLVED` (or `OK`) resolved. One of the two is required |
//! | `event_severity` | `{EVENT.SEVERITY}` | `Not classified`, `Information` → info, `Warning` → warning, `Average` → minor, `High` → major, `Disaster` → critical; else `event_nseverity` (`{EVENT.NSEVERITY}`, 0–5, same order); default warning |
//! | `event_date`, `event_time` | `{EVENT.DATE}`, `{EVENT.TIME}` | `time` of a problem: `2026.11.28` and `10:00:00` |
//! | `event_recovery_date`, `event_recovery_time` | `{EVENT.RECOVERY.DATE}`, `{EVENT.RECOVERY.TIME}` | `time` of a recovery; `event_date`/`event_time` when absent |
//! | `event_tz` | — (set by hand) | the UTC offset of those dates and times: `+01:00`, `-0500`, `UTC`. Default UTC |
//! | `host_name` | `{HOST.NAME}` | `ci` and label `host`; else `host_host` (`{HOST.HOST}`), else `host_ip` |
//! | `host_ip` | `{HOST.IP}` | label `host_ip` |
//! | `trigger_id` | `{TRIGGER.ID}` | with the ci, the fingerprint; label `trigger_id` |
//! | `event_id` | `{EVENT.ID}` | the fingerprint when `trigger_id` is absent; attribute `event_id`. `trigger_id` or `event_id` is required |
//! | `event_tags` | `{EVENT.TAGS}` or `{EVENT.TAGSJSON}` | labels: `"service:payments,scope:availability"`, or `[{"tag":"service","value":"payments"}]` |
//! | `alert_message`, `event_opdata`, `trigger_description`, `event_recovery_id`, `zabbix_url` | `{ALERT.MESSAGE}`, `{EVENT.OPDATA}`, `{TRIGGER.DESCRIPTION}`, `{EVENT.RECOVERY.ID}`, `{$ZABBIX.URL}` | attributes of those names |
//!
//! Time: Zabbix's dates and times carry no zone; d2c reads them in UTC unless `event_tz` gives an
//! offset (a zone name such as `Europe/Berlin` is refused: its offset depends on the date). Run
//! the Zabbix server in UTC, or set `event_tz`. A date may instead be a whole RFC 3339 timestamp
//! (`2026-11-28T10:00:00+01:00`), read as such; its time parameter is then not needed.
//!
//! Fingerprint: the problem and its recovery must be one alert. `{EVENT.ID}` in a recovery
//! notification is the problem's id, so it would do for one problem; `trigger_id` with the host
//! also makes the next problem of the same trigger the same alert again, as Alertmanager's label
//! fingerprints do. So the fingerprint hashes `zabbix`, `trigger_id` and the ci, or `zabbix` and
//! `event_id` when the trigger is not sent. Category: the `category` or `scope` tag when it names
//! one (Zabbix templates tag `scope: availability`, `performance`, …), else availability.
//!
//! A value Zabbix could not fill in arrives as the macro itself (`{EVENT.RECOVERY.DATE}` in a
//! problem notification) or `*UNKNOWN*`; both count as absent, as do `null` and `""`. Numbers
//! may be sent as JSON numbers or strings.
//!
//! Second pass: `payload.rs` only notes the `event_*`, `trigger_id` and `host_name` keys; this
//! parser reads the text again into [`Params`].

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::payload::{Found, Object, Text};
use super::{At, Event, Format, IngestError, Limits, category_word, event_id, reread, status_word};
use crate::model::{Category, Severity, Status, stable_hash};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    event_id: Option<Text>,
    event_name: Option<Text>,
    trigger_name: Option<Text>,
    alert_subject: Option<Text>,
    event_value: Option<Text>,
    event_status: Option<Text>,
    event_severity: Option<Text>,
    event_nseverity: Option<Text>,
    event_date: Option<Text>,
    event_time: Option<Text>,
    event_recovery_date: Option<Text>,
    event_recovery_time: Option<Text>,
    event_tz: Option<Text>,
    host_name: Option<Text>,
    host_host: Option<Text>,
    host_ip: Option<Text>,
    trigger_id: Option<Text>,
    event_tags: Option<Value>,
    alert_message: Option<Text>,
    event_opdata: Option<Text>,
    trigger_description: Option<Text>,
    event_recovery_id: Option<Text>,
    zabbix_url: Option<Text>,
}

/// Zabbix's severities, in the order of `{EVENT.NSEVERITY}` (0–5).
const SEVERITIES: [(&str, Severity); 6] = [
    ("not classified", Severity::Info),
    ("information", Severity::Info),
    ("warning", Severity::Warning),
    ("average", Severity::Minor),
    ("high", Severity::Major),
    ("disaster", Severity::Critical),
];

pub(super) fn events(text: &str, limits: &Limits) -> Result<Vec<Event>, IngestError> {
    let at = At::top(Format::Zabbix);
    let params = match reread::<Object<Params>>(text)? {
        Object(Ok(params)) => params,
        Object(Err(found)) => {
            let detail = format!("expected a JSON object of webhook parameters, found {found}");
            return Err(at.invalid("", detail));
        }
    };
    at.too_many(1, limits)?;
    Ok(vec![event(params, at)?])
}

fn event(p: Params, at: At) -> Result<Event, IngestError> {
    let read = |field: &str, value: Option<Text>| param(at, field, value);
    let name = match read("event_name", p.event_name)? {
        Some(name) => name,
        None => read("trigger_name", p.trigger_name)?
            .or(read("alert_subject", p.alert_subject)?)
            .ok_or_else(|| at.missing("event_name"))?,
    };
    let status = match read("event_value", p.event_value)? {
        Some(v) if v == "1" => Status::Firing,
        Some(v) if v == "0" => Status::Resolved,
        Some(v) => {
            let detail = format!("expected 1 (problem) or 0 (recovery), found {v:?}");
            return Err(at.invalid("event_value", detail));
        }
        None => match read("event_status", p.event_status)? {
            Some(word) => status_word(&word).ok_or_else(|| {
                let detail = format!("expected PROBLEM or RESOLVED, found {word:?}");
                at.invalid("event_status", detail)
            })?,
            None => return Err(at.missing("event_value")),
        },
    };
    let severity = match read("event_severity", p.event_severity)? {
        Some(word) => SEVERITIES
            .iter()
            .find(|(w, _)| word.trim().eq_ignore_ascii_case(w))
            .map(|&(_, s)| s)
            .ok_or_else(|| {
                let detail = format!(
                    "expected Not classified, Information, Warning, Average, High or Disaster, \
                     found {word:?}"
                );
                at.invalid("event_severity", detail)
            })?,
        None => match read("event_nseverity", p.event_nseverity)? {
            Some(n) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| SEVERITIES.get(n))
                .map(|&(_, s)| s)
                .ok_or_else(|| {
                    let detail = format!("expected a number from 0 to 5, found {n:?}");
                    at.invalid("event_nseverity", detail)
                })?,
            None => Severity::Warning,
        },
    };
    let tz = match read("event_tz", p.event_tz)? {
        None => Utc.fix(),
        Some(tz) => offset(&tz).ok_or_else(|| {
            let detail =
                format!("expected an offset from UTC such as +01:00, -0500 or UTC, found {tz:?}");
            at.invalid("event_tz", detail)
        })?,
    };
    let problem_date = read("event_date", p.event_date)?;
    let problem_time = read("event_time", p.event_time)?;
    let recovery_date = read("event_recovery_date", p.event_recovery_date)?;
    let recovery_time = read("event_recovery_time", p.event_recovery_time)?;
    let time = match (status, recovery_date) {
        (Status::Resolved, Some(date)) => {
            let fields = ("event_recovery_date", "event_recovery_time");
            zabbix_time(at, fields, date, recovery_time, tz)?
        }
        _ => {
            let date = problem_date.ok_or_else(|| at.missing("event_date"))?;
            zabbix_time(at, ("event_date", "event_time"), date, problem_time, tz)?
        }
    };

    let mut labels = tags(at, p.event_tags)?;
    let host_name = read("host_name", p.host_name)?;
    let host_ip = read("host_ip", p.host_ip)?;
    let ci = host_name
        .clone()
        .or(read("host_host", p.host_host)?)
        .or(host_ip.clone());
    let trigger_id = read("trigger_id", p.trigger_id)?;
    let zabbix_event_id = read("event_id", p.event_id)?;
    let fingerprint = match (&trigger_id, &zabbix_event_id) {
        (Some(trigger), _) => {
            stable_hash(&["zabbix", "trigger", trigger, ci.as_deref().unwrap_or("")])
        }
        (None, Some(event)) => stable_hash(&["zabbix", "event", event]),
        (None, None) => return Err(at.missing("event_id")),
    };
    for (key, value) in [
        ("host", host_name),
        ("host_ip", host_ip),
        ("trigger_id", trigger_id),
    ] {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value);
        }
    }
    let category = ["category", "scope"]
        .into_iter()
        .find_map(|key| labels.get(key).and_then(|word| category_word(word)))
        .unwrap_or(Category::default());

    let mut attributes = BTreeMap::new();
    for (key, value) in [
        ("event_id", zabbix_event_id),
        (
            "event_recovery_id",
            read("event_recovery_id", p.event_recovery_id)?,
        ),
        ("alert_message", read("alert_message", p.alert_message)?),
        ("event_opdata", read("event_opdata", p.event_opdata)?),
        (
            "trigger_description",
            read("trigger_description", p.trigger_description)?,
        ),
        ("zabbix_url", read("zabbix_url", p.zabbix_url)?),
    ] {
        if let Some(value) = value {
            attributes.insert(key.to_owned(), Value::String(value));
        }
    }
    Ok(Event {
        id: event_id(&fingerprint, time, status),
        source: Format::Zabbix.as_str().to_owned(),
        time,
        ci,
        name,
        severity,
        status,
        category,
        fingerprint,
        labels,
        attributes,
    })
}

/// A parameter's text (numbers as their digits); empty, `null`, an unfilled macro and
/// `*UNKNOWN*` are absent.
fn param(at: At, field: &str, value: Option<Text>) -> Result<Option<String>, IngestError> {
    match value.map(Text::into_scalar) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s).filter(|s| filled(s))),
        Some(Err(found)) => Err(at.invalid(field, format!("expected a string, found {found}"))),
    }
}

/// Not empty, not a macro Zabbix left as it was (`{EVENT.RECOVERY.DATE}`), not `*UNKNOWN*`.
fn filled(s: &str) -> bool {
    let s = s.trim();
    let unfilled_macro = s.starts_with('{') && s.ends_with('}') && !s.contains(char::is_whitespace);
    !(s.is_empty() || unfilled_macro || s == "*UNKNOWN*")
}

/// A Zabbix date (`2026.11.28`, or `2026-11-28`) and time (`10:00:00`) at the offset `tz`, or a
/// whole RFC 3339 timestamp given as the date. `fields` names the date and the time parameter.
fn zabbix_time(
    at: At,
    (date_field, time_field): (&str, &str),
    date: String,
    time: Option<String>,
    tz: FixedOffset,
) -> Result<DateTime<Utc>, IngestError> {
    if date.contains('T') {
        return at
            .time(date_field, Some(Text::Str(date)))?
            .ok_or_else(|| at.missing(date_field));
    }
    let day = ["%Y.%m.%d", "%Y-%m-%d"]
        .into_iter()
        .find_map(|f| NaiveDate::parse_from_str(date.trim(), f).ok())
        .ok_or_else(|| {
            let detail = format!("expected a date such as 2026.11.28, found {date:?}");
            at.invalid(date_field, detail)
        })?;
    let time = time.ok_or_else(|| at.missing(time_field))?;
    let clock = NaiveTime::parse_from_str(time.trim(), "%H:%M:%S").map_err(|_| {
        let detail = format!("expected a time such as 10:00:00, found {time:?}");
        at.invalid(time_field, detail)
    })?;
    // A fixed offset maps every local time to exactly one instant.
    match tz.from_local_datetime(&day.and_time(clock)).single() {
        Some(t) => Ok(t.with_timezone(&Utc)),
        None => Err(at.invalid(date_field, format!("{date} {time} is out of range"))),
    }
}

/// `UTC`, `Z`, `+01:00`, `+0100`, `-05`: an offset from UTC.
fn offset(tz: &str) -> Option<FixedOffset> {
    let tz = tz.trim();
    if tz.eq_ignore_ascii_case("utc") || tz.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().unwrap_or(0);
    if minutes >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// `event_tags` as labels: `"k:v,k2:v2"` (`{EVENT.TAGS}`; a tag without `:` has the value `""`)
/// or `[{"tag":"k","value":"v"}]` (`{EVENT.TAGSJSON}`).
fn tags(at: At, value: Option<Value>) -> Result<BTreeMap<String, String>, IngestError> {
    let mut labels = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !filled(&s) => {}
        Some(Value::String(s)) => {
            for tag in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
                labels.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let field = format!("event_tags[{i}]");
                let Value::Object(mut tag) = item else {
                    let detail = format!(
                        "expected {{\"tag\", \"value\"}}, found {}",
                        Found::of(&item)
                    );
                    return Err(at.invalid(&field, detail));
                };
                let text = |v: Option<Value>| v.and_then(Text::from_value);
                let key = at.required(&format!("{field}.tag"), text(tag.remove("tag")))?;
                let value = param(at, &format!("{field}.value"), text(tag.remove("value")))?;
                labels.insert(key, value.unwrap_or_default());
            }
        }
        Some(other) => {
            let detail = format!(
                "expected \"tag:value,…\" or an array of {{\"tag\", \"value\"}}, found {}",
                Found::of(&other)
            );
            return Err(at.invalid("event_tags", detail));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ingest::parse;

    fn one(raw: &str) -> Event {
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::Zabbix);
        let [e] = <[Event; 1]>::try_from(events).unwrap();
        e
    }

    fn with(extra: &str) -> String {
        format!(
            r#"{{"event_id":"812","event_name":"High CPU","event_value":"1","trigger_id":"23",
                "host_name":"web-1","event_date":"2026.11.28","event_time":"10:00:00"{extra}}}"#
        )
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    #[test]
    fn problem_and_recovery_are_one_alert() {
        let problem = one(&with(r#","event_recovery_date":"{EVENT.RECOVERY.DATE}""#));
        assert_eq!((problem.status, problem.time), (Status::Firing, utc(10, 0)));
        let recovery = one(&with(
            r#","event_value":"0","event_recovery_date":"2026.11.28","event_recovery_time":"10:20:00""#,
        )
        .replace(r#""event_value":"1","#, ""));
        assert_eq!(
            (recovery.status, recovery.time),
            (Status::Resolved, utc(10, 20))
        );
        assert_eq!(problem.fingerprint, recovery.fingerprint);
        assert_ne!(problem.id, recovery.id);
        assert_eq!(
            problem.fingerprint,
            stable_hash(&["zabbix", "trigger", "23", "web-1"])
        );
        let no_trigger = one(&with("").replace(r#""trigger_id":"23","#, ""));
        assert_eq!(
            no_trigger.fingerprint,
            stable_hash(&["zabbix", "event", "812"])
        );
    }

    #[test]
    fn severities_statuses_and_numbers() {
        let sev = |extra: &str| one(&with(extra)).severity;
        assert_eq!(sev(r#","event_severity":"Disaster""#), Severity::Critical);
        assert_eq!(sev(r#","event_severity":"Average""#), Severity::Minor);
        assert_eq!(sev(r#","event_severity":"not classified""#), Severity::Info);
        assert_eq!(sev(r#","event_nseverity":4"#), Severity::Major);
        assert_eq!(sev(""), Severity::Warning);
        let raw = with("")
            .replace(r#""event_value":"1""#, r#""event_status":"RESOLVED""#)
            .replace(r#""event_id":"812""#, r#""event_id":812"#);
        let e = one(&raw);
        assert_eq!(e.status, Status::Resolved);
        assert_eq!(e.time, utc(10, 0), "no recovery time: the problem's");
        assert_eq!(e.attributes["event_id"], json!("812"));
    }

    #[test]
    fn time_zones() {
        assert_eq!(one(&with(r#","event_tz":"+01:00""#)).time, utc(9, 0));
        assert_eq!(one(&with(r#","event_tz":"-0530""#)).time, utc(15, 30));
        assert_eq!(one(&with(r#","event_tz":"UTC""#)).time, utc(10, 0));
        let iso = with("").replace("2026.11.28", "2026-11-28T10:00:00+02:00");
        assert_eq!(one(&iso).time, utc(8, 0));
    }

    #[test]
    fn tags_become_labels_and_name_the_category() {
        let e = one(&with(
            r#","event_tags":"service:payments, scope:capacity,flag""#,
        ));
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.labels["flag"], "");
        assert_eq!(e.labels["host"], "web-1");
        assert_eq!(e.category, Category::Capacity);
        let e = one(&with(
            r#","event_tags":[{"tag":"service","value":"payments"},{"tag":"team"}]"#,
        ));
        assert_eq!(e.labels["service"], "payments");
        assert_eq!(e.labels["team"], "");
    }

    #[test]
    fn missing_and_bad_parameters_are_named() {
        let missing = [
            (
                with("").replace(r#""event_name":"High CPU","#, ""),
                "event_name",
            ),
            (with("").replace(r#""event_value":"1","#, ""), "event_value"),
            (
                with("").replace(r#""event_date":"2026.11.28","#, ""),
                "event_date",
            ),
            (
                with("").replace(r#","event_time":"10:00:00""#, ""),
                "event_time",
            ),
            (
                with("")
                    .replace(r#""event_id":"812","#, "")
                    .replace(r#""trigger_id":"23","#, ""),
                "event_id",
            ),
        ];
        for (raw, field) in missing {
            let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, IngestError::MissingField { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
        let invalid = [
            (with(r#","event_severity":"Severe""#), "event_severity"),
            (with(r#","event_nseverity":"9""#), "event_nseverity"),
            (with(r#","event_tz":"Europe/Berlin""#), "event_tz"),
            (with(r#","event_tags":[1]"#), "event_tags[0]"),
            (with(r#","event_tags":{}"#), "event_tags"),
            (with("").replace("2026.11.28", "28/11/2026"), "event_date"),
            (with("").replace("10:00:00", "10h"), "event_time"),
            (
                with("").replace(r#""event_value":"1""#, r#""event_value":"2""#),
                "event_value",
            ),
            (
                with("").replace(r#""host_name":"web-1""#, r#""host_name":["a"]"#),
                "host_name",
            ),
        ];
        for (raw, field) in invalid {
            let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&e, IngestError::InvalidValue { field: f, .. } if f == field),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(offset("+05:30"), FixedOffset::east_opt(19_800));
        assert_eq!(offset("-05"), FixedOffset::east_opt(-18_000));
        assert_eq!(offset("z"), FixedOffset::east_opt(0));
        for bad in ["", "+", "+1", "+123", "+01:60", "CET", "+ab:cd", "+99:00"] {
            assert_eq!(offset(bad), None, "{bad}");
        }
    }
}
