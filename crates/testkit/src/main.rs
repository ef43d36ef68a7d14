//! `kube-standin`: serves the Kubernetes API stand-in until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use testkit::{Config, KubeStandin, WorkloadSim};

/// A local Kubernetes API server stand-in for tests and demos. Prints one line
/// `kube-standin ready url=URL [kubeconfig=FILE]` when it serves, and serves until SIGTERM or
/// SIGINT. Admin endpoints (request log, faults, restarts) live under `URL/_testkit/`.
#[derive(Parser, Debug)]
#[command(name = "kube-standin", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig for the stand-in to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Changes kept for watches and paginated lists; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 5_000)]
    watch_history: usize,
    /// Milliseconds between bookmarks on watches that ask for them.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
    /// Milliseconds until a Deployment's or StatefulSet's status follows a spec change.
    #[arg(long, default_value_t = 1000)]
    workload_status_delay_ms: u64,
    /// Further milliseconds until the new replicas are ready and available.
    #[arg(long, default_value_t = 2000)]
    workload_ready_delay_ms: u64,
    /// Do not simulate the Deployment and StatefulSet controllers.
    #[arg(long)]
    no_workload_controllers: bool,
    /// Print one line per request to stderr (method, path, status, client).
    #[arg(long)]
    log_requests: bool,
    /// Admit custom objects as an API server before 1.36 does: no `format: int32`
    /// enforcement, no CEL rules (so `maxReplicas: 2147483648` can be stored).
    #[arg(long, env = "KUBE_STANDIN_PRE_1_36_VALIDATION")]
    pre_1_36_validation: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-standin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config = Config {
        listen: args.listen,
        watch_history: args.watch_history,
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms),
        workloads: WorkloadSim {
            enabled: !args.no_workload_controllers,
            status_delay: Duration::from_millis(args.workload_status_delay_ms),
            ready_delay: Duration::from_millis(args.workload_ready_delay_ms),
        },
        pre_1_36_validation: args.pre_1_36_validation,
        ..Config::default()
    };
    let standin = KubeStandin::start(config)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let mut line = format!("kube-standin ready url={}", standin.url());
    if let Some(path) = &args.kubeconfig {
        standin
            .write_kubeconfig(path)
            .map_err(|e| format!("cannot write the kubeconfig {}: {e}", path.display()))?;
        line.push_str(&format!(" kubeconfig={}", path.display()));
    }
    println!("{line}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            records = standin.next_requests(seq), if args.log_requests => {
                for r in records {
                    seq = r.seq;
                    eprintln!(
                        "{} {} {} -> {}{}",
                        r.time,
                        r.method,
                        r.uri(),
                        r.status,
                        r.client.map(|c| format!(" client={c}")).unwrap_or_default()
                    );
                }
            }
        }
    }
    standin.shutdown().await;
    Ok(())
}
