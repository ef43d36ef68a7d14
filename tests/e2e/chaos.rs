//! End-to-end chaos: faults of every kind, at random, while the load moves; invariants checked
//! on every sample.
//!
//! Two `avi-autoscaler run` replicas elect a leader through the Lease. The test owns the
//! simulated Avi clock: every sample period (`CHAOS_PERIOD_MS`, default 4 s of real time) it
//! sets the pool's users to a new level and moves the clock by one 300 s bucket, so each period
//! closes exactly one fresh Avi sample. Each period it may also inject one fault, chosen with a
//! seeded RNG (`CHAOS_SEED`, default 1), dealt from a shuffled deck so every kind comes up
//! in the default run:
//!
//! - avi-sim: a 5xx answer, 503 "initialising" on every path (login included), a slow answer,
//!   a connection reset, a garbage body, a huge body, every session expired, one node down;
//! - the Kubernetes stand-in: 409 on scale or status writes, dropped watches, 410 on watches,
//!   an API server restart, failed (500) status writes;
//! - the operator: SIGKILL of the leader (a new replica with a new identity replaces it).
//!
//! After `CHAOS_MINUTES` (default 1.5) the faults stop and the load holds; the replica count must
//! reach what a fault-free run of the same engine (`avi-autoscaler simulate`) gives for that
//! load within two sample periods.
//!
//! Invariants, checked on every request the stand-in logs and on every sample:
//! - the Deployment's replicas, and every value written to `/scale`, lie in [min, max];
//! - one writer: every `/scale` and status write comes from the identity that holds the Lease
//!   at that moment (per the Lease writes in the request log), within its lease's validity; a
//!   Lease is renewed or released only by its holder and taken only when free or expired;
//! - at most one scale step per fresh Avi sample: the status a scale write is recorded with
//!   names the sample it was decided on (the pool total, unique per period); no two scale
//!   writes share one, except that a fallback write opens a new round;
//! - no scale on a failed poll except fallback: a scale write recorded with a failed metric
//!   carries the reason `FallbackActive` and writes the fallback count;
//! - the resident memory of every replica stays under `CHAOS_RSS_MIB` (default 64).
//!
//! `make chaos SEED=… MINUTES=…` runs it (release build) for longer; the summary at the end
//! counts the faults injected by kind, the checks, the scale writes and the handovers.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use api::k8s::jiff::Timestamp;
use avi_sim::{FaultKind, FaultSpec, RunningSim, Scenario, Sim, SimConfig};
use e2e::{ALLOW_INLINE, Cluster, NAMESPACE, Operator, POOL, kuard_autoscaler, kuard_manifests};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Value, json};
use testkit::{Fault, RequestRecord, Restart};

const PASSWORD: &str = "s3cret-chaos";
const MIN: i64 = 1;
const MAX: i64 = 8;
const FALLBACK: i64 = 2;
/// Lease settings of the replicas: a killed leader is replaced within 4 s.
const LEASE_SECONDS: &str = "4";
const GRACE_SECONDS: &str = "2";
const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases/avi-autoscaler";
/// The simulated seconds one period moves the clock: one Avi bucket.
const BUCKET_SECONDS: f64 = 300.0;
/// Users per replica the AverageValue target asks for.
const USERS_PER_REPLICA: f64 = 200.0;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The spec of the chaos autoscaler: polled every second, no stabilization windows and rate
/// policies that allow any step, so each fresh sample can settle the count at once.
fn spec() -> Value {
    json!({
        "minReplicas": MIN,
        "maxReplicas": MAX,
        "pollingIntervalSeconds": 1,
        "fallback": {"failureThreshold": 3, "replicas": FALLBACK},
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 1}]},
            "scaleDown": {"stabilizationWindowSeconds": 0,
                          "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}]},
        },
    })
}

/// What the invariant checker found so far.
#[derive(Debug, Default)]
struct Checker {
    /// Pool totals the test set, by period (index = the bucket's number).
    samples: Vec<f64>,
    last_seq: u64,
    holder: Option<String>,
    /// When the holder's lease ends (milliseconds since the epoch).
    holder_until: i64,
    /// Scale writes not yet matched with the status written after them, by client.
    pending: HashMap<String, (u64, i64)>,
    /// Samples acted on since the last fallback write: bucket → the scale write's seq.
    acted: HashMap<usize, u64>,
    checks: u64,
    scale_writes: u64,
    fallback_writes: u64,
    /// Scale writes whose status write never came (a killed replica, a failed status write).
    unrecorded: u64,
    handovers: u64,
    violations: Vec<String>,
}

fn time_ms(r: &RequestRecord) -> i64 {
    r.time
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

impl Checker {
    fn violate(&mut self, r: &RequestRecord, what: String) {
        self.violations.push(format!(
            "#{} {} {} by {:?}: {what}",
            r.seq, r.method, r.path, r.client
        ));
    }

    /// The bucket whose pool total is `value`.
    fn bucket_of(&self, value: f64) -> Option<usize> {
        self.samples
            .iter()
            .position(|s| (s - value).abs() <= 1e-6 * s.abs().max(1.0))
    }

    fn check(&mut self, ok: bool, r: &RequestRecord, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.violate(r, what());
        }
    }

    /// Checks one logged request, in log order.
    fn observe(&mut self, r: &RequestRecord) {
        if self.last_seq != 0 && r.seq != self.last_seq + 1 {
            self.violate(
                r,
                format!("the request log skipped from #{}", self.last_seq),
            );
        }
        self.last_seq = r.seq;
        let Some(client) = r.client.clone() else {
            return;
        };
        let is_status = r.path_matches(&format!(
            "/apis/autoscaling.avi.dev/v1alpha1/namespaces/{NAMESPACE}/aviautoscalers/*/status"
        ));
        let written = r.status < 300 && matches!(r.method.as_str(), "PATCH" | "PUT" | "POST");
        // A scale write is recorded by the status write that follows it in the same
        // reconcile; when that one fails, the scale write stays unrecorded.
        let recorded = if is_status && r.method == "PATCH" {
            let pending = self.pending.remove(&client);
            if pending.is_some() && !written {
                self.unrecorded += 1;
            }
            pending.filter(|_| written)
        } else {
            None
        };
        if !written {
            return;
        }
        let body = r.body_json().unwrap_or(Value::Null);
        let now = time_ms(r);
        if r.path == LEASE_PATH {
            self.observe_lease(r, &client, &body, now);
        } else if r.path_matches(&format!(
            "/apis/apps/v1/namespaces/{NAMESPACE}/deployments/*/scale"
        )) {
            self.check_writer(r, &client, now);
            let replicas = body.pointer("/spec/replicas").and_then(Value::as_i64);
            self.check(
                replicas.is_some_and(|n| (MIN..=MAX).contains(&n)),
                r,
                || format!("scale write of {replicas:?} outside [{MIN}, {MAX}]"),
            );
            self.scale_writes += 1;
            if self
                .pending
                .insert(client, (r.seq, replicas.unwrap_or(-1)))
                .is_some()
            {
                self.unrecorded += 1;
            }
        } else if is_status {
            self.check_writer(r, &client, now);
            if let Some((seq, replicas)) = recorded {
                self.observe_recorded_scale(r, &body, seq, replicas);
            }
        }
    }

    fn observe_lease(&mut self, r: &RequestRecord, client: &str, body: &Value, now: i64) {
        let named = body.pointer("/spec/holderIdentity");
        let ours = self.holder.as_deref() == Some(client);
        let (holder, until) = (self.holder.clone(), self.holder_until);
        match named {
            Some(Value::Null) => {
                self.check(ours, r, || format!("released a lease held by {holder:?}"));
                self.holder = None;
            }
            Some(Value::String(h)) => {
                self.check(h == client, r, || format!("wrote {h:?} as the holder"));
                let free = self.holder.is_none() || now > self.holder_until;
                self.check(ours || free, r, || {
                    format!(
                        "took the lease of {holder:?}, valid for {} ms more",
                        until - now
                    )
                });
                if !ours {
                    self.handovers += 1;
                    // A scale write of the old holder is no longer recorded by it.
                    self.unrecorded += self.pending.len() as u64;
                    self.pending.clear();
                }
                let renewed = body
                    .pointer("/spec/renewTime")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .map_or(now, |t| t.as_millisecond());
                let seconds = body
                    .pointer("/spec/leaseDurationSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                self.holder = Some(h.clone());
                self.holder_until = renewed + seconds * 1000;
            }
            // Other changes (labels, a first empty Lease) name no holder.
            _ => {}
        }
    }

    fn check_writer(&mut self, r: &RequestRecord, client: &str, now: i64) {
        let holder = self.holder.clone();
        let until = self.holder_until;
        self.check(holder.as_deref() == Some(client), r, || {
            format!("a second writer: the lease is held by {holder:?}")
        });
        self.check(now <= until, r, || {
            format!("written {} ms after the writer's lease ended", now - until)
        });
    }

    /// A scale write (`seq`, `replicas`) and the status its writer recorded it with.
    fn observe_recorded_scale(&mut self, r: &RequestRecord, body: &Value, seq: u64, replicas: i64) {
        let status = &body["status"];
        let fallback = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["reason"] == "FallbackActive");
        if fallback {
            self.fallback_writes += 1;
            self.check(replicas == FALLBACK.clamp(MIN, MAX), r, || {
                format!("fallback write #{seq} of {replicas}, not {FALLBACK}")
            });
            self.acted.clear();
            return;
        }
        let value = status
            .pointer("/currentMetrics/0/value")
            .and_then(Value::as_f64);
        let failed = status
            .pointer("/currentMetrics/0/error")
            .is_some_and(|e| !e.is_null());
        let Some(value) = value.filter(|_| !failed) else {
            self.check(false, r, || {
                format!("scale write #{seq} on a failed poll, without fallback: {status}")
            });
            return;
        };
        let Some(bucket) = self.bucket_of(value) else {
            self.check(false, r, || {
                format!("scale write #{seq} on a sample the test never set: {value}")
            });
            return;
        };
        let before = self.acted.insert(bucket, seq);
        self.check(before.is_none(), r, || {
            format!(
                "scale write #{seq} is a second step on sample {bucket} (first: #{})",
                before.unwrap_or(0)
            )
        });
    }
}

/// What the chaos test injected, by kind.
#[derive(Debug, Default)]
struct Injected(BTreeMap<&'static str, u64>);

impl Injected {
    fn add(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_default() += 1;
    }
}

/// A fault the chaos test injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Chaos {
    Avi5xx,
    AviInitialising,
    AviSlow,
    AviReset,
    AviGarbage,
    AviHugeBody,
    AviSessionExpiry,
    AviNodeDown,
    KubeConflict,
    KubeDroppedWatches,
    KubeGone,
    KubeRestart,
    KubeStatusWriteFailure,
    OperatorKill,
}

impl Chaos {
    const ALL: [Chaos; 14] = [
        Chaos::Avi5xx,
        Chaos::AviInitialising,
        Chaos::AviSlow,
        Chaos::AviReset,
        Chaos::AviGarbage,
        Chaos::AviHugeBody,
        Chaos::AviSessionExpiry,
        Chaos::AviNodeDown,
        Chaos::KubeConflict,
        Chaos::KubeDroppedWatches,
        Chaos::KubeGone,
        Chaos::KubeRestart,
        Chaos::KubeStatusWriteFailure,
        Chaos::OperatorKill,
    ];

    /// Its name in the summary.
    fn name(self) -> &'static str {
        match self {
            Chaos::Avi5xx => "avi-5xx",
            Chaos::AviInitialising => "avi-503-initialising",
            Chaos::AviSlow => "avi-slow",
            Chaos::AviReset => "avi-reset",
            Chaos::AviGarbage => "avi-garbage",
            Chaos::AviHugeBody => "avi-huge-body",
            Chaos::AviSessionExpiry => "avi-session-expiry",
            Chaos::AviNodeDown => "avi-node-down",
            Chaos::KubeConflict => "kube-409",
            Chaos::KubeDroppedWatches => "kube-dropped-watches",
            Chaos::KubeGone => "kube-410",
            Chaos::KubeRestart => "kube-restart",
            Chaos::KubeStatusWriteFailure => "kube-status-write-failure",
            Chaos::OperatorKill => "operator-sigkill",
        }
    }
}

struct Run {
    cluster: Cluster,
    sim: RunningSim,
    replicas: Vec<Operator>,
    next_identity: usize,
    checker: Checker,
    injected: Injected,
    rss_peak_kib: u64,
    rss_bound_kib: u64,
    samples_checked: u64,
    down_node: Option<(usize, usize)>,
}

impl Run {
    fn start_replica(&mut self) {
        let identity = format!("replica-{}", self.next_identity);
        self.next_identity += 1;
        let args = [
            ALLOW_INLINE,
            "--leader-election",
            "--lease-namespace",
            "default",
            "--lease-duration-seconds",
            LEASE_SECONDS,
            "--lease-renew-grace-seconds",
            GRACE_SECONDS,
            "--avi-max-response-bytes",
            "1048576",
        ];
        self.replicas
            .push(Operator::start(&self.cluster, &identity, &args));
    }

    fn lease_holder(&self) -> Option<String> {
        self.cluster.lease_holder()
    }

    /// Feeds the new requests to the checker and samples replicas and memory.
    fn sample(&mut self) {
        for r in self.cluster.kube.requests_since(self.checker.last_seq) {
            self.checker.observe(&r);
        }
        self.samples_checked += 1;
        let replicas = self.cluster.replicas();
        self.checker.checks += 1;
        if !replicas.is_some_and(|n| (MIN..=MAX).contains(&n)) {
            self.checker.violations.push(format!(
                "sample {}: the Deployment has {replicas:?} replicas",
                self.samples_checked
            ));
        }
        for op in &self.replicas {
            if let Some(kib) = op.rss_kib() {
                self.rss_peak_kib = self.rss_peak_kib.max(kib);
                self.checker.checks += 1;
                if kib > self.rss_bound_kib {
                    self.checker.violations.push(format!(
                        "{} uses {kib} KiB, over {} KiB",
                        op.client, self.rss_bound_kib
                    ));
                }
            }
        }
    }

    async fn avi_fault(&self, spec: FaultSpec) {
        self.sim
            .handle()
            .add_fault(spec)
            .await
            .expect("avi-sim takes the fault");
    }

    async fn inject(&mut self, kind: Chaos, rng: &mut StdRng, period: usize) {
        let times = rng.random_range(1..=4u64);
        match kind {
            Chaos::Avi5xx => {
                let status = [500, 502, 504][rng.random_range(0..3)];
                self.avi_fault(FaultSpec::error(status, times).on_path("/api/analytics/"))
                    .await;
            }
            Chaos::AviInitialising => {
                let mut f = FaultSpec::error(503, times);
                f.message = Some("Controller is initializing".into());
                self.avi_fault(f).await;
            }
            Chaos::AviSlow => {
                let ms = rng.random_range(200..=3000u64);
                self.avi_fault(
                    FaultSpec::new(FaultKind::Latency)
                        .delay_ms(ms)
                        .times(times)
                        .on_path("/api/analytics/"),
                )
                .await;
            }
            Chaos::AviReset => {
                self.avi_fault(
                    FaultSpec::new(FaultKind::Reset)
                        .times(times)
                        .on_path("/api/analytics/"),
                )
                .await
            }
            Chaos::AviGarbage => {
                self.avi_fault(
                    FaultSpec::new(FaultKind::Malformed)
                        .times(times)
                        .on_path("/api/analytics/"),
                )
                .await
            }
            Chaos::AviHugeBody => {
                self.avi_fault(
                    FaultSpec::new(FaultKind::HugeBody)
                        .bytes(64 << 20)
                        .times(1)
                        .on_path("/api/analytics/"),
                )
                .await
            }
            Chaos::AviSessionExpiry => {
                self.sim.handle().expire_sessions();
            }
            Chaos::AviNodeDown => {
                if self.down_node.is_some() {
                    return;
                }
                let node = rng.random_range(0..2usize);
                self.sim
                    .handle()
                    .set_node_up(node, false)
                    .await
                    .expect("a node goes down");
                self.down_node = Some((node, period + rng.random_range(1..=3usize)));
            }
            Chaos::KubeConflict => {
                let path = if rng.random_bool(0.5) {
                    "*/scale"
                } else {
                    "*/status"
                };
                self.cluster.kube.inject(
                    Fault::status(409)
                        .method("PATCH")
                        .path(path)
                        .times(times as u32),
                );
            }
            Chaos::KubeDroppedWatches => {
                self.cluster.kube.drop_watches();
            }
            Chaos::KubeGone => {
                self.cluster
                    .kube
                    .inject(Fault::status(410).watches().times(times as u32));
                self.cluster.kube.drop_watches();
            }
            Chaos::KubeRestart => {
                let down_for = Duration::from_millis(rng.random_range(100..=1500u64));
                self.cluster
                    .kube
                    .restart(Restart {
                        down_for,
                        keep_history: rng.random_bool(0.5),
                    })
                    .await
                    .expect("the stand-in restarts");
            }
            Chaos::KubeStatusWriteFailure => {
                self.cluster.kube.inject(
                    Fault::status(500)
                        .method("PATCH")
                        .path("*/status")
                        .times(times as u32),
                );
            }
            Chaos::OperatorKill => {
                let holder = self.lease_holder();
                let Some(i) = self
                    .replicas
                    .iter()
                    .position(|o| Some(&o.client) == holder.as_ref())
                else {
                    return;
                };
                self.replicas.remove(i).kill();
                self.start_replica();
            }
        }
        self.injected.add(kind.name());
    }

    /// Ends every fault: removes the injected rules and brings a node that is down back up.
    async fn stop_faults(&mut self) {
        self.sim.handle().clear_faults();
        self.cluster.kube.clear_faults();
        if let Some((node, _)) = self.down_node.take() {
            self.sim
                .handle()
                .set_node_up(node, true)
                .await
                .expect("the node comes back");
        }
    }
}

/// The pool total of period `k` for a load of `replicas` × 200 users: a little under the
/// level, plus a fraction unique to the period so each sample can be told apart.
fn pool_total(level: i64, k: usize) -> f64 {
    level as f64 * USERS_PER_REPLICA - 100.0 + (k as f64) / 1000.0
}

/// What a fault-free run of the engine gives for a constant pool total, from `initial`
/// replicas: `avi-autoscaler simulate` over the same spec.
fn fault_free_replicas(sim: &RunningSim, dir: &std::path::Path, total: f64, initial: i64) -> i64 {
    let mut autoscaler = kuard_autoscaler(sim, &spec());
    autoscaler
        .as_object_mut()
        .expect("an object")
        .remove("status");
    autoscaler["metadata"]["generation"] = json!(1);
    let scenario = json!({
        "autoscaler": autoscaler,
        "startTime": "2026-01-01T00:00:00Z",
        "initialReplicas": initial,
        "readyDelaySeconds": 0,
        "durationSeconds": 30,
        "metrics": [{"series": [{"at": 0, "value": total}]}],
    });
    let path = dir.join("fault-free.json");
    std::fs::write(&path, scenario.to_string()).expect("writing the scenario");
    let out = std::process::Command::new(e2e::workspace_bin("avi-autoscaler"))
        .args(["simulate", "--format", "json", "--scenario"])
        .arg(&path)
        .output()
        .expect("avi-autoscaler simulate runs");
    assert!(
        out.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ticks: Vec<Value> = serde_json::from_slice(&out.stdout).expect("simulate prints JSON");
    ticks
        .last()
        .and_then(|t| t["desiredReplicas"].as_i64())
        .expect("the last tick has a desired count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_random_while_the_load_moves_break_no_invariant() {
    let seed: u64 = env_or("CHAOS_SEED", 1);
    let minutes: f64 = env_or("CHAOS_MINUTES", 1.5);
    let period = Duration::from_millis(env_or("CHAOS_PERIOD_MS", 4000));
    let rss_mib: u64 = env_or("CHAOS_RSS_MIB", 64);
    let mut rng = StdRng::seed_from_u64(seed);

    let cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.install_crd();
    let sim = Sim::start(
        SimConfig::new(Scenario::builtin(PASSWORD))
            .nodes(2)
            .paused(),
    )
    .await
    .expect("avi-sim starts");
    cluster.apply(&kuard_manifests(&sim, PASSWORD, &spec()));
    let members = e2e::sync_pool_members(&cluster, &sim);
    let mut run = Run {
        cluster,
        sim,
        replicas: Vec::new(),
        next_identity: 1,
        checker: Checker::default(),
        injected: Injected::default(),
        rss_peak_kib: 0,
        rss_bound_kib: rss_mib * 1024,
        samples_checked: 0,
        down_node: None,
    };
    // Bucket 0 (before the first period) holds no users.
    run.checker.samples.push(0.0);
    run.start_replica();
    run.start_replica();
    run.cluster
        .wait("a first status", |c| {
            c.autoscaler()?.get("status").map(|_| ())
        })
        .await;

    let started = Instant::now();
    let chaos_for = Duration::from_secs_f64(minutes * 60.0);
    let mut level = 1;
    let mut k = 0;
    // Kinds are dealt from a shuffled deck, so a short run meets every kind.
    let mut deck: Vec<Chaos> = Vec::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < chaos_for {
        tick.tick().await;
        k += 1;
        run.sample();
        if rng.random_bool(0.5) {
            level = rng.random_range(MIN..=MAX + 1);
        }
        let total = pool_total(level, k);
        run.sim
            .handle()
            .set_pool_users(POOL, total, None)
            .expect("the pool takes users");
        run.checker.samples.push(total);
        run.sim
            .handle()
            .advance(BUCKET_SECONDS)
            .await
            .expect("the clock moves");
        if let Some((node, until)) = run.down_node
            && k >= until
        {
            run.sim
                .handle()
                .set_node_up(node, true)
                .await
                .expect("the node comes back");
            run.down_node = None;
        }
        if rng.random_bool(0.8) {
            if deck.is_empty() {
                deck = Chaos::ALL.to_vec();
                deck.shuffle(&mut rng);
            }
            let kind = deck.pop().expect("a full deck");
            run.inject(kind, &mut rng, k).await;
        }
    }

    // The faults stop; the load holds at its last level (a new sample each period).
    run.stop_faults().await;
    let stopped = Instant::now();
    let initial = run.cluster.replicas().expect("the Deployment has replicas");
    let expected = fault_free_replicas(&run.sim, run.cluster.dir(), pool_total(level, k), initial);
    // Between samples, wait on the count itself, so the time to converge is measured exactly.
    let deadline = stopped + 2 * period;
    let mut converged = None;
    while Instant::now() < deadline + period {
        let next_sample = tokio::time::Instant::now() + period;
        let reached = run
            .cluster
            .kube
            .wait_for(|_| run.cluster.replicas() == Some(expected), period)
            .await;
        if reached.is_ok() {
            converged = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep_until(next_sample).await;
        k += 1;
        run.sample();
        let total = pool_total(level, k);
        run.sim
            .handle()
            .set_pool_users(POOL, total, None)
            .expect("the pool takes users");
        run.checker.samples.push(total);
        run.sim
            .handle()
            .advance(BUCKET_SECONDS)
            .await
            .expect("the clock moves");
    }
    run.sample();
    members.abort();

    let c = &run.checker;
    eprintln!(
        "chaos summary: seed {seed}, {:.1} min of faults, {k} sample periods of {} ms\n  faults injected: {} ({:?})\n  invariant checks: {} over {} samples and {} logged requests\n  scale writes: {} ({} fallback, {} without a recorded status)\n  handovers: {}\n  peak RSS: {} KiB (bound {} KiB, {} build)\n  convergence: {expected} replicas expected from {initial}, reached after {:?}",
        minutes,
        period.as_millis(),
        run.injected.0.values().sum::<u64>(),
        run.injected.0,
        c.checks,
        run.samples_checked,
        c.last_seq,
        c.scale_writes,
        c.fallback_writes,
        c.unrecorded,
        c.handovers,
        run.rss_peak_kib,
        run.rss_bound_kib,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        converged,
    );
    assert!(
        c.violations.is_empty(),
        "invariants broken:\n{}",
        c.violations.join("\n")
    );
    assert!(
        converged.is_some_and(|d| d <= 2 * period),
        "after the faults stopped the replicas did not reach the fault-free {expected} within two sample periods: {:?} (now {:?})",
        converged,
        run.cluster.replicas()
    );
    assert!(
        c.scale_writes > 0 && c.handovers > 0,
        "the run moved nothing"
    );
}

#[cfg(test)]
mod checker {
    use super::*;

    fn record(
        seq: u64,
        method: &str,
        path: &str,
        client: &str,
        body: Value,
        ms: i64,
    ) -> RequestRecord {
        RequestRecord {
            seq,
            time: Timestamp::from_millisecond(ms).expect("a time").to_string(),
            method: method.into(),
            path: path.into(),
            query: String::new(),
            content_type: None,
            accept: None,
            user_agent: None,
            client: Some(client.into()),
            body: body.to_string(),
            status: 200,
            watch: false,
            injected: false,
        }
    }

    const T0: i64 = 1_800_000_000_000;

    fn lease(seq: u64, who: &str, at: i64) -> RequestRecord {
        let renew = Timestamp::from_millisecond(at).expect("a time").to_string();
        record(
            seq,
            "PATCH",
            LEASE_PATH,
            who,
            json!({"spec": {"holderIdentity": who, "renewTime": renew, "leaseDurationSeconds": 4}}),
            at,
        )
    }

    fn scale(seq: u64, who: &str, n: i64, at: i64) -> RequestRecord {
        record(
            seq,
            "PATCH",
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/kuard-deployment/scale"),
            who,
            json!({"spec": {"replicas": n}}),
            at,
        )
    }

    fn status(seq: u64, who: &str, value: Option<f64>, fallback: bool, at: i64) -> RequestRecord {
        let metric = match value {
            Some(v) => json!({"value": v}),
            None => json!({"error": "unreachable"}),
        };
        let conditions = if fallback {
            json!([{"type": "ScalingActive", "status": "False", "reason": "FallbackActive"}])
        } else {
            json!([])
        };
        record(
            seq,
            "PATCH",
            &format!(
                "/apis/autoscaling.avi.dev/v1alpha1/namespaces/{NAMESPACE}/aviautoscalers/kuard/status"
            ),
            who,
            json!({"status": {"currentMetrics": [metric], "conditions": conditions}}),
            at,
        )
    }

    fn run(records: &[RequestRecord]) -> Checker {
        let mut c = Checker {
            samples: vec![0.0, 500.001, 900.002],
            ..Checker::default()
        };
        for r in records {
            c.observe(r);
        }
        c
    }

    #[test]
    fn a_clean_trace_passes() {
        let c = run(&[
            lease(1, "a", T0),
            scale(2, "a", 3, T0 + 100),
            status(3, "a", Some(500.001), false, T0 + 200),
            lease(4, "a", T0 + 2000),
            scale(5, "a", 5, T0 + 2100),
            status(6, "a", Some(900.002), false, T0 + 2200),
            // b takes the lease once a's has expired.
            lease(7, "b", T0 + 7000),
            scale(8, "b", 2, T0 + 7100),
            status(9, "b", None, true, T0 + 7200),
        ]);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        assert_eq!((c.scale_writes, c.fallback_writes, c.handovers), (3, 1, 2));
    }

    #[test]
    fn a_write_by_a_replica_not_holding_the_lease_fails() {
        let c = run(&[lease(1, "a", T0), scale(2, "b", 3, T0 + 100)]);
        assert!(
            c.violations.iter().any(|v| v.contains("second writer")),
            "{:?}",
            c.violations
        );
        let c = run(&[
            lease(1, "a", T0),
            status(2, "a", Some(0.0), false, T0 + 5000),
        ]);
        assert!(
            c.violations.iter().any(|v| v.contains("lease ended")),
            "{:?}",
            c.violations
        );
    }

    #[test]
    fn renewing_or_taking_a_valid_lease_of_another_fails() {
        let c = run(&[lease(1, "a", T0), lease(2, "b", T0 + 1000)]);
        assert!(
            c.violations.iter().any(|v| v.contains("took the lease")),
            "{:?}",
            c.violations
        );
        let mut renew_over = lease(3, "a", T0 + 1500);
        renew_over.body = json!({"spec": {"holderIdentity": "b"}}).to_string();
        let c = run(&[lease(1, "a", T0), renew_over]);
        assert!(!c.violations.is_empty());
    }

    #[test]
    fn two_steps_on_one_sample_or_a_step_on_a_failed_poll_fail() {
        let c = run(&[
            lease(1, "a", T0),
            scale(2, "a", 3, T0 + 100),
            status(3, "a", Some(500.001), false, T0 + 200),
            scale(4, "a", 4, T0 + 300),
            status(5, "a", Some(500.001), false, T0 + 400),
        ]);
        assert!(
            c.violations.iter().any(|v| v.contains("second step")),
            "{:?}",
            c.violations
        );
        let c = run(&[
            lease(1, "a", T0),
            scale(2, "a", 3, T0 + 100),
            status(3, "a", None, false, T0 + 200),
        ]);
        assert!(
            c.violations.iter().any(|v| v.contains("failed poll")),
            "{:?}",
            c.violations
        );
    }

    #[test]
    fn a_scale_whose_status_write_failed_is_not_judged_by_a_later_status() {
        let mut refused = status(3, "a", Some(500.001), false, T0 + 200);
        refused.status = 409;
        let c = run(&[
            lease(1, "a", T0),
            scale(2, "a", 3, T0 + 100),
            refused,
            status(4, "a", None, false, T0 + 1200),
        ]);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        assert_eq!(c.unrecorded, 1);
    }

    #[test]
    fn a_scale_outside_the_bounds_or_a_gap_in_the_log_fails() {
        let c = run(&[lease(1, "a", T0), scale(2, "a", MAX + 1, T0 + 100)]);
        assert!(
            c.violations.iter().any(|v| v.contains("outside")),
            "{:?}",
            c.violations
        );
        let c = run(&[lease(1, "a", T0), scale(3, "a", 2, T0 + 100)]);
        assert!(
            c.violations.iter().any(|v| v.contains("skipped")),
            "{:?}",
            c.violations
        );
    }
}
