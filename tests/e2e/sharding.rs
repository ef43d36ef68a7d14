//! End-to-end: the real `avi-autoscaler run` binary split into shards over 1,000 AviAutoscalers.
//!
//! - Two shards (and a standby for shard 0): every object is managed by exactly one shard, the
//!   one `fnv1a64("<namespace>/<name>") mod 2` names; the request log shows each object's
//!   writes coming from that shard's leader only, `status.shard` says which, and `/metrics`
//!   counts each shard's objects. Cross-shard ownership still holds: every object on kuard's
//!   Deployment, whichever shard it is in, defers to the older `kuard`.
//! - The leader of shard 0 is killed (SIGKILL): the standby takes over shard 0's Lease within
//!   one lease duration (plus the lease manager's retry jitter of at most 1 s), then acts on
//!   shard 0's objects.
//! - The shard count changes from 2 to 3 as a rolling update does it: the three new processes
//!   start while the two old leaders still run, then the old ones stop one by one. While both
//!   counts are live, no object is written by two processes: each object's writes during the
//!   change come only from its new shard, and every object ends up in it.
//! - `--selector` goes to the API server with the watch: only matching objects are managed.
//! - Bad shard flags (an index out of range, a count of 0, a malformed selector) stop the
//!   process at start with the reason.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use avi_sim::{RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, AUTOSCALER, Cluster, NAMESPACE, Operator, kuard_autoscaler};
use serde_json::{Value, json};
use testkit::RequestRecord;

const PASSWORD: &str = "s3cret-sharding";
const AAS_VERSION: &str = "autoscaling.avi.dev/v1alpha1";
const AAS_KIND: &str = "AviAutoscaler";
const OBJECTS: usize = 1000;
/// The polling interval of the 1,000 objects: long enough to keep a loaded machine calm, short
/// enough that two processes acting on one object would rewrite its status within the test.
const INTERVAL: u64 = 20;
/// A short lease, so the handover is quick.
const LEASE_SECONDS: u64 = 4;
const LEASE_NAMESPACE: &str = "default";

/// The shard of `namespace/name` among `count`: FNV-1a 64 of `"<namespace>/<name>"` modulo the
/// count, as docs/sharding.md specifies it.
fn shard_of(namespace: &str, name: &str, count: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{namespace}/{name}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % count
}

fn names() -> Vec<String> {
    std::iter::once(AUTOSCALER.to_owned())
        .chain((0..OBJECTS).map(|i| format!("obj-{i:04}")))
        .collect()
}

/// `avi-autoscaler run` as shard `index` of `count`, with a short lease.
fn shard(cluster: &Cluster, identity: &str, index: u32, count: u32) -> Operator {
    let (index, count) = (index.to_string(), count.to_string());
    let lease = LEASE_SECONDS.to_string();
    Operator::start(
        cluster,
        identity,
        &[
            ALLOW_INLINE,
            "--leader-election",
            "--lease-namespace",
            LEASE_NAMESPACE,
            "--lease-duration-seconds",
            &lease,
            "--lease-renew-grace-seconds",
            "2",
            "--shard-count",
            &count,
            "--shard-index",
            &index,
            "--log-level",
            "info",
        ],
    )
}

fn lease(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster.get("coordination.k8s.io/v1", "Lease", LEASE_NAMESPACE, name)
}

/// Waits until `identity` holds Lease `name` and has written `count` on it.
async fn wait_lease(cluster: &Cluster, name: &str, identity: &str, count: u32) {
    cluster
        .wait(
            &format!("{identity} holding {name} for {count} shards"),
            |c| {
                let lease = lease(c, name)?;
                (lease.pointer("/spec/holderIdentity")? == identity
                    && lease.pointer("/metadata/annotations/autoscaling.avi.dev~1shard-count")?
                        == &json!(count.to_string()))
                    .then_some(())
            },
        )
        .await;
}

/// `status.shard` of every AviAutoscaler, by name.
fn status_shards(cluster: &Cluster) -> BTreeMap<String, Option<i64>> {
    cluster
        .kube
        .store()
        .list(AAS_VERSION, AAS_KIND, Some(NAMESPACE))
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                o.pointer("/status/shard").and_then(Value::as_i64),
            )
        })
        .collect()
}

/// Waits until every object's `status.shard` is its shard among `count`.
async fn wait_all_in_shards(cluster: &Cluster, count: u64) {
    let names = names();
    let result = cluster
        .kube
        .wait_for(
            |_| {
                let shards = status_shards(cluster);
                names.iter().all(|n| {
                    shards.get(n).copied().flatten() == Some(shard_of(NAMESPACE, n, count) as i64)
                })
            },
            Duration::from_secs(180),
        )
        .await;
    if result.is_err() {
        let wrong: Vec<_> = status_shards(cluster)
            .into_iter()
            .filter(|(n, s)| *s != Some(shard_of(NAMESPACE, n, count) as i64))
            .take(10)
            .collect();
        panic!("objects not in their shard of {count}: {wrong:?}");
    }
}

/// The AviAutoscaler and scale writes of the operators in `requests`, by object name: the
/// clients that made them, in order.
fn writers(requests: &[RequestRecord]) -> BTreeMap<String, Vec<String>> {
    let prefix =
        format!("/apis/autoscaling.avi.dev/v1alpha1/namespaces/{NAMESPACE}/aviautoscalers/");
    let mut by_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in requests {
        if !matches!(r.method.as_str(), "PATCH" | "PUT" | "POST") || r.status >= 300 {
            continue;
        }
        let object = if let Some(rest) = r.path.strip_prefix(&prefix) {
            rest.split('/').next().map(str::to_owned)
        } else if r.path.ends_with("/scale") {
            Some(format!("scale:{}", r.path))
        } else {
            None
        };
        // The test's own changes (kubectl) are not the operators'.
        if let (Some(object), Some(client)) =
            (object, r.client.as_ref().filter(|c| *c != "kubectl"))
        {
            by_object.entry(object).or_default().push(client.clone());
        }
    }
    by_object
}

/// The value of the first sample of `metric` whose labels contain `labels`, from `/metrics`.
async fn sample(operator: &Operator, metric: &str, labels: &str) -> Option<f64> {
    let (status, body) = e2e::http_get(&operator.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| l.starts_with(metric) && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn reconciles(operator: &Operator, result: &str) -> f64 {
    sample(
        operator,
        "avi_autoscaler_reconciliations_total",
        &format!("result=\"{result}\""),
    )
    .await
    .unwrap_or(0.0)
}

/// Polls `condition` every 100 ms until it holds, failing after `within` with `what`.
async fn poll_until(what: &str, within: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The seed setup on a paused controller, and the 1,000 objects on kuard's Deployment.
async fn setup(cluster: &Cluster) -> RunningSim {
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    cluster.apply(&e2e::kuard_manifests(
        &sim,
        PASSWORD,
        &json!({"pollingIntervalSeconds": INTERVAL}),
    ));
    for name in names().iter().skip(1) {
        let mut aas = kuard_autoscaler(&sim, &json!({"pollingIntervalSeconds": INTERVAL}));
        aas["metadata"] = json!({"name": name, "namespace": NAMESPACE});
        cluster.kube.store().create(aas).expect("created");
    }
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_objects_hand_over_on_a_crash_and_move_without_overlap() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let _sim = setup(&cluster).await;
    let all = names();
    let in_shard = |index: u64, count: u64| {
        all.iter()
            .filter(|n| shard_of(NAMESPACE, n, count) == index)
            .count()
    };

    // Two shards; shard 0 starts first so that its standby finds the Lease taken.
    let s0a = shard(&cluster, "s0a", 0, 2);
    wait_lease(&cluster, "avi-autoscaler-0", "s0a", 2).await;
    let s0b = shard(&cluster, "s0b", 0, 2);
    let s1 = shard(&cluster, "s1", 1, 2);
    wait_lease(&cluster, "avi-autoscaler-1", "s1", 2).await;
    wait_all_in_shards(&cluster, 2).await;

    // Every object was written by exactly one process: its shard's leader.
    let phase1 = writers(&cluster.kube.requests());
    for name in &all {
        let expected = ["s0a", "s1"][shard_of(NAMESPACE, name, 2) as usize];
        let clients = phase1.get(name).cloned().unwrap_or_default();
        assert!(
            !clients.is_empty() && clients.iter().all(|c| c == expected),
            "{name} (shard {} of 2) was written by {clients:?}",
            shard_of(NAMESPACE, name, 2)
        );
    }
    assert!(
        phase1.keys().all(|k| !k.starts_with("scale:")),
        "nothing may scale kuard: {phase1:?}"
    );
    // Ownership spans shards: each object defers to the older kuard, wherever kuard is.
    for name in all.iter().skip(1).step_by(97) {
        let (_, reason, message) = cluster
            .condition_of(name, "AbleToScale")
            .unwrap_or_else(|| panic!("{name} has no AbleToScale"));
        assert_eq!(reason, "AmbiguousTarget", "{name}: {message}");
        assert!(message.contains(AUTOSCALER), "{name}: {message}");
    }
    // /metrics: each process counts the objects of its shard.
    for (operator, index) in [(&s0a, 0), (&s0b, 0), (&s1, 1)] {
        let expected = in_shard(index, 2) as f64;
        poll_until(
            &format!("{}'s shard object count {expected}", operator.client),
            e2e::DEADLINE,
            async || {
                sample(
                    operator,
                    "avi_autoscaler_shard_objects",
                    &format!("shard=\"{index}\""),
                )
                .await
                    == Some(expected)
            },
        )
        .await;
    }
    eprintln!(
        "2 shards: {} and {} objects; RSS s0a {:?} KiB, s0b {:?} KiB, s1 {:?} KiB",
        in_shard(0, 2),
        in_shard(1, 2),
        s0a.rss_kib(),
        s0b.rss_kib(),
        s1.rss_kib()
    );

    // Shard 0's leader crashes: the standby holds the Lease and acts within one lease duration
    // (plus up to 1 s the lease manager waits after clearing an expired Lease, and one tick of
    // the probe object).
    let probe = all
        .iter()
        .find(|n| n.starts_with("obj-") && shard_of(NAMESPACE, n, 2) == 0)
        .expect("an object in shard 0")
        .clone();
    cluster.patch_autoscaler(&probe, &json!({"spec": {"pollingIntervalSeconds": 1}}));
    let generation = cluster
        .autoscaler_named(&probe)
        .and_then(|o| o.pointer("/metadata/generation")?.as_i64())
        .expect("a generation");
    cluster
        .wait("s0a reconciling the probe's new spec", |c| {
            (c.autoscaler_named(&probe)?
                .pointer("/status/observedGeneration")?
                .as_i64()?
                == generation)
                .then_some(())
        })
        .await;
    let killed_at = Instant::now();
    s0a.kill();
    let after_kill = cluster.kube.last_request_seq();
    cluster.patch_autoscaler(&probe, &json!({"spec": {"maxReplicas": 6}}));
    // The handover is the Lease changing hands: from then on the standby manages shard 0.
    wait_lease(&cluster, "avi-autoscaler-0", "s0b", 2).await;
    let handover = killed_at.elapsed();
    // The lease expires at most one lease duration after the kill; the lease manager then
    // clears it and waits 0.1–1 s before taking it (and up to 1 s more for a loaded machine).
    let bound = Duration::from_secs(LEASE_SECONDS + 1 + 1);
    assert!(
        handover <= bound,
        "the standby took the Lease {handover:?} after the kill (lease {LEASE_SECONDS} s, bound {bound:?})"
    );
    cluster
        .wait(&format!("the standby reconciling {probe}"), |c| {
            (c.autoscaler_named(&probe)?
                .pointer("/status/observedGeneration")?
                .as_i64()?
                == generation + 1)
                .then_some(())
        })
        .await;
    // The first tick after the handover reconciles all of shard 0 at once; the probe may wait
    // behind that batch.
    eprintln!(
        "handover: the standby held shard 0's Lease {handover:?} after the kill and acted on the probe after {:?}",
        killed_at.elapsed()
    );
    let since_kill = writers(&cluster.kube.requests_since(after_kill));
    assert!(
        since_kill
            .values()
            .flatten()
            .all(|c| c == "s0b" || c == "s1"),
        "{since_kill:?}"
    );

    // 2 → 3 shards, rolling: the new processes start beside the old leaders.
    let before_change = cluster.kube.last_request_seq();
    let n2 = shard(&cluster, "n2", 2, 3);
    let n0 = shard(&cluster, "n0", 0, 3);
    let n1 = shard(&cluster, "n1", 1, 3);
    wait_lease(&cluster, "avi-autoscaler-2", "n2", 3).await;
    // Every object of shard 2 of 3 is claimed by an older Lease of 2 shards: n2 waits. Let the
    // old leaders run one more full tick of their objects beside it, so that an object acted on
    // by both would be rewritten by both.
    let s1_done = reconciles(&s1, "success").await;
    poll_until(
        "n2 looking at every object of its shard",
        e2e::DEADLINE,
        async || {
            reconciles(&n2, "shard_wait").await + reconciles(&n2, "success").await
                >= in_shard(2, 3) as f64
        },
    )
    .await;
    poll_until(
        "a full tick of s1 beside the new shards",
        e2e::DEADLINE,
        async || reconciles(&s1, "success").await >= s1_done + in_shard(1, 2) as f64,
    )
    .await;
    assert_eq!(
        reconciles(&n2, "success").await,
        0.0,
        "n2 acted on objects older shard Leases still claim"
    );

    // The old processes stop (releasing their Leases); the new ones take over.
    assert!(s0b.stop().success());
    wait_lease(&cluster, "avi-autoscaler-0", "n0", 3).await;
    assert!(s1.stop().success());
    wait_lease(&cluster, "avi-autoscaler-1", "n1", 3).await;
    wait_all_in_shards(&cluster, 3).await;

    // During the change, every object was written by its old shard's leader, then only by its
    // new shard: never by two shards at once, and never back.
    let change = writers(&cluster.kube.requests_since(before_change));
    let mut moved = 0;
    let mut wrong = Vec::new();
    for name in &all {
        let (old, new) = (shard_of(NAMESPACE, name, 2), shard_of(NAMESPACE, name, 3));
        let (before, after) = (
            ["s0b", "s1"][old as usize],
            ["n0", "n1", "n2"][new as usize],
        );
        let clients = change.get(name).cloned().unwrap_or_default();
        // The old shard's leader may still write (an object whose status changes) until it
        // stops; from the new shard's first write on, only the new shard writes.
        let handed = clients
            .iter()
            .position(|c| c == after)
            .unwrap_or(clients.len());
        if !(clients[..handed].iter().all(|c| c == before)
            && clients[handed..].iter().all(|c| c == after))
        {
            wrong.push(format!(
                "{name} (shard {old} of 2, {new} of 3) written by {clients:?}"
            ));
        }
        if old != new {
            moved += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} objects written out of order during the change, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        change.keys().all(|k| !k.starts_with("scale:")),
        "nothing may scale kuard: {change:?}"
    );
    eprintln!(
        "2 → 3 shards: {moved} of {} objects changed shard index; {} / {} / {} per shard",
        all.len(),
        in_shard(0, 3),
        in_shard(1, 3),
        in_shard(2, 3)
    );
    drop((n0, n1, n2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_limits_the_objects_to_those_it_matches() {
    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(Scenario::builtin(PASSWORD)).paused())
        .await
        .expect("avi-sim starts");
    // kuard is unlabelled; two more autoscalers on workloads of their own, one labelled.
    cluster.apply(&e2e::kuard_manifests(&sim, PASSWORD, &json!({})));
    for (name, labels) in [
        ("web", json!({"team": "web"})),
        ("shop", json!({"team": "shop"})),
    ] {
        cluster
            .kube
            .store()
            .create(e2e::deployment(NAMESPACE, name))
            .expect("deployment");
        let mut aas = kuard_autoscaler(&sim, &json!({}));
        aas["metadata"] = json!({"name": name, "namespace": NAMESPACE, "labels": labels});
        aas["spec"]["scaleTargetRef"]["name"] = json!(name);
        cluster.kube.store().create(aas).expect("created");
    }
    let operator = Operator::start(
        &cluster,
        "web-team",
        &[ALLOW_INLINE, "--selector", "team in (web)"],
    );
    // The request log records a write when its answer is sent, just after the store changed.
    cluster
        .wait("web's status written", |c| {
            writers(&c.kube.requests())
                .contains_key("web")
                .then_some(())
        })
        .await;
    assert_eq!(
        cluster
            .autoscaler_named("web")
            .and_then(|o| o.pointer("/status/shard").cloned()),
        Some(json!(0))
    );
    // The watch asked the API server for the selector; nothing else was kept or written.
    let watches: Vec<String> = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| r.client.as_deref() == Some("web-team") && r.path.ends_with("/aviautoscalers"))
        .map(|r| r.query.clone())
        .collect();
    assert!(
        !watches.is_empty() && watches.iter().all(|q| q.contains("labelSelector=team")),
        "{watches:?}"
    );
    let written = writers(&cluster.kube.requests());
    assert_eq!(written.keys().collect::<Vec<_>>(), ["web"], "{written:?}");
    assert_eq!(
        sample(&operator, "avi_autoscaler_shard_objects", "shard=\"0\"").await,
        Some(1.0)
    );
    for name in [AUTOSCALER, "shop"] {
        assert!(
            cluster
                .autoscaler_named(name)
                .and_then(|o| o.get("status").cloned())
                .is_none()
        );
    }
}

#[test]
fn bad_shard_flags_stop_the_operator_with_the_reason() {
    for (args, reason) in [
        (
            &["--shard-count", "2", "--shard-index", "2"][..],
            "--shard-index 2 is out of range",
        ),
        (&["--shard-count", "0"][..], "--shard-count"),
        (&["--selector", "team in web"][..], "must be in parentheses"),
    ] {
        let out = std::process::Command::new(e2e::workspace_bin("avi-autoscaler"))
            .arg("run")
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("avi-autoscaler runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
