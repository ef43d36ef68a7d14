//! `AviAutoscaler.spec`: what to scale, where its load is measured, and how to react.
//!
//! Every field carries a doc comment: schemars turns them into the schema descriptions that
//! `kubectl explain aas.spec` prints. Bounds, enums and CEL rules (`x-kubernetes-validations`)
//! live on the types so that the API server refuses a bad object at `kubectl apply` time.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::AviAutoscalerStatus;

/// The desired behaviour of an AviAutoscaler: the workload to scale, its limits, the Avi
/// controller and metrics to read, and the scaling rules.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "autoscaling.avi.dev",
    doc = "AviAutoscaler scales a workload on metrics read straight from an Avi (NSX Advanced Load Balancer) controller, with the arithmetic of an autoscaling/v2 HorizontalPodAutoscaler.",
    version = "v1alpha1",
    kind = "AviAutoscaler",
    plural = "aviautoscalers",
    singular = "aviautoscaler",
    shortname = "aas",
    category = "all",
    category = "autoscaling",
    namespaced,
    status = "AviAutoscalerStatus",
    printcolumn = r#"{"name":"Target","type":"string","description":"The workload that is scaled","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Metric","type":"string","description":"Current / target value of the metrics (at most two shown)","jsonPath":".status.metricSummary"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","description":"Lower limit of the replica count","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","description":"Upper limit of the replica count","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","description":"Replica count of the target at the last reconcile","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","description":"Whether decisions are applied (Active), only published (DryRun) or not made (Paused)","jsonPath":".status.mode"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","priority":1,"description":"Whether the autoscaler works as configured","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.maxReplicas >= self.minReplicas").message("maxReplicas must be greater than or equal to minReplicas").field_path(".maxReplicas"),
    validation = Rule::new("has(self.controller) != has(self.controllerRef)").message("set exactly one of controllerRef (an AviController) and controller (an inline connection)"),
    validation = Rule::new("self.minReplicas > 0 || self.metrics.exists(m, has(m.activationValue))").message("minReplicas 0 needs at least one metric with activationValue, so that a metric can scale the target up from zero again").field_path(".minReplicas")
)]
pub struct AviAutoscalerSpec {
    /// The workload to scale: any resource with a `scale` subresource in this namespace
    /// (Deployment, StatefulSet, ReplicaSet or a custom kind).
    pub scale_target_ref: ScaleTargetRef,

    /// Lower limit for the replica count. Defaults to 1. 0 allows scaling to zero; it needs at
    /// least one metric with `activationValue` (normally a virtual-service metric, which Avi
    /// keeps counting while the pool has no members), so that the first clients scale the
    /// target up again.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub min_replicas: i32,

    /// Upper limit for the replica count; must be at least 1 and at least minReplicas.
    #[schemars(range(min = 1, max = 2147483647))]
    pub max_replicas: i32,

    /// The AviController (a cluster-scoped connection set up by the cluster's administrators)
    /// to read metrics from. Set exactly one of `controllerRef` and `controller`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_ref: Option<ControllerRef>,

    /// An inline connection to an Avi controller, with credentials from a Secret in this
    /// namespace. The operator refuses it unless it runs with `--allow-inline-controllers`; the
    /// Secret must carry the label `autoscaling.avi.dev/credentials: "true"`. Set exactly one of
    /// `controllerRef` and `controller`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerSpec>,

    /// The metrics to scale on (1 to 10). Each gives a replica proposal; the largest wins, as
    /// with a HorizontalPodAutoscaler.
    #[schemars(length(min = 1, max = 10))]
    pub metrics: Vec<MetricSpec>,

    /// How often the controller is polled and the replica count recomputed, in seconds
    /// (1 to 3600). Defaults to 15, the HorizontalPodAutoscaler's sync period. Avi refreshes
    /// non-realtime metrics only every 300 seconds, so faster polling mostly helps with
    /// `realtime: true` metrics.
    #[serde(default = "default_polling_interval_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub polling_interval_seconds: i32,

    /// No scaling while current/target stays within 1 ± tolerance (inclusive). A fraction in
    /// [0, 1); defaults to 0.1, the HorizontalPodAutoscaler's default. `behavior.scaleUp.tolerance`
    /// and `behavior.scaleDown.tolerance` override it per direction.
    #[serde(default = "default_tolerance")]
    #[schemars(extend("minimum" = 0, "maximum" = 1, "exclusiveMaximum" = true))]
    pub tolerance: f64,

    /// Scale-up and scale-down rules (stabilization windows and rate policies), with the
    /// semantics and defaults of autoscaling/v2 `spec.behavior`. When omitted, the
    /// HorizontalPodAutoscaler's behaviour without `behavior` applies: a 300 s scale-down
    /// stabilization window and scale-ups limited to max(2 × current, 4) per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<ScalingBehavior>,

    /// What to do when the metrics cannot be read. Without it the replica count is held for as
    /// long as the controller cannot be read; with it, after `failureThreshold` consecutive
    /// failed polls the target is scaled to `replicas` (kept within min/max).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,

    /// Stop scaling: the metrics are still read and reported, but the target's replica count is
    /// left alone. Defaults to false.
    #[serde(default)]
    pub paused: bool,

    /// Compute and publish everything (metrics, decisions, conditions, status history as if
    /// each recommendation had been applied) but never write the target's replica count:
    /// `status.desiredReplicas` shows what would be set. For running next to an existing
    /// HorizontalPodAutoscaler before replacing it. Defaults to false.
    #[serde(default)]
    pub dry_run: bool,

    /// With `minReplicas: 0`: how long no metric may have been above its `activationValue`, on
    /// fresh samples, before the target is scaled to zero, in seconds (0 to 86400). Defaults to
    /// 300.
    #[serde(default = "default_scale_to_zero_cooldown_seconds")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_to_zero_cooldown_seconds: i32,
}

fn default_scale_to_zero_cooldown_seconds() -> i32 {
    crate::DEFAULT_SCALE_TO_ZERO_COOLDOWN_SECONDS
}

/// A reference to a cluster-scoped AviController.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRef {
    /// Name of the AviController.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_min_replicas() -> i32 {
    crate::DEFAULT_MIN_REPLICAS
}

fn default_polling_interval_seconds() -> i32 {
    crate::DEFAULT_POLLING_INTERVAL_SECONDS
}

fn default_tolerance() -> f64 {
    crate::DEFAULT_TOLERANCE
}

/// Identifies the scaled workload, like autoscaling/v2 `scaleTargetRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// API version of the target, for example `apps/v1`. Defaults to `apps/v1`.
    #[serde(default = "default_target_api_version")]
    #[schemars(length(min = 1, max = 253))]
    pub api_version: String,

    /// Kind of the target, for example `Deployment` or `StatefulSet`. Defaults to `Deployment`.
    #[serde(default = "default_target_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,

    /// Name of the target, in the AviAutoscaler's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_target_api_version() -> String {
    "apps/v1".to_owned()
}

fn default_target_kind() -> String {
    "Deployment".to_owned()
}

/// The Avi controller (or controller cluster) that serves the metrics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControllerSpec {
    /// HTTPS URLs of the controller: the cluster VIP, or the nodes of a controller cluster in the
    /// order they should be tried. A node that refuses connections, times out or answers 5xx is
    /// skipped; the last healthy node is remembered. 1 to 8 entries.
    #[schemars(length(min = 1, max = 8), inner(length(min = 9, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(e, isURL(e) && url(e).getScheme() == 'https' && url(e).getHostname() != '')").message("each endpoint must be an https:// URL with a host, for example https://avi.example.com"))]
    pub endpoints: Vec<String>,

    /// Secret that holds the keys `username` and `password`: in the AviAutoscaler's namespace for
    /// an inline connection, in the operator's cluster-resource namespace for an AviController.
    /// The password may also be an Avi API token, which the controller accepts in its place.
    pub credentials_secret_ref: SecretRef,

    /// How to authenticate: `session` (default) logs in once at `/login` and reuses the session
    /// cookie, logging in again when it expires; `basic` sends HTTP basic credentials on every
    /// request, which the controller refuses unless `allow_basic_authentication` is enabled.
    #[serde(default)]
    pub auth_mode: AuthMode,

    /// Avi tenant (by name) that owns the entities. Defaults to `admin`.
    #[serde(default = "default_tenant")]
    #[schemars(length(min = 1, max = 128))]
    pub tenant: String,

    /// Value of the `X-Avi-Version` header, for example `22.1.3`. When unset the controller
    /// assumes 16.4.1, which serves the metrics endpoints just as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+$"), length(max = 32))]
    pub api_version: Option<String>,

    /// TLS settings. Certificates are verified against the system roots by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Timeout of each request to the controller, in seconds (1 to 60). Defaults to 10.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,
}

fn default_tenant() -> String {
    crate::DEFAULT_TENANT.to_owned()
}

fn default_timeout_seconds() -> i32 {
    crate::DEFAULT_TIMEOUT_SECONDS
}

/// How the operator authenticates to the controller.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HTTP basic authentication on every request (off by default on a controller).
    Basic,
    /// Session login at `/login`, then the session cookie (works on every controller).
    #[default]
    Session,
}

/// A reference to a Secret (in the AviAutoscaler's namespace for an inline connection, in the
/// operator's cluster-resource namespace for an AviController).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret (in the same namespace as the credentials Secret).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret. Defaults to `ca.crt`.
    #[serde(default = "default_ca_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_owned()
}

/// TLS settings for the controller connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.insecureSkipVerify && has(self.caSecretRef))").message("caSecretRef has no effect when insecureSkipVerify is true; set only one of them"))]
pub struct TlsSpec {
    /// Do not verify the controller's certificate. Only for labs: anyone on the path can then
    /// read the credentials. Defaults to false.
    #[serde(default)]
    pub insecure_skip_verify: bool,

    /// A PEM CA bundle, in a Secret next to the credentials Secret, trusted in addition to the
    /// system roots (for the controller's self-signed or private-CA certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
}

/// One metric to scale on: an Avi entity, one of its metrics, and the target value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.aggregation) || self.entity.type == 'pool'").message("aggregation applies only to pool metrics: virtual services and service engines answer one series").field_path(".aggregation"))]
pub struct MetricSpec {
    /// The Avi entity whose metric is read.
    pub entity: EntityRef,

    /// Avi metric id, `<family>.<name>`, for example `l4_server.avg_open_conns`,
    /// `l7_client.avg_complete_responses` or `l4_client.avg_bandwidth`.
    #[schemars(
        regex(pattern = r"^[a-z0-9_]+\.[a-z0-9_]+$"),
        length(min = 3, max = 128)
    )]
    pub metric_id: String,

    /// Pools answer one series per member (label `server`). `Sum` (the default for pools) gives
    /// the pool total, `Average` the mean per member, `Max` the busiest member. Only for pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Aggregation>,

    /// Read Avi's 5-second realtime samples instead of its 300-second averages. Realtime metrics
    /// must be enabled on the Avi object (with a duration of 0, so they do not lapse after 30
    /// minutes). Defaults to false.
    #[serde(default)]
    pub realtime: bool,

    /// The value to keep the metric at.
    pub target: MetricTarget,

    /// For scaling to zero: the metric is active while its value is above this (a number of at
    /// least 0). At 0 replicas, the target is scaled up as soon as any metric is active; with
    /// `minReplicas: 0` it is scaled to zero once no metric has been active for
    /// `scaleToZeroCooldownSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0))]
    pub activation_value: Option<f64>,
}

/// An Avi entity, by name or by UUID.
#[derive(
    KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) != has(self.uuid)").message("set exactly one of entity.name and entity.uuid"))]
pub struct EntityRef {
    /// Entity type: `pool`, `virtualservice` or `serviceengine`.
    #[serde(rename = "type")]
    pub kind: EntityType,

    /// Entity name, for example the AKO pool name
    /// `k8s-03-cluster--kuard.nsx.rockhomelab.org_-routing-ns1-kuard-ingress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,

    /// Entity UUID, for example `pool-3b3e5b5c-…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub uuid: Option<String>,
}

/// The Avi entity types that carry scaling metrics.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    /// A pool: one series per pool member.
    Pool,
    /// A virtual service: one series.
    #[serde(rename = "virtualservice")]
    VirtualService,
    /// A service engine: one series.
    #[serde(rename = "serviceengine")]
    ServiceEngine,
}

impl EntityType {
    /// The type's name as Avi spells it: in `entity.type`, in the paths of the controller's
    /// APIs (`/api/pool`, `/api/analytics/prometheus-metrics/virtualservice`) and in its metric
    /// catalog.
    ///
    /// ```
    /// use api::EntityType;
    /// for t in [EntityType::Pool, EntityType::VirtualService, EntityType::ServiceEngine] {
    ///     assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    /// }
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            EntityType::Pool => "pool",
            EntityType::VirtualService => "virtualservice",
            EntityType::ServiceEngine => "serviceengine",
        }
    }
}

/// How the per-member series of a pool metric are combined.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[schemars(transform = without_description)]
pub enum Aggregation {
    /// The pool total: the sum over members.
    #[default]
    Sum,
    /// The mean over members.
    Average,
    /// The busiest member.
    Max,
}

/// The target of a metric, with autoscaling/v2 Object-metric semantics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'Value' || (has(self.value) && !has(self.averageValue))").message("a target of type Value needs value (and no averageValue)"),
    validation = Rule::new("self.type != 'AverageValue' || (has(self.averageValue) && !has(self.value))").message("a target of type AverageValue needs averageValue (and no value)")
)]
pub struct MetricTarget {
    /// `Value`: desired = ceil(ready replicas × current / value), for a metric that falls as
    /// replicas are added (a per-member average). `AverageValue`: desired = ceil(current /
    /// averageValue), for a total that is shared by the replicas (a pool sum or a virtual
    /// service metric). For a pool total use `AverageValue`: a `Value` target on a sum grows with
    /// the replica count and runs away to maxReplicas.
    #[serde(rename = "type")]
    pub kind: TargetType,

    /// Target for the metric itself (type Value); greater than 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub value: Option<f64>,

    /// Target per replica (type AverageValue); greater than 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true))]
    pub average_value: Option<f64>,
}

/// Target types of autoscaling/v2 Object metrics.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetType {
    /// Compare the metric with `value`.
    Value,
    /// Compare the metric divided by the replica count with `averageValue`.
    AverageValue,
}

/// Scaling rules per direction, as autoscaling/v2 `spec.behavior`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingBehavior {
    /// Rules for scaling up. Defaults: no stabilization window, selectPolicy Max, policies
    /// `Pods 4 / 15s` and `Percent 100 / 15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,

    /// Rules for scaling down. Defaults: a 300 s stabilization window, selectPolicy Max,
    /// policy `Percent 100 / 15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// Stabilization and rate limits for one direction. Unset fields take the direction's
/// autoscaling/v2 default, field by field.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations to consider (0 to 3600): a scale-up goes only to the
    /// lowest recommendation of the window, a scale-down only to the highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,

    /// Which policy wins when several apply: `Max` (the one allowing the largest change, the
    /// default), `Min` (the smallest change), or `Disabled` (no scaling in this direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,

    /// Rate limits (1 to 10). Each allows a change of `value` pods, or `value` percent of the
    /// replicas at the start of the period, within any `periodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub policies: Option<Vec<ScalingPolicy>>,

    /// Tolerance for this direction, overriding `spec.tolerance` (a fraction in [0, 1)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 1, "exclusiveMaximum" = true))]
    pub tolerance: Option<f64>,
}

/// How competing policies of one direction are combined.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[schemars(transform = without_description)]
pub enum SelectPolicy {
    /// The policy that allows the largest change.
    #[default]
    Max,
    /// The policy that allows the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One rate limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` (an absolute number of replicas) or `Percent` (of the replicas at the start of
    /// the period).
    #[serde(rename = "type")]
    pub kind: PolicyType,
    /// The amount of change allowed; greater than 0.
    #[schemars(range(min = 1, max = 2147483647))]
    pub value: i32,
    /// The window the change is counted over, in seconds (1 to 1800).
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

/// Units of a scaling policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// An absolute number of replicas.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// Replicas to use while the metrics cannot be read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failed polls before the fallback applies (at least 1). Defaults to 3.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub failure_threshold: i32,
    /// Replica count to scale to once the threshold is reached (at least 1; kept within
    /// minReplicas and maxReplicas).
    #[schemars(range(min = 1, max = 2147483647))]
    pub replicas: i32,
}

/// Drops an enum's own description from its schema. An `Option<Enum>` field is flattened into
/// the enum's schema, whose description would otherwise replace the field's, so `kubectl
/// explain` would show the type's one line instead of the field's text (the default, what each
/// value means).
pub(crate) fn without_description(schema: &mut schemars::Schema) {
    schema.remove("description");
}

fn default_failure_threshold() -> i32 {
    crate::DEFAULT_FALLBACK_FAILURE_THRESHOLD
}
