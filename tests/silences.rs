//! `POST /api/v1/silences` refuses, with the engines' own reason, the silences every engine
//! would refuse (it used to answer 202 and let every engine refuse them), and ended silences
//! never count against the 10,000 cap: the engines forget them to make room.

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn post(http: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/silences"))
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("d2c answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The silences the engines of this instance hold, by id.
fn listed(http: &str) -> Vec<String> {
    let (status, body) = http_get(http, "/api/v1/silences");
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["silences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn wait_for(what: &str, within: Duration, done: impl Fn() -> bool) {
    let end = std::time::Instant::now() + within;
    while std::time::Instant::now() < end {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("not within {within:?}: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_past_the_cap_are_refused_at_the_api_and_ended_ones_make_room() {
    // The settings hold 10,000 silences: 9,999 in force until 2099, one that ended in 2020.
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    for f in ["topology.toml", "change-policy.toml"] {
        std::fs::copy(format!("{root}/config/{f}"), dir.path().join(f)).unwrap();
    }
    let mut text = std::fs::read_to_string(format!("{root}/config/d2c.toml")).unwrap();
    for i in 0..10_000 {
        let ends = if i == 0 {
            "2020-01-02T00:00:00Z"
        } else {
            "2099-01-01T00:00:00Z"
        };
        write!(
            text,
            "\n[[suppression.silences]]\nid = \"cfg-{i}\"\nmatchers = '{{ci=\"host-{i}\"}}'\n\
             starts_at = \"2020-01-01T00:00:00Z\"\nends_at = \"{ends}\"\n"
        )
        .unwrap();
    }
    let config = dir.path().join("d2c.toml");
    std::fs::write(&config, text).unwrap();

    let broker = Tansu::start();
    let mut d2c = D2c::start_config(
        &config,
        &broker.brokers(),
        // The engines' clocks follow the wall clock, as in production.
        &[("D2C_INGEST__TICK_INTERVAL", "1s")],
    );
    d2c.wait_ready(Duration::from_secs(60));
    let http = d2c.http.clone();
    // On their first tick the engines forgot the one that ended years ago.
    wait_for(
        "the engines list the configured silences in force",
        Duration::from_secs(90),
        || {
            let ids = listed(&http);
            ids.len() == 9_999 && !ids.contains(&"cfg-0".to_owned())
        },
    );

    let silence = |id: &str| {
        json!({"id": id, "matchers": "{service=\"checkout-api\"}",
               "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
               "created_by": "alice", "comment": "CHG-1"})
    };
    // Room for one more (the settings' ended silence does not count), and every engine takes it.
    let (status, body) = post(&http, silence("new-1")).await;
    assert_eq!(status, 202, "{body}");
    wait_for(
        "the engines hold the new silence",
        Duration::from_secs(60),
        || {
            let ids = listed(&http);
            ids.len() == 10_000 && ids.contains(&"new-1".to_owned())
        },
    );

    // Now every engine is full of silences in force: refused here, with the engines' reason.
    let (status, body) = post(&http, silence("new-2")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "too_many_silences", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 10000 silences"),
        "{body}"
    );
    // Replacing one that exists is always possible.
    let (status, body) = post(&http, silence("new-1")).await;
    assert_eq!(status, 202, "{body}");
    // Times the engines would refuse are refused here too.
    let mut far = silence("far");
    far["ends_at"] = json!("+10000-01-01T00:00:00Z");
    let (status, body) = post(&http, far).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "invalid_value", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("outside the years"),
        "{body}"
    );
    d2c.terminate(Duration::from_secs(30));
}
