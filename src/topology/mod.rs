//! The service model: business capabilities, the services that deliver them and depend on each
//! other, and the configuration items (CIs) that events are about. Loaded from the topology
//! file; answers "which service is this event about", "are these two services linked", and
//! "what does a failure of these services hurt".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

pub mod backstage;
mod dense;
mod file;
mod matchers;

use crate::config::{ConfigError, line_of};
use crate::model::{Event, hashing};

pub use dense::{CapabilityId, Ids, ServiceId};
pub use file::{Capability, CiDef, Criticality, KubernetesRef, Requires, ServiceDef, TopologyFile};

#[derive(Debug, Clone)]
struct Service {
    def: ServiceDef,
    /// Every service this one needs, directly or through others.
    needs: BTreeSet<String>,
    /// Every service that needs this one, directly or through others.
    needed_by: BTreeSet<String>,
    /// The other members of every redundancy group (dependencies of a service that requires
    /// `any` or k of them) this one belongs to: replicas failing together are one incident.
    peers: BTreeSet<String>,
    /// Services that need `any` or k of their dependencies and list this one among them.
    redundancy_parents: BTreeSet<String>,
    domain: String,
}

/// The service model, checked and with its dependency closures computed once.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    capabilities: BTreeMap<String, Capability>,
    /// Services delivering each capability.
    delivered_by: BTreeMap<String, Vec<String>>,
    /// By [`ServiceId`] (name order); looked up by name through [`Ids`], a hash map, which
    /// is cheaper than a B-tree search by string on the engine's hot path.
    services: Vec<Service>,

    /// Each CI's service. Both names are the model's shared copies (the service's is the one
    /// of [`Ids`]): a new alert holds them instead of copies of its own. A CI and its service
    /// are of one domain, so of one partition's engine: one thread counts references to them.
    ci_service: hashing::HashMap<Arc<str>, Arc<str>>,
    matchers: matchers::Matchers,
    ids: Ids,
}

/// Which CI and service an event is about: names borrowed from the event or the model, so that
/// resolving an event copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution<'a> {
    pub ci: Option<Name<'a>>,
    pub service: Option<Name<'a>>,
}

/// A name an event resolved to: the model's shared copy when the model knows the name, else
/// the event's own text. Equal when the text is.
#[derive(Debug, Clone, Copy)]
pub enum Name<'a> {
    Model(&'a Arc<str>),
    Event(&'a str),
}

impl<'a> Name<'a> {
    pub fn as_str(self) -> &'a str {
        match self {
            Name::Model(n) => n,
            Name::Event(n) => n,
        }
    }

    /// A shared copy: the model's, or `share` of the event's text.
    pub fn shared(self, share: impl FnOnce(&str) -> Arc<str>) -> Arc<str> {
        match self {
            Name::Model(n) => n.clone(),
            Name::Event(n) => share(n),
        }
    }
}

/// A copy of the text.
impl From<Name<'_>> for String {
    fn from(n: Name<'_>) -> String {
        n.as_str().to_owned()
    }
}

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Name<'_>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name<'_> {}

impl Topology {
    /// Reads and checks a topology file; errors name the file and line.
    pub fn load(file: &Path) -> Result<Topology, ConfigError> {
        let (parsed, text) = Topology::read_file(file)?;
        Topology::build_from(parsed, &text, file)
    }

    /// Reads and parses a topology file without checking it, with its text for messages
    /// (the Backstage source merges it with the catalog before checking).
    pub fn read_file(file: &Path) -> Result<(TopologyFile, String), ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let parsed = toml::from_str(&text)
            .map_err(|e| crate::config::load::syntax_error(file, &text, &e))?;
        Ok((parsed, text))
    }

    /// Parses and checks topology text; `file` is used in messages.
    pub fn from_str(text: &str, file: &Path) -> Result<Topology, ConfigError> {
        let parsed: TopologyFile =
            toml::from_str(text).map_err(|e| crate::config::load::syntax_error(file, text, &e))?;
        Topology::build_from(parsed, text, file)
    }

    /// Checks a parsed topology `f` whose file (`file`, with `text`) is named in messages.
    pub fn build_from(f: TopologyFile, text: &str, file: &Path) -> Result<Topology, ConfigError> {
        Topology::build(f).map_err(|(key, message)| ConfigError::Invalid {
            file: file.to_path_buf(),
            line: line_of(text, &key).or_else(|| {
                // A key inside an array of tables (`[[cis]]`) has no dotted path; point at the
                // first line that mentions the offending value instead.
                let needle = key.rsplit('.').next().unwrap_or(&key);
                text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
            }),
            key,
            message,
        })
    }

    /// Checks references and cycles, and computes the closures. The error is (key, message).
    pub fn build(f: TopologyFile) -> Result<Topology, (String, String)> {
        for (name, c) in &f.capabilities {
            if !c.revenue_per_minute.is_finite() || c.revenue_per_minute < 0.0 {
                return Err((
                    format!("capabilities.{name}.revenue_per_minute"),
                    "must be a finite number, 0 or more".into(),
                ));
            }
        }
        for (name, s) in &f.services {
            for d in &s.depends_on {
                if !f.services.contains_key(d) {
                    return Err((
                        format!("services.{name}.depends_on"),
                        format!("names `{d}`, which is not a service in this file"),
                    ));
                }
                if d == name {
                    return Err((
                        format!("services.{name}.depends_on"),
                        "names the service itself".into(),
                    ));
                }
            }
            if let Requires::AtLeast(k) = s.requires
                && k as usize > s.depends_on.len()
            {
                return Err((
                    format!("services.{name}.requires"),
                    format!(
                        "asks for {k} working dependencies, but depends_on lists {}",
                        s.depends_on.len()
                    ),
                ));
            }
            for c in &s.capabilities {
                if !f.capabilities.contains_key(c) {
                    return Err((
                        format!("services.{name}.capabilities"),
                        format!("names `{c}`, which is not a capability in this file"),
                    ));
                }
            }
        }
        let mut ci_service: hashing::HashMap<String, String> = hashing::HashMap::default();
        let mut matchers = Vec::new();
        for (i, ci) in f.cis.iter().enumerate() {
            if !f.services.contains_key(&ci.service) {
                return Err((
                    format!("cis.{}", ci.service),
                    format!(
                        "CI `{}` (entry {} of [[cis]]) belongs to service `{}`, which is not in [services]",
                        ci.id,
                        i + 1,
                        ci.service
                    ),
                ));
            }
            if ci_service
                .insert(ci.id.clone(), ci.service.clone())
                .is_some()
            {
                return Err((
                    format!("cis.{}", ci.id),
                    format!("CI `{}` is listed twice in [[cis]]", ci.id),
                ));
            }
            if !ci.matchers.is_empty() {
                matchers.push((ci.matchers.clone(), ci.id.clone()));
            }
        }

        let needs = |start: &str| -> Result<BTreeSet<String>, (String, String)> {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&str> = f.services[start]
                .depends_on
                .iter()
                .map(String::as_str)
                .collect();
            while let Some(s) = stack.pop() {
                if s == start {
                    return Err((
                        format!("services.{start}.depends_on"),
                        format!("makes a dependency cycle: `{start}` needs itself through others"),
                    ));
                }
                if seen.insert(s.to_string()) {
                    stack.extend(f.services[s].depends_on.iter().map(String::as_str));
                }
            }
            Ok(seen)
        };
        let mut services = BTreeMap::new();
        for (name, def) in &f.services {
            services.insert(
                name.clone(),
                Service {
                    def: def.clone(),
                    needs: needs(name)?,
                    needed_by: BTreeSet::new(),
                    peers: BTreeSet::new(),
                    redundancy_parents: BTreeSet::new(),
                    domain: String::new(),
                },
            );
        }
        let edges: Vec<(String, String)> = services
            .iter()
            .flat_map(|(n, s)| s.needs.iter().map(move |d| (d.clone(), n.clone())))
            .collect();
        for (dep, user) in edges {
            services
                .get_mut(&dep)
                .expect("checked above")
                .needed_by
                .insert(user);
        }
        for (parent, def) in &f.services {
            if def.requires.is_all() {
                continue;
            }
            for a in &def.depends_on {
                let others = def.depends_on.iter().filter(|b| *b != a).cloned();
                let member = services.get_mut(a).expect("checked above");
                member.peers.extend(others);
                member.redundancy_parents.insert(parent.clone());
            }
        }
        // Default domain: the connected component, named after its smallest service name.
        // Walked over the direct edges both ways, listed once (looking for each service's
        // users among all services made a 50,000-service model take minutes to load).
        let mut neighbours: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, def) in &f.services {
            for d in &def.depends_on {
                neighbours.entry(name).or_default().push(d);
                neighbours.entry(d).or_default().push(name);
            }
        }
        let mut component: BTreeMap<String, String> = BTreeMap::new();
        for name in services.keys() {
            if component.contains_key(name) {
                continue;
            }
            let mut members = BTreeSet::from([name.as_str()]);
            let mut stack = vec![name.as_str()];
            while let Some(s) = stack.pop() {
                for n in neighbours.get(s).into_iter().flatten() {
                    if members.insert(n) {
                        stack.push(n);
                    }
                }
            }
            let label = members.first().map_or_else(String::new, |m| m.to_string());
            for m in members {
                component.insert(m.to_owned(), label.clone());
            }
        }
        for (name, s) in services.iter_mut() {
            s.domain = s
                .def
                .domain
                .clone()
                .unwrap_or_else(|| component[name].clone());
        }
        let mut delivered_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, s) in &services {
            for c in &s.def.capabilities {
                delivered_by
                    .entry(c.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        let ids = Ids::build(&services, &f.capabilities);
        let ci_service = ci_service
            .into_iter()
            .map(|(ci, s)| {
                (
                    Arc::from(ci),
                    ids.shared(&s).expect("checked above").clone(),
                )
            })
            .collect();
        Ok(Topology {
            capabilities: f.capabilities,
            delivered_by,
            // In name order, so a service's index is its id.
            services: services.into_values().collect(),
            ci_service,
            matchers: matchers::Matchers::new(matchers),
            ids,
        })
    }

    /// Which CI and service `ev` is about: its `ci` if that is a known CI; else the first CI whose
    /// match labels it carries; else its `service` label or its `ci` if either names a service.
    pub fn resolve<'a>(&'a self, ev: &'a Event) -> Resolution<'a> {
        if let Some(ci) = &ev.ci
            && let Some((ci, s)) = self.ci_service.get_key_value(ci.as_str())
        {
            return Resolution {
                ci: Some(Name::Model(ci)),
                service: Some(Name::Model(s)),
            };
        }
        if let Some(ci) = self.matchers.find(&ev.labels) {
            let shared = self.ci_service.get_key_value(ci);
            return Resolution {
                ci: Some(shared.map_or(Name::Event(ci), |(c, _)| Name::Model(c))),
                service: shared.map(|(_, s)| Name::Model(s)),
            };
        }
        let ids = &self.ids;
        let by_label = ev.labels.get("service").and_then(|s| ids.shared(s));
        let by_ci = || ev.ci.as_ref().and_then(|s| ids.shared(s));
        Resolution {
            ci: ev.ci.as_deref().map(Name::Event),
            service: by_label.or_else(by_ci).map(Name::Model),
        }
    }

    /// True when `a` and `b` are the same service, or one needs the other (directly or not),
    /// or both are replicas in one redundancy group, and both are in the same correlation
    /// domain. Services of different domains never
    /// correlate, because their events may be handled on different partitions.
    pub fn linked(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        let ids = &self.ids;
        let (Some(x), Some(y)) = (ids.service(a), ids.service(b)) else {
            return false;
        };
        let (s, o) = (&self.services[x as usize], &self.services[y as usize]);
        (ids.needs(x, y) || ids.needs(y, x) || s.peers.contains(b)) && o.domain == s.domain
    }

    /// Service `name`, if the model knows it.
    fn svc(&self, name: &str) -> Option<&Service> {
        self.ids.service(name).map(|i| &self.services[i as usize])
    }

    /// True when `a` needs `b`, directly or through others.
    pub fn needs(&self, a: &str, b: &str) -> bool {
        let ids = &self.ids;
        ids.service(a)
            .zip(ids.service(b))
            .is_some_and(|(x, y)| ids.needs(x, y))
    }

    /// The failing services and every service that needs one of them.
    pub fn affected<'a>(&self, failing: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for f in failing {
            if let Some(s) = self.svc(f) {
                out.insert(f.to_string());
                out.extend(s.needed_by.iter().cloned());
            }
        }
        out
    }

    /// Capabilities delivered by any of `services`.
    pub fn capabilities_of<'a>(
        &self,
        services: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<String> {
        services
            .into_iter()
            .filter_map(|s| self.svc(s))
            .flat_map(|s| s.def.capabilities.iter().cloned())
            .collect()
    }

    /// Services that deliver capability `name`.
    pub fn delivered_by(&self, name: &str) -> &[String] {
        self.delivered_by.get(name).map_or(&[], Vec::as_slice)
    }

    /// The definition of service `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceDef> {
        self.svc(name).map(|s| &s.def)
    }

    /// How many services `name` needs, directly or not: a service ranks above each of its
    /// dependencies, so sorting by rank gives a dependency order.
    pub fn dependency_rank(&self, name: &str) -> usize {
        self.ids.service(name).map_or(0, |s| self.ids.rank(s))
    }

    /// The model by number (see [`Ids`]).
    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Services that need `any` or k of their dependencies and count the service numbered
    /// `id` among them.
    pub fn redundancy_parents_of(&self, id: ServiceId) -> impl Iterator<Item = &str> {
        self.services
            .get(id as usize)
            .into_iter()
            .flat_map(|s| s.redundancy_parents.iter().map(String::as_str))
    }

    /// Every capability, by name.
    pub fn capabilities(&self) -> &BTreeMap<String, Capability> {
        &self.capabilities
    }

    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.get(name)
    }

    /// Capability names, sorted: the bounded label set of per-capability metrics.
    pub fn capability_names(&self) -> impl Iterator<Item = &str> {
        self.capabilities.keys().map(String::as_str)
    }

    /// Service names, sorted.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.ids.names()
    }

    /// The service a name stands for: the service of the CI of that id, or the service of that
    /// name.
    pub fn service_of<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self.ci_service.get(name) {
            Some(s) => Some(s),
            None => self.ids.service(name).is_some().then_some(name),
        }
    }

    /// How many CIs the model lists.
    pub fn ci_count(&self) -> usize {
        self.ci_service.len()
    }

    /// CIs of `service`, in file order of their ids.
    pub fn cis_of(&self, service: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .ci_service
            .iter()
            .filter(|(_, s)| ***s == *service)
            .map(|(c, _)| &**c)
            .collect();
        v.sort_unstable();
        v
    }

    /// The correlation domain of a service, if it is in the topology.
    pub fn service_domain(&self, service: &str) -> Option<&str> {
        self.svc(service).map(|s| s.domain.as_str())
    }

    /// The owners and links the model has of `service` (empty fields when it has none).
    pub fn context_of(&self, service: &str) -> crate::model::ServiceContext {
        let def = self.svc(service).map(|s| &s.def);
        let field = |f: fn(&ServiceDef) -> &Option<String>| def.and_then(|d| f(d).clone());
        crate::model::ServiceContext {
            service: service.to_owned(),
            owner: field(|d| &d.owner),
            team: field(|d| &d.team),
            runbook: field(|d| &d.runbook),
            dashboard: field(|d| &d.dashboard),
            oncall: field(|d| &d.oncall),
        }
    }

    /// The correlation domain of an event: the domain of its service; for an event no service
    /// claims, the values of the `fallback` labels it carries (`correlation.fallback_group_by`,
    /// see [`fallback_domain`]), else its CI (or, lacking one, its fingerprint), so it still
    /// lands on one partition. Every security event is in the one domain [`SECURITY_DOMAIN`]:
    /// detections about one attacked entity must meet, and which entities an attack links is
    /// only known while correlating.
    pub fn domain(&self, ev: &Event, fallback: &[String]) -> String {
        if ev.category == crate::model::Category::Security {
            return SECURITY_DOMAIN.to_owned();
        }
        let res = self.resolve(ev);
        match res.service.and_then(|s| self.svc(s.as_str())) {
            Some(s) => s.domain.clone(),
            None => fallback_domain(|k| ev.labels.get(k).map(String::as_str), fallback)
                .unwrap_or_else(|| {
                    format!(
                        "ci:{}",
                        res.ci.map_or(ev.fingerprint.as_str(), Name::as_str)
                    )
                }),
        }
    }
}

/// The correlation domain of an alert no service claims, from the values of the `keys` labels
/// (`correlation.fallback_group_by`) that `label` gives: `labels:cluster=prod-1,namespace=shop`.
/// `None` when it carries none of them.
pub fn fallback_domain<'a>(
    label: impl Fn(&str) -> Option<&'a str>,
    keys: &[String],
) -> Option<String> {
    let mut out = String::new();
    let mut any = false;
    for k in keys {
        let v = label(k).unwrap_or("");
        any |= !v.is_empty();
        out.push(if out.is_empty() { ':' } else { ',' });
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    any.then(|| format!("labels{out}"))
}

/// The correlation domain of every security event (see [`Topology::domain`]).
pub const SECURITY_DOMAIN: &str = "security";

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
[capabilities.pay]
criticality = "high"
revenue_per_minute = 100.0

[services.db]
[services.api]
depends_on = ["db"]
capabilities = ["pay"]
[services.web]
depends_on = ["api"]
[services.mail]

[[cis]]
id = "pg-1"
service = "db"
match = { instance = "10.0.0.5" }
"#;

    fn topo() -> Topology {
        Topology::from_str(T, Path::new("t.toml")).unwrap()
    }

    fn ev(ci: Option<&str>, labels: &[(&str, &str)]) -> Event {
        Event {
            id: "1".into(),
            source: "native".into(),
            time: chrono::DateTime::UNIX_EPOCH,
            ci: ci.map(String::from),
            name: "X".into(),
            severity: crate::model::Severity::Critical,
            status: crate::model::Status::Firing,
            category: Default::default(),
            fingerprint: "f".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn resolves_by_ci_id_labels_and_service_label() {
        let t = topo();
        fn names(r: Resolution<'_>) -> (Option<String>, Option<String>) {
            let text = |n: Option<Name<'_>>| n.map(String::from);
            (text(r.ci), text(r.service))
        }
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            names(t.resolve(&ev(Some("pg-1"), &[]))),
            (some("pg-1"), some("db"))
        );
        let by_labels = ev(None, &[("instance", "10.0.0.5")]);
        assert_eq!(names(t.resolve(&by_labels)), (some("pg-1"), some("db")));
        assert_eq!(
            names(t.resolve(&ev(None, &[("service", "web")]))),
            (None, some("web"))
        );
        assert_eq!(
            names(t.resolve(&ev(Some("nope"), &[]))),
            (some("nope"), None)
        );
    }

    #[test]
    fn a_resolution_gives_the_models_own_copies_of_the_names_it_knows() {
        let t = topo();
        let db = t.ids().shared("db").unwrap();
        let model = |n: Option<Name<'_>>| match n {
            Some(Name::Model(a)) => Some(a.clone()),
            _ => None,
        };
        for e in [ev(Some("pg-1"), &[]), ev(None, &[("instance", "10.0.0.5")])] {
            let r = t.resolve(&e);
            let (ci, service) = (model(r.ci).unwrap(), model(r.service).unwrap());
            assert!(
                Arc::ptr_eq(&service, db),
                "the service's name is the model's"
            );
            let again = model(t.resolve(&ev(Some("pg-1"), &[])).ci).unwrap();
            assert!(Arc::ptr_eq(&ci, &again), "one copy of the CI's name");
        }
        let web = ev(None, &[("service", "web")]);
        let r = t.resolve(&web);
        assert!(Arc::ptr_eq(
            &model(r.service).unwrap(),
            t.ids().shared("web").unwrap()
        ));
        // A name the model does not know is the event's.
        let e = ev(Some("nope"), &[]);
        assert!(matches!(t.resolve(&e).ci, Some(Name::Event("nope"))));
        // Compared by text, whoever holds it.
        let own: Arc<str> = Arc::from("db");
        assert_eq!(Name::Model(db), Name::Model(&own));
        assert_eq!(Name::Model(db), Name::Event("db"));
        assert_eq!(Name::Event("db").shared(|_| own.clone()), own);
        assert!(Arc::ptr_eq(&Name::Model(db).shared(|_| own.clone()), db));
    }

    #[test]
    fn dependency_closures_link_and_propagate() {
        let t = topo();
        assert!(t.linked("web", "db") && t.linked("db", "web"));
        assert!(!t.linked("mail", "db"));
        assert!(t.needs("web", "db") && !t.needs("db", "web"));
        let a = t.affected(["db"]);
        assert_eq!(a.into_iter().collect::<Vec<_>>(), ["api", "db", "web"]);
        let caps = t.capabilities_of(&t.affected(["db"]));
        assert!(caps.contains("pay"));
    }

    #[test]
    fn domain_is_the_connected_component() {
        let t = topo();
        assert_eq!(t.domain(&ev(Some("pg-1"), &[]), &[]), "api");
        let e = ev(None, &[("service", "mail")]);
        assert_eq!(t.domain(&e, &[]), "mail");
        // An event no service claims: its fallback labels, else its CI.
        let keys = ["cluster".to_owned(), "namespace".to_owned()];
        let e = ev(Some("cart-1"), &[("namespace", "shop"), ("app", "cart")]);
        assert_eq!(t.domain(&e, &keys), "labels:cluster=,namespace=shop");
        let e = ev(Some("cart-1"), &[("app", "cart")]);
        assert_eq!(t.domain(&e, &keys), "ci:cart-1");
    }

    #[test]
    fn security_events_share_one_domain_whatever_their_ci() {
        let t = topo();
        for mut e in [ev(Some("pg-1"), &[]), ev(None, &[("service", "mail")])] {
            e.category = crate::model::Category::Security;
            assert_eq!(t.domain(&e, &[]), SECURITY_DOMAIN);
        }
    }

    #[test]
    fn bad_references_and_cycles_name_the_line() {
        let bad = "[services.a]\ndepends_on = [\"b\"]\n";
        let e = Topology::from_str(bad, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.toml:2: `services.a.depends_on` names `b`, which is not a service in this file"
        );
        let cyc = "[services.a]\ndepends_on = [\"b\"]\n[services.b]\ndepends_on = [\"a\"]\n";
        let e = Topology::from_str(cyc, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dependency cycle"), "{e}");
        let e = Topology::from_str("[services.a]\ncriticality = 1\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:2:"), "{e}");
    }
}
