//! Kubernetes Events (`events.k8s.io/v1`), with series the way Kubernetes' own event
//! correlator keeps them.
//!
//! A repeated event (same object, reason and message within [`SERIES_TTL`]) counts up the
//! series of the first one instead of creating another Event; a new message is a new Event, as
//! `kubectl describe` users expect. kube-runtime's `Recorder` does the same with two
//! differences that rule it out here: it folds every later event with the same (type, reason,
//! action) into the first one's series, keeping the first message ("New size: 5" would then
//! read "New size: 2"), and each recorder caches whole Event objects, about 6 KiB per
//! (object, message) pair, which at 10,000 autoscalers was the largest part of the heap. This
//! module keeps, per series, its Event's name, count and time: under 100 bytes.
//!
//! Events arrive as [`scaling::Event`]s, whatever produced them (the engine, or the operator's
//! own `FailedUpdateStatus`); their type and action follow from the typed reason.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::Mutex,
    time::{Duration, Instant},
};

use api::EventReason;
use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// How long a series stays open: a repeat after that starts a new Event (kube-runtime and
/// client-go use 6 minutes as well).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// Upper bound of remembered series; past it the closed ones are dropped, and if all are open
/// the memory is cleared (the only cost: a repeat starts a new Event instead of counting up).
const MAX_SERIES: usize = 20_000;

/// What identifies a series: the object's uid, the reason and a hash of the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    uid: String,
    reason: EventReason,
    message: u64,
}

/// An open series: the Event it counts up.
#[derive(Clone, Debug)]
struct Series {
    name: String,
    count: i32,
    last: Instant,
}

/// Publishes events with one reporter identity.
pub struct Events {
    client: Client,
    controller: String,
    instance: String,
    series: Mutex<HashMap<SeriesKey, Series>>,
}

impl Events {
    /// A publisher reporting as `controller` (and `instance`, e.g. the pod name).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Events {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            series: Mutex::default(),
        }
    }

    /// Publishes `event` about `regarding`: a new Event, or one more in the series of the same
    /// message about the same object.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &scaling::Event,
    ) -> Result<(), kube::Error> {
        let key = SeriesKey {
            uid: regarding.uid.clone().unwrap_or_default(),
            reason: event.reason,
            message: message_hash(&event.message),
        };
        let open = {
            let series = self.series.lock().expect("event series lock poisoned");
            series
                .get(&key)
                .filter(|s| s.last.elapsed() < SERIES_TTL)
                .cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let written = match open {
            Some(open) => {
                let count = open.count.saturating_add(1);
                let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                match api
                    .patch(&open.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Series {
                        name: open.name,
                        count,
                        last: Instant::now(),
                    },
                    // The Event is gone (Events expire in the API server): start a new series.
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        self.create(&api, regarding, event, now).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.create(&api, regarding, event, now).await?,
        };
        let mut series = self.series.lock().expect("event series lock poisoned");
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            series.retain(|_, s| s.last.elapsed() < SERIES_TTL);
            if series.len() >= MAX_SERIES {
                series.clear();
            }
        }
        series.insert(key, written);
        Ok(())
    }

    /// Creates the first Event of a series.
    async fn create(
        &self,
        api: &Api<K8sEvent>,
        regarding: &ObjectReference,
        event: &scaling::Event,
        now: Timestamp,
    ) -> Result<Series, kube::Error> {
        let created = api
            .create(
                &PostParams::default(),
                &new_event(&self.controller, &self.instance, regarding, event, now),
            )
            .await?;
        Ok(Series {
            name: created.metadata.name.unwrap_or_default(),
            count: 1,
            last: Instant::now(),
        })
    }

    /// Drops the series of objects that no longer exist, and those closed by age.
    pub fn retain_objects(&self, exists: impl Fn(&str) -> bool) {
        self.series
            .lock()
            .expect("event series lock poisoned")
            .retain(|key, s| exists(&key.uid) && s.last.elapsed() < SERIES_TTL);
    }
}

/// A 64-bit hash of an Event message: series are told apart by it without keeping the text.
fn message_hash(message: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    message.hash(&mut hasher);
    hasher.finish()
}

/// The first Event of a series about `regarding`, reported by `controller` (`instance`): type
/// and action from its reason ([`EventReason::type_and_action`]), the message cut to the Events
/// API's limit.
fn new_event(
    controller: &str,
    instance: &str,
    regarding: &ObjectReference,
    event: &scaling::Event,
    now: Timestamp,
) -> K8sEvent {
    let (type_, action) = event.reason.type_and_action();
    let object = regarding.name.as_deref().unwrap_or(controller);
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.as_str().to_owned()),
        reason: Some(event.reason.as_str().to_owned()),
        action: Some(action.as_str().to_owned()),
        note: Some(truncate(&event.message, 1024)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..K8sEvent::default()
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary (the Events API limit is 1 kB).
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello", 3), "hel");
    }

    fn event(reason: EventReason, message: &str) -> K8sEvent {
        let regarding = ObjectReference {
            name: Some("kuard".into()),
            namespace: Some("shop".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        new_event(
            "avi-autoscaler",
            "pod-a",
            &regarding,
            &scaling::Event::new(reason, message),
            Timestamp::from_second(1_800_000_000).unwrap(),
        )
    }

    #[test]
    fn actions_are_pascal_case_verbs() {
        let action = |reason| event(reason, "m").action.unwrap();
        assert_eq!(action(EventReason::SuccessfulRescale), "Scale");
        assert_eq!(action(EventReason::FailedGetAviMetric), "ComputeReplicas");
    }

    #[test]
    fn every_reason_maps_to_an_event_with_a_type_and_an_action() {
        for &reason in EventReason::ALL {
            let e = event(reason, "m");
            assert_eq!(e.reason.as_deref(), Some(reason.as_str()));
            assert_eq!(
                e.type_.as_deref(),
                Some(reason.event_type().as_str()),
                "{reason}"
            );
            let action = e.action.unwrap();
            assert!(
                action.starts_with(|c: char| c.is_ascii_uppercase())
                    && action.chars().all(|c| c.is_ascii_alphabetic()),
                "{reason}: action {action:?} is not a PascalCase verb"
            );
            assert_eq!(e.note.as_deref(), Some("m"));
        }
        // Warnings are what `kubectl get events --field-selector type=Warning` shows.
        assert_eq!(
            event(EventReason::FailedUpdateStatus, "m").type_.as_deref(),
            Some("Warning")
        );
        assert_eq!(
            event(EventReason::Resumed, "m").type_.as_deref(),
            Some("Normal")
        );
    }

    #[test]
    fn an_event_names_its_object_reporter_and_time() {
        let e = event(EventReason::SuccessfulRescale, "New size: 3");
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
        assert!(e.metadata.name.unwrap().starts_with("kuard."));
        assert_eq!(e.regarding.and_then(|r| r.uid).as_deref(), Some("u-1"));
        assert_eq!(e.reporting_controller.as_deref(), Some("avi-autoscaler"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-a"));
        assert!(e.event_time.is_some() && e.series.is_none());
    }

    #[test]
    fn series_are_told_apart_by_message() {
        assert_eq!(message_hash("New size: 2"), message_hash("New size: 2"));
        assert_ne!(message_hash("New size: 2"), message_hash("New size: 5"));
    }

    #[test]
    fn long_messages_are_cut_to_the_events_api_limit() {
        let e = event(EventReason::FailedRescale, &"é".repeat(600));
        assert_eq!(e.note.map(|n| n.len()), Some(1024));
    }
}
