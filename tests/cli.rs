//! The command line as a user meets it: `d2c check` on good and bad files, environment
//! overrides, and `d2c replay` on a scenario mixing formats and garbage.

use std::path::Path;
use std::process::{Command, Output};

fn d2c(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_d2c"));
    c.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("D2C_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("d2c runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config directory with the example topology and policy and the given settings text.
fn config_dir(settings: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for f in ["topology.toml", "change-policy.toml"] {
        std::fs::copy(root.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("d2c.toml"), settings).unwrap();
    dir
}

#[test]
fn check_accepts_the_example_configuration() {
    let o = d2c(&["check", "--config", "config/d2c.toml"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ok (14 services, 6 capabilities, 3 change rules"),
        "{out}"
    );
}

#[test]
fn check_names_file_line_and_problem() {
    let dir = config_dir("[kafka]\nbrokers = \"k:9092\"\npartitions = 0\n");
    let file = dir.path().join("d2c.toml");
    let o = d2c(&["check", "--config", file.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}:3: `kafka.partitions` is 0", file.display())),
        "{e}"
    );

    let dir = config_dir("[correlation]\nwindow = 5\n");
    let file = dir.path().join("d2c.toml");
    let e = stderr(&d2c(&["check", "--config", file.to_str().unwrap()], &[]));
    assert!(e.contains(&format!("{}:2:", file.display())), "{e}");

    // Suppression rules are checked too, naming the rule.
    let dir = config_dir(
        "[kafka]\nbrokers = \"k:9092\"\n\n[[suppression.maintenance]]\nname = \"patching\"\n\
         targets = [\"pg-payments-1\"]\ntimes = [\"25:00-02:00\"]\n",
    );
    let file = dir.path().join("d2c.toml");
    let o = d2c(&["check", "--config", file.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(&format!("{}:4:", file.display())), "{e}");
    assert!(
        e.contains("maintenance[0]") && e.contains("25:00-02:00"),
        "{e}"
    );
}

#[test]
fn check_names_the_topology_file_and_line() {
    let dir = config_dir("");
    let topo = dir.path().join("topology.toml");
    let text = std::fs::read_to_string(&topo).unwrap();
    std::fs::write(
        &topo,
        text.replace(
            "depends_on = [\"payments-db\"]",
            "depends_on = [\"payments-dbx\"]",
        ),
    )
    .unwrap();
    let o = d2c(
        &[
            "check",
            "--config",
            dir.path().join("d2c.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("topology.toml:"), "{e}");
    assert!(
        e.contains("`services.payments-api.depends_on` names `payments-dbx`"),
        "{e}"
    );
}

#[test]
fn environment_overrides_any_value_and_is_checked_too() {
    let o = d2c(
        &["check", "--config", "config/d2c.toml"],
        &[("D2C_HTTP__LISTEN", "not-an-address")],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("environment variable D2C_HTTP__LISTEN: `http.listen` is `not-an-address`"),
        "{}",
        stderr(&o)
    );
    let o = d2c(
        &["check", "--config", "config/d2c.toml"],
        &[("D2C_KAFKA__PARTITIONS", "many")],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("environment variable D2C_KAFKA__PARTITIONS: `kafka.partitions` invalid type: found string \"many\", expected i32"),
        "{}",
        stderr(&o)
    );
    // Unrelated D2C_ variables are left alone.
    let o = d2c(
        &["check", "--config", "config/d2c.toml"],
        &[("D2C_SOMETHING_ELSE", "x")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn replay_is_byte_identical_and_matches_the_expected_output() {
    let args = [
        "replay",
        "--config",
        "config/d2c.toml",
        "tests/scenarios/outage.jsonl",
    ];
    let a = d2c(&args, &[]);
    let b = d2c(&args, &[]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout, "two replays of the same input differ");
    let expected = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/outage.expected.jsonl"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&expected),
        "replay output changed; if on purpose, regenerate the expected file (see tests/scenarios/README.md)"
    );
    let lines: Vec<serde_json::Value> = a
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let count = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    assert_eq!(count("dlq"), 3);
    // The RFC, and its withdrawal when the outage resolved before anyone approved it.
    assert_eq!(count("change"), 2);
    let ids: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["type"] == "incident")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "the outage and the unrelated email backlog");
}

#[test]
fn the_attack_scenario_replays_byte_identical_to_its_expected_output() {
    let args = [
        "replay",
        "--config",
        "config/d2c.toml",
        "tests/scenarios/attack.jsonl",
    ];
    let a = d2c(&args, &[]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, d2c(&args, &[]).stdout, "two replays differ");
    let expected = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/attack.expected.jsonl"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&expected),
        "replay output changed; if on purpose, regenerate the expected file (see tests/scenarios/README.md)"
    );
}

#[test]
fn replay_reads_standard_input() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_d2c"));
    c.args(["replay", "--config", "config/d2c.toml", "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        // A tick past the group wait publishes the incident's first version.
        .write_all(b"{\"name\":\"Down\",\"time\":\"2026-01-01T00:00:00Z\",\"ci\":\"web-1\",\"severity\":\"critical\"}\n{\"tick\":\"2026-01-01T00:05:00Z\"}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("{\"type\":\"incident\",\"id\":\"INC-"),
        "{out}"
    );
}

/// A mass outage on one incident: its record would pass the producer's `message.max.bytes`, so
/// it lists its first alerts and counts the rest instead of being refused by the broker.
#[test]
fn an_incident_too_long_for_one_record_lists_its_first_alerts() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml"))
            .unwrap();
    let dir = config_dir(&format!(
        "{example}\n[kafka.properties]\n\"message.max.bytes\" = \"100000\"\n"
    ));
    let mut input = String::new();
    for k in 0..2_000 {
        input.push_str(&format!(
            "{{\"name\":\"Down\",\"time\":\"2026-01-01T00:00:{:02}.{:03}Z\",\"ci\":\"web-1\",\"severity\":\"critical\",\"labels\":{{\"host\":\"h{k}\"}}}}\n",
            k / 1000,
            k % 1000
        ));
    }
    input.push_str("{\"tick\":\"2026-01-01T00:05:00Z\"}\n");
    let file = dir.path().join("outage.jsonl");
    std::fs::write(&file, input).unwrap();
    let config = dir.path().join("d2c.toml");
    let o = d2c(
        &[
            "replay",
            "--config",
            config.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        // Records d2c ingests must fit the smaller producer limit too.
        &[("D2C_INGEST__MAX_RECORD_BYTES", "50000")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let incidents: Vec<serde_json::Value> = out
        .lines()
        .inspect(|l| assert!(l.len() <= 100_000 - 1024, "a record of {} bytes", l.len()))
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["type"] == "incident")
        .collect();
    assert_eq!(incidents.len(), 1, "one incident, one version: {out:.300}");
    let i = &incidents[0];
    let listed = i["alerts"].as_array().unwrap();
    assert!(listed.len() > 100, "as many as fit: {}", listed.len());
    assert_eq!(
        listed.len() as u64 + i["alerts_omitted"].as_u64().unwrap(),
        2_000
    );
    assert_eq!(listed[0]["labels"]["host"], "h0", "the first to join");
    assert!(
        i["title"]
            .as_str()
            .unwrap()
            .ends_with("and 1999 more alerts"),
        "{}",
        i["title"]
    );
}

/// An error names its cause once, though the error's own message already carries it.
#[test]
fn a_missing_file_is_named_with_its_cause_once() {
    let o = d2c(&["replay", "--config", "no/such/d2c.toml", "-"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("no/such/d2c.toml"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    // A cause the message does not carry is still said.
    let o = d2c(
        &[
            "replay",
            "--config",
            "config/d2c.toml",
            "no/such/input.jsonl",
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(
        err.contains("cannot open no/such/input.jsonl") && err.contains("os error 2"),
        "{err}"
    );
}
