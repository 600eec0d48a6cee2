//! Inhibition: equal labels, resolves, self-inhibition, the cap, checkpoints.

use super::*;

#[test]
fn inhibition_needs_equal_labels_and_resolve_lifts_it() {
    let mut s = suppressor(INHIBIT);
    let down = severity(
        ev("down", T0, &[("service", "a"), ("cluster", "x")]),
        Severity::Critical,
    );
    assert_eq!(
        reason(&mut s, &down),
        None,
        "the source itself is not inhibited"
    );
    assert_eq!(s.inhibit_sources(), 1);

    let warn = ev("warn", T1, &[("service", "a"), ("cluster", "x")]);
    assert_eq!(
        reason(&mut s, &warn),
        Some((SuppressReason::Inhibited, "inhibit[0]:down".into()))
    );
    let other_cluster = ev("warn2", T1, &[("service", "a"), ("cluster", "y")]);
    assert_eq!(reason(&mut s, &other_cluster), None);
    let no_cluster = ev("warn3", T1, &[("service", "a")]);
    assert_eq!(
        reason(&mut s, &no_cluster),
        None,
        "missing does not equal x"
    );
    let major = severity(
        ev("major", T1, &[("service", "a"), ("cluster", "x")]),
        Severity::Major,
    );
    assert_eq!(reason(&mut s, &major), None, "not a target");

    // Equal via the resolved service, and a label missing on both sides.
    let down_b = severity(ev("down-b", T1, &[]), Severity::Critical);
    assert_eq!(s.check(&down_b, Some("b")), None);
    let warn_b = ev("warn-b", T1, &[]);
    assert_eq!(
        s.check(&warn_b, Some("b")).map(|x| x.by).as_deref(),
        Some("inhibit[0]:down-b")
    );

    // The resolve of the source lifts it; an older resolve does not.
    assert_eq!(
        reason(&mut s, &resolved(ev("down", "2025-12-31T23:00:00Z", &[]))),
        None
    );
    assert!(
        reason(&mut s, &warn).is_some(),
        "a stale resolve changes nothing"
    );
    let down_resolved = resolved(severity(down.clone(), Severity::Critical));
    let down_resolved = Event {
        time: t(T2),
        ..down_resolved
    };
    assert_eq!(reason(&mut s, &down_resolved), None);
    assert_eq!(
        reason(
            &mut s,
            &Event {
                time: t(T2),
                ..warn.clone()
            }
        ),
        None
    );
    assert_eq!(s.inhibit_sources(), 1, "down-b still fires");

    // A source downgraded below critical stops inhibiting.
    let down_b_major = severity(ev("down-b", T2, &[]), Severity::Major);
    s.check(&down_b_major, Some("b"));
    assert_eq!(s.inhibit_sources(), 0);
    assert_eq!(s.check(&warn_b, Some("b")), None);
}

#[test]
fn an_alert_never_inhibits_itself_nor_a_peer_matching_both_sides() {
    let mut s = suppressor(
        r#"
[[inhibit]]
source_matchers = 'alertname="NodeDown"'
target_matchers = 'alertname=~"Node.*"'
equal = ["ci"]
"#,
    );
    let node = |fp: &str, name: &str| {
        let mut e = ev(fp, T0, &[("ci", "n1")]);
        e.name = name.into();
        e
    };
    assert_eq!(reason(&mut s, &node("a", "NodeDown")), None);
    assert_eq!(
        reason(&mut s, &node("a", "NodeDown")),
        None,
        "repeat of the source"
    );
    assert_eq!(
        reason(&mut s, &node("b", "NodeDown")),
        None,
        "peer matching both sides"
    );
    assert_eq!(
        reason(&mut s, &node("c", "NodeSlow")),
        Some((SuppressReason::Inhibited, "inhibit[0]:a".into())),
        "first source by fingerprint"
    );

    // A late event of a source, from before it escalated, is a target but not its own victim.
    let mut s = suppressor(INHIBIT);
    let crit = severity(ev("x", T1, &[("service", "a")]), Severity::Critical);
    assert_eq!(reason(&mut s, &crit), None);
    assert_eq!(reason(&mut s, &ev("x", T0, &[("service", "a")])), None);
    assert!(reason(&mut s, &ev("y", T0, &[("service", "a")])).is_some());
}

#[test]
fn inhibition_sources_are_capped_oldest_first() {
    let mut s = suppressor(&format!("max_inhibit_sources = 2\n{INHIBIT}"));
    for (fp, at, svc) in [("s1", T0, "a"), ("s2", T1, "b"), ("s3", T2, "c")] {
        s.check(
            &severity(ev(fp, at, &[("service", svc)]), Severity::Critical),
            None,
        );
    }
    assert_eq!(s.inhibit_sources(), 2);
    assert_eq!(s.inhibit_evictions(), 1);
    let keys: Vec<&str> = s
        .inhibit_state()
        .sources()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["s2", "s3"]);
    assert_eq!(
        reason(&mut s, &ev("w", T2, &[("service", "a")])),
        None,
        "s1 was forgotten"
    );
    assert!(reason(&mut s, &ev("w", T2, &[("service", "c")])).is_some());

    let e = config_error(&format!("max_inhibit_sources = 0\n{INHIBIT}"));
    assert!(e.starts_with("max_inhibit_sources: is 0"), "{e}");
    let e = config_error("[[inhibit]]\nsource_matchers = 'a=\"b\"'");
    assert_eq!(
        e,
        "inhibit[0]: `target_matchers` is empty; an inhibition rule needs at least one"
    );
}

#[test]
fn inhibit_state_survives_a_checkpoint() {
    let mut s = suppressor(INHIBIT);
    s.check(
        &severity(ev("down", T0, &[("service", "a")]), Severity::Critical),
        None,
    );
    let json = serde_json::to_string(s.inhibit_state()).unwrap();

    let mut restored = suppressor(INHIBIT);
    restored.restore_inhibit_state(serde_json::from_str(&json).unwrap());
    assert_eq!(restored.inhibit_state(), s.inhibit_state());
    let warn = ev("warn", T1, &[("service", "a")]);
    assert_eq!(restored.check(&warn, None), s.check(&warn, None));
    assert!(restored.check(&warn, None).is_some());

    // Under new rules that select nothing, the sources are dropped.
    let mut changed = suppressor(&INHIBIT.replace("critical", "major"));
    changed.restore_inhibit_state(serde_json::from_str(&json).unwrap());
    assert_eq!(changed.inhibit_sources(), 0);
}
