//! The service model by number, for the engine's hot path (impact evaluation on every build
//! of every incident): each service and capability gets a dense id at load, in name order (so
//! ordering by id is ordering by name), and its relations are `Vec`s of ids, so an evaluation
//! walks indices instead of looking names up in maps.

use std::collections::{BTreeMap, HashMap};

use crate::model::hashing;

use super::{Capability, Criticality, Requires, Service};

/// A service's id in [`Ids`].
pub type ServiceId = u32;
/// A capability's id in [`Ids`].
pub type CapabilityId = u32;

/// Dense ids of the services and capabilities of a [`Topology`](super::Topology).
#[derive(Debug, Clone, Default)]
pub struct Ids {
    by_name: hashing::HashMap<String, ServiceId>,
    names: Vec<String>,
    rank: Vec<usize>,
    depends_on: Vec<Vec<ServiceId>>,
    needed_by: Vec<Vec<ServiceId>>,
    /// Every service each one needs, directly or not, sorted.
    needs: Vec<Vec<ServiceId>>,
    requires: Vec<Requires>,
    capabilities: Vec<Vec<CapabilityId>>,
    capability_names: Vec<String>,
    /// Each capability's criticality, revenue per minute and users, by id.
    capability_defs: Vec<(Criticality, f64, u64)>,
}

impl Ids {
    pub(super) fn build(
        services: &BTreeMap<String, Service>,
        capabilities: &BTreeMap<String, Capability>,
    ) -> Ids {
        let by_name: hashing::HashMap<String, ServiceId> = services
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as ServiceId))
            .collect();
        let cap_id: HashMap<&str, CapabilityId> = capabilities
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as CapabilityId))
            .collect();
        let ids = |names: &mut dyn Iterator<Item = &String>| -> Vec<ServiceId> {
            names.filter_map(|n| by_name.get(n).copied()).collect()
        };
        let mut out = Ids {
            names: services.keys().cloned().collect(),
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
                    .filter_map(|c| cap_id.get(c.as_str()).copied())
                    .collect(),
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
        self.names.iter().map(String::as_str)
    }

    pub fn name(&self, s: ServiceId) -> &str {
        &self.names[s as usize]
    }

    /// See [`Topology::dependency_rank`](super::Topology::dependency_rank).
    pub fn rank(&self, s: ServiceId) -> usize {
        self.rank[s as usize]
    }

    /// Its direct dependencies, as the model lists them.
    pub fn depends_on(&self, s: ServiceId) -> &[ServiceId] {
        &self.depends_on[s as usize]
    }

    /// Every service that needs it, directly or not.
    pub fn needed_by(&self, s: ServiceId) -> &[ServiceId] {
        &self.needed_by[s as usize]
    }

    /// Whether `a` needs `b`, directly or not (see [`Topology::needs`](super::Topology::needs)).
    pub fn needs(&self, a: ServiceId, b: ServiceId) -> bool {
        self.needs[a as usize].binary_search(&b).is_ok()
    }

    pub fn requires(&self, s: ServiceId) -> Requires {
        self.requires[s as usize]
    }

    /// The capabilities it delivers.
    pub fn capabilities(&self, s: ServiceId) -> &[CapabilityId] {
        &self.capabilities[s as usize]
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
