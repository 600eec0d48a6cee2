//! Routing of events to correlation domains: security detections by the entity they are about
//! under `correlation.security.partition = "entity"`, in one domain otherwise.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use crate::config::{CorrelationConfig, SecurityPartition};
use crate::correlate::route::domain;
use crate::correlate::security::attacked_entity;
use crate::model::{Category, Event, Severity, Status};
use crate::topology::{SECURITY_DOMAIN, Topology};

fn event(category: Category, labels: &[(&str, &str)]) -> Event {
    Event {
        id: "e".into(),
        source: "tool".into(),
        time: Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap(),
        ci: None,
        name: "rule".into(),
        severity: Severity::Major,
        status: Status::Firing,
        category,
        fingerprint: "f".into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        attributes: Default::default(),
    }
}

fn entity_config() -> CorrelationConfig {
    let mut c = CorrelationConfig::default();
    c.security.partition = SecurityPartition::Entity;
    c.security.assets.insert("10.0.1.5".into(), "web-1".into());
    c.security.shared_ips.push("10.0.0.1".into());
    c
}

#[test]
fn a_detection_is_about_its_host_else_the_attacked_address_else_its_user_else_the_source() {
    let cfg = entity_config().security;
    let about = |labels: &[(&str, &str)]| attacked_entity(&cfg, &event(Category::Security, labels));
    // A host detection: its host, whatever addresses it names.
    let host = [("host", "db-2"), ("src_ip", "198.51.100.23")];
    assert_eq!(about(&host).as_deref(), Some("host:db-2"));
    // A network sensor's alert on a known address: the host the assets name, so it meets that
    // host's own detections.
    let known = [("dest_ip", "10.0.1.5"), ("src_ip", "203.0.113.7")];
    assert_eq!(about(&known).as_deref(), Some("host:web-1"));
    // On an unknown address: the address attacked, not the attacker's.
    let unknown = [("dest_ip", "10.0.9.9"), ("src_ip", "203.0.113.7")];
    assert_eq!(about(&unknown).as_deref(), Some("ip:10.0.9.9"));
    // A shared address is skipped like in grouping; then the user, unless a built-in account.
    let shared = [("dest_ip", "10.0.0.1"), ("user", "alice")];
    assert_eq!(about(&shared).as_deref(), Some("user:alice"));
    let root = [
        ("dest_ip", "10.0.0.1"),
        ("user", "root"),
        ("src_ip", "203.0.113.9"),
    ];
    assert_eq!(about(&root).as_deref(), Some("ip:203.0.113.9"));
    assert_eq!(about(&[("rule_id", "1")]), None);
}

#[test]
fn security_events_spread_by_entity_only_when_configured_and_other_events_keep_their_domain() {
    let topo = Topology::default();
    let labels = [("host", "web-1")];
    let sec = event(Category::Security, &labels);
    let ops = event(Category::Availability, &labels);
    let one = CorrelationConfig::default();
    let entity = entity_config();
    let dom = |cfg: &CorrelationConfig, ev: &Event| domain(&topo, cfg, ev);
    assert_eq!(dom(&one, &sec), SECURITY_DOMAIN);
    assert_eq!(dom(&entity, &sec), "security:host:web-1");
    // Nothing to name: the one security domain, as before.
    let anonymous = event(Category::Security, &[]);
    assert_eq!(dom(&entity, &anonymous), SECURITY_DOMAIN);
    // Operational events route by the service model whatever the security setting.
    assert_eq!(dom(&entity, &ops), dom(&one, &ops));
    assert_ne!(dom(&entity, &ops), dom(&entity, &sec));
}
