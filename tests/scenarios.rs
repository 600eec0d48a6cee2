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
