//! The incident console, served by d2c at `/` on the HTTP listener: server-rendered HTML
//! (askama templates compiled into the binary) with htmx and its server-sent-events extension
//! (vendored in `assets/`, embedded too) for live updates. Nothing to build besides `cargo
//! build`, nothing to install beside the binary.
//!
//! - [`pages`]: the board, the business and security views (and the fragments their live
//!   parts reload); [`incident`]: the incident page; [`problems`]: the problems page and its
//!   actions (open by hand, known error with a workaround, resolve);
//! - [`actions`]: sign-in and out; acknowledge, decide on an RFC, silence an alert — written
//!   through the same control records as the API, so they work from any instance;
//! - [`live`]: `/live`, the server-sent events that tell open pages what changed;
//! - [`present`]: the view's records turned into what the templates show;
//! - [`auth`]: tokens, roles, the session cookie and the CSRF check (the API uses it too).

pub mod actions;
pub mod auth;
pub mod incident;
pub mod live;
pub mod pages;
pub mod present;
pub mod problems;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use tokio_util::sync::CancellationToken;

use self::auth::{Access, CSRF_COOKIE, Principal, SESSION_COOKIE};
use super::write::WriteApi;
use crate::pipeline::View;

/// What the console's handlers share.
#[derive(Debug, Clone)]
pub struct Console {
    pub view: View,
    pub write: WriteApi,
    /// `None`: no token configured, everyone may do everything.
    pub access: Option<Arc<Access>>,
    /// Ends the live streams, so the server can shut down.
    pub shutdown: CancellationToken,
}

impl Console {
    /// Whether `who` sees security incidents.
    pub fn sees_security(&self, who: &Principal) -> bool {
        self.access.as_ref().is_none_or(|a| a.sees_security(who))
    }
}

/// The pages of the navigation, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Board,
    Business,
    Security,
    Problems,
    Incident,
    SignIn,
}

/// Marks a page loaded again after a cross-site link (see `require_session`).
const RELOADED_COOKIE: &str = "d2c_reloaded";

/// The CSRF token of the request (the `d2c_csrf` cookie's value, or the one being set).
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

/// The console's routes, ready to be merged into the HTTP server's router.
pub fn router(console: Console) -> Router {
    let pages = Router::new()
        .route("/", get(pages::board))
        .route("/board/rows", get(pages::board_rows))
        .route("/incidents/{id}", get(incident::page))
        .route("/incidents/{id}/live", get(incident::live))
        .route("/business", get(pages::business))
        .route("/business/live", get(pages::business_live))
        .route("/security", get(pages::security))
        .route("/security/live", get(pages::security_live))
        .route("/problems", get(problems::page))
        .route("/problems/live", get(problems::live))
        .route("/problems/new", post(problems::open))
        .route("/problems/{id}/known-error", post(problems::known_error))
        .route("/problems/{id}/resolve", post(problems::resolve))
        .route("/live", get(live::stream))
        .route("/incidents/{id}/ack", post(actions::ack))
        .route("/changes/{id}/decision", post(actions::decide))
        .route("/silences/new", post(actions::silence))
        .route("/logout", post(actions::logout))
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(actions::login_page).post(actions::login))
        .merge(pages)
        .layer(axum::middleware::from_fn(guard))
        .route("/assets/{file}", get(asset))
        .with_state(console)
}

/// Whether the browser reached d2c over HTTPS (directly or through a proxy that says so), so
/// cookies can be marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A cookie of the console: HttpOnly, SameSite=Strict, for the whole site.
pub fn cookie(name: &'static str, value: String, headers: &HeaderMap) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_https(headers))
        .build()
}

/// Gives every console request a CSRF token (setting the `d2c_csrf` cookie when the browser
/// has none) and every answer the headers that keep it from being framed, sniffed or cached.
async fn guard(jar: CookieJar, mut request: Request, next: Next) -> Response {
    let existing = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(auth::new_csrf);
    let set = cookie(CSRF_COOKIE, token.clone(), request.headers());
    request.extensions_mut().insert(Csrf(token));
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if fresh && let Ok(v) = HeaderValue::from_str(&set.to_string()) {
        h.append(header::SET_COOKIE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lets a request to a console page through with who is asking: the holder of a valid session
/// cookie, or anyone when no token is configured. Otherwise: the sign-in page (a redirect to
/// it, or for htmx an `HX-Redirect`); the live stream and actions get 401.
async fn require_session(
    State(console): State<Console>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let who = match &console.access {
        None => Some(Principal::anonymous()),
        Some(access) => jar
            .get(SESSION_COOKIE)
            .and_then(|c| access.by_session(c.value(), chrono::Utc::now())),
    };
    if let Some(who) = who {
        request.extensions_mut().insert(who);
        return next.run(request).await;
    }
    let headers = request.headers();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let navigate = request.method() == axum::http::Method::GET
        && headers.get("hx-request").is_none()
        && request.uri().path() != "/live";
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if navigate && site == "cross-site" && jar.get(RELOADED_COOKIE).is_none() {
        // A link from another site (chat, ticket, mail): SameSite=Strict kept the session
        // cookie back. Loading the page again from here sends it. The short-lived marker
        // makes sure that happens once, whatever the browser says of the second request.
        let marker = Cookie::build((RELOADED_COOKIE, "1"))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(30))
            .build();
        return (jar.add(marker), pages::reload_page()).into_response();
    }
    let login = format!("/login?next={}", percent(&path));
    if navigate {
        return Redirect::to(&login).into_response();
    }
    let mut r = (
        StatusCode::UNAUTHORIZED,
        "sign in first: the session is missing or expired\n",
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&login) {
        r.headers_mut().insert("hx-redirect", v);
    }
    r
}

/// `s` with everything but unreserved URL characters and `/` percent-encoded.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The embedded static files.
const ASSETS: [(&str, &str, &str); 6] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/htmx.min.js"),
    ),
    (
        "sse.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/sse.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "htmx.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/htmx.LICENSE"),
    ),
    (
        "sse.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/sse.LICENSE"),
    ),
];

/// `GET /assets/{file}`: the same for everyone, so served without a session.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=300"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

#[cfg(test)]
mod tests;
