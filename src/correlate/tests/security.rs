//! The security correlator's grouping, dedup, stage and lifecycle rules, on hand-made events.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::config::SecurityConfig;
use crate::correlate::Outcome;
use crate::correlate::security::{self, State};
use crate::model::{Category, Event, IncidentStatus, Priority, Severity, Status};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A detection of `tool`'s `rule` with entity labels and ATT&CK tactics.
fn det(tool: &str, rule: &str, labels: &[(&str, &str)], tactics: &[&str], t: i64) -> Event {
    Event {
        id: format!("{tool}-{rule}-{t}"),
        source: tool.into(),
        time: at(t),
        ci: None,
        name: rule.into(),
        severity: Severity::Minor,
        status: Status::Firing,
        category: Category::Security,
        fingerprint: format!("{tool}-{rule}"),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        attributes: [(
            "attack".to_owned(),
            json!({"tactics": tactics, "techniques": []}),
        )]
        .into_iter()
        .collect(),
    }
}

fn run(state: &mut State, cfg: &SecurityConfig, events: &[Event]) -> Vec<Outcome> {
    events
        .iter()
        .map(|e| security::observe(state, cfg, e).0)
        .collect()
}

#[test]
fn an_attack_on_one_host_is_one_incident_whose_stages_raise_its_priority() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    let attacker = ("src_ip", "203.0.113.7");
    let events = [
        det(
            "suricata",
            "exploit",
            &[attacker, ("dest_ip", "10.0.1.5")],
            &["TA0001"],
            0,
        ),
        det(
            "wazuh",
            "web attack",
            &[("host", "web-1"), ("host_ip", "10.0.1.5")],
            &["TA0001"],
            30,
        ),
        det(
            "falco",
            "shell",
            &[("host", "web-1"), ("user", "www-data")],
            &["TA0002"],
            60,
        ),
        det("ocsf", "cron", &[("host", "web-1")], &["Persistence"], 120),
    ];
    let outcomes = run(&mut s, &cfg, &events);
    assert_eq!(
        outcomes,
        [
            Outcome::Opened,
            Outcome::Joined,
            Outcome::Joined,
            Outcome::Joined
        ]
    );
    let [inc] = <[_; 1]>::try_from(s.incidents.values().collect::<Vec<_>>()).unwrap();
    let record = security::incident(inc, at(120));
    let sec = record.security.as_ref().unwrap();
    let stages: Vec<&str> = sec.stages.iter().map(|s| s.tactic_id.as_str()).collect();
    assert_eq!(stages, ["TA0001", "TA0002", "TA0003"]);
    assert_eq!(sec.entities.hosts, ["web-1"]);
    assert_eq!(sec.entities.source_ips, ["203.0.113.7"]);
    assert_eq!(
        (record.severity, record.priority),
        (Severity::Critical, Priority::P1)
    );
    assert_eq!(
        record.title,
        "Attack on web-1: Initial Access → Execution → Persistence"
    );
}

#[test]
fn repeats_are_counted_on_their_detection_not_listed_again() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    let e = det("falco", "shell", &[("host", "web-1")], &["TA0002"], 0);
    let mut again = e.clone();
    again.time = at(10);
    let mut worse = e.clone();
    worse.time = at(20);
    worse.severity = Severity::Critical;
    let outcomes = run(&mut s, &cfg, &[e, again, worse]);
    assert_eq!(
        outcomes,
        [
            Outcome::Opened,
            Outcome::Deduplicated,
            Outcome::SeverityChanged
        ]
    );
    let inc = s.incidents.values().next().unwrap();
    let record = security::incident(inc, at(20));
    assert_eq!(record.alerts.len(), 1);
    assert_eq!(record.alerts[0].count, 3);
    assert_eq!(record.event_count, 3);
    assert_eq!(record.alerts[0].severity, Severity::Critical);
}

#[test]
fn shared_accounts_destinations_and_configured_addresses_do_not_chain_attacks() {
    let cfg = SecurityConfig {
        shared_ips: vec!["10.0.0.1".into()],
        ..SecurityConfig::default()
    };
    let mut s = State::default();
    let events = [
        // Two hosts, both attacked as root, both talking to the same DNS server.
        det(
            "falco",
            "shell",
            &[
                ("host", "web-1"),
                ("user", "root"),
                ("dest_ip", "10.0.0.53"),
            ],
            &["TA0002"],
            0,
        ),
        det(
            "falco",
            "shell",
            &[("host", "db-2"), ("user", "root"), ("dest_ip", "10.0.0.53")],
            &["TA0002"],
            5,
        ),
        // Two network alerts from behind the same NAT gateway, to two different hosts.
        det(
            "suricata",
            "scan",
            &[("src_ip", "10.0.0.1"), ("dest_ip", "10.0.7.1")],
            &["TA0043"],
            6,
        ),
        det(
            "suricata",
            "scan",
            &[("src_ip", "10.0.0.1"), ("dest_ip", "10.0.7.2")],
            &["TA0043"],
            7,
        ),
    ];
    assert_eq!(run(&mut s, &cfg, &events), [Outcome::Opened; 4]);
    assert_eq!(s.incidents.len(), 4);
    // A named account does link hosts: the attacker moved with it.
    let moved = det(
        "wazuh",
        "login",
        &[("host", "app-3"), ("user", "alice")],
        &["TA0008"],
        8,
    );
    let again = det(
        "wazuh",
        "login",
        &[("host", "app-4"), ("user", "alice")],
        &["TA0008"],
        9,
    );
    assert_eq!(
        run(&mut s, &cfg, &[moved, again]),
        [Outcome::Opened, Outcome::Joined]
    );
}

#[test]
fn the_asset_table_puts_a_network_alert_on_its_host() {
    let cfg = SecurityConfig {
        assets: [("10.0.1.5".to_owned(), "web-1".to_owned())].into(),
        ..SecurityConfig::default()
    };
    let mut s = State::default();
    let events = [
        det(
            "suricata",
            "exploit",
            &[("src_ip", "203.0.113.7"), ("dest_ip", "10.0.1.5")],
            &["TA0001"],
            0,
        ),
        det("falco", "shell", &[("host", "web-1")], &["TA0002"], 60),
    ];
    assert_eq!(
        run(&mut s, &cfg, &events),
        [Outcome::Opened, Outcome::Joined]
    );
}

#[test]
fn outside_the_window_or_below_the_threshold_nothing_joins_or_opens() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    let host = [("host", "web-1")];
    let mut info = det("falco", "package", &[("host", "build-7")], &[], 0);
    info.severity = Severity::Info;
    let mut info_on_web = det("falco", "package", &host, &[], 20);
    info_on_web.severity = Severity::Info;
    let mut resolved = det("ocsf", "finding", &host, &["TA0002"], 30);
    resolved.status = Status::Resolved;
    let late = det("falco", "other", &host, &["TA0002"], 10 + 31 * 60);
    let events = [
        info,
        det("falco", "shell", &host, &["TA0002"], 10),
        info_on_web,
        resolved,
        late,
    ];
    assert_eq!(
        run(&mut s, &cfg, &events),
        [
            Outcome::Ignored,
            Outcome::Opened,
            Outcome::Joined,
            Outcome::Ignored,
            Outcome::Opened
        ]
    );
}

#[test]
fn quiet_incidents_close_then_are_forgotten_and_state_round_trips() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    let host = [("host", "web-1")];
    run(
        &mut s,
        &cfg,
        &[
            det("falco", "shell", &host, &["TA0002"], 0),
            det("falco", "cron", &host, &["TA0003"], 600),
        ],
    );
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
    let retention = std::time::Duration::from_secs(3600);
    // The first detection's quiet time passes: the second one keeps it open.
    assert!(security::run_timers(&mut s, &cfg, retention, at(3700)).is_empty());
    let closed = security::run_timers(&mut s, &cfg, retention, at(600 + 3600));
    assert_eq!(closed.len(), 1);
    let inc = s.incidents.values().next().unwrap();
    assert_eq!(inc.status, IncidentStatus::Closed);
    assert_eq!(inc.closed_at, Some(at(4200)));
    // Closed: a new detection on the host opens a new incident.
    let outcome = security::observe(
        &mut s,
        &cfg,
        &det("falco", "shell", &host, &["TA0002"], 4300),
    )
    .0;
    assert_eq!(outcome, Outcome::Opened);
    let forgotten = security::run_timers(&mut s, &cfg, retention, at(4200 + 3600));
    assert_eq!(forgotten.len(), 1);
    assert_eq!(s.incidents.len(), 1);
    // A time far past the new incident's quiet period and retention: it closes in one round
    // (so it is published closed) and is forgotten in the next.
    let id = s.incidents.keys().next().unwrap().clone();
    let far = at(4300 + 3600 * 24);
    assert_eq!(
        security::run_timers(&mut s, &cfg, retention, far),
        [(id.clone(), at(4300 + 3600))]
    );
    assert_eq!(s.incidents[&id].status, IncidentStatus::Closed);
    assert_eq!(
        security::run_timers(&mut s, &cfg, retention, far),
        [(id, at(4300 + 3600 + 3600))]
    );
    assert!(s.incidents.is_empty());
    assert!(security::run_timers(&mut s, &cfg, retention, far).is_empty());
}

#[test]
fn severity_and_priority_follow_the_documented_rule() {
    use security::{priority, severity};
    assert_eq!(severity(Severity::Warning, 1), Severity::Warning);
    assert_eq!(severity(Severity::Warning, 2), Severity::Major);
    assert_eq!(severity(Severity::Critical, 2), Severity::Critical);
    assert_eq!(severity(Severity::Info, 3), Severity::Critical);
    assert_eq!(priority(Severity::Warning, 1), Priority::P4);
    assert_eq!(priority(Severity::Major, 1), Priority::P3);
    assert_eq!(priority(Severity::Critical, 0), Priority::P2);
    assert_eq!(priority(Severity::Major, 2), Priority::P2);
    assert_eq!(priority(Severity::Critical, 4), Priority::P1);
}

#[test]
fn eviction_keeps_the_cap_least_recently_active_first() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    for i in 0..20 {
        let host = format!("h-{i:02}");
        let e = det("falco", "shell", &[("host", &host)], &["TA0002"], i);
        security::observe(&mut s, &cfg, &e);
    }
    let evicted = security::evict(&mut s, 10);
    assert_eq!(evicted.incidents.len(), 11, "down to 90% of the cap");
    assert_eq!(evicted.open_incidents, 11);
    let hosts: Vec<String> = s
        .incidents
        .values()
        .map(|i| {
            security::incident(i, at(20))
                .security
                .unwrap()
                .entities
                .hosts[0]
                .clone()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(hosts.first().map(String::as_str), Some("h-11"));
    assert!(
        s.open
            .values()
            .flatten()
            .all(|id| s.incidents.contains_key(id))
    );
    assert!(!s.open.contains_key("host:h-00"));
}

#[test]
fn a_scan_from_many_addresses_lists_at_most_the_cap_of_detections() {
    let cfg = SecurityConfig::default();
    let mut s = State::default();
    let n = security::MAX_DETECTIONS + 20;
    for i in 0..n {
        let src = format!("198.51.{}.{}", i / 250, i % 250);
        let e = det(
            "suricata",
            "scan",
            &[("src_ip", &src), ("dest_ip", "10.0.1.5")],
            &["TA0043"],
            0,
        );
        security::observe(&mut s, &cfg, &e);
    }
    let [inc] = <[_; 1]>::try_from(s.incidents.values().collect::<Vec<_>>()).unwrap();
    assert_eq!(inc.detections.len(), security::MAX_DETECTIONS);
    assert_eq!((inc.event_count, inc.unlisted), (n as u64, 20));
    assert_eq!(
        inc.keys.len(),
        security::MAX_DETECTIONS + 1,
        "the sources listed and the host"
    );
}
