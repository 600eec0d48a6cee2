//! Everything d2c loads from disk at start-up: the settings file, and the topology and change
//! policy files it points to. `d2c check` runs exactly this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::change::ChangePolicy;
use crate::config::{self, Config, ConfigError};
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
}

impl Settings {
    /// Loads and checks the settings file at `file` and the files it names.
    pub fn load(file: &Path) -> Result<Settings, ConfigError> {
        let loaded = config::load(file)?;
        let topology_file = loaded.resolve(&loaded.config.topology);
        let policy_file = loaded.resolve(&loaded.config.change_policy);
        let topology = Topology::load(&topology_file)?;
        let policy = ChangePolicy::load(&policy_file)?;
        Ok(Settings {
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
            include_str!("../config/d2c.toml"),
            Path::new("(embedded) config/d2c.toml"),
        )?;
        let topology = Topology::from_str(
            include_str!("../config/topology.toml"),
            Path::new("(embedded) config/topology.toml"),
        )?;
        let policy = ChangePolicy::from_str(
            include_str!("../config/change-policy.toml"),
            Path::new("(embedded) config/change-policy.toml"),
        )?;
        Ok(Settings {
            config: loaded.config,
            config_file: loaded.file,
            topology_file: PathBuf::from("(embedded) config/topology.toml"),
            policy_file: PathBuf::from("(embedded) config/change-policy.toml"),
            topology: Arc::new(topology),
            policy: Arc::new(policy),
        })
    }
}
