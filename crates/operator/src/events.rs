//! Kubernetes Events through kube-runtime's [`Recorder`].
//!
//! kube-runtime's recorder folds every later event with the same (type, reason, action) into
//! the first one's series, keeping the first message: "New size: 5" would then read
//! "New size: 2". Kubernetes' own event correlator folds only identical messages, so a recorder
//! is kept per (object, reason, message): a repeated message counts up its series, a new message
//! is a new Event, as `kubectl describe` users expect.
//!
//! Events arrive as [`scaling::Event`]s, whatever produced them (the engine, or the operator's
//! own `FailedUpdateStatus`); their type and action follow from the typed reason.

use std::{collections::HashMap, sync::Mutex};

use api::EventReason;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// Upper bound of cached recorders; the cache is cleared when it grows past it (the only cost
/// is that an identical message repeated later starts a new Event instead of counting up).
const MAX_RECORDERS: usize = 10_000;

/// Publishes events with one reporter identity.
pub struct Events {
    client: Client,
    reporter: Reporter,
    recorders: Mutex<HashMap<(String, EventReason, String), Recorder>>,
}

impl Events {
    /// A publisher reporting as `controller` (and `instance`, e.g. the pod name).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Events {
            client,
            reporter: Reporter {
                controller: controller.to_owned(),
                instance,
            },
            recorders: Mutex::default(),
        }
    }

    /// Publishes `event` about `regarding`.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &scaling::Event,
    ) -> Result<(), kube::Error> {
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            event.reason,
            event.message.clone(),
        );
        let recorder = {
            let mut recorders = self.recorders.lock().expect("event recorder lock poisoned");
            if recorders.len() >= MAX_RECORDERS && !recorders.contains_key(&key) {
                recorders.clear();
            }
            recorders
                .entry(key)
                .or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone()))
                .clone()
        };
        recorder.publish(&to_kube(event), regarding).await
    }

    /// Drops the recorders of objects that no longer exist.
    pub fn retain_objects(&self, exists: impl Fn(&str) -> bool) {
        self.recorders
            .lock()
            .expect("event recorder lock poisoned")
            .retain(|(uid, _, _), _| exists(uid));
    }
}

/// The kube-runtime Event for `event`: type and action from its reason
/// ([`EventReason::type_and_action`]), the message cut to the Events API's limit.
fn to_kube(event: &scaling::Event) -> Event {
    let (type_, action) = event.reason.type_and_action();
    Event {
        type_: match type_ {
            api::EventType::Normal => EventType::Normal,
            api::EventType::Warning => EventType::Warning,
        },
        reason: event.reason.as_str().to_owned(),
        note: Some(truncate(&event.message, 1024)),
        action: action.as_str().to_owned(),
        secondary: None,
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

    #[test]
    fn actions_are_pascal_case_verbs() {
        let action = |reason| to_kube(&scaling::Event::new(reason, "m")).action;
        assert_eq!(action(EventReason::SuccessfulRescale), "Scale");
        assert_eq!(action(EventReason::FailedGetAviMetric), "ComputeReplicas");
    }

    #[test]
    fn every_reason_maps_to_a_kube_event_with_a_type_and_an_action() {
        for &reason in EventReason::ALL {
            let event = to_kube(&scaling::Event::new(reason, "m"));
            assert_eq!(event.reason, reason.as_str());
            // kube-runtime's EventType has no string form; its derived Debug is the name.
            assert_eq!(
                format!("{:?}", event.type_),
                reason.event_type().as_str(),
                "{reason}"
            );
            assert!(
                event.action.starts_with(|c: char| c.is_ascii_uppercase())
                    && event.action.chars().all(|c| c.is_ascii_alphabetic()),
                "{reason}: action {:?} is not a PascalCase verb",
                event.action
            );
            assert_eq!(event.note.as_deref(), Some("m"));
        }
        // Warnings are what `kubectl get events --field-selector type=Warning` shows.
        let warning = to_kube(&scaling::Event::new(EventReason::FailedUpdateStatus, "m"));
        assert_eq!(warning.type_, EventType::Warning);
        let normal = to_kube(&scaling::Event::new(EventReason::Resumed, "m"));
        assert_eq!(normal.type_, EventType::Normal);
    }

    #[test]
    fn long_messages_are_cut_to_the_events_api_limit() {
        let event = to_kube(&scaling::Event::new(
            EventReason::FailedRescale,
            "é".repeat(600),
        ));
        assert_eq!(event.note.map(|n| n.len()), Some(1024));
    }
}
