//! Shared helpers of the integration tests: a real tansu broker on loopback, the d2c binary as a
//! child process, and Kafka clients built on the project's own rdkafka.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
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
    pub fn start() -> Tansu {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "tansu did not listen on {port}"
        );
        Tansu { child, port }
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
        let http_port = free_port();
        let http = format!("127.0.0.1:{http_port}");
        let root = env!("CARGO_MANIFEST_DIR");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_d2c"));
        cmd.args(["run", "--config", &format!("{root}/config/d2c.toml")])
            .env("D2C_KAFKA__BROKERS", brokers)
            .env("D2C_HTTP__LISTEN", &http)
            .env("D2C_KAFKA__PARTITIONS", "3")
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
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
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

/// Produces each payload as one record, all with one key (so they keep their order, as one
/// tool's events would), and waits for every acknowledgement.
pub async fn produce_all(p: &FutureProducer, topic: &str, payloads: &[Vec<u8>]) {
    for payload in payloads {
        p.send(
            FutureRecord::<str, Vec<u8>>::to(topic)
                .key("test-source")
                .payload(payload),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("test record acknowledged");
    }
}

/// One record read back: payload and headers.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
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
    while Instant::now() < end && !done(&out) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(Record {
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
