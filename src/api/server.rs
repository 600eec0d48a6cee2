//! The HTTP server: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (the pipeline is connected and consuming) and, when given, HTTP ingest and the
//! control endpoints (see [`WriteApi`]) and the read API for incidents, services and
//! capabilities (see [`super::read`]), behind the bearer tokens of `http.token` and
//! `[[http.tokens]]`; and the console at `/` (see [`super::console`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::console::auth::{Access, Principal, SeesSecurity};
use super::write::WriteApi;
use crate::pipeline::View;
use crate::telemetry::{Health, Metrics};

#[derive(Debug, Clone)]
struct AppState {
    metrics: Metrics,
    health: Health,
}

/// What the server serves besides `/metrics` and the probes.
#[derive(Debug, Default)]
pub struct Endpoints {
    /// HTTP ingest and the control endpoints.
    pub write: Option<WriteApi>,
    /// The read API (and the console's data).
    pub view: Option<View>,
    /// The tokens of `http.token` and `[[http.tokens]]`; `None` leaves the API and console open.
    pub access: Option<Arc<Access>>,
    /// Serve the console at `/` (with `write` and `view`).
    pub console: bool,
}

/// Serves the endpoints on `listener` until `shutdown` is cancelled: `/metrics` and the probes,
/// and what `endpoints` holds (the `/api/v1` endpoints behind the tokens, the console). On
/// shutdown, requests in progress are answered first (the console's live streams end).
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    endpoints: Endpoints,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let Endpoints {
        write,
        view,
        access,
        console,
    } = endpoints;
    let mut api = Router::new();
    if let Some(write) = &write {
        api = api.merge(super::write_routes(write.clone()));
    }
    if let Some(view) = &view {
        api = api.merge(super::read::router(view.clone()));
    }
    let api = api.layer(axum::middleware::from_fn_with_state(
        access.clone(),
        require_token,
    ));
    let mut app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
        .merge(api);
    if console && let (Some(write), Some(view)) = (write, view) {
        app = app.merge(super::console::router(super::console::Console {
            view,
            write,
            access,
            shutdown: shutdown.clone(),
        }));
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Lets a request through when its `Authorization: Bearer` token is one of `access` (else 401),
/// and its role allows it: reading takes any role, writing (`POST`) the operator role (else
/// 403). The holder goes along with the request, for the actor of actions and what it may see.
/// Without tokens, everyone is let through.
async fn require_token(
    State(access): State<Option<Arc<Access>>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(access) = access else {
        request.extensions_mut().insert(Principal::anonymous());
        request.extensions_mut().insert(SeesSecurity(true));
        return next.run(request).await;
    };
    let Some(who) = access.by_bearer(request.headers()) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "this API needs `Authorization: Bearer <token>` with the token of http.token or one of http.tokens",
                "reason": "unauthorized",
            })),
        )
            .into_response();
    };
    if request.method() != axum::http::Method::GET && !who.can_act() {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": format!("the token of `{}` has the {} role, which only reads; writing needs the operator role", who.name, who.role.as_str()),
                "reason": "forbidden",
            })),
        )
            .into_response();
    }
    request
        .extensions_mut()
        .insert(SeesSecurity(access.sees_security(&who)));
    request.extensions_mut().insert(who);
    next.run(request).await
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not yet connected to Kafka and consuming\n",
        )
    }
}
