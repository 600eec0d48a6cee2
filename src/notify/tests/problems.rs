//! Problems reach ServiceNow (table `problem`) and Jira (their own issue type); incidents that
//! carry a known error's workaround show it in their tickets.

use super::connectors::{JiraState, Snow, jira, servicenow};
use super::*;
use crate::notify::item::Sent;

fn problem(id: &str, version: u32, status: &str) -> Item {
    let mut v = json!({"type": "problem", "id": id, "version": version, "status": status,
        "title": "payments-db: PostgresDown keeps recurring", "service": "payments-db",
        "alert_names": ["PostgresDown"], "priority": "P1",
        "incidents": ["INC-1", "INC-2", "INC-3"], "incident_count": 3,
        "outage_seconds": 3600, "cost": 120000.0,
        "opened_at": "2026-11-04T02:00:00Z", "updated_at": "2026-11-04T09:00:00Z",
        "opened_by": "d2c"});
    if status != "open" {
        v["workaround"] = json!("Restart pgbouncer on the payments primary");
    }
    if status == "resolved" {
        v["resolved_by"] = json!("dba");
        v["comment"] = json!("pool size fixed");
    }
    Item::decode(v.to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn servicenow_keeps_one_problem_record_and_marks_the_known_error() {
    let (url, fake) = start(None, Snow::default(), servicenow).await;
    let c = connector(&format!(
        "name = \"snow\"\nkind = \"servicenow\"\nurl = \"{url}\"\ntoken = \"t\""
    ));
    for (item, sent) in [
        (problem("PRB-1", 1, "open"), Sent::Delivered),
        (problem("PRB-1", 2, "known_error"), Sent::Delivered),
        (problem("PRB-1", 2, "known_error"), Sent::Skipped),
        (problem("PRB-1", 3, "resolved"), Sent::Delivered),
    ] {
        assert_eq!(c.deliver(&item).await, Ok(sent));
    }
    let seen = fake.seen();
    let creates: Vec<&Seen> = seen.iter().filter(|r| r.method == Method::POST).collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].path, "/api/now/table/problem");
    let patches: Vec<Value> = seen
        .iter()
        .filter(|r| r.method == Method::PATCH)
        .map(Seen::json)
        .collect();
    assert_eq!(patches[0]["known_error"], true);
    assert_eq!(patches[0]["state"], "104");
    assert_eq!(
        patches[0]["workaround"],
        "Restart pgbouncer on the payments primary"
    );
    assert_eq!(patches[1]["state"], "106");
    assert_eq!(patches[1]["fix_notes"], "pool size fixed");
    let state = fake.state.lock().unwrap();
    let row = &state.rows.values().next().unwrap().1;
    assert_eq!(row["correlation_id"], "PRB-1");
    assert!(
        row["description"]
            .as_str()
            .unwrap()
            .contains("Incidents: 3 (outage 60 min"),
        "{row}"
    );
}

#[tokio::test]
async fn jira_files_problems_as_their_own_issue_type_and_incidents_show_the_workaround() {
    let (url, fake) = start(None, JiraState::default(), jira).await;
    let c = connector(&format!(
        "name = \"jira\"\nkind = \"jira\"\nurl = \"{url}\"\nproject = \"OPS\"\ntoken = \"t\""
    ));
    assert_eq!(
        c.deliver(&problem("PRB-9", 1, "open")).await,
        Ok(Sent::Delivered)
    );
    assert_eq!(
        c.deliver(&problem("PRB-9", 2, "resolved")).await,
        Ok(Sent::Delivered)
    );
    let mut inc: Value = serde_json::from_slice(&incident("INC-4", 1, "open").raw).unwrap();
    inc["problem"] = json!("PRB-9");
    inc["workaround"] = json!("Restart pgbouncer on the payments primary");
    let inc = Item::decode(inc.to_string().as_bytes()).unwrap();
    assert_eq!(c.deliver(&inc).await, Ok(Sent::Delivered));
    let seen = fake.seen();
    let creates: Vec<Value> = seen
        .iter()
        .filter(|r| r.method == Method::POST && r.path == "/rest/api/2/issue")
        .map(Seen::json)
        .collect();
    assert_eq!(creates[0]["fields"]["issuetype"]["name"], "Problem");
    assert_eq!(
        creates[0]["fields"]["summary"],
        "Problem: payments-db: PostgresDown keeps recurring"
    );
    let description = creates[1]["fields"]["description"].as_str().unwrap();
    assert!(
        description.contains("Recurring: an occurrence of problem PRB-9"),
        "{description}"
    );
    assert!(
        description.contains("Known error workaround: Restart pgbouncer"),
        "{description}"
    );
    let state = fake.state.lock().unwrap();
    assert_eq!(
        state.issues["OPS-1"].2, "done",
        "a resolved problem is transitioned"
    );
}
