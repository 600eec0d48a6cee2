//! What the pages show for a view: most urgent first, the filters, who sees security incidents,
//! the silence pre-filled from an alert, the dependency tree, the attack in kill-chain order.

use crate::api::console::incident::{silence_matchers, view as incident_view};
use crate::api::console::present::{self, BoardQuery};
use crate::config::ViewConfig;
use crate::model::{IncidentStatus, Output};
use crate::pipeline::View;

fn records(file: &str) -> Vec<Output> {
    file.lines()
        .filter_map(|l| serde_json::from_str::<Output>(l).ok())
        .filter(|o| !matches!(o, Output::Dlq(_)))
        .collect()
}

/// The outage and the attack scenarios as published before issue 15 (`tests/fixtures/view`), the
/// attack's incidents still open (their last versions close them).
fn view() -> View {
    let v = View::new(
        crate::engine::Settings::embedded().unwrap().topology,
        ViewConfig::default(),
    );
    let outage = records(include_str!("../../../../tests/fixtures/view/outage.jsonl"));
    // The outage up to version 5 of the P1 (open, the database still failing).
    let upto = outage
        .iter()
        .position(
            |o| matches!(o, Output::Incident(i) if i.id == "INC-46cbeabff822" && i.version == 5),
        )
        .unwrap();
    v.apply(&outage[..=upto]);
    let attack: Vec<Output> = records(include_str!("../../../../tests/fixtures/view/attack.jsonl"))
        .into_iter()
        .filter(|o| !matches!(o, Output::Incident(i) if i.status == IncidentStatus::Closed))
        .collect();
    v.apply(&attack);
    v
}

fn q(f: impl FnOnce(&mut BoardQuery)) -> BoardQuery {
    let mut q = BoardQuery::default();
    f(&mut q);
    q
}

#[test]
fn the_board_lists_open_incidents_most_urgent_first() {
    let v = view();
    let d = v.read();
    let board = present::board(&d, &BoardQuery::default(), true);
    let order: Vec<(&str, &str)> = board
        .rows
        .iter()
        .map(|r| (r.priority, r.id.as_str()))
        .collect();
    let prios: Vec<&str> = order.iter().map(|(p, _)| *p).collect();
    let mut sorted = prios.clone();
    sorted.sort();
    assert_eq!(prios, sorted, "priority first: {order:?}");
    // Between the two P1s, the one with more revenue at risk first.
    assert_eq!(&prios[..2], &["P1", "P1"], "{order:?}");
    let risk = |id: &str| d.incidents[id].impact.revenue_at_risk_per_minute;
    assert!(risk(order[0].1) > risk(order[1].1), "{order:?}");
    let p1 = board
        .rows
        .iter()
        .find(|r| r.id == "INC-46cbeabff822")
        .unwrap();
    assert_eq!(p1.root_cause, "payments-db");
    assert!(
        p1.capabilities.contains("online-payments"),
        "{}",
        p1.capabilities
    );
    assert_eq!(board.open[0], ("P1", 2));
}

#[test]
fn filters_narrow_the_board() {
    let v = view();
    let d = v.read();
    let ids = |q: &BoardQuery| -> Vec<String> {
        present::board(&d, q, true)
            .rows
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(
        ids(&q(|q| q.priority = Some("P4".into()))),
        vec!["INC-c27444690974"]
    );
    assert_eq!(
        ids(&q(|q| q.capability = Some("online-payments".into()))),
        vec!["INC-46cbeabff822"]
    );
    let security = ids(&q(|q| q.category = Some("security".into())));
    assert_eq!(security.len(), 2, "{security:?}");
    assert!(
        !ids(&q(|q| q.category = Some("operational".into())))
            .iter()
            .any(|i| security.contains(i))
    );
    assert_eq!(
        ids(&q(|q| q.q = Some("email WORKER".into()))),
        vec!["INC-c27444690974"]
    );
    assert_eq!(
        ids(&q(|q| q.q = Some("HighErrorRate payments".into()))),
        vec!["INC-46cbeabff822"]
    );
    assert!(ids(&q(|q| q.status = Some("resolved".into()))).is_empty());
    assert_eq!(ids(&q(|q| q.status = Some("all".into()))).len(), 4);
}

#[test]
fn security_incidents_stay_hidden_from_those_who_may_not_see_them() {
    let v = view();
    let d = v.read();
    let board = present::board(&d, &BoardQuery::default(), false);
    assert!(board.rows.iter().all(|r| !r.security));
    assert_eq!(board.rows.len(), 2);
    assert_eq!(board.open[0], ("P1", 1), "counts leave them out too");
}

#[test]
fn the_security_view_shows_the_attack_in_kill_chain_order() {
    let v = view();
    let d = v.read();
    let rows = present::security(&d, false);
    let web = rows.iter().find(|r| r.id == "INC-57409ef34571").unwrap();
    assert_eq!(
        web.stages,
        vec![
            "TA0001 Initial Access",
            "TA0002 Execution",
            "TA0003 Persistence"
        ]
    );
    assert!(
        web.entities
            .iter()
            .any(|(k, v)| *k == "hosts" && v.contains("web-1")),
        "{:?}",
        web.entities
    );
    let tools: Vec<&str> = web.tools.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tools, vec!["falco", "ocsf", "suricata", "wazuh"]);
    assert_eq!(web.containment.len(), 1);
    assert_eq!(web.containment[0].status, "proposed");
    assert_eq!(
        web.containment[0].containment.as_deref(),
        Some("isolate_host web-1")
    );
}

#[test]
fn a_silence_from_an_alert_matches_exactly_that_alert() {
    let v = view();
    let d = v.read();
    let p1 = &d.incidents["INC-46cbeabff822"];
    let pg = p1
        .alerts
        .iter()
        .find(|a| &*a.name == "PostgresDown")
        .unwrap();
    let m = silence_matchers(pg);
    assert!(m.starts_with("{alertname=\"PostgresDown\""), "{m}");
    assert!(m.contains("cluster=\"payments\""), "{m}");
    assert!(!m.contains("severity"), "{m}");
    // The suppressor reads them back as they were meant.
    let mut s = crate::suppress::Suppressor::new(Default::default()).unwrap();
    let now = chrono::Utc::now();
    let silence = crate::suppress::Silence {
        id: String::new(),
        matchers: m.as_str().into(),
        starts_at: now,
        ends_at: now + chrono::Duration::hours(1),
        created_by: "t".into(),
        comment: String::new(),
    };
    s.add_silence(silence).unwrap();
    let page = incident_view(&d, p1);
    assert!(page.alerts.iter().all(|a| !a.matchers.is_empty()));
    assert_eq!(page.root_cause.as_ref().unwrap().0, "payments-db");
    assert_eq!(page.rfcs.len(), 1);
    assert!(page.rfcs[0].open, "approval required, not yet decided");
    assert_eq!(page.timeline.first().unwrap().version, 5, "newest first");
}

#[test]
fn the_business_view_marks_failing_services_and_redundancy() {
    let v = view();
    let d = v.read();
    let cards = present::business(&d);
    assert_eq!(cards[0].state, "down", "worst first");
    let payments = cards.iter().find(|c| c.name == "online-payments").unwrap();
    assert_eq!(payments.revenue_at_risk, "1,200");
    let db = payments
        .tree
        .iter()
        .find(|t| t.name == "payments-db")
        .unwrap();
    assert!(db.failing);
    assert_eq!(db.depth, "d1");
    let tracking = cards.iter().find(|c| c.name == "order-tracking").unwrap();
    let orders = tracking
        .tree
        .iter()
        .find(|t| t.name == "orders-db")
        .unwrap();
    assert_eq!(
        orders.redundancy.as_deref(),
        Some("needs any 1 of 2, 2 working")
    );
}

#[test]
fn money_reads_with_thousands_separators() {
    assert_eq!(present::money(1234567.4), "1,234,567");
    assert_eq!(present::money(0.0), "0");
    assert_eq!(present::money(999.5), "1,000");
}

fn problem(id: &str, status: &str, priority: &str, cost: f64) -> Output {
    serde_json::from_value(serde_json::json!({
        "type": "problem",
        "id": id, "version": 2, "status": status, "title": format!("{id} keeps failing"),
        "service": "payments-db", "alert_names": ["PostgresDown"], "priority": priority,
        "incidents": ["INC-1", "INC-2", "INC-3"], "incident_count": 3,
        "first_occurrence": "2027-01-01T02:00:00Z", "last_occurrence": "2027-01-03T02:00:00Z",
        "outage_seconds": 5400, "cost": cost,
        "opened_at": "2027-01-03T02:00:00Z", "updated_at": "2027-01-03T03:00:00Z",
        "opened_by": "d2c", "workaround": "fail over to the replica",
        "known_error_at": "2027-01-03T03:00:00Z", "known_error_by": "alice"
    }))
    .unwrap()
}

#[test]
fn the_problems_page_lists_unresolved_problems_most_urgent_first() {
    use crate::api::console::problems::{ProblemsQuery, problems};
    let v = view();
    v.apply(&[
        problem("PRB-a", "known_error", "P2", 10.0),
        problem("PRB-b", "open", "P1", 5.0),
        problem("PRB-c", "resolved", "P1", 99.0),
        problem("PRB-d", "open", "P2", 20.0),
    ]);
    let d = v.read();
    let open = problems(&d, &ProblemsQuery::default());
    let ids: Vec<&str> = open.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["PRB-b", "PRB-d", "PRB-a"],
        "resolved ones hidden, P1 then cost"
    );
    let a = &open[2];
    assert_eq!(a.workaround.as_deref(), Some("fail over to the replica"));
    assert_eq!(
        a.known_error.as_ref().map(|(by, _)| by.as_str()),
        Some("alice")
    );
    assert_eq!(
        a.incidents,
        ["INC-3", "INC-2", "INC-1"],
        "most recent first"
    );
    assert_eq!(a.outage, "1h 30m");
    let all = problems(
        &d,
        &ProblemsQuery {
            status: Some("all".into()),
        },
    );
    assert_eq!(all.last().map(|p| p.id.as_str()), Some("PRB-c"));
    assert!(
        !all.last().unwrap().open,
        "a resolved problem takes no action"
    );
}

#[test]
fn the_incident_page_shows_owners_links_annotations_and_the_workaround() {
    let v = view();
    let d = v.read();
    let mut i = d.incidents["INC-46cbeabff822"].clone();
    drop(d);
    i.context = vec![crate::model::ServiceContext {
        service: "payments-db".into(),
        owner: Some("dba-oncall".into()),
        team: Some("data".into()),
        runbook: Some("https://runbooks.example/pg".into()),
        dashboard: Some("javascript:alert(1)".into()),
        oncall: None,
    }];
    i.alerts[0].annotations = crate::model::Labels::from_map(
        &[
            ("runbook_url", "https://wiki.example/alert"),
            ("summary", "db down"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    i.problem = Some("PRB-a".into());
    i.workaround = Some("fail over".into());
    let page = incident_view(&v.read(), &i);
    let c = &page.context[0];
    assert_eq!(c.owners, "dba-oncall (data)");
    assert_eq!(
        c.links,
        [("runbook", "https://runbooks.example/pg".to_string())],
        "only web addresses become links"
    );
    assert!(
        page.links
            .contains(&("runbook_url".into(), "https://wiki.example/alert".into())),
        "{:?}",
        page.links
    );
    assert!(
        page.alerts[0]
            .annotations
            .contains(&("summary".into(), "db down".into()))
    );
    assert_eq!(page.problem.as_deref(), Some("PRB-a"));
    assert_eq!(page.workaround.as_deref(), Some("fail over"));
}
