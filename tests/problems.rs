//! Problems end to end through `d2c replay`: the same database fails three nights running →
//! one problem linking the three incidents; a known error marked on it puts its workaround on
//! the fourth night's incident. The replay is byte-identical across runs and to
//! `tests/scenarios/recurring.expected.jsonl`.

mod common;

use std::path::Path;

use serde_json::Value;

fn scenario() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/recurring.jsonl")
}

fn replay_bytes() -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"))
        .args(["replay", "--config", &format!("{root}/config/d2c.toml")])
        .arg(scenario())
        .env("D2C_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_recurring_scenario_replays_byte_identical_to_its_expected_output() {
    let first = replay_bytes();
    assert_eq!(first, replay_bytes(), "two replays differ");
    let expected = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/recurring.expected.jsonl"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&expected),
        "replay output changed; if on purpose, regenerate the expected file (see tests/scenarios/README.md)"
    );
}

#[test]
fn three_failing_nights_open_one_problem_and_its_known_error_reaches_the_fourth() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml");
    let records = common::replay_file(&config, &scenario(), &[]);
    let problems: Vec<&Value> = records.iter().filter(|r| r["type"] == "problem").collect();
    let ids: std::collections::BTreeSet<&str> =
        problems.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one problem: {problems:#?}");

    // The database incidents, in the order they opened (the e-mail backlog is not one).
    let mut db: Vec<&str> = Vec::new();
    for r in &records {
        if r["type"] == "incident"
            && r["version"] == 1
            && r["root_cause"]["service"] == "payments-db"
        {
            db.push(r["id"].as_str().unwrap());
        }
    }
    assert_eq!(db.len(), 4, "one incident per night");

    // Opened by the third night's incident, linking all three.
    let opened = problems[0];
    assert_eq!(opened["version"], 1);
    assert_eq!(opened["status"], "open");
    assert_eq!(opened["opened_by"], "d2c");
    assert_eq!(opened["service"], "payments-db");
    let linked: Vec<&str> = opened["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(linked, db[..3]);
    assert_eq!(opened["first_occurrence"], "2026-11-02T02:00:00Z");
    assert_eq!(opened["last_occurrence"], "2026-11-04T02:00:00Z");

    // Before the known error, incidents name the problem but carry no workaround.
    let third: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "incident" && r["id"] == db[2])
        .collect();
    assert!(third.iter().all(|i| i["problem"] == opened["id"]));
    assert!(third.iter().all(|i| i["workaround"].is_null()));

    let known = problems
        .iter()
        .find(|p| p["status"] == "known_error")
        .expect("a known-error version");
    let workaround = known["workaround"].as_str().unwrap();
    assert!(workaround.starts_with("Restart pgbouncer"), "{workaround}");
    assert_eq!(known["known_error_by"], "dba-oncall");

    // The fourth night: linked at once, with the workaround from its first version.
    let fourth: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "incident" && r["id"] == db[3])
        .collect();
    assert_eq!(fourth[0]["version"], 1);
    for i in &fourth {
        assert_eq!(i["problem"], opened["id"]);
        assert_eq!(i["workaround"], workaround);
    }
    // The problem counts it, and every night's outage and cost once resolved.
    let last = problems.last().unwrap();
    assert_eq!(last["incident_count"], 4);
    let last_versions: Vec<&Value> = db
        .iter()
        .map(|id| {
            records
                .iter()
                .rev()
                .find(|r| r["type"] == "incident" && r["id"] == *id && r["status"] == "resolved")
                .unwrap()
        })
        .collect();
    let outage: i64 = last_versions
        .iter()
        .map(|i| i["impact"]["outage_seconds"].as_i64().unwrap())
        .sum();
    assert_eq!(last["outage_seconds"], outage);
    let cost: f64 = last_versions
        .iter()
        .map(|i| i["impact"]["cost"].as_f64().unwrap())
        .sum();
    assert_eq!(last["cost"].as_f64().unwrap(), cost);
    // Problem versions count up without gaps.
    let versions: Vec<u64> = problems
        .iter()
        .map(|p| p["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
}

/// Polls `GET path` on `http` until `done` holds for its JSON (or 60 s passed).
fn get_until(http: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, body) = common::http_get(http, path);
        if code == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(
            std::time::Instant::now() < end,
            "GET {path} never satisfied: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_problem_opened_by_hand_is_listed_and_takes_a_known_error() {
    let broker = common::MockBroker::start(3);
    let d2c = common::D2c::start(
        &broker.bootstrap,
        &[
            ("D2C_KAFKA__CREATE_TOPICS", "false"),
            ("D2C_KAFKA__SESSION_TIMEOUT", "3s"),
            // Ticks reach every partition, so each engine starts before the first request.
            ("D2C_INGEST__TICK_INTERVAL", "300ms"),
        ],
    );
    assert!(common::wait_owning(
        &d2c.http,
        std::time::Duration::from_secs(60)
    ));
    let (code, body) = common::http_post(
        &d2c.http,
        "/api/v1/problems",
        r#"{"title": "Redis evictions slow the catalog", "service": "no-such-service", "by": "sre"}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("not a service of the service model"),
        "{body}"
    );
    let (code, body) = common::http_post(
        &d2c.http,
        "/api/v1/problems",
        r#"{"title": "Redis evictions slow the catalog", "service": "search-cache", "by": "sre", "alert_names": ["RedisEvictions"]}"#,
    );
    assert_eq!(code, 202, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let id = answer["problem"].as_str().unwrap().to_string();
    assert_eq!(
        answer["partitions"], 1,
        "to the partition of the service's domain only"
    );
    let listed = get_until(&d2c.http, "/api/v1/problems", |v| v["count"] == 1);
    let p = &listed["problems"][0];
    assert_eq!(
        (p["id"].as_str(), &p["status"]),
        (Some(id.as_str()), &"open".into())
    );
    assert_eq!(p["opened_by"], "sre");

    let (code, body) = common::http_post(
        &d2c.http,
        &format!("/api/v1/problems/{id}/known-error"),
        r#"{"workaround": "Flush the catalog cache", "by": "sre"}"#,
    );
    assert_eq!(code, 202, "{body}");
    let p = get_until(&d2c.http, &format!("/api/v1/problems/{id}"), |v| {
        v["status"] == "known_error"
    });
    assert_eq!(p["workaround"], "Flush the catalog cache");
    let known = get_until(&d2c.http, "/api/v1/problems?status=known_error", |v| {
        v["count"] == 1
    });
    assert_eq!(known["problems"][0]["id"], id.as_str());
    let (code, _) = common::http_get(&d2c.http, "/api/v1/problems?status=sleeping");
    assert_eq!(code, 400);
    let metrics = common::http_get(&d2c.http, "/metrics").1;
    let gauge = "d2c_problems{status=\"known_error\"}";
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while common::metric(&common::http_get(&d2c.http, "/metrics").1, gauge) != Some(1.0) {
        assert!(std::time::Instant::now() < end, "{metrics}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
