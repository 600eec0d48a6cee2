//! `GET /live`: server-sent events telling an open page that what it shows changed, so its
//! live part reloads (htmx's SSE extension turns each event into a request). The board, the
//! business and the security views get `board` on any change; an incident page
//! (`/live?incident=INC-…`) gets `incident` when that incident or one of its RFCs changed. A
//! burst of changes within [`COALESCE`] gives one event. Streams end when d2c shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Console;
use crate::pipeline::view::Notice;

/// How long a change waits for others to join it in one event.
const COALESCE: Duration = Duration::from_millis(50);

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    incident: Option<String>,
}

pub async fn stream(
    State(console): State<Console>,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = console.view.subscribe();
    let stop = console.shutdown.clone();
    let name = if q.incident.is_some() {
        "incident"
    } else {
        "board"
    };
    let events = futures::stream::unfold((rx, stop, q.incident), move |(mut rx, stop, id)| {
        async move {
            loop {
                let notice = tokio::select! {
                    _ = stop.cancelled() => return None,
                    n = rx.recv() => n,
                };
                let concerns = |n: &Notice| match (n, &id) {
                    (Notice::Many, _) | (_, None) => true,
                    (Notice::Incident(i), Some(id)) => **i == **id,
                };
                let mut relevant = match &notice {
                    Ok(n) => concerns(n),
                    // Fell behind: something changed, maybe this.
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return None,
                };
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(COALESCE) => {}
                }
                loop {
                    match rx.try_recv() {
                        Ok(n) => relevant |= concerns(&n),
                        Err(TryRecvError::Lagged(_)) => relevant = true,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => return None,
                    }
                }
                if relevant {
                    let event = Event::default().event(name).data("changed");
                    return Some((Ok(event), (rx, stop, id)));
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
