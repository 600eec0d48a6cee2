//! Each runbook against a fake of its tool: what it sends, and that a repeated attempt finds
//! the earlier run instead of running again.

use super::*;
use crate::notify::retry::Failure;

/// Deployment `shop/api` with `replicas`, resourceVersion `rv`, and whether a write with an
/// older resourceVersion is refused (409) once.
struct Deploy {
    d: Value,
    conflict_once: bool,
}

fn kube(method: &Method, uri: &Uri, body: &str, s: &mut Deploy) -> (u16, Value) {
    if uri.path() != "/apis/apps/v1/namespaces/shop/deployments/api" {
        return (404, json!({"kind": "Status", "code": 404}));
    }
    match method.as_str() {
        "GET" => (200, s.d.clone()),
        "PATCH" => {
            let p: Value = serde_json::from_str(body).unwrap();
            if s.conflict_once {
                s.conflict_once = false;
                // Someone else scaled meanwhile.
                s.d["spec"]["replicas"] = json!(3);
                s.d["metadata"]["resourceVersion"] = json!("101");
                return (
                    409,
                    json!({"kind": "Status", "reason": "Conflict", "code": 409}),
                );
            }
            if p["metadata"]["resourceVersion"] != s.d["metadata"]["resourceVersion"] {
                return (
                    409,
                    json!({"kind": "Status", "reason": "Conflict", "code": 409}),
                );
            }
            s.d["spec"]["replicas"] = p["spec"]["replicas"].clone();
            s.d["metadata"]["annotations"] = p["metadata"]["annotations"].clone();
            (200, s.d.clone())
        }
        _ => (405, json!({})),
    }
}

fn deployment(replicas: i64) -> Deploy {
    Deploy {
        d: json!({"metadata": {"name": "api", "namespace": "shop", "resourceVersion": "100",
                               "annotations": {}},
                  "spec": {"replicas": replicas, "template": {"metadata": {}}}}),
        conflict_once: false,
    }
}

#[tokio::test]
async fn a_scale_adds_replicas_once_and_reads_again_after_a_conflict() {
    let mut state = deployment(2);
    state.conflict_once = true;
    let (url, fake) = super::fake(state, kube).await;
    let rb = runbook(&format!(
        "name = \"scale\"\nkind = \"kubernetes\"\nurl = \"{url}\"\noperation = \"scale\"\nscale_by = 2"
    ));
    let (rfc, raw) = approved("RFC-S", "api", Some("api"));
    let done = rb.attempt(&job(&rfc, &raw)).await.unwrap();
    assert_eq!(
        done.answer, "scaled from 3 to 5 replicas",
        "counted from the value read after the 409"
    );
    assert!(!done.already);
    // The same run again (after a crash): found by its annotation, not scaled again.
    let again = rb.attempt(&job(&rfc, &raw)).await.unwrap();
    assert!(again.already, "{again:?}");
    let s = fake.state.lock().unwrap();
    assert_eq!(s.d["spec"]["replicas"], 5);
    assert_eq!(s.d["metadata"]["annotations"]["d2c.io/change"], "RFC-S");
    drop(s);
    let patches = fake
        .methods()
        .iter()
        .filter(|m| **m == Method::PATCH)
        .count();
    assert_eq!(patches, 2, "the refused write and the one that took");
}

#[tokio::test]
async fn a_scale_stops_at_max_replicas_and_a_service_without_a_deployment_is_refused() {
    let (url, fake) = super::fake(deployment(4), kube).await;
    let rb = runbook(&format!(
        "name = \"scale\"\nkind = \"kubernetes\"\nurl = \"{url}\"\noperation = \"scale\"\nmax_replicas = 4"
    ));
    let (rfc, raw) = approved("RFC-M", "api", Some("api"));
    let e = rb.attempt(&job(&rfc, &raw)).await.unwrap_err();
    assert!(
        matches!(&e, Failure::Permanent { reason, .. } if reason.contains("max_replicas 4")),
        "{e:?}"
    );
    assert!(!fake.methods().contains(&Method::PATCH));
    let (rfc, raw) = approved("RFC-N", "mail", None);
    let why = rb.describe(&job(&rfc, &raw)).unwrap_err();
    assert!(why.contains("has no Kubernetes Deployment"), "{why}");
}

/// AWX with one job template; `prompts` says whether it asks for variables on launch, `ends`
/// the status its jobs end in.
struct Tower {
    prompts: bool,
    ends: &'static str,
    jobs: Vec<Value>,
}

fn awx(method: &Method, uri: &Uri, body: &str, s: &mut Tower) -> (u16, Value) {
    match (method.as_str(), uri.path()) {
        ("GET", "/api/v2/job_templates/5/launch/") => {
            (200, json!({"ask_variables_on_launch": s.prompts}))
        }
        ("POST", "/api/v2/job_templates/5/launch/") => {
            let req: Value = serde_json::from_str(body).unwrap();
            let id = 40 + s.jobs.len() as u64;
            s.jobs.push(json!({"id": id, "status": "pending",
                               "extra_vars": req["extra_vars"].to_string()}));
            (201, json!({"job": id, "id": id, "ignored_fields": {}}))
        }
        ("GET", "/api/v2/job_templates/5/jobs/") => (
            200,
            json!({"count": s.jobs.len(), "results": s.jobs.clone()}),
        ),
        ("GET", p) if p.starts_with("/api/v2/jobs/") => {
            let id: u64 = p
                .trim_start_matches("/api/v2/jobs/")
                .trim_end_matches('/')
                .parse()
                .unwrap();
            let ends = s.ends;
            match s.jobs.iter_mut().find(|j| j["id"] == id) {
                Some(j) => {
                    j["status"] = json!(if j["status"] == "pending" {
                        "running"
                    } else {
                        ends
                    });
                    let explanation = if ends == "failed" {
                        "Playbook failed on 1 host"
                    } else {
                        ""
                    };
                    (
                        200,
                        json!({"id": id, "status": j["status"], "job_explanation": explanation}),
                    )
                }
                None => (404, json!({"detail": "Not found."})),
            }
        }
        _ => (404, json!({"detail": "Not found."})),
    }
}

#[tokio::test]
async fn awx_launches_once_follows_the_job_and_finds_it_again() {
    let (url, fake) = super::fake(
        Tower {
            prompts: true,
            ends: "successful",
            jobs: vec![],
        },
        awx,
    )
    .await;
    let rb = runbook(&format!(
        "name = \"awx\"\nkind = \"awx\"\nurl = \"{url}\"\njob_template = 5\nextra_vars = {{ mode = \"safe\" }}"
    ));
    let (rfc, raw) = approved("RFC-A", "api", Some("api"));
    let done = rb.attempt(&job(&rfc, &raw)).await.unwrap();
    assert_eq!(done.call, "POST /api/v2/job_templates/5/launch/ (job 40)");
    assert_eq!(done.answer, "job 40 successful");
    let again = rb.attempt(&job(&rfc, &raw)).await.unwrap();
    assert!(
        again.already && again.call.ends_with("(job 40)"),
        "{again:?}"
    );
    let s = fake.state.lock().unwrap();
    assert_eq!(s.jobs.len(), 1, "launched once");
    let vars: Value = serde_json::from_str(s.jobs[0]["extra_vars"].as_str().unwrap()).unwrap();
    assert_eq!(vars["d2c_change"], "RFC-A");
    assert_eq!(vars["mode"], "safe");
    assert_eq!(vars["d2c_namespace"], "shop");
}

#[tokio::test]
async fn awx_refuses_a_template_that_drops_variables_and_reports_a_failed_job() {
    let (url, fake) = super::fake(
        Tower {
            prompts: false,
            ends: "failed",
            jobs: vec![],
        },
        awx,
    )
    .await;
    let rb = runbook(&format!(
        "name = \"awx\"\nkind = \"awx\"\nurl = \"{url}\"\njob_template = 5"
    ));
    let (rfc, raw) = approved("RFC-B", "api", None);
    let e = rb.attempt(&job(&rfc, &raw)).await.unwrap_err();
    assert!(
        matches!(&e, Failure::Permanent { reason, .. } if reason.contains("Prompt on launch")),
        "{e:?}"
    );
    assert!(!fake.methods().contains(&Method::POST), "nothing launched");
    fake.state.lock().unwrap().prompts = true;
    let e = rb.attempt(&job(&rfc, &raw)).await.unwrap_err();
    assert!(
        matches!(&e, Failure::Permanent { body, .. } if body == "job 40 failed: Playbook failed on 1 host"),
        "{e:?}"
    );
}

fn hook(_: &Method, _: &Uri, _: &str, n: &mut u32) -> (u16, Value) {
    *n += 1;
    (200, json!({"accepted": true}))
}

#[tokio::test]
async fn a_webhook_gets_the_rfc_signed_with_the_rfc_id_as_idempotency_key() {
    let (url, fake) = super::fake(0u32, hook).await;
    let rb = runbook(&format!(
        "name = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/run\"\nhmac_secret = \"k3y\""
    ));
    let (rfc, raw) = approved("RFC-W", "api", None);
    let done = rb.attempt(&job(&rfc, &raw)).await.unwrap();
    assert_eq!(done.answer, "{\"accepted\":true}");
    let seen = fake.seen.lock().unwrap();
    let (_, path, headers, body) = &seen[0];
    assert_eq!(path, "/run");
    assert_eq!(body.as_bytes(), raw.as_slice(), "the record as published");
    assert_eq!(headers["idempotency-key"], "RFC-W");
    let sig = crate::notify::webhook::signature(&crate::config::secret::Secret::new("k3y"), &raw);
    assert_eq!(headers["x-d2c-signature"], sig.as_str());
}
