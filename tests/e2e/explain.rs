//! `kubectl explain` on every field of both CRDs, with the real kubectl against the API
//! stand-in (which serves the CRDs' schemas as OpenAPI v3, as the API server does).
//!
//! A field must explain itself: an empty text, or one that is only the description of the
//! field's Rust type (what schemars put there when an `Option<Enum>` field was flattened into
//! the enum's schema), fails, naming the field.

use std::collections::BTreeMap;

use api::{AviAutoscalerSpec, AviAutoscalerStatus, AviControllerSpec, AviControllerStatus};
use e2e::{Cluster, workspace_root};
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

/// Whitespace-normalised text, so kubectl's wrapping and the YAML's line breaks compare equal.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The descriptions of the named types the CRDs' schemas are generated from, by description
/// (with the type's name, for the message).
fn type_descriptions() -> BTreeMap<String, String> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    fn add<T: JsonSchema>(g: &mut schemars::SchemaGenerator) {
        g.subschema_for::<T>();
    }
    add::<AviAutoscalerSpec>(&mut generator);
    add::<AviAutoscalerStatus>(&mut generator);
    add::<AviControllerSpec>(&mut generator);
    add::<AviControllerStatus>(&mut generator);
    generator
        .definitions()
        .iter()
        .filter_map(|(name, schema)| {
            let text = schema.get("description")?.as_str()?;
            Some((words(text), name.clone()))
        })
        .collect()
}

/// Every field path below `spec` and `status` (`spec.metrics.entity.name`: kubectl's form,
/// without list markers).
fn field_paths(schema: &Value, path: &str, out: &mut Vec<String>) {
    let mut schema = schema;
    while schema.get("type").and_then(Value::as_str) == Some("array") {
        schema = &schema["items"];
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            out.push(child_path.clone());
            field_paths(child, &child_path, out);
        }
    }
}

/// The text under `DESCRIPTION:` of `kubectl explain` (up to the next section).
fn description(explain: &str) -> String {
    let mut lines = explain.lines().skip_while(|l| l.trim() != "DESCRIPTION:");
    lines.next();
    words(
        &lines
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_explains_itself() {
    let cluster = Cluster::start(std::time::Duration::from_millis(100)).await;
    let types = type_descriptions();
    assert!(!types.is_empty(), "the type descriptions were generated");
    let mut checked = 0;
    let mut bad = Vec::new();
    for file in [
        "aviautoscalers.autoscaling.avi.dev.yaml",
        "avicontrollers.autoscaling.avi.dev.yaml",
    ] {
        let path = workspace_root().join("config/crd").join(file);
        cluster.kubectl_ok(&["apply", "-f", path.to_str().expect("a UTF-8 path")], None);
        let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("the CRD"))
            .expect("the CRD is YAML");
        let plural = crd["spec"]["names"]["plural"].as_str().expect("a plural");
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut paths = Vec::new();
        for top in ["spec", "status"] {
            field_paths(&root["properties"][top], top, &mut paths);
        }
        for field in paths {
            let out = cluster.kubectl_ok(&["explain", &format!("{plural}.{field}")], None);
            let text = description(&out);
            if text.is_empty() {
                bad.push(format!("{plural}.{field}: no description"));
            } else if let Some(type_name) = types.get(&text) {
                bad.push(format!(
                    "{plural}.{field}: shows only the description of its type {type_name}: {text:?}"
                ));
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} fields were explained");
    assert!(
        bad.is_empty(),
        "fields whose `kubectl explain` text is not their own (document the field, and keep \
         the type's description out of its schema):\n{}",
        bad.join("\n")
    );
}
