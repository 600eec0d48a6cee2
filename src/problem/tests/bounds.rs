//! Memory stays bounded: listed incidents, problems, counted signatures; the state survives a
//! checkpoint.

use super::*;

fn cfg(threshold: u32) -> ProblemConfig {
    ProblemConfig {
        threshold,
        max_problems: 10,
        max_candidates: 10,
        ..ProblemConfig::default()
    }
}

#[test]
fn a_problem_lists_its_newest_incidents_and_counts_them_all() {
    let cfg = cfg(2);
    let mut s = State::default();
    let mut last = None;
    for n in 0..(MAX_LISTED as i64 + 20) {
        let i = incident(
            &format!("I-{n}"),
            "db",
            &["Down"],
            at(0, 0) + TimeDelta::minutes(n),
        );
        let (i, _) = publish(&mut s, &cfg, i);
        if let (_, Some(p)) = publish(&mut s, &cfg, resolved(i, 1, 1.0)) {
            last = Some(p);
        }
        s.forget_incident(&format!("I-{n}"));
    }
    let p = last.unwrap();
    assert_eq!(p.incident_count, MAX_LISTED as u64 + 20);
    assert_eq!(p.incidents.len(), MAX_LISTED);
    assert_eq!(p.incidents.first().map(|i| &**i), Some("I-20"));
    assert_eq!(
        p.outage_seconds,
        60 * (MAX_LISTED as i64 + 20),
        "older ones still add up"
    );
    assert!(
        s.members.is_empty(),
        "links go with the incidents the engine forgets"
    );
}

#[test]
fn problems_and_counted_signatures_stay_within_their_caps() {
    let cfg = cfg(2);
    let mut s = State::default();
    for n in 0..30 {
        let svc = format!("svc-{n}");
        for k in 0..2 {
            let id = format!("{svc}-{k}");
            publish(
                &mut s,
                &cfg,
                incident(&id, &svc, &["Down"], at(0, n) + TimeDelta::minutes(k)),
            );
            s.forget_incident(&id);
        }
        assert!(s.problems.len() <= cfg.max_problems + 1);
        s.evict(cfg.max_problems);
    }
    assert_eq!(s.problems.len(), cfg.max_problems);
    // The newest stay: svc-29's problem is remembered, svc-0's is not.
    assert!(s.all().any(|p| p.service == "svc-29"));
    assert!(!s.all().any(|p| p.service == "svc-0"));
    let mut s = State::default();
    for n in 0..30 {
        publish(
            &mut s,
            &cfg,
            incident(&format!("c-{n}"), &format!("one-{n}"), &["X"], at(0, n)),
        );
    }
    assert_eq!(s.candidates.len(), cfg.max_candidates);
}

#[test]
fn resolved_problems_and_stale_counts_are_swept_after_their_time() {
    let cfg = cfg(2);
    let mut s = State::default();
    publish(&mut s, &cfg, incident("a", "db", &["Down"], at(0, 0)));
    let (_, p) = publish(&mut s, &cfg, incident("b", "db", &["Down"], at(0, 1)));
    let id = p.unwrap().id;
    publish(&mut s, &cfg, incident("c", "cache", &["Down"], at(0, 2)));
    s.act(&ProblemAction::Resolve {
        problem: id,
        by: "x".into(),
        comment: None,
        time: at(1, 0),
    })
    .unwrap();
    assert_eq!(s.sweep(&cfg, at(2, 0)), 0);
    assert_eq!(s.candidates.len(), 1);
    assert_eq!(
        s.sweep(&cfg, at(2, 0) + TimeDelta::minutes(30)),
        0,
        "not yet due"
    );
    assert_eq!(s.sweep(&cfg, at(31, 1)), 1, "30 days after it resolved");
    assert!(s.problems.is_empty());
    assert!(
        s.candidates.is_empty(),
        "the count of `cache` is older than the window"
    );
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let cfg = cfg(2);
    let mut s = State::default();
    publish(&mut s, &cfg, incident("a", "db", &["Down"], at(0, 0)));
    publish(&mut s, &cfg, incident("b", "db", &["Down"], at(0, 1)));
    publish(&mut s, &cfg, incident("c", "cache", &["Down"], at(0, 2)));
    let json = serde_json::to_string(&s).unwrap();
    let back: State = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let empty: State = serde_json::from_str("{}").unwrap();
    assert_eq!(
        empty,
        State::default(),
        "older checkpoints have no problems"
    );
}
