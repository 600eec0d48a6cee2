//! The HTTP server: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (the pipeline is connected and consuming) and, when given, HTTP ingest and the
//! control endpoints (see [`WriteApi`]) and the read API for incidents, services and
//! capabilities (see [`super::read`]), behind the bearer token of `http.token`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::write::WriteApi;
use crate::config::secret::Secret;
use crate::pipeline::View;
use crate::telemetry::{Health, Metrics};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
struct AppState {
    metrics: Metrics,
    health: Health,
}

/// Serves the endpoints on `listener` until `shutdown` is cancelled; `ingest` adds
/// `POST /api/v1/events/{format}` (and acknowledgements, silences), `view` the read API
/// (`GET /api/v1/incidents`, `/services`, `/capabilities`). On shutdown, requests in progress are answered first.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    ingest: Option<WriteApi>,
    view: Option<View>,
    token: Option<Secret>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut api = Router::new();
    if let Some(ingest) = ingest {
        api = api.merge(super::write_routes(ingest));
    }
    if let Some(view) = view {
        api = api.merge(super::read::router(view));
    }
    if let Some(token) = token {
        let digest: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        api = api.layer(axum::middleware::from_fn_with_state(
            Arc::new(digest),
            require_token,
        ));
    }
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
        .merge(api);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
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
        .and_then(|v| v.strip_prefix("Bearer "));
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
