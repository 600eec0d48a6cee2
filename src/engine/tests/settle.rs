//! The group wait before an incident's first version and the group interval after it, with the
//! example settings (`group_wait = 30s`, `group_wait_max = 2m`, `group_interval = 1m`).

use super::*;
use crate::model::Aspect;

/// An engine with the example settings, waits included.
fn waiting() -> Engine {
    let s = Settings::embedded().unwrap();
    Engine::new(s.topology, s.policy, s.config.correlation)
}

fn tick(e: &mut Engine, t: i64) -> Vec<Output> {
    e.apply(Input::Tick(at(t))).outputs
}

fn api(status: Status, t: i64) -> Event {
    ev(
        "HighErrorRate",
        "payments-api-7f9c",
        Severity::Critical,
        status,
        t,
    )
}

fn db(status: Status, t: i64) -> Event {
    ev(
        "PostgresDown",
        "pg-payments-1",
        Severity::Critical,
        status,
        t,
    )
}

#[test]
fn the_first_version_waits_until_the_root_cause_stops_moving() {
    let mut e = waiting();
    // The symptom first: payments-api could still have a failing dependency.
    assert!(e.apply(&api(Status::Firing, 0)).outputs.is_empty());
    assert!(tick(&mut e, 25).is_empty());
    // Its cause 25 s later: the root moves to the database, which needs nothing.
    assert!(e.apply(&db(Status::Firing, 25)).outputs.is_empty());
    assert!(tick(&mut e, 54).is_empty(), "30 s after the root moved");
    let out = tick(&mut e, 55);
    let v1 = incidents(&out);
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0].version, 1);
    assert_eq!(v1[0].changed, [Aspect::Opened]);
    assert_eq!(v1[0].updated_at, at(55), "stamped when it was due");
    assert_eq!(v1[0].root_cause.as_ref().unwrap().service, "payments-db");
    assert_eq!(v1[0].alerts.len(), 2);
    let r = rfcs(&out);
    assert_eq!(r.len(), 1, "one RFC, for the cause only");
    assert_eq!(r[0].rule, "database-failover");
    assert_eq!(r[0].service.as_deref(), Some("payments-db"));
}

#[test]
fn a_root_cause_that_could_still_move_waits_up_to_the_cap() {
    let mut e = waiting();
    let checkout = ev(
        "HighLatency",
        "checkout-api-5c1a",
        Severity::Major,
        Status::Firing,
        0,
    );
    assert!(e.apply(&checkout).outputs.is_empty());
    assert!(tick(&mut e, 119).is_empty());
    let v1 = tick(&mut e, 120);
    assert_eq!(incidents(&v1)[0].updated_at, at(120));
    // A root cause that needs nothing waits group_wait only.
    let mut e = waiting();
    e.apply(&db(Status::Firing, 0));
    assert_eq!(incidents(&tick(&mut e, 30)).len(), 1);
}

#[test]
fn later_changes_are_coalesced_but_urgent_ones_are_published_at_once() {
    let mut e = waiting();
    e.apply(&db(Status::Firing, 0));
    assert_eq!(incidents(&tick(&mut e, 30)).len(), 1, "v1 at 30 s");
    // Two symptoms join within the interval: one version for both, a minute after v1.
    assert!(e.apply(&api(Status::Firing, 40)).outputs.is_empty());
    let web = ev(
        "Http5xxRate",
        "web-1",
        Severity::Critical,
        Status::Firing,
        60,
    );
    assert!(e.apply(&web).outputs.is_empty());
    assert!(tick(&mut e, 89).is_empty());
    let out = tick(&mut e, 90);
    let v2 = incidents(&out);
    assert_eq!((v2[0].version, v2[0].alerts.len()), (2, 3));
    assert!(
        v2[0].changed.contains(&Aspect::Alerts),
        "{:?}",
        v2[0].changed
    );
    // An acknowledgement does not wait for the interval.
    let out = e.acknowledge(&v2[0].id.clone(), "alice", at(95));
    let v3 = incidents(&out);
    assert_eq!(v3[0].version, 3);
    assert_eq!(v3[0].changed, [Aspect::Acknowledged]);
    // Repeats are no news at all.
    assert!(e.apply(&db(Status::Firing, 100)).outputs.is_empty());
    assert!(tick(&mut e, 300).is_empty());
}

#[test]
fn an_incident_merged_away_before_its_first_version_is_never_published() {
    let mut e = waiting();
    // Two unlinked symptoms open two incidents; checkout, which needs both, links them.
    e.apply(&api(Status::Firing, 0));
    let auth = ev(
        "LoginFailures",
        "auth-6d2b",
        Severity::Critical,
        Status::Firing,
        5,
    );
    e.apply(&auth);
    let checkout = ev(
        "HighLatency",
        "checkout-api-5c1a",
        Severity::Major,
        Status::Firing,
        10,
    );
    assert!(e.apply(&checkout).outputs.is_empty());
    assert_eq!(e.state().correlation.groups.len(), 2);
    let out = tick(&mut e, 200);
    let published: BTreeSet<&str> = incidents(&out).iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        published.len(),
        1,
        "only the incident that carries the alerts"
    );
    assert_eq!(incidents(&out)[0].alerts.len(), 3);
    assert!(incidents(&out).iter().all(|i| i.merged_into.is_none()));
}

#[test]
fn a_blip_that_settles_within_the_wait_is_published_once_as_resolved() {
    let mut e = waiting();
    e.apply(&db(Status::Firing, 0));
    assert!(e.apply(&db(Status::Resolved, 10)).outputs.is_empty());
    // Its wait ends while every alert is resolved (the resolve hold runs): nothing to page.
    assert!(tick(&mut e, 60).is_empty());
    let out = tick(&mut e, 70);
    let v = incidents(&out);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].version, v[0].status), (1, IncidentStatus::Resolved));
    assert!(rfcs(&out).is_empty(), "no RFC for an incident already over");
    let kinds: Vec<_> = e.take_milestones().into_iter().map(|m| m.kind).collect();
    assert!(
        matches!(kinds[0], MilestoneKind::Opened { .. }),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds[1], MilestoneKind::Resolved { .. }),
        "{kinds:?}"
    );
}

#[test]
fn a_version_held_back_survives_a_checkpoint() {
    let mut e = waiting();
    e.apply(&api(Status::Firing, 0));
    e.apply(&db(Status::Firing, 25));
    let json = serde_json::to_vec(e.state()).unwrap();
    let state: EngineState = serde_json::from_slice(&json).unwrap();
    assert_eq!(&state, e.state());
    assert_eq!(state.pending.len(), 1);
    let s = Settings::embedded().unwrap();
    let mut restored = Engine::with_state(s.topology, s.policy, s.config.correlation, state);
    let a: Vec<String> = tick(&mut e, 60).iter().map(Output::to_json).collect();
    let b: Vec<String> = tick(&mut restored, 60)
        .iter()
        .map(Output::to_json)
        .collect();
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn without_a_wait_the_first_version_is_published_at_once() {
    let mut e = engine_with(|c| c.group_wait = std::time::Duration::ZERO);
    let out = e.apply(&api(Status::Firing, 0)).outputs;
    assert_eq!(
        incidents(&out)[0].root_cause.as_ref().unwrap().service,
        "payments-api"
    );
}
