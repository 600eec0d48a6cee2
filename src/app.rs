//! The one start-up and shutdown of d2c, used by `d2c run`, `d2c demo` and `d2c bench`: the
//! metrics, readiness and view every part shares; the HTTP server and the view's consumer of
//! the incidents, changes and problems topics (when asked for); the pipeline's two stages; the
//! delivery and automation stages (when asked for and configured); and a shutdown that lets
//! each finish its batch within `kafka.shutdown_deadline`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::console::auth::Access;
use crate::api::{Endpoints, WriteApi, WriteApiError};
use crate::automation::AutomationError;
use crate::config::secret::SecretError;
use crate::engine::Settings;
use crate::notify::NotifyError;
use crate::pipeline::materialise::{MaterialiseError, Materialiser};
use crate::pipeline::{PipelineError, View};
use crate::telemetry::{Health, Metrics};

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set (then
/// mimalloc and the kernel's setting decide). mimalloc asks the kernel for them (`madvise`) by
/// default, and the pipeline's churn of short-lived records then makes the kernel zero a fresh
/// 2 MiB page on the hot path: ~10% of the correlate stage's CPU under `d2c bench`
/// (BENCHMARKS.md, round 3g). Called first thing by `d2c` and by the benches.
pub fn huge_pages_off() -> std::io::Result<()> {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

/// Why d2c could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr} (http.listen, or --listen for the demo): {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    WriteApi(#[from] WriteApiError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Security(#[from] crate::pipeline::kafka::SecurityCheckError),
    #[error(transparent)]
    Materialise(#[from] MaterialiseError),
    #[error("delivery stage: {0}")]
    Notify(#[from] NotifyError),
    #[error("automation stage: {0}")]
    Automation(#[from] AutomationError),
    #[error(
        "the pipeline did not stop within kafka.shutdown_deadline ({0:?}); exiting without a final commit, input since the last checkpoint will be processed again"
    )]
    Deadline(Duration),
    #[error("a stage task ended abnormally: {0}")]
    Task(String),
}

/// Which parts run beside the pipeline's two stages.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// The HTTP server on `http.listen`: metrics, probes, ingest, control and read API, the
    /// console; and the view they serve, read from the incidents, changes and problems topics.
    pub http: bool,
    /// The stages that act on tools: delivery to ITSM and paging tools (when `[notify]` has
    /// connectors) and automation of approved RFCs (when `[automation]` has runbooks).
    pub delivery: bool,
}

impl Parts {
    /// Only the ingest and correlate stages: what `d2c bench` and `d2c soak` measure.
    pub const STAGES: Parts = Parts {
        http: false,
        delivery: false,
    };
}

/// A started d2c: what its parts share, and the task running them.
#[derive(Debug)]
pub struct Running {
    pub metrics: Metrics,
    pub health: Health,
    pub view: View,
    /// Where the HTTP server listens, when it runs.
    pub http_addr: Option<SocketAddr>,
    task: JoinHandle<Result<(), AppError>>,
}

impl Running {
    /// Waits until every part has stopped (after `shutdown`, or the first failure).
    pub async fn wait(self) -> Result<(), AppError> {
        self.task.await.map_err(|e| AppError::Task(e.to_string()))?
    }

    /// Whether every part has stopped already.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts the parts of d2c named by `parts`, to run until `shutdown` is cancelled or one of them
/// fails (which stops the others). Everything that can be refused at start-up (the listen
/// address, secrets, producers) is refused here, before anything runs.
pub async fn start(
    settings: Arc<Settings>,
    parts: Parts,
    shutdown: CancellationToken,
) -> Result<Running, AppError> {
    let cfg = &settings.config;
    cfg.kafka
        .security
        .verify()
        .map_err(|e| AppError::Security(e.into()))?;
    let metrics = Metrics::new(&settings.topology);
    let health = Health::default();
    let view = View::new(settings.topology.clone(), cfg.http.view.clone());
    let mut http_addr = None;
    let mut materialiser = None;
    let server = if parts.http {
        let listen = &cfg.http.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| AppError::Listen {
                addr: listen.clone(),
                source,
            })?;
        http_addr = listener.local_addr().ok();
        let write = WriteApi::new(cfg, &metrics, &health)?
            .with_topology(settings.topology.clone())
            .with_view(view.clone())
            .with_silence_rules(settings.suppressor.clone());
        let access = Access::from_config(&cfg.http)?.map(Arc::new);
        if access.is_none() {
            tracing::warn!(
                "neither http.token nor http.tokens is set: the /api/v1 endpoints and the console accept anyone who can reach them"
            );
        }
        materialiser = Some(Materialiser::new(cfg, view.clone(), metrics.clone())?);
        tracing::info!(addr = ?http_addr, console = cfg.http.console, "serving /metrics, /healthz, /readyz, the /api/v1 endpoints and the console");
        Some(tokio::spawn(crate::api::serve(
            listener,
            metrics.clone(),
            health.clone(),
            Endpoints {
                write: Some(write),
                view: Some(view.clone()),
                access,
                console: cfg.http.console,
                limits: (&cfg.http).into(),
            },
            shutdown.clone(),
        )))
    } else {
        None
    };
    // Beside the stages, not joined with them: a stale view never stops the pipeline. Awaited
    // (briefly) after them, so its consumer closes before whatever hosts the broker goes.
    let view_task = materialiser.map(|m| tokio::spawn(m.run(shutdown.clone())));
    let (notify, automation) = if parts.delivery {
        (
            crate::notify::prepare(cfg, &metrics)?,
            crate::automation::prepare(cfg, &metrics)?,
        )
    } else {
        (None, None)
    };
    let task = tokio::spawn(run(
        settings.clone(),
        (notify, automation),
        (server, view_task),
        (metrics.clone(), health.clone(), view.clone()),
        shutdown,
    ));
    Ok(Running {
        metrics,
        health,
        view,
        http_addr,
        task,
    })
}

/// Runs the pipeline and the delivery and automation stages beside it (any failing stops all),
/// then the server's last answers. After `shutdown`, gives up waiting after
/// `kafka.shutdown_deadline`.
async fn run(
    settings: Arc<Settings>,
    (notify, automation): (
        Option<crate::notify::Notify>,
        Option<crate::automation::Automation>,
    ),
    (server, view_task): (
        Option<JoinHandle<std::io::Result<()>>>,
        Option<JoinHandle<()>>,
    ),
    (metrics, health, view): (Metrics, Health, View),
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let deadline = settings.config.kafka.shutdown_deadline;
    let delivery = crate::notify::run(notify, settings.clone(), shutdown.clone());
    let automate = crate::automation::run(automation, settings.clone(), shutdown.clone());
    let pipeline = crate::pipeline::run(settings, metrics, health, view, shutdown.clone());
    let both = async {
        let (p, n, a) = tokio::join!(
            async {
                let r = pipeline.await;
                shutdown.cancel();
                r.map_err(AppError::from)
            },
            async {
                let r = delivery.await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "delivery stage failed; stopping");
                    shutdown.cancel();
                }
                r.map_err(AppError::from)
            },
            async {
                let r = automate.await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "automation stage failed; stopping");
                    shutdown.cancel();
                }
                r.map_err(AppError::from)
            }
        );
        p.and(n).and(a)
    };
    let result = tokio::select! {
        r = both => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(deadline).await } => {
            Err(AppError::Deadline(deadline))
        }
    };
    shutdown.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    if let Some(view_task) = view_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), view_task).await;
    }
    result
}

/// A multi-threaded runtime for the commands that run the pipeline.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// A token cancelled on SIGINT or SIGTERM. Call inside the runtime.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot handle SIGTERM; stop with Ctrl-C");
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested; finishing the current batch");
        t.cancel();
    });
    token
}

/// `d2c run`: every part, until SIGINT or SIGTERM.
pub async fn run_until_signal(settings: Settings) -> Result<(), AppError> {
    let shutdown = shutdown_on_signal();
    let app = start(
        Arc::new(settings),
        Parts {
            http: true,
            delivery: true,
        },
        shutdown,
    )
    .await?;
    app.wait().await?;
    tracing::info!("stopped");
    Ok(())
}
