//! The Prometheus text, parsed by an independent parser (Python's `prometheus_client`, from the
//! workspace `.venv`) without loss and checked point by point against the reference's format;
//! and a scripted run of the seed load on a controlled clock.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use avi_sim::{SEED_POOL, Scenario};
use serde_json::Value;
use support::{get_basic, start};

/// Parses with `prometheus_client` and reports every sample, every family's type, and whether
/// each value token is exactly what Python's `repr(float(token))` prints.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
samples, families = [], []
for family in text_string_to_metric_families(text):
    families.append([family.name, family.type])
    for s in family.samples:
        samples.append([s.name, s.labels, s.value, s.timestamp])
tokens = [l.rsplit(' ', 1)[1] for l in text.splitlines() if l and not l.startswith('#')]
bad = [t for t in tokens if repr(float(t)) != t]
print(json.dumps({"samples": samples, "families": families, "not_python_floats": bad}))
"#;

fn python_parse(text: &str) -> Value {
    let mut child = Command::new(support::python())
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts (run make venv)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One sample line, split by hand: name, labels in order, value token.
#[derive(Debug, PartialEq)]
struct Line {
    name: String,
    labels: Vec<(String, String)>,
    value: String,
}

fn split_line(line: &str) -> Line {
    let (name, rest) = line.split_once('{').expect("a label set");
    let (labels, value) = rest
        .rsplit_once("} ")
        .expect("labels, then one space and the value");
    assert!(!value.contains(' '), "no timestamp after the value: {line}");
    let labels = labels
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            assert!(
                v.starts_with('"') && v.ends_with('"'),
                "quoted value: {line}"
            );
            (k.to_string(), unescape(&v[1..v.len() - 1]))
        })
        .collect();
    Line {
        name: name.to_string(),
        labels,
        value: value.to_string(),
    }
}

/// Undoes the text format's label escaping (`\\`, `\"`, `\n`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks the text against the reference's format point by point, and against the independent
/// parser sample by sample.
fn check_format(text: &str, entity: &str, description: bool) -> Vec<Line> {
    let mut lines = text.lines();
    let header = lines.next().expect("a first line");
    let sample_lines: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // 1. "# Successfully gathered N metrics for <type>", N = sample lines.
    assert_eq!(
        header,
        format!(
            "# Successfully gathered {} metrics for {entity}",
            sample_lines.len()
        )
    );
    // 2. No HELP/TYPE unless asked; with description, HELP and TYPE before every sample.
    let comments: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('#'))
        .collect();
    if description {
        assert_eq!(comments.len(), 2 * sample_lines.len());
    } else {
        assert!(comments.is_empty(), "{comments:?}");
    }
    assert!(text.ends_with('\n'));
    // 3-5. name{labels} value: ", " between labels, quoted values, no timestamp.
    let parsed: Vec<Line> = sample_lines.iter().map(|l| split_line(l)).collect();
    let expected_keys: &[&str] = match entity {
        "pool" => &["uuid", "type", "tenant", "server", "name"],
        "controller" => &["uuid", "type", "tenant"],
        _ => &["uuid", "type", "tenant", "name"],
    };
    for l in &parsed {
        let keys: Vec<&str> = l.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, expected_keys, "label order");
        assert_eq!(l.labels[1].1, entity);
        assert!(l.name.starts_with("avi_") && !l.name.contains('.'));
        if entity == "pool" {
            let server = &l.labels[3].1;
            let (ip, port) = server.split_once(':').expect("ip:port");
            assert!(ip.parse::<std::net::Ipv4Addr>().is_ok() && port.parse::<u16>().is_ok());
        }
    }
    // 6. Grouped by entity (and by member within a pool): each one's lines are contiguous.
    let keys: Vec<(String, String)> = parsed
        .iter()
        .map(|l| {
            let server = l
                .labels
                .iter()
                .find(|(k, _)| k == "server")
                .map(|(_, v)| v.clone());
            (l.labels[0].1.clone(), server.unwrap_or_default())
        })
        .collect();
    let mut seen = Vec::new();
    for w in keys.chunk_by(|a, b| a == b) {
        assert!(!seen.contains(&w[0]), "{:?} is not contiguous", w[0]);
        seen.push(w[0].clone());
    }

    // The independent parser: the same samples, in order, nothing lost or added.
    let py = python_parse(text);
    assert_eq!(
        py["not_python_floats"],
        serde_json::json!([]),
        "values print like Python floats"
    );
    let samples = py["samples"].as_array().unwrap();
    assert_eq!(samples.len(), parsed.len(), "every sample survives parsing");
    for (ours, theirs) in parsed.iter().zip(samples) {
        assert_eq!(theirs[0], ours.name.as_str());
        let labels: BTreeMap<String, String> = serde_json::from_value(theirs[1].clone()).unwrap();
        let mine: BTreeMap<String, String> = ours.labels.iter().cloned().collect();
        assert_eq!(labels, mine);
        assert_eq!(
            theirs[2].as_f64().unwrap(),
            ours.value.parse::<f64>().unwrap()
        );
        assert!(theirs[3].is_null(), "no timestamp");
    }
    let families = py["families"].as_array().unwrap();
    for f in families {
        let want = if description { "gauge" } else { "unknown" };
        assert_eq!(f[1], want, "{f}");
    }
    parsed
}

fn multi_tenant() -> Scenario {
    Scenario::from_yaml(
        r#"
controller: {startTime: "2026-01-01T00:00:00Z"}
users: [{username: admin, password: pw}]
tenants: [{name: admin}, {name: team-b}]
pools:
- name: k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress
  servers: {count: 3}
  realtime: true
  load: {spawnRate: 3, maxUsers: 1000}
- name: "odd \"quoted\" \\ name"
  tenant: team-b
  load: {series: [{at: 0, users: 7}, {at: 450, users: 1}]}
virtualServices:
- {name: k8s-03-cluster--Shared-L7-0, pools: [k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress], realtime: true}
- {name: vs-b, tenant: team-b, pools: ["odd \"quoted\" \\ name"]}
serviceEngines:
- {name: Avi-se-1, virtualServices: [k8s-03-cluster--Shared-L7-0, vs-b]}
"#,
    )
    .unwrap()
}

#[tokio::test]
async fn prometheus_text_parses_without_loss_and_matches_the_format() {
    let (sim, client) = start_multi().await;
    sim.handle().advance(600.0).await.unwrap();
    let base = format!("{}/api/analytics/prometheus-metrics", sim.url());
    for (query, entity, description) in [
        ("pool", "pool", false),
        ("pool?tenant=admin,team-b", "pool", false),
        ("pool/?realtime=true", "pool", false),
        ("pool?description=true&tenant=team-b", "pool", true),
        (
            "virtualservice?tenant=admin,team-b",
            "virtualservice",
            false,
        ),
        ("serviceengine", "serviceengine", false),
        ("controller", "controller", false),
        ("virtualservice?description=true", "virtualservice", true),
        ("pool?entity_name=ghost", "pool", false),
    ] {
        let (status, text) = get_basic(&client, &format!("{base}/{query}"), "pw").await;
        assert_eq!(status, 200, "{query}: {text}");
        check_format(&text, entity, description);
    }
    // Label values are escaped so that the parser gets the name back exactly.
    let (_, text) = get_basic(&client, &format!("{base}/pool?tenant=team-b"), "pw").await;
    let py = python_parse(&text);
    assert_eq!(py["samples"][0][1]["name"], "odd \"quoted\" \\ name");
}

async fn start_multi() -> (avi_sim::RunningSim, reqwest::Client) {
    start(multi_tenant()).await
}

#[tokio::test]
async fn python_floats_everywhere() {
    // Values that need exponents, many digits and tiny fractions, straight from the formatter
    // and checked by Python itself.
    let values = [
        0.0,
        100.0,
        0.001,
        1e-5,
        1e16,
        1e15,
        2.0 / 3.0,
        123456.789,
        5e-324,
        1.7976931348623157e308,
    ];
    let mut text = format!(
        "# Successfully gathered {} metrics for pool\n",
        values.len()
    );
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!(
            "avi_x{{uuid=\"u{i}\", type=\"pool\", tenant=\"admin\", server=\"10.0.0.1:80\", name=\"p\"}} {}\n",
            avi_sim::pyfloat::repr(*v)
        ));
    }
    let py = python_parse(&text);
    assert_eq!(py["not_python_floats"], serde_json::json!([]));
    assert_eq!(py["samples"].as_array().unwrap().len(), values.len());
}

// ---------- the seed load, step by step ----------

/// Per-member values of `l4_server.avg_open_conns` for the seed pool, as the operator reads them.
async fn members(client: &reqwest::Client, base: &str) -> Vec<(String, f64)> {
    let (status, text) = get_basic(
        client,
        &format!("{base}/api/analytics/prometheus-metrics/pool?entity_name={SEED_POOL}&metric_id=l4_server.avg_open_conns"),
        "pw",
    )
    .await;
    assert_eq!(status, 200);
    check_format(&text, "pool", false)
        .into_iter()
        .map(|l| (l.labels[3].1.clone(), l.value.parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn seed_load_pool_total_and_members_as_servers_change() {
    let (sim, client) = start(Scenario::builtin("pw")).await;
    let h = sim.handle();
    let base = sim.url();
    // What an autoscaler with an AverageValue target of 200 on the sum would do, step by step:
    // (time to move to, member count to set there, expected per-member values, expected sum).
    let third = 2000.0 / 3.0;
    let steps: &[(f64, Option<u32>, &[f64], f64)] = &[
        // Before the first bucket closes: the idle bucket before the start.
        (0.0, None, &[0.0], 0.0),
        (299.0, None, &[0.0], 0.0),
        // [0, 300): a 200 s ramp to 1000 then 100 s at 1000.
        (300.0, Some(4), &[third], third),
        // [300, 600): 1000 users over 4 members.
        (600.0, Some(5), &[250.0, 250.0, 250.0, 250.0], 1000.0),
        (900.0, None, &[200.0; 5], 1000.0),
        (1200.0, None, &[200.0; 5], 1000.0),
        // [1200, 1500): users stop at 1320, 120 s of 1000.
        (1500.0, Some(2), &[80.0; 5], 400.0),
        // Mid-bucket scale-down: the removed member still reports the bucket it served in.
        (1650.0, Some(1), &[80.0; 5], 400.0),
        (1800.0, None, &[0.0, 0.0], 0.0),
        (2100.0, None, &[0.0], 0.0),
    ];
    eprintln!(
        "{:>6} {:>7} {:>7} {:>9}  per member",
        "t", "users", "servers", "total"
    );
    for (t, set, expected, total) in steps {
        h.set_elapsed(*t).await.unwrap();
        let got = members(&client, &base).await;
        let values: Vec<f64> = got.iter().map(|(_, v)| *v).collect();
        let sum: f64 = values.iter().sum();
        eprintln!(
            "{t:>6} {:>7} {:>7} {sum:>9.1}  {values:?}",
            h.pool_users(SEED_POOL).unwrap(),
            h.pool_servers(SEED_POOL).unwrap().len()
        );
        assert_eq!(values.len(), expected.len(), "members at {t}: {got:?}");
        for (v, e) in values.iter().zip(expected.iter()) {
            assert!(
                (v - e).abs() < 1e-9,
                "at {t}: {got:?}, expected {expected:?}"
            );
        }
        assert!((sum - total).abs() < 1e-9, "total at {t}: {sum}");
        if let Some(n) = set {
            h.set_pool_servers(SEED_POOL, *n).unwrap();
        }
    }
    // New members got fresh addresses; removal took the newest.
    assert_eq!(h.pool_servers(SEED_POOL).unwrap(), ["10.244.1.10:8080"]);
}

#[tokio::test]
async fn values_change_only_at_bucket_boundaries() {
    let (sim, client) = start(Scenario::builtin("pw")).await;
    let h = sim.handle();
    let base = sim.url();
    let realtime = |client: reqwest::Client, base: String| async move {
        let (_, text) = get_basic(
            &client,
            &format!("{base}/api/analytics/prometheus-metrics/pool?metric_id=l4_server.avg_open_conns&realtime=true"),
            "pw",
        )
        .await;
        check_format(&text, "pool", false)[0]
            .value
            .parse::<f64>()
            .unwrap()
    };
    h.set_elapsed(301.0).await.unwrap();
    let slow = members(&client, &base).await[0].1;
    for t in [350.0, 450.0, 599.9] {
        h.set_elapsed(t).await.unwrap();
        assert_eq!(
            members(&client, &base).await[0].1,
            slow,
            "same 300 s bucket at {t}"
        );
    }
    // Realtime: [95, 100) while ramping at 5 users/s is 475..500, average 487.5.
    let (sim2, client2) = start(Scenario::builtin("pw")).await;
    sim2.handle().set_elapsed(102.0).await.unwrap();
    assert_eq!(realtime(client2.clone(), sim2.url()).await, 487.5);
    sim2.handle().set_elapsed(104.9).await.unwrap();
    assert_eq!(realtime(client2.clone(), sim2.url()).await, 487.5);
    sim2.handle().set_elapsed(105.0).await.unwrap();
    assert_eq!(realtime(client2, sim2.url()).await, 512.5);
}
