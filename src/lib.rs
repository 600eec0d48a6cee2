//! d2c: a Detect to Correct incident pipeline (after the IT4IT value stream of that name).
//!
//! Monitoring and security events arrive on Kafka in any supported format; d2c normalises them,
//! correlates them into incidents, maps each incident to the services and business capabilities
//! it hurts, proposes change requests (RFCs), and publishes incidents, RFCs and Prometheus
//! metrics. The modules read as the pipeline, from the ground up:
//!
//! - [`model`]: the IT4IT data objects (Event, Alert, Incident, RFC and its run, Problem), the
//!   output records, control inputs, and the MITRE ATT&CK tactic table (`model::attack`).
//! - [`config`]: the settings file, environment overrides and validation.
//! - [`ingest`]: one parser per input format, raw bytes → events (stateless), monitoring and
//!   security tools alike (Falco, Suricata, Wazuh, OCSF, ECS threats).
//! - [`topology`]: the service model: CIs, services, dependencies and redundancy (all, any, k
//!   of N), capabilities; the Backstage catalog mapped onto it (`topology::backstage`).
//! - [`change`]: the RFC policy, incident → change request; containment rules for security
//!   incidents (`change::containment`); the RFC lifecycle after approval (`change::lifecycle`).
//! - [`correlate`]: dedup into alerts, grouping into incidents, lifecycle, root cause; security
//!   detections grouped per attacked entity with their ATT&CK stages (`correlate::security`).
//! - [`suppress`]: silences, maintenance windows and inhibition rules (which events to mute).
//! - [`impact`]: health 0–100 of services and capabilities, users affected, revenue at risk,
//!   priority.
//! - [`problem`]: recurring incidents → problems and known errors, with their workarounds.
//! - [`engine`]: the pure core composing the above: `(state, event) → (state, outputs)`.
//! - [`settings`]: loading the settings, topology and policy files together.
//! - [`replay`]: the same ingest and engine over a file, outputs as JSON Lines.
//! - [`pipeline`]: the Kafka shell: ingest stage, correlate stage, producer, offsets; the
//!   service-model refresh from Backstage (`pipeline::topology_refresh`).
//! - [`notify`]: the delivery stage: incidents, RFCs and problems to ITSM and paging tools
//!   (ServiceNow, Jira, PagerDuty, Slack, webhooks), retried until acknowledged, never doubled.
//! - [`automation`]: the automation stage: approved RFCs run through Kubernetes, AWX or a
//!   webhook, reported back to the engine, which verifies them by the incident resolving.
//! - [`telemetry`]: metrics registry (business impact, MTTD/MTTA/MTTR), HTTP server
//!   (`/metrics`, `/healthz`, `/readyz`, ingest and control endpoints, the read API for
//!   incidents, services and capabilities), logs.
//! - [`demo`]: the embedded broker, traffic generator and incident printer of `d2c demo`.
//! - [`bench`]: `d2c bench`, the pipeline against a broker measured beside a bare consumer.

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
