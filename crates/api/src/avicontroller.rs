//! `AviController`: a cluster-scoped connection to an Avi controller, owned by the cluster's
//! administrators and shared by the AviAutoscalers that reference it with `spec.controllerRef`.
//!
//! Its Secrets (credentials, CA) are read only from the operator's cluster-resource namespace,
//! so creating an AviAutoscaler never lets anyone make the operator read a Secret of their
//! choosing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::spec::ControllerSpec;

/// The desired state of an AviController: where the controller is, how to log in, and which
/// namespaces may use it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "autoscaling.avi.dev",
    doc = "AviController is a connection to an Avi (NSX Advanced Load Balancer) controller, shared by the AviAutoscalers of every namespace it allows. Its Secrets live in the operator's cluster-resource namespace.",
    version = "v1alpha1",
    kind = "AviController",
    plural = "avicontrollers",
    singular = "avicontroller",
    shortname = "avic",
    category = "autoscaling",
    status = "AviControllerStatus",
    printcolumn = r#"{"name":"Ready","type":"string","description":"Whether the controller can be logged in to","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","description":"The endpoint that answered last","jsonPath":".status.activeEndpoint"}"#,
    printcolumn = r#"{"name":"Version","type":"string","description":"The controller's software version","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Tenant","type":"string","description":"The Avi tenant the metrics are read in","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"Autoscalers","type":"integer","description":"AviAutoscalers that reference this controller and are allowed to","jsonPath":".status.autoscalers"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AviControllerSpec {
    /// The connection: endpoints, tenant, API version, authentication, credentials Secret, TLS
    /// and timeout, with the same fields and rules as an AviAutoscaler's inline
    /// `spec.controller`. Its Secrets are read from the operator's cluster-resource namespace.
    #[serde(flatten)]
    pub connection: ControllerSpec,

    /// The namespaces whose AviAutoscalers may use this controller. Absent: every namespace.
    /// An AviAutoscaler in a namespace it does not select holds with `ControllerNotAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// The observed state of an AviController, written by the operator after each probe.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AviControllerStatus {
    /// `Ready`: True with reason `Connected` after a successful login and version read; False
    /// with `AviUnreachable`, `AviAuthFailed`, `AviTLSError`, `SecretNotFound` or
    /// `SecretForbidden` otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The controller's software version, as it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// The endpoint that answered the last probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_endpoint: Option<String>,

    /// How many AviAutoscalers reference this controller and are allowed to use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscalers: Option<i32>,

    /// When the controller was last probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,

    /// The `metadata.generation` of the spec the last probe used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
