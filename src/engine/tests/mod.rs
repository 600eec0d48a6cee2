use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::engine::Settings;
use crate::model::{Incident, IncidentStatus, Priority, Status};
use crate::model::{Rfc, RfcCategory, Severity};
use crate::suppress::SuppressReason;

/// An engine with the example settings, publishing every change at once
/// (`group_wait = group_interval = 0`), so each test sees the version of each step; the waits
/// themselves are tested in `settle.rs`.
fn engine() -> Engine {
    engine_with(|_| {})
}

fn engine_with(change: impl FnOnce(&mut CorrelationConfig)) -> Engine {
    let s = Settings::embedded().unwrap();
    let mut cfg = at_once();
    change(&mut cfg);
    Engine::new(s.topology, s.policy, cfg)
}

/// The example correlation settings with every version published at once.
fn at_once() -> CorrelationConfig {
    CorrelationConfig {
        group_wait: std::time::Duration::ZERO,
        group_interval: std::time::Duration::ZERO,
        ..Settings::embedded().unwrap().config.correlation
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

/// A security detection of `rule` on `host` at `t` (MITRE ATT&CK execution).
fn detection(rule: &str, host: &str, t: DateTime<Utc>) -> Event {
    let mut e = ev(rule, host, Severity::Major, Status::Firing, 0);
    e.time = t;
    e.id = format!("{rule}-{host}-{t}");
    e.source = "falco".into();
    e.category = crate::model::Category::Security;
    e.labels = [("host".to_owned(), host.to_owned())].into();
    e.attributes = [(
        "attack".to_owned(),
        serde_json::json!({"tactics": ["TA0002"], "techniques": []}),
    )]
    .into();
    e
}

fn ev(name: &str, ci: &str, sev: Severity, status: Status, t: i64) -> Event {
    Event {
        id: format!("{name}-{ci}-{t}"),
        source: "test".into(),
        time: at(t),
        ci: Some(ci.into()),
        name: name.into(),
        severity: sev,
        status,
        category: Default::default(),
        fingerprint: format!("{name}/{ci}"),
        labels: Default::default(),
        attributes: Default::default(),
    }
}

fn incidents(out: &[Output]) -> Vec<&Incident> {
    out.iter()
        .filter_map(|o| match o {
            Output::Incident(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn rfcs(out: &[Output]) -> Vec<&Rfc> {
    out.iter()
        .filter_map(|o| match o {
            Output::Change(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn run(e: &mut Engine, events: &[Event]) -> Vec<Output> {
    events.iter().flat_map(|ev| e.apply(ev).outputs).collect()
}

fn outage() -> Vec<Event> {
    use Severity::*;
    use Status::*;
    vec![
        ev("PostgresDown", "pg-payments-1", Critical, Firing, 0),
        ev("HighErrorRate", "payments-api-7f9c", Critical, Firing, 5),
        ev("PostgresDown", "pg-payments-1", Critical, Firing, 10),
        ev("HighLatency", "checkout-api-5c1a", Major, Firing, 15),
        ev("Http5xxRate", "web-1", Critical, Firing, 20),
        ev("QueueBacklog", "email-worker-1", Warning, Firing, 21),
        ev("PostgresDown", "pg-payments-1", Critical, Resolved, 100),
        ev(
            "HighErrorRate",
            "payments-api-7f9c",
            Critical,
            Resolved,
            101,
        ),
        ev("HighLatency", "checkout-api-5c1a", Major, Resolved, 102),
        ev("Http5xxRate", "web-1", Critical, Resolved, 103),
    ]
}

#[test]
fn a_failing_dependency_and_its_dependents_make_one_incident() {
    let mut e = engine();
    let mut out = run(&mut e, &outage());
    // The resolve hold (1 minute by default) ends.
    out.extend(e.tick(at(103 + 60)));
    let incs = incidents(&out);
    let ids: BTreeSet<&str> = incs.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "the outage and the unrelated email backlog");
    let last = incs
        .iter()
        .rev()
        .find(|i| i.failing_services.contains(&"payments-db".to_string()))
        .unwrap();
    assert_eq!(last.status, IncidentStatus::Resolved);
    assert_eq!(last.alerts.len(), 4);
    assert_eq!(last.root_cause.as_ref().unwrap().service, "payments-db");
    assert_eq!(last.priority, Priority::P1);
    assert_eq!(last.severity, Severity::Critical);
    assert!(last.services.contains(&"web-frontend".to_string()));
    assert_eq!(last.capabilities, ["online-payments", "order-checkout"]);
    assert_eq!(last.impact.revenue_at_risk_per_minute, 2000.0);
    assert_eq!(
        last.event_count, 9,
        "the repeat is counted, not a new alert"
    );
    // Versions count up by one with no gaps: open, joins, capabilities recovering, final
    // resolve. The repeat at t=10 made no version.
    let versions: Vec<u32> = incs
        .iter()
        .filter(|i| i.id == last.id)
        .map(|i| i.version)
        .collect();
    assert_eq!(versions, (1..=versions.len() as u32).collect::<Vec<_>>());
    let email = incs.iter().find(|i| i.id != last.id).unwrap();
    assert_eq!(email.priority, Priority::P4);
    assert_eq!(email.capabilities, ["marketing-email"]);
    // One RFC for the outage, from the first rule it met; nobody approved it before the
    // incident resolved, so its next version withdraws it.
    let r = rfcs(&out);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].incident_id, last.id);
    assert_eq!(r[0].rule, "database-failover");
    assert_eq!(r[0].category, RfcCategory::Emergency);
    assert!(r[0].action.starts_with("Fail over payments-db"));
    assert_eq!(r[0].cis, ["pg-payments-1"]);
    assert_eq!(r[0].status, crate::model::RfcStatus::Proposed);
    assert_eq!((r[1].id.as_str(), r[1].version), (r[0].id.as_str(), 2));
    assert_eq!(r[1].status, crate::model::RfcStatus::Withdrawn);
    assert!(r[1].reason.as_deref().unwrap().contains("resolved before"));
}

#[test]
fn a_new_alert_holds_the_models_copies_of_its_ci_and_service_names() {
    let mut e = engine();
    let known = ev(
        "PostgresDown",
        "pg-payments-1",
        Severity::Critical,
        Status::Firing,
        0,
    );
    let unknown = ev(
        "Disk",
        "not-in-the-model",
        Severity::Major,
        Status::Firing,
        1,
    );
    run(&mut e, &[known.clone(), unknown.clone()]);
    let alerts = &e.state().correlation.alerts;
    let a = &alerts[known.fingerprint.as_str()].alert;
    let service = a.service.as_ref().unwrap();
    assert_eq!(&**service, "payments-db");
    assert!(Arc::ptr_eq(
        service,
        e.topo.ids().shared("payments-db").unwrap()
    ));
    let Some(Name::Model(ci)) = e.topo.resolve(&known).ci else {
        panic!("pg-payments-1 is a CI of the model");
    };
    assert!(Arc::ptr_eq(a.ci.as_ref().unwrap(), ci));
    // A CI the model does not know is still kept once, through the engine's own strings.
    let b = &alerts[unknown.fingerprint.as_str()].alert;
    assert_eq!(b.ci.as_deref(), Some("not-in-the-model"));
    assert_eq!(b.service, None);
}

#[test]
fn the_build_memos_count_their_hits_and_misses_once() {
    let mut e = engine();
    let outage = outage();
    // The first alert: a new incident, so a new shape and a new assessment.
    run(&mut e, &outage[..1]);
    let first = e.take_memo_counts();
    assert!(
        first.build.misses >= 1 && first.assessment.misses >= 1,
        "{first:?}"
    );
    assert_eq!(e.take_memo_counts(), MemoCounts::default(), "taken once");
    // Another alert on the same service, no worse: the incident's shape stays, the kept
    // build answers.
    let same = ev(
        "PostgresSlowQueries",
        "pg-payments-1",
        Severity::Critical,
        Status::Firing,
        1,
    );
    run(&mut e, &[same]);
    let joined = e.take_memo_counts();
    assert_eq!(
        (joined.build.hits, joined.build.misses),
        (1, 0),
        "{joined:?}"
    );
    run(&mut e, &outage[1..]);
    let rest = e.take_memo_counts();
    assert!(rest.build.hits + rest.build.misses > 0, "{rest:?}");
    let mut sum = first;
    sum.add(rest);
    assert_eq!(sum.build.misses, first.build.misses + rest.build.misses);
}

#[test]
fn same_input_gives_identical_output() {
    let a: Vec<String> = run(&mut engine(), &outage())
        .iter()
        .map(Output::to_json)
        .collect();
    let b: Vec<String> = run(&mut engine(), &outage())
        .iter()
        .map(Output::to_json)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn alerts_outside_the_window_open_a_new_incident() {
    use Severity::*;
    let mut e = engine();
    let out = run(
        &mut e,
        &[
            ev("PostgresDown", "pg-payments-1", Critical, Status::Firing, 0),
            ev(
                "HighErrorRate",
                "payments-api-7f9c",
                Critical,
                Status::Firing,
                301,
            ),
        ],
    );
    let ids: BTreeSet<String> = incidents(&out).iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids.len(), 2);
}

fn pg(status: Status, t: i64) -> Event {
    ev(
        "PostgresDown",
        "pg-payments-1",
        Severity::Critical,
        status,
        t,
    )
}

#[test]
fn an_incident_resolves_after_the_hold_and_reopens_within_the_window() {
    let mut e = engine();
    let opened = e.apply(&pg(Status::Firing, 0)).outputs;
    let id = incidents(&opened)[0].id.clone();
    // All alerts resolved: the incident stays open (its alert shows resolved) for the hold.
    let held = e.apply(&pg(Status::Resolved, 10)).outputs;
    assert!(
        incidents(&held)
            .iter()
            .all(|i| i.status == IncidentStatus::Open)
    );
    // A re-fire within the hold keeps it open.
    assert_eq!(
        e.apply(&pg(Status::Firing, 30)).outcome,
        Some(Outcome::Joined)
    );
    assert!(e.tick(at(200)).is_empty(), "still firing: no resolve");
    e.apply(&pg(Status::Resolved, 300));
    assert!(e.tick(at(359)).is_empty(), "hold not over");
    let resolved = e.tick(at(360));
    let r = incidents(&resolved);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, IncidentStatus::Resolved);
    assert_eq!(r[0].resolved_at, Some(at(300)));
    let resolved_version = r[0].version;
    // The same cause returns within the reopen window: same incident, new version.
    let again = e.apply(&pg(Status::Firing, 900));
    assert_eq!(again.outcome, Some(Outcome::Reopened));
    let r = incidents(&again.outputs);
    assert_eq!(
        (r[0].id.as_str(), r[0].status),
        (id.as_str(), IncidentStatus::Open)
    );
    assert_eq!(r[0].reopened, 1);
    assert_eq!(r[0].version, resolved_version + 1);
}

#[test]
fn an_acknowledgement_makes_one_new_version_on_the_owning_engine() {
    let mut e = engine();
    let id = incidents(&e.apply(&pg(Status::Firing, 0)).outputs)[0]
        .id
        .clone();
    let out = e.acknowledge(&id, "alice", at(30));
    let i = incidents(&out);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].version, 2);
    assert_eq!(i[0].acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(i[0].acknowledged_at, Some(at(30)));
    assert!(e.acknowledge(&id, "bob", at(40)).is_empty(), "once only");
    assert!(e.acknowledge("INC-elsewhere", "bob", at(40)).is_empty());
}

fn engine_with_suppression(rules: &str) -> Engine {
    let s = Settings::embedded().unwrap();
    let cfg: crate::suppress::SuppressionConfig = toml::from_str(rules).unwrap();
    Engine::new(s.topology, s.policy, at_once()).with_suppressor(Suppressor::new(cfg).unwrap())
}

#[test]
fn silenced_events_open_nothing_but_stay_visible_and_resolves_still_apply() {
    let mut e = engine_with_suppression(&format!(
        r#"
        [[silences]]
        id = "db-maintenance"
        matchers = '{{service="payments-db"}}'
        starts_at = "{}"
        ends_at = "{}"
        "#,
        at(50).to_rfc3339(),
        at(150).to_rfc3339()
    ));
    // Open before the silence: the incident exists.
    let opened = e.apply(&pg(Status::Firing, 0));
    assert_eq!(opened.outcome, Some(Outcome::Opened));
    // A new alert on the silenced service inside the silence: suppressed, remembered.
    let mut other = pg(Status::Firing, 60);
    other.name = "PostgresReplicationLag".into();
    other.fingerprint = "lag".into();
    let s = e.apply(&other);
    assert_eq!(s.outcome, Some(Outcome::Suppressed));
    assert!(s.outputs.is_empty());
    assert_eq!(s.suppressed.as_ref().unwrap().by, "db-maintenance");
    assert_eq!(e.state().suppressed["lag"].count, 1);
    assert_eq!(e.summary().suppressed_alerts, 1);
    // The resolve of the alert that opened the incident is applied, silence or not.
    assert_eq!(
        e.apply(&pg(Status::Resolved, 70)).outcome,
        Some(Outcome::AlertResolved)
    );
    // After the silence the same alert opens an incident.
    other.time = at(200);
    assert_eq!(e.apply(&other).outcome, Some(Outcome::Opened));
}

#[test]
fn a_silence_added_at_run_time_survives_a_checkpoint() {
    let mut e = engine();
    let silence: crate::suppress::Silence = serde_json::from_value(serde_json::json!({
        "id": "db", "matchers": "{service=\"payments-db\"}",
        "starts_at": at(0).to_rfc3339(), "ends_at": at(100).to_rfc3339()
    }))
    .unwrap();
    assert_eq!(e.add_silence(silence).unwrap(), "db");
    let state = e.checkpoint_state().clone();
    let s = Settings::embedded().unwrap();
    let mut restored =
        s.engine_with_state(serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap());
    assert_eq!(
        restored.apply(&pg(Status::Firing, 10)).outcome,
        Some(Outcome::Suppressed)
    );
    assert_eq!(
        restored.apply(&pg(Status::Firing, 200)).outcome,
        Some(Outcome::Opened)
    );
}

#[test]
fn a_firing_source_inhibits_matching_targets_with_equal_labels() {
    let mut e = engine_with_suppression(
        r#"
        [[inhibit]]
        source_matchers = ['alertname="PostgresDown"']
        target_matchers = ['severity="warning"']
        equal = ["cluster"]
        "#,
    );
    let mut down = pg(Status::Firing, 0);
    down.labels.insert("cluster".into(), "payments".into());
    e.apply(&down);
    let mut warn = ev(
        "SlowQueries",
        "pg-payments-1",
        Severity::Warning,
        Status::Firing,
        5,
    );
    warn.labels.insert("cluster".into(), "payments".into());
    let a = e.apply(&warn);
    assert_eq!(a.outcome, Some(Outcome::Suppressed));
    assert_eq!(a.suppressed.unwrap().reason, SuppressReason::Inhibited);
    // Another cluster is not inhibited.
    let mut other = ev(
        "SlowQueries",
        "pg-users-1",
        Severity::Warning,
        Status::Firing,
        6,
    );
    other.labels.insert("cluster".into(), "users".into());
    assert_ne!(e.apply(&other).outcome, Some(Outcome::Suppressed));
    // The inhibition state survives a checkpoint.
    let state = e.checkpoint_state().clone();
    assert!(!state.inhibit.sources().is_empty());
}

#[test]
fn outcomes_index_their_own_list() {
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*o as usize, i, "{o:?}");
    }
}

#[test]
fn an_incident_closes_after_the_reopen_window_and_a_new_fire_opens_another() {
    let mut e = engine();
    let id = incidents(&e.apply(&pg(Status::Firing, 0)).outputs)[0]
        .id
        .clone();
    e.apply(&pg(Status::Resolved, 10));
    e.tick(at(70));
    let closed = e.tick(at(10 + 1800));
    let c = incidents(&closed);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, IncidentStatus::Closed);
    assert_eq!(c[0].closed_at, Some(at(1810)));
    let fresh = e.apply(&pg(Status::Firing, 2000));
    assert_eq!(fresh.outcome, Some(Outcome::Opened));
    let f = incidents(&fresh.outputs);
    assert_ne!(f[0].id, id);
    assert_eq!(f[0].version, 1);
}

#[test]
fn a_flapping_alert_holds_its_incident_open_until_it_calms_down() {
    let mut e = engine_with(|c| c.resolve_hold = std::time::Duration::ZERO);
    e.apply(&pg(Status::Firing, 0));
    e.apply(&pg(Status::Resolved, 10)); // resolves at once (no hold)
    e.apply(&pg(Status::Firing, 20)); // reopened
    e.apply(&pg(Status::Resolved, 30));
    let flap = e.apply(&pg(Status::Firing, 40)); // 4 changes within 10 minutes
    let i = incidents(&flap.outputs);
    assert!(i.last().unwrap().alerts[0].flapping, "{i:?}");
    let quiet = e.apply(&pg(Status::Resolved, 50));
    assert!(
        incidents(&quiet.outputs)
            .iter()
            .all(|i| i.status == IncidentStatus::Open),
        "a flapping alert's resolve does not resolve the incident"
    );
    // Ten minutes after its last change it is no longer flapping, and the incident resolves.
    let calm = e.tick(at(50 + 600));
    let last = *incidents(&calm).last().unwrap();
    assert_eq!(last.status, IncidentStatus::Resolved);
    assert!(!last.alerts[0].flapping);
}

#[test]
fn a_source_without_resolves_is_resolved_by_its_timeout() {
    let mut e = engine_with(|c| {
        c.resolve_hold = std::time::Duration::ZERO;
        c.sources.insert(
            "test".into(),
            crate::config::SourceRules {
                resolve_timeout: Some(std::time::Duration::from_secs(300)),
                ..Default::default()
            },
        );
    });
    e.apply(&pg(Status::Firing, 0));
    e.apply(&pg(Status::Firing, 200)); // a repeat moves the timeout on
    assert!(e.tick(at(400)).is_empty());
    let out = e.tick(at(500));
    let i = incidents(&out);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].status, IncidentStatus::Resolved);
    assert!(i[0].alerts[0].auto_resolved);
}

#[test]
fn fingerprint_fields_per_source_merge_alerts_that_differ_elsewhere() {
    let mut e = engine_with(|c| {
        c.sources.insert(
            "test".into(),
            crate::config::SourceRules {
                fingerprint: Some(vec!["alertname".into(), "ci".into()]),
                ..Default::default()
            },
        );
    });
    let mut a = pg(Status::Firing, 0);
    a.fingerprint = "one".into();
    let mut b = pg(Status::Firing, 5);
    b.fingerprint = "two".into();
    e.apply(&a);
    assert_eq!(e.apply(&b).outcome, Some(Outcome::Deduplicated));
}

#[test]
fn group_by_keeps_alerts_with_other_label_values_apart() {
    let mut e = engine_with(|c| c.group_by = vec!["env".into()]);
    let mut a = pg(Status::Firing, 0);
    a.labels.insert("env".into(), "prod".into());
    let mut b = ev(
        "HighErrorRate",
        "payments-api-7f9c",
        Severity::Critical,
        Status::Firing,
        1,
    );
    b.labels.insert("env".into(), "staging".into());
    e.apply(&a);
    assert_eq!(e.apply(&b).outcome, Some(Outcome::Opened));
    let mut c = ev(
        "HighLatency",
        "checkout-api-5c1a",
        Severity::Major,
        Status::Firing,
        2,
    );
    c.labels.insert("env".into(), "prod".into());
    assert_eq!(e.apply(&c).outcome, Some(Outcome::Joined));
}

#[test]
fn symptoms_opened_first_merge_when_their_shared_dependency_fails() {
    let mut e = engine();
    // Two services that need payments-api, but not each other, alert first.
    let a = e.apply(&ev(
        "HighLatency",
        "checkout-api-5c1a",
        Severity::Major,
        Status::Firing,
        0,
    ));
    assert_eq!(a.outcome, Some(Outcome::Opened));
    let first = incidents(&a.outputs)[0].id.clone();
    // payments-db fails: it links to both, so everything ends in the first incident.
    let db = e.apply(&pg(Status::Firing, 5));
    assert_eq!(db.outcome, Some(Outcome::Joined));
    let i = incidents(&db.outputs);
    assert_eq!(i[0].id, first);
    assert_eq!(i[0].root_cause.as_ref().unwrap().service, "payments-db");
    let checkout = i[0]
        .alerts
        .iter()
        .find(|a| &*a.name == "HighLatency")
        .unwrap();
    assert_eq!(checkout.symptom_of.as_deref(), Some("payments-db"));
    let db_alert = i[0]
        .alerts
        .iter()
        .find(|a| &*a.name == "PostgresDown")
        .unwrap();
    assert_eq!(db_alert.symptom_of, None);
}

#[test]
fn a_change_shortly_before_an_incident_is_a_related_change() {
    let mut e = engine();
    let mut deploy = ev(
        "deploy payments-api v2.4.1",
        "payments-api-7f9c",
        Severity::Info,
        Status::Firing,
        0,
    );
    deploy.category = crate::model::Category::Change;
    deploy.id = "deploy-42".into();
    let c = e.apply(&deploy);
    assert_eq!(c.outcome, Some(Outcome::Change));
    assert!(c.outputs.is_empty(), "a change alone opens nothing");
    let out = e.apply(&ev(
        "HighLatency",
        "checkout-api-5c1a",
        Severity::Major,
        Status::Firing,
        120,
    ));
    let i = incidents(&out.outputs);
    assert_eq!(i[0].related_changes.len(), 1, "{:?}", i[0]);
    assert_eq!(i[0].related_changes[0].change.id, "deploy-42");
    assert_eq!(
        serde_json::to_value(&i[0].related_changes[0]).unwrap(),
        serde_json::json!({"id": "deploy-42", "name": "deploy payments-api v2.4.1",
            "ci": "payments-api-7f9c", "service": "payments-api", "source": "test",
            "time": at(0), "seconds_before_incident": 120}),
        "a related change is the change's fields and the seconds before"
    );
    assert_eq!(i[0].related_changes[0].seconds_before_incident, 120);
    // A change on an unrelated service is not listed.
    let mut other = ev(
        "deploy email",
        "email-worker-1",
        Severity::Info,
        Status::Firing,
        130,
    );
    other.category = crate::model::Category::Change;
    assert!(incidents(&e.apply(&other).outputs).is_empty());
}

#[test]
fn a_resolve_for_an_unknown_alert_changes_nothing() {
    let mut e = engine();
    let a = e.apply(&ev("X", "web-1", Severity::Major, Status::Resolved, 0));
    assert_eq!(a.outcome, Some(Outcome::UnmatchedResolve));
    assert!(a.outputs.is_empty());
    // (Its name and source are remembered, shared with later alerts.)
    let summary = Summary {
        shared_strings: 0,
        ..e.summary()
    };
    assert_eq!(summary, Summary::default());
    // Its firing arriving late (older timestamp) is stale and opens nothing.
    let late = e.apply(&ev("X", "web-1", Severity::Major, Status::Firing, -10));
    assert_eq!(late.outcome, Some(Outcome::Stale));
    assert!(late.outputs.is_empty());
    // A firing after the resolve is a new alert and opens an incident.
    let again = e.apply(&ev("X", "web-1", Severity::Major, Status::Firing, 10));
    assert_eq!(again.outcome, Some(Outcome::Opened));
    assert_eq!(incidents(&again.outputs).len(), 1);
}

#[test]
fn resolved_incidents_are_forgotten_after_retention() {
    use Severity::*;
    let mut e = engine();
    run(
        &mut e,
        &[
            ev("PostgresDown", "pg-payments-1", Critical, Status::Firing, 0),
            ev(
                "PostgresDown",
                "pg-payments-1",
                Critical,
                Status::Resolved,
                10,
            ),
        ],
    );
    // Resolved after the hold at 70, closed 30 minutes after resolving (1810), forgotten an
    // hour after closing (5410).
    e.tick(at(5409));
    assert_eq!(e.state().published.len(), 1);
    e.tick(at(5410));
    assert!(e.state().published.is_empty());
    assert!(e.state().correlation.alerts.is_empty());
    assert!(e.state().correlation.timers.is_empty());
}

#[test]
fn a_tick_past_hold_reopen_window_and_retention_publishes_resolved_and_closed_before_forgetting() {
    let mut e = engine();
    let opened = run(&mut e, &[pg(Status::Firing, 0), pg(Status::Resolved, 10)]);
    let id = incidents(&opened)[0].id.clone();
    // The next input comes a day later (a quiet partition, sparse ticks): every timer of the
    // incident is due at once.
    let out = e.tick(at(86_400));
    let steps: Vec<(&str, IncidentStatus, u32)> = incidents(&out)
        .iter()
        .map(|i| (i.id.as_str(), i.status, i.version))
        .collect();
    let last = incidents(&opened).last().unwrap().version;
    assert_eq!(
        steps,
        [
            (id.as_str(), IncidentStatus::Resolved, last + 1),
            (id.as_str(), IncidentStatus::Closed, last + 2)
        ],
        "each step published, in order"
    );
    let i = incidents(&out);
    assert_eq!(
        i[0].resolved_at,
        Some(at(10)),
        "resolved when its alert did"
    );
    assert_eq!(
        i[1].updated_at,
        at(10 + 1800),
        "closed when the reopen window ended"
    );
    assert!(e.state().published.is_empty(), "then forgotten");
    assert!(e.state().correlation.groups.is_empty());
}

#[test]
fn redelivered_events_are_skipped_by_origin() {
    let mut e = engine();
    let o = |offset, index| {
        Some(Origin {
            partition: 0,
            offset,
            index,
        })
    };
    let evs = outage();
    let first = e.apply(Input::Event(&evs[0], o(5, 0)));
    assert_eq!(first.outcome, Some(Outcome::Opened));
    let again = e.apply(Input::Event(&evs[0], o(5, 0)));
    assert_eq!(again.outcome, Some(Outcome::Redelivered));
    assert!(again.outputs.is_empty());
    assert_eq!(
        e.apply(Input::Event(&evs[1], o(5, 1))).outcome,
        Some(Outcome::Joined)
    );
    assert_eq!(
        e.apply(Input::Event(&evs[1], o(4, 9))).outcome,
        Some(Outcome::Redelivered)
    );
    // Another raw partition has its own position.
    let other = Some(Origin {
        partition: 1,
        offset: 0,
        index: 0,
    });
    assert_eq!(
        e.apply(Input::Event(&evs[3], other)).outcome,
        Some(Outcome::Joined)
    );
}

#[test]
fn caps_evict_resolved_incidents_first() {
    let s = Settings::embedded().unwrap();
    let cfg = CorrelationConfig {
        max_incidents: 10,
        resolve_hold: std::time::Duration::ZERO,
        ..s.config.correlation.clone()
    };
    let mut e = Engine::new(s.topology, s.policy, cfg);
    // 8 resolved, then open ones on distinct unmapped hosts.
    for i in 0..8 {
        let host = format!("host-{i}");
        e.apply(&ev("Down", &host, Severity::Major, Status::Firing, i));
        e.apply(&ev("Down", &host, Severity::Major, Status::Resolved, i + 1));
    }
    let mut evicted = 0;
    for i in 8..14 {
        let a = e.apply(&ev(
            "Down",
            &format!("host-{i}"),
            Severity::Major,
            Status::Firing,
            i,
        ));
        evicted += a.evicted.incidents.len();
        assert_eq!(a.evicted.open_incidents, 0);
    }
    assert!(e.state().correlation.groups.len() <= 10);
    assert!(evicted >= 4);
    let open = e
        .state()
        .correlation
        .groups
        .values()
        .filter(|g| g.resolved_at.is_none())
        .count();
    assert_eq!(
        open, 6,
        "no open incident was evicted while resolved ones remained"
    );
}

#[test]
fn state_survives_a_json_round_trip_exactly() {
    let mut e = engine();
    run(&mut e, &outage()[..7]);
    let json = serde_json::to_vec(e.state()).unwrap();
    let back: EngineState = serde_json::from_slice(&json).unwrap();
    assert_eq!(&back, e.state());
    let s = Settings::embedded().unwrap();
    let mut restored = Engine::with_state(s.topology, s.policy, at_once(), back);
    let rest: Vec<String> = run(&mut restored, &outage()[7..])
        .iter()
        .map(Output::to_json)
        .collect();
    let straight: Vec<String> = {
        let mut e2 = engine();
        run(&mut e2, &outage()[..7]);
        run(&mut e2, &outage()[7..])
            .iter()
            .map(Output::to_json)
            .collect()
    };
    assert_eq!(rest, straight);
}

/// `published`, `accounts` and `pending` are hash maps (their order differs from one map to the
/// next): a checkpoint still writes them in the order of their ids, so the same input gives
/// the same bytes.
#[test]
fn a_checkpoint_writes_the_hash_maps_in_key_order() {
    let feed = |e: &mut Engine| {
        let evs: Vec<Event> = (0..40)
            .map(|i| {
                ev(
                    "Down",
                    &format!("host-{i:02}"),
                    Severity::Major,
                    Status::Firing,
                    i,
                )
            })
            .collect();
        run(e, &evs);
        // Later builds of a few, after the others (accounts change in place).
        let again: Vec<Event> = (0..5)
            .map(|i| {
                ev(
                    "Slow",
                    &format!("host-{i:02}"),
                    Severity::Minor,
                    Status::Firing,
                    100 + i,
                )
            })
            .collect();
        run(e, &again);
    };
    // With waits, so that the second versions are still held back (`pending`) at the end.
    let waiting = || {
        engine_with(|c| {
            c.group_wait = std::time::Duration::from_secs(30);
            c.group_interval = std::time::Duration::from_secs(600);
        })
    };
    let (mut a, mut b) = (waiting(), waiting());
    feed(&mut a);
    feed(&mut b);
    assert!(
        a.state().published.len() >= 20,
        "{}",
        a.state().published.len()
    );
    assert_eq!(a.state().accounts.len(), a.state().published.len());
    let bytes = serde_json::to_vec(a.state()).unwrap();
    assert!(
        bytes == serde_json::to_vec(b.state()).unwrap(),
        "the same input gave different checkpoints"
    );
    // The ids appear in the text in sorted order within each of the three maps' objects.
    let text = String::from_utf8(bytes).unwrap();
    #[derive(serde::Deserialize)]
    struct Maps<'a> {
        #[serde(borrow)]
        published: &'a serde_json::value::RawValue,
        #[serde(borrow)]
        accounts: &'a serde_json::value::RawValue,
        #[serde(borrow)]
        pending: &'a serde_json::value::RawValue,
    }
    let maps: Maps = serde_json::from_str(&text).unwrap();
    let st = a.state();
    for (map, object, mut ids) in [
        (
            "published",
            maps.published.get(),
            st.published.keys().collect::<Vec<_>>(),
        ),
        (
            "accounts",
            maps.accounts.get(),
            st.accounts.keys().collect(),
        ),
        ("pending", maps.pending.get(), st.pending.keys().collect()),
    ] {
        assert!(ids.len() >= 2, "{map}: {}", ids.len());
        ids.sort();
        let found: Vec<usize> = ids
            .iter()
            .map(|id| object.find(&format!("\"{id}\":")).expect("every id"))
            .collect();
        assert!(found.is_sorted(), "{map}: {object}");
    }
}

#[test]
fn summary_counts_open_incidents_by_priority_and_capability() {
    let mut e = engine();
    run(&mut e, &outage()[..6]);
    let s = e.summary();
    assert_eq!(s.active_alerts, 5);
    assert_eq!(s.open_by_priority.get(&Priority::P1), Some(&1));
    assert_eq!(s.open_by_priority.get(&Priority::P4), Some(&1));
    assert_eq!(s.open_by_capability.get("online-payments"), Some(&1));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const CIS: [&str; 14] = [
        "pg-payments-1",
        "pg-users-1",
        "payments-api-7f9c",
        "auth-6d2b",
        "checkout-api-5c1a",
        "redis-search-1",
        "catalog-api-2b7e",
        "web-1",
        "web-2",
        "smtp-1",
        "email-worker-1",
        "host-a",
        "host-b",
        "host-c",
    ];

    fn event(ci: usize, name: usize, sev: usize, firing: bool, t: i64) -> Event {
        let sev = [Severity::Critical, Severity::Major, Severity::Warning][sev % 3];
        let status = if firing {
            Status::Firing
        } else {
            Status::Resolved
        };
        let mut e = ev(&format!("Alert{name}"), CIS[ci % CIS.len()], sev, status, t);
        e.fingerprint = format!("{}-{name}", CIS[ci % CIS.len()]);
        e
    }

    /// Firing events within two minutes (well inside the 5-minute window).
    fn burst() -> impl Strategy<Value = Vec<Event>> {
        proptest::collection::vec((0..14usize, 0..3usize, 0..3usize, 0..120i64), 1..40).prop_map(
            |v| {
                v.into_iter()
                    .map(|(ci, name, sev, t)| event(ci, name, sev, true, t))
                    .collect()
            },
        )
    }

    /// Any events, firing and resolved, over half an hour.
    fn traffic() -> impl Strategy<Value = Vec<Event>> {
        proptest::collection::vec(
            (0..14usize, 0..3usize, 0..3usize, any::<bool>(), 0..1800i64),
            1..80,
        )
        .prop_map(|v| {
            let mut v: Vec<Event> = v
                .into_iter()
                .map(|(ci, name, sev, firing, t)| event(ci, name, sev, firing, t))
                .collect();
            v.sort_by_key(|e| e.time);
            v
        })
    }

    /// The incidents as sets of alert fingerprints (merged ones left out).
    fn grouping(e: &Engine) -> BTreeSet<BTreeSet<String>> {
        e.state()
            .correlation
            .groups
            .values()
            .filter(|g| g.merged_into.is_none())
            .map(|g| g.alerts.iter().map(|f| f.to_string()).collect())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn replay_is_deterministic(events in traffic()) {
            let (mut a, mut b) = (engine(), engine());
            let out_a: Vec<String> = run(&mut a, &events).iter().map(Output::to_json).collect();
            let out_b: Vec<String> = run(&mut b, &events).iter().map(Output::to_json).collect();
            prop_assert_eq!(out_a, out_b);
            prop_assert_eq!(a.state(), b.state());
        }

        #[test]
        fn the_order_of_events_inside_a_window_does_not_change_the_grouping(
            (events, shuffled) in burst().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let (mut a, mut b) = (engine(), engine());
            run(&mut a, &events);
            run(&mut b, &shuffled);
            prop_assert_eq!(grouping(&a), grouping(&b));
        }

        #[test]
        fn no_event_disappears(events in traffic()) {
            let mut e = engine();
            let mut last: BTreeMap<String, Incident> = BTreeMap::new();
            let mut placed: Vec<(String, Outcome, bool)> = Vec::new();
            for ev in &events {
                let applied = e.apply(ev);
                for o in applied.outputs {
                    if let Output::Incident(i) = o {
                        last.insert(i.id.clone(), i);
                    }
                }
                let alert = e.state().correlation.alerts.get(ev.fingerprint.as_str());
                // A repeat of a resolve that matched nothing stays without an incident.
                let unmatched = alert.is_some_and(|a| {
                    a.incident.is_none() && a.alert.status == Status::Resolved
                });
                let outcome = applied.outcome.expect("an event has an outcome");
                placed.push((ev.fingerprint.clone(), outcome, unmatched));
            }
            for (f, outcome, unmatched) in placed {
                match outcome {
                    // Accounted for without an incident: counted by outcome.
                    Outcome::UnmatchedResolve | Outcome::Stale | Outcome::Change
                    | Outcome::Suppressed | Outcome::Redelivered => continue,
                    Outcome::Deduplicated if unmatched => continue,
                    _ => {}
                }
                // Every other event is on an incident that was published with its alert.
                let on_record = last.values().any(|i| {
                    i.merged_into.is_none() && i.alerts.iter().any(|a| *a.fingerprint == *f)
                });
                prop_assert!(on_record, "{f} ({outcome:?}) is on no published incident");
            }
        }
    }
}

#[test]
fn an_acknowledge_from_the_alerting_tool_acknowledges_the_incident_once() {
    let mut e = engine();
    let out = e.apply(&ev(
        "PostgresDown",
        "pg-payments-1",
        Severity::Critical,
        Status::Firing,
        0,
    ));
    let id = incidents(&out.outputs)[0].id.clone();
    let mut ack = ev(
        "PostgresDown",
        "pg-payments-1",
        Severity::Critical,
        Status::Firing,
        30,
    );
    ack.source = "pagerduty".into();
    ack.id = "ack-1".into();
    ack.attributes
        .insert("acknowledged".into(), serde_json::Value::Bool(true));
    let out = e.apply(&ack);
    let v = incidents(&out.outputs);
    assert_eq!(v.len(), 1, "one new version");
    assert_eq!(v[0].id, id);
    assert_eq!(v[0].acknowledged_by.as_deref(), Some("pagerduty"));
    assert_eq!(v[0].acknowledged_at, Some(at(30)));
    ack.time = at(40);
    ack.id = "ack-2".into();
    assert!(
        incidents(&e.apply(&ack).outputs).is_empty(),
        "a second acknowledge changes nothing"
    );
}

mod checkpoint;
mod guard;
mod problems;
mod recent;
mod runs;
mod settle;
