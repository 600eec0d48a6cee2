//! The HTTP surface of d2c, on `http.listen`:
//!
//! - [`server`]: the server itself, `/metrics`, `/healthz`, `/readyz`, and the bearer token of
//!   `http.token` in front of every `/api/v1` endpoint;
//! - [`ingest`]: `POST /api/v1/events/{format}`, HTTP ingest into `topics.raw`;
//! - [`control`]: acknowledgements, silences and RFC decisions, written as control records;
//! - [`write`]: what ingest and the control endpoints share (producer, body budget, answers);
//! - [`read`]: the read API over the correlate stage's view.

pub mod control;
pub mod ingest;
pub mod read;
pub mod server;
pub mod write;

pub use server::{Limits, ServeOptions, serve};
pub use write::{DELIVERY_TIMEOUT, WriteApi, WriteApiError};
