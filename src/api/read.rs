//! The read side of the HTTP API, for people and dashboards: `GET /api/v1/incidents` (filter by
//! status, priority, capability), `GET /api/v1/incidents/{id}` and its `/timeline`,
//! `GET /api/v1/services` (with state and health), `GET /api/v1/capabilities` (with health,
//! revenue at risk, users affected), `GET /api/v1/silences` and `GET /api/v1/suppressed` (what
//! is muted, and why), `GET /api/v1/problems` (filter by status) and `GET
//! /api/v1/problems/{id}`, `GET /api/v1/changes` (RFCs with their runs; filter by status and
//! incident) and `GET /api/v1/changes/{id}`, served from the [`View`]: incidents, RFCs and
//! problems of every instance, materialised from their topics; `GET /api/v1/topology/learned` (links
//! learned from history by this instance's engines). Security incidents (and their
//! RFCs) are left out for those who may not see them (`http.restrict_security`).

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::console::auth::SeesSecurity;
use crate::engine::SuppressedAlert;
use crate::model::{
    Incident, IncidentStatus, Priority, Problem, ProblemStatus, Rfc, RfcStatus, ServiceState,
};
use crate::pipeline::View;
use crate::pipeline::view::{MAX_SUPPRESSED_LISTED, ViewData};
use crate::suppress::{Silence, SilenceState};
use crate::topology::{Criticality, Requires};

/// The routes, ready to be merged into the HTTP server's router.
pub fn router(view: View) -> Router {
    Router::new()
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(one_incident))
        .route("/api/v1/incidents/{id}/timeline", get(timeline))
        .route("/api/v1/services", get(services))
        .route("/api/v1/capabilities", get(capabilities))
        .route("/api/v1/silences", get(silences))
        .route("/api/v1/suppressed", get(suppressed))
        .route("/api/v1/topology/learned", get(learned))
        .route("/api/v1/problems", get(list_problems))
        .route("/api/v1/problems/{id}", get(one_problem))
        .route("/api/v1/changes", get(list_changes))
        .route("/api/v1/changes/{id}", get(one_change))
        .with_state(view)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Query of `GET /api/v1/incidents`. Lists take comma-separated values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    /// `open`, `resolved`, `closed` (default: open and resolved).
    status: Option<String>,
    /// e.g. `P1,P2`.
    priority: Option<String>,
    /// Capabilities hurt.
    capability: Option<String>,
    /// Most incidents returned (default 100, at most 1000).
    limit: Option<usize>,
}

fn list<T>(
    value: &Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, String> {
    value
        .as_deref()
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(&parse)
                .collect()
        })
        .transpose()
}

fn status_of(s: &str) -> Result<IncidentStatus, String> {
    match s {
        "open" => Ok(IncidentStatus::Open),
        "resolved" => Ok(IncidentStatus::Resolved),
        "closed" => Ok(IncidentStatus::Closed),
        _ => Err(format!(
            "`{s}` is not a status to filter by; expected open, resolved or closed"
        )),
    }
}

/// Whether the asker may see incident `i` (`http.restrict_security`).
fn visible(i: &Incident, sees: &Option<Extension<SeesSecurity>>) -> bool {
    i.security.is_none() || sees.as_ref().is_none_or(|s| s.0.0)
}

async fn list_incidents(
    State(view): State<View>,
    sees: Option<Extension<SeesSecurity>>,
    query: Result<Query<IncidentQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{}; known parameters: status, priority, capability, limit",
                    e.body_text()
                ),
            );
        }
    };
    let filters = (|| {
        Ok::<_, String>((
            list(&q.status, status_of)?,
            list(&q.priority, |p| p.parse::<Priority>())?,
            list(&q.capability, |c| Ok(c.to_string()))?,
        ))
    })();
    let (statuses, priorities, caps) = match filters {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    let v = view.read();
    let default = [IncidentStatus::Open, IncidentStatus::Resolved];
    let statuses = statuses.unwrap_or_else(|| default.to_vec());
    let mut matching: Vec<&Incident> = v
        .incidents
        .values()
        .filter(|i| visible(i, &sees))
        .filter(|i| statuses.contains(&i.status))
        .filter(|i| priorities.as_ref().is_none_or(|p| p.contains(&i.priority)))
        .filter(|i| {
            caps.as_ref()
                .is_none_or(|c| i.capabilities.iter().any(|x| c.contains(x)))
        })
        .collect();
    // Most urgent first, then newest.
    matching.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.opened_at), &a.id).cmp(&(
            b.priority,
            std::cmp::Reverse(b.opened_at),
            &b.id,
        ))
    });
    let count = matching.len();
    matching.truncate(limit);
    axum::Json(json!({ "count": count, "incidents": matching })).into_response()
}

async fn one_incident(
    State(view): State<View>,
    sees: Option<Extension<SeesSecurity>>,
    Path(id): Path<String>,
) -> Response {
    match view.read().incidents.get(&id).filter(|i| visible(i, &sees)) {
        Some(i) => axum::Json(i).into_response(),
        None => not_found(&id),
    }
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no incident `{id}` in the view (it holds every incident on the incidents topic, up to http.view.max_incidents)"
        ),
    )
}

/// `GET /api/v1/incidents/{id}/timeline`: what each version of the incident (and of its RFCs)
/// changed, oldest first.
async fn timeline(
    State(view): State<View>,
    sees: Option<Extension<SeesSecurity>>,
    Path(id): Path<String>,
) -> Response {
    let v = view.read();
    if v.incidents.get(&id).is_none_or(|i| !visible(i, &sees)) {
        return not_found(&id);
    }
    match v.timeline(&id) {
        Some(t) => axum::Json(t).into_response(),
        None => not_found(&id),
    }
}

/// One service as `GET /api/v1/services` lists it.
#[derive(Debug, Serialize)]
struct ServiceView<'a> {
    service: &'a str,
    state: ServiceState,
    health: f64,
    depends_on: &'a [String],
    requires: Requires,
    capabilities: &'a [String],
    open_incidents: usize,
    /// Services linked to this one by learning (see `GET /api/v1/topology/learned`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    linked: Vec<LinkView<'a>>,
    /// Owner, team and links, when the model has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runbook: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oncall: Option<&'a str>,
}

/// A link of a service to another, as `GET /api/v1/services` lists it.
#[derive(Debug, Serialize)]
struct LinkView<'a> {
    service: &'a str,
    learned: bool,
}

/// `GET /api/v1/topology/learned`: the links learned from services whose alerts opened and
/// resolved together (`correlation.learn_after` times), which the model does not declare;
/// they group alerts like declared dependencies do.
async fn learned(State(view): State<View>) -> Response {
    let v = view.read();
    axum::Json(json!({ "count": v.learned.len(), "links": v.learned })).into_response()
}

async fn services(State(view): State<View>) -> Response {
    let v = view.read();
    let evaluation = v.evaluation();
    let open = open_counts(&v.incidents, |i| &i.services);
    let list: Vec<ServiceView> = v
        .topology
        .service_names()
        .filter_map(|name| {
            let def = v.topology.service(name)?;
            let health = evaluation.service_health(name);
            let linked = v
                .learned
                .iter()
                .filter_map(|l| match &l.services {
                    [a, b] if a == name => Some(b.as_str()),
                    [a, b] if b == name => Some(a.as_str()),
                    _ => None,
                })
                .map(|service| LinkView {
                    service,
                    learned: true,
                })
                .collect();
            Some(ServiceView {
                service: name,
                state: ServiceState::of(health),
                health: crate::impact::round2(health),
                depends_on: &def.depends_on,
                requires: def.requires,
                capabilities: &def.capabilities,
                open_incidents: open.get(name).copied().unwrap_or(0),
                linked,
                owner: def.owner.as_deref(),
                team: def.team.as_deref(),
                runbook: def.runbook.as_deref(),
                dashboard: def.dashboard.as_deref(),
                oncall: def.oncall.as_deref(),
            })
        })
        .collect();
    axum::Json(json!({ "services": list })).into_response()
}

/// One capability as `GET /api/v1/capabilities` lists it.
#[derive(Debug, Serialize)]
struct CapabilityView<'a> {
    capability: &'a str,
    description: &'a str,
    criticality: Criticality,
    state: ServiceState,
    health: f64,
    revenue_per_minute: f64,
    revenue_at_risk_per_minute: f64,
    users: u64,
    users_affected: u64,
    services: &'a [String],
    open_incidents: usize,
}

async fn capabilities(State(view): State<View>) -> Response {
    let v = view.read();
    let evaluation = v.evaluation();
    let open = open_counts(&v.incidents, |i| &i.capabilities);
    let list: Vec<CapabilityView> = v
        .topology
        .capabilities()
        .iter()
        .map(|(name, cap)| {
            let hurt = evaluation
                .capabilities
                .iter()
                .find(|c| &c.capability == name);
            CapabilityView {
                capability: name,
                description: &cap.description,
                criticality: cap.criticality,
                state: hurt.map_or(ServiceState::Up, |c| c.state),
                health: hurt.map_or(100.0, |c| c.health),
                revenue_per_minute: cap.revenue_per_minute,
                revenue_at_risk_per_minute: hurt.map_or(0.0, |c| c.revenue_at_risk_per_minute),
                users: cap.users,
                users_affected: hurt.map_or(0, |c| c.users_affected),
                services: v.topology.delivered_by(name),
                open_incidents: open.get(name.as_str()).copied().unwrap_or(0),
            }
        })
        .collect();
    axum::Json(json!({ "capabilities": list })).into_response()
}

/// One silence as `GET /api/v1/silences` lists it: the silence and its state now.
#[derive(Debug, Serialize)]
struct SilenceView<'a> {
    #[serde(flatten)]
    silence: &'a Silence,
    state: SilenceState,
}

async fn silences(State(view): State<View>) -> Response {
    let v = view.read();
    let now = chrono::Utc::now();
    let list: Vec<SilenceView> = v
        .silences
        .values()
        .map(|silence| SilenceView {
            silence,
            state: silence.state(now),
        })
        .filter(|s| s.state != SilenceState::Expired)
        .collect();
    axum::Json(json!({ "silences": list })).into_response()
}

/// Query of `GET /api/v1/suppressed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressedQuery {
    /// `silenced`, `maintenance`, `inhibited` (comma-separated; default: all).
    reason: Option<String>,
    /// Most alerts returned (default 100, at most 1000).
    limit: Option<usize>,
}

async fn suppressed(
    State(view): State<View>,
    query: Result<Query<SuppressedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{}; known parameters: reason, limit", e.body_text()),
            );
        }
    };
    let reasons = match list(&q.reason, |r| {
        crate::suppress::SuppressReason::ALL
            .into_iter()
            .find(|x| x.as_str() == r)
            .ok_or_else(|| {
                format!("`{r}` is not a reason; expected silenced, maintenance or inhibited")
            })
    }) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let v = view.read();
    let alerts: Vec<&SuppressedAlert> = v
        .suppressed
        .iter()
        .filter(|a| reasons.as_ref().is_none_or(|r| r.contains(&a.reason)))
        .take(q.limit.unwrap_or(100).min(MAX_SUPPRESSED_LISTED))
        .collect();
    axum::Json(json!({
        "remembered": v.suppressed_total,
        "alerts": alerts,
    }))
    .into_response()
}

/// Open incidents per name, for the names `of` an incident lists.
fn open_counts<'a>(
    incidents: &'a HashMap<String, Incident>,
    of: impl Fn(&'a Incident) -> &'a Vec<String>,
) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for i in incidents
        .values()
        .filter(|i| i.status == IncidentStatus::Open)
    {
        for name in of(i) {
            *counts.entry(name.as_str()).or_default() += 1;
        }
    }
    counts
}

/// Query of `GET /api/v1/problems` and `GET /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    /// Statuses, comma-separated (default: all).
    status: Option<String>,
    /// Most records returned (default 100, at most 1000).
    limit: Option<usize>,
}

/// The query, or why it is not one (for a 400).
fn status_query(
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusQuery, String> {
    query
        .map(|Query(q)| q)
        .map_err(|e| format!("{}; known parameters: status, limit", e.body_text()))
}

async fn list_problems(
    State(view): State<View>,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match status_query(query) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let statuses = match list(&q.status, |s| {
        ProblemStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a problem status; expected open, known_error or resolved")
            })
    }) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let v = view.read();
    let mut matching: Vec<&Problem> = v
        .problems
        .values()
        .filter(|p| statuses.as_ref().is_none_or(|s| s.contains(&p.status)))
        .collect();
    // Most urgent first, then the most recent occurrence.
    matching.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.last_occurrence), &a.id).cmp(&(
            b.priority,
            std::cmp::Reverse(b.last_occurrence),
            &b.id,
        ))
    });
    let count = matching.len();
    matching.truncate(q.limit.unwrap_or(100).min(1000));
    axum::Json(json!({ "count": count, "problems": matching })).into_response()
}

async fn one_problem(State(view): State<View>, Path(id): Path<String>) -> Response {
    match view.read().problems.get(&id) {
        Some(p) => axum::Json(p).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "no problem `{id}` in the view (it holds every problem on the problems topic, up to http.view.max_problems)"
            ),
        ),
    }
}

/// Query of `GET /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    /// Statuses, comma-separated (default: all).
    status: Option<String>,
    /// Only the RFCs of this incident.
    incident: Option<String>,
    /// Most RFCs returned (default 100, at most 1000).
    limit: Option<usize>,
}

/// Whether the asker may see RFC `r`: not a containment RFC or one of a security incident, for
/// those who may not see security incidents.
fn rfc_visible(v: &ViewData, r: &Rfc, sees: &Option<Extension<SeesSecurity>>) -> bool {
    sees.as_ref().is_none_or(|s| s.0.0)
        || (r.containment.is_none()
            && v.incidents
                .get(&r.incident_id)
                .is_none_or(|i| i.security.is_none()))
}

/// `GET /api/v1/changes?status=…&incident=INC-…`: the latest version of each RFC, newest first.
async fn list_changes(
    State(view): State<View>,
    sees: Option<Extension<SeesSecurity>>,
    query: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{}; known parameters: status, incident, limit",
                    e.body_text()
                ),
            );
        }
    };
    let statuses = match list(&q.status, |s| {
        RfcStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an RFC status"))
    }) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let v = view.read();
    let mut matching: Vec<&Rfc> = v
        .changes
        .values()
        .filter(|r| statuses.as_ref().is_none_or(|s| s.contains(&r.status)))
        .filter(|r| q.incident.as_ref().is_none_or(|i| &r.incident_id == i))
        .filter(|r| rfc_visible(&v, r, &sees))
        .collect();
    // Newest first.
    matching.sort_by(|a, b| {
        (std::cmp::Reverse(a.created_at), &a.id).cmp(&(std::cmp::Reverse(b.created_at), &b.id))
    });
    let count = matching.len();
    matching.truncate(q.limit.unwrap_or(100).min(1000));
    axum::Json(json!({ "count": count, "changes": matching })).into_response()
}

async fn one_change(
    State(view): State<View>,
    sees: Option<Extension<SeesSecurity>>,
    Path(id): Path<String>,
) -> Response {
    let v = view.read();
    match v.changes.get(&id).filter(|r| rfc_visible(&v, r, &sees)) {
        Some(r) => axum::Json(r).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "no RFC `{id}` in the view (it holds every RFC on the changes topic, up to http.view.max_changes)"
            ),
        ),
    }
}
