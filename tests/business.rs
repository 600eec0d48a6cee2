//! Business impact seen where SREs look: a real Prometheus server (Debian package `prometheus`)
//! scrapes a running d2c, and PromQL through Prometheus's HTTP API returns the capability's
//! state and revenue at risk. The example topology's orders database is a redundant pair
//! (`requires = "any"`): one replica down leaves order tracking degraded with no P1; both down
//! take it down, the incident is P1, and the revenue at risk equals the capability's configured
//! revenue per minute. The read API (`GET /api/v1/…`) says the same.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A Prometheus server scraping `target` every second, with its data in a temporary directory.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: d2c\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = match Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot run `prometheus` ({e}): install it with scripts/test.sh (Debian package prometheus)"
            ),
        };
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(60);
        while http_get(&p.addr, "/-/ready").0 != 200 {
            assert!(Instant::now() < end, "Prometheus was not ready within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// The value of the single sample `promql` returns now, if it returns one.
    async fn query(&self, promql: &str) -> Option<f64> {
        let url = reqwest::Url::parse_with_params(
            &format!("http://{}/api/v1/query", self.addr),
            &[("query", promql)],
        )
        .unwrap();
        let resp: Value = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        assert_eq!(resp["status"], "success", "{promql}: {resp}");
        let result = resp["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Waits until `promql` returns `want` (within 60 s), and returns what it returned last.
    async fn wait_for(&self, promql: &str, want: f64) -> Option<f64> {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.query(promql).await;
            if got == Some(want) || Instant::now() > end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post_event(http: &str, ci: &str, offset_secs: i64) {
    let time = chrono::Utc::now() - chrono::Duration::seconds(offset_secs);
    let body = json!({
        "name": "PostgresDown",
        "time": time.to_rfc3339(),
        "severity": "critical",
        "status": "firing",
        "ci": ci,
        "source": "synthetics",
    });
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/events/native"))
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("d2c answers");
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

async fn get_json(http: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("http://{http}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("d2c answers")
        .json()
        .await
        .expect("JSON")
}

async fn capability(http: &str, name: &str) -> Value {
    let all = get_json(http, "/api/v1/capabilities").await;
    all["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["capability"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no capability {name} in {all}"))
}

/// Polls the read API until `check` holds for capability `name` (within 60 s).
async fn wait_capability(http: &str, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let c = capability(http, name).await;
        if check(&c) || Instant::now() > end {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_a_redundant_pair_degrade_then_go_down_with_the_revenue_at_risk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let topo = d2c::topology::Topology::load(&root.join("config/topology.toml")).unwrap();
    let revenue = topo
        .capability("order-tracking")
        .expect("the example topology has order-tracking")
        .revenue_per_minute;
    let broker = Tansu::start();
    // Without ticks a first version would wait for a later event: publish at once.
    let d2c = D2c::start(&broker.brokers(), &[("D2C_CORRELATION__GROUP_WAIT", "0s")]);
    d2c.wait_ready(Duration::from_secs(60));
    let prom = Prometheus::start(&d2c.http);
    let cap = |state: &str| {
        format!(
            "d2c_capability_state{{job=\"d2c\",capability=\"order-tracking\",state=\"{state}\"}}"
        )
    };
    let at_risk =
        "d2c_capability_revenue_at_risk_per_minute{job=\"d2c\",capability=\"order-tracking\"}";
    assert_eq!(
        prom.wait_for(&cap("up"), 1.0).await,
        Some(1.0),
        "scraped, all up"
    );

    // One replica fails: degraded, half the revenue at risk, no P1.
    post_event(&d2c.http, "pg-orders-a", 30).await;
    let c = wait_capability(&d2c.http, "order-tracking", |c| c["state"] == "degraded").await;
    assert_eq!(c["state"], "degraded", "{c}");
    assert_eq!(c["health"], 50.0, "{c}");
    assert_eq!(prom.wait_for(&cap("degraded"), 1.0).await, Some(1.0));
    assert_eq!(
        prom.wait_for(at_risk, revenue / 2.0).await,
        Some(revenue / 2.0)
    );
    assert_eq!(prom.query(&cap("down")).await, Some(0.0));
    let p1 = get_json(&d2c.http, "/api/v1/incidents?priority=P1").await;
    assert_eq!(p1["count"], 0, "no P1 while a replica still serves: {p1}");
    let open = get_json(
        &d2c.http,
        "/api/v1/incidents?capability=order-tracking&status=open",
    )
    .await;
    assert_eq!(open["count"], 1, "{open}");
    assert_eq!(open["incidents"][0]["priority"], "P2", "{open}");
    assert_eq!(
        prom.query("d2c_incidents_open{job=\"d2c\",priority=\"P1\"}")
            .await,
        Some(0.0)
    );

    // The other replica fails too: down, the full revenue at risk, P1.
    post_event(&d2c.http, "pg-orders-b", 20).await;
    let c = wait_capability(&d2c.http, "order-tracking", |c| c["state"] == "down").await;
    assert_eq!(c["state"], "down", "{c}");
    assert_eq!(c["revenue_at_risk_per_minute"], revenue, "{c}");
    assert_eq!(c["users_affected"], c["users"], "{c}");
    assert_eq!(prom.wait_for(&cap("down"), 1.0).await, Some(1.0));
    assert_eq!(
        prom.wait_for(at_risk, revenue).await,
        Some(revenue),
        "revenue at risk queried from Prometheus equals the configured revenue per minute"
    );
    let p1 = get_json(&d2c.http, "/api/v1/incidents?priority=P1").await;
    assert_eq!(p1["count"], 1, "{p1}");
    let incident = &p1["incidents"][0];
    assert_eq!(
        incident["capabilities"],
        json!(["order-tracking"]),
        "{incident}"
    );
    assert_eq!(
        incident["alerts"].as_array().unwrap().len(),
        2,
        "one incident for the pair"
    );
    let id = incident["id"].as_str().unwrap();
    let one = get_json(&d2c.http, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(one["id"], id);
    assert_eq!(
        prom.wait_for("d2c_incidents_open{job=\"d2c\",priority=\"P1\"}", 1.0)
            .await,
        Some(1.0)
    );
    // MTTD was observed for the incident (one opening, P2 at the time).
    assert_eq!(
        prom.wait_for(
            "sum(d2c_mttd_seconds_count{job=\"d2c\",capability=\"order-tracking\"})",
            1.0
        )
        .await,
        Some(1.0)
    );
    let services = get_json(&d2c.http, "/api/v1/services").await;
    let db = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "orders-db")
        .unwrap();
    assert_eq!(
        (db["state"].clone(), db["requires"].clone()),
        (json!("down"), json!("any"))
    );
    // Unknown filters are refused with a readable reason.
    let bad = get_json(&d2c.http, "/api/v1/incidents?priority=P9").await;
    assert!(bad["error"].as_str().unwrap().contains("P9"), "{bad}");
}

/// A Backstage catalog over real TCP serving the fixture; answers 503 while `down` is set.
async fn fake_backstage(down: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    use axum::http::StatusCode;
    use std::sync::atomic::Ordering;
    let page = include_str!("fixtures/backstage/entities.json");
    let app = axum::Router::new().route(
        "/api/catalog/entities/by-query",
        axum::routing::get(move || {
            let down = down.load(Ordering::SeqCst);
            async move {
                if down {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "catalog is restarting".to_string(),
                    )
                } else {
                    (StatusCode::OK, page.to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The service model merges the Backstage catalog (fetched over HTTP) under the topology file:
/// an event on a CI only the catalog knows maps to the catalog's capability; when the catalog
/// fails, the last good model stays and the failures are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backstage_catalog_extends_the_topology_refresh_and_a_failing_fetch_keeps_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let down = std::sync::Arc::new(AtomicBool::new(false));
    let url = fake_backstage(down.clone()).await;
    let broker = Tansu::start();
    let d2c = D2c::start(
        &broker.brokers(),
        &[
            ("D2C_BACKSTAGE__URL", url.as_str()),
            ("D2C_BACKSTAGE__REFRESH_INTERVAL", "1s"),
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
        ],
    );
    d2c.wait_ready(Duration::from_secs(60));
    // The file's capabilities and the catalog's `shipping` system, side by side (the read API
    // takes the model in use within a second).
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let caps = get_json(&d2c.http, "/api/v1/capabilities").await;
        let names: Vec<&str> = caps["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["capability"].as_str().unwrap())
            .collect();
        if names.contains(&"shipping") && names.contains(&"online-payments") {
            break;
        }
        assert!(Instant::now() < end, "no catalog capability: {names:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // One replica of the catalog's redundant shipping database fails.
    post_event(&d2c.http, "pg-ship-1", 10).await;
    let c = wait_capability(&d2c.http, "shipping", |c| c["state"] == "degraded").await;
    assert_eq!(c["state"], "degraded", "{c}");
    assert_eq!(
        c["criticality"], "high",
        "from the catalog's domain annotation: {c}"
    );
    let open = get_json(&d2c.http, "/api/v1/incidents?capability=shipping").await;
    assert_eq!(open["count"], 1, "{open}");

    // The catalog goes away: refreshes fail and are counted, the model stays.
    down.store(true, Ordering::SeqCst);
    let failed = "d2c_topology_refreshes_total{result=\"failed\",source=\"backstage\"}";
    let end = Instant::now() + Duration::from_secs(30);
    while d2c.metric(failed).unwrap_or(0.0) < 2.0 {
        assert!(Instant::now() < end, "no failed refresh counted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let c = capability(&d2c.http, "shipping").await;
    assert_eq!(c["state"], "degraded", "the last good model is kept: {c}");
    assert!(
        d2c.metric("d2c_topology_refreshes_total{result=\"ok\",source=\"backstage\"}")
            .unwrap()
            >= 1.0
    );
}
