//! The console's pages: the board (`/`), the business view (`/business`), the security view
//! (`/security`), and the fragments their live parts reload when `/live` says something
//! changed. The incident page is in [`super::incident`].

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::auth::Principal;
use super::present::{self, Board, BoardQuery, CapabilityCard, SecurityRow};
use super::{Console, Csrf, Page};

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page shows around its content: navigation, who is signed in, the CSRF token.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    /// Who is signed in (empty when the console is open).
    pub who: String,
    pub role: &'static str,
    pub signed_in: bool,
}

impl Chrome {
    pub fn new(console: &Console, who: &Principal, csrf: &Csrf, page: Page, title: &str) -> Chrome {
        let mut nav = vec![
            NavItem {
                href: "/",
                label: "Board",
                current: page == Page::Board,
            },
            NavItem {
                href: "/business",
                label: "Business",
                current: page == Page::Business,
            },
        ];
        if console.sees_security(who) {
            nav.push(NavItem {
                href: "/security",
                label: "Security",
                current: page == Page::Security,
            });
        }
        nav.push(NavItem {
            href: "/problems",
            label: "Problems",
            current: page == Page::Problems,
        });
        Chrome {
            title: title.to_string(),
            csrf: csrf.0.clone(),
            nav,
            who: who.name.clone(),
            role: who.role.as_str(),
            signed_in: who.signed_in,
        }
    }
}

/// Renders `t`, or a 500 saying the page could not be made.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "console page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; see the d2c log\n",
            )
                .into_response()
        }
    }
}

/// A page that loads itself again (see `require_session`).
pub fn reload_page() -> Response {
    render(&Reload)
}

#[derive(Template)]
#[template(path = "reload.html")]
struct Reload;

/// The filter choices of the board.
#[derive(Debug, Clone)]
pub struct Choices {
    pub statuses: Vec<(&'static str, &'static str)>,
    pub priorities: Vec<&'static str>,
    pub capabilities: Vec<String>,
    pub categories: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    chrome: Chrome,
    q: BoardQuery,
    choices: Choices,
    board: Board,
}

#[derive(Template)]
#[template(path = "board_rows.html")]
struct BoardRows {
    board: Board,
}

fn board_data(console: &Console, who: &Principal, q: &BoardQuery) -> Board {
    let v = console.view.read();
    present::board(&v, q, console.sees_security(who))
}

/// `GET /`: the board.
pub async fn board(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<BoardQuery>,
) -> Response {
    let board = board_data(&console, &who, &q);
    let mut categories = vec![("", "any category"), ("operational", "operational")];
    if console.sees_security(&who) {
        categories.push(("security", "security"));
    }
    let choices = Choices {
        statuses: vec![
            ("open", "open"),
            ("resolved", "resolved"),
            ("closed", "closed"),
            ("all", "any status"),
        ],
        priorities: vec!["P1", "P2", "P3", "P4"],
        capabilities: console
            .view
            .read()
            .topology
            .capability_names()
            .map(String::from)
            .collect(),
        categories,
    };
    render(&BoardPage {
        chrome: Chrome::new(&console, &who, &csrf, Page::Board, "Incidents"),
        q,
        choices,
        board,
    })
}

/// `GET /board/rows`: the board's table, for its live reloads and filter changes.
pub async fn board_rows(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Query(q): Query<BoardQuery>,
) -> Response {
    render(&BoardRows {
        board: board_data(&console, &who, &q),
    })
}

#[derive(Template)]
#[template(path = "business.html")]
struct BusinessPage {
    chrome: Chrome,
    cards: Vec<CapabilityCard>,
}

#[derive(Template)]
#[template(path = "business_live.html")]
struct BusinessLive {
    cards: Vec<CapabilityCard>,
}

/// `GET /business`: capabilities, their health and cost, and their services as a tree.
pub async fn business(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
) -> Response {
    let cards = present::business(&console.view.read());
    render(&BusinessPage {
        chrome: Chrome::new(&console, &who, &csrf, Page::Business, "Business impact"),
        cards,
    })
}

pub async fn business_live(State(console): State<Console>) -> Response {
    render(&BusinessLive {
        cards: present::business(&console.view.read()),
    })
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    allowed: bool,
    rows: Vec<SecurityRow>,
}

#[derive(Template)]
#[template(path = "security_live.html")]
struct SecurityLive {
    allowed: bool,
    rows: Vec<SecurityRow>,
}

fn security_rows(console: &Console, who: &Principal) -> (bool, Vec<SecurityRow>) {
    if !console.sees_security(who) {
        return (false, Vec::new());
    }
    (true, present::security(&console.view.read(), false))
}

/// `GET /security`: security incidents with their ATT&CK stages, entities, tools and
/// containment RFCs.
pub async fn security(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
    Extension(csrf): Extension<Csrf>,
) -> Response {
    let (allowed, rows) = security_rows(&console, &who);
    let page = SecurityPage {
        chrome: Chrome::new(&console, &who, &csrf, Page::Security, "Security"),
        allowed,
        rows,
    };
    let status = if allowed {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    (status, render(&page)).into_response()
}

pub async fn security_live(
    State(console): State<Console>,
    Extension(who): Extension<Principal>,
) -> Response {
    let (allowed, rows) = security_rows(&console, &who);
    render(&SecurityLive { allowed, rows })
}
