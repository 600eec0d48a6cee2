//! Tests of the runbooks against fakes of their tools (axum on 127.0.0.1 port 0, answering as
//! the tools document), and of the rate limit.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::*;
use crate::config::RunbookConfig;
use crate::model::Rfc;

mod connectors;

/// A fake tool: answers each request with `handler` over its state, and logs what it saw.
struct Fake<S> {
    state: Mutex<S>,
    seen: Mutex<Vec<(Method, String, HeaderMap, String)>>,
    handler: fn(&Method, &Uri, &str, &mut S) -> (u16, Value),
}

async fn handle<S: Send + 'static>(
    State(f): State<Arc<Fake<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let (code, v) = {
        let mut s = f.state.lock().unwrap();
        (f.handler)(&method, &uri, &body, &mut s)
    };
    f.seen
        .lock()
        .unwrap()
        .push((method, uri.to_string(), headers, body));
    (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response()
}

async fn fake<S: Send + 'static>(
    state: S,
    handler: fn(&Method, &Uri, &str, &mut S) -> (u16, Value),
) -> (String, Arc<Fake<S>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let f = Arc::new(Fake {
        state: Mutex::new(state),
        seen: Mutex::new(Vec::new()),
        handler,
    });
    let app = Router::new().fallback(handle::<S>).with_state(f.clone());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, f)
}

impl<S> Fake<S> {
    fn methods(&self) -> Vec<Method> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.0.clone())
            .collect()
    }
}

fn runbook(toml_text: &str) -> Runbook {
    let c: RunbookConfig = toml::from_str(toml_text).unwrap();
    let cfg = AutomationConfig {
        poll_interval: Duration::from_millis(20),
        job_timeout: Duration::from_secs(5),
        ..AutomationConfig::default()
    };
    Runbook::build(&c, 0, &cfg).unwrap()
}

/// An approved RFC for `service` with a run of `runbook`, with the Deployment `deployment` in
/// namespace `shop` when given.
fn approved(id: &str, service: &str, deployment: Option<&str>) -> (Rfc, Vec<u8>) {
    let mut target = json!({"service": service});
    if let Some(d) = deployment {
        target["namespace"] = json!("shop");
        target["deployment"] = json!(d);
    }
    let v = json!({"type": "change", "id": id, "version": 2, "incident_id": "INC-1",
        "rule": "r", "category": "normal", "action": "Restart", "cis": [], "services": [service],
        "risk": "low", "approval": "required", "status": "approved", "priority": "P2",
        "created_at": "2026-11-28T10:00:00Z",
        "decision": {"status": "approved", "by": "cab", "at": "2026-11-28T10:02:00Z"},
        "automation": {"runbook": "x", "verify_within_seconds": 600, "target": target}});
    let raw = v.to_string().into_bytes();
    let Output::Change(r) = serde_json::from_slice(&raw).unwrap() else {
        unreachable!()
    };
    (r, raw)
}

fn job<'a>(rfc: &'a Rfc, raw: &'a [u8]) -> Job<'a> {
    Job {
        rfc,
        run: rfc.automation.as_deref().unwrap(),
        raw,
        approved_at: lifecycle::approved_at(rfc),
    }
}

#[test]
fn the_rate_limit_refuses_runs_past_the_limit_until_the_window_passes() {
    let mut l = RateLimit::default();
    let t0 = Instant::now();
    let w = Duration::from_secs(60);
    assert!(l.allow("api", 2, w, t0));
    assert!(l.allow("api", 2, w, t0 + Duration::from_secs(1)));
    assert!(!l.allow("api", 2, w, t0 + Duration::from_secs(2)));
    assert!(
        l.allow("db", 2, w, t0 + Duration::from_secs(2)),
        "per service"
    );
    assert!(l.allow("api", 2, w, t0 + Duration::from_secs(61)));
}
