//! The incident console in a real browser: headless Chromium driven over WebDriver against
//! `d2c run` on the mock cluster (`d2c mock-broker` in its own process).
//!
//! - the outage replayed into the raw topic appears on the open board without a reload, each
//!   version within 1 s of being published; its page shows the timeline and the root cause;
//!   approving its RFC shows the RFC's next version with the decision and approver;
//!   acknowledging shows acknowledged-by on the board; a silence created from an alert
//!   suppresses that alert's next events (counted);
//! - with two instances, each board shows every incident;
//! - a problem opened for the outage becomes a known error from the problems page, and the
//!   open incident linked to it shows the workaround; resolving it takes it off the list;
//! - with tokens, a viewer cannot act and an operator can, and without a sign-in nothing but
//!   the sign-in page is served.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

const PARTITIONS: u32 = 3;

/// Settings for `d2c run` against the mock broker (which made the topics).
fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("D2C_KAFKA__CREATE_TOPICS", "false"),
        ("D2C_KAFKA__PARTITIONS", "3"),
        ("D2C_KAFKA__SESSION_TIMEOUT", "6s"),
        // The console follows every version as it is made: no group wait or interval holding
        // versions back (those are tested by the scenarios and tests/recovery_ticks.rs).
        ("D2C_CORRELATION__GROUP_WAIT", "0s"),
        ("D2C_CORRELATION__GROUP_INTERVAL", "0s"),
        ("D2C_LOG", "warn,d2c::api=info"),
    ]
}

/// The first `lines` payloads of `tests/scenarios/outage.jsonl` (up to 8: the outage still
/// open), with their times moved to the last minute, as a monitoring tool would send them now.
fn outage_now(lines: usize) -> Vec<Vec<u8>> {
    let text = include_str!("scenarios/outage.jsonl");
    let base = chrono::Utc::now() - chrono::Duration::seconds(90);
    let re = regex::Regex::new(r"2026-11-28T10:(\d\d):(\d\d)Z").unwrap();
    text.lines()
        .filter(|l| !l.starts_with("{\"tick\""))
        .take(lines)
        .map(|l| {
            re.replace_all(l, |c: &regex::Captures| {
                let secs: i64 = c[1].parse::<i64>().unwrap() * 60 + c[2].parse::<i64>().unwrap();
                (base + chrono::Duration::seconds(secs))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .into_owned()
            .into_bytes()
        })
        .collect()
}

/// The detections of `tests/scenarios/attack.jsonl` (as they are: their times are the tools'
/// own; without the closing tick, so the attack stays open).
fn attack() -> Vec<Vec<u8>> {
    include_str!("scenarios/attack.jsonl")
        .lines()
        .filter(|l| !l.starts_with("{\"tick\""))
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// A native event of `name` on CI `ci`, firing now.
fn firing_now(name: &str, ci: &str, severity: &str) -> Vec<u8> {
    json!({"name": name, "ci": ci, "severity": severity, "status": "firing",
           "time": chrono::Utc::now().to_rfc3339()})
    .to_string()
    .into_bytes()
}

async fn get_json(http: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("http://{http}{path}"))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("d2c answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The id of the outage's P1, once the read API has it.
async fn p1(http: &str, token: Option<&str>) -> String {
    until(
        "the P1 in the read API",
        Duration::from_secs(60),
        || async {
            let (_, l) = get_json(http, "/api/v1/incidents?priority=P1", token).await;
            Some(l["incidents"][0]["id"].as_str()?.to_string())
        },
    )
    .await
}

/// Polls `check` every 100 ms until it gives `Some`, or panics naming `what` after `within`.
async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of every element matching `css`, joined by newlines.
async fn texts(c: &Client, css: &str) -> String {
    let mut out = Vec::new();
    if let Ok(list) = c.find_all(Locator::Css(css)).await {
        for e in list {
            out.push(e.text().await.unwrap_or_default());
        }
    }
    out.join("\n")
}

/// Waits until an element matching `css` shows `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let t = texts(c, css).await;
        if t.contains(text) {
            return t;
        }
        if Instant::now() > end {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = texts(c, "main").await;
            let flash = c
                .execute(
                    "const f = document.getElementById('flash'); return f ? f.outerHTML : 'none'",
                    vec![],
                )
                .await;
            eprintln!(
                "flash: {flash:?}; found: {:?}",
                c.find_all(Locator::Css(css)).await.map(|v| v.len())
            );
            panic!(
                "`{css}` did not show {text:?} within 30 s; it shows {t:?}; page {url}:\n{body}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Marks the page so a reload would show, and notes when each incident version first appears
/// on the board (`window.__d2c.seen["<id> <version>"]`, milliseconds since the epoch).
const WATCH_BOARD: &str = r#"
    window.__d2c = { seen: {} };
    const note = () => document.querySelectorAll('tr[data-id]').forEach(tr => {
        const k = tr.dataset.id + ' ' + tr.dataset.version;
        if (!(k in window.__d2c.seen)) window.__d2c.seen[k] = Date.now();
    });
    new MutationObserver(note).observe(document.body, { childList: true, subtree: true });
    note();
    return true;
"#;

/// Each P1 version published, and how long after its publication the board first showed it
/// (or a later version of it).
async fn board_delays(c: &Client, bootstrap: &str, p1: &str) -> Vec<(u64, i64)> {
    let seen = c
        .execute("return window.__d2c ? window.__d2c.seen : null", vec![])
        .await
        .unwrap();
    assert!(
        seen.is_object(),
        "the board page was reloaded (its marker is gone): {seen}"
    );
    let shown: Vec<(u64, i64)> = seen
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, t)| {
            let (id, v) = k.split_once(' ')?;
            if id != p1 {
                return None;
            }
            Some((v.parse().ok()?, t.as_f64()? as i64))
        })
        .collect();
    let b = bootstrap.to_string();
    // Until the newest version shown is read (not merely any record: the reader can pause
    // between partitions, and the incident's may come last).
    let newest = shown.iter().map(|(v, _)| *v).max().unwrap_or(1);
    let id = p1.to_string();
    let records = tokio::task::spawn_blocking(move || {
        read_until(
            &b,
            "d2c.incidents",
            PARTITIONS as i32,
            Duration::from_secs(20),
            |rs| {
                rs.iter().any(|r| {
                    let v = r.json();
                    v["id"] == id.as_str() && v["version"].as_u64().is_some_and(|n| n >= newest)
                })
            },
        )
    })
    .await
    .unwrap();
    let mut published: BTreeMap<u64, i64> = BTreeMap::new();
    for r in &records {
        let v = r.json();
        if v["id"] == p1 {
            published
                .entry(v["version"].as_u64().unwrap())
                .or_insert(r.timestamp.unwrap());
        }
    }
    published
        .iter()
        .map(|(&version, &at)| {
            let first = shown
                .iter()
                .filter(|(v, _)| *v >= version)
                .map(|(_, t)| *t)
                .min()
                .unwrap_or_else(|| panic!("version {version} never shown: {shown:?}"));
            (version, first - at)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outage_appears_live_and_is_acknowledged_approved_and_silenced_from_the_console() {
    let broker = MockBroker::start(PARTITIONS);
    let d2c = D2c::start(&broker.bootstrap, &env());
    d2c.wait_ready(Duration::from_secs(60));
    let browser = Browser::start().await;
    let c = &browser.client;
    let base = format!("http://{}", d2c.http);

    // The board is open before anything happens.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_text(c, "p.empty", "No incident matches").await;
    c.execute(WATCH_BOARD, vec![]).await.unwrap();
    // Let the live stream connect.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The outage is replayed into the raw topic: the P1 appears without a reload.
    let p = producer(&broker.bootstrap);
    produce_all(&p, "d2c.events.raw", &outage_now(8)).await;
    let id = p1(&d2c.http, None).await;
    let row = format!("tr[data-id=\"{id}\"]");
    wait_text(c, &row, "P1").await;
    wait_text(
        c,
        &format!("{row} td[data-label=\"Root cause\"]"),
        "payments-db",
    )
    .await;
    // Every version of it reached the board within a second of its publication.
    until(
        "the P1's versions on the board",
        Duration::from_secs(30),
        || async {
            let (_, i) = get_json(&d2c.http, &format!("/api/v1/incidents/{id}"), None).await;
            let v = i["version"].as_u64()?;
            let shown = texts(c, &format!("{row} .sub")).await;
            shown.contains(&format!("v{v}")).then_some(())
        },
    )
    .await;
    let delays = board_delays(c, &broker.bootstrap, &id).await;
    eprintln!("P1 version → on the board after (ms): {delays:?}");
    assert!(delays.len() >= 3, "{delays:?}");
    for (version, ms) in &delays {
        assert!(
            *ms < 1000,
            "version {version} reached the open board {ms} ms after it was published: {delays:?}"
        );
    }

    // Its page: the timeline of every version and the root cause with its reason.
    c.find(Locator::Css(&format!("{row} a.title")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#root-cause", "payments-db").await;
    let reason = texts(c, ".reason").await;
    assert!(reason.contains("no failing dependency"), "{reason}");
    let timeline = wait_text(c, "#timeline", "opened as P1").await;
    assert!(timeline.contains("root cause: payments-db"), "{timeline}");
    assert!(
        timeline.contains("alert HighErrorRate on payments-api joined"),
        "{timeline}"
    );
    assert!(
        timeline.contains("raised (approval required)"),
        "{timeline}"
    );

    // Approving its RFC shows the RFC's next version with the decision and the approver.
    let rfc = c
        .find(Locator::Css("article.rfc[data-status=\"proposed\"]"))
        .await
        .expect("an RFC waits for approval")
        .attr("id")
        .await
        .unwrap()
        .unwrap();
    let rfc_id = rfc.trim_start_matches("rfc-").to_string();
    let card = format!("#{rfc}");
    assert!(texts(c, &card).await.contains("v1"));
    c.find(Locator::Id(&format!("decide-by-{rfc_id}")))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Id(&format!("comment-{rfc_id}")))
        .await
        .unwrap()
        .send_keys("failover agreed on the bridge")
        .await
        .unwrap();
    c.find(Locator::Css(&format!("{card} button.approve")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#flash", "approved by alice").await;
    let decided = wait_text(c, &card, "approved by alice").await;
    assert!(decided.contains("v2"), "the RFC's next version: {decided}");
    assert!(
        decided.contains("failover agreed on the bridge"),
        "{decided}"
    );
    wait_text(c, "#timeline", &format!("{rfc_id} approved by alice")).await;

    // Acknowledging shows acknowledged-by on the board.
    c.find(Locator::Id("ack-by"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Id("ack"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#acknowledged", "Acknowledged by alice").await;
    c.find(Locator::LinkText("Board"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, &format!("{row} td.ack"), "alice").await;
    // More going on, for the picture: one replica of the orders database, two full disks.
    let more = [
        firing_now("PostgresDown", "pg-orders-a", "critical"),
        firing_now("DiskFull", "build-agent-3", "major"),
        firing_now("DiskFull", "build-agent-7", "warning"),
    ];
    produce_all(&p, "d2c.events.raw", &more).await;
    until(
        "the new incidents on the board",
        Duration::from_secs(30),
        || async {
            let (_, open) = get_json(&d2c.http, "/api/v1/incidents?status=open", None).await;
            let open = open["count"].as_u64()?;
            let rows = c.find_all(Locator::Css("tr[data-id]")).await.ok()?;
            (open > 3 && rows.len() as u64 == open).then_some(())
        },
    )
    .await;
    c.set_window_size(1200, 760).await.unwrap();
    let shot = c.screenshot().await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    // Under the project's `target/` (made if a CARGO_TARGET_DIR elsewhere left none).
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-board.png");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, &shot).unwrap();
    if std::env::var_os("D2C_UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
        std::fs::write(docs, &shot).unwrap();
    }

    // A silence created from an alert suppresses that alert's next events, counted. The board
    // swaps its rows as versions arrive, which can make the link found stale before the click:
    // each attempt finds it again (unless the last one opened the incident after all).
    let title = format!("{row} a.title");
    until(
        "the incident opened from its row",
        Duration::from_secs(30),
        || async {
            if c.find(Locator::Css("#alerts")).await.is_ok() {
                return Some(());
            }
            c.find(Locator::Css(&title)).await.ok()?.click().await.ok()
        },
    )
    .await;
    wait_text(c, "#alerts", "HighLatency").await;
    // Every new version of the incident swaps its live part (htmx), which makes the elements
    // found before it stale: each attempt finds them again (the inputs keep what was typed,
    // hx-preserve, so each attempt clears them first).
    let matchers = until(
        "the silence form of the HighLatency alert submitted",
        Duration::from_secs(30),
        || async {
            let mut latency = None;
            for d in c.find_all(Locator::Css("details.alert")).await.ok()? {
                if d.text().await.ok()?.contains("HighLatency on checkout-api") {
                    latency = Some(d);
                }
            }
            let latency = latency?;
            if latency.attr("open").await.ok()?.is_none() {
                latency
                    .find(Locator::Css("summary"))
                    .await
                    .ok()?
                    .click()
                    .await
                    .ok()?;
            }
            let matchers = latency
                .find(Locator::Css("input[name=\"matchers\"]"))
                .await
                .ok()?
                .prop("value")
                .await
                .ok()??;
            for (input, text) in [
                ("by", "alice"),
                ("comment", "checkout latency known, scaling"),
            ] {
                let e = latency
                    .find(Locator::Css(&format!("input[name=\"{input}\"]")))
                    .await
                    .ok()?;
                e.clear().await.ok()?;
                e.send_keys(text).await.ok()?;
            }
            latency
                .find(Locator::Css("button.silence-button"))
                .await
                .ok()?
                .click()
                .await
                .ok()?;
            Some(matchers)
        },
    )
    .await;
    assert_eq!(
        matchers, "{alertname=\"HighLatency\", ci=\"checkout-api-5c1a\"}",
        "pre-filled from the alert"
    );
    wait_text(c, "#flash", "created by alice").await;
    until(
        "the silence in every engine",
        Duration::from_secs(30),
        || async {
            let (_, s) = get_json(&d2c.http, "/api/v1/silences", None).await;
            let list = s["silences"].as_array()?;
            list.iter()
                .any(|s| {
                    s["created_by"] == "alice" && s["comment"] == "checkout latency known, scaling"
                })
                .then_some(())
        },
    )
    .await;
    let silenced = "d2c_events_suppressed_total{reason=\"silenced\"}";
    let before = d2c.metric(silenced).unwrap_or(0.0);
    let alert_count = |i: &Value| {
        i["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "HighLatency")
            .map(|a| a["count"].as_u64().unwrap())
    };
    let (_, inc) = get_json(&d2c.http, &format!("/api/v1/incidents/{id}"), None).await;
    let count_before = alert_count(&inc);
    let next: Vec<Vec<u8>> = (0..3)
        .map(|_| firing_now("HighLatency", "checkout-api-5c1a", "major"))
        .collect();
    produce_all(&p, "d2c.events.raw", &next).await;
    until(
        "three suppressed events counted",
        Duration::from_secs(30),
        || async { (d2c.metric(silenced).unwrap_or(0.0) >= before + 3.0).then_some(()) },
    )
    .await;
    let muted = until(
        "the muted alert listed",
        Duration::from_secs(30),
        || async {
            let (_, s) = get_json(&d2c.http, "/api/v1/suppressed?reason=silenced", None).await;
            s["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["name"] == "HighLatency" && a["count"] == 3)
                .cloned()
        },
    )
    .await;
    assert_eq!(muted["ci"], "checkout-api-5c1a", "{muted}");
    let (_, inc) = get_json(&d2c.http, &format!("/api/v1/incidents/{id}"), None).await;
    assert_eq!(
        alert_count(&inc),
        count_before,
        "the incident's alert took none of them"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_each_board_shows_every_incident() {
    let broker = MockBroker::start(PARTITIONS);
    let a = D2c::start(&broker.bootstrap, &env());
    let b = D2c::start(&broker.bootstrap, &env());
    for d in [&a, &b] {
        d.wait_ready(Duration::from_secs(60));
    }
    // The correlate stage's partitions are split between the two: the one that joined last
    // has some, so the group settled.
    until(
        "both instances consume events partitions",
        Duration::from_secs(90),
        || async {
            (!events_partitions(&a).is_empty() && !events_partitions(&b).is_empty()).then_some(())
        },
    )
    .await;
    // The outage, and one disk alert on each of eight unmapped hosts (each its own domain, so
    // they spread over the partitions).
    let mut payloads = outage_now(8);
    for h in 0..8 {
        payloads.push(firing_now("DiskFull", &format!("host-{h}"), "warning"));
    }
    produce_all(&producer(&broker.bootstrap), "d2c.events.raw", &payloads).await;
    let ids: BTreeSet<String> = until(
        "ten incidents published",
        Duration::from_secs(60),
        || async {
            let (_, l) = get_json(&a.http, "/api/v1/incidents?limit=1000", None).await;
            let ids: BTreeSet<String> = l["incidents"]
                .as_array()?
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect();
            (ids.len() == 10).then_some(ids)
        },
    )
    .await;
    // Both correlated some of them: neither alone holds the whole picture.
    let published = |d: &D2c| d.metric("d2c_incident_versions_total").unwrap_or(0.0);
    assert!(
        published(&a) >= 1.0 && published(&b) >= 1.0,
        "each instance publishes incidents of its own partitions: {} and {}",
        published(&a),
        published(&b)
    );
    let browser = Browser::start().await;
    let c = &browser.client;
    for d in [&a, &b] {
        let (_, l) = get_json(&d.http, "/api/v1/incidents?limit=1000", None).await;
        assert_eq!(l["count"], 10, "the read API of {} is whole: {l}", d.http);
        c.goto(&format!("http://{}/", d.http)).await.unwrap();
        let shown: BTreeSet<String> = until(
            "every incident on the board",
            Duration::from_secs(30),
            || async {
                let mut shown = BTreeSet::new();
                for tr in c.find_all(Locator::Css("tr[data-id]")).await.ok()? {
                    shown.insert(tr.attr("data-id").await.ok()??);
                }
                (shown == ids).then_some(shown)
            },
        )
        .await;
        assert_eq!(shown, ids, "the board of {}", d.http);
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_business_and_security_views_show_what_is_hurt_and_the_attack() {
    let broker = MockBroker::start(PARTITIONS);
    let mut e = env();
    // The attack carries the tools' own times, days ago; today's outage may share its
    // partition and move its clock past the quiet period that would close it.
    e.push(("D2C_CORRELATION__SECURITY__QUIET_PERIOD", "30d"));
    let d2c = D2c::start(&broker.bootstrap, &e);
    d2c.wait_ready(Duration::from_secs(60));
    let p = producer(&broker.bootstrap);
    produce_all(&p, "d2c.events.raw", &attack()).await;
    until("the attack's P1", Duration::from_secs(60), || async {
        let (_, l) = get_json(&d2c.http, "/api/v1/incidents?priority=P1", None).await;
        (l["count"] == 1).then_some(())
    })
    .await;
    let mut payloads = outage_now(8);
    payloads.push(firing_now("PostgresDown", "pg-orders-a", "critical"));
    produce_all(&p, "d2c.events.raw", &payloads).await;
    until("the outage's P1 too", Duration::from_secs(60), || async {
        let (_, l) = get_json(&d2c.http, "/api/v1/incidents?priority=P1", None).await;
        (l["count"] == 2).then_some(())
    })
    .await;
    let browser = Browser::start().await;
    let c = &browser.client;
    let base = format!("http://{}", d2c.http);

    // Business: capabilities with health, state, money and users; services as a tree with the
    // failing ones marked and the redundancy of each group.
    c.goto(&format!("{base}/business")).await.unwrap();
    c.execute("window.__kept = 1; return true", vec![])
        .await
        .unwrap();
    let payments = wait_text(c, "article[data-capability=\"online-payments\"]", "DOWN").await;
    assert!(
        payments.contains("1,200 of 1,200 /min at risk"),
        "{payments}"
    );
    assert!(
        payments.contains("40,000 of 40,000 users affected"),
        "{payments}"
    );
    let failing = texts(c, "article[data-capability=\"online-payments\"] li.failing").await;
    assert!(
        failing.contains("payments-db") && failing.contains("alerting"),
        "{failing}"
    );
    let tracking = wait_text(c, "article[data-capability=\"order-tracking\"]", "DEGRADED").await;
    assert!(
        tracking.contains("needs any 1 of 2, 1 working"),
        "{tracking}"
    );
    // The other replica fails: the view follows without a reload.
    produce_all(
        &p,
        "d2c.events.raw",
        &[firing_now("PostgresDown", "pg-orders-b", "critical")],
    )
    .await;
    let tracking = wait_text(c, "article[data-capability=\"order-tracking\"] h2", "DOWN").await;
    assert!(tracking.contains("order-tracking"), "{tracking}");
    wait_text(
        c,
        "article[data-capability=\"order-tracking\"]",
        "needs any 1 of 2, 0 working",
    )
    .await;
    let kept = c
        .execute("return window.__kept || null", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(1), "updated in place, not reloaded");

    // Security: the attack with its ATT&CK stages in kill-chain order, entities, detections
    // per tool and the containment RFC.
    c.find(Locator::LinkText("Security"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let card = until("the attack on web-1", Duration::from_secs(30), || async {
        for a in c.find_all(Locator::Css("article.sec")).await.ok()? {
            let t = a.text().await.ok()?;
            if t.contains("web-1") && t.contains("TA0003") {
                return Some(t);
            }
        }
        None
    })
    .await;
    let at = |s: &str| {
        card.find(s)
            .unwrap_or_else(|| panic!("{s:?} not in {card}"))
    };
    assert!(
        at("TA0001 Initial Access") < at("TA0002 Execution"),
        "{card}"
    );
    assert!(at("TA0002 Execution") < at("TA0003 Persistence"), "{card}");
    assert!(card.contains("hosts"), "{card}");
    for tool in ["falco", "suricata", "wazuh", "ocsf"] {
        assert!(card.contains(tool), "detections of {tool}: {card}");
    }
    assert!(card.contains("isolate_host web-1"), "{card}");
    assert!(
        card.contains("PROPOSED") || card.contains("proposed"),
        "{card}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problem_becomes_a_known_error_in_the_console_and_its_incident_shows_the_workaround() {
    let broker = MockBroker::start(PARTITIONS);
    let d2c = D2c::start(&broker.bootstrap, &env());
    d2c.wait_ready(Duration::from_secs(60));
    let p = producer(&broker.bootstrap);
    produce_all(&p, "d2c.events.raw", &outage_now(8)).await;
    let id = p1(&d2c.http, None).await;
    // A problem opened by hand for the outage's root cause, linking the open incident.
    let body = json!({"title": "payments-db falls over at night", "service": "payments-db",
                      "by": "bob", "incidents": [id]});
    let (status, answer) = http_post(&d2c.http, "/api/v1/problems", &body.to_string());
    assert_eq!(status, 202, "{answer}");
    let problem = serde_json::from_str::<Value>(&answer).unwrap()["problem"]
        .as_str()
        .unwrap()
        .to_string();

    let browser = Browser::start().await;
    let c = &browser.client;
    let base = format!("http://{}", d2c.http);
    c.goto(&format!("{base}/")).await.unwrap();
    c.find(Locator::LinkText("Problems"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let card = format!("#problem-{problem}");
    let shown = wait_text(c, &card, "payments-db falls over at night").await;
    assert!(shown.contains("root cause payments-db"), "{shown}");
    assert!(shown.contains(&id), "its incident is listed: {shown}");
    c.execute("window.__kept = 1; return true", vec![])
        .await
        .unwrap();

    // Marked a known error from the page: the next version shows the workaround, in place.
    c.find(Locator::Id(&format!("workaround-{problem}")))
        .await
        .unwrap()
        .send_keys("fail over to pg-payments-2")
        .await
        .unwrap();
    c.find(Locator::Id(&format!("ke-by-{problem}")))
        .await
        .unwrap()
        .send_keys("carol")
        .await
        .unwrap();
    c.find(Locator::Css(&format!("{card} button.known-error-button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#flash", "marked a known error by carol").await;
    let shown = wait_text(
        c,
        &format!("{card} .workaround"),
        "fail over to pg-payments-2",
    )
    .await;
    assert!(shown.contains("carol"), "{shown}");
    wait_text(c, &format!("{card} .problem-status"), "KNOWN_ERROR").await;
    let kept = c
        .execute("return window.__kept || null", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(1), "updated in place, not reloaded");
    let (_, api) = get_json(&d2c.http, "/api/v1/problems", None).await;
    assert!(
        api.to_string().contains("fail over to pg-payments-2"),
        "the read API agrees: {api}"
    );

    // The open incident linked to it gets a version carrying the workaround.
    c.goto(&format!("{base}/incidents/{id}")).await.unwrap();
    wait_text(c, "#workaround", "fail over to pg-payments-2").await;
    let linked = texts(c, "#problem").await;
    assert!(linked.contains(&problem), "{linked}");

    // Resolved from the page: gone from the open list, listed under "all".
    c.goto(&format!("{base}/problems")).await.unwrap();
    c.find(Locator::Id(&format!("resolve-by-{problem}")))
        .await
        .unwrap()
        .send_keys("carol")
        .await
        .unwrap();
    c.find(Locator::Css(&format!("{card} button.resolve-button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#flash", "resolved by carol").await;
    wait_text(c, "#problems-live", "No open problem").await;
    c.goto(&format!("{base}/problems?status=all"))
        .await
        .unwrap();
    wait_text(c, &format!("{card} .problem-status"), "RESOLVED").await;
    browser.close().await;
}

/// The events partitions an instance reports consumer lag for (librdkafka's statistics, every
/// 5 s, cover its assigned partitions).
fn events_partitions(d: &D2c) -> BTreeSet<String> {
    http_get(&d.http, "/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with("d2c_consumer_lag{") && l.contains("topic=\"d2c.events\""))
        .filter_map(|l| {
            let p = l.split("partition=\"").nth(1)?;
            Some(p.split('"').next()?.to_string())
        })
        .collect()
}

const VIEWER_TOKEN: &str = "viewer-0123456789abcdef";
const OPERATOR_TOKEN: &str = "operator-0123456789abcdef";
const SECURITY_TOKEN: &str = "security-0123456789abcdef";

/// Signs in on the page the browser is at (the sign-in page).
async fn sign_in(c: &Client, token: &str) {
    let field = c.wait().for_element(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_a_viewer_reads_an_operator_acts_and_nobody_gets_in_without_signing_in() {
    let broker = MockBroker::start(PARTITIONS);
    let mut e = env();
    e.push((
        "D2C_HTTP__TOKENS",
        "[{name=\"vera\",role=\"viewer\",token=\"env:D2C_TEST_VIEWER\"},\
          {name=\"otto\",role=\"operator\",token=\"env:D2C_TEST_OPERATOR\"},\
          {name=\"sam\",role=\"security\",token=\"env:D2C_TEST_SECURITY\"}]",
    ));
    e.push(("D2C_TEST_VIEWER", VIEWER_TOKEN));
    e.push(("D2C_TEST_OPERATOR", OPERATOR_TOKEN));
    e.push(("D2C_TEST_SECURITY", SECURITY_TOKEN));
    e.push(("D2C_HTTP__RESTRICT_SECURITY", "true"));
    e.push(("D2C_CORRELATION__SECURITY__QUIET_PERIOD", "30d"));
    let d2c = D2c::start(&broker.bootstrap, &e);
    d2c.wait_ready(Duration::from_secs(60));
    let p = producer(&broker.bootstrap);
    produce_all(&p, "d2c.events.raw", &attack()).await;
    let security = |token: &'static str| {
        let http = d2c.http.clone();
        async move {
            let (_, l) = get_json(&http, "/api/v1/incidents?limit=1000", Some(token)).await;
            l["incidents"].as_array().map_or(0, |a| {
                a.iter().filter(|i| i["security"].is_object()).count()
            })
        }
    };
    until(
        "the attack, seen by the security role",
        Duration::from_secs(60),
        || async { (security(SECURITY_TOKEN).await == 2).then_some(()) },
    )
    .await;
    assert_eq!(
        security(VIEWER_TOKEN).await,
        0,
        "restrict_security hides them"
    );
    assert_eq!(security(OPERATOR_TOKEN).await, 0, "from operators too");
    // Nor can they act on them: the control API answers as for an unknown incident.
    let (_, l) = get_json(
        &d2c.http,
        "/api/v1/incidents?limit=1000",
        Some(SECURITY_TOKEN),
    )
    .await;
    let attack_id = l["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["security"].is_object())
        .and_then(|i| i["id"].as_str())
        .unwrap()
        .to_string();
    let ack = |token: &'static str| {
        let url = format!("http://{}/api/v1/incidents/{attack_id}/ack", d2c.http);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"by": "someone"}))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        ack(OPERATOR_TOKEN).await,
        404,
        "an operator may not act on it"
    );
    assert_eq!(ack(SECURITY_TOKEN).await, 202, "the security role may");
    produce_all(&p, "d2c.events.raw", &outage_now(8)).await;
    let id = p1(&d2c.http, Some(VIEWER_TOKEN)).await;
    let (status, _) = get_json(&d2c.http, "/api/v1/incidents", None).await;
    assert_eq!(status, 401, "the API wants a token");

    // Without a sign-in, every page leads to the sign-in page and nothing else is served.
    let browser = Browser::start().await;
    let c = &browser.client;
    let base = format!("http://{}", d2c.http);
    for path in ["/", &format!("/incidents/{id}"), "/business", "/security"] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        c.wait().for_element(Locator::Id("token")).await.unwrap();
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/login", "{path} led to {url}");
        // (The id may appear in the sign-in form's way back; nothing of the incident may.)
        let html = c.source().await.unwrap();
        assert!(
            !html.contains("payments-db") && !html.contains("PostgresDown"),
            "{path} showed incident data before a sign-in"
        );
    }
    for path in [
        "/board/rows".to_string(),
        format!("/incidents/{id}/live"),
        "/live".to_string(),
        "/business/live".to_string(),
    ] {
        let r = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("hx-request", "true")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(&id), "{path}: {body}");
    }
    // A wrong token does not sign in.
    sign_in(c, "not-a-token-of-anybody").await;
    wait_text(c, ".flash.err", "not known").await;

    // The viewer reads, and cannot act.
    c.goto(&format!("{base}/incidents/{id}")).await.unwrap();
    sign_in(c, VIEWER_TOKEN).await;
    wait_text(c, "#root-cause", "payments-db").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/incidents/{id}")
    );
    wait_text(c, "header.top", "vera").await;
    assert!(c.find_all(Locator::Id("ack")).await.unwrap().is_empty());
    assert!(
        c.find_all(Locator::Css("button.approve"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        c.find_all(Locator::Css("button.silence-button"))
            .await
            .unwrap()
            .is_empty()
    );
    wait_text(c, ".note", "only reads").await;
    // Nor does the viewer see the attack: not in the navigation, not on the board, not at
    // /security.
    assert!(!texts(c, "header.top nav").await.contains("Security"));
    c.goto(&format!("{base}/?status=all")).await.unwrap();
    wait_text(c, &format!("tr[data-id=\"{id}\"]"), "P1").await;
    assert!(
        !texts(c, "#rows").await.contains("Attack on"),
        "security incidents hidden"
    );
    c.goto(&format!("{base}/security")).await.unwrap();
    wait_text(c, "main", "shown to the security role only").await;
    assert!(!c.source().await.unwrap().contains("web-1"));
    c.goto(&format!("{base}/incidents/{id}")).await.unwrap();
    wait_text(c, "#root-cause", "payments-db").await;
    // Nor by posting the form by hand, with the page's own CSRF token.
    let forged = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-D2C-CSRF'];
               fetch(arguments[0], { method: 'POST',
                   headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                   body: 'csrf=' + csrf })
                 .then(r => r.text().then(t => done([r.status, t])));"#,
            vec![json!(format!("/incidents/{id}/ack"))],
        )
        .await
        .unwrap();
    assert_eq!(forged[0], 403, "{forged}");
    assert!(
        forged[1].as_str().unwrap().contains("viewer role"),
        "{forged}"
    );
    // And not without the CSRF token either (what a cross-site form would send).
    let no_csrf = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               fetch(arguments[0], { method: 'POST',
                   headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: '' })
                 .then(r => done(r.status));"#,
            vec![json!(format!("/incidents/{id}/ack"))],
        )
        .await
        .unwrap();
    assert_eq!(no_csrf, 403);

    // The operator acts: the acknowledgement carries their name.
    c.find(Locator::Css("form.who button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("token")).await.unwrap();
    c.goto(&format!("{base}/incidents/{id}")).await.unwrap();
    sign_in(c, OPERATOR_TOKEN).await;
    wait_text(c, "header.top", "otto").await;
    c.wait()
        .for_element(Locator::Id("ack"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#acknowledged", "Acknowledged by otto").await;
    // Not the attack, which the operator may not see.
    let (_, attacks) = get_json(
        &d2c.http,
        "/api/v1/incidents?priority=P1&limit=10",
        Some(SECURITY_TOKEN),
    )
    .await;
    let attack = attacks["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["security"].is_object())
        .expect("the attack is a P1")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-D2C-CSRF'];
               fetch(arguments[0], { method: 'POST',
                   headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                   body: 'csrf=' + csrf })
                 .then(r => done(r.status));"#,
            vec![json!(format!("/incidents/{attack}/ack"))],
        )
        .await
        .unwrap();
    assert_eq!(
        hidden, 404,
        "an operator cannot act on a security incident it may not see"
    );
    // A link from another site (a chat message) opens the page signed in: the SameSite=Strict
    // cookie is not sent on that first request, and the page loads itself again to get it.
    let link = format!("data:text/html,<a id=\"chat\" href=\"{base}/incidents/{id}\">{id}</a>");
    c.goto(&link).await.unwrap();
    c.find(Locator::Id("chat"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#acknowledged", "Acknowledged by otto").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/incidents/{id}")
    );
    c.goto(&format!("{base}/")).await.unwrap();
    wait_text(c, &format!("tr[data-id=\"{id}\"] td.ack"), "otto").await;
    let (_, i) = get_json(
        &d2c.http,
        &format!("/api/v1/incidents/{id}"),
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(
        i["acknowledged_by"], "otto",
        "the viewer's attempt left no trace: {i}"
    );
    // The API's tokens have the same roles: a viewer cannot post, an operator can.
    let post = |token: &'static str| {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/incidents/{id}/ack"))
            .bearer_auth(token)
            .json(&json!({"by": "someone else"}))
            .timeout(Duration::from_secs(10))
            .send()
    };
    assert_eq!(post(VIEWER_TOKEN).await.unwrap().status().as_u16(), 403);
    let accepted: Value = post(OPERATOR_TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(
        accepted["acknowledged_by"], "otto",
        "a named token acts under its own name: {accepted}"
    );
    browser.close().await;
}
