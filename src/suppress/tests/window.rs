//! Maintenance windows: midnight, DST, weekdays, date bounds, targets, validation.

use super::*;

fn window(extra: &str) -> Suppressor {
    suppressor(&format!(
        "[[maintenance]]\nname = \"w\"\ntargets = [\"db-1\"]\n{extra}"
    ))
}

fn db1(at: &str) -> Event {
    let mut e = ev("f", at, &[]);
    e.ci = Some("db-1".into());
    e
}

fn open(s: &mut Suppressor, at: &str) -> bool {
    match s.check(&db1(at), None) {
        Some(x) => {
            assert_eq!(
                (x.reason, x.by.as_str()),
                (SuppressReason::Maintenance, "w")
            );
            true
        }
        None => false,
    }
}

#[test]
fn window_across_midnight_belongs_to_its_start_day() {
    // 2026-03-07 is a Saturday.
    let mut s = window("weekdays = [\"sat\"]\ntimes = [\"22:00-04:00\"]");
    assert!(!open(&mut s, "2026-03-07T21:59:59Z"));
    assert!(open(&mut s, "2026-03-07T22:00:00Z"));
    assert!(
        open(&mut s, "2026-03-08T03:59:59Z"),
        "Sunday morning is Saturday's night"
    );
    assert!(!open(&mut s, "2026-03-08T04:00:00Z"));
    assert!(
        !open(&mut s, "2026-03-08T23:00:00Z"),
        "Sunday evening is not selected"
    );
    assert!(
        !open(&mut s, "2026-03-09T01:00:00Z"),
        "nor is Monday morning"
    );
    assert!(
        !open(&mut s, "2026-03-07T01:00:00Z"),
        "Saturday morning belongs to Friday"
    );
}

#[test]
fn window_keeps_local_times_across_dst_in_berlin() {
    // DST starts 2026-03-29 02:00 CET (→ 03:00 CEST); Saturday night 22:00-06:00 local.
    let mut s = window(
        "weekdays = [\"saturday\"]\ntimes = [\"22:00-06:00\"]\ntime_zone = \"Europe/Berlin\"",
    );
    assert!(!open(&mut s, "2026-03-28T20:59:59Z"), "21:59 CET");
    assert!(open(&mut s, "2026-03-28T21:00:00Z"), "22:00 CET");
    assert!(open(&mut s, "2026-03-29T03:59:59Z"), "05:59 CEST");
    assert!(
        !open(&mut s, "2026-03-29T04:00:00Z"),
        "06:00 CEST, an hour earlier in UTC"
    );
    // The same window the week before, all in CET.
    assert!(open(&mut s, "2026-03-22T04:59:59Z"), "05:59 CET");
    assert!(!open(&mut s, "2026-03-22T05:00:00Z"));

    // DST ends 2026-10-25 03:00 CEST (→ 02:00 CET): 02:30 happens twice, both are in.
    let mut s =
        window("weekdays = [\"sun\"]\ntimes = [\"02:00-03:00\"]\ntime_zone = \"Europe/Berlin\"");
    assert!(!open(&mut s, "2026-10-24T23:59:59Z"), "01:59 CEST");
    assert!(open(&mut s, "2026-10-25T00:30:00Z"), "02:30 CEST");
    assert!(open(&mut s, "2026-10-25T01:30:00Z"), "02:30 CET");
    assert!(!open(&mut s, "2026-10-25T02:00:00Z"), "03:00 CET");
}

#[test]
fn window_weekday_selection_and_date_bounds() {
    // 2026-03-02 is a Monday.
    let mut s = window("weekdays = [\"mon-fri\"]\ntimes = [\"12:00-12:30\", \"18:00-24:00\"]");
    for day in 2..=6 {
        assert!(
            open(&mut s, &format!("2026-03-0{day}T12:15:00Z")),
            "day {day}"
        );
        assert!(
            open(&mut s, &format!("2026-03-0{day}T23:59:00Z")),
            "day {day}"
        );
        assert!(
            !open(&mut s, &format!("2026-03-0{day}T12:30:00Z")),
            "day {day}"
        );
    }
    assert!(!open(&mut s, "2026-03-07T12:15:00Z"), "Saturday");
    assert!(!open(&mut s, "2026-03-08T12:15:00Z"), "Sunday");

    let mut s = window("weekdays = [\"Sat-Mon\", \"wednesday:wednesday\"]");
    let days: Vec<bool> = (2..=8)
        .map(|d| open(&mut s, &format!("2026-03-0{d}T08:00:00Z")))
        .collect();
    assert_eq!(days, [true, false, true, false, false, true, true]);

    let mut s =
        window("times = [\"22:00-02:00\"]\nstart_date = \"2026-03-03\"\nend_date = \"2026-03-04\"");
    assert!(
        !open(&mut s, "2026-03-03T01:00:00Z"),
        "started on the 2nd, before the bounds"
    );
    assert!(open(&mut s, "2026-03-03T22:00:00Z"));
    assert!(
        open(&mut s, "2026-03-05T01:00:00Z"),
        "started on end_date, runs to its end"
    );
    assert!(!open(&mut s, "2026-03-05T22:00:00Z"));
}

#[test]
fn window_targets_cis_services_and_matchers() {
    let mut s = suppressor(
        r#"
[[maintenance]]
name = "by-name"
targets = ["db-1", "billing"]
[[maintenance]]
name = "by-matchers"
matchers = ['namespace="batch"', 'alertname=~"Pod.*"']
"#,
    );
    let at = "2026-01-01T00:00:00Z";
    let by =
        |s: &mut Suppressor, e: &Event, service: Option<&str>| s.check(e, service).map(|x| x.by);
    assert_eq!(by(&mut s, &db1(at), None).as_deref(), Some("by-name"));
    assert_eq!(
        by(&mut s, &ev("f", at, &[]), Some("billing")).as_deref(),
        Some("by-name")
    );
    assert_eq!(
        by(&mut s, &ev("f", at, &[("ci", "db-1")]), None).as_deref(),
        Some("by-name")
    );
    assert_eq!(by(&mut s, &ev("f", at, &[]), Some("checkout")), None);
    let mut pod = ev("f", at, &[("namespace", "batch")]);
    assert_eq!(by(&mut s, &pod, None), None, "alertname does not match");
    pod.name = "PodCrashLooping".into();
    assert_eq!(by(&mut s, &pod, None).as_deref(), Some("by-matchers"));
}

#[test]
fn invalid_windows_are_named() {
    let cases = [
        ("time_zone = \"Mars/Olympus\"", "not an IANA time zone"),
        (
            "times = [\"25:00-02:00\"]",
            "\"25:00-02:00\" is not a time range HH:MM-HH:MM",
        ),
        ("times = [\"22:00\"]", "no `-`"),
        ("times = [\"22:00-22:00\"]", "start equals end"),
        ("times = [\"24:00-02:00\"]", "cannot start at 24:00"),
        ("times = [\"9:5x-10:00\"]", "is not HH:MM"),
        ("weekdays = [\"funday\"]", "\"funday\" is not a weekday"),
        (
            "start_date = \"2026-02-30\"",
            "`start_date` \"2026-02-30\" is not a date",
        ),
        (
            "start_date = \"2026-03-02\"\nend_date = \"2026-03-01\"",
            "is before `start_date`",
        ),
        (
            "matchers = 'a=~\"(\"'",
            "`matchers`: a=~\"(\" has an invalid regex",
        ),
    ];
    for (extra, want) in cases {
        let e = config_error(&format!(
            "[[maintenance]]\nname = \"w\"\ntargets = [\"db-1\"]\n{extra}"
        ));
        assert!(e.starts_with("maintenance[0] (\"w\"): "), "{e}");
        assert!(e.contains(want), "{e}\nwanted: {want}");
    }
    let e = config_error("[[maintenance]]\nname = \"w\"");
    assert!(e.contains("targets nothing"), "{e}");
    let e = config_error("[[maintenance]]\ntargets = [\"x\"]");
    assert_eq!(e, "maintenance[0]: has no `name`");
    let e = config_error(
        "[[maintenance]]\nname = \"w\"\ntargets = [\"x\"]\n[[maintenance]]\nname = \"w\"\ntargets = [\"y\"]",
    );
    assert_eq!(
        e,
        "maintenance[1] (\"w\"): has the name of an earlier window"
    );
}
