//! The view materialised from the incidents and changes topics: latest version per id, repeats
//! ignored, every version on the timeline, bounded with eviction, live notices.

use std::sync::Arc;

use crate::config::ViewConfig;
use crate::model::{Incident, IncidentStatus, Output, Rfc};
use crate::pipeline::View;
use crate::pipeline::view::Notice;

/// The outputs of `d2c replay` for the outage scenario before issue 15 (`tests/fixtures/view`):
/// eleven versions of a P1, its RFC, a P4.
fn outage() -> Vec<Output> {
    include_str!("../../../tests/fixtures/view/outage.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Output>(l).ok())
        .filter(|o| !matches!(o, Output::Dlq(_)))
        .collect()
}

fn topology() -> Arc<crate::topology::Topology> {
    crate::engine::Settings::embedded().unwrap().topology
}

fn view() -> View {
    View::new(topology(), ViewConfig::default())
}

const P1: &str = "INC-46cbeabff822";

#[test]
fn the_latest_version_wins_and_repeats_change_nothing() {
    let v = view();
    let records = outage();
    v.apply(&records);
    let last = {
        let d = v.read();
        assert_eq!(d.incidents.len(), 2);
        let p1 = &d.incidents[P1];
        assert_eq!((p1.version, p1.status), (11, IncidentStatus::Resolved));
        assert_eq!(d.changes_of(P1).len(), 1);
        d.timeline(P1).unwrap().entries.len()
    };
    // A crash makes the correlate stage publish versions again; an older one arrives late.
    v.apply(&records);
    v.apply(records.iter().take(3));
    let d = v.read();
    assert_eq!(d.incidents[P1].version, 11);
    assert_eq!(
        d.timeline(P1).unwrap().entries.len(),
        last,
        "no entry twice"
    );
}

#[test]
fn the_timeline_says_what_each_version_changed() {
    let v = view();
    v.apply(&outage());
    let d = v.read();
    let t = d.timeline(P1).unwrap();
    // Eleven incident versions and one RFC version.
    assert_eq!(t.entries.len(), 12);
    let text: Vec<String> = t
        .entries
        .iter()
        .map(|e| {
            let what: Vec<String> = e.what.iter().map(ToString::to_string).collect();
            format!("{} v{}: {}", e.record, e.version, what.join("; "))
        })
        .collect();
    let all = text.join("\n");
    assert!(
        text[0].starts_with("INC-46cbeabff822 v1: opened as P1"),
        "{all}"
    );
    assert!(
        text[0].contains("alert PostgresDown on payments-db joined"),
        "{all}"
    );
    assert!(text[0].contains("root cause: payments-db"), "{all}");
    assert!(
        all.contains("RFC-1b90d544ecdc v1: RFC-1b90d544ecdc raised (approval required)"),
        "{all}"
    );
    assert!(
        all.contains("alert HighErrorRate on payments-api joined"),
        "{all}"
    );
    assert!(
        all.contains("alert PostgresDown on payments-db resolved"),
        "{all}"
    );
    assert!(text.last().unwrap().ends_with("resolved"), "{all}");
}

fn with_decision(r: &Rfc, by: &str) -> Rfc {
    let mut r = r.clone();
    r.version += 1;
    r.decision = Some(Box::new(crate::model::Decision {
        status: crate::model::DecisionStatus::Approved,
        by: by.into(),
        at: r.created_at + chrono::Duration::seconds(30),
        comment: Some("go".into()),
    }));
    r
}

#[test]
fn decisions_acknowledgements_and_merges_join_the_timeline() {
    let v = view();
    let records = outage();
    v.apply(&records);
    let rfc = records
        .iter()
        .find_map(|o| match o {
            Output::Change(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let mut p1: Incident = v.read().incidents[P1].clone();
    p1.version += 1;
    p1.acknowledged_by = Some("alice".into());
    v.apply(&[
        Output::Change(with_decision(&rfc, "cab")),
        Output::Incident(p1),
    ]);
    let mut p4: Incident = v
        .read()
        .incidents
        .values()
        .find(|i| i.id != P1)
        .unwrap()
        .clone();
    p4.version += 1;
    p4.status = IncidentStatus::Closed;
    p4.merged_into = Some(P1.into());
    v.apply(&[Output::Incident(p4.clone())]);
    let d = v.read();
    let all: Vec<String> = d
        .timeline(P1)
        .unwrap()
        .entries
        .iter()
        .flat_map(|e| e.what.iter().map(ToString::to_string))
        .collect();
    assert!(
        all.contains(&"RFC-1b90d544ecdc approved by cab: go".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(&"acknowledged by alice".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(&format!("{} merged into this incident", p4.id)),
        "{all:?}"
    );
    let own: Vec<String> = d
        .timeline(&p4.id)
        .unwrap()
        .entries
        .iter()
        .flat_map(|e| e.what.iter().map(ToString::to_string))
        .collect();
    assert!(own.contains(&format!("merged into {P1}")), "{own:?}");
    assert_eq!(
        d.incidents[&p4.id].status,
        IncidentStatus::Closed,
        "closed incidents stay until evicted"
    );
}

#[test]
fn an_rfc_read_before_its_incident_is_on_the_timeline_too() {
    let v = view();
    let records = outage();
    let (changes, incidents): (Vec<Output>, Vec<Output>) = records
        .into_iter()
        .partition(|o| matches!(o, Output::Change(_)));
    v.apply(&changes);
    v.apply(&incidents);
    let d = v.read();
    assert!(
        d.timeline(P1)
            .unwrap()
            .entries
            .iter()
            .any(|e| e.record.starts_with("RFC-")),
        "the RFC entry is added when the incident arrives"
    );
}

fn incident(n: usize, status: IncidentStatus, template: &Incident) -> Incident {
    let mut i = template.clone();
    i.id = format!("INC-{n:012}");
    i.version = 1;
    i.status = status;
    i.updated_at = template.updated_at + chrono::Duration::seconds(n as i64);
    i
}

#[test]
fn past_the_cap_closed_then_resolved_then_the_oldest_open_go_first() {
    let limits = ViewConfig {
        max_incidents: 20,
        max_changes: 10,
        max_problems: 10,
        max_timeline: 5,
    };
    let v = View::new(topology(), limits);
    let template = match &outage()[0] {
        Output::Incident(i) => i.clone(),
        _ => unreachable!(),
    };
    // 20 open (oldest first), then 5 closed and 5 resolved that are newer than all of them.
    let mut records: Vec<Output> = (0..20)
        .map(|n| Output::Incident(incident(n, IncidentStatus::Open, &template)))
        .collect();
    records
        .extend((20..25).map(|n| Output::Incident(incident(n, IncidentStatus::Closed, &template))));
    records.extend(
        (25..30).map(|n| Output::Incident(incident(n, IncidentStatus::Resolved, &template))),
    );
    let applied = v.apply(&records);
    let d = v.read();
    assert_eq!(d.incidents.len(), 18, "down to 90% of the cap");
    assert_eq!(applied.evicted_incidents, 12);
    let count = |s: IncidentStatus| d.incidents.values().filter(|i| i.status == s).count();
    assert_eq!(count(IncidentStatus::Closed), 0);
    assert_eq!(count(IncidentStatus::Resolved), 0);
    assert_eq!(count(IncidentStatus::Open), 18);
    assert!(
        !d.incidents.contains_key("INC-000000000000"),
        "the oldest open went"
    );
    assert!(!d.incidents.contains_key("INC-000000000001"));
    assert!(d.incidents.contains_key("INC-000000000019"));
    assert_eq!(d.timelines.len(), 18, "timelines go with their incidents");
}

#[test]
fn a_timeline_keeps_its_newest_entries() {
    let limits = ViewConfig {
        max_incidents: 100,
        max_changes: 100,
        max_problems: 100,
        max_timeline: 4,
    };
    let v = View::new(topology(), limits);
    v.apply(&outage());
    let d = v.read();
    let t = d.timeline(P1).unwrap();
    assert_eq!(t.entries.len(), 4);
    assert_eq!(t.dropped, 8);
    assert_eq!(t.entries.back().unwrap().version, 11);
}

#[test]
fn listeners_hear_which_incident_changed() {
    let v = view();
    let mut rx = v.subscribe();
    let records = outage();
    v.apply(records.iter().take(2));
    assert_eq!(rx.try_recv().unwrap(), Notice::Incident(P1.into()));
    assert!(rx.try_recv().is_err(), "one notice per incident per batch");
    v.apply(records.iter().take(2));
    assert!(rx.try_recv().is_err(), "repeats tell nobody");
}

#[test]
fn the_health_of_the_service_model_comes_from_every_instances_incidents() {
    let v = view();
    let records = outage();
    // Version 5: PostgresDown, HighErrorRate, HighLatency, Http5xxRate firing.
    let upto = records
        .iter()
        .position(|o| matches!(o, Output::Incident(i) if i.id == P1 && i.version == 5))
        .unwrap();
    v.apply(&records[..=upto]);
    let eval = v.read().evaluation();
    assert_eq!(eval.service_health("payments-db"), 0.0);
    assert_eq!(eval.service_health("payments-api"), 0.0);
    let payments = eval
        .capabilities
        .iter()
        .find(|c| c.capability == "online-payments")
        .unwrap();
    assert_eq!(payments.health, 0.0);
    // Resolved: healthy again.
    v.apply(&records);
    assert_eq!(v.read().evaluation().service_health("payments-db"), 100.0);
}

#[test]
fn rfc_lifecycle_steps_join_the_timeline_once_each() {
    let v = view();
    let records = outage();
    v.apply(&records);
    let rfc = records
        .iter()
        .find_map(|o| match o {
            Output::Change(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let mut approved = with_decision(&rfc, "cab");
    approved.status = crate::model::RfcStatus::Approved;
    let mut withdrawn = approved.clone();
    withdrawn.version += 1;
    withdrawn.status = crate::model::RfcStatus::Withdrawn;
    v.apply(&[Output::Change(approved), Output::Change(withdrawn)]);
    let d = v.read();
    let all: Vec<String> = d
        .timeline(P1)
        .unwrap()
        .entries
        .iter()
        .filter(|e| e.record == rfc.id)
        .flat_map(|e| e.what.iter().map(ToString::to_string))
        .collect();
    assert_eq!(
        all,
        vec![
            format!("{} raised (approval required): {}", rfc.id, rfc.action),
            format!("{} approved by cab: go", rfc.id),
            format!("{} withdrawn", rfc.id),
        ],
        "the decision says `approved` once; the next step is its own entry"
    );
    assert_eq!(
        d.changes[&rfc.id].status,
        crate::model::RfcStatus::Withdrawn
    );
}

#[test]
fn a_record_cut_to_fit_the_broker_does_not_make_its_unlisted_alerts_leave() {
    use crate::pipeline::timeline::{Happening, incident_changes};
    let old = outage()
        .into_iter()
        .filter_map(|o| match o {
            Output::Incident(i) => Some(i),
            _ => None,
        })
        .max_by_key(|i| i.alerts.len())
        .expect("incidents");
    assert!(old.alerts.len() >= 2, "the fixture's P1 has alerts");
    let mut new = old.clone();
    new.version += 1;
    new.alerts.pop();
    let left = |changes: &[Happening]| {
        changes
            .iter()
            .filter(|h| matches!(h, Happening::AlertLeft { .. }))
            .count()
    };
    assert_eq!(left(&incident_changes(Some(&old), &new)), 1, "it left");
    new.alerts_omitted = 1;
    assert_eq!(
        left(&incident_changes(Some(&old), &new)),
        0,
        "not listed, but still a member"
    );
}
