//! PagerDuty Events API v2: an open incident triggers (or acknowledges, once acknowledged in
//! d2c) and a resolved or closed one resolves, all with `dedup_key` = incident id, so PagerDuty
//! keeps one alert per incident however often a version is sent. RFCs are not paged, nor
//! incident versions where nothing people act on changed (`Incident::worth_paging`). A trigger
//! carries the runbook and dashboard links of the failing services (and of the alerts'
//! annotations) and their owners.

use serde_json::json;

use super::http::Http;
use super::item::{Item, Record, Sent};
use super::retry::Failure;
use crate::config::secret::Secret;
use crate::model::{IncidentStatus, Severity};

#[derive(Debug)]
pub struct PagerDuty {
    pub http: Http,
    pub routing_key: Secret,
}

/// The Events API v2 body for `item`, or `None` for records PagerDuty does not take.
pub fn event(item: &Item, routing_key: &str) -> Option<serde_json::Value> {
    let Record::Incident(i) = &item.record else {
        return None;
    };
    if !i.worth_paging() {
        return None;
    }
    let action = match i.status {
        IncidentStatus::Open if i.acknowledged_at.is_some() => "acknowledge",
        IncidentStatus::Open => "trigger",
        IncidentStatus::Resolved | IncidentStatus::Closed => "resolve",
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": i.id,
    });
    if action == "trigger" {
        let severity = match i.severity {
            Severity::Critical => "critical",
            Severity::Major => "error",
            Severity::Minor | Severity::Warning => "warning",
            Severity::Info => "info",
        };
        body["payload"] = json!({
            "summary": format!("[{}] {}", i.priority.as_str(), i.title),
            "source": i.root_cause.as_ref().map_or("d2c", |rc| rc.service.as_str()),
            "severity": severity,
            "timestamp": i.opened_at,
            "component": i.failing_services.first(),
            "class": "d2c-incident",
            "custom_details": {
                "incident": i.id,
                "version": i.version,
                "services": i.services,
                "capabilities": i.capabilities,
                "revenue_at_risk_per_minute": i.impact.revenue_at_risk_per_minute,
                "owners": i.context.iter().filter_map(|c| c.team.as_ref().or(c.owner.as_ref())).collect::<Vec<_>>(),
            },
        });
        let mut links: Vec<serde_json::Value> = Vec::new();
        for c in &i.context {
            for (what, url) in [
                ("runbook", &c.runbook),
                ("dashboard", &c.dashboard),
                ("on-call", &c.oncall),
            ] {
                if let Some(url) = url {
                    links.push(json!({"href": url, "text": format!("{} {what}", c.service)}));
                }
            }
        }
        if links.is_empty()
            && let Some(rb) = super::text::runbook(i)
        {
            links.push(json!({"href": rb, "text": "runbook"}));
        }
        if !links.is_empty() {
            body["links"] = json!(links);
        }
    }
    Some(body)
}

impl PagerDuty {
    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        let Some(body) = event(item, self.routing_key.expose()) else {
            return Ok(Sent::Skipped);
        };
        let req = self
            .http
            .request(reqwest::Method::POST, self.http.url.expose())
            .json(&body);
        self.http.send(req).await?;
        Ok(Sent::Delivered)
    }
}
