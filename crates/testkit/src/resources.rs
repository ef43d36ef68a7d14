//! The resource types the stand-in serves: the built-in ones and those CRDs declare.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::jsonpath::JsonPath;

/// Which special rules a resource type follows on writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Stored as sent.
    Plain,
    /// `status.phase`, the `kubernetes.io/metadata.name` label, and cascading deletion.
    Namespace,
    /// `stringData` folded into `data`, `type` defaulted to `Opaque`.
    Secret,
    /// apps/v1 Deployment defaults.
    Deployment,
    /// apps/v1 StatefulSet defaults.
    StatefulSet,
    /// core/v1 Event.
    CoreEvent,
    /// events.k8s.io/v1 Event, stored as a core/v1 Event.
    EventsV1,
    /// A CustomResourceDefinition: creating it starts serving its resource.
    Crd,
    /// An object of a CRD: validated against its structural schema.
    Custom,
}

/// How `metadata.generation` moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Generation {
    /// The type has no generation.
    None,
    /// On changes to anything but `metadata` and `status`.
    Spec,
    /// Like `Spec`, and on annotation changes (apps/v1 Deployment).
    SpecAndAnnotations,
}

/// The server-side table printer of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Printer {
    Default,
    Namespace,
    Secret,
    ConfigMap,
    Deployment,
    StatefulSet,
    ReplicaSet,
    Event,
    Lease,
    Crd,
    Service,
    Pod,
    Custom,
}

/// The scale subresource's paths into the parent object.
#[derive(Clone, Debug)]
pub(crate) struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
    /// Whether the selector lives at `spec.selector` as a `metav1.LabelSelector` (built-ins).
    pub selector_is_label_selector: bool,
}

/// One additional printer column of a CRD version.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub path: JsonPath,
}

/// What a CRD declares for one served version.
#[derive(Clone, Debug)]
pub(crate) struct CrdVersion {
    pub schema: Option<Value>,
    /// The schema with its CEL rules compiled, for admission.
    pub compiled: Option<Arc<crate::schema::CompiledSchema>>,
    /// The schema as an API server before 1.36 admits with it (see
    /// [`crate::schema::pre_1_36`]), for the stand-in's pre-1.36 mode.
    pub compiled_pre_1_36: Option<Arc<crate::schema::CompiledSchema>>,
    pub columns: Vec<Column>,
    pub selectable_fields: Vec<(String, JsonPath)>,
}

/// One served group/version/resource.
#[derive(Clone, Debug)]
pub(crate) struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub generation: Generation,
    pub behaviour: Behaviour,
    pub printer: Printer,
    /// Objects of all versions (and both event views) sharing one table live under this key.
    pub storage: Arc<str>,
    pub crd: Option<Arc<CrdVersion>>,
    /// Whether PUT needs `metadata.resourceVersion` (custom resources).
    pub requires_rv_on_update: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `secrets` for the core group.
    pub(crate) fn qualified_resource(&self) -> String {
        crate::error::qualified(&self.group, &self.plural)
    }

    /// `DeploymentList`.
    pub(crate) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The verbs discovery lists for the main resource.
    pub(crate) fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Whether the type accepts strategic merge patches (built-ins only, like the API server).
    pub(crate) fn accepts_strategic_merge(&self) -> bool {
        self.behaviour != Behaviour::Custom
    }

    /// The patch content types the type accepts, in the API server's order.
    pub(crate) fn patch_types(&self) -> Vec<&'static str> {
        let mut v = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if self.accepts_strategic_merge() {
            v.push("application/strategic-merge-patch+json");
        }
        v.push("application/apply-patch+yaml");
        v
    }
}

struct Def {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: Generation,
    behaviour: Behaviour,
    printer: Printer,
}

const fn def(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Def {
    Def {
        group,
        version,
        plural,
        kind,
        namespaced,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: Generation::None,
        behaviour: Behaviour::Plain,
        printer: Printer::Default,
    }
}

/// The built-in resource types.
pub(crate) fn builtins() -> Vec<Arc<ResourceType>> {
    use Behaviour as B;
    use Printer as P;
    let all = &["all"];
    let defs = [
        Def {
            short: &["ns"],
            status: true,
            behaviour: B::Namespace,
            printer: P::Namespace,
            ..def("", "v1", "namespaces", "Namespace", false)
        },
        Def {
            behaviour: B::Secret,
            printer: P::Secret,
            ..def("", "v1", "secrets", "Secret", true)
        },
        Def {
            short: &["cm"],
            printer: P::ConfigMap,
            ..def("", "v1", "configmaps", "ConfigMap", true)
        },
        Def {
            short: &["ev"],
            behaviour: B::CoreEvent,
            printer: P::Event,
            ..def("", "v1", "events", "Event", true)
        },
        Def {
            short: &["svc"],
            categories: all,
            status: true,
            printer: P::Service,
            ..def("", "v1", "services", "Service", true)
        },
        Def {
            short: &["sa"],
            ..def("", "v1", "serviceaccounts", "ServiceAccount", true)
        },
        Def {
            short: &["po"],
            categories: all,
            status: true,
            printer: P::Pod,
            ..def("", "v1", "pods", "Pod", true)
        },
        Def {
            short: &["deploy"],
            categories: all,
            status: true,
            scale: true,
            generation: Generation::SpecAndAnnotations,
            behaviour: B::Deployment,
            printer: P::Deployment,
            ..def("apps", "v1", "deployments", "Deployment", true)
        },
        Def {
            short: &["sts"],
            categories: all,
            status: true,
            scale: true,
            generation: Generation::Spec,
            behaviour: B::StatefulSet,
            printer: P::StatefulSet,
            ..def("apps", "v1", "statefulsets", "StatefulSet", true)
        },
        Def {
            short: &["rs"],
            categories: all,
            status: true,
            scale: true,
            generation: Generation::Spec,
            printer: P::ReplicaSet,
            ..def("apps", "v1", "replicasets", "ReplicaSet", true)
        },
        Def {
            short: &["ds"],
            categories: all,
            status: true,
            generation: Generation::Spec,
            ..def("apps", "v1", "daemonsets", "DaemonSet", true)
        },
        Def {
            short: &["hpa"],
            categories: all,
            status: true,
            generation: Generation::Spec,
            ..def(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
            )
        },
        Def {
            printer: P::Lease,
            ..def("coordination.k8s.io", "v1", "leases", "Lease", true)
        },
        Def {
            short: &["ev"],
            behaviour: B::EventsV1,
            printer: P::Event,
            ..def("events.k8s.io", "v1", "events", "Event", true)
        },
        Def {
            short: &["crd", "crds"],
            status: true,
            generation: Generation::Spec,
            behaviour: B::Crd,
            printer: P::Crd,
            ..def(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
            )
        },
        Def {
            short: &["ing"],
            status: true,
            generation: Generation::Spec,
            ..def("networking.k8s.io", "v1", "ingresses", "Ingress", true)
        },
        def("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
        ),
    ];
    defs.into_iter()
        .map(|d| {
            let storage: Arc<str> = if d.behaviour == B::EventsV1 {
                Arc::from("/events")
            } else {
                Arc::from(format!("{}/{}", d.group, d.plural))
            };
            Arc::new(ResourceType {
                group: d.group.to_owned(),
                version: d.version.to_owned(),
                plural: d.plural.to_owned(),
                singular: d.kind.to_lowercase(),
                kind: d.kind.to_owned(),
                namespaced: d.namespaced,
                short_names: d.short.iter().map(|s| (*s).to_owned()).collect(),
                categories: d.categories.iter().map(|s| (*s).to_owned()).collect(),
                status: d.status,
                scale: d.scale.then(|| ScalePaths {
                    spec_replicas: ".spec.replicas".to_owned(),
                    status_replicas: ".status.replicas".to_owned(),
                    label_selector: Some(".spec.selector".to_owned()),
                    selector_is_label_selector: true,
                }),
                generation: d.generation,
                behaviour: d.behaviour,
                printer: d.printer,
                storage,
                crd: None,
                requires_rv_on_update: false,
            })
        })
        .collect()
}

/// Checks a CustomResourceDefinition and returns the resource types of its served versions,
/// or what is wrong with it as `(field, detail)`.
pub(crate) fn from_crd(crd: &Value) -> Result<Vec<Arc<ResourceType>>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let s = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let group = s("/spec/group");
    let plural = s("/spec/names/plural");
    let kind = s("/spec/names/kind");
    let scope = s("/spec/scope");
    let name = s("/metadata/name");
    if group.is_empty() {
        errors.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errors.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errors.push(("spec.names.kind".into(), "Required value".into()));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if !matches!(scope, "Namespaced" | "Cluster") {
        errors.push((
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage_versions = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_versions != 1 {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let names = |k: &str| -> Vec<String> {
        crd.pointer(&format!("/spec/names/{k}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = match s("/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_owned(),
    };
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vname = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if vname.is_empty() {
            errors.push((format!("spec.versions[{i}].name"), "Required value".into()));
            continue;
        }
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let mut columns = Vec::new();
        let declared = v.get("additionalPrinterColumns").and_then(Value::as_array);
        let default_age =
            [json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})];
        for (j, c) in declared
            .map(Vec::as_slice)
            .unwrap_or(&default_age)
            .iter()
            .enumerate()
        {
            let path = c
                .get("jsonPath")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match JsonPath::parse(path) {
                Ok(p) => columns.push(Column {
                    name: c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    type_: c
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("string")
                        .to_owned(),
                    format: c
                        .get("format")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    description: c
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            format!(
                                "Custom resource definition column (in JSONPath format): {path}"
                            )
                        }),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    path: p,
                }),
                Err(e) => errors.push((
                    format!("spec.versions[{i}].additionalPrinterColumns[{j}].jsonPath"),
                    format!("Invalid value: \"{path}\": {e}"),
                )),
            }
        }
        let selectable_fields = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .filter_map(|p| {
                        JsonPath::parse(p)
                            .ok()
                            .map(|jp| (p.trim_start_matches('.').to_owned(), jp))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let subresources = v.get("subresources");
        let status = subresources.and_then(|s| s.get("status")).is_some();
        let scale = subresources
            .and_then(|s| s.get("scale"))
            .map(|sc| ScalePaths {
                spec_replicas: sc
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_owned(),
                status_replicas: sc
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_owned(),
                label_selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                selector_is_label_selector: false,
            });
        out.push(Arc::new(ResourceType {
            group: group.to_owned(),
            version: vname.to_owned(),
            plural: plural.to_owned(),
            singular: singular.clone(),
            kind: kind.to_owned(),
            namespaced: scope == "Namespaced",
            short_names: names("shortNames"),
            categories: names("categories"),
            status,
            scale,
            generation: Generation::Spec,
            behaviour: Behaviour::Custom,
            printer: Printer::Custom,
            storage: Arc::from(format!("{group}/{plural}")),
            crd: Some(Arc::new(CrdVersion {
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                compiled: v
                    .pointer("/schema/openAPIV3Schema")
                    .map(|s| Arc::new(crate::schema::CompiledSchema::new(s))),
                compiled_pre_1_36: v.pointer("/schema/openAPIV3Schema").map(|s| {
                    Arc::new(crate::schema::CompiledSchema::new(
                        &crate::schema::pre_1_36(s),
                    ))
                }),
                columns,
                selectable_fields,
            })),
            requires_rv_on_update: true,
        }));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The served types, looked up by group/version and plural, kind or short name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    pub(crate) fn with_builtins() -> Self {
        Self { types: builtins() }
    }

    /// Replaces every type stored under `storage` with `types` (a CRD created or changed).
    pub(crate) fn replace_storage(&mut self, storage: &str, types: Vec<Arc<ResourceType>>) {
        self.types.retain(|t| &*t.storage != storage);
        self.types.extend(types);
    }

    /// The type at `/apis/{group}/{version}/…/{plural}`.
    pub(crate) fn by_plural(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type of `apiVersion` and a kind, plural, singular or short name.
    pub(crate) fn resolve(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let lower = kind.to_lowercase();
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .find(|t| {
                t.kind == kind
                    || t.plural == lower
                    || t.singular == lower
                    || t.short_names.contains(&lower)
            })
            .cloned()
    }

    /// Groups and their versions, in registration order (core group first).
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    if !vs.contains(&t.version) {
                        vs.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// The types of one group/version.
    pub(crate) fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_declares_its_versions_and_subresources() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        });
        let types = from_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        let t = &types[0];
        assert_eq!(t.singular, "widget");
        assert!(t.status);
        assert_eq!(t.scale.as_ref().unwrap().spec_replicas, ".spec.size");
        assert_eq!(t.crd.as_ref().unwrap().columns[0].name, "Age");
        let mut reg = Registry::with_builtins();
        reg.replace_storage(&t.storage, types.clone());
        assert!(reg.resolve("example.com/v1", "wd").is_some());
        assert!(reg.resolve("example.com/v1", "Widget").is_some());
        assert!(reg.resolve("apps/v1", "deploy").is_some());
    }

    #[test]
    fn bad_crds_are_refused() {
        let crd = json!({"metadata": {"name": "x"}, "spec": {"group": "g", "names": {"plural": "p", "kind": "K"}, "scope": "Nowhere", "versions": []}});
        let errors = from_crd(&crd).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"metadata.name"), "{errors:?}");
        assert!(fields.contains(&"spec.scope"), "{errors:?}");
        assert!(fields.contains(&"spec.versions"), "{errors:?}");
    }
}
