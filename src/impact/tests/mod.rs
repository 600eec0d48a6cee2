use super::*;
use std::path::Path;

fn topo(text: &str) -> Topology {
    Topology::from_str(text, Path::new("t.toml")).unwrap()
}

fn own(failing: &[(&str, Severity)]) -> BTreeMap<String, f64> {
    failing
        .iter()
        .map(|(s, sev)| (s.to_string(), own_health(*sev)))
        .collect()
}

const PAIR: &str = r#"
[capabilities.pay]
criticality = "high"
revenue_per_minute = 1200.0
users = 40000
[capabilities.blog]
criticality = "low"
revenue_per_minute = 2.0
[services.db-a]
[services.db-b]
[services.db]
depends_on = ["db-a", "db-b"]
requires = "any"
[services.api]
depends_on = ["db"]
capabilities = ["pay"]
[services.web]
depends_on = ["api"]
capabilities = ["blog"]
[services.lone]
"#;

#[test]
fn one_replica_of_a_redundant_pair_degrades_both_take_it_down() {
    let t = topo(PAIR);
    let one = assess(
        &t,
        &own(&[("db-a", Severity::Critical)]),
        Severity::Critical,
    );
    assert_eq!(one.services, ["api", "db", "db-a", "web"]);
    let pay = &one
        .impact
        .capabilities
        .iter()
        .find(|c| c.capability == "pay")
        .unwrap();
    assert_eq!((pay.state, pay.health), (ServiceState::Degraded, 50.0));
    assert_eq!(pay.revenue_at_risk_per_minute, 600.0);
    assert_eq!(pay.users_affected, 20000);
    assert_eq!(
        one.priority,
        Priority::P2,
        "degraded lowers the impact one step"
    );

    let both = assess(
        &t,
        &own(&[("db-a", Severity::Critical), ("db-b", Severity::Critical)]),
        Severity::Critical,
    );
    let pay = &both
        .impact
        .capabilities
        .iter()
        .find(|c| c.capability == "pay")
        .unwrap();
    assert_eq!((pay.state, pay.health), (ServiceState::Down, 0.0));
    assert_eq!(pay.revenue_at_risk_per_minute, 1200.0);
    assert_eq!(both.impact.revenue_at_risk_per_minute, 1202.0);
    assert_eq!(both.impact.users_affected, 40000);
    assert_eq!(both.impact.health, 0.0);
    assert_eq!(both.impact.criticality, "high");
    assert_eq!(both.priority, Priority::P1);
}

#[test]
fn all_needs_every_dependency_and_k_of_n_needs_k() {
    let t = topo(
        "[services.a]\n[services.b]\n[services.c]\n\
         [services.all]\ndepends_on = [\"a\", \"b\", \"c\"]\n\
         [services.quorum]\ndepends_on = [\"a\", \"b\", \"c\"]\nrequires = 2\n",
    );
    let e = evaluate(&t, &own(&[("a", Severity::Major)]));
    assert_eq!(e.service_health("all"), 0.0);
    let q = e.service_health("quorum");
    assert!((q - 200.0 / 3.0).abs() < 1e-9, "{q}");
    let e = evaluate(
        &t,
        &own(&[("a", Severity::Major), ("b", Severity::Critical)]),
    );
    assert_eq!(
        e.service_health("quorum"),
        0.0,
        "one of three left, two needed"
    );
    // A warning degrades without taking anything down.
    let e = evaluate(&t, &own(&[("c", Severity::Warning)]));
    assert_eq!(e.service_health("all"), 75.0);
    assert_eq!(
        ServiceState::of(e.service_health("all")),
        ServiceState::Degraded
    );
    // Info alerts hurt nothing.
    assert!(
        evaluate(&t, &own(&[("c", Severity::Info)]))
            .services
            .is_empty()
    );
}

#[test]
fn a_capability_takes_the_worst_of_the_services_that_deliver_it() {
    let t = topo(
        "[capabilities.shop]\ncriticality = \"medium\"\nrevenue_per_minute = 10.0\n\
         [services.front]\ncapabilities = [\"shop\"]\n\
         [services.back]\ncapabilities = [\"shop\"]\n",
    );
    let e = evaluate(
        &t,
        &own(&[("front", Severity::Warning), ("back", Severity::Major)]),
    );
    assert_eq!(e.capabilities[0].state, ServiceState::Down);
    assert_eq!(e.capabilities[0].revenue_at_risk_per_minute, 10.0);
}

#[test]
fn a_capability_delivered_by_services_that_are_up_takes_the_health_of_the_hurt_ones() {
    // Gathered from the hurt services alone: the up ones count as 100, and a capability no
    // hurt service delivers is not listed.
    let mut text = String::from(
        "[capabilities.shop]\ncriticality = \"medium\"\nrevenue_per_minute = 10.0\n\
         [capabilities.blog]\ncriticality = \"low\"\nrevenue_per_minute = 1.0\n",
    );
    for k in 0..50 {
        text.push_str(&format!("[services.s{k:02}]\ncapabilities = [\"shop\"]\n"));
    }
    text.push_str("[services.writer]\ncapabilities = [\"blog\"]\n");
    let t = topo(&text);
    let e = evaluate(&t, &own(&[("s17", Severity::Minor)]));
    assert_eq!(e.capabilities.len(), 1, "{:?}", e.capabilities);
    assert_eq!(e.capabilities[0].capability, "shop");
    assert_eq!(e.capabilities[0].health, 50.0);
    assert_eq!(e.capabilities[0].state, ServiceState::Degraded);
    let worse = evaluate(
        &t,
        &own(&[
            ("s03", Severity::Warning),
            ("s17", Severity::Minor),
            ("s40", Severity::Warning),
        ]),
    );
    assert_eq!(worse.capabilities[0].health, 50.0);
    assert_eq!(
        assess(&t, &own(&[("s17", Severity::Minor)]), Severity::Minor)
            .impact
            .revenue_at_risk_per_minute,
        5.0
    );
}

#[test]
fn priority_follows_criticality_state_and_severity() {
    let t = topo(PAIR);
    let db = |sev| assess(&t, &own(&[("db", sev)]), sev).priority;
    assert_eq!(db(Severity::Critical), Priority::P1);
    assert_eq!(db(Severity::Major), Priority::P2);
    // Minor and warning alerts degrade (impact one step lower) and are less urgent.
    assert_eq!(db(Severity::Minor), Priority::P4);
    assert_eq!(db(Severity::Warning), Priority::P4);
    let lone = assess(
        &t,
        &own(&[("lone", Severity::Critical)]),
        Severity::Critical,
    );
    assert_eq!(
        (lone.priority, lone.impact.criticality.as_str()),
        (Priority::P3, "none")
    );
    assert_eq!(
        lone.impact.health, 0.0,
        "no capability: the worst service health"
    );
    assert_eq!(lone.services, ["lone"]);
}

#[test]
fn requires_is_checked_against_the_dependencies() {
    let e = Topology::from_str(
        "[services.a]\n[services.b]\ndepends_on = [\"a\"]\nrequires = 2\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "t.toml:4: `services.b.requires` asks for 2 working dependencies, but depends_on lists 1"
    );
    let e = Topology::from_str(
        "[services.a]\n[services.b]\ndepends_on = [\"a\"]\nrequires = \"most\"\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"all\", \"any\" or a number"), "{e}");
}

mod through_the_engine {
    use crate::engine::MilestoneKind;
    use crate::engine::Settings;
    use crate::model::{Event, Incident, Output, Priority, ServiceState, Severity, Status};
    use chrono::{DateTime, Utc};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn ev(ci: &str, status: Status, t: i64) -> Event {
        Event {
            id: format!("{ci}-{t}"),
            source: "test".into(),
            time: at(t),
            ci: Some(ci.into()),
            name: "PostgresDown".into(),
            severity: Severity::Critical,
            status,
            category: Default::default(),
            fingerprint: format!("down/{ci}"),
            labels: Default::default(),
            attributes: Default::default(),
        }
    }

    fn last_incident(out: Vec<Output>) -> Incident {
        out.into_iter()
            .filter_map(|o| match o {
                Output::Incident(i) => Some(i),
                _ => None,
            })
            .next_back()
            .expect("an incident version")
    }

    /// The example topology's orders database runs on a redundant pair (`requires = "any"`).
    #[test]
    fn one_replica_down_is_degraded_p2_both_down_is_p1_with_the_full_revenue_at_risk() {
        let s = Settings::embedded().unwrap();
        let mut e = s.engine();
        let cap = |i: &Incident| {
            i.impact
                .capabilities
                .iter()
                .find(|c| c.capability == "order-tracking")
                .cloned()
                .unwrap()
        };
        assert!(
            e.apply(&ev("pg-orders-a", Status::Firing, 0))
                .outputs
                .is_empty(),
            "the first version waits for correlation.group_wait"
        );
        let one = last_incident(e.apply(crate::engine::Input::Tick(at(30))).outputs);
        assert_eq!(cap(&one).state, ServiceState::Degraded);
        assert_eq!(cap(&one).health, 50.0);
        assert_eq!(one.priority, Priority::P2, "a degraded capability is no P1");
        assert_eq!(one.impact.revenue_at_risk_per_minute, 150.0);
        let opened = e.take_milestones();
        assert!(
            matches!(opened[0].kind, MilestoneKind::Opened { first_event } if first_event == at(0))
        );
        assert_eq!(opened[0].capabilities, ["order-tracking"]);

        let both = last_incident(e.apply(&ev("pg-orders-b", Status::Firing, 60)).outputs);
        assert_eq!(both.id, one.id, "siblings of one service join one incident");
        assert_eq!(one.root_cause.as_ref().unwrap().service, "orders-db-a");
        let rc = both.root_cause.as_ref().unwrap();
        assert_eq!(
            rc.service, "orders-db",
            "the pair, not the replica that failed first"
        );
        assert_eq!(
            rc.reason,
            "orders-db lost its redundancy: 2 of its 2 redundant dependencies are failing (orders-db-a, orders-db-b) and it needs 1"
        );
        assert!(
            both.title.starts_with("orders-db: PostgresDown"),
            "{}",
            both.title
        );
        assert_eq!(cap(&both).state, ServiceState::Down);
        assert_eq!(both.priority, Priority::P1);
        assert_eq!(both.impact.revenue_at_risk_per_minute, 300.0);
        assert_eq!(both.impact.users_affected, 25000);
        // A minute at 150 per minute before the second replica failed.
        assert_eq!(both.impact.cost, 150.0);
        assert_eq!(both.impact.outage_seconds, 60);
        let health = e.summary().own_health;
        let eval = super::evaluate(&s.topology, &health);
        assert_eq!(eval.capabilities[0].capability, "order-tracking");
        assert_eq!(eval.capabilities[0].revenue_at_risk_per_minute, 300.0);

        e.acknowledge(&both.id, "alice", at(90));
        e.apply(&ev("pg-orders-a", Status::Resolved, 120));
        let partly = e.summary().own_health;
        assert_eq!(
            super::evaluate(&s.topology, &partly).capabilities[0].state,
            ServiceState::Degraded
        );
        e.apply(&ev("pg-orders-b", Status::Resolved, 180));
        e.tick(at(180 + 3600));
        let kinds: Vec<_> = e.take_milestones().into_iter().map(|m| m.kind).collect();
        assert!(
            kinds.contains(&MilestoneKind::Acknowledged { seconds: 90.0 }),
            "{kinds:?}"
        );
        assert!(
            kinds.iter().any(
                |k| matches!(k, MilestoneKind::Resolved { seconds, events: 4 } if *seconds == 180.0)
            ),
            "{kinds:?}"
        );
        assert!(e.summary().own_health.is_empty());
    }
}
