//! Who owns a scale target: one autoscaler per workload.
//!
//! Two autoscalers on one workload fight forever (the min/max of one undoes the other every
//! poll). The HorizontalPodAutoscaler reports `AmbiguousSelector` in the equivalent case; here a
//! workload is named by `scaleTargetRef` (namespace, API group, kind, name), and:
//! - an AviAutoscaler whose target an `autoscaling/v2` HorizontalPodAutoscaler also names holds
//!   with `ConflictingHorizontalPodAutoscaler` (the HPA cannot be asked to step back);
//! - of several AviAutoscalers on one target, the oldest (`creationTimestamp`, then name) keeps
//!   control and every other holds with `AmbiguousTarget`.
//!
//! A held autoscaler never writes `/scale`; it resumes on the first poll after the conflict
//! ends. Objects being deleted own nothing. The version of the API group is not compared: a
//! Deployment is the same workload whichever version names it.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use api::{AviAutoscaler, Reason, ScaleTargetRef, k8s::jiff::Timestamp};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::{
    ResourceExt,
    runtime::{
        reflector::{ObjectRef, Store},
        watcher,
    },
};

/// The workload a `scaleTargetRef` names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetKey {
    /// The namespace of the object holding the reference (targets are always in it).
    pub namespace: String,
    /// The API group of `apiVersion` (empty for the core group).
    pub group: String,
    /// The kind.
    pub kind: String,
    /// The name.
    pub name: String,
}

impl TargetKey {
    /// The target of an AviAutoscaler (read from the raw spec, so an autoscaler whose spec
    /// cannot be used still owns what it names).
    pub fn of_autoscaler(obj: &AviAutoscaler) -> Self {
        let r: &ScaleTargetRef = &obj.spec.scale_target_ref;
        Self::new(obj.namespace(), &r.api_version, &r.kind, &r.name)
    }

    /// The target of a HorizontalPodAutoscaler.
    pub fn of_hpa(hpa: &HorizontalPodAutoscaler) -> Option<Self> {
        let r = &hpa.spec.as_ref()?.scale_target_ref;
        Some(Self::new(
            hpa.namespace(),
            r.api_version.as_deref().unwrap_or_default(),
            &r.kind,
            &r.name,
        ))
    }

    fn new(namespace: Option<String>, api_version: &str, kind: &str, name: &str) -> Self {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        TargetKey {
            namespace: namespace.unwrap_or_default(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// Why an AviAutoscaler must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// A HorizontalPodAutoscaler names the same target.
    HorizontalPodAutoscaler {
        /// Its name (same namespace).
        name: String,
        /// The target, as `Kind/name`.
        target: String,
    },
    /// An older AviAutoscaler names the same target.
    OlderAutoscaler {
        /// Its name (same namespace).
        name: String,
        /// The target, as `Kind/name`.
        target: String,
    },
}

impl Conflict {
    /// The hold the decision is made from: reason and a message naming the other object.
    pub fn hold(&self) -> scaling::Failure {
        match self {
            Conflict::HorizontalPodAutoscaler { name, target } => scaling::Failure::new(
                Reason::ConflictingHorizontalPodAutoscaler,
                format!(
                    "the HorizontalPodAutoscaler {name} also manages {target}; this autoscaler holds the replica count until that HorizontalPodAutoscaler is deleted or points elsewhere"
                ),
            ),
            Conflict::OlderAutoscaler { name, target } => scaling::Failure::new(
                Reason::AmbiguousTarget,
                format!(
                    "the older AviAutoscaler {name} also manages {target} and keeps control; this autoscaler holds the replica count until one of the two is deleted or points elsewhere"
                ),
            ),
        }
    }
}

/// Whether `obj` must hold, given every AviAutoscaler and HorizontalPodAutoscaler known (in
/// any namespace; `obj` itself may be among them). An HPA wins over everything; otherwise the
/// oldest AviAutoscaler (`creationTimestamp`, then name) keeps control.
#[cfg(test)]
pub fn find_conflict<'a>(
    obj: &AviAutoscaler,
    autoscalers: impl IntoIterator<Item = &'a AviAutoscaler>,
    hpas: impl IntoIterator<Item = &'a HorizontalPodAutoscaler>,
) -> Option<Conflict> {
    let key = TargetKey::of_autoscaler(obj);
    let claims: Vec<Claim> = autoscalers
        .into_iter()
        .filter(|a| a.metadata.deletion_timestamp.is_none())
        .filter(|a| TargetKey::of_autoscaler(a) == key)
        .map(Claim::of)
        .collect();
    conflict_among(obj, &claims, hpas)
}

/// [`find_conflict`] with the AviAutoscalers that name `obj`'s target (and are not being
/// deleted) given as their claims.
fn conflict_among<'a>(
    obj: &AviAutoscaler,
    claims: &[Claim],
    hpas: impl IntoIterator<Item = &'a HorizontalPodAutoscaler>,
) -> Option<Conflict> {
    let key = TargetKey::of_autoscaler(obj);
    let target = format!("{}/{}", key.kind, key.name);
    let mut hpa_names: Vec<String> = hpas
        .into_iter()
        .filter(|h| h.metadata.deletion_timestamp.is_none())
        .filter(|h| TargetKey::of_hpa(h).as_ref() == Some(&key))
        .map(|h| h.name_any())
        .collect();
    hpa_names.sort();
    if let Some(name) = hpa_names.into_iter().next() {
        return Some(Conflict::HorizontalPodAutoscaler { name, target });
    }
    let own = Claim::of(obj);
    claims
        .iter()
        .filter(|other| other.age() < own.age())
        .min_by(|a, b| a.age().cmp(&b.age()))
        .map(|c| Conflict::OlderAutoscaler {
            name: c.name.clone(),
            target,
        })
}

/// An AviAutoscaler's claim on its target: what deciding who keeps control needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    created: Option<Timestamp>,
    name: String,
}

impl Claim {
    fn of(obj: &AviAutoscaler) -> Self {
        Claim {
            created: obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
            name: obj.name_any(),
        }
    }

    /// Older first: `creationTimestamp`, then name.
    fn age(&self) -> (Option<Timestamp>, &str) {
        (self.created, &self.name)
    }
}

/// The AviAutoscalers by target, kept in step with their watches, so that finding an
/// autoscaler's rivals costs a lookup, not a pass over every autoscaler (which at 10,000
/// objects took most of a tick's CPU).
#[derive(Default)]
struct Index {
    /// The target each indexed AviAutoscaler names.
    targets: HashMap<ObjectRef<AviAutoscaler>, TargetKey>,
    /// The AviAutoscalers (not being deleted) naming each target.
    claims: HashMap<TargetKey, Vec<Claim>>,
    /// The objects a relist of each watch (by its namespace, all when `None`) has delivered so
    /// far; what the index holds beyond them when the relist ends was deleted meanwhile.
    relisting: HashMap<Option<String>, HashSet<ObjectRef<AviAutoscaler>>>,
}

impl Index {
    fn remove(&mut self, obj: &ObjectRef<AviAutoscaler>) {
        let Some(key) = self.targets.remove(obj) else {
            return;
        };
        if let Some(claims) = self.claims.get_mut(&key) {
            claims.retain(|c| c.name != obj.name);
            if claims.is_empty() {
                self.claims.remove(&key);
            }
        }
    }

    fn upsert(&mut self, obj: &AviAutoscaler) {
        let r = index_key(obj);
        self.remove(&r);
        if obj.metadata.deletion_timestamp.is_some() {
            return;
        }
        let key = TargetKey::of_autoscaler(obj);
        self.claims
            .entry(key.clone())
            .or_default()
            .push(Claim::of(obj));
        self.targets.insert(r, key);
    }
}

/// The index's key of `obj`: namespace and name only (an `ObjectRef` made from the object
/// would also carry its resourceVersion and uid, two more strings per object for nothing).
fn index_key(obj: &AviAutoscaler) -> ObjectRef<AviAutoscaler> {
    let r = ObjectRef::new(&obj.name_any());
    match obj.metadata.namespace.as_deref() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

/// The caches conflicts are found in: the AviAutoscaler watches' and the HorizontalPodAutoscaler
/// watches', one per watched scope each.
#[derive(Default)]
pub struct Owners {
    autoscalers: Mutex<Index>,
    hpas: Mutex<Vec<(Store<HorizontalPodAutoscaler>, Arc<AtomicBool>)>>,
}

/// The HorizontalPodAutoscalers are not all listed yet: whether a target is shared is unknown.
#[derive(Debug, thiserror::Error)]
#[error("the HorizontalPodAutoscalers are not listed yet")]
pub struct NotSynced;

impl Owners {
    /// Follows one event of an AviAutoscaler watch of `namespace` (all when `None`). Every
    /// object of the watch counts, whichever shard it belongs to: a rival on another shard
    /// holds a workload just the same.
    pub fn observe(&self, event: &watcher::Event<AviAutoscaler>, namespace: Option<&str>) {
        let mut index = self.autoscalers.lock().expect("owners lock poisoned");
        let scope = namespace.map(str::to_owned);
        match event {
            watcher::Event::Apply(obj) => index.upsert(obj),
            watcher::Event::InitApply(obj) => {
                index.upsert(obj);
                index
                    .relisting
                    .entry(scope)
                    .or_default()
                    .insert(index_key(obj));
            }
            watcher::Event::Delete(obj) => index.remove(&index_key(obj)),
            watcher::Event::Init => {
                index.relisting.insert(scope, HashSet::new());
            }
            // A relist is complete: what it did not deliver was deleted meanwhile.
            watcher::Event::InitDone => {
                let seen = index.relisting.remove(&scope).unwrap_or_default();
                let gone: Vec<ObjectRef<AviAutoscaler>> = index
                    .targets
                    .keys()
                    .filter(|r| namespace.is_none_or(|ns| r.namespace.as_deref() == Some(ns)))
                    .filter(|r| !seen.contains(*r))
                    .cloned()
                    .collect();
                for r in &gone {
                    index.remove(r);
                }
            }
        }
    }

    /// Adds the cache of one HorizontalPodAutoscaler watch; the flag turns true once the watch
    /// has listed them all.
    pub fn add_hpas(&self, store: Store<HorizontalPodAutoscaler>) -> Arc<AtomicBool> {
        let synced = Arc::new(AtomicBool::new(false));
        self.hpas
            .lock()
            .expect("owners lock poisoned")
            .push((store, synced.clone()));
        synced
    }

    /// Why `obj` must hold, if it must; [`NotSynced`] until every HPA watch has listed (until
    /// then an HPA on the target could exist unseen, so nothing may be written).
    pub fn conflict(&self, obj: &AviAutoscaler) -> Result<Option<Conflict>, NotSynced> {
        let hpas: Vec<Arc<HorizontalPodAutoscaler>> = {
            let stores = self.hpas.lock().expect("owners lock poisoned");
            if stores
                .iter()
                .any(|(_, synced)| !synced.load(Ordering::Acquire))
            {
                return Err(NotSynced);
            }
            stores.iter().flat_map(|(s, _)| s.state()).collect()
        };
        let claims: Vec<Claim> = self
            .autoscalers
            .lock()
            .expect("owners lock poisoned")
            .claims
            .get(&TargetKey::of_autoscaler(obj))
            .cloned()
            .unwrap_or_default();
        Ok(conflict_among(obj, &claims, hpas.iter().map(AsRef::as_ref)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn autoscaler(name: &str, created: &str, target: &str) -> AviAutoscaler {
        serde_json::from_value(json!({
            "apiVersion": "autoscaling.avi.dev/v1alpha1",
            "kind": "AviAutoscaler",
            "metadata": {"name": name, "namespace": "web", "creationTimestamp": created},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "controllerRef": {"name": "avi"},
                "maxReplicas": 3,
                "metrics": [],
            },
        }))
        .expect("a valid AviAutoscaler")
    }

    fn hpa(
        namespace: &str,
        name: &str,
        api_version: &str,
        target: &str,
    ) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "scaleTargetRef": {"apiVersion": api_version, "kind": "Deployment", "name": target},
                "maxReplicas": 5,
            },
        }))
        .expect("a valid HorizontalPodAutoscaler")
    }

    const EARLY: &str = "2026-01-01T00:00:00Z";
    const LATE: &str = "2026-01-02T00:00:00Z";

    #[test]
    fn the_older_autoscaler_keeps_control_and_the_newer_holds() {
        let old = autoscaler("old", EARLY, "kuard");
        let new = autoscaler("new", LATE, "kuard");
        let all = [old.clone(), new.clone()];
        assert_eq!(find_conflict(&old, &all, []), None);
        let conflict = find_conflict(&new, &all, []).expect("the newer one holds");
        assert_eq!(
            conflict,
            Conflict::OlderAutoscaler {
                name: "old".into(),
                target: "Deployment/kuard".into()
            }
        );
        let hold = conflict.hold();
        assert_eq!(hold.reason, Reason::AmbiguousTarget);
        assert!(
            hold.message.contains("AviAutoscaler old"),
            "{}",
            hold.message
        );
    }

    #[test]
    fn equal_creation_times_fall_back_to_the_name() {
        let a = autoscaler("a", EARLY, "kuard");
        let b = autoscaler("b", EARLY, "kuard");
        let all = [b.clone(), a.clone()];
        assert_eq!(find_conflict(&a, &all, []), None);
        assert!(matches!(
            find_conflict(&b, &all, []),
            Some(Conflict::OlderAutoscaler { name, .. }) if name == "a"
        ));
    }

    #[test]
    fn other_targets_namespaces_and_deleted_objects_do_not_conflict() {
        let mine = autoscaler("mine", LATE, "kuard");
        let elsewhere = autoscaler("elsewhere", EARLY, "other");
        let mut other_namespace = autoscaler("other-ns", EARLY, "kuard");
        other_namespace.metadata.namespace = Some("shop".into());
        let mut leaving = autoscaler("leaving", EARLY, "kuard");
        leaving.metadata.deletion_timestamp = mine.metadata.creation_timestamp.clone();
        let all = [elsewhere, other_namespace, leaving, mine.clone()];
        let hpas = [
            hpa("shop", "h", "apps/v1", "kuard"),
            hpa("web", "h", "apps/v1", "other"),
        ];
        assert_eq!(find_conflict(&mine, &all, &hpas), None);
    }

    #[test]
    fn an_hpa_on_the_target_holds_every_autoscaler_whatever_the_version() {
        let old = autoscaler("old", EARLY, "kuard");
        let hpas = [hpa("web", "kuard", "apps/v1beta2", "kuard")];
        let conflict = find_conflict(&old, [&old], &hpas).expect("an HPA holds it");
        let hold = conflict.hold();
        assert_eq!(hold.reason, Reason::ConflictingHorizontalPodAutoscaler);
        assert!(
            hold.message
                .starts_with("the HorizontalPodAutoscaler kuard also manages Deployment/kuard"),
            "{}",
            hold.message
        );
    }

    #[test]
    fn the_index_follows_creations_retargets_deletions_and_relists() {
        let owners = Owners::default();
        let (hpa_store, _hpa_writer) = kube::runtime::reflector::store();
        owners.add_hpas(hpa_store).store(true, Ordering::Release);
        let old = autoscaler("old", EARLY, "kuard");
        let new = autoscaler("new", LATE, "kuard");
        let observe = |e: watcher::Event<AviAutoscaler>| owners.observe(&e, None);
        observe(watcher::Event::InitApply(old.clone()));
        observe(watcher::Event::Apply(new.clone()));
        assert_eq!(owners.conflict(&old).unwrap(), None);
        assert!(matches!(
            owners.conflict(&new).unwrap(),
            Some(Conflict::OlderAutoscaler { name, .. }) if name == "old"
        ));
        // The older one points elsewhere: the newer one keeps control.
        observe(watcher::Event::Apply(autoscaler("old", EARLY, "other")));
        assert_eq!(owners.conflict(&new).unwrap(), None);
        observe(watcher::Event::Apply(old.clone()));
        assert!(owners.conflict(&new).unwrap().is_some());
        observe(watcher::Event::Delete(old.clone()));
        assert_eq!(owners.conflict(&new).unwrap(), None);
        // Being deleted owns nothing.
        let mut leaving = old.clone();
        leaving.metadata.deletion_timestamp = new.metadata.creation_timestamp.clone();
        observe(watcher::Event::Apply(leaving));
        assert_eq!(owners.conflict(&new).unwrap(), None);
        // A relist that no longer delivers an object drops it, and keeps what it delivered.
        observe(watcher::Event::Apply(old.clone()));
        assert!(owners.conflict(&new).unwrap().is_some());
        observe(watcher::Event::Init);
        observe(watcher::Event::InitApply(new.clone()));
        observe(watcher::Event::InitDone);
        assert_eq!(owners.conflict(&new).unwrap(), None);
        assert_eq!(owners.autoscalers.lock().unwrap().targets.len(), 1);
    }

    #[test]
    fn the_core_group_is_empty() {
        let key = TargetKey::new(Some("web".into()), "v1", "ReplicationController", "rc");
        assert_eq!(key.group, "");
        let key = TargetKey::new(Some("web".into()), "apps/v1", "Deployment", "d");
        assert_eq!(key.group, "apps");
    }
}
