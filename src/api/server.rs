//! The HTTP server: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (the pipeline is connected and consuming, else 503 with the reasons) and, when
//! given, HTTP ingest and the control endpoints (see [`WriteApi`]) and the read API for
//! incidents, services and capabilities (see [`super::read`]), behind the bearer token of
//! `http.token`.
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

use super::write::{DELIVERY_TIMEOUT, QUEUE_TIMEOUT, WriteApi};
use crate::config::secret::Secret;
use crate::pipeline::View;
use crate::telemetry::shell::HttpConnectionFailed;
use crate::telemetry::{Health, Metrics};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
struct AppState {
    metrics: Metrics,
    health: Health,
}

/// What the server serves beside the probes and metrics, and its limits.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// `POST /api/v1/events/{format}`, acknowledgements, silences, decisions.
    pub ingest: Option<WriteApi>,
    /// The read API (`GET /api/v1/incidents`, `/services`, `/capabilities`).
    pub view: Option<View>,
    /// The bearer token every `/api/v1` request must carry.
    pub token: Option<Secret>,
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
        let c = crate::config::HttpConfig::default();
        Limits::from(&c)
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

/// Serves the endpoints on `listener` until `shutdown` is cancelled. On shutdown, requests in
/// progress are answered first (for at most a few seconds).
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = options.limits.clone();
    let app = router(metrics.clone(), health, options);
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

fn router(metrics: Metrics, health: Health, options: ServeOptions) -> Router {
    let limits = options.limits;
    let mut api = Router::new();
    if let Some(ingest) = options.ingest {
        api = api.merge(super::write_routes(ingest));
    }
    if let Some(view) = options.view {
        api = api.merge(super::read::router(view));
    }
    if let Some(token) = options.token {
        let digest: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        api = api.layer(axum::middleware::from_fn_with_state(
            Arc::new(digest),
            require_token,
        ));
    }
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
        .merge(api)
        // A backstop for every request: the body within `body_timeout` (the handlers answer 408
        // with a reason themselves), then the broker's acknowledgement.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.body_timeout + DELIVERY_TIMEOUT + QUEUE_TIMEOUT,
        ))
}

/// Lets a request through when its `Authorization: Bearer` token is `http.token` (compared by
/// SHA-256 digest, so the comparison takes the same time however much of it matches); else 401.
async fn require_token(
    State(digest): State<Arc<[u8; 32]>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let ok = given.is_some_and(|t| {
        let d: [u8; 32] = Sha256::digest(t.trim().as_bytes()).into();
        d == *digest
    });
    if ok {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "this API needs `Authorization: Bearer <token>` with the token of http.token",
                "reason": "unauthorized",
            })),
        )
            .into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
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

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_without_regard_to_case() {
        for v in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR t0k"] {
            assert_eq!(bearer_token(v), Some("t0k"), "{v}");
        }
        assert_eq!(bearer_token("Basic t0k"), None);
        assert_eq!(bearer_token("Bearert0k"), None);
    }
}
