//! Recurring incidents open one problem; a known error's workaround reaches later incidents.

use super::*;

#[test]
fn three_nights_of_the_same_failure_open_one_problem_linking_all_three() {
    let cfg = ProblemConfig::default();
    let mut s = State::default();
    let mut problems = Vec::new();
    for night in 0..3 {
        let id = format!("INC-{night}");
        let i = incident(&id, "payments-db", &["PostgresDown"], at(night, 2));
        let (i, p) = publish(&mut s, &cfg, i);
        problems.extend(p);
        let (_, p) = publish(&mut s, &cfg, resolved(i, 20, 100.0));
        problems.extend(p);
        if night < 2 {
            assert!(problems.is_empty(), "night {night}: {problems:?}");
            // The engine forgets the incident long before the next night.
            s.forget_incident(&id);
        }
    }
    // Opened by the third (v1), then its resolution counted (v2).
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let opened = &problems[0];
    assert_eq!(opened.version, 1);
    assert_eq!(opened.status, ProblemStatus::Open);
    assert_eq!(names(&opened.incidents), ["INC-0", "INC-1", "INC-2"]);
    assert_eq!(opened.service, "payments-db");
    assert_eq!(opened.alert_names, ["PostgresDown"]);
    assert_eq!(opened.title, "payments-db: PostgresDown keeps recurring");
    assert_eq!(opened.first_occurrence, Some(at(0, 2)));
    assert_eq!(opened.last_occurrence, Some(at(2, 2)));
    // The first two were resolved when the problem opened; the third not yet.
    assert_eq!((opened.outage_seconds, opened.cost), (2400, 200.0));
    let last = &problems[1];
    assert_eq!((last.version, last.incident_count), (2, 3));
    assert_eq!((last.outage_seconds, last.cost), (3600, 300.0));
}

#[test]
fn incidents_outside_the_window_or_with_another_signature_do_not_count() {
    let cfg = ProblemConfig::default();
    let mut s = State::default();
    let mut opened = Vec::new();
    // Days 0 and 8: more than 7 days apart; day 9 makes two within the window, not three.
    for (n, day) in [0, 8, 9].into_iter().enumerate() {
        let i = incident(
            &format!("A-{n}"),
            "payments-db",
            &["PostgresDown"],
            at(day, 2),
        );
        opened.extend(publish(&mut s, &cfg, i).1);
    }
    // Same service, other alert: another signature.
    let i = incident("B-0", "payments-db", &["DiskFull"], at(9, 3));
    opened.extend(publish(&mut s, &cfg, i).1);
    assert!(opened.is_empty(), "{opened:?}");
    let i = incident("A-3", "payments-db", &["PostgresDown"], at(10, 2));
    let (i, p) = publish(&mut s, &cfg, i);
    assert_eq!(names(&p.unwrap().incidents), ["A-1", "A-2", "A-3"]);
    assert!(i.problem.is_some());
    assert_eq!(i.workaround, None, "not a known error yet");

    let mut by_service = ProblemConfig {
        signature: SignatureMode::Service,
        ..ProblemConfig::default()
    };
    by_service.threshold = 2;
    let mut s = State::default();
    publish(
        &mut s,
        &by_service,
        incident("C-0", "user-db", &["A"], at(0, 1)),
    );
    let (_, p) = publish(
        &mut s,
        &by_service,
        incident("C-1", "user-db", &["B"], at(0, 2)),
    );
    let p = p.expect("the service alone is the signature");
    assert!(p.alert_names.is_empty(), "any alert of user-db matches");
    assert_eq!(p.title, "user-db: A keeps recurring");
}

#[test]
fn a_known_error_gives_its_workaround_to_later_incidents_and_to_open_linked_ones() {
    let cfg = ProblemConfig::default();
    let mut s = State::default();
    let mut id = String::new();
    for night in 0..3 {
        let i = incident(
            &format!("N-{night}"),
            "payments-db",
            &["PostgresDown"],
            at(night, 2),
        );
        let (i, p) = publish(&mut s, &cfg, i);
        if let Some(p) = p {
            id = p.id;
        }
        if night < 2 {
            publish(&mut s, &cfg, resolved(i, 20, 10.0));
        }
    }
    // N-2 is still open when the DBA marks the known error.
    let action = ProblemAction::KnownError {
        problem: id.clone(),
        workaround: "Restart pgbouncer on the payments primary".into(),
        by: "dba".into(),
        comment: None,
        time: at(2, 3),
    };
    let p = s.act(&action).unwrap().unwrap();
    assert_eq!(p.status, ProblemStatus::KnownError);
    assert_eq!(p.known_error_by.as_deref(), Some("dba"));
    assert_eq!(s.act(&action), Ok(None), "a repeat publishes nothing");
    assert_eq!(s.linked(&id), ["N-0", "N-1", "N-2"]);
    let again = incident("N-2", "payments-db", &["PostgresDown"], at(2, 2));
    let (again, _) = publish(&mut s, &cfg, again);
    assert_eq!(
        again.workaround.as_deref(),
        Some("Restart pgbouncer on the payments primary")
    );
    // The fourth night: linked at once, with the workaround, and the problem counts it.
    let (fourth, p) = publish(
        &mut s,
        &cfg,
        incident(
            "N-3",
            "payments-db",
            &["PostgresDown", "PgReplicationLag"],
            at(3, 2),
        ),
    );
    assert_eq!(fourth.problem.as_deref(), Some(id.as_str()));
    assert!(fourth.workaround.is_some());
    assert_eq!(p.unwrap().incident_count, 4);

    let resolve = ProblemAction::Resolve {
        problem: id.clone(),
        by: "dba".into(),
        comment: Some("pgbouncer pool size fixed".into()),
        time: at(4, 0),
    };
    assert_eq!(
        s.act(&resolve).unwrap().unwrap().status,
        ProblemStatus::Resolved
    );
    assert!(
        s.act(&action).is_err(),
        "a resolved problem takes no workaround"
    );
    let (fifth, _) = publish(
        &mut s,
        &cfg,
        incident("N-4", "payments-db", &["PostgresDown"], at(5, 2)),
    );
    assert_eq!(fifth.problem, None, "a resolved problem links nothing new");
}

#[test]
fn a_problem_opened_by_hand_takes_the_incidents_counted_so_far() {
    let cfg = ProblemConfig::default();
    let mut s = State::default();
    publish(
        &mut s,
        &cfg,
        incident("M-0", "search-cache", &["RedisDown"], at(0, 1)),
    );
    publish(
        &mut s,
        &cfg,
        incident("M-1", "catalog-api", &["Slow"], at(0, 2)),
    );
    let open = ProblemAction::Open {
        problem: "PRB-manual".into(),
        title: "Redis evictions".into(),
        service: "search-cache".into(),
        alert_names: Vec::new(),
        incidents: vec!["M-1".into()],
        priority: Priority::P3,
        by: "sre".into(),
        comment: None,
        time: at(0, 3),
    };
    let p = s.act(&open).unwrap().unwrap();
    assert_eq!(
        names(&p.incidents),
        ["M-0", "M-1"],
        "counted by signature, and named"
    );
    assert_eq!((p.opened_by.as_str(), p.version), ("sre", 1));
    assert_eq!(
        s.act(&open),
        Ok(None),
        "the same record twice opens one problem"
    );
    let (i, _) = publish(
        &mut s,
        &cfg,
        incident("M-2", "search-cache", &["Other"], at(0, 4)),
    );
    assert_eq!(i.problem.as_deref(), Some("PRB-manual"));
    let unknown = ProblemAction::KnownError {
        problem: "PRB-elsewhere".into(),
        workaround: "x".into(),
        by: "x".into(),
        comment: None,
        time: at(0, 5),
    };
    assert_eq!(s.act(&unknown), Ok(None), "another engine's problem");
}

/// The incident ids a problem lists, as plain strings.
fn names(ids: &[std::sync::Arc<str>]) -> Vec<&str> {
    ids.iter().map(|i| &**i).collect()
}
