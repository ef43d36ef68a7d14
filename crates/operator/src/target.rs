//! The scaled workload: resolved through discovery, written only through its `scale`
//! subresource, read from a watch of its kind where there is one ([`crate::workloads`]:
//! Deployments, StatefulSets, ReplicaSets) and otherwise through `scale` (plus a read of
//! `status.readyReplicas` for the kinds that have it).
//!
//! Any kind with a `scale` subresource works. Discovery answers are cached per
//! (apiVersion, kind) for [`DISCOVERY_TTL`], so a CRD installed later is picked up without a
//! restart and a steady state costs no discovery calls.

use std::time::Duration;

use api::ScaleTargetRef;
use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{ApiResource, oneshot},
};
use serde_json::json;
use tracing::debug;

use crate::{
    ttl_cache::TtlCache,
    workloads::{WorkloadCaches, WorkloadKind},
};

/// How long a discovery answer is trusted.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// How long after a write of its `/scale` a target is read through `/scale` (once) rather than
/// from its watch: longer than the longest polling interval (3600 s), so the next reconcile
/// after a write always reads what the API server holds.
pub const READ_AFTER_WRITE_TTL: Duration = Duration::from_secs(7200);

/// The target's replica counts, as the engine needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replicas {
    /// `scale.spec.replicas`.
    pub spec: i32,
    /// `scale.status.replicas`.
    pub status: i32,
    /// `status.readyReplicas` of the workload, for kinds that have one.
    pub ready: Option<i32>,
}

/// What a read of the target returns: the counts and the `resourceVersion` they were read at,
/// which the write then carries so it lands only on the state the decision saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleRead {
    /// The replica counts.
    pub replicas: Replicas,
    /// The Scale's `metadata.resourceVersion` (that of the workload), if the server sent one.
    pub resource_version: Option<String>,
    /// Where the counts come from.
    pub source: ReadSource,
}

/// Where a [`ScaleRead`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The watch of the target's kind: no request was made.
    Watch,
    /// A GET of the target's `/scale` (and of the object, for its ready replicas).
    Scale,
}

/// Why the target could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `apiVersion` is not `group/version` or `version`.
    #[error("scaleTargetRef.apiVersion {api_version:?} is not of the form group/version")]
    BadApiVersion {
        /// The offending value.
        api_version: String,
    },
    /// Discovery does not know the kind.
    #[error("the API server serves no kind {kind} in {api_version}")]
    UnknownKind {
        /// The apiVersion looked up.
        api_version: String,
        /// The kind looked up.
        kind: String,
        /// What discovery answered.
        #[source]
        source: kube::Error,
    },
    /// The kind has no scale subresource.
    #[error("{kind} in {api_version} has no scale subresource, so it cannot be scaled")]
    NoScaleSubresource {
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// The target changed between its read and this write (409 on the resourceVersion read):
    /// nothing was written.
    #[error("{kind} {namespace}/{name} changed since its scale was read; not overwriting it")]
    Conflict {
        /// The kind.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// The target object does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// The kind.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// Any other API error.
    #[error("{verb} the scale of {kind} {namespace}/{name}")]
    Api {
        /// What was attempted (`reading`, `updating`).
        verb: &'static str,
        /// The kind.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl TargetError {
    /// The message for conditions and events: the error and its causes on one line.
    pub fn message(&self) -> String {
        present::error_chain(self)
    }
}

/// What discovery said about a target's kind.
#[derive(Clone)]
struct Resolved {
    resource: ApiResource,
    has_ready_replicas: bool,
}

/// Reads and writes scale subresources, with a discovery cache.
pub struct Targets {
    client: Client,
    /// Discovery answers by (apiVersion, kind).
    cache: TtlCache<(String, String), Resolved>,
    /// The watched workloads' replica counts.
    workloads: WorkloadCaches,
    /// Targets (namespace, kind, name) whose `/scale` was written and not read since.
    written: TtlCache<(String, WorkloadKind, String), ()>,
}

/// Whether kind `kind` of API group `group` has `readyReplicas` in its status (omitted when 0).
/// The HorizontalPodAutoscaler counts only ready pods for Value targets; for other kinds the
/// scale's status.replicas stands in.
fn has_ready_replicas(group: &str, kind: &str) -> bool {
    group == "apps" && matches!(kind, "Deployment" | "StatefulSet" | "ReplicaSet")
}

/// Whether the target's kind has `readyReplicas` in its status; see [`has_ready_replicas`].
pub fn reports_ready_replicas(target: &ScaleTargetRef) -> bool {
    let group = target.api_version.split_once('/').map_or("", |(g, _)| g);
    has_ready_replicas(group, &target.kind)
}

impl Targets {
    /// A target reader using `client`; the workloads of `namespaces` (all when empty) are
    /// watched.
    pub fn new(client: Client, namespaces: Vec<String>) -> Self {
        Targets {
            workloads: WorkloadCaches::new(client.clone(), namespaces),
            client,
            cache: TtlCache::new(DISCOVERY_TTL),
            written: TtlCache::new(READ_AFTER_WRITE_TTL),
        }
    }

    /// Drops the read-after-write marks older than [`READ_AFTER_WRITE_TTL`] (those of targets
    /// no autoscaler read again).
    pub fn forget_expired(&self) {
        self.written.retain(|_| true);
    }

    async fn resolve(&self, target: &ScaleTargetRef) -> Result<(ApiResource, bool), TargetError> {
        let key = (target.api_version.clone(), target.kind.clone());
        if let Some(r) = self.cache.get(&key) {
            return Ok((r.resource, r.has_ready_replicas));
        }
        let (group, version) = match target.api_version.split_once('/') {
            Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => (g, v),
            None if !target.api_version.is_empty() => ("", target.api_version.as_str()),
            _ => {
                return Err(TargetError::BadApiVersion {
                    api_version: target.api_version.clone(),
                });
            }
        };
        let gvk = GroupVersionKind::gvk(group, version, &target.kind);
        let (resource, caps) =
            oneshot::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|source| TargetError::UnknownKind {
                    api_version: target.api_version.clone(),
                    kind: target.kind.clone(),
                    source,
                })?;
        if !caps
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural == "scale")
        {
            return Err(TargetError::NoScaleSubresource {
                api_version: target.api_version.clone(),
                kind: target.kind.clone(),
            });
        }
        let ready = has_ready_replicas(group, &target.kind);
        self.cache.insert(
            key,
            Resolved {
                resource: resource.clone(),
                has_ready_replicas: ready,
            },
        );
        Ok((resource, ready))
    }

    fn api_error(
        verb: &'static str,
        namespace: &str,
        target: &ScaleTargetRef,
        source: kube::Error,
    ) -> TargetError {
        if verb == "updating" && matches!(&source, kube::Error::Api(s) if s.code == 409) {
            TargetError::Conflict {
                kind: target.kind.clone(),
                namespace: namespace.to_owned(),
                name: target.name.clone(),
            }
        } else if matches!(&source, kube::Error::Api(s) if s.code == 404) {
            TargetError::NotFound {
                kind: target.kind.clone(),
                namespace: namespace.to_owned(),
                name: target.name.clone(),
            }
        } else {
            TargetError::Api {
                verb,
                kind: target.kind.clone(),
                namespace: namespace.to_owned(),
                name: target.name.clone(),
                source,
            }
        }
    }

    /// Reads the target's scale (and ready replicas where its kind has them): from the watch
    /// of its kind when that holds it and the target was not written since the last read,
    /// otherwise through `/scale`.
    pub async fn read(
        &self,
        namespace: &str,
        target: &ScaleTargetRef,
    ) -> Result<ScaleRead, TargetError> {
        if let Some(kind) = WorkloadKind::of(&target.api_version, &target.kind) {
            let key = (namespace.to_owned(), kind, target.name.clone());
            if self.written.get(&key).is_some() {
                self.written.remove(&key);
                debug!(target = %target.name, "written since the last read: reading its scale");
            } else if let Some(read) = self.workloads.get(kind, namespace, &target.name) {
                return Ok(read);
            } else {
                debug!(target = %target.name, "not in the watch of its kind (yet): reading its scale");
            }
        }
        self.read_scale(namespace, target).await
    }

    /// Reads the target's scale through the API server (what `doctor` does: one read is not
    /// worth a watch).
    pub async fn read_scale(
        &self,
        namespace: &str,
        target: &ScaleTargetRef,
    ) -> Result<ScaleRead, TargetError> {
        let (resource, ready) = self.resolve(target).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let scale = api
            .get_scale(&target.name)
            .await
            .map_err(|e| Self::api_error("reading", namespace, target, e))?;
        let resource_version = scale.metadata.resource_version;
        let spec = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        let status = scale.status.map(|s| s.replicas).unwrap_or(0);
        let ready = if ready {
            let obj = api
                .get(&target.name)
                .await
                .map_err(|e| Self::api_error("reading", namespace, target, e))?;
            Some(
                obj.data
                    .pointer("/status/readyReplicas")
                    .and_then(serde_json::Value::as_i64)
                    .map(|n| n.clamp(0, i64::from(i32::MAX)) as i32)
                    .unwrap_or(0),
            )
        } else {
            None
        };
        Ok(ScaleRead {
            replicas: Replicas {
                spec,
                status,
                ready,
            },
            resource_version,
            source: ReadSource::Scale,
        })
    }

    /// Sets the target's `scale.spec.replicas`. Nothing else of the target is ever written.
    ///
    /// With `resource_version` (the one [`Targets::read`] returned) the write is conditional:
    /// if anyone changed the target since, the API server answers 409 and this returns
    /// [`TargetError::Conflict`] without having written anything.
    pub async fn patch_scale(
        &self,
        namespace: &str,
        target: &ScaleTargetRef,
        replicas: i32,
        resource_version: Option<&str>,
    ) -> Result<(), TargetError> {
        let (resource, _) = self.resolve(target).await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let written = api
            .patch_scale(
                &target.name,
                &PatchParams::default(),
                &Patch::Merge(scale_patch(replicas, resource_version)),
            )
            .await
            .map_err(|e| Self::api_error("updating", namespace, target, e));
        // After a write (or a conflict: the cache was behind), the watch may not have the
        // workload's new state yet: the next read asks the API server.
        if matches!(&written, Ok(_) | Err(TargetError::Conflict { .. }))
            && let Some(kind) = WorkloadKind::of(&target.api_version, &target.kind)
        {
            self.written
                .insert((namespace.to_owned(), kind, target.name.clone()), ());
        }
        written?;
        Ok(())
    }
}

/// The merge patch of a scale write: the count, and the resourceVersion it is conditional on.
fn scale_patch(replicas: i32, resource_version: Option<&str>) -> serde_json::Value {
    match resource_version {
        Some(rv) => json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": replicas}}),
        None => json!({"spec": {"replicas": replicas}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_write_carries_the_resource_version_it_was_decided_on() {
        assert_eq!(
            scale_patch(3, Some("42")),
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 3}})
        );
        assert_eq!(scale_patch(0, None), json!({"spec": {"replicas": 0}}));
    }

    fn target(api_version: &str, kind: &str) -> ScaleTargetRef {
        ScaleTargetRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "web".into(),
        }
    }

    #[test]
    fn only_the_apps_workloads_report_ready_replicas() {
        for kind in ["Deployment", "StatefulSet", "ReplicaSet"] {
            assert!(reports_ready_replicas(&target("apps/v1", kind)), "{kind}");
        }
        assert!(!reports_ready_replicas(&target(
            "v1",
            "ReplicationController"
        )));
        assert!(!reports_ready_replicas(&target(
            "example.com/v1",
            "Deployment"
        )));
        assert!(!reports_ready_replicas(&target("apps/v1", "DaemonSet")));
    }
}
