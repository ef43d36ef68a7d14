//! Validation of objects against a CRD's structural schema, as kube-apiserver does it.
//!
//! Order follows the API server's handling of a custom resource write: unknown fields are
//! pruned, `default`s are applied, the OpenAPI v3 constraints are checked (type, required,
//! enum, bounds, lengths, pattern, item counts), then the CEL rules in
//! `x-kubernetes-validations` are evaluated (with `kube-cel`, which implements the Kubernetes CEL
//! libraries). Messages follow the API server's wording, for example
//! `spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1`.
//!
//! Known differences from kube-apiserver: `format` is checked only for `int32`, `int64` and
//! `date-time`; CEL cost limits are not enforced; ratcheting of unchanged invalid fields is not
//! done.
//!
//! The Kubernetes stand-in (`testkit`) admits custom resources with it, and the operator checks
//! every AviAutoscaler it reads against the generated CRD with it, so both refuse the same
//! objects with the same messages.
#![warn(missing_docs)]

use std::fmt;

use serde_json::{Map, Value};

/// One field that fails validation.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Path of the field, for example `spec.metrics[0].metricId`.
    pub field: String,
    /// The API server's error type (`Invalid value`, `Required value`, `Unsupported value`,
    /// `Too many`, `Too long`).
    pub kind: &'static str,
    /// The detail, for example `spec.maxReplicas in body should be greater than or equal to 1`.
    pub detail: String,
    /// The offending value, rendered as the API server renders it, if it shows one.
    pub value: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}: {}: {}: {}", self.field, self.kind, v, self.detail),
            None if self.detail.is_empty() => write!(f, "{}: {}", self.field, self.kind),
            None => write!(f, "{}: {}: {}", self.field, self.kind, self.detail),
        }
    }
}

/// Prunes unknown fields and applies defaults, as the API server does before validation.
pub fn prune_and_default(schema: &Value, object: &Value) -> Value {
    let pruned = prune(schema, object, true);
    kube_cel::apply_defaults(schema, &pruned)
}

/// Validates `object` (already pruned and defaulted) against `schema`, including CEL rules.
/// `old` is the previous object for transition rules.
pub fn validate(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, object, "", &mut errors);
    if errors.is_empty()
        && let Err(cel_errors) = kube_cel::Validator::new().validate(schema, object, old)
    {
        push_cel_errors(object, cel_errors, &mut errors);
    }
    errors
}

fn push_cel_errors(
    object: &Value,
    cel_errors: kube_cel::ValidationErrors,
    errors: &mut Vec<FieldError>,
) {
    for e in cel_errors.into_vec() {
        let field = if e.field_path.is_empty() {
            "<root>".to_owned()
        } else {
            e.field_path.clone()
        };
        let value = lookup(object, &e.field_path).map(render_value_kind);
        errors.push(FieldError {
            field,
            kind: "Invalid value",
            detail: e.message,
            value,
        });
    }
}

/// A schema with its CEL rules compiled once, for admitting many objects: the same checks
/// as [`validate`] and [`admit`] without recompiling the rules for every object.
pub struct CompiledSchema {
    whole: Part,
    /// The schema without `status`, for writes that cannot change status.
    without_status: Option<Part>,
    /// A schema with only `status`, for status subresource writes.
    status_only: Option<Part>,
}

struct Part {
    schema: Value,
    // The CEL context and programs are used by one caller at a time.
    cel: std::sync::Mutex<(kube_cel::Validator, kube_cel::CompiledSchema)>,
}

impl Part {
    fn new(schema: Value) -> Self {
        let compiled = kube_cel::compile_schema(&schema);
        Self {
            schema,
            cel: std::sync::Mutex::new((kube_cel::Validator::new(), compiled)),
        }
    }

    fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(&self.schema, object, "", &mut errors);
        if errors.is_empty() {
            let cel = self.cel.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(cel_errors) = cel.0.validate_compiled(&cel.1, object, old) {
                push_cel_errors(object, cel_errors, &mut errors);
            }
        }
        errors
    }
}

/// `schema` as an API server before 1.36 enforces it: without `format: int32` (such servers
/// store any integer there) and without `x-kubernetes-validations` (CEL off, as on servers
/// where it is disabled). Everything else is kept.
pub fn pre_1_36(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| {
                    k.as_str() != "x-kubernetes-validations"
                        && !(k.as_str() == "format" && v.as_str() == Some("int32"))
                })
                .map(|(k, v)| (k.clone(), pre_1_36(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pre_1_36).collect()),
        other => other.clone(),
    }
}

/// Which part of an object a write can change, for [`CompiledSchema::admit_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Anything.
    Whole,
    /// Everything but `status` (a main-resource write when status is a subresource).
    AllButStatus,
    /// Only `status` (a status subresource write).
    Status,
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

fn without(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn only_status(v: &Value) -> Value {
    let mut m = Map::new();
    for k in ["apiVersion", "kind", "metadata", "status"] {
        if let Some(x) = v.get(k) {
            m.insert(k.to_owned(), x.clone());
        }
    }
    Value::Object(m)
}

impl CompiledSchema {
    /// Compiles the CEL rules of `schema` (an `openAPIV3Schema`).
    pub fn new(schema: &Value) -> Self {
        let status = schema.pointer("/properties/status");
        let without_status = status.map(|_| {
            let mut s = schema.clone();
            if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
                props.remove("status");
            }
            Part::new(s)
        });
        // Root-level rules and required fields concern the whole object; a status write keeps
        // everything else as stored, where they held.
        let status_only = status.map(|st| {
            Part::new(serde_json::json!({"type": "object", "properties": {"status": st}}))
        });
        Self {
            whole: Part::new(schema.clone()),
            without_status,
            status_only,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Value {
        &self.whole.schema
    }

    /// [`validate`] with the compiled rules.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        self.whole.validate(object, old)
    }

    /// [`admit`] with the compiled rules.
    pub fn admit(&self, object: &Value, old: Option<&Value>) -> Result<Value, Vec<FieldError>> {
        let old = old.map(|o| prune_and_default(self.schema(), o));
        self.admit_write(object, old.as_ref(), Changed::Whole)
    }

    /// Admits a write that can only change `changed`: prunes and defaults the whole object
    /// and validates the part that can have changed, as the API server's validation ratcheting
    /// leaves unchanged, valid parts alone. `old` is the stored (already admitted) object.
    pub fn admit_write(
        &self,
        object: &Value,
        old: Option<&Value>,
        changed: Changed,
    ) -> Result<Value, Vec<FieldError>> {
        let stored = prune_and_default(self.schema(), object);
        let errors = match (changed, &self.without_status, &self.status_only) {
            (Changed::AllButStatus, Some(part), _) => part.validate(
                &without(&stored, "status"),
                old.map(|o| without(o, "status")).as_ref(),
            ),
            (Changed::Status, _, Some(part)) => {
                part.validate(&only_status(&stored), old.map(only_status).as_ref())
            }
            _ => self.whole.validate(&stored, old),
        };
        if errors.is_empty() {
            Ok(stored)
        } else {
            Err(errors)
        }
    }
}

/// Renders the errors the way kube-apiserver's `Invalid` status message does:
/// `[a: …, b: …]` for several errors, the error alone for one.
pub fn render_errors(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn render_value_kind(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    }
}

fn lookup<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = object;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            cur = match idx.parse::<usize>() {
                Ok(n) => cur.get(n)?,
                Err(_) => cur.get(idx.trim_matches('"'))?,
            };
        }
    }
    Some(cur)
}

fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn prune(schema: &Value, value: &Value, root: bool) -> Value {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut out = Map::new();
            for (k, v) in map {
                // apiVersion, kind and metadata are always kept at the root and in embedded
                // resources; metadata is validated by the API machinery, not the schema.
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    out.insert(k.clone(), v.clone());
                } else if let Some(s) = props.and_then(|p| p.get(k)) {
                    out.insert(k.clone(), prune(s, v, false));
                } else if let Some(s) = additional {
                    out.insert(k.clone(), prune(s, v, false));
                } else if preserves_unknown(schema) {
                    out.insert(k.clone(), v.clone());
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => match schema.get("items") {
            Some(s) => Value::Array(items.iter().map(|i| prune(s, i, false)).collect()),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

/// The paths of fields that pruning would drop from `object` (`spec.foo`, `spec.items[0].bar`),
/// for strict and warning field validation.
pub fn unknown_fields(schema: &Value, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    find_unknown(schema, object, "", true, &mut out);
    out
}

fn find_unknown(schema: &Value, value: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if preserves_unknown(schema) && schema.get("properties").is_none() {
                return;
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (k, v) in map {
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child = child_path(path, k);
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    find_unknown(s, v, &child, false, out);
                } else if !preserves_unknown(schema) {
                    out.push(child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    find_unknown(s, item, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let shown = if path.is_empty() { "<root>" } else { path };
    if value.is_null() {
        if !schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            && schema.get("type").is_some()
        {
            errors.push(FieldError {
                field: shown.to_owned(),
                kind: "Invalid value",
                detail: format!(
                    "{shown} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
                value: Some("\"null\"".to_owned()),
            });
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = match expected {
            "number" => matches!(actual, "number" | "integer"),
            other => other == actual,
        };
        if !ok && !int_or_string {
            errors.push(FieldError {
                field: shown.to_owned(),
                kind: "Invalid value",
                detail: format!("{shown} in body must be of type {expected}: \"{actual}\""),
                value: Some(render_value_kind(value)),
            });
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported = allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        errors.push(FieldError {
            field: shown.to_owned(),
            kind: "Unsupported value",
            detail: format!("supported values: {supported}"),
            value: Some(value.to_string()),
        });
    }
    match value {
        Value::Number(n) => check_number(schema, n.as_f64().unwrap_or(f64::NAN), shown, errors),
        Value::String(s) => check_string(schema, s, shown, errors),
        Value::Array(items) => {
            check_array(schema, items, shown, errors);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errors.push(FieldError {
                            field: child_path(path, r),
                            kind: "Required value",
                            detail: String::new(),
                            value: None,
                        });
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    check(s, v, &child_path(path, k), errors);
                }
            }
        }
        _ => {}
    }
}

fn check_number(schema: &Value, n: f64, path: &str, errors: &mut Vec<FieldError>) {
    let mut invalid = |detail: String| {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Invalid value",
            detail,
            value: Some(format_number(n)),
        })
    };
    let flag = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if flag("exclusiveMinimum") && n <= min {
            invalid(format!(
                "{path} in body should be greater than {}",
                format_number(min)
            ));
        } else if n < min {
            invalid(format!(
                "{path} in body should be greater than or equal to {}",
                format_number(min)
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if flag("exclusiveMaximum") && n >= max {
            invalid(format!(
                "{path} in body should be less than {}",
                format_number(max)
            ));
        } else if n > max {
            invalid(format!(
                "{path} in body should be less than or equal to {}",
                format_number(max)
            ));
        }
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("int32") if n < f64::from(i32::MIN) || n > f64::from(i32::MAX) => {
            invalid(format!("{path} in body must be of type int32"))
        }
        _ => {}
    }
}

fn check_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Too long",
            detail: format!("may not be more than {max} bytes"),
            value: None,
        });
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Invalid value",
            detail: format!("{path} in body should be at least {min} chars long"),
            value: Some(format!("{s:?}")),
        });
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match compiled_pattern(pattern) {
            Ok(re) if !re.is_match(s) => errors.push(FieldError {
                field: path.to_owned(),
                kind: "Invalid value",
                detail: format!("{path} in body should match '{pattern}'"),
                value: Some(format!("{s:?}")),
            }),
            Ok(_) => {}
            Err(e) => errors.push(FieldError {
                field: path.to_owned(),
                kind: "Invalid value",
                detail: format!("the schema's pattern does not compile: {e}"),
                value: None,
            }),
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") && !is_rfc3339(s) {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Invalid value",
            detail: format!("{path} in body must be of type date-time: {s:?}"),
            value: Some(format!("{s:?}")),
        });
    }
}

/// Compiles a schema `pattern` once per process: validation runs on every write.
fn compiled_pattern(pattern: &str) -> Result<regex::Regex, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Result<regex::Regex, String>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| regex::Regex::new(pattern).map_err(|e| e.to_string()))
        .clone()
}

/// A loose RFC 3339 check (`2026-01-02T03:04:05Z`, fractions and offsets allowed).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s.ends_with('z') || s[19..].contains(['+', '-']))
}

fn check_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let n = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Too many",
            detail: format!("must have at most {max} items"),
            value: Some(n.to_string()),
        });
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        errors.push(FieldError {
            field: path.to_owned(),
            kind: "Invalid value",
            detail: format!("{path} in body should have at least {min} items"),
            value: Some(n.to_string()),
        });
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    if list_type == Some("map")
        && let Some(keys) = schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
    {
        let mut seen = std::collections::HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let key: Vec<String> = keys
                .iter()
                .filter_map(Value::as_str)
                .map(|k| item.get(k).map(ToString::to_string).unwrap_or_default())
                .collect();
            if !seen.insert(key.clone()) {
                errors.push(FieldError {
                    field: format!("{path}[{i}]"),
                    kind: "Duplicate value",
                    detail: String::new(),
                    value: Some(format!("{{{}}}", key.join(", "))),
                });
            }
        }
    }
}

/// Finds the `openAPIV3Schema` of `version` in a CustomResourceDefinition (as JSON).
pub fn crd_version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
        .pointer("/schema/openAPIV3Schema")
}

/// Admits a custom resource as the API server would on create: prune, default, validate.
/// Returns the stored form, or every field error.
pub fn admit(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
) -> Result<Value, Vec<FieldError>> {
    let stored = prune_and_default(schema, object);
    let old = old.map(|o| prune_and_default(schema, o));
    let errors = validate(schema, &stored, old.as_ref());
    if errors.is_empty() {
        Ok(stored)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
                     "x-kubernetes-validations": [{"rule": "self.n < 10", "message": "n is too big"}]},
            "status": {"type": "object", "properties": {"m": {"type": "integer", "minimum": 0, "default": 0}}}
        }})
    }

    #[test]
    fn compiled_admission_matches_the_uncompiled_one() {
        let compiled = CompiledSchema::new(&schema());
        for obj in [
            json!({"spec": {"n": 3}, "extra": 1}),
            json!({"spec": {"n": 0}}),
            json!({"spec": {"n": 12}}),
        ] {
            assert_eq!(
                compiled.admit(&obj, None),
                admit(&schema(), &obj, None),
                "{obj}"
            );
        }
        let stored = compiled
            .admit(&json!({"spec": {"n": 3}, "status": {}}), None)
            .unwrap();
        assert_eq!(stored["status"]["m"], 0, "defaults apply");
        assert!(stored.get("extra").is_none());
    }

    #[test]
    fn writes_validate_the_part_they_can_change() {
        let compiled = CompiledSchema::new(&schema());
        // A stored object whose spec is invalid (say, created before a rule existed).
        let old = json!({"spec": {"n": 12}, "status": {"m": 1}});
        let status_write = json!({"spec": {"n": 12}, "status": {"m": 2}});
        assert!(
            compiled
                .admit_write(&status_write, Some(&old), Changed::Status)
                .is_ok()
        );
        let bad_status = json!({"spec": {"n": 12}, "status": {"m": -1}});
        let errors = compiled
            .admit_write(&bad_status, Some(&old), Changed::Status)
            .unwrap_err();
        assert_eq!(errors[0].field, "status.m");
        let spec_write = json!({"spec": {"n": 11}, "status": {"m": -1}});
        let errors = compiled
            .admit_write(&spec_write, Some(&old), Changed::AllButStatus)
            .unwrap_err();
        assert_eq!(
            render_errors(&errors),
            "spec: Invalid value: \"object\": n is too big"
        );
    }
}
