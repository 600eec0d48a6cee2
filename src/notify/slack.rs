//! Slack incoming webhook: one message per incident version, RFC or problem that a person can
//! read at a glance. Only incident versions worth a message are sent (something people act on
//! changed: `Incident::worth_paging`); alerts joining or related changes alone update tickets,
//! not the channel. Slack has no idempotency key: a message repeated after a timeout whose answer was
//! lost, or after a restart, shows twice. Within a run, the stage's memory of delivered
//! versions keeps repeats out.

use serde_json::json;

use super::http::Http;
use super::item::{Item, Record, Sent};
use super::retry::Failure;
use crate::model::{IncidentStatus, RfcStatus};

#[derive(Debug)]
pub struct Slack {
    pub http: Http,
}

/// The message text for `item` (Slack mrkdwn).
pub fn text(item: &Item) -> String {
    match &item.record {
        Record::Incident(i) => {
            let mark = match i.status {
                IncidentStatus::Open => ":red_circle:",
                IncidentStatus::Resolved => ":large_green_circle:",
                IncidentStatus::Closed => ":white_circle:",
            };
            let mut t = format!(
                "{mark} *[{}] {}* — {} ({}, v{})",
                i.priority.as_str(),
                i.title,
                i.status.as_str(),
                i.id,
                i.version
            );
            if let Some(rc) = &i.root_cause {
                t.push_str(&format!("\nRoot cause: {}", rc.service));
            }
            if !i.capabilities.is_empty() {
                t.push_str(&format!(
                    "\nCapabilities hurt: {} · revenue at risk {:.0}/min",
                    i.capabilities.join(", "),
                    i.impact.revenue_at_risk_per_minute
                ));
            }
            if !i.services.is_empty() {
                t.push_str(&format!("\nServices: {}", i.services.join(", ")));
            }
            if let Some(by) = &i.acknowledged_by {
                t.push_str(&format!("\nAcknowledged by {by}"));
            }
            if let Some(owner) = i
                .context
                .first()
                .and_then(|c| c.team.as_ref().or(c.owner.as_ref()))
            {
                t.push_str(&format!("\nOwner: {owner}"));
            }
            if let Some(rb) = super::text::runbook(i) {
                t.push_str(&format!("\nRunbook: {rb}"));
            }
            if let Some(w) = &i.workaround {
                t.push_str(&format!("\nKnown error, workaround: {w}"));
            }
            t
        }
        Record::Change(r) => {
            let mut t = format!(
                ":wrench: *RFC {}* for {} ({}, risk {}, {}): {}",
                r.id,
                r.incident_id,
                r.category.as_str(),
                r.risk.as_str(),
                r.priority.as_str(),
                r.action
            );
            match (&r.decision, r.status) {
                (_, RfcStatus::Withdrawn) => t.push_str(&format!(
                    "\nwithdrawn: {}",
                    r.reason.as_deref().unwrap_or("no longer needed")
                )),
                (Some(d), _) => t.push_str(&format!("\n{} by {}", d.status.as_str(), d.by)),
                (None, _) => {}
            }
            if let Some(run) = &r.automation {
                t.push_str(&format!("\nRunbook {}: {}", run.runbook, r.status.as_str()));
                if let Some(why) = &run.reason {
                    t.push_str(&format!(" — {why}"));
                }
            }
            t
        }
        Record::Problem(p) => {
            let mut t = format!(
                ":repeat: *Problem {}* ({}, {}): {} — {} incidents, cost {:.0}",
                p.id,
                p.status.as_str(),
                p.priority.as_str(),
                p.title,
                p.incident_count,
                p.cost
            );
            if let Some(w) = &p.workaround {
                t.push_str(&format!("\nWorkaround: {w}"));
            }
            t
        }
    }
}

impl Slack {
    pub async fn deliver(&self, item: &Item) -> Result<Sent, Failure> {
        if matches!(&item.record, Record::Incident(i) if !i.worth_paging()) {
            return Ok(Sent::Skipped);
        }
        let req = self
            .http
            .request(reqwest::Method::POST, self.http.url.expose())
            .json(&json!({ "text": text(item) }));
        self.http.send(req).await?;
        Ok(Sent::Delivered)
    }
}
