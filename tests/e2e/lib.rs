//! Harness for end-to-end runs of the real `avi-autoscaler` binary.
//!
//! A run has three parts, all real processes or servers speaking real protocols:
//! - [`Cluster`]: testkit's Kubernetes API stand-in (in-process, HTTP with watches), driven by
//!   the real `kubectl` on the machine and by the operator through a kubeconfig;
//! - an avi-sim controller (in-process, HTTPS), whose simulated clock the caller moves;
//! - [`Operator`]: the `avi-autoscaler run` binary as a child process, logging JSON lines.
//!
//! Waits are conditions with deadlines, never sleeps. The demo (`avi-demo`) uses the same
//! pieces.
#![warn(missing_docs)]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use avi_sim::RunningSim;
use serde_json::{Value, json};
use testkit::{KubeStandin, ObjectRef, WorkloadSim};

/// The namespace of the seed experiment.
pub const NAMESPACE: &str = "routing-ns1";
/// The scaled Deployment of the seed experiment.
pub const DEPLOYMENT: &str = "kuard-deployment";
/// The AviAutoscaler of the seed experiment.
pub const AUTOSCALER: &str = "kuard";
/// The kuard pool's AKO-style name.
pub const POOL: &str = avi_sim::SEED_POOL;
/// The AviController of the seed experiment (`examples/kuard/avicontroller.yaml`).
pub const CONTROLLER: &str = "homelab-avi";
/// The operator's namespace in `examples/kuard`: where the AviController's Secrets live.
pub const OPERATOR_NAMESPACE: &str = "avi-autoscaler";
/// The flag that lets the operator use inline `spec.controller` connections, which
/// [`kuard_manifests`] use.
pub const ALLOW_INLINE: &str = "--allow-inline-controllers";
/// The label (with value `"true"`) a Secret needs before an inline connection may use it.
pub const CREDENTIALS_LABEL: &str = "autoscaling.avi.dev/credentials";
/// How long any single wait may take on a loaded 2-core machine before the run fails.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The workspace root (the directory holding `Cargo.lock`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// The path of a workspace binary built next to the running executable
/// (`target/<profile>/<name>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable has a path");
    let mut dir = exe
        .parent()
        .expect("an executable lives in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, which `make test` does)",
        bin.display()
    );
    bin
}

/// A Kubernetes API stand-in with a scratch directory for kubeconfigs and logs.
pub struct Cluster {
    /// The stand-in.
    pub kube: KubeStandin,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a stand-in whose Deployments become ready after `ready_delay`.
    pub async fn start(ready_delay: Duration) -> Self {
        let config = testkit::Config {
            workloads: WorkloadSim {
                enabled: true,
                status_delay: Duration::from_millis(100),
                ready_delay,
            },
            ..testkit::Config::default()
        };
        let kube = KubeStandin::start(config)
            .await
            .expect("kube-standin starts");
        Cluster {
            kube,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kubeconfig whose requests are marked `client` in the request log.
    pub fn kubeconfig(&self, client: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{client}"));
        self.kube
            .write_kubeconfig_for(&path, client)
            .expect("writing a kubeconfig");
        path
    }

    /// Runs the real `kubectl` against the stand-in.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig("kubectl"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("kubectl is installed and on PATH (the e2e tests drive the stand-in with it)");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(input.as_bytes())
                .expect("writing to kubectl");
        }
        child.wait_with_output().expect("kubectl runs")
    }

    /// Runs `kubectl` and returns its standard output; panics with its error output on failure.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of YAML or JSON documents.
    pub fn apply(&self, manifests: &str) -> String {
        self.kubectl_ok(&["apply", "-f", "-"], Some(manifests))
    }

    /// `kubectl patch aas NAME --type=merge -p PATCH` in the seed namespace.
    pub fn patch_autoscaler(&self, name: &str, patch: &Value) {
        let patch = patch.to_string();
        self.kubectl_ok(
            &[
                "patch",
                "aas",
                name,
                "-n",
                NAMESPACE,
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        );
    }

    /// Installs both CRDs (AviAutoscaler, AviController) from `config/crd` with `kubectl apply`.
    pub fn install_crd(&self) {
        for file in [
            "aviautoscalers.autoscaling.avi.dev.yaml",
            "avicontrollers.autoscaling.avi.dev.yaml",
        ] {
            let crd = workspace_root().join("config/crd").join(file);
            self.kubectl_ok(&["apply", "-f", crd.to_str().expect("a UTF-8 path")], None);
        }
    }

    /// The object, read straight from the stand-in's store.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.kube
            .store()
            .get(&ObjectRef::namespaced(api_version, kind, namespace, name))
    }

    /// The seed Deployment's `spec.replicas`.
    pub fn replicas(&self) -> Option<i64> {
        self.get("apps/v1", "Deployment", NAMESPACE, DEPLOYMENT)?
            .pointer("/spec/replicas")?
            .as_i64()
    }

    /// The seed AviAutoscaler.
    pub fn autoscaler(&self) -> Option<Value> {
        self.autoscaler_named(AUTOSCALER)
    }

    /// An AviAutoscaler of the seed namespace.
    pub fn autoscaler_named(&self, name: &str) -> Option<Value> {
        self.get(
            "autoscaling.avi.dev/v1alpha1",
            "AviAutoscaler",
            NAMESPACE,
            name,
        )
    }

    /// Waits until `condition` holds on the store, failing the run after [`DEADLINE`] with
    /// `what` and the stand-in's recent state.
    pub async fn wait<T>(&self, what: &str, mut condition: impl FnMut(&Cluster) -> Option<T>) -> T {
        let result = self.kube.wait_for(|_| condition(self), DEADLINE).await;
        match result {
            Ok(v) => v,
            Err(e) => panic!("timed out waiting for {what}: {e:?}"),
        }
    }

    /// Waits until the seed Deployment has `n` replicas.
    pub async fn wait_replicas(&self, n: i64) {
        self.wait(&format!("{DEPLOYMENT} at {n} replicas"), |c| {
            (c.replicas() == Some(n)).then_some(())
        })
        .await
    }

    /// The seed AviAutoscaler's condition of `type_`: (status, reason, message).
    pub fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        self.condition_of(AUTOSCALER, type_)
    }

    /// The condition `type_` of AviAutoscaler `name`: (status, reason, message).
    pub fn condition_of(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let aas = self.autoscaler_named(name)?;
        let c = aas
            .pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)?
            .clone();
        Some((
            c["status"].as_str()?.to_owned(),
            c["reason"].as_str()?.to_owned(),
            c["message"].as_str()?.to_owned(),
        ))
    }

    /// Waits until the seed AviAutoscaler's condition `type_` has `reason`; returns its message.
    pub async fn wait_reason(&self, type_: &str, reason: &str) -> String {
        self.wait_reason_of(AUTOSCALER, type_, reason).await
    }

    /// Waits until condition `type_` of AviAutoscaler `name` has `reason`; returns its message.
    pub async fn wait_reason_of(&self, name: &str, type_: &str, reason: &str) -> String {
        self.wait(
            &format!("{name}: condition {type_} with reason {reason}"),
            |c| {
                c.condition_of(name, type_)
                    .filter(|(_, r, _)| r == reason)
                    .map(|(_, _, m)| m)
            },
        )
        .await
    }

    /// Events (events.k8s.io/v1) about the seed AviAutoscaler: (type, reason, note).
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.events_of(AUTOSCALER)
    }

    /// Events (events.k8s.io/v1) about AviAutoscaler `name`: (type, reason, note).
    pub fn events_of(&self, name: &str) -> Vec<(String, String, String)> {
        self.kube
            .store()
            .list("events.k8s.io/v1", "Event", Some(NAMESPACE))
            .into_iter()
            .filter(|e| e.pointer("/regarding/name") == Some(&json!(name)))
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["reason"].as_str().unwrap_or_default().to_owned(),
                    e["note"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Waits for an Event with `reason` about the seed AviAutoscaler; returns its note.
    pub async fn wait_event(&self, reason: &str) -> String {
        self.wait_event_of(AUTOSCALER, reason).await
    }

    /// Waits for an Event with `reason` about AviAutoscaler `name`; returns its note.
    pub async fn wait_event_of(&self, name: &str, reason: &str) -> String {
        self.wait(&format!("{name}: an Event {reason}"), |c| {
            c.events_of(name)
                .into_iter()
                .find(|(_, r, _)| r == reason)
                .map(|(_, _, n)| n)
        })
        .await
    }

    /// The holder of the operator's Lease (`default/avi-autoscaler`), if any.
    pub fn lease_holder(&self) -> Option<String> {
        self.get(
            "coordination.k8s.io/v1",
            "Lease",
            "default",
            "avi-autoscaler",
        )?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(str::to_owned)
    }

    /// Waits until the `/scale` writes of `client` are exactly `expected` (the request log
    /// records a write when its answer is sent, just after the store changed).
    pub async fn wait_scale_writes(&self, client: &str, expected: &[i64]) {
        let what = format!("{client}'s scale writes to be {expected:?}");
        let result = self
            .kube
            .wait_for(|_| self.scale_writes(client) == expected, DEADLINE)
            .await;
        if result.is_err() {
            panic!(
                "timed out waiting for {what}: they are {:?}",
                self.scale_writes(client)
            );
        }
    }

    /// The `spec.replicas` values written through `/scale` by `client`, in order.
    pub fn scale_writes(&self, client: &str) -> Vec<i64> {
        self.kube
            .requests()
            .iter()
            .filter(|r| r.client.as_deref() == Some(client))
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/scale") && r.status < 300)
            .filter_map(|r| {
                serde_json::from_str::<Value>(&r.body)
                    .ok()?
                    .pointer("/spec/replicas")?
                    .as_i64()
            })
            .collect()
    }
}

/// A Deployment `name` in `namespace` with one replica, whose pods are labelled `app: name`.
pub fn deployment(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "app"}]}}}})
}

/// The manifests of the seed experiment (`examples/kuard`) with an inline connection to an
/// avi-sim controller: the namespace, the credentials Secret (with `password`) and a Secret with
/// the simulator's CA, both labelled for inline use, the Deployment with its Service and
/// Ingress, and the AviAutoscaler with the example's AviController spec as its
/// `spec.controller` and `spec` merged over the example's spec. The operator needs
/// [`ALLOW_INLINE`] for it.
pub fn kuard_manifests(sim: &RunningSim, password: &str, spec: &Value) -> String {
    kuard_manifests_for(&sim.urls(), sim.ca_pem(), password, spec)
}

/// The AviAutoscaler of [`kuard_manifests`] alone, as an object to vary.
pub fn kuard_autoscaler(sim: &RunningSim, spec: &Value) -> Value {
    let manifests = kuard_manifests(sim, "unused", spec);
    let last = manifests
        .rsplit("\n---\n")
        .next()
        .expect("the AviAutoscaler comes last");
    serde_json::from_str(last).expect("the manifests are JSON")
}

/// The YAML documents of one `examples/kuard` file.
fn kuard_example(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(workspace_root().join("examples/kuard").join(file))
        .unwrap_or_else(|e| panic!("examples/kuard/{file}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("example YAML parses"))
        .filter(Value::is_object)
        .collect()
}

/// The one document of an `examples/kuard` file.
fn kuard_example_one(file: &str) -> Value {
    let mut docs = kuard_example(file);
    assert_eq!(docs.len(), 1, "examples/kuard/{file} holds one object");
    docs.remove(0)
}

/// The example's AviController spec pointed at `endpoints`, trusting the CA in Secret `avi-ca`.
fn kuard_connection(endpoints: &[String]) -> Value {
    let mut connection = kuard_example_one("avicontroller.yaml")["spec"].clone();
    connection["endpoints"] = json!(endpoints);
    connection["tls"] = json!({"caSecretRef": {"name": "avi-ca", "key": "ca.crt"}});
    connection
}

/// The credentials (with `password`) and CA Secrets of the example in `namespace`, with
/// `labels`.
fn kuard_secrets(namespace: &str, labels: &Value, ca_pem: &str, password: &str) -> [Value; 2] {
    // The example's placeholder credentials (secret.yaml) are replaced by these.
    [
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "avi-basic-auth", "namespace": namespace, "labels": labels},
            "stringData": {"username": "admin", "password": password}
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "avi-ca", "namespace": namespace, "labels": labels},
            "stringData": {"ca.crt": ca_pem}
        }),
    ]
}

fn join_documents(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_json::to_string(d).expect("JSON"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// [`kuard_manifests`] for a controller at `endpoints` whose certificate `ca_pem` signs, as
/// JSON documents separated by `---` (what `kubectl apply -f -` reads). The AviAutoscaler comes
/// last.
pub fn kuard_manifests_for(
    endpoints: &[String],
    ca_pem: &str,
    password: &str,
    spec: &Value,
) -> String {
    let mut docs = kuard_example("namespace.yaml");
    docs.extend(kuard_example("deployment.yaml"));
    docs.extend(kuard_secrets(
        NAMESPACE,
        &json!({CREDENTIALS_LABEL: "true"}),
        ca_pem,
        password,
    ));
    let mut aas = kuard_example_one("aviautoscaler.yaml");
    // The inline variant: the example's AviController spec in place of its reference.
    merge(
        &mut aas["spec"],
        &json!({"controllerRef": null, "controller": kuard_connection(endpoints)}),
    );
    merge(&mut aas["spec"], spec);
    docs.push(aas);
    join_documents(&docs)
}

/// The manifests of `examples/kuard` as the example has them, pointed at a controller at
/// `endpoints` whose certificate `ca_pem` signs: the operator's namespace
/// ([`OPERATOR_NAMESPACE`], which an install of the operator creates) with the credentials
/// (with `password`) and CA Secrets, unlabelled, the AviController [`CONTROLLER`], and the
/// application namespace with the Deployment, its Service and Ingress, and the AviAutoscaler
/// (its `spec.controllerRef` names the AviController) with `spec` merged over the example's
/// spec, last. The operator needs `--cluster-resource-namespace` [`OPERATOR_NAMESPACE`] and no
/// [`ALLOW_INLINE`].
pub fn kuard_controller_manifests_for(
    endpoints: &[String],
    ca_pem: &str,
    password: &str,
    spec: &Value,
) -> String {
    let mut docs = vec![json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}
    })];
    let example_secret = kuard_example_one("secret.yaml");
    assert_eq!(
        example_secret["metadata"]["namespace"], OPERATOR_NAMESPACE,
        "the example's Secret lives in the operator's namespace"
    );
    docs.extend(kuard_secrets(
        OPERATOR_NAMESPACE,
        &json!({}),
        ca_pem,
        password,
    ));
    let mut avic = kuard_example_one("avicontroller.yaml");
    assert_eq!(avic["metadata"]["name"], CONTROLLER);
    avic["spec"] = kuard_connection(endpoints);
    docs.push(avic);
    docs.extend(kuard_example("namespace.yaml"));
    docs.extend(kuard_example("deployment.yaml"));
    let mut aas = kuard_example_one("aviautoscaler.yaml");
    merge(&mut aas["spec"], spec);
    docs.push(aas);
    join_documents(&docs)
}

/// JSON merge patch semantics (RFC 7386): objects merge, `null` deletes, the rest replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Log lines of a child process, with a signal for waiters.
#[derive(Default)]
struct LogBook {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

/// The operator's endpoints on free ports of 127.0.0.1.
const LOCAL_BINDS: [&str; 4] = [
    "--metrics-bind",
    "127.0.0.1:0",
    "--health-bind",
    "127.0.0.1:0",
];

/// The tests' log filter: everything the operator says about its decisions.
const DEBUG_LOG: &str = "info,avi_autoscaler=debug";

/// A running `avi-autoscaler run` process.
pub struct Operator {
    child: Option<Child>,
    logs: Arc<LogBook>,
    /// The client marker its requests carry in the stand-in's request log.
    pub client: String,
}

impl Operator {
    /// Starts `avi-autoscaler run` against `cluster`, its requests marked `client`; its
    /// endpoints listen on free ports of 127.0.0.1.
    pub fn start(cluster: &Cluster, client: &str, args: &[&str]) -> Self {
        Self::spawn(cluster, client, &LOCAL_BINDS, args, DEBUG_LOG)
    }

    /// [`start`](Self::start) logging at `filter` (a `RUST_LOG` value) instead of debug: what
    /// the benchmarks use, so that they measure the log volume of a production install.
    pub fn start_logging(cluster: &Cluster, client: &str, args: &[&str], filter: &str) -> Self {
        Self::spawn(cluster, client, &LOCAL_BINDS, args, filter)
    }

    /// [`start`](Self::start) without bind flags: the endpoints listen where a pod's would, on
    /// the defaults' fixed ports.
    pub fn start_with_default_binds(cluster: &Cluster, client: &str, args: &[&str]) -> Self {
        Self::spawn(cluster, client, &[], args, DEBUG_LOG)
    }

    fn spawn(cluster: &Cluster, client: &str, binds: &[&str], args: &[&str], filter: &str) -> Self {
        let mut child = Command::new(workspace_bin("avi-autoscaler"))
            .arg("run")
            .args(binds)
            .args(["--log-format", "json", "--identity", client])
            .args(args)
            .env("KUBECONFIG", cluster.kubeconfig(client))
            .env("RUST_LOG", filter)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("AVI_AUTOSCALER_METRICS_BIND")
            .env_remove("AVI_AUTOSCALER_HEALTH_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("avi-autoscaler starts");
        let logs = Arc::new(LogBook::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        let book = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                book.lines.lock().expect("log lock").0.push(line);
                book.changed.notify_all();
            }
            book.lines.lock().expect("log lock").1 = true;
            book.changed.notify_all();
        });
        Operator {
            child: Some(child),
            logs,
            client: client.to_owned(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Its resident set size in KiB (`VmRSS` of /proc), if it still runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Its log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Waits (up to [`DEADLINE`]) for a log line containing `needle`; returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut guard = self.logs.lines.lock().expect("log lock");
        loop {
            if let Some(l) = guard.0.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let closed = guard.1;
            let now = Instant::now();
            if closed || now >= deadline {
                let why = if closed { "exited" } else { "timed out" };
                let logs = guard.0.join("\n");
                drop(guard);
                panic!("avi-autoscaler {why} before logging {needle:?}; logs:\n{logs}");
            }
            guard = self
                .logs
                .changed
                .wait_timeout(guard, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// The address of its `/metrics` endpoint.
    pub fn metrics_addr(&self) -> String {
        self.start_line()["metrics"]
            .as_str()
            .expect("the start line names the metrics address")
            .to_owned()
    }

    /// The reconciles it has finished, whatever their result, as its `/metrics` counts them.
    pub async fn reconciles(&self) -> u64 {
        let (_, scrape) = http_get(&self.metrics_addr(), "/metrics").await;
        scrape
            .lines()
            .filter(|l| l.starts_with("avi_autoscaler_reconciliations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Waits until it has finished `n` more reconciles than `since` (a count from
    /// [`Operator::reconciles`]); panics after [`DEADLINE`].
    pub async fn wait_reconciles(&self, since: u64, n: u64) {
        let waited = tokio::time::timeout(DEADLINE, async {
            let mut poll = tokio::time::interval(Duration::from_millis(100));
            while self.reconciles().await < since + n {
                poll.tick().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{n} more reconciles within {DEADLINE:?}");
    }

    /// The address of its `/healthz` and `/readyz` endpoints.
    pub fn health_addr(&self) -> String {
        self.start_line()["health"]
            .as_str()
            .expect("the start line names the health address")
            .to_owned()
    }

    fn start_line(&self) -> Value {
        serde_json::from_str(&self.wait_log("avi-autoscaler running")).expect("a JSON log line")
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let child = self.child.take().expect("running");
        terminate(child)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then up to 30 s for a clean exit, then SIGKILL.
fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(status) => status.expect("waiting for the child"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            rx.recv()
                .expect("the waiter reports")
                .expect("waiting for the child")
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
            if std::thread::panicking() {
                eprintln!(
                    "--- avi-autoscaler ({}) logs ---\n{}",
                    self.client,
                    self.logs().join("\n")
                );
            }
        }
    }
}

/// Keeps the simulated pool's member count equal to the Deployment's ready replicas, as AKO
/// does with one pool member per pod, but at least one, so pool metrics always have a value.
/// Runs until the returned handle is aborted.
pub fn sync_pool_members(cluster: &Cluster, sim: &RunningSim) -> tokio::task::JoinHandle<()> {
    sync_pool_members_at_least(cluster, sim, 1)
}

/// [`sync_pool_members`] with at least `min` members (0: none while no pod is ready).
pub fn sync_pool_members_at_least(
    cluster: &Cluster,
    sim: &RunningSim,
    min: u32,
) -> tokio::task::JoinHandle<()> {
    let store = cluster.kube.store();
    let handle = sim.handle();
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let ready = store
                .get(&ObjectRef::namespaced(
                    "apps/v1",
                    "Deployment",
                    NAMESPACE,
                    DEPLOYMENT,
                ))
                .and_then(|d| d.pointer("/status/readyReplicas").and_then(Value::as_u64))
                .unwrap_or(0)
                .max(u64::from(min)) as u32;
            if last != Some(ready) {
                handle
                    .set_pool_servers(POOL, ready)
                    .expect("the seed pool exists");
                last = Some(ready);
            }
            let _ = store
                .wait_for(
                    |s| {
                        let now = s
                            .get(&ObjectRef::namespaced(
                                "apps/v1",
                                "Deployment",
                                NAMESPACE,
                                DEPLOYMENT,
                            ))
                            .and_then(|d| {
                                d.pointer("/status/readyReplicas").and_then(Value::as_u64)
                            })
                            .unwrap_or(0)
                            .max(u64::from(min)) as u32;
                        now != ready
                    },
                    Duration::from_secs(3600),
                )
                .await;
        }
    })
}

/// A plain HTTP/1.1 GET (the operator's admin endpoints): status and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("reading the answer");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
    // axum answers small bodies with Content-Length; a chunked body is decoded here.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The Python of the workspace's `.venv` (`make venv`), or `AVI_AUTOSCALER_PYTHON`.
pub fn venv_python() -> PathBuf {
    if let Some(p) = std::env::var_os("AVI_AUTOSCALER_PYTHON") {
        return PathBuf::from(p);
    }
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv` (make test does)",
        python.display()
    );
    python
}

/// Metrics the dashboard and the alert rules may query that no e2e run produces a sample of,
/// each with the reason. prometheus-client writes no `# TYPE` line for a family without series,
/// so the scrape cannot show them; the operator's unit tests cover their names.
pub const QUERIED_WITHOUT_SAMPLES: &[(&str, &str)] = &[
    (
        "avi_autoscaler_reconcile_failures_total",
        "counted only when a reconcile fails (a refused status or scale write), which no healthy run does",
    ),
    (
        "avi_autoscaler_avicontroller_ready",
        "set per AviController object; the e2e autoscalers connect inline",
    ),
];

/// The `avi_autoscaler_*` names in the Grafana dashboard's queries and the alert rules'
/// expressions (config/grafana, config/prometheus).
pub fn queried_metric_names() -> std::collections::BTreeSet<String> {
    let root = workspace_root();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("config/grafana/avi-autoscaler.json"))
            .expect("reading the dashboard"),
    )
    .expect("the dashboard is JSON");
    let rules: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("config/prometheus/alerts.yaml"))
            .expect("reading the alert rules"),
    )
    .expect("the alert rules are YAML");
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.extend(target["expr"].as_str().map(str::to_owned));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        exprs.extend(variable["query"]["query"].as_str().map(str::to_owned));
    }
    for group in rules["spec"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            exprs.extend(rule["expr"].as_str().map(str::to_owned));
        }
    }
    assert!(
        !exprs.is_empty(),
        "no queries found in the dashboard or the rules"
    );
    exprs.iter().flat_map(|e| metric_names_in(e)).collect()
}

/// The `avi_autoscaler_*` identifiers in one PromQL expression (outside label values).
fn metric_names_in(expr: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = Vec::new();
    // Every other piece between double quotes is a label value; the dashboard's and the rules'
    // label values hold no escaped quotes.
    for code in expr.split('"').step_by(2) {
        let mut rest = code;
        while let Some(at) = rest.find("avi_autoscaler_") {
            let preceded_by_name = rest[..at].chars().next_back().is_some_and(is_name);
            let tail = &rest[at..];
            let end = tail.find(|c: char| !is_name(c)).unwrap_or(tail.len());
            if !preceded_by_name {
                names.push(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// Checks a `/metrics` scrape of the operator against what the dashboard and the alert rules
/// query: each name has a sample or is listed in [`QUERIED_WITHOUT_SAMPLES`]. Panics listing
/// every name that is missing.
pub fn assert_exports_every_queried_metric(scrape: &str) {
    let sampled: std::collections::BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .collect();
    let queried = queried_metric_names();
    let missing: Vec<String> = queried
        .iter()
        .filter(|name| {
            !sampled.contains(name.as_str())
                && !QUERIED_WITHOUT_SAMPLES.iter().any(|(n, _)| n == name)
        })
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the alert rules query metrics the operator does not export: {missing:?}\nqueried: {queried:?}\n/metrics:\n{scrape}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_read_from_promql() {
        assert_eq!(
            metric_names_in(
                "sum by (le) (rate(avi_autoscaler_x_bucket{a=\"avi_autoscaler_no\"}[5m])) / my_avi_autoscaler_y + avi_autoscaler_z"
            ),
            ["avi_autoscaler_x_bucket", "avi_autoscaler_z"]
        );
    }

    #[test]
    fn a_missing_or_unregistered_metric_fails_the_check() {
        let queried = queried_metric_names();
        assert!(queried.contains("avi_autoscaler_ready"), "{queried:?}");
        let result = std::panic::catch_unwind(|| {
            assert_exports_every_queried_metric(
                "# TYPE avi_autoscaler_leader gauge\navi_autoscaler_leader 1\n",
            )
        });
        assert!(result.is_err());
    }
}
