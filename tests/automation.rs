//! Approved changes run and are verified, end to end: librdkafka's mock cluster in a process of
//! its own, the d2c binary with `[automation]` runbooks, and fake Kubernetes and AWX servers over
//! TCP that answer as their APIs document (Deployment GET and strategic-merge PATCH; job template
//! launch, job list and job detail).
//!
//! - a restart RFC that needs approval runs nothing until it is approved, then patches the
//!   Deployment once — also when d2c is killed -9 between the call and its record — and ends
//!   `successful` when the incident resolves;
//! - an AWX run (killed -9 while launching, too) launches one job, and its RFC ends
//!   `unsuccessful` when the incident stays open, escalating the incident;
//! - in dry run nothing is called, and the RFC says what would have been.

mod common;

use std::collections::BTreeMap;
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

const K8S_TOKEN: &str = "k8s-service-account-token";
const AWX_TOKEN: &str = "awx-oauth-token";
const TEMPLATE: u64 = 7;

fn reply(code: u16, v: Value) -> axum::response::Response {
    (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response()
}

fn bearer(headers: &HeaderMap, token: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {token}"))
}

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

// ---- a fake Kubernetes API server ----

/// Deployments by `namespace/name`, and what was asked of them.
#[derive(Default)]
struct Kube {
    deployments: Mutex<BTreeMap<String, Value>>,
    gets: AtomicU64,
    patches: AtomicU64,
    /// Apply the next PATCH but do not answer it (the caller is killed meanwhile).
    hold: AtomicBool,
}

impl Kube {
    fn with(deployments: &[(&str, &str)]) -> Arc<Kube> {
        let k = Kube::default();
        for (ns, name) in deployments {
            k.deployments.lock().unwrap().insert(
                format!("{ns}/{name}"),
                json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": ns, "generation": 1,
                                 "resourceVersion": "100", "annotations": {}},
                    "spec": {"replicas": 2, "template": {"metadata": {"annotations": {}}}},
                }),
            );
        }
        Arc::new(k)
    }

    fn requests(&self) -> u64 {
        self.gets.load(Ordering::SeqCst) + self.patches.load(Ordering::SeqCst)
    }
}

/// Merges `patch` into `target` (maps recursively; anything else replaces), as a strategic
/// merge patch does for the maps a restart touches.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

async fn kube_handler(
    State(k): State<Arc<Kube>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if !bearer(&headers, K8S_TOKEN) {
        return reply(
            401,
            json!({"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401}),
        );
    }
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let ["apis", "apps", "v1", "namespaces", ns, "deployments", name] = parts.as_slice() else {
        return reply(
            404,
            json!({"kind": "Status", "reason": "NotFound", "code": 404}),
        );
    };
    let key = format!("{ns}/{name}");
    match method.as_str() {
        "GET" => {
            k.gets.fetch_add(1, Ordering::SeqCst);
            match k.deployments.lock().unwrap().get(&key) {
                Some(d) => reply(200, d.clone()),
                None => reply(
                    404,
                    json!({"kind": "Status", "reason": "NotFound", "code": 404}),
                ),
            }
        }
        "PATCH" => {
            let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
            if ct != Some("application/strategic-merge-patch+json") {
                return reply(
                    415,
                    json!({"kind": "Status", "reason": "UnsupportedMediaType", "code": 415}),
                );
            }
            k.patches.fetch_add(1, Ordering::SeqCst);
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let updated = {
                let mut all = k.deployments.lock().unwrap();
                let Some(d) = all.get_mut(&key) else {
                    return reply(
                        404,
                        json!({"kind": "Status", "reason": "NotFound", "code": 404}),
                    );
                };
                let before = d["spec"]["template"].clone();
                merge(d, &patch);
                if d["spec"]["template"] != before {
                    let g = d["metadata"]["generation"].as_i64().unwrap() + 1;
                    d["metadata"]["generation"] = json!(g);
                }
                let rv = d["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    + 1;
                d["metadata"]["resourceVersion"] = json!(rv.to_string());
                d.clone()
            };
            if k.hold.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
            reply(200, updated)
        }
        _ => reply(
            405,
            json!({"kind": "Status", "reason": "MethodNotAllowed", "code": 405}),
        ),
    }
}

// ---- a fake AWX ----

#[derive(Default)]
struct Awx {
    /// Jobs by id: status, extra vars (as AWX stores them: a JSON string), creation time,
    /// and how often it was read.
    jobs: Mutex<BTreeMap<u64, (String, String, String, u32)>>,
    launches: AtomicU64,
    requests: AtomicU64,
    /// Create the next job but do not answer the launch.
    hold: AtomicBool,
}

async fn awx_handler(
    State(a): State<Arc<Awx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    a.requests.fetch_add(1, Ordering::SeqCst);
    if !bearer(&headers, AWX_TOKEN) {
        return reply(
            401,
            json!({"detail": "Authentication credentials were not provided."}),
        );
    }
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let launch = format!("{TEMPLATE}");
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v2", "job_templates", t, "launch"]) if *t == launch => reply(
            200,
            json!({"ask_variables_on_launch": true, "can_start_without_user_input": true,
                   "variables_needed_to_start": []}),
        ),
        ("POST", ["api", "v2", "job_templates", t, "launch"]) if *t == launch => {
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let vars = req["extra_vars"].to_string();
            let id = {
                let mut jobs = a.jobs.lock().unwrap();
                let id = 100 + jobs.len() as u64;
                let created =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                jobs.insert(id, ("pending".into(), vars, created, 0));
                id
            };
            a.launches.fetch_add(1, Ordering::SeqCst);
            if a.hold.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
            reply(
                201,
                json!({"job": id, "id": id, "type": "job", "status": "pending", "ignored_fields": {}}),
            )
        }
        ("GET", ["api", "v2", "job_templates", t, "jobs"]) if *t == launch => {
            let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
            let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
            let since = q
                .get("created__gte")
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
            let jobs = a.jobs.lock().unwrap();
            let results: Vec<Value> = jobs
                .iter()
                .rev()
                .filter(|(_, (_, _, created, _))| {
                    since.is_none_or(|s| chrono::DateTime::parse_from_rfc3339(created).unwrap() >= s)
                })
                .map(|(id, (status, vars, created, _))| {
                    json!({"id": id, "type": "job", "status": status, "created": created, "extra_vars": vars})
                })
                .collect();
            reply(
                200,
                json!({"count": results.len(), "next": null, "previous": null, "results": results}),
            )
        }
        ("GET", ["api", "v2", "jobs", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return reply(404, json!({"detail": "Not found."}));
            };
            let mut jobs = a.jobs.lock().unwrap();
            let Some(job) = jobs.get_mut(&id) else {
                return reply(404, json!({"detail": "Not found."}));
            };
            // The job runs while it is followed: pending, running, then successful.
            job.3 += 1;
            job.0 = match job.3 {
                1 => "running",
                _ => "successful",
            }
            .into();
            reply(
                200,
                json!({"id": id, "status": job.0, "failed": false, "job_explanation": "", "extra_vars": job.1}),
            )
        }
        _ => reply(404, json!({"detail": "Not found."})),
    }
}

// ---- d2c with runbooks ----

const POLICY: &str = r#"
[[rules]]
name = "restart-payments-api"
services = ["payments-api"]
category = "normal"
action = "Restart {service}"
risk = "low"
approval = "required"
automation = "restart"
verify_within = "30s"

[[rules]]
name = "remediate-catalog"
services = ["catalog-api"]
category = "standard"
action = "Run the catalog remediation playbook for {service}"
risk = "low"
automation = "remediate"
verify_within = "6s"
"#;

fn settings(dir: &std::path::Path, kube: &str, awx: &str) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    let text = format!(
        r#"topology = "{root}/config/topology.toml"
change_policy = "policy.toml"

[automation]
enabled = true
poll_interval = "200ms"

[[automation.runbooks]]
name = "restart"
kind = "kubernetes"
url = "{kube}"
token = "env:D2C_TEST_K8S_TOKEN"
request_timeout = "120s"

[[automation.runbooks]]
name = "remediate"
kind = "awx"
url = "{awx}"
token = "env:D2C_TEST_AWX_TOKEN"
job_template = {TEMPLATE}
request_timeout = "120s"
"#
    );
    let path = dir.join("d2c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const ENV: [(&str, &str); 12] = [
    ("D2C_TEST_K8S_TOKEN", K8S_TOKEN),
    // `d2c mock-broker` created every topic; its admin API does not answer creations.
    ("D2C_KAFKA__CREATE_TOPICS", "false"),
    ("D2C_TEST_AWX_TOKEN", AWX_TOKEN),
    ("D2C_KAFKA__PARTITIONS", "3"),
    ("D2C_KAFKA__SESSION_TIMEOUT", "3s"),
    ("D2C_STATE__CHECKPOINT_INTERVAL", "300ms"),
    // Event times are the wall clock here: ticks move time on, so verification ends on time.
    ("D2C_INGEST__TICK_INTERVAL", "300ms"),
    ("D2C_CORRELATION__RESOLVE_HOLD", "1s"),
    // Incidents settle for a second (three at most) before their first version and its RFC.
    ("D2C_CORRELATION__GROUP_WAIT", "1s"),
    ("D2C_CORRELATION__GROUP_WAIT_MAX", "3s"),
    ("D2C_CORRELATION__GROUP_INTERVAL", "1s"),
    ("D2C_LOG", "warn,d2c::automation=info,d2c::telemetry=info"),
];

fn start(config: &std::path::Path, brokers: &str, extra: &[(&str, &str)]) -> D2c {
    let mut env: Vec<(&str, &str)> = ENV.to_vec();
    env.extend_from_slice(extra);
    let d = D2c::start_config(config, brokers, &env);
    assert!(
        wait_owning(&d.http, Duration::from_secs(60)),
        "d2c owns no partition"
    );
    d
}

/// Produces a native event about `ci`, stamped now.
async fn event(brokers: &str, name: &str, ci: &str, severity: &str, status: &str) {
    let payload = json!({"name": name, "ci": ci, "severity": severity, "status": status,
                         "time": chrono::Utc::now().to_rfc3339(), "source": "synthetics"});
    produce_all(
        &producer(brokers),
        "d2c.events.raw",
        &[payload.to_string().into_bytes()],
    )
    .await;
}

/// Reads `topic` until `done` holds for its JSON records (or `within` passed).
async fn records(
    brokers: &str,
    topic: &'static str,
    within: Duration,
    done: impl Fn(&[Value]) -> bool + Send + 'static,
) -> Vec<Value> {
    let b = brokers.to_string();
    tokio::task::spawn_blocking(move || {
        let recs = read_until(&b, topic, 3, within, |rs| {
            done(&rs.iter().map(Record::json).collect::<Vec<_>>())
        });
        recs.iter().map(Record::json).collect()
    })
    .await
    .unwrap()
}

/// The versions of RFC `id` published, by version (repeats after a restart are identical).
fn versions(changes: &[Value], id: &str) -> BTreeMap<u64, Value> {
    changes
        .iter()
        .filter(|r| r["id"] == id)
        .map(|r| (r["version"].as_u64().unwrap(), r.clone()))
        .collect()
}

fn rfc_of_rule<'a>(changes: &'a [Value], rule: &str) -> Option<&'a Value> {
    changes.iter().find(|r| r["rule"] == rule)
}

fn has_status(changes: &[Value], rule: &str, status: &str) -> bool {
    changes
        .iter()
        .any(|r| r["rule"] == rule && r["status"] == status)
}

async fn wait_for(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_restart_runs_once_across_a_kill_and_ends_successful() {
    let kube = Kube::with(&[("shop", "payments-api")]);
    let kube_url = serve(
        Router::new()
            .fallback(kube_handler)
            .with_state(kube.clone()),
    )
    .await;
    let awx = Arc::new(Awx::default());
    let awx_url = serve(Router::new().fallback(awx_handler).with_state(awx.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings(dir.path(), &kube_url, &awx_url);
    let broker = MockBroker::start(3);
    let b = broker.bootstrap.clone();
    let mut d2c = start(&config, &b, &[]);

    event(
        &b,
        "HighErrorRate",
        "payments-api-7f9c",
        "critical",
        "firing",
    )
    .await;
    let changes = records(&b, "d2c.changes", Duration::from_secs(60), |rs| {
        rfc_of_rule(rs, "restart-payments-api").is_some()
    })
    .await;
    let rfc = rfc_of_rule(&changes, "restart-payments-api")
        .expect("an RFC")
        .clone();
    let id = rfc["id"].as_str().unwrap().to_string();
    assert_eq!(rfc["status"], "proposed");
    assert_eq!(rfc["automation"]["target"]["deployment"], "payments-api");

    // It needs an approval: nothing is called while there is none.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(kube.requests(), 0, "no approval, no call");

    // Approved: the stage patches the Deployment, and is killed -9 before it hears back.
    kube.hold.store(true, Ordering::SeqCst);
    let (status, body) = http_post(
        &d2c.http,
        &format!("/api/v1/changes/{id}/decision"),
        r#"{"decision": "approved", "by": "cab"}"#,
    );
    assert_eq!(status, 202, "{body}");
    wait_for("the restart patch", Duration::from_secs(60), || {
        kube.patches.load(Ordering::SeqCst) == 1
    })
    .await;
    d2c.child.kill().unwrap();
    let _ = d2c.child.wait();
    let annotations =
        kube.deployments.lock().unwrap()["shop/payments-api"]["spec"]["template"]["metadata"]
            ["annotations"]
            .clone();
    assert_eq!(annotations["d2c.io/change"], id.as_str());
    assert!(annotations["kubectl.kubernetes.io/restartedAt"].is_string());

    // A new instance finds the restart done and records it; nothing is patched again.
    let d2c = start(&config, &b, &[]);
    let rule = "restart-payments-api";
    let changes = records(&b, "d2c.changes", Duration::from_secs(90), move |rs| {
        has_status(rs, rule, "implemented")
    })
    .await;
    assert_eq!(kube.patches.load(Ordering::SeqCst), 1, "restarted once");
    let implemented = versions(&changes, &id)
        .into_values()
        .find(|r| r["status"] == "implemented")
        .unwrap();
    let run = &implemented["automation"];
    assert_eq!(run["approved_by"], "cab");
    assert!(
        run["answer"].as_str().unwrap().contains("already carries"),
        "{run}"
    );

    // The service recovers: the incident resolves, the RFC is verified successful.
    event(
        &b,
        "HighErrorRate",
        "payments-api-7f9c",
        "critical",
        "resolved",
    )
    .await;
    let changes = records(&b, "d2c.changes", Duration::from_secs(90), move |rs| {
        has_status(rs, rule, "successful")
    })
    .await;
    let all = versions(&changes, &id);
    let statuses: Vec<&str> = all
        .values()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "proposed",
            "approved",
            "implementing",
            "implemented",
            "successful"
        ],
        "one version per step, versions without gaps: {all:#?}"
    );
    assert_eq!(all.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(kube.patches.load(Ordering::SeqCst), 1);
    // The run is visible in the read API too.
    let (code, body) = http_get(&d2c.http, &format!("/api/v1/changes/{id}"));
    assert_eq!(code, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["status"], "successful");
    assert!(
        awx.requests.load(Ordering::SeqCst) == 0,
        "the AWX runbook was not involved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awx_run_launches_one_job_across_a_kill_and_an_unresolved_incident_escalates() {
    let kube = Kube::with(&[]);
    let kube_url = serve(
        Router::new()
            .fallback(kube_handler)
            .with_state(kube.clone()),
    )
    .await;
    let awx = Arc::new(Awx::default());
    let awx_url = serve(Router::new().fallback(awx_handler).with_state(awx.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings(dir.path(), &kube_url, &awx_url);
    let broker = MockBroker::start(3);
    let b = broker.bootstrap.clone();

    // Pre-approved: it runs at once. The launch is held and d2c killed -9 meanwhile.
    awx.hold.store(true, Ordering::SeqCst);
    let mut d2c = start(&config, &b, &[]);
    event(&b, "SlowQueries", "catalog-api-2b7e", "warning", "firing").await;
    wait_for("the job launch", Duration::from_secs(60), || {
        awx.launches.load(Ordering::SeqCst) == 1
    })
    .await;
    d2c.child.kill().unwrap();
    let _ = d2c.child.wait();

    let _d2c = start(&config, &b, &[]);
    let rule = "remediate-catalog";
    let changes = records(&b, "d2c.changes", Duration::from_secs(120), move |rs| {
        has_status(rs, rule, "unsuccessful")
    })
    .await;
    assert_eq!(
        awx.launches.load(Ordering::SeqCst),
        1,
        "one job, followed after the restart"
    );
    let rfc = rfc_of_rule(&changes, rule).unwrap();
    let id = rfc["id"].as_str().unwrap();
    let job_vars: Value = {
        let jobs = awx.jobs.lock().unwrap();
        serde_json::from_str(&jobs[&100].1).unwrap()
    };
    assert_eq!(job_vars["d2c_change"], id);
    assert_eq!(job_vars["d2c_service"], "catalog-api");
    assert_eq!(job_vars["d2c_deployment"], "catalog-api");
    let all = versions(&changes, id);
    let statuses: Vec<&str> = all
        .values()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["proposed", "implementing", "implemented", "unsuccessful"]
    );
    let last = all.values().last().unwrap();
    let run = &last["automation"];
    assert_eq!(run["approved_by"], "pre-approved");
    assert!(run["call"].as_str().unwrap().contains("(job 100)"), "{run}");
    assert!(
        run["answer"]
            .as_str()
            .unwrap()
            .contains("job 100 successful"),
        "{run}"
    );
    let escalated_to = run["escalated_to"].as_str().expect("escalated").to_string();
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("did not resolve within"),
        "{run}"
    );

    // The incident got a new version at the escalated priority.
    let incident = rfc["incident_id"].as_str().unwrap().to_string();
    let (inc, want) = (incident.clone(), escalated_to.clone());
    let incidents = records(&b, "d2c.incidents", Duration::from_secs(60), move |rs| {
        rs.iter()
            .any(|r| r["id"] == inc.as_str() && r["priority"] == want.as_str())
    })
    .await;
    let mine: Vec<&Value> = incidents
        .iter()
        .filter(|r| r["id"] == incident.as_str())
        .collect();
    let first = mine.iter().find(|r| r["version"] == 1).unwrap();
    assert!(
        first["priority"].as_str().unwrap() > escalated_to.as_str(),
        "escalated one step up"
    );
    assert!(
        mine.iter()
            .any(|r| r["priority"] == escalated_to.as_str() && r["status"] == "open")
    );
    assert_eq!(kube.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_calls_nothing_and_records_what_would_run() {
    let kube = Kube::with(&[("shop", "catalog-api")]);
    let kube_url = serve(
        Router::new()
            .fallback(kube_handler)
            .with_state(kube.clone()),
    )
    .await;
    let awx = Arc::new(Awx::default());
    let awx_url = serve(Router::new().fallback(awx_handler).with_state(awx.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings(dir.path(), &kube_url, &awx_url);
    let broker = MockBroker::start(3);
    let b = broker.bootstrap.clone();
    let _d2c = start(&config, &b, &[("D2C_AUTOMATION__DRY_RUN", "true")]);
    event(&b, "SlowQueries", "catalog-api-2b7e", "warning", "firing").await;
    let changes = records(&b, "d2c.changes", Duration::from_secs(60), |rs| {
        rs.iter().any(|r| r["automation"]["dry_run"] == true)
    })
    .await;
    let dry = changes
        .iter()
        .find(|r| r["automation"]["dry_run"] == true)
        .expect("a dry-run version");
    assert_eq!(dry["status"], "proposed", "a dry run implements nothing");
    assert_eq!(
        dry["automation"]["call"],
        format!("POST /api/v2/job_templates/{TEMPLATE}/launch/")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        awx.requests.load(Ordering::SeqCst),
        0,
        "dry run: AWX never called"
    );
    assert_eq!(kube.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_kill_switch_off_nothing_runs_and_nothing_is_recorded_on_the_rfc() {
    let kube = Kube::with(&[]);
    let kube_url = serve(
        Router::new()
            .fallback(kube_handler)
            .with_state(kube.clone()),
    )
    .await;
    let awx = Arc::new(Awx::default());
    let awx_url = serve(Router::new().fallback(awx_handler).with_state(awx.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = settings(dir.path(), &kube_url, &awx_url);
    let broker = MockBroker::start(3);
    let b = broker.bootstrap.clone();
    let d2c = start(&config, &b, &[("D2C_AUTOMATION__ENABLED", "false")]);
    event(&b, "SlowQueries", "catalog-api-2b7e", "warning", "firing").await;
    let series = "d2c_automation_runs_total{result=\"disabled\",runbook=\"remediate\"}";
    wait_for("the RFC passed over", Duration::from_secs(60), || {
        d2c.metric(series) == Some(1.0)
    })
    .await;
    let changes = records(&b, "d2c.changes", Duration::from_secs(5), |_| false).await;
    let rule = "remediate-catalog";
    assert!(rfc_of_rule(&changes, rule).is_some());
    assert!(
        changes
            .iter()
            .all(|r| r["status"] == "proposed" && r["version"] == 1),
        "only the RFC as raised: {changes:#?}"
    );
    assert_eq!(awx.requests.load(Ordering::SeqCst), 0);
}
