//! `avi-sim`: serve a simulated Avi controller until SIGTERM or Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use avi_sim::scenario::{SessionClock, UnknownSelection};
use avi_sim::{FaultSpec, Scenario, Sim, SimConfig, TlsSource};
use clap::Parser;

/// An Avi controller simulator speaking the controller's wire format (HTTPS, session and basic
/// auth, tenants, inventory, Prometheus-text and JSON metrics, load scenarios, faults).
///
/// Without --scenario it serves the seed experiment's controller: tenant admin, the kuard pool
/// (one member, 1000 users spawned at 5/s from t=0, stopped at t=1320 s), one virtual service,
/// one service engine, user admin. When ready it prints one line on stdout:
/// `avi-sim listening on https://HOST:PORT [https://HOST:PORT …]`. Admin endpoints (no Avi
/// auth, simulator only) live under /_sim/; `GET /_sim/` lists them. Logs go to stderr
/// (RUST_LOG=avi_sim=debug logs every request).
#[derive(Debug, Parser)]
#[command(name = "avi-sim", version, about, long_about)]
struct Cli {
    /// Address to listen on; repeat it for a multi-node cluster (node 0 is the leader while
    /// it is up). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: Vec<SocketAddr>,

    /// Scenario YAML file (controller settings, users, tenants, pools, virtual services,
    /// service engines, faults). Default: the built-in seed controller.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,

    /// Print the effective scenario as YAML (after flags) and exit.
    #[arg(long)]
    print_scenario: bool,

    /// Simulated seconds per real second (e.g. 15 runs a 30-minute scenario in 2 minutes;
    /// 0 freezes the clock). Overrides controller.timeScale.
    #[arg(long, value_name = "F")]
    time_scale: Option<f64>,

    /// Simulated time at start (RFC 3339). Default: now, rounded down to a bucket boundary.
    #[arg(long, value_name = "TIME")]
    start_time: Option<jiff::Timestamp>,

    /// Start with the simulated clock stopped (move it with POST /_sim/clock).
    #[arg(long)]
    paused: bool,

    /// The user --password applies to.
    #[arg(long, value_name = "NAME", default_value = "admin")]
    username: String,

    /// Password of --username (added if the scenario lacks the user). Default for the built-in
    /// controller: admin. Printed at start.
    #[arg(
        long,
        value_name = "P",
        env = "AVI_SIM_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,

    /// Refuse HTTP basic auth (as a real controller does by default); session login only.
    #[arg(long)]
    no_basic_auth: bool,

    /// Session idle timeout in seconds on the session clock (0: never). Default 900.
    #[arg(long, value_name = "SECONDS")]
    session_idle_timeout: Option<u64>,

    /// The clock session lifetimes run on: real (default) or simulated.
    #[arg(long, value_name = "CLOCK", value_parser = ["real", "simulated"])]
    session_clock: Option<String>,

    /// Answer unknown entity names, ids and metric ids with 400 instead of leaving them out.
    #[arg(long)]
    strict: bool,

    /// Write the CA certificate (PEM) clients should trust to this file. Default: a file in a
    /// temporary directory, printed at start.
    #[arg(long, value_name = "FILE")]
    ca_out: Option<PathBuf>,

    /// An extra DNS name or IP address for the generated certificate, e.g. the name of a
    /// Kubernetes Service in front of avi-sim (`avi-sim.avi-sim.svc`). Repeatable.
    #[arg(long, value_name = "NAME")]
    tls_san: Vec<String>,

    /// Serve this PEM certificate chain instead of a generated one (needs --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,

    /// Private key (PEM) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,

    /// A fault to install at start, in the scenario's syntax as a YAML/JSON flow mapping, e.g.
    /// '{kind: error, status: 503, count: 3}' or '{kind: nodeDown, node: 1, at: 600}'.
    /// Repeatable.
    #[arg(long, value_name = "SPEC")]
    fault: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("avi_sim=info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("avi-sim: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn scenario(cli: &Cli) -> Result<Scenario, String> {
    let mut scenario = match &cli.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
            Scenario::from_yaml(&text).map_err(|e| format!("scenario {}: {e}", path.display()))?
        }
        None => Scenario::builtin("admin"),
    };
    if let Some(password) = &cli.password {
        scenario.set_password(&cli.username, password);
    }
    let c = &mut scenario.controller;
    if let Some(scale) = cli.time_scale {
        c.time_scale = scale;
    }
    if cli.start_time.is_some() {
        c.start_time = cli.start_time;
    }
    c.paused |= cli.paused;
    if cli.no_basic_auth {
        c.basic_auth = false;
    }
    if let Some(t) = cli.session_idle_timeout {
        c.session_idle_timeout_seconds = t;
    }
    match cli.session_clock.as_deref() {
        Some("real") => c.session_clock = SessionClock::Real,
        Some("simulated") => c.session_clock = SessionClock::Simulated,
        _ => {}
    }
    if cli.strict {
        c.behaviour.unknown_selection = UnknownSelection::Error;
    }
    for (i, text) in cli.fault.iter().enumerate() {
        let spec: FaultSpec =
            serde_yaml::from_str(text).map_err(|e| format!("--fault #{} {text:?}: {e}", i + 1))?;
        scenario.faults.push(spec);
    }
    scenario.validate().map_err(|e| e.to_string())?;
    Ok(scenario)
}

fn run(cli: Cli) -> Result<(), String> {
    let scenario = scenario(&cli)?;
    if cli.print_scenario {
        let yaml = serde_yaml::to_string(&scenario).map_err(|e| e.to_string())?;
        print!("{yaml}");
        return Ok(());
    }
    let tls = match (&cli.cert, &cli.key) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => TlsSource::Generate,
    };
    let logins: Vec<String> = if cli.scenario.is_none() || cli.password.is_some() {
        let password = cli.password.clone().unwrap_or_else(|| "admin".into());
        vec![format!("{} / {password}", cli.username)]
    } else {
        scenario.users.iter().map(|u| u.username.clone()).collect()
    };
    let config = SimConfig {
        listen: cli.listen.clone(),
        scenario,
        tls,
        ca_out: cli.ca_out.clone(),
        extra_names: cli.tls_san.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let sim = Sim::start(config)
            .await
            .map_err(|e| present::error_chain(&e))?;
        eprintln!("avi-sim: users: {}", logins.join(", "));
        eprintln!("avi-sim: CA certificate: {}", sim.ca_path().display());
        let clock = sim.handle().clock();
        eprintln!(
            "avi-sim: simulated time {} (x{}{})",
            clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            clock.time_scale,
            if clock.paused { ", paused" } else { "" }
        );
        println!("avi-sim listening on {}", sim.urls().join(" "));
        let _ = std::io::stdout().flush();
        wait_for_signal().await?;
        sim.shutdown().await;
        eprintln!("avi-sim: stopped");
        Ok(())
    })
}

async fn wait_for_signal() -> Result<(), String> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot listen for SIGINT: {e}"))?,
    }
    Ok(())
}
