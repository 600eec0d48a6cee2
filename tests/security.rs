//! Security triage through the engine's public API: the fixtures of the security tools parsed
//! and applied as the correlate stage does, checked for versions, gauges, acknowledgement and
//! checkpoint compatibility.

use chrono::{DateTime, Utc};
use d2c::correlate::Outcome;
use d2c::engine::Settings;
use d2c::engine::{Engine, EngineState};
use d2c::ingest::{Limits, parse};
use d2c::model::{Event, Incident, IncidentStatus, Output, Severity};

fn engine() -> Engine {
    let s = Settings::embedded().unwrap();
    Engine::new(s.topology, s.policy, s.config.correlation.clone())
}

fn fixture(name: &str) -> Event {
    let path = format!(
        "{}/tests/fixtures/ingest/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let (_, mut events) = parse(&std::fs::read(&path).unwrap(), &Limits::default()).unwrap();
    events.remove(0)
}

fn incidents(out: &[Output]) -> Vec<&Incident> {
    out.iter()
        .filter_map(|o| match o {
            Output::Incident(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn a_repeated_detection_makes_no_new_version_and_a_new_stage_does() {
    let mut e = engine();
    let shell = fixture("falco_alert.json");
    let first = e.apply(&shell);
    assert_eq!(first.outcome, Some(Outcome::Opened));
    let [v1] = incidents(&first.outputs)[..] else {
        panic!("one incident: {:?}", first.outputs)
    };
    assert_eq!(v1.version, 1);
    let mut again = shell.clone();
    again.time += chrono::Duration::seconds(5);
    let repeat = e.apply(&again);
    assert_eq!(repeat.outcome, Some(Outcome::Deduplicated));
    assert!(repeat.outputs.is_empty(), "{:?}", repeat.outputs);
    let persistence = e.apply(&fixture("ocsf_detection_finding.json"));
    let [v2] = incidents(&persistence.outputs)[..] else {
        panic!("a new version: {:?}", persistence.outputs)
    };
    assert_eq!((v2.id.as_str(), v2.version), (v1.id.as_str(), 2));
    assert_eq!(v2.security.as_ref().unwrap().stages.len(), 2);
    // Two stages on a host: the example policy isolates it, with approval required.
    let rfc = persistence
        .outputs
        .iter()
        .find_map(|o| match o {
            Output::Change(r) => Some(r),
            _ => None,
        })
        .expect("a containment RFC");
    assert_eq!(rfc.rule, "isolate-compromised-host");
    assert_eq!(rfc.containment.as_ref().unwrap().targets, ["web-1"]);
}

#[test]
fn gauges_count_open_security_incidents_by_tactic_until_they_close() {
    let mut e = engine();
    e.apply(&fixture("falco_alert.json"));
    e.apply(&fixture("wazuh_alert.json"));
    let summary = e.security_summary();
    assert_eq!(
        summary
            .open_by_tactic
            .get(&("TA0002".to_string(), Severity::Warning)),
        Some(&1)
    );
    assert_eq!(
        summary
            .open_by_tactic
            .get(&("TA0006".to_string(), Severity::Major)),
        Some(&1)
    );
    // Security incidents count as open incidents by priority too.
    assert_eq!(e.summary().open_by_priority.values().sum::<u64>(), 2);
    let closed = e.tick(time("2026-11-28T11:10:00Z"));
    let closed = incidents(&closed);
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().all(|i| i.status == IncidentStatus::Closed));
    assert!(e.security_summary().open_by_tactic.is_empty());
}

#[test]
fn a_security_incident_can_be_acknowledged_once() {
    let mut e = engine();
    let out = e.apply(&fixture("wazuh_alert.json")).outputs;
    let id = incidents(&out)[0].id.clone();
    let at = time("2026-11-28T10:05:00Z");
    let acked = e.acknowledge(&id, "alice", at);
    let [v2] = incidents(&acked)[..] else {
        panic!("{acked:?}")
    };
    assert_eq!(v2.acknowledged_by.as_deref(), Some("alice"));
    assert!(e.acknowledge(&id, "bob", at).is_empty());
}

#[test]
fn checkpoints_without_security_state_still_load_and_with_it_round_trip() {
    let mut e = engine();
    e.apply(&fixture("suricata_alert.json"));
    let state = e.state().clone();
    let json = serde_json::to_value(&state).unwrap();
    assert!(json.get("security").is_some());
    let back: EngineState = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, state);
    // A checkpoint written before security triage existed has no such key.
    let mut old = json;
    old.as_object_mut().unwrap().remove("security");
    let old: EngineState = serde_json::from_value(old).unwrap();
    assert!(old.security.incidents.is_empty());
    let empty = serde_json::to_value(EngineState::default()).unwrap();
    assert!(
        empty.get("security").is_none(),
        "no key while there is nothing to keep"
    );
}
