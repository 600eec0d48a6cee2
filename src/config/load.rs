//! Loading the settings file: TOML syntax and types checked with line numbers, then environment
//! overrides (`D2C_<SECTION>__<KEY>`) merged with figment, then cross-field checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::Config;

/// Why a configuration could not be used. Every variant names the file (or the environment) and,
/// where it can, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{}: `{key}` {message}", file.display(), line.map_or("-".to_string(), |l| l.to_string()))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("environment override: {0}")]
    Env(String),
    #[error("environment variable {var}: `{key}` {message}")]
    EnvInvalid {
        var: String,
        key: String,
        message: String,
    },
}

/// A settings file, parsed and checked, with the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub file: PathBuf,
}

impl Loaded {
    /// Resolves a path from the settings file against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }
}

/// The top-level keys an environment variable may override; other `D2C_*` variables (such as
/// `D2C_LOG`) are left alone.
const SECTIONS: [&str; 13] = [
    "topology",
    "change_policy",
    "kafka",
    "topics",
    "http",
    "ingest",
    "correlation",
    "suppression",
    "state",
    "backstage",
    "notify",
    "problem",
    "automation",
];

/// Reads, parses, overrides from the environment and validates the settings file at `file`.
pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    load_str(&text, file)
}

/// As [`load`], from text already read; `file` is used in messages and to resolve paths.
pub fn load_str(text: &str, file: &Path) -> Result<Loaded, ConfigError> {
    // First pass without the environment: toml's own errors carry the position in the file.
    toml::from_str::<Config>(text).map_err(|e| syntax_error(file, text, &e))?;
    let env = Env::prefixed("D2C_").split("__").filter(|k| {
        let section = k.as_str().split('.').next().unwrap_or("");
        SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
    });
    let config: Config = Figment::from(Toml::string(text))
        .merge(env)
        .extract()
        .map_err(|e| {
            if e.path.is_empty() {
                ConfigError::Env(e.to_string())
            } else {
                ConfigError::EnvInvalid {
                    var: format!("D2C_{}", e.path.join("__").to_ascii_uppercase()),
                    key: e.path.join(".").to_ascii_lowercase(),
                    message: e.kind.to_string(),
                }
            }
        })?;
    validate(&config, text, file)?;
    Ok(Loaded {
        config,
        file: file.to_path_buf(),
    })
}

/// Turns a toml error into a `Syntax` error with 1-based line and column.
pub(crate) fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map(|s| position(text, s.start)).unwrap_or((1, 1));
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The 1-based line where the dotted key `a.b` is set in `text`, if it is set there: a line
/// `b = …` inside the table `[a]`, or `a.b = …` / `b = …` at the top level.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix('[') {
            current = rest
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            continue;
        }
        let Some((lhs, _)) = line.split_once('=') else {
            continue;
        };
        let lhs = lhs.trim().trim_matches('"');
        if (current == table && lhs == leaf) || (current.is_empty() && lhs == key) {
            return Some(i + 1);
        }
    }
    None
}

/// Upper bound of `kafka.in_flight_batches`.
const MAX_IN_FLIGHT_BATCHES: usize = 64;

fn validate(c: &Config, text: &str, file: &Path) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| {
        let var = format!("D2C_{}", key.replace('.', "__").to_ascii_uppercase());
        if std::env::var_os(&var).is_some() {
            ConfigError::EnvInvalid {
                var,
                key: key.to_string(),
                message,
            }
        } else {
            ConfigError::Invalid {
                file: file.to_path_buf(),
                line: line_of(text, key),
                key: key.to_string(),
                message,
            }
        }
    };
    if c.kafka.brokers.trim().is_empty() {
        return Err(invalid(
            "kafka.brokers",
            "is empty; give at least one host:port".into(),
        ));
    }
    if c.kafka.group_id.trim().is_empty() {
        return Err(invalid("kafka.group_id", "is empty".into()));
    }
    if c.kafka.partitions < 1 {
        return Err(invalid(
            "kafka.partitions",
            format!("is {}; it must be at least 1", c.kafka.partitions),
        ));
    }
    if c.kafka.replication_factor < 1 {
        return Err(invalid(
            "kafka.replication_factor",
            format!("is {}; it must be at least 1", c.kafka.replication_factor),
        ));
    }
    if c.kafka.batch_max_records == 0 {
        return Err(invalid(
            "kafka.batch_max_records",
            "is 0; it must be at least 1".into(),
        ));
    }
    if c.kafka.in_flight_batches > MAX_IN_FLIGHT_BATCHES {
        return Err(invalid(
            "kafka.in_flight_batches",
            format!(
                "is {}; at most {MAX_IN_FLIGHT_BATCHES} (each holds up to kafka.batch_max_records outputs until the broker acknowledges them)",
                c.kafka.in_flight_batches
            ),
        ));
    }
    if c.kafka.session_timeout.as_millis() < 1000 {
        return Err(invalid(
            "kafka.session_timeout",
            "is below 1s, which brokers reject".into(),
        ));
    }
    let topics = c.topics.all();
    for (i, (key, name)) in topics.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(invalid(key, "is empty; every topic needs a name".into()));
        }
        if let Some((other, _)) = topics[..i].iter().find(|(_, n)| n == name) {
            return Err(invalid(
                key,
                format!("is `{name}`, the same topic as `{other}`; each role needs its own topic"),
            ));
        }
    }
    if c.http.listen.parse::<SocketAddr>().is_err() {
        return Err(invalid(
            "http.listen",
            format!(
                "is `{}`, not an address such as `127.0.0.1:9464`",
                c.http.listen
            ),
        ));
    }
    if let Err(e) = c.http.validate() {
        return Err(invalid(&e.key, e.message));
    }
    if c.backstage.enabled() {
        let url = c.backstage.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "backstage.url",
                format!("is `{url}`; give the http:// or https:// address of Backstage's backend"),
            ));
        }
        if c.backstage.refresh_interval < Duration::from_secs(1) {
            return Err(invalid(
                "backstage.refresh_interval",
                "is below 1s; the catalog changes far slower than that".into(),
            ));
        }
        if c.backstage.timeout.is_zero() {
            return Err(invalid(
                "backstage.timeout",
                "is 0; give a timeout such as 10s".into(),
            ));
        }
    }
    if c.ingest.max_record_bytes == 0 {
        return Err(invalid(
            "ingest.max_record_bytes",
            "is 0; it must be at least 1".into(),
        ));
    }
    let writable = c
        .kafka
        .max_message_bytes()
        .saturating_sub(super::RECORD_KEY_ROOM);
    if c.ingest.max_record_bytes > writable {
        return Err(invalid(
            "ingest.max_record_bytes",
            format!(
                "is {}, more than the producer writes ({} bytes: `message.max.bytes` {} minus {} for the key); lower it, or raise kafka.properties.\"message.max.bytes\" together with the brokers' `message.max.bytes`",
                c.ingest.max_record_bytes,
                writable,
                c.kafka.max_message_bytes(),
                super::RECORD_KEY_ROOM
            ),
        ));
    }
    if let Err(e) = c.kafka.security.check(&c.kafka.properties) {
        return Err(invalid(&e.key, e.message));
    }
    if c.kafka.stall_timeout < Duration::from_secs(1) {
        return Err(invalid(
            "kafka.stall_timeout",
            "is below 1s; a healthy broker can take longer than that to acknowledge a batch".into(),
        ));
    }
    if c.http.header_timeout.is_zero() || c.http.body_timeout.is_zero() {
        let key = if c.http.header_timeout.is_zero() {
            "http.header_timeout"
        } else {
            "http.body_timeout"
        };
        return Err(invalid(key, "is 0; give a timeout such as 10s".into()));
    }
    if c.http.max_connections == 0 {
        return Err(invalid(
            "http.max_connections",
            "is 0; the server could take no connection".into(),
        ));
    }
    if c.ingest.max_events_per_record == 0 {
        return Err(invalid(
            "ingest.max_events_per_record",
            "is 0; it must be at least 1".into(),
        ));
    }
    if c.ingest.max_expansion < 2 {
        return Err(invalid(
            "ingest.max_expansion",
            format!(
                "is {}; events take more memory than their JSON, so it must be at least 2 (default 20)",
                c.ingest.max_expansion
            ),
        ));
    }
    if c.correlation.window.is_zero() {
        return Err(invalid(
            "correlation.window",
            "is 0; alerts could never join an incident".into(),
        ));
    }
    if let Err(e) = c.notify.validate() {
        return Err(invalid(&e.key, e.message));
    }
    if let Err((key, message)) = c.problem.validate() {
        return Err(invalid(&key, message));
    }
    if let Err((key, message)) = c.automation.validate() {
        return Err(invalid(&key, message));
    }
    let security = &c.correlation.security;
    if security.window.is_zero() {
        return Err(invalid(
            "correlation.security.window",
            "is 0; detections could never join a security incident".into(),
        ));
    }
    if security.quiet_period.is_zero() {
        return Err(invalid(
            "correlation.security.quiet_period",
            "is 0; security incidents would close as they open".into(),
        ));
    }
    if c.state.chunk_bytes < 1024 {
        return Err(invalid(
            "state.chunk_bytes",
            format!("is {}; it must be at least 1024", c.state.chunk_bytes),
        ));
    }
    if c.state.incremental && c.state.full_every == 0 {
        return Err(invalid(
            "state.full_every",
            "is 0 with state.incremental on; use at least 1, or set incremental = false".into(),
        ));
    }
    if c.state.checkpoint_interval.is_zero() {
        return Err(invalid(
            "state.checkpoint_interval",
            "is 0; use a small value such as `100ms` for frequent checkpoints".into(),
        ));
    }
    if c.kafka
        .group_instance_id
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        return Err(invalid(
            "kafka.group_instance_id",
            "is empty; leave it out for dynamic membership".into(),
        ));
    }
    if c.correlation.max_alerts < 10 {
        return Err(invalid(
            "correlation.max_alerts",
            format!("is {}; it must be at least 10", c.correlation.max_alerts),
        ));
    }
    if c.correlation.max_incidents < 10 {
        return Err(invalid(
            "correlation.max_incidents",
            format!("is {}; it must be at least 10", c.correlation.max_incidents),
        ));
    }
    if c.correlation.group_wait_max < c.correlation.group_wait {
        return Err(invalid(
            "correlation.group_wait_max",
            "is shorter than `correlation.group_wait`; the cap would cut every wait short".into(),
        ));
    }
    if c.correlation.retention < c.correlation.window {
        return Err(invalid(
            "correlation.retention",
            "is shorter than `correlation.window`; resolved incidents would be forgotten while their alerts can still correlate".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        load_str(text, Path::new("d2c.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let l = load_str("", Path::new("d2c.toml")).unwrap();
        assert_eq!(l.config, Config::default());
        assert_eq!(l.config.topics.raw, "d2c.events.raw");
        assert_eq!(l.config.correlation.window.as_secs(), 300);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let e = err("[kafka]\nbrokers = \"a:1\"\npartitions = \"six\"\n");
        assert!(e.starts_with("d2c.toml:3:"), "{e}");
        assert!(e.contains("expected i32"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let e = err("[kafka]\nbrokers = \"a:1\"\nbrokrs = \"b:2\"\n");
        assert!(e.starts_with("d2c.toml:3:"), "{e}");
        assert!(e.contains("brokrs"), "{e}");
    }

    #[test]
    fn semantic_error_names_key_and_line() {
        let e = err("[http]\n\nlisten = \"nowhere\"\n");
        assert_eq!(
            e,
            "d2c.toml:3: `http.listen` is `nowhere`, not an address such as `127.0.0.1:9464`"
        );
        let e = err("[topics]\nraw = \"x\"\nevents = \"x\"\n");
        assert!(e.starts_with("d2c.toml:3: `topics.events`"), "{e}");
    }

    #[test]
    fn durations_are_human_readable() {
        let l = load_str("[correlation]\nwindow = \"90s\"\n", Path::new("x.toml")).unwrap();
        assert_eq!(l.config.correlation.window.as_secs(), 90);
        let e = err("[correlation]\nwindow = \"soon\"\n");
        assert!(
            e.starts_with("x.toml:2:") || e.starts_with("d2c.toml:2:"),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let l = load_str("", Path::new("/etc/d2c/d2c.toml")).unwrap();
        assert_eq!(
            l.resolve(&l.config.topology),
            PathBuf::from("/etc/d2c/topology.toml")
        );
    }

    #[test]
    fn line_of_finds_keys_in_tables_and_top_level() {
        let t = "topology = \"t.toml\"\n[kafka]\n# c\nbrokers = \"x\"\n[http]\nlisten=\"y\"\n";
        assert_eq!(line_of(t, "topology"), Some(1));
        assert_eq!(line_of(t, "kafka.brokers"), Some(4));
        assert_eq!(line_of(t, "http.listen"), Some(6));
        assert_eq!(line_of(t, "kafka.group_id"), None);
    }

    #[test]
    fn security_settings_have_defaults_and_are_checked() {
        let l = load_str("", Path::new("d2c.toml")).unwrap();
        let security = &l.config.correlation.security;
        assert_eq!(security.window, std::time::Duration::from_secs(1800));
        assert_eq!(security.quiet_period, std::time::Duration::from_secs(3600));
        assert_eq!(l.config.topics.security, None);
        assert_eq!(l.config.topics.all().len(), 8);
        let text = "[topics]\nsecurity = \"d2c.security\"\n\n[correlation.security]\n\
                    window = \"10m\"\nassets = { \"10.0.1.5\" = \"web-1\" }\n";
        let l = load_str(text, Path::new("d2c.toml")).unwrap();
        assert_eq!(
            l.config.topics.all().last(),
            Some(&("topics.security", "d2c.security"))
        );
        assert_eq!(l.config.correlation.security.assets["10.0.1.5"], "web-1");
        let e = err("[topics]\nsecurity = \"d2c.incidents\"\n");
        assert!(
            e.starts_with("d2c.toml:2: `topics.security` is `d2c.incidents`"),
            "{e}"
        );
        let e = err("[correlation.security]\nquiet_period = \"0s\"\n");
        assert!(
            e.starts_with("d2c.toml:2: `correlation.security.quiet_period` is 0"),
            "{e}"
        );
    }
}
