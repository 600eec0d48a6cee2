//! The HTTP surface of d2c, on `http.listen`:
//!
//! - [`server`]: the server itself, `/metrics`, `/healthz`, `/readyz`, and the bearer
//!   tokens of `http.token` and `[[http.tokens]]` in front of every `/api/v1` endpoint;
//! - [`ingest`]: `POST /api/v1/events/{format}`, HTTP ingest into `topics.raw` (or, with
//!   `ingest.http_direct`, straight to `topics.events`: `direct`);
//! - [`control`]: acknowledgements, silences, RFC decisions and problem actions, written as
//!   control records;
//! - [`write`]: what ingest and the control endpoints share (producer, body budget, answers);
//! - [`read`]: the read API over the view materialised from the incidents and changes topics;
//! - [`console`]: the incident console in the browser (board, incident pages, business and
//!   security views, actions), and who may do what (`console::auth`).

pub mod console;
pub mod control;
mod direct;
pub mod ingest;
pub mod read;
pub mod server;
pub mod write;

pub use server::{Endpoints, Limits, serve};
pub use write::{DELIVERY_TIMEOUT, WriteApi, WriteApiError};

use axum::Router;
use axum::routing::post;

/// The write routes (HTTP ingest and the control endpoints) over `api`, ready to be merged into
/// the server's router.
pub fn write_routes(api: WriteApi) -> Router {
    Router::new()
        .route("/api/v1/events/{format}", post(ingest::post_events))
        .route("/api/v1/incidents/{id}/ack", post(control::post_ack))
        .route("/api/v1/silences", post(control::post_silence))
        .route(
            "/api/v1/changes/{id}/decision",
            post(control::post_decision),
        )
        .route("/api/v1/problems", post(control::post_problem))
        .route(
            "/api/v1/problems/{id}/known-error",
            post(control::post_known_error),
        )
        .route(
            "/api/v1/problems/{id}/resolve",
            post(control::post_resolve_problem),
        )
        .with_state(api)
}
