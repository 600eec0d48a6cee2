//! Each connector against a fake of its tool: what it sends, and that a retry or a record read
//! again never makes a second ticket.

use super::*;
use crate::config::secret::Secret;
use crate::notify::item::Sent;
use crate::notify::retry::Failure;
use crate::notify::webhook;

// ---- ServiceNow -------------------------------------------------------------------------------

/// Records per table by sys_id, each with how often it was created (always 1) and updated.
#[derive(Default)]
pub(super) struct Snow {
    pub(super) rows: BTreeMap<String, (String, Value)>,
    next: u32,
}

pub(super) fn servicenow(req: &Seen, s: &mut Snow) -> Reply {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "now", "table", table]) => {
            let wanted = req.query.get("sysparm_query").cloned().unwrap_or_default();
            let hits: Vec<Value> = s
                .rows
                .iter()
                .filter(|(_, (t, row))| {
                    t == table
                        && format!(
                            "correlation_id={}",
                            row["correlation_id"].as_str().unwrap_or("")
                        ) == wanted
                })
                .map(|(id, (_, row))| json!({"sys_id": id, "correlation_display": row["correlation_display"]}))
                .collect();
            ok(200, json!({"result": hits}))
        }
        ("POST", ["api", "now", "table", table]) => {
            s.next += 1;
            let id = format!("sys{}", s.next);
            s.rows.insert(id.clone(), (table.to_string(), req.json()));
            ok(201, json!({"result": {"sys_id": id}}))
        }
        ("PATCH", ["api", "now", "table", _, id]) => match s.rows.get_mut(*id) {
            Some((_, row)) => {
                for (k, v) in req.json().as_object().unwrap() {
                    row[k] = v.clone();
                }
                ok(200, json!({"result": {"sys_id": id}}))
            }
            None => ok(404, json!({"error": {"message": "No Record found"}})),
        },
        _ => ok(400, json!({"error": {"message": "unexpected request"}})),
    }
}

#[tokio::test]
async fn servicenow_creates_once_then_updates_the_record_found_by_correlation_id() {
    let (url, fake) = start(None, Snow::default(), servicenow).await;
    let c = connector(&format!(
        "name = \"snow\"\nkind = \"servicenow\"\nurl = \"{url}\"\nusername = \"d2c\"\npassword = \"pw\"\nassignment_group = \"DBA\""
    ));
    for (item, sent) in [
        (incident("INC-1", 1, "open"), Sent::Delivered),
        // Read again after a restart: found by correlation_id, holding this version already.
        (incident("INC-1", 1, "open"), Sent::Skipped),
        (incident("INC-1", 2, "resolved"), Sent::Delivered),
        // An older version late does not reopen the ticket.
        (incident("INC-1", 1, "open"), Sent::Skipped),
        (rfc("RFC-1", 1), Sent::Delivered),
        (rfc("RFC-1", 1), Sent::Skipped),
        (rfc("RFC-1", 2), Sent::Delivered),
    ] {
        assert_eq!(c.deliver(&item).await, Ok(sent));
    }
    let seen = fake.seen();
    let creates: Vec<&Seen> = seen.iter().filter(|r| r.method == Method::POST).collect();
    assert_eq!(
        creates.len(),
        2,
        "one incident and one change_request created"
    );
    assert_eq!(creates[0].path, "/api/now/table/incident");
    assert_eq!(creates[1].path, "/api/now/table/change_request");
    assert_eq!(seen.iter().filter(|r| r.method == Method::PATCH).count(), 2);
    let state = fake.state.lock().unwrap();
    let inc = state.rows.values().find(|(t, _)| t == "incident").unwrap();
    assert_eq!(inc.1["correlation_id"], "INC-1");
    assert_eq!(
        inc.1["state"], "6",
        "the resolved version resolved the ticket"
    );
    assert_eq!(inc.1["assignment_group"], "DBA");
    assert_eq!(inc.1["impact"], "1");
    let chg = state
        .rows
        .values()
        .find(|(t, _)| t == "change_request")
        .unwrap();
    assert_eq!(chg.1["type"], "emergency");
    assert_eq!(chg.1["approval"], "requested");
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Basic ZDJjOnB3")),
        "basic auth on every request"
    );
}

// ---- Jira ---------------------------------------------------------------------------------------

#[derive(Default)]
pub(super) struct JiraState {
    /// key → (labels, summary, status category)
    pub(super) issues: BTreeMap<String, (Vec<String>, String, String)>,
}

pub(super) fn jira(req: &Seen, s: &mut JiraState) -> Reply {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["rest", "api", "2", "search"]) => {
            let jql = req.query.get("jql").cloned().unwrap_or_default();
            let issues: Vec<Value> = s
                .issues
                .iter()
                .filter(|(_, (labels, _, _))| labels.iter().any(|l| jql == format!("labels = \"{l}\"")))
                .map(|(k, (_, _, cat))| json!({"key": k, "fields": {"status": {"statusCategory": {"key": cat}}}}))
                .collect();
            ok(200, json!({"issues": issues}))
        }
        ("POST", ["rest", "api", "2", "issue"]) => {
            let f = &req.json()["fields"];
            let key = format!("OPS-{}", s.issues.len() + 1);
            let labels = f["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            s.issues.insert(
                key.clone(),
                (labels, f["summary"].as_str().unwrap().into(), "new".into()),
            );
            ok(201, json!({"key": key}))
        }
        ("PUT", ["rest", "api", "2", "issue", key]) => {
            let summary = req.json()["fields"]["summary"]
                .as_str()
                .unwrap()
                .to_string();
            s.issues.get_mut(*key).unwrap().1 = summary;
            (204, vec![], String::new())
        }
        ("GET", ["rest", "api", "2", "issue", _, "transitions"]) => ok(
            200,
            json!({"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Done"}, {"id": "41", "name": "Cancel"}]}),
        ),
        ("POST", ["rest", "api", "2", "issue", key, "transitions"]) => {
            match req.json()["transition"]["id"].as_str() {
                Some("31") => s.issues.get_mut(*key).unwrap().2 = "done".into(),
                Some("41") => s.issues.get_mut(*key).unwrap().2 = "cancelled".into(),
                _ => {}
            }
            (204, vec![], String::new())
        }
        _ => ok(400, json!({"errorMessages": ["unexpected request"]})),
    }
}

#[tokio::test]
async fn jira_creates_one_issue_per_incident_and_transitions_it_on_resolve() {
    let (url, fake) = start(None, JiraState::default(), jira).await;
    std::fs::write(
        std::env::temp_dir().join("d2c-notify-test-jira-token"),
        "tok\n",
    )
    .unwrap();
    let c = connector(&format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{url}\"\nproject = \"OPS\"\ntoken = \"file:{}\"",
        std::env::temp_dir()
            .join("d2c-notify-test-jira-token")
            .display()
    ));
    for item in [
        incident("INC-7", 1, "open"),
        incident("INC-7", 1, "open"),
        incident("INC-7", 2, "resolved"),
        incident("INC-7", 2, "resolved"),
    ] {
        assert_eq!(c.deliver(&item).await, Ok(Sent::Delivered));
    }
    let seen = fake.seen();
    let creates = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path == "/rest/api/2/issue")
        .count();
    assert_eq!(
        creates, 1,
        "the label search finds the issue before a second create"
    );
    let transitions: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/transitions"))
        .collect();
    assert_eq!(
        transitions.len(),
        1,
        "a done issue is not transitioned again"
    );
    assert_eq!(transitions[0].json()["transition"]["id"], "31");
    let state = fake.state.lock().unwrap();
    let (labels, summary, status) = &state.issues["OPS-1"];
    assert!(labels.contains(&"d2c-INC-7".to_string()));
    assert_eq!(summary, "[P1] payments-db is down");
    assert_eq!(status, "done");
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("Bearer tok"))
    );
}

#[tokio::test]
async fn a_withdrawn_rfc_cancels_its_change_request_and_its_jira_issue() {
    let reason = "the root cause of incident INC-1 moved from payments-api to payments-db";
    let (url, fake) = start(None, Snow::default(), servicenow).await;
    let c = connector(&format!(
        "name = \"snow\"\nkind = \"servicenow\"\nurl = \"{url}\"\nusername = \"d2c\"\npassword = \"pw\""
    ));
    assert_eq!(c.deliver(&rfc("RFC-2", 1)).await, Ok(Sent::Delivered));
    assert_eq!(
        c.deliver(&withdrawn("RFC-2", 2, reason)).await,
        Ok(Sent::Delivered)
    );
    {
        let state = fake.state.lock().unwrap();
        let rows: Vec<&Value> = state.rows.values().map(|(_, r)| r).collect();
        assert_eq!(rows.len(), 1, "the same change request, updated");
        assert_eq!(rows[0]["state"], "4", "Canceled");
        assert_eq!(
            rows[0]["close_notes"],
            format!("withdrawn by d2c: {reason}").as_str()
        );
        assert!(rows[0]["description"].as_str().unwrap().contains(reason));
    }

    let (url, fake) = start(None, JiraState::default(), jira).await;
    let c = connector(&format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{url}\"\nproject = \"OPS\""
    ));
    assert_eq!(c.deliver(&rfc("RFC-2", 1)).await, Ok(Sent::Delivered));
    assert_eq!(
        c.deliver(&withdrawn("RFC-2", 2, reason)).await,
        Ok(Sent::Delivered)
    );
    let seen = fake.seen();
    let moved: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/transitions"))
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        moved[0].json()["transition"]["id"],
        "41",
        "the cancel transition"
    );
    let state = fake.state.lock().unwrap();
    let (_, summary, status) = &state.issues["OPS-1"];
    assert_eq!(status, "cancelled");
    assert!(summary.starts_with("RFC (withdrawn): "), "{summary}");
}

#[tokio::test]
async fn jira_falls_back_to_the_resolve_transition_when_the_issue_offers_no_cancel() {
    let (url, fake) = start(None, JiraState::default(), jira).await;
    let c = connector(&format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{url}\"\nproject = \"OPS\"\ncancel_transition = \"Won't Do\""
    ));
    c.deliver(&rfc("RFC-3", 1)).await.unwrap();
    c.deliver(&withdrawn(
        "RFC-3",
        2,
        "incident INC-1 resolved before the change was approved",
    ))
    .await
    .unwrap();
    assert_eq!(fake.state.lock().unwrap().issues["OPS-1"].2, "done");
}

// ---- PagerDuty, webhook, Slack ------------------------------------------------------------------

#[tokio::test]
async fn slack_and_pagerduty_hear_only_of_versions_people_act_on() {
    let (url, fake) = start(None, (), accept).await;
    let slack = connector(&format!(
        "name = \"chat\"\nkind = \"slack\"\nurl = \"{url}/services/T/B/X\""
    ));
    let pd = connector(&format!(
        "name = \"pd\"\nkind = \"pagerduty\"\nurl = \"{url}/v2/enqueue\"\nrouting_key = \"R\""
    ));
    let quiet = changing(incident("INC-6", 2, "open"), &["alerts", "services"]);
    let news = changing(incident("INC-6", 3, "open"), &["alerts", "root_cause"]);
    for c in [&slack, &pd] {
        assert_eq!(c.deliver(&quiet).await, Ok(Sent::Skipped), "{}", c.name);
        assert_eq!(c.deliver(&news).await, Ok(Sent::Delivered), "{}", c.name);
    }
    assert_eq!(fake.seen().len(), 2, "one message each, for the root cause");
    let slack_text = slack_text_of(&fake.seen()[0]);
    assert!(slack_text.contains("(INC-6, v3)"), "{slack_text}");
}

fn slack_text_of(seen: &Seen) -> String {
    seen.json()["text"].as_str().unwrap().to_string()
}

fn accept(_: &Seen, _: &mut ()) -> Reply {
    ok(202, json!({"status": "success"}))
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_with_the_incident_id_as_dedup_key_and_skips_rfcs() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"pd\"\nkind = \"pagerduty\"\nurl = \"{url}/v2/enqueue\"\nrouting_key = \"R0UT1NG\""
    ));
    assert_eq!(
        c.deliver(&incident("INC-9", 1, "open")).await,
        Ok(Sent::Delivered)
    );
    assert_eq!(
        c.deliver(&incident("INC-9", 2, "resolved")).await,
        Ok(Sent::Delivered)
    );
    assert_eq!(c.deliver(&rfc("RFC-9", 1)).await, Ok(Sent::Skipped));
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let (trigger, resolve) = (seen[0].json(), seen[1].json());
    assert_eq!(seen[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "INC-9");
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], "[P1] payments-db is down");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], "INC-9");
}

#[tokio::test]
async fn webhook_sends_the_record_with_an_idempotency_key_and_a_verifiable_signature() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/hook\"\nhmac_secret = \"k3y\""
    ));
    let item = incident("INC-3", 4, "open");
    assert_eq!(c.deliver(&item).await, Ok(Sent::Delivered));
    let seen = &fake.seen()[0];
    assert_eq!(seen.header("idempotency-key"), Some("INC-3:4"));
    assert_eq!(
        seen.body.as_bytes(),
        item.raw.as_slice(),
        "the record as published"
    );
    let sig = seen.header("x-d2c-signature").unwrap();
    let ts: i64 = seen
        .header("x-d2c-timestamp")
        .expect("signed requests carry their time")
        .parse()
        .unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - ts).abs() < 60,
        "the time of signing, in Unix seconds"
    );
    assert_eq!(
        sig,
        webhook::signature(&Secret::new("k3y"), ts, seen.body.as_bytes())
    );
    // Checked independently of the connector's own function, as a receiver would: the HMAC of
    // "<timestamp>.<body>", so the timestamp cannot be changed to replay the request later.
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(seen.body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("sha256={hex}"));
    assert_ne!(
        sig,
        webhook::signature(&Secret::new("k3y"), ts - 600, seen.body.as_bytes()),
        "another time gives another signature"
    );
    assert_ne!(
        sig,
        webhook::signature(&Secret::new("other"), ts, seen.body.as_bytes())
    );
}

#[tokio::test]
async fn slack_messages_read_at_a_glance() {
    let (url, fake) = start(None, (), accept).await;
    let c = connector(&format!(
        "name = \"chat\"\nkind = \"slack\"\nurl = \"{url}/services/T/B/X\""
    ));
    c.deliver(&incident("INC-5", 1, "open")).await.unwrap();
    c.deliver(&rfc("RFC-5", 1)).await.unwrap();
    let seen = fake.seen();
    let text = seen[0].json()["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        ":red_circle: *[P1] payments-db is down* — open (INC-5, v1)\nRoot cause: payments-db\n\
         Capabilities hurt: online-payments · revenue at risk 1200/min\nServices: payments-api, payments-db"
    );
    let text = seen[1].json()["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        ":wrench: *RFC RFC-5* for INC-1 (emergency, risk high, P1): Fail over payments-db to its standby replica"
    );
}

// ---- what a failure shows ----------------------------------------------------------------------

#[tokio::test]
async fn failures_never_carry_the_url_or_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = connector(&format!(
        "name = \"chat\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/services/SECRETPATH\"\nconnect_timeout = \"200ms\""
    ));
    let e = c.deliver(&incident("INC-1", 1, "open")).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("SECRETPATH"), "{text}");
    assert!(matches!(e, Failure::Retry { .. }));
    assert!(!format!("{c:?}").contains("SECRETPATH"));
}

#[tokio::test]
async fn a_tool_answering_with_an_endless_body_does_not_hold_the_delivery() {
    // 200 OK, then 64 KiB chunks for ever: only the first MAX_RESPONSE_BYTES are read.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        let chunks = futures::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))
        });
        axum::body::Body::from_stream(chunks)
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = connector(&format!(
        "name = \"hook\"\nkind = \"webhook\"\nurl = \"{url}/hook\"\nrequest_timeout = \"20s\""
    ));
    let started = std::time::Instant::now();
    let sent = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        c.deliver(&incident("INC-7", 1, "open")),
    )
    .await
    .expect("the delivery finished without reading the whole answer");
    assert_eq!(sent, Ok(Sent::Delivered));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
