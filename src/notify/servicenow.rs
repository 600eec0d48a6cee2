//! ServiceNow Table API: incidents go to table `incident`, RFCs to `change_request`, problems to
//! `problem` (a known error sets `known_error` and `workaround`). Each
//! record carries `correlation_id` = the d2c id; before writing, the connector looks that id
//! up and updates (PATCH) the record it finds instead of creating a second one. A retry, or a
//! record read again after a restart, therefore never makes a second ticket. The version sits
//! in `correlation_display` (`d2c v<version>`), so an older version read again after a restart
//! is not written over a newer one. A withdrawn (or rejected) RFC cancels its change request:
//! state 4 (Canceled), the reason in `close_notes`.

use serde_json::{Value, json};

use super::http::Http;
use super::item::{Item, Record, Sent};
use super::retry::Failure;
use super::text::{incident_description, problem_description, rfc_description};
use crate::model::{Approval, IncidentStatus, Priority, ProblemStatus, RfcStatus, Risk};

#[derive(Debug)]
pub struct ServiceNow {
    pub http: Http,
    pub assignment_group: Option<String>,
}

/// The table `item` goes to.
pub fn table(item: &Item) -> &'static str {
    match item.record {
        Record::Incident(_) => "incident",
        Record::Change(_) => "change_request",
        Record::Problem(_) => "problem",
    }
}

/// ServiceNow's impact and urgency (1 high … 3 low) for a d2c priority.
fn impact_urgency(p: Priority) -> (&'static str, &'static str) {
    match p {
        Priority::P1 => ("1", "1"),
        Priority::P2 => ("1", "2"),
        Priority::P3 => ("2", "2"),
        Priority::P4 => ("3", "3"),
    }
}

/// Short descriptions are limited to 160 characters in the default dictionary.
fn short(s: &str) -> String {
    s.chars().take(160).collect()
}

/// `correlation_display` of version `v`.
fn display(v: u32) -> String {
    format!("d2c v{v}")
}

/// The version a `correlation_display` written by d2c names.
fn version_of(display: &str) -> Option<u32> {
    display.strip_prefix("d2c v")?.parse().ok()
}

/// The fields written for `item`.
pub fn fields(item: &Item, assignment_group: Option<&str>) -> Value {
    let mut f = match &item.record {
        Record::Incident(i) => {
            let (impact, urgency) = impact_urgency(i.priority);
            // Incident states of the default workflow: 1 New, 2 In Progress, 6 Resolved,
            // 7 Closed.
            let state = match i.status {
                IncidentStatus::Open if i.acknowledged_at.is_some() => "2",
                IncidentStatus::Open => "1",
                IncidentStatus::Resolved => "6",
                IncidentStatus::Closed => "7",
            };
            let mut f = json!({
                "short_description": short(&format!("[{}] {}", i.priority.as_str(), i.title)),
                "description": incident_description(i),
                "correlation_id": i.id,
                "correlation_display": display(item.version()),
                "impact": impact,
                "urgency": urgency,
                "state": state,
            });
            if i.status != IncidentStatus::Open {
                f["close_code"] = json!("Solved (Permanently)");
                f["close_notes"] = json!(format!(
                    "Every alert of d2c incident {} resolved (version {}).",
                    i.id, i.version
                ));
            }
            f
        }
        Record::Change(r) => {
            let (impact, urgency) = impact_urgency(r.priority);
            // Risk choices of the default change model: 2 High, 3 Moderate, 4 Low.
            let risk = match r.risk {
                Risk::High => "2",
                Risk::Medium => "3",
                Risk::Low => "4",
            };
            let approval = match (&r.decision, r.approval) {
                (Some(d), _) => d.status.as_str(),
                (None, Approval::PreApproved) => "approved",
                (None, Approval::Required) => "requested",
            };
            let mut f = json!({
                "short_description": short(&r.action),
                "description": rfc_description(r),
                "correlation_id": r.id,
                "correlation_display": display(item.version()),
                "type": r.category.as_str(),
                "risk": risk,
                "impact": impact,
                "urgency": urgency,
                "approval": approval,
                "justification": format!("Corrects d2c incident {}", r.incident_id),
            });
            // Change states of the default model: 4 Canceled. A withdrawn or rejected change
            // is cancelled, with the reason in the close notes.
            if matches!(r.status, RfcStatus::Withdrawn | RfcStatus::Rejected) {
                f["state"] = json!("4");
                f["close_notes"] = json!(match &r.reason {
                    Some(reason) => format!("{} by d2c: {reason}", r.status.as_str()),
                    None => format!("{} (d2c version {})", r.status.as_str(), r.version),
                });
            }
            f
        }
        Record::Problem(p) => {
            let (impact, urgency) = impact_urgency(p.priority);
            // Problem states of the default workflow: 101 New, 103 Root Cause Analysis,
            // 104 Fix in Progress, 106 Resolved.
            let state = match p.status {
                ProblemStatus::Open => "101",
                ProblemStatus::KnownError => "104",
                ProblemStatus::Resolved => "106",
            };
            let mut f = json!({
                "short_description": short(&format!("[{}] {}", p.priority.as_str(), p.title)),
                "description": problem_description(p),
                "correlation_id": p.id,
                "correlation_display": display(item.version()),
                "impact": impact,
                "urgency": urgency,
                "state": state,
                "known_error": p.status == ProblemStatus::KnownError,
            });
            if let Some(w) = &p.workaround {
                f["workaround"] = json!(w);
            }
            if p.status == ProblemStatus::Resolved {
                f["resolution_code"] = json!("fix_applied");
                f["fix_notes"] = json!(p.comment.clone().unwrap_or_else(|| format!(
                    "Resolved in d2c by {}.",
                    p.resolved_by.as_deref().unwrap_or("someone")
                )));
            }
            f
        }
    };
    if let Some(g) = assignment_group {
        f["assignment_group"] = json!(g);
    }
    f
}

impl ServiceNow {
    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        let table = table(item);
        let base = self.http.at(&format!("/api/now/table/{table}"));
        let body = fields(item, self.assignment_group.as_deref());
        let req = match self.find(&base, item.id()).await? {
            // Holds this version or a newer one already (written before a restart).
            Some((_, Some(v))) if v >= item.version() => return Ok(Sent::Skipped),
            Some((sys_id, _)) => self
                .http
                .request(reqwest::Method::PATCH, &format!("{base}/{sys_id}")),
            None => self.http.request(reqwest::Method::POST, &base),
        };
        let req = req
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        self.http.send(req).await?;
        Ok(Sent::Delivered)
    }

    /// The `sys_id` of the record whose `correlation_id` is `id`, if there is one, and the
    /// d2c version it holds.
    async fn find(&self, base: &str, id: &str) -> Result<Option<(String, Option<u32>)>, Failure> {
        let mut url = reqwest::Url::parse(base).map_err(|e| Failure::Permanent {
            status: None,
            body: String::new(),
            reason: format!("the connector URL is not a valid URL: {e}"),
        })?;
        url.query_pairs_mut()
            .append_pair("sysparm_query", &format!("correlation_id={id}"))
            .append_pair("sysparm_fields", "sys_id,correlation_display")
            .append_pair("sysparm_limit", "1");
        let req = self
            .http
            .request(reqwest::Method::GET, url.as_str())
            .header(reqwest::header::ACCEPT, "application/json");
        let body = self.http.send(req).await?;
        let found: Value = serde_json::from_str(&body).map_err(|e| {
            Failure::retry(format!(
                "the lookup by correlation_id answered no JSON ({e})"
            ))
        })?;
        let Some(row) = found["result"].as_array().and_then(|r| r.first()) else {
            return Ok(None);
        };
        Ok(row["sys_id"].as_str().map(|sys_id| {
            let version = row["correlation_display"].as_str().and_then(version_of);
            (sys_id.to_string(), version)
        }))
    }
}
