//! Delivery to an ITSM tool end to end: a tansu broker, the d2c binary with a `[notify]`
//! ServiceNow connector, and a fake ServiceNow Table API served by this test over real TCP.
//! The fake goes away for 30 seconds in the middle of a storm of events; afterwards it must hold
//! every incident (at its latest version) and every RFC exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The fake ServiceNow: rows by sys_id, and how often each correlation id was created.
#[derive(Default)]
struct Snow {
    rows: Mutex<BTreeMap<String, (String, Value)>>,
    creates: Mutex<BTreeMap<String, u32>>,
    requests: AtomicU64,
    unauthorised: AtomicU64,
    /// Answer 503 to anything still arriving on an old connection while "down".
    down: AtomicBool,
}

async fn snow_handler(
    State(s): State<Arc<Snow>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    if s.down.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    // d2c:itsm-pass, as the test gives it through D2C_TEST_SNOW_PASSWORD.
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some("Basic ZDJjOml0c20tcGFzcw==")
    {
        s.unauthorised.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"auth\"}").into_response();
    }
    let parts: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(String::from)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply =
        |code: u16, v: Value| (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "now", "table", table]) => {
            let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
            let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
            let wanted = q.get("sysparm_query").cloned().unwrap_or_default();
            let rows = s.rows.lock().unwrap();
            let hits: Vec<Value> = rows
                .iter()
                .filter(|(_, (t, r))| {
                    t == table
                        && Some(wanted.as_str())
                            == r["correlation_id"]
                                .as_str()
                                .map(|c| format!("correlation_id={c}"))
                                .as_deref()
                })
                .map(|(id, (_, r))| json!({"sys_id": id, "correlation_display": r["correlation_display"]}))
                .collect();
            reply(200, json!({"result": hits}))
        }
        ("POST", ["api", "now", "table", table]) => {
            let cid = body["correlation_id"].as_str().unwrap_or("").to_string();
            let mut rows = s.rows.lock().unwrap();
            let id = format!("sys{:06}", rows.len() + 1);
            rows.insert(id.clone(), (table.to_string(), body));
            *s.creates.lock().unwrap().entry(cid).or_default() += 1;
            reply(201, json!({"result": {"sys_id": id}}))
        }
        ("PATCH", ["api", "now", "table", _, id]) => {
            let mut rows = s.rows.lock().unwrap();
            match rows.get_mut(*id) {
                Some((_, row)) => {
                    for (k, v) in body.as_object().cloned().unwrap_or_default() {
                        row[k] = v;
                    }
                    reply(200, json!({"result": {"sys_id": id}}))
                }
                None => reply(404, json!({"error": "no record"})),
            }
        }
        _ => reply(400, json!({"error": "unexpected request"})),
    }
}

/// The fake served on a fixed port until stopped (listener closed: connections refused).
struct Server {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(port: u16, state: Arc<Snow>) -> Server {
        let end = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < end => {
                    eprintln!("rebinding {port}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot listen on {port} again: {e}"),
            }
        };
        state.down.store(false, Ordering::Relaxed);
        let stop = CancellationToken::new();
        let app = Router::new().fallback(snow_handler).with_state(state);
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
        Server { stop, task }
    }

    async fn stop(self, state: &Snow) {
        state.down.store(true, Ordering::Relaxed);
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), &mut { self.task })
            .await
            .is_err()
        {
            panic!("the fake did not stop within 5s");
        }
    }
}

/// A webhook that refuses every record with 422: its deliveries end in the delivery DLQ.
async fn refuser() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let app = Router::new().fallback(|| async {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "{\"error\":\"no such assignment group\"}",
        )
    });
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

fn settings_file(dir: &std::path::Path, snow_port: u16, refuser: &str) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        r#"topology = "{root}/config/topology.toml"
change_policy = "{root}/config/change-policy.toml"

[[notify.connectors]]
name = "snow"
kind = "servicenow"
url = "http://127.0.0.1:{snow_port}"
username = "d2c"
password = "env:D2C_TEST_SNOW_PASSWORD"
connect_timeout = "500ms"
request_timeout = "5s"

[[notify.connectors]]
name = "refuse"
kind = "webhook"
url = "{refuser}"
hmac_secret = "env:D2C_TEST_HMAC"

[[notify.routes]]
connector = "snow"
types = ["incident", "change"]    # the storm's recurring outages also open problems

[[notify.routes]]
connector = "refuse"
types = ["change"]

[notify.retry]
initial_backoff = "200ms"
max_backoff = "2s"
"#
    );
    let path = dir.join("d2c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const ENV: [(&str, &str); 4] = [
    ("D2C_CORRELATION__RESOLVE_HOLD", "0s"),
    // Each payments outage of the storm (every fifth round, 10 minutes apart) is then an
    // incident of its own with RFCs of its own, instead of a reopening.
    ("D2C_CORRELATION__REOPEN_WINDOW", "30s"),
    ("D2C_INGEST__TICK_INTERVAL", "0s"),
    ("D2C_KAFKA__PARTITIONS", "3"),
];

/// What `d2c replay` publishes for `payloads`: the reference for the run.
fn replay(config: &std::path::Path, payloads: &[Vec<u8>]) -> Vec<Value> {
    replay_records(config, payloads, &ENV)
}

/// Latest version per id of the records of `kind` (`incident`, `change`).
fn latest(records: &[Value], kind: &str) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == kind) {
        let id = r["id"].as_str().unwrap().to_string();
        if m.get(&id)
            .is_none_or(|old| old["version"].as_u64() < r["version"].as_u64())
        {
            m.insert(id, r.clone());
        }
    }
    m
}

/// Whether the fake holds `expected` (incidents and RFCs at their latest version).
fn holds(
    snow: &Snow,
    incidents: &BTreeMap<String, Value>,
    changes: &BTreeMap<String, Value>,
) -> bool {
    let rows = snow.rows.lock().unwrap();
    let by_cid: BTreeMap<&str, &Value> = rows
        .values()
        .filter_map(|(_, r)| Some((r["correlation_id"].as_str()?, r)))
        .collect();
    incidents.iter().chain(changes).all(|(id, rec)| {
        by_cid.get(id.as_str()).is_some_and(|row| {
            row["description"].as_str().is_some_and(|d| {
                d.contains(&format!("(version {})", rec["version"])) || rec["type"] == "change"
            })
        })
    })
}

/// The delivery stage's consumer lag on the incidents and changes topics (from librdkafka's
/// statistics, refreshed every 5 s).
fn delivery_lag(d2c: &D2c) -> f64 {
    let text = http_get(&d2c.http, "/metrics").1;
    text.lines()
        .filter(|l| {
            l.starts_with("d2c_consumer_lag{")
                && (l.contains("topic=\"d2c.incidents\"") || l.contains("topic=\"d2c.changes\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn http_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    parse_http_response(&buf)
}

/// The d2c binary running `config` against `brokers`, with the test's secrets in its
/// environment.
fn start_d2c(config: &std::path::Path, brokers: &str, extra_env: &[(&str, &str)]) -> D2c {
    let http = format!("127.0.0.1:{}", free_port());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"))
        .args(["run", "--config"])
        .arg(config)
        .env("D2C_KAFKA__BROKERS", brokers)
        .env("D2C_HTTP__LISTEN", &http)
        .envs(ENV)
        .envs(extra_env.iter().copied())
        .env("D2C_TEST_SNOW_PASSWORD", "itsm-pass")
        .env("D2C_TEST_HMAC", "hmac-key")
        .env("D2C_LOG", "info,librdkafka=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    D2c { child, http }
}

/// Asserts the fake holds exactly one record per id of `incidents` and `changes`, created once.
fn assert_exactly_once(
    snow: &Snow,
    incidents: &BTreeMap<String, Value>,
    changes: &BTreeMap<String, Value>,
) {
    let creates = snow.creates.lock().unwrap().clone();
    let wanted: BTreeSet<&String> = incidents.keys().chain(changes.keys()).collect();
    let got: BTreeSet<&String> = creates.keys().collect();
    assert_eq!(
        got, wanted,
        "a ticket for every incident and RFC, and nothing else"
    );
    let doubled: Vec<_> = creates.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "created more than once: {doubled:?}");
    assert_eq!(
        snow.rows.lock().unwrap().len(),
        incidents.len() + changes.len()
    );
}

/// Polls `f` every 200 ms until it holds or `within` passed; returns whether it held.
async fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn itsm_down_for_30s_mid_storm_ends_with_every_incident_and_rfc_exactly_once() {
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let snow = Arc::new(Snow::default());
    let port = free_port();
    let server = Server::start(port, snow.clone()).await;
    let refuse_url = refuser().await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings_file(dir.path(), port, &refuse_url);

    let mut d2c = start_d2c(&config, &brokers, &[]);
    tokio::task::block_in_place(|| d2c.wait_ready(Duration::from_secs(60)));

    // 10 hosts × 30 rounds: about 1,500 events, hundreds of incident versions, a payments
    // outage (with RFCs) every fifth round.
    let mut payloads = storm(10, 30);
    // After the storm, the user database fails and stays down (its repeat a minute later moves
    // its partition's clock past the group wait; without ticks, time moves with the events of
    // each partition): its RFC is still open for the change authority to decide on below.
    // Every outage of the storm resolves before anyone approves, so its RFCs are withdrawn.
    for (name, ci, t) in [
        ("PostgresDown", "pg-users-1", "2026-11-28T01:01:40Z"),
        ("PostgresDown", "pg-users-1", "2026-11-28T01:02:40Z"),
    ] {
        payloads.push(
            json!({"name": name, "ci": ci, "severity": "critical", "time": t})
                .to_string()
                .into_bytes(),
        );
    }
    let expected = replay(&config, &payloads);
    let incidents = latest(&expected, "incident");
    let changes = latest(&expected, "change");
    assert!(
        incidents.len() >= 30 && changes.len() >= 5,
        "{} incidents, {} RFCs",
        incidents.len(),
        changes.len()
    );
    let (first, second) = payloads.split_at(payloads.len() / 2);

    let p = producer(&brokers);
    produce_all(&p, "d2c.events.raw", first).await;
    assert!(
        wait_for(Duration::from_secs(90), || snow.rows.lock().unwrap().len()
            >= 10)
        .await,
        "deliveries began before the outage"
    );
    server.stop(&snow).await;
    let down_at = Instant::now();
    let rows_at_outage = snow.rows.lock().unwrap().len();
    produce_all(&p, "d2c.events.raw", second).await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    let rows_during = snow.rows.lock().unwrap().len();
    assert_eq!(rows_during, rows_at_outage, "nothing written while down");
    let lag_while_down = delivery_lag(&d2c);
    let retries_while_down = d2c
        .metric("d2c_delivery_retries_total{connector=\"snow\"}")
        .unwrap_or(0.0);
    let backlog_while_down = d2c.metric("d2c_delivery_backlog").unwrap_or(0.0);
    let _server = Server::start(port, snow.clone()).await;
    let up_at = Instant::now();
    let outage = up_at - down_at;

    let drained = wait_for(Duration::from_secs(120), || {
        holds(&snow, &incidents, &changes)
    })
    .await;
    let drain = up_at.elapsed();
    eprintln!(
        "notify e2e: {} events, {} incidents, {} RFCs ({} records published); outage {:.1}s with {} rows written before it; {} retries, backlog {} and lag {} records while down; drained {:.1}s after the endpoint came back; {} requests in all",
        payloads.len(),
        incidents.len(),
        changes.len(),
        expected.iter().filter(|r| r["type"] != "dlq").count(),
        outage.as_secs_f64(),
        rows_at_outage,
        retries_while_down,
        backlog_while_down,
        lag_while_down,
        drain.as_secs_f64(),
        snow.requests.load(Ordering::Relaxed),
    );
    assert!(
        drained,
        "the fake holds every incident at its latest version and every RFC"
    );
    assert!(
        retries_while_down > 0.0,
        "deliveries were retried while the endpoint was down"
    );
    assert!(outage >= Duration::from_secs(30));
    assert_eq!(
        snow.unauthorised.load(Ordering::Relaxed),
        0,
        "the password came from the environment"
    );

    // Exactly once: one create per correlation id, no row for anything d2c did not publish.
    assert_exactly_once(&snow, &incidents, &changes);
    {
        let rows = snow.rows.lock().unwrap();
        for (_, row) in rows.values() {
            let cid = row["correlation_id"].as_str().unwrap();
            if let Some(i) = incidents.get(cid) {
                let want = match i["status"].as_str().unwrap() {
                    "open" => ["1", "2"].as_slice(),
                    "resolved" => &["6"],
                    _ => &["7"],
                };
                assert!(
                    want.contains(&row["state"].as_str().unwrap()),
                    "{cid}: {} vs {}",
                    row["state"],
                    i["status"]
                );
            }
        }
    }

    // What d2c published on Kafka is what the reference run gives.
    let want = incident_versions(expected.iter().cloned());
    let published = tokio::task::spawn_blocking({
        let (b, n) = (brokers.clone(), want.len());
        move || {
            read_until(&b, "d2c.incidents", 3, Duration::from_secs(60), |r| {
                r.len() >= n
            })
        }
    })
    .await
    .unwrap();
    assert_eq!(incident_versions(published.iter().map(Record::json)), want);

    // Every RFC went to the refusing webhook too, and from there to the delivery DLQ (each of
    // its versions: an RFC withdrawn when its incident resolved has two).
    let letters = tokio::task::spawn_blocking({
        let b = brokers.clone();
        let wanted: BTreeSet<String> = changes.keys().cloned().collect();
        move || {
            read_until(&b, "d2c.delivery.dlq", 3, Duration::from_secs(60), |r| {
                let ids: BTreeSet<String> = r
                    .iter()
                    .map(|r| r.json()["id"].as_str().unwrap().to_string())
                    .collect();
                ids.is_superset(&wanted)
            })
        }
    })
    .await
    .unwrap();
    let lettered: BTreeSet<String> = letters
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(lettered, changes.keys().cloned().collect::<BTreeSet<_>>());
    for l in &letters {
        let v = l.json();
        assert_eq!(v["connector"], "refuse");
        assert_eq!(v["status"], 422);
        assert_eq!(v["response"], "{\"error\":\"no such assignment group\"}");
        assert_eq!(l.header("d2c.connector").as_deref(), Some("refuse"));
    }

    // The change authority approves an RFC in the ITSM tool, which calls d2c back: the RFC's
    // next version carries the decision and updates the same ticket.
    let rfc = changes
        .iter()
        .find(|(_, r)| r["status"] == "proposed")
        .map(|(id, _)| id.clone())
        .expect("an RFC still waiting for a decision");
    assert!(
        changes.values().any(|r| r["status"] == "withdrawn"),
        "the RFCs of resolved outages were withdrawn"
    );
    for (path, body, reason) in [
        (
            format!("/api/v1/changes/{rfc}/decision"),
            r#"{"decision":"maybe","by":"cab"}"#,
            "malformed_json",
        ),
        (
            format!("/api/v1/changes/{rfc}/decision"),
            r#"{"decision":"approved","by":" "}"#,
            "invalid_value",
        ),
        (
            "/api/v1/changes/RFC%20x/decision".to_string(),
            r#"{"decision":"approved","by":"cab"}"#,
            "invalid_id",
        ),
    ] {
        let (status, answer) = tokio::task::block_in_place(|| http_post(&d2c.http, &path, body));
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains(reason), "{answer}");
    }
    let (status, body) = tokio::task::block_in_place(|| {
        http_post(
            &d2c.http,
            &format!("/api/v1/changes/{rfc}/decision"),
            r#"{"decision":"approved","by":"cab","comment":"go ahead"}"#,
        )
    });
    assert_eq!(status, 202, "{body}");
    let approved = wait_for(Duration::from_secs(60), || {
        snow.rows
            .lock()
            .unwrap()
            .values()
            .any(|(_, r)| r["correlation_id"] == rfc.as_str() && r["approval"] == "approved")
    })
    .await;
    assert!(approved, "the decision reached the ticket");
    assert_eq!(
        snow.creates.lock().unwrap()[&rfc],
        1,
        "updated, not created again"
    );
    let v2 = tokio::task::spawn_blocking({
        let (b, id) = (brokers.clone(), rfc.clone());
        move || {
            read_until(&b, "d2c.changes", 3, Duration::from_secs(30), |rs| {
                rs.iter()
                    .any(|r| r.json()["id"] == id.as_str() && r.json()["version"] == 2)
            })
        }
    })
    .await
    .unwrap();
    let v2 = v2
        .iter()
        .map(Record::json)
        .find(|r| r["id"] == rfc.as_str() && r["version"] == 2)
        .expect("RFC version 2 published");
    assert_eq!(v2["decision"]["status"], "approved");
    assert_eq!(v2["decision"]["by"], "cab");
    assert_eq!(v2["decision"]["comment"], "go ahead");

    let status = tokio::task::block_in_place(|| d2c.terminate(Duration::from_secs(40)));
    assert!(
        status.success(),
        "d2c stops cleanly with the delivery stage running"
    );
}

/// A decision on an RFC through `d2c replay` control lines: the RFC's next version carries it;
/// a repeat publishes nothing; a different decision later publishes another version; an unknown
/// RFC publishes nothing.
#[test]
fn a_decision_publishes_the_next_version_of_the_rfc_once() {
    let root = env!("CARGO_MANIFEST_DIR");
    let input = std::fs::read(format!("{root}/tests/scenarios/outage.jsonl")).unwrap();
    let config = std::path::PathBuf::from(format!("{root}/config/d2c.toml"));
    let plain = replay(&config, std::slice::from_ref(&input));
    let rfc = latest(&plain, "change")
        .into_keys()
        .next()
        .expect("the outage raises an RFC");
    let line = |id: &str, d: &str, t: &str| {
        format!(
            "\n{{\"decision\":{{\"change\":\"{id}\",\"decision\":\"{d}\",\"by\":\"cab\",\"comment\":\"ok\",\"time\":\"{t}\"}}}}\n"
        )
    };
    // The decisions come while the outage lasts (before its first resolve): once it resolved
    // unapproved, its RFC is withdrawn and takes no decision any more.
    let text = String::from_utf8(input).unwrap();
    let recovery = text.find("\"resolved\"").unwrap();
    let start = text[..recovery].rfind('\n').unwrap() + 1;
    let mut input = text.as_bytes()[..start].to_vec();
    for l in [
        line(&rfc, "approved", "2026-11-28T10:02:00Z"),
        line(&rfc, "approved", "2026-11-28T10:02:30Z"),
        line("RFC-000000000000", "approved", "2026-11-28T10:02:40Z"),
        line(&rfc, "rejected", "2026-11-28T10:03:00Z"),
    ] {
        input.extend_from_slice(l.trim_start().as_bytes());
    }
    input.extend_from_slice(&text.as_bytes()[start..]);
    let out = replay(&config, &[input]);
    let versions: Vec<&Value> = out
        .iter()
        .filter(|r| r["type"] == "change" && r["id"] == rfc.as_str())
        .collect();
    assert_eq!(versions.len(), 3, "v1, approved, rejected: {versions:#?}");
    assert!(
        versions[0].get("decision").is_none(),
        "an RFC without a decision has no such field"
    );
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["decision"]["status"], "approved");
    assert_eq!(versions[1]["decision"]["by"], "cab");
    assert_eq!(versions[1]["decision"]["comment"], "ok");
    assert_eq!(versions[1]["status"], "approved");
    assert_eq!(versions[2]["version"], 3);
    assert_eq!(versions[2]["decision"]["status"], "rejected");
    assert_eq!(versions[2]["status"], "rejected");
    assert_eq!(
        versions[1]["action"], versions[0]["action"],
        "only the decision changes"
    );
}

/// kill -9 of d2c while the tool is down, with records read and not yet delivered (and others
/// delivered whose offsets were not yet committed): the restarted instance reads them again and
/// the tool still ends with every ticket exactly once. Runs on the mock cluster in a process of
/// its own, whose group coordinator hands a dead member's partitions over (tansu's does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_tool_is_down_still_gives_every_ticket_exactly_once() {
    let broker = MockBroker::start(3);
    let snow = Arc::new(Snow::default());
    let port = free_port();
    let server = Server::start(port, snow.clone()).await;
    let refuse_url = refuser().await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings_file(dir.path(), port, &refuse_url);
    let env = [
        ("D2C_KAFKA__CREATE_TOPICS", "false"),
        ("D2C_KAFKA__GROUP_INSTANCE_ID", "notify-a"),
        ("D2C_KAFKA__SESSION_TIMEOUT", "3s"),
        ("D2C_STATE__CHECKPOINT_INTERVAL", "300ms"),
    ];
    let mut d2c = start_d2c(&config, &broker.bootstrap, &env);
    tokio::task::block_in_place(|| d2c.wait_ready(Duration::from_secs(60)));

    let payloads = storm(6, 20);
    let expected = replay(&config, &payloads);
    let (incidents, changes) = (latest(&expected, "incident"), latest(&expected, "change"));
    let (first, second) = payloads.split_at(payloads.len() / 2);
    let p = producer(&broker.bootstrap);
    produce_all(&p, "d2c.events.raw", first).await;
    assert!(
        wait_for(Duration::from_secs(60), || snow.rows.lock().unwrap().len()
            >= 5)
        .await
    );
    server.stop(&snow).await;
    produce_all(&p, "d2c.events.raw", second).await;
    // Let the stage read what piles up, then kill it mid-retry.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let retrying = d2c
        .metric("d2c_delivery_retries_total{connector=\"snow\"}")
        .unwrap_or(0.0);
    d2c.child.kill().unwrap();
    d2c.child.wait().unwrap();
    let rows_at_kill = snow.rows.lock().unwrap().len();
    let mut d2c = start_d2c(&config, &broker.bootstrap, &env);
    tokio::task::block_in_place(|| d2c.wait_ready(Duration::from_secs(60)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _server = Server::start(port, snow.clone()).await;
    let back = Instant::now();
    let drained = wait_for(Duration::from_secs(120), || {
        holds(&snow, &incidents, &changes)
    })
    .await;
    let drain = back.elapsed();
    // On a fresh instance, `skipped` counts versions read again that the tool already held.
    let reread = d2c
        .metric("d2c_deliveries_total{connector=\"snow\",outcome=\"skipped\"}")
        .unwrap_or(0.0);
    eprintln!(
        "notify kill -9: {} incidents, {} RFCs; {retrying} retries before the kill, {rows_at_kill} rows then; drained {:.1}s after the tool came back; {reread} versions read again and found already delivered; {} requests",
        incidents.len(),
        changes.len(),
        drain.as_secs_f64(),
        snow.requests.load(Ordering::Relaxed)
    );
    assert!(retrying > 0.0, "the killed instance was retrying");
    assert!(drained, "the restarted instance delivered the rest");
    assert_exactly_once(&snow, &incidents, &changes);
    let status = tokio::task::block_in_place(|| d2c.terminate(Duration::from_secs(40)));
    assert!(status.success());
}

/// An issue of the fake Jira: labels, summary, description, status category.
type Issue = (Vec<String>, String, String, String);

/// A fake Jira: issues by key; offers the transitions Done (31) and Cancel (41).
#[derive(Default)]
struct Jira {
    issues: Mutex<BTreeMap<String, Issue>>,
}

async fn jira_handler(
    State(s): State<Arc<Jira>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path: Vec<String> = uri.path().split('/').map(String::from).collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let reply = |v: Value| axum::Json(v).into_response();
    let mut issues = s.issues.lock().unwrap();
    match (method.as_str(), &path[..]) {
        ("GET", ["", "rest", "api", "2", "search"]) => {
            let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
            let jql: String = url
                .query_pairs()
                .find(|(k, _)| k == "jql")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let found: Vec<Value> = issues
                .iter()
                .filter(|(_, (labels, ..))| labels.iter().any(|l| jql == format!("labels = \"{l}\"")))
                .map(|(k, (.., cat))| json!({"key": k, "fields": {"status": {"statusCategory": {"key": cat}}}}))
                .collect();
            reply(json!({ "issues": found }))
        }
        ("POST", ["", "rest", "api", "2", "issue"]) => {
            let f = &body["fields"];
            let key = format!("OPS-{}", issues.len() + 1);
            let labels = f["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            let text = |k: &str| f[k].as_str().unwrap_or("").to_string();
            issues.insert(
                key.clone(),
                (labels, text("summary"), text("description"), "new".into()),
            );
            (StatusCode::CREATED, axum::Json(json!({ "key": key }))).into_response()
        }
        ("PUT", ["", "rest", "api", "2", "issue", key]) => {
            let issue = issues.get_mut(*key).unwrap();
            issue.1 = body["fields"]["summary"].as_str().unwrap().into();
            issue.2 = body["fields"]["description"].as_str().unwrap().into();
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["", "rest", "api", "2", "issue", _, "transitions"]) => reply(json!({
            "transitions": [{"id": "31", "name": "Done"}, {"id": "41", "name": "Cancel"}]
        })),
        ("POST", ["", "rest", "api", "2", "issue", key, "transitions"]) => {
            let issue = issues.get_mut(*key).unwrap();
            issue.3 = match body["transition"]["id"].as_str() {
                Some("41") => "cancelled".into(),
                _ => "done".into(),
            };
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "unexpected request").into_response(),
    }
}

/// Serves `app` on a free loopback port until the test ends; returns its base URL.
async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// The merge, early-resolve and moving-root scenario replayed, its records delivered in order
/// to a fake ServiceNow and a fake Jira: every withdrawn RFC ends as a cancelled change request
/// and a cancelled issue, with the reason; the incident tickets carry the owners, runbooks and
/// alert annotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_rfcs_reach_servicenow_and_jira_as_cancellations_and_tickets_carry_context() {
    let root = env!("CARGO_MANIFEST_DIR");
    let records = replay_file(
        std::path::Path::new(&format!("{root}/config/d2c.toml")),
        std::path::Path::new(&format!("{root}/tests/scenarios/withdraw.jsonl")),
        &[],
    );
    let snow = Arc::new(Snow::default());
    let snow_url = serve(
        Router::new()
            .fallback(snow_handler)
            .with_state(snow.clone()),
    )
    .await;
    let jira = Arc::new(Jira::default());
    let jira_url = serve(
        Router::new()
            .fallback(jira_handler)
            .with_state(jira.clone()),
    )
    .await;
    let build = |text: String| {
        let c: d2c::config::ConnectorConfig = toml::from_str(&text).unwrap();
        d2c::notify::Connector::build(&c, 0).unwrap()
    };
    let snow_c = build(format!(
        "name = \"snow\"\nkind = \"servicenow\"\nurl = \"{snow_url}\"\nusername = \"d2c\"\npassword = \"itsm-pass\""
    ));
    let jira_c = build(format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{jira_url}\"\nproject = \"OPS\""
    ));
    for r in &records {
        let item = d2c::notify::Item::decode(r.to_string().as_bytes()).unwrap();
        for c in [&snow_c, &jira_c] {
            assert!(c.deliver(&item).await.is_ok(), "{} {}", c.name, item.id());
        }
    }
    let withdrawn: BTreeMap<String, Value> = latest(&records, "change")
        .into_iter()
        .filter(|(_, r)| r["status"] == "withdrawn")
        .collect();
    assert!(withdrawn.len() >= 3, "{withdrawn:#?}");
    let rows = snow.rows.lock().unwrap();
    for (id, rfc) in &withdrawn {
        let (table, row) = rows
            .values()
            .find(|(_, r)| r["correlation_id"] == id.as_str())
            .unwrap_or_else(|| panic!("a change request for {id}"));
        assert_eq!(table, "change_request");
        assert_eq!(row["state"], "4", "{id} cancelled: {row:#}");
        let reason = rfc["reason"].as_str().unwrap();
        assert_eq!(
            row["close_notes"],
            format!("withdrawn by d2c: {reason}").as_str()
        );
        assert_eq!(
            snow.creates.lock().unwrap()[id],
            1,
            "updated, not created again"
        );
        let issues = jira.issues.lock().unwrap();
        let (_, summary, description, status) = issues
            .values()
            .find(|(labels, ..)| labels.contains(&format!("d2c-{id}")))
            .unwrap_or_else(|| panic!("a Jira issue for {id}"));
        assert_eq!(status, "cancelled", "{id}");
        assert!(summary.starts_with("RFC (withdrawn): "), "{summary}");
        assert!(description.contains(reason), "{description}");
    }
    // Ticket bodies: owners, runbooks and on-call of the failing services, alert annotations.
    let db = rows
        .values()
        .filter(|(t, _)| t == "incident")
        .map(|(_, r)| r["description"].as_str().unwrap())
        .find(|d| d.contains("Probable root cause: payments-db"))
        .expect("a payments-db incident ticket");
    for want in [
        "Service payments-db: owner dba-team; team dba-team; runbook https://runbooks.example.com/payments-db;",
        "on-call https://example.pagerduty.com/schedules/DBA",
        "  runbook_url: https://runbooks.example.com/payments-db/PostgresDown",
        "  summary: PostgresDown on pg-payments-1",
    ] {
        assert!(db.contains(want), "`{want}` missing from:\n{db}");
    }
}
