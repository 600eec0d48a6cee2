//! Jira REST API v2: one issue per incident (and per RFC and problem, each with its own issue
//! type), found again by its label
//! `d2c-<id>` (a search before every create, so a retry never makes a second issue); updated
//! with each new version and moved by the configured transition when the incident resolves, or
//! by `cancel_transition` when an RFC is withdrawn (its incident no longer needs it).

use serde_json::{Value, json};

use super::http::Http;
use super::item::{Item, Record, Sent};
use super::retry::Failure;
use super::text::{incident_description, problem_description, rfc_description};
use crate::model::{IncidentStatus, ProblemStatus, RfcStatus};

#[derive(Debug)]
pub struct Jira {
    pub http: Http,
    pub project: String,
    pub issue_type: String,
    pub change_issue_type: String,
    pub problem_issue_type: String,
    pub resolve_transition: String,
    pub cancel_transition: String,
}

/// The label that finds the issue of d2c record `id` again.
pub fn label(id: &str) -> String {
    format!("d2c-{id}")
}

/// An issue found by its label.
#[derive(Debug)]
struct Found {
    key: String,
    done: bool,
}

impl Jira {
    fn summary_and_description(item: &Item) -> (String, String) {
        match &item.record {
            Record::Incident(i) => (
                format!("[{}] {}", i.priority.as_str(), i.title),
                incident_description(i),
            ),
            Record::Change(r) if r.status == RfcStatus::Withdrawn => {
                (format!("RFC (withdrawn): {}", r.action), rfc_description(r))
            }
            Record::Change(r) => (format!("RFC: {}", r.action), rfc_description(r)),
            Record::Problem(p) => (format!("Problem: {}", p.title), problem_description(p)),
        }
    }

    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        let (summary, description) = Self::summary_and_description(item);
        let summary: String = summary.chars().take(250).collect();
        let found = self.find(item.id()).await?;
        let key = match found {
            // Resolved already (by d2c or by a person): leave the closed issue alone.
            Some(Found { done: true, .. }) => return Ok(Sent::Delivered),
            Some(Found { key, done: false }) => {
                let req = self
                    .http
                    .request(
                        reqwest::Method::PUT,
                        &self.http.at(&format!("/rest/api/2/issue/{key}")),
                    )
                    .json(&json!({"fields": {"summary": summary, "description": description}}));
                self.http.send(req).await?;
                key
            }
            None => {
                let issue_type = match item.record {
                    Record::Incident(_) => &self.issue_type,
                    Record::Change(_) => &self.change_issue_type,
                    Record::Problem(_) => &self.problem_issue_type,
                };
                let req = self
                    .http
                    .request(reqwest::Method::POST, &self.http.at("/rest/api/2/issue"))
                    .json(&json!({"fields": {
                        "project": {"key": self.project},
                        "issuetype": {"name": issue_type},
                        "summary": summary,
                        "description": description,
                        "labels": ["d2c", label(item.id())],
                    }}));
                let body = self.http.send(req).await?;
                let created: Value = serde_json::from_str(&body).unwrap_or_default();
                match created["key"].as_str() {
                    Some(k) => k.to_string(),
                    // Created, but the key is unknown: the next version finds it by label.
                    None => return Ok(Sent::Delivered),
                }
            }
        };
        match &item.record {
            Record::Incident(i) if i.status != IncidentStatus::Open => {
                self.transition(&key, &[&self.resolve_transition]).await?;
            }
            Record::Problem(p) if p.status == ProblemStatus::Resolved => {
                self.transition(&key, &[&self.resolve_transition]).await?;
            }
            Record::Change(r) if matches!(r.status, RfcStatus::Withdrawn | RfcStatus::Rejected) => {
                self.transition(&key, &[&self.cancel_transition, &self.resolve_transition])
                    .await?;
            }
            _ => {}
        }
        Ok(Sent::Delivered)
    }

    async fn find(&self, id: &str) -> Result<Option<Found>, Failure> {
        let mut url = reqwest::Url::parse(&self.http.at("/rest/api/2/search")).map_err(|e| {
            Failure::Permanent {
                status: None,
                body: String::new(),
                reason: format!("the connector URL is not a valid URL: {e}"),
            }
        })?;
        url.query_pairs_mut()
            .append_pair("jql", &format!("labels = \"{}\"", label(id)))
            .append_pair("fields", "status")
            .append_pair("maxResults", "1");
        let body = self
            .http
            .send(self.http.request(reqwest::Method::GET, url.as_str()))
            .await?;
        let found: Value = serde_json::from_str(&body)
            .map_err(|e| Failure::retry(format!("the issue search answered no JSON ({e})")))?;
        let Some(issue) = found["issues"].as_array().and_then(|a| a.first()) else {
            return Ok(None);
        };
        let Some(key) = issue["key"].as_str() else {
            return Ok(None);
        };
        let done = issue["fields"]["status"]["statusCategory"]["key"] == "done";
        Ok(Some(Found {
            key: key.to_string(),
            done,
        }))
    }

    /// Applies to issue `key` the first of the transitions `names` that it offers.
    async fn transition(&self, key: &str, names: &[&str]) -> Result<(), Failure> {
        let url = self
            .http
            .at(&format!("/rest/api/2/issue/{key}/transitions"));
        let body = self
            .http
            .send(self.http.request(reqwest::Method::GET, &url))
            .await?;
        let offered: Value = serde_json::from_str(&body)
            .map_err(|e| Failure::retry(format!("the transitions list is no JSON ({e})")))?;
        let list = offered["transitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let offered = |name: &str| {
            list.iter()
                .find(|t| {
                    t["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .and_then(|t| t["id"].as_str())
        };
        let Some(id) = names.iter().find_map(|n| offered(n)) else {
            let offered: Vec<&str> = list.iter().filter_map(|t| t["name"].as_str()).collect();
            let wanted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            return Err(Failure::Permanent {
                status: None,
                body: body.chars().take(1024).collect(),
                reason: format!(
                    "issue {key} offers no transition named {} (offered: {}); set resolve_transition or cancel_transition",
                    wanted.join(" or "),
                    offered.join(", ")
                ),
            });
        };
        let req = self
            .http
            .request(reqwest::Method::POST, &url)
            .json(&json!({"transition": {"id": id}}));
        self.http.send(req).await?;
        Ok(())
    }
}
