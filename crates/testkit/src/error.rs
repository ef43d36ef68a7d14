//! API errors, answered as `metav1.Status` objects with kube-apiserver's codes, reasons and
//! message shapes.

use std::fmt;

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::schema::FieldError;

/// An error the API answers with: the HTTP status code, the `metav1.Status` reason and message,
/// and the optional `details`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code, for example 404.
    pub code: u16,
    /// `metav1.StatusReason`, for example `NotFound`.
    pub reason: String,
    /// The human-readable message, for example `deployments.apps "web" not found`.
    pub message: String,
    /// `metav1.StatusDetails`, when the API server sends them.
    pub details: Option<Value>,
    /// `Retry-After` in seconds, for 429 and 5xx answers that carry one.
    pub retry_after: Option<u32>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `StatusCause.reason` for a field error type.
fn cause_reason(kind: &str) -> &'static str {
    match kind {
        "Required value" => "FieldValueRequired",
        "Unsupported value" => "FieldValueNotSupported",
        "Too long" => "FieldValueTooLong",
        "Too many" => "FieldValueTooMany",
        "Duplicate value" => "FieldValueDuplicate",
        "Forbidden" => "FieldValueForbidden",
        "Not found" => "FieldValueNotFound",
        _ => "FieldValueInvalid",
    }
}

impl ApiError {
    /// An error with a code, reason and message and no details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// `404 NotFound` for an object: `deployments.apps "web" not found`.
    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::not_found_resource(&rt.group, &rt.plural, name)
    }

    /// `404 NotFound` for a group and plural resource.
    pub(crate) fn not_found_resource(group: &str, plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        );
        e.details = Some(details(name, group, plural));
        e
    }

    /// `404 NotFound` for a path the server does not serve.
    pub(crate) fn no_such_path() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// `409 AlreadyExists`.
    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_resource()),
        );
        e.details = Some(details(name, &rt.group, &rt.plural));
        e
    }

    /// `409 Conflict` for a stale `resourceVersion` or failed precondition.
    pub(crate) fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_resource()
            ),
        );
        e.details = Some(details(name, &rt.group, &rt.plural));
        e
    }

    /// The `409 Conflict` of an update whose `resourceVersion` is not the stored one.
    pub(crate) fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `422 Invalid` with one cause per field error:
    /// `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: …`.
    pub(crate) fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let full = e.to_string();
                let message = full
                    .strip_prefix(&format!("{}: ", e.field))
                    .unwrap_or(&full)
                    .to_owned();
                json!({"reason": cause_reason(e.kind), "message": message, "field": e.field})
            })
            .collect();
        let mut err = Self::new(
            422,
            "Invalid",
            format!(
                "{qualified_kind} \"{name}\" is invalid: {}",
                crate::schema::render_errors(errors)
            ),
        );
        let mut d = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        err.details = Some(d);
        err
    }

    /// `422 Invalid` for a single field of the object `rt`/`name`.
    pub(crate) fn invalid_field(
        rt: &ResourceType,
        name: &str,
        field: &str,
        kind: &'static str,
        value: Option<String>,
        detail: &str,
    ) -> Self {
        Self::invalid(
            &rt.group,
            &rt.kind,
            name,
            &[FieldError {
                field: field.to_owned(),
                kind,
                detail: detail.to_owned(),
                value,
            }],
        )
    }

    /// `405 MethodNotAllowed`.
    pub(crate) fn method_not_allowed() -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// `415 UnsupportedMediaType` for a patch content type the resource does not take.
    pub(crate) fn unsupported_patch(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// `410 Gone` with reason `Expired`.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// `500 InternalError`.
    pub(crate) fn internal(message: &str) -> Self {
        let mut e = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        );
        e.details = Some(json!({"causes": [{"message": message}]}));
        e
    }

    /// `429 TooManyRequests`, as the API server's priority and fairness answers it.
    pub(crate) fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(json!({"retryAfterSeconds": retry_after}));
        e.retry_after = Some(retry_after);
        e
    }

    /// The `metav1.Status` object of this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    /// Whether this is a `404 NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }
}

/// `deployments.apps`, or `secrets` for the core group.
pub(crate) fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

fn details(name: &str, group: &str, plural: &str) -> Value {
    let mut d = json!({"name": name, "kind": plural});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_renders_like_the_api_server() {
        let errors = [FieldError {
            field: "spec.replicas".into(),
            kind: "Invalid value",
            detail: "must be greater than or equal to 0".into(),
            value: Some("-1".into()),
        }];
        let e = ApiError::invalid("apps", "Deployment", "web", &errors);
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let s = e.to_status();
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn not_found_names_the_qualified_resource() {
        let e = ApiError::not_found_resource("autoscaling.avi.dev", "aviautoscalers", "x");
        assert_eq!(
            e.message,
            "aviautoscalers.autoscaling.avi.dev \"x\" not found"
        );
        let e = ApiError::not_found_resource("", "secrets", "s");
        assert_eq!(e.message, "secrets \"s\" not found");
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "s", "kind": "secrets"})
        );
    }
}
