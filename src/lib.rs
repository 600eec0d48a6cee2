//! d2c: a Detect to Correct incident pipeline (after the IT4IT value stream of that name).
//!
//! Monitoring and security events arrive on Kafka in any supported format; d2c normalises them,
//! correlates them into incidents, maps each incident to the services and business capabilities
//! it hurts, proposes change requests (RFCs), and publishes incidents, RFCs and Prometheus
//! metrics. The modules read as the pipeline, from the ground up; every import points down:
//!
//! - [`model`]: the IT4IT data objects (Event, Alert, Incident, RFC and its run, Problem), the
//!   control inputs (acknowledgement, RFC decision, problem action, run report), the output
//!   records, and the MITRE ATT&CK tactic table.
//! - [`ingest`]: one parser per input format, raw bytes → events (stateless), monitoring and
//!   security tools alike (Falco, Suricata, Wazuh, OCSF, ECS threats).
//! - [`suppress`]: silences, maintenance windows and inhibition rules (which events to mute).
//! - [`config`]: every typed config section (notification connectors, problems and runbooks
//!   included), secret
//!   references (`env:`/`file:`), environment overrides and validation with file:line.
//! - [`topology`]: the service model: CIs, services, dependencies and redundancy (all, any, k
//!   of N), capabilities; the Backstage catalog mapped onto it (`topology::backstage`).
//! - [`change`]: the RFC policy, incident → change request; containment rules for security
//!   incidents (`change::containment`); the RFC lifecycle after approval (`change::lifecycle`).
//! - [`correlate`]: dedup into alerts, grouping into incidents, change linking, lifecycle
//!   timers, root cause (one file per concern); security detections grouped per attacked entity
//!   with their ATT&CK stages (`correlate::security`).
//! - [`impact`]: health 0–100 of services and capabilities, users affected, revenue at risk,
//!   priority.
//! - [`problem`]: recurring incidents → problems and known errors, with their workarounds.
//! - [`engine`]: the pure core composing the above: one `Input` (event, tick, ack, silence,
//!   decision, problem action, run report), one `Engine::apply`, `(state, input) → (state, outputs)`; and the `Settings` an
//!   engine is built from.
//! - [`telemetry`]: the metrics registry (business impact, MTTD/MTTA/MTTR, delivery), named
//!   telemetry events (`telemetry::events`), readiness, logs.
//! - [`pipeline`]: the Kafka shell: the events-topic wire contract (`pipeline::records`), the
//!   ingest and correlate stages, producer, checkpoints, the view of every incident, RFC and
//!   problem read from their topics (`pipeline::materialise`, `pipeline::view`), the service-model
//!   refresh from Backstage (`pipeline::topology_refresh`), the delivery audit.
//! - [`api`]: the HTTP surface: server, probes and metrics, HTTP ingest, control endpoints
//!   (ack, silence, RFC decision, problems), read API, the incident console (`api::console`).
//! - [`notify`]: the delivery stage: incidents, RFCs and problems to ITSM and paging tools
//!   (ServiceNow, Jira, PagerDuty, Slack, webhooks), retried until acknowledged, never doubled.
//! - [`automation`]: the automation stage: approved RFCs run through Kubernetes, AWX or a
//!   webhook, reported back to the engine, which verifies them by the incident resolving.
//! - [`app`]: the one start-up and shutdown (`run`, `demo` and `bench` all use it).
//! - [`replay`]: the same ingest and engine over a file, outputs as JSON Lines.
//! - [`bench`]: `d2c bench`, the pipeline against a broker measured beside a bare consumer.
//! - [`demo`]: the embedded broker, traffic generator and incident printer of `d2c demo`.
//!
//! # Design notes
//!
//! - **Layers.** A module only names modules listed above it here (`python3
//!   ../shared/tools/layers.py src` shows which names which, and exits non-zero on a circle or
//!   a file over 600 lines). Nothing below [`engine`] knows Kafka, HTTP, metrics or the clock.
//! - **Tests.** Unit tests of a folder module live in `<module>/tests/`: a `mod.rs` and one
//!   file per concern (`correlate/tests/security.rs`), declared last in the module's `mod.rs`.
//!   A small single file may keep an inline `#[cfg(test)] mod tests` at its end. Black-box
//!   tests of the binary (brokers, HTTP, replay scenarios) are in the crate's `tests/`.

pub mod api;
pub mod app;
pub mod automation;
pub mod bench;
pub mod change;
pub mod config;
pub mod correlate;
pub mod demo;
pub mod engine;
pub mod impact;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod problem;
pub mod replay;
pub mod suppress;
pub mod telemetry;
pub mod topology;
