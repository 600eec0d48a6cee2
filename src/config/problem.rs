//! `[problem]`: when recurring incidents become a problem, and how much of that the engines
//! remember. Checked once at start-up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Recurring incidents → problems (README "Problems").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProblemConfig {
    /// Incidents with the same signature within `window` that open a problem; `0` turns
    /// recurrence detection off (problems can still be opened by hand). Default: `3`.
    pub threshold: u32,
    /// See `threshold`. Default: `7d`.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// What makes incidents "the same": `service_and_alerts` (their root-cause service and the
    /// alert names on it) or `service` (the root-cause service alone). Default:
    /// `service_and_alerts`.
    pub signature: SignatureMode,
    /// Most problems remembered per events partition. Past it, the oldest resolved problems go
    /// first, then those whose last incident is oldest (`d2c_state_evictions_total{kind="problem"}`).
    /// Default: `10000`.
    pub max_problems: usize,
    /// Most signatures whose recent incidents are counted toward `threshold`, per events
    /// partition; past it, the one with the oldest incident is forgotten. Default: `10000`.
    pub max_candidates: usize,
    /// A resolved problem is forgotten this long after it resolved. Default: `30d`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// See [`ProblemConfig::signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMode {
    ServiceAndAlerts,
    Service,
}

impl Default for ProblemConfig {
    fn default() -> Self {
        ProblemConfig {
            threshold: 3,
            window: Duration::from_secs(7 * 24 * 3600),
            signature: SignatureMode::ServiceAndAlerts,
            max_problems: 10_000,
            max_candidates: 10_000,
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl ProblemConfig {
    /// Cross-field checks: `(key, message)` of the first mistake.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.threshold > 0 && self.window.is_zero() {
            return Err((
                "problem.window".into(),
                "is 0; incidents could never recur within it (set threshold = 0 to turn recurrence off)".into(),
            ));
        }
        if self.threshold == 1 {
            return Err((
                "problem.threshold".into(),
                "is 1, which would make every incident a problem; use 2 or more (0 turns recurrence off)".into(),
            ));
        }
        if self.max_problems < 10 {
            return Err((
                "problem.max_problems".into(),
                format!("is {}; it must be at least 10", self.max_problems),
            ));
        }
        if self.max_candidates < 10 {
            return Err((
                "problem.max_candidates".into(),
                format!("is {}; it must be at least 10", self.max_candidates),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_three_in_seven_days_and_mistakes_name_the_key() {
        let d = ProblemConfig::default();
        assert_eq!((d.threshold, d.window.as_secs()), (3, 7 * 24 * 3600));
        assert_eq!(d.validate(), Ok(()));
        let bad = |text: &str| {
            toml::from_str::<ProblemConfig>(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .0
        };
        assert_eq!(bad("threshold = 1"), "problem.threshold");
        assert_eq!(bad("window = \"0s\""), "problem.window");
        assert_eq!(bad("max_problems = 1"), "problem.max_problems");
        let off: ProblemConfig = toml::from_str("threshold = 0\nwindow = \"0s\"").unwrap();
        assert_eq!(off.validate(), Ok(()), "recurrence off needs no window");
    }
}
