//! The operator's validation against the generated CRD: each case the API server refuses is
//! refused here with the API server's field path and message, every CEL rule of the CRD has a
//! case, and every bound of the CRD (minimum, maximum, lengths, item counts, enum, pattern,
//! int32) is enforced. A new rule or bound without a case fails these tests.

use api::AviAutoscaler;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::{admit, resolve};

#[path = "../../../api/tests/support/fixture.rs"]
mod fixture;
use fixture::{set, valid};

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
            "minReplicas negative",
            vec![("/spec/minReplicas", Some(json!(-1)))],
            "spec.minReplicas: Invalid value: -1: spec.minReplicas in body should be greater than or equal to 0",
        ),
        case(
            "minReplicas zero without an activation value",
            vec![("/spec/minReplicas", Some(json!(0)))],
            "spec.minReplicas: Invalid value: 0: minReplicas 0 needs at least one metric with activationValue, so that a metric can scale the target up from zero again",
        ),
        case(
            "neither controllerRef nor controller",
            vec![("/spec/controller", None)],
            "spec: Invalid value: \"object\": set exactly one of controllerRef (an AviController) and controller (an inline connection)",
        ),
        case(
            "both controllerRef and controller",
            vec![("/spec/controllerRef", Some(json!({"name": "prod-avi"})))],
            "spec: Invalid value: \"object\": set exactly one of controllerRef (an AviController) and controller (an inline connection)",
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

/// The violations as `field: message`, which is how the API server prints each error.
fn render(invalid: &api::InvalidSpec) -> Vec<String> {
    invalid
        .0
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect()
}

fn with_edits(c: &Case) -> Value {
    let mut obj = valid();
    for (pointer, value) in &c.edits {
        set(&mut obj, pointer, value.clone());
    }
    obj
}

#[test]
fn the_valid_object_is_admitted_and_resolves() {
    let obj: AviAutoscaler = serde_json::from_value(valid()).unwrap();
    let spec = resolve(&obj).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((spec.min_replicas, spec.max_replicas), (1, 5));
}

#[test]
fn each_invalid_case_is_refused_with_the_api_servers_message() {
    let mut failures = Vec::new();
    for c in invalid_cases() {
        let obj = with_edits(&c);
        match admit(&obj) {
            Ok(_) => failures.push(format!("{}: admitted, expected `{}`", c.name, c.expected)),
            Err(invalid) => {
                let got = render(&invalid);
                if !got.iter().any(|e| e == c.expected) {
                    failures.push(format!(
                        "{}: expected `{}`, got {got:#?}",
                        c.name, c.expected
                    ));
                }
            }
        }
        // The same object as the operator reads it from a watch, where it deserializes (an
        // API server that skipped the check stored it): refused with the same message.
        if let Ok(typed) = serde_json::from_value::<AviAutoscaler>(obj) {
            match resolve(&typed) {
                Ok(_) => failures.push(format!("{}: the operator would act on it", c.name)),
                Err(invalid) if !render(&invalid).iter().any(|e| e == c.expected) => {
                    failures.push(format!("{}: the operator reports {invalid}", c.name))
                }
                Err(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn schema() -> Value {
    let crd = serde_json::to_value(AviAutoscaler::crd()).unwrap();
    crd_schema::crd_version_schema(&crd, api::VERSION)
        .expect("the CRD serves its version")
        .clone()
}

/// A place in an object: the API server's field path (`spec.metrics[0].target`) and the JSON
/// pointer to it (`/spec/metrics/0/target`). Lists are entered at their first item.
#[derive(Clone, Debug, Default)]
struct At {
    field: String,
    pointer: String,
}

impl At {
    fn property(&self, name: &str) -> At {
        At {
            field: if self.field.is_empty() {
                name.to_owned()
            } else {
                format!("{}.{name}", self.field)
            },
            pointer: format!("{}/{name}", self.pointer),
        }
    }

    fn item(&self) -> At {
        At {
            field: format!("{}[0]", self.field),
            pointer: format!("{}/0", self.pointer),
        }
    }
}

/// Visits every schema node under `spec` with where it is.
fn walk(schema: &Value, at: &At, visit: &mut dyn FnMut(&Value, &At)) {
    visit(schema, at);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, s) in props {
            walk(s, &at.property(name), visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, &at.item(), visit);
    }
}

fn spec_schema() -> (Value, At) {
    let spec = schema()["properties"]["spec"].clone();
    (spec, At::default().property("spec"))
}

#[test]
fn every_cel_rule_refuses_an_object_with_its_message_and_field() {
    let (spec, at) = spec_schema();
    let mut rules = Vec::new();
    walk(&spec, &at, &mut |s, at| {
        for rule in s
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let message = rule["message"].as_str().expect("every rule has a message");
            // fieldPath is relative to the node the rule sits on (`.maxReplicas`).
            let field = match rule.get("fieldPath").and_then(Value::as_str) {
                Some(path) => format!("{}{path}", at.field),
                None => at.field.clone(),
            };
            rules.push((field, message.to_owned()));
        }
    });
    assert!(
        rules.len() >= 7,
        "expected the CRD's CEL rules, found {rules:?}"
    );
    let mut failures = Vec::new();
    for (field, message) in &rules {
        let cases: Vec<Case> = invalid_cases()
            .into_iter()
            .filter(|c| {
                c.expected.starts_with(&format!("{field}: "))
                    && c.expected.ends_with(message.as_str())
            })
            .collect();
        if cases.is_empty() {
            failures.push(format!("no case violates the rule on {field}: {message}"));
        }
        for c in cases {
            match admit(&with_edits(&c)) {
                Err(invalid) if render(&invalid).iter().any(|e| e == c.expected) => {}
                other => failures.push(format!("{}: {field}: {message}: got {other:?}", c.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A value that breaks `keyword` of `schema` at `at` in the valid object, and what the error
/// the API server reports for it says.
fn violation(schema: &Value, keyword: &str, at: &At) -> Option<(Value, String)> {
    let bound = schema.get(keyword)?;
    let current = valid().pointer(&at.pointer).cloned();
    let flag = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    // An integer field gets an integer, so only the bound is broken, not the type.
    let integer = schema.get("type") == Some(&json!("integer"));
    let number = |n: f64| if integer { json!(n as i64) } else { json!(n) };
    let bound_n = || bound.as_f64().expect("a numeric bound");
    let count = || bound.as_u64().expect("a count bound") as usize;
    Some(match keyword {
        "minimum" if flag("exclusiveMinimum") => {
            (number(bound_n()), "should be greater than".to_owned())
        }
        "minimum" => (
            number(bound_n() - 1.0),
            "should be greater than or equal to".to_owned(),
        ),
        "maximum" if flag("exclusiveMaximum") => {
            (number(bound_n()), "should be less than".to_owned())
        }
        "maximum" => (
            number(bound_n() + 1.0),
            "should be less than or equal to".to_owned(),
        ),
        "minLength" => (
            json!("a".repeat(count() - 1)),
            format!("should be at least {} chars long", count()),
        ),
        "maxLength" => (
            json!("a".repeat(count() + 1)),
            format!("may not be more than {} bytes", count()),
        ),
        "minItems" => {
            let items = current?
                .as_array()?
                .iter()
                .take(count() - 1)
                .cloned()
                .collect();
            (
                Value::Array(items),
                format!("should have at least {} items", count()),
            )
        }
        "maxItems" => {
            let first = current?.get(0)?.clone();
            (
                Value::Array(vec![first; count() + 1]),
                format!("must have at most {} items", count()),
            )
        }
        "enum" => (json!("NotInTheEnum"), "Unsupported value".to_owned()),
        "pattern" => (json!("!"), "should match".to_owned()),
        "format" if bound == "int32" => (
            json!(i64::from(i32::MAX) + 1),
            "must be of type int32".to_owned(),
        ),
        _ => return None,
    })
}

#[test]
fn every_bound_of_the_crd_is_enforced() {
    const KEYWORDS: [&str; 9] = [
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "enum",
        "pattern",
        "format",
    ];
    let (spec, at) = spec_schema();
    let mut bounds = Vec::new();
    walk(&spec, &at, &mut |s, at| {
        for keyword in KEYWORDS {
            if s.get(keyword).is_some() {
                bounds.push((s.clone(), keyword, at.clone()));
            }
        }
    });
    let mut failures = Vec::new();
    let mut checked = 0;
    for (s, keyword, at) in &bounds {
        // `format: double` and the like are no bound.
        if *keyword == "format" && s["format"] != "int32" {
            continue;
        }
        let Some((value, says)) = violation(s, keyword, at) else {
            failures.push(format!(
                "{}: no violating value for {keyword} (is it in the valid object?)",
                at.field
            ));
            continue;
        };
        let mut obj = valid();
        set(&mut obj, &at.pointer, Some(value.clone()));
        checked += 1;
        match admit(&obj) {
            Err(invalid)
                if invalid
                    .0
                    .iter()
                    .any(|v| v.field == at.field && v.message.contains(&says)) => {}
            other => failures.push(format!(
                "{}: {keyword} with {value}: expected an error saying `{says}`, got {other:?}",
                at.field
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 40,
        "expected the CRD's bounds, checked {checked}"
    );
}
