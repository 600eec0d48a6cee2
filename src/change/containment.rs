//! Containment policy: `[[containment]]` rules of the change policy file, turning security
//! incidents into containment RFCs (isolate a host, block an address, disable an account, kill
//! a container). Containment always waits for a change authority: approval is `required`, and
//! a rule that says otherwise is refused at start-up.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::ingest::Format;
use crate::model::{
    Approval, Containment, ContainmentAction, Incident, Rfc, RfcCategory, RfcStatus, Risk,
    SecurityInfo, attack, stable_hash,
};

/// One containment rule. All conditions given must hold; a list holds when any entry matches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContainmentRule {
    /// Name of the rule, shown on the RFC; unique among containment rules.
    pub name: String,
    /// ATT&CK tactics (ids such as `TA0002` or names such as `Execution`), any of which the
    /// incident must have reached. Default: any.
    #[serde(default)]
    pub tactics: Vec<String>,
    /// Fewest distinct stages (tactics) the incident must have reached. Default: `0`.
    #[serde(default)]
    pub min_stages: usize,
    /// Tools (format names: `falco`, `suricata`, `wazuh`, `ocsf`, `ecs`, …), any of which must
    /// have a detection on the incident. Default: any.
    #[serde(default)]
    pub tools: Vec<String>,
    /// `isolate_host`, `block_ip`, `disable_user` or `kill_container`; the targets are the
    /// incident's hosts, source addresses, users or containers. A rule whose incident has no
    /// such entity does not match.
    pub action: ContainmentAction,
    /// `low`, `medium` or `high`. Default: `high`.
    #[serde(default = "high")]
    pub risk: Risk,
    /// Default: `emergency`.
    #[serde(default = "emergency")]
    pub category: RfcCategory,
    /// May only be `required` (the default): containment is never pre-approved.
    #[serde(default)]
    pub approval: Option<Approval>,
}

fn high() -> Risk {
    Risk::High
}

fn emergency() -> RfcCategory {
    RfcCategory::Emergency
}

/// Checks the containment rules of a policy file; errors name the file, line and rule.
pub(super) fn validate(
    rules: &[ContainmentRule],
    text: &str,
    file: &Path,
) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for r in rules {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            line: line_in_rule(text, &r.name, key),
            key: format!("containment[{}].{key}", r.name),
            message,
        };
        if r.name.trim().is_empty() {
            return Err(invalid(
                "name",
                "is empty; give every containment rule a name".into(),
            ));
        }
        if !names.insert(r.name.as_str()) {
            return Err(invalid(
                "name",
                "is defined twice; containment rule names must be unique".into(),
            ));
        }
        if r.approval == Some(Approval::PreApproved) {
            return Err(invalid(
                "approval",
                "is pre_approved, but containment always needs approval: remove the key or set \
                 it to \"required\""
                    .into(),
            ));
        }
        for t in &r.tactics {
            if attack::tactic(t).is_none() {
                return Err(invalid(
                    "tactics",
                    format!(
                        "names {t:?}, which is no MITRE ATT&CK Enterprise tactic; use an id such \
                         as \"TA0002\" or a name such as \"Execution\""
                    ),
                ));
            }
        }
        for tool in &r.tools {
            if Format::from_name(tool).is_none() {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                return Err(invalid(
                    "tools",
                    format!(
                        "names {tool:?}, which is no input format; use one of {}",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The line of `key` in the `[[containment]]` table named `name` (else the name's line).
fn line_in_rule(text: &str, name: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| {
        let l = l.trim();
        l.starts_with("name") && l.contains(&format!("\"{name}\""))
    })?;
    let mut at = start;
    while at > 0 && !lines[at].trim().starts_with('[') {
        at -= 1;
    }
    let found = lines
        .iter()
        .enumerate()
        .skip(at + 1)
        .take_while(|(_, l)| !l.trim().starts_with('['))
        .find(|(_, l)| l.trim().split('=').next().is_some_and(|k| k.trim() == key))
        .map(|(i, _)| i);
    Some(found.unwrap_or(start) + 1)
}

/// What a containment rule contains in a security incident that meets it
/// ([`ContainmentRule::contains`]).
#[derive(Debug, Clone, Copy)]
pub struct Contained<'a> {
    sec: &'a SecurityInfo,
    /// The incident's hosts, source addresses, users or containers, as the rule's action says.
    targets: &'a [String],
    /// What is done to them, e.g. "Isolate host".
    verb: &'static str,
}

impl ContainmentRule {
    /// What this rule would contain in `incident`, if the incident meets the rule (a rule whose
    /// incident has no such entity does not match).
    pub fn contains<'a>(&self, incident: &'a Incident) -> Option<Contained<'a>> {
        let sec = incident.security.as_ref()?;
        let reached = |t: &String| {
            attack::tactic(t).is_some_and(|t| sec.stages.iter().any(|s| s.tactic_id == t.id))
        };
        let tool_seen = |t: &String| sec.tools.iter().any(|s| s.eq_ignore_ascii_case(t));
        if sec.stages.len() < self.min_stages
            || !(self.tactics.is_empty() || self.tactics.iter().any(reached))
            || !(self.tools.is_empty() || self.tools.iter().any(tool_seen))
        {
            return None;
        }
        let e = &sec.entities;
        let (targets, verb) = match self.action {
            ContainmentAction::IsolateHost => (&e.hosts, "Isolate host"),
            ContainmentAction::BlockIp => (&e.source_ips, "Block source address"),
            ContainmentAction::DisableUser => (&e.users, "Disable account"),
            ContainmentAction::KillContainer => (&e.containers, "Kill container"),
        };
        (!targets.is_empty()).then_some(Contained { sec, targets, verb })
    }

    /// The id of the RFC this rule raises for `incident`: one per incident and rule.
    pub fn rfc_id(&self, incident: &Incident) -> String {
        format!("RFC-{}", &stable_hash(&[&incident.id, &self.name])[..12])
    }

    /// The RFC this rule raises for `incident`, which it `contains` as `c`.
    pub fn propose(&self, incident: &Incident, c: Contained<'_>) -> Rfc {
        let Contained { sec, targets, verb } = c;
        let e = &sec.entities;
        let stages: Vec<&str> = sec.stages.iter().map(|s| s.tactic.as_str()).collect();
        let action = format!(
            "{verb} {}: containment of {} ({})",
            targets.join(", "),
            incident.id,
            if stages.is_empty() {
                "no ATT&CK stage".to_owned()
            } else {
                stages.join(" → ")
            }
        );
        let cis = if self.action == ContainmentAction::IsolateHost {
            targets.to_vec()
        } else {
            e.hosts.clone()
        };
        Rfc {
            id: self.rfc_id(incident),
            version: 1,
            incident_id: incident.id.clone(),
            rule: self.name.clone(),
            category: self.category,
            action,
            service: None,
            cis,
            services: incident.failing_services.clone(),
            risk: self.risk,
            approval: Approval::Required,
            status: RfcStatus::Proposed,
            reason: None,
            priority: incident.priority,
            created_at: incident.updated_at,
            updated_at: None,
            containment: Some(Containment {
                action: self.action,
                targets: targets.to_vec(),
            }),
            decision: None,
            automation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::change::ChangePolicy;
    use crate::model::{Entities, Impact, IncidentStatus, Priority, SecurityInfo, Severity, Stage};

    fn policy(text: &str) -> Result<ChangePolicy, String> {
        ChangePolicy::from_str(text, Path::new("p.toml")).map_err(|e| e.to_string())
    }

    fn incident(tactics: &[&str], hosts: &[&str], sources: &[&str]) -> Incident {
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Incident {
            id: "INC-1".into(),
            version: 1,
            status: IncidentStatus::Open,
            severity: Severity::Major,
            priority: Priority::P2,
            title: "t".into(),
            opened_at: t,
            updated_at: t,
            resolved_at: None,
            closed_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            reopened: 0,
            merged_into: None,
            root_cause: None,
            related_changes: Vec::new(),
            failing_services: Vec::new(),
            services: Vec::new(),
            capabilities: Vec::new(),
            impact: Impact::default(),
            event_count: 1,
            changed: Vec::new(),
            context: Vec::new(),
            alerts: Vec::new(),
            alerts_omitted: 0,
            security: Some(SecurityInfo {
                stages: tactics
                    .iter()
                    .map(|id| {
                        let tactic = attack::tactic_by_id(id).unwrap();
                        Stage {
                            tactic_id: tactic.id.into(),
                            tactic: tactic.name.into(),
                            order: tactic.order,
                            first_seen: t,
                            techniques: Vec::new(),
                        }
                    })
                    .collect(),
                entities: Entities {
                    hosts: strings(hosts),
                    source_ips: strings(sources),
                    ips: strings(sources),
                    ..Entities::default()
                },
                techniques: Vec::new(),
                tools: vec!["falco".into()],
            }),
            problem: None,
            workaround: None,
        }
    }

    const RULES: &str = "[[containment]]\nname = \"isolate\"\nmin_stages = 2\ntactics = [\"Execution\"]\naction = \"isolate_host\"\n\n[[containment]]\nname = \"block\"\ntools = [\"falco\"]\naction = \"block_ip\"\nrisk = \"low\"\n";

    #[test]
    fn the_first_rule_the_incident_meets_raises_one_rfc_with_its_targets() {
        let p = policy(RULES).unwrap();
        let rfc = p
            .containment(&incident(
                &["TA0001", "TA0002"],
                &["web-1"],
                &["203.0.113.7"],
            ))
            .unwrap();
        assert_eq!(rfc.rule, "isolate");
        assert_eq!(rfc.approval, Approval::Required);
        assert_eq!(rfc.category, RfcCategory::Emergency);
        assert_eq!(rfc.risk, Risk::High);
        assert_eq!(rfc.cis, ["web-1"]);
        let c = rfc.containment.unwrap();
        assert_eq!(
            (c.action, c.targets),
            (ContainmentAction::IsolateHost, vec!["web-1".to_string()])
        );
        // One stage: the isolation rule does not hold, the blocking one does.
        let rfc = p
            .containment(&incident(&["TA0002"], &["web-1"], &["203.0.113.7"]))
            .unwrap();
        assert_eq!(rfc.rule, "block");
        assert!(
            rfc.action.starts_with("Block source address 203.0.113.7"),
            "{}",
            rfc.action
        );
        // Nothing to block: no RFC.
        assert!(
            p.containment(&incident(&["TA0002"], &["web-1"], &[]))
                .is_none()
        );
        // Operational incidents never get containment.
        let mut ops = incident(&["TA0002"], &["web-1"], &["203.0.113.7"]);
        ops.security = None;
        assert!(p.containment(&ops).is_none());
    }

    #[test]
    fn bad_rules_are_refused_with_file_line_and_key() {
        let pre_approved = RULES.replace("risk = \"low\"", "approval = \"pre_approved\"");
        let e = policy(&pre_approved).unwrap_err();
        assert!(
            e.starts_with("p.toml:11: `containment[block].approval` is pre_approved"),
            "{e}"
        );
        let e = policy(&RULES.replace("[\"Execution\"]", "[\"Lunch\"]")).unwrap_err();
        assert!(
            e.starts_with("p.toml:4: `containment[isolate].tactics`"),
            "{e}"
        );
        let e = policy(&RULES.replace("[\"falco\"]", "[\"snort\"]")).unwrap_err();
        assert!(e.starts_with("p.toml:9: `containment[block].tools`"), "{e}");
        let e = policy(&RULES.replace("\"isolate_host\"", "\"reboot\"")).unwrap_err();
        assert!(e.starts_with("p.toml:5:"), "{e}");
        let twice = format!("{RULES}\n[[containment]]\nname = \"block\"\naction = \"block_ip\"\n");
        assert!(policy(&twice).unwrap_err().contains("defined twice"));
    }
}
