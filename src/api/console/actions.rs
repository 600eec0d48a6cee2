//! What people do in the console: sign in and out; acknowledge an incident, approve or reject
//! an RFC, silence an alert (problem actions are in [`super::problems`]). Actions go through the same checks and control records as the
//! API (`super::super::control`), so the engine that owns the incident applies them whichever
//! instance took the request. Each needs the operator role and the page's CSRF token; the
//! actor is the signed-in name (or, when the console is open, the name typed in the form).
//!
//! Answers: for htmx, a short message fragment (with the real status code); for a plain form
//! post, a redirect back to the incident page on success, or the message page.

use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use serde::Deserialize;

use super::auth::{CSRF_COOKIE, CSRF_HEADER, Principal, SESSION_COOKIE, csrf_ok};
use super::pages::{Chrome, render};
use super::{Console, Csrf, Page, cookie};
use crate::api::write::Answer;
use crate::model::DecisionStatus;

/// Longest silence the console creates.
const MAX_SILENCE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    ok: bool,
    text: String,
    back: String,
}

#[derive(Template)]
#[template(path = "flash.html")]
struct Flash {
    ok: bool,
    text: String,
}

/// The answer to an action: `text`, with `status`; `back` is where a plain form post returns.
#[allow(clippy::too_many_arguments)]
fn answer(
    console: &Console,
    who: &Principal,
    csrf: &Csrf,
    headers: &HeaderMap,
    status: StatusCode,
    text: String,
    back: String,
) -> Response {
    let ok = status.is_success();
    if headers.contains_key("hx-request") {
        return (status, render(&Flash { ok, text })).into_response();
    }
    if ok {
        return Redirect::to(&back).into_response();
    }
    let chrome = Chrome::new(console, who, csrf, Page::Incident, "Action");
    (
        status,
        render(&MessagePage {
            chrome,
            ok,
            text,
            back,
        }),
    )
        .into_response()
}

/// Why an action may not go on, if it may not.
fn refuse(
    who: &Principal,
    jar: &CookieJar,
    headers: &HeaderMap,
    form_csrf: &str,
) -> Option<(StatusCode, String)> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(Some(form_csrf).filter(|s| !s.is_empty()));
    if !csrf_ok(headers, jar.get(CSRF_COOKIE).map(|c| c.value()), given) {
        return Some((
            StatusCode::FORBIDDEN,
            "this form did not come from a console page of this site (or is from an old page); reload the page and try again".into(),
        ));
    }
    if !who.can_act() {
        return Some((
            StatusCode::FORBIDDEN,
            format!(
                "{} has the {} role, which only reads; acting (acknowledge, silence, decide, problems) needs the operator role",
                who.name,
                who.role.as_str()
            ),
        ));
    }
    None
}

/// Whether incident `id` (or the incident of RFC `id`) is a security incident `who` may not
/// see (`http.restrict_security`): then they may not act on it either.
fn hidden(console: &Console, who: &Principal, id: &str) -> bool {
    if console.sees_security(who) {
        return false;
    }
    let v = console.view.read();
    let incident = v.changes.get(id).map_or(id, |r| r.incident_id.as_str());
    v.changes.get(id).is_some_and(|r| r.containment.is_some())
        || v.incidents
            .get(incident)
            .is_some_and(|i| i.security.is_some())
}

fn not_found() -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, "no such incident or RFC".into())
}

/// Who acts: the signed-in name, or the name typed into an open console's form.
fn actor(who: &Principal, typed: &Option<String>) -> Result<String, (StatusCode, String)> {
    if who.signed_in {
        return Ok(who.name.clone());
    }
    match typed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(name) => Ok(name.to_string()),
        None => Err((
            StatusCode::BAD_REQUEST,
            "say who you are: the name field is empty".into(),
        )),
    }
}

/// The message of the write API's answer: its error, or `done`.
fn outcome(a: &Answer, done: String) -> (StatusCode, String) {
    if a.status.is_success() {
        (StatusCode::ACCEPTED, done)
    } else {
        let e = a.body["error"].as_str().unwrap_or("the action failed");
        (a.status, e.to_string())
    }
}

/// What every action's handler has: who asks, and the request's cookies and headers. An
/// extractor, so each handler takes it as one argument.
#[derive(Debug)]
pub struct Asker {
    pub(super) console: Console,
    pub(super) who: Principal,
    csrf: Csrf,
    jar: CookieJar,
    headers: HeaderMap,
}

impl FromRequestParts<Console> for Asker {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let Extension(who) = Extension::<Principal>::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let Extension(csrf) = Extension::<Csrf>::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Asker {
            console: console.clone(),
            who,
            csrf,
            jar: CookieJar::from_headers(&parts.headers),
            headers: parts.headers.clone(),
        })
    }
}

/// Why an action did not go on, or the write API's answer and what to say when it succeeded.
pub(super) type Done = Result<(Answer, String), (StatusCode, String)>;

impl Asker {
    /// Runs `op` as the actor (the signed-in name, or the name typed into `typed`) once the
    /// form's CSRF token (`form_csrf`) and the asker's role pass; answers with what `op` did,
    /// or why not, returning to `back`. Writes are counted as the API's.
    pub(super) async fn act<Fut>(
        &self,
        form_csrf: &str,
        typed: &Option<String>,
        back: String,
        op: impl FnOnce(String) -> Fut,
    ) -> Response
    where
        Fut: std::future::Future<Output = Done>,
    {
        let checked = refuse(&self.who, &self.jar, &self.headers, form_csrf)
            .map_or_else(|| actor(&self.who, typed), Err);
        let (status, text) = match checked {
            Err(e) => e,
            Ok(by) => {
                let start = Instant::now();
                match op(by).await {
                    Ok((a, done)) => {
                        self.console.write.count(&a, start);
                        outcome(&a, done)
                    }
                    Err(e) => e,
                }
            }
        };
        answer(
            &self.console,
            &self.who,
            &self.csrf,
            &self.headers,
            status,
            text,
            back,
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct AckForm {
    #[serde(default)]
    csrf: String,
    by: Option<String>,
}

/// `POST /incidents/{id}/ack`.
pub async fn ack(
    asker: Asker,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<AckForm>,
) -> Response {
    let (console, who) = (&asker.console, &asker.who);
    let back = format!("/incidents/{id}");
    asker
        .act(&f.csrf, &f.by, back, |by| async move {
            if hidden(console, who, &id) {
                return Err(not_found());
            }
            let a = console.write.ack(&id, &by).await;
            Ok((
                a,
                format!("acknowledged as {by}; the new version appears here in a moment"),
            ))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
    by: Option<String>,
    /// The incident page to return to.
    #[serde(default)]
    incident: String,
}

/// `POST /changes/{id}/decision`: approve or reject an RFC.
pub async fn decide(
    asker: Asker,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<DecisionForm>,
) -> Response {
    let (console, who) = (&asker.console, &asker.who);
    let decision = match f.decision.as_str() {
        "approved" => Some(DecisionStatus::Approved),
        "rejected" => Some(DecisionStatus::Rejected),
        _ => None,
    };
    asker
        .act(&f.csrf, &f.by, back_to(&f.incident), |by| async move {
            if hidden(console, who, &id) {
                return Err(not_found());
            }
            let Some(decision) = decision else {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "the decision must be `approved` or `rejected`".into(),
                ));
            };
            let comment = Some(f.comment.trim().to_string()).filter(|c| !c.is_empty());
            let a = console.write.decision(&id, decision, &by, comment).await;
            let done = format!(
                "{id} {} by {by}; its next version appears here in a moment",
                decision.as_str()
            );
            Ok((a, done))
        })
        .await
}

/// The incident page for `id`, or the board for anything that is not an incident id.
fn back_to(id: &str) -> String {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("/incidents/{id}")
    } else {
        "/".into()
    }
}

#[derive(Debug, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    csrf: String,
    matchers: String,
    /// `2h`, `30m`, … (at most 30 days).
    duration: String,
    #[serde(default)]
    comment: String,
    by: Option<String>,
    #[serde(default)]
    incident: String,
}

/// `POST /silences/new`: a silence from now for the given duration.
pub async fn silence(asker: Asker, axum::Form(f): axum::Form<SilenceForm>) -> Response {
    let console = &asker.console;
    let duration = humantime::parse_duration(f.duration.trim())
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_SILENCE)
        .and_then(|d| chrono::Duration::from_std(d).ok());
    asker
        .act(&f.csrf, &f.by, back_to(&f.incident), |by| async move {
            let Some(d) = duration else {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "the duration must be like `2h` or `30m`, at most 30 days".into(),
                ));
            };
            let now = chrono::Utc::now();
            let s = crate::suppress::Silence {
                id: String::new(),
                matchers: f.matchers.trim().into(),
                starts_at: now,
                ends_at: now + d,
                created_by: by.clone(),
                comment: f.comment.trim().to_string(),
            };
            let a = console.write.silence(s).await;
            let id = a.body["id"].as_str().unwrap_or("").to_string();
            let done = format!("silence {id} created by {by} for {}", f.duration.trim());
            Ok((a, done))
        })
        .await
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

/// `GET /login`.
pub async fn login_page(
    State(console): State<Console>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if console.access.is_none() {
        return Redirect::to(&next).into_response();
    }
    render(&LoginPage {
        csrf: csrf.0,
        next,
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    token: String,
    next: Option<String>,
}

/// `POST /login`: the token becomes a session cookie.
pub async fn login(
    State(console): State<Console>,
    Extension(csrf): Extension<Csrf>,
    jar: CookieJar,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let Some(access) = &console.access else {
        return Redirect::to(&next).into_response();
    };
    let page = |status: StatusCode, error: &str| {
        (
            status,
            render(&LoginPage {
                csrf: csrf.0.clone(),
                next: next.clone(),
                error: Some(error.to_string()),
            }),
        )
            .into_response()
    };
    if !csrf_ok(
        &headers,
        jar.get(CSRF_COOKIE).map(|c| c.value()),
        Some(&f.csrf),
    ) {
        return page(
            StatusCode::FORBIDDEN,
            "this sign-in form is from an old page; try again",
        );
    }
    let Some(who) = access.by_token(&f.token) else {
        tracing::info!("console sign-in with an unknown token refused");
        return page(StatusCode::UNAUTHORIZED, "that token is not known");
    };
    let Some(value) = access.session_for(&who, chrono::Utc::now()) else {
        return page(StatusCode::UNAUTHORIZED, "that token is not known");
    };
    tracing::info!(name = %who.name, role = who.role.as_str(), "signed in to the console");
    // A browser-session cookie: it ends when the browser closes, or when the expiry signed
    // into it (http.session_lifetime) passes, whichever is first.
    let c = cookie(SESSION_COOKIE, value, &headers);
    (jar.add(c), Redirect::to(&next)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: the session cookie is removed.
pub async fn logout(
    jar: CookieJar,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LogoutForm>,
) -> Response {
    if !csrf_ok(
        &headers,
        jar.get(CSRF_COOKIE).map(|c| c.value()),
        Some(&f.csrf),
    ) {
        return (
            StatusCode::FORBIDDEN,
            "reload the page and sign out again\n",
        )
            .into_response();
    }
    (
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/login"),
    )
        .into_response()
}
