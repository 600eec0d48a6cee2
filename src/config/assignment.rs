//! `kafka.assignment`: how the stages' consumer groups move partitions between instances (read
//! by the pipeline's consumers, see README "Configuration").

use serde::{Deserialize, Serialize};

/// `kafka.assignment`: the consumer groups' partition assignment strategy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// Incremental rebalances: members keep the partitions that do not move.
    #[default]
    Cooperative,
    /// Stop-the-world rebalances: every member gives up every partition.
    Eager,
}

impl Assignment {
    /// The value of librdkafka's `partition.assignment.strategy`.
    pub fn strategy(self) -> &'static str {
        match self {
            Assignment::Cooperative => "cooperative-sticky",
            Assignment::Eager => "range,roundrobin",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Assignment;
    use crate::config::{Config, load_str};

    #[test]
    fn cooperative_by_default_eager_on_request_and_nothing_else() {
        assert_eq!(
            Config::default().kafka.assignment.strategy(),
            "cooperative-sticky"
        );
        let l = load_str("[kafka]\nassignment = \"eager\"\n", Path::new("d2c.toml")).unwrap();
        assert_eq!(l.config.kafka.assignment, Assignment::Eager);
        assert_eq!(l.config.kafka.assignment.strategy(), "range,roundrobin");
        let e = load_str("[kafka]\nassignment = \"sticky\"\n", Path::new("d2c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d2c.toml:2:"), "{e}");
        assert!(e.contains("cooperative") && e.contains("eager"), "{e}");
    }
}
