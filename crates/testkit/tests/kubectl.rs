//! The real `kubectl` against the stand-in: apply (client- and server-side, `-k`), get with
//! the CRD's printer columns, describe with conditions and events, explain, scale, wait,
//! delete, create.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use support::{DEADLINE, start};
use testkit::{KubeStandin, ObjectRef, Patch};

/// Where the workspace's checked-in manifests are.
fn workspace(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// The `kubectl` on PATH (or `$KUBECTL`); the tests fail (they do not skip) without it.
fn kubectl_path() -> PathBuf {
    if let Some(explicit) = std::env::var_os("KUBECTL") {
        return PathBuf::from(explicit);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("kubectl"))
                .find(|p| p.is_file())
        })
        .expect("kubectl not found on PATH: these tests drive the real kubectl; install it (for example the kubernetes-client Debian package)")
}

/// kubectl with its own kubeconfig and home (so discovery caches do not leak between tests).
struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(standin: &KubeStandin) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        standin
            .write_kubeconfig_for(&kubeconfig, "kubectl")
            .expect("the kubeconfig is written");
        Self { dir, kubeconfig }
    }

    async fn run(&self, args: &[&str]) -> Output {
        let fut = tokio::process::Command::new(kubectl_path())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(DEADLINE, fut)
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in time"))
            .expect("kubectl runs")
    }

    /// Runs kubectl and returns its stdout; panics with its stderr if it fails.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs kubectl expecting failure; returns its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn write(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("the manifest is written");
        p.display().to_string()
    }
}

/// The CRDs and the kuard example applied, as a user would after installing the operator in
/// namespace `avi-autoscaler` (where the example's AviController Secret goes).
async fn with_kuard() -> (KubeStandin, Kubectl) {
    let s = start().await;
    let k = Kubectl::new(&s);
    let crd = k
        .ok(&[
            "apply",
            "-f",
            &workspace("config/crd/aviautoscalers.autoscaling.avi.dev.yaml"),
        ])
        .await;
    assert_eq!(
        crd.trim(),
        "customresourcedefinition.apiextensions.k8s.io/aviautoscalers.autoscaling.avi.dev created"
    );
    let avic_crd = k
        .ok(&[
            "apply",
            "-f",
            &workspace("config/crd/avicontrollers.autoscaling.avi.dev.yaml"),
        ])
        .await;
    assert_eq!(
        avic_crd.trim(),
        "customresourcedefinition.apiextensions.k8s.io/avicontrollers.autoscaling.avi.dev created"
    );
    k.ok(&["create", "namespace", "avi-autoscaler"]).await;
    let out = k.ok(&["apply", "-k", &workspace("examples/kuard")]).await;
    for line in [
        "namespace/routing-ns1 created",
        "secret/avi-basic-auth created",
        "avicontroller.autoscaling.avi.dev/homelab-avi created",
        "deployment.apps/kuard-deployment created",
        "aviautoscaler.autoscaling.avi.dev/kuard created",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    (s, k)
}

fn kuard() -> ObjectRef {
    ObjectRef::namespaced(
        "autoscaling.avi.dev/v1alpha1",
        "AviAutoscaler",
        "routing-ns1",
        "kuard",
    )
}

fn deploy() -> ObjectRef {
    ObjectRef::namespaced("apps/v1", "Deployment", "routing-ns1", "kuard-deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_is_idempotent_and_patches_changes() {
    let (s, k) = with_kuard().await;
    let again = k
        .ok(&["apply", "-f", &workspace("examples/kuard/deployment.yaml")])
        .await;
    assert!(
        again.contains("deployment.apps/kuard-deployment unchanged"),
        "{again}"
    );
    // Without --validate=false: kubectl finds field validation in /openapi/v3.
    let manifest = std::fs::read_to_string(workspace("examples/kuard/deployment.yaml"))
        .unwrap()
        .replace("kuard-amd64:blue", "kuard-amd64:green");
    let file = k.write("deployment.yaml", &manifest);
    let changed = k.ok(&["apply", "-f", &file]).await;
    assert!(
        changed.contains("deployment.apps/kuard-deployment configured"),
        "{changed}"
    );
    let d = s.store().get(&deploy()).unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/kuar-demo/kuard-amd64:green"
    );
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap()
            .contains("green")
    );
    let patch = s
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/deployments/kuard-deployment"))
        .expect("kubectl patched the deployment");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(
        patch.query_param("fieldManager").as_deref(),
        Some("kubectl-client-side-apply")
    );
    assert_eq!(patch.client.as_deref(), Some("kubectl"));

    // Custom resources get merge patches.
    let aas = std::fs::read_to_string(workspace("examples/kuard/aviautoscaler.yaml"))
        .unwrap()
        .replace("maxReplicas: 5", "maxReplicas: 6");
    let file = k.write("aas.yaml", &aas);
    assert!(
        k.ok(&["apply", "-f", &file])
            .await
            .contains("aviautoscaler.autoscaling.avi.dev/kuard configured")
    );
    assert_eq!(s.store().get(&kuard()).unwrap()["spec"]["maxReplicas"], 6);
    let cr_patch = s
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/aviautoscalers/kuard"))
        .unwrap();
    assert_eq!(
        cr_patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );

    // Server-side apply.
    let ssa = k
        .ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        .await;
    assert!(
        ssa.contains("aviautoscaler.autoscaling.avi.dev/kuard serverside-applied"),
        "{ssa}"
    );
    let obj = s.store().get(&kuard()).unwrap();
    assert!(
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_crd_field_documentation() {
    let (_s, k) = with_kuard().await;
    let metrics = k.ok(&["explain", "aas.spec.metrics"]).await;
    for needle in [
        "KIND:       AviAutoscaler",
        "VERSION:    v1alpha1",
        "FIELD: metrics <[]Object>",
        "The metrics to scale on (1 to 10)",
        "metricId\t<string> -required-",
        "l4_server.avg_open_conns",
        "enum: Sum, Average, Max",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle:?} missing from:\n{metrics}"
        );
    }
    let target = k.ok(&["explain", "aas.spec.metrics.target.type"]).await;
    assert!(
        target.contains("ENUM:\n    Value\n    AverageValue"),
        "{target}"
    );
    let missing = k.fails(&["explain", "aas.spec.nosuchfield"]).await;
    assert!(missing.contains("nosuchfield"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_printer_columns_and_objects() {
    let (s, k) = with_kuard().await;
    s.store()
        .patch_status(&kuard(), Patch::Merge(json!({"status": {"currentReplicas": 2, "metricSummary": "300/200 (avg)", "conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledToTarget", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})))
        .unwrap();
    let table = k.ok(&["get", "aas", "-n", "routing-ns1"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "TARGET", "METRIC", "MIN", "MAX", "REPLICAS", "MODE", "AGE"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..7],
        [
            "kuard",
            "kuard-deployment",
            "300/200",
            "(avg)",
            "1",
            "5",
            "2"
        ]
    );
    let wide = k.ok(&["get", "aviautoscalers", "-A", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "TARGET",
            "METRIC",
            "MIN",
            "MAX",
            "REPLICAS",
            "MODE",
            "READY",
            "AGE"
        ]
    );
    assert!(wide.lines().nth(1).unwrap().contains(" True "), "{wide}");

    let yaml = k
        .ok(&["get", "aas", "kuard", "-n", "routing-ns1", "-o", "yaml"])
        .await;
    assert!(
        yaml.contains("kind: AviAutoscaler") && yaml.contains("metricId: l4_server.avg_open_conns"),
        "{yaml}"
    );
    let json: Value = serde_json::from_str(
        &k.ok(&["get", "aas", "kuard", "-n", "routing-ns1", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(json["spec"]["scaleTargetRef"]["name"], "kuard-deployment");
    let ready = k
        .ok(&[
            "get",
            "aas",
            "kuard",
            "-n",
            "routing-ns1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .await;
    assert_eq!(ready, "True");

    // The workload controller simulation makes the deployment ready.
    s.wait_for(
        |st| {
            st.get(&deploy())
                .is_some_and(|d| d["status"]["readyReplicas"] == 1)
        },
        DEADLINE,
    )
    .await
    .unwrap();
    let deployments = k.ok(&["get", "deploy", "-n", "routing-ns1"]).await;
    let row: Vec<&str> = deployments
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["kuard-deployment", "1/1", "1", "1"]);
    let ns = k.ok(&["get", "ns"]).await;
    assert!(ns.contains("routing-ns1") && ns.contains("Active"), "{ns}");

    let missing = k.fails(&["get", "aas", "nope", "-n", "routing-ns1"]).await;
    assert!(
        missing.contains(
            "Error from server (NotFound): aviautoscalers.autoscaling.avi.dev \"nope\" not found"
        ),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_conditions_and_recorded_events() {
    let (s, k) = with_kuard().await;
    let st = s.store();
    st.patch_status(&kuard(), Patch::Merge(json!({"status": {"conditions": [
        {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the target was scaled", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Ready", "status": "True", "reason": "ScaledToTarget", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})))
        .unwrap();
    let uid = st.get(&kuard()).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    // An event as kube-runtime's Recorder writes it (events.k8s.io/v1).
    st.create(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "kuard.17f", "namespace": "routing-ns1"},
        "regarding": {"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler", "name": "kuard", "namespace": "routing-ns1", "uid": uid},
        "note": "New size: 5; reason: l4_server.avg_open_conns above target", "reason": "SuccessfulRescale", "type": "Normal",
        "action": "Scale", "reportingController": "avi-autoscaler", "reportingInstance": "avi-autoscaler-0",
        "eventTime": "2026-01-01T00:00:00.000000Z", "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}
    }))
    .unwrap();
    let out = k
        .ok(&["describe", "aas", "kuard", "-n", "routing-ns1"])
        .await;
    for want in [
        "Name:         kuard",
        "Kind:         AviAutoscaler",
        "Conditions:",
        "Type:                  Ready",
        "Reason:                ScaledToTarget",
        "Events:",
        "SuccessfulRescale",
        "avi-autoscaler",
        "New size: 5",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    let events_line = out
        .lines()
        .find(|l| l.contains("SuccessfulRescale"))
        .unwrap();
    assert!(
        events_line.contains("(x3 over"),
        "the series shows as a count: {events_line}"
    );
    let query = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/namespaces/routing-ns1/events")
        .expect("describe lists core/v1 events");
    let selector = query.query_param("fieldSelector").unwrap();
    assert!(
        selector.contains("involvedObject.kind=AviAutoscaler")
            && selector.contains(&format!("involvedObject.uid={uid}")),
        "{selector}"
    );
    let events = k.ok(&["get", "events", "-n", "routing-ns1"]).await;
    assert!(events.contains("aviautoscaler/kuard"), "{events}");
    let deployment = k
        .ok(&[
            "describe",
            "deployment",
            "kuard-deployment",
            "-n",
            "routing-ns1",
        ])
        .await;
    assert!(deployment.contains("Port:       8080/TCP"), "{deployment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_wait_delete_and_create() {
    let (s, k) = with_kuard().await;
    let scaled = k
        .ok(&[
            "scale",
            "deployment",
            "kuard-deployment",
            "--replicas=3",
            "-n",
            "routing-ns1",
        ])
        .await;
    assert_eq!(scaled.trim(), "deployment.apps/kuard-deployment scaled");
    assert_eq!(s.store().get(&deploy()).unwrap()["spec"]["replicas"], 3);
    assert!(s.requests().iter().any(|r| r.method == "PATCH" && r.path.ends_with("/deployments/kuard-deployment/scale")));

    // kubectl wait watches with a field selector; the condition turns up while it waits.
    let waiting = {
        let args: Vec<String> = [
            "wait",
            "--for=condition=Ready",
            "aas/kuard",
            "-n",
            "routing-ns1",
            "--timeout=60s",
        ]
        .map(str::to_owned)
        .to_vec();
        let kubeconfig = k.kubeconfig.clone();
        let home = k.dir.path().to_path_buf();
        tokio::spawn(async move {
            tokio::process::Command::new(kubectl_path())
                .args(&args)
                .env("KUBECONFIG", kubeconfig)
                .env("HOME", home)
                .kill_on_drop(true)
                .output()
                .await
                .expect("kubectl runs")
        })
    };
    s.wait_for_request(
        |r| {
            r.watch
                && r.path.ends_with("/aviautoscalers")
                && r.query.contains("fieldSelector=metadata.name%3Dkuard")
        },
        DEADLINE,
    )
    .await
    .expect("kubectl wait watches the object");
    s.store()
        .patch_status(&kuard(), Patch::Merge(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledToTarget", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})))
        .unwrap();
    let out = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("kubectl wait returns")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "aviautoscaler.autoscaling.avi.dev/kuard condition met"
    );

    let deleted = k.ok(&["delete", "aas", "kuard", "-n", "routing-ns1"]).await;
    assert_eq!(
        deleted.trim(),
        "aviautoscaler.autoscaling.avi.dev \"kuard\" deleted"
    );
    assert!(s.store().get(&kuard()).is_none());

    assert_eq!(
        k.ok(&["create", "namespace", "demo"]).await.trim(),
        "namespace/demo created"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "secret",
            "generic",
            "avi",
            "--from-literal=username=admin",
            "-n",
            "demo"
        ])
        .await
        .trim(),
        "secret/avi created"
    );
    let secret = s
        .store()
        .get(&ObjectRef::namespaced("v1", "Secret", "demo", "avi"))
        .unwrap();
    assert_eq!(secret["data"]["username"], "YWRtaW4=");
    let invalid = k.write("bad.yaml", "apiVersion: autoscaling.avi.dev/v1alpha1\nkind: AviAutoscaler\nmetadata: {name: bad, namespace: demo}\nspec:\n  scaleTargetRef: {name: web}\n  maxReplicas: 0\n  controller: {endpoints: [\"https://avi\"], credentialsSecretRef: {name: avi}}\n  metrics: [{entity: {type: pool, name: p}, metricId: l4_server.avg_open_conns, target: {type: Value, value: 1}}]\n");
    let err = k.fails(&["apply", "-f", &invalid]).await;
    // kubectl renders the Status causes.
    assert!(err.contains("The AviAutoscaler \"bad\" is invalid: spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_table_rows() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (s, k) = with_kuard().await;
    let mut child = tokio::process::Command::new(kubectl_path())
        .args(["get", "aas", "-n", "routing-ns1", "--watch"])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", k.dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("kubectl keeps watching")
    };
    assert!(next().await.starts_with("NAME"));
    let first: Vec<String> = next().await.split_whitespace().map(str::to_owned).collect();
    assert_eq!(&first[..2], ["kuard", "kuard-deployment"]);
    s.store()
        .patch(&kuard(), Patch::Merge(json!({"spec": {"maxReplicas": 9}})))
        .unwrap();
    let updated: Vec<String> = next().await.split_whitespace().map(str::to_owned).collect();
    assert_eq!(
        (updated[0].as_str(), updated[3].as_str()),
        ("kuard", "9"),
        "{updated:?}"
    );
    child.kill().await.unwrap();
}
