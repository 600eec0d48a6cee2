//! Correlation: fingerprint dedup of events into alerts (with flapping and resolve timeouts),
//! grouping of alerts into incidents by time window, labels and service topology (merging
//! incidents a new alert links), the incident lifecycle (open → resolved after a hold →
//! reopened or closed), change correlation, and root cause. Security events are grouped by
//! [`security`] instead: per attacked entity, with their MITRE ATT&CK stages.
//!
//! Pure and deterministic: time comes only from events and ticks. Everything that happens later
//! than an event (the end of a resolve hold, closing, the end of flapping, resolve timeouts,
//! forgetting) is a timer in [`State::timers`], run in due-time order by [`run_timers`] when
//! the clock passes it, so the result depends only on the input, never on batch boundaries.
//!
//! One file per concern, in the order an event meets them:
//! - `state`: what the correlator remembers ([`State`], [`Group`], [`AlertState`], [`Timer`]);
//!   `stored`: an alert as it is kept ([`StoredAlert`]); `intern`: the text alerts share;
//! - `alerts`: dedup of events into alerts ([`observe`], [`fingerprint_for`]), flapping and
//!   resolve timeouts;
//! - [`members`]: what an incident's record is built from, kept as its alerts join and change;
//! - `grouping`: attaching a new alert to an incident (time window, group-by labels, topology,
//!   domain) and merging the incidents it links;
//! - `changes`: change events remembered per domain and linked to incidents;
//! - `lifecycle`: timers ([`run_timers`]), resolve hold, close and forget, [`acknowledge`],
//!   [`evict`];
//! - `root_cause`: the likely root cause of an incident ([`root_cause()`]);
//! - [`fallback`]: grouping and a guessed cause for alerts the service model does not know;
//! - [`learned`]: links learned from alerts that opened and resolved together;
//! - [`annotations`]: the bounded annotations an alert keeps;
//! - `outcome`: what one event did ([`Outcome`]);
//! - [`security`]: security events, grouped per attacked entity;
//! - [`route`]: the correlation domain of an event, which decides its events partition.

mod alerts;
pub mod annotations;
mod changes;
pub mod fallback;
mod grouping;
mod intern;
pub mod learned;
mod lifecycle;
pub mod members;
mod outcome;
mod root_cause;
pub mod route;
pub mod security;
mod state;
mod stored;

pub use alerts::{fingerprint_for, observe};
pub use changes::MAX_CHANGES_PER_DOMAIN;
pub use intern::MAX_INTERNED;
pub use learned::LearnedLink;
pub use lifecycle::{Evicted, acknowledge, evict, run_timers};
pub use outcome::Outcome;
pub use root_cause::{root_cause, root_service};
pub use state::{AlertState, Group, State, Timer};
pub use stored::StoredAlert;

#[cfg(test)]
mod tests;
