//! A full checkpoint writes the alerts in the order of their fingerprints, as the ordered map
//! they once were: the sort by 8-byte prefixes gives exactly the strings' order.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::correlate::state::in_key_order;

#[test]
fn alerts_sorted_by_prefix_come_in_the_order_of_their_fingerprints() {
    let mut keys: Vec<String> = [
        "",
        "a",
        "ab",
        "ab\0",
        "ab\0x",
        "ab\u{1}",
        "abcdefgh",
        "abcdefgh\0",
        "abcdefghi",
        "abcdefgg~",
        "abcdefgi",
        "zz",
        "é",
        "e\u{301}",
        "\u{10FFFF}",
        "ABCDEFGH",
        "abcdefgh0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Hashes, as most fingerprints are, and keys sharing long prefixes.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys.push(format!("{x:016x}"));
        keys.push(format!("alertname=DiskFull,host=web-{i:05}"));
    }
    let arcs: Vec<Arc<str>> = keys.iter().map(|k| Arc::from(k.as_str())).collect();
    let got: Vec<&str> = in_key_order(arcs.iter().rev().map(|k| (k, ())))
        .map(|(k, ())| &**k)
        .collect();
    let expected: Vec<&str> = keys
        .iter()
        .map(|k| (k.as_str(), ()))
        .collect::<BTreeMap<_, _>>()
        .into_keys()
        .collect();
    assert_eq!(got, expected);
}
