//! Checkpoints after the correlator began to share its strings (`correlate::StoredAlert`,
//! fingerprints and incident ids as one shared copy): the format is the one written before,
//! where every alert was an `AlertRef` and every id its own string, so a checkpoint written by
//! an older d2c restores, and a restored engine carries on exactly as the one that wrote it.

use std::sync::Arc;

use serde_json::Value;

use super::*;

/// The state's JSON as d2c wrote it before: each alert serialised as the `AlertRef` it is.
fn as_before(state: &EngineState) -> Value {
    let mut json = serde_json::to_value(state).unwrap();
    let alerts = json["correlation"]["alerts"].as_object_mut().unwrap();
    for (fp, a) in state.correlation.alerts.iter() {
        alerts.get_mut(&**fp).unwrap()["alert"] = serde_json::to_value(a.alert.to_ref()).unwrap();
    }
    json
}

#[test]
fn alerts_are_checkpointed_as_the_alert_refs_they_were_before() {
    let mut e = engine();
    run(&mut e, &outage()[..7]);
    assert_eq!(e.state().correlation.alerts.len(), 5);
    assert_eq!(
        serde_json::to_value(e.state()).unwrap(),
        as_before(e.state())
    );
}

#[test]
fn a_checkpoint_in_the_earlier_format_restores_and_carries_on_identically() {
    let mut e = engine();
    run(&mut e, &outage()[..7]);
    let earlier = serde_json::to_vec(&as_before(e.state())).unwrap();
    let back: EngineState = serde_json::from_slice(&earlier).unwrap();
    let s = Settings::embedded().unwrap();
    let mut restored = Engine::with_state(s.topology, s.policy, at_once(), back);
    assert_eq!(restored.state(), e.state());
    // Restored strings are shared again: the map key, the alert and the incident's member
    // list hold one fingerprint; the alert and its incident one id.
    let c = &restored.state().correlation;
    for (fp, a) in c.alerts.iter() {
        assert!(Arc::ptr_eq(fp, &a.alert.fingerprint));
        let id = a.incident.as_ref().unwrap();
        let g = &c.groups[&**id];
        assert!(Arc::ptr_eq(id, &g.id));
        assert!(g.alerts.iter().any(|f| Arc::ptr_eq(f, fp)));
    }
    assert!(c.shared_strings() > 0);
    let after: Vec<String> = run(&mut restored, &outage()[7..])
        .iter()
        .map(Output::to_json)
        .collect();
    let straight: Vec<String> = run(&mut e, &outage()[7..])
        .iter()
        .map(Output::to_json)
        .collect();
    assert!(!after.is_empty());
    assert_eq!(after, straight);
}
