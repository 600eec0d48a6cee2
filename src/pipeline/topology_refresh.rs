//! Keeps the service model current: reads the Backstage catalog (and the topology file again)
//! every `backstage.refresh_interval`, merges them (the file wins) and hands the new model to
//! both stages through a watch channel. A failed read keeps the model in use; it is logged once
//! per streak of failures and counted in `d2c_topology_refreshes_total{result="failed"}`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{BackstageConfig, ConfigError};
use crate::engine::Settings;
use crate::telemetry::Metrics;
use crate::telemetry::events::TopologyRefreshed;
use crate::topology::backstage::{self, Entity, Page};
use crate::topology::{Topology, TopologyFile};

/// Entities asked for per catalog page.
const PAGE_SIZE: usize = 500;
/// Largest catalog page read (500 entities are a few MB at most).
const MAX_PAGE_BYTES: usize = 64 << 20;
/// A catalog of more pages than this is refused (a cursor that never ends).
const MAX_PAGES: usize = 1000;

/// Why the service model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach the Backstage catalog at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Backstage catalog at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the Backstage catalog at {url} sent a page d2c cannot read: {reason}")]
    Unreadable { url: String, reason: String },
    #[error(
        "the Backstage catalog at {url} has more than {MAX_PAGES} pages; d2c stopped reading it"
    )]
    TooLarge { url: String },
    #[error("{0}")]
    Token(#[from] crate::config::secret::SecretError),
    #[error("{0}")]
    Model(#[from] ConfigError),
    #[error("building the service model failed: {0}")]
    Build(String),
}

/// The bearer token of `backstage.token`, if one is set.
fn token(cfg: &BackstageConfig) -> Result<Option<String>, SourceError> {
    match &cfg.token {
        None => Ok(None),
        Some(t) => Ok(Some(
            t.resolve("backstage.token", true)?.expose().to_string(),
        )),
    }
}

/// Reads every component, resource, system and domain of the catalog at `cfg.url`, sending
/// `token` as a bearer token.
pub async fn fetch_catalog(
    client: &reqwest::Client,
    cfg: &BackstageConfig,
    token: Option<&str>,
) -> Result<Vec<Entity>, SourceError> {
    let base = cfg.url.trim().trim_end_matches('/');
    let endpoint = format!("{base}/api/catalog/entities/by-query");
    let mut entities = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = vec![("limit", PAGE_SIZE.to_string())];
        match &cursor {
            // A cursor carries the query; the filter goes with the first page only.
            Some(c) => params.push(("cursor", c.clone())),
            None => params.push(("filter", backstage::KIND_FILTER.to_string())),
        }
        let url = reqwest::Url::parse_with_params(&endpoint, &params).map_err(|e| {
            SourceError::Unreadable {
                url: endpoint.clone(),
                reason: format!("backstage.url does not make a valid address: {e}"),
            }
        })?;
        let mut req = client.get(url).header(ACCEPT, "application/json");
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let unreachable = |source| SourceError::Unreachable {
            url: endpoint.clone(),
            source,
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        // Read chunk by chunk up to the cap: a catalog (or something posing as one) streaming
        // an endless body must not take the process's memory.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(SourceError::Unreadable {
                    url: endpoint,
                    reason: format!("a page is over {MAX_PAGE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(SourceError::Status {
                url: endpoint,
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| SourceError::Unreadable {
            url: endpoint.clone(),
            reason: e.to_string(),
        })?;
        entities.extend(page.items);
        match page.page_info.next_cursor {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => return Ok(entities),
        }
    }
    Err(SourceError::TooLarge { url: endpoint })
}

/// The service model from the topology file and the catalog (the file wins), checked.
pub async fn load(
    client: &reqwest::Client,
    settings: &Settings,
) -> Result<(TopologyFile, Topology), SourceError> {
    let cfg = &settings.config.backstage;
    let entities = fetch_catalog(client, cfg, token(cfg)?.as_deref()).await?;
    let path = settings.topology_file.clone();
    // Reading and building a model of tens of thousands of services takes seconds of CPU: on
    // a thread for blocking work, not on one of the runtime's workers.
    tokio::task::spawn_blocking(move || {
        let (file, text) = Topology::read_file(&path)?;
        let (catalog, warnings) = backstage::to_topology(&entities);
        for w in &warnings {
            tracing::debug!(warning = %w, "Backstage catalog entry not fully used");
        }
        let merged = backstage::merge(file, catalog);
        let topo = Topology::build_from(merged.clone(), &text, &path)?;
        tracing::debug!(
            entities = entities.len(),
            warnings = warnings.len(),
            "service model read from the topology file and the Backstage catalog"
        );
        Ok((merged, topo))
    })
    .await
    .map_err(|e| SourceError::Build(e.to_string()))?
}

/// The HTTP client for the catalog, with `backstage.timeout`. Fails (and start-up with it)
/// rather than fall back to a client without timeouts, which a stalled catalog would hang.
pub fn client(cfg: &BackstageConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for backstage.url: {e}"))
}

/// Reads the model once (at start-up), counting the result. `None` on failure (logged).
pub async fn first(
    client: &reqwest::Client,
    settings: &Settings,
    metrics: &Metrics,
) -> Option<(TopologyFile, Topology)> {
    match load(client, settings).await {
        Ok(m) => {
            count(metrics, "ok");
            tracing::info!(
                services = m.1.service_names().count(),
                capabilities = m.1.capability_names().count(),
                "service model from the topology file and the Backstage catalog"
            );
            Some(m)
        }
        Err(e) => {
            count(metrics, "failed");
            tracing::warn!(error = %e, "cannot read the Backstage catalog at start-up; using the topology file alone until a refresh succeeds");
            None
        }
    }
}

fn count(metrics: &Metrics, result: &'static str) {
    metrics.emit(TopologyRefreshed { result });
}

/// Reads the model every `backstage.refresh_interval` until `shutdown`, sending each model that
/// differs from the last one on `tx`.
pub async fn refresh(
    client: reqwest::Client,
    settings: Arc<Settings>,
    metrics: Metrics,
    mut last: Option<TopologyFile>,
    tx: watch::Sender<Arc<Topology>>,
    shutdown: CancellationToken,
) {
    let interval = settings.config.backstage.refresh_interval;
    let mut failing = last.is_none();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match load(&client, &settings).await {
            Ok((file, topo)) => {
                count(&metrics, "ok");
                if failing {
                    tracing::info!("the service model can be read again");
                    failing = false;
                }
                if last.as_ref() != Some(&file) {
                    tracing::info!(
                        services = topo.service_names().count(),
                        capabilities = topo.capability_names().count(),
                        "service model changed; both stages use the new one from their next batch"
                    );
                    metrics.business.set_topology(&topo);
                    last = Some(file);
                    let _ = tx.send(Arc::new(topo));
                }
            }
            Err(e) => {
                count(&metrics, "failed");
                if !failing {
                    tracing::warn!(error = %e, "cannot refresh the service model; keeping the one in use (logged once until it recovers)");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use std::collections::HashMap;
    use std::sync::Mutex;

    const PAGE: &str = include_str!("../../tests/fixtures/backstage/entities.json");

    /// Queries the fake catalog received.
    type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

    /// A catalog over real TCP serving the fixture in pages of 3, answering 401 without the
    /// token; records the queries it got.
    async fn catalog(seen: Seen) -> String {
        let all: Page = serde_json::from_str(PAGE).unwrap();
        let raw: serde_json::Value = serde_json::from_str(PAGE).unwrap();
        let items = raw["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), all.items.len());
        let app = axum::Router::new()
            .route(
                "/api/catalog/entities/by-query",
                axum::routing::get(
                    |State((items, seen)): State<(Vec<serde_json::Value>, Seen)>,
                     headers: HeaderMap,
                     Query(q): Query<HashMap<String, String>>| async move {
                        seen.lock().unwrap().push(q.clone());
                        if headers.get("authorization").and_then(|v| v.to_str().ok())
                            != Some("Bearer s3cret")
                        {
                            return (StatusCode::UNAUTHORIZED, "missing token".to_string());
                        }
                        let from: usize = q.get("cursor").map_or(0, |c| c.parse().unwrap());
                        let to = (from + 3).min(items.len());
                        let next = (to < items.len()).then(|| to.to_string());
                        let body = serde_json::json!({
                            "items": items[from..to],
                            "totalItems": items.len(),
                            "pageInfo": {"nextCursor": next},
                        });
                        (StatusCode::OK, body.to_string())
                    },
                ),
            )
            .with_state((items, seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn the_catalog_is_read_page_by_page_with_the_token() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let url = catalog(seen.clone()).await;
        let cfg = BackstageConfig {
            url: url.clone(),
            ..Default::default()
        };
        let entities = fetch_catalog(&client(&cfg).unwrap(), &cfg, Some("s3cret"))
            .await
            .unwrap();
        assert_eq!(entities.len(), 7);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 3, "pages of 3: {seen:?}");
            assert_eq!(seen[0]["filter"], backstage::KIND_FILTER);
            assert_eq!(seen[1]["cursor"], "3");
        }

        let e = fetch_catalog(&client(&cfg).unwrap(), &cfg, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("answered 401: missing token"), "{e}");
        let nowhere = BackstageConfig {
            url: "http://127.0.0.1:1".into(),
            ..Default::default()
        };
        let e = fetch_catalog(&client(&nowhere).unwrap(), &nowhere, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot reach the Backstage catalog at http://127.0.0.1:1/api/catalog/entities/by-query"), "{e}");
    }
}
