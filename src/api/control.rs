//! The control endpoints: what people decide, written as control records to every partition of
//! `topics.events` (see `pipeline::records`), so the engine that owns the incident or RFC
//! applies it whichever instance took the request, and replay reproduces it.
//!
//! `POST /api/v1/incidents/{id}/ack` with `{"by": "<who>"}` acknowledges an incident: the
//! engine that holds the incident publishes a new version with `acknowledged_at`/`_by`; the
//! others ignore it. `202 {"incident", "acknowledged_by", "partitions"}` once the broker has
//! them all; `400` for a bad id or body; `503` as for ingest. The answer cannot say whether the
//! incident exists: the engines, not this endpoint, know that.
//!
//! `POST /api/v1/changes/{id}/decision` with `{"decision": "approved"|"rejected", "by":
//! "<who>", "comment": "<optional>"}` records a change authority's decision on an RFC (for
//! example called by the ITSM tool's approval workflow): the engine that raised the RFC
//! publishes its next version with `decision`. `202 {"change", "decision", "partitions"}`;
//! `400` for a bad id or body; `503` as above. Repeating a decision publishes nothing new.
//!
//! `POST /api/v1/silences` with a silence (`matchers`, `starts_at`, `ends_at`, optional `id`,
//! `created_by`, `comment`, as in `[[suppression.silences]]`) is checked, then written the same
//! way; every engine adds it (and keeps it in its checkpoints). `202 {"id", "silence",
//! "partitions"}`; `400` with the problem and the engines' own `reason` for one every engine
//! would refuse: `invalid_value` (matchers, times outside 1970 to 9999, `ends_at` not after
//! `starts_at`), `too_many_silences` (the engines of this instance hold 10,000 silences that
//! have not ended; ended ones make room). A silence with the id of an existing one replaces it
//! (end one early by sending it again with an earlier `ends_at`).
//!
//! `POST /api/v1/problems` with `{"title", "service", "by", "alert_names"?, "incidents"?,
//! "priority"?, "comment"?}` opens a problem by hand: its id (`PRB-…`) is derived here and the
//! record goes to the partition of the service's correlation domain, whose engine sees the
//! service's incidents (the incidents named are linked if that engine still remembers them).
//! `202 {"problem", "partitions"}`; `400` for an unknown service or a bad body.
//! `POST /api/v1/problems/{id}/known-error` with `{"workaround", "by", "comment"?}` marks it a
//! known error: later incidents that match get `problem` and `workaround`, and open ones linked
//! to it a new version carrying them. `POST /api/v1/problems/{id}/resolve` with `{"by",
//! "comment"?}` resolves it. Both go to every partition; the engine holding the problem applies
//! them.
//!
//! With `http.restrict_security`, acknowledging a security incident or deciding on a
//! containment RFC needs the security role: anyone else gets `404`, as for an unknown one.
//!
//! With a named token (`[[http.tokens]]`), its holder's name is recorded as `by` (and a
//! silence's `created_by`), whatever the body says; the console calls the same checks.

use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::console::auth::{Principal, SeesSecurity};
use super::write::{ACK, Answer, DECISION, PROBLEM, SILENCE, WriteApi, read_body};
use crate::model::{Priority, ProblemAction};
use crate::pipeline::records::{ACK_HEADER, DECISION_HEADER, PROBLEM_HEADER, SILENCE_HEADER};

/// Longest workaround or comment accepted on problems.
const MAX_TEXT: usize = 4096;

/// Longest incident id or `by` accepted by the acknowledgement endpoint.
const MAX_ACK_FIELD: usize = 256;

/// The body of an acknowledgement.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
}

pub(super) async fn post_ack(
    State(api): State<WriteApi>,
    Path(id): Path<String>,
    actor: Option<Extension<Principal>>,
    sees: Option<Extension<SeesSecurity>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = if api.hidden(&id, sees.as_deref()) {
        unknown(ACK, "no such incident")
    } else {
        api.acknowledge(&id, body, actor.as_deref()).await
    };
    api.respond(answer, start)
}

/// The answer for an incident or RFC the asker may not see: the same as for one that does not
/// exist, so a restricted token learns nothing of security incidents.
fn unknown(format: &'static str, what: &str) -> Answer {
    Answer::rejected(StatusCode::NOT_FOUND, format, what.to_string(), "not_found")
}

/// The actor a named token records: its holder's name. `http.token` is shared by tools, so
/// with it (or with no token) the body says who acts.
fn named(actor: Option<&Principal>) -> Option<&str> {
    actor
        .filter(|p| p.signed_in && p.name != super::console::auth::ADMIN)
        .map(|p| p.name.as_str())
}

impl WriteApi {
    /// Whether incident or RFC `id` is a security one the asker may not see
    /// (`http.restrict_security`, as the token check found): then they may not act on it
    /// either. Known from the view; without one (tests) nothing is hidden.
    fn hidden(&self, id: &str, sees: Option<&SeesSecurity>) -> bool {
        if sees.is_none_or(|s| s.0) {
            return false;
        }
        let Some(view) = self.inner.view.as_ref() else {
            return false;
        };
        let v = view.read();
        let rfc = v.changes.get(id);
        let incident = rfc.map_or(id, |r| r.incident_id.as_str());
        rfc.is_some_and(|r| r.containment.is_some())
            || v.incidents
                .get(incident)
                .is_some_and(|i| i.security.is_some())
    }

    async fn acknowledge(&self, id: &str, body: Body, actor: Option<&Principal>) -> Answer {
        if let Err(answer) = check_id(ACK, id, "an incident id (e.g. INC-46cbeabff822)") {
            return answer;
        }
        let b: AckBody = match json_body(self, ACK, body, "{\"by\": \"alice\"}").await {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        self.ack(id, named(actor).unwrap_or(&b.by)).await
    }

    /// Acknowledges incident `id` as `by`: checks both, then writes the control record.
    pub(super) async fn ack(&self, id: &str, by: &str) -> Answer {
        if let Err(answer) = check_id(ACK, id, "an incident id (e.g. INC-46cbeabff822)") {
            return answer;
        }
        let by = by.trim();
        if by.is_empty() || by.len() > MAX_ACK_FIELD {
            return bad(
                ACK,
                format!("`by` must name who acknowledges, 1 to {MAX_ACK_FIELD} bytes"),
                "invalid_value",
            );
        }
        let ack = crate::model::Ack {
            incident: id.to_string(),
            by: by.to_string(),
            time: chrono::Utc::now(),
        };
        let accepted = json!({"incident": id, "acknowledged_by": ack.by});
        self.control(ACK, ACK_HEADER, &ack, accepted).await
    }
}

/// A 400 answer of endpoint `format`.
pub(super) fn bad(format: &'static str, error: String, reason: &str) -> Answer {
    Answer::rejected(StatusCode::BAD_REQUEST, format, error, reason)
}

/// Checks an incident or RFC id from the path: letters, digits, `-` and `_`, at most
/// [`MAX_ACK_FIELD`] bytes. `what` describes it in the error.
fn check_id(format: &'static str, id: &str, what: &str) -> Result<(), Answer> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ACK_FIELD
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(bad(format, format!("`{id}` is not {what}"), "invalid_id"))
    }
}

/// Largest body of a control request.
const MAX_CONTROL_BODY: usize = 64 * 1024;

/// Reads a small JSON body (at most [`MAX_CONTROL_BODY`], within `http.body_timeout`) as a
/// `T`; `example` shows the expected shape in the error. A body too large answers 413, one too
/// slow 408.
async fn json_body<T: serde::de::DeserializeOwned>(
    api: &WriteApi,
    format: &'static str,
    body: Body,
    example: &str,
) -> Result<T, Answer> {
    let timeout = api.inner.body_timeout;
    let raw = read_body(body, None, MAX_CONTROL_BODY, timeout)
        .await
        .map_err(|e| e.answer(format, MAX_CONTROL_BODY, timeout))?;
    serde_json::from_slice(&raw).map_err(|e| {
        bad(
            format,
            format!("the body must be JSON like {example}: {e}"),
            "malformed_json",
        )
    })
}

/// The body of a change decision.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: crate::model::DecisionStatus,
    by: String,
    #[serde(default)]
    comment: Option<String>,
}

pub(super) async fn post_decision(
    State(api): State<WriteApi>,
    Path(id): Path<String>,
    actor: Option<Extension<Principal>>,
    sees: Option<Extension<SeesSecurity>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = if api.hidden(&id, sees.as_deref()) {
        unknown(DECISION, "no such RFC")
    } else {
        api.decide(&id, body, actor.as_deref()).await
    };
    api.respond(answer, start)
}

impl WriteApi {
    async fn decide(&self, id: &str, body: Body, actor: Option<&Principal>) -> Answer {
        if let Err(answer) = check_id(DECISION, id, "an RFC id (e.g. RFC-3f2a9c1b7d4e)") {
            return answer;
        }
        let body: DecisionBody = match json_body(
            self,
            DECISION,
            body,
            "{\"decision\": \"approved\", \"by\": \"cab\", \"comment\": \"…\"} (decision `approved` or `rejected`)",
        )
        .await
        {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let by = named(actor).unwrap_or(&body.by);
        self.decision(id, body.decision, by, body.comment).await
    }

    /// Records `by`'s decision on RFC `id`: checks it, then writes the control record.
    pub(super) async fn decision(
        &self,
        id: &str,
        status: crate::model::DecisionStatus,
        by: &str,
        comment: Option<String>,
    ) -> Answer {
        if let Err(answer) = check_id(DECISION, id, "an RFC id (e.g. RFC-3f2a9c1b7d4e)") {
            return answer;
        }
        let by = by.trim();
        if by.is_empty() || by.len() > MAX_ACK_FIELD {
            return bad(
                DECISION,
                format!("`by` must name who decided, 1 to {MAX_ACK_FIELD} bytes"),
                "invalid_value",
            );
        }
        if comment.as_ref().is_some_and(|c| c.len() > 4096) {
            return bad(
                DECISION,
                "`comment` is over 4096 bytes".into(),
                "invalid_value",
            );
        }
        let decision = crate::model::ChangeDecision {
            change: id.to_string(),
            decision: status,
            by: by.to_string(),
            comment: comment.filter(|c| !c.trim().is_empty()),
            time: chrono::Utc::now(),
        };
        let accepted = json!({"change": id, "decision": decision.decision});
        self.control(DECISION, DECISION_HEADER, &decision, accepted)
            .await
    }
}

impl WriteApi {
    async fn add_silence(&self, body: Body, actor: Option<&Principal>) -> Answer {
        let example = "{\"matchers\": \"{service=\\\"checkout-api\\\"}\", \"starts_at\": \"…\", \
                       \"ends_at\": \"…\", \"created_by\": \"…\", \"comment\": \"…\"}";
        let mut silence: crate::suppress::Silence =
            match json_body(self, SILENCE, body, example).await {
                Ok(s) => s,
                Err(answer) => return answer,
            };
        if let Some(name) = named(actor) {
            silence.created_by = name.to_string();
        }
        self.silence(silence).await
    }

    /// Checks `silence` and writes it as a control record.
    pub(super) async fn silence(&self, silence: crate::suppress::Silence) -> Answer {
        let bad = |error: String, reason: &str| bad(SILENCE, error, reason);
        // Checked (and its id settled) exactly as every engine will.
        let mut check = match crate::suppress::Suppressor::new(Default::default()) {
            Ok(c) => c,
            Err(e) => return bad(e.to_string(), e.reason()),
        };
        let id = match check.add_silence(silence) {
            Ok(id) => id,
            Err(e) => return bad(e.to_string(), e.reason()),
        };
        let Some(silence) = check.silence(&id).cloned() else {
            return bad("the silence was not kept".into(), "invalid_value");
        };
        // Room among the silences the engines hold (the configured ones and those in the view),
        // at the wall clock, which the engines' clocks follow through the ticks.
        if let (Some(rules), Some(view)) = (&self.inner.silence_rules, &self.inner.view) {
            let view = view.read();
            let mut held: std::collections::BTreeMap<&str, &crate::suppress::Silence> =
                rules.silences().map(|s| (s.id.as_str(), s)).collect();
            held.extend(view.silences.iter().map(|(id, s)| (id.as_str(), s)));
            let now = Some(chrono::Utc::now());
            if let Err(e) = crate::suppress::room_for(held.into_values(), &id, now) {
                return bad(e.to_string(), e.reason());
            }
        }
        let accepted = json!({"id": id, "silence": silence});
        self.control(SILENCE, SILENCE_HEADER, &silence, accepted)
            .await
    }
}

pub(super) async fn post_silence(
    State(api): State<WriteApi>,
    actor: Option<Extension<Principal>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.add_silence(body, actor.as_deref()).await;
    api.respond(answer, start)
}

/// The body of `POST /api/v1/problems`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenProblemBody {
    pub title: String,
    pub service: String,
    pub by: String,
    #[serde(default)]
    pub alert_names: Vec<String>,
    #[serde(default)]
    pub incidents: Vec<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// The body of `POST /api/v1/problems/{id}/known-error`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownErrorBody {
    workaround: String,
    by: String,
    #[serde(default)]
    comment: Option<String>,
}

/// The body of `POST /api/v1/problems/{id}/resolve`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    by: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `text` trimmed, if it is 1 to `max` bytes; else a 400 naming `field`.
fn text_field(field: &str, text: &str, max: usize) -> Result<String, Answer> {
    let t = text.trim();
    if t.is_empty() || t.len() > max {
        return Err(bad(
            PROBLEM,
            format!("`{field}` must be 1 to {max} bytes"),
            "invalid_value",
        ));
    }
    Ok(t.to_string())
}

/// An optional comment, checked.
fn comment_field(comment: Option<String>) -> Result<Option<String>, Answer> {
    match comment.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(c) => text_field("comment", c, MAX_TEXT).map(Some),
    }
}

pub(super) async fn post_problem(
    State(api): State<WriteApi>,
    actor: Option<Extension<Principal>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.open_problem(body, actor.as_deref()).await;
    api.respond(answer, start)
}

pub(super) async fn post_known_error(
    State(api): State<WriteApi>,
    Path(id): Path<String>,
    actor: Option<Extension<Principal>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.known_error(&id, body, actor.as_deref()).await;
    api.respond(answer, start)
}

pub(super) async fn post_resolve_problem(
    State(api): State<WriteApi>,
    Path(id): Path<String>,
    actor: Option<Extension<Principal>>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.resolve_problem(&id, body, actor.as_deref()).await;
    api.respond(answer, start)
}

impl WriteApi {
    /// The correlation domain of `service`, if the service model has it.
    fn domain_of(&self, service: &str) -> Option<String> {
        let view = self.inner.view.as_ref()?;
        let v = view.read();
        v.topology.service_domain(service).map(String::from)
    }

    async fn open_problem(&self, body: Body, actor: Option<&Principal>) -> Answer {
        let example = "{\"title\": \"…\", \"service\": \"payments-db\", \"by\": \"alice\"}";
        match json_body::<OpenProblemBody>(self, PROBLEM, body, example).await {
            Ok(mut b) => {
                if let Some(name) = named(actor) {
                    b.by = name.to_string();
                }
                self.new_problem(b).await
            }
            Err(answer) => answer,
        }
    }

    /// Opens a problem by hand (the API and the console): its id is derived here and the
    /// record goes to the partition of the service's correlation domain.
    pub(super) async fn new_problem(&self, b: OpenProblemBody) -> Answer {
        let result = (|| {
            let title = text_field("title", &b.title, 256)?;
            let by = text_field("by", &b.by, MAX_ACK_FIELD)?;
            let service = b.service.trim().to_string();
            let Some(domain) = self.domain_of(&service) else {
                return Err(bad(
                    PROBLEM,
                    format!("`{service}` is not a service of the service model"),
                    "unknown_service",
                ));
            };
            if b.alert_names.len() > 100 || b.incidents.len() > 100 {
                return Err(bad(
                    PROBLEM,
                    "`alert_names` and `incidents` take at most 100 entries".into(),
                    "invalid_value",
                ));
            }
            for i in &b.incidents {
                check_id(PROBLEM, i, "an incident id (e.g. INC-46cbeabff822)")?;
            }
            for a in &b.alert_names {
                text_field("alert_names", a, MAX_ACK_FIELD)?;
            }
            let time = chrono::Utc::now();
            let stamp = time.to_rfc3339();
            let id = format!(
                "PRB-{}",
                &crate::model::stable_hash(&["by_hand", &service, &title, &by, &stamp])[..12]
            );
            let action = ProblemAction::Open {
                problem: id,
                title,
                service,
                alert_names: b.alert_names,
                incidents: b.incidents,
                priority: b.priority.unwrap_or(Priority::P3),
                by,
                comment: comment_field(b.comment)?,
                time,
            };
            Ok((action, domain))
        })();
        let (action, domain) = match result {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let accepted = json!({"problem": action.problem()});
        self.control_to(PROBLEM, PROBLEM_HEADER, &action, Some(&domain), accepted)
            .await
    }

    async fn known_error(&self, id: &str, body: Body, actor: Option<&Principal>) -> Answer {
        let example = "{\"workaround\": \"…\", \"by\": \"alice\"}";
        match json_body::<KnownErrorBody>(self, PROBLEM, body, example).await {
            Ok(b) => {
                let by = named(actor).unwrap_or(&b.by);
                self.mark_known_error(id, &b.workaround, by, b.comment)
                    .await
            }
            Err(answer) => answer,
        }
    }

    /// Marks problem `id` a known error with `workaround`, as `by` (the API and the console).
    pub(super) async fn mark_known_error(
        &self,
        id: &str,
        workaround: &str,
        by: &str,
        comment: Option<String>,
    ) -> Answer {
        self.problem_action(id, "known_error", || {
            Ok(ProblemAction::KnownError {
                problem: id.to_string(),
                workaround: text_field("workaround", workaround, MAX_TEXT)?,
                by: text_field("by", by, MAX_ACK_FIELD)?,
                comment: comment_field(comment)?,
                time: chrono::Utc::now(),
            })
        })
        .await
    }

    async fn resolve_problem(&self, id: &str, body: Body, actor: Option<&Principal>) -> Answer {
        match json_body::<ResolveBody>(self, PROBLEM, body, "{\"by\": \"alice\"}").await {
            Ok(b) => {
                let by = named(actor).unwrap_or(&b.by);
                self.close_problem(id, by, b.comment).await
            }
            Err(answer) => answer,
        }
    }

    /// Resolves problem `id`, as `by` (the API and the console).
    pub(super) async fn close_problem(
        &self,
        id: &str,
        by: &str,
        comment: Option<String>,
    ) -> Answer {
        self.problem_action(id, "resolved", || {
            Ok(ProblemAction::Resolve {
                problem: id.to_string(),
                by: text_field("by", by, MAX_ACK_FIELD)?,
                comment: comment_field(comment)?,
                time: chrono::Utc::now(),
            })
        })
        .await
    }

    /// Checks problem id `id`, then the action `build` makes of the rest, and writes it to
    /// every partition; `202 {"problem", "status", "partitions"}` or the first problem found.
    async fn problem_action(
        &self,
        id: &str,
        status: &str,
        build: impl FnOnce() -> Result<ProblemAction, Answer>,
    ) -> Answer {
        let checked =
            check_id(PROBLEM, id, "a problem id (e.g. PRB-3f2a9c1b7d4e)").and_then(|()| build());
        let action = match checked {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let accepted = json!({"problem": id, "status": status});
        self.control(PROBLEM, PROBLEM_HEADER, &action, accepted)
            .await
    }
}
