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

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use api::{AviAutoscaler, Reason, ScaleTargetRef};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::{ResourceExt, runtime::reflector::Store};

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
pub fn find_conflict<'a>(
    obj: &AviAutoscaler,
    autoscalers: impl IntoIterator<Item = &'a AviAutoscaler>,
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
    let age = |a: &AviAutoscaler| {
        (
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            a.name_any(),
        )
    };
    let own = age(obj);
    autoscalers
        .into_iter()
        .filter(|a| a.metadata.deletion_timestamp.is_none())
        .filter(|a| TargetKey::of_autoscaler(a) == key)
        .map(age)
        .filter(|other| *other < own)
        .min()
        .map(|(_, name)| Conflict::OlderAutoscaler { name, target })
}

/// The caches conflicts are found in: the AviAutoscaler watches' and the HorizontalPodAutoscaler
/// watches', one per watched scope each.
#[derive(Default)]
pub struct Owners {
    autoscalers: Mutex<Vec<Store<AviAutoscaler>>>,
    hpas: Mutex<Vec<(Store<HorizontalPodAutoscaler>, Arc<AtomicBool>)>>,
}

/// The HorizontalPodAutoscalers are not all listed yet: whether a target is shared is unknown.
#[derive(Debug, thiserror::Error)]
#[error("the HorizontalPodAutoscalers are not listed yet")]
pub struct NotSynced;

impl Owners {
    /// Adds the cache of one AviAutoscaler watch.
    pub fn add_autoscalers(&self, store: Store<AviAutoscaler>) {
        self.autoscalers
            .lock()
            .expect("owners lock poisoned")
            .push(store);
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
        let autoscalers: Vec<Arc<AviAutoscaler>> = self
            .autoscalers
            .lock()
            .expect("owners lock poisoned")
            .iter()
            .flat_map(Store::state)
            .collect();
        Ok(find_conflict(
            obj,
            autoscalers.iter().map(AsRef::as_ref),
            hpas.iter().map(AsRef::as_ref),
        ))
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
    fn the_core_group_is_empty() {
        let key = TargetKey::new(Some("web".into()), "v1", "ReplicationController", "rc");
        assert_eq!(key.group, "");
        let key = TargetKey::new(Some("web".into()), "apps/v1", "Deployment", "d");
        assert_eq!(key.group, "apps");
    }
}
