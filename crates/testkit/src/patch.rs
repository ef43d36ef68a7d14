//! Patch content types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch (the directive set `kubectl apply` and `kubectl patch` produce for built-in types).

use serde_json::{Map, Value};

use crate::fields::{ListKind, Pe, item_key, list_kind};
use crate::resources::ResourceType;

/// A patch body with its content type.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// `application/merge-patch+json`.
    Merge(Value),
    /// `application/json-patch+json`: an array of operations.
    Json(Value),
    /// `application/strategic-merge-patch+json` (built-in types only).
    Strategic(Value),
    /// `application/apply-patch+yaml`: server-side apply of a full configuration.
    Apply {
        /// The applied configuration (needs `apiVersion` and `kind`).
        config: Value,
        /// The field manager; the API server refuses an apply without one.
        field_manager: String,
        /// Take over fields other managers own instead of failing with a conflict.
        force: bool,
    },
}

impl Patch {
    /// The content type the patch is sent with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Apply { .. } => "application/apply-patch+yaml",
        }
    }
}

/// Applies a JSON merge patch.
pub(crate) fn merge(original: &Value, patch: &Value) -> Value {
    let mut out = original.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// Applies a JSON patch; the error is the reason it failed.
pub(crate) fn json(original: &Value, patch: &Value) -> Result<Value, String> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut out = original.clone();
    // Applied to a copy that is dropped on failure: json_patch::patch's own rollback panics
    // when it cannot undo some operations (a move into itself, say).
    json_patch::patch_unsafe(&mut out, &ops).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Applies a strategic merge patch to an object of type `rt`.
pub(crate) fn strategic(
    rt: &ResourceType,
    original: &Value,
    patch: &Value,
) -> Result<Value, String> {
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => {
            Ok(merge_map(rt, o, p, &mut Vec::new())?.unwrap_or_else(|| Value::Object(Map::new())))
        }
        (_, Value::Object(p)) => Ok(strip_directives(&Value::Object(p.clone()))),
        _ => Err("a strategic merge patch must be a JSON object".to_owned()),
    }
}

/// Merges a map patch; `None` means the patch deletes the map (`$patch: delete`).
fn merge_map(
    rt: &ResourceType,
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<Pe>,
) -> Result<Option<Value>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut p = patch.clone();
            p.remove("$patch");
            return Ok(Some(strip_directives(&Value::Object(p))));
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    let mut out = original.clone();
    let mut orders: Vec<(String, &Vec<Value>)> = Vec::new();
    for (k, pv) in patch {
        if k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            if let Some(order) = pv.as_array() {
                orders.push((field.to_owned(), order));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (out.get_mut(field), pv.as_array()) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(format!("unknown strategic merge patch directive {k}"));
        }
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        path.push(Pe::Field(k.clone()));
        let merged = match (out.get(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => merge_map(rt, o, p, path)?,
            (_, Value::Object(p)) => merge_map(rt, &Map::new(), p, path)?,
            (Some(Value::Array(o)), Value::Array(p)) => Some(merge_list(rt, o, p, path)?),
            (None, Value::Array(p)) => Some(merge_list(rt, &[], p, path)?),
            (_, other) => Some(strip_directives(other)),
        };
        path.pop();
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.remove(k);
            }
        }
    }
    for (field, order) in orders {
        path.push(Pe::Field(field.clone()));
        let kind = list_kind(rt, path);
        path.pop();
        if let Some(Value::Array(list)) = out.get_mut(&field) {
            reorder(list, order, &kind);
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(Some(Value::Object(out)))
}

fn merge_list(
    rt: &ResourceType,
    original: &[Value],
    patch: &[Value],
    path: &mut Vec<Pe>,
) -> Result<Value, String> {
    let replace = patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ));
    }
    match list_kind(rt, path) {
        ListKind::Map(keys) => {
            // Strategic merge patch identifies items by the first (the patchMergeKey) key only.
            let merge_key = &keys[..1];
            let mut out: Vec<Value> = original.to_vec();
            for item in patch {
                let Some(key) = item_key(item, merge_key) else {
                    out.push(strip_directives(item));
                    continue;
                };
                let pos = out
                    .iter()
                    .position(|o| item_key(o, merge_key).as_deref() == Some(key.as_str()));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        let merged = match (&out[i], item) {
                            (Value::Object(o), Value::Object(p)) => {
                                path.push(Pe::Key(key.clone()));
                                let m = merge_map(rt, o, p, path)?;
                                path.pop();
                                m
                            }
                            _ => Some(strip_directives(item)),
                        };
                        match merged {
                            Some(v) => out[i] = v,
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    (None, false) => out.push(strip_directives(item)),
                }
            }
            Ok(Value::Array(out))
        }
        ListKind::Set => {
            let mut out: Vec<Value> = original.to_vec();
            for item in patch {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListKind::Atomic => Ok(Value::Array(patch.iter().map(strip_directives).collect())),
    }
}

/// Orders `list` as `$setElementOrder` says; items it does not mention keep their relative
/// order after the ones it does.
fn reorder(list: &mut Vec<Value>, order: &[Value], kind: &ListKind) {
    let identity = |v: &Value| -> Option<String> {
        match kind {
            ListKind::Map(keys) => item_key(v, &keys[..1]),
            _ => Some(v.to_string()),
        }
    };
    let mut rest = std::mem::take(list);
    for o in order {
        let Some(id) = identity(o) else { continue };
        if let Some(pos) = rest
            .iter()
            .position(|v| identity(v).as_deref() == Some(id.as_str()))
        {
            list.push(rest.remove(pos));
        }
    }
    list.extend(rest);
}

/// Removes strategic-merge directives from a value that replaces rather than merges.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    fn deployment() -> std::sync::Arc<ResourceType> {
        Registry::with_builtins()
            .resolve("apps/v1", "Deployment")
            .unwrap()
    }

    fn live() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}, "finalizers": ["a"]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "side:1"}
            ]}}}
        })
    }

    #[test]
    fn merges_containers_by_name() {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
        let out = strategic(&deployment(), &live(), &p).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(cs[0]["env"][0]["value"], "1", "unpatched fields stay");
    }

    #[test]
    fn kubectl_apply_directives() {
        let p = json!({
            "metadata": {"labels": {"old": null}, "finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                "containers": [{"name": "app", "$patch": "delete"}, {"name": "new", "image": "n"}]
            }}}
        });
        let out = strategic(&deployment(), &live(), &p).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["side", "new"]);
    }

    #[test]
    fn replace_and_retain_keys() {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]}},
                               "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let mut l = live();
        l["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
        let out = strategic(&deployment(), &l, &p).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "o"}])
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn unknown_directives_are_errors() {
        assert!(strategic(&deployment(), &live(), &json!({"$bogus": 1})).is_err());
        assert!(strategic(&deployment(), &live(), &json!([1])).is_err());
    }

    #[test]
    fn json_and_merge_patches() {
        let out = merge(
            &json!({"a": 1, "b": {"c": 2}}),
            &json!({"b": {"c": null, "d": 3}}),
        );
        assert_eq!(out, json!({"a": 1, "b": {"d": 3}}));
        let out = json(
            &json!({"a": [1]}),
            &json!([{"op": "add", "path": "/a/-", "value": 2}]),
        )
        .unwrap();
        assert_eq!(out, json!({"a": [1, 2]}));
        assert!(
            json(
                &json!({}),
                &json!([{"op": "test", "path": "/a", "value": 1}])
            )
            .is_err()
        );
        assert!(json(&json!({}), &json!({"op": "add"})).is_err());
        // A failing patch whose earlier operations cannot be undone by json-patch's rollback.
        let tricky = json!([{"op": "add", "path": "/a", "value": 1}, {"op": "move", "from": "/spec", "path": "/spec/x"}]);
        assert!(json(&json!({"spec": {}}), &tricky).is_err());
    }
}
