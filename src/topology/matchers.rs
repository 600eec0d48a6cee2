//! CIs found by their labels (`[[cis]] match = { instance = "10.0.0.7:9100" }`): an event about
//! a CI the model does not name by id belongs to the first CI, in the model's order, all of
//! whose match labels it carries with the same values.
//!
//! Indexed by one label of each rule (its first by key): an event costs the rules that share
//! one of its label values, not every rule of the model. Walking them all cost an event whose
//! CI the model does not know 490,000 instructions with 2,000 rules (BENCHMARKS.md, round 3p),
//! and every alert of a host outside the model pays it.

use std::collections::BTreeMap;

use crate::model::hashing::HashMap;

/// The match rules of a service model.
#[derive(Debug, Clone, Default)]
pub(super) struct Matchers {
    /// Each rule's labels and its CI, in the model's order.
    rules: Vec<(BTreeMap<String, String>, String)>,
    /// The rules by their first label: name → value → their indices, ascending.
    by_first: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl Matchers {
    /// Indexes `rules` (labels, CI), in the model's order; rules without labels match nothing
    /// and are left out.
    pub fn new(rules: impl IntoIterator<Item = (BTreeMap<String, String>, String)>) -> Matchers {
        let rules: Vec<_> = rules.into_iter().filter(|(m, _)| !m.is_empty()).collect();
        let mut by_first: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::default();
        for (i, (m, _)) in rules.iter().enumerate() {
            if let Some((k, v)) = m.iter().next() {
                by_first
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(i);
            }
        }
        Matchers { rules, by_first }
    }

    /// The CI of the first rule all of whose labels `labels` carries.
    pub fn find(&self, labels: &BTreeMap<String, String>) -> Option<&str> {
        if self.rules.is_empty() {
            return None;
        }
        let mut best: Option<usize> = None;
        for (k, v) in labels {
            let Some(rules) = self.by_first.get(k).and_then(|by| by.get(v)) else {
                continue;
            };
            // Ascending: the first that matches is this label's best, and none after an
            // earlier rule already found can win.
            for &i in rules {
                if best.is_some_and(|b| i >= b) {
                    break;
                }
                if self.rules[i]
                    .0
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
                {
                    best = Some(i);
                    break;
                }
            }
        }
        best.map(|i| self.rules[i].1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What the index must answer: the first rule, in order, whose labels all match.
    fn walk<'a>(
        rules: &'a [(BTreeMap<String, String>, String)],
        l: &BTreeMap<String, String>,
    ) -> Option<&'a str> {
        rules
            .iter()
            .find(|(m, _)| !m.is_empty() && m.iter().all(|(k, v)| l.get(k) == Some(v)))
            .map(|(_, ci)| ci.as_str())
    }

    #[test]
    fn the_first_rule_in_the_model_order_wins_as_a_walk_over_every_rule_would_find() {
        let rules = vec![
            (
                labels(&[("instance", "a:9100"), ("job", "node")]),
                "ci-1".into(),
            ),
            (labels(&[("instance", "a:9100")]), "ci-2".into()),
            (labels(&[("job", "node"), ("zone", "z1")]), "ci-3".into()),
            (labels(&[("instance", "b:9100")]), "ci-4".into()),
            (labels(&[]), "never".into()),
            (labels(&[("zone", "z1")]), "ci-5".into()),
        ];
        let index = Matchers::new(rules.clone());
        let events = [
            labels(&[("instance", "a:9100"), ("job", "node")]),
            labels(&[("instance", "a:9100"), ("job", "other")]),
            labels(&[("instance", "a:9100"), ("job", "node"), ("zone", "z1")]),
            labels(&[("job", "node"), ("zone", "z1")]),
            labels(&[("zone", "z1")]),
            labels(&[("zone", "z2"), ("job", "node")]),
            labels(&[("instance", "b:9100"), ("zone", "z1")]),
            labels(&[]),
        ];
        let want = [
            Some("ci-1"),
            Some("ci-2"),
            Some("ci-1"),
            Some("ci-3"),
            Some("ci-5"),
            None,
            Some("ci-4"),
            None,
        ];
        for (l, want) in events.iter().zip(want) {
            assert_eq!(index.find(l), want, "{l:?}");
            assert_eq!(index.find(l), walk(&rules, l), "{l:?}");
        }
    }

    #[test]
    fn many_rules_over_shared_labels_answer_as_the_walk() {
        // Rules share first labels and values; events carry subsets of their labels.
        let mut rules = Vec::new();
        for i in 0..300 {
            let mut m = labels(&[
                ("env", ["prod", "dev"][i % 2]),
                ("host", &format!("h{}", i % 37)),
            ]);
            if i % 3 == 0 {
                m.insert("job".into(), format!("j{}", i % 5));
            }
            rules.push((m, format!("ci-{i}")));
        }
        let index = Matchers::new(rules.clone());
        for e in 0..400 {
            let mut l = labels(&[("host", &format!("h{}", e % 41))]);
            if e % 2 == 0 {
                l.insert("env".into(), ["prod", "dev", "qa"][e % 3].into());
            }
            if e % 5 != 0 {
                l.insert("job".into(), format!("j{}", e % 7));
            }
            assert_eq!(index.find(&l), walk(&rules, &l), "{l:?}");
        }
    }
}
