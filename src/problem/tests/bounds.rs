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

#[test]
fn the_kept_eviction_order_evicts_what_a_walk_over_every_signature_would() {
    // At the cap the signatures to evict come from an order kept as incidents are counted; a
    // twin state that forgets that order before every step walks every signature instead.
    // Incidents open out of order, signatures repeat, sweeps and a round trip through JSON
    // come in between: the two must keep the same signatures throughout.
    let cfg = cfg(3);
    let (mut kept, mut walked) = (State::default(), State::default());
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for step in 0..2_000i64 {
        let svc = format!("svc-{}", next(400));
        let opened = at(0, 0) + TimeDelta::minutes(step) - TimeDelta::minutes(next(90) as i64);
        let i = incident(&format!("I-{step}"), &svc, &["Down"], opened);
        walked.restored();
        publish(&mut kept, &cfg, i.clone());
        publish(&mut walked, &cfg, i);
        kept.forget_incident(&format!("I-{step}"));
        walked.forget_incident(&format!("I-{step}"));
        if step % 250 == 249 {
            let now = at(0, 0) + TimeDelta::minutes(step);
            assert_eq!(kept.sweep(&cfg, now), walked.sweep(&cfg, now));
        }
        if step == 1_000 {
            kept = serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        }
        assert!(kept.candidates.len() <= cfg.max_candidates);
        assert_eq!(kept, walked, "after step {step}");
    }
    assert_eq!(
        kept.candidates.len(),
        cfg.max_candidates,
        "the cap was reached"
    );
}
