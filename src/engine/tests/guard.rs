//! The engine's door (`guard.rs`): times it cannot compute with are refused with a DLQ record
//! instead of a panic, ended silences are forgotten on event time, and the suppressed alerts
//! remembered stay within their cap.

use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone};

use super::*;
use crate::engine::MAX_SUPPRESSED;
use crate::model::{Ack, ChangeDecision, DecisionStatus};
use crate::suppress::{MAX_SILENCES, MatcherStrings};

fn dlq_reasons(out: &[Output]) -> Vec<&str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dlq(d) => Some(d.reason.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn times_past_year_9999_are_refused_not_a_panic() {
    // chrono holds times up to year 262,143; a window added to one overflowed and panicked.
    let far = DateTime::<Utc>::MAX_UTC - Duration::days(1);
    for category in [Category::Availability, Category::Security, Category::Change] {
        for status in [Status::Firing, Status::Resolved] {
            let mut e = engine();
            let mut event = ev("X", "web-1", Severity::Critical, status, 0);
            event.time = far;
            event.category = category;
            let applied = e.apply(&event);
            assert_eq!(
                applied.outcome,
                Some(Outcome::Refused),
                "{category:?} {status:?}"
            );
            assert_eq!(dlq_reasons(&applied.outputs), ["time_out_of_range"]);
            let Output::Dlq(d) = &applied.outputs[0] else {
                unreachable!()
            };
            assert!(
                d.detail.contains("outside the years 1970 to 9999"),
                "{}",
                d.detail
            );
            assert_eq!(serde_json::from_str::<Event>(&d.raw).unwrap(), event);
            assert_eq!(e.state().clock, None, "the clock did not move");
            // The engine goes on.
            let fine = ev("Y", "web-1", Severity::Critical, Status::Firing, 0);
            assert_eq!(incidents(&e.apply(&fine).outputs).len(), 1);
        }
    }
    let mut e = engine();
    let before_1970 = DateTime::<Utc>::MIN_UTC + Duration::days(1);
    for input in [Input::Tick(far), Input::Tick(before_1970)] {
        assert_eq!(dlq_reasons(&e.apply(input).outputs), ["time_out_of_range"]);
    }
    let ack = Ack {
        incident: "INC-1".into(),
        by: "alice".into(),
        time: far,
    };
    assert_eq!(
        dlq_reasons(&e.apply(Input::Ack(&ack)).outputs),
        ["time_out_of_range"]
    );
    let decision = ChangeDecision {
        change: "RFC-1".into(),
        decision: DecisionStatus::Approved,
        by: "cab".into(),
        comment: None,
        time: far,
    };
    let refused = e.apply(Input::Decision(&decision));
    assert_eq!(dlq_reasons(&refused.outputs), ["time_out_of_range"]);
    assert_eq!(refused.outcome, None, "only events have an outcome");
    assert_eq!(e.state().clock, None);
}

#[test]
fn durations_too_long_for_chrono_mean_never_and_do_not_panic() {
    let forever = StdDuration::from_secs(u64::MAX);
    let mut e = engine_with(|c| {
        c.retention = forever;
        c.resolve_hold = forever;
        c.reopen_window = forever;
        c.flap_window = forever;
        c.security.quiet_period = forever;
    });
    let latest = Utc.with_ymd_and_hms(9999, 12, 31, 23, 0, 0).unwrap();
    let mut out = Vec::new();
    for status in [
        Status::Firing,
        Status::Resolved,
        Status::Firing,
        Status::Resolved,
    ] {
        let mut event = ev("X", "web-1", Severity::Critical, status, 0);
        event.time = latest;
        out.extend(e.apply(&event).outputs);
        out.extend(e.apply(&detection("shell", "web-1", latest)).outputs);
    }
    out.extend(e.apply(Input::Tick(latest)).outputs);
    assert!(dlq_reasons(&out).is_empty());
    assert!(
        incidents(&out)
            .iter()
            .all(|i| i.status == IncidentStatus::Open),
        "a hold of forever never ends"
    );
}

#[test]
fn a_quiet_day_between_two_events_is_no_reason_to_refuse_the_second() {
    // The engine has no wall clock: after a tick, the first event of the next day is as far
    // ahead as a future-dated one would be. Future dates are refused at ingest instead.
    let mut e = engine();
    e.apply(Input::Tick(at(0)));
    e.apply(&detection("shell", "web-1", at(10)));
    let next_day = e.apply(&detection("shell", "web-1", at(86_400)));
    assert_eq!(next_day.outcome, Some(Outcome::Opened));
}

#[test]
fn events_far_behind_are_refused_only_when_max_behind_is_set() {
    let late = ev("X", "web-1", Severity::Critical, Status::Firing, 0);
    let mut e = engine();
    e.apply(Input::Tick(at(86_400)));
    assert_ne!(
        e.apply(&late).outcome,
        Some(Outcome::Refused),
        "off by default"
    );

    let mut e = engine_with(|c| c.max_behind = StdDuration::from_secs(3600));
    e.apply(Input::Tick(at(86_400)));
    let refused = e.apply(&late);
    assert_eq!(dlq_reasons(&refused.outputs), ["clock_behind"]);
    let recent = ev(
        "X",
        "web-1",
        Severity::Critical,
        Status::Firing,
        86_400 - 600,
    );
    assert_eq!(e.apply(&recent).outcome, Some(Outcome::Opened));
}

fn silence(i: usize, ends: DateTime<Utc>) -> Silence {
    Silence {
        id: format!("s{i}"),
        matchers: MatcherStrings::from(format!("ci=\"host-{i}\"").as_str()),
        starts_at: at(0),
        ends_at: ends,
        created_by: String::new(),
        comment: String::new(),
    }
}

#[test]
fn ended_silences_make_room_and_are_forgotten_on_event_time() {
    let mut e = engine();
    for i in 0..MAX_SILENCES {
        assert_eq!(e.apply(Input::Silence(&silence(i, at(60)))).refused, None);
    }
    // All active at t=30: no room, and the engine says why.
    e.apply(&ev("X", "web-1", Severity::Warning, Status::Firing, 30));
    let one_more = silence(MAX_SILENCES, at(7200));
    let refused = e.apply(Input::Silence(&one_more));
    assert_eq!(refused.refused.map(|r| r.reason), Some("too_many_silences"));
    assert_eq!(dlq_reasons(&refused.outputs), ["too_many_silences"]);

    // At t=61 they have all ended: ended silences do not count against the cap.
    e.apply(&ev("X", "web-1", Severity::Warning, Status::Firing, 61));
    assert_eq!(e.apply(Input::Silence(&one_more)).refused, None);
    assert_eq!(e.state().silences.len(), 1);
    assert_eq!(e.silences().count(), 1);

    // A silence is forgotten `retention` (1h) after it ended, by event time alone.
    e.apply(&ev(
        "X",
        "web-1",
        Severity::Warning,
        Status::Firing,
        7200 + 3599,
    ));
    assert_eq!(
        e.silences().count(),
        1,
        "late events of its time are still silenced"
    );
    e.apply(&ev(
        "X",
        "web-1",
        Severity::Warning,
        Status::Firing,
        7200 + 3600,
    ));
    assert_eq!(e.silences().count(), 0);
    assert!(
        e.state().silences.is_empty(),
        "and not in the checkpoint either"
    );
}

#[test]
fn suppressed_alerts_stay_within_their_cap_least_recently_seen_forgotten_first() {
    let mut e = engine();
    let everything = Silence {
        id: "all".into(),
        matchers: MatcherStrings::from("alertname=~\".+\""),
        starts_at: at(0),
        ends_at: at(86_400),
        created_by: String::new(),
        comment: String::new(),
    };
    assert_eq!(e.apply(Input::Silence(&everything)).refused, None);
    let n = MAX_SUPPRESSED + MAX_SUPPRESSED / 5;
    let mut event = ev("X", "web-1", Severity::Critical, Status::Firing, 1);
    // host-0, the first forgotten, is seen again last of all: remembered anew.
    for (k, i) in (0..n).chain([0]).enumerate() {
        event.fingerprint = format!("host-{i}");
        event.time = at(1 + k as i64 / 2);
        assert_eq!(e.apply(&event).outcome, Some(Outcome::Suppressed));
        assert!(e.state().suppressed.len() <= MAX_SUPPRESSED);
    }
    let kept = e.state().suppressed.len();
    assert!(kept >= MAX_SUPPRESSED - MAX_SUPPRESSED / 10, "{kept} kept");
    assert_eq!(
        e.take_suppressed_evicted(),
        (n + 1 - kept) as u64,
        "every one counted"
    );
    assert_eq!(e.take_suppressed_evicted(), 0, "once");
    assert!(e.state().suppressed.contains_key("host-0"));
    assert!(
        e.state()
            .suppressed
            .contains_key(&format!("host-{}", n - 1))
    );
    assert!(
        !e.state().suppressed.contains_key("host-1"),
        "seen least recently"
    );
}
