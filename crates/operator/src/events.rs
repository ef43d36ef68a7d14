//! Kubernetes Events through kube-runtime's [`Recorder`].
//!
//! kube-runtime's recorder folds every later event with the same (type, reason, action) into
//! the first one's series, keeping the first message: "New size: 5" would then read
//! "New size: 2". Kubernetes' own event correlator folds only identical messages, so a recorder
//! is kept per (object, reason, message): a repeated message counts up its series, a new message
//! is a new Event, as `kubectl describe` users expect.

use std::{collections::HashMap, sync::Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// Upper bound of cached recorders; the cache is cleared when it grows past it (the only cost
/// is that an identical message repeated later starts a new Event instead of counting up).
const MAX_RECORDERS: usize = 10_000;

/// One event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Normal or Warning.
    pub warning: bool,
    /// The reason, e.g. `SuccessfulRescale`.
    pub reason: String,
    /// The message.
    pub message: String,
}

/// Publishes events with one reporter identity.
pub struct Events {
    client: Client,
    reporter: Reporter,
    recorders: Mutex<HashMap<(String, String, String), Recorder>>,
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
        event: &Outgoing,
    ) -> Result<(), kube::Error> {
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            event.reason.clone(),
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
        recorder
            .publish(
                &Event {
                    type_: if event.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: event.reason.clone(),
                    note: Some(truncate(&event.message, 1024)),
                    action: action_for(&event.reason).to_owned(),
                    secondary: None,
                },
                regarding,
            )
            .await
    }

    /// Drops the recorders of objects that no longer exist.
    pub fn retain_objects(&self, exists: impl Fn(&str) -> bool) {
        self.recorders
            .lock()
            .expect("event recorder lock poisoned")
            .retain(|(uid, _, _), _| exists(uid));
    }
}

/// The Events API `action`: what the operator was doing when the event happened.
fn action_for(reason: &str) -> &'static str {
    match reason {
        "SuccessfulRescale" | "FailedRescale" => "Scale",
        "FailedGetScale" => "GetScale",
        "Paused" | "Resumed" => "Pause",
        "FailedUpdateStatus" => "UpdateStatus",
        _ => "ComputeReplicas",
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
        assert_eq!(action_for("SuccessfulRescale"), "Scale");
        assert_eq!(action_for("FailedGetAviMetric"), "ComputeReplicas");
    }
}
