//! The `d2c` command line: arguments only. It parses them, loads the settings, installs tracing
//! and calls into the library (`d2c::app` for everything that runs the pipeline).

use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// mimalloc instead of the system allocator: the hot paths (parsing, building incident records)
/// make many small short-lived allocations, where glibc's malloc and free cost about a fifth of
/// the CPU time (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

use d2c::engine::Settings;
use d2c::telemetry;

/// d2c: Detect to Correct. Correlates monitoring and security events from Kafka into incidents,
/// maps them to business impact, and proposes change requests.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline against the configured Kafka brokers.
    Run {
        /// Settings file.
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
    },
    /// Run the real pipeline on an embedded Kafka-protocol broker with a traffic generator,
    /// printing incidents as they form.
    Demo {
        /// Settings file; default: the example configuration built into the binary.
        #[arg(long, env = "D2C_CONFIG")]
        config: Option<PathBuf>,
        /// Stop after this long (e.g. `90s`, `5m`); default: run until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Address for /metrics, overriding the settings (e.g. `127.0.0.1:0`).
        #[arg(long)]
        listen: Option<String>,
        /// Time between generator steps; smaller plays the scenario faster.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        step: Duration,
    },
    /// Replay a file of raw payloads (one per line, any supported format) through the same
    /// core, writing output records as JSON Lines on stdout.
    Replay {
        /// Settings file (for the topology, change policy and correlation settings).
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
        /// Input file; `-` reads standard input.
        input: PathBuf,
        /// Correlate as a pipeline with this many events partitions does: one engine per
        /// partition, each event routed to its correlation domain's partition (to see what a
        /// routing setting such as `correlation.security.partition` does to your data).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=1024))]
        partitions: i32,
    },
    /// Check a settings file and the topology and change policy it names, then exit.
    Check {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
    },
    /// Measure the pipeline against a broker: backlog throughput, steady-rate latency, peak
    /// memory, and a bare consumer on the same records for comparison. Uses fresh topics.
    Bench {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
        /// Bootstrap servers; default: `kafka.brokers` of the settings.
        #[arg(long)]
        brokers: Option<String>,
        /// Events in the backlog phase.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Percent of backlog events that repeat an existing alert (the dedup path).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
        repeat_percent: u8,
        /// Events per second in the latency phase; 0 skips it.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Length of the latency phase.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Use the configured topics as they are instead of fresh `d2c.bench.<run>.*` ones, and
        /// create none: for a broker that cannot create topics, such as `d2c mock-broker`
        /// started with the same settings. The topics must be empty.
        #[arg(long)]
        existing_topics: bool,
    },
    /// Run the pipeline at a steady rate of a rolling set of alerts for a long time, printing
    /// resident memory and the size of every state map at every sample (see BENCHMARKS.md).
    /// Uses fresh topics.
    Soak {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
        /// Bootstrap servers; default: `kafka.brokers` of the settings.
        #[arg(long)]
        brokers: Option<String>,
        /// Events per second.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        sample: Duration,
        /// Hosts per generation of alerts (two alerts each).
        #[arg(long, default_value_t = 1000)]
        hosts: u64,
        /// How long one generation of hosts fires (then resolves) before the next starts.
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        generation: Duration,
    },
    /// Read the incidents topic from the start and check the delivery guarantee: no `(id,
    /// version)` published with two different contents, no version gaps. Exit 1 if broken.
    Audit {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
        /// Give up reading after this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Write the events topic as replay lines, one file per partition
    /// (`<out>/partition-<p>.jsonl`), ticks and control records included: `d2c replay` of a
    /// file gives what the correlate stage published for that partition.
    DumpEvents {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
        /// Directory for the files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Give up reading after this long.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Run librdkafka's mock cluster (a memory-only Kafka-protocol broker) with the configured
    /// topics, print `bootstrap=HOST:PORT`, and serve until killed. For tests and experiments on
    /// a machine without Kafka; it keeps only a few MB per partition.
    MockBroker {
        #[arg(long, env = "D2C_CONFIG", default_value = "config/d2c.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let huge_pages = d2c::app::huge_pages_off();
    telemetry::init_tracing();
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off for this process");
    }
    // Test builds only (feature `failpoints`): failpoints from the FAILPOINTS variable.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("d2c: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// `e` and its causes, each once: many of d2c's errors already say their cause in their own
/// message ("cannot read FILE: No such file…"), and anyhow's `{:#}` would say it again.
fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check { config } => {
            let s = Settings::load(&config)?;
            d2c::pipeline::kafka::check_security(&s.config.kafka)?;
            println!(
                "{}: ok ({} services, {} capabilities, {} change rules; topology {}, policy {})",
                config.display(),
                s.topology.service_names().count(),
                s.topology.capability_names().count(),
                s.policy.rules.len(),
                s.topology_file.display(),
                s.policy_file.display()
            );
            Ok(())
        }
        Command::Replay {
            config,
            input,
            partitions,
        } => {
            let s = Settings::load(&config)?;
            let stdout = std::io::stdout().lock();
            let stats = if input.as_os_str() == "-" {
                let stdin = std::io::stdin().lock();
                // The default buffer: records of a live pipe into stdin come out soon.
                d2c::replay::run_partitioned(&s, partitions, stdin, BufWriter::new(stdout))
            } else {
                let f = std::fs::File::open(&input)
                    .with_context(|| format!("cannot open {}", input.display()))?;
                d2c::replay::run_partitioned(
                    &s,
                    partitions,
                    BufReader::new(f),
                    // Large: an incident record is often longer than the default 8 KiB, and a
                    // write past the buffer goes to stdout's line buffer, which scans it for
                    // its last newline.
                    BufWriter::with_capacity(1 << 20, stdout),
                )
            }
            .context("replay failed writing its output")?;
            tracing::info!(
                lines = stats.lines,
                events = stats.events,
                dlq = stats.dlq,
                incidents = stats.incidents,
                changes = stats.changes,
                problems = stats.problems,
                "replay finished"
            );
            Ok(())
        }
        Command::Bench {
            config,
            brokers,
            events,
            repeat_percent,
            rate,
            duration,
            existing_topics,
        } => {
            let mut s = Settings::load(&config)?;
            if let Some(b) = brokers {
                s.config.kafka.brokers = b;
            }
            let opts = d2c::bench::BenchOptions {
                events,
                rate,
                duration,
                repeat_percent,
                existing_topics,
            };
            let report = runtime()?.block_on(d2c::bench::run(s, opts))?;
            print!("{}", d2c::bench::render(&report));
            Ok(())
        }
        Command::Soak {
            config,
            brokers,
            rate,
            duration,
            sample,
            hosts,
            generation,
        } => {
            let mut s = Settings::load(&config)?;
            if let Some(b) = brokers {
                s.config.kafka.brokers = b;
            }
            let opts = d2c::soak::SoakOptions {
                rate,
                duration,
                sample,
                hosts: hosts.max(1),
                generation,
            };
            let samples = runtime()?.block_on(d2c::soak::run(s, opts))?;
            print!("{}", d2c::soak::render(&samples));
            Ok(())
        }
        Command::Audit { config, timeout } => {
            let s = Settings::load(&config)?;
            let r = d2c::pipeline::audit::audit(&s.config, timeout)?;
            println!(
                "{}: {} records, {} incidents, {} distinct (id, version), {} identical duplicates, {} conflicting, {} incidents with version gaps, {} unreadable",
                s.config.topics.incidents,
                r.records,
                r.incidents,
                r.versions,
                r.duplicates,
                r.conflicts.len(),
                r.gaps.len(),
                r.unreadable
            );
            for (id, v) in r.conflicts.iter().take(20) {
                println!("conflict: {id} version {v} was published with different contents");
            }
            for (id, missing) in r.gaps.iter().take(20) {
                println!("gap: {id} lacks versions {missing:?}");
            }
            if !r.ok() {
                anyhow::bail!("the incidents topic breaks the guarantee (see above)");
            }
            Ok(())
        }
        Command::DumpEvents {
            config,
            out,
            timeout,
        } => {
            let s = Settings::load(&config)?;
            let r = d2c::pipeline::dump::dump_events(&s.config, &out, timeout)?;
            println!(
                "{}: {} partitions, {} records, {} events, {} ticks, {} undecodable, written to {}",
                s.config.topics.events,
                r.partitions,
                r.records,
                r.events,
                r.ticks,
                r.undecodable,
                out.display()
            );
            Ok(())
        }
        Command::MockBroker { config } => {
            let s = Settings::load(&config)?;
            let cluster = d2c::demo::mock_cluster(&s.config)?;
            println!("bootstrap={}", cluster.bootstrap_servers());
            std::io::Write::flush(&mut std::io::stdout())?;
            loop {
                std::thread::park();
            }
        }
        Command::Run { config } => {
            let s = Settings::load(&config)?;
            let rt = runtime()?;
            let result = rt.block_on(d2c::app::run_until_signal(s));
            // A blocking call still waiting on an unreachable broker must not hold the exit
            // past kafka.shutdown_deadline.
            rt.shutdown_timeout(Duration::from_secs(1));
            Ok(result?)
        }
        Command::Demo {
            config,
            duration,
            listen,
            step,
        } => {
            let mut s = match config {
                Some(c) => Settings::load(&c)?,
                None => Settings::embedded()?,
            };
            if let Some(l) = listen {
                s.config.http.listen = l;
            }
            runtime()?.block_on(async move {
                let shutdown = d2c::app::shutdown_on_signal();
                d2c::demo::run(s, d2c::demo::DemoOptions { duration, step }, shutdown).await?;
                Ok(())
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    d2c::app::runtime().context("cannot start the async runtime")
}
