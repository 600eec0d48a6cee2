//! Kubernetes runbooks, through the API server with a service-account token: a rolling restart
//! of the RFC's Deployment the way `kubectl rollout restart` does it (a strategic merge patch of
//! `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`), or a scale-out.
//!
//! Exactly once: the patch also writes the annotation `d2c.io/change: <RFC id>` — into the pod
//! template for a restart, into the Deployment's metadata for a scale — in the same request as
//! the change itself, and the restart's `restartedAt` is the RFC's approval time, not the clock.
//! Every attempt reads the Deployment first and does nothing when the annotation already names
//! the RFC, so a run repeated after a crash between the call and its record finds it done. A
//! scale patch carries the `resourceVersion` it read, so a concurrent change makes it fail
//! (409) and be read again rather than count replicas twice.

use serde_json::{Value, json};

use super::job::{Done, Job, permanent};
use crate::config::KubernetesOperation;
use crate::notify::http::Http;
use crate::notify::retry::Failure;

/// The annotation naming the RFC that last changed a Deployment (or its pod template).
pub const CHANGE_ANNOTATION: &str = "d2c.io/change";
/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

#[derive(Debug)]
pub struct Kubernetes {
    pub http: Http,
    pub operation: KubernetesOperation,
    pub scale_by: i32,
    pub max_replicas: i32,
}

/// A valid Kubernetes object name (RFC 1123 subdomain), so it can go into a URL path as is.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

impl Kubernetes {
    /// The Deployment's API path, or why the RFC has none.
    fn path(&self, job: &Job<'_>) -> Result<String, String> {
        let t = &job.run.target;
        let (Some(ns), Some(name)) = (&t.namespace, &t.deployment) else {
            return Err(format!(
                "service `{}` has no Kubernetes Deployment in the service model (topology `kubernetes = {{ namespace, deployment }}` or the Backstage annotation backstage.io/kubernetes-id)",
                t.service
            ));
        };
        if !valid_name(ns) || !valid_name(name) {
            return Err(format!(
                "`{ns}/{name}` is not a valid Kubernetes namespace and Deployment name"
            ));
        }
        Ok(format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"))
    }

    pub fn describe(&self, job: &Job<'_>) -> Result<String, String> {
        let path = self.path(job)?;
        Ok(match self.operation {
            KubernetesOperation::Restart => format!("PATCH {path} (rollout restart)"),
            KubernetesOperation::Scale => format!("PATCH {path} (scale by {})", self.scale_by),
        })
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        let req = self
            .http
            .request(reqwest::Method::GET, &self.http.at(path))
            .header(reqwest::header::ACCEPT, "application/json");
        let body = self.http.send(req).await.map_err(|f| explain(f, path))?;
        serde_json::from_str(&body)
            .map_err(|e| Failure::retry(format!("the API server answered no JSON ({e})")))
    }

    async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value, Failure> {
        let req = self
            .http
            .request(reqwest::Method::PATCH, &self.http.at(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_string());
        let body = self.http.send(req).await.map_err(|f| explain(f, path))?;
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub async fn run(&self, job: &Job<'_>) -> Result<Done, Failure> {
        let path = self.path(job).map_err(permanent)?;
        let call = self.describe(job).map_err(permanent)?;
        let id = job.rfc.id.as_str();
        match self.operation {
            KubernetesOperation::Restart => {
                let d = self.get(&path).await?;
                let template = &d["spec"]["template"]["metadata"]["annotations"];
                if template[CHANGE_ANNOTATION] == id {
                    return Ok(Done {
                        answer: format!(
                            "the pod template already carries {CHANGE_ANNOTATION}={id} (restartedAt {}); not restarted again",
                            template[RESTARTED_AT].as_str().unwrap_or("?")
                        ),
                        call,
                        already: true,
                    });
                }
                let at = job
                    .approved_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                    RESTARTED_AT: at,
                    CHANGE_ANNOTATION: id,
                }}}}});
                let d = self
                    .patch(&path, "application/strategic-merge-patch+json", &patch)
                    .await?;
                Ok(Done {
                    answer: format!(
                        "rollout restart accepted: generation {}, restartedAt {at}",
                        d["metadata"]["generation"]
                    ),
                    call,
                    already: false,
                })
            }
            KubernetesOperation::Scale => {
                // A 409 means someone changed the Deployment between our read and our write:
                // read it again.
                for _ in 0..3 {
                    let d = self.get(&path).await?;
                    if d["metadata"]["annotations"][CHANGE_ANNOTATION] == id {
                        return Ok(Done {
                            answer: format!(
                                "the Deployment already carries {CHANGE_ANNOTATION}={id} ({} replicas); not scaled again",
                                d["spec"]["replicas"]
                            ),
                            call,
                            already: true,
                        });
                    }
                    let current = d["spec"]["replicas"].as_i64().unwrap_or(1);
                    let target =
                        (current + i64::from(self.scale_by)).min(i64::from(self.max_replicas));
                    if target <= current {
                        return Err(permanent(format!(
                            "the Deployment runs {current} replicas, at or above max_replicas {}; not scaled",
                            self.max_replicas
                        )));
                    }
                    let patch = json!({
                        "metadata": {
                            "annotations": {CHANGE_ANNOTATION: id},
                            "resourceVersion": d["metadata"]["resourceVersion"],
                        },
                        "spec": {"replicas": target},
                    });
                    match self
                        .patch(&path, "application/merge-patch+json", &patch)
                        .await
                    {
                        Ok(_) => {
                            return Ok(Done {
                                answer: format!("scaled from {current} to {target} replicas"),
                                call,
                                already: false,
                            });
                        }
                        Err(Failure::Permanent {
                            status: Some(409), ..
                        }) => continue,
                        Err(f) => return Err(f),
                    }
                }
                Err(Failure::retry(
                    "the Deployment kept changing between read and write (409 Conflict)",
                ))
            }
        }
    }
}

/// The failure with what a person should check, for the answers that have one.
fn explain(f: Failure, path: &str) -> Failure {
    match f {
        Failure::Permanent {
            status: Some(code @ (401 | 403)),
            body,
            ..
        } => Failure::Permanent {
            status: Some(code),
            body,
            reason: format!(
                "the API server refused the token ({code}); the service account needs get and patch on deployments"
            ),
        },
        Failure::Permanent {
            status: Some(404),
            body,
            ..
        } => Failure::Permanent {
            status: Some(404),
            body,
            reason: format!("{path} does not exist (check the service's kubernetes mapping)"),
        },
        other => other,
    }
}
