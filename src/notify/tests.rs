//! Tests of the delivery stage against fake tools over real TCP: each fake is an axum server on
//! 127.0.0.1 port 0 that plays the tool's API and records every request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::config::{ConnectorConfig, NotifyConfig};
use super::connector::{Connector, Item, Sent};
use super::retry::Failure;
use super::secret::Secret;
use super::*;
use crate::telemetry::Metrics;

/// One request a fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
    body: String,
    at: Instant,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }
}

type Reply = (u16, Vec<(&'static str, String)>, String);
type Handler<S> = fn(&Seen, &mut S) -> Reply;

struct Fake<S> {
    log: Mutex<Vec<Seen>>,
    state: Mutex<S>,
    handler: Handler<S>,
}

async fn handle<S: Send + 'static>(
    State(fake): State<Arc<Fake<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = reqwest::Url::parse(&format!("http://fake{uri}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let seen = Seen {
        method,
        path: uri.path().to_string(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let (status, hdrs, body) = {
        let mut state = fake.state.lock().unwrap();
        (fake.handler)(&seen, &mut state)
    };
    fake.log.lock().unwrap().push(seen);
    let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (k, v) in hdrs {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

/// Starts a fake on `listener` (or a new one on port 0); returns its base URL and itself.
async fn start<S: Send + 'static>(
    listener: Option<tokio::net::TcpListener>,
    state: S,
    handler: Handler<S>,
) -> (String, Arc<Fake<S>>) {
    let listener = match listener {
        Some(l) => l,
        None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fake = Arc::new(Fake {
        log: Mutex::new(Vec::new()),
        state: Mutex::new(state),
        handler,
    });
    let app = Router::new().fallback(handle::<S>).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

impl<S> Fake<S> {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

fn incident(id: &str, version: u32, status: &str) -> Item {
    let mut v = json!({"type": "incident", "id": id, "version": version, "status": status,
        "severity": "critical", "priority": "P1", "title": "payments-db is down",
        "opened_at": "2026-11-28T10:00:00Z", "updated_at": "2026-11-28T10:01:00Z",
        "root_cause": {"service": "payments-db", "reason": "deepest failing dependency"},
        "failing_services": ["payments-db"], "services": ["payments-api", "payments-db"],
        "capabilities": ["online-payments"],
        "impact": {"criticality": "high", "revenue_at_risk_per_minute": 1200.0},
        "event_count": 3, "alerts": []});
    if status != "open" {
        v["resolved_at"] = json!("2026-11-28T10:05:00Z");
    }
    Item::decode(v.to_string().as_bytes()).unwrap()
}

fn rfc(id: &str, version: u32) -> Item {
    let v = json!({"type": "change", "id": id, "version": version, "incident_id": "INC-1",
        "rule": "database-failover", "category": "emergency",
        "action": "Fail over payments-db to its standby replica", "cis": ["pg-1"],
        "services": ["payments-db"], "risk": "high", "approval": "required", "priority": "P1",
        "created_at": "2026-11-28T10:01:00Z"});
    Item::decode(v.to_string().as_bytes()).unwrap()
}

fn connector(toml_text: &str) -> Connector {
    let c: ConnectorConfig = toml::from_str(toml_text).unwrap();
    Connector::build(&c, 0).unwrap()
}

fn ok(status: u16, body: Value) -> Reply {
    (
        status,
        vec![("content-type", "application/json".into())],
        body.to_string(),
    )
}

// ---- ServiceNow -------------------------------------------------------------------------------

/// Records per table by sys_id, each with how often it was created (always 1) and updated.
#[derive(Default)]
struct Snow {
    rows: BTreeMap<String, (String, Value)>,
    next: u32,
}

fn servicenow(req: &Seen, s: &mut Snow) -> Reply {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "now", "table", table]) => {
            let wanted = req.query.get("sysparm_query").cloned().unwrap_or_default();
            let hits: Vec<Value> = s
                .rows
                .iter()
                .filter(|(_, (t, row))| {
                    t == table
                        && format!(
                            "correlation_id={}",
                            row["correlation_id"].as_str().unwrap_or("")
                        ) == wanted
                })
                .map(|(id, (_, row))| json!({"sys_id": id, "correlation_display": row["correlation_display"]}))
                .collect();
            ok(200, json!({"result": hits}))
        }
        ("POST", ["api", "now", "table", table]) => {
            s.next += 1;
            let id = format!("sys{}", s.next);
            s.rows.insert(id.clone(), (table.to_string(), req.json()));
            ok(201, json!({"result": {"sys_id": id}}))
        }
        ("PATCH", ["api", "now", "table", _, id]) => match s.rows.get_mut(*id) {
            Some((_, row)) => {
                for (k, v) in req.json().as_object().unwrap() {
                    row[k] = v.clone();
                }
                ok(200, json!({"result": {"sys_id": id}}))
            }
            None => ok(404, json!({"error": {"message": "No Record found"}})),
        },
        _ => ok(400, json!({"error": {"message": "unexpected request"}})),
    }
}

#[tokio::test]
async fn servicenow_creates_once_then_updates_the_record_found_by_correlation_id() {
    let (url, fake) = start(None, Snow::default(), servicenow).await;
    let c = connector(&format!(
        "name = \"snow\"\nkind = \"servicenow\"\nurl = \"{url}\"\nusername = \"d2c\"\npassword = \"pw\"\nassignment_group = \"DBA\""
    ));
    for (item, sent) in [
        (incident("INC-1", 1, "open"), Sent::Delivered),
        // Read again after a restart: found by correlation_id, holding this version already.
        (incident("INC-1", 1, "open"), Sent::Skipped),
        (incident("INC-1", 2, "resolved"), Sent::Delivered),
        // An older version late does not reopen the ticket.
        (incident("INC-1", 1, "open"), Sent::Skipped),
        (rfc("RFC-1", 1), Sent::Delivered),
        (rfc("RFC-1", 1), Sent::Skipped),
        (rfc("RFC-1", 2), Sent::Delivered),
    ] {
        assert_eq!(c.deliver(&item).await, Ok(sent));
    }
    let seen = fake.seen();
    let creates: Vec<&Seen> = seen.iter().filter(|r| r.method == Method::POST).collect();
    assert_eq!(
        creates.len(),
        2,
        "one incident and one change_request created"
    );
    assert_eq!(creates[0].path, "/api/now/table/incident");
    assert_eq!(creates[1].path, "/api/now/table/change_request");
    assert_eq!(seen.iter().filter(|r| r.method == Method::PATCH).count(), 2);
    let state = fake.state.lock().unwrap();
    let inc = state.rows.values().find(|(t, _)| t == "incident").unwrap();
    assert_eq!(inc.1["correlation_id"], "INC-1");
    assert_eq!(
        inc.1["state"], "6",
        "the resolved version resolved the ticket"
    );
    assert_eq!(inc.1["assignment_group"], "DBA");
    assert_eq!(inc.1["impact"], "1");
    let chg = state
        .rows
        .values()
        .find(|(t, _)| t == "change_request")
        .unwrap();
    assert_eq!(chg.1["type"], "emergency");
    assert_eq!(chg.1["approval"], "requested");
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Basic ZDJjOnB3")),
        "basic auth on every request"
    );
}

// ---- Jira ---------------------------------------------------------------------------------------

#[derive(Default)]
struct JiraState {
    /// key → (labels, summary, status category)
    issues: BTreeMap<String, (Vec<String>, String, String)>,
}

fn jira(req: &Seen, s: &mut JiraState) -> Reply {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["rest", "api", "2", "search"]) => {
            let jql = req.query.get("jql").cloned().unwrap_or_default();
            let issues: Vec<Value> = s
                .issues
                .iter()
                .filter(|(_, (labels, _, _))| labels.iter().any(|l| jql == format!("labels = \"{l}\"")))
                .map(|(k, (_, _, cat))| json!({"key": k, "fields": {"status": {"statusCategory": {"key": cat}}}}))
                .collect();
            ok(200, json!({"issues": issues}))
        }
        ("POST", ["rest", "api", "2", "issue"]) => {
            let f = &req.json()["fields"];
            let key = format!("OPS-{}", s.issues.len() + 1);
            let labels = f["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            s.issues.insert(
                key.clone(),
                (labels, f["summary"].as_str().unwrap().into(), "new".into()),
            );
            ok(201, json!({"key": key}))
        }
        ("PUT", ["rest", "api", "2", "issue", key]) => {
            let summary = req.json()["fields"]["summary"]
                .as_str()
                .unwrap()
                .to_string();
            s.issues.get_mut(*key).unwrap().1 = summary;
            (204, vec![], String::new())
        }
        ("GET", ["rest", "api", "2", "issue", _, "transitions"]) => ok(
            200,
            json!({"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Done"}]}),
        ),
        ("POST", ["rest", "api", "2", "issue", key, "transitions"]) => {
            if req.json()["transition"]["id"] == "31" {
                s.issues.get_mut(*key).unwrap().2 = "done".into();
            }
            (204, vec![], String::new())
        }
        _ => ok(400, json!({"errorMessages": ["unexpected request"]})),
    }
}

#[tokio::test]
async fn jira_creates_one_issue_per_incident_and_transitions_it_on_resolve() {
    let (url, fake) = start(None, JiraState::default(), jira).await;
    std::fs::write(
        std::env::temp_dir().join("d2c-notify-test-jira-token"),
        "tok\n",
    )
    .unwrap();
    let c = connector(&format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{url}\"\nproject = \"OPS\"\ntoken = \"file:{}\"",
        std::env::temp_dir()
            .join("d2c-notify-test-jira-token")
            .display()
    ));
    for item in [
        incident("INC-7", 1, "open"),
        incident("INC-7", 1, "open"),
        incident("INC-7", 2, "resolved"),
        incident("INC-7", 2, "resolved"),
    ] {
        assert_eq!(c.deliver(&item).await, Ok(Sent::Delivered));
    }
    let seen = fake.seen();
    let creates = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path == "/rest/api/2/issue")
        .count();
    assert_eq!(
        creates, 1,
        "the label search finds the issue before a second create"
    );
    let transitions: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/transitions"))
        .collect();
    assert_eq!(
        transitions.len(),
        1,
        "a done issue is not transitioned again"
    );
    assert_eq!(transitions[0].json()["transition"]["id"], "31");
    let state = fake.state.lock().unwrap();
    let (labels, summary, status) = &state.issues["OPS-1"];
    assert!(labels.contains(&"d2c-INC-7".to_string()));
    assert_eq!(summary, "[P1] payments-db is down");
    assert_eq!(status, "done");
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Bearer tok"))
    );
}

// ---- PagerDuty, webhook, Slack ------------------------------------------------------------------

fn accept(_: &Seen, _: &mut ()) -> Reply {
    ok(202, json!({"status": "success"}))
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_with_the_incident_id_as_dedup_key_and_skips_rfcs() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"pd\"\nkind = \"pagerduty\"\nurl = \"{url}/v2/enqueue\"\nrouting_key = \"R0UT1NG\""
    ));
    assert_eq!(
        c.deliver(&incident("INC-9", 1, "open")).await,
        Ok(Sent::Delivered)
    );
    assert_eq!(
        c.deliver(&incident("INC-9", 2, "resolved")).await,
        Ok(Sent::Delivered)
    );
    assert_eq!(c.deliver(&rfc("RFC-9", 1)).await, Ok(Sent::Skipped));
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let (trigger, resolve) = (seen[0].json(), seen[1].json());
    assert_eq!(seen[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "INC-9");
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], "[P1] payments-db is down");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], "INC-9");
}

#[tokio::test]
async fn webhook_sends_the_record_with_an_idempotency_key_and_a_verifiable_signature() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/hook\"\nhmac_secret = \"k3y\""
    ));
    let item = incident("INC-3", 4, "open");
    assert_eq!(c.deliver(&item).await, Ok(Sent::Delivered));
    let seen = &fake.seen()[0];
    assert_eq!(seen.header("idempotency-key"), Some("INC-3:4"));
    assert_eq!(
        seen.body.as_bytes(),
        item.raw.as_slice(),
        "the record as published"
    );
    let sig = seen.header("x-d2c-signature").unwrap();
    assert_eq!(
        sig,
        webhook::signature(&Secret::new("k3y"), seen.body.as_bytes())
    );
    // Checked independently of the connector's own function, as a receiver would.
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(seen.body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("sha256={hex}"));
    assert_ne!(
        sig,
        webhook::signature(&Secret::new("other"), seen.body.as_bytes())
    );
}

#[tokio::test]
async fn slack_messages_read_at_a_glance() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"chat\"\nkind = \"slack\"\nurl = \"{url}/services/T/B/X\""
    ));
    c.deliver(&incident("INC-5", 1, "open")).await.unwrap();
    c.deliver(&rfc("RFC-5", 1)).await.unwrap();
    let seen = fake.seen();
    let text = seen[0].json()["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        ":red_circle: *[P1] payments-db is down* — open (INC-5, v1)\nRoot cause: payments-db\n\
         Capabilities hurt: online-payments · revenue at risk 1200/min\nServices: payments-api, payments-db"
    );
    let text = seen[1].json()["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        ":wrench: *RFC RFC-5* for INC-1 (emergency, risk high, P1): Fail over payments-db to its standby replica"
    );
}

// ---- the stage: retries, Retry-After, dead letters ----------------------------------------------

fn notify_config(connectors: &str, retry: &str) -> NotifyConfig {
    let cfg: NotifyConfig = toml::from_str(&format!("{connectors}\n[retry]\n{retry}")).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn stage(cfg: &NotifyConfig, brokers: &str) -> Notify {
    let kafka = crate::config::KafkaConfig {
        brokers: brokers.into(),
        ..Default::default()
    };
    let metrics = Metrics::new(&crate::topology::Topology::default());
    Notify::new(cfg, &kafka, "d2c.delivery.dlq", metrics).unwrap()
}

fn deliveries(n: &Notify, connector: &str, outcome: &str) -> u64 {
    n.metrics
        .deliveries
        .with_label_values(&[connector, outcome])
        .get()
}

/// Answers 429 with `Retry-After: 2` to the first request, then accepts.
fn too_many_once(_: &Seen, calls: &mut u32) -> Reply {
    *calls += 1;
    if *calls == 1 {
        (429, vec![("retry-after", "2".into())], "slow down".into())
    } else {
        ok(200, json!({}))
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_before_the_next_attempt() {
    let (url, fake) = start(None, 0u32, too_many_once).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"20ms\"\nmax_backoff = \"100ms\"",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    let done = n
        .deliver(0, &incident("INC-1", 1, "open"), &CancellationToken::new())
        .await;
    assert!(matches!(done, Done::Finished));
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(4),
        "waited {gap:?}, Retry-After asked for 2s (backoff alone would be ≤100ms)"
    );
    assert_eq!(deliveries(&n, "hook", "retried"), 1);
    assert_eq!(deliveries(&n, "hook", "delivered"), 1);
    assert_eq!(
        n.metrics
            .delivery_retries
            .with_label_values(&["hook"])
            .get(),
        1
    );
}

#[tokio::test]
async fn an_endpoint_down_for_a_while_gets_each_record_once_when_it_is_back_and_old_versions_are_skipped()
 {
    // Take a port, then close it: connections are refused until the fake listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"snow\"\nkind = \"servicenow\"\nurl = \"http://127.0.0.1:{port}\"\nconnect_timeout = \"200ms\"\n[[routes]]\nconnector = \"snow\""
        ),
        "initial_backoff = \"50ms\"\nmax_backoff = \"300ms\"",
    );
    let n = Arc::new(stage(&cfg, "127.0.0.1:9"));
    let items = [
        incident("INC-1", 1, "open"),
        rfc("RFC-1", 1),
        incident("INC-2", 1, "open"),
    ];
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let tasks: Vec<_> = items
        .iter()
        .cloned()
        .map(|item| {
            let (n, shutdown) = (n.clone(), shutdown.clone());
            tokio::spawn(
                async move { matches!(n.deliver(0, &item, &shutdown).await, Done::Finished) },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (_, fake) = start(Some(listener), Snow::default(), servicenow).await;
    for t in tasks {
        assert!(
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap()
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        deliveries(&n, "snow", "retried") >= 3,
        "every record was retried while it was down"
    );
    // The old version arriving late is skipped, and the same version is not sent twice.
    assert!(matches!(
        n.deliver(0, &incident("INC-1", 1, "open"), &shutdown).await,
        Done::Finished
    ));
    let state = fake.state.lock().unwrap();
    let mut ids: Vec<&str> = state
        .rows
        .values()
        .map(|(_, r)| r["correlation_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["INC-1", "INC-2", "RFC-1"],
        "each record created exactly once"
    );
    assert_eq!(deliveries(&n, "snow", "delivered"), 3);
    assert_eq!(deliveries(&n, "snow", "skipped"), 1);
}

fn refuse(_: &Seen, _: &mut ()) -> Reply {
    ok(422, json!({"error": "field project is required"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_sends_the_record_to_the_delivery_dead_letter_topic_with_the_answer() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("d2c.delivery.dlq", 1, 1).unwrap();
    let (url, fake) = start(None, (), refuse).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"20ms\"",
    );
    let n = stage(&cfg, &cluster.bootstrap_servers());
    let item = incident("INC-4", 2, "open");
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        n.deliver(0, &item, &CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(matches!(done, Done::Finished));
    assert_eq!(fake.seen().len(), 1, "a 4xx is not retried");
    assert_eq!(deliveries(&n, "hook", "dead_lettered"), 1);

    let bootstrap = cluster.bootstrap_servers();
    let letter = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "dlq-reader")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("d2c.delivery.dlq", 0, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                return Some((m.key().map(<[u8]>::to_vec), m.payload().unwrap().to_vec()));
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("a dead letter within 20s");
    assert_eq!(letter.0.as_deref(), Some(&b"INC-4"[..]));
    let v: Value = serde_json::from_slice(&letter.1).unwrap();
    assert_eq!(v["connector"], "hook");
    assert_eq!(v["status"], 422);
    assert_eq!(v["response"], "{\"error\":\"field project is required\"}");
    assert_eq!(v["id"], "INC-4");
    assert_eq!(v["version"], 2);
    assert_eq!(v["record"]["title"], "payments-db is down");
}

fn unavailable(_: &Seen, _: &mut ()) -> Reply {
    ok(503, json!({"error": "maintenance"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_max_attempts_and_the_record_is_dead_lettered_not_dropped() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("d2c.delivery.dlq", 1, 1).unwrap();
    let (url, fake) = start(None, (), unavailable).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "max_attempts = 3\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"",
    );
    let n = stage(&cfg, &cluster.bootstrap_servers());
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        n.deliver(0, &rfc("RFC-2", 1), &CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(matches!(done, Done::Finished));
    assert_eq!(fake.seen().len(), 3, "exactly max_attempts attempts");
    assert_eq!(deliveries(&n, "hook", "retried"), 2);
    assert_eq!(deliveries(&n, "hook", "dead_lettered"), 1);
}

#[tokio::test]
async fn shutdown_interrupts_a_delivery_that_waits_for_the_tool() {
    let (url, _fake) = start(None, (), unavailable).await;
    let cfg = notify_config(
        &format!(
            "[[connectors]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n[[routes]]\nconnector = \"hook\""
        ),
        "initial_backoff = \"10s\"\nmax_backoff = \"10s\"",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let t0 = Instant::now();
    let done = n.deliver(0, &incident("INC-1", 1, "open"), &shutdown).await;
    assert!(
        matches!(done, Done::Interrupted),
        "not reported as done: its offset stays unstored"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(deliveries(&n, "hook", "delivered"), 0);
}

// ---- routing and configuration ------------------------------------------------------------------

#[test]
fn routes_select_by_type_priority_capability_category_and_status() {
    let cfg = notify_config(
        "[[connectors]]\nname = \"snow\"\nkind = \"servicenow\"\nurl = \"http://x\"\n\
         [[connectors]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl = \"http://x\"\nrouting_key = \"k\"\n\
         [[connectors]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://x\"\n\
         [[routes]]\nconnector = \"snow\"\n\
         [[routes]]\nconnector = \"pd\"\ntypes = [\"incident\"]\npriorities = [\"P1\"]\ncapabilities = [\"online-payments\"]\n\
         [[routes]]\nconnector = \"chat\"\ntypes = [\"incident\"]\ncategories = [\"security\"]\nstatuses = [\"open\"]",
        "",
    );
    let n = stage(&cfg, "127.0.0.1:9");
    assert_eq!(n.targets_of(&incident("INC-1", 1, "open")), vec![0, 1]);
    assert_eq!(
        n.targets_of(&rfc("RFC-1", 1)),
        vec![0],
        "pd takes incidents only"
    );
    let mut sec: Value = serde_json::from_slice(&incident("INC-2", 1, "open").raw).unwrap();
    sec["category"] = json!("security");
    sec["priority"] = json!("P3");
    let sec = Item::decode(sec.to_string().as_bytes()).unwrap();
    assert_eq!(n.targets_of(&sec), vec![0, 2]);
}

#[test]
fn configuration_mistakes_name_the_key() {
    let bad = |text: &str| toml::from_str::<NotifyConfig>(text).map(|c| c.validate());
    let e = bad("[[connectors]]\nname = \"j\"\nkind = \"jira\"\nurl = \"http://x\"\n[[routes]]\nconnector = \"j\"")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.key, "notify.connectors[0].project");
    let e = bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\n[[routes]]\nconnector = \"b\"")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.key, "notify.routes[0].connector");
    let e = bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n[[routes]]\nconnector = \"a\"")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.key, "notify.connectors[0].url");
    assert!(
        bad("[[connectors]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"x\"")
            .is_err(),
        "unknown keys are refused"
    );
    assert!(bad("[[connectors]]\nname = \"a\"\nkind = \"fax\"\nurl = \"http://x\"").is_err());
    assert!(NotifyConfig::default().validate().is_ok() && !NotifyConfig::default().enabled());
}

#[tokio::test]
async fn failures_never_carry_the_url_or_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = connector(&format!(
        "name = \"chat\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/services/SECRETPATH\"\nconnect_timeout = \"200ms\""
    ));
    let e = c.deliver(&incident("INC-1", 1, "open")).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("SECRETPATH"), "{text}");
    assert!(matches!(e, Failure::Retry { .. }));
    assert!(!format!("{c:?}").contains("SECRETPATH"));
}
