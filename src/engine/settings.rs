//! What an engine is built from, loaded from disk at start-up: the settings file, and the
//! topology and change policy files it points to, with the suppression rules checked. `d2c
//! check` runs exactly this; every stage and `d2c replay` build their engines from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::change::ChangePolicy;
use crate::config::{self, Config, ConfigError};
use crate::suppress::Suppressor;
use crate::topology::Topology;

/// The checked configuration of one d2c process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub config_file: PathBuf,
    pub topology_file: PathBuf,
    pub policy_file: PathBuf,
    pub topology: Arc<Topology>,
    pub policy: Arc<ChangePolicy>,
    /// The checked `[suppression]` rules; each engine gets a copy (it keeps inhibition state).
    pub suppressor: Suppressor,
}

/// The checked suppression rules of `config`, or an error naming the rule.
fn suppressor(config: &Config, file: &Path, text: Option<&str>) -> Result<Suppressor, ConfigError> {
    Suppressor::new(config.suppression.clone()).map_err(|e| ConfigError::Invalid {
        file: file.to_path_buf(),
        line: text.and_then(|t| {
            t.lines()
                .position(|l| {
                    l.trim_start().starts_with("[[suppression")
                        || l.trim_start().starts_with("[suppression")
                })
                .map(|i| i + 1)
        }),
        key: "suppression".into(),
        message: e.to_string(),
    })
}

/// Every runbook a change-policy rule names is one of `[[automation.runbooks]]`: a rule naming a
/// missing one would never run.
fn runbooks_exist(config: &Config, policy: &ChangePolicy, file: &Path) -> Result<(), ConfigError> {
    for r in &policy.rules {
        let Some(name) = &r.automation else {
            continue;
        };
        if config.automation.runbook(name).is_none() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            return Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.contains("automation") && l.contains(name.as_str()))
                    .map(|i| i + 1),
                key: format!("rules[{}].automation", r.name),
                message: format!(
                    "names runbook `{name}`, which is not one of [[automation.runbooks]] in the settings file"
                ),
            });
        }
    }
    Ok(())
}

impl Settings {
    /// Loads and checks the settings file at `file` and the files it names.
    pub fn load(file: &Path) -> Result<Settings, ConfigError> {
        let loaded = config::load(file)?;
        let topology_file = loaded.resolve(&loaded.config.topology);
        let policy_file = loaded.resolve(&loaded.config.change_policy);
        let topology = Topology::load(&topology_file)?;
        let policy = ChangePolicy::load(&policy_file)?;
        let text = std::fs::read_to_string(file).ok();
        let suppressor = suppressor(&loaded.config, file, text.as_deref())?;
        runbooks_exist(&loaded.config, &policy, &policy_file)?;
        Ok(Settings {
            suppressor,
            config: loaded.config,
            config_file: loaded.file,
            topology_file,
            policy_file,
            topology: Arc::new(topology),
            policy: Arc::new(policy),
        })
    }
}

impl Settings {
    /// The example configuration shipped in `config/`, compiled into the binary so `d2c demo`
    /// works from any directory. Environment overrides apply as for a file.
    pub fn embedded() -> Result<Settings, ConfigError> {
        let loaded = config::load_str(
            include_str!("../../config/d2c.toml"),
            Path::new("(embedded) config/d2c.toml"),
        )?;
        let topology = Topology::from_str(
            include_str!("../../config/topology.toml"),
            Path::new("(embedded) config/topology.toml"),
        )?;
        let policy = ChangePolicy::from_str(
            include_str!("../../config/change-policy.toml"),
            Path::new("(embedded) config/change-policy.toml"),
        )?;
        let suppressor = suppressor(
            &loaded.config,
            &loaded.file,
            Some(include_str!("../../config/d2c.toml")),
        )?;
        runbooks_exist(
            &loaded.config,
            &policy,
            Path::new("(embedded) config/change-policy.toml"),
        )?;
        Ok(Settings {
            suppressor,
            config: loaded.config,
            config_file: loaded.file,
            topology_file: PathBuf::from("(embedded) config/topology.toml"),
            policy_file: PathBuf::from("(embedded) config/change-policy.toml"),
            topology: Arc::new(topology),
            policy: Arc::new(policy),
        })
    }
}

impl Settings {
    /// A new correlation engine with these settings (topology, policy, rules, suppression).
    pub fn engine(&self) -> crate::engine::Engine {
        self.equip(crate::engine::Engine::new(
            self.topology.clone(),
            self.policy.clone(),
            self.config.correlation.clone(),
        ))
    }

    /// A correlation engine with these settings, continuing from a checkpointed `state`.
    pub fn engine_with_state(&self, state: crate::engine::EngineState) -> crate::engine::Engine {
        self.equip(crate::engine::Engine::with_state(
            self.topology.clone(),
            self.policy.clone(),
            self.config.correlation.clone(),
            state,
        ))
    }

    fn equip(&self, engine: crate::engine::Engine) -> crate::engine::Engine {
        let engine = engine.with_problems(self.config.problem.clone());
        let s = &self.config.suppression;
        if s.silences.is_empty() && s.maintenance.is_empty() && s.inhibit.is_empty() {
            engine
        } else {
            engine.with_suppressor(self.suppressor.clone())
        }
    }
}
