//! Tests of the suppressor: silences, the order of reasons, the settings, and that `check` is
//! total and deterministic. Matchers, windows and inhibition have files of their own.

mod inhibit;
mod matcher;
mod window;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::model::{Category, Severity, Status};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// A firing warning `HighErrorRate` from `native` with fingerprint `fp`.
fn ev(fp: &str, at: &str, labels: &[(&str, &str)]) -> Event {
    Event {
        id: format!("{fp}@{at}"),
        source: "native".into(),
        time: t(at),
        ci: None,
        name: "HighErrorRate".into(),
        severity: Severity::Warning,
        status: Status::Firing,
        category: Category::Availability,
        fingerprint: fp.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        attributes: BTreeMap::new(),
    }
}

fn resolved(mut e: Event) -> Event {
    e.status = Status::Resolved;
    e
}

fn severity(mut e: Event, s: Severity) -> Event {
    e.severity = s;
    e
}

fn one(s: &str) -> Matcher {
    let mut v = parse_matchers(s).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1, "{s}");
    v.remove(0)
}

fn suppressor(toml_text: &str) -> Suppressor {
    let cfg: SuppressionConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    Suppressor::new(cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn config_error(toml_text: &str) -> String {
    let cfg: SuppressionConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    match Suppressor::new(cfg) {
        Ok(_) => panic!("accepted:\n{toml_text}"),
        Err(e) => e.to_string(),
    }
}

fn reason(s: &mut Suppressor, e: &Event) -> Option<(SuppressReason, String)> {
    s.check(e, None).map(|x| (x.reason, x.by))
}

// ---------------------------------------------------------------- silences

const INHIBIT: &str = r#"
[[inhibit]]
source_matchers = 'severity="critical"'
target_matchers = ['severity=~"warning|info"']
equal = ["service", "cluster"]
"#;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:01:00Z";
const T2: &str = "2026-01-01T00:02:00Z";

const SILENCE: &str = r#"
[[silences]]
id = "chg-1"
matchers = '{service="checkout"}'
starts_at = "2026-03-01T22:00:00Z"
ends_at = "2026-03-02T02:00:00Z"
"#;

#[test]
fn silence_is_active_from_start_until_before_end() {
    let mut s = suppressor(SILENCE);
    let at = |when: &str| ev("f", when, &[("service", "checkout")]);
    let silenced = Some((SuppressReason::Silenced, "chg-1".to_string()));
    assert_eq!(reason(&mut s, &at("2026-03-01T21:59:59Z")), None);
    assert_eq!(reason(&mut s, &at("2026-03-01T22:00:00Z")), silenced);
    assert_eq!(reason(&mut s, &at("2026-03-02T01:59:59.999Z")), silenced);
    assert_eq!(reason(&mut s, &at("2026-03-02T02:00:00Z")), None);
    let other = ev("g", "2026-03-01T23:00:00Z", &[("service", "billing")]);
    assert_eq!(reason(&mut s, &other), None);
    // A resolve inside the silence is suppressed too.
    assert_eq!(
        reason(&mut s, &resolved(at("2026-03-01T23:00:00Z"))),
        silenced
    );
}

#[test]
fn invalid_silences_are_named() {
    let cases = [
        (
            SILENCE
                .replace("02:00:00Z", "00:00:00Z")
                .replace("03-02", "03-01"),
            r#"silences[0] (id "chg-1"): `ends_at` 2026-03-01T00:00:00+00:00 is not after"#,
        ),
        (
            SILENCE.replace(r#"'{service="checkout"}'"#, "[]"),
            "silences[0] (id \"chg-1\"): `matchers` is empty",
        ),
        (
            SILENCE.replace(r#"service="checkout""#, r#"service=~".*""#),
            "would match every event",
        ),
        (
            SILENCE.replace(r#"service="checkout""#, r#"service=~"(""#),
            "silences[0] (id \"chg-1\"): `matchers`: service=~\"(\" has an invalid regex",
        ),
        (
            format!("{SILENCE}{SILENCE}"),
            "silences[1] (id \"chg-1\"): has the id of an earlier",
        ),
    ];
    for (text, want) in cases {
        let e = config_error(&text);
        assert!(e.contains(want), "{e}\nwanted: {want}");
    }
}

fn silence(id: &str, matchers: &str, from: &str, to: &str) -> Silence {
    Silence {
        id: id.into(),
        matchers: matchers.into(),
        starts_at: t(from),
        ends_at: t(to),
        created_by: "bob".into(),
        comment: "test".into(),
    }
}

#[test]
fn silences_added_expired_listed_and_pruned_at_run_time() {
    let mut s = suppressor("");
    let a = silence(
        "",
        r#"ci="db-1""#,
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z",
    );
    let id = s.add_silence(a.clone()).unwrap();
    assert_eq!(id.len(), 16, "a stable hash: {id}");
    assert_eq!(s.add_silence(a).unwrap(), id, "same silence, same id");
    let b = silence(
        "b",
        r#"ci="db-2""#,
        "2026-01-05T00:00:00Z",
        "2026-01-06T00:00:00Z",
    );
    s.add_silence(b).unwrap();
    let ids: Vec<&str> = s.silences().map(|x| x.id.as_str()).collect();
    let mut sorted = vec![id.as_str(), "b"];
    sorted.sort();
    assert_eq!(ids, sorted, "listed in id order");

    let mut db1 = ev("f", "2026-01-01T11:00:00Z", &[]);
    db1.ci = Some("db-1".into());
    assert_eq!(
        reason(&mut s, &db1),
        Some((SuppressReason::Silenced, id.clone()))
    );
    s.expire_silence(&id, t("2026-01-01T10:00:00Z")).unwrap();
    assert_eq!(reason(&mut s, &db1), None);
    db1.time = t("2026-01-01T09:59:59Z");
    assert!(
        reason(&mut s, &db1).is_some(),
        "events before the expiry stay silenced"
    );
    assert!(matches!(
        s.expire_silence(&id, t("2026-01-01T12:00:00Z")),
        Err(Error::AlreadyExpired { .. })
    ));
    assert_eq!(
        s.expire_silence("nope", t("2026-01-01T12:00:00Z")),
        Err(Error::UnknownSilence("nope".into()))
    );

    // Expiring a pending silence leaves an empty one.
    s.expire_silence("b", t("2026-01-03T00:00:00Z")).unwrap();
    let b = s.silence("b").unwrap();
    assert_eq!(
        (b.starts_at, b.ends_at),
        (t("2026-01-03T00:00:00Z"), t("2026-01-03T00:00:00Z"))
    );
    assert_eq!(b.state(t("2026-01-03T00:00:00Z")), SilenceState::Expired);

    // Replacing by id.
    let b2 = silence(
        "b",
        r#"ci="db-3""#,
        "2026-02-01T00:00:00Z",
        "2026-02-02T00:00:00Z",
    );
    s.add_silence(b2.clone()).unwrap();
    assert_eq!(s.silence("b"), Some(&b2));

    assert_eq!(s.prune_silences(t("2026-01-31T00:00:00Z")).len(), 1);
    assert_eq!(s.silences().count(), 1);

    let bad = silence("c", "{}", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
    let e = s.add_silence(bad).unwrap_err().to_string();
    assert!(e.starts_with("silence \"c\": `matchers` is empty"), "{e}");
}

// ---------------------------------------------------------------- together

#[test]
fn silence_comes_before_maintenance_before_inhibition() {
    let mut s = suppressor(&format!(
        "{SILENCE}\n[[maintenance]]\nname = \"m\"\ntargets = [\"checkout\"]\n\
         times = [\"21:00-23:00\"]\n{INHIBIT}"
    ));
    let crit = severity(
        ev("crit", "2026-03-01T20:00:00Z", &[("service", "checkout")]),
        Severity::Critical,
    );
    assert_eq!(reason(&mut s, &crit), None);
    let warn = |at: &str| ev("warn", at, &[("service", "checkout")]);
    let got: Vec<_> = [
        "2026-03-01T22:30:00Z",
        "2026-03-01T21:30:00Z",
        "2026-03-01T20:30:00Z",
    ]
    .iter()
    .map(|at| reason(&mut s, &warn(at)).map(|x| x.0))
    .collect();
    assert_eq!(
        got,
        [
            Some(SuppressReason::Silenced),
            Some(SuppressReason::Maintenance),
            Some(SuppressReason::Inhibited)
        ]
    );
    // A silenced source still inhibits (its state is updated before anything is decided).
    let crit2 = severity(
        ev(
            "crit2",
            "2026-03-01T22:30:00Z",
            &[("service", "checkout"), ("cluster", "k")],
        ),
        Severity::Critical,
    );
    assert_eq!(
        reason(&mut s, &crit2).map(|x| x.0),
        Some(SuppressReason::Silenced)
    );
    let warn2 = ev(
        "warn2",
        "2026-03-02T05:00:00Z",
        &[("service", "checkout"), ("cluster", "k")],
    );
    assert_eq!(
        reason(&mut s, &warn2).map(|x| x.1).as_deref(),
        Some("inhibit[0]:crit2")
    );
}

#[test]
fn reasons_have_stable_names() {
    let names: Vec<&str> = SuppressReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["silenced", "maintenance", "inhibited"]);
    for r in SuppressReason::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}

#[test]
fn example_config_parses_and_builds() {
    let text = include_str!("../example.toml");
    let cfg: SuppressionConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.silences.len(), 1);
    assert_eq!(cfg.maintenance.len(), 2);
    assert_eq!(cfg.inhibit.len(), 1);
    assert_eq!(cfg.maintenance[1].matchers.0.len(), 2);
    let mut s = Suppressor::new(cfg.clone()).unwrap();
    assert_eq!(s.silences().next().map(|x| x.id.as_str()), Some("chg-4711"));
    // Saturday 2026-03-07 23:00 Berlin is 22:00 UTC.
    let mut e = ev("f", "2026-03-07T22:00:00Z", &[]);
    e.ci = Some("db-replica-1".into());
    assert_eq!(
        s.check(&e, None).map(|x| x.by).as_deref(),
        Some("weekly-db-patching")
    );
    // And it serialises back to something that reads the same.
    let again: SuppressionConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
    assert_eq!(
        toml::from_str::<SuppressionConfig>("").unwrap(),
        SuppressionConfig::default()
    );
}

#[test]
fn unknown_fields_and_wrong_shapes_are_refused() {
    let e = toml::from_str::<SuppressionConfig>("[[maintenance]]\nname = \"w\"\ntarget = [\"x\"]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `target`"), "{e}");
    let e = toml::from_str::<SuppressionConfig>("[[inhibit]]\nsource_matchers = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("a matcher string"), "{e}");
}

// ---------------------------------------------------------------- properties

const PROP_CONFIG: &str = r#"
max_inhibit_sources = 3
[[silences]]
id = "s"
matchers = '{team=~"a.*", env!="prod"}'
starts_at = "2026-01-01T00:00:00Z"
ends_at = "2026-01-01T06:00:00Z"
[[maintenance]]
name = "m"
targets = ["ci-1"]
matchers = 'team=~"b|c"'
weekdays = ["thu"]
times = ["22:00-01:00"]
time_zone = "Europe/Berlin"
[[inhibit]]
source_matchers = 'severity="critical"'
target_matchers = 'severity!="critical"'
equal = ["team"]
[[inhibit]]
source_matchers = 'alertname=~"A|B"'
target_matchers = 'env=~".*"'
"#;

fn arb_event() -> impl Strategy<Value = (Event, Option<String>)> {
    let name = prop_oneof![
        Just("team".to_string()),
        Just("env".to_string()),
        Just("service".to_string()),
        Just("ci".to_string()),
        Just("severity".to_string()),
        ".{0,6}",
    ];
    let value = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("prod".to_string()),
        ".{0,8}"
    ];
    (
        prop::collection::btree_map(name, value, 0..5),
        0i64..(24 * 3600),
        prop::sample::select(vec!["f1", "f2", "f3", "f4", "f5"]),
        prop::sample::select(vec!["A", "B", "C"]),
        any::<bool>(),
        0usize..5,
        prop::option::of(prop::sample::select(vec!["ci-1", "ci-2"])),
        prop::option::of(prop::sample::select(vec!["svc", "ci-1"])),
    )
        .prop_map(|(labels, secs, fp, name, firing, sev, ci, service)| {
            let mut e = ev(fp, T0, &[]);
            e.labels = labels;
            e.time += chrono::Duration::seconds(secs);
            e.name = name.into();
            e.status = if firing {
                Status::Firing
            } else {
                Status::Resolved
            };
            e.severity = [
                Severity::Critical,
                Severity::Major,
                Severity::Minor,
                Severity::Warning,
                Severity::Info,
            ][sev];
            e.ci = ci.map(str::to_string);
            (e, service.map(str::to_string))
        })
}

proptest! {
    #[test]
    fn check_is_total_and_deterministic(
        events in prop::collection::vec(arb_event(), 0..40),
        split in 0usize..40,
    ) {
        let mut a = suppressor(PROP_CONFIG);
        let mut b = suppressor(PROP_CONFIG);
        let run = |s: &mut Suppressor, evs: &[(Event, Option<String>)]| -> Vec<Option<Suppression>> {
            evs.iter().map(|(e, svc)| s.check(e, svc.as_deref())).collect()
        };
        let first = run(&mut a, &events);
        prop_assert_eq!(&first, &run(&mut b, &events));
        prop_assert_eq!(a.inhibit_state(), b.inhibit_state());
        prop_assert!(a.inhibit_sources() <= 3);

        // Checkpointing in the middle and carrying on gives the same answers.
        let split = split.min(events.len());
        let mut c = suppressor(PROP_CONFIG);
        let mut got = run(&mut c, &events[..split]);
        let json = serde_json::to_string(c.inhibit_state()).unwrap();
        let mut d = suppressor(PROP_CONFIG);
        d.restore_inhibit_state(serde_json::from_str(&json).unwrap());
        got.extend(run(&mut d, &events[split..]));
        prop_assert_eq!(first, got);
    }
}
