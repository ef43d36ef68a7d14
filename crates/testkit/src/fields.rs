//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A field set is the set of leaf paths a manager owns: scalars, atomic lists, empty objects,
//! the items of associative lists (`k:{"type":"Ready"}`) and the values of set lists. Updates
//! give the updating manager the fields it changed and take them from everyone else; applies
//! merge the applied configuration, report conflicts with other owners whose value differs
//! (unless forced), and remove the fields the manager applied before but no longer applies
//! when nobody else owns them.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::resources::{Behaviour, ResourceType};

/// One element of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pe {
    /// A map field: `f:name`.
    Field(String),
    /// An associative-list item, by its key fields as canonical JSON: `k:{"type":"Ready"}`.
    Key(String),
    /// A set-list value as JSON: `v:"x"`.
    Value(String),
    /// A list index (only read from stored field sets; we never produce them).
    Index(usize),
}

pub(crate) type Path = Vec<Pe>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items identified by these key fields.
    Map(Vec<String>),
    /// Scalar items, merged as a set.
    Set,
}

/// The list kind of the field at `path` of an object of type `rt`: from the CRD schema's
/// `x-kubernetes-list-type`, or from the Kubernetes API's patch strategies for built-ins.
pub(crate) fn list_kind(rt: &ResourceType, path: &[Pe]) -> ListKind {
    if let [Pe::Field(m), Pe::Field(f)] = path
        && m == "metadata"
    {
        return match f.as_str() {
            "finalizers" => ListKind::Set,
            "ownerReferences" => ListKind::Map(vec!["uid".into()]),
            _ => ListKind::Atomic,
        };
    }
    if rt.behaviour == Behaviour::Custom {
        return rt
            .crd
            .as_ref()
            .and_then(|c| c.schema.as_ref())
            .and_then(|s| schema_at(s, path))
            .map(schema_list_kind)
            .unwrap_or(ListKind::Atomic);
    }
    let Some(Pe::Field(name)) = path.last() else {
        return ListKind::Atomic;
    };
    let in_container = path.iter().any(|p| {
        matches!(p, Pe::Field(f) if matches!(f.as_str(), "containers" | "initContainers" | "ephemeralContainers"))
    });
    let keys: &[&str] = match name.as_str() {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "resourceClaims" => &["name"],
        "ports" if in_container => &["containerPort", "protocol"],
        "ports" if rt.kind == "Service" => &["port", "protocol"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" => &["type"],
        "hostAliases" => &["ip"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        "finalizers" => return ListKind::Set,
        _ => return ListKind::Atomic,
    };
    ListKind::Map(keys.iter().map(|k| (*k).to_owned()).collect())
}

fn schema_at<'a>(schema: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = schema;
    for pe in path {
        cur = match pe {
            Pe::Field(f) => cur
                .get("properties")
                .and_then(|p| p.get(f.as_str()))
                .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()))?,
            _ => cur.get("items")?,
        };
    }
    Some(cur)
}

fn schema_list_kind(s: &Value) -> ListKind {
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListKind::Map(
            s.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("set") => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// The key of an associative-list item as canonical JSON, or `None` if it has no key field.
pub(crate) fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k.as_str()) {
            m.insert(k.clone(), v.clone());
        }
    }
    (!m.is_empty()).then(|| Value::Object(m).to_string())
}

fn key_matches(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    want.iter().all(|(k, v)| item.get(k.as_str()) == Some(v))
        && item.is_object()
        && want.keys().len() == want.len()
}

/// Which part of an object a write touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource: everything but `status` when the type has a status subresource.
    Main,
    /// The `status` subresource.
    Status,
}

fn top_level_included(rt: &ResourceType, key: &str, scope: Scope) -> bool {
    match (key, scope) {
        ("apiVersion" | "kind" | "metadata", _) => false,
        ("status", Scope::Status) => true,
        (_, Scope::Status) => false,
        ("status", Scope::Main) => !rt.status,
        (_, Scope::Main) => true,
    }
}

/// The leaf paths of `obj` inside `scope`.
pub(crate) fn leaves(rt: &ResourceType, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut path = Vec::new();
    for (k, v) in map {
        if k == "metadata" && scope == Scope::Main {
            if let Some(meta) = v.as_object() {
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(mv) = meta.get(mk) {
                        path.push(Pe::Field("metadata".into()));
                        path.push(Pe::Field(mk.into()));
                        collect(rt, mv, &mut path, &mut out);
                        path.clear();
                    }
                }
            }
            continue;
        }
        if !top_level_included(rt, k, scope) {
            continue;
        }
        path.push(Pe::Field(k.clone()));
        collect(rt, v, &mut path, &mut out);
        path.pop();
    }
    out
}

fn collect(rt: &ResourceType, v: &Value, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(Pe::Field(k.clone()));
                collect(rt, c, path, out);
                path.pop();
            }
        }
        Value::Array(items) => match list_kind(rt, path) {
            ListKind::Map(keys) => {
                let item_keys: Option<Vec<String>> =
                    items.iter().map(|i| item_key(i, &keys)).collect();
                let Some(item_keys) = item_keys else {
                    // An item without its key cannot be tracked on its own.
                    out.insert(path.clone());
                    return;
                };
                for (item, key) in items.iter().zip(item_keys) {
                    path.push(Pe::Key(key));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (k, c) in m {
                            path.push(Pe::Field(k.clone()));
                            collect(rt, c, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(Pe::Value(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The JSON value a `v:` path element names.
fn set_value(s: &str) -> Option<Value> {
    serde_json::from_str(s).ok()
}

/// The value at `path`, if present.
pub(crate) fn value_at<'a>(v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = match pe {
            Pe::Field(f) => cur.get(f.as_str())?,
            Pe::Key(k) => cur.as_array()?.iter().find(|i| key_matches(i, k))?,
            Pe::Value(s) => {
                let want = set_value(s)?;
                cur.as_array()?.iter().find(|i| **i == want)?
            }
            Pe::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; returns whether something was removed.
pub(crate) fn remove_at(v: &mut Value, path: &[Pe]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for pe in parent_path {
        let next = match pe {
            Pe::Field(f) => cur.get_mut(f.as_str()),
            Pe::Key(k) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| key_matches(i, k))),
            Pe::Value(s) => {
                let want = set_value(s);
                cur.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|i| Some(&**i) == want.as_ref()))
            }
            Pe::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match last {
        Pe::Field(f) => cur
            .as_object_mut()
            .is_some_and(|m| m.remove(f.as_str()).is_some()),
        Pe::Key(k) => remove_from_array(cur, |i| key_matches(i, k)),
        Pe::Value(s) => {
            let want = set_value(s);
            remove_from_array(cur, |i| Some(i) == want.as_ref())
        }
        Pe::Index(i) => remove_from_array_index(cur, *i),
    }
}

fn remove_from_array(v: &mut Value, pred: impl Fn(&Value) -> bool) -> bool {
    match v.as_array_mut() {
        Some(a) => {
            let before = a.len();
            a.retain(|i| !pred(i));
            a.len() != before
        }
        None => false,
    }
}

fn remove_from_array_index(v: &mut Value, i: usize) -> bool {
    match v.as_array_mut() {
        Some(a) if i < a.len() => {
            a.remove(i);
            true
        }
        _ => false,
    }
}

/// The paths of `set` that are a prefix of `q` or extend it.
fn overlapping<'a>(set: &'a FieldSet, q: &'a [Pe]) -> impl Iterator<Item = &'a Path> + 'a {
    let prefixes = (0..=q.len()).filter_map(move |i| set.get(&q[..i]));
    let extensions = set
        .range(q.to_vec()..)
        .take_while(move |p| p.starts_with(q))
        .filter(move |p| p.len() > q.len());
    prefixes.chain(extensions)
}

/// Whether a path only marks that a list item or set value exists (`k:…`, `v:…`); such
/// markers are shared by everyone who owns something inside the item and never conflict.
fn is_marker(p: &[Pe]) -> bool {
    matches!(p.last(), Some(Pe::Key(_) | Pe::Value(_)))
}

/// The paths of `set` whose value is the same field as `q` or contains it (or is contained
/// by it): equal paths, or one being a non-marker prefix of the other.
fn contending<'a>(set: &'a FieldSet, q: &'a [Pe]) -> impl Iterator<Item = &'a Path> + 'a {
    overlapping(set, q).filter(move |p| {
        let shorter: &[Pe] = if p.len() < q.len() { p } else { q };
        p.len() == q.len() || !is_marker(shorter)
    })
}

/// Renders a path as field-manager conflicts show it: `.status.conditions[type="Ready"].status`.
pub(crate) fn render_path(path: &[Pe]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => s.push_str(&format!("[={v}]")),
            Pe::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// Reads `metadata.managedFields`.
pub(crate) fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| {
                        e.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let mut fields = FieldSet::new();
                    if let Some(f) = e.get("fieldsV1") {
                        parse_fields_v1(f, &mut Vec::new(), &mut fields);
                    }
                    Entry {
                        manager: s("manager"),
                        operation: s("operation"),
                        api_version: s("apiVersion"),
                        time: s("time"),
                        subresource: s("subresource"),
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_fields_v1(node: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = node.as_object() else { return };
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            continue;
        }
        let pe = if let Some(f) = k.strip_prefix("f:") {
            Pe::Field(f.to_owned())
        } else if let Some(key) = k.strip_prefix("k:") {
            Pe::Key(key.to_owned())
        } else if let Some(v) = k.strip_prefix("v:") {
            Pe::Value(v.to_owned())
        } else if let Some(i) = k.strip_prefix("i:").and_then(|i| i.parse().ok()) {
            Pe::Index(i)
        } else {
            continue;
        };
        path.push(pe);
        parse_fields_v1(child, path, out);
        path.pop();
    }
}

/// Renders a field set as `FieldsV1`.
pub(crate) fn fields_v1(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut cur = &mut root;
        for (i, pe) in path.iter().enumerate() {
            let key = match pe {
                Pe::Field(f) => format!("f:{f}"),
                Pe::Key(k) => format!("k:{k}"),
                Pe::Value(v) => format!("v:{v}"),
                Pe::Index(i) => format!("i:{i}"),
            };
            let entry = cur.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                unreachable!("field set nodes are always objects")
            };
            cur = next;
            if i == path.len() - 1 && !cur.is_empty() {
                cur.insert(".".into(), json!({}));
            }
        }
    }
    // A node that became a parent after being inserted as a leaf needs its own "." marker.
    mark_parents(&mut root, fields, &mut Vec::new());
    Value::Object(root)
}

fn mark_parents(node: &mut Map<String, Value>, fields: &FieldSet, path: &mut Path) {
    let keys: Vec<String> = node.keys().filter(|k| *k != ".").cloned().collect();
    for k in keys {
        let pe = if let Some(f) = k.strip_prefix("f:") {
            Pe::Field(f.to_owned())
        } else if let Some(x) = k.strip_prefix("k:") {
            Pe::Key(x.to_owned())
        } else if let Some(x) = k.strip_prefix("v:") {
            Pe::Value(x.to_owned())
        } else if let Some(x) = k.strip_prefix("i:").and_then(|i| i.parse().ok()) {
            Pe::Index(x)
        } else {
            continue;
        };
        path.push(pe);
        if let Some(Value::Object(child)) = node.get_mut(&k) {
            if !child.is_empty() && fields.contains(path) {
                child.insert(".".into(), json!({}));
            }
            mark_parents(child, fields, path);
        }
        path.pop();
    }
}

/// Writes `metadata.managedFields`, dropping entries that own nothing.
pub(crate) fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Gives `manager` the fields an update changed and takes them from everyone else; drops
/// ownership of fields that no longer exist.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    scope: Scope,
    api_version: &str,
    now: &str,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    // A marker changes only when its item appears; a change inside an item is its own leaf.
    let changed: FieldSet = leaves(rt, new, scope)
        .into_iter()
        .filter(|p| {
            let before = old.and_then(|o| value_at(o, p));
            if is_marker(p) {
                before.is_none()
            } else {
                before != value_at(new, p)
            }
        })
        .collect();
    for e in &mut entries {
        e.fields
            .retain(|p| value_at(new, p).is_some() && contending(&changed, p).next().is_none());
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.is(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_owned();
                e.api_version = api_version.to_owned();
            }
            None => entries.push(Entry {
                manager: manager.to_owned(),
                operation: "Update".into(),
                api_version: api_version.to_owned(),
                time: now.to_owned(),
                subresource: subresource.to_owned(),
                fields: changed.into_iter().collect(),
            }),
        }
    }
    write_entries(new, &entries);
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conflict {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub path: String,
}

impl Conflict {
    /// `"mgr"`, `"mgr" with subresource "status"`, and for updaters `… using apps/v1 at TIME`.
    pub(crate) fn manager_label(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
            if !self.time.is_empty() {
                s.push_str(&format!(" at {}", self.time));
            }
        }
        s
    }
}

/// The apply's conflicts, rendered as kube-apiserver's message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [c] = self.0.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.manager_label(),
                c.path
            );
        }
        let mut labels: Vec<String> = self.0.iter().map(Conflict::manager_label).collect();
        labels.sort();
        labels.dedup();
        let mut lines = Vec::new();
        for label in &labels {
            lines.push(format!("conflicts with {label}:"));
            for c in self.0.iter().filter(|c| c.manager_label() == *label) {
                lines.push(format!("- {}", c.path));
            }
        }
        write!(
            f,
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

/// Keeps only the part of an applied configuration that `scope` covers.
fn scoped(rt: &ResourceType, applied: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    if let Some(m) = applied.as_object() {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind")
                || (k == "metadata" && scope == Scope::Main)
                || top_level_included(rt, k, scope)
            {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Server-side apply of `applied` by `manager` onto `live` (or onto a new object).
/// Returns the merged object with its managed fields, or the conflicts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    rt: &ResourceType,
    live: &Value,
    applied: &Value,
    manager: &str,
    subresource: &str,
    scope: Scope,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<Value, Conflicts> {
    let applied = scoped(rt, applied, scope);
    let new_set = leaves(rt, &applied, scope);
    let mut entries = read_entries(live);
    let is_me = |e: &Entry| e.is(manager, "Apply", subresource);

    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate().filter(|(_, e)| !is_me(e)) {
        for q in &e.fields {
            let differs = contending(&new_set, q).any(|p| {
                let shorter = if q.len() < p.len() { q } else { p };
                !is_marker(shorter) && value_at(live, shorter) != value_at(&applied, shorter)
            });
            if differs {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation.clone(),
                    api_version: e.api_version.clone(),
                    time: e.time.clone(),
                    subresource: e.subresource.clone(),
                    path: render_path(q),
                });
                taken.push((i, q.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(Conflicts(conflicts));
    }
    // Forced: the conflicting fields change hands; equal values stay shared.
    for (i, q) in taken {
        entries[i].fields.remove(&q);
    }

    let mut merged = live.clone();
    merge_into(rt, &mut merged, &applied, &mut Vec::new());

    let previous: FieldSet = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for p in previous.difference(&new_set) {
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !is_me(e))
            .any(|e| overlapping(&e.fields, p).any(|q| q.len() >= p.len() || !is_marker(q)));
        let still_applied = overlapping(&new_set, p).any(|q| q.len() > p.len());
        if !owned_elsewhere && !still_applied {
            remove_at(&mut merged, p);
        }
    }

    entries.retain(|e| !is_me(e));
    for e in &mut entries {
        e.fields.retain(|p| value_at(&merged, p).is_some());
    }
    entries.push(Entry {
        manager: manager.to_owned(),
        operation: "Apply".into(),
        api_version: api_version.to_owned(),
        time: now.to_owned(),
        subresource: subresource.to_owned(),
        fields: new_set,
    });
    write_entries(&mut merged, &entries);
    Ok(merged)
}

/// Merges an applied configuration into `live`: maps field by field, associative lists item by
/// item, sets by union; everything else is replaced. `null` removes a field.
fn merge_into(rt: &ResourceType, live: &mut Value, applied: &Value, path: &mut Path) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                if av.is_null() {
                    l.remove(k);
                    continue;
                }
                if path.is_empty() && k == "metadata" {
                    merge_metadata(rt, l, av, path);
                    continue;
                }
                path.push(Pe::Field(k.clone()));
                match l.get_mut(k) {
                    Some(lv)
                        if (lv.is_object() && av.is_object())
                            || (lv.is_array() && av.is_array()) =>
                    {
                        merge_into(rt, lv, av, path);
                    }
                    _ => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                path.pop();
            }
        }
        (live @ Value::Array(_), Value::Array(a)) => match list_kind(rt, path) {
            ListKind::Map(keys) => {
                let Value::Array(l) = live else {
                    unreachable!()
                };
                for item in a {
                    let found = item_key(item, &keys).and_then(|k| {
                        l.iter_mut()
                            .find(|i| item_key(i, &keys).as_ref() == Some(&k))
                    });
                    match found {
                        Some(existing) => merge_into(rt, existing, item, path),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListKind::Set => {
                let Value::Array(l) = live else {
                    unreachable!()
                };
                for item in a {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListKind::Atomic => *live = Value::Array(a.clone()),
        },
        (live, applied) => *live = applied.clone(),
    }
}

fn merge_metadata(rt: &ResourceType, l: &mut Map<String, Value>, applied: &Value, path: &mut Path) {
    let meta = l
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(a) = applied.as_object() else { return };
    for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let Some(av) = a.get(k) else { continue };
        let Some(m) = meta.as_object_mut() else {
            return;
        };
        if av.is_null() {
            m.remove(k);
            continue;
        }
        path.push(Pe::Field("metadata".into()));
        path.push(Pe::Field(k.into()));
        match m.get_mut(k) {
            Some(lv) => merge_into(rt, lv, av, path),
            None => {
                m.insert(k.into(), av.clone());
            }
        }
        path.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn deployment_type() -> std::sync::Arc<ResourceType> {
        Registry::with_builtins()
            .resolve("apps/v1", "Deployment")
            .unwrap()
    }

    #[test]
    fn leaves_key_associative_lists() {
        let rt = deployment_type();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"app": "x"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 1}
        });
        let l = leaves(&rt, &obj, Scope::Main);
        let rendered: Vec<String> = l.iter().map(|p| render_path(p)).collect();
        assert!(
            rendered.contains(&".metadata.labels.app".to_owned()),
            "{rendered:?}"
        );
        assert!(rendered.contains(&".spec.replicas".to_owned()));
        assert!(rendered.contains(&".spec.template.spec.containers[name=\"c\"].image".to_owned()));
        assert!(!rendered.iter().any(|p| p.starts_with(".status")));
        let s = leaves(&rt, &obj, Scope::Status);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn fields_v1_round_trips() {
        let rt = deployment_type();
        let obj = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}, "metadata": {"finalizers": ["a"]}});
        let l = leaves(&rt, &obj, Scope::Main);
        let v1 = fields_v1(&l);
        let item = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"];
        assert_eq!(item["."], json!({}));
        assert_eq!(item["f:image"], json!({}));
        assert_eq!(v1["f:metadata"]["f:finalizers"]["v:\"a\""], json!({}));
        let mut parsed = FieldSet::new();
        parse_fields_v1(&v1, &mut Vec::new(), &mut parsed);
        assert_eq!(parsed, l);
    }

    #[test]
    fn apply_conflicts_with_another_manager_and_force_takes_over() {
        let rt = deployment_type();
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 1}});
        let a = apply(
            &rt,
            &live,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}}),
            "a",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        // Same value: shared ownership, no conflict.
        let b = apply(
            &rt,
            &a,
            &json!({"spec": {"replicas": 1}}),
            "b",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        let err = apply(
            &rt,
            &b,
            &json!({"spec": {"replicas": 3}}),
            "c",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"b\":\n- .spec.replicas"
        );
        let forced = apply(
            &rt,
            &b,
            &json!({"spec": {"replicas": 3}}),
            "c",
            "",
            Scope::Main,
            true,
            "apps/v1",
            "t",
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let entries = read_entries(&forced);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].manager, "c");
    }

    #[test]
    fn apply_removes_fields_it_no_longer_applies() {
        let rt = deployment_type();
        let live = json!({"metadata": {"name": "x"}});
        let one = apply(
            &rt,
            &live,
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            "m",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        let two = apply(
            &rt,
            &one,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            "m",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        assert_eq!(two["metadata"]["labels"], json!({"a": "1"}));
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let rt = deployment_type();
        let live = json!({"metadata": {"name": "x"}});
        let applied = apply(
            &rt,
            &live,
            &json!({"spec": {"replicas": 1, "paused": false}}),
            "op",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        let mut updated = applied.clone();
        updated["spec"]["replicas"] = json!(4);
        record_update(
            &rt,
            Some(&applied),
            &mut updated,
            "kubectl-scale",
            "scale",
            Scope::Main,
            "apps/v1",
            "t2",
        );
        let entries = read_entries(&updated);
        let op = entries.iter().find(|e| e.manager == "op").unwrap();
        assert_eq!(op.fields.len(), 1, "replicas moved away from the applier");
        let err = apply(
            &rt,
            &updated,
            &json!({"spec": {"replicas": 1, "paused": false}}),
            "op",
            "",
            Scope::Main,
            false,
            "apps/v1",
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1 at t2: .spec.replicas"
        );
    }
}
