//! The Backstage software catalog as a service-model source: catalog entities (as its HTTP API
//! returns them) → a [`TopologyFile`], merged under the topology file (the file wins). Pure:
//! fetching is the shell's (`pipeline::topology_refresh`).
//!
//! Mapping:
//! - `Component` and `Resource` → services; `spec.dependsOn` and `dependsOn` relations →
//!   `depends_on` (references to entities not in the catalog are dropped, with a warning);
//! - `System` → a business capability, delivered by the components and resources that are
//!   `partOf` it (`spec.system` or a `partOf` relation);
//! - `Domain` → defaults for the capabilities of its systems (`spec.domain`/`partOf`).
//!
//! d2c reads these annotations (all optional): on systems and domains
//! `d2c.io/criticality` (`high`, `medium`, `low`; default `medium`),
//! `d2c.io/revenue-per-minute`, `d2c.io/users`; on components and resources `d2c.io/requires`
//! (`all`, `any` or a number k) and `d2c.io/cis` (comma-separated CI ids that belong to it).
//!
//! Owners and links of components and resources, carried into incidents and tickets:
//! `spec.owner` is the owner (a group's name is also the team); `metadata.links` whose title,
//! type or icon says runbook, dashboard (or grafana) or on-call (or pager) are the runbook,
//! dashboard and on-call links; the annotations `d2c.io/team`, `d2c.io/runbook`,
//! `d2c.io/dashboard` and `d2c.io/oncall` win over those.
//!
//! Runbooks find a component's Deployment by Backstage's Kubernetes annotations:
//! `backstage.io/kubernetes-id` (the Deployment's name, unless `d2c.io/deployment` names it)
//! and `backstage.io/kubernetes-namespace` (default `default`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Capability, CiDef, Criticality, KubernetesRef, Requires, ServiceDef, TopologyFile};

/// One catalog entity, as much of it as d2c reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub relations: Vec<Relation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// One of an entity's `metadata.links`.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
}

/// The link of `e` that its title, type or icon names with one of `words`.
fn link_of(e: &Entity, words: &[&str]) -> Option<String> {
    e.metadata
        .links
        .iter()
        .find(|l| {
            [&l.title, &l.kind, &l.icon].into_iter().flatten().any(|t| {
                let t = t.to_ascii_lowercase();
                words.iter().any(|w| t.contains(w))
            })
        })
        .map(|l| l.url.clone())
}

/// The owner of `e` (`spec.owner`, a group's or user's name) and its team (the annotation
/// `d2c.io/team`, or the owner when that is a group).
fn owner_and_team(e: &Entity) -> (Option<String>, Option<String>) {
    let owner = spec_str(e, "owner").map(|r| {
        let (kind, ns, name) = parse_ref(r, "group");
        let name = d2c_name(&ns, &name);
        if kind == "group" {
            name
        } else {
            format!("{kind}:{name}")
        }
    });
    let team = e
        .metadata
        .annotations
        .get("d2c.io/team")
        .cloned()
        .or_else(|| owner.clone().filter(|o| !o.contains(':')));
    (owner, team)
}

#[derive(Debug, Clone, Deserialize)]
pub struct Relation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "targetRef")]
    pub target_ref: String,
}

/// A page of `GET /api/catalog/entities/by-query`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    pub items: Vec<Entity>,
    #[serde(default, rename = "pageInfo")]
    pub page_info: PageInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageInfo {
    #[serde(default, rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

/// The catalog kinds d2c reads, as the `filter` of the catalog query.
pub const KIND_FILTER: &str = "kind=component,kind=resource,kind=system,kind=domain";

/// A reference `[kind:][namespace/]name` → (kind lowercase, namespace, name); `default_kind`
/// when the reference has none.
fn parse_ref(r: &str, default_kind: &str) -> (String, String, String) {
    let (kind, rest) = match r.split_once(':') {
        Some((k, rest)) => (k.to_ascii_lowercase(), rest),
        None => (default_kind.to_string(), r),
    };
    let (ns, name) = match rest.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => ("default".to_string(), rest.to_string()),
    };
    (kind, ns, name)
}

/// The d2c name of an entity: its name in the `default` namespace, `namespace/name` elsewhere.
fn d2c_name(ns: &str, name: &str) -> String {
    if ns == "default" {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn key_of(e: &Entity) -> (String, String) {
    let ns = e.metadata.namespace.as_deref().unwrap_or("default");
    (e.kind.to_ascii_lowercase(), d2c_name(ns, &e.metadata.name))
}

fn spec_str<'a>(e: &'a Entity, field: &str) -> Option<&'a str> {
    e.spec.get(field).and_then(|v| v.as_str())
}

/// What the catalog says, as a topology file, and warnings about what was left out.
pub fn to_topology(entities: &[Entity]) -> (TopologyFile, Vec<String>) {
    let mut warnings = Vec::new();
    let kinds: BTreeMap<(String, String), &Entity> =
        entities.iter().map(|e| (key_of(e), e)).collect();
    let is_service = |k: &str| k == "component" || k == "resource";
    let resolve = |r: &str, default_kind: &str| {
        let (kind, ns, name) = parse_ref(r, default_kind);
        (kind, d2c_name(&ns, &name))
    };

    // Domains → defaults for their systems; systems → capabilities.
    let annotation = |e: &Entity, k: &str| e.metadata.annotations.get(k).cloned();
    let mut f = TopologyFile::default();
    for e in entities
        .iter()
        .filter(|e| e.kind.eq_ignore_ascii_case("system"))
    {
        let (_, name) = key_of(e);
        let domain = spec_str(e, "domain")
            .map(|d| resolve(d, "domain"))
            .or_else(|| {
                e.relations
                    .iter()
                    .find(|r| r.kind == "partOf" && r.target_ref.starts_with("domain:"))
                    .map(|r| resolve(&r.target_ref, "domain"))
            })
            .and_then(|k| kinds.get(&k).copied());
        let pick = |k: &str| annotation(e, k).or_else(|| domain.and_then(|d| annotation(d, k)));
        let criticality = match pick("d2c.io/criticality").as_deref() {
            None => Criticality::Medium,
            Some("high") => Criticality::High,
            Some("medium") => Criticality::Medium,
            Some("low") => Criticality::Low,
            Some(other) => {
                warnings.push(format!(
                    "system `{name}`: d2c.io/criticality `{other}` is not high, medium or low; using medium"
                ));
                Criticality::Medium
            }
        };
        let number = |k: &str, warnings: &mut Vec<String>| -> Option<f64> {
            let v = pick(k)?;
            match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Some(n),
                _ => {
                    warnings.push(format!(
                        "system `{name}`: {k} `{v}` is not a number 0 or more; ignored"
                    ));
                    None
                }
            }
        };
        let revenue = number("d2c.io/revenue-per-minute", &mut warnings).unwrap_or(0.0);
        let users = number("d2c.io/users", &mut warnings).unwrap_or(0.0) as u64;
        f.capabilities.insert(
            name,
            Capability {
                description: e.metadata.description.clone().unwrap_or_default(),
                criticality,
                revenue_per_minute: revenue,
                users,
            },
        );
    }

    for e in entities
        .iter()
        .filter(|e| is_service(&e.kind.to_ascii_lowercase()))
    {
        let (_, name) = key_of(e);
        let mut depends_on = BTreeSet::new();
        let listed = e
            .spec
            .get("dependsOn")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str());
        let related = e
            .relations
            .iter()
            .filter(|r| r.kind == "dependsOn")
            .map(|r| r.target_ref.as_str());
        for r in listed.chain(related) {
            let (kind, dep) = resolve(r, "component");
            if is_service(&kind) && kinds.contains_key(&(kind.clone(), dep.clone())) && dep != name
            {
                depends_on.insert(dep);
            } else {
                warnings.push(format!(
                    "{} `{name}` depends on `{r}`, which is not a component or resource in the catalog; dependency left out",
                    e.kind.to_ascii_lowercase()
                ));
            }
        }
        let mut capabilities = BTreeSet::new();
        let systems = spec_str(e, "system")
            .map(|s| resolve(s, "system"))
            .into_iter()
            .chain(
                e.relations
                    .iter()
                    .filter(|r| r.kind == "partOf" && r.target_ref.starts_with("system:"))
                    .map(|r| resolve(&r.target_ref, "system")),
            );
        for (_, system) in systems {
            if f.capabilities.contains_key(&system) {
                capabilities.insert(system);
            }
        }
        let requires = match annotation(e, "d2c.io/requires").as_deref().map(str::trim) {
            None | Some("all") => Requires::All,
            Some("any") => Requires::AtLeast(1),
            Some(k) => match k.parse::<u32>() {
                Ok(k) if k >= 1 && k as usize <= depends_on.len() => Requires::AtLeast(k),
                _ => {
                    warnings.push(format!(
                        "`{name}`: d2c.io/requires `{k}` is not all, any or a number from 1 to its {} dependencies; using all",
                        depends_on.len()
                    ));
                    Requires::All
                }
            },
        };
        if let Some(cis) = annotation(e, "d2c.io/cis") {
            for id in cis.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                f.cis.push(CiDef {
                    id: id.to_string(),
                    service: name.clone(),
                    matchers: BTreeMap::new(),
                });
            }
        }
        let (owner, team) = owner_and_team(e);
        let kubernetes = annotation(e, "d2c.io/deployment")
            .or_else(|| annotation(e, "backstage.io/kubernetes-id"))
            .map(|deployment| KubernetesRef {
                namespace: annotation(e, "backstage.io/kubernetes-namespace")
                    .unwrap_or_else(|| "default".into()),
                deployment,
            });
        f.services.insert(
            name,
            ServiceDef {
                description: e.metadata.description.clone().unwrap_or_default(),
                depends_on: depends_on.into_iter().collect(),
                capabilities: capabilities.into_iter().collect(),
                domain: None,
                requires,
                owner,
                team,
                runbook: annotation(e, "d2c.io/runbook").or_else(|| link_of(e, &["runbook"])),
                dashboard: annotation(e, "d2c.io/dashboard")
                    .or_else(|| link_of(e, &["dashboard", "grafana"])),
                oncall: annotation(e, "d2c.io/oncall")
                    .or_else(|| link_of(e, &["on-call", "oncall", "pager"])),
                kubernetes,
            },
        );
    }
    // A CI claimed twice keeps its first service.
    let mut seen = BTreeSet::new();
    f.cis.retain(|c| {
        let first = seen.insert(c.id.clone());
        if !first {
            warnings.push(format!(
                "CI `{}` is claimed by more than one catalog entity; kept on the first",
                c.id
            ));
        }
        first
    });
    (f, warnings)
}

/// The topology file over the catalog: entries of `file` replace catalog entries of the same
/// name (capabilities, services, CIs); the catalog adds the rest.
pub fn merge(file: TopologyFile, catalog: TopologyFile) -> TopologyFile {
    let mut out = catalog;
    out.capabilities.extend(file.capabilities);
    out.services.extend(file.services);
    let file_ids: BTreeSet<&String> = file.cis.iter().map(|c| &c.id).collect();
    out.cis.retain(|c| !file_ids.contains(&c.id));
    let mut cis = file.cis.clone();
    cis.append(&mut out.cis);
    out.cis = cis;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog page in the shape `GET /api/catalog/entities/by-query` answers.
    pub const PAGE: &str = include_str!("../../tests/fixtures/backstage/entities.json");

    #[test]
    fn components_resources_systems_and_domains_become_the_topology_refresh() {
        let page: Page = serde_json::from_str(PAGE).unwrap();
        let (f, warnings) = to_topology(&page.items);
        let shipping = &f.capabilities["shipping"];
        assert_eq!(shipping.criticality, Criticality::High, "from its domain");
        assert_eq!(shipping.revenue_per_minute, 250.0);
        assert_eq!(shipping.users, 12000);
        let api = &f.services["shipping-api"];
        assert_eq!(api.depends_on, ["shipping-db"]);
        assert_eq!(
            api.kubernetes,
            Some(KubernetesRef {
                namespace: "logistics".into(),
                deployment: "shipping-api".into()
            }),
            "from Backstage's Kubernetes annotations"
        );
        assert_eq!(api.capabilities, ["shipping"]);
        let db = &f.services["shipping-db"];
        assert_eq!(db.depends_on, ["shipping-db-1", "shipping-db-2"]);
        assert_eq!(db.requires, Requires::AtLeast(1));
        assert!(
            f.cis
                .iter()
                .any(|c| c.id == "pg-ship-1" && c.service == "shipping-db-1")
        );
        assert!(
            warnings.iter().any(|w| w.contains("ghost")),
            "a dependency on an unknown entity is reported: {warnings:?}"
        );
        // Owners and links: spec.owner, metadata.links, d2c.io annotations.
        assert_eq!(api.owner.as_deref(), Some("logistics-team"));
        assert_eq!(api.team.as_deref(), Some("logistics-team"));
        assert_eq!(
            api.runbook.as_deref(),
            Some("https://runbooks.example.com/shipping-api")
        );
        assert_eq!(
            api.dashboard.as_deref(),
            Some("https://grafana.example.com/d/shipping")
        );
        assert_eq!(
            api.oncall.as_deref(),
            Some("https://example.pagerduty.com/schedules/LOGI")
        );
        assert_eq!(f.services["shipping-db-1"].owner.as_deref(), Some("dba"));
        let t = crate::topology::Topology::build(f).unwrap();
        assert!(t.needs("shipping-api", "shipping-db-2"));
        let c = t.context_of("shipping-api");
        assert_eq!(c.team.as_deref(), Some("logistics-team"));
    }

    #[test]
    fn the_file_wins_over_the_catalog() {
        let page: Page = serde_json::from_str(PAGE).unwrap();
        let (catalog, _) = to_topology(&page.items);
        let file: TopologyFile = toml::from_str(
            "[capabilities.shipping]\ncriticality = \"low\"\nrevenue_per_minute = 1.0\n\
             [services.shipping-api]\ncapabilities = [\"shipping\"]\n\
             [[cis]]\nid = \"pg-ship-1\"\nservice = \"shipping-api\"\n",
        )
        .unwrap();
        let merged = merge(file, catalog);
        assert_eq!(merged.capabilities["shipping"].revenue_per_minute, 1.0);
        assert!(merged.services["shipping-api"].depends_on.is_empty());
        assert!(
            merged.services.contains_key("shipping-db"),
            "the catalog adds the rest"
        );
        let ci: Vec<_> = merged.cis.iter().filter(|c| c.id == "pg-ship-1").collect();
        assert_eq!(ci.len(), 1);
        assert_eq!(ci[0].service, "shipping-api");
        crate::topology::Topology::build(merged).unwrap();
    }
}
