//! The `avi-autoscaler` command line, run as a real process.

use serde::Deserialize;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avi-autoscaler"))
        .args(args)
        .output()
        .expect("avi-autoscaler runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The checked-in CRD files, in the order `crd` prints them.
const CRD_FILES: [&str; 2] = [
    "aviautoscalers.autoscaling.avi.dev.yaml",
    "avicontrollers.autoscaling.avi.dev.yaml",
];

/// The documents `crd` prints.
fn crds() -> Vec<serde_json::Value> {
    let out = run(&["crd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_yaml::Deserializer::from_str(&stdout(&out))
        .map(|doc| serde_json::Value::deserialize(doc).expect("each document is YAML"))
        .collect()
}

#[test]
fn crd_prints_the_checked_in_crds_as_one_stream() {
    let out = run(&["crd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checked_in: Vec<String> = CRD_FILES
        .iter()
        .map(|f| {
            let path = format!("{}/../../config/crd/{f}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(path).expect("config/crd is checked in")
        })
        .collect();
    assert!(
        stdout(&out) == checked_in.join("---\n"),
        "config/crd is out of date: run `make crd` and commit it"
    );
}

#[test]
fn crd_out_dir_writes_the_checked_in_files() {
    let dir = std::env::temp_dir().join(format!("avi-autoscaler-crd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&["crd", "--out-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in CRD_FILES {
        let written = std::fs::read_to_string(dir.join(f)).unwrap();
        let checked_in = std::fs::read_to_string(format!(
            "{}/../../config/crd/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(written == checked_in, "{f} differs from config/crd/{f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn avicontroller_crd_is_cluster_scoped_with_the_contracted_names() {
    let crds = crds();
    assert_eq!(crds.len(), 2);
    let crd = &crds[1];
    assert_eq!(
        crd["metadata"]["name"],
        "avicontrollers.autoscaling.avi.dev"
    );
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(crd["spec"]["names"]["kind"], "AviController");
    assert_eq!(crd["spec"]["names"]["plural"], "avicontrollers");
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["avic"])
    );
    assert_eq!(
        crd["spec"]["names"]["categories"],
        serde_json::json!(["autoscaling"])
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Ready",
            "Endpoint",
            "Version",
            "Tenant",
            "Autoscalers",
            "Age"
        ]
    );
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "endpoints",
        "tenant",
        "apiVersion",
        "authMode",
        "credentialsSecretRef",
        "tls",
        "timeoutSeconds",
        "namespaceSelector",
    ] {
        assert!(
            spec.get(field).is_some(),
            "AviController spec lacks {field}"
        );
    }
    let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    for field in [
        "conditions",
        "version",
        "activeEndpoint",
        "autoscalers",
        "lastProbeTime",
        "observedGeneration",
    ] {
        assert!(
            status.get(field).is_some(),
            "AviController status lacks {field}"
        );
    }
}

#[test]
fn crd_is_a_v1_crd_with_the_contracted_names() {
    let crd = &crds()[0];
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(
        crd["metadata"]["name"],
        "aviautoscalers.autoscaling.avi.dev"
    );
    assert_eq!(crd["spec"]["group"], "autoscaling.avi.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "AviAutoscaler");
    assert_eq!(crd["spec"]["names"]["plural"], "aviautoscalers");
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["aas"])
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("priority").is_none())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Target", "Metric", "Min", "Max", "Replicas", "Mode", "Age"]
    );
    let schema = &version["schema"]["openAPIV3Schema"];
    assert!(schema["properties"]["spec"]["x-kubernetes-validations"].is_array());
}

#[test]
fn crd_schema_is_structural() {
    // A structural schema has a type on every node and no $ref/anyOf/oneOf with types inside.
    fn walk(path: &str, s: &serde_json::Value, problems: &mut Vec<String>) {
        let Some(map) = s.as_object() else { return };
        if map.contains_key("$ref")
            || map.contains_key("oneOf")
            || map.contains_key("anyOf")
            || map.contains_key("allOf")
        {
            problems.push(format!("{path}: uses $ref/oneOf/anyOf/allOf"));
        }
        let int_or_string = map.get("x-kubernetes-int-or-string").is_some();
        let preserve = map.get("x-kubernetes-preserve-unknown-fields").is_some();
        if !map.contains_key("type") && !int_or_string && !preserve {
            problems.push(format!("{path}: no type"));
        }
        if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
            for (k, v) in props {
                walk(&format!("{path}.{k}"), v, problems);
            }
        }
        if let Some(items) = map.get("items") {
            walk(&format!("{path}[]"), items, problems);
        }
    }
    let mut problems = Vec::new();
    for crd in crds() {
        walk(
            crd["metadata"]["name"].as_str().unwrap(),
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn version_and_help_are_useful() {
    // The User-Agent of its requests: product/version and the commit it was built from.
    let sha = std::env::var("AVI_AUTOSCALER_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let expected = format!("avi-autoscaler/{} ({sha})", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["-V"], &["run", "--version"]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), expected, "{args:?}");
    }
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for word in ["Avi", "crd", "Usage"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn unknown_subcommands_and_flags_fail_clearly() {
    let out = run(&["scale-everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unrecognized subcommand 'scale-everything'"),
        "{}",
        stderr(&out)
    );
    let out = run(&["crd", "--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unexpected argument '--frobnicate'"),
        "{}",
        stderr(&out)
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage"), "{}", stderr(&out));
}
