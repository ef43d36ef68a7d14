//! A minimal OpenAPI v3 discovery (`/openapi/v3` and one document per group/version).
//!
//! It declares, per resource, the PATCH operation with its content types and the
//! `fieldValidation` parameter, which is what `kubectl apply` checks before it relies on
//! server-side field validation (so `--validate=false` is not needed), and it carries each
//! CRD's structural schema (so `kubectl explain` works for custom resources). Built-in types
//! carry no schemas.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the documents by group/version, with a content hash in each URL.
pub(crate) fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, vs) in reg.groups() {
        for v in vs {
            let p = gv_path(&g, &v);
            let doc = group_version(reg, &p).unwrap_or(Value::Null);
            let mut h = DefaultHasher::new();
            doc.to_string().hash(&mut h);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", h.finish())}),
            );
        }
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn definition_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
}

fn item_path(t: &ResourceType) -> String {
    let prefix = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
    } else {
        format!("{prefix}/{}/{{name}}", t.plural)
    }
}

/// `/openapi/v3/{api/v1 | apis/group/version}`.
pub(crate) fn group_version(reg: &Registry, gv: &str) -> Option<Value> {
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => return None,
    };
    let types = reg.in_group_version(&group, &version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let content: Map<String, Value> = t
            .patch_types()
            .into_iter()
            .map(|ct| (ct.to_owned(), json!({"schema": {"type": "object"}})))
            .collect();
        paths.insert(
            item_path(t),
            json!({
                "patch": {
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                    "requestBody": {"content": content, "required": true},
                    "responses": {"200": {"description": "OK"}},
                }
            }),
        );
        if let Some(schema) = t.crd.as_ref().and_then(|c| c.schema.clone()) {
            let mut s = schema;
            s["x-kubernetes-group-version-kind"] = json!([gvk]);
            schemas.insert(definition_name(t), s);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::discovery::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_declare_field_validation() {
        let reg = Registry::with_builtins();
        let r = root(&reg);
        let url = r["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(&reg, "apis/apps/v1").unwrap();
        let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(group_version(&reg, "apis/nope/v1").is_none());
        assert!(group_version(&Registry::with_builtins(), "api/v1").is_some());
    }
}
