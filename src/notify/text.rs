//! The human descriptions the ticketing connectors (ServiceNow, Jira) write into their tickets.

use crate::model::{Incident, Rfc};

/// A human description shared by the ticketing connectors.
pub fn incident_description(i: &Incident) -> String {
    let mut d = format!(
        "d2c incident {} (version {}), {} {:?}, status {}.\n",
        i.id,
        i.version,
        i.priority.as_str(),
        i.severity,
        i.status.as_str()
    );
    if let Some(rc) = &i.root_cause {
        d.push_str(&format!(
            "Probable root cause: {} ({})\n",
            rc.service, rc.reason
        ));
    }
    if !i.services.is_empty() {
        d.push_str(&format!("Affected services: {}\n", i.services.join(", ")));
    }
    if !i.capabilities.is_empty() {
        d.push_str(&format!(
            "Business capabilities: {} (criticality {}, revenue at risk {:.0}/min)\n",
            i.capabilities.join(", "),
            i.impact.criticality,
            i.impact.revenue_at_risk_per_minute
        ));
    }
    for c in &i.context {
        d.push_str(&format!("Service {}:", c.service));
        for (what, v) in [
            ("owner", &c.owner),
            ("team", &c.team),
            ("runbook", &c.runbook),
            ("dashboard", &c.dashboard),
            ("on-call", &c.oncall),
        ] {
            if let Some(v) = v {
                d.push_str(&format!(" {what} {v};"));
            }
        }
        d.pop();
        d.push('\n');
    }
    d.push_str(&format!("Alerts: {}\n", i.alerts.len()));
    for a in i.alerts.iter().take(20) {
        d.push_str(&format!(
            "- {} on {} ({:?}, {:?})\n",
            a.name,
            a.ci.as_deref().or(a.service.as_deref()).unwrap_or("?"),
            a.severity,
            a.status
        ));
        for (k, v) in a.annotations.iter() {
            d.push_str(&format!("  {k}: {v}\n"));
        }
    }
    d
}

/// The first runbook link of an incident: its root cause's (or another failing service's)
/// runbook from the service model, else an alert's `runbook_url` or `runbook` annotation.
pub fn runbook(i: &Incident) -> Option<&str> {
    i.context
        .iter()
        .find_map(|c| c.runbook.as_deref())
        .or_else(|| {
            i.alerts.iter().find_map(|a| {
                a.annotations
                    .get("runbook_url")
                    .or_else(|| a.annotations.get("runbook"))
            })
        })
}

/// A human description of an RFC.
pub fn rfc_description(r: &Rfc) -> String {
    let mut d = format!(
        "d2c change request {} (version {}) for incident {} (rule {}).\nStatus: {}\n",
        r.id,
        r.version,
        r.incident_id,
        r.rule,
        r.status.as_str()
    );
    if let Some(reason) = &r.reason {
        d.push_str(&format!("Why: {reason}\n"));
    }
    d.push_str(&format!(
        "Action: {}\nCategory: {:?}, risk: {:?}, approval: {:?}, priority: {}\nServices: {}\nCIs: {}\n",
        r.action,
        r.category,
        r.risk,
        r.approval,
        r.priority.as_str(),
        r.services.join(", "),
        r.cis.join(", ")
    ));
    d
}
