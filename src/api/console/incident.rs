//! The incident page (`/incidents/{id}`): the incident as it stands, who owns its failing
//! services and where to look (runbooks, dashboards, on-call, from the service model and the
//! alerts' annotations), its problem and workaround, its alerts (labels, annotations,
//! `symptom_of`) with a silence form pre-filled from each, the root cause and its
//! reason, related changes, impact per capability, its RFCs with the decision forms, the
//! security section, and the timeline of every version. `/incidents/{id}/live` is its live
//! part, reloaded when a new version arrives.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Principal;
use super::pages::{Chrome, render};
use super::present::{self, RfcView, SecurityRow, When, when};
use super::{Console, Csrf, Page};
use crate::model::{Incident, Status};
use crate::pipeline::view::ViewData;

/// An alert of the incident.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub name: String,
    pub service: String,
    pub ci: String,
    pub source: String,
    pub severity: &'static str,
    pub firing: bool,
    pub flapping: bool,
    pub count: u64,
    pub first_seen: When,
    pub last_seen: When,
    pub labels: Vec<(String, String)>,
    /// What the source said of it (`summary`, `description`, `runbook_url` …).
    pub annotations: Vec<(String, String)>,
    pub symptom_of: Option<String>,
    /// The matchers a silence of exactly this alert needs.
    pub matchers: String,
    /// A stable id for the silence form's fields (kept across live reloads).
    pub key: String,
}

/// One capability the incident hurts.
#[derive(Debug, Clone)]
pub struct CapabilityHurt {
    pub name: String,
    pub state: &'static str,
    pub health: String,
    pub revenue: String,
    pub users: String,
}

/// A change shortly before the incident.
#[derive(Debug, Clone)]
pub struct ChangeView {
    pub name: String,
    pub on: String,
    pub source: String,
    pub at: When,
    pub before: String,
}

/// Who owns a failing service and where to look, from the service model.
#[derive(Debug, Clone)]
pub struct ContextView {
    pub service: String,
    /// Owner and team, as one line ("—" when the model names neither).
    pub owners: String,
    /// Runbook, dashboard and on-call links the model gives.
    pub links: Vec<(&'static str, String)>,
}

/// A timeline entry, newest first on the page.
#[derive(Debug, Clone)]
pub struct EntryView {
    pub at: When,
    pub record: String,
    pub version: u32,
    pub what: Vec<String>,
}

/// The incident as the page shows it.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub priority: &'static str,
    pub priority_class: &'static str,
    pub severity: &'static str,
    pub status: &'static str,
    pub open: bool,
    pub opened: When,
    pub updated: When,
    pub resolved: Option<When>,
    pub acknowledged_by: Option<String>,
    pub acknowledged: Option<When>,
    pub merged_into: Option<String>,
    pub root_cause: Option<(String, String)>,
    pub failing_services: String,
    pub services: String,
    pub capabilities: String,
    pub criticality: String,
    pub health: String,
    pub revenue: String,
    pub users: String,
    pub outage: String,
    pub cost: String,
    pub hurt: Vec<CapabilityHurt>,
    pub changes: Vec<ChangeView>,
    pub alerts: Vec<AlertView>,
    pub links: Vec<(String, String)>,
    pub context: Vec<ContextView>,
    /// The problem this incident is one more occurrence of, and its workaround.
    pub problem: Option<String>,
    pub workaround: Option<String>,
    pub rfcs: Vec<RfcView>,
    pub security: Option<SecurityRow>,
    pub timeline: Vec<EntryView>,
    /// Timeline entries no longer kept (`http.view.max_timeline`).
    pub dropped: u64,
}

/// A matcher value in Alertmanager's syntax: quoted, with `"` and `\` escaped.
fn quoted(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The matchers of a silence of exactly `a`: its name, CI and labels (not its severity, so a
/// change of severity does not end the silence).
pub fn silence_matchers(a: &crate::model::AlertRef) -> String {
    let mut parts = vec![format!("alertname={}", quoted(&a.name))];
    if let Some(ci) = &a.ci {
        parts.push(format!("ci={}", quoted(ci)));
    }
    for (k, v) in a.labels.iter() {
        if k == "alertname" || k == "severity" || k == "ci" {
            continue;
        }
        let bare = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '/'));
        let name = if bare { k.to_string() } else { quoted(k) };
        parts.push(format!("{name}={}", quoted(v)));
    }
    format!("{{{}}}", parts.join(", "))
}

/// Links among the alerts' annotations and labels: values that are web addresses (runbook,
/// dashboard, …), annotations first.
fn links(i: &Incident) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in &i.alerts {
        for (k, v) in a.annotations.iter().chain(a.labels.iter()) {
            if (v.starts_with("https://") || v.starts_with("http://"))
                && !out.iter().any(|(_, u)| u == v)
            {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out.truncate(20);
    out
}

fn context(c: &crate::model::ServiceContext) -> ContextView {
    let owners = match (&c.owner, &c.team) {
        (Some(o), Some(t)) if o != t => format!("{o} ({t})"),
        (Some(o), _) => o.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "—".into(),
    };
    let links = [
        ("runbook", &c.runbook),
        ("dashboard", &c.dashboard),
        ("on-call", &c.oncall),
    ]
    .into_iter()
    .filter_map(|(label, url)| url.clone().map(|u| (label, u)))
    // Only web addresses become links (a model entry cannot smuggle in a script URL).
    .filter(|(_, u)| u.starts_with("https://") || u.starts_with("http://"))
    .collect();
    ContextView {
        service: c.service.clone(),
        owners,
        links,
    }
}

pub fn view(v: &ViewData, i: &Incident) -> IncidentView {
    let opt = |s: &Option<std::sync::Arc<str>>| s.as_deref().unwrap_or("—").to_owned();
    let alerts = i
        .alerts
        .iter()
        .map(|a| AlertView {
            name: a.name.to_string(),
            service: opt(&a.service),
            ci: opt(&a.ci),
            source: a.source.to_string(),
            severity: a.severity.as_str(),
            firing: a.status == Status::Firing,
            flapping: a.flapping,
            count: a.count,
            first_seen: when(a.first_seen),
            last_seen: when(a.last_seen),
            labels: a
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: a
                .annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            symptom_of: a.symptom_of.as_deref().map(str::to_owned),
            matchers: silence_matchers(a),
            key: a
                .fingerprint
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(40)
                .collect(),
        })
        .collect();
    let hurt = i
        .impact
        .capabilities
        .iter()
        .map(|c| CapabilityHurt {
            name: c.capability.clone(),
            state: c.state.as_str(),
            health: format!("{:.0}", c.health),
            revenue: present::money(c.revenue_at_risk_per_minute),
            users: present::money(c.users_affected as f64),
        })
        .collect();
    let changes = i
        .related_changes
        .iter()
        .map(|r| ChangeView {
            name: r.change.name.clone(),
            on: r
                .change
                .ci
                .clone()
                .or_else(|| r.change.service.clone())
                .unwrap_or_else(|| "—".into()),
            source: r.change.source.clone(),
            at: when(r.change.time),
            before: humantime::format_duration(std::time::Duration::from_secs(
                r.seconds_before_incident.max(0) as u64,
            ))
            .to_string(),
        })
        .collect();
    let (timeline, dropped) = v.timeline(&i.id).map_or((Vec::new(), 0), |t| {
        let entries = t
            .entries
            .iter()
            .rev()
            .map(|e| EntryView {
                at: when(e.at),
                record: e.record.clone(),
                version: e.version,
                what: e.what.iter().map(ToString::to_string).collect(),
            })
            .collect();
        (entries, t.dropped)
    });
    let list = |l: &[String]| {
        if l.is_empty() {
            "—".into()
        } else {
            l.join(", ")
        }
    };
    IncidentView {
        id: i.id.clone(),
        version: i.version,
        title: i.title.clone(),
        priority: i.priority.as_str(),
        priority_class: present::priority_class(i.priority),
        severity: i.severity.as_str(),
        status: i.status.as_str(),
        open: i.status != crate::model::IncidentStatus::Closed,
        opened: when(i.opened_at),
        updated: when(i.updated_at),
        resolved: i.resolved_at.map(when),
        acknowledged_by: i.acknowledged_by.clone(),
        acknowledged: i.acknowledged_at.map(when),
        merged_into: i.merged_into.clone(),
        root_cause: i
            .root_cause
            .as_ref()
            .map(|r| (r.service.clone(), r.reason.clone())),
        failing_services: list(&i.failing_services),
        services: list(&i.services),
        capabilities: list(&i.capabilities),
        criticality: i.impact.criticality.clone(),
        health: format!("{:.0}", i.impact.health),
        revenue: present::money(i.impact.revenue_at_risk_per_minute),
        users: present::money(i.impact.users_affected as f64),
        outage: humantime::format_duration(std::time::Duration::from_secs(
            i.impact.outage_seconds.max(0) as u64,
        ))
        .to_string(),
        cost: present::money(i.impact.cost),
        hurt,
        changes,
        alerts,
        links: links(i),
        context: i.context.iter().map(context).collect(),
        problem: i.problem.clone(),
        workaround: i.workaround.clone(),
        rfcs: v.changes_of(&i.id).into_iter().map(present::rfc).collect(),
        security: i.security.as_ref().map(|_| present::security_row(v, i)),
        timeline,
        dropped,
    }
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    inc: IncidentView,
    can_act: bool,
    /// The console is open (no tokens): forms ask who acts.
    ask_name: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "incident_live.html")]
struct IncidentLive {
    inc: IncidentView,
    can_act: bool,
    ask_name: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "missing.html")]
struct Missing {
    chrome: Chrome,
    id: String,
}

fn find(console: &Console, who: &Principal, id: &str) -> Option<IncidentView> {
    let v = console.view.read();
    let i = v.incidents.get(id)?;
    if i.security.is_some() && !console.sees_security(who) {
        return None;
    }
    Some(view(&v, i))
}

/// `GET /incidents/{id}`.
pub async fn page(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<String>,
) -> Response {
    let Some(inc) = find(&console, &who, &id) else {
        let chrome = Chrome::new(&console, &who, &csrf, Page::Incident, "Not found");
        return (StatusCode::NOT_FOUND, render(&Missing { chrome, id })).into_response();
    };
    let title = format!("{} {}", inc.priority, inc.title);
    render(&IncidentPage {
        chrome: Chrome::new(&console, &who, &csrf, Page::Incident, &title),
        inc,
        can_act: who.can_act(),
        ask_name: !who.signed_in,
        csrf: csrf.0.clone(),
    })
}

/// `GET /incidents/{id}/live`: the page's live part.
pub async fn live(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<String>,
) -> Response {
    match find(&console, &who, &id) {
        Some(inc) => render(&IncidentLive {
            inc,
            can_act: who.can_act(),
            ask_name: !who.signed_in,
            csrf: csrf.0,
        }),
        None => (StatusCode::NOT_FOUND, "no such incident\n").into_response(),
    }
}
