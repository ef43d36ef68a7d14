//! Inline connections (`spec.controller`) are opt-in: the real binary against kube-standin and
//! avi-sim, with the stand-in's and the simulator's request logs as evidence of what the
//! operator read and whom it called.
//!
//! - default flags: `InlineControllerNotAllowed`, no Avi request, no Secret read;
//! - `--allow-inline-controllers`: an unlabelled Secret gives `SecretNotAllowed` with only a
//!   metadata read; labelling it lets the autoscaler scale; `--allowed-endpoints` that exclude
//!   the endpoint and `insecureSkipVerify` without `--allow-insecure-inline` give
//!   `EndpointNotAllowed`, again without a request to the endpoint.

use std::time::Duration;

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, AUTOSCALER, CREDENTIALS_LABEL, Cluster, NAMESPACE, Operator};
use serde_json::json;

const PASSWORD: &str = "s3cret-inline";

/// The seed setup with the simulated clock at 300 s, where the first bucket (666.7 open
/// connections on average) asks for 4 replicas: any autoscaler that may read Avi scales.
async fn seed() -> (Cluster, RunningSim) {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    sim.handle()
        .set_elapsed(300.0)
        .await
        .expect("the clock moves forward");
    cluster.apply(&e2e::kuard_manifests(
        &sim,
        PASSWORD,
        &json!({"pollingIntervalSeconds": 1}),
    ));
    drop(e2e::sync_pool_members(&cluster, &sim));
    (cluster, sim)
}

/// The Secret requests `client` made: (name, metadata only).
fn secret_reads(cluster: &Cluster, client: &str) -> Vec<(String, bool)> {
    cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some(client) && r.path.contains("/secrets"))
        .map(|r| {
            let name = r.path.rsplit('/').next().unwrap_or_default().to_owned();
            (name, r.metadata_only())
        })
        .collect()
}

fn avi_requests(sim: &RunningSim) -> u64 {
    sim.handle().counters().total()
}

/// Asserts ScalingActive and Ready are False with `reason`, and a Warning Event says so.
async fn assert_refused(cluster: &Cluster, reason: &str) -> String {
    let message = cluster.wait_reason("ScalingActive", reason).await;
    let (status, _, _) = cluster.condition("ScalingActive").expect("ScalingActive");
    assert_eq!(status, "False", "ScalingActive: {message}");
    let (ready, ready_reason, _) = cluster.condition("Ready").expect("Ready");
    assert_eq!((ready.as_str(), ready_reason.as_str()), ("False", reason));
    cluster.wait_event(reason).await;
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_controllers_are_refused_by_default_without_reading_or_calling_anything() {
    let (cluster, sim) = seed().await;
    let operator = Operator::start(&cluster, "operator", &[]);

    let message = assert_refused(&cluster, "InlineControllerNotAllowed").await;
    assert!(
        message.contains("--allow-inline-controllers") && message.contains("controllerRef"),
        "{message}"
    );
    assert_eq!(avi_requests(&sim), 0, "no request to Avi");
    assert_eq!(
        secret_reads(&cluster, "operator"),
        vec![],
        "no Secret read at all"
    );
    assert_eq!(cluster.replicas(), Some(1), "the replica count is held");
    assert!(operator.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_in_inline_controllers_need_labelled_secrets_and_allowed_endpoints() {
    let (cluster, sim) = seed().await;
    cluster.kubectl_ok(
        &[
            "label",
            "secret",
            "avi-basic-auth",
            "-n",
            NAMESPACE,
            &format!("{CREDENTIALS_LABEL}-"),
        ],
        None,
    );

    // 1. An unlabelled credentials Secret: refused, its data never read.
    let operator = Operator::start(&cluster, "unlabelled", &[ALLOW_INLINE]);
    let message = assert_refused(&cluster, "SecretNotAllowed").await;
    assert!(
        message.contains("avi-basic-auth") && message.contains(CREDENTIALS_LABEL),
        "{message}"
    );
    let reads = secret_reads(&cluster, "unlabelled");
    assert!(!reads.is_empty(), "the label was looked at");
    assert!(
        reads.iter().all(|(_, metadata_only)| *metadata_only),
        "an unlabelled Secret's data was read: {reads:?}"
    );
    assert_eq!(avi_requests(&sim), 0, "no request to Avi");
    assert_eq!(cluster.replicas(), Some(1), "the replica count is held");

    // 2. Labelled: the same autoscaler scales.
    cluster.kubectl_ok(
        &[
            "label",
            "secret",
            "avi-basic-auth",
            "-n",
            NAMESPACE,
            &format!("{CREDENTIALS_LABEL}=true"),
        ],
        None,
    );
    cluster.wait_replicas(4).await;
    cluster
        .wait_reason("ScalingActive", "ValidMetricFound")
        .await;
    assert!(
        secret_reads(&cluster, "unlabelled")
            .iter()
            .any(|(name, metadata_only)| name == "avi-basic-auth" && !metadata_only),
        "the labelled Secret is read in full"
    );
    assert!(operator.stop().success());

    // 3. An endpoint outside --allowed-endpoints (avi-sim listens on 127.0.0.1): refused
    //    before any request to it.
    sim.handle().reset_counters();
    let operator = Operator::start(
        &cluster,
        "allow-list",
        &[
            ALLOW_INLINE,
            "--allowed-endpoints",
            "10.0.0.0/8",
            "--allowed-endpoints",
            "*.example.com,fd00::/8",
        ],
    );
    let message = assert_refused(&cluster, "EndpointNotAllowed").await;
    assert!(
        message.contains(&sim.url()) && message.contains("--allowed-endpoints"),
        "{message}"
    );
    assert_eq!(avi_requests(&sim), 0, "no request to the refused endpoint");
    assert_eq!(cluster.replicas(), Some(4), "the replica count is held");
    assert!(operator.stop().success());

    // 4. insecureSkipVerify without --allow-insecure-inline: refused, naming the flag.
    cluster.patch_autoscaler(
        AUTOSCALER,
        &json!({"spec": {"controller": {"tls": {"caSecretRef": null, "insecureSkipVerify": true}}}}),
    );
    sim.handle().reset_counters();
    let operator = Operator::start(&cluster, "insecure", &[ALLOW_INLINE]);
    // The status still shows step 3's refusal: wait for this one's message.
    let message = cluster
        .wait("EndpointNotAllowed naming --allow-insecure-inline", |c| {
            c.condition("ScalingActive")
                .filter(|(s, r, m)| {
                    s == "False"
                        && r == "EndpointNotAllowed"
                        && m.contains("--allow-insecure-inline")
                })
                .map(|(_, _, m)| m)
        })
        .await;
    assert!(message.contains("insecureSkipVerify"), "{message}");
    assert_eq!(avi_requests(&sim), 0, "no request without verification");
    assert!(operator.stop().success());
}
