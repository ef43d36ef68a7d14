//! The generated CRD, evaluated as the API server would (with the `crd-schema` crate, which the
//! stand-in and the operator use too): its defaults agree with serde's, valid objects and every
//! example are admitted and resolve, and `resolve` states none of the CRD's rules again.
//!
//! The objects each rule refuses, with the API server's messages, are tested through the
//! operator's validation (`crates/operator/src/validation`).

use api::AviAutoscaler;
use crd_schema::{FieldError, admit, crd_version_schema};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn schema() -> Value {
    let crd = serde_json::to_value(AviAutoscaler::crd()).unwrap();
    crd_version_schema(&crd, "v1alpha1")
        .expect("the CRD serves v1alpha1")
        .clone()
}

mod support {
    pub mod fixture;
}
use support::fixture::{set, valid};

fn render(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn the_valid_object_is_admitted_and_resolves() {
    let stored = admit(&schema(), &valid(), None).unwrap_or_else(|e| panic!("{:?}", render(&e)));
    let obj: AviAutoscaler = serde_json::from_value(stored).unwrap();
    let resolved = obj.spec.resolve().unwrap();
    assert_eq!(resolved.min_replicas, 1);
    assert_eq!(resolved.max_replicas, 5);
    assert_eq!(resolved.metrics.len(), 1);
}

#[test]
fn cel_rules_compile_and_accept_the_defaults() {
    // A minimal object: every defaulted field omitted. The schema's defaults must make it valid,
    // and must equal the Rust defaults.
    let minimal = json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {
            "scaleTargetRef": {"name": "web"},
            "maxReplicas": 3,
            "controller": {"endpoints": ["https://avi.example.com"], "credentialsSecretRef": {"name": "s"}},
            "metrics": [{"entity": {"type": "virtualservice", "name": "vs"}, "metricId": "l4_client.avg_bandwidth",
                         "target": {"type": "Value", "value": 1000}}]
        }
    });
    let stored = admit(&schema(), &minimal, None).unwrap_or_else(|e| panic!("{:?}", render(&e)));
    let spec = &stored["spec"];
    assert_eq!(spec["minReplicas"], 1);
    assert_eq!(spec["pollingIntervalSeconds"], 15);
    assert_eq!(spec["tolerance"], 0.1);
    assert_eq!(spec["paused"], false);
    assert_eq!(spec["scaleTargetRef"]["apiVersion"], "apps/v1");
    assert_eq!(spec["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(spec["controller"]["authMode"], "session");
    assert_eq!(spec["controller"]["tenant"], "admin");
    assert_eq!(spec["controller"]["timeoutSeconds"], 10);
    assert_eq!(spec["metrics"][0]["realtime"], false);
    let from_schema: AviAutoscaler = serde_json::from_value(stored).unwrap();
    let from_serde: AviAutoscaler = serde_json::from_value(minimal).unwrap();
    assert_eq!(
        from_schema.spec, from_serde.spec,
        "schema defaults and serde defaults differ"
    );
}

#[test]
fn unknown_fields_are_pruned() {
    let mut obj = valid();
    set(&mut obj, "/spec/maxReplica", Some(json!(9)));
    let stored = admit(&schema(), &obj, None).unwrap();
    assert!(stored["spec"].get("maxReplica").is_none());
}

fn example_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_example_autoscaler_is_admitted_and_resolves() {
    use serde::Deserialize;
    let schema = schema();
    let mut checked = 0;
    for path in example_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if value.get("kind") != Some(&json!("AviAutoscaler")) {
                continue;
            }
            let stored = admit(&schema, &value, None)
                .unwrap_or_else(|e| panic!("{}: {:?}", path.display(), render(&e)));
            let obj: AviAutoscaler = serde_json::from_value(stored).unwrap();
            obj.spec
                .resolve()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "expected at least 6 example AviAutoscalers, found {checked}"
    );
}

/// Every string in `schema` under the key `key` (CEL rules and their messages).
fn strings_under(schema: &Value, key: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(rules) = map
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r[key].as_str().map(str::to_owned)),
                );
            }
            map.values().for_each(|v| strings_under(v, key, out));
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

#[test]
fn resolve_states_none_of_the_crds_rules_again() {
    let source = include_str!("../src/resolved.rs");
    let schema = schema();
    let mut rules = Vec::new();
    strings_under(&schema, "rule", &mut rules);
    strings_under(&schema, "message", &mut rules);
    assert!(
        rules.len() >= 14,
        "expected the CRD's CEL rules, found {rules:?}"
    );
    let restated: Vec<&String> = rules
        .iter()
        .filter(|r| source.contains(r.as_str()))
        .collect();
    assert!(
        restated.is_empty(),
        "resolved.rs states these CRD rules again: {restated:#?}"
    );
}
