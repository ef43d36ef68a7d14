//! End-to-end: `avi-autoscaler doctor` with the real binary against kube-standin and avi-sim.
//!
//! One cluster and one controller serve every case: a correct AviAutoscaler on an
//! AviController passes every check; a misspelt pool, a wrong password (an inline connection
//! whose Secret holds another password), a metric of another entity type and a realtime metric
//! on a pool without realtime metrics each fail, naming the problem. Both request logs then
//! show that doctor only read.

use std::process::Output;

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use e2e::{AUTOSCALER, Cluster, NAMESPACE, POOL, kuard_manifests};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-doctor";
/// Where the AviController's Secrets live.
const OPERATOR_NAMESPACE: &str = "avi-system";
const CONTROLLER: &str = "avi";
/// The kubeconfig user doctor's requests are logged as.
const CLIENT: &str = "doctor";

/// The AviController (basic auth: doctor then sends no login POST) and its Secrets.
fn controller_manifests(sim: &RunningSim) -> String {
    [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "avi-credentials", "namespace": OPERATOR_NAMESPACE},
               "stringData": {"username": "admin", "password": PASSWORD}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "avi-ca", "namespace": OPERATOR_NAMESPACE},
               "stringData": {"ca.crt": sim.ca_pem()}}),
        json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviController",
               "metadata": {"name": CONTROLLER},
               "spec": {"endpoints": sim.urls(), "credentialsSecretRef": {"name": "avi-credentials"},
                        "authMode": "basic", "tenant": "admin",
                        "tls": {"caSecretRef": {"name": "avi-ca", "key": "ca.crt"}}}}),
    ]
    .iter()
    .map(|d| serde_json::to_string(d).expect("JSON"))
    .collect::<Vec<_>>()
    .join("\n---\n")
}

/// Runs `avi-autoscaler doctor ARGS` with the cluster's kubeconfig.
async fn doctor(cluster: &Cluster, args: &[&str]) -> Output {
    let bin = e2e::workspace_bin("avi-autoscaler");
    let kubeconfig = cluster.kubeconfig(CLIENT);
    let mut all = vec!["doctor", "--cluster-resource-namespace", OPERATOR_NAMESPACE];
    all.extend_from_slice(args);
    let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(&all)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("POD_NAMESPACE")
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("doctor finishes")
}

/// Runs doctor on `object` written to a file; returns the exit code and standard output.
async fn doctor_file(cluster: &Cluster, object: &Value, file: &str) -> (Option<i32>, String) {
    let path = cluster.dir().join(file);
    std::fs::write(&path, serde_yaml::to_string(object).expect("YAML")).expect("write");
    let out = doctor(cluster, &["-f", path.to_str().expect("UTF-8 path")]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout)
}

/// The kuard autoscaler on the AviController with `metric` merged over its one metric.
fn on_controller(sim: &RunningSim, metric: &Value) -> Value {
    let mut obj = e2e::kuard_autoscaler(
        sim,
        &json!({"controller": null, "controllerRef": {"name": CONTROLLER}}),
    );
    e2e::merge(&mut obj["spec"]["metrics"][0], metric);
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_correct_object_names_each_problem_and_only_reads() {
    let cluster = Cluster::start(std::time::Duration::from_millis(300)).await;
    cluster.install_crd();
    // The pool has realtime metrics off, so a realtime metric on it is a problem to report.
    let mut scenario = Scenario::builtin(PASSWORD);
    scenario.pools[0].realtime = false;
    let sim = Sim::start(SimConfig::new(scenario).paused())
        .await
        .expect("avi-sim starts");
    sim.handle()
        .set_elapsed(600.0)
        .await
        .expect("the clock moves");
    cluster.apply(&controller_manifests(&sim));
    // The inline Secret in the application namespace holds a wrong password.
    let spec = json!({"controller": null, "controllerRef": {"name": CONTROLLER}});
    cluster.apply(&kuard_manifests(&sim, "not-the-password", &spec));
    let before = cluster.kube.requests().len();

    // The object in the cluster is correct: every check passes, and the decision is printed.
    let out = doctor(&cluster, &["--namespace", NAMESPACE, "--name", AUTOSCALER]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "✓ credentials",
        "✓ login",
        "✓ version",
        "✓ tenant",
        "✓ metrics[0] entity",
        "✓ metrics[0] metricId",
        "✓ metrics[0] value",
        "✓ target",
    ] {
        assert!(stdout.contains(check), "{check} missing:\n{stdout}");
    }
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(stdout.contains("decision now:"), "{stdout}");

    // -o json says the same for scripts.
    let out = doctor(
        &cluster,
        &["-n", NAMESPACE, "--name", AUTOSCALER, "-o", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], json!(true), "{report}");
    assert!(
        report["decision"]["desiredReplicas"].as_i64().is_some(),
        "{report}"
    );

    // A misspelt pool: the closest name is offered.
    let misspelt = POOL.replacen("kuard", "kaurd", 1);
    let (code, stdout) = doctor_file(
        &cluster,
        &on_controller(&sim, &json!({"entity": {"name": misspelt}})),
        "misspelt.yaml",
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("✗ metrics[0] entity"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(&misspelt), "{stdout}");
    assert!(stdout.contains(&format!("did you mean {POOL}")), "{stdout}");

    // A wrong password: the inline connection's Secret holds another one.
    let inline = e2e::kuard_autoscaler(&sim, &json!({}));
    let (code, stdout) = doctor_file(&cluster, &inline, "inline.yaml").await;
    assert_eq!(code, Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("✗ login"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        stdout.contains("refused the credentials"),
        "{line}\n{stdout}"
    );

    // A virtual-service metric on a pool.
    let (code, stdout) = doctor_file(
        &cluster,
        &on_controller(
            &sim,
            &json!({"metricId": "l7_client.avg_complete_responses"}),
        ),
        "wrong-type.yaml",
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("✗ metrics[0] metricId"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("virtualservice") && line.contains("not of pool"),
        "{stdout}"
    );

    // A realtime metric on a pool without realtime metrics.
    let (code, stdout) = doctor_file(
        &cluster,
        &on_controller(&sim, &json!({"realtime": true})),
        "realtime.yaml",
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("✗ metrics[0] realtime: realtime metrics are not enabled on pool"),
        "{stdout}"
    );

    // Reads only, on both sides.
    let writes: Vec<String> = cluster.kube.requests()[before..]
        .iter()
        .filter(|r| r.client.as_deref() == Some(CLIENT) && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "doctor wrote to Kubernetes: {writes:?}");
    let counters = sim.handle().counters();
    assert!(counters.total() > 0);
    let avi_writes: Vec<&String> = counters
        .endpoints
        .keys()
        .filter(|e| !e.starts_with("GET "))
        .collect();
    assert!(avi_writes.is_empty(), "doctor wrote to Avi: {avi_writes:?}");
}
