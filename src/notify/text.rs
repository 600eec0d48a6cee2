//! The human descriptions the ticketing connectors (ServiceNow, Jira) write into their tickets.

use crate::model::{Incident, Problem, Rfc};

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
    if let Some(p) = &i.problem {
        d.push_str(&format!("Recurring: an occurrence of problem {p}\n"));
    }
    if let Some(w) = &i.workaround {
        d.push_str(&format!("Known error workaround: {w}\n"));
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
    // A record cut to fit the broker lists only its first alerts; the count is of them all.
    d.push_str(&format!(
        "Alerts: {}\n",
        i.alerts.len() as u64 + i.alerts_omitted
    ));
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
    if let Some(run) = &r.automation {
        d.push_str(&format!(
            "Automation: runbook {} on {}",
            run.runbook, run.target.service
        ));
        if let (Some(ns), Some(dep)) = (&run.target.namespace, &run.target.deployment) {
            d.push_str(&format!(" (deployment {ns}/{dep})"));
        }
        d.push('\n');
        if let Some(by) = &run.approved_by {
            d.push_str(&format!("Approved by: {by}\n"));
        }
        if run.dry_run {
            d.push_str("Dry run: nothing was called\n");
        }
        if let Some(c) = &run.call {
            d.push_str(&format!("Called: {c}\n"));
        }
        if let Some(a) = &run.answer {
            d.push_str(&format!("Answer: {a}\n"));
        }
        if let Some(why) = &run.reason {
            d.push_str(&format!("Note: {why}\n"));
        }
    }
    d
}

/// A human description of a problem.
pub fn problem_description(p: &Problem) -> String {
    let mut d = format!(
        "d2c problem {} (version {}), {}, status {}.\nRoot-cause service: {}\n",
        p.id,
        p.version,
        p.priority.as_str(),
        p.status.as_str(),
        p.service
    );
    if !p.alert_names.is_empty() {
        d.push_str(&format!("Alerts: {}\n", p.alert_names.join(", ")));
    }
    d.push_str(&format!(
        "Incidents: {} (outage {} min, cost {:.0}); latest: {}\n",
        p.incident_count,
        p.outage_seconds / 60,
        p.cost,
        p.incidents
            .iter()
            .rev()
            .take(10)
            .map(|i| &**i)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(w) = &p.workaround {
        d.push_str(&format!("Known error workaround: {w}\n"));
    }
    if let Some(c) = &p.comment {
        d.push_str(&format!("Note: {c}\n"));
    }
    d
}
