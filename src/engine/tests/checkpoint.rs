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

/// A delta copied a few keys at a time while the engine goes on (`Part::copy` over the next
/// batches) is the state as it was when the copy began, the changes meanwhile come in the next
/// delta, and copying changes nothing the engine publishes.
#[test]
fn a_delta_copied_while_events_go_on_is_the_state_when_it_began() {
    let events = outage();
    let (mut e, mut twin) = (engine(), engine());
    run(&mut e, &events[..2]);
    run(&mut twin, &events[..2]);
    let mut base = e.take_full(true);
    run(&mut e, &events[2..6]);
    run(&mut twin, &events[2..6]);
    let at_begin = e.checkpoint_state().clone();
    let whole = e.begin_delta();
    let mut out = Vec::new();
    for ev in &events[6..] {
        out.extend(e.apply(ev).outputs);
        e.copy_some(1);
    }
    out.extend(e.tick(at(103 + 60)));
    let mut d = e.end_delta(whole);
    assert!(
        d.entries() > events.len() - 6 + 1,
        "keys were still to copy when the events changed them"
    );
    d.sort();
    base.apply_delta(d);
    assert_eq!(base, at_begin);
    let mut straight = run(&mut twin, &events[6..]);
    straight.extend(twin.tick(at(103 + 60)));
    let json = |o: &[Output]| o.iter().map(Output::to_json).collect::<Vec<_>>();
    assert!(!out.is_empty());
    assert_eq!(json(&out), json(&straight));
    base.apply_delta(e.take_delta());
    assert_eq!(&base, e.checkpoint_state());
}

/// The same for a copy of the whole state (a full checkpoint copied over the next batches):
/// made a state again, it is the state as it was when the copy began.
#[test]
fn a_full_copy_taken_while_events_go_on_is_the_state_when_it_began() {
    let events = outage();
    let mut e = engine();
    run(&mut e, &events[..6]);
    let at_begin = e.checkpoint_state().clone();
    let whole = e.begin_full();
    for ev in &events[6..] {
        e.apply(ev);
        e.copy_some(1);
    }
    e.tick(at(103 + 60));
    let d = e.end_delta(whole);
    let mut back = EngineState::of_whole(d);
    assert_eq!(back, at_begin);
    // Changes are recorded from when it began: the next delta brings the rest.
    back.apply_delta(e.take_delta());
    assert_eq!(&back, e.checkpoint_state());
}

/// The security state is tracked like the rest: a delta holds the security incidents, entity
/// keys and timers that changed, not all of them, and applied to the last checkpoint it gives
/// the state; a delta written before it was tracked (the security state whole) still applies.
#[test]
fn a_delta_holds_the_security_incidents_that_changed() {
    let mut e = engine();
    let hosts = ["web-1", "web-2", "web-3", "db-1"];
    let first: Vec<Event> = (0..hosts.len())
        .map(|i| detection("Shell", hosts[i], at(i as i64)))
        .collect();
    run(&mut e, &first);
    assert_eq!(e.state().security.incidents.len(), hosts.len());
    let mut base = e.take_full(true);
    run(&mut e, &[detection("Exfiltration", "web-2", at(10))]);
    let d = e.take_delta();
    assert_eq!(d.security_incidents.entries(), 1, "only web-2's incident");
    assert!(d.security_timers.entries() >= 1, "its quiet timer moved");
    assert!(d.whole.security.is_none());
    let before = base.clone();
    base.apply_delta(d.clone());
    assert_eq!(&base, e.checkpoint_state());

    // The earlier shape: no tracked security changes, the security state whole.
    let mut earlier = serde_json::to_value(&d).unwrap();
    let fields = earlier.as_object_mut().unwrap();
    for k in ["security_incidents", "security_open", "security_timers"] {
        fields.remove(k);
    }
    fields["whole"]["security"] = serde_json::to_value(&e.checkpoint_state().security).unwrap();
    let earlier: EngineDelta = serde_json::from_value(earlier).unwrap();
    let mut back = before;
    back.apply_delta(earlier);
    assert_eq!(&back, e.checkpoint_state());

    // The security incidents go on correlating after a restore through the delta.
    let s = Settings::embedded().unwrap();
    let mut restored = Engine::with_state(s.topology, s.policy, at_once(), base);
    let later = [detection("Persistence", "web-2", at(20))];
    let json = |o: Vec<Output>| o.iter().map(Output::to_json).collect::<Vec<_>>();
    let straight = json(run(&mut e, &later));
    assert!(!straight.is_empty());
    assert_eq!(json(run(&mut restored, &later)), straight);
}
