//! The service model by number, for the engine's hot path (impact evaluation on every build
//! of every incident): each service and capability gets a dense id at load, in name order (so
//! ordering by id is ordering by name), and its relations are `Vec`s of ids, so an evaluation
//! walks indices instead of looking names up in maps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::hashing;

use super::{Capability, Criticality, Requires, Service};

/// A service's id in [`Ids`].
pub type ServiceId = u32;
/// A capability's id in [`Ids`].
pub type CapabilityId = u32;

/// Dense ids of the services and capabilities of a [`Topology`](super::Topology).
#[derive(Debug, Clone, Default)]
pub struct Ids {
    /// Keyed by the names of `names` (one copy of each).
    by_name: hashing::HashMap<Arc<str>, ServiceId>,
    /// Each service's name, shared with whatever takes it from the model (a new alert holds
    /// its service's name this way instead of a copy of its own).
    names: Vec<Arc<str>>,
    rank: Vec<usize>,
    depends_on: Rows,
    needed_by: Rows,
    /// Every service each one needs, directly or not, sorted.
    needs: Rows,
    requires: Vec<Requires>,
    capabilities: Rows,
    capability_names: Vec<String>,
    /// Each capability's criticality, revenue per minute and users, by id.
    capability_defs: Vec<(Criticality, f64, u64)>,
}

/// A list of ids for each service, all in one block, each service's list right after the one
/// of the service before it: an impact evaluation walks a service and the services near it in
/// the model (a dependency tree's services have neighbouring names, so ids), and reads
/// neighbouring memory instead of one heap block per list (a cache miss apiece when the
/// engine's state is large).
#[derive(Debug, Clone, Default)]
struct Rows {
    /// Where each list starts in `items`; one more than there are lists (the end of the last).
    start: Vec<usize>,
    items: Vec<u32>,
}

impl Rows {
    /// Adds the list of the next service.
    fn push(&mut self, row: impl IntoIterator<Item = u32>) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        self.items.extend(row);
        self.start.push(self.items.len());
    }

    fn get(&self, s: ServiceId) -> &[u32] {
        let s = s as usize;
        &self.items[self.start[s]..self.start[s + 1]]
    }
}

impl Ids {
    pub(super) fn build(
        services: &BTreeMap<String, Service>,
        capabilities: &BTreeMap<String, Capability>,
    ) -> Ids {
        let names: Vec<Arc<str>> = services.keys().map(|n| Arc::from(n.as_str())).collect();
        let by_name: hashing::HashMap<Arc<str>, ServiceId> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as ServiceId))
            .collect();
        let cap_id: HashMap<&str, CapabilityId> = capabilities
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as CapabilityId))
            .collect();
        let ids = |names: &mut dyn Iterator<Item = &String>| -> Vec<ServiceId> {
            names
                .filter_map(|n| by_name.get(n.as_str()).copied())
                .collect()
        };
        let mut out = Ids {
            names,
            capability_names: capabilities.keys().cloned().collect(),
            capability_defs: capabilities
                .values()
                .map(|c| (c.criticality, c.revenue_per_minute, c.users))
                .collect(),
            ..Ids::default()
        };
        for s in services.values() {
            out.rank.push(s.needs.len());
            out.depends_on.push(ids(&mut s.def.depends_on.iter()));
            out.needed_by.push(ids(&mut s.needed_by.iter()));
            // `needs` is a set in name order, so these ids come sorted.
            out.needs.push(ids(&mut s.needs.iter()));
            out.requires.push(s.def.requires);
            out.capabilities.push(
                s.def
                    .capabilities
                    .iter()
                    .filter_map(|c| cap_id.get(c.as_str()).copied()),
            );
        }
        out.by_name = by_name;
        out
    }

    /// The id of service `name`, if the model knows it.
    pub fn service(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    /// Every service's name, in name (so id) order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    pub fn name(&self, s: ServiceId) -> &str {
        &self.names[s as usize]
    }

    /// The model's shared copy of service `name`'s name, if the model knows it.
    pub fn shared(&self, name: &str) -> Option<&Arc<str>> {
        self.by_name.get_key_value(name).map(|(n, _)| n)
    }

    /// See [`Topology::dependency_rank`](super::Topology::dependency_rank).
    pub fn rank(&self, s: ServiceId) -> usize {
        self.rank[s as usize]
    }

    /// Its direct dependencies, as the model lists them.
    pub fn depends_on(&self, s: ServiceId) -> &[ServiceId] {
        self.depends_on.get(s)
    }

    /// Every service that needs it, directly or not.
    pub fn needed_by(&self, s: ServiceId) -> &[ServiceId] {
        self.needed_by.get(s)
    }

    /// Whether `a` needs `b`, directly or not (see [`Topology::needs`](super::Topology::needs)).
    pub fn needs(&self, a: ServiceId, b: ServiceId) -> bool {
        self.needs.get(a).binary_search(&b).is_ok()
    }

    pub fn requires(&self, s: ServiceId) -> Requires {
        self.requires[s as usize]
    }

    /// The capabilities it delivers.
    pub fn capabilities(&self, s: ServiceId) -> &[CapabilityId] {
        self.capabilities.get(s)
    }

    pub fn capability_name(&self, c: CapabilityId) -> &str {
        &self.capability_names[c as usize]
    }

    /// Capability `c`'s criticality, revenue per minute and users.
    pub fn capability(&self, c: CapabilityId) -> (Criticality, f64, u64) {
        self.capability_defs[c as usize]
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Topology;

    const T: &str = r#"
[capabilities.pay]
criticality = "high"
[capabilities.browse]
criticality = "low"

[services.zdb]
[services.db-b]
[services.db-pool]
depends_on = ["zdb", "db-b"]
requires = "any"
[services.api]
depends_on = ["db-pool"]
capabilities = ["pay", "browse"]
[services.web]
depends_on = ["api"]
capabilities = ["browse"]
[services.mail]
"#;

    #[test]
    fn ids_follow_name_order_and_answer_as_the_model_by_name() {
        let topo = Topology::from_str(T, Path::new("t.toml")).unwrap();
        let ids = topo.ids();
        let names: Vec<&str> = topo.service_names().collect();
        for (k, n) in names.iter().enumerate() {
            let s = ids.service(n).unwrap();
            assert_eq!(s as usize, k, "{n}: ids are in name order");
            assert_eq!(ids.name(s), *n);
            assert_eq!(ids.rank(s), topo.dependency_rank(n));
            let deps: Vec<&str> = ids.depends_on(s).iter().map(|d| ids.name(*d)).collect();
            assert_eq!(deps, topo.service(n).unwrap().depends_on);
            for m in &names {
                let o = ids.service(m).unwrap();
                assert_eq!(ids.needs(s, o), topo.needs(n, m), "{n} needs {m}");
                let needed_by = ids.needed_by(o).contains(&s);
                assert_eq!(needed_by, topo.needs(n, m), "{m} needed by {n}");
            }
            let caps: Vec<&str> = ids
                .capabilities(s)
                .iter()
                .map(|c| ids.capability_name(*c))
                .collect();
            assert_eq!(caps, topo.service(n).unwrap().capabilities);
        }
        assert_eq!(ids.service("nope"), None);
    }
}
