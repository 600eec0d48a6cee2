//! Telemetry: the Prometheus metrics registry (pipeline, business impact, delivery, problems and
//! RFC runs), readiness,
//! and tracing set-up. The shell counts what the engine returns; nothing below the engine knows
//! about metrics.

mod business;
pub mod changes;
pub mod events;
mod health;
pub mod held;
mod metrics;
mod published;
pub mod shell;

pub use business::BusinessMetrics;
pub use health::Health;
pub use metrics::Metrics;

/// Installs the global tracing subscriber, logging to stderr. The filter comes from `D2C_LOG`
/// (or `RUST_LOG`), default `info`; `D2C_LOG_FORMAT=json` switches to one JSON object per line.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("D2C_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("D2C_LOG=`{filter}` is not a valid log filter ({e}); using `info`");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("D2C_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // try_init: a second call (tests, demo inside a test) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
