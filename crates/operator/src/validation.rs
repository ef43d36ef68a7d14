//! Every AviAutoscaler is checked against the CRD generated from its own types (the one
//! `avi-autoscaler crd` prints) before the operator or `simulate` acts on it.
//!
//! The API server normally refuses a bad object at `kubectl apply` time, but not every one
//! does: an API server that skips CEL or `format: int32`, a CRD edited by hand, a scenario file
//! for `simulate`. The schema's bounds and CEL rules are the only statement of what a valid spec
//! is; they are evaluated here with the same engine the Kubernetes stand-in uses
//! (`crd-schema`), so a refused object reports the field path and message the API server would
//! give. Only then is the spec resolved into typed values.

use std::sync::OnceLock;

use api::{AviAutoscaler, InvalidSpec, ResolvedSpec, SpecViolation};
use crd_schema::{Changed, CompiledSchema, FieldError};
use kube::CustomResourceExt;
use serde_json::Value;

/// The generated CRD's schema, with its CEL rules compiled once per process.
fn schema() -> &'static CompiledSchema {
    static SCHEMA: OnceLock<CompiledSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = serde_json::to_value(AviAutoscaler::crd())
            .expect("the generated CRD always serializes to JSON");
        let schema = crd_schema::crd_version_schema(&crd, api::VERSION)
            .expect("the generated CRD serves its own version");
        CompiledSchema::new(schema)
    })
}

/// Admits `object` (an AviAutoscaler as JSON) as the API server admits a write that cannot
/// change status: unknown fields pruned, the schema's defaults applied, then the bounds and
/// CEL rules checked. Returns the stored form, or every field that breaks a rule.
pub fn admit(object: &Value) -> Result<Value, InvalidSpec> {
    schema()
        .admit_write(object, None, Changed::AllButStatus)
        .map_err(|errors| InvalidSpec(errors.iter().map(violation).collect()))
}

/// Checks `obj` against the CRD, then resolves its spec: what the operator acts on.
pub fn resolve(obj: &AviAutoscaler) -> Result<ResolvedSpec, InvalidSpec> {
    let object = serde_json::to_value(obj).expect("an AviAutoscaler always serializes to JSON");
    admit(&object)?;
    obj.spec.resolve()
}

/// A field error as a violation whose `field: message` reads exactly as the API server's error.
fn violation(e: &FieldError) -> SpecViolation {
    let text = e.to_string();
    let message = text
        .strip_prefix(&format!("{}: ", e.field))
        .unwrap_or(&text)
        .to_owned();
    SpecViolation {
        field: e.field.clone(),
        message,
    }
}

#[cfg(test)]
mod tests;
