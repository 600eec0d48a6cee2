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
    d.push_str(&format!("Alerts: {}\n", i.alerts.len()));
    for a in i.alerts.iter().take(20) {
        d.push_str(&format!(
            "- {} on {} ({:?}, {:?})\n",
            a.name,
            a.ci.as_deref().or(a.service.as_deref()).unwrap_or("?"),
            a.severity,
            a.status
        ));
    }
    d
}

/// A human description of an RFC.
pub fn rfc_description(r: &Rfc) -> String {
    format!(
        "d2c change request {} for incident {} (rule {}).\nAction: {}\nCategory: {:?}, risk: {:?}, approval: {:?}, priority: {}\nServices: {}\nCIs: {}\n",
        r.id,
        r.incident_id,
        r.rule,
        r.action,
        r.category,
        r.risk,
        r.approval,
        r.priority.as_str(),
        r.services.join(", "),
        r.cis.join(", ")
    )
}
