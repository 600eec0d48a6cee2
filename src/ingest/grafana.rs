//! Grafana alerting's webhook payload (a contact point of type webhook), version `"1"`, as
//! documented at
//! <https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/>.
//!
//! Grafana builds it on Alertmanager's payload (`receiver`, `status`, `alerts[]` with `labels`,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`, `groupLabels`,
//! `commonLabels`, `externalURL`, `groupKey`, `truncatedAlerts`) and adds keys of its own, so the
//! Alertmanager parser reads it ([`alertmanager::group_events`]): every rule of `alertmanager.rs`
//! holds, with these differences:
//!
//! | key | becomes |
//! |---|---|
//! | `version` | must be `"1"` when present (Alertmanager's is `"4"`) |
//! | `orgId` | attribute `orgId` (as text) |
//! | `alerts[].silenceURL`, `dashboardURL`, `panelURL`, `valueString` | attributes of those names, when not empty |
//! | `alerts[].values` | attribute `values`, the JSON object as sent (`{"B": 44.2, "C": 1}`) |
//! | — | `source` is `grafana`; the fingerprint hashes `grafana` with Grafana's `fingerprint` |
//!
//! As with Alertmanager, an annotation of the same name wins over these attributes. `title`,
//! `state` and `message` are not read: they are renderings of the alerts for people, and every
//! alert they describe arrives as an event of its own.
//!
//! Detection: an object with `alerts` is Grafana's when it has `orgId` or its `version` is `"1"`.

use super::alertmanager;
use super::payload::{Text, Top};
use super::sink::Sink;
use super::{Format, IngestError, Limits};

/// The payload version Grafana sends.
const VERSION: &str = "1";

pub(super) fn events(top: Top, limits: &Limits, out: &mut Sink) -> Result<(), IngestError> {
    alertmanager::group_events(Format::Grafana, VERSION, top, limits, out)
}

/// Whether a payload's `version` is Grafana's (`"1"`, or the number 1).
pub(super) fn is_version(version: &Text) -> bool {
    matches!(version, Text::Str(v) | Text::Number(v) if v == VERSION)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ingest::parse;
    use crate::model::{Status, stable_hash};

    fn payload(extra: &str, alerts: &str) -> String {
        format!(
            r#"{{"receiver":"d2c","status":"firing",{extra}"externalURL":"http://grafana:3000/",
                "groupKey":"{{}}/{{}}:{{}}","alerts":[{alerts}]}}"#
        )
    }

    const ALERT: &str = r#"{"status":"firing","labels":{"alertname":"HighMemory","instance":"h1:9100"},
        "annotations":{"summary":"memory above 90%"},"startsAt":"2026-11-28T10:00:00+01:00",
        "endsAt":"0001-01-01T00:00:00Z","fingerprint":"c6eadffa33fcdf37",
        "silenceURL":"http://grafana:3000/alerting/silence/new","dashboardURL":"",
        "panelURL":"http://grafana:3000/d/x?viewPanel=2","values":{"B":44.2,"C":1},
        "valueString":"[ var='B' value=44.2 ]"}"#;

    #[test]
    fn org_id_or_version_1_make_it_grafana_and_the_extra_keys_attributes() {
        for extra in [
            r#""orgId":1,"#,
            r#""version":"1","#,
            r#""orgId":1,"version":"1","#,
        ] {
            let raw = payload(extra, ALERT);
            let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
            assert_eq!(format, Format::Grafana, "{extra}");
            let [e] = &events[..] else { unreachable!() };
            assert_eq!(e.source, "grafana");
            assert_eq!(
                (e.name.as_str(), e.ci.as_deref()),
                ("HighMemory", Some("h1"))
            );
            assert_eq!(e.status, Status::Firing);
            assert_eq!(e.time.to_rfc3339(), "2026-11-28T09:00:00+00:00");
            assert_eq!(e.fingerprint, stable_hash(&["grafana", "c6eadffa33fcdf37"]));
            assert_eq!(e.attributes["values"], json!({"B": 44.2, "C": 1}));
            assert_eq!(e.attributes["valueString"], json!("[ var='B' value=44.2 ]"));
            assert_eq!(
                e.attributes["silenceURL"],
                json!("http://grafana:3000/alerting/silence/new")
            );
            assert!(
                !e.attributes.contains_key("dashboardURL"),
                "empty is absent"
            );
        }
        let raw = payload(r#""orgId":7,"#, ALERT);
        let events = parse(raw.as_bytes(), &Limits::default()).unwrap().1;
        assert_eq!(events[0].attributes["orgId"], json!("7"));
    }

    #[test]
    fn alertmanager_version_4_stays_alertmanager() {
        let raw = payload(r#""version":"4","#, ALERT);
        let (format, events) = parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(format, Format::Alertmanager);
        assert_eq!(events[0].source, "alertmanager");
        assert_ne!(
            events[0].fingerprint,
            stable_hash(&["grafana", "c6eadffa33fcdf37"]),
            "each tool's fingerprints are its own"
        );
    }

    #[test]
    fn errors_name_grafana_and_the_field() {
        let raw = payload(r#""orgId":1,"#, r#"{"labels":{"alertname":"X"}}"#);
        let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "grafana payload: alerts[0].startsAt is missing; a firing alert needs startsAt, the \
             RFC 3339 time it started"
        );
        let raw = payload(r#""orgId":1,"version":"2","#, ALERT);
        let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("d2c reads grafana webhook payload version \"1\""),
            "{e}"
        );
        let raw = payload(r#""orgId":[1],"#, ALERT);
        let e = parse(raw.as_bytes(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, IngestError::InvalidValue { field, .. } if field == "orgId"),
            "{e}"
        );
    }
}
