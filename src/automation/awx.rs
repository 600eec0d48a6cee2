//! Ansible AWX / Automation Controller runbooks: launch a job template with extra vars, then
//! follow the job to its end (`successful`; `failed`, `error` or `canceled` fail the run).
//!
//! Exactly once: every launch carries the extra var `d2c_change: <RFC id>`. Before launching,
//! an attempt lists the template's jobs created since the RFC's approval and looks for that
//! var in their `extra_vars` (AWX does not filter on `extra_vars`, so they are read); a job it
//! finds is followed instead of launching another, so a run repeated after a crash between the
//! launch and its record follows the job it started. The template must prompt for variables on
//! launch (`ask_variables_on_launch`), or AWX would drop the var: that is checked first, and a
//! template without it is refused before anything runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::job::{Done, Job, permanent};
use crate::notify::http::Http;
use crate::notify::retry::Failure;

/// The extra var that names the RFC on its job.
pub const CHANGE_VAR: &str = "d2c_change";

/// Job statuses after which nothing more happens.
const FINAL: [&str; 4] = ["successful", "failed", "error", "canceled"];

#[derive(Debug)]
pub struct Awx {
    pub http: Http,
    pub template: u64,
    pub extra_vars: BTreeMap<String, Value>,
    pub poll_interval: Duration,
    pub job_timeout: Duration,
}

impl Awx {
    pub fn describe(&self) -> String {
        format!("POST /api/v2/job_templates/{}/launch/", self.template)
    }

    async fn get(&self, path_and_query: &str) -> Result<Value, Failure> {
        let req = self
            .http
            .request(reqwest::Method::GET, &self.http.at(path_and_query))
            .header(reqwest::header::ACCEPT, "application/json");
        let body = self.http.send(req).await.map_err(explain)?;
        serde_json::from_str(&body)
            .map_err(|e| Failure::retry(format!("AWX answered no JSON ({e})")))
    }

    /// The id of a job of this template that carries `d2c_change: <id>`, created since `since`.
    async fn find(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<u64>, Failure> {
        let mut url = reqwest::Url::parse(
            &self
                .http
                .at(&format!("/api/v2/job_templates/{}/jobs/", self.template)),
        )
        .map_err(|e| permanent(format!("the runbook URL is not a valid URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair(
                "created__gte",
                &since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .append_pair("order_by", "-id")
            .append_pair("page_size", "200");
        let req = self
            .http
            .request(reqwest::Method::GET, url.as_str())
            .header(reqwest::header::ACCEPT, "application/json");
        let body = self.http.send(req).await.map_err(explain)?;
        let list: Value = serde_json::from_str(&body)
            .map_err(|e| Failure::retry(format!("AWX answered no JSON ({e})")))?;
        let found = list["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|job| {
                let vars = job["extra_vars"].as_str().unwrap_or("");
                serde_json::from_str::<Value>(vars).is_ok_and(|v| v[CHANGE_VAR] == id)
            })
            .and_then(|job| job["id"].as_u64());
        Ok(found)
    }

    /// Launches the template for `job`; returns the new job's id.
    async fn launch(&self, job: &Job<'_>) -> Result<u64, Failure> {
        let path = format!("/api/v2/job_templates/{}/launch/", self.template);
        let prompts = self.get(&path).await?;
        if prompts["ask_variables_on_launch"] != true {
            return Err(permanent(format!(
                "job template {} does not prompt for variables on launch, so AWX would drop {CHANGE_VAR} and a repeated run could not find its job; enable \"Prompt on launch\" for Variables",
                self.template
            )));
        }
        let t = &job.run.target;
        let mut vars = serde_json::Map::new();
        for (k, v) in &self.extra_vars {
            vars.insert(k.clone(), v.clone());
        }
        vars.insert(CHANGE_VAR.into(), json!(job.rfc.id));
        vars.insert("d2c_incident".into(), json!(job.rfc.incident_id));
        vars.insert("d2c_service".into(), json!(t.service));
        if let Some(ns) = &t.namespace {
            vars.insert("d2c_namespace".into(), json!(ns));
        }
        if let Some(d) = &t.deployment {
            vars.insert("d2c_deployment".into(), json!(d));
        }
        let req = self
            .http
            .request(reqwest::Method::POST, &self.http.at(&path))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&json!({ "extra_vars": vars }));
        let body = self.http.send(req).await.map_err(explain)?;
        let launched: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if launched["ignored_fields"].get("extra_vars").is_some() {
            return Err(permanent(
                "AWX launched the job but ignored its extra vars; enable \"Prompt on launch\" for Variables on the template",
            ));
        }
        launched["job"]
            .as_u64()
            .or_else(|| launched["id"].as_u64())
            .ok_or_else(|| permanent(format!("AWX answered the launch without a job id: {body}")))
    }

    pub async fn run(&self, job: &Job<'_>) -> Result<Done, Failure> {
        // Jobs of this run cannot be older than its approval; a margin covers clock skew.
        let since = job.approved_at - chrono::TimeDelta::minutes(5);
        let (id, already) = match self.find(&job.rfc.id, since).await? {
            Some(id) => (id, true),
            None => (self.launch(job).await?, false),
        };
        let call = format!("{} (job {id})", self.describe());
        let started = Instant::now();
        loop {
            let j = match self.get(&format!("/api/v2/jobs/{id}/")).await {
                Ok(j) => j,
                // The job runs on whether AWX answers or not: keep following it.
                Err(Failure::Retry { .. }) => Value::Null,
                Err(f) => return Err(f),
            };
            let status = j["status"].as_str().unwrap_or("");
            if FINAL.contains(&status) {
                let answer = format!(
                    "job {id} {status}{}",
                    j["job_explanation"]
                        .as_str()
                        .filter(|e| !e.is_empty())
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
                if status == "successful" {
                    return Ok(Done {
                        call,
                        answer,
                        already,
                    });
                }
                return Err(Failure::Permanent {
                    status: None,
                    body: answer.clone(),
                    reason: format!("{call}: {answer}"),
                });
            }
            if started.elapsed() >= self.job_timeout {
                return Err(permanent(format!(
                    "{call}: still {status} after automation.job_timeout ({:?}); left running",
                    self.job_timeout
                )));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

fn explain(f: Failure) -> Failure {
    match f {
        Failure::Permanent {
            status: Some(code @ (401 | 403)),
            body,
            ..
        } => Failure::Permanent {
            status: Some(code),
            body,
            reason: format!(
                "AWX refused the credentials ({code}); the user needs execute on the job template"
            ),
        },
        other => other,
    }
}
