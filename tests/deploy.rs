//! The deployment files are checked by the tools that will read them: the Compose file by
//! docker-compose, the Prometheus configuration and alerting rules by promtool, including the
//! rules' unit tests. A missing tool fails the test: a check that is skipped cannot catch anything.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

/// Runs `tool args…` in the repository root and panics, with the tool's output, unless it
/// succeeds. `package` is the Debian package that provides `tool`.
fn run(tool: &str, args: &[&str], package: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = match Command::new(tool).args(args).current_dir(root).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{tool}` is not installed: install it with scripts/test.sh (Debian package {package})"
        ),
        Err(e) => panic!("could not run `{tool}`: {e}"),
    };
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn compose_file_is_valid() {
    run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        "docker-compose",
    );
}

#[test]
fn prometheus_rules_pass_promtool_check() {
    run(
        "promtool",
        &["check", "rules", "deploy/prometheus/rules/d2c.yml"],
        "prometheus",
    );
}

#[test]
fn prometheus_rules_unit_tests_pass() {
    run(
        "promtool",
        &["test", "rules", "deploy/prometheus/tests/d2c_test.yml"],
        "prometheus",
    );
}

#[test]
fn business_rules_pass_promtool_check_and_their_unit_tests() {
    run(
        "promtool",
        &["check", "rules", "deploy/prometheus/rules/business.yml"],
        "prometheus",
    );
    run(
        "promtool",
        &["test", "rules", "deploy/prometheus/tests/business_test.yml"],
        "prometheus",
    );
}

#[test]
fn prometheus_config_passes_promtool() {
    // Also checks every rule file the configuration loads.
    run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        "prometheus",
    );
}
