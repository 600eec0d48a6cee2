//! The annotations an alert keeps from the event that fired it (`summary`, `description`,
//! `runbook_url`, `dashboard` …): what an on-call engineer reads and follows. Every active alert
//! lives in memory, so they are bounded: text values only, links and descriptions first, at most
//! [`MAX_ANNOTATIONS`] of them in [`MAX_ANNOTATION_BYTES`].

use std::collections::BTreeMap;

use crate::model::Labels;

/// Most annotations an alert keeps.
pub const MAX_ANNOTATIONS: usize = 8;
/// Most bytes (keys and values) of the annotations an alert keeps.
pub const MAX_ANNOTATION_BYTES: usize = 1024;
/// Longest value kept whole; longer ones are cut (at a character boundary) and end in `…`.
const MAX_VALUE_BYTES: usize = 512;

/// Kept first, in this order: what people follow or read.
const FIRST: [&str; 9] = [
    "runbook_url",
    "runbook",
    "dashboard",
    "dashboard_url",
    "summary",
    "description",
    "message",
    "generatorURL",
    "url",
];

/// Attributes parsers add about the delivery, not the alert.
const SKIPPED: [&str; 2] = ["receiver", "externalURL"];

/// The annotations to keep of an event's `attributes`.
pub fn annotations(attributes: &BTreeMap<String, serde_json::Value>) -> Labels {
    if attributes.is_empty() {
        return Labels::default();
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let first = FIRST.iter().filter_map(|k| attributes.get_key_value(*k));
    let rest = attributes
        .iter()
        .filter(|(k, _)| !FIRST.contains(&k.as_str()) && !SKIPPED.contains(&k.as_str()));
    let mut kept = BTreeMap::new();
    let mut bytes = 0;
    for (k, v) in first.chain(rest) {
        if kept.len() == MAX_ANNOTATIONS {
            break;
        }
        let Some(mut value) = text(v).filter(|v| !v.is_empty()) else {
            continue;
        };
        if value.len() > MAX_VALUE_BYTES {
            let mut end = MAX_VALUE_BYTES - '…'.len_utf8();
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
            value.push('…');
        }
        if bytes + k.len() + value.len() > MAX_ANNOTATION_BYTES {
            continue;
        }
        bytes += k.len() + value.len();
        kept.insert(k.clone(), value);
    }
    Labels::from_map(&kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn keeps_text_links_first_and_stays_bounded() {
        let a = annotations(&attrs(json!({
            "runbook_url": "https://rb/x", "receiver": "d2c", "attempts": 3,
            "nested": {"a": 1}, "description": "x".repeat(2000), "summary": "down",
        })));
        assert_eq!(a.get("runbook_url"), Some("https://rb/x"));
        assert_eq!(a.get("summary"), Some("down"));
        assert_eq!(a.get("attempts"), Some("3"));
        assert_eq!(a.get("receiver"), None, "delivery metadata");
        assert_eq!(a.get("nested"), None, "not text");
        let d = a.get("description").unwrap();
        assert!(
            d.len() <= MAX_VALUE_BYTES && d.ends_with('…'),
            "{}",
            d.len()
        );
        let many: BTreeMap<String, serde_json::Value> = (0..100)
            .map(|i| (format!("k{i:03}"), json!("v".repeat(100))))
            .collect();
        let a = annotations(&many);
        let total: usize = a.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(a.iter().count() <= MAX_ANNOTATIONS && total <= MAX_ANNOTATION_BYTES);
        assert!(a.iter().count() > 0);
    }
}
