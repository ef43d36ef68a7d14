//! The operator at scale: resident memory idle and with N AviAutoscalers, the time from start
//! to every object reconciled once, and what one steady polling tick costs: CPU, Avi requests,
//! Kubernetes API requests (status writes, `/scale` reads) and reconciles.
//!
//! Runs the release `avi-autoscaler` binary (`make bench` builds it) against an in-process
//! kube-standin and an avi-sim controller serving one pool per autoscaler. `AVI_BENCH_OBJECTS`
//! sets N (default 1,000; `make bench` also runs 10,000), `AVI_BENCH_TICKS` the steady ticks
//! measured (default 3), `AVI_BENCH_INTERVAL` the polling interval in seconds (default 15).
//! `AVI_BENCH_SHARDS=S` runs S shard processes (`--shard-count S`, each with leader election on
//! its own Lease) over the same N objects instead of one process. Prints the figures; speed and
//! memory goals live here, not in the tests.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use avi_sim::{Scenario, Sim, SimConfig};
use e2e::{Cluster, Operator, http_get};
use serde_json::{Value, json};
use testkit::ObjectRef;

const NAMESPACE: &str = "bench";
/// The autoscalers carry their connection inline (`spec.controller`).
const OPERATOR_ARGS: &[&str] = &["--allow-inline-controllers"];
/// The operator's log filter: `AVI_BENCH_LOG`, else the level of a production install.
fn log_filter() -> String {
    std::env::var("AVI_BENCH_LOG").unwrap_or_else(|_| "info".into())
}

fn pool(i: usize) -> String {
    format!("k8s-03-cluster--app{i}.example.com_-bench-app{i}-ingress")
}

fn scenario(n: usize, interval: u64) -> Scenario {
    let pools: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": pool(i),
                "servers": {"count": 1, "firstIp": format!("10.{}.{}.{}", 1 + i / 62_500, (i / 250) % 250, 1 + i % 250), "port": 8080},
                "load": {"spawnRate": 10, "maxUsers": 100 + (i % 7) * 100, "startAt": 0, "connsPerUser": 1}
            })
        })
        .collect();
    // Simulated time runs 300 / interval times faster: Avi's 300 s buckets close once per
    // polling interval, so every tick reads new values and the targets scale.
    let yaml = serde_json::to_string(&json!({
        "controller": {"timeScale": 300.0 / interval as f64},
        "users": [{"username": "admin", "password": "bench"}],
        "tenants": [{"name": "admin"}],
        "pools": pools,
    }))
    .expect("JSON");
    Scenario::from_yaml(&yaml).expect("a valid scenario")
}

fn autoscaler(i: usize, url: &str, interval: u64) -> Value {
    json!({"apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
           "metadata": {"name": format!("app{i}"), "namespace": NAMESPACE},
           "spec": {"scaleTargetRef": {"name": format!("app{i}")}, "maxReplicas": 10,
                    "pollingIntervalSeconds": interval,
                    "controller": {"endpoints": [url], "credentialsSecretRef": {"name": "avi"},
                                   "tls": {"caSecretRef": {"name": "avi-ca"}}},
                    "metrics": [{"entity": {"type": "pool", "name": pool(i)},
                                 "metricId": "l4_server.avg_open_conns",
                                 "target": {"type": "AverageValue", "averageValue": 200}}]}})
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

/// CPU time (user + system) the process `pid` has used, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3, `state`;
    // `utime` and `stime` are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The value of the counter `name{labels}` in a Prometheus text scrape (0 when absent).
fn counter(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// What kind of Kubernetes request a logged one is, for the per-tick table.
fn request_kind(r: &testkit::RequestRecord) -> String {
    let watch = r
        .query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let path = r.path.as_str();
    let resource = if path.ends_with("/status") {
        "status".to_owned()
    } else if path.ends_with("/scale") {
        "scale".to_owned()
    } else {
        // /apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME] or /api/v1/...: the plural, and
        // whether a single object was named.
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (plural, named) = match parts.iter().position(|p| *p == "namespaces") {
            Some(i) if parts.len() > i + 2 => (parts[i + 2], parts.len() > i + 3),
            _ => (parts.last().copied().unwrap_or(""), false),
        };
        if named {
            format!("{plural}/NAME")
        } else {
            plural.to_owned()
        }
    };
    let verb = if watch { "WATCH" } else { r.method.as_str() };
    format!("{verb} {resource}")
}

/// Waits until the wall clock is `offset` past a multiple of `interval` (the operator's ticks
/// are aligned to those multiples).
async fn align_to_tick(interval: Duration, offset: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let iv = interval.as_millis();
    let target = (now.as_millis() / iv + 1) * iv + offset.as_millis();
    tokio::time::sleep(Duration::from_millis((target - now.as_millis()) as u64)).await;
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The operator processes: one, or one per shard.
fn start_operators(cluster: &Cluster, shards: u32) -> Vec<Operator> {
    if shards <= 1 {
        return vec![Operator::start_logging(
            cluster,
            "operator",
            OPERATOR_ARGS,
            &log_filter(),
        )];
    }
    let count = shards.to_string();
    (0..shards)
        .map(|i| {
            let index = i.to_string();
            let mut args = OPERATOR_ARGS.to_vec();
            args.extend([
                "--leader-election",
                "--lease-namespace",
                "default",
                "--shard-count",
                &count,
                "--shard-index",
                &index,
            ]);
            Operator::start_logging(cluster, &format!("shard-{i}"), &args, &log_filter())
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = env_or("AVI_BENCH_OBJECTS", 1000);
    let ticks: u32 = env_or("AVI_BENCH_TICKS", 3).max(1);
    let shards: u32 = env_or("AVI_BENCH_SHARDS", 1).max(1);
    let interval_seconds: u64 = env_or("AVI_BENCH_INTERVAL", 15).max(1);
    let interval = Duration::from_secs(interval_seconds);
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install_crd();
    let sim = Sim::start(SimConfig::new(scenario(n, interval_seconds)))
        .await
        .expect("avi-sim starts");
    let store = cluster.kube.store();
    store
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        .expect("namespace");
    store
        .create(json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "avi", "namespace": NAMESPACE,
                                    "labels": {e2e::CREDENTIALS_LABEL: "true"}},
                       "stringData": {"username": "admin", "password": "bench"}}))
        .expect("secret");
    store
        .create(json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "avi-ca", "namespace": NAMESPACE,
                                    "labels": {e2e::CREDENTIALS_LABEL: "true"}},
                       "stringData": {"ca.crt": sim.ca_pem()}}))
        .expect("CA secret");

    // Idle: an operator with nothing to do, once its watches have listed.
    let idle = {
        let operator = Operator::start_logging(&cluster, "idle", OPERATOR_ARGS, &log_filter());
        operator.wait_log("watches synced");
        let rss = operator.rss_kib();
        operator.stop();
        rss
    };

    let created = Instant::now();
    for i in 0..n {
        store
            .create(e2e::deployment(NAMESPACE, &format!("app{i}")))
            .expect("deployment");
        store
            .create(autoscaler(i, &sim.url(), interval_seconds))
            .expect("autoscaler");
    }
    let creating = created.elapsed();

    // From start (list, watch, first poll, first status write) to every object reconciled.
    let started = Instant::now();
    let operators = start_operators(&cluster, shards);
    for operator in &operators {
        operator.wait_log("watches synced");
    }
    let synced = started.elapsed();
    let reconciled = |s: &testkit::Store| {
        s.count(
            "autoscaling.avi.dev/v1alpha1",
            "AviAutoscaler",
            Some(NAMESPACE),
            |a| a.pointer("/status/observedGeneration").is_some(),
        )
    };
    let limit = Duration::from_secs(env_or("AVI_BENCH_DEADLINE_SECONDS", 600));
    let mut every = tokio::time::interval(Duration::from_millis(200));
    let mut done = reconciled(&store);
    while done < n && started.elapsed() < limit {
        every.tick().await;
        done = reconciled(&store);
    }
    let all_reconciled = if done == n {
        format!("{:.2?}", started.elapsed())
    } else {
        format!("not reached: {done} of {n} after {limit:?}")
    };
    let rss =
        |ops: &[Operator]| -> Vec<Option<u64>> { ops.iter().map(Operator::rss_kib).collect() };
    let rss_reconciled = rss(&operators);

    // Steady state: the loads stop moving the targets after a few ticks (the scale-up
    // policies limit each step); wait for a whole tick without a scale write (at most
    // AVI_BENCH_SETTLE_TICKS, default 20), then measure whole ticks, from the middle of one
    // interval to the middle of another.
    let clients: Vec<String> = operators.iter().map(|o| o.client.clone()).collect();
    let settle_limit: u32 = env_or("AVI_BENCH_SETTLE_TICKS", 20);
    align_to_tick(interval, interval / 2).await;
    let mut settle_ticks = 0;
    loop {
        let seq = cluster.kube.last_request_seq();
        align_to_tick(interval, interval / 2).await;
        settle_ticks += 1;
        let scale_writes = cluster
            .kube
            .requests_since(seq)
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/scale"))
            .filter(|r| r.client.as_ref().is_some_and(|c| clients.contains(c)))
            .count();
        if scale_writes == 0 || settle_ticks >= settle_limit {
            break;
        }
    }
    let cpu_before: Vec<Duration> = operators.iter().map(|o| cpu_time(o.pid())).collect();
    let avi_before = sim.handle().counters();
    let seq_before = cluster.kube.last_request_seq();
    let mut scrapes_before = Vec::new();
    for operator in &operators {
        scrapes_before.push(http_get(&operator.metrics_addr(), "/metrics").await.1);
    }
    let until = Instant::now() + interval * ticks;
    let mut peak = rss(&operators);
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < until {
        every_second.tick().await;
        for (p, now) in peak.iter_mut().zip(rss(&operators)) {
            *p = (*p).max(now);
        }
    }
    let cpu: Vec<Duration> = operators
        .iter()
        .zip(&cpu_before)
        .map(|(o, before)| cpu_time(o.pid()) - *before)
        .collect();
    let avi_after = sim.handle().counters();
    let mut scrapes_after = Vec::new();
    for operator in &operators {
        scrapes_after.push(http_get(&operator.metrics_addr(), "/metrics").await);
    }
    let busy = rss(&operators);
    let per_tick = |x: f64| x / f64::from(ticks);

    let metric_endpoint = "GET /api/analytics/prometheus-metrics/pool";
    let metric_requests =
        avi_after.requests(metric_endpoint) - avi_before.requests(metric_endpoint);
    let avi_total = avi_after.total() - avi_before.total();
    let mut kube: BTreeMap<String, u64> = BTreeMap::new();
    for r in cluster.kube.requests_since(seq_before) {
        if r.client.as_ref().is_some_and(|c| clients.contains(c)) {
            *kube.entry(request_kind(&r)).or_default() += 1;
        }
    }
    let kube_total: u64 = kube.values().sum();
    let reconciles = |result: &str| -> f64 {
        let series = format!("avi_autoscaler_reconciliations_total{{result=\"{result}\"}}");
        scrapes_after
            .iter()
            .zip(&scrapes_before)
            .map(|((_, after), before)| counter(after, &series) - counter(before, &series))
            .sum()
    };
    let scaled = store.count("apps/v1", "Deployment", Some(NAMESPACE), |d| {
        d.pointer("/spec/replicas").and_then(Value::as_i64) > Some(1)
    });
    let one = ObjectRef::namespaced(
        "autoscaling.avi.dev/v1alpha1",
        "AviAutoscaler",
        NAMESPACE,
        "app0",
    );
    let sample = store.get(&one).expect("app0");
    let list = |values: &[Option<u64>]| -> String {
        values
            .iter()
            .map(|v| mib(*v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cpu_total: f64 = cpu.iter().map(Duration::as_secs_f64).sum();
    let window = (interval * ticks).as_secs_f64();

    println!(
        "operator at scale: {n} AviAutoscalers, one pool each, polling every {interval_seconds} s, {ticks} steady ticks, {shards} shard process(es)"
    );
    println!("  objects created in the stand-in in:         {creating:.2?}");
    println!(
        "  resident memory idle (no AviAutoscalers):   {}",
        mib(idle)
    );
    println!(
        "  resident memory with {n} AviAutoscalers:     {} after the first pass, {} steady (peak {})",
        list(&rss_reconciled),
        list(&busy),
        list(&peak)
    );
    println!("  start to watches synced:                    {synced:.2?}");
    println!("  start to all {n} reconciled once:          {all_reconciled}");
    println!("  ticks until a tick without scale writes:    {settle_ticks} (limit {settle_limit})");
    println!(
        "  CPU per tick:                               {:.2} s ({:.3} cores on average; per process {})",
        per_tick(cpu_total),
        cpu_total / window,
        cpu.iter()
            .map(|c| format!("{:.3}", c.as_secs_f64() / window))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  reconciles per tick:                        {:.1} success, {:.1} deferred",
        per_tick(reconciles("success")),
        per_tick(reconciles("deferred"))
    );
    println!(
        "  Avi metric requests per tick:               {:.1} (ceil({n} / 50) = {}); all Avi requests {:.1}",
        per_tick(metric_requests as f64),
        n.div_ceil(50),
        per_tick(avi_total as f64)
    );
    println!(
        "  Kubernetes API requests per tick:           {:.1}",
        per_tick(kube_total as f64)
    );
    for (kind, count) in &kube {
        println!("    {kind:<40} {:.1}", per_tick(*count as f64));
    }
    println!(
        "  status writes per tick:                     {:.1}",
        per_tick(kube.get("PATCH status").copied().unwrap_or(0) as f64)
    );
    println!(
        "  GET /scale per tick:                        {:.1}",
        per_tick(kube.get("GET scale").copied().unwrap_or(0) as f64)
    );
    for (operator, (status, scrape)) in operators.iter().zip(&scrapes_after) {
        println!(
            "  /metrics scrape of {}:{} {} bytes (HTTP {status})",
            operator.client,
            " ".repeat(24usize.saturating_sub(operator.client.len())),
            scrape.len()
        );
    }
    println!(
        "  reconciled once (status written):           {} of {n}",
        reconciled(&store)
    );
    println!("  targets scaled above 1:                     {scaled}");
    println!(
        "  app0: {} replicas desired, metric {}",
        sample["status"]["desiredReplicas"], sample["status"]["metricSummary"]
    );
    drop(operators);
}
