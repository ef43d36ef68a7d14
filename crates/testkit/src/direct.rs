//! Direct access to the store, without HTTP, and waiting on its state.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::ApiError;
use crate::patch::Patch;
use crate::resources::ResourceType;
use crate::store::{DeleteOpts, ScaleChange, Shared, Sub, WriteCtx};

/// How often [`Store::wait_for`] re-checks a condition between changes.
const POLL: Duration = Duration::from_millis(20);

/// The field manager of writes made through [`Store`].
pub const STORE_FIELD_MANAGER: &str = "testkit";

/// Names one object: `apiVersion`, a kind (or plural, singular or short name), its namespace
/// (for namespaced types) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, `autoscaling.avi.dev/v1alpha1`, …
    pub api_version: String,
    /// `Deployment` (or `deployments`, `deploy`).
    pub kind: String,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// A cluster-scoped object.
    pub fn new(api_version: &str, kind: &str, name: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self::new(api_version, kind, name).within(namespace)
    }

    /// The same reference in `namespace`.
    pub fn within(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// The reference of an object (from its `apiVersion`, `kind` and metadata).
    pub fn of(object: &Value) -> Option<Self> {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str);
        Some(Self {
            api_version: s("/apiVersion")?.to_owned(),
            kind: s("/kind")?.to_owned(),
            namespace: s("/metadata/namespace").map(str::to_owned),
            name: s("/metadata/name")?.to_owned(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// A condition of [`Store::wait_for`]: `true`/`Some(x)` when met.
pub trait Satisfied<T> {
    /// The value of a met condition.
    fn satisfied(self) -> Option<T>;
}

impl Satisfied<()> for bool {
    fn satisfied(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Satisfied<T> for Option<T> {
    fn satisfied(self) -> Option<T> {
        self
    }
}

/// A wait whose condition did not hold in time.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitTimeout {
    /// How long it waited.
    pub waited: Duration,
    /// What the store held when it gave up (objects per resource, recent requests).
    pub context: String,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "condition not met within {:?}; {}",
            self.waited, self.context
        )
    }
}

impl std::error::Error for WaitTimeout {}

/// A handle on the stand-in's objects. Writes follow the same rules as over HTTP (validation,
/// resourceVersion, generation, status isolation, watch events) with the field manager
/// [`STORE_FIELD_MANAGER`]. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

fn ctx() -> WriteCtx {
    WriteCtx {
        field_manager: Some(STORE_FIELD_MANAGER.to_owned()),
        user_agent: "testkit".to_owned(),
        ..WriteCtx::default()
    }
}

impl Store {
    fn resolve(&self, api_version: &str, kind: &str) -> Result<Arc<ResourceType>, ApiError> {
        self.shared
            .with(|s| s.registry.resolve(api_version, kind))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server doesn't have a resource type \"{kind}\" in {api_version}"),
                )
            })
    }

    fn target(&self, r: &ObjectRef) -> Result<(Arc<ResourceType>, String), ApiError> {
        let rt = self.resolve(&r.api_version, &r.kind)?;
        let ns = if rt.namespaced {
            r.namespace.clone().unwrap_or_else(|| "default".to_owned())
        } else {
            String::new()
        };
        Ok((rt, ns))
    }

    /// Creates an object (its type from `apiVersion` and `kind`, its namespace from
    /// `metadata.namespace`, `default` if unset).
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let av = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rt = self.resolve(av, kind)?;
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.shared
            .with(|s| s.create(&rt, ns.as_deref(), object, &ctx()))
            .map(|o| o.object)
    }

    /// The object, if it exists.
    pub fn get(&self, r: &ObjectRef) -> Option<Value> {
        self.try_get(r).ok()
    }

    /// The object, or the API's error (404 NotFound).
    pub fn try_get(&self, r: &ObjectRef) -> Result<Value, ApiError> {
        let (rt, ns) = self.target(r)?;
        self.shared
            .with(|s| s.get(&rt, &ns, &r.name))
            .map(|o| (*o).clone())
    }

    /// Every object of a type, in one namespace or all.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Ok(rt) = self.resolve(api_version, kind) else {
            return Vec::new();
        };
        self.shared
            .with(|s| s.objects(&rt, namespace))
            .into_iter()
            .map(|o| (*o).clone())
            .collect()
    }

    /// How many objects of a type, in one namespace or all, satisfy `predicate`; unlike
    /// [`list`](Self::list) it copies nothing, so a benchmark can ask often about many objects.
    pub fn count(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        predicate: impl Fn(&Value) -> bool,
    ) -> usize {
        let Ok(rt) = self.resolve(api_version, kind) else {
            return 0;
        };
        self.shared
            .with(|s| s.objects(&rt, namespace))
            .iter()
            .filter(|o| predicate(o))
            .count()
    }

    /// Replaces an object (PUT): `metadata.resourceVersion`, if set, must be current.
    pub fn update(&self, object: Value) -> Result<Value, ApiError> {
        self.put(object, Sub::Main)
    }

    /// Replaces an object's status (PUT on `/status`).
    pub fn update_status(&self, object: Value) -> Result<Value, ApiError> {
        self.put(object, Sub::Status)
    }

    fn put(&self, object: Value, sub: Sub) -> Result<Value, ApiError> {
        let r = ObjectRef::of(&object).ok_or_else(|| {
            ApiError::bad_request("the object needs apiVersion, kind and metadata.name")
        })?;
        let (rt, ns) = self.target(&r)?;
        if sub == Sub::Status && !rt.status {
            return Err(ApiError::no_such_path());
        }
        self.shared
            .with(|s| s.update(&rt, &ns, &r.name, sub, object, &ctx()))
            .map(|o| o.object)
    }

    /// Patches an object.
    pub fn patch(&self, r: &ObjectRef, patch: Patch) -> Result<Value, ApiError> {
        self.patch_sub(r, patch, Sub::Main)
    }

    /// Patches an object's status subresource.
    pub fn patch_status(&self, r: &ObjectRef, patch: Patch) -> Result<Value, ApiError> {
        self.patch_sub(r, patch, Sub::Status)
    }

    fn patch_sub(&self, r: &ObjectRef, patch: Patch, sub: Sub) -> Result<Value, ApiError> {
        let (rt, ns) = self.target(r)?;
        if sub == Sub::Status && !rt.status {
            return Err(ApiError::no_such_path());
        }
        self.shared
            .with(|s| s.patch(&rt, &ns, &r.name, sub, &patch, &ctx()))
            .map(|o| o.object)
    }

    /// The object's `autoscaling/v1` Scale.
    pub fn scale(&self, r: &ObjectRef) -> Result<Value, ApiError> {
        let (rt, ns) = self.target(r)?;
        self.shared.with(|s| s.get_scale(&rt, &ns, &r.name))
    }

    /// Sets `spec.replicas` through the scale subresource; returns the new Scale.
    pub fn set_scale(&self, r: &ObjectRef, replicas: i64) -> Result<Value, ApiError> {
        let (rt, ns) = self.target(r)?;
        let p = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
        self.shared
            .with(|s| s.write_scale(&rt, &ns, &r.name, ScaleChange::Patch(p), &ctx()))
    }

    /// Deletes an object (with finalizers it only gets a `deletionTimestamp`).
    pub fn delete(&self, r: &ObjectRef) -> Result<Value, ApiError> {
        let (rt, ns) = self.target(r)?;
        self.shared
            .with(|s| s.delete(&rt, &ns, &r.name, &DeleteOpts::default()))
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.with(|s| s.resource_version())
    }

    /// Forgets the change history: watches and continue tokens from any older
    /// resourceVersion get `410 Gone` (reason `Expired`) from now on.
    pub fn compact(&self) {
        self.shared.with(|s| s.compact());
    }

    /// Ends every open watch stream (cleanly, as an API server closing watches does); returns
    /// how many were open.
    pub fn drop_watches(&self) -> usize {
        self.shared.with(|s| s.drop_watches())
    }

    /// The number of open watch streams.
    pub fn watch_count(&self) -> usize {
        self.shared.with(|s| s.watch_count())
    }

    /// `group/plural=count` for every non-empty resource, for diagnostics.
    pub fn summary(&self) -> String {
        let counts = self.shared.with(|s| s.counts());
        let parts: Vec<String> = counts
            .into_iter()
            .map(|(k, n)| format!("{}={n}", k.trim_start_matches('/')))
            .collect();
        format!(
            "resourceVersion {}, objects: {}",
            self.resource_version(),
            parts.join(", ")
        )
    }

    /// Waits until `condition` holds (`true` or `Some(x)`); gives up after `timeout`. The
    /// condition is checked after every change of the store and, for conditions on state
    /// outside it (a client's cache, say), every 20 ms.
    pub async fn wait_for<T, R: Satisfied<T>>(
        &self,
        mut condition: impl FnMut(&Store) -> R,
        timeout: Duration,
    ) -> Result<T, WaitTimeout> {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.subscribe_changes();
        loop {
            changes.mark_unchanged();
            if let Some(v) = condition(self).satisfied() {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WaitTimeout {
                    waited: start.elapsed(),
                    context: self.summary(),
                });
            }
            let tick = (tokio::time::Instant::now() + POLL).min(deadline);
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(tick) => {}
            }
        }
    }
}
