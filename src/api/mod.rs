//! The HTTP surface of d2c, on `http.listen`:
//!
//! - [`server`]: the server itself, `/metrics`, `/healthz`, `/readyz`, and the bearer
//!   tokens of `http.token` and `[[http.tokens]]` in front of every `/api/v1` endpoint;
//! - [`ingest`]: `POST /api/v1/events/{format}`, HTTP ingest into `topics.raw`;
//! - [`control`]: acknowledgements, silences and RFC decisions, written as control records;
//! - [`write`]: what ingest and the control endpoints share (producer, body budget, answers);
//! - [`read`]: the read API over the view materialised from the incidents and changes topics;
//! - [`console`]: the incident console in the browser (board, incident pages, business and
//!   security views, actions), and who may do what (`console::auth`).

pub mod console;
pub mod control;
pub mod ingest;
pub mod read;
pub mod server;
pub mod write;

pub use server::{Endpoints, serve};
pub use write::{DELIVERY_TIMEOUT, WriteApi, WriteApiError};
