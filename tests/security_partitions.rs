//! Security triage spread over several events partitions (`correlation.security.partition =
//! "entity"`): the attack scenario replayed as a pipeline with several partitions correlates it
//! (`d2c replay --partitions N`), one engine per partition.

use std::path::Path;

use d2c::config::SecurityPartition;
use d2c::engine::Settings;
use d2c::pipeline::partition_of;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn settings(assets: bool) -> Settings {
    let mut s = Settings::load(&root().join("config/d2c.toml")).unwrap();
    let security = &mut s.config.correlation.security;
    security.partition = SecurityPartition::Entity;
    if assets {
        security.assets.insert("10.0.1.5".into(), "web-1".into());
    }
    s
}

fn replay(s: &Settings, partitions: i32) -> Vec<String> {
    let input = std::fs::read(root().join("tests/scenarios/attack.jsonl")).unwrap();
    let mut out = Vec::new();
    d2c::replay::run_partitioned(s, partitions, input.as_slice(), &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn expected() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("tests/scenarios/attack.expected.jsonl"));
    text.unwrap().lines().map(String::from).collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn the_attack_scenario_is_unchanged_when_its_two_attacks_are_correlated_on_different_partitions() {
    // The two attacked hosts land on different partitions of three, so this is not one engine
    // doing all the work.
    assert_ne!(
        partition_of("security:host:web-1", 3),
        partition_of("security:host:db-2", 3)
    );
    let s = settings(true);
    // One partition: byte for byte the scenario's expected output.
    assert_eq!(replay(&s, 1), expected());
    // Three and seven: the same records (a tick's outputs come partition by partition, so
    // only their order may differ).
    for n in [3, 7] {
        assert_eq!(sorted(replay(&s, n)), sorted(expected()), "{n} partitions");
    }
}

#[test]
fn without_an_asset_entry_a_network_alert_on_an_address_is_correlated_apart_from_its_host() {
    // What the README warns of: the sensor's alert names 10.0.1.5, the host's own detections
    // web-1, and nothing before correlation links the two.
    assert_ne!(
        partition_of("security:ip:10.0.1.5", 3),
        partition_of("security:host:web-1", 3)
    );
    let records = replay(&settings(false), 3);
    let mut ids: Vec<String> = records
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "incident")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        3,
        "web-1's attack split in two beside db-2's: {ids:?}"
    );
}
