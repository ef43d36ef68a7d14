//! `avi-demo` (`make demo`): the seed experiment end to end on one machine, with the real
//! binaries.
//!
//! It starts `kube-standin` (a Kubernetes API stand-in) and `avi-sim` (a simulated Avi
//! controller, HTTPS) on free loopback ports, applies the CRDs and `examples/kuard` with the real
//! `kubectl`, points the example's AviController at avi-sim and starts `avi-autoscaler run`
//! with the AviController's namespace as its cluster-resource namespace. Then it lets
//! avi-sim's seed load play out (1000 users spawning at 5/s, stopped at 22:00) on a simulated
//! clock running `--time-scale` times faster than real time, with the operator's own timings
//! compressed by the same factor. It keeps the pool's members equal to the Deployment's ready
//! replicas (as AKO does), shows the run live, and at the end writes a chart, a summary and
//! `kubectl describe` of the AviAutoscaler and the AviController, stops every process it started, and exits 0 only if the run went
//! 1 → 5 → 1.

mod chart;
mod error;
mod observe;
mod processes;
mod report;

use std::{
    cell::Cell,
    io::{IsTerminal, Write as _},
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use clap::Parser;
use e2e::{AUTOSCALER, CONTROLLER, NAMESPACE, OPERATOR_NAMESPACE, workspace_root};
use serde_json::{Value, json};
use tokio::{
    io::AsyncWriteExt,
    signal::unix::{SignalKind, signal},
};

use crate::{
    error::DemoError,
    observe::{Endpoints, OPERATOR_CLIENT},
    processes::Supervisor,
    report::{Limits, Load, Sample, Summary, Verdict},
};

/// The files a finished run writes into `--out`.
const OUTPUTS: [&str; 5] = [
    "demo.svg",
    "demo.png",
    "summary.json",
    "timeline.csv",
    "describe.txt",
];

/// The seed's polling interval (the HPA's 15 s sync), seconds.
const SEED_POLLING_SECONDS: f64 = 15.0;
/// The seed's scale-down stabilization window (the HPA default), seconds.
const SEED_SCALE_DOWN_WINDOW_SECONDS: f64 = 300.0;
/// The period of the HPA's default rate policies (`Pods 4` and `Percent 100` up,
/// `Percent 100` down), seconds.
const SEED_POLICY_PERIOD_SECONDS: f64 = 15.0;
/// How long a new kuard pod takes to become ready, simulated seconds (a small image that
/// starts at once, plus its readiness probe).
const POD_READY_SECONDS: f64 = 30.0;
/// How often the demo samples the endpoints, simulated seconds (bounded in real time below).
const TICK_SECONDS: f64 = 5.0;
/// How long the run goes on after the Deployment is back at minReplicas, simulated seconds, so
/// the chart shows it stays there.
const TAIL_SECONDS: f64 = 120.0;
/// The longest the demo waits for the scale-down after the load stopped, simulated seconds:
/// 300 s for the last loaded bucket to close, 300 s of stabilization, 300 s for the next
/// bucket, and as much again for slack.
const SCALE_DOWN_DEADLINE_SECONDS: f64 = 1800.0;
/// How long the operator may take to report Ready after it started, real time.
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// The time scale above which a 300 s Avi bucket passes faster than the operator's minimum
/// polling interval of 1 s, so the run would no longer be faithful.
const MAX_TIME_SCALE: f64 = 300.0;

/// The seed experiment end to end: kube-standin, avi-sim and `avi-autoscaler run` as
/// processes, the seed load on a fast simulated clock, a live table, then a chart and a
/// summary. Exits 0 when the run went 1 → 5 → 1, 1 when it did not or something failed, 130 or
/// 143 when interrupted (every process it started is stopped in every case).
#[derive(Parser, Debug)]
#[command(name = "avi-demo", version, about, long_about)]
struct Cli {
    /// Simulated seconds per real second, 1 to 300. The default plays the ~35 simulated
    /// minutes (30 of the experiment, then the scale-down) in about two and a half.
    #[arg(long, value_name = "F", default_value_t = 15.0)]
    time_scale: f64,

    /// Directory for the chart (demo.svg, demo.png), summary.json, timeline.csv,
    /// describe.txt and the processes' logs.
    #[arg(long, value_name = "DIR", default_value = "out/demo")]
    out: PathBuf,

    /// No live table: only the start-up lines and the summary.
    #[arg(long)]
    quiet: bool,
}

/// The operator's timings and the demo's pacing at one time scale.
#[derive(Debug, Clone, Copy)]
struct Timings {
    scale: f64,
    polling: u64,
    scale_down_window: u64,
    policy_period: u64,
    ready_delay: Duration,
    tick: Duration,
}

impl Timings {
    fn new(scale: f64) -> Self {
        // The API's minimum for each of these is 1 s.
        let compress = |seconds: f64| ((seconds / scale).round() as u64).max(1);
        Timings {
            scale,
            polling: compress(SEED_POLLING_SECONDS),
            scale_down_window: compress(SEED_SCALE_DOWN_WINDOW_SECONDS),
            policy_period: compress(SEED_POLICY_PERIOD_SECONDS),
            ready_delay: Duration::from_secs_f64(POD_READY_SECONDS / scale)
                .max(Duration::from_millis(100)),
            tick: Duration::from_secs_f64(TICK_SECONDS / scale)
                .clamp(Duration::from_millis(100), Duration::from_secs(1)),
        }
    }

    /// What the demo merges over `examples/kuard/aviautoscaler.yaml`'s spec: the seed's timings
    /// (the HPA's defaults) divided by the time scale.
    fn spec(&self) -> Value {
        let period = self.policy_period;
        json!({
            "pollingIntervalSeconds": self.polling,
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Pods", "value": 4, "periodSeconds": period},
                        {"type": "Percent", "value": 100, "periodSeconds": period},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": self.scale_down_window,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": period}],
                },
            },
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(1.0..=MAX_TIME_SCALE).contains(&cli.time_scale) {
        eprintln!(
            "avi-demo: --time-scale must be between 1 and {MAX_TIME_SCALE}, got {}: above \
             {MAX_TIME_SCALE} an Avi bucket (300 s) passes faster than the operator's shortest \
             polling interval (1 s)",
            cli.time_scale
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("avi-demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(demo(cli))
}

/// Prints the live table; on a terminal also a status line that is rewritten every tick.
struct Printer {
    quiet: bool,
    tty: bool,
    status_shown: Cell<bool>,
}

impl Printer {
    fn new(quiet: bool) -> Self {
        Printer {
            quiet,
            tty: std::io::stdout().is_terminal(),
            status_shown: Cell::new(false),
        }
    }

    /// A line that is printed even with `--quiet`.
    fn always(&self, line: &str) {
        self.clear_status();
        println!("{line}");
    }

    /// A line of the live output.
    fn line(&self, line: &str) {
        if !self.quiet {
            self.always(line);
        }
    }

    fn status(&self, line: &str) {
        if self.quiet || !self.tty {
            return;
        }
        let width = terminal_width();
        let line: String = line.chars().take(width.saturating_sub(1)).collect();
        print!("\r\x1b[2K{line}");
        let _ = std::io::stdout().flush();
        self.status_shown.set(true);
    }

    fn clear_status(&self) {
        if self.status_shown.replace(false) {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// What a finished run hands to the report.
struct RunData {
    samples: Vec<Sample>,
    writes: Vec<i64>,
    avi_requests: Value,
    /// `kubectl describe` of the AviAutoscaler, then of the AviController.
    describe: String,
    /// `kubectl get` of the AviAutoscaler and the Deployment.
    get: String,
    /// `kubectl get avic`.
    get_avic: String,
    load: Load,
    limits: Limits,
}

async fn demo(cli: Cli) -> ExitCode {
    let wall = Instant::now();
    let timings = Timings::new(cli.time_scale);
    let printer = Printer::new(cli.quiet);
    let logs = cli.out.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("avi-demo: cannot create {}: {e}", logs.display());
        return ExitCode::FAILURE;
    }
    // A previous run's results must not pass for this one's if it fails.
    for name in OUTPUTS {
        let _ = std::fs::remove_file(cli.out.join(name));
    }
    // Installed before the first child starts, so that no signal can leave one behind.
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("avi-demo: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut procs = Supervisor::new(&logs);
    let outcome = tokio::select! {
        r = run(&cli, timings, &mut procs, &printer) => Ok(r),
        _ = sigint.recv() => Err(("SIGINT", 130)),
        _ = sigterm.recv() => Err(("SIGTERM", 143)),
    };
    printer.clear_status();
    match outcome {
        Err((signal, code)) => {
            eprintln!("\navi-demo: {signal}: stopping every process the demo started");
            report_stopped(&procs.stop_all().await);
            ExitCode::from(code)
        }
        Ok(Err(e)) => {
            eprintln!("avi-demo: error: {}", present::error_chain(&e));
            report_stopped(&procs.stop_all().await);
            eprintln!("avi-demo: logs in {}", logs.display());
            ExitCode::FAILURE
        }
        Ok(Ok(data)) => {
            let stopped = procs.stop_all().await;
            finish(&cli, timings, &printer, data, &stopped, wall.elapsed())
        }
    }
}

fn report_stopped(stopped: &[processes::Stopped]) {
    for s in stopped {
        eprintln!("avi-demo: stopped {} (pid {}): {}", s.name, s.pid, s.how);
    }
}

/// The binaries of the workspace, built next to this one.
fn binary(name: &str) -> Result<PathBuf, DemoError> {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(DemoError::Missing {
            what: "a binary of the workspace is missing: build them first (`cargo build --workspace --bins`, which `make demo` does)",
            path,
        })
    }
}

/// A workspace file the demo applies.
fn workspace_file(relative: &str) -> Result<PathBuf, DemoError> {
    let path = workspace_root().join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(DemoError::Missing {
            what: "the demo runs from a checkout of the repository and needs",
            path,
        })
    }
}

/// A password for this run only: avi-sim's admin user and the credentials Secret.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness for each process.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("demo-{:016x}", hasher.finish())
}

/// Runs `kubectl` against the stand-in; returns its standard output.
async fn kubectl(
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, DemoError> {
    let mut child = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DemoError::Spawn {
            name: "kubectl (it must be on PATH)".into(),
            program: "kubectl".into(),
            source,
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|source| DemoError::Io {
                action: "write to kubectl's stdin for",
                path: kubeconfig.to_path_buf(),
                source,
            })?;
    }
    let deadline = Duration::from_secs(60);
    let output = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| DemoError::Timeout {
            what: format!("kubectl {}", args.join(" ")),
            after: deadline,
        })?
        .map_err(|source| DemoError::Io {
            action: "run kubectl with",
            path: kubeconfig.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(DemoError::Kubectl {
            args: args.join(" "),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .trim()
            .to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `key=value` field of a ready line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), DemoError> {
    std::fs::write(path, content).map_err(|source| DemoError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The seed's limits and target, from `examples/kuard/aviautoscaler.yaml`.
fn example_limits(path: &Path) -> Result<Limits, DemoError> {
    let text = std::fs::read_to_string(path).map_err(|source| DemoError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let aas: Value = serde_yaml::from_str(&text).map_err(|e| DemoError::Missing {
        what: "not an AviAutoscaler",
        path: PathBuf::from(format!("{} ({e})", path.display())),
    })?;
    let spec = &aas["spec"];
    match (
        spec["minReplicas"].as_i64(),
        spec["maxReplicas"].as_i64(),
        spec.pointer("/metrics/0/target/averageValue")
            .and_then(Value::as_f64),
    ) {
        (Some(min), Some(max), Some(average_value)) => Ok(Limits {
            min,
            max,
            average_value,
        }),
        _ => Err(DemoError::Missing {
            what: "the example lacks minReplicas, maxReplicas or an AverageValue target",
            path: path.to_path_buf(),
        }),
    }
}

async fn run(
    cli: &Cli,
    timings: Timings,
    procs: &mut Supervisor,
    printer: &Printer,
) -> Result<RunData, DemoError> {
    let out = &cli.out;
    let crds = [
        workspace_file("config/crd/aviautoscalers.autoscaling.avi.dev.yaml")?,
        workspace_file("config/crd/avicontrollers.autoscaling.avi.dev.yaml")?,
    ];
    workspace_file("examples/kuard/namespace.yaml")?;
    workspace_file("examples/kuard/secret.yaml")?;
    workspace_file("examples/kuard/avicontroller.yaml")?;
    workspace_file("examples/kuard/deployment.yaml")?;
    let limits = example_limits(&workspace_file("examples/kuard/aviautoscaler.yaml")?)?;
    let (standin_bin, sim_bin, operator_bin) = (
        binary("kube-standin")?,
        binary("avi-sim")?,
        binary("avi-autoscaler")?,
    );
    // avi-sim serves this load without --scenario.
    let seed = avi_sim::scenario::LoadSpec::seed();
    let load = Load {
        max_users: seed.max_users.unwrap_or_default(),
        spawn_rate: seed.spawn_rate.unwrap_or_default(),
        stop_at: seed.stop_at.unwrap_or_default(),
    };

    let scale = timings.scale;
    printer.line(&format!(
        "avi-demo: the seed experiment end to end, time ×{scale} (a simulated minute every {:.1} s)",
        60.0 / scale
    ));
    printer.line(&format!(
        "  load        avi-sim's seed: {} users spawning at {}/s from 00:00, stopped at {}, one open connection each",
        load.max_users,
        load.spawn_rate,
        report::clock(load.stop_at)
    ));
    printer.line(&format!(
        "  autoscaler  examples/kuard: kuard-deployment between {} and {} replicas, AverageValue {} open connections per replica (pool total)",
        limits.min, limits.max, limits.average_value
    ));
    printer.line(&format!(
        "  compressed  the operator's timings ÷{scale}, so the run stays faithful: pollingIntervalSeconds {} → {}, \
         scaleDown.stabilizationWindowSeconds {} → {}, rate-policy periods {} → {} s; new pods are ready after {:.1} s ({} simulated s)",
        SEED_POLLING_SECONDS,
        timings.polling,
        SEED_SCALE_DOWN_WINDOW_SECONDS,
        timings.scale_down_window,
        SEED_POLICY_PERIOD_SECONDS,
        timings.policy_period,
        timings.ready_delay.as_secs_f64(),
        POD_READY_SECONDS
    ));
    printer.line(&format!(
        "  output      {} (Ctrl-C stops the demo and every process it started)",
        out.display()
    ));

    // The Kubernetes API.
    let kubeconfig = out.join("kubeconfig");
    let (pid, ready) = procs
        .start(
            "kube-standin",
            &standin_bin,
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--kubeconfig".into(),
                kubeconfig.display().to_string(),
                "--workload-status-delay-ms".into(),
                "100".into(),
                "--workload-ready-delay-ms".into(),
                timings.ready_delay.as_millis().to_string(),
            ],
            &[],
            true,
        )
        .await?;
    let ready = ready.unwrap_or_default();
    let kube_url = field(&ready, "url")
        .filter(|_| ready.starts_with("kube-standin ready"))
        .ok_or_else(|| DemoError::NotReady {
            name: "kube-standin".into(),
            reason: format!("unexpected ready line {ready:?}"),
            log: procs.log_of("kube-standin").unwrap_or(out).to_path_buf(),
        })?
        .to_owned();
    printer.always(&format!("started kube-standin (pid {pid}): {kube_url}"));

    // The Avi controller: node 0 for the operator, node 1 for the demo's own reads.
    let password = random_password();
    let ca_path = out.join("avi-sim-ca.pem");
    let (pid, ready) = procs
        .start(
            "avi-sim",
            &sim_bin,
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--paused".into(),
                "--time-scale".into(),
                scale.to_string(),
                "--ca-out".into(),
                ca_path.display().to_string(),
            ],
            // Not on the command line, where every user of the machine could read it.
            &[("AVI_SIM_PASSWORD", password.as_str())],
            true,
        )
        .await?;
    let ready = ready.unwrap_or_default();
    let urls: Vec<String> = ready
        .strip_prefix("avi-sim listening on ")
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let [avi_url, reader_url] = urls.as_slice() else {
        return Err(DemoError::NotReady {
            name: "avi-sim".into(),
            reason: format!("unexpected ready line {ready:?}"),
            log: procs.log_of("avi-sim").unwrap_or(out).to_path_buf(),
        });
    };
    printer.always(&format!(
        "started avi-sim (pid {pid}): {avi_url} for the operator, {reader_url} for the demo's own reads"
    ));
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|source| DemoError::Io {
        action: "read avi-sim's CA certificate",
        path: ca_path.clone(),
        source,
    })?;
    let endpoints =
        Endpoints::new(&kube_url, avi_url, reader_url, &ca_pem, &password).map_err(|reason| {
            DemoError::NotReady {
                name: "the demo's HTTP client".into(),
                reason,
                log: ca_path.clone(),
            }
        })?;

    // The CRDs and the example, its AviController pointed at avi-sim.
    for crd in &crds {
        kubectl(
            &kubeconfig,
            &["apply", "--server-side", "-f", &crd.display().to_string()],
            None,
        )
        .await?;
    }
    let manifests = e2e::kuard_controller_manifests_for(
        std::slice::from_ref(avi_url),
        &ca_pem,
        &password,
        &timings.spec(),
    );
    let applied = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&manifests)).await?;
    printer.line(&format!(
        "applied config/crd and examples/kuard with kubectl (AviController {CONTROLLER} at {avi_url}, its CA and credentials Secrets in {OPERATOR_NAMESPACE}): {} objects",
        applied.lines().count()
    ));

    // The operator, its Kubernetes requests marked in the stand-in's request log.
    let operator_kubeconfig = out.join("kubeconfig-operator");
    write_file(
        &operator_kubeconfig,
        testkit::kubeconfig_yaml(&format!("{kube_url}/_client/{OPERATOR_CLIENT}"), "default")
            .as_bytes(),
    )?;
    let operator_kubeconfig = operator_kubeconfig.display().to_string();
    let (pid, _) = procs
        .start(
            "avi-autoscaler",
            &operator_bin,
            &[
                "run".into(),
                // The AviController's Secrets are read there, and only there.
                "--cluster-resource-namespace".into(),
                OPERATOR_NAMESPACE.into(),
                "--metrics-bind".into(),
                "127.0.0.1:0".into(),
                "--health-bind".into(),
                "127.0.0.1:0".into(),
                "--identity".into(),
                "avi-demo".into(),
            ],
            &[("KUBECONFIG", operator_kubeconfig.as_str())],
            false,
        )
        .await?;
    printer.always(&format!(
        "started avi-autoscaler (pid {pid}): run, log {}",
        procs.log_of("avi-autoscaler").unwrap_or(out).display()
    ));

    // Ready: the operator has read the pool (0 before the load) and the Deployment's first
    // pod serves.
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let waited = Instant::now();
    loop {
        ticker.tick().await;
        procs.check_alive()?;
        let aas = endpoints.autoscaler().await?;
        let replicas = endpoints.deployment().await?;
        let operator_ready = aas
            .ready
            .as_ref()
            .is_some_and(|(status, _)| status == "True");
        let pod_ready = replicas.is_some_and(|r| r.ready >= limits.min);
        if operator_ready && pod_ready {
            break;
        }
        if waited.elapsed() > READY_DEADLINE {
            return Err(DemoError::Timeout {
                what: format!(
                    "AviAutoscaler {AUTOSCALER} to be Ready (now {:?}) and {} ready pod(s) (now {:?})",
                    aas.ready,
                    limits.min,
                    replicas.map(|r| r.ready)
                ),
                after: READY_DEADLINE,
            });
        }
    }
    printer.line(&format!(
        "avi-autoscaler is Ready and kuard serves after {:.1} s; starting the load (avi-sim's clock)\n",
        waited.elapsed().as_secs_f64()
    ));

    let samples = drive(&endpoints, procs, printer, timings, load, limits).await?;

    let writes = endpoints.scale_writes().await?;
    let avi_requests = endpoints.operator_avi_requests().await?;
    let describe_aas = kubectl(
        &kubeconfig,
        &["describe", "aas", AUTOSCALER, "-n", NAMESPACE],
        None,
    )
    .await?;
    let describe_avic = kubectl(&kubeconfig, &["describe", "avic", CONTROLLER], None).await?;
    let describe = format!(
        "$ kubectl describe aas {AUTOSCALER} -n {NAMESPACE}\n{describe_aas}\n\
         $ kubectl describe avic {CONTROLLER}\n{describe_avic}"
    );
    let get = kubectl(
        &kubeconfig,
        &["get", "aas,deployments", "-n", NAMESPACE],
        None,
    )
    .await?;
    let get_avic = kubectl(&kubeconfig, &["get", "avic"], None).await?;
    Ok(RunData {
        samples,
        writes,
        avi_requests,
        describe,
        get,
        get_avic,
        load,
        limits,
    })
}

/// Starts the clock and samples until the Deployment has been back at minReplicas for
/// [`TAIL_SECONDS`] after the load stopped (or the scale-down deadline passed).
async fn drive(
    endpoints: &Endpoints,
    procs: &mut Supervisor,
    printer: &Printer,
    timings: Timings,
    load: Load,
    limits: Limits,
) -> Result<Vec<Sample>, DemoError> {
    printer.line(&report::header());
    endpoints.set_clock_paused(false).await?;
    let started = Instant::now();
    let end_by = load.stop_at + SCALE_DOWN_DEADLINE_SECONDS;
    // If avi-sim's clock stalled, the simulated deadline would never come.
    let real_deadline = Duration::from_secs_f64(end_by / timings.scale) + Duration::from_secs(120);
    let mut ticker = tokio::time::interval(timings.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples: Vec<Sample> = Vec::new();
    let mut avi: Option<(i64, f64)> = None;
    let mut back_at: Option<f64> = None;
    loop {
        ticker.tick().await;
        procs.check_alive()?;
        let sim = endpoints.sim_state().await?;
        let replicas = endpoints
            .deployment()
            .await?
            .ok_or_else(|| DemoError::Answer {
                what: "the Deployment",
                url: "kube-standin".into(),
                detail: "kuard-deployment is gone".into(),
            })?;
        // As AKO does: one pool member per ready pod (a pool never has fewer than one here,
        // since a pool without members reports no load).
        let members = replicas.ready.max(1) as u32;
        if sim.members != members {
            endpoints.set_pool_members(members).await?;
        }
        // Avi's value changes only when a bucket closes: read it once per bucket.
        let bucket = (sim.elapsed / sim.bucket).floor() as i64;
        if avi.is_none_or(|(b, _)| b != bucket) {
            avi = Some((bucket, endpoints.avi_pool_total().await?));
        }
        let aas = endpoints.autoscaler().await?;
        let sample = Sample {
            real: started.elapsed(),
            t: sim.elapsed,
            users: sim.users,
            avi: avi.map(|(_, v)| v),
            read: aas.read,
            desired: aas.desired,
            current: replicas.current,
            ready: replicas.ready,
            event: endpoints.last_event().await?,
        };
        let previous = samples.last();
        let note = match previous {
            None => format!(
                "load starts: {} users spawning at {}/s",
                load.max_users, load.spawn_rate
            ),
            Some(p) if p.t < load.stop_at && sample.t >= load.stop_at => {
                "load stops: every user leaves".to_owned()
            }
            _ => String::new(),
        };
        let new_event = previous.is_none_or(|p| p.event != sample.event);
        if previous.is_none_or(|p| report::changed(p, &sample)) || !note.is_empty() {
            printer.line(&report::row(&sample, &note, new_event));
        }
        let phase = if sample.t < load.stop_at {
            "load on"
        } else {
            "load stopped"
        };
        printer.status(&report::status_line(&sample, phase));

        let at_min = sample.current == limits.min
            && sample.ready == limits.min
            && sample.desired == Some(limits.min);
        back_at = match back_at {
            _ if !at_min || sample.t < load.stop_at => None,
            None => Some(sample.t),
            kept => kept,
        };
        let t = sample.t;
        samples.push(sample);
        if back_at.is_some_and(|b| t >= b + TAIL_SECONDS) || t >= end_by {
            break;
        }
        if started.elapsed() > real_deadline {
            return Err(DemoError::Timeout {
                what: format!(
                    "avi-sim's clock to reach {} (it shows {})",
                    report::clock(end_by),
                    report::clock(t)
                ),
                after: real_deadline,
            });
        }
    }
    printer.clear_status();
    Ok(samples)
}

/// Writes the outputs, prints the summary, and maps the verdict to the exit status.
fn finish(
    cli: &Cli,
    timings: Timings,
    printer: &Printer,
    data: RunData,
    stopped: &[processes::Stopped],
    wall: Duration,
) -> ExitCode {
    let out = &cli.out;
    let verdict = Verdict::judge(&data.samples, &data.writes, data.load, data.limits);
    let processes: Vec<(String, u32, String)> = stopped
        .iter()
        .map(|s| (s.name.clone(), s.pid, s.how.clone()))
        .collect();
    let summary = Summary {
        verdict: &verdict,
        time_scale: timings.scale,
        load: data.load,
        limits: data.limits,
        avi_requests: &data.avi_requests,
        wall,
        processes: &processes,
    };
    let chart = chart::Chart {
        samples: &data.samples,
        load: data.load,
        limits: data.limits,
        verdict: &verdict,
        time_scale: timings.scale,
        avi_requests: summary.avi_totals().0,
        scale_down_window: timings.scale_down_window as f64 * timings.scale,
    };
    let mut problems = Vec::new();
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(&summary.json()).unwrap_or_default() + "\n";
    let svg = chart
        .svg()
        .map_err(|e| problems.push(format!("the chart could not be drawn: {e}")))
        .ok();
    let files = [
        ("describe.txt", Some(data.describe.into_bytes())),
        (
            "timeline.csv",
            Some(report::csv(&data.samples).into_bytes()),
        ),
        ("summary.json", Some(json.into_bytes())),
        ("demo.svg", svg.map(String::into_bytes)),
    ];
    for (name, content) in files {
        let Some(content) = content else { continue };
        match write_file(&out.join(name), &content) {
            Ok(()) => written.push(name.to_owned()),
            Err(e) => problems.push(present::error_chain(&e)),
        }
    }
    if written.iter().any(|w| w == "demo.svg") {
        match render_png(&out.join("demo.svg"), &out.join("demo.png")) {
            Ok(true) => written.push("demo.png".into()),
            Ok(false) => written.push("(no demo.png: rsvg-convert is not installed)".into()),
            Err(e) => problems.push(e),
        }
    }

    printer.always("");
    printer.always(&format!("$ kubectl get aas,deployments -n {NAMESPACE}"));
    printer.always(data.get.trim_end());
    printer.always("");
    printer.always("$ kubectl get avic");
    printer.always(data.get_avic.trim_end());
    printer.always("");
    printer.always(summary.text().trim_end());
    printer.always(&format!(
        "  files               {}: {}",
        out.display(),
        written.join(", ")
    ));
    for p in &problems {
        eprintln!("avi-demo: {p}");
    }
    let unclean: Vec<&processes::Stopped> = stopped.iter().filter(|s| !s.clean).collect();
    for s in &unclean {
        eprintln!(
            "avi-demo: {} (pid {}) did not exit cleanly on SIGTERM: {}",
            s.name, s.pid, s.how
        );
    }
    if verdict.ok && problems.is_empty() && unclean.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `rsvg-convert` the chart to PNG; `Ok(false)` when the converter is not installed.
fn render_png(svg: &Path, png: &Path) -> Result<bool, String> {
    match std::process::Command::new("rsvg-convert")
        .arg("--output")
        .arg(png)
        .arg(svg)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => Ok(true),
        Ok(o) => Err(format!(
            "rsvg-convert failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot run rsvg-convert: {e}")),
    }
}
