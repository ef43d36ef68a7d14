//! End-to-end: what a cluster sees of an installed operator, with the real binary, the real
//! kubectl, testkit's API stand-in and avi-sim.
//!
//! - The CRD upgrade that the chart's NOTES.txt and the README document works after Helm
//!   installed the CRD (Helm owns its fields under the field manager `helm`).
//! - The default listen addresses serve `/healthz` over IPv4 and IPv6.
//! - Every Kubernetes and Avi request names the operator in its User-Agent, the same words as
//!   `avi-autoscaler --version`.

use std::{process::Command, time::Duration};

use avi_sim::{Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, Cluster, Operator, kuard_manifests, workspace_bin, workspace_root};
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-install";
const CRD_NAME: &str = "aviautoscalers.autoscaling.avi.dev";

/// What `avi-autoscaler --version` prints.
fn version_line() -> String {
    let out = Command::new(workspace_bin("avi-autoscaler"))
        .arg("--version")
        .output()
        .expect("avi-autoscaler runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The kubectl arguments of the CRD upgrade the chart's NOTES.txt documents
/// (`helm show crds <chart> | kubectl apply ... -f -`), without `kubectl`.
fn documented_crd_upgrade() -> Vec<String> {
    let notes = workspace_root().join("config/helm/avi-autoscaler/templates/NOTES.txt");
    let text = std::fs::read_to_string(&notes).expect("NOTES.txt is readable");
    let line = text
        .lines()
        .find(|l| l.contains("helm show crds") && l.contains("| kubectl apply"))
        .expect("NOTES.txt documents `helm show crds <chart> | kubectl apply ...`");
    let (_, kubectl) = line.split_once("| kubectl ").expect("a pipe into kubectl");
    let args: Vec<String> = kubectl.split_whitespace().map(str::to_owned).collect();
    assert!(
        args.ends_with(&["-f".to_owned(), "-".to_owned()]),
        "the documented command reads the CRD from its standard input: {args:?}"
    );
    args
}

/// The checked-in CRD with a change in `.spec.versions`, as the next release's CRD would
/// have (a new printer column and a new schema description).
fn next_release_crd() -> (String, Value) {
    let path = workspace_root().join("config/crd/aviautoscalers.autoscaling.avi.dev.yaml");
    let text = std::fs::read_to_string(path).expect("the CRD is checked in");
    let mut crd: Value = serde_yaml::from_str(&text).expect("the CRD is YAML");
    let version = &mut crd["spec"]["versions"][0];
    version["additionalPrinterColumns"]
        .as_array_mut()
        .expect("printer columns")
        .push(json!({"name": "Upgraded", "type": "string", "jsonPath": ".spec.targetRef.name"}));
    version["schema"]["openAPIV3Schema"]["description"] = json!("The next release's text.");
    let columns = version["additionalPrinterColumns"].clone();
    (serde_json::to_string(&crd).expect("JSON"), columns)
}

fn managers(crd: &Value) -> Vec<String> {
    crd["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_crd_upgrade_takes_over_the_fields_helm_installed() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    // Helm installs crds/ with server-side apply under its own field manager.
    let installed = workspace_root().join("config/helm/avi-autoscaler/crds");
    cluster.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=helm",
            "-f",
            installed.to_str().expect("a UTF-8 path"),
        ],
        None,
    );
    let (next, columns) = next_release_crd();

    // A plain server-side apply of a changed CRD stops at Helm's fields: the trap the
    // documented command avoids (and proof that the stand-in enforces ownership).
    let plain = cluster.kubectl(&["apply", "--server-side", "-f", "-"], Some(&next));
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !plain.status.success() && stderr.contains("conflict") && stderr.contains("helm"),
        "a server-side apply over Helm's fields should conflict: {stderr}"
    );

    let args = documented_crd_upgrade();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cluster.kubectl_ok(&args, Some(&next));
    assert!(out.contains(CRD_NAME), "{out}");
    let crd = cluster
        .kube
        .store()
        .get(&testkit::ObjectRef::new(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            CRD_NAME,
        ))
        .expect("the CRD exists");
    assert_eq!(
        crd["spec"]["versions"][0]["additionalPrinterColumns"], columns,
        "the upgrade changed the CRD"
    );
    assert!(
        managers(&crd).iter().any(|m| m == "kubectl"),
        "the upgrade owns the fields now: {:?}",
        managers(&crd)
    );
    // Running it again (the next upgrade) is just as quiet.
    cluster.kubectl_ok(&args, Some(&next));
}

/// Whether the machine has an IPv6 loopback to connect to.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_binds_serve_health_over_ipv4_and_ipv6() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let operator = Operator::start_with_default_binds(&cluster, "operator", &[]);
    assert_eq!(
        operator.health_addr(),
        "[::]:8081",
        "the documented default"
    );
    assert_eq!(
        operator.metrics_addr(),
        "[::]:8080",
        "the documented default"
    );
    let mut probed = vec!["127.0.0.1:8081"];
    if has_ipv6_loopback() {
        probed.push("[::1]:8081");
    } else {
        eprintln!("skipping the ::1 probe: this machine has no IPv6 loopback (ip -6 addr)");
    }
    for addr in probed {
        let (status, body) = e2e::http_get(addr, "/healthz").await;
        assert_eq!(status, 200, "/healthz over {addr}: {body}");
    }
    let (status, _) = e2e::http_get("127.0.0.1:8080", "/metrics").await;
    assert_eq!(status, 200, "/metrics over IPv4");
    assert!(operator.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_names_the_operator_in_its_user_agent() {
    let expected = version_line();
    let (product, commit) = expected.split_once(' ').expect("product and commit");
    assert_eq!(
        product,
        format!("avi-autoscaler/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        commit.starts_with('(') && commit.ends_with(')') && commit.len() > 2,
        "{expected}"
    );

    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    cluster.apply(&kuard_manifests(
        &sim,
        PASSWORD,
        &json!({"pollingIntervalSeconds": 1}),
    ));
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    // Active: the operator has read the Secrets, polled avi-sim and written the status.
    cluster.wait_reason("Ready", "Active").await;
    assert!(operator.stop().success());

    let requests = cluster.kube.requests();
    let operator_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.client.as_deref() == Some("operator"))
        .collect();
    assert!(!operator_requests.is_empty());
    let strangers: Vec<String> = operator_requests
        .iter()
        .filter(|r| r.user_agent.as_deref() != Some(expected.as_str()))
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.user_agent))
        .collect();
    assert!(
        strangers.is_empty(),
        "Kubernetes requests without User-Agent {expected:?}: {strangers:#?}"
    );

    let agents = sim.handle().counters().user_agents;
    assert!(
        agents.get(&expected).copied().unwrap_or(0) > 0 && agents.len() == 1,
        "avi-sim saw these User-Agents (requests each): {agents:?}"
    );
}
