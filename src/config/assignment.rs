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
