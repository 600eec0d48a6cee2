//! Scenario files replayed through `d2c replay` with the example configuration, checked for what
//! an operator should get out of them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn replay(input: &Path) -> Vec<Value> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml");
    common::replay_file(&config, input, &[])
}

/// The last version of every incident, by id.
fn last_versions(records: &[Value]) -> BTreeMap<String, Value> {
    let mut last = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "incident") {
        last.insert(r["id"].as_str().unwrap().to_string(), r.clone());
    }
    last
}

#[test]
fn a_storm_from_one_failing_dependency_is_one_incident_with_that_root_cause() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = root.join("tests/scenarios/storm.jsonl");
    let events = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("{\"tick\""))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["alerts"].as_array().map_or(1, Vec::len)
        })
        .sum::<usize>();
    assert!(events >= 5000, "the storm has {events} events");
    let records = replay(&input);
    assert_eq!(records.iter().filter(|r| r["type"] == "dlq").count(), 0);
    let last = last_versions(&records);
    let incidents: Vec<&Value> = last
        .values()
        .filter(|i| i["merged_into"].is_null())
        .collect();
    assert_eq!(
        incidents.len(),
        3,
        "the outage, the email backlog and the full disk: {incidents:#?}"
    );
    let outage = incidents
        .iter()
        .find(|i| i["root_cause"]["service"] == "payments-db")
        .expect("an incident with payments-db as root cause");
    let cis: BTreeSet<&str> = outage["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["ci"].as_str())
        .collect();
    assert!(cis.len() >= 30, "{} CIs: {cis:?}", cis.len());
    let absorbed = outage["event_count"].as_u64().unwrap() as usize;
    let compression = 1.0 - 1.0 / absorbed as f64;
    assert!(
        compression >= 0.99,
        "{absorbed} events in one incident: {:.2}% compression",
        compression * 100.0
    );
    assert_eq!(outage["status"], "resolved");
    assert_eq!(outage["priority"], "P1");
    let reason = outage["root_cause"]["reason"].as_str().unwrap();
    assert!(reason.contains("payments-db"), "{reason}");
    // Every alert above the database is marked as its symptom.
    for a in outage["alerts"].as_array().unwrap() {
        if a["service"] != "payments-db" {
            assert_eq!(a["symptom_of"], "payments-db", "{a}");
        }
    }
    // The unrelated failures in the same window stayed apart.
    let titles: BTreeSet<&str> = incidents
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains("email-worker: QueueBacklog"), "{titles:?}");
    assert!(titles.contains("batch-7: DiskFull"), "{titles:?}");
    // Compression over the whole input: events per incident.
    let total: f64 = events as f64;
    assert!(1.0 - incidents.len() as f64 / total >= 0.99);
}

#[test]
fn every_format_parses_its_documented_example_and_garbage_goes_to_the_dlq() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/ingest");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("formats.jsonl");
    let mut text = String::new();
    for p in &names {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        text.push_str(&v.to_string());
        text.push('\n');
    }
    let garbage = [
        "{\"this is\": not json",
        "{\"hello\":\"world\"}",
        "{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"x\"}",
        "{\"routing_key\":\"r\",\"event_action\":\"explode\"}",
    ];
    for g in garbage {
        text.push_str(g);
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let records = replay(&input);
    let dlq: Vec<&Value> = records.iter().filter(|r| r["type"] == "dlq").collect();
    assert_eq!(
        dlq.len(),
        garbage.len(),
        "only the garbage goes to the dlq: {dlq:#?}"
    );
    for d in dlq {
        assert!(!d["reason"].as_str().unwrap().is_empty());
        assert!(!d["detail"].as_str().unwrap().is_empty());
    }
    assert!(names.len() >= 11, "a fixture per format: {names:?}");
}

#[test]
fn an_attack_through_three_stages_and_an_unrelated_one_are_two_security_incidents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let records = replay(&root.join("tests/scenarios/attack.jsonl"));
    assert_eq!(records.iter().filter(|r| r["type"] == "dlq").count(), 0);
    let last = last_versions(&records);
    let security: Vec<&Value> = last
        .values()
        .filter(|i| i["security"].is_object())
        .collect();
    assert_eq!(
        security.len(),
        2,
        "the web-1 attack and the db-2 brute force, nothing from the noise: {security:#?}"
    );
    assert_eq!(last.len(), 2, "no operational incident either: {last:#?}");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let on_host = |host: &str| {
        *security
            .iter()
            .find(|i| strings(&i["security"]["entities"]["hosts"]) == [host])
            .unwrap_or_else(|| panic!("an incident on {host} alone: {security:#?}"))
    };
    let web = on_host("web-1");
    let stages: Vec<&str> = web["security"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tactic_id"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["TA0001", "TA0002", "TA0003"], "{web:#}");
    let e = &web["security"]["entities"];
    assert_eq!(strings(&e["source_ips"]), ["203.0.113.7"]);
    assert_eq!(strings(&e["ips"]), ["10.0.1.5", "203.0.113.7"]);
    assert_eq!(strings(&e["containers"]), ["shop-frontend"]);
    assert_eq!(strings(&e["users"]), ["www-data"]);
    // web-1 is a CI of web-frontend in the example topology: the attack exposes that service.
    assert_eq!(strings(&web["services"]), ["web-frontend"], "{web:#}");
    assert_eq!(
        strings(&web["security"]["techniques"]),
        ["T1053", "T1053.003", "T1059", "T1190"]
    );
    assert_eq!(
        strings(&web["security"]["tools"]),
        ["falco", "ocsf", "suricata", "wazuh"]
    );
    assert_eq!(
        (&web["severity"], &web["priority"]),
        (&"critical".into(), &"P1".into())
    );
    // Six detections, two of them repeats counted on their alert, not listed twice.
    assert_eq!(web["event_count"], 6);
    let alerts = web["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    let counts: BTreeMap<&str, u64> = alerts
        .iter()
        .map(|a| (a["source"].as_str().unwrap(), a["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts["suricata"], 2);
    assert_eq!(counts["falco"], 2);
    // Progression raised the priority: one stage P3, two P2, three P1.
    let priorities: Vec<&str> = records
        .iter()
        .filter(|r| r["id"] == web["id"] && r["status"] == "open")
        .map(|r| r["priority"].as_str().unwrap())
        .collect();
    assert_eq!(priorities.first(), Some(&"P3"));
    assert!(priorities.contains(&"P2"), "{priorities:?}");
    assert_eq!(priorities.last(), Some(&"P1"));
    // Nothing resolves an attack but time: both closed after the quiet period.
    assert_eq!(web["status"], "closed");

    let db = on_host("db-2");
    let stages: Vec<&str> = db["security"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tactic"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["Credential Access"]);
    let e = &db["security"]["entities"];
    assert_eq!(strings(&e["source_ips"]), ["198.51.100.23"]);
    assert_eq!(strings(&e["users"]), ["oracle"]);
    assert_eq!(
        strings(&db["security"]["techniques"]),
        ["T1110", "T1110.001"]
    );
    assert_eq!(strings(&db["security"]["tools"]), ["ecs", "wazuh"]);
    assert_eq!(db["status"], "closed");

    // One containment RFC per incident, always waiting for approval.
    let rfcs: Vec<&Value> = records.iter().filter(|r| r["type"] == "change").collect();
    assert_eq!(rfcs.len(), 2, "{rfcs:#?}");
    for (incident, action, target) in [
        (web, "isolate_host", "web-1"),
        (db, "block_ip", "198.51.100.23"),
    ] {
        let rfc = rfcs
            .iter()
            .find(|r| r["incident_id"] == incident["id"])
            .unwrap_or_else(|| panic!("an RFC for {}", incident["id"]));
        assert_eq!(rfc["approval"], "required");
        assert_eq!(rfc["containment"]["action"], action);
        assert_eq!(strings(&rfc["containment"]["targets"]), [target]);
    }
}

// ---- Right the first time (issue 15) ------------------------------------------------------------

fn scenario(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/scenarios/{name}"))
}

/// Replays `name` with `env` overrides of the example configuration.
fn replay_with(name: &str, env: &[(&str, &str)]) -> Vec<Value> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml");
    common::replay_file(&config, &scenario(name), env)
}

/// Every version of every incident, by id, in the order published.
fn versions(records: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "incident") {
        all.entry(r["id"].as_str().unwrap().to_string())
            .or_default()
            .push(r.clone());
    }
    all
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    d2c::model::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

/// Seconds from an incident's first alert to its first published version: what the group
/// wait costs in time to detect.
fn detection_delay(first: &Value) -> i64 {
    let earliest = first["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| time(&a["first_seen"]))
        .min()
        .unwrap();
    (time(&first["updated_at"]) - earliest).num_seconds()
}

/// Versions per incident of `symptom-first.jsonl` at commit c043541 (before issue 15), in the
/// order the outages happen: each first version named a symptom as the root cause.
const SYMPTOM_FIRST_BEFORE: [usize; 5] = [5, 5, 5, 7, 9];

#[test]
fn symptom_first_outages_are_published_with_the_right_root_cause_and_no_wrong_rfc() {
    // The cause of each outage, in the order they happen (scripts/gen-scenarios.py).
    let causes = [
        "payments-db",
        "user-db",
        "search-cache",
        "payments-db",
        "payments-db",
    ];
    let records = replay_with("symptom-first.jsonl", &[]);
    let mut incidents: Vec<Vec<Value>> = versions(&records).into_values().collect();
    incidents.sort_by_key(|v| time(&v[0]["opened_at"]));
    assert_eq!(incidents.len(), causes.len());
    let mut figures = Vec::new();
    for ((vs, cause), before) in incidents.iter().zip(causes).zip(SYMPTOM_FIRST_BEFORE) {
        let first = &vs[0];
        assert_eq!(
            first["root_cause"]["service"], cause,
            "the first version names the cause: {first:#}"
        );
        assert!(
            vs.iter().all(|v| v["root_cause"]["service"] == cause),
            "and no later version names another"
        );
        let delay = detection_delay(first);
        assert!(
            (30..=120).contains(&delay),
            "the wait costs at least group_wait and at most group_wait_max: {delay} s"
        );
        assert!(vs.len() < before, "{} versions, {before} before", vs.len());
        figures.push((
            cause,
            first["alerts"].as_array().unwrap().len(),
            before,
            vs.len(),
            delay,
        ));
    }
    // No RFC for a service that was not the cause.
    let rfcs: Vec<&Value> = records.iter().filter(|r| r["type"] == "change").collect();
    assert!(!rfcs.is_empty());
    for r in &rfcs {
        let incident = &versions(&records)[r["incident_id"].as_str().unwrap()][0];
        assert_eq!(r["service"], incident["root_cause"]["service"], "{r:#}");
    }
    for (cause, chain, before, after, delay) in &figures {
        eprintln!(
            "symptom-first: cause {cause} (chain of {chain}): {before} versions before, {after} now; first version {delay} s after the first alert"
        );
    }

    // With the wait off (today's timing), the first versions name the symptoms, and the RFCs
    // raised for them are withdrawn when the root cause moves.
    let at_once = replay_with(
        "symptom-first.jsonl",
        &[
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
            ("D2C_CORRELATION__GROUP_INTERVAL", "0s"),
        ],
    );
    let wrong = versions(&at_once)
        .values()
        .filter(|vs| !causes.contains(&vs[0]["root_cause"]["service"].as_str().unwrap()))
        .count();
    assert_eq!(
        wrong, 5,
        "without the wait every first version names a symptom"
    );
    let withdrawn_for_moving = at_once
        .iter()
        .filter(|r| r["type"] == "change" && r["status"] == "withdrawn")
        .filter(|r| r["reason"].as_str().unwrap().contains("root cause"))
        .count();
    assert!(withdrawn_for_moving >= 4, "{withdrawn_for_moving}");
}

/// The change records of RFC `id`, in order.
fn rfc_versions<'a>(records: &'a [Value], id: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "change" && r["id"] == id)
        .collect()
}

#[test]
fn merged_resolved_and_moved_incidents_withdraw_their_open_rfcs_with_the_reason() {
    let records = replay_with("withdraw.jsonl", &[]);
    let all = versions(&records);
    let rfcs: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["type"] == "change")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let withdrawal = |id: &str| -> Value {
        let vs = rfc_versions(&records, id);
        assert_eq!(vs[0]["version"], 1);
        let last = vs.last().unwrap();
        assert_eq!(last["status"], "withdrawn", "{vs:#?}");
        assert_eq!(last["version"], vs.len());
        (*last).clone()
    };
    // 1. Merge: the incident merged away keeps no open RFC.
    let merged = all
        .values()
        .find(|vs| vs.last().unwrap()["merged_into"].is_string())
        .expect("an incident merged into another");
    let merged_id = merged[0]["id"].as_str().unwrap();
    let rfc = rfcs
        .iter()
        .find(|r| rfc_versions(&records, r)[0]["incident_id"] == merged_id)
        .expect("the merged incident had an RFC");
    let w = withdrawal(rfc);
    let reason = w["reason"].as_str().unwrap();
    assert!(
        reason.contains("was merged into") && reason.contains(merged_id),
        "{reason}"
    );
    // 2. Early resolve: the payments database recovered before anyone approved the fail-over.
    let failover = rfcs
        .iter()
        .map(|r| rfc_versions(&records, r))
        .find(|vs| {
            vs[0]["rule"] == "database-failover"
                && vs[0]["created_at"].as_str().unwrap() < "2026-11-28T12"
        })
        .expect("a fail-over RFC for the first payments-db outage");
    let w = withdrawal(failover[0]["id"].as_str().unwrap());
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .contains("resolved before the change was approved"),
        "{w:#}"
    );
    // 3. The root cause moved after the first version: the rollback of checkout is withdrawn,
    // the fail-over of the database proposed.
    let moved = rfcs
        .iter()
        .map(|r| rfc_versions(&records, r))
        .find(|vs| vs[0]["service"] == "checkout-api")
        .expect("an RFC for checkout-api");
    let w = withdrawal(moved[0]["id"].as_str().unwrap());
    assert_eq!(
        w["reason"],
        format!(
            "the root cause of incident {} moved from checkout-api to payments-db",
            w["incident_id"].as_str().unwrap()
        )
    );
    assert!(
        rfcs.iter().any(|r| {
            let v = rfc_versions(&records, r);
            v[0]["incident_id"] == w["incident_id"] && v[0]["service"] == "payments-db"
        }),
        "a new RFC follows the new root cause"
    );
    // A pre-approved (standard) RFC needs no decision: it is not withdrawn when its incident
    // resolves.
    let standard = rfcs
        .iter()
        .map(|r| rfc_versions(&records, r))
        .find(|vs| vs[0]["approval"] == "pre_approved")
        .expect("a standard RFC");
    assert_eq!(standard.len(), 1, "{standard:#?}");
    assert_eq!(standard[0]["status"], "proposed");
}

#[test]
fn an_approved_rfc_is_not_withdrawn_when_its_incident_resolves() {
    let plain = replay_with("withdraw.jsonl", &[]);
    let first = plain
        .iter()
        .find(|r| r["type"] == "change" && r["rule"] == "database-failover")
        .unwrap();
    let id = first["id"].as_str().unwrap();
    let mut input = std::fs::read_to_string(scenario("withdraw.jsonl")).unwrap();
    // Approved a minute after it was raised, before the database recovers.
    let at = time(&first["created_at"]) + chrono::Duration::seconds(60);
    let decision = format!(
        "{{\"decision\":{{\"change\":\"{id}\",\"decision\":\"approved\",\"by\":\"cab\",\"time\":\"{}\"}}}}\n",
        at.to_rfc3339()
    );
    let lines: Vec<&str> = input.lines().collect();
    let k = lines
        .iter()
        .position(|l| {
            l.contains("\"tick\"") && time(&serde_json::from_str::<Value>(l).unwrap()["tick"]) > at
        })
        .unwrap();
    input = [&lines[..k], &[decision.trim_end()], &lines[k..]]
        .concat()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approved.jsonl");
    std::fs::write(&path, input).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml");
    let records = common::replay_file(&config, &path, &[]);
    let vs = rfc_versions(&records, id);
    let statuses: Vec<&str> = vs.iter().map(|v| v["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["proposed", "approved"], "{vs:#?}");
}

#[test]
fn a_flapping_alert_makes_at_least_three_times_fewer_versions_and_the_same_final_record() {
    let records = replay_with("flapping.jsonl", &[]);
    let before: Vec<Value> = std::fs::read_to_string(scenario("flapping.before.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (now, then) = (versions(&records), versions(&before));
    assert_eq!((now.len(), then.len()), (1, 1));
    let (now, then) = (
        &now.values().next().unwrap(),
        &then.values().next().unwrap(),
    );
    eprintln!(
        "flapping: {} versions before, {} now",
        then.len(),
        now.len()
    );
    assert!(
        now.len() * 3 <= then.len(),
        "{} versions now, {} before",
        now.len(),
        then.len()
    );
    // The final record is the one published before, but for its version number and what this
    // change added to records (what changed, the alerts' annotations).
    let strip = |v: &Value| {
        let mut v = v.clone();
        let o = v.as_object_mut().unwrap();
        o.remove("version");
        o.remove("changed");
        for a in o["alerts"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("annotations");
        }
        v
    };
    assert_eq!(strip(now.last().unwrap()), strip(then.last().unwrap()));
    assert_eq!(now.last().unwrap()["status"], "closed");
    // No version in between swings the impact: the flips of a flapping alert are no news.
    for v in now.iter().filter(|v| v["status"] == "open") {
        assert_eq!(v["impact"]["revenue_at_risk_per_minute"], 300.0, "{v:#}");
    }
}

#[test]
fn an_outage_of_services_the_model_does_not_know_is_one_incident_beside_the_unrelated_alert() {
    let input = scenario("unknown-storm.jsonl");
    let mut events = 0;
    let mut services = BTreeSet::new();
    for l in std::fs::read_to_string(&input).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        for a in v["alerts"].as_array().into_iter().flatten() {
            events += 1;
            if a["labels"]["namespace"] == "shop-eu" {
                services.insert(a["labels"]["app"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(events >= 1000, "{events} events");
    assert!(services.len() >= 4, "{services:?}");
    let records = replay_with("unknown-storm.jsonl", &[]);
    let last = last_versions(&records);
    assert_eq!(last.len(), 2, "{:#?}", last.keys());
    let outage = last
        .values()
        .find(|i| i["alerts"].as_array().unwrap().len() > 1)
        .unwrap();
    let apps: BTreeSet<&str> = outage["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["app"].as_str().unwrap())
        .collect();
    assert_eq!(apps.len(), services.len(), "every service of the namespace");
    let rc = &outage["root_cause"];
    assert_eq!(rc["guess"], true, "{rc:#}");
    assert!(
        rc["reason"].as_str().unwrap().starts_with("a guess:"),
        "{rc:#}"
    );
    assert!(services.contains(rc["service"].as_str().unwrap()));
    let other = last.values().find(|i| i["id"] != outage["id"]).unwrap();
    assert_eq!(other["alerts"][0]["labels"]["namespace"], "reporting");
    assert!(
        records.iter().all(|r| r["type"] != "change"),
        "no RFC for a guessed cause"
    );
    // Without the fallback, one incident per pod.
    let per_ci = replay_with(
        "unknown-storm.jsonl",
        &[("D2C_CORRELATION__FALLBACK_GROUP_BY", "[]")],
    );
    assert!(last_versions(&per_ci).len() > 20);
}

#[test]
fn services_that_fail_and_recover_together_three_times_are_one_incident_the_fourth() {
    let records = replay_with("learned.jsonl", &[]);
    let mut incidents: Vec<Vec<Value>> = versions(&records).into_values().collect();
    incidents.sort_by_key(|v| time(&v[0]["opened_at"]));
    let services = |vs: &Vec<Value>| -> BTreeSet<String> {
        vs.last().unwrap()["failing_services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    // Three outages of two incidents each, then one of one.
    assert_eq!(
        incidents.len(),
        7,
        "{:#?}",
        incidents.iter().map(services).collect::<Vec<_>>()
    );
    for vs in &incidents[..6] {
        assert_eq!(services(vs).len(), 1);
    }
    assert_eq!(
        services(&incidents[6]),
        BTreeSet::from(["payments-db".to_string(), "user-db".to_string()])
    );
    // Learning off: two incidents the fourth time too.
    let off = replay_with("learned.jsonl", &[("D2C_CORRELATION__LEARN_AFTER", "0")]);
    assert_eq!(versions(&off).len(), 8);
}

#[test]
fn alert_annotations_and_service_owners_and_runbooks_are_on_the_incident() {
    let records = replay_with("withdraw.jsonl", &[]);
    let last = last_versions(&records);
    let db = last
        .values()
        .find(|i| i["root_cause"]["service"] == "payments-db")
        .unwrap();
    let ctx = &db["context"][0];
    assert_eq!(ctx["service"], "payments-db", "the root cause's first");
    assert_eq!(ctx["owner"], "dba-team");
    assert_eq!(ctx["runbook"], "https://runbooks.example.com/payments-db");
    assert_eq!(ctx["oncall"], "https://example.pagerduty.com/schedules/DBA");
    let alert = db["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service"] == "payments-db")
        .unwrap();
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "https://runbooks.example.com/payments-db/PostgresDown"
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "PostgresDown on pg-payments-1"
    );
    // An RFC action may use them.
    let rfc = records
        .iter()
        .find(|r| r["type"] == "change" && r["rule"] == "database-failover")
        .unwrap();
    assert!(
        rfc["action"]
            .as_str()
            .unwrap()
            .ends_with("(runbook https://runbooks.example.com/payments-db, owner dba-team)"),
        "{rfc:#}"
    );
}

#[test]
fn every_scenario_with_an_expected_file_replays_byte_identical_to_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name.strip_suffix(".expected.jsonl") else {
            continue;
        };
        let run = || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"))
                .args(["replay", "--config", "config/d2c.toml"])
                .arg(format!("tests/scenarios/{stem}.jsonl"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("D2C_LOG", "warn")
                .output()
                .unwrap();
            assert!(out.status.success());
            out.stdout
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "{stem}: two replays differ");
        assert_eq!(
            String::from_utf8_lossy(&a),
            std::fs::read_to_string(&path).unwrap(),
            "{stem}: replay output changed; if on purpose, regenerate {name} (tests/scenarios/README.md)"
        );
        checked += 1;
    }
    assert!(checked >= 6, "{checked} scenarios checked");
}
