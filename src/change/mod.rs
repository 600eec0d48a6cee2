//! RFC policy: which incidents deserve a change request, and what it proposes. Pure: an incident
//! and the policy in, an RFC out. Security incidents get containment RFCs from the
//! `[[containment]]` rules instead ([`containment`]); the steps of an RFC after approval (run,
//! verified) are [`lifecycle`].

pub mod containment;
pub mod lifecycle;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, line_of};
use crate::model::{Approval, Incident, Priority, Rfc, RfcCategory, RfcStatus, Risk, stable_hash};

/// One rule of the change policy. All conditions that are given must hold; a list condition
/// holds when any of its entries matches. A rule with no condition matches every incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name of the rule, shown on the RFC; unique in the file.
    pub name: String,
    /// Incident priorities the rule applies to, e.g. `["P1", "P2"]`. Default: any.
    #[serde(default)]
    pub priorities: Vec<Priority>,
    /// Services the rule applies to: the root-cause service or any failing service of the
    /// incident must be one of them. Default: any.
    #[serde(default)]
    pub services: Vec<String>,
    /// Alert names the rule applies to: any alert of the incident. Default: any.
    #[serde(default)]
    pub alert_names: Vec<String>,
    /// `emergency`, `standard` (pre-approved, routine) or `normal`.
    pub category: RfcCategory,
    /// The proposed corrective action. `{service}` is replaced by the root-cause service (or the
    /// first failing service), `{incident}` by the incident id, `{alert}` by the first alert
    /// name, and `{owner}`, `{team}`, `{runbook}`, `{dashboard}`, `{oncall}` by what the service
    /// model says of that service (or `unknown`).
    pub action: String,
    /// `low`, `medium` or `high`. Default: `medium`.
    #[serde(default = "default_risk")]
    pub risk: Risk,
    /// `required` or `pre_approved`. Default: `pre_approved` for standard changes, `required`
    /// otherwise.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The runbook (`[[automation.runbooks]]` `name` in the settings file) that implements the
    /// RFC once approved, or at once when pre-approved. Default: none (people implement it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<String>,
    /// With `automation`: the incident must resolve within this time after the run for the RFC
    /// to be `successful`; otherwise it is `unsuccessful` and the incident is escalated one
    /// priority step. Default: `15m`.
    #[serde(default = "default_verify_within", with = "humantime_serde")]
    pub verify_within: Duration,
}

fn default_risk() -> Risk {
    Risk::Medium
}

fn default_verify_within() -> Duration {
    Duration::from_secs(15 * 60)
}

/// The change policy file: rules tried in order; the first that matches raises the RFC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ChangePolicy {
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Containment rules for security incidents, tried in order like `rules`.
    #[serde(default)]
    pub containment: Vec<containment::ContainmentRule>,
}

impl ChangePolicy {
    /// Reads and checks a change policy file; errors name the file and line.
    pub fn load(file: &Path) -> Result<ChangePolicy, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        ChangePolicy::from_str(&text, file)
    }

    pub fn from_str(text: &str, file: &Path) -> Result<ChangePolicy, ConfigError> {
        let p: ChangePolicy =
            toml::from_str(text).map_err(|e| crate::config::load::syntax_error(file, text, &e))?;
        let mut names = BTreeSet::new();
        for r in &p.rules {
            let invalid = |message: String| ConfigError::Invalid {
                file: file.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.contains(&format!("\"{}\"", r.name)))
                    .map(|i| i + 1)
                    .or_else(|| line_of(text, "rules.name")),
                key: format!("rules[{}]", r.name),
                message,
            };
            if r.name.trim().is_empty() {
                return Err(invalid("has an empty name".into()));
            }
            if !names.insert(r.name.as_str()) {
                return Err(invalid(
                    "is defined twice; rule names must be unique".into(),
                ));
            }
            if r.action.trim().is_empty() {
                return Err(invalid("has an empty action".into()));
            }
            if r.automation.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return Err(invalid(
                    "has an empty automation; name a runbook or leave it out".into(),
                ));
            }
            if r.automation.is_some() && r.verify_within.is_zero() {
                return Err(invalid(
                    "has verify_within = 0; give the incident time to resolve".into(),
                ));
            }
        }
        containment::validate(&p.containment, text, file)?;
        Ok(p)
    }

    /// The containment RFC of the first `[[containment]]` rule that security incident
    /// `incident` meets, if any.
    pub fn containment(&self, incident: &Incident) -> Option<Rfc> {
        match self.raiser(incident)? {
            (_, Raiser::Containment(r, c)) => Some(r.propose(incident, c)),
            (_, Raiser::Rule(_)) => None,
        }
    }

    /// The first rule that `incident` meets, if any.
    pub fn matching(&self, incident: &Incident) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(incident))
    }

    /// The rule that raises an RFC for `incident` (a containment rule for a security incident)
    /// and that RFC's id, found without making the RFC: every version of an incident meets its
    /// rule again, and only the first raises the RFC.
    pub fn raiser<'a>(&'a self, incident: &'a Incident) -> Option<(String, Raiser<'a>)> {
        match incident.security {
            Some(_) => self.containment.iter().find_map(|r| {
                let c = r.contains(incident)?;
                Some((r.rfc_id(incident), Raiser::Containment(r, c)))
            }),
            None => self
                .matching(incident)
                .map(|r| (r.rfc_id(incident), Raiser::Rule(r))),
        }
    }
}

/// A rule that raises an RFC: see [`ChangePolicy::raiser`]. A containment rule comes with
/// what it contains, so the RFC is made without reading the incident again.
#[derive(Debug, Clone, Copy)]
pub enum Raiser<'a> {
    Rule(&'a Rule),
    Containment(&'a containment::ContainmentRule, containment::Contained<'a>),
}

/// `template` with every `{name}` that `value` knows replaced by its value, in one pass: a
/// value is never read again for placeholders (an alert named `{owner}` stays as named).
/// Braces around a name `value` does not know are kept as written.
fn fill<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' => match value(&after[..close]) {
                Some(v) => {
                    out.push_str(v);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..open + close + 2]);
                    rest = &after[close + 1..];
                }
            },
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What `{service}` stands for when an incident has no service.
const NO_SERVICE: &str = "unknown service";

/// The service an RFC for `incident` is about: its root cause, or its first failing service.
pub fn service_of(incident: &Incident) -> Option<&str> {
    incident
        .root_cause
        .as_ref()
        .map(|r| r.service.as_str())
        .or_else(|| incident.failing_services.first().map(String::as_str))
}

impl Rule {
    pub fn matches(&self, i: &Incident) -> bool {
        let root = i.root_cause.as_ref().map(|r| r.service.as_str());
        (self.priorities.is_empty() || self.priorities.contains(&i.priority))
            && (self.services.is_empty()
                || self
                    .services
                    .iter()
                    .any(|s| Some(s.as_str()) == root || i.failing_services.iter().any(|f| f == s)))
            && (self.alert_names.is_empty()
                || i.alerts
                    .iter()
                    .any(|a| self.alert_names.iter().any(|n| **n == *a.name)))
    }

    /// The id of the RFC this rule proposes for `incident`. It depends only on the incident
    /// id, the rule name and the service it acts on, so replays and restarts give the same
    /// RFC, and a root cause that moves to another service gets an RFC of its own.
    pub fn rfc_id(&self, incident: &Incident) -> String {
        let service = service_of(incident).unwrap_or(NO_SERVICE);
        format!(
            "RFC-{}",
            &stable_hash(&[&incident.id, &self.name, service])[..12]
        )
    }

    /// The RFC this rule proposes for `incident` (its id is [`Rule::rfc_id`]).
    pub fn propose(&self, incident: &Incident) -> Rfc {
        let target = service_of(incident).map(str::to_owned);
        let service = target.as_deref().unwrap_or(NO_SERVICE);
        let alert = incident.alerts.first().map_or("", |a| &*a.name);
        let context = incident.context.iter().find(|c| c.service == service);
        let known = |f: fn(&crate::model::ServiceContext) -> &Option<String>| {
            Some(context.and_then(|c| f(c).as_deref()).unwrap_or("unknown"))
        };
        let action = fill(&self.action, |name| match name {
            "service" => Some(service),
            "incident" => Some(&incident.id),
            "alert" => Some(alert),
            "owner" => known(|c| &c.owner),
            "team" => known(|c| &c.team),
            "runbook" => known(|c| &c.runbook),
            "dashboard" => known(|c| &c.dashboard),
            "oncall" => known(|c| &c.oncall),
            _ => None,
        });
        // The CIs of the cause, not of its symptoms.
        let cis: BTreeSet<String> = incident
            .alerts
            .iter()
            .filter(|a| a.symptom_of.is_none())
            .filter_map(|a| a.ci.as_deref().map(str::to_owned))
            .collect();
        let approval = self.approval.unwrap_or(match self.category {
            RfcCategory::Standard => Approval::PreApproved,
            _ => Approval::Required,
        });
        Rfc {
            id: self.rfc_id(incident),
            version: 1,
            incident_id: incident.id.clone(),
            rule: self.name.clone(),
            category: self.category,
            action,
            service: target,
            cis: cis.into_iter().collect(),
            services: incident.failing_services.clone(),
            risk: self.risk,
            approval,
            // Pre-approved (standard) changes too start as proposed: their approval is the
            // policy's (`lifecycle::approval`), not a decision.
            status: RfcStatus::Proposed,
            reason: None,
            priority: incident.priority,
            created_at: incident.updated_at,
            updated_at: None,
            decision: None,
            containment: None,
            automation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_rejects_duplicates_with_line() {
        let ok = "[[rules]]\nname = \"a\"\npriorities = [\"P1\"]\ncategory = \"emergency\"\naction = \"restart {service}\"\n";
        let p = ChangePolicy::from_str(ok, Path::new("p.toml")).unwrap();
        assert_eq!(p.rules[0].priorities, [Priority::P1]);
        let dup = format!("{ok}[[rules]]\nname = \"a\"\ncategory = \"normal\"\naction = \"x\"\n");
        let e = ChangePolicy::from_str(&dup, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml:2: `rules[a]` is defined twice"),
            "{e}"
        );
        let bad = "[[rules]]\nname = \"a\"\ncategory = \"urgent\"\naction = \"x\"\n";
        let e = ChangePolicy::from_str(bad, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:3:"), "{e}");
    }

    #[test]
    fn fills_an_action_in_one_pass() {
        let value = |name: &str| match name {
            "service" => Some("api"),
            // A value that looks like a placeholder is written as it is, not filled again.
            "alert" => Some("{service} down"),
            _ => None,
        };
        assert_eq!(fill("restart {service}", value), "restart api");
        assert_eq!(
            fill("{alert} on {service}: {service}", value),
            "{service} down on api: api"
        );
        // Unknown names, unclosed and doubled braces are kept as written.
        assert_eq!(fill("{nope} {service", value), "{nope} {service");
        assert_eq!(fill("{{service}} {}", value), "{api} {}");
        assert_eq!(fill("", value), "");
        assert_eq!(fill("é{service}é", value), "éapié");
    }
}
