//! The HTTP server: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (the pipeline is connected and consuming) and, when given, HTTP ingest and the
//! control endpoints (see [`WriteApi`]) and the read API for incidents, services and
//! capabilities (see [`super::read`]), behind the bearer tokens of `http.token` and
//! `[[http.tokens]]`; and the console at `/` (see [`super::console`]).
//!
//! Slow clients cannot hold it: a connection must send its request headers within
//! `http.header_timeout` (hyper closes it otherwise, kept-alive idle connections too), a body
//! must arrive within `http.body_timeout` (else `408`), and at most `http.max_connections`
//! connections are served at once (more wait in the listen queue).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::console::auth::{Access, Principal, SeesSecurity};
use super::write::{DELIVERY_TIMEOUT, QUEUE_TIMEOUT, WriteApi};
use crate::pipeline::View;
use crate::telemetry::shell::HttpConnectionFailed;
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
    /// `http.header_timeout`, `http.body_timeout`, `http.max_connections`.
    pub limits: Limits,
}

/// The server's limits against slow and numerous clients (see `[http]`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&crate::config::HttpConfig::default())
    }
}

impl From<&crate::config::HttpConfig> for Limits {
    fn from(c: &crate::config::HttpConfig) -> Self {
        Limits {
            header_timeout: c.header_timeout,
            body_timeout: c.body_timeout,
            max_connections: c.max_connections,
        }
    }
}

/// How long connections still open at shutdown may finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the endpoints on `listener` until `shutdown` is cancelled: `/metrics` and the probes,
/// and what `endpoints` holds (the `/api/v1` endpoints behind the tokens, the console). On
/// shutdown, requests in progress are answered first (for at most a few seconds; the console's
/// live streams end).
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    endpoints: Endpoints,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = endpoints.limits.clone();
    let app = router(metrics.clone(), health, endpoints, &shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        // A free connection slot first: past the limit, new connections wait in the kernel's
        // listen queue rather than cost memory here.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for connections to close.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().map_request(
            |r: axum::http::Request<hyper::body::Incoming>| r.map(axum::body::Body::new),
        ));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let metrics = metrics.clone();
        tokio::spawn(async move {
            metrics.http_connection(true);
            if let Err(e) = conn.await {
                metrics.emit(HttpConnectionFailed {
                    header_timeout: e.is_timeout(),
                    error: &e,
                });
            }
            metrics.http_connection(false);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("HTTP connections still open at shutdown are dropped");
        }
    }
    Ok(())
}

fn router(
    metrics: Metrics,
    health: Health,
    endpoints: Endpoints,
    shutdown: &CancellationToken,
) -> Router {
    let Endpoints {
        write,
        view,
        access,
        console,
        limits,
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
    // A backstop for every request: the body within `body_timeout` (the handlers answer 408
    // with a reason themselves), then the broker's acknowledgement. It times the answer's
    // start, not a streamed body (the console's live pages).
    app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.body_timeout + DELIVERY_TIMEOUT + QUEUE_TIMEOUT,
    ))
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

/// `200 ready`, or `503` with one line per reason (`not ready: <key>: <reason>`).
async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_ready() {
        return (StatusCode::OK, "ready\n".to_string());
    }
    let mut body = String::new();
    for r in s.health.reasons() {
        body.push_str("not ready: ");
        body.push_str(&r);
        body.push('\n');
    }
    if body.is_empty() {
        // Became ready between the two reads.
        return (StatusCode::OK, "ready\n".to_string());
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}
