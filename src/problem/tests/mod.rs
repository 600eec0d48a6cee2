//! Unit tests of the problem state: recurrence, known errors, actions, bounds.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::{AlertRef, Impact, ProblemAction, RootCause, Severity, Status};

mod bounds;
mod recurrence;

fn at(day: i64, hour: i64) -> DateTime<Utc> {
    "2026-11-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        + TimeDelta::days(day)
        + TimeDelta::hours(hour)
}

/// Incident `id` rooted at `service` with alerts `names` on it, opened at `opened`.
fn incident(id: &str, service: &str, names: &[&str], opened: DateTime<Utc>) -> Incident {
    Incident {
        id: id.into(),
        version: 1,
        status: IncidentStatus::Open,
        severity: Severity::Critical,
        priority: Priority::P2,
        title: format!("{service}: {}", names[0]),
        opened_at: opened,
        updated_at: opened,
        resolved_at: None,
        closed_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        reopened: 0,
        merged_into: None,
        root_cause: Some(RootCause {
            service: service.into(),
            reason: "test".into(),
            guess: false,
        }),
        related_changes: Vec::new(),
        failing_services: vec![service.into()],
        services: vec![service.into()],
        capabilities: Vec::new(),
        impact: Impact::default(),
        event_count: 1,
        changed: Vec::new(),
        context: Vec::new(),
        alerts_omitted: 0,
        alerts: names
            .iter()
            .map(|n| AlertRef {
                fingerprint: format!("{n}/{service}").into(),
                name: (*n).into(),
                ci: None,
                service: Some(service.into()),
                source: "test".into(),
                severity: Severity::Critical,
                status: Status::Firing,
                first_seen: opened,
                last_seen: opened,
                count: 1,
                labels: Default::default(),
                annotations: Default::default(),
                flapping: false,
                auto_resolved: false,
                symptom_of: None,
            })
            .collect(),
        security: None,
        problem: None,
        workaround: None,
    }
}

/// `i` resolved after `minutes`, with `cost`.
fn resolved(mut i: Incident, minutes: i64, cost: f64) -> Incident {
    i.version += 1;
    i.status = IncidentStatus::Resolved;
    i.updated_at = i.opened_at + TimeDelta::minutes(minutes);
    i.resolved_at = Some(i.updated_at);
    i.impact.outage_seconds = minutes * 60;
    i.impact.cost = cost;
    i
}

/// Shows `i` to the state as the engine does when publishing it: link, then account.
fn publish(s: &mut State, cfg: &ProblemConfig, mut i: Incident) -> (Incident, Option<Problem>) {
    if let Some((id, workaround)) = s.link(cfg, &i) {
        i.problem = Some(id);
        i.workaround = workaround;
    }
    let p = s.account(&i);
    (i, p)
}

#[test]
fn a_version_lists_the_recent_incidents_whatever_it_listed_before() {
    let occ = |id: &str, day: i64| Occurrence {
        incident: Arc::from(id),
        at: at(day, 0),
        priority: Priority::P3,
        outage_seconds: 0,
        cost: 0.0,
        resolved: false,
    };
    let ids = |l: &[Arc<str>]| l.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let mut recent = vec![occ("a", 0), occ("b", 1)];
    let mut listed = Vec::new();
    list_recent(&mut listed, &recent);
    assert_eq!(ids(&listed), ["a", "b"]);
    // One more, then the oldest dropped at the cap: the ids kept are the same ones.
    recent.push(occ("c", 2));
    list_recent(&mut listed, &recent);
    assert_eq!(ids(&listed), ["a", "b", "c"]);
    recent.remove(0);
    recent.push(occ("d", 3));
    list_recent(&mut listed, &recent);
    assert_eq!(ids(&listed), ["b", "c", "d"]);
    assert!(
        listed
            .iter()
            .zip(&recent)
            .all(|(a, o)| Arc::ptr_eq(a, &o.incident))
    );
    // A list of other copies of the ids (a restored checkpoint), or of other ids: made anew.
    let mut restored: Vec<Arc<str>> = vec![Arc::from("b"), Arc::from("c")];
    list_recent(&mut restored, &recent);
    assert_eq!(ids(&restored), ["b", "c", "d"]);
    let mut other: Vec<Arc<str>> = vec![Arc::from("x")];
    list_recent(&mut other, &recent);
    assert_eq!(ids(&other), ["b", "c", "d"]);
    list_recent(&mut other, &[]);
    assert!(other.is_empty());
}
