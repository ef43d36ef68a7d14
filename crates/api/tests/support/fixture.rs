//! A valid AviAutoscaler and a JSON-pointer setter, shared by the CRD validation tests of the
//! `api` crate and of the operator (which includes this file with `#[path]`), so both refuse
//! the same objects.

use serde_json::{Value, json};

/// A valid AviAutoscaler with every field that a test case breaks.
pub fn valid() -> Value {
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
pub fn set(v: &mut Value, pointer: &str, new: Option<Value>) {
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
