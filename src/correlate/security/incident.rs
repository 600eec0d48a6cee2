//! The incident record of a security incident, built by the engine from the state
//! [`observe`](super::observe) keeps: severity and priority from its ATT&CK stages, title and
//! entity sets.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::SecurityIncident;
use crate::model::attack;
use crate::model::{
    AlertRef, Entities, Impact, Incident, Labels, Priority, SecurityInfo, Severity, Stage,
};

/// The severity of an incident with these detections and this many stages; see the docs of
/// the [`security`](super) module.
pub fn severity(worst: Severity, stages: usize) -> Severity {
    match stages {
        0 | 1 => worst,
        2 => worst.min(Severity::Major),
        _ => Severity::Critical,
    }
}

/// The priority of an incident of `severity` with this many stages: 3 or more stages P1,
/// 2 stages P2, else by severity (critical P2, major and minor P3, warning and info P4).
pub fn priority(severity: Severity, stages: usize) -> Priority {
    match stages {
        0 | 1 => match severity {
            Severity::Critical => Priority::P2,
            Severity::Major | Severity::Minor => Priority::P3,
            Severity::Warning | Severity::Info => Priority::P4,
        },
        2 => Priority::P2,
        _ => Priority::P1,
    }
}

/// The incident record of `inc` as of `time` (version 0: the engine numbers versions).
pub fn incident(inc: &SecurityIncident, time: DateTime<Utc>) -> Incident {
    let alerts: Vec<AlertRef> = inc
        .order
        .iter()
        .filter_map(|k| inc.detections.get(k))
        .map(|d| d.alert.clone())
        .collect();
    let mut stages: Vec<Stage> = inc
        .stages
        .iter()
        .filter_map(|(id, seen)| {
            let t = attack::tactic_by_id(id)?;
            Some(Stage {
                tactic_id: t.id.to_owned(),
                tactic: t.name.to_owned(),
                order: t.order,
                first_seen: seen.first_seen,
                techniques: seen.techniques.iter().cloned().collect(),
            })
        })
        .collect();
    stages.sort_by_key(|a| (a.first_seen, a.order));
    let mut entities = EntitySets::default();
    let mut tools = BTreeSet::new();
    for a in &alerts {
        entities.add(&a.labels);
        tools.insert(a.source.to_string());
    }
    let mut techniques: BTreeSet<String> = inc.other_techniques.clone();
    for s in &stages {
        techniques.extend(s.techniques.iter().cloned());
    }
    let worst = alerts
        .iter()
        .map(|a| a.severity)
        .min()
        .unwrap_or(Severity::Info);
    let severity = severity(worst, stages.len());
    let priority = priority(severity, stages.len());
    let entities = entities.into_entities();
    let subject = entities
        .hosts
        .first()
        .or(entities.ips.first())
        .or(entities.users.first())
        .cloned()
        .unwrap_or_else(|| "unknown entity".to_owned());
    let title = if stages.is_empty() {
        let first = alerts.first().map_or("detection", |a| &*a.name);
        match alerts.len() {
            0 | 1 => format!("Attack on {subject}: {first}"),
            n => format!("Attack on {subject}: {first} and {} more detections", n - 1),
        }
    } else {
        let path: Vec<&str> = stages.iter().map(|s| s.tactic.as_str()).collect();
        format!("Attack on {subject}: {}", path.join(" → "))
    };
    Incident {
        id: inc.id.clone(),
        version: 0,
        status: inc.status,
        severity,
        priority,
        title,
        opened_at: inc.opened_at,
        updated_at: time.max(inc.opened_at),
        resolved_at: None,
        closed_at: inc.closed_at,
        acknowledged_at: inc.acknowledged.as_ref().map(|(t, _)| *t),
        acknowledged_by: inc.acknowledged.as_ref().map(|(_, by)| by.clone()),
        reopened: 0,
        merged_into: None,
        root_cause: None,
        related_changes: Vec::new(),
        failing_services: Vec::new(),
        services: Vec::new(),
        capabilities: Vec::new(),
        // Security incidents are not mapped to services (see README "Not done yet").
        impact: Impact::default(),
        event_count: inc.event_count,
        changed: Vec::new(),
        context: Vec::new(),
        alerts,
        alerts_omitted: 0,
        security: Some(SecurityInfo {
            stages,
            entities,
            techniques: techniques.into_iter().collect(),
            tools: tools.into_iter().collect(),
        }),
        problem: None,
        workaround: None,
    }
}

#[derive(Default)]
struct EntitySets {
    hosts: BTreeSet<String>,
    users: BTreeSet<String>,
    ips: BTreeSet<String>,
    source_ips: BTreeSet<String>,
    containers: BTreeSet<String>,
    processes: BTreeSet<String>,
}

impl EntitySets {
    fn add(&mut self, labels: &Labels) {
        let put = |set: &mut BTreeSet<String>, key: &str| {
            if let Some(v) = labels.get(key) {
                set.insert(v.to_owned());
            }
        };
        put(&mut self.hosts, "host");
        put(&mut self.users, "user");
        put(&mut self.ips, "src_ip");
        put(&mut self.ips, "dest_ip");
        put(&mut self.ips, "host_ip");
        put(&mut self.source_ips, "src_ip");
        put(&mut self.containers, "container");
        put(&mut self.processes, "process");
    }

    fn into_entities(self) -> Entities {
        let v = |s: BTreeSet<String>| s.into_iter().collect();
        Entities {
            hosts: v(self.hosts),
            users: v(self.users),
            ips: v(self.ips),
            source_ips: v(self.source_ips),
            containers: v(self.containers),
            processes: v(self.processes),
        }
    }
}
