//! The console's problems page (`/problems`): the recurring causes d2c found (or people opened),
//! most urgent first, with their incidents, outage and cost; an operator opens one by hand,
//! marks one a known error with its workaround, or resolves it. Actions go through the same
//! checks and control records as `POST /api/v1/problems`, `…/{id}/known-error` and
//! `…/{id}/resolve`, so they work from any instance.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::actions::Asker;
use super::auth::Principal;
use super::pages::{Chrome, render};
use super::present::{self, When, when};
use super::{Console, Csrf, Page};
use crate::api::control::OpenProblemBody;
use crate::model::{Priority, Problem, ProblemStatus};
use crate::pipeline::view::ViewData;

/// Most problems one page lists.
const MAX_ROWS: usize = 200;

/// A problem as the page shows it.
#[derive(Debug, Clone)]
pub struct ProblemRow {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub priority_class: &'static str,
    pub service: String,
    /// The alert names it matches, or "any alert".
    pub alerts: String,
    pub count: u64,
    /// Its most recent incidents (the page links each).
    pub incidents: Vec<String>,
    pub first: Option<When>,
    pub last: Option<When>,
    pub outage: String,
    pub cost: String,
    pub opened_by: String,
    pub workaround: Option<String>,
    /// Who made it a known error, when.
    pub known_error: Option<(String, When)>,
    /// Who resolved it, when.
    pub resolved: Option<(String, When)>,
    /// Not resolved yet: actions apply.
    pub open: bool,
}

/// Which problems the page lists: `open` (open and known errors, the default) or `all`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProblemsQuery {
    pub status: Option<String>,
}

impl ProblemsQuery {
    fn all(&self) -> bool {
        self.status.as_deref() == Some("all")
    }
}

fn row(p: &Problem) -> ProblemRow {
    let by_at = |by: &Option<String>, at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| (by.clone().unwrap_or_else(|| "—".into()), when(at)))
    };
    ProblemRow {
        id: p.id.clone(),
        version: p.version,
        title: p.title.clone(),
        status: p.status.as_str(),
        priority: p.priority.as_str(),
        priority_class: present::priority_class(p.priority),
        service: p.service.clone(),
        alerts: if p.alert_names.is_empty() {
            "any alert".into()
        } else {
            p.alert_names.join(", ")
        },
        count: p.incident_count,
        incidents: p.incidents.iter().rev().map(|i| i.to_string()).collect(),
        first: p.first_occurrence.map(when),
        last: p.last_occurrence.map(when),
        outage: humantime::format_duration(std::time::Duration::from_secs(
            p.outage_seconds.max(0) as u64
        ))
        .to_string(),
        cost: present::money(p.cost),
        opened_by: p.opened_by.clone(),
        workaround: p.workaround.clone(),
        known_error: by_at(&p.known_error_by, p.known_error_at),
        resolved: by_at(&p.resolved_by, p.resolved_at),
        open: p.status != ProblemStatus::Resolved,
    }
}

/// The problems `q` asks for: unresolved first, then the most urgent, the most costly, the
/// most recent; at most [`MAX_ROWS`].
pub fn problems(v: &ViewData, q: &ProblemsQuery) -> Vec<ProblemRow> {
    let mut list: Vec<&Problem> = v
        .problems
        .values()
        .filter(|p| q.all() || p.status != ProblemStatus::Resolved)
        .collect();
    list.sort_by(|a, b| {
        let resolved = |p: &Problem| p.status == ProblemStatus::Resolved;
        resolved(a)
            .cmp(&resolved(b))
            .then(a.priority.cmp(&b.priority))
            .then(b.cost.total_cmp(&a.cost))
            .then(b.updated_at.cmp(&a.updated_at))
            .then(a.id.cmp(&b.id))
    });
    list.into_iter().take(MAX_ROWS).map(row).collect()
}

#[derive(Template)]
#[template(path = "problems.html")]
struct ProblemsPage {
    chrome: Chrome,
    q: ProblemsQuery,
    /// The services of the model, for the form that opens a problem.
    services: Vec<String>,
    rows: Vec<ProblemRow>,
    can_act: bool,
    ask_name: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "problems_live.html")]
struct ProblemsLive {
    q: ProblemsQuery,
    rows: Vec<ProblemRow>,
    can_act: bool,
    ask_name: bool,
    csrf: String,
}

/// `GET /problems`.
pub async fn page(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<ProblemsQuery>,
) -> Response {
    let (rows, services) = {
        let v = console.view.read();
        let services = v.topology.service_names().map(String::from).collect();
        (problems(&v, &q), services)
    };
    render(&ProblemsPage {
        chrome: Chrome::new(&console, &who, &csrf, Page::Problems, "Problems"),
        q,
        services,
        rows,
        can_act: who.can_act(),
        ask_name: !who.signed_in,
        csrf: csrf.0,
    })
}

/// `GET /problems/live`: the list, for its live reloads.
pub async fn live(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<ProblemsQuery>,
) -> Response {
    let rows = problems(&console.view.read(), &q);
    render(&ProblemsLive {
        q,
        rows,
        can_act: who.can_act(),
        ask_name: !who.signed_in,
        csrf: csrf.0,
    })
}

#[derive(Debug, Deserialize)]
pub struct KnownErrorForm {
    #[serde(default)]
    csrf: String,
    workaround: String,
    #[serde(default)]
    comment: String,
    by: Option<String>,
}

fn comment(c: &str) -> Option<String> {
    Some(c.trim().to_string()).filter(|c| !c.is_empty())
}

/// `POST /problems/{id}/known-error`: the problem becomes a known error with a workaround.
pub async fn known_error(
    asker: Asker,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<KnownErrorForm>,
) -> Response {
    let console = &asker.console;
    asker
        .act(&f.csrf, &f.by, "/problems".into(), |by| async move {
            known(console, &id)?;
            let a = console
                .write
                .mark_known_error(&id, &f.workaround, &by, comment(&f.comment))
                .await;
            let done =
                format!("{id} marked a known error by {by}; its next version appears in a moment");
            Ok((a, done))
        })
        .await
}

/// Whether the view holds problem `id` (else: a 404 to say).
fn known(console: &Console, id: &str) -> Result<(), (StatusCode, String)> {
    if console.view.read().problems.contains_key(id) {
        Ok(())
    } else {
        Err((StatusCode::NOT_FOUND, "no such problem".into()))
    }
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    by: Option<String>,
}

/// `POST /problems/{id}/resolve`.
pub async fn resolve(
    asker: Asker,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<ResolveForm>,
) -> Response {
    let console = &asker.console;
    asker
        .act(&f.csrf, &f.by, "/problems".into(), |by| async move {
            known(console, &id)?;
            let a = console
                .write
                .close_problem(&id, &by, comment(&f.comment))
                .await;
            let done = format!("{id} resolved by {by}; its next version appears in a moment");
            Ok((a, done))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    title: String,
    service: String,
    /// Alert names, separated by commas (empty: any alert of the service).
    #[serde(default)]
    alert_names: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    comment: String,
    by: Option<String>,
}

/// `POST /problems/new`: a problem opened by hand.
pub async fn open(asker: Asker, axum::Form(f): axum::Form<OpenForm>) -> Response {
    let console = &asker.console;
    let priority = match f.priority.as_str() {
        "P1" => Priority::P1,
        "P2" => Priority::P2,
        "P4" => Priority::P4,
        _ => Priority::P3,
    };
    let alert_names = f
        .alert_names
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    asker
        .act(&f.csrf, &f.by, "/problems".into(), |by| async move {
            let body = OpenProblemBody {
                title: f.title,
                service: f.service,
                by: by.clone(),
                alert_names,
                incidents: Vec::new(),
                priority: Some(priority),
                comment: comment(&f.comment),
            };
            let a = console.write.new_problem(body).await;
            let id = a.body["problem"].as_str().unwrap_or("").to_string();
            let done = format!("problem {id} opened by {by}; it appears here in a moment");
            Ok((a, done))
        })
        .await
}
