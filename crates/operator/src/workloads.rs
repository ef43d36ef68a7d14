//! Replica counts of Deployments, StatefulSets and ReplicaSets from watches, so that a steady
//! fleet reads no `/scale`.
//!
//! A reconcile needs the target's `spec.replicas`, `status.replicas`, `status.readyReplicas` and
//! the resourceVersion its `/scale` write is made conditional on. For the `apps/v1` kinds all of
//! these are fields of the workload object itself (its Scale carries the object's
//! resourceVersion), so one watch per kind replaces a GET of `/scale` and a GET of the object
//! per autoscaler and tick. A kind is watched from the first time an autoscaler targets it, in
//! the namespaces the operator watches. Objects are decoded straight into [`Workload`] (name,
//! namespace, resourceVersion and the three counts): serde skips the pod template and the rest
//! while parsing, so neither is ever held.
//!
//! The cache is only a faster read: [`crate::target::Targets::read`] falls back to `/scale`
//! while a kind's watch has not listed yet (or cannot: RBAC without `list`/`watch`), when the
//! cache does not hold the target, and once after each write of the target's `/scale`, which
//! the watch may not have delivered yet. A stale cache cannot cause a wrong write: the write
//! carries the resourceVersion read here, so the API server refuses it (409) if the workload
//! changed since.

use std::{
    collections::HashMap,
    marker::PhantomData,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{StreamExt, future};
use k8s_openapi::{
    NamespaceResourceScope,
    api::apps::v1::{Deployment, ReplicaSet, StatefulSet},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, reflector::ObjectRef, reflector::Store, watcher},
};
use serde::Deserialize;
use tracing::info;

use crate::target::{ReadSource, Replicas, ScaleRead};

/// The workload kinds read from watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
}

impl WorkloadKind {
    /// The watched kind named by `apiVersion` and `kind`, if it is one.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        if api_version != "apps/v1" {
            return None;
        }
        match kind {
            "Deployment" => Some(WorkloadKind::Deployment),
            "StatefulSet" => Some(WorkloadKind::StatefulSet),
            "ReplicaSet" => Some(WorkloadKind::ReplicaSet),
            _ => None,
        }
    }
}

/// What the operator keeps of one workload: enough to stand in for its Scale.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "RawWorkload")]
pub struct Workload<K> {
    metadata: ObjectMeta,
    replicas: Replicas,
    kind: PhantomData<fn() -> K>,
}

impl<K> Workload<K> {
    fn scale_read(&self) -> ScaleRead {
        ScaleRead {
            replicas: self.replicas,
            resource_version: self.metadata.resource_version.clone(),
            source: ReadSource::Watch,
        }
    }
}

/// The fields decoded; every other field is skipped while parsing.
#[derive(Deserialize)]
struct RawWorkload {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    resource_version: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawSpec {
    replicas: Option<i32>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    replicas: Option<i32>,
    ready_replicas: Option<i32>,
}

impl<K> From<RawWorkload> for Workload<K> {
    fn from(raw: RawWorkload) -> Self {
        Workload {
            metadata: ObjectMeta {
                name: raw.metadata.name,
                namespace: raw.metadata.namespace,
                resource_version: raw.metadata.resource_version,
                ..ObjectMeta::default()
            },
            // As the API server's Scale of these kinds: absent counts are 0; readyReplicas is
            // omitted when 0.
            replicas: Replicas {
                spec: raw.spec.replicas.unwrap_or(0),
                status: raw.status.replicas.unwrap_or(0),
                ready: Some(raw.status.ready_replicas.unwrap_or(0).max(0)),
            },
            kind: PhantomData,
        }
    }
}

impl<K: k8s_openapi::Resource> k8s_openapi::Resource for Workload<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: k8s_openapi::Resource> k8s_openapi::Metadata for Workload<K> {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One kind's watches: one per watched scope (all namespaces, or each `--namespace`).
trait KindCache: Send + Sync {
    /// The workload, if the watch of its namespace has listed and holds it.
    fn get(&self, namespace: &str, name: &str) -> Option<ScaleRead>;
}

struct Scoped<K: k8s_openapi::Resource + Clone + 'static> {
    /// `None`: all namespaces.
    namespace: Option<String>,
    store: Store<Workload<K>>,
    synced: Arc<AtomicBool>,
}

/// What a watched workload kind is: a namespaced k8s-openapi type.
trait WorkloadType:
    k8s_openapi::Resource<Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> WorkloadType for K where
    K: k8s_openapi::Resource<Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

struct Watched<K: k8s_openapi::Resource + Clone + 'static> {
    scopes: Vec<Scoped<K>>,
}

impl<K: WorkloadType> KindCache for Watched<K> {
    fn get(&self, namespace: &str, name: &str) -> Option<ScaleRead> {
        let scope = self
            .scopes
            .iter()
            .find(|s| s.namespace.as_deref().is_none_or(|n| n == namespace))?;
        if !scope.synced.load(Ordering::Acquire) {
            return None;
        }
        scope
            .store
            .get(&ObjectRef::new(name).within(namespace))
            .map(|w| w.scale_read())
    }
}

/// Starts the watches of kind `K` in `namespaces` (all when empty).
fn watch<K: WorkloadType>(client: &Client, namespaces: &[String]) -> Arc<dyn KindCache> {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let scopes = scopes
        .into_iter()
        .map(|namespace| {
            let api: Api<Workload<K>> = match &namespace {
                None => Api::all(client.clone()),
                Some(ns) => Api::namespaced(client.clone(), ns),
            };
            let (store, writer) = reflector::store();
            let synced = Arc::new(AtomicBool::new(false));
            let flag = synced.clone();
            let stream = watcher(api, watcher::Config::default().any_semantic())
                .default_backoff()
                .reflect(writer)
                .for_each(move |event| {
                    if matches!(event, Ok(watcher::Event::InitDone)) {
                        flag.store(true, Ordering::Release);
                    }
                    future::ready(())
                });
            tokio::spawn(stream);
            info!(kind = K::KIND, namespace = ?namespace, "watching the replicas of scale targets");
            Scoped {
                namespace,
                store,
                synced,
            }
        })
        .collect();
    Arc::new(Watched::<K> { scopes })
}

/// The watches of the workload kinds autoscalers target, started on first use.
pub struct WorkloadCaches {
    client: Client,
    /// The namespaces the operator watches; empty: all.
    namespaces: Vec<String>,
    kinds: Mutex<HashMap<WorkloadKind, Arc<dyn KindCache>>>,
}

impl WorkloadCaches {
    /// Caches for the operator's `namespaces` (all when empty); nothing is watched yet.
    pub fn new(client: Client, namespaces: Vec<String>) -> Self {
        WorkloadCaches {
            client,
            namespaces,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The cached Scale of workload `name` of `kind` in `namespace`, or `None` when the cache
    /// cannot answer (yet); the first ask for a kind starts its watch.
    pub fn get(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Option<ScaleRead> {
        let cache = {
            let mut kinds = self.kinds.lock().expect("workload caches lock poisoned");
            kinds
                .entry(kind)
                .or_insert_with(|| match kind {
                    WorkloadKind::Deployment => watch::<Deployment>(&self.client, &self.namespaces),
                    WorkloadKind::StatefulSet => {
                        watch::<StatefulSet>(&self.client, &self.namespaces)
                    }
                    WorkloadKind::ReplicaSet => watch::<ReplicaSet>(&self.client, &self.namespaces),
                })
                .clone()
        };
        cache.get(namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_workload_keeps_its_counts_and_resource_version_only() {
        let w: Workload<Deployment> = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns1", "resourceVersion": "42",
                         "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 4, "readyReplicas": 2, "conditions": [{"type": "Available"}]}
        }))
        .expect("a Deployment decodes");
        assert_eq!(
            w.scale_read(),
            ScaleRead {
                replicas: Replicas {
                    spec: 3,
                    status: 4,
                    ready: Some(2)
                },
                resource_version: Some("42".into()),
                source: ReadSource::Watch,
            }
        );
        assert_eq!(w.metadata.name.as_deref(), Some("web"));
        assert!(w.metadata.labels.is_none() && w.metadata.managed_fields.is_none());
    }

    #[test]
    fn absent_counts_read_as_zero_like_the_scale_subresource() {
        let w: Workload<StatefulSet> =
            serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {}}))
                .expect("decodes");
        assert_eq!(
            w.scale_read().replicas,
            Replicas {
                spec: 0,
                status: 0,
                ready: Some(0)
            }
        );
    }

    #[test]
    fn only_the_apps_v1_workloads_are_watched() {
        assert_eq!(
            WorkloadKind::of("apps/v1", "Deployment"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::of("apps/v1", "ReplicaSet"),
            Some(WorkloadKind::ReplicaSet)
        );
        assert_eq!(WorkloadKind::of("apps/v1", "DaemonSet"), None);
        assert_eq!(WorkloadKind::of("example.com/v1", "Deployment"), None);
        assert_eq!(WorkloadKind::of("v1", "ReplicationController"), None);
    }
}
