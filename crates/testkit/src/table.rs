//! `meta.k8s.io/v1` Table responses, the server-side printing `kubectl get` asks for.
//!
//! Built-in types get the columns of kube-apiserver's printers for the fields the stand-in
//! stores; custom resources get their CRD's `additionalPrinterColumns`, evaluated with the
//! JSONPath subset in [`crate::jsonpath`].

use serde_json::{Value, json};

use crate::clock;
use crate::jsonpath::print_value;
use crate::resources::{Printer, ResourceType};
use crate::selectors::format_label_selector;

/// What each row carries in `object` (the `includeObject` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub(crate) fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("" | "Metadata") => Ok(Include::Metadata),
            Some("None") => Ok(Include::None),
            Some("Object") => Ok(Include::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

fn col(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated.";
const AGE_DESC: &str =
    "CreationTimestamp is a timestamp representing the server time when this object was created.";

/// The column definitions of a type's table.
pub(crate) fn columns(rt: &ResourceType) -> Vec<Value> {
    let name = col("Name", "string", "name", NAME_DESC, 0);
    let age = col("Age", "string", "", AGE_DESC, 0);
    match rt.printer {
        Printer::Namespace => vec![
            name,
            col("Status", "string", "", "The status of the namespace", 0),
            age,
        ],
        Printer::Secret => vec![
            name,
            col("Type", "string", "", "The type of the secret", 0),
            col(
                "Data",
                "string",
                "",
                "The number of entries in the secret",
                0,
            ),
            age,
        ],
        Printer::ConfigMap => vec![
            name,
            col(
                "Data",
                "string",
                "",
                "The number of entries in the config map",
                0,
            ),
            age,
        ],
        Printer::Deployment => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            col(
                "Up-to-date",
                "string",
                "",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            col(
                "Available",
                "string",
                "",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            age,
            col(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                1,
            ),
            col(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                1,
            ),
            col(
                "Selector",
                "string",
                "",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                1,
            ),
        ],
        Printer::StatefulSet => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            age,
            col(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                1,
            ),
            col(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                1,
            ),
        ],
        Printer::ReplicaSet => vec![
            name,
            col(
                "Desired",
                "integer",
                "",
                "Replicas is the number of desired replicas.",
                0,
            ),
            col(
                "Current",
                "integer",
                "",
                "Replicas is the most recently observed number of replicas.",
                0,
            ),
            col(
                "Ready",
                "integer",
                "",
                "The number of ready replicas for this replica set.",
                0,
            ),
            age,
            col(
                "Containers",
                "string",
                "",
                "Names of each container in the template.",
                1,
            ),
            col(
                "Images",
                "string",
                "",
                "Images referenced by each container in the template.",
                1,
            ),
            col(
                "Selector",
                "string",
                "",
                "Selector is a label query over pods that should match the replica count.",
                1,
            ),
        ],
        Printer::Event => vec![
            col(
                "Last Seen",
                "string",
                "",
                "The last time the event was seen",
                0,
            ),
            col(
                "Type",
                "string",
                "",
                "Type of this event (Normal, Warning), new types could be added in the future.",
                0,
            ),
            col(
                "Reason",
                "string",
                "",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                0,
            ),
            col(
                "Object",
                "string",
                "",
                "The object that this event is about.",
                0,
            ),
            col(
                "Subobject",
                "string",
                "",
                "The subobject that this event is about.",
                1,
            ),
            col(
                "Source",
                "string",
                "",
                "The component reporting this event.",
                1,
            ),
            col(
                "Message",
                "string",
                "",
                "A human-readable description of the status of this operation.",
                0,
            ),
            col(
                "First Seen",
                "string",
                "",
                "The first time the event was seen",
                1,
            ),
            col(
                "Count",
                "string",
                "",
                "The number of times this event has occurred.",
                1,
            ),
            col("Name", "string", "name", NAME_DESC, 1),
        ],
        Printer::Lease => vec![
            name,
            col("Holder", "string", "", "The holder of the lease", 0),
            age,
        ],
        Printer::Crd => vec![name, col("Created At", "date", "", AGE_DESC, 0)],
        Printer::Service => vec![
            name,
            col("Type", "string", "", "The type of the service", 0),
            col(
                "Cluster-IP",
                "string",
                "",
                "The cluster IP of the service",
                0,
            ),
            col(
                "External-IP",
                "string",
                "",
                "The external IP of the service",
                0,
            ),
            col("Port(s)", "string", "", "The ports of the service", 0),
            age,
            col("Selector", "string", "", "The selector of the service", 1),
        ],
        Printer::Pod => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted.",
                0,
            ),
            age,
        ],
        Printer::Custom => {
            let mut cols = vec![name];
            if let Some(crd) = &rt.crd {
                cols.extend(
                    crd.columns
                        .iter()
                        .map(|c| col(&c.name, &c.type_, &c.format, &c.description, c.priority)),
                );
            }
            cols
        }
        Printer::Default => vec![name, col("Created At", "date", "", AGE_DESC, 0)],
    }
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn i(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn count(v: &Value, p: &str) -> usize {
    v.pointer(p)
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0)
}

fn containers(v: &Value, field: &str) -> String {
    v.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c.get(field).and_then(Value::as_str).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector(v: &Value) -> String {
    v.pointer("/spec/selector")
        .map(format_label_selector)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".to_owned())
}

fn age(v: &Value) -> Value {
    json!(clock::age(
        v.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
    ))
}

/// `kind/name` of an event's object, as the event printer shows it.
fn event_cells(v: &Value) -> Vec<Value> {
    let first = match s(v, "/firstTimestamp") {
        "" => clock::age(v.pointer("/eventTime").and_then(Value::as_str)),
        t => clock::age(Some(t)),
    };
    let mut last = match s(v, "/lastTimestamp") {
        "" => first.clone(),
        t => clock::age(Some(t)),
    };
    let mut n = i(v, "/count");
    if let Some(series) = v.get("series").filter(|x| x.is_object()) {
        last = clock::age(series.get("lastObservedTime").and_then(Value::as_str));
        n = series.get("count").and_then(Value::as_i64).unwrap_or(n);
    } else if n == 0 {
        n = 1;
    }
    let mut source = s(v, "/source/component").to_owned();
    if source.is_empty() {
        source = s(v, "/reportingComponent").to_owned();
    }
    let host = s(v, "/source/host");
    if !host.is_empty() {
        source = format!("{source}, {host}");
    }
    vec![
        json!(last),
        json!(s(v, "/type")),
        json!(s(v, "/reason")),
        json!(format!(
            "{}/{}",
            s(v, "/involvedObject/kind").to_lowercase(),
            s(v, "/involvedObject/name")
        )),
        json!(s(v, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(v, "/message").trim()),
        json!(first),
        json!(n.to_string()),
        json!(s(v, "/metadata/name")),
    ]
}

/// The cells of one row. `obj` is the stored form (core/v1 for events).
pub(crate) fn cells(rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = json!(s(obj, "/metadata/name"));
    match rt.printer {
        Printer::Namespace => vec![name, json!(s(obj, "/status/phase")), age(obj)],
        Printer::Secret => vec![
            name,
            json!(s(obj, "/type")),
            json!(count(obj, "/data")),
            age(obj),
        ],
        Printer::ConfigMap => vec![
            name,
            json!(count(obj, "/data") + count(obj, "/binaryData")),
            age(obj),
        ],
        Printer::Deployment => vec![
            name,
            json!(format!(
                "{}/{}",
                i(obj, "/status/readyReplicas"),
                i(obj, "/spec/replicas")
            )),
            json!(i(obj, "/status/updatedReplicas")),
            json!(i(obj, "/status/availableReplicas")),
            age(obj),
            json!(containers(obj, "name")),
            json!(containers(obj, "image")),
            json!(selector(obj)),
        ],
        Printer::StatefulSet => vec![
            name,
            json!(format!(
                "{}/{}",
                i(obj, "/status/readyReplicas"),
                i(obj, "/spec/replicas")
            )),
            age(obj),
            json!(containers(obj, "name")),
            json!(containers(obj, "image")),
        ],
        Printer::ReplicaSet => vec![
            name,
            json!(i(obj, "/spec/replicas")),
            json!(i(obj, "/status/replicas")),
            json!(i(obj, "/status/readyReplicas")),
            age(obj),
            json!(containers(obj, "name")),
            json!(containers(obj, "image")),
            json!(selector(obj)),
        ],
        Printer::Event => event_cells(obj),
        Printer::Lease => vec![name, json!(s(obj, "/spec/holderIdentity")), age(obj)],
        Printer::Crd | Printer::Default => vec![name, json!(s(obj, "/metadata/creationTimestamp"))],
        Printer::Service => {
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "<none>".to_owned());
            let sel = obj
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|x| !x.is_empty())
                .unwrap_or_else(|| "<none>".to_owned());
            let ty = match s(obj, "/spec/type") {
                "" => "ClusterIP",
                t => t,
            };
            let ip = match s(obj, "/spec/clusterIP") {
                "" => "<none>",
                x => x,
            };
            vec![
                name,
                json!(ty),
                json!(ip),
                json!("<none>"),
                json!(ports),
                age(obj),
                json!(sel),
            ]
        }
        Printer::Pod => {
            let n = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let phase = match s(obj, "/status/phase") {
                "" => "Pending",
                p => p,
            };
            vec![
                name,
                json!(format!("0/{n}")),
                json!(phase),
                json!("0"),
                age(obj),
            ]
        }
        Printer::Custom => {
            let mut cells = vec![name];
            if let Some(crd) = &rt.crd {
                for c in &crd.columns {
                    cells.push(custom_cell(&c.type_, c.path.first(obj)));
                }
            }
            cells
        }
    }
}

/// `cellForJSONValue` of the apiextensions table convertor.
fn custom_cell(type_: &str, value: Option<&Value>) -> Value {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match type_ {
        "string" => json!(print_value(v)),
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Value::from)
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match v.as_str() {
            Some(t) if clock::parse(t).is_some() => json!(clock::age(Some(t))),
            Some(_) => json!("<invalid>"),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// One table row; `stored` gives the cells, `presented` the object the row carries.
pub(crate) fn row(rt: &ResourceType, stored: &Value, presented: &Value, include: Include) -> Value {
    let mut r = json!({"cells": cells(rt, stored)});
    match include {
        Include::None => {}
        Include::Metadata => {
            r["object"] = partial_metadata(presented);
        }
        Include::Object => {
            r["object"] = presented.clone();
        }
    }
    r
}

/// The `PartialObjectMetadata` of an object.
pub(crate) fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A Table with the given rows and list metadata.
pub(crate) fn table(rt: &ResourceType, rows: Vec<Value>, metadata: Value, headers: bool) -> Value {
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": rows,
    });
    if headers {
        t["columnDefinitions"] = Value::Array(columns(rt));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Registry, from_crd};

    #[test]
    fn deployment_rows() {
        let rt = Registry::with_builtins()
            .resolve("apps/v1", "Deployment")
            .unwrap();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": clock::now_time()},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells(&rt, &d);
        assert_eq!(c.len(), columns(&rt).len());
        assert_eq!(c[1], "2/3");
        assert_eq!(c[2], 3);
        assert_eq!(c[4], "0s");
        assert_eq!(c[5], "a,b");
        assert_eq!(c[7], "app=web");
    }

    #[test]
    fn custom_columns_follow_the_crd() {
        let crd = json!({"metadata": {"name": "ws.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"},
            "versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                {"name": "Max", "type": "integer", "jsonPath": ".spec.max"},
                {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}});
        let rt = from_crd(&crd).unwrap().remove(0);
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2000-01-01T00:00:00Z"},
            "spec": {"max": 5.0}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let c = cells(&rt, &obj);
        assert_eq!(c[0], "w");
        assert_eq!(c[1], "True");
        assert_eq!(c[2], 5);
        assert_eq!(c[3], Value::Null);
        assert!(c[4].as_str().unwrap().ends_with('y'), "{}", c[4]);
        assert_eq!(columns(&rt).len(), 5);
    }

    #[test]
    fn event_rows_use_series_and_reporting_controller() {
        let rt = Registry::with_builtins().resolve("v1", "Event").unwrap();
        let now = clock::now_micro_time();
        let e = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "AviAutoscaler", "name": "kuard"},
            "reason": "SuccessfulRescale", "type": "Normal", "message": " New size: 5 ",
            "reportingComponent": "avi-autoscaler", "eventTime": now,
            "series": {"count": 3, "lastObservedTime": now}});
        let c = cells(&rt, &e);
        assert_eq!(c[3], "aviautoscaler/kuard");
        assert_eq!(c[5], "avi-autoscaler");
        assert_eq!(c[6], "New size: 5");
        assert_eq!(c[8], "3");
    }
}
