//! The status history a decision is made from, when the cached object does not show it yet.
//!
//! The engine's rate limits and its one-step-per-sample rule live in `status` (scale events,
//! the freshness record). Two things can make the cached object's status older than what this
//! replica knows:
//!
//! - a `/scale` write succeeded and the status write after it failed: the scale happened, but
//!   no stored status says so;
//! - a status write succeeded and the watch has not delivered it yet.
//!
//! Deciding from the cached status in either case would forget a scale: a second step on the
//! same sample, or a step the rate limit forbids. So this replica remembers each status it
//! decided until the cache shows it, and decides from the newest one instead, as long as the
//! cache shows nothing newer than what it remembers (a status somebody else wrote wins, and the
//! memory is dropped).
//!
//! Alongside, it keeps the resourceVersion that the remembered status is stored under, so the
//! next status write carries the version the decision was made from: a 409 means the object
//! changed since, and the reconcile reads it again and decides again.

use std::{collections::HashMap, sync::Mutex};

use api::{AviAutoscaler, AviAutoscalerStatus};
use kube::{Resource, runtime::reflector::ObjectRef};

/// How many unconfirmed statuses of one object are kept (older ones are forgotten: by then
/// the watch is far behind, and the cache's status is taken as somebody else's).
const MAX_UNCONFIRMED: usize = 8;

/// What one replica remembers per object; see the module documentation.
#[derive(Default)]
pub struct StatusMemory {
    entries: Mutex<HashMap<ObjectRef<AviAutoscaler>, Entry>>,
}

struct Entry {
    /// The cached status when the first remembered status was decided.
    base: Option<AviAutoscalerStatus>,
    /// The statuses decided since, oldest first; the last is the newest.
    decided: Vec<AviAutoscalerStatus>,
    /// Whether the newest was written.
    recorded: bool,
    /// The resourceVersion the last successful status write returned, if there was one.
    stored_version: Option<String>,
}

impl Entry {
    /// Whether the newest remembered status is newer than what the cached `obj` shows: the
    /// cache shows the status before it, or one of the older remembered ones. Otherwise the
    /// cache caught up, or somebody else wrote a status.
    fn ahead_of(&self, obj: &AviAutoscaler) -> bool {
        let Some((newest, older)) = self.decided.split_last() else {
            return false;
        };
        obj.status.as_ref() != Some(newest)
            && (obj.status == self.base || older.iter().any(|s| obj.status.as_ref() == Some(s)))
    }
}

/// What became of a status write.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// The status is stored, under this resourceVersion.
    Stored {
        /// The object's resourceVersion the write returned.
        resource_version: Option<String>,
    },
    /// The write failed, or was never made.
    Lost,
}

/// The history to decide from.
#[derive(Debug, PartialEq)]
pub struct History {
    /// The status: the cached one, or a newer one this replica remembers.
    pub status: Option<AviAutoscalerStatus>,
    /// The resourceVersion the status write must carry.
    pub resource_version: Option<String>,
    /// Whether `status` is known to be stored (the newest remembered one may not be: its write
    /// failed).
    pub stored: bool,
    /// Whether `status` comes from memory rather than the cached object.
    pub remembered: bool,
}

impl StatusMemory {
    /// The history for a decision about `obj` (the cached object).
    pub fn history(&self, obj: &AviAutoscaler) -> History {
        let cached = History {
            status: obj.status.clone(),
            resource_version: obj.meta().resource_version.clone(),
            stored: true,
            remembered: false,
        };
        let mut entries = self.entries.lock().expect("status memory lock poisoned");
        let key = ObjectRef::from(obj);
        let Some(entry) = entries.get(&key) else {
            return cached;
        };
        if !entry.ahead_of(obj) {
            entries.remove(&key);
            return cached;
        }
        let newest = entry.decided.last();
        History {
            status: newest.cloned(),
            // A status this replica wrote is stored under the version its write returned. Until
            // a write of ours got through (or after a conflict), the object is where the cache
            // shows it.
            resource_version: entry.stored_version.clone().or(cached.resource_version),
            stored: entry.recorded,
            remembered: true,
        }
    }

    /// Remembers that `status` was decided from `history` for `obj`, and what became of its
    /// write.
    pub fn remember(
        &self,
        obj: &AviAutoscaler,
        history: &History,
        status: &AviAutoscalerStatus,
        write: Write,
    ) {
        let mut entries = self.entries.lock().expect("status memory lock poisoned");
        let key = ObjectRef::from(obj);
        // The status as the cache will decode it once the watch brings it back.
        let status = normalised(status);
        if !history.remembered {
            // Decided from the cache: whatever was remembered before is history now.
            entries.remove(&key);
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            base: obj.status.clone(),
            decided: Vec::new(),
            recorded: false,
            stored_version: None,
        });
        if entry.decided.len() == MAX_UNCONFIRMED {
            entry.decided.remove(0);
        }
        entry.decided.push(status);
        match write {
            Write::Stored { resource_version } => {
                entry.recorded = true;
                entry.stored_version = resource_version;
            }
            Write::Lost => entry.recorded = false,
        }
    }

    /// The watch brought `obj`: what the cache now shows makes a remembered status of it
    /// unnecessary, or not yet.
    pub fn observe(&self, obj: &AviAutoscaler) {
        let mut entries = self.entries.lock().expect("status memory lock poisoned");
        let key = ObjectRef::from(obj);
        if entries.get(&key).is_some_and(|e| !e.ahead_of(obj)) {
            entries.remove(&key);
        }
    }

    /// Keeps only the objects `keep` accepts.
    pub fn retain(&self, mut keep: impl FnMut(&ObjectRef<AviAutoscaler>) -> bool) {
        self.entries
            .lock()
            .expect("status memory lock poisoned")
            .retain(|k, _| keep(k));
    }

    /// A status write for `obj` met a 409: the object is no longer at the version remembered,
    /// so the next write carries the cached object's version (and meets 409s until the watch
    /// brings the change).
    pub fn conflicted(&self, obj: &AviAutoscaler) {
        if let Some(entry) = self
            .entries
            .lock()
            .expect("status memory lock poisoned")
            .get_mut(&ObjectRef::from(obj))
        {
            entry.stored_version = None;
        }
    }

    /// Forgets `obj` (deleted, or no longer this replica's).
    pub fn forget(&self, obj: &AviAutoscaler) {
        self.entries
            .lock()
            .expect("status memory lock poisoned")
            .remove(&ObjectRef::from(obj));
    }
}

/// `status` after a round trip through its JSON form, which is what the API server stores and
/// the watch brings back.
fn normalised(status: &AviAutoscalerStatus) -> AviAutoscalerStatus {
    serde_json::to_value(status)
        .and_then(serde_json::from_value)
        .unwrap_or_else(|_| status.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(current: i32) -> AviAutoscalerStatus {
        AviAutoscalerStatus {
            current_replicas: current,
            desired_replicas: current,
            ..Default::default()
        }
    }

    /// The cached object at resourceVersion `rv` showing `current` replicas in its status.
    fn cached(rv: &str, current: Option<i32>) -> AviAutoscaler {
        let mut obj: AviAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling.avi.dev/v1alpha1", "kind": "AviAutoscaler",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv},
            "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicas": 10,
                     "controllerRef": {"name": "avi"},
                     "metrics": [{"entity": {"type": "pool", "name": "p"},
                                  "metricId": "l4_server.avg_open_conns", "target": {"type": "Value", "value": 1}}]}
        }))
        .expect("an AviAutoscaler");
        obj.status = current.map(status);
        obj
    }

    fn stored(rv: &str) -> Write {
        Write::Stored {
            resource_version: Some(rv.into()),
        }
    }

    #[test]
    fn without_memory_the_cache_is_the_history() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(1));
        let h = memory.history(&obj);
        assert_eq!(h.status, Some(status(1)));
        assert_eq!(h.resource_version.as_deref(), Some("10"));
        assert!(h.stored && !h.remembered);
    }

    #[test]
    fn a_scale_whose_status_write_failed_is_decided_from_until_a_write_records_it() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(1));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(2), Write::Lost);

        // The cache still shows 1: the next decision starts from the scale to 2, must write
        // it (it is not stored), on the cached version.
        let h = memory.history(&obj);
        assert_eq!(h.status, Some(status(2)));
        assert!(h.remembered && !h.stored);
        assert_eq!(h.resource_version.as_deref(), Some("10"));

        // A write records it; the cache lags: still decided from 2, on the version written.
        memory.remember(&obj, &h, &status(2), stored("11"));
        let h = memory.history(&obj);
        assert_eq!(h.status, Some(status(2)));
        assert!(h.remembered && h.stored);
        assert_eq!(h.resource_version.as_deref(), Some("11"));

        // The watch brings it: memory is dropped.
        memory.observe(&cached("11", Some(2)));
        let h = memory.history(&cached("11", Some(2)));
        assert!(!h.remembered);
        assert_eq!(h.resource_version.as_deref(), Some("11"));
    }

    #[test]
    fn writes_the_watch_has_not_brought_are_not_forgotten() {
        let memory = StatusMemory::default();
        let obj = cached("10", None);
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(2), stored("11"));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(3), stored("12"));

        // The watch brings the first write only: the second is still ahead of it.
        let behind = cached("11", Some(2));
        memory.observe(&behind);
        let h = memory.history(&behind);
        assert_eq!(h.status, Some(status(3)));
        assert_eq!(h.resource_version.as_deref(), Some("12"));
    }

    #[test]
    fn a_status_written_elsewhere_wins() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(1));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(2), Write::Lost);
        // Another replica wrote 5 meanwhile.
        let other = cached("15", Some(5));
        let h = memory.history(&other);
        assert_eq!(h.status, Some(status(5)));
        assert!(!h.remembered);
        // …and the memory is gone for good, even if the cache went back to an older state.
        assert!(!memory.history(&obj).remembered);
    }

    #[test]
    fn after_a_conflict_the_cached_version_is_used() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(1));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(2), stored("11"));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(3), Write::Lost);
        memory.conflicted(&obj);
        // A spec change (version 13) the cache already shows, with the status of version 11.
        let changed = cached("13", Some(2));
        let h = memory.history(&changed);
        assert_eq!(h.status, Some(status(3)));
        assert_eq!(h.resource_version.as_deref(), Some("13"));
    }

    #[test]
    fn forgetting_and_retaining_drop_memory() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(1));
        let h = memory.history(&obj);
        memory.remember(&obj, &h, &status(2), Write::Lost);
        memory.retain(|_| true);
        assert!(memory.history(&obj).remembered);
        memory.retain(|_| false);
        assert!(!memory.history(&obj).remembered);
        memory.remember(&obj, &h, &status(2), Write::Lost);
        memory.forget(&obj);
        assert!(!memory.history(&obj).remembered);
    }

    #[test]
    fn the_oldest_unconfirmed_statuses_are_dropped_past_the_bound() {
        let memory = StatusMemory::default();
        let obj = cached("10", Some(0));
        let mut h = memory.history(&obj);
        for n in 1..=(MAX_UNCONFIRMED as i32 + 3) {
            memory.remember(&obj, &h, &status(n), Write::Lost);
            h = memory.history(&obj);
        }
        assert_eq!(h.status, Some(status(MAX_UNCONFIRMED as i32 + 3)));
        // The base still counts as older, the oldest dropped one now looks like somebody
        // else's status.
        assert!(memory.history(&obj).remembered);
        assert!(!memory.history(&cached("10", Some(1))).remembered);
    }
}
