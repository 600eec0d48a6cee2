//! `GET /live`: server-sent events telling an open page that what it shows changed, so its
//! live part reloads (htmx's SSE extension turns each event into a request). The board, the
//! business and the security views get `board` on any change; an incident page
//! (`/live?incident=INC-…`) gets `incident` when that incident or one of its RFCs changed. The
//! first change after a quiet spell is sent at once; under a storm, one event per [`THROTTLE`]
//! stands for all changes since the last (each event costs every open page a reload). Streams
//! end when d2c shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Console;
use crate::pipeline::view::Notice;

/// Least time between two events of one stream.
const THROTTLE: Duration = Duration::from_millis(250);

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
    let start = (rx, stop, q.incident, None::<tokio::time::Instant>);
    let events = futures::stream::unfold(start, move |(mut rx, stop, id, last)| async move {
        let concerns = |n: &Notice| match (n, &id) {
            (Notice::Many, _) | (_, None) => true,
            (Notice::Incident(i), Some(id)) => **i == **id,
        };
        loop {
            let notice = tokio::select! {
                _ = stop.cancelled() => return None,
                n = rx.recv() => n,
            };
            let relevant = match &notice {
                Ok(n) => concerns(n),
                // Fell behind: something changed, maybe this.
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return None,
            };
            if !relevant {
                continue;
            }
            if let Some(next) = last.map(|t| t + THROTTLE) {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep_until(next) => {}
                }
            }
            // What arrived meanwhile is covered by this event.
            loop {
                match rx.try_recv() {
                    Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return None,
                }
            }
            let event = Event::default().event(name).data("changed");
            let now = Some(tokio::time::Instant::now());
            return Some((Ok(event), (rx, stop, id, now)));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
