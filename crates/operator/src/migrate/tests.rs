//! Tests of `migrate` on the example chain under examples/migrate/ and on each failure mode.

use serde_json::Value;

use super::{Error, convert, parse_documents, quantity};
use crate::simulate::{model, scenario::Scenario};

/// The repository root, where examples/ lives.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The documents of the given files under examples/.
fn docs(files: &[&str]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(root().join("examples").join(f)).unwrap();
            parse_documents(f, &text).unwrap()
        })
        .collect()
}

/// Documents from inline YAML.
fn yaml(text: &str) -> Vec<Value> {
    parse_documents("test", text).unwrap()
}

/// The example chain.
fn example() -> Vec<Value> {
    docs(&["migrate/hpa.yaml", "migrate/servicemonitor.yaml"])
}

/// The message of a conversion that must fail.
fn failure(docs: &[Value]) -> String {
    match convert(docs, "avi") {
        Err(Error::Convert(m)) => m,
        other => panic!("expected a conversion error, got {other:?}"),
    }
}

#[test]
fn the_example_converts_to_the_expected_file() {
    let out = convert(&example(), "avi").unwrap();
    let expected = std::fs::read_to_string(root().join("examples/migrate/expected.yaml")).unwrap();
    assert_eq!(out.yaml, expected);
    // The seed's trap is named, not silently reproduced.
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("advice:") && n.contains("grows with replicas")),
        "{:?}",
        out.notes
    );
}

#[test]
fn the_converted_object_is_valid() {
    let out = convert(&example(), "avi").unwrap();
    let object: api::AviAutoscaler = serde_yaml::from_str(&out.yaml).unwrap();
    let resolved = crate::validation::resolve(&object).unwrap();
    assert_eq!(resolved.min_replicas, 1);
    assert_eq!(resolved.max_replicas, 5);
    assert_eq!(object.spec.controller_ref.unwrap().name, "avi");
}

/// The seed scenario's replay with the converted object gives the same decisions as with the
/// seed's own (HPA-equivalent) object, tick by tick, on the same load.
#[test]
fn the_simulate_replay_matches_the_hpa() {
    let out = convert(&example(), "avi").unwrap();
    let converted: Value = serde_yaml::from_str(&out.yaml).unwrap();
    let text = std::fs::read_to_string(root().join("examples/scenarios/seed-value.yaml")).unwrap();
    let original = Scenario::parse(&text).unwrap();
    let mut scenario: Value = serde_yaml::from_str(&text).unwrap();
    scenario["autoscaler"] = converted;
    scenario["autoscaler"]["metadata"]["generation"] = 1.into();
    let replay = Scenario::parse(&serde_yaml::to_string(&scenario).unwrap()).unwrap();
    let desired = |s: &Scenario| -> Vec<i32> {
        model::run(s)
            .iter()
            .map(|t| t.decision.desired_replicas)
            .collect()
    };
    let hpa = desired(&original);
    assert_eq!(desired(&replay), hpa);
    // The HPA formula on the pool total, ceil(replicas x total / 200), reaches 5 on this load.
    assert_eq!(hpa.iter().max(), Some(&5));
}

#[test]
fn behavior_and_renamed_metrics_are_carried_over() {
    let mut docs = yaml(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 9
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 120
      policies: [{type: Pods, value: 1, periodSeconds: 60}]
  metrics:
  - type: External
    external:
      metric: {name: open_conns}
      target: {type: AverageValue, averageValue: 1500m}
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
---
kind: ConfigMap
apiVersion: v1
metadata: {name: adapter-config}
data:
  config.yaml: |
    externalRules:
    - seriesQuery: 'avi_l4_server_avg_open_conns{entity_name!=""}'
      name: {as: open_conns}
      metricsQuery: sum(<<.Series>>)
"#,
    );
    docs.extend(docs_sm(
        "virtualservice",
        "web-vs",
        "l4_server.avg_open_conns",
    ));
    let out = convert(&docs, "avi").unwrap();
    let object: Value = serde_yaml::from_str(&out.yaml).unwrap();
    let spec = &object["spec"];
    assert_eq!(object["metadata"]["namespace"], "shop");
    assert_eq!(spec["minReplicas"], 2);
    assert_eq!(
        spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        120
    );
    let metric = &spec["metrics"][0];
    assert_eq!(metric["entity"]["type"], "virtualservice");
    assert_eq!(metric["entity"]["name"], "web-vs");
    assert!(metric.get("aggregation").is_none());
    assert_eq!(metric["target"]["averageValue"], 1.5);
    assert!(
        out.notes
            .iter()
            .any(|n| n.starts_with("not carried over:") && n.contains("Resource")),
        "{:?}",
        out.notes
    );
}

/// A ServiceMonitor scraping `metric` of one entity.
fn docs_sm(kind: &str, entity: &str, metric: &str) -> Vec<Value> {
    yaml(&format!(
        r#"
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: avi-{entity}, namespace: monitoring}}
spec:
  endpoints:
  - path: /api/analytics/prometheus-metrics/{kind}/
    params:
      entity_name: [{entity}]
      metric_id: [{metric}]
"#
    ))
}

#[test]
fn an_ambiguous_metric_lists_the_candidates() {
    let mut docs = docs(&["migrate/hpa.yaml"]);
    docs.extend(docs_sm("pool", "pool-a", "l4_server.avg_open_conns"));
    docs.extend(docs_sm("pool", "pool-b", "l4_server.avg_open_conns"));
    let message = failure(&docs);
    assert!(message.contains("ambiguous"), "{message}");
    assert!(
        message.contains("\"pool-a\"") && message.contains("\"pool-b\""),
        "{message}"
    );
}

#[test]
fn a_metric_no_servicemonitor_scrapes_is_refused() {
    let message = failure(&docs(&["migrate/hpa.yaml"]));
    assert!(
        message.contains("no ServiceMonitor") && message.contains("avi_l4_server_avg_open_conns"),
        "{message}"
    );
}

#[test]
fn an_hpa_with_only_resource_metrics_is_refused() {
    let docs = yaml(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: cpu-only, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
"#,
    );
    let message = failure(&docs);
    assert!(
        message.contains("no Object or External metric"),
        "{message}"
    );
}

#[test]
fn unsupported_inputs_are_refused() {
    let message = failure(&yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    ));
    assert!(message.contains("no HorizontalPodAutoscaler"), "{message}");
    let message = failure(&yaml(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
    ));
    assert!(
        message.contains("autoscaling/v1 is not supported"),
        "{message}"
    );
    let mut docs = yaml(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: util, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 3
  metrics:
  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Service, name: web}
      metric: {name: avi_l4_server_avg_open_conns}
      target: {type: Utilization, averageUtilization: 50}
"#,
    );
    docs.extend(docs_sm("pool", "p", "l4_server.avg_open_conns"));
    let message = failure(&docs);
    assert!(message.contains("target type Utilization"), "{message}");
}

#[test]
fn quantities_parse() {
    assert_eq!(quantity(&"200".into()), Some(200.0));
    assert_eq!(quantity(&"1500m".into()), Some(1.5));
    assert_eq!(quantity(&"2k".into()), Some(2000.0));
    assert_eq!(quantity(&"1Ki".into()), Some(1024.0));
    assert_eq!(quantity(&200.into()), Some(200.0));
    assert_eq!(quantity(&"lots".into()), None);
}
