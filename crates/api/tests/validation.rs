//! The CRD's schema bounds and CEL rules, evaluated as the API server would (with testkit's
//! structural-schema validator and kube-cel), against valid and invalid objects.
//!
//! Every invalid case must be refused with the message shown, every CEL rule must fire in at
//! least one case, every example must pass, and `AviAutoscalerSpec::resolve` must agree with
//! the schema on each case.

use std::collections::BTreeSet;

use api::AviAutoscaler;
use kube::CustomResourceExt;
use serde_json::{Value, json};
use testkit::schema::{FieldError, admit, crd_version_schema};

fn schema() -> Value {
    let crd = serde_json::to_value(AviAutoscaler::crd()).unwrap();
    crd_version_schema(&crd, "v1alpha1")
        .expect("the CRD serves v1alpha1")
        .clone()
}

fn valid() -> Value {
    json!({
        "apiVersion": "autoscaling.avi.dev/v1alpha1",
        "kind": "AviAutoscaler",
        "metadata": {"name": "kuard", "namespace": "routing-ns1"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kuard-deployment"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "controller": {
                "endpoints": ["https://192.168.31.246", "https://avi-2.example.com:8443/"],
                "credentialsSecretRef": {"name": "avi-basic-auth"},
                "authMode": "basic",
                "tenant": "admin",
                "apiVersion": "22.1.3",
                "tls": {"caSecretRef": {"name": "avi-ca"}},
                "timeoutSeconds": 10
            },
            "metrics": [{
                "entity": {"type": "pool", "name": "k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress"},
                "metricId": "l4_server.avg_open_conns",
                "aggregation": "Sum",
                "target": {"type": "AverageValue", "averageValue": 200}
            }],
            "pollingIntervalSeconds": 15,
            "tolerance": 0.1,
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300,
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
            },
            "fallback": {"failureThreshold": 3, "replicas": 2},
            "paused": false
        }
    })
}

/// Sets (or with `None`, removes) the value at a JSON pointer, creating parents as needed.
fn set(v: &mut Value, pointer: &str, new: Option<Value>) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let mut cur = v;
    for seg in parent.split('/').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
            Value::Object(m) => m.entry(seg).or_insert_with(|| json!({})),
            _ => panic!("{pointer}: {seg} is not a container"),
        };
    }
    match (cur, new) {
        (Value::Object(m), Some(n)) => {
            m.insert(last.to_owned(), n);
        }
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Array(a), Some(n)) => a[last.parse::<usize>().unwrap()] = n,
        (other, _) => panic!("{pointer}: cannot set on {other}"),
    }
}

struct Case {
    name: &'static str,
    edits: Vec<(&'static str, Option<Value>)>,
    /// The error the API server reports, as `field: kind: value: detail`.
    expected: &'static str,
}

fn case(
    name: &'static str,
    edits: Vec<(&'static str, Option<Value>)>,
    expected: &'static str,
) -> Case {
    Case {
        name,
        edits,
        expected,
    }
}

fn invalid_cases() -> Vec<Case> {
    let metric = |n: usize| {
        json!({"entity": {"type": "pool", "name": format!("p{n}")}, "metricId": "l4_server.avg_open_conns",
               "target": {"type": "AverageValue", "averageValue": 10}})
    };
    vec![
        case(
            "maxReplicas below minReplicas",
            vec![
                ("/spec/minReplicas", Some(json!(4))),
                ("/spec/maxReplicas", Some(json!(3))),
            ],
            "spec.maxReplicas: Invalid value: 3: maxReplicas must be greater than or equal to minReplicas",
        ),
        case(
            "maxReplicas zero",
            vec![("/spec/maxReplicas", Some(json!(0)))],
            "spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1",
        ),
        case(
            "minReplicas zero",
            vec![("/spec/minReplicas", Some(json!(0)))],
            "spec.minReplicas: Invalid value: 0: spec.minReplicas in body should be greater than or equal to 1",
        ),
        case(
            "maxReplicas missing",
            vec![("/spec/maxReplicas", None)],
            "spec.maxReplicas: Required value",
        ),
        case(
            "no metrics",
            vec![("/spec/metrics", Some(json!([])))],
            "spec.metrics: Invalid value: 0: spec.metrics in body should have at least 1 items",
        ),
        case(
            "eleven metrics",
            vec![(
                "/spec/metrics",
                Some(Value::Array((0..11).map(metric).collect())),
            )],
            "spec.metrics: Too many: 11: must have at most 10 items",
        ),
        case(
            "Value target without value",
            vec![("/spec/metrics/0/target", Some(json!({"type": "Value"})))],
            "spec.metrics[0].target: Invalid value: \"object\": a target of type Value needs value (and no averageValue)",
        ),
        case(
            "Value target with averageValue",
            vec![(
                "/spec/metrics/0/target",
                Some(json!({"type": "Value", "value": 5, "averageValue": 5})),
            )],
            "spec.metrics[0].target: Invalid value: \"object\": a target of type Value needs value (and no averageValue)",
        ),
        case(
            "AverageValue target without averageValue",
            vec![(
                "/spec/metrics/0/target",
                Some(json!({"type": "AverageValue", "value": 200})),
            )],
            "spec.metrics[0].target: Invalid value: \"object\": a target of type AverageValue needs averageValue (and no value)",
        ),
        case(
            "target value zero",
            vec![(
                "/spec/metrics/0/target",
                Some(json!({"type": "Value", "value": 0})),
            )],
            "spec.metrics[0].target.value: Invalid value: 0: spec.metrics[0].target.value in body should be greater than 0",
        ),
        case(
            "target averageValue negative",
            vec![("/spec/metrics/0/target/averageValue", Some(json!(-5)))],
            "spec.metrics[0].target.averageValue: Invalid value: -5: spec.metrics[0].target.averageValue in body should be greater than 0",
        ),
        case(
            "unknown target type",
            vec![("/spec/metrics/0/target/type", Some(json!("Utilization")))],
            "spec.metrics[0].target.type: Unsupported value: \"Utilization\": supported values: \"Value\", \"AverageValue\"",
        ),
        case(
            "unknown entity type",
            vec![("/spec/metrics/0/entity/type", Some(json!("vsvip")))],
            "spec.metrics[0].entity.type: Unsupported value: \"vsvip\": supported values: \"pool\", \"virtualservice\", \"serviceengine\"",
        ),
        case(
            "entity with name and uuid",
            vec![("/spec/metrics/0/entity/uuid", Some(json!("pool-1234")))],
            "spec.metrics[0].entity: Invalid value: \"object\": set exactly one of entity.name and entity.uuid",
        ),
        case(
            "entity with neither name nor uuid",
            vec![("/spec/metrics/0/entity/name", None)],
            "spec.metrics[0].entity: Invalid value: \"object\": set exactly one of entity.name and entity.uuid",
        ),
        case(
            "metricId without family",
            vec![("/spec/metrics/0/metricId", Some(json!("avg_open_conns")))],
            "spec.metrics[0].metricId: Invalid value: \"avg_open_conns\": spec.metrics[0].metricId in body should match '^[a-z0-9_]+\\.[a-z0-9_]+$'",
        ),
        case(
            "metricId in Prometheus form",
            vec![(
                "/spec/metrics/0/metricId",
                Some(json!("avi_l4_server_avg_open_conns")),
            )],
            "spec.metrics[0].metricId: Invalid value: \"avi_l4_server_avg_open_conns\": spec.metrics[0].metricId in body should match '^[a-z0-9_]+\\.[a-z0-9_]+$'",
        ),
        case(
            "unknown aggregation",
            vec![("/spec/metrics/0/aggregation", Some(json!("Median")))],
            "spec.metrics[0].aggregation: Unsupported value: \"Median\": supported values: \"Sum\", \"Average\", \"Max\"",
        ),
        case(
            "aggregation on a virtual service",
            vec![("/spec/metrics/0/entity/type", Some(json!("virtualservice")))],
            "spec.metrics[0].aggregation: Invalid value: \"Sum\": aggregation applies only to pool metrics: virtual services and service engines answer one series",
        ),
        case(
            "no endpoints",
            vec![("/spec/controller/endpoints", Some(json!([])))],
            "spec.controller.endpoints: Invalid value: 0: spec.controller.endpoints in body should have at least 1 items",
        ),
        case(
            "plain http endpoint",
            vec![(
                "/spec/controller/endpoints",
                Some(json!(["http://192.168.31.246"])),
            )],
            "spec.controller.endpoints: Invalid value: \"array\": each endpoint must be an https:// URL with a host, for example https://avi.example.com",
        ),
        case(
            "endpoint that is no URL",
            vec![(
                "/spec/controller/endpoints",
                Some(json!(["https://a.example.com", "avi controller"])),
            )],
            "spec.controller.endpoints: Invalid value: \"array\": each endpoint must be an https:// URL with a host, for example https://avi.example.com",
        ),
        case(
            "unknown authMode",
            vec![("/spec/controller/authMode", Some(json!("token")))],
            "spec.controller.authMode: Unsupported value: \"token\": supported values: \"basic\", \"session\"",
        ),
        case(
            "empty tenant",
            vec![("/spec/controller/tenant", Some(json!("")))],
            "spec.controller.tenant: Invalid value: \"\": spec.controller.tenant in body should be at least 1 chars long",
        ),
        case(
            "malformed apiVersion",
            vec![("/spec/controller/apiVersion", Some(json!("22.1")))],
            "spec.controller.apiVersion: Invalid value: \"22.1\": spec.controller.apiVersion in body should match '^[0-9]+\\.[0-9]+\\.[0-9]+$'",
        ),
        case(
            "timeout zero",
            vec![("/spec/controller/timeoutSeconds", Some(json!(0)))],
            "spec.controller.timeoutSeconds: Invalid value: 0: spec.controller.timeoutSeconds in body should be greater than or equal to 1",
        ),
        case(
            "insecureSkipVerify with a CA",
            vec![("/spec/controller/tls/insecureSkipVerify", Some(json!(true)))],
            "spec.controller.tls: Invalid value: \"object\": caSecretRef has no effect when insecureSkipVerify is true; set only one of them",
        ),
        case(
            "credentials Secret missing",
            vec![("/spec/controller/credentialsSecretRef", None)],
            "spec.controller.credentialsSecretRef: Required value",
        ),
        case(
            "tolerance one",
            vec![("/spec/tolerance", Some(json!(1.0)))],
            "spec.tolerance: Invalid value: 1: spec.tolerance in body should be less than 1",
        ),
        case(
            "tolerance negative",
            vec![("/spec/tolerance", Some(json!(-0.1)))],
            "spec.tolerance: Invalid value: -0.1: spec.tolerance in body should be greater than or equal to 0",
        ),
        case(
            "polling interval zero",
            vec![("/spec/pollingIntervalSeconds", Some(json!(0)))],
            "spec.pollingIntervalSeconds: Invalid value: 0: spec.pollingIntervalSeconds in body should be greater than or equal to 1",
        ),
        case(
            "polling interval above an hour",
            vec![("/spec/pollingIntervalSeconds", Some(json!(3601)))],
            "spec.pollingIntervalSeconds: Invalid value: 3601: spec.pollingIntervalSeconds in body should be less than or equal to 3600",
        ),
        case(
            "policy value zero",
            vec![("/spec/behavior/scaleUp/policies/0/value", Some(json!(0)))],
            "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: spec.behavior.scaleUp.policies[0].value in body should be greater than or equal to 1",
        ),
        case(
            "policy period zero",
            vec![(
                "/spec/behavior/scaleDown/policies/0/periodSeconds",
                Some(json!(0)),
            )],
            "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 0: spec.behavior.scaleDown.policies[0].periodSeconds in body should be greater than or equal to 1",
        ),
        case(
            "policy period above 1800",
            vec![(
                "/spec/behavior/scaleUp/policies/0/periodSeconds",
                Some(json!(1801)),
            )],
            "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: spec.behavior.scaleUp.policies[0].periodSeconds in body should be less than or equal to 1800",
        ),
        case(
            "unknown policy type",
            vec![(
                "/spec/behavior/scaleUp/policies/0/type",
                Some(json!("Nodes")),
            )],
            "spec.behavior.scaleUp.policies[0].type: Unsupported value: \"Nodes\": supported values: \"Pods\", \"Percent\"",
        ),
        case(
            "no policies",
            vec![("/spec/behavior/scaleDown/policies", Some(json!([])))],
            "spec.behavior.scaleDown.policies: Invalid value: 0: spec.behavior.scaleDown.policies in body should have at least 1 items",
        ),
        case(
            "stabilization window negative",
            vec![(
                "/spec/behavior/scaleDown/stabilizationWindowSeconds",
                Some(json!(-1)),
            )],
            "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: -1: spec.behavior.scaleDown.stabilizationWindowSeconds in body should be greater than or equal to 0",
        ),
        case(
            "stabilization window above an hour",
            vec![(
                "/spec/behavior/scaleUp/stabilizationWindowSeconds",
                Some(json!(3601)),
            )],
            "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: spec.behavior.scaleUp.stabilizationWindowSeconds in body should be less than or equal to 3600",
        ),
        case(
            "unknown selectPolicy",
            vec![(
                "/spec/behavior/scaleUp/selectPolicy",
                Some(json!("Sometimes")),
            )],
            "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Sometimes\": supported values: \"Max\", \"Min\", \"Disabled\"",
        ),
        case(
            "direction tolerance one",
            vec![("/spec/behavior/scaleDown/tolerance", Some(json!(1)))],
            "spec.behavior.scaleDown.tolerance: Invalid value: 1: spec.behavior.scaleDown.tolerance in body should be less than 1",
        ),
        case(
            "fallback threshold zero",
            vec![("/spec/fallback/failureThreshold", Some(json!(0)))],
            "spec.fallback.failureThreshold: Invalid value: 0: spec.fallback.failureThreshold in body should be greater than or equal to 1",
        ),
        case(
            "fallback replicas zero",
            vec![("/spec/fallback/replicas", Some(json!(0)))],
            "spec.fallback.replicas: Invalid value: 0: spec.fallback.replicas in body should be greater than or equal to 1",
        ),
        case(
            "scale target without name",
            vec![("/spec/scaleTargetRef/name", None)],
            "spec.scaleTargetRef.name: Required value",
        ),
        case(
            "replicas of the wrong type",
            vec![("/spec/maxReplicas", Some(json!("five")))],
            "spec.maxReplicas: Invalid value: \"five\": spec.maxReplicas in body must be of type integer: \"string\"",
        ),
    ]
}

fn render(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Whether the Rust side also refuses the object: serde (for enums and types) or `resolve`.
fn rust_refuses(stored: &Value) -> bool {
    match serde_json::from_value::<AviAutoscaler>(stored.clone()) {
        Err(_) => true,
        Ok(obj) => obj.spec.resolve().is_err(),
    }
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
fn each_invalid_case_is_refused_with_its_message() {
    let schema = schema();
    let mut failures = Vec::new();
    for c in invalid_cases() {
        let mut obj = valid();
        for (pointer, value) in &c.edits {
            set(&mut obj, pointer, value.clone());
        }
        match admit(&schema, &obj, None) {
            Ok(_) => failures.push(format!("{}: admitted, expected `{}`", c.name, c.expected)),
            Err(errors) => {
                let got = render(&errors);
                if !got.iter().any(|e| e == c.expected) {
                    failures.push(format!(
                        "{}: expected `{}`, got {got:#?}",
                        c.name, c.expected
                    ));
                }
            }
        }
        // The same object, as stored without validation, must be refused by the Rust side too.
        let stored = testkit::schema::prune_and_default(&schema, &obj);
        if !rust_refuses(&stored) {
            failures.push(format!(
                "{}: the schema refuses it but resolve() accepts it",
                c.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn collect_rules(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(rules) = map
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            {
                for r in rules {
                    out.insert(
                        r["message"]
                            .as_str()
                            .expect("every rule has a message")
                            .to_owned(),
                    );
                }
            }
            map.values().for_each(|v| collect_rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_rules(v, out)),
        _ => {}
    }
}

#[test]
fn every_cel_rule_fires_in_some_case() {
    let schema = schema();
    let mut rules = BTreeSet::new();
    collect_rules(&schema, &mut rules);
    assert!(
        rules.len() >= 6,
        "expected the CRD to carry CEL rules, found {rules:?}"
    );
    let expected: Vec<&str> = invalid_cases().iter().map(|c| c.expected).collect();
    let never_fired: Vec<&String> = rules
        .iter()
        .filter(|r| !expected.iter().any(|e| e.ends_with(r.as_str())))
        .collect();
    assert!(
        never_fired.is_empty(),
        "CEL rules no case exercises: {never_fired:#?}"
    );
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
