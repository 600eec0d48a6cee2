//! Routing: the correlation domain of an event, which decides the events partition it goes to
//! (the ingest stage, the one-hop HTTP writer and a partitioned replay call [`domain`]). Events
//! that must be correlated together must share a domain; every other choice spreads the work.

use crate::config::{CorrelationConfig, SecurityPartition};
use crate::model::{Category, Event};
use crate::topology::{SECURITY_DOMAIN, Topology};

/// The correlation domain of `ev`: the service
/// model's domain ([`Topology::domain`]) for operational events and, by default, for security
/// events (one domain for all of them). With `correlation.security.partition = "entity"`, a
/// security event's domain is `security:` and the entity it is about
/// ([`super::security::attacked_entity`]), so detections about different hosts spread over the
/// partitions; one about no entity d2c can name stays in the one security domain.
pub fn domain(topo: &Topology, cfg: &CorrelationConfig, ev: &Event) -> String {
    if ev.category == Category::Security
        && cfg.security.partition == SecurityPartition::Entity
        && let Some(entity) = super::security::attacked_entity(&cfg.security, ev)
    {
        return format!("{SECURITY_DOMAIN}:{entity}");
    }
    topo.domain(ev, &cfg.fallback_group_by)
}
