//! Shared helpers of the integration tests: a real tansu broker on loopback, the d2c binary as a
//! child process, and Kafka clients built on the project's own rdkafka.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The tansu binary: `D2C_TANSU_BIN`, or the cache `scripts/install-tansu.sh` builds into.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("D2C_TANSU_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("D2C_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| PathBuf::from(home).join(".cache"))
                .join("d2c")
        });
    let p = cache.join("tansu-0.6.0/bin/tansu");
    assert!(
        p.exists(),
        "tansu is not installed at {}; run scripts/test.sh, which builds it once",
        p.display()
    );
    p
}

/// A tansu broker with in-memory storage on a free loopback port, killed on drop.
pub struct Tansu {
    child: Child,
    pub port: u16,
}

impl Tansu {
    /// A broker with in-memory storage.
    pub fn start() -> Tansu {
        Tansu::start_with(free_port(), "memory://tansu/", None)
    }

    /// A broker with in-memory storage on `port`.
    pub fn start_with_port(port: u16) -> Tansu {
        Tansu::start_with(port, "memory://tansu/", None)
    }

    /// A broker run as `tansu broker` with `args` added (e.g. `--authentication`), listening
    /// on `port` and telling clients to connect to `advertised` (a TLS front, say), with its
    /// data in `sqlite://tansu.db` in `dir`.
    pub fn start_custom(port: u16, advertised: u16, dir: &std::path::Path, args: &[&str]) -> Tansu {
        let mut cmd = Command::new(tansu_bin());
        cmd.args([
            "broker",
            "--storage-engine",
            "sqlite://tansu.db",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised}"),
        ])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd.spawn().expect("tansu starts");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "tansu did not listen on {port}"
        );
        Tansu { child, port }
    }

    /// A broker that keeps its data in the SQLite file `tansu.db` in `dir`, so it survives a
    /// restart on the same port and directory.
    pub fn start_sqlite(port: u16, dir: &std::path::Path) -> Tansu {
        Tansu::start_with(port, "sqlite://tansu.db", Some(dir))
    }

    fn start_with(port: u16, storage: &str, dir: Option<&std::path::Path>) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(tansu_bin());
        cmd.args([
            "broker",
            "--storage-engine",
            storage,
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let child = cmd.spawn().expect("tansu starts");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "tansu did not listen on {port}"
        );
        Tansu { child, port }
    }

    /// Stops the broker with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The d2c binary running `run` with the example config and environment overrides.
pub struct D2c {
    pub child: Child,
    pub http: String,
}

impl D2c {
    pub fn start(brokers: &str, extra_env: &[(&str, &str)]) -> D2c {
        let root = env!("CARGO_MANIFEST_DIR");
        D2c::start_config(
            std::path::Path::new(&format!("{root}/config/d2c.toml")),
            brokers,
            extra_env,
        )
    }

    /// As [`D2c::start`], with the settings file `config`.
    pub fn start_config(
        config: &std::path::Path,
        brokers: &str,
        extra_env: &[(&str, &str)],
    ) -> D2c {
        let http_port = free_port();
        let http = format!("127.0.0.1:{http_port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_d2c"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .env("D2C_KAFKA__BROKERS", brokers)
            .env("D2C_HTTP__LISTEN", &http)
            .env("D2C_KAFKA__PARTITIONS", "3")
            // The scenarios carry fixed event times far from the wall clock: wall-clock ticks
            // would close and forget their incidents, and `d2c replay` (the reference) has
            // none. Time moves with event times only, as in replay.
            .env("D2C_INGEST__TICK_INTERVAL", "0s")
            .env("D2C_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("d2c starts");
        assert!(
            wait_for_port(http_port, Duration::from_secs(30)),
            "d2c did not serve HTTP on {http}"
        );
        D2c { child, http }
    }

    /// The d2c binary running `run` with `config/d2c.toml` as it is: only the brokers, the
    /// listen address and the log level are overridden (and `extra_env`).
    pub fn start_defaults(brokers: &str, extra_env: &[(&str, &str)]) -> D2c {
        D2c::start_defaults_logged(brokers, extra_env, None)
    }

    /// As [`D2c::start_defaults`], with standard error written to `log` when given.
    pub fn start_defaults_logged(
        brokers: &str,
        extra_env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> D2c {
        let http_port = free_port();
        let http = format!("127.0.0.1:{http_port}");
        let root = env!("CARGO_MANIFEST_DIR");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_d2c"));
        cmd.args(["run", "--config", &format!("{root}/config/d2c.toml")])
            .env("D2C_KAFKA__BROKERS", brokers)
            .env("D2C_HTTP__LISTEN", &http)
            .env("D2C_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::inherit(),
            });
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("d2c starts");
        assert!(
            wait_for_port(http_port, Duration::from_secs(30)),
            "d2c did not serve HTTP on {http}"
        );
        D2c { child, http }
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self, within: Duration) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if http_get(&self.http, "/readyz").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("d2c at {} was not ready within {within:?}", self.http);
    }

    /// One sample of this instance's `/metrics`, e.g. `d2c_partitions_owned`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric(&http_get(&self.http, "/metrics").1, series)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < end,
                "d2c did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for D2c {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the d2c serving HTTP on `http` correlates at least one partition (it joined the
/// group, got an assignment and restored state); false if not within `within`.
pub fn wait_owning(http: &str, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if metric(&http_get(http, "/metrics").1, "d2c_partitions_owned").unwrap_or(0.0) >= 1.0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A minimal HTTP/1.1 GET over a std TCP stream: (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    parse_http_response(&buf)
}

/// A minimal HTTP/1.1 POST of a JSON body over a std TCP stream: (status, body).
pub fn http_post(addr: &str, path: &str, json: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    parse_http_response(&buf)
}

/// Status code and body of a raw HTTP/1.1 response (status 0 when unreadable).
pub fn parse_http_response(raw: &str) -> (u16, String) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

/// Sends one record to `topic` (each attempt waiting up to `per_send` for the broker's
/// acknowledgement) until the broker acknowledges it; an error `again` accepts is waited out
/// (200 ms, then the record is sent again) until `within` has passed. Returns the error that
/// ended it otherwise.
async fn send_until(
    p: &FutureProducer,
    (topic, key, payload): (&str, &str, &[u8]),
    per_send: Duration,
    within: Duration,
    again: impl Fn(&KafkaError) -> bool,
) -> Result<(), KafkaError> {
    let end = Instant::now() + within;
    loop {
        let sent = p
            .send(
                FutureRecord::<str, [u8]>::to(topic)
                    .key(key)
                    .payload(payload),
                Timeout::After(per_send),
            )
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err((e, _)) if again(&e) && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Produces each payload as one record, all with one key (so they keep their order, as one
/// tool's events would), and waits for every acknowledgement. A record tansu refuses with its
/// unknown error (what it answers for a moment after a restart, partition by partition, so a
/// probe of another topic does not prove this one writable) is sent again, for at most 30 s:
/// refused, it was not written, so sending it again neither loses nor doubles it.
pub async fn produce_all(p: &FutureProducer, topic: &str, payloads: &[Vec<u8>]) {
    let refused =
        |e: &KafkaError| matches!(e, KafkaError::MessageProduction(RDKafkaErrorCode::Unknown));
    for payload in payloads {
        let record = (topic, "test-source", payload.as_slice());
        let thirty = Duration::from_secs(30);
        if let Err(e) = send_until(p, record, thirty, thirty, refused).await {
            panic!("test record acknowledged: {e}");
        }
    }
}

/// Waits until the broker at `brokers` acknowledges a record on `topic` (one the test does not
/// read), sending another while it refuses them: tansu answers produce requests with an unknown
/// error for a moment after a restart, before it serves them again. Fails the test after
/// `within`.
pub async fn wait_writable(brokers: &str, topic: &str, within: Duration) {
    let p = producer(brokers);
    let probe = (topic, "test-probe", &b"probe"[..]);
    if let Err(e) = send_until(&p, probe, Duration::from_secs(5), within, |_| true).await {
        panic!("{topic} not writable within {within:?}: {e}");
    }
}

/// One record read back: payload and headers.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's timestamp (milliseconds; for d2c's outputs, when it was published).
    pub timestamp: Option<i64>,
}

impl Record {
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("output record is JSON")
    }
}

/// Reads every partition of `topic` from the beginning until `done` holds for what was read or
/// `within` has passed; returns what was read.
pub fn read_until(
    brokers: &str,
    topic: &str,
    partitions: i32,
    within: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-reader-{}", free_port()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let end = Instant::now() + within;
    let mut out = Vec::new();
    let mut checked = 0;
    while Instant::now() < end {
        let m = c.poll(Duration::from_millis(200));
        // `done` may be costly: ask it when the topic is idle or every 500 records.
        if (m.is_none() || out.len() >= checked + 500) && {
            checked = out.len();
            done(&out)
        } {
            break;
        }
        if let Some(Ok(m)) = m {
            out.push(Record {
                timestamp: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or(&[]).to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or(&[]).to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// The value of one sample in Prometheus text output, e.g. `d2c_dlq_records_total{reason="oversize"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A storm of raw payloads over `hosts` unmapped hosts (each its own correlation domain, so
/// they spread over partitions) and the example shop, `rounds` times: per host and round, two
/// alerts fire, one repeats, both resolve; every fifth round the payments database fails under
/// its services (Alertmanager payloads). Event time moves forward monotonically. About
/// `5 × hosts × rounds` events.
pub fn storm(hosts: usize, rounds: usize) -> Vec<Vec<u8>> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    storm_from(hosts, rounds, base, 1000)
}

/// [`storm`] with event times from `base`, a scenario second lasting `ms_per_second`
/// milliseconds of event time (100 plays it ten times faster).
pub fn storm_from(
    hosts: usize,
    rounds: usize,
    base: chrono::DateTime<chrono::Utc>,
    ms_per_second: i64,
) -> Vec<Vec<u8>> {
    use serde_json::json;
    let ts = |secs: i64| {
        (base + chrono::Duration::milliseconds(secs * ms_per_second))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let native = |name: &str, ci: &str, sev: &str, status: &str, t: i64| {
        json!({"name": name, "ci": ci, "severity": sev, "status": status, "time": ts(t)})
            .to_string()
            .into_bytes()
    };
    let am = |status: &str, alertname: &str, labels: serde_json::Value, t: i64| {
        let mut l = labels;
        l["alertname"] = json!(alertname);
        json!({"version": "4", "groupKey": "{}", "status": status, "receiver": "d2c",
               "alerts": [{"status": status, "labels": l, "annotations": {},
                           "startsAt": ts(t), "endsAt": if status == "resolved" { ts(t) } else { "0001-01-01T00:00:00Z".to_string() }}]})
        .to_string()
        .into_bytes()
    };
    let mut out = Vec::new();
    for r in 0..rounds as i64 {
        let t0 = r * 120;
        let outage = r % 5 == 2;
        let pg = json!({"job": "postgres", "cluster": "payments", "severity": "critical"});
        // (step time, what) — steps run across all hosts before the next step.
        for step in 0..5i64 {
            let t = t0 + step * 10;
            for h in 0..hosts {
                let ci = format!("host-{h}");
                let sev = ["warning", "major", "critical"][(h + r as usize) % 3];
                out.push(match step {
                    0 => native("DiskFull", &ci, sev, "firing", t),
                    1 => native("HighLoad", &ci, "warning", "firing", t),
                    2 => native("DiskFull", &ci, sev, "firing", t),
                    3 => native("DiskFull", &ci, sev, "resolved", t),
                    _ => native("HighLoad", &ci, "warning", "resolved", t),
                });
            }
            if outage {
                match step {
                    0 => out.push(am("firing", "PostgresDown", pg.clone(), t)),
                    1 => out.push(native(
                        "HighErrorRate",
                        "payments-api-7f9c",
                        "critical",
                        "firing",
                        t,
                    )),
                    2 => out.push(native(
                        "HighLatency",
                        "checkout-api-5c1a",
                        "major",
                        "firing",
                        t,
                    )),
                    3 => out.push(am("resolved", "PostgresDown", pg.clone(), t)),
                    _ => {
                        out.push(native(
                            "HighErrorRate",
                            "payments-api-7f9c",
                            "critical",
                            "resolved",
                            t,
                        ));
                        out.push(native(
                            "HighLatency",
                            "checkout-api-5c1a",
                            "major",
                            "resolved",
                            t,
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The `(id, version)` pairs `d2c replay` gives for `payloads` with the example configuration
/// and `env` overrides: what an uninterrupted run publishes.
/// Runs `d2c replay --config <config>` over `payloads` (one per line) with `env` set, and
/// returns its output records.
pub fn replay_records(
    config: &std::path::Path,
    payloads: &[Vec<u8>],
    env: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.jsonl");
    let mut text = Vec::new();
    for p in payloads {
        text.extend_from_slice(p);
        text.push(b'\n');
    }
    std::fs::write(&input, text).unwrap();
    replay_file(config, &input, env)
}

/// Runs `d2c replay --config <config> <input>` with `env` set, and returns its output records.
pub fn replay_file(
    config: &std::path::Path,
    input: &std::path::Path,
    env: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_d2c"));
    cmd.args(["replay", "--config"])
        .arg(config)
        .arg(input)
        .env("D2C_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

pub fn replay_incident_versions(
    payloads: &[Vec<u8>],
    env: &[(&str, &str)],
) -> std::collections::BTreeSet<(String, u64)> {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/d2c.toml");
    incident_versions(replay_records(&config, payloads, env))
}

/// The `(id, version)` pairs of the incident records among `records`.
pub fn incident_versions(
    records: impl IntoIterator<Item = serde_json::Value>,
) -> std::collections::BTreeSet<(String, u64)> {
    records
        .into_iter()
        .filter(|v| v["type"] == "incident")
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Asserts every incident's versions run 1..=n without a gap.
pub fn assert_no_version_gaps(set: &std::collections::BTreeSet<(String, u64)>) {
    let mut max: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for (id, v) in set {
        let e = max.entry(id).or_insert((0, 0));
        e.0 = e.0.max(*v);
        e.1 += 1;
    }
    for (id, (highest, count)) in max {
        assert_eq!(highest, count, "incident {id} has version gaps");
    }
}

/// The mock cluster in a process of its own (`d2c mock-broker`), killed on drop.
pub struct MockBroker {
    child: Child,
    pub bootstrap: String,
}

impl MockBroker {
    pub fn start(partitions: u32) -> MockBroker {
        use std::io::BufRead;
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new(env!("CARGO_BIN_EXE_d2c"))
            .args([
                "mock-broker",
                "--config",
                &format!("{root}/config/d2c.toml"),
            ])
            .env("D2C_KAFKA__PARTITIONS", partitions.to_string())
            .env("D2C_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("d2c mock-broker starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap=")
            .unwrap_or_else(|| panic!("unexpected mock-broker output: {line}"))
            .to_string();
        MockBroker { child, bootstrap }
    }
}

impl MockBroker {
    /// Freezes the broker process (SIGSTOP): its connections stay open and nothing answers, as
    /// with a broker behind a network partition. Dropping it still kills it.
    pub fn freeze(&self) {
        let _ = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status();
    }

    /// Kills the broker process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic pseudo-random sequence (xorshift), seeded and printed by tests so a
/// failing run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `lo..hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// A headless Chromium driven over WebDriver: Debian's `chromedriver` (from `chromium-driver`,
/// which `scripts/test.sh` installs) on a free port with a fresh profile, both removed on drop.
pub struct Browser {
    driver: Child,
    pub client: fantoccini::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        // A process group of its own, which the Chromium it starts joins: ending the group
        // ends the browser too, even when a test panics before closing its session.
        let driver = Command::new(
            std::env::var("D2C_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
        )
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/test.sh installs Debian's chromium-driver)");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "chromedriver did not listen on {port}"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-crash-reporter",
            "--disable-breakpad",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = serde_json::json!({ "args": args });
        let binary = std::env::var("D2C_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if std::path::Path::new(&binary).exists() {
            options["binary"] = serde_json::json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let mut client = None;
        // chromedriver answers before Chromium is always ready on a busy machine: try again.
        for _ in 0..5 {
            match fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) => {
                    eprintln!("starting Chromium: {e}; trying again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        Browser {
            driver,
            client: client.expect("Chromium starts under chromedriver"),
            _profile: profile,
        }
    }

    /// Ends the browser session, then chromedriver and whatever is left of the browser.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        drop(self);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}
