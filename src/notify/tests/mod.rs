//! Tests of the delivery stage against fake tools over real TCP: each fake is an axum server on
//! 127.0.0.1 port 0 that plays the tool's API and records every request. The fake server and the
//! sample records live here; `connectors` holds each tool's fake and its protocol tests, `stage`
//! the retries, dead letters, shutdown and routing.

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

use super::connector::Connector;
use super::item::Item;
use crate::config::ConnectorConfig;

mod connectors;
mod problems;
mod stage;

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

/// Version `version` of RFC `id`, withdrawn for `reason`.
fn withdrawn(id: &str, version: u32, reason: &str) -> Item {
    let mut v: Value = serde_json::from_slice(&rfc(id, 1).raw).unwrap();
    v["version"] = json!(version);
    v["status"] = json!("withdrawn");
    v["reason"] = json!(reason);
    Item::decode(v.to_string().as_bytes()).unwrap()
}

/// `item` (an incident) saying that only `changed` changed since its previous version.
fn changing(item: Item, changed: &[&str]) -> Item {
    let mut v: Value = serde_json::from_slice(&item.raw).unwrap();
    v["changed"] = json!(changed);
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
