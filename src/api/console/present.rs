//! The view's incidents, RFCs and service model turned into what the console's templates show:
//! texts, ordered lists, classes. Pure, so the console's rules (who sees what, most urgent
//! first, what a filter matches) are tested without a browser.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{Incident, IncidentStatus, Priority, Rfc, RfcStatus, ServiceState, Status};
use crate::pipeline::view::ViewData;
use crate::topology::Requires;

/// A time for people: ISO for `console.js` (which shows it in the viewer's time zone, with "5
/// min ago"), and a UTC text for when scripts do not run.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub iso: String,
    pub text: String,
}

pub fn when(t: DateTime<Utc>) -> When {
    When {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text: t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// A whole amount with thousands separators: `12,400`.
pub fn money(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `P1` → `p1`, the class that colours it (the text stays, so colour is never alone).
pub fn priority_class(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "p1",
        Priority::P2 => "p2",
        Priority::P3 => "p3",
        Priority::P4 => "p4",
    }
}

pub fn state_class(s: ServiceState) -> &'static str {
    s.as_str()
}

/// A list shown in a cell: the first `n` names, then `+k`.
fn names(list: &[String], n: usize) -> String {
    if list.is_empty() {
        return "—".into();
    }
    let mut s = list.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > n {
        s.push_str(&format!(" +{}", list.len() - n));
    }
    s
}

/// The board's filters, as the form sends them (anything unknown means "any").
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BoardQuery {
    /// `open` (default), `resolved`, `closed`, `all`.
    pub status: Option<String>,
    /// `P1` … `P4`.
    pub priority: Option<String>,
    pub capability: Option<String>,
    /// `operational` or `security`.
    pub category: Option<String>,
    /// Words that must all appear (id, title, services, capabilities, root cause, alerts,
    /// acknowledged-by), any case.
    pub q: Option<String>,
}

impl BoardQuery {
    fn status(&self) -> Option<IncidentStatus> {
        match self.status.as_deref().unwrap_or("open") {
            "resolved" => Some(IncidentStatus::Resolved),
            "closed" => Some(IncidentStatus::Closed),
            "all" => None,
            _ => Some(IncidentStatus::Open),
        }
    }

    /// Whether `i` passes every filter.
    pub fn matches(&self, i: &Incident) -> bool {
        if self.status().is_some_and(|s| s != i.status) {
            return false;
        }
        if let Some(p) = self
            .priority
            .as_deref()
            .and_then(|p| p.parse::<Priority>().ok())
            && p != i.priority
        {
            return false;
        }
        if let Some(c) = self.capability.as_deref().filter(|c| !c.is_empty())
            && !i.capabilities.iter().any(|x| x == c)
        {
            return false;
        }
        match self.category.as_deref() {
            Some("security") if i.security.is_none() => return false,
            Some("operational") if i.security.is_some() => return false,
            _ => {}
        }
        let words: Vec<String> = self
            .q
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .take(8)
            .map(str::to_lowercase)
            .collect();
        words.is_empty() || {
            let hay = haystack(i);
            words.iter().all(|w| hay.contains(w.as_str()))
        }
    }

    /// The value of filter `name` as the form should show it.
    pub fn value(&self, name: &str) -> &str {
        let v = match name {
            "status" => &self.status,
            "priority" => &self.priority,
            "capability" => &self.capability,
            "category" => &self.category,
            _ => &self.q,
        };
        v.as_deref()
            .unwrap_or(if name == "status" { "open" } else { "" })
    }
}

/// What the text search looks through, lowercased.
fn haystack(i: &Incident) -> String {
    let mut s = format!("{} {}", i.id, i.title);
    for x in i.services.iter().chain(&i.capabilities) {
        s.push(' ');
        s.push_str(x);
    }
    if let Some(rc) = &i.root_cause {
        s.push(' ');
        s.push_str(&rc.service);
    }
    for a in &i.alerts {
        s.push(' ');
        s.push_str(&a.name);
    }
    if let Some(by) = &i.acknowledged_by {
        s.push(' ');
        s.push_str(by);
    }
    s.to_lowercase()
}

/// One incident on the board.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub priority: &'static str,
    pub priority_class: &'static str,
    pub status: &'static str,
    pub security: bool,
    pub root_cause: String,
    pub services: String,
    pub capabilities: String,
    pub revenue: String,
    pub opened: When,
    pub acknowledged_by: Option<String>,
}

/// The board: the matching incidents, most urgent first.
#[derive(Debug, Clone, Default)]
pub struct Board {
    pub rows: Vec<Row>,
    /// How many matched (rows holds at most [`BOARD_ROWS`]).
    pub matched: usize,
    /// Open incidents per priority, P1 first (of those the viewer may see).
    pub open: Vec<(&'static str, usize)>,
}

/// Most rows the board shows.
pub const BOARD_ROWS: usize = 500;

/// Most urgent first: priority, then revenue at risk, then newest, then id.
pub fn urgency(a: &Incident, b: &Incident) -> std::cmp::Ordering {
    a.priority
        .cmp(&b.priority)
        .then(
            b.impact
                .revenue_at_risk_per_minute
                .total_cmp(&a.impact.revenue_at_risk_per_minute),
        )
        .then(b.opened_at.cmp(&a.opened_at))
        .then(a.id.cmp(&b.id))
}

pub fn board(v: &ViewData, q: &BoardQuery, sees_security: bool) -> Board {
    let visible = |i: &&Incident| sees_security || i.security.is_none();
    let mut matching: Vec<&Incident> = v
        .incidents
        .values()
        .filter(visible)
        .filter(|i| q.matches(i))
        .collect();
    matching.sort_by(|a, b| urgency(a, b));
    let mut open = [0usize; 4];
    for i in v.incidents.values().filter(visible) {
        if i.status == IncidentStatus::Open {
            open[i.priority as usize] += 1;
        }
    }
    Board {
        matched: matching.len(),
        rows: matching.into_iter().take(BOARD_ROWS).map(row).collect(),
        open: Priority::ALL
            .iter()
            .map(|p| (p.as_str(), open[*p as usize]))
            .collect(),
    }
}

fn row(i: &Incident) -> Row {
    Row {
        id: i.id.clone(),
        version: i.version,
        title: i.title.clone(),
        priority: i.priority.as_str(),
        priority_class: priority_class(i.priority),
        status: i.status.as_str(),
        security: i.security.is_some(),
        root_cause: i
            .root_cause
            .as_ref()
            .map_or("—".into(), |r| r.service.clone()),
        services: names(&i.services, 4),
        capabilities: names(&i.capabilities, 3),
        revenue: money(i.impact.revenue_at_risk_per_minute),
        opened: when(i.opened_at),
        acknowledged_by: i.acknowledged_by.clone(),
    }
}

/// An RFC as the incident and security pages show it.
#[derive(Debug, Clone)]
pub struct RfcView {
    pub id: String,
    pub version: u32,
    pub category: &'static str,
    pub action: String,
    pub risk: &'static str,
    /// Its lifecycle status (`proposed`, `approved`, … `withdrawn`), or `pre-approved` for a
    /// pre-approved RFC not run yet.
    pub status: &'static str,
    pub decision: Option<DecisionView>,
    pub containment: Option<String>,
    /// Its automation: the runbook and what happened.
    pub run: Option<String>,
    /// Waiting for a decision.
    pub open: bool,
    pub created: When,
}

#[derive(Debug, Clone)]
pub struct DecisionView {
    pub status: &'static str,
    pub by: String,
    pub at: When,
    pub comment: Option<String>,
}

pub fn rfc(r: &Rfc) -> RfcView {
    let decision = r.decision.as_ref().map(|d| DecisionView {
        status: d.status.as_str(),
        by: d.by.clone(),
        at: when(d.at),
        comment: d.comment.clone(),
    });
    let required = r.approval == crate::model::Approval::Required;
    let proposed = r.status == RfcStatus::Proposed;
    let run = r.automation.as_ref().map(|run| {
        let mut s = format!("runbook {}", run.runbook);
        if run.dry_run {
            s.push_str(" (dry run)");
        }
        if let Some(c) = &run.call {
            s.push_str(&format!(": {c}"));
        }
        if let Some(why) = &run.reason {
            s.push_str(&format!(" — {why}"));
        }
        s
    });
    RfcView {
        id: r.id.clone(),
        version: r.version,
        category: r.category.as_str(),
        action: r.action.clone(),
        risk: r.risk.as_str(),
        status: if proposed && !required {
            "pre-approved"
        } else {
            r.status.as_str()
        },
        open: proposed && required && decision.is_none(),
        decision,
        containment: r
            .containment
            .as_ref()
            .map(|c| format!("{} {}", c.action.as_str(), c.targets.join(", "))),
        run,
        created: when(r.created_at),
    }
}

/// One service in a capability's dependency tree.
#[derive(Debug, Clone)]
pub struct TreeRow {
    /// Indentation class `d0` … `d6`.
    pub depth: String,
    pub name: String,
    pub state: &'static str,
    pub health: String,
    /// One of its own alerts fires (not only a dependency).
    pub failing: bool,
    /// How many of its dependencies it needs, when not all (`any 1 of 2, 1 working`).
    pub redundancy: Option<String>,
}

/// A capability on the business view.
#[derive(Debug, Clone)]
pub struct CapabilityCard {
    pub name: String,
    pub description: String,
    pub criticality: &'static str,
    pub state: &'static str,
    pub health: String,
    pub revenue_at_risk: String,
    pub revenue: String,
    pub users_affected: String,
    pub users: String,
    pub open_incidents: usize,
    pub tree: Vec<TreeRow>,
}

/// Deepest level of a dependency tree shown, and most rows per capability.
const TREE_DEPTH: usize = 6;
const TREE_ROWS: usize = 200;

/// Every capability, worst first, with its services as a dependency tree.
pub fn business(v: &ViewData) -> Vec<CapabilityCard> {
    let eval = v.evaluation();
    let topo = &v.topology;
    let mut own: BTreeMap<&str, ()> = BTreeMap::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for i in v.incidents.values() {
        if i.status != IncidentStatus::Open {
            continue;
        }
        for c in &i.capabilities {
            *open.entry(c.as_str()).or_default() += 1;
        }
        if i.security.is_some() {
            continue;
        }
        for a in i.alerts.iter().filter(|a| a.status == Status::Firing) {
            if let Some(s) = &a.service {
                own.insert(&**s, ());
            }
        }
    }
    let mut cards: Vec<(f64, CapabilityCard)> = topo
        .capabilities()
        .iter()
        .map(|(name, cap)| {
            let hurt = eval.capabilities.iter().find(|c| &c.capability == name);
            let health = hurt.map_or(100.0, |c| c.health);
            let mut tree = Vec::new();
            for s in topo.delivered_by(name) {
                grow(v, &eval, &own, s, 0, &mut tree);
            }
            let card = CapabilityCard {
                name: name.clone(),
                description: cap.description.clone(),
                criticality: cap.criticality.as_str(),
                state: hurt.map_or(ServiceState::Up, |c| c.state).as_str(),
                health: format!("{health:.0}"),
                revenue_at_risk: money(hurt.map_or(0.0, |c| c.revenue_at_risk_per_minute)),
                revenue: money(cap.revenue_per_minute),
                users_affected: money(hurt.map_or(0, |c| c.users_affected) as f64),
                users: money(cap.users as f64),
                open_incidents: open.get(name.as_str()).copied().unwrap_or(0),
                tree,
            };
            (health, card)
        })
        .collect();
    cards.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
    cards.into_iter().map(|(_, c)| c).collect()
}

fn grow(
    v: &ViewData,
    eval: &crate::impact::Evaluation,
    own: &BTreeMap<&str, ()>,
    name: &str,
    depth: usize,
    out: &mut Vec<TreeRow>,
) {
    if out.len() >= TREE_ROWS {
        return;
    }
    let Some(def) = v.topology.service(name) else {
        return;
    };
    let health = eval.service_health(name);
    let redundancy = match def.requires {
        Requires::All => None,
        Requires::AtLeast(k) => {
            let working = def
                .depends_on
                .iter()
                .filter(|d| eval.service_health(d) > 0.0)
                .count();
            Some(format!(
                "needs {} of {}, {working} working",
                if k == 1 {
                    "any 1".to_string()
                } else {
                    k.to_string()
                },
                def.depends_on.len()
            ))
        }
    };
    out.push(TreeRow {
        depth: format!("d{}", depth.min(TREE_DEPTH)),
        name: name.to_string(),
        state: ServiceState::of(health).as_str(),
        health: format!("{health:.0}"),
        failing: own.contains_key(name),
        redundancy,
    });
    if depth < TREE_DEPTH {
        for d in &def.depends_on {
            grow(v, eval, own, d, depth + 1, out);
        }
    }
}

/// A security incident on the security view.
#[derive(Debug, Clone)]
pub struct SecurityRow {
    pub id: String,
    pub title: String,
    pub priority: &'static str,
    pub priority_class: &'static str,
    pub status: &'static str,
    pub opened: When,
    /// `TA0001 Initial Access`, in kill-chain order.
    pub stages: Vec<String>,
    /// (kind, values).
    pub entities: Vec<(&'static str, String)>,
    /// (tool, detections).
    pub tools: Vec<(String, u64)>,
    pub containment: Vec<RfcView>,
}

/// The security incidents (open and resolved; closed ones with `all`), most urgent first.
pub fn security(v: &ViewData, all: bool) -> Vec<SecurityRow> {
    let mut list: Vec<&Incident> = v
        .incidents
        .values()
        .filter(|i| i.security.is_some() && (all || i.status != IncidentStatus::Closed))
        .collect();
    list.sort_by(|a, b| urgency(a, b));
    list.into_iter()
        .take(BOARD_ROWS)
        .map(|i| security_row(v, i))
        .collect()
}

pub fn security_row(v: &ViewData, i: &Incident) -> SecurityRow {
    let sec = i.security.clone().unwrap_or_default();
    let mut stages = sec.stages.clone();
    stages.sort_by_key(|s| s.order);
    let e = &sec.entities;
    let entities: Vec<(&'static str, String)> = [
        ("hosts", &e.hosts),
        ("users", &e.users),
        ("source addresses", &e.source_ips),
        ("addresses", &e.ips),
        ("containers", &e.containers),
        ("processes", &e.processes),
    ]
    .into_iter()
    .filter(|(_, l)| !l.is_empty())
    .map(|(k, l)| (k, names(l, 8)))
    .collect();
    let mut tools: BTreeMap<String, u64> = BTreeMap::new();
    for a in &i.alerts {
        *tools.entry(a.source.to_string()).or_default() += a.count;
    }
    SecurityRow {
        id: i.id.clone(),
        title: i.title.clone(),
        priority: i.priority.as_str(),
        priority_class: priority_class(i.priority),
        status: i.status.as_str(),
        opened: when(i.opened_at),
        stages: stages
            .iter()
            .map(|s| format!("{} {}", s.tactic_id, s.tactic))
            .collect(),
        entities,
        tools: tools.into_iter().collect(),
        containment: v
            .changes_of(&i.id)
            .into_iter()
            .filter(|r| r.containment.is_some())
            .map(rfc)
            .collect(),
    }
}
