//! End-to-end: the real `avi-autoscaler run` binary under faults that must stay local. An
//! endpoint streaming 1 GiB, a controller that accepts connections and never answers, an
//! AviAutoscaler the operator cannot decode, and a thousand deletions: each must cost a
//! bounded amount of memory, time or state, and never stop the other autoscalers.

use std::time::{Duration, Instant};

use avi_sim::{FaultKind, FaultSpec, RunningSim, Scenario, Sim, SimConfig};
use e2e::{
    ALLOW_INLINE, AUTOSCALER, Cluster, NAMESPACE, Operator, kuard_autoscaler, kuard_manifests,
};
use serde_json::{Value, json};
use testkit::ObjectRef;

const PASSWORD: &str = "s3cret-faults";
const AAS_VERSION: &str = "autoscaling.avi.dev/v1alpha1";
const AAS_KIND: &str = "AviAutoscaler";
/// The memory the operator may use, whatever a controller sends.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// A paused seed controller and the seed setup pointed at it, with `spec` merged in.
async fn seed(cluster: &Cluster, spec: Value) -> RunningSim {
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec));
    drop(e2e::sync_pool_members(cluster, &sim));
    sim
}

/// Polls `condition` every 50 ms until it holds, failing after `within` with `what`.
async fn poll_until<T>(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = condition() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The AviAutoscaler `name` in the seed namespace: the seed's, pointed at `sim`, with `spec`.
fn autoscaler(sim: &RunningSim, name: &str, spec: &Value) -> Value {
    let mut aas = kuard_autoscaler(sim, spec);
    aas["metadata"] = json!({"name": name, "namespace": NAMESPACE});
    aas
}

fn aas_ref(name: &str) -> ObjectRef {
    ObjectRef::namespaced(AAS_VERSION, AAS_KIND, NAMESPACE, name)
}

/// Samples a process's RSS every 10 ms on a thread of its own, keeping the peak.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                peak = peak.max(rss);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        RssSampler { stop, thread }
    }

    /// Stops sampling; the peak RSS in KiB.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the sampler ends")
    }
}

/// The number of series (sample lines) in the operator's `/metrics`.
async fn series(operator: &Operator) -> usize {
    let (status, body) = e2e::http_get(&operator.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_cut_at_the_limit_and_memory_stays_bounded() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = seed(&cluster, json!({"pollingIntervalSeconds": 1})).await;
    sim.handle()
        .add_fault(
            FaultSpec::new(FaultKind::HugeBody)
                .times(1_000_000)
                .on_path("/api/analytics/prometheus-metrics/"),
        )
        .await
        .expect("a fault");
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    let sampler = RssSampler::start(operator.pid());

    let message = cluster
        .wait_reason("ScalingActive", "AviResponseTooLarge")
        .await;
    assert!(message.contains("larger than"), "{message}");
    // Three polls, each met by a 1 GiB answer (then the endpoint's breaker opens).
    let metrics_path = "GET /api/analytics/prometheus-metrics/pool";
    poll_until("three huge answers", e2e::DEADLINE, || {
        (sim.handle().counters().requests(metrics_path) >= 3).then_some(())
    })
    .await;
    let peak = sampler.stop();
    eprintln!("huge body: peak RSS {peak} KiB");
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB while the controller streamed 1 GiB answers"
    );
    assert_eq!(
        cluster.replicas(),
        Some(1),
        "nothing is scaled on part of an answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_controller_does_not_delay_a_healthy_one() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let interval = 2;
    let sim = seed(&cluster, json!({"pollingIntervalSeconds": interval})).await;
    // Accepts TCP connections (the kernel completes the handshake) and never reads or answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let dead = format!("https://{}", blackhole.local_addr().expect("bound"));
    for i in 0..24 {
        // Each on a workload of its own: on kuard's they would hold as AmbiguousTarget and
        // never poll the dead controller.
        let name = format!("dead-{i}");
        cluster
            .kube
            .store()
            .create(e2e::deployment(NAMESPACE, &name))
            .expect("deployment");
        let mut aas = autoscaler(
            &sim,
            &name,
            &json!({"pollingIntervalSeconds": 1, "controller": {"timeoutSeconds": 1}}),
        );
        aas["spec"]["controller"]["endpoints"] = json!([dead]);
        aas["spec"]["scaleTargetRef"]["name"] = json!(name);
        cluster.kube.store().create(aas).expect("created");
    }
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    cluster.wait_reason("Ready", "Active").await;
    cluster
        .wait_reason_of("dead-0", "ScalingActive", "AviUnreachable")
        .await;

    // The healthy controller's load steps up: its autoscaler reacts within one interval + 1 s.
    let step = Instant::now();
    sim.handle()
        .set_elapsed(300.0)
        .await
        .expect("the clock moves");
    cluster.wait_replicas(4).await;
    let reaction = step.elapsed();
    eprintln!("blackhole: the healthy autoscaler reacted in {reaction:?}");
    assert!(
        reaction <= Duration::from_secs(interval + 1),
        "the healthy autoscaler took {reaction:?} (interval {interval} s); logs: {:?}",
        operator.logs().iter().rev().take(20).collect::<Vec<_>>()
    );
    // The dead endpoint's breaker opens once a poll's retry rounds have all failed.
    let deadline = Instant::now() + e2e::DEADLINE;
    loop {
        let (status, body) = e2e::http_get(&operator.metrics_addr(), "/metrics").await;
        assert_eq!(status, 200);
        if body
            .lines()
            .any(|l| l.starts_with("avi_autoscaler_avi_circuit_open{") && l.ends_with(" 1"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no open circuit in /metrics:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(blackhole);
}

/// The CRD as shipped before its int32 fields had a `maximum`: only `format: int32` bounds
/// `maxReplicas`, which API servers before 1.36 do not enforce.
fn crd_without_max_replicas_maximum() -> Value {
    let path = e2e::workspace_root().join("config/crd/aviautoscalers.autoscaling.avi.dev.yaml");
    let text = std::fs::read_to_string(path).expect("the CRD is checked in");
    let mut crd: Value = serde_yaml::from_str(&text).expect("the CRD is YAML");
    for v in crd["spec"]["versions"].as_array_mut().expect("versions") {
        if let Some(max) = v
            .pointer_mut("/schema/openAPIV3Schema/properties/spec/properties/maxReplicas")
            .and_then(Value::as_object_mut)
        {
            max.remove("maximum");
        }
    }
    crd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_object_is_reported_and_the_others_keep_scaling() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.kube.set_pre_1_36_validation(true);
    cluster
        .kube
        .store()
        .create(crd_without_max_replicas_maximum())
        .expect("the CRD is accepted");
    let spec = json!({"pollingIntervalSeconds": 1});
    let sim = seed(&cluster, spec.clone()).await;
    let good: Vec<String> = (0..99).map(|i| format!("good-{i}")).collect();
    for name in &good {
        cluster
            .kube
            .store()
            .create(autoscaler(&sim, name, &spec))
            .expect("created");
    }
    let mut bad = autoscaler(&sim, "too-big", &spec);
    bad["spec"]["maxReplicas"] = json!(2_147_483_648_i64);
    cluster
        .kube
        .store()
        .create(bad)
        .expect("stored, as an API server before 1.36 stores it");

    let _operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    let message = cluster
        .wait_reason_of("too-big", "ScalingActive", "InvalidSpec")
        .await;
    assert!(message.contains("2147483648"), "{message}");
    cluster.wait_event_of("too-big", "InvalidSpec").await;
    let all: Vec<&str> = std::iter::once(AUTOSCALER)
        .chain(good.iter().map(String::as_str))
        .collect();
    cluster
        .wait("all 100 good autoscalers reconciled", |c| {
            all.iter()
                .all(|n| c.condition_of(n, "Ready").is_some())
                .then_some(())
        })
        .await;
    // They keep scaling: the load steps up and the Deployment follows.
    sim.handle()
        .set_elapsed(300.0)
        .await
        .expect("the clock moves");
    cluster.wait_replicas(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_thousand_objects_leaves_nothing_behind() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let spec = json!({"pollingIntervalSeconds": 1});
    let sim = seed(&cluster, spec.clone()).await;
    let operator = Operator::start(&cluster, "operator", &[ALLOW_INLINE]);
    cluster.wait_reason("Ready", "Active").await;
    let idle_series = series(&operator).await;

    let names: Vec<String> = (0..1000).map(|i| format!("tenant-{i}")).collect();
    // One reconcile each is what this test needs; a long interval keeps 1000 objects from
    // asking for 1000 reconciles a second.
    let tenant_spec = json!({"pollingIntervalSeconds": 300});
    let mut rss_after = Vec::new();
    // Two rounds: the first warms the allocator and caches up; the second must end where the
    // first did.
    for round in 0..2 {
        for name in &names {
            cluster
                .kube
                .store()
                .create(autoscaler(&sim, name, &tenant_spec))
                .expect("created");
        }
        cluster
            .wait("1000 autoscalers reconciled", |c| {
                let with_status = c
                    .kube
                    .store()
                    .list(AAS_VERSION, AAS_KIND, Some(NAMESPACE))
                    .iter()
                    .filter(|o| o.pointer("/status/conditions").is_some())
                    .count();
                (with_status == names.len() + 1).then_some(())
            })
            .await;
        let busy = series(&operator).await;
        assert!(busy > idle_series + 1000, "{busy} series with 1000 objects");
        for name in &names {
            cluster
                .kube
                .store()
                .delete(&aas_ref(name))
                .expect("deleted");
        }
        let deadline = Instant::now() + e2e::DEADLINE;
        let mut now_series = series(&operator).await;
        while now_series.abs_diff(idle_series) * 10 > idle_series {
            assert!(
                Instant::now() < deadline,
                "round {round}: {now_series} series after deleting, {idle_series} at idle"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            now_series = series(&operator).await;
        }
        rss_after.push(operator.rss_kib().expect("the operator runs"));
    }
    let (first, second) = (rss_after[0], rss_after[1]);
    eprintln!(
        "1000 deletions: {idle_series} series at idle; RSS {first} KiB after round 1, {second} KiB after round 2"
    );
    assert!(
        second.abs_diff(first) * 10 <= first,
        "RSS after the first round {first} KiB, after the second {second} KiB"
    );
    // A debug build holding 1,000 objects' watch caches: the bound is the relative one above;
    // this one only catches a runaway.
    assert!(second < 2 * RSS_LIMIT_KIB, "{second} KiB");
}
